"""The job pool the maintainers' suite runs broken code in (tutorial/mutants.py): a job that kills its
worker, or hangs past its limit, ends in a result that says so, and a fresh worker takes the next job."""

import textwrap

from tutorial.mutants import Job, Pool

CHECKS = """
import os
import time


def test_exits():
    print("about to exit")
    os._exit(7)


def test_hangs():
    print("about to hang")
    time.sleep(600)


def test_passes():
    pass
"""


def test_a_dead_or_hung_worker_is_reported_and_replaced(tmp_path):
    (tmp_path / "test_jobs.py").write_text(textwrap.dedent(CHECKS))
    pool = Pool()
    try:
        for name, timeout in (("exits", 600), ("hangs", 5), ("passes", 600)):
            args = [f"{tmp_path / 'test_jobs.py'}::test_{name}", "-s"]
            pool.add(name, Job("pytest", args, tmp_path / name, timeout))
        code, out, _ = pool.result("exits")
        assert code == -1 and "the worker running it died with exit status 7" in out, out
        assert "about to exit" in out, out  # its output so far
        code, out, _ = pool.result("hangs")
        assert code == -1 and "no result after 5 s: the worker running it was killed" in out, out
        assert "about to hang" in out, out
        code, out, _ = pool.result("passes")
        assert code == 0, out
    finally:
        pool.close()
