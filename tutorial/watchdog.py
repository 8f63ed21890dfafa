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
"""

from __future__ import annotations

import ctypes
import linecache
import sys
import threading
import time
from pathlib import Path
from types import FrameType

from tutorial.maxprivate import compiler_code

SAMPLE = 0.2  # seconds between looks at the stack
LONGEST = 1.0  # seconds one look may count for at most


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
    def __init__(self, limit: float, folders: list[Path], learner: Path | None = None):
        self.limit = limit
        # the code under check, as spelled and resolved (a frame's file name is the path it was imported by)
        self.folders = tuple({str(p) + "/" for f in folders for p in (Path(f).absolute(), Path(f).resolve())})
        self.learner = learner  # the learner's file: named first when on the stack
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
        self.spent = 0.0

    def own(self, frame: FrameType | None) -> FrameType | None:
        """The innermost frame of the code under check, if it is running itself: None when none is on
        the stack, or when an import runs above it."""
        while frame is not None:
            name = frame.f_code.co_filename
            if name.startswith(self.folders):
                return frame
            if name.startswith("<frozen importlib"):
                return None
            frame = frame.f_back
        return None

    def watch(self) -> None:
        last = time.monotonic()
        while not self.stopped.wait(SAMPLE):
            now = time.monotonic()
            interval, last = min(now - last, LONGEST), now
            own = self.own(sys._current_frames().get(self.main))
            if own is None or compiling(compiler_code()):
                continue
            self.spent += interval
            if self.spent >= self.limit:
                message = f"timed out: your code ran for {self.limit:g} s without returning{self.where(own)}"
                raise_in(self.main, type("Hung", (Hung,), {"message": message}))
                self.spent -= 1.0  # again after another second, if their code swallowed it

    def where(self, own: FrameType) -> str:
        """ ", stopped at steps/step_05.py:27 (`while True:`)": the learner's innermost line."""
        from tutorial.explain import shown

        frame, mine = own, own
        while self.learner and frame is not None:
            if Path(frame.f_code.co_filename).resolve() == Path(self.learner).resolve():
                mine = frame
                break
            frame = frame.f_back
        line = linecache.getline(mine.f_code.co_filename, mine.f_lineno).strip()
        code = f" (`{line}`)" if line else ""
        return f", stopped at {shown(Path(mine.f_code.co_filename))}:{mine.f_lineno}{code}"
