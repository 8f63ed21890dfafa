"""Mistakes learners make must be caught, with a message that points at the cause.

Each tests/test_step_NN.py lists MUTATIONS: an edit of the solution (a
missing scale, exact GELU, post-norm...), the check that must fail and a
piece of the line it must print. This applies each edit to a copy of the
solution and runs that one check on it, as `--use DIR` would for a student:
`python -m pytest tests/test_step_NN.py::check --use DIR`, in a process of
its own (tests/support/run.py), and reads the check's line from its result
record.
"""

import hashlib
import importlib
import os
import tempfile
from pathlib import Path

import pytest

from tests.support.run import command
from tutorial.course import built, solution_path
from tutorial.reference import prune

CASES = [
    pytest.param(n, m, id=f"step{n:02d}-{m.name}")
    for n in built()
    for m in getattr(importlib.import_module(f"tests.test_step_{n:02d}"), "MUTATIONS", [])
]
TIMEOUT = 540  # seconds a mutant's check may take, cold compiles included (pytest.ini's limit is 600)
# Each mutant's file lives in a folder named by its text, the same in every session: some MAX graphs
# (exact GELU's) are cached under a key that holds the path of the file that built them.
SOURCES = Path(tempfile.gettempdir()) / "gpt2-max-mutants"
KEEP = 2 * len(CASES)  # mutant folders kept: this session's are the newest, older ones go


def mutant(n, mutation) -> Path:
    """The folder holding the mutation applied to a copy of solution_NN.py."""
    solution = solution_path(n).read_text()
    assert solution.count(mutation.old) == 1, (
        f"{mutation.name}: {mutation.old!r} must occur once in solution_{n:02d}.py"
    )
    text = solution.replace(mutation.old, mutation.new)
    source = SOURCES / hashlib.sha1(text.encode()).hexdigest()[:16] / f"step_{n:02d}.py"
    if source.exists():
        os.utime(source.parent)  # in use: the newest, for prune
    else:  # written whole, then renamed: another worker may write it too
        source.parent.mkdir(parents=True, exist_ok=True)
        partial = source.with_name(f"{source.name}.{os.getpid()}")
        partial.write_text(text)
        partial.replace(source)
    prune(SOURCES, "*", keep=KEEP)
    return source.parent


@pytest.mark.parametrize("n, mutation", CASES)
def test_mutation_is_caught(n, mutation):
    check = f"tests/test_step_{n:02d}.py::{mutation.node}"
    done = command("pytest", [check, "--use", mutant(n, mutation)], timeout=TIMEOUT)
    out = (done.stdout + done.stderr)[-1500:]
    assert done.returncode == 1 and mutation.node in done.failures, (
        f"{mutation.name} was not caught by {mutation.node}:\n{out}"
    )
    assert mutation.says in done.failures[mutation.node], (
        f"{mutation.name}: expected {mutation.says!r} in: {done.failures[mutation.node]}"
    )


def test_a_mutation_is_tied_to_its_check_by_the_function_itself():
    """A test renamed or misspelt in a MUTATIONS list fails at import (a NameError), and a name given as a
    string, which would detach silently, is refused."""
    from tutorial.checks import Mutation

    with pytest.raises(TypeError, match="must be the test function"):
        Mutation("a check named by a string", "old", "new", "test_attention_matches_hf", "says")
    for n, mutation in (case.values for case in CASES):
        assert mutation.check.__module__ == f"tests.test_step_{n:02d}", (n, mutation.name, mutation.check)
