"""`pixi run progress`: every step of the course, done, failing or not started.

Each step is checked exactly as `pixi run sNN` checks it (tutorial/runner.py).
A step file that is still the course's stub (see `pixi run reset --help`)
is "not started" without running anything. A first run compiles MAX
kernels, which is slow: the bottom line says which step is being checked.
The minutes are tutorial/course.toml's estimates of a learner's time per step.
"""

from __future__ import annotations

import argparse
import sys

from rich.console import Console
from rich.table import Table

from tutorial.course import TITLES, built, minutes
from tutorial.impl import Source
from tutorial.runner import remember, run_step, showing
from tutorial.state import Status, committed_stub
from tutorial.todos import blocks
from tutorial import options

LOOK = {
    "done": "[green]✓ done",
    "failing": "[red]✗ failing",
    "not started": "[dim]· not started",
    "missing": "[red]? missing",
    "coming": "[dim]  coming soon",
}


def status(n: int, use: str, console: Console) -> tuple[str, str]:
    """(done | failing | not started | missing | coming, the line to show)."""
    if n not in built():
        return "coming", "not in the course yet"
    source = Source(use)
    path = source.path(n)
    if not path.exists():
        return "missing", f"{source.shown(n)} does not exist: `pixi run reset s{n:02d}` brings the stub back"
    stub, start = committed_stub(n), f"read book/src/step_{n:02d}.md, then edit {source.shown(n)}"
    if stub and path.read_text() == stub[0]:
        return "not started", start
    with showing(console, f"checking step {n:02d} · {TITLES[n]}") as on_check:
        run = run_step(n, use, on_check=on_check)
    remember(n, path, run.status == Status.PASSED)
    if run.status == Status.PASSED:
        return "done", f"all {len(run.checks)} checks pass"
    if stub is None and blocks(path.read_text()) and not any(c.status == Status.PASSED for c in run.checks):
        return "not started", start  # no git history to compare with: TODOs left and nothing passes
    return "failing", run.message


def duration(total: int) -> str:
    """Minutes as a person says them: "45 min", "2 h", "3 h 10 min"."""
    hours, rest = divmod(total, 60)
    return " ".join(([f"{hours} h"] if hours else []) + ([f"{rest} min"] if rest or not hours else []))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        prog="pixi run progress",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        parents=[options.use()],
    )
    args = parser.parse_args(argv)
    console = Console()
    table = Table("step", "title", "min", "status", title="Your progress", title_justify="left")
    table.add_column("", overflow="fold")
    found = {}
    for n, title in TITLES.items():
        found[n] = status(n, args.use, console)
        table.add_row(f"s{n:02d}", title, f"~{minutes(n)}", LOOK[found[n][0]], found[n][1])
    console.print(table)
    done = sum(state == "done" for state, _ in found.values())
    bar = "█" * round(30 * done / len(TITLES))
    left = sum(minutes(n) for n, (state, _) in found.items() if state != "done")
    console.print(
        f"[green]{bar}[/][dim]{'░' * (30 - len(bar))}[/] {done}/{len(TITLES)} steps done ({100 * done // len(TITLES)}%)"
        + (f", about {duration(left)} of work left" if left else "")
    )
    todo = next((n for n, (state, _) in found.items() if state in ("failing", "not started", "missing")), None)
    if todo:
        console.print(
            f"Next: step {todo:02d}, {TITLES[todo]}: `pixi run watch s{todo:02d}` re-checks it on every save."
        )
    return 0


if __name__ == "__main__":
    sys.exit(options.run(main, "progress"))
