"""The course's state outside its files: grading settings, the tools' folder, the step argument,
and the stub as git committed it. The course layer: it imports nothing of the harness.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import tomllib
from enum import StrEnum
from pathlib import Path

from tutorial.course import ROOT, TITLES, built

SETTINGS = tomllib.loads((ROOT / "tutorial" / "grading.toml").read_text())
STATE = Path(os.environ.get("TUTORIAL_STATE", ROOT / ".progress"))  # the tools' own files (gitignored)


def step_arg(text: str) -> int:
    """argparse type: "s05", "05" or "5" -> 5, for a step the course has."""
    digits = text.lower().removeprefix("s")
    if not digits.isdigit() or int(digits) not in TITLES:
        raise argparse.ArgumentTypeError(f"{text!r} is not a step: use s01 ... s{max(TITLES):02d}")
    if int(digits) not in built():
        raise argparse.ArgumentTypeError(f"step {int(digits):02d} is not in the course yet")
    return int(digits)


def git(root: Path, *args: str) -> str | None:
    run = subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True)
    return run.stdout if run.returncode == 0 else None


def committed_stub(n: int, root: Path = ROOT, ref: str | None = None) -> tuple[str, str] | None:
    """(text, where it came from) of step n's stub in root's git history; None if git has none."""
    relative = f"steps/step_{n:02d}.py"
    if ref:
        text = git(root, "show", f"{ref}:{relative}")
        return (text, ref) if text is not None else None
    log = git(root, "log", "--format=%H %ae", "--", relative)
    if not log:
        return None
    ident = git(root, "var", "GIT_AUTHOR_IDENT") or ""
    me = found[1] if (found := re.search(r"<([^>]*)>", ident)) else None
    versions = [line.split(" ", 1) for line in log.splitlines()]
    commit = next((c for c, email in versions if email != me), versions[0][0])
    return git(root, "show", f"{commit}:{relative}"), commit[:12]


class Status(StrEnum):
    """What became of a check, or of a step's run, in every report: the grader's table, its JSON and
    JUnit, grade-class's gradebook, Gradescope's results, progress and watch. Equal to its text."""

    PASSED = "passed"
    FAILED = "failed"
    SKIPPED = "skipped"
    RUNNING = "running"  # a check under way (the grader's live line)
    NOT_RUN = "not run"  # a check the run never reached: it stopped at an earlier one
    TIMED_OUT = "timed out"
    CRASHED = "crashed"
    OUT_OF_MEMORY = "out of memory"
    ERROR = "error"  # the run produced no result at all (no checks collected, say)
    NOT_SUBMITTED = "not submitted"  # Gradescope: no file for the step
