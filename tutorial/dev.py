"""`pixi run dev sync | check`: the files that follow from tutorial/course.toml (rustlings' `dev update`).

A step's stub, solution, test, chapter and [[step]] table are written by hand; everything else that lists
the steps is generated from the registry, so it cannot drift from it:
- pixi.toml: the `sNN` tasks under the comment "# one check per step" (the rest of the file is left alone);
- book/src/SUMMARY.md: the "- [Step NN: <title>](./step_NN.md)" lines, in order, under the book's own
  section headings (a new step goes after the last one);
- templates/github-classroom.yml: `pixi run classroom`'s generator (tutorial/classroom.py).

`sync` writes them, then checks. `check` writes nothing: it prints one line per thing that `sync` would
change and per file the registry names that is missing, and exits 1; or one line, and 0. It imports
neither MAX nor torch, so it is quick enough for every `pixi run test` and for a pre-commit hook.
"""

from __future__ import annotations

import argparse
import difflib
import itertools
import re
import sys
import tomllib
from pathlib import Path
from tutorial import options

try:
    from tutorial import course
except ValueError as e:  # a malformed registry (tomllib's errors are ValueErrors too): one line, no traceback
    raise SystemExit(f"tutorial/course.toml: {e}" if isinstance(e, tomllib.TOMLDecodeError) else str(e)) from None

PIXI = "pixi.toml"
SUMMARY = "book/src/SUMMARY.md"
CLASSROOM = "templates/github-classroom.yml"
BLOCK = "# one check per step"  # the comment in pixi.toml's [tasks] that the sNN lines follow
TASK_LINE = re.compile(r"s\d+\s*=")  # a step's task line in that block
STEP_TASK = re.compile(r"s\d+")  # a task named like a step's, anywhere in [tasks]
LINK = re.compile(r"\s*- \[(.*)\]\(\./(.*)\)\s*")  # a SUMMARY.md entry: "- [title](./file.md)"


class Unsyncable(Exception):
    """A file that sync cannot rewrite (it lacks the place the generated lines go), in one line."""


def pixi_synced(text: str) -> str:
    """pixi.toml with the block of sNN lines under BLOCK rewritten from the registry; every other byte as it was."""
    lines = text.splitlines(keepends=True)
    at = next((i for i, line in enumerate(lines) if line.startswith(BLOCK)), None)
    if at is None:
        raise Unsyncable(f"{PIXI}: no line starting '{BLOCK}' in [tasks], under which sync writes the sNN tasks")
    end = at + 1
    while end < len(lines) and TASK_LINE.match(lines[end]):
        end += 1
    tasks = [f'{course.task(n)} = "python -m pytest {course.RULES["test"].format(n=n)}"\n' for n in course.STEPS]
    return "".join(lines[: at + 1] + tasks + lines[end:])


def summary_synced(text: str) -> str:
    """SUMMARY.md with its step lines rewritten from the registry. Which section a step sits in is the
    book's choice, not the registry's: the steps fill the existing step lines in order, a new step goes
    after the last of them and a removed step's line goes."""
    lines = text.splitlines(keepends=True)
    book = Path(SUMMARY).parent
    chapters = {Path(course.RULES["chapter"].format(n=n)).relative_to(book).as_posix(): n for n in course.STEPS}
    found = [
        i
        for i, line in enumerate(lines)
        if (m := LINK.fullmatch(line)) and (m[1].startswith("Step ") or m[2] in chapters)
    ]
    if not found:
        raise Unsyncable(f"{SUMMARY}: no '- [Step NN: <title>](./step_NN.md)' line, after which sync could write them")
    want = [f"- [Step {n:02d}: {course.TITLES[n]}](./{chapter})\n" for chapter, n in chapters.items()]
    for i, line in zip(found, want):
        lines[i] = line
    for i in reversed(found[len(want) :]):
        del lines[i]
    lines[found[-1] + 1 : found[-1] + 1] = want[len(found) :]
    return "".join(lines)


