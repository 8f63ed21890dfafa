"""Every chapter's "Try it" snippet runs, pasted line by line, against the solutions.

A learner pastes the snippet into `python` in the repository root, with their
own `steps/` module. Here `steps.step_NN` becomes `solutions.solution_NN`,
and the lines go through code.InteractiveConsole, as a paste into the REPL
does: a traceback, or a block the REPL cannot take (a loop with no blank
line after it), fails the chapter.
"""

import re

import pytest

from tests.conftest import pool
from tutorial.course import built, chapter_path
from tutorial.mutants import Job

STEPS = built()

TRY_IT = re.compile(r"^## Try it\n\n```python\n(.*?)^```$", re.M | re.S)


def snippet(n: int) -> str | None:
    """The chapter's Try it code, or None if it has none."""
    found = TRY_IT.search(chapter_path(n).read_text())
    return found[1] if found else None


def early_jobs(folder):
    """Each chapter's paste (tests/paste.py), queued when the session starts (tests/conftest.py): each
    in a process of its own, as a learner's `python` is, beside the tests before these; ahead of the
    mutants, which take half an hour on a cold MAX cache, so that no test here waits past its limit."""
    for n in STEPS:
        if (code := snippet(n)) is None:
            continue  # the test says so
        code = re.sub(r"\bsteps\.step_(\d\d)\b", r"solutions.solution_\1", code)
        yield ("try it", n), Job("tests.paste", [], folder / f"{n:02d}", 600, priority=1, fresh=True, stdin=code)


@pytest.mark.parametrize("n", STEPS)
def test_try_it_snippet_runs_against_the_solutions(n):
    code = snippet(n)
    assert code is not None, f"step_{n:02d}.md has no ```python block directly under a '## Try it' heading"
    assert f"steps.step_{n:02d} import" in code, f"step_{n:02d}.md's Try it does not import the learner's step_{n:02d}"
    returncode, _, stderr = pool.result(("try it", n))
    # the first error the console showed: a later one may only follow from it
    errors = re.findall(r"^\w*(?:Error|Exception)\b.*$", stderr, re.M) or stderr.strip().splitlines()[-1:]
    first = errors[0] if errors else f"exit {returncode}"
    assert returncode == 0, f"step_{n:02d}.md's Try it fails when pasted: {first}"
