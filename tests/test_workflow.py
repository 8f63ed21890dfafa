"""The learner's and instructor's commands: progress, hint, watch, reset, grade.

Fake submissions are made here from steps 01 and 05: a correct one (the
solution), a syntax error, a hang, an os.abort(), a sys.exit() and an
unbounded allocation. Every command runs as `python -m tutorial.X`, as its
pixi task does, with its state in a temporary directory.
"""

import json
import os
import queue
import subprocess
import sys
import threading
import time
import xml.etree.ElementTree as ET

import pytest

from tutorial import hint, progress, reset, runner, state, watch
from tutorial.course import ROOT, built, solution_path, stub_path
from tutorial.todos import blocks

# It never returns, and sleeps rather than spins: the tests beside it keep the core.
HANG = "import time\n\nwhile True:  # never returns\n    time.sleep(0.1)\n"
HOARD = (
    "import numpy as np\n\nhoard = []\nwhile True:  # allocates without bound\n"
    "    hoard.append(np.empty(2**30, dtype=np.uint8))\n"
)


def command(name, *args, state, timeout=600):
    env = {**os.environ, "TUTORIAL_STATE": str(state), "COLUMNS": "250"}
    return subprocess.run(
        [sys.executable, "-m", f"tutorial.{name}", *map(str, args)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def submission(folder, **files):
    """folder/step_NN.py for each step_NN=text; returns the folder."""
    folder.mkdir(exist_ok=True)
    for name, text in files.items():
        (folder / f"{name}.py").write_text(text)
    return folder


def solution(n, old=None, new=None):
    text = solution_path(n).read_text()
    if old is not None:
        assert text.count(old) == 1, f"{old!r} must occur once in solution_{n:02d}.py"
        text = text.replace(old, new)
    return text


def listing(folder):
    return sorted((str(p.relative_to(folder)), p.stat().st_mtime_ns, p.read_bytes()) for p in folder.rglob("*"))


# -- hint --------------------------------------------------------------------------------------
def test_hint_gives_one_level_per_call_and_remembers_it(tmp_path):
    outs = [command("hint", "s05", state=tmp_path) for _ in range(4)]
    assert all(out.returncode == 0 for out in outs), outs[0].stderr
    assert "hint 1 of 3: a nudge" in outs[0].stdout and "lookup table" in outs[0].stdout
    assert "hint 2 of 3: the API" in outs[1].stdout and "Embedding(config.vocab_size" in outs[1].stdout
    assert (
        "hint 3 of 3" in outs[2].stdout
        and "self.wte = Embedding(config.vocab_size, dim=config.n_embd)" in outs[2].stdout
    )
    assert "hint 3 of 3" in outs[3].stdout and "last hint" in outs[3].stdout  # stays at the last level
    assert json.loads((tmp_path / "hints.json").read_text()) == {"s05": 3}

    again = command("hint", "s05", "--level", "1", state=tmp_path)
    assert "hint 1 of 3" in again.stdout and json.loads((tmp_path / "hints.json").read_text()) == {"s05": 3}
    command("hint", "s05", "--reset", state=tmp_path)
    assert "hint 1 of 3" in command("hint", "s05", state=tmp_path).stdout


def test_hint_refuses_a_step_that_does_not_exist(tmp_path):
    out = command("hint", "s99", state=tmp_path)
    assert out.returncode == 2 and "not a step" in out.stderr
    assert not (tmp_path / "hints.json").exists()


@pytest.mark.parametrize("n", built())
def test_solution_lines_replace_every_todo_block(n):
    stub, text = hint.stub_text(n), solution_path(n).read_text()
    found = hint.solution_lines(stub, text)
    assert sorted(found) == sorted(blocks(stub))
    for todo, (line, lines) in found.items():
        assert lines, f"step {n:02d} TODO {todo}: no solution lines"
        assert text.splitlines()[line - 1 : line - 1 + len(lines)] == lines, (
            f"step {n:02d} TODO {todo}: wrong line number"
        )
        assert not any("TODO" in x for x in lines)


# -- reset -------------------------------------------------------------------------------------
def git(root, *args, who="learner"):
    ident = ["-c", f"user.name={who}", "-c", f"user.email={who}@example.com"]
    subprocess.run(["git", "-C", str(root), *ident, *args], check=True, capture_output=True)


@pytest.fixture
def clone(tmp_path):
    """A repo where the course committed the stub twice (a fix), then the learner committed work."""
    root = tmp_path / "course"
    (root / "steps").mkdir(parents=True)
    git(root, "init", "-q")
    git(root, "config", "user.email", "learner@example.com")
    step = root / "steps" / "step_05.py"
    for text, who in [("stub v1\n", "course"), ("stub v2\n", "course"), ("my work\n", "learner")]:
        step.write_text(text)
        git(root, "add", "steps/step_05.py")
        git(root, "commit", "-q", "-m", text, who=who)
    step.write_text("my newer work\n")
    return root


def test_reset_restores_the_courses_latest_stub_not_the_learners_commit(clone, tmp_path):
    said = reset.reset(5, root=clone, backups=tmp_path / "backups")
    assert (clone / "steps" / "step_05.py").read_text() == "stub v2\n"
    [backup] = (tmp_path / "backups").iterdir()
    assert backup.read_text() == "my newer work\n" and str(backup) in said
    assert "already the stub" in reset.reset(5, root=clone, backups=tmp_path / "backups")
    reset.reset(5, root=clone, ref="HEAD~2", backups=tmp_path / "backups")
    assert (clone / "steps" / "step_05.py").read_text() == "stub v1\n"


def test_reset_for_the_courses_author_is_the_newest_commit(tmp_path):
    root = tmp_path / "course"
    (root / "steps").mkdir(parents=True)
    git(root, "init", "-q")
    git(root, "config", "user.email", "course@example.com")  # who added the file: its author
    for text in ("stub v1\n", "stub v2\n"):
        (root / "steps" / "step_05.py").write_text(text)
        git(root, "add", "steps/step_05.py")
        git(root, "commit", "-q", "-m", text, who="course")
    assert state.committed_stub(5, root)[0] == "stub v2\n"


def test_reset_outside_git_says_so(tmp_path):
    with pytest.raises(LookupError, match="git clone"):
        reset.reset(5, root=tmp_path)
    out = command("reset", "s99", state=tmp_path)
    assert out.returncode == 2 and "not a step" in out.stderr


# -- progress and watch ------------------------------------------------------------------------
def test_progress_shows_done_not_started_and_the_bar(tmp_path):
    mine = submission(tmp_path / "mine", step_01=state.committed_stub(1)[0], step_05=solution(5))
    before = listing(mine)
    out = command("progress", "--use", mine, state=tmp_path / "state")
    assert out.returncode == 0, out.stdout + out.stderr
    lines = out.stdout.splitlines()
    assert any("s01" in x and "not started" in x for x in lines), out.stdout
    assert any("s05" in x and "✓ done" in x and "checks pass" in x for x in lines), out.stdout
    assert f"1/{len(built())} steps done" in out.stdout and "Next: step 01" in out.stdout
    assert "checking step 05" in out.stdout and "checking step 01" not in out.stdout  # a stub is not run
    assert listing(mine) == before


def test_progress_reports_a_failing_step_with_its_first_message(tmp_path, monkeypatch):
    from rich.console import Console

    monkeypatch.setattr(runner, "STATE", tmp_path / "state")

    broken = submission(tmp_path, step_01="x = (\n")
    state, line = progress.status(1, str(broken), Console())
    assert state == "failing" and line.startswith("is a dataclass:") and "syntax error: '(' was never closed" in line


def test_watch_rechecks_on_save_and_names_the_next_step(tmp_path):
    mine = submission(tmp_path / "mine", step_05=stub_path(5).read_text())
    env = {**os.environ, "TUTORIAL_STATE": str(tmp_path / "state"), "PYTHONUNBUFFERED": "1", "COLUMNS": "250"}
    process = subprocess.Popen(
        [sys.executable, "-m", "tutorial.watch", "s05", "--use", str(mine)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines = queue.Queue()
    threading.Thread(target=lambda: [lines.put(x) for x in process.stdout], daemon=True).start()

    def until(text, seconds=300):
        seen, end = [], time.monotonic() + seconds
        while time.monotonic() < end:
            try:
                seen.append(lines.get(timeout=1))
            except queue.Empty:
                continue
            if text in seen[-1]:
                return seen
        raise AssertionError(f"watch never printed {text!r}:\n" + "".join(seen))

    try:
        first = until("Watching")
        assert any(x.startswith("✗ ") for x in first) and not any("passes" in x for x in first)
        time.sleep(1)
        (mine / "step_05.py").write_text(solution(5))
        second = until("Watching")
        assert any("✓ Step 05 passes." in x and "Next: step" in x for x in second), "".join(second)
    finally:
        process.terminate()
        process.wait(timeout=30)


def test_watch_without_a_step_picks_the_first_unfinished(tmp_path, monkeypatch):
    from rich.console import Console

    monkeypatch.setattr(runner, "STATE", tmp_path / "state")
    mine = submission(tmp_path / "mine", step_01=solution(1), step_05=state.committed_stub(5)[0])
    runner.remember(1, mine / "step_01.py", True)  # passed before: not checked again
    later = [n for n in built() if n > 1]
    assert watch.first_unfinished(str(mine), Console()) == later[0]  # missing or the untouched stub


# -- grade -------------------------------------------------------------------------------------
def grade(folder, tmp_path, *args):
    out = command(
        "grade",
        folder,
        "--json",
        tmp_path / "grade.json",
        "--junit",
        tmp_path / "grade.xml",
        *args,
        state=tmp_path / "state",
    )
    report = json.loads((tmp_path / "grade.json").read_text()) if (tmp_path / "grade.json").exists() else None
    return out, report, {s["step"]: s for s in report["steps"]} if report else {}


def test_grade_gives_credit_per_check_and_never_writes_into_the_submission(tmp_path):
    folder = submission(tmp_path / "sub", step_05=solution(5), step_01="x = (\n")
    before = listing(folder)
    out, report, steps = grade(folder, tmp_path)
    assert out.returncode == 1, out.stdout + out.stderr
    assert listing(folder) == before and report["submission_changed"] == []  # no __pycache__, nothing
    assert steps[5]["status"] == "passed" and steps[5]["points"] == steps[5]["max_points"] == 5  # lookup_matches_hf = 2
    assert steps[1]["status"] == "failed" and steps[1]["points"] == 0 and steps[1]["max_points"] == 9
    assert all("syntax error" in c["message"] for c in steps[1]["checks"])
    assert report["max_version"] == "25.7.0" and report["device"] == "cpu" and report["reference"]
    assert "solutions/solution_NN.py" in report["earlier_steps"]
    assert (report["points"], report["max_points"]) == (5, 14)
    suites = ET.parse(tmp_path / "grade.xml").getroot()
    assert [s.get("failures") for s in suites] == ["9", "0"] and suites[1].get("tests") == "4"
    assert "Total: 5/14 points" in out.stdout


def test_grade_exits_0_when_everything_passes(tmp_path):
    out, report, steps = grade(submission(tmp_path / "sub", step_05=solution(5)), tmp_path)
    assert out.returncode == 0 and report["passed"] and list(steps) == [5], out.stdout
    assert report["limits"] == state.SETTINGS["limits"], report["limits"]  # grading.toml's, without flags


def test_grade_survives_a_hang_and_an_abort(tmp_path):
    # a step's time limit ends a hang (here 4 s, under the import limit) and says where it was: the hang
    # watchdog's last note in the result record
    out, report, steps = grade(submission(tmp_path / "hang", step_01=HANG), tmp_path, "--timeout", 4)
    assert out.returncode == 1, out.stdout + out.stderr
    assert steps[1]["status"] == "timed out" and "time limit (4 s)" in steps[1]["message"]
    assert ", stopped at " in steps[1]["message"] and "step_01.py:" in steps[1]["message"]  # where it hung
    abort = solution(5, "return self.wte(input_ids)", "import os\n        os.abort()")
    out, report, steps = grade(submission(tmp_path / "abort", step_05=abort), tmp_path)
    assert out.returncode == 1, out.stdout + out.stderr
    # a crash names the check it ended, not the line: no record holds that
    assert steps[5]["status"] == "crashed" and "SIGABRT" in steps[5]["message"]
    assert "during 'output is batch by seq by n embd'" in steps[5]["message"], steps[5]["message"]
    statuses = [c["status"] for c in steps[5]["checks"]]
    assert (
        statuses == ["passed", "crashed", "not run", "not run"] and steps[5]["points"] == 1
    )  # earlier checks keep points


def test_grade_survives_sys_exit_and_a_memory_blow_up(tmp_path):
    leave = solution(5, "self.wte = Embedding(config.vocab_size, dim=config.n_embd)", "import sys\n        sys.exit(3)")
    out, report, steps = grade(submission(tmp_path / "sub", step_01=HOARD, step_05=leave), tmp_path)
    assert out.returncode == 1, out.stdout + out.stderr
    assert steps[1]["status"] == "out of memory" and "MemoryError" in steps[1]["message"]
    assert steps[5]["status"] == "failed" and "sys.exit(3)" in steps[5]["message"]


def test_grade_refuses_bad_arguments(tmp_path):
    empty = submission(tmp_path / "empty")
    assert command("grade", empty, state=tmp_path).returncode == 2
    folder = submission(tmp_path / "sub", step_05=solution(5))
    out = command("grade", folder, "--json", folder / "grade.json", state=tmp_path)
    assert out.returncode == 2 and "never writes into the submission" in out.stderr
    assert sorted(p.name for p in folder.iterdir()) == ["step_05.py"]


def test_weights_come_from_grading_toml(monkeypatch):
    from tutorial import grade as grading

    monkeypatch.setitem(
        state.SETTINGS, "points", {"default": 1, "s01": {"default_matches_hf": 0.5, "default_matches_hf[n_embd]": 3}}
    )
    assert grading.weight(1, "test_default_matches_hf[n_head]") == 0.5
    assert grading.weight(1, "test_default_matches_hf[n_embd]") == 3
    assert grading.weight(1, "test_is_a_dataclass") == 1
    assert grading.weight(5, "test_lookup_matches_hf") == 1
