"""Mistakes learners make must be caught, with a message that points at the cause.

Each tests/test_step_NN.py lists MUTATIONS: an edit of the solution (a
missing scale, exact GELU, post-norm...), the check that must fail and a
piece of the line it must print. This applies each edit to a copy of the
solution and runs that one check on it, as `--use DIR` would for a student.
"""

import importlib
import os
import subprocess
import sys

import pytest

from tutorial.course import ROOT, built, solution_path

CASES = [
    pytest.param(n, m, id=f"step{n:02d}-{m.name}")
    for n in built()
    for m in getattr(importlib.import_module(f"tests.test_step_{n:02d}"), "MUTATIONS", [])
]


def start_mutant(n, mutation, directory) -> subprocess.Popen:
    """Apply the mutation to a copy of solution_NN.py and start its one check in a fresh process."""
    solution = solution_path(n).read_text()
    assert solution.count(mutation.old) == 1, f"{mutation.name}: {mutation.old!r} must occur once in solution_{n:02d}.py"
    (directory / f"step_{n:02d}.py").write_text(solution.replace(mutation.old, mutation.new))
    return subprocess.Popen(
        [sys.executable, "-m", "pytest", f"tests/test_step_{n:02d}.py::{mutation.check}", "--use", str(directory)],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
    )


@pytest.fixture(scope="module")
def mutants(request, tmp_path_factory):
    """finish(n, mutation) -> (exit code, stdout). Most of a mutant's run is a MAX compile on one
    core, so the checks of the next mutants (one per core) are already running when a test asks."""
    order = [(item.callspec.params["n"], item.callspec.params["mutation"]) for item in request.session.items
             if item.module is request.module and hasattr(item, "callspec")]
    running = {}

    def finish(n, mutation):
        at = order.index((n, mutation))
        for key in order[at:at + (os.cpu_count() or 1)]:
            if key not in running:
                running[key] = start_mutant(*key, tmp_path_factory.mktemp("mutant"))
        out, _ = running[n, mutation].communicate(timeout=900)
        return running[n, mutation].returncode, out

    yield finish
    for process in running.values():
        process.kill()
        process.wait()


@pytest.mark.parametrize("n, mutation", CASES)
def test_mutation_is_caught(n, mutation, mutants):
    code, out = mutants(n, mutation)
    lines = [line for line in out.splitlines() if line.startswith("✗ ")]
    assert code == 1 and lines, f"{mutation.name} was not caught by {mutation.check}:\n{out[-1500:]}"
    assert any(mutation.says in line for line in lines), f"{mutation.name}: expected {mutation.says!r} in:\n" + "\n".join(lines)
