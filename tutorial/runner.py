"""Run one step's checks in a subprocess and read back every check.

`progress`, `watch` and `grade` all call `run_step`: the same pytest command
as `pixi run sNN` (so no tool can judge a step differently from its check),
plus the `tutorial.record` plugin, a time limit and a memory limit
(tutorial/grading.toml). A crash, hang or memory blow-up ends only that
subprocess, and the checks that finished before it keep their results.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

from tutorial.course import ROOT, test_path
from tutorial import limits
from tutorial.impl import Source
from tutorial.state import SETTINGS, STATE, Status

SIGNALS = {
    "SIGABRT": "abort(): os.abort(), or a C++ error such as running out of memory",
    "SIGSEGV": "a segmentation fault",
    "SIGKILL": "killed from outside, often for using too much memory",
}


@dataclass
class Check:
    id: str  # the test as named in its file: "test_default_matches_hf[n_embd]"
    status: str  # passed, failed, skipped, crashed, timed out, not run
    message: str = ""
    seconds: float = 0.0

    @property
    def name(self) -> str:
        """As the learner's check prints it: "default matches hf [n_embd]"."""
        base, _, case = self.id.partition("[")
        return base.removeprefix("test_").replace("_", " ") + (f" [{case}" if case else "")


@dataclass
class StepRun:
    step: int
    status: str  # passed, failed, out of memory, crashed, timed out, error
    message: str  # the first failing check's line, or why the process stopped
    checks: list[Check]
    seconds: float
    session: dict  # reference, device, tolerance and MAX version, as the checks saw them
    output: str  # the last lines pytest printed


def pytest_command(n: int, use: str = "steps", device: str = "cpu") -> list[str]:
    """What `pixi run sNN` runs (from the repo root), with --use and --device made explicit."""
    return [sys.executable, "-m", "pytest", str(test_path(n).relative_to(ROOT)), "--use", str(use), "--device", device]


# Every step process running now, by process group: each runs in its own session (so a timeout can
# kill pytest and all it started), which also means a signal to the grader never reaches them.
_RUNNING: dict[int, subprocess.Popen] = {}
_LOCK = threading.RLock()  # reentrant: stop_on_signals' handler may interrupt a holder on the main thread
STOPPING = threading.Event()  # set by stop_all: no new step process starts after it


class Stopped(Exception):
    """The grader is being stopped (stop_all): this step's result is not a grade."""


def stop_all() -> None:
    """Kill every step process group this process started; threads running run_step raise Stopped."""
    with _LOCK:
        STOPPING.set()
        groups = list(_RUNNING)
    for group in groups:
        with suppress(ProcessLookupError, PermissionError):
            os.killpg(group, signal.SIGKILL)


def stop_on_signals() -> None:
    """SIGTERM and Ctrl-C (SIGINT) kill the step processes first, then end the grader (128 + signal)."""

    def handler(signum, frame):
        stop_all()
        if signum == signal.SIGINT:
            raise KeyboardInterrupt
        raise SystemExit(128 + signum)

    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, handler)


def run_step(
    n: int,
    use: str = "steps",
    *,
    seconds: float | None = None,
    memory_gib: float | None = None,
    import_seconds: float | None = None,
    hang_seconds: float | None = None,
    device: str = "cpu",
    on_check=None,
) -> StepRun:
    """`python -m pytest tests/test_step_NN.py --use USE`, limited; on_check(name) hears each check start."""
    seconds = SETTINGS["limits"]["seconds"] if seconds is None else seconds
    memory_gib = SETTINGS["limits"]["memory_gib"] if memory_gib is None else memory_gib
    command = pytest_command(n, use, device) + ["-p", "tutorial.record", "-p", "no:cacheprovider"]
    if import_seconds is not None:
        command += ["--import-timeout", f"{import_seconds:g}"]
    if hang_seconds is not None:
        command += ["--hang-timeout", f"{hang_seconds:g}"]
    with tempfile.TemporaryDirectory(prefix="tutorial-run-") as tmp:
        record, output = Path(tmp, "record.jsonl"), Path(tmp, "output.txt")
        env = {**os.environ, "TUTORIAL_RECORD": str(record), "PYTHONDONTWRITEBYTECODE": "1"}
        env |= limits.for_child(memory_gib)  # the run applies them itself (tutorial/limits.py)
        start, timed_out, announced = time.monotonic(), False, None
        process = None
        try:
            with output.open("w") as out, _LOCK:
                if STOPPING.is_set():
                    raise Stopped
                process = subprocess.Popen(
                    command,
                    cwd=ROOT,
                    env=env,
                    stdin=subprocess.DEVNULL,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,  # its own process group: a stop takes anything it started too
                )
                _RUNNING[process.pid] = process  # its pid is its process group's id
            while process.poll() is None:
                time.sleep(0.2)
                running = _running(events(record))
                if on_check and running != announced and running:
                    on_check(Check(running, Status.RUNNING).name)
                    announced = running
                if time.monotonic() - start > seconds:
                    _stop(process)
                    timed_out = True
        except BaseException:  # Ctrl-C or SIGTERM (stop_on_signals): its own session gets no signal, so stop it
            if process is not None:
                _stop(process, signal.SIGKILL)
            raise
        finally:
            if process is not None:
                with _LOCK:
                    _RUNNING.pop(process.pid, None)
        if STOPPING.is_set():  # killed by stop_all (from another thread): not the learner's crash
            raise Stopped
        printed = output.read_text(errors="replace")
        run = _judge(
            n,
            events(record),
            process.returncode,
            timed_out,
            seconds,
            memory_gib,
            round(time.monotonic() - start, 2),
            "\n".join(printed.splitlines()[-20:]),
        )
        if run.status in (Status.CRASHED, Status.TIMED_OUT):  # faulthandler printed the stack: name the learner's line
            source = Source(use)
            line = re.search(rf'File "{re.escape(str(source.path(n)))}", line (\d+)', printed)
            if line and source.shown(n) not in run.message:  # the check harness may have named it already
                run.message += f", at {source.shown(n)}:{line[1]}"
        return run


