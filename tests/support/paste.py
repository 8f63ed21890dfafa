"""`python -m tests.support.paste [COMMAND ...] < snippet`: the snippet pasted into `python`'s REPL, line by line.

With a COMMAND (the words of the command a chapter tells the learner to start Python with, e.g.
pixi.toml's `python` task), the paste runs in the interpreter that command starts, with the command's
own arguments: COMMAND[0] is looked up on PATH with this interpreter's folder first, as an activated
venv or pixi's environment puts it first. A command that names no such program fails the paste.
Exits 1 if the console showed a traceback or a syntax error (tests/test_try_it.py).
"""

import code
import os
import shutil
import sys
from pathlib import Path

from tutorial.maxprivate import import_max_lean

import_max_lean()  # MAX without torch's import time; the snippet imports what it needs


class Paste(code.InteractiveConsole):
    failed = False

    def showtraceback(self):
        Paste.failed = True
        super().showtraceback()

    def showsyntaxerror(self, *args, **kwargs):
        Paste.failed = True
        super().showsyntaxerror(*args, **kwargs)


def run_through(command: list[str]) -> None:
    """Replace this process with `COMMAND -m tests.support.paste`, reading the same stdin."""
    path = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])
    program = shutil.which(command[0], path=path)
    if program is None:
        sys.exit(f"tests.support.paste: the command {' '.join(command)!r} names no program on PATH ({command[0]!r})")
    os.execv(program, [program, *command[1:], "-m", "tests.support.paste"])


if __name__ == "__main__":
    if sys.argv[1:]:
        run_through(sys.argv[1:])
    console, more = Paste(), False
    for line in sys.stdin.read().splitlines():
        more = console.push(line)
    if more:
        console.push("")
    sys.exit(1 if Paste.failed else 0)
