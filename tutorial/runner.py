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
import signal
import subprocess
import sys
import tempfile
import threading
import time
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

from tutorial import explain, limits
from tutorial.course import ROOT, test_path
from tutorial.state import SETTINGS, STATE, Status


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
        return _judge(
            n,
            events(record),
            process.returncode,
            timed_out,
            seconds,
            memory_gib,
            round(time.monotonic() - start, 2),
            "\n".join(output.read_text(errors="replace").splitlines()[-20:]),
        )


def _stop(process: subprocess.Popen, first=signal.SIGABRT) -> None:
    """SIGABRT first, so pytest's faulthandler prints the stacks into the output a grade keeps (its last
    lines, for a maintainer); SIGKILL if that is not enough."""
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


def _stopped_at(events: list[dict]) -> str:
    """Where the last check to start was last seen running the code under check: the watchdog's last "at"
    note after its "start" (tutorial/record.py), if it was in that code then; else nothing."""
    last_start = max((i for i, e in enumerate(events) if e["event"] == "start"), default=len(events))
    note = next((e for e in reversed(events[last_start:]) if e["event"] == "at"), None)
    return explain.stopped_at(note["at"], note["code"]) if note and note["at"] else ""


def _judge(n, events, returncode, timed_out, seconds, memory_gib, elapsed, tail) -> StepRun:
    session = next((e for e in events if e["event"] == "session"), {})
    collected = next((e["checks"] for e in events if e["event"] == "collected"), None)
    results = {e["check"]: e for e in events if e["event"] == "result"}
    running = _running(events)
    why = explain.run_ended(returncode, seconds if timed_out else None)
    status = Status.TIMED_OUT if timed_out else Status.CRASHED
    # Killed at the time limit, the run names the line its watchdog last saw the check's code on. A crash
    # names only the check: a note can be a second old, and a crash's line is in no record.
    stopped = _stopped_at(events) if timed_out else ""
    if collected is None:
        last = tail.strip().splitlines()[-1] if tail.strip() else ""
        message = why if timed_out or returncode < 0 else explain.not_started(last)
        return StepRun(n, Status.TIMED_OUT if timed_out else Status.ERROR, message, [], elapsed, session, tail)

    if not collected:
        return StepRun(n, Status.ERROR, explain.NO_CHECKS, [], elapsed, session, tail)
    hung = next((c for c in collected if results.get(c, {}).get("timed_out")), None)
    if hung and not timed_out and returncode >= 0:  # the check harness stopped the run at its first time-out
        name, message = Check(hung, "").name, results[hung]["message"]
        checks = [
            Check(
                c, Status.TIMED_OUT if c == hung else results[c]["status"], results[c]["message"], results[c]["seconds"]
            )
            if c in results
            else Check(c, Status.NOT_RUN, explain.not_run_after(name))
            for c in collected
        ]
        return StepRun(n, Status.TIMED_OUT, f"{name}: {message}", checks, elapsed, session, tail)
    checks, name = [], Check(running, "").name if running else None
    for check in collected:
        if check in results:
            r = results[check]
            checks.append(Check(check, r["status"], r["message"], r["seconds"]))
        elif check == running:
            checks.append(Check(check, status, why + stopped))
        else:
            checks.append(Check(check, Status.NOT_RUN, explain.not_run(explain.during(why, name))))
    first = next((c for c in checks if c.status not in (Status.PASSED, Status.SKIPPED)), None)
    if len(results) < len(collected) or timed_out:
        return StepRun(n, status, explain.during(why, name, stopped), checks, elapsed, session, tail)
    if first is None:
        return StepRun(n, Status.PASSED, "", checks, elapsed, session, tail)
    message = f"{first.name}: {first.message}"
    if any("MemoryError" in c.message for c in checks):
        return StepRun(
            n, Status.OUT_OF_MEMORY, explain.out_of_memory(message, memory_gib), checks, elapsed, session, tail
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
