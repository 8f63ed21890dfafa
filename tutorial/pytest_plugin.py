"""The check harness every tests/test_step_NN.py shares (loaded by pytest.ini: -p).

Options (see README):
  --use steps|solutions|DIR   what to check: your steps/ (default), the reference
                              solutions/, or a directory of step_NN.py files
  --device cpu|gpu            where MAX runs the checks (default cpu)
"""

import re
import sys
from pathlib import Path

import pytest

from tutorial import fastmax

fastmax.prepare()  # before anything imports MAX: saves ~6 s per run

from tutorial import checks  # noqa: E402
from tutorial.checks import CheckFailure  # noqa: E402
from tutorial.course import TITLES, next_step  # noqa: E402
from tutorial.explain import StepError, explain  # noqa: E402
from tutorial.impl import Source  # noqa: E402
from tutorial.reference import SMALL, Reference, reference  # noqa: E402


def pytest_addoption(parser):
    group = parser.getgroup("gpt2 tutorial")
    group.addoption("--use", default="steps", help="steps (yours), solutions, or a directory of step_NN.py files")
    group.addoption("--device", default="cpu", choices=["cpu", "gpu"], help="where MAX runs (default cpu)")


def step_number(path) -> int | None:
    found = re.search(r"test_step_(\d\d)\.py$", str(path))
    return int(found[1]) if found else None


def checked_steps(config) -> list[int]:
    return sorted({n for arg in config.args if (n := step_number(arg.split("::")[0]))})


def pytest_configure(config):
    checks.DEVICE = config.getoption("--device")


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
        f"device     {checks.DEVICE}; tolerance {checks.tolerance()}",
        "note       a first run compiles MAX kernels: about a minute on a cold cache, seconds after that",
    ]


@pytest.fixture(autouse=True)
def same_graph_every_run():
    """MAX's eager graph carries a random seed that advances as checks run; a moved seed means a
    different graph and a fresh compile. Fixing it per check lets the compile cache hit in any order."""
    from max.experimental import tensor
    from max.graph import ops

    with tensor.GRAPH.graph:
        ops.random.set_seed(0)


@pytest.fixture(scope="session")
def source(request) -> Source:
    return Source(request.config.getoption("--use"))


@pytest.fixture
def step(request, source):
    """The module under check: this test file's step, from --use."""
    n = step_number(request.path)
    checks.LEARNER_FILE = source.path(n)
    try:
        return source.load(n)
    except StepError as error:
        raise CheckFailure(str(error)) from None


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
        if isinstance(error, (CheckFailure, StepError)):
            report.one_line = str(error)
        elif (timeout := next((e for e in (error, error.__cause__) if isinstance(e, pytest.fail.Exception)), None)) and (
            limit := re.match(r"Timeout \(>([\d.]+)s\) from pytest-timeout", str(timeout))  # also mid-compile, inside MAX
        ):
            report.one_line = (
                f"timed out after {float(limit[1]):g} s. That is not a wrong answer: look for an endless "
                "loop or very slow code; a first run on a cold MAX cache can also take minutes, so run it again"
            )
        elif checks.LEARNER_FILE is not None:
            report.one_line = explain(error, checks.LEARNER_FILE)
        else:
            report.one_line = f"{type(error).__name__}: {error}"
    return report


def check_name(report) -> str:
    name = report.nodeid.split("::")[-1].removeprefix("test_")
    return re.sub(r"\[.*\]$", "", name).replace("_", " ")


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    failed = terminalreporter.stats.get("failed", []) + terminalreporter.stats.get("error", [])
    if not failed:
        return
    terminalreporter.write_line("")
    for report in failed:
        file = Path(report.nodeid.split("::")[0]).name
        message = getattr(report, "one_line", None) or str(report.longrepr).strip().splitlines()[-1]
        terminalreporter.write_line(f"✗ {file} · {check_name(report)}: {message}")


def pytest_unconfigure(config):
    """The last line a learner reads: done and what's next, or what to do now."""
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    steps = checked_steps(config)
    if reporter is None or len(steps) != 1 or config.getoption("--use") == "solutions":
        return
    n = steps[0]
    passed = len(reporter.stats.get("passed", []))
    failed = len(reporter.stats.get("failed", []) + reporter.stats.get("error", []))
    if failed:
        line = f"Step {n:02d}: {failed} of {passed + failed} checks fail. Start with the first ✗ above; `pixi run hint s{n:02d}` helps."
    elif passed:
        nxt = next_step(n)
        after = (f"Next: step {nxt:02d}, {TITLES[nxt]} (book/src/step_{nxt:02d}.md, then pixi run s{nxt:02d})."
                 if nxt else "That was the last step: run `pixi run generate` and read your own GPT-2's text.")
        line = f"Well done: step {n:02d} ({TITLES[n]}) passes all {passed} checks. {after}"
    else:
        return
    sys.stdout.write(line + "\n")
