"""A hang in the learner's code, named in seconds, however long MAX compiles.

pytest-timeout's limit is wall time, so it must cover a cold compile (a minute or more per graph
on a busy machine): it stays as the backstop, minutes long. This watchdog counts only the time the
code under check itself runs. A thread looks at the main thread's stack every `SAMPLE` seconds
and adds that interval when

- a frame of the code under check (the `--use` directory, or `solutions/`) is on the stack,
- no import is running above that frame (importing MAX or torch is not the learner's time), and
- no thread is inside MAX's compiler (`maxprivate.compiler_code`: every graph compile goes through
  it: `Module.compile`, an eager tensor's realization, the harness's own graphs).

MAX 25.7 releases the GIL while it compiles, so samples go on meanwhile and see the compiler. An
interval between two looks longer than `LONGEST` (the thread did not run: a busy machine, or a C call
holding the GIL) counts as `LONGEST`.

When the count passes the limit, the watchdog raises `Hung` in the main thread, naming the line
the learner's code was on. It does so with `PyThreadState_SetAsyncExc` (Python's C API for exactly
this), not with a signal: MAX's compiler installs signal handlers of its own when it first compiles,
and a Python handler for SIGUSR1 set before that never ran afterwards (MAX 25.7, cold cache).
The count starts over at every check (`reset`).

As it looks, it also notes the line the code under check is on (`note`: the result record's "at"
events, tutorial/record.py) whenever that changes, at most once a `NOTE`: a run that the grader
kills at its own time limit, past any Hung, still names the line its check was on.
"""

from __future__ import annotations

import ctypes
import linecache
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

from tutorial import explain
from tutorial.maxprivate import compiler_code

SAMPLE = 0.2  # seconds between looks at the stack
LONGEST = 1.0  # seconds one look may count for at most
NOTE = 1.0  # seconds between two notes of where the code under check runs, at least
NOWHERE = (None, "")  # a note's (place, code) when the code under check is not running


class Hung(BaseException):
    """The code under check ran past the limit. Not an Exception: a learner's `except Exception`
    inside the loop must not swallow it. Raised as a class (the C API raises it with no arguments):
    each hang's subclass carries its message."""

    message = ""

    def __str__(self) -> str:
        return self.message


def raise_in(thread: int, error: type[BaseException]) -> None:
    """Raise `error` in the thread with that ident, at its next Python instruction."""
    set_async = ctypes.pythonapi.PyThreadState_SetAsyncExc
    set_async.argtypes, set_async.restype = (ctypes.c_ulong, ctypes.py_object), ctypes.c_int
    set_async(thread, error)


def stack(thread: int) -> list[tuple[str, int]]:
    """(file name, line) of each frame on the thread's stack, innermost first: plain values.

    No frame object outlives this call. One held while the watchdog does I/O (which lets the main
    thread run) keeps alive the locals of a function that returns meanwhile; their MAX tensors then
    join the next eager graph as outputs, and MAX compiles a graph it has never seen. Measured: a
    broken step 10's check compiled anew, 22 s instead of 2 s, whenever another check ran beside it."""
    frame, found = sys._current_frames().get(thread), []
    while frame is not None:
        found.append((frame.f_code.co_filename, frame.f_lineno))
        frame = frame.f_back
    return found


def compiling(compiler) -> bool:
    """Whether any thread is inside MAX's compiler now."""
    if compiler is None:
        return False
    for frame in sys._current_frames().values():
        while frame is not None:
            if frame.f_code is compiler:
                return True
            frame = frame.f_back
    return False


class Watchdog:
    def __init__(self, limit: float, folders: list[Path], note: Callable[[str | None, str], None] | None = None):
        self.limit = limit
        # the code under check, as spelled and resolved (a frame's file name is the path it was imported by)
        self.folders = tuple({str(p) + "/" for f in folders for p in (Path(f).absolute(), Path(f).resolve())})
        self.note = note
        self.noted, self.noted_at = NOWHERE, -NOTE
        self.spent = 0.0
        self.main = threading.main_thread().ident
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self.watch, name="hang watchdog", daemon=True)

    def start(self) -> Watchdog:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.stopped.set()
        self.thread.join()

    def reset(self) -> None:
        """A check starts: its time counts from 0, and its first sight of the code under check is noted."""
        self.spent = 0.0
        self.noted, self.noted_at = NOWHERE, -NOTE

    def own(self, stack: list[tuple[str, int]]) -> int | None:
        """Where in `stack` the innermost frame of the code under check is, if it is running itself: None
        when none is on the stack, or when an import runs above it."""
        for at, (name, _) in enumerate(stack):
            if name.startswith(self.folders):
                return at
            if name.startswith("<frozen importlib"):
                return None
        return None

    def watch(self) -> None:
        last = time.monotonic()
        while not self.stopped.wait(SAMPLE):
            now = time.monotonic()
            interval, last = min(now - last, LONGEST), now
            main = stack(self.main)
            own = self.own(main)
            if self.note and now - self.noted_at >= NOTE:
                place = NOWHERE if own is None else self.place(main[own:])
                if place != self.noted:
                    self.note(*place)
                    self.noted, self.noted_at = place, now
            if own is None or compiling(compiler_code()):
                continue
            self.spent += interval
            if self.spent >= self.limit:
                message = explain.ran_too_long(self.limit, explain.stopped_at(*self.place(main[own:])))
                raise_in(self.main, type("Hung", (Hung,), {"message": message}))
                self.spent -= 1.0  # again after another second, if their code swallowed it

    def place(self, stack: list[tuple[str, int]]) -> tuple[str, str]:
        """("steps/step_05.py:27", "while True:"): the innermost line of the learner's file in `stack`
        (explain.UNDER_CHECK), else its first (the code under check's)."""
        learner = explain.UNDER_CHECK.resolve() if explain.UNDER_CHECK else None
        name, line = next(((n, i) for n, i in stack if learner and Path(n).resolve() == learner), stack[0])
        return explain.shown_line(name, line), linecache.getline(name, line).strip()
