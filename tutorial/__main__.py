"""`python -m tutorial <command> [options]`: every command of the course, one entry point.

The pixi tasks call it (`pixi run generate` is `python -m tutorial generate`). Each command's
options are its own (`python -m tutorial generate --help`); --use and --device mean the same
everywhere (tutorial/options.py). Ctrl-C ends any command with one line and exit status 130.
"""

from __future__ import annotations

import importlib
import sys

from tutorial import options

# command -> (module, what it does); the module's main(argv) runs it
COMMANDS = {
    "generate": ("tutorial.generate", "your GPT-2 writes text"),
    "bench": ("tutorial.bench", "tokens per second of each loop, HF's and the read floor"),
    "weights": ("tutorial.download", "pretrained GPT-2 into the local HF cache (needs the network once)"),
    "progress": ("tutorial.progress", "every step done, failing or not started"),
    "hint": ("tutorial.hint", "a hint for a step, one level at a time"),
    "watch": ("tutorial.watch", "re-check a step on every save"),
    "reset": ("tutorial.reset", "put a step's stub back, keeping your file as a backup"),
    "grade": ("tutorial.grade", "grade one submission: table, JSON, JUnit"),
    "grade-class": ("tutorial.grade_class", "grade a class in parallel into a gradebook"),
    "gradescope": ("tutorial.gradescope", "build the Gradescope autograder zip"),
    "classroom": ("tutorial.classroom", "write the GitHub Classroom workflow template"),
    "dev": ("tutorial.dev", "maintainers: write (sync) or verify (check) the files that list the steps"),
}


def usage() -> str:
    width = max(map(len, COMMANDS))
    lines = [f"  {name:{width}}  {what}" for name, (_, what) in COMMANDS.items()]
    return "usage: python -m tutorial <command> [options]  (pixi run <command> [options])\n\n" + "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] in ("-h", "--help"):
        print(usage())
        return 0
    if argv[0] not in COMMANDS:
        print(f"python -m tutorial: no command {argv[0]!r}\n{usage()}", file=sys.stderr)
        return 2
    module = importlib.import_module(COMMANDS[argv[0]][0])
    return options.run(lambda: module.main(argv[1:]), argv[0])


if __name__ == "__main__":
    sys.exit(main())