def changes(name: str, old: str, new: str) -> list[str]:
    """What writing `new` over `old` would change, one line per line of the file."""
    a, b = old.splitlines(), new.splitlines()
    said = []
    for op, i1, i2, j1, j2 in difflib.SequenceMatcher(None, a, b, autojunk=False).get_opcodes():
        for k, (was, now) in enumerate(itertools.zip_longest(a[i1:i2], b[j1:j2])):
            if op == "equal":
                continue
            if was is None:
                said.append(f"{name}: sync would add `{now}` after line {i1 + k}")
            elif now is None:
                said.append(f"{name}:{i1 + k + 1}: sync would remove `{was}`")
            else:
                said.append(f"{name}:{i1 + k + 1}: sync would write `{now}` instead of `{was}`")
    return said


def generated(root: Path) -> dict[str, tuple[str, str]]:
    """{file: (its text, the text sync writes)} for the files this module generates itself."""
    texts = {name: (root / name).read_text() for name in (PIXI, SUMMARY)}
    return {
        PIXI: (texts[PIXI], pixi_synced(texts[PIXI])),
        SUMMARY: (texts[SUMMARY], summary_synced(texts[SUMMARY])),
    }


def problems(root: Path) -> list[str]:
    """Everything `check` reports, one line each: an empty list when the course is consistent."""
    found = []
    for n, step in course.STEPS.items():
        for kind in ("stub", "solution", "test", "chapter"):
            if not (root / (path := course.RULES[kind].format(n=n))).exists():
                found.append(f"tutorial/course.toml: step {n:02d}'s {kind} {path} does not exist")
        if not 0 < step.minutes <= 120:
            found.append(f"tutorial/course.toml: step {n:02d}'s minutes = {step.minutes}, an estimate of 1-120")
    if (root / "tutorial" / "hints.toml").exists():
        found.append("tutorial/hints.toml: the hints live in tutorial/course.toml now; delete it")
    pixi = (root / PIXI).read_text()
    try:
        for name, (old, new) in generated(root).items():
            found += changes(name, old, new)
        pixi = pixi_synced(pixi)
    except Unsyncable as e:
        found.append(str(e))
    # sync rewrites only its block: a step-like task elsewhere in [tasks] would outlive its step
    found += [
        f"{PIXI}: task {name} looks like a step's, but tutorial/course.toml has no such step"
        for name in tomllib.loads(pixi).get("tasks", {})
        if STEP_TASK.fullmatch(name) and name not in {course.task(n) for n in course.STEPS}
    ]
    # The template's points come from collecting every step's checks, which imports MAX: too slow and too
    # heavy for check (tests/test_grade_class.py compares the whole file). Its steps come from the registry.
    named = re.findall(r"^ +test-name: (.*)$", (root / CLASSROOM).read_text(), re.M)
    want = [f"{course.task(n)} {step.title}" for n, step in course.STEPS.items()]
    found += [
        f"{CLASSROOM}: sync would regenerate it: where it has {f'a test named `{got}`' if got else 'nothing'}, "
        f"the registry makes {f'`{wanted}`' if wanted else 'no step'}"
        for got, wanted in itertools.zip_longest(named, want)
        if got != wanted
    ]
    return found


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        prog="pixi run dev", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("command", choices=["sync", "check"], help="sync: write the generated files; check: compare")
    args = parser.parse_args(argv)
    root = course.ROOT
    if args.command == "sync":
        try:
            for name, (old, new) in generated(root).items():
                if new != old:
                    (root / name).write_text(new)
                print(f"{name}: " + ("rewritten from tutorial/course.toml" if new != old else "up to date"))
        except Unsyncable as e:
            print(e, file=sys.stderr)
            return 1
        from tutorial import classroom  # imports the harness (and collecting the checks imports MAX)

        if code := classroom.main([]):
            return code
    found = problems(root)
    for line in found:
        print(line)
    if not found:
        print(f"the course's {len(course.STEPS)} steps agree with tutorial/course.toml")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(options.run(main, "dev"))
