"""The steps of the course, in order, read from tutorial/course.toml. Every tool and test reads this module.

course.toml is the one registry: each step's number, title, estimated minutes, whether `generate`
builds it into the model, and its two text hints; one rule there names every step's files and
pixi task. `python -m tutorial dev sync` writes the files that list the steps from it.
"""

from __future__ import annotations

import tomllib
from dataclasses import MISSING, dataclass, fields
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
REGISTRY = ROOT / "tutorial" / "course.toml"

_TOML = tomllib.loads(REGISTRY.read_text())
RULES: dict[str, str] = _TOML["files"]  # stub, solution, test, chapter, task: format strings of n


def stub_path(n: int) -> Path:
    return ROOT / RULES["stub"].format(n=n)


def solution_path(n: int) -> Path:
    return ROOT / RULES["solution"].format(n=n)


def test_path(n: int) -> Path:
    return ROOT / RULES["test"].format(n=n)


def chapter_path(n: int) -> Path:
    return ROOT / RULES["chapter"].format(n=n)


def task(n: int) -> str:
    """The pixi task that checks step n: `pixi run sNN`."""
    return RULES["task"].format(n=n)


@dataclass(frozen=True)
class Step:
    """One [[step]] table of course.toml."""

    number: int
    title: str
    minutes: int  # an estimate of a learner's time for the step, not a measurement
    model: bool  # a layer of the model or its generation loop: `pixi run generate` builds it
    nudge: str = ""  # hint level 1
    api: str = ""  # hint level 2

    @property
    def stub(self) -> Path:
        return stub_path(self.number)

    @property
    def solution(self) -> Path:
        return solution_path(self.number)

    @property
    def test(self) -> Path:
        return test_path(self.number)

    @property
    def chapter(self) -> Path:
        return chapter_path(self.number)

    @property
    def task(self) -> str:
        return task(self.number)

    @property
    def files(self) -> tuple[Path, ...]:
        return self.stub, self.solution, self.test, self.chapter


def _read(tables: list[dict]) -> dict[int, Step]:
    """The [[step]] tables as Steps, refusing a malformed registry with a one-line reason."""
    types = {f.name: {"int": int, "str": str, "bool": bool}[f.type] for f in fields(Step)}
    required = {f.name for f in fields(Step) if f.default is MISSING}
    steps = {}
    for i, table in enumerate(tables, 1):
        where = f"tutorial/{REGISTRY.name}: [[step]] #{i}"
        if unknown := set(table) - set(types):
            raise ValueError(f"{where} has unknown keys {sorted(unknown)}; a step has {sorted(types)}")
        if missing := required - set(table):
            raise ValueError(f"{where} lacks {sorted(missing)}")
        for key, value in table.items():
            if type(value) is not types[key]:
                raise ValueError(f"{where}: {key} = {value!r} is not of type {types[key].__name__}")
        if table["number"] != i:
            raise ValueError(f"{where} says number = {table['number']}: steps count from 1, in order, with no gaps")
        steps[i] = Step(**table)
    return steps


STEPS: dict[int, Step] = _read(_TOML["step"])  # number -> Step, in the course's order
TITLES: dict[int, str] = {n: step.title for n, step in STEPS.items()}


def minutes(n: int) -> int:
    """The registry's estimate of a learner's minutes for step n."""
    return STEPS[n].minutes


def hints(n: int) -> dict[str, str]:
    """Step n's text hints, {"nudge": ..., "api": ...}, without the ones it has none of yet (a new dict)."""
    step = STEPS.get(n)
    return {k: v for k, v in (("nudge", step.nudge), ("api", step.api)) if v} if step else {}


def model_steps() -> list[int]:
    """The steps `pixi run generate` builds the model from (steps 1-12; 13 is an optimization)."""
    return [n for n, step in STEPS.items() if step.model]


def built() -> list[int]:
    """The steps that exist so far (a stub and a test), in order."""
    return [n for n in STEPS if stub_path(n).exists() and test_path(n).exists()]


def next_step(n: int) -> int | None:
    later = [m for m in built() if m > n]
    return later[0] if later else None
