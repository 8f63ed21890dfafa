"""Every chapter's "Try it" snippet runs, pasted line by line, against the solutions.

A learner starts Python in the repository root the way the chapter says (`pixi run python` with
pixi, `python` in the activated venv with pip) and pastes the snippet, with their own `steps/`
module. Here the paste runs through that same command, as pixi would run it: `pixi run NAME` runs
pixi.toml's task NAME if there is one, else the program NAME in pixi's environment (pixi.toml has no
`python` task on purpose: a task's extra arguments are quoted without escaping, which would break the
README's `pixi run python -m tutorial.generate --prompt "It's late"`). No pixi here: the command's
words run with this venv's interpreter first on PATH, as in pixi's environment, and they must be the
chapter's pip command too. `steps.step_NN` becomes
`solutions.solution_NN`, and the lines go through code.InteractiveConsole, as a paste into the REPL
does: a traceback, or a block the REPL cannot take (a loop with no blank line after it), fails the
chapter. The MAX primer (book/src/max_primer.md) has a Try it of its own, run the same way.
"""

import re
import shlex
import tomllib
from pathlib import Path

import pytest

from tutorial.course import ROOT, built, chapter_path
from tests.support.run import command

STEPS = built()
PRIMER = ROOT / "book" / "src" / "max_primer.md"
CHAPTERS = ["primer", *STEPS]  # "primer", then the step numbers

TRY_IT = re.compile(r"^## Try it\n\n```python\n(.*?)^```$", re.M | re.S)
# how every chapter tells the learner to start Python, under its Try it
START = re.compile(
    r"[Ss]tart Python in the repository root with\s+`pixi run ([\w-]+)` \(pixi\) or\s+`([^`]+)` in the\s+"
    r"activated venv \(pip\), and\s+paste it in"
)


def chapter(which) -> Path:
    return PRIMER if which == "primer" else chapter_path(which)


def name(which) -> str:
    return chapter(which).name


def snippet(which) -> str | None:
    """The chapter's Try it code, or None if it has none."""
    found = TRY_IT.search(chapter(which).read_text())
    return found[1] if found else None


def start_command(which) -> list[str]:
    """The words of the command the chapter says to start Python with, as `pixi run` reads them: the
    task's command from pixi.toml, or the program itself when there is no such task. Fails, in one
    line, if the chapter does not say, or its pip command is another (tests/support/paste.py fails the paste
    if no such program is installed)."""
    text = chapter(which).read_text()
    found = START.search(text[text.find("## Try it") :])
    assert found, (
        f"{name(which)}: under its Try it, no 'start Python in the repository root with `pixi run TASK` "
        "(pixi) or `COMMAND` in the activated venv (pip), and paste it in'"
    )
    task, pip_command = found[1], found[2]
    tasks = tomllib.loads((ROOT / "pixi.toml").read_text())["tasks"]
    command = tasks.get(task, task)  # pixi runs a task by that name, else the program
    command = command if isinstance(command, str) else command["cmd"]
    assert shlex.split(command) == shlex.split(pip_command), (
        f"{name(which)}: `pixi run {task}` runs `{command}`, but the chapter's pip command is `{pip_command}`"
    )
    return shlex.split(command)


@pytest.mark.parametrize("n", CHAPTERS)
def test_try_it_snippet_runs_against_the_solutions(n):
    assert chapter(n).exists(), f"{chapter(n).relative_to(ROOT)} is missing"
    code = snippet(n)
    assert code is not None, f"{name(n)} has no ```python block directly under a '## Try it' heading"
    if n != "primer":
        assert f"steps.step_{n:02d} import" in code, f"{name(n)}'s Try it does not import the learner's step_{n:02d}"
    start = start_command(n)  # the chapter names a command that exists, the same with pixi and pip
    code = re.sub(r"\bsteps\.step_(\d\d)\b", r"solutions.solution_\1", code)
    pasted = command("tests.support.paste", start, timeout=540, stdin=code)  # a learner's own python
    returncode, stderr = pasted.returncode, pasted.stderr
    # the first error the console showed: a later one may only follow from it
    errors = re.findall(r"^\w*(?:Error|Exception)\b.*$", stderr, re.M) or stderr.strip().splitlines()[-1:]
    first = errors[0] if errors else f"exit {returncode}"
    assert returncode == 0, f"{name(n)}'s Try it fails when pasted: {first}"
