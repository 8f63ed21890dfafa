"""A whole command, run for a maintainers' test: `python -m MODULE ARGS` in a process of its own.

The suite runs on pytest-xdist (`-n auto`, CONTRIBUTING.md), so a test that runs a command
waits for it while the other workers go on. Each run is a fresh `python -m`, as a learner's
would be: nothing a broken file did can leak into the next run.

A pytest run is given `-p tutorial.record`, and its checks' outcomes come back as records
(`Run.failures`): the result channel the grader reads (tutorial/record.py), not scraped text.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from tutorial.course import ROOT
from tutorial.limits import PARENT


@dataclass
class Run:
    """What the command did: its exit status (-1: killed at its time limit), output and records."""

    args: list[str]
    returncode: int
    stdout: str
    stderr: str
    records: list[dict] = field(default_factory=list)  # tutorial.record's events, for a pytest run

    @property
    def failures(self) -> dict[str, str]:
        """Each failed check's one-line message, by check, from the result records."""
        return {
            r["check"]: r["message"]
            for r in self.records
            if r.get("event") == "result" and r["status"] in ("failed", "error")
        }


def command(module: str, args: list, *, timeout: float, stdin: str = "", env: dict | None = None) -> Run:
    """`python -m module *args` from the repository root, stopped (with anything it started) after
    `timeout` seconds. A pytest run writes its result records too."""
    args = [str(a) for a in args]
    with tempfile.TemporaryDirectory(prefix="suite-run-") as tmp:
        record = Path(tmp, "record.jsonl")
        extra = {"TUTORIAL_RECORD": str(record), PARENT: str(os.getpid())}  # ends with this worker
        if module == "pytest":
            args = ["-p", "tutorial.record", *args]
        process = subprocess.Popen(
            [sys.executable, "-m", module, *args],
            cwd=ROOT,
            env={k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")} | extra | (env or {}),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,  # its own process group: a stop takes anything it started too
        )
        try:
            out, err = process.communicate(stdin, timeout=timeout)
            code = process.returncode
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            out, err = process.communicate()
            what = f"\n[no result after {timeout:g} s: killed]"
            code, out, err = -1, out + what, err + what
        lines = record.read_text().splitlines() if record.exists() else []
    return Run([module, *args], code, out, err, [json.loads(line) for line in lines])
