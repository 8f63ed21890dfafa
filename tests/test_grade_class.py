"""Grading at class scale: grade-class, Gradescope, the GitHub Classroom template, and hangs.

A small class is made here from steps 01 and 02 (no big MAX compiles): a correct student, a
partial one, one whose step_01.py loops forever at import, and one whose step_01.py calls
os._exit at import. Limits are short (flags).
"""

import csv
import json
import os
import re
import signal
import subprocess
import sys
import time
import tomllib
import zipfile
from pathlib import Path

import pytest
import yaml

from tests.test_workflow import HANG, command, solution, submission
from tutorial import classroom
from tutorial.course import ROOT, TITLES, built
from tutorial.grade import course_checks, full_points

STEPS = built()
WRONG_N_HEAD = ("n_head: int = 12", "n_head: int = 8")  # fails one check of step 01 (8 of 9 points)
QUICK = ["--import-timeout", 5, "--timeout", 120, "--jobs", 2]


@pytest.fixture(scope="module")
def full():
    """Each step's full points, from tutorial/grading.toml and the course's checks."""
    return full_points(course_checks())


def make_class(folder):
    folder.mkdir(parents=True)
    submission(folder / "alice", step_01=solution(1), step_02=solution(2))  # correct
    submission(folder / "bob", step_01=solution(1, *WRONG_N_HEAD))  # partial
    submission(folder / "carol", step_01="import os\n\n" + HANG)  # an endless loop at top level
    submission(folder / "dave", step_01="import os\n\nos._exit(3)\n")  # the process dies at import
    return folder


def listing(folder):
    """Every path under folder, with its mtime and, for a file, its bytes: to see that nothing was written."""
    return sorted(
        (str(p.relative_to(folder)), p.stat().st_mtime_ns, p.is_file() and p.read_bytes()) for p in folder.rglob("*")
    )


def gradebook(out):
    with (out / "gradebook.csv").open(newline="") as file:
        rows = list(csv.DictReader(file))
    return {row["student"]: row for row in rows}, list(rows[0])


def grade_class(folder, out, *args, state):
    start = time.monotonic()
    done = command("grade_class", folder, "--out", out, *QUICK, *args, state=state)
    return done, time.monotonic() - start


