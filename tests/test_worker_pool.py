"""The job pool the maintainers' suite runs broken code in (tests/support/mutants.py): a job that kills its
worker, or hangs past its limit, ends in a result that says so, and a fresh worker takes the next job."""

import os
import textwrap
import time

import pytest

from tests.support.mutants import Job, Pool

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


def test_a_fresh_job_reads_its_stdin_and_is_killed_past_its_limit(tmp_path):
    pool = Pool()
    try:
        pool.add("reads", Job("json.tool", ["--compact"], tmp_path / "reads", 60, fresh=True, stdin='{"a":  [1]}'))
        pool.add("hangs", Job("http.server", ["0", "--bind", "127.0.0.1"], tmp_path / "hangs", 2, fresh=True))
        code, out, _ = pool.result("reads")
        assert (code, out) == (0, '{"a":[1]}\n'), out
        code, out, _ = pool.result("hangs")
        assert code == -1 and "no result after 2 s: its process was killed" in out, out
        assert pool.fresh == [] and pool.jobs["hangs"].cost is None
    finally:
        pool.close()


def test_started_pool_runs_its_queue_while_nobody_waits(tmp_path):
    """`start(1)`: jobs run one after another beside a long test, which never asks for their results."""
    pool = Pool()
    try:
        for name in ("first", "second"):
            pool.add(name, Job("json.tool", [], tmp_path / name, 60, fresh=True, stdin="[]"))
        pool.start(1)
        end = time.monotonic() + 60
        while not all(job.result for job in pool.jobs.values()) and time.monotonic() < end:
            time.sleep(0.1)
        assert [job.result and job.result[0] for job in pool.jobs.values()] == [0, 0]
    finally:
        pool.close()


@pytest.mark.timeout(3)
def test_a_job_waiting_in_the_queue_does_not_count_against_its_tests_limit(tmp_path):
    """The pool saturated by slow jobs (sleeps): a quick job's test waits in the queue much longer than
    its own 3 s limit and still passes, because its limit stops while it waits (`limit_paused`); the
    job's own limit counts from when it starts."""
    cores, pool = os.cpu_count() or 1, Pool()
    sleep = ["-n", "1", "-r", "1", "__import__('time').sleep(4)"]
    try:
        for i in range(2 * cores):  # two rounds of sleeps ahead of it, however wide the pool gets
            pool.add(("sleep", i), Job("timeit", sleep, tmp_path / f"sleep{i}", 60, fresh=True))
        pool.start(cores)
        pool.add("quick", Job("json.tool", [], tmp_path / "quick", 60, fresh=True, stdin="[1]"))
        start = time.monotonic()
        code, out, _ = pool.result("quick")
        waited = time.monotonic() - start
        assert code == 0 and out.strip() == "[\n    1\n]", out
        assert waited > 6, f"the quick job waited only {waited:.1f} s: the pool was not saturated"
    finally:
        pool.close()
