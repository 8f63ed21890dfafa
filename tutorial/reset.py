"""`pixi run reset sNN`: put steps/step_NN.py back to the course's stub, keeping yours as a backup.

Which stub: `git show HEAD:steps/step_NN.py` would give back your own work
if you committed it, so reset walks the file's history (newest first) and
takes the newest version committed by someone other than you (your git
identity, `git var GIT_AUTHOR_IDENT`): the course's latest stub, including
fixes you pulled since. If you authored every version, including the one
that added the file, you are the course's author and the newest committed
version is the stub. `--from REF` takes the file from REF instead (e.g.
`--from upstream/main`, `--from <commit>`).

Your file goes to .progress/backups/step_NN-<date>-<time>.py first.
This is the only command that changes a step file.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from tutorial.course import ROOT
from tutorial.state import STATE, committed_stub, step_arg
from tutorial import options


def reset(n: int, root: Path = ROOT, ref: str | None = None, backups: Path | None = None) -> str:
    """Restore the stub; returns what happened, in one line. Raises LookupError without a stub."""
    stub = committed_stub(n, root, ref)
    if stub is None:
        raise LookupError(
            f"git has no steps/step_{n:02d}.py" + (f" at {ref}" if ref else "") + ": is this a git clone of the course?"
        )
    text, source = stub
    path = root / "steps" / f"step_{n:02d}.py"
    if path.exists() and path.read_text() == text:
        return f"steps/step_{n:02d}.py is already the stub (commit {source}); nothing changed"
    saved = ""
    if path.exists():
        backups = backups or STATE / "backups"
        backups.mkdir(parents=True, exist_ok=True)
        backup = backups / f"step_{n:02d}-{time.strftime('%Y%m%d-%H%M%S')}.py"
        backup.write_text(path.read_text())
        saved = f"; your version is saved as {backup.relative_to(root) if backup.is_relative_to(root) else backup}"
    path.write_text(text)
    return f"steps/step_{n:02d}.py is the stub again (from commit {source}){saved}"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        prog="pixi run reset", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("step", type=step_arg, help="the step to restore, e.g. s05")
    parser.add_argument("--from", dest="ref", metavar="REF", help="take the stub from this git ref instead")
    args = parser.parse_args(argv)
    try:
        print(reset(args.step, ref=args.ref))
    except LookupError as error:
        print(f"reset: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(options.run(main, "reset"))
