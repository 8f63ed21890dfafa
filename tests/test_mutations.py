"""Mistakes learners make must be caught, with a message that points at the cause.

Each tests/test_step_NN.py lists MUTATIONS: an edit of the solution (a
missing scale, exact GELU, post-norm...), the check that must fail and a
piece of the line it must print. This applies each edit to a copy of the
solution and runs that one check on it, as `--use DIR` would for a student.
"""

import importlib
import subprocess
import sys

import pytest

from tutorial.course import ROOT, built, solution_path

CASES = [
    pytest.param(n, m, id=f"step{n:02d}-{m.name}")
    for n in built()
    for m in getattr(importlib.import_module(f"tests.test_step_{n:02d}"), "MUTATIONS", [])
]


@pytest.mark.parametrize("n, mutation", CASES)
def test_mutation_is_caught(n, mutation, tmp_path):
    solution = solution_path(n).read_text()
    assert solution.count(mutation.old) == 1, f"{mutation.name}: {mutation.old!r} must occur once in solution_{n:02d}.py"
    (tmp_path / f"step_{n:02d}.py").write_text(solution.replace(mutation.old, mutation.new))
    run = subprocess.run(
        [sys.executable, "-m", "pytest", f"tests/test_step_{n:02d}.py::{mutation.check}", "--use", str(tmp_path)],
        cwd=ROOT, capture_output=True, text=True, timeout=900,
    )
    lines = [line for line in run.stdout.splitlines() if line.startswith("✗ ")]
    assert run.returncode == 1 and lines, f"{mutation.name} was not caught by {mutation.check}:\n{run.stdout[-1500:]}"
    assert any(mutation.says in line for line in lines), f"{mutation.name}: expected {mutation.says!r} in:\n" + "\n".join(lines)
