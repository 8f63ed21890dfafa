"""The check harness every tests/test_step_NN.py shares (loaded by pytest.ini: -p).

Options (see INSTRUCTORS.md):
  --use steps|solutions|DIR   what to check: your steps/ (default), the reference
                              solutions/, or a directory of step_NN.py files
  --device cpu|gpu            where MAX runs the checks (default cpu)
  --import-timeout S          seconds the step file may take to import (tutorial/grading.toml)
  --hang-timeout S            seconds the code under check may run in one check, MAX's compiles and
                              imports not counted (tutorial/grading.toml; tutorial/watchdog.py)

Two limits catch a hang. The watchdog counts only the time the code under check runs, so an endless
loop is named in seconds however long a cold compile takes; pytest-timeout's wall-clock limit
(pytest.ini) is the backstop, long enough for cold compiles. The first check that times out (either
limit, or the import limit) ends the run: a hang in one check is almost always a hang in every check,
and each would wait out its own limit.
"""

import contextlib
import re
import sys
import traceback
from pathlib import Path

import pytest

from tutorial import limits, maxprivate

limits.apply_from_environment()  # a grader's limits, before MAX or torch takes any memory
maxprivate.import_max_lean()  # before anything imports MAX: saves ~6 s per run

from tutorial import checks, explain, options  # noqa: E402
from tutorial.checks import CheckFailure  # noqa: E402
from tutorial.course import TITLES, next_step  # noqa: E402
from tutorial.explain import StepError  # noqa: E402
from tutorial.impl import ImportTimedOut, Source  # noqa: E402
from tutorial.reference import SMALL, Reference, reference  # noqa: E402
from tutorial.state import SETTINGS  # noqa: E402
from tutorial.watchdog import Hung, Watchdog  # noqa: E402


def pytest_addoption(parser):
    group = parser.getgroup("gpt2 tutorial")
    group.addoption("--use", default="steps", help=f"{options.USE_HELP} (default steps)")
    group.addoption("--device", default="cpu", choices=options.DEVICES, help=options.DEVICE_HELP)
    group.addoption(
        "--import-timeout",
        type=float,
        default=SETTINGS["limits"]["import_seconds"],
        help="seconds the step file may take to import (default: tutorial/grading.toml)",
    )
    group.addoption(
        "--hang-timeout",
        type=float,
        default=SETTINGS["limits"]["hang_seconds"],
        help="seconds the checked code may run in one check, compiles not counted (default: tutorial/grading.toml)",
    )


def step_number(path) -> int | None:
    found = re.search(r"test_step_(\d\d)\.py$", str(path))
    return int(found[1]) if found else None


def checked_steps(config) -> list[int]:
    return sorted({n for arg in config.args if (n := step_number(arg.split("::")[0]))})


WATCHDOG: list[Watchdog] = []  # this session's, while it runs


def pytest_configure(config):
    checks.SESSION = checks.CheckSession(device=config.getoption("--device"))
    folders = {Source("solutions").path(1).parent}
    with contextlib.suppress(StepError):  # a --use that is no directory: the header says so
        folders.add(Source(config.getoption("--use")).path(1).parent)
    # its notes of where the checked code runs go to the result record, in a grader's run (-p tutorial.record)
    record = config.pluginmanager.get_plugin("tutorial.record")
    note = record.at if record else None
    WATCHDOG.append(Watchdog(config.getoption("--hang-timeout"), sorted(folders), note=note).start())


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item):
    """Each check has the whole hang limit, its module's fixtures included."""
    for watchdog in WATCHDOG:
        watchdog.reset()


def pytest_sessionstart(session):
    """The header, printed even under -q: what is checked, against what, how strictly."""
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    if reporter is not None:
        for line in header(session.config):
            reporter.write_line(line)


def header(config) -> list[str]:
    source = Source(config.getoption("--use"))
    steps = checked_steps(config)
    what = ", ".join(source.shown(n) for n in steps) if steps else f"every step in {source.use}/"
    return [
        f"checking   {what}",
        f"reference  {reference().name}",
        f"device     {checks.SESSION.device}; tolerance {checks.tolerance()}",
        "note       a first run compiles MAX kernels: about a minute on a cold cache, seconds after that",
    ]


def same_seed() -> None:
    """MAX's eager graph carries a random seed that advances as checks run; a moved seed means a
    different graph and a fresh compile. Fixing it lets the compile cache hit in any order."""
    maxprivate.seed_eager_graph(0)


@pytest.fixture(autouse=True)
def same_graph_every_check():
    same_seed()


@pytest.fixture(scope="module", autouse=True)
def same_graph_every_file():
    """Before a test file's module-scoped fixtures, which run the learner's module once for all its checks."""
    same_seed()


@pytest.fixture(scope="session")
def source(request) -> Source:
    return Source(request.config.getoption("--use"))


