"""The maintainers' suite runs its broken code in a few long-lived workers, beside the other tests.

The mutation checks (tests/test_mutations.py), the broken models of tests/test_one_model.py and the
broken files of tests/test_learner_mistakes.py are jobs of the session's `pool` (tutorial/mutants.py:
each job as its own `python -m ...` would run, many per process). A job spends most of its run
compiling new MAX graphs on one core, while most other tests use one core. So the mutation tests run
last and their jobs are queued at the start: one worker runs jobs beside the other tests from the
start of the session, and a test that waits for a job's result keeps one worker per core busy.
"""

from tutorial.mutants import Pool

pool = Pool()
background = {}  # "mutants": the session's test_mutations.Mutants, when it has mutation tests


def is_mutation(item) -> bool:
    return getattr(getattr(item, "module", None), "__name__", "") == "tests.test_mutations"


def pytest_collection_modifyitems(items):
    items.sort(key=is_mutation)  # stable: the other tests keep their order


def pytest_collection_finish(session):
    if items := [item for item in session.items if is_mutation(item)]:
        order = [(item.callspec.params["n"], item.callspec.params["mutation"]) for item in items]
        background["mutants"] = items[0].module.Mutants(pool, order)


def pytest_runtest_logstart():
    pool.top_up(1)


def pytest_sessionfinish():
    pool.close()
    if mutants := background.pop("mutants", None):
        mutants.close()


def pytest_terminal_summary(terminalreporter, config):
    """With --durations: what the workers spent, and on which jobs most (a job's time is not its test's)."""
    done = {key: job.cost for key, job in pool.jobs.items() if job.cost}
    if config.option.durations is None or not done:
        return
    terminalreporter.write_sep("=", f"broken-code jobs: {len(done)}, {sum(c['cpu'] for c in done.values()):.0f} CPU s")
    for key, cost in sorted(done.items(), key=lambda kc: -kc[1]["cpu"])[: config.option.durations or len(done)]:
        name = " · ".join(str(getattr(part, "name", part)) for part in key)
        terminalreporter.write_line(f"{cost['cpu']:7.2f}s cpu {cost['wall']:7.2f}s wall  {name}")
