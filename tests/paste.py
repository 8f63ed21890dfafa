"""`python -m tests.paste < snippet`: the snippet pasted into `python`'s REPL, line by line.

Exits 1 if the console showed a traceback or a syntax error (tests/test_try_it.py).
"""

import code
import sys

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


if __name__ == "__main__":
    console, more = Paste(), False
    for line in sys.stdin.read().splitlines():
        more = console.push(line)
    if more:
        console.push("")
    sys.exit(1 if Paste.failed else 0)