@pytest.fixture(scope="module")
def step(request, source):
    """The module under check: this test file's step, from --use (imported once per file)."""
    n = step_number(request.path)
    with explain.checking(source.path(n)):  # this file's checks name this file; later files' do not
        try:
            module = source.load(n, seconds=request.config.getoption("--import-timeout"))
        except ImportTimedOut:
            raise  # the report hook ends the run on it
        except StepError as error:
            raise CheckFailure(str(error)) from None
        yield module


@pytest.fixture(scope="session")
def ref():
    return reference()


@pytest.fixture(scope="session")
def config(ref):
    return ref.config


@pytest.fixture(scope="session")
def small():
    """reference.SMALL, for checks of loops around the model: a loop's logic is the same at
    any size, and this model compiles and runs in moments."""
    return Reference(SMALL)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    report = yield
    if report.failed and call.excinfo is not None:
        error = call.excinfo.value
        # pytest-timeout's failure, maybe wrapped: as the cause of a CheckFailure, or inside an import's StepError
        timeout = next((e for e in maxprivate.chain(error) if isinstance(e, pytest.fail.Exception)), None)
        hung = next((e for e in maxprivate.chain(error) if isinstance(e, Hung)), None)
        if hung:  # the watchdog: the learner's code ran past --hang-timeout, compiles not counted
            report.one_line, report.timed_out = str(hung), True
        elif timeout and (limit := re.match(r"Timeout \(>([\d.]+)s\) from pytest-timeout", str(timeout))):
            # also mid-compile, inside MAX; the signal method raised inside the code that was running
            report.one_line, report.timed_out = explain.timed_out(float(limit[1]), where_stopped(timeout)), True
        elif isinstance(error, ImportTimedOut):
            report.one_line, report.timed_out = str(error), True
        elif isinstance(error, (CheckFailure, StepError)):
            report.one_line = str(error)
        elif "step" in item.fixturenames and explain.UNDER_CHECK is not None:  # a learner's check
            report.one_line = explain.explain(error, explain.UNDER_CHECK)
        else:
            report.one_line = f"{type(error).__name__}: {error}"
        # A step's run (`pixi run sNN`, the grader) stops at its first time-out: pytest stops before the next
        # check. A session of many files (the course's suite) goes on to the other steps.
        if getattr(report, "timed_out", False) and len({i.path for i in item.session.items}) == 1:
            left = len(item.session.items) - item.session.items.index(item) - 1
            item.session.shouldfail = explain.run_stops(check_name(report), left)
    return report


def where_stopped(error: BaseException) -> str:
    """explain.stopped_at for the innermost frame of the learner's file in the error's traceback."""
    if explain.UNDER_CHECK is None:
        return ""
    mine = explain.UNDER_CHECK.resolve()
    frames = [f for f in traceback.extract_tb(error.__traceback__) if Path(f.filename).resolve() == mine]
    if not frames:
        return ""  # stopped outside the learner's code (a MAX compile, the reference)
    return explain.stopped_at(explain.shown_line(mine, frames[-1].lineno), frames[-1].line or "")


def check_name(report) -> str:
    name = report.nodeid.split("::")[-1].removeprefix("test_")
    return re.sub(r"\[.*\]$", "", name).replace("_", " ")


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    failed = terminalreporter.stats.get("failed", []) + terminalreporter.stats.get("error", [])
    if not failed:
        return
    terminalreporter.write_line("")
    # one line per cause: a file that lacks a class fails every check with the same line, so say it once
    # and name the checks it blocked
    causes: dict[tuple[str, str], list[str]] = {}
    for report in failed:
        file = Path(report.nodeid.split("::")[0]).name
        message = getattr(report, "one_line", None) or str(report.longrepr).strip().splitlines()[-1]
        names = causes.setdefault((file, message), [])
        if check_name(report) not in names:
            names.append(check_name(report))
    for (file, message), names in causes.items():
        blocked = names[0] if len(names) == 1 else f"{len(names)} checks ({', '.join(names)})"
        terminalreporter.write_line(f"✗ {file} · {blocked}: {message}")


def pytest_unconfigure(config):
    """The last line a learner reads: done and what's next, or what to do now."""
    while WATCHDOG:
        WATCHDOG.pop().stop()
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    steps = checked_steps(config)
    if reporter is None or len(steps) != 1 or config.getoption("--use") == "solutions":
        return
    n = steps[0]
    passed = len(reporter.stats.get("passed", []))
    failed = len(reporter.stats.get("failed", []) + reporter.stats.get("error", []))
    if failed:
        line = (
            f"Step {n:02d}: {failed} of {passed + failed} checks fail. "
            f"Start with the first ✗ above; `pixi run hint s{n:02d}` helps."
        )
    elif passed:
        nxt = next_step(n)
        after = (
            f"Next: step {nxt:02d}, {TITLES[nxt]} (book/src/step_{nxt:02d}.md, then pixi run s{nxt:02d})."
            if nxt
            else "That was the last step: run `pixi run generate` and read your own GPT-2's text."
        )
        line = f"Well done: step {n:02d} ({TITLES[n]}) passes all {passed} checks. {after}"
    else:
        return
    sys.stdout.write(line + "\n")
