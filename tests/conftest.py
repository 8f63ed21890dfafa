"""The maintainers' suite runs its mutation checks last, and starts them first.

Each mutation check (tests/test_mutations.py) is a fresh process that spends most of its run
compiling new MAX graphs on one core, while most other tests use one core. So one mutant runs
beside the other tests from the start of the session, and the mutation tests keep one per core.
"""

background = {}  # "mutants": the session's test_mutations.Mutants, when it has mutation tests


def is_mutation(item) -> bool:
    return getattr(getattr(item, "module", None), "__name__", "") == "tests.test_mutations"


def pytest_collection_modifyitems(items):
    items.sort(key=is_mutation)  # stable: the other tests keep their order


def pytest_collection_finish(session):
    if items := [item for item in session.items if is_mutation(item)]:
        order = [(item.callspec.params["n"], item.callspec.params["mutation"]) for item in items]
        background["mutants"] = items[0].module.Mutants(order)


def pytest_runtest_logstart():
    if mutants := background.get("mutants"):
        mutants.top_up(1)


def pytest_sessionfinish():
    if mutants := background.pop("mutants", None):
        mutants.close()
