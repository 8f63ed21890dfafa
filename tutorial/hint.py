"""`pixi run hint sNN`: the next hint for a step, one level per call.

1. a nudge: what to think about;
2. the API: which MAX call, with its signature;
3. the solution: the reference lines that replace each TODO block.

Each call shows the next level and remembers it in .progress/hints.json;
`--level N` shows level N again, `--reset` starts the step over at the nudge.
Levels 1 and 2 live in the course's registry, tutorial/course.toml; level 3
is read from solutions/solution_NN.py, never copied.
"""

from __future__ import annotations

import argparse
import difflib
import json
import sys

from rich.console import Console
from rich.syntax import Syntax

from tutorial import todos
from tutorial.course import TITLES, hints, solution_path, stub_path
from tutorial.state import STATE, committed_stub, step_arg
from tutorial import options

LEVELS = {1: "a nudge", 2: "the API", 3: "the solution's lines"}
SEEN = STATE / "hints.json"


def solution_lines(stub: str, solution: str) -> dict[int, tuple[int, list[str]]]:
    """{TODO number: (first solution line, the solution's lines for that block)}.

    Outside TODO blocks stub and solution are the same lines (tests/test_course.py),
    so the solution's text for a block is whatever lies between the equal lines
    just before and just after it.
    """
    blocks = todos.blocks(stub)
    inside = {i for a, b in blocks.values() for i in range(a - 1, b)}
    a_lines, b_lines = stub.splitlines(), solution.splitlines()
    anchor = {}  # stub line index -> solution line index, for equal lines outside blocks
    for block in difflib.SequenceMatcher(a=a_lines, b=b_lines, autojunk=False).get_matching_blocks():
        for k in range(block.size):
            if block.a + k not in inside:
                anchor[block.a + k] = block.b + k
    found = {}
    for n, (first, last) in sorted(blocks.items()):
        before = max((anchor[i] for i in anchor if i < first - 1), default=-1)
        after = min((anchor[i] for i in anchor if i > last - 1), default=len(b_lines))
        lines = b_lines[before + 1 : after]
        while lines and not lines[-1].strip():
            lines.pop()
        found[n] = (before + 2, lines)
    return found


def stub_text(n: int) -> str:
    """The course's stub (from git), or the step file if git has none."""
    stub = committed_stub(n)
    return stub[0] if stub else stub_path(n).read_text()


def show(n: int, level: int, console: Console) -> bool:
    console.rule(f"Step {n:02d} · {TITLES[n]} · hint {level} of 3: {LEVELS[level]}")
    if level < 3:
        text = hints(n).get(["nudge", "api"][level - 1])
        console.print(text or f"tutorial/course.toml has no {LEVELS[level]} for s{n:02d} yet.")
        return bool(text)
    stub = stub_text(n)
    solution = solution_path(n).read_text()
    comments = {k: stub.splitlines()[a - 1].strip() for k, (a, _) in todos.blocks(stub).items()}
    console.print(f"The lines of solutions/solution_{n:02d}.py that replace each TODO block:")
    for k, (line, lines) in solution_lines(stub, solution).items():
        console.print(f"\n[bold]{comments[k]}[/]", highlight=False)
        console.print(
            Syntax(
                "\n".join(lines) or "# (the solution deletes this block)",
                "python",
                line_numbers=True,
                start_line=line,
                dedent=True,
                word_wrap=True,
            )
        )
    return True


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        prog="pixi run hint", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("step", type=step_arg, help="the step, e.g. s05")
    parser.add_argument("--level", type=int, choices=sorted(LEVELS), help="show this level (1-3)")
    parser.add_argument("--reset", action="store_true", help="forget the hints seen: the next one is the nudge")
    args = parser.parse_args(argv)
    key, console = f"s{args.step:02d}", Console()
    seen = json.loads(SEEN.read_text()) if SEEN.exists() else {}
    if args.reset:
        seen.pop(key, None)
        console.print(f"Hints for {key} start over: the next `pixi run hint {key}` is the nudge.")
    else:
        level = args.level or min(seen.get(key, 0) + 1, 3)
        found = show(args.step, level, console)
        seen[key] = max(seen.get(key, 0), level)
        console.print()
        if level < 3:
            console.print(f"[dim]Stuck still? `pixi run hint {key}` again shows {LEVELS[level + 1]}.[/]")
        else:
            console.print(
                f"[dim]That is the last hint. `pixi run hint {key} --level 1` re-reads the nudge; "
                f"`--reset` starts over.[/]"
            )
        if not found:
            return 1
    SEEN.parent.mkdir(parents=True, exist_ok=True)
    SEEN.write_text(json.dumps(seen, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(options.run(main, "hint"))