# -- grade-class ---------------------------------------------------------------------------------
def test_grade_class_writes_a_gradebook_and_regrades_only_what_changed(tmp_path, full):
    folder, out = make_class(tmp_path / "class"), tmp_path / "grades"
    before = listing(folder)
    done, first = grade_class(folder, out, state=tmp_path / "state")
    assert done.returncode == 0, done.stdout + done.stderr
    book, columns = gradebook(out)
    steps = [f"s{n:02d}" for n in STEPS]
    assert columns == ["student", *steps, "total", "max", *(f"{s} status" for s in steps)]
    assert sorted(book) == ["alice", "bob", "carol", "dave"]
    # a correct submission gets the steps' full points, from grading.toml (the same as Gradescope's, below)
    assert (float(book["alice"]["s01"]), float(book["alice"]["s02"])) == (full[1], full[2])
    assert float(book["alice"]["total"]) == full[1] + full[2] and float(book["alice"]["max"]) == sum(full.values())
    assert [book["alice"][f"{s} status"] for s in steps] == ["passed", "passed"] + ["not submitted"] * (len(steps) - 2)
    assert float(book["bob"]["s01"]) == full[1] - 1 and book["bob"]["s01 status"] == "failed"
    assert book["carol"]["s01 status"] == "timed out" and book["dave"]["s01 status"] == "crashed"
    assert book["carol"]["total"] == book["dave"]["total"] == "0"
    for name in book:  # each student's JSON and JUnit, as `grade` writes them
        assert (out / f"{name}.xml").exists() and json.loads((out / f"{name}.json").read_text())["grade_key"]
    carol = json.loads((out / "carol.json").read_text())["steps"][0]
    assert "did not finish importing in 5 s (an endless loop at top level?)" in carol["message"]
    assert re.search(r"carol/step_01\.py:[56] when stopped", carol["message"]) and carol["seconds"] < 60
    assert [c["status"] for c in carol["checks"]][:2] == ["timed out", "not run"]
    assert "exited with code 3" in json.loads((out / "dave.json").read_text())["steps"][0]["message"]
    assert listing(folder) == before  # nothing written into the class's folder

    # unchanged: nobody is graded again, and the gradebook is the same
    stamps = {p.name: p.stat().st_mtime_ns for p in out.glob("*.json")}
    done, again = grade_class(folder, out, state=tmp_path / "state")
    assert done.returncode == 0 and "4 of 4 students unchanged since their last grade: skipped" in done.stdout
    assert {p.name: p.stat().st_mtime_ns for p in out.glob("*.json")} == stamps and gradebook(out)[0] == book
    assert again < first / 2, (again, first)

    # a late fix: only that student is graded
    (folder / "bob" / "step_01.py").write_text(solution(1))
    before = listing(folder)
    done, _ = grade_class(folder, out, state=tmp_path / "state")
    assert "3 of 4 students unchanged" in done.stdout and "1 graded, 3 unchanged" in done.stdout, done.stdout
    assert gradebook(out)[0]["bob"]["s01 status"] == "passed"
    assert {p.name: p.stat().st_mtime_ns for p in out.glob("*.json") if p.name != "bob.json"} == {
        k: v for k, v in stamps.items() if k != "bob.json"
    }

    done, _ = grade_class(folder, out, "--force", state=tmp_path / "state")  # everyone again
    assert "students unchanged" not in done.stdout and "4 graded, 0 unchanged" in done.stdout, done.stdout
    assert all(p.stat().st_mtime_ns != stamps[p.name] for p in out.glob("*.json"))
    assert listing(folder) == before


def test_grade_class_refuses_to_write_into_the_class(tmp_path):
    folder = make_class(tmp_path / "class")
    done = command("grade_class", folder, "--out", folder / "grades", state=tmp_path / "state")
    assert done.returncode == 2 and "never writes into the class's folder" in done.stderr
    assert not (folder / "grades").exists()


# -- hangs cost seconds --------------------------------------------------------------------------
def test_a_top_level_endless_loop_costs_the_import_limit_not_minutes(tmp_path):
    """The import limit ends it, not the step's (here 60 s) nor a check's (600 s). grading.toml's import
    limit is 60 s; test_workflow checks that `grade` applies it by default. Here it is 3 s."""
    folder = submission(tmp_path / "sub", step_01=HANG)
    start = time.monotonic()
    args = ["--json", tmp_path / "g.json", "--import-timeout", 3, "--timeout", 60]
    out = command("grade", folder, *args, state=tmp_path)
    took = time.monotonic() - start
    step = json.loads((tmp_path / "g.json").read_text())["steps"][0]
    assert step["status"] == "timed out", out.stdout
    assert step["message"].startswith(
        "is a dataclass: your file did not finish importing in 3 s (an endless loop at top level?)"
    ), step["message"]
    assert took < 30, f"grading a top-level endless loop took {took:.0f} s"


