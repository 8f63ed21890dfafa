"""Mistakes learners make must be caught, with a message that points at the cause.

Each tests/test_step_NN.py lists MUTATIONS: an edit of the solution (a
missing scale, exact GELU, post-norm...), the check that must fail and a
piece of the line it must print. This applies each edit to a copy of the
solution and runs that one check on it, as `--use DIR` would for a student.
"""

import importlib
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from tests.conftest import background
from tutorial.course import ROOT, built, solution_path

CASES = [
    pytest.param(n, m, id=f"step{n:02d}-{m.name}")
    for n in built()
    for m in getattr(importlib.import_module(f"tests.test_step_{n:02d}"), "MUTATIONS", [])
]


def start_mutant(n, mutation, directory: Path) -> subprocess.Popen:
    """Apply the mutation to a copy of solution_NN.py and start its one check in a fresh process."""
    solution = solution_path(n).read_text()
    assert solution.count(mutation.old) == 1, (
        f"{mutation.name}: {mutation.old!r} must occur once in solution_{n:02d}.py"
    )
    directory.mkdir()
    (directory / f"step_{n:02d}.py").write_text(solution.replace(mutation.old, mutation.new))
    with open(directory / "out.txt", "w") as out:  # a file, not a pipe: nobody reads it until the test does
        return subprocess.Popen(
            [sys.executable, "-m", "pytest", f"tests/test_step_{n:02d}.py::{mutation.check}", "--use", str(directory)],
            cwd=ROOT,
            stdout=out,
            stderr=subprocess.DEVNULL,
        )


class Mutants:
    """The session's mutant checks, started in the order its tests read them.

    A mutant spends most of its run compiling new MAX graphs on one core. tests/conftest.py
    runs the mutation tests last and keeps one mutant running beside the tests before them;
    the mutation tests keep one per core.
    """

    def __init__(self, order: list[tuple]):
        self.order = order
        self.running: dict[tuple, subprocess.Popen] = {}
        self.directory = Path(tempfile.mkdtemp(prefix="mutants-"))

    def top_up(self, width: int) -> None:
        """Start the next mutants until `width` are running."""
        for key in self.order:
            if sum(p.poll() is None for p in self.running.values()) >= width:
                return
            if key not in self.running:
                self.running[key] = start_mutant(*key, self.directory / str(len(self.running)))

    def result(self, key: tuple, timeout: float = 900) -> tuple[int, str]:
        """(exit code, output) of one mutant's check; the others keep every core busy meanwhile."""
        self.top_up(os.cpu_count() or 1)
        process, deadline = self.running[key], time.monotonic() + timeout
        while process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.2)
            self.top_up(os.cpu_count() or 1)
        if process.poll() is None:
            process.kill()
            return -1, f"no result after {timeout:g} s"
        return process.returncode, Path(process.args[-1], "out.txt").read_text()

    def close(self) -> None:
        for process in self.running.values():
            process.kill()
            process.wait()
        shutil.rmtree(self.directory, ignore_errors=True)


@pytest.mark.parametrize("n, mutation", CASES)
def test_mutation_is_caught(n, mutation):
    code, out = background["mutants"].result((n, mutation))
    lines = [line for line in out.splitlines() if line.startswith("✗ ")]
    assert code == 1 and lines, f"{mutation.name} was not caught by {mutation.check}:\n{out[-1500:]}"
    assert any(mutation.says in line for line in lines), (
        f"{mutation.name}: expected {mutation.says!r} in:\n" + "\n".join(lines)
    )
