"""Every chapter's "Try it" snippet runs, pasted line by line, against the solutions.

A learner pastes the snippet into `python` in the repository root, with their
own `steps/` module. Here `steps.step_NN` becomes `solutions.solution_NN`,
and the lines go through code.InteractiveConsole, as a paste into the REPL
does: a traceback, or a block the REPL cannot take (a loop with no blank
line after it), fails the chapter.
"""

import re
import subprocess
import sys

import pytest

from tutorial.course import ROOT, built, chapter_path

STEPS = built()

TRY_IT = re.compile(r"^## Try it\n\n```python\n(.*?)^```$", re.M | re.S)

# Reads the snippet from stdin; exits 1 if the console showed a traceback or a syntax error.
PASTE = """
import code, sys
from tutorial import fastmax
fastmax.prepare()  # MAX without torch's import time; the snippet imports what it needs


class Paste(code.InteractiveConsole):
    failed = False

    def showtraceback(self):
        Paste.failed = True
        super().showtraceback()

    def showsyntaxerror(self, *args, **kwargs):
        Paste.failed = True
        super().showsyntaxerror(*args, **kwargs)


console, more = Paste(), False
for line in sys.stdin.read().splitlines():
    more = console.push(line)
if more:
    console.push("")
sys.exit(1 if Paste.failed else 0)
"""


def snippet(n: int) -> str:
    found = TRY_IT.search(chapter_path(n).read_text())
    assert found, f"step_{n:02d}.md has no ```python block directly under a '## Try it' heading"
    return found[1]


@pytest.mark.parametrize("n", STEPS)
def test_try_it_snippet_runs_against_the_solutions(n):
    code = snippet(n)
    assert f"steps.step_{n:02d} import" in code, f"step_{n:02d}.md's Try it does not import the learner's step_{n:02d}"
    code = re.sub(r"\bsteps\.step_(\d\d)\b", r"solutions.solution_\1", code)
    run = subprocess.run(
        [sys.executable, "-c", PASTE], input=code, cwd=ROOT, capture_output=True, text=True, timeout=600
    )
    # the first error the console showed: a later one may only follow from it
    errors = re.findall(r"^\w*(?:Error|Exception)\b.*$", run.stderr, re.M) or run.stderr.strip().splitlines()[-1:]
    first = errors[0] if errors else f"exit {run.returncode}"
    assert run.returncode == 0, f"step_{n:02d}.md's Try it fails when pasted: {first}"