def test_a_hang_in_a_check_ends_the_run_and_names_the_learners_line(tmp_path):
    hang = solution(1) + "\n    def __post_init__(self):\n        while True:  # spins\n            pass\n"
    folder = submission(tmp_path / "sub", step_01=hang)
    line = hang.splitlines().index("        while True:  # spins") + 1
    out = subprocess.run(
        [sys.executable, "-m", "pytest", "tests/test_step_01.py", "--use", str(folder), "-o", "timeout=3"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    # the first check to build a config hangs; the other 7 are not run, each for its own 3 s
    assert "1 failed, 1 passed" in out.stdout, out.stdout
    assert "'default matches hf' timed out: the run stops here, 7 later checks not run" in out.stdout
    assert f"timed out after 3 s, stopped at {folder / 'step_01.py'}:{line} (`while True:  # spins`)" in out.stdout


def step_processes(pid):
    """The grader's step processes (`pytest ... -p tutorial.record`), alive and not zombies (Linux /proc)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            line = (stat.parent / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if int(fields[1]) == pid and fields[0] != "Z" and b"tutorial.record" in line:
            found.append(int(stat.parent.name))
    return found


def alive(pid):
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="reads /proc")
@pytest.mark.parametrize(
    "tool, sig", [("grade", signal.SIGTERM), ("grade_class", signal.SIGTERM), ("grade_class", signal.SIGINT)]
)
def test_stopping_the_grader_stops_its_step_processes(tmp_path, tool, sig):
    """Step processes run in their own sessions (so a timeout kills all they started): no signal to
    the grader reaches them, so the grader must kill them itself."""
    (tmp_path / "class").mkdir()
    folder = submission(tmp_path / "class" / "carol", step_01=HANG)
    target = folder if tool == "grade" else folder.parent
    args = (
        ["--json", tmp_path / "g.json", "--junit", tmp_path / "g.xml"] if tool == "grade" else ["--out", tmp_path / "o"]
    )
    env = {**os.environ, "TUTORIAL_STATE": str(tmp_path / "state")}
    grader = subprocess.Popen(
        [sys.executable, "-m", f"tutorial.{tool}", str(target), *map(str, args), "--import-timeout", "600"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    steps = []
    try:
        end = time.monotonic() + 120
        while not (steps := step_processes(grader.pid)) and time.monotonic() < end:
            time.sleep(0.2)
        assert steps, "the grader never started a step process"
        time.sleep(1)
        grader.send_signal(sig)
        assert grader.wait(timeout=30) == 128 + sig
        assert not [pid for pid in steps if alive(pid)], "a step process outlived the grader"
    finally:
        grader.kill()
        for pid in steps:  # when this test fails: no spinning leftover
            if alive(pid):
                os.kill(pid, signal.SIGKILL)


# -- Gradescope ----------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def autograder(tmp_path_factory):
    """The zip `pixi run gradescope` builds, unpacked as Gradescope unpacks it into /autograder/source."""
    root = tmp_path_factory.mktemp("gradescope")
    built_zip = root / "autograder.zip"
    done = subprocess.run(
        [sys.executable, "-m", "tutorial.gradescope", "build", "--out", str(built_zip)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    with zipfile.ZipFile(built_zip) as zf:
        zf.extractall(root / "source")
        modes = {i.filename: i.external_attr >> 16 for i in zf.infolist()}
    for script in ("setup.sh", "run_autograder"):  # extractall drops the modes; Gradescope keeps them
        (root / "source" / script).chmod(modes[script])
    return root / "source", modes


def test_the_autograder_zip_follows_gradescopes_layout(autograder):
    source, modes = autograder
    assert modes["setup.sh"] & 0o111 and modes["run_autograder"] & 0o111  # at the zip's root, executable
    assert (source / "requirements.txt").read_text() == (ROOT / "requirements.txt").read_text()
    setup = (source / "setup.sh").read_text()
    assert "python3.11 -m venv" in setup and re.search(r"pip\" install .*-r \"\$source_dir/requirements.txt\"", setup)
    for name in (
        "pytest.ini",
        "tutorial/grade.py",
        "tutorial/grading.toml",
        *(f"tests/test_step_{n:02d}.py" for n in STEPS),
        *(f"solutions/solution_{n:02d}.py" for n in STEPS),
    ):
        assert name in modes, f"the autograder zip lacks {name}"
    suite_only = [name for name in modes if name.startswith(("tests/support/", "tests/conftest.py"))]
    assert not suite_only, f"the autograder zip holds the maintainers' suite code: {suite_only}"
    assert subprocess.run(["bash", "-n", source / "setup.sh"]).returncode == 0


def run_autograder(source, tmp_path, full, **files):
    """run_autograder against a fake /autograder (its paths moved by environment variables)."""
    root = tmp_path / "autograder"
    root.mkdir()
    (root / "source").symlink_to(source)  # the unpacked zip, shared by the tests
    submission(root / "submission", **files)
    env = {**os.environ, "AUTOGRADER_ROOT": str(root), "AUTOGRADER_PYTHON": sys.executable}
    env.pop("TUTORIAL_STATE", None)
    done = subprocess.run(
        [str(root / "source" / "run_autograder")], env=env, capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stdout + done.stderr
    results = json.loads((root / "results" / "results.json").read_text())
    assert isinstance(results["score"], (int, float)) and results["tests"]
    for test in results["tests"]:  # every field Gradescope reads per test, of the types it takes
        assert {"name", "score", "max_score", "status", "output", "visibility"} <= set(test), test
        assert test["status"] in ("passed", "failed") and test["visibility"] == "visible"
        assert isinstance(test["output"], str) and 0 <= test["score"] <= test["max_score"]
    assert results["score"] == sum(t["score"] for t in results["tests"])
    assert sum(t["max_score"] for t in results["tests"]) == sum(full.values())  # out of the whole course
    return results, {n: [t for t in results["tests"] if t["name"].startswith(f"s{n:02d} ")] for n in STEPS}


def test_gradescope_gives_a_correct_submission_full_points(autograder, tmp_path, full):
    results, steps = run_autograder(autograder[0], tmp_path, full, step_01=solution(1), step_02=solution(2))
    assert all(t["status"] == "passed" for n in (1, 2) for t in steps[n])
    assert [sum(t["score"] for t in steps[n]) for n in (1, 2)] == [full[1], full[2]]
    assert results["score"] == full[1] + full[2]
    assert all(
        t["status"] == "failed" and t["score"] == 0 and "not submitted" in t["output"]
        for n in STEPS[2:]
        for t in steps[n]
    )


def test_gradescope_scores_a_broken_submission_per_check(autograder, tmp_path, full):
    results, steps = run_autograder(
        autograder[0], tmp_path, full, step_01=solution(1, *WRONG_N_HEAD), step_02="raise RuntimeError('unfinished')\n"
    )
    [wrong] = [t for t in steps[1] if t["status"] == "failed"]
    assert "n_head" in wrong["name"] and "n_head defaults to 8" in wrong["output"] and wrong["score"] == 0
    assert all(t["status"] == "failed" and "unfinished" in t["output"] for t in steps[2])
    assert results["score"] == full[1] - wrong["max_score"]


# -- GitHub Classroom ----------------------------------------------------------------------------
def test_the_classroom_template_is_generated_from_grading_toml(full):
    assert classroom.TEMPLATE.read_text() == classroom.render(full), "run `pixi run classroom`"


def test_the_classroom_template_runs_each_steps_check_with_its_points(full):
    workflow = yaml.safe_load(classroom.TEMPLATE.read_text())
    assert set(workflow["on"]) == {"push", "repository_dispatch"}
    [job] = workflow["jobs"].values()
    steps = {s.get("id"): s for s in job["steps"]}
    python = next(s for s in job["steps"] if s.get("uses", "").startswith("actions/setup-python"))
    assert python["with"]["python-version"] == "3.11"
    install = next(s["run"] for s in job["steps"] if "pip install" in s.get("run", ""))
    assert "python -m venv .venv" in install and "pip install -r requirements.txt" in install
    tasks = tomllib.loads((ROOT / "pixi.toml").read_text())["tasks"]
    for n in STEPS:  # every step, the command of its pixi task, and its full points
        grader = steps[f"s{n:02d}"]
        assert grader["uses"].startswith("classroom-resources/autograding-command-grader")
        assert grader["with"]["test-name"] == f"s{n:02d} {TITLES[n]}"
        assert grader["with"]["command"] == tasks[f"s{n:02d}"]
        assert grader["with"]["max-score"] == full[n]
    reporter = job["steps"][-1]
    assert reporter["with"]["runners"].split(",") == [f"s{n:02d}" for n in STEPS]
    assert set(reporter["env"]) == {f"S{n:02d}_RESULTS" for n in STEPS}
