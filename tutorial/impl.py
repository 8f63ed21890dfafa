"""Which code a command checks or runs.

`--use steps` (the default) is the learner's `steps/step_NN.py`,
`--use solutions` the reference `solutions/solution_NN.py`, and any other
value a directory of `step_NN.py` files (a submission to grade).

Step files import earlier steps as `solutions.solution_NN`. A check of one
step keeps those imports on the reference solutions, so a mistake is
reported where it was made. `chain=True` ("my whole model") redirects them
to the same source, so every layer is the learner's own.
"""

from __future__ import annotations

import hashlib
import importlib.abc
import importlib.util
import re
import signal
import sys
import threading
import time
import traceback
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType

from tutorial.course import solution_path, stub_path
from tutorial.todos import blocks
from tutorial.explain import MissingName, StepError, explain, import_timed_out, missing_name, shown, shown_line
from tutorial.watchdog import Hung


class Source:
    def __init__(self, use: str = "steps"):
        self.use = use
        if use not in ("steps", "solutions") and not Path(use).is_dir():
            raise StepError(f"--use {use}: not 'steps', 'solutions' or a directory of step_NN.py files")

    def path(self, n: int) -> Path:
        if self.use == "steps":
            return stub_path(n)
        if self.use == "solutions":
            return solution_path(n)
        return Path(self.use).resolve() / f"step_{n:02d}.py"

    def shown(self, n: int) -> str:
        """The path as a learner would type it."""
        return shown(self.path(n))

    def load(self, n: int, *, chain: bool = False, seconds: float | None = None) -> ModuleType:
        """Import step n from this source; a StepError says in one line why it failed. With `seconds`,
        an import still running after that long (a top-level endless loop) raises ImportTimedOut."""
        path = self.path(n)
        if not path.exists():
            raise StepError(f"{self.shown(n)} does not exist")
        if chain:
            self._redirect_solutions()
        # keyed by path: two folders' step NN in one process are two modules (a chain's imports are
        # `solutions.solution_NN`, which _redirect_solutions points at one folder per process)
        key = hashlib.sha1(str(path.resolve()).encode()).hexdigest()[:10]
        name = f"checked_step_{n:02d}_{key}" if not chain else f"solutions.solution_{n:02d}"
        if name in sys.modules:
            return sys.modules[name]
        spec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        try:
            with _time_limit(seconds):
                spec.loader.exec_module(module)
        except _Alarm as error:
            del sys.modules[name]
            lines = [f.lineno for f in traceback.extract_tb(error.__traceback__) if Path(f.filename) == path]
            raise ImportTimedOut(import_timed_out(seconds, shown_line(path, lines[-1]) if lines else "")) from error
        except Hung:  # the watchdog: a top-level endless loop, named by the check harness
            del sys.modules[name]
            raise
        except BaseException as error:  # a learner's file may raise anything, even SystemExit
            del sys.modules[name]
            raise StepError(explain(error, path)) from error
        module.__class__ = _Checked  # same module object (tests cache by id), with one-line missing names
        module.__step__ = n  # the step it is, for those lines (its name need not say: it is keyed by path)
        return module

    def _redirect_solutions(self) -> None:
        if self.use == "solutions" or any(isinstance(f, _Redirect) for f in sys.meta_path):
            return
        stale = [m for m in sys.modules if m.startswith("solutions.solution_")]
        if stale:
            raise RuntimeError(f"chain=True after {stale[0]} was imported: call it first")
        sys.meta_path.insert(0, _Redirect(self))


class ImportTimedOut(StepError):
    """The learner's file was still importing at the limit: the check harness ends the run on it."""


class _Alarm(BaseException):  # not an Exception: a learner's `except Exception` must not swallow it
    pass


@contextmanager
def _time_limit(seconds: float | None):
    """SIGALRM after `seconds`, on the main thread only (signals go there). pytest-timeout's signal
    method runs its own SIGALRM timer around each check: it is paused here and re-armed with what is
    left of it, and if it is the earlier of the two its own handler runs at its time."""
    if not seconds or threading.current_thread() is not threading.main_thread():
        yield
        return
    start, outer_handler = time.monotonic(), signal.getsignal(signal.SIGALRM)
    outer_left, outer_fired = signal.getitimer(signal.ITIMER_REAL)[0], []

    def on_alarm(signum, frame):
        elapsed = time.monotonic() - start
        if outer_left and elapsed < seconds and callable(outer_handler):
            outer_fired.append(True)
            signal.setitimer(signal.ITIMER_REAL, seconds - elapsed)  # ours still runs after it
            outer_handler(signum, frame)  # pytest-timeout: raises its own failure
            return
        raise _Alarm

    signal.signal(signal.SIGALRM, on_alarm)
    signal.setitimer(signal.ITIMER_REAL, min(seconds, outer_left) if outer_left else seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, outer_handler)
        if outer_left and not outer_fired:
            signal.setitimer(signal.ITIMER_REAL, max(outer_left - (time.monotonic() - start), 0.001))


class _Checked(ModuleType):
    """A loaded step file. A name it lacks (a class renamed, a function deleted, another step's code)
    fails as one line in the learner's terms, not as an AttributeError on the harness's module name."""

    def __getattr__(self, name: str):
        if name.startswith("__"):  # Python's and tools' own probes (__path__, __wrapped__ ...)
            raise AttributeError(name)
        raise MissingName(missing_name(Path(self.__file__), self.__step__, name))


class _Redirect(importlib.abc.MetaPathFinder):
    """Finds `solutions.solution_NN` in the chosen source, when it has that step."""

    def __init__(self, source: Source):
        self.source = source

    def find_spec(self, fullname, path=None, target=None):
        match = re.fullmatch(r"solutions\.solution_(\d\d)", fullname)
        if not match or not self.source.path(int(match[1])).exists():
            return None  # a submission without this step falls back to the reference
        return importlib.util.spec_from_file_location(fullname, self.source.path(int(match[1])))


def stub_steps(source: Source, steps: list[int]) -> list[int]:
    """Steps whose file in `source` still has TODO markers."""
    return [n for n in steps if source.path(n).exists() and blocks(source.path(n).read_text())]
