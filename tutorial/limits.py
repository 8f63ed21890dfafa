"""The limits a grader sets on a step's run, applied by the run itself.

The grader (tutorial/runner.py) starts `python -m pytest` with the limits in its environment, and
the check harness applies them first thing, before MAX or torch is imported: no `preexec_fn`,
which the Python docs warn can deadlock in a process with threads (grade-class runs steps from a
thread pool). A run also ends itself, and everything in its process group, when the grader that
started it is gone (killed with SIGKILL, say), instead of running on for up to the time limit.
"""

from __future__ import annotations

import os
import resource
import signal
import threading
import time

MEMORY = "TUTORIAL_MEMORY_GIB"  # the address-space limit, in GiB; 0 or unset: none
PARENT = "TUTORIAL_PARENT_PID"  # the grader's pid: when it is no longer our parent, stop


def for_child(memory_gib: float) -> dict[str, str]:
    """The environment entries that carry the limits to a step's run."""
    return {MEMORY: f"{memory_gib:g}", PARENT: str(os.getpid())}


def apply_from_environment() -> None:
    """In the run, at start: no core files, the memory limit, and stop with the grader."""
    if not (os.environ.get(MEMORY) or os.environ.get(PARENT)):
        return  # a learner's own run: no limits
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))  # an abort leaves no core file behind
    if gib := float(os.environ.get(MEMORY) or 0):
        limit = int(gib * 2**30)
        try:
            resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
        except (ValueError, OSError):  # macOS does not enforce RLIMIT_AS
            pass
    if parent := int(os.environ.get(PARENT) or 0):
        threading.Thread(target=_end_with, args=(parent,), name="end-with-grader", daemon=True).start()


def _end_with(parent: int) -> None:
    while os.getppid() == parent:  # reparented (to init or a subreaper) once the grader is gone, maybe already
        time.sleep(1.0)
    os.killpg(os.getpgrp(), signal.SIGKILL)  # the run is its own process group (start_new_session)
