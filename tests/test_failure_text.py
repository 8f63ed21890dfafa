"""A failing check prints the same text alone and inside a longer run.

The learner's file under check belongs to its test file's checks only (tutorial/explain.py's
`checking`, around the plugin's `step` fixture): a failure in a later test
file that checks no step must not be read as the learner's, cut to one line and pointed at
their file.
"""

import re
import subprocess
import sys

from tutorial.course import ROOT

PROBE = """
def test_a_failure_of_several_lines():
    raise AssertionError("the first line\\nthe second line")
"""


def failure_text(*paths) -> str:
    """The summary's text for the probe's failure: its ✗ line and the lines that continue it."""
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-c", ROOT / "pytest.ini", "--rootdir", ROOT, "--use", "solutions", *paths],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    lines = run.stdout.splitlines()
    start = next(
        (i for i, line in enumerate(lines) if line.startswith("✗ ") and "· a failure of several lines:" in line), None
    )
    assert start is not None, f"no ✗ line for the probe:\n{run.stdout[-2000:]}{run.stderr[-2000:]}"
    ends = ("✗ ", "FAILED ", "ERROR ")  # the next failure, or the counts line (`1 failed, 9 passed in ...`)
    end = next(
        (
            i
            for i in range(start + 1, len(lines))
            if lines[i].startswith(ends) or re.match(r"\d+ \w+(, \d+ \w+)* in ", lines[i])
        ),
        len(lines),
    )
    return "\n".join(lines[start:end])


def test_a_failure_reads_the_same_after_a_steps_checks(tmp_path):
    probe = tmp_path / "test_probe.py"
    probe.write_text(PROBE)
    alone = failure_text(probe)
    after = failure_text(ROOT / "tests" / "test_step_01.py", probe)
    assert "the second line" in alone, alone
    assert after == alone, f"alone:\n{alone}\nafter step 01's checks:\n{after}"
