"""Mistakes learners make must be caught, with a message that points at the cause.

Each tests/test_step_NN.py lists MUTATIONS: an edit of the solution (a
missing scale, exact GELU, post-norm...), the check that must fail and a
piece of the line it must print. This applies each edit to a copy of the
solution and runs that one check on it, as `--use DIR` would for a student:
`python -m pytest tests/test_step_NN.py::check --use DIR`, in a long-lived
worker process that runs one mutant after another (tests/support/mutants.py).
"""

import hashlib
import importlib
import os
import shutil
import tempfile
from pathlib import Path

import pytest

from tests.conftest import background
from tutorial.course import built, solution_path
from tutorial.reference import prune
from tests.support.mutants import Job, Pool

CASES = [
    pytest.param(n, m, id=f"step{n:02d}-{m.name}")
    for n in built()
    for m in getattr(importlib.import_module(f"tests.test_step_{n:02d}"), "MUTATIONS", [])
]
TIMEOUT = 900  # seconds a mutant's check may take, cold compiles included, before its worker is killed
# Each mutant's file lives in a folder named by its text, the same in every session: some MAX graphs
# (exact GELU's) are cached under a key that holds the path of the file that built them.
SOURCES = Path(tempfile.gettempdir()) / "gpt2-max-mutants"


def mutant_job(n, mutation, folder: Path) -> Job:
    """The mutation applied to a copy of solution_NN.py, and its one check, which writes to `folder`."""
    solution = solution_path(n).read_text()
    assert solution.count(mutation.old) == 1, (
        f"{mutation.name}: {mutation.old!r} must occur once in solution_{n:02d}.py"
    )
    text = solution.replace(mutation.old, mutation.new)
    source = SOURCES / hashlib.sha1(text.encode()).hexdigest()[:16] / f"step_{n:02d}.py"
    if source.exists():
        os.utime(source.parent)  # in use: the newest, for prune
    else:  # written whole, then renamed: a session beside this one may write it too
        source.parent.mkdir(parents=True, exist_ok=True)
        partial = source.with_name(f"{source.name}.{os.getpid()}")
        partial.write_text(text)
        partial.replace(source)
    args = [f"tests/test_step_{n:02d}.py::{mutation.node}", "--use", source.parent]
    return Job("pytest", args, folder, TIMEOUT)


class Mutants:
    """The session's mutant checks, queued in its job pool (tests/conftest.py) in the order its tests read them.

    A mutant spends most of its run compiling new MAX graphs on one core. tests/conftest.py
    runs the mutation tests last and keeps one worker busy beside the tests before them;
    the mutation tests keep one per core.
    """

    def __init__(self, pool: Pool, order: list[tuple]):
        self.pool, self.directory = pool, Path(tempfile.mkdtemp(prefix="mutants-"))
        self.unusable = {}  # key -> why the mutation cannot be applied: its test fails with that
        for i, (n, mutation) in enumerate(order):
            try:
                pool.add(("mutation", n, mutation), mutant_job(n, mutation, self.directory / str(i)))
            except AssertionError as error:
                self.unusable[n, mutation] = str(error)
        prune(SOURCES, "*", keep=2 * len(order))  # this session's mutants are the newest: older ones go

    def result(self, n, mutation) -> tuple[int, str, str]:
        assert (n, mutation) not in self.unusable, self.unusable.get((n, mutation))
        return self.pool.result(("mutation", n, mutation))

    def close(self) -> None:
        shutil.rmtree(self.directory, ignore_errors=True)


@pytest.mark.parametrize("n, mutation", CASES)
def test_mutation_is_caught(n, mutation):
    code, out, _ = background["mutants"].result(n, mutation)
    lines = [line for line in out.splitlines() if line.startswith("✗ ")]
    assert code == 1 and lines, f"{mutation.name} was not caught by {mutation.node}:\n{out[-1500:]}"
    assert any(mutation.says in line for line in lines), (
        f"{mutation.name}: expected {mutation.says!r} in:\n" + "\n".join(lines)
    )


def test_a_mutation_is_tied_to_its_check_by_the_function_itself():
    """A test renamed or misspelt in a MUTATIONS list fails at import (a NameError), and a name given as a
    string, which would detach silently, is refused."""
    from tutorial.checks import Mutation

    with pytest.raises(TypeError, match="must be the test function"):
        Mutation("a check named by a string", "old", "new", "test_attention_matches_hf", "says")
    for n, mutation in (case.values for case in CASES):
        assert mutation.check.__module__ == f"tests.test_step_{n:02d}", (n, mutation.name, mutation.check)
