"""A whole command, run for a maintainers' test: `python -m MODULE ARGS` in a process of its own.

The suite runs on pytest-xdist (`-n auto`, CONTRIBUTING.md), so a test that runs a command
waits for it while the other workers go on. Each run is a new process: nothing a broken file did
can leak into the next run. It is forked from a forkserver (the standard library's, one per
worker) that has numpy, pytest and MAX's graph API imported (tests/support/preload.py): the
suite runs about 150 short commands, and a fresh `python -m` spent 0.35 s of each importing them.
A run with its own stdin or environment starts as a fresh `python -m` instead: what a library
reads from the environment at import must see it.

A pytest run is given `-p tutorial.record`, and its checks' outcomes come back as records
(`Run.failures`): the result channel the grader reads (tutorial/record.py), not scraped text.
"""

from __future__ import annotations

import functools
import multiprocessing
import os
import runpy
import signal
import subprocess
import sys
import tempfile
import traceback
from contextlib import suppress
from dataclasses import dataclass, field
from pathlib import Path

from tutorial.course import ROOT
from tutorial.limits import PARENT
from tutorial.runner import events
from tutorial.state import Status


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
            if r.get("event") == "result" and r["status"] == Status.FAILED  # setup errors are "failed" too
        }


def command(module: str, args: list, *, timeout: float, stdin: str = "", env: dict | None = None) -> Run:
    """`python -m module *args` from the repository root, stopped (with anything it started) after
    `timeout` seconds. A pytest run writes its result records too."""
    args = [str(a) for a in args]
    if module == "pytest":
        args = ["-p", "tutorial.record", *args]
    with tempfile.TemporaryDirectory(prefix="suite-run-") as tmp:
        record = Path(tmp, "record.jsonl")
        environ = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
        environ |= {"TUTORIAL_RECORD": str(record)} | (env or {})
        if stdin or env:
            code, out, err = fresh(module, args, environ, stdin, timeout)
        else:
            code, out, err = forked(module, args, environ, Path(tmp), timeout)
        return Run([module, *args], code, out, err, events(record))


def fresh(module: str, args: list[str], environ: dict, stdin: str, timeout: float) -> tuple[int, str, str]:
    process = subprocess.Popen(
        [sys.executable, "-m", module, *args],
        cwd=ROOT,
        env=environ | {PARENT: str(os.getpid())},  # it ends with this worker
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # its own process group: a stop takes anything it started too
    )
    try:
        out, err = process.communicate(stdin, timeout=timeout)
        return process.returncode, out, err
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        return killed(timeout, *process.communicate())


@functools.cache
def forkserver() -> multiprocessing.context.ForkServerContext:
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(["tests.support.preload"])
    return context


def forked(module: str, args: list[str], environ: dict, folder: Path, timeout: float) -> tuple[int, str, str]:
    out, err = folder / "stdout.txt", folder / "stderr.txt"
    child = forkserver().Process(target=run_as_main, args=(module, args, environ, out, err))
    child.start()
    child.join(timeout)
    code = child.exitcode
    with suppress(ProcessLookupError):  # the run, or what it left running
        os.killpg(child.pid, signal.SIGKILL)
    child.join()
    printed = [p.read_text(errors="replace") if p.exists() else "" for p in (out, err)]
    return killed(timeout, *printed) if code is None else (code, *printed)


def killed(timeout: float, out: str, err: str) -> tuple[int, str, str]:
    """A run stopped at its time limit: exit status -1, and its output so far saying so."""
    what = f"\n[no result after {timeout:g} s: killed]"
    return -1, out + what, err + what


def run_as_main(module: str, args: list[str], environ: dict, out: Path, err: Path) -> None:
    """In the forked child: what `python -m module *args` does, with `environ`, output to the files."""
    os.setsid()  # its own process group: a stop takes anything it started too
    os.environ.clear()
    os.environ.update(environ | {PARENT: str(os.getppid())})  # it ends with the forkserver, and so the worker
    os.chdir(ROOT)
    for fd, path in ((1, out), (2, err)):
        file = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
        os.dup2(file, fd)
        os.close(file)
    sys.argv = [module, *args]
    try:
        if module == "pytest":
            import pytest

            code = int(pytest.main(args))
        else:
            runpy.run_module(module, run_name="__main__", alter_sys=True)
            code = 0
    except SystemExit as exit:  # as the interpreter turns it into an exit status
        code = exit.code if isinstance(exit.code, int) else 0 if exit.code is None else 1
        if not isinstance(exit.code, int | None):
            print(exit.code, file=sys.stderr)
    except BaseException:
        traceback.print_exc()
        code = 1
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
