"""What every command shares, declared once: the --use and --device options, and how Ctrl-C ends a run."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable

USE_HELP = "steps (your files), solutions (the reference), or a directory of step_NN.py files"
DEVICES = ["cpu", "gpu"]
DEVICE_HELP = "where MAX runs (default cpu)"


def use(default: str = "steps") -> argparse.ArgumentParser:
    """A parent parser with --use; bench measures the reference unless told otherwise."""
    parent = argparse.ArgumentParser(add_help=False)
    parent.add_argument("--use", default=default, help=f"{USE_HELP} (default {default})")
    return parent


def device() -> argparse.ArgumentParser:
    """A parent parser with --device."""
    parent = argparse.ArgumentParser(add_help=False)
    parent.add_argument("--device", default="cpu", choices=DEVICES, help=DEVICE_HELP)
    return parent


def run(main: Callable[[], int | None], name: str) -> int:
    """main's exit status; Ctrl-C ends it with one line and 130 (128 + SIGINT), not a traceback."""
    try:
        return main() or 0
    except KeyboardInterrupt:
        print(f"\n{name}: stopped (Ctrl-C)", file=sys.stderr)
        return 130
