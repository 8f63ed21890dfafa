"""pytest plugin (`-p tutorial.record`): every check's outcome as a JSON line in $TUTORIAL_RECORD.

Lines are flushed as they happen, so the process running pytest can show
which check is running, and still knows what finished if pytest dies
mid-check (a segfault, a hang it kills, the memory limit). The events:

    {"event": "session", "reference": ..., "device": ..., "tolerance": ..., "max": "25.7.0"}
    {"event": "collected", "checks": ["test_..."], "files": ["test_step_05.py"]}
    {"event": "start", "check": "test_lookup_matches_hf"}
    {"event": "at", "at": "steps/step_05.py:27", "code": "while True:"}   (null "at": not in that code)
    {"event": "result", "check": ..., "status": ..., "message": ..., "seconds": ..., "timed_out": true?}

"at" is the hang watchdog's note of where the code under check runs (`at`), so that a run killed
from outside still says where its check was.
"""

import json
import os
import threading
from pathlib import Path
from importlib.metadata import version

from tutorial import checks
from tutorial.state import Status
from tutorial.reference import reference

FILE = None
RESULTS: dict[str, dict] = {}
LOCK = threading.Lock()  # the watchdog's thread writes notes too: one whole line at a time


def emit(**event) -> None:
    if FILE:
        with LOCK:
            FILE.write(json.dumps(event) + "\n")
            FILE.flush()


def at(place: str | None, code: str) -> None:
    """The watchdog's note: the code under check is at `place` ("steps/step_05.py:27"), running `code`;
    None: it is not running now."""
    emit(event="at", at=place, code=code)


def check_id(nodeid: str) -> str:
    """The test as named in its file: "test_default_matches_hf[n_embd]"."""
    return nodeid.split("::")[-1]


def pytest_configure(config):
    global FILE
    if path := os.environ.get("TUTORIAL_RECORD"):
        FILE = open(path, "a")


def pytest_sessionstart(session):
    emit(
        event="session",
        reference=reference().name,
        device=checks.SESSION.device,
        tolerance=str(checks.tolerance()),
        max=version("max"),
    )


def pytest_collection_finish(session):
    emit(
        event="collected",
        checks=[check_id(item.nodeid) for item in session.items],
        files=[Path(item.nodeid.split("::")[0]).name for item in session.items],  # each check's test file
    )


def pytest_runtest_logstart(nodeid, location):
    emit(event="start", check=check_id(nodeid))


def pytest_runtest_logreport(report):
    """Phases add up: setup (imports the learner's file), call, teardown; the first failure is kept."""
    result = RESULTS.setdefault(report.nodeid, {"status": Status.PASSED, "message": "", "seconds": 0.0})
    result["seconds"] += report.duration
    if result["status"] == Status.PASSED and not report.passed:
        result["status"] = report.outcome
        if report.skipped and isinstance(report.longrepr, tuple):
            result["message"] = report.longrepr[2]
        else:
            result["message"] = (
                getattr(report, "one_line", None) or (str(report.longrepr).strip().splitlines() or [""])[-1]
            )
        if getattr(report, "timed_out", False):  # tutorial.pytest_plugin stopped the run on it
            result["timed_out"] = True


def pytest_runtest_logfinish(nodeid, location):
    result = RESULTS.pop(nodeid)
    result["seconds"] = round(result["seconds"], 3)
    emit(event="result", check=check_id(nodeid), **result)
