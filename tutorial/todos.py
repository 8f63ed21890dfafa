"""TODO blocks: the only lines in which a stub may differ from its solution.

A block starts at a `# TODO N:` comment and runs over the lines below it
(the learner's placeholder code) up to the first blank line, or a line
indented less than the comment. Line numbers are 1-based, as in an editor.
"""

from __future__ import annotations

import difflib
import re
from pathlib import Path

TODO = re.compile(r"^(\s*)#\s*TODO\s+(\d+)\s*:")


def blocks(text: str) -> dict[int, tuple[int, int]]:
    """{TODO number: (first line, last line)}."""
    lines = text.splitlines()
    found = {}
    for i, line in enumerate(lines):
        if not (match := TODO.match(line)):
            continue
        indent, end = len(match[1]), i
        while end + 1 < len(lines):
            nxt = lines[end + 1]
            if not nxt.strip() or len(nxt) - len(nxt.lstrip()) < indent or TODO.match(nxt):
                break
            end += 1
        found[int(match[2])] = (i + 1, end + 1)
    return found


def block_at(path: Path, line: int) -> int | None:
    """The TODO number whose block holds `line` in the file, if the file still marks it."""
    try:
        text = Path(path).read_text()
    except OSError:
        return None
    return next((n for n, (a, b) in blocks(text).items() if a <= line <= b), None)


def outside_blocks(stub: str, solution: str) -> list[str]:
    """Lines where stub and solution differ outside the stub's TODO blocks (empty: all good)."""
    inside = {line for a, b in blocks(stub).values() for line in range(a, b + 1)}
    stub_lines, solution_lines = stub.splitlines(), solution.splitlines()
    problems = []
    matcher = difflib.SequenceMatcher(a=stub_lines, b=solution_lines, autojunk=False)
    for op, i1, i2, j1, j2 in matcher.get_opcodes():
        if op == "equal":
            continue
        # an insertion must land inside or right after a block: lines i1+1 ... are the stub's
        touched = range(i1 + 1, i2 + 1) if i2 > i1 else [i1]
        for line in touched:
            if line not in inside:
                shown = stub_lines[line - 1] if 0 < line <= len(stub_lines) else solution_lines[j1]
                problems.append(f"stub line {line}: {shown.strip()!r}")
                break
    return problems
