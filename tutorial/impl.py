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

import importlib.abc
import importlib.util
import re
import sys
from pathlib import Path
from types import ModuleType

from tutorial.course import solution_path, stub_path
from tutorial.explain import StepError, explain, shown


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

    def load(self, n: int, *, chain: bool = False) -> ModuleType:
        """Import step n from this source; a StepError says in one line why it failed."""
        path = self.path(n)
        if not path.exists():
            raise StepError(f"{self.shown(n)} does not exist")
        if chain:
            self._redirect_solutions()
        name = f"checked_step_{n:02d}" if not chain else f"solutions.solution_{n:02d}"
        if name in sys.modules:
            return sys.modules[name]
        spec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        try:
            spec.loader.exec_module(module)
        except BaseException as error:  # a learner's file may raise anything, even SystemExit
            del sys.modules[name]
            raise StepError(explain(error, path)) from error
        return module

    def _redirect_solutions(self) -> None:
        if self.use == "solutions" or any(isinstance(f, _Redirect) for f in sys.meta_path):
            return
        stale = [m for m in sys.modules if m.startswith("solutions.solution_")]
        if stale:
            raise RuntimeError(f"chain=True after {stale[0]} was imported: call it first")
        sys.meta_path.insert(0, _Redirect(self))


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
    return [n for n in steps if source.path(n).exists() and "# TODO" in source.path(n).read_text()]
