"""A grader's limits, applied by the step's run itself (tutorial/limits.py): the run ends with its
grader, so a grader killed with SIGKILL leaves no check running on for up to its time limit."""

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tutorial.course import ROOT, solution_path

GOOD = "return self.wte(input_ids)  # [B, T] -> [B, T, n_embd]"


def running(folder: Path) -> list[int]:
    """The pids whose command line names folder."""
    found = []
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            if str(folder).encode() in (proc / "cmdline").read_bytes():
                found.append(int(proc.name))
        except OSError:
            pass
    return found


@pytest.mark.skipif(not Path("/proc/self/cmdline").exists(), reason="reads /proc (Linux): the grader's own platform")
def test_a_run_ends_when_its_grader_is_killed(tmp_path):
    folder = tmp_path / "endless"
    folder.mkdir()
    text = solution_path(5).read_text()
    assert text.count(GOOD) == 1
    (folder / "step_05.py").write_text(text.replace(GOOD, "while True:\n            pass"))
    script = f"from tutorial.runner import run_step; run_step(5, {str(folder)!r}, seconds=600, hang_seconds=600)"
    grader = subprocess.Popen([sys.executable, "-c", script], cwd=ROOT, start_new_session=True)
    deadline = time.monotonic() + 120
    while not running(folder) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert running(folder), "the step's run never started"
    time.sleep(10)  # well into the run: the plugin loaded, the endless loop reached or near
    grader.kill()
    grader.wait()
    deadline = time.monotonic() + 20
    while (left := running(folder)) and time.monotonic() < deadline:
        time.sleep(0.5)
    for pid in left:  # tidy up before failing
        os.kill(pid, 9)
    assert not left, f"the step's run (pids {left}) outlived its killed grader by 20 s"
