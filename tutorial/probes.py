"""Look inside a learner's composite module (steps 07-10) without extra graphs.

MAX builds one lazy graph and, when a value is read, compiles and runs it
for every tensor still alive. So a check can call several methods, keep the
results, and read them all for the price of one compile: `together`. A
`Spy` put in place of a sub-module keeps what it was given and what it gave
back; those tensors come out of the same graph as the module's output.
A check then walks HF's order of sub-layers and reports the first one
whose numbers leave HF's, naming a known mistake when the numbers match one.
"""

from __future__ import annotations

import re
from collections.abc import Callable

import numpy as np

from tutorial.checks import CheckFailure, numpy
from tutorial.explain import compiler_says, pointing_at


class Spy:
    """Stands in for a sub-module and records each call as (input, output)."""

    def __init__(self, inner: Callable, name: str):
        self.inner, self.name, self.calls = inner, name, []

    def __call__(self, x):
        out = self.inner(x)
        self.calls.append((x, out))
        return out

    def seen(self) -> tuple[np.ndarray, np.ndarray] | None:
        """The first call's (input, output) as numpy, or None if never called."""
        if not self.calls:
            return None
        x, out = self.calls[0]
        return numpy(x, f"the input of {self.name}"), numpy(out, self.name)


def spy_on(module, names: list[str], prefix: str = "") -> dict[str, Spy]:
    """Replace each named attribute of `module` (after loading weights) by a Spy."""
    spies = {}
    for name in names:
        spies[name] = Spy(getattr(module, name), prefix + name)
        setattr(module, name, spies[name])
    return spies


def together(pieces: dict[str, tuple[str, Callable[[], object]]]) -> dict[str, np.ndarray | CheckFailure]:
    """Call every piece, then read them all: one graph, one compile.

    `pieces` maps a name to (what it is called in a message, a function returning a Tensor).
    A piece that fails keeps its own one-line CheckFailure; the others still run.
    If MAX cannot compile the graph, every piece fails with what MAX said.
    """
    values = {}
    for name, (what, piece) in pieces.items():
        try:
            values[name] = what, piece()
        except CheckFailure as error:
            values[name] = what, error
    results = {}
    for name, (what, value) in values.items():
        try:
            results[name] = value if isinstance(value, CheckFailure) else numpy(value, what)
        except CheckFailure as error:
            results[name] = CheckFailure(compiler_says(error, what))
    return results


def result(results: dict, name: str, todo: int | None = None) -> np.ndarray:
    """A piece's numbers, or its failure raised (pointing at TODO `todo` if it does not name a TODO)."""
    value = results[name]
    if isinstance(value, CheckFailure):
        message = str(value)
        raise CheckFailure(message if re.search(r"TODO \d", message) else pointing_at(message, todo))
    return value
