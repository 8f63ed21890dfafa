"""The maintainers' suite runs its broken code and its longest commands in the background, beside the other tests.

Both are jobs of the session's `pool` (tests/support/mutants.py), queued when collection ends:
- broken code: the mutation checks (tests/test_mutations.py), the broken models of tests/test_one_model.py
  and the broken files of tests/test_learner_mistakes.py, each as its own `python -m ...` would run, many
  per long-lived worker process. Such a job spends most of its run compiling new MAX graphs on one core;
- early jobs: whole commands a test module yields from `early_jobs(folder)` (`bench`, each chapter's
  Try it), each in a process of its own.
- a module that sets RUN_APART (its tests drive commands and wait on them, one core at most): its tests,
  in a pytest session of their own (an `Apart` item here reports each one's outcome there).
A thread keeps one job running beside the tests from then on (most tests use one core), and a test that
waits for a job's result keeps one per core busy. The tests that read early jobs' results run after the
others, and the mutation tests last, so their jobs have mostly run by then.
"""

import functools
import os
import shutil
import tempfile
import xml.etree.ElementTree as ET
from collections import defaultdict
from pathlib import Path

import pytest

from tutorial.checks import CheckFailure
from tutorial.maxprivate import compiled_graphs
from tests.support.mutants import Job, Pool

pool = Pool()
COMPILED = {}  # "before": the compiled graphs in MAX's cache when the session started
background = {}  # "mutants": the session's test_mutations.Mutants, when it has mutation tests
JOBS = Path(tempfile.mkdtemp(prefix="early-jobs-"))  # the folders of the test modules' early jobs
APART = "TUTORIAL_APART"  # set in the session that runs the RUN_APART modules' tests: it runs them itself
APART_SECONDS = 1800  # that session's limit


def is_mutation(item) -> bool:
    return getattr(getattr(item, "module", None), "__name__", "") == "tests.test_mutations"


def has_early_jobs(item) -> bool:
    return hasattr(getattr(item, "module", None), "early_jobs")


@functools.cache
def apart_session() -> dict:
    """Each RUN_APART test's JUnit <testcase> by node id, once that session is over; for a test it did not
    report, why."""
    code, out, err = pool.result("apart")
    report = JOBS / "apart" / "junit.xml"
    if not report.exists():
        return defaultdict(lambda: f"the session running it ended with exit status {code}:\n{out[-1500:]}{err[-1500:]}")
    cases = defaultdict(lambda: f"the session running it did not report it:\n{out[-1500:]}")
    for case in ET.parse(report).iter("testcase"):
        cases[f"{case.get('classname').replace('.', '/')}.py::{case.get('name')}"] = case
    return cases


class Apart(pytest.Item):
    """A test of a RUN_APART module, run in a pytest session of its own beside this one: this item
    waits for that session and reports the test's outcome there, from its JUnit report."""

    def runtest(self):
        case = apart_session()[self.nodeid]
        if isinstance(case, str):
            raise RuntimeError(case)
        if (failed := case.find("failure")) is not None or (failed := case.find("error")) is not None:
            raise CheckFailure(failed.get("message") or failed.text)  # its one line, as that session printed it
        if (skipped := case.find("skipped")) is not None:
            pytest.skip(skipped.get("message"))

    def reportinfo(self):
        return self.path, None, self.name


def pytest_collection_modifyitems(session, config, items):
    apart = [i for i in items if getattr(getattr(i, "module", None), "RUN_APART", False) and not os.environ.get(APART)]
    if apart and len(apart) < len(items):  # beside other tests: in a session of their own
        folder = JOBS / "apart"
        args = [*(i.nodeid for i in apart), "--junitxml", folder / "junit.xml"]
        args += ["--use", config.getoption("--use"), "--device", config.getoption("--device")]
        pool.add("apart", Job("pytest", args, folder, APART_SECONDS, priority=2, fresh=True, env={APART: "1"}))
        at = {i.nodeid: Apart.from_parent(i.parent, name=i.name) for i in apart}
        for item in at.values():  # the first waits for the whole session, cold compiles included
            item.add_marker(pytest.mark.timeout(APART_SECONDS))
        items[:] = [at.get(i.nodeid, i) for i in items]
    # stable: the other tests keep their order; those reading early jobs' results come after them, so
    # the jobs have run by then, and the mutation tests come last
    items.sort(key=lambda item: (is_mutation(item), has_early_jobs(item) or isinstance(item, Apart)))


def pytest_collection_finish(session):
    if items := [item for item in session.items if is_mutation(item) and hasattr(item, "callspec")]:
        order = [(item.callspec.params["n"], item.callspec.params["mutation"]) for item in items]
        background["mutants"] = items[0].module.Mutants(pool, order)
    for module in dict.fromkeys(item.module for item in session.items if not isinstance(item, Apart)):
        # a module's runs of a whole command (`early_jobs`): queued now, they run beside the tests before it
        for key, job in getattr(module, "early_jobs", lambda folder: [])(JOBS / module.__name__):
            pool.add(key, job)
    if pool.jobs:  # (a step's own checks have none)
        pool.start(1)  # one worker busy beside the tests, from now on


def pytest_sessionfinish():
    pool.close()
    shutil.rmtree(JOBS, ignore_errors=True)
    if mutants := background.pop("mutants", None):
        mutants.close()


def pytest_sessionstart(session):
    COMPILED["before"] = {path.name for path in compiled_graphs()}


def pytest_terminal_summary(terminalreporter, config):
    """How many distinct MAX graphs the session compiled (new files in MAX's cache, its workers'
    included); with --durations, what the workers spent, and on which jobs most."""
    if "before" in COMPILED:
        now = compiled_graphs()
        new = len({path.name for path in now} - COMPILED["before"])
        terminalreporter.write_line(f"MAX graphs compiled by this session: {new} new, {len(now)} in the cache")
    done = {key: job.cost for key, job in pool.jobs.items() if job.cost}
    if config.option.durations is None or not done:
        return
    cpu = sum(cost["cpu"] for cost in done.values())
    terminalreporter.write_sep("=", f"pool jobs (broken code, early commands, RUN_APART): {len(done)}, {cpu:.0f} CPU s")
    for key, cost in sorted(done.items(), key=lambda kc: -kc[1]["cpu"])[: config.option.durations or len(done)]:
        name = " · ".join(str(getattr(part, "name", part)) for part in (key if isinstance(key, tuple) else [key]))
        terminalreporter.write_line(f"{cost['cpu']:7.2f}s cpu {cost['wall']:7.2f}s wall  {name}")
