"""A hang in the learner's code is named in seconds; a cold MAX compile, however long, is not a hang.

Each case is a learner's step-05 file, changed the way the case says, and its check run on it
(`python -m pytest tests/test_step_05.py --use DIR`) in a process of its own (tests/support/run.py);
each check's outcome and seconds come from its result record. The watchdog (tutorial/watchdog.py)
counts only the time the checked code runs. The first case runs with the course's own limit (tutorial/grading.toml's
`hang_seconds`); the two with a cold compile point MAX's cache at an empty folder, so the compile is
cold however warm this machine's cache is, and use a 2 s limit, so that any cold compile (13 s or
more here) is several times longer than the limit.
"""

import re

from tutorial.course import solution_path
from tests.support.run import command
from tutorial.state import SETTINGS

GOOD = "return self.wte(input_ids)  # [B, T] -> [B, T, n_embd]"
LOOP = "while True:\n            pass"
# a graph new to an empty cache, realized inside the learner's __call__ (so their frame is on the
# stack all through the compile), timed by the learner's own code
COMPILE = """import sys
        import time

        import numpy as np

        start = time.monotonic()
        np.from_dlpack(self.wte(input_ids) * {k})  # realized: compiled, cold
        print(f"compiled in {{time.monotonic() - start:.1f}} s", file=sys.stderr)
        """
CASES = {
    "endless loop": (LOOP, []),
    "cold compile, then an endless loop": (COMPILE.format(k=3.0) + LOOP, ["--hang-timeout", "2"]),
    "slow first compile": (COMPILE.format(k=5.0) + GOOD, ["--hang-timeout", "2"]),
}
NAMED_WITHIN = 30  # seconds from the check's start to the line naming the hang


def run(case, folder):
    """The case's check run: (exit status, {check: its line}, stderr, {check: seconds}, the compile's
    seconds as the learner's code timed it, or None)."""
    new, args = CASES[case]
    (folder / "step_05.py").write_text(solution_path(5).read_text().replace(GOOD, new))
    cold = {"XDG_DATA_HOME": str(folder / "max-cache")} if "compile" in case else {}
    # -s: the learner's print of the compile's time reaches stderr
    done = command("pytest", ["tests/test_step_05.py", "-s", "--use", folder, *args], timeout=540, env=cold)
    seconds = {r["check"]: r["seconds"] for r in done.records if r.get("event") == "result"}
    compiled = re.search(r"compiled in ([\d.]+) s", done.stderr)
    failures = list(done.failures.values()) or [(done.stdout + done.stderr)[-1500:]]
    return done.returncode, failures, done.stderr, seconds, float(compiled[1]) if compiled else None


def test_an_endless_loop_is_named_within_30_s(tmp_path):
    code, failures, err, seconds, _ = run("endless loop", tmp_path)
    limit = SETTINGS["limits"]["hang_seconds"]
    assert limit + 5 <= NAMED_WITHIN, f"grading.toml's hang_seconds ({limit:g}) leaves no room within 30 s"
    said = f"timed out: your code ran for {limit:g} s without returning, stopped at "
    assert code == 1 and any(said in line and "(`while True:`)" in line for line in failures), failures
    took = seconds["test_output_is_batch_by_seq_by_n_embd"]
    assert took <= NAMED_WITHIN, f"the endless loop was named after {took:.1f} s"


def test_a_cold_compile_before_an_endless_loop_is_not_counted(tmp_path):
    code, failures, err, seconds, compiled = run("cold compile, then an endless loop", tmp_path)
    # counted, the compile would have been stopped as the hang, at the line that compiles
    said = "timed out: your code ran for 2 s without returning, stopped at "
    assert code == 1 and any(said in line and "(`while True:`)" in line for line in failures), failures
    assert compiled is not None and compiled > 2, f"no compile longer than the 2 s limit: {err[-1500:]}"


def test_a_slow_first_compile_passes(tmp_path):
    code, failures, err, seconds, compiled = run("slow first compile", tmp_path)
    assert code == 0, f"a cold compile, with a 2 s hang limit, failed: {failures}"
    assert compiled is not None and compiled > 2, f"no compile longer than the 2 s limit: {err[-1500:]}"
