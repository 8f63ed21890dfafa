"""`pixi run watch [sNN]`: re-run a step's checks every time you save its file.

Without sNN it watches the first step that is not done yet. The checks are
`pixi run sNN`'s, word for word; when they pass, watch says so and names
the next step. Ctrl-C stops it.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

import watchfiles
from rich.console import Console

from tutorial.course import ROOT, TITLES, built, next_step
from tutorial.impl import Source
from tutorial.runner import known_done, pytest_command, remember, run_step, showing
from tutorial.state import Status, committed_stub, step_arg
from tutorial import options


def first_unfinished(use: str, console: Console) -> int | None:
    """The first step whose file is missing, the stub, or failing (passes seen before are trusted)."""
    source = Source(use)
    for n in built():
        path = source.path(n)
        if known_done(n, path):
            continue
        stub = committed_stub(n)
        if not path.exists() or (stub and path.read_text() == stub[0]):
            return n
        with showing(console, f"looking for your first unfinished step: checking step {n:02d}") as on_check:
            run = run_step(n, use, on_check=on_check)
        remember(n, path, run.status == Status.PASSED)
        if run.status != Status.PASSED:
            return n
    return None


def check(n: int, use: str, path: Path, console: Console) -> None:
    console.rule(f"step {n:02d} · {TITLES[n]} · {time.strftime('%H:%M:%S')}")
    passed = subprocess.run(pytest_command(n, use), cwd=ROOT).returncode == 0
    remember(n, path, passed)
    if passed:
        after = next_step(n)
        nxt = (
            f"Next: step {after:02d}, {TITLES[after]}: `pixi run watch s{after:02d}`."
            if after
            else "That was the last step."
        )
        console.print(f"[green]✓ Step {n:02d} passes.[/] {nxt}")
    console.print(f"[dim]Watching {Source(use).shown(n)}: save it to check again (Ctrl-C stops).[/]")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        prog="pixi run watch",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        parents=[options.use()],
    )
    parser.add_argument(
        "step", nargs="?", type=step_arg, help="the step, e.g. s05 (default: your first unfinished one)"
    )
    args = parser.parse_args(argv)
    console = Console()
    n = args.step or first_unfinished(args.use, console)
    if n is None:
        console.print("[green]Every step passes.[/] `pixi run progress` shows them all.")
        return 0
    path = Source(args.use).path(n).resolve()
    check(n, args.use, path, console)
    # until Ctrl-C, which options.run turns into one line and exit status 130
    for _ in watchfiles.watch(path.parent, watch_filter=lambda change, p: Path(p) == path, recursive=False):
        if path.exists():
            check(n, args.use, path, console)
    return 0


if __name__ == "__main__":
    sys.exit(options.run(main, "watch"))