def _stop(process: subprocess.Popen, first=signal.SIGABRT) -> None:
    """SIGABRT first, so pytest's faulthandler prints where it hung; SIGKILL if that is not enough."""
    for sig in (first, signal.SIGKILL):
        with suppress(ProcessLookupError):
            os.killpg(process.pid, sig)  # its own session: pytest and anything it started
        with suppress(subprocess.TimeoutExpired):
            process.wait(timeout=5)
            return
    process.wait()


def events(record: Path) -> list[dict]:
    """The result record's events (tutorial/record.py), one JSON object a line."""
    try:
        lines = record.read_text().splitlines()
    except FileNotFoundError:
        return []
    return [json.loads(line) for line in lines if line.endswith("}")]  # a line cut short by a crash is skipped


def _running(events: list[dict]) -> str | None:
    started = [e["check"] for e in events if e["event"] == "start"]
    finished = {e["check"] for e in events if e["event"] == "result"}
    return started[-1] if started and started[-1] not in finished else None


def _judge(n, events, returncode, timed_out, seconds, memory_gib, elapsed, tail) -> StepRun:
    session = next((e for e in events if e["event"] == "session"), {})
    collected = next((e["checks"] for e in events if e["event"] == "collected"), None)
    results = {e["check"]: e for e in events if e["event"] == "result"}
    running = _running(events)
    if timed_out:
        why, status = f"no result within the time limit ({seconds:g} s)", Status.TIMED_OUT
    elif returncode < 0:
        name = signal.Signals(-returncode).name
        why, status = f"the process died of {name}" + (f" ({SIGNALS[name]})" if name in SIGNALS else ""), Status.CRASHED
    else:
        why, status = f"the process exited with code {returncode} in the middle of the checks", Status.CRASHED
    if collected is None:
        last = tail.strip().splitlines()[-1] if tail.strip() else "no output"
        message = why if timed_out or returncode < 0 else f"pytest did not get to the checks: {last}"
        return StepRun(n, Status.TIMED_OUT if timed_out else Status.ERROR, message, [], elapsed, session, tail)

    if not collected:
        return StepRun(n, Status.ERROR, "pytest collected no checks", [], elapsed, session, tail)
    hung = next((c for c in collected if results.get(c, {}).get("timed_out")), None)
    if hung and not timed_out and returncode >= 0:  # the check harness stopped the run at its first time-out
        name, message = Check(hung, "").name, results[hung]["message"]
        checks = [
            Check(
                c, Status.TIMED_OUT if c == hung else results[c]["status"], results[c]["message"], results[c]["seconds"]
            )
            if c in results
            else Check(c, Status.NOT_RUN, f"not run: the run stopped when '{name}' timed out")
            for c in collected
        ]
        return StepRun(n, Status.TIMED_OUT, f"{name}: {message}", checks, elapsed, session, tail)
    checks = []
    for check in collected:
        if check in results:
            r = results[check]
            checks.append(Check(check, r["status"], r["message"], r["seconds"]))
        elif check == running:
            checks.append(Check(check, status, why))
        else:
            stopped = f" during '{Check(running, '').name}'" if running else ""
            checks.append(Check(check, Status.NOT_RUN, f"not run: {why}{stopped}"))
    first = next((c for c in checks if c.status not in (Status.PASSED, Status.SKIPPED)), None)
    if len(results) < len(collected) or timed_out:
        where = f" during '{Check(running, '').name}'" if running else ""
        return StepRun(n, status, why + where, checks, elapsed, session, tail)
    if first is None:
        return StepRun(n, Status.PASSED, "", checks, elapsed, session, tail)
    message = f"{first.name}: {first.message}"
    if any("MemoryError" in c.message for c in checks):
        return StepRun(
            n, Status.OUT_OF_MEMORY, f"{message} (memory limit {memory_gib:g} GiB)", checks, elapsed, session, tail
        )
    return StepRun(n, Status.FAILED, message, checks, elapsed, session, tail)


# -- which steps the learner has finished, so `watch` need not re-check them ----------------
def _fingerprint(n: int, path: Path) -> str:
    return hashlib.sha256(path.read_bytes() + test_path(n).read_bytes()).hexdigest()


def remember(n: int, path: Path, passed: bool) -> None:
    """Record that the file at `path` passes step n's checks (or forget it)."""
    file = STATE / "done.json"
    done = json.loads(file.read_text()) if file.exists() else {}
    if passed:
        done[f"s{n:02d}"] = _fingerprint(n, path)
    else:
        done.pop(f"s{n:02d}", None)
    STATE.mkdir(parents=True, exist_ok=True)
    file.write_text(json.dumps(done, indent=1) + "\n")


def known_done(n: int, path: Path) -> bool:
    file = STATE / "done.json"
    done = json.loads(file.read_text()) if file.exists() else {}
    return path.exists() and done.get(f"s{n:02d}") == _fingerprint(n, path)


@contextmanager
def showing(console, label: str):
    """While a step runs: a live line naming it and its running check (cold compiles are slow)."""
    if not console.is_terminal:  # a log gets one line per step
        console.print(f"{label} …", highlight=False)
        yield lambda check: None
        return
    with console.status(f"{label} …") as status:
        yield lambda check: status.update(f"{label}: {check} … (a cold MAX compile takes a minute or more)")
