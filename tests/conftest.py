"""The maintainers' suite: pytest-xdist schedules it (`-n auto`, CONTRIBUTING.md).

A test that runs a whole command (a mutant's check, `generate`, `bench`, a chapter's paste) runs it
in a process of its own (tests/support/run.py) and waits for it; the other workers go on meanwhile.
This file only counts, at the end, how many distinct MAX graphs the session compiled.
"""

import os

from tutorial.bench import MAX_THREADS
from tutorial.maxprivate import compiled_graphs

if int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1")) > 1:
    # One thread each, for MAX and torch, in every worker and every process it starts: the workers are
    # one per core already, and MAX's runtime threads spin for seconds after each run. Measured on 2
    # cores: a broken step 10's check took 23 s beside another worker, 2 s alone.
    os.environ.setdefault(MAX_THREADS, "1")
    os.environ.setdefault("OMP_NUM_THREADS", "1")

# the modules whose tests take longest (whole commands, waits for hangs and cold compiles): first, so
# that no worker starts one when the others are nearly done
FIRST = ("test_time_limits", "test_bench", "test_grade_class", "test_limits", "test_cli", "test_workflow")
BEFORE: set[str] = set()  # the controller's: MAX's compiled graphs when the session started


def pytest_configure(config):
    if not hasattr(config, "workerinput"):  # the controller (or a run without xdist), before any worker
        BEFORE.update(path.name for path in compiled_graphs())


def pytest_collection_modifyitems(items):
    items.sort(key=lambda item: item.path.stem not in FIRST)  # stable: otherwise as collected


def pytest_terminal_summary(terminalreporter, config):
    """New files in MAX's cache: every worker's and every process they started."""
    if not hasattr(config, "workerinput"):
        now = compiled_graphs()
        new = len({path.name for path in now} - BEFORE)
        terminalreporter.write_line(f"MAX graphs compiled by this session: {new} new, {len(now)} in the cache")
