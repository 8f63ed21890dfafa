"""The course's own guarantees (rustlings' `dev check`): run with `pixi run test`.

Every stub leaves work (TODO markers) and fails its checks as committed;
a stub differs from its solution only inside its TODO blocks; chapters,
tasks and pins agree with the files they describe; the files generated from the
registry, tutorial/course.toml, are what `python -m tutorial dev sync` writes.
"""

import re
import shutil
import subprocess
import sys
import tomllib

import pytest

from tutorial import course, dev, todos
from tutorial.course import ROOT, built, chapter_path, hints, solution_path, stub_path
from tests.support.run import command

STEPS = built()
# "1. **Positions** (`# TODO 1`, lines 36-38)": the TODO comment is what a reader finds in the
# included stub, which mdBook shows without line numbers; the lines are for an editor
CALLOUT = re.compile(r"^(\d+)\. \*\*(.+?)\*\* \(`# TODO (\d+)`, lines? (\d+)(?:-(\d+))?\)", re.M)
INCLUDE = re.compile(r"\{\{#include\s+([^}:\s]+)(?::[^}]*)?\}\}")


def stub_tasks(text: str) -> list[int]:
    """Task numbers listed under "Tasks:" in the stub's docstring."""
    doc = text.split('"""')[1]
    return [int(n) for n in re.findall(r"^\s+(\d+)\.", doc.split("Tasks:")[1], re.M)]


@pytest.mark.parametrize("n", STEPS)
def test_stub_has_numbered_todos_matching_its_tasks(n):
    stub = stub_path(n).read_text()
    found = sorted(todos.blocks(stub))
    assert found, f"steps/step_{n:02d}.py has no '# TODO N:' marker"
    assert found == stub_tasks(stub), f"step {n:02d}: TODOs {found} but the docstring lists tasks {stub_tasks(stub)}"
    assert "TODO" not in solution_path(n).read_text(), f"solutions/solution_{n:02d}.py still has a TODO"


@pytest.mark.parametrize("n", STEPS)
def test_stub_differs_from_solution_only_in_todo_blocks(n):
    problems = todos.outside_blocks(stub_path(n).read_text(), solution_path(n).read_text())
    assert not problems, f"step {n:02d} differs from its solution outside TODO blocks: {problems[0]}"


@pytest.mark.parametrize("n", STEPS)
def test_chapter_callouts_point_at_their_todos(n):
    chapter = chapter_path(n).read_text()
    blocks = todos.blocks(stub_path(n).read_text())
    callouts = CALLOUT.findall(chapter)
    assert [int(c[0]) for c in callouts] == sorted(blocks), (
        f"step_{n:02d}.md lists tasks {[c[0] for c in callouts]}, the stub has TODOs {sorted(blocks)}"
    )
    for task, title, named, first, last in callouts:
        assert named == task, f"step_{n:02d}.md task {task} ({title}) names TODO {named}"
        want = blocks[int(task)]
        got = (int(first), int(last or first))
        assert got == want, f"step_{n:02d}.md task {task} ({title}) says lines {got}, TODO {task} is at lines {want}"


def test_every_include_resolves():
    for chapter in sorted((ROOT / "book" / "src").glob("*.md")):
        for target in INCLUDE.findall(chapter.read_text()):
            assert (chapter.parent / target).resolve().exists(), f"{chapter.name} includes missing {target}"


# -- the registry: tutorial/course.toml, and the files `python -m tutorial dev sync` generates from it -----
def dev_check(root) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "tutorial.dev", "check"], cwd=root, capture_output=True, text=True, timeout=120
    )


def test_the_generated_files_and_every_steps_files_agree_with_the_registry():
    """`python -m tutorial dev check`: pixi.toml's sNN tasks, SUMMARY.md's step lines and the Classroom
    template's steps are what `sync` writes, every step has its four files, the steps count from 1."""
    run = dev_check(ROOT)
    assert run.returncode == 0, f"run `python -m tutorial dev sync`:\n{run.stdout}{run.stderr}"
    assert run.stdout == f"the course's {len(course.STEPS)} steps agree with tutorial/course.toml\n", run.stdout


@pytest.fixture
def course_copy(tmp_path):
    """What `dev check` reads, copied: tutorial/ (the registry, and dev.py), every step's four files, pixi.toml,
    book/src/ and templates/. `python -m tutorial dev check` run in it checks the copy."""
    for folder in ("tutorial", "steps", "solutions", "book/src", "templates"):
        shutil.copytree(ROOT / folder, tmp_path / folder, ignore=shutil.ignore_patterns("__pycache__"))
    (tmp_path / "tests").mkdir()
    for step in course.STEPS.values():
        shutil.copy(step.test, tmp_path / "tests")
    shutil.copy(ROOT / "pixi.toml", tmp_path)
    assert dev_check(tmp_path).returncode == 0, "the copy must start whole"
    return tmp_path


def test_dev_check_names_a_stray_task_a_wrong_title_and_a_missing_chapter(course_copy):
    # the registry's titles; step 05's task and test follow its [files]: s{n:02d}, tests/test_step_{n:02d}.py
    assert course.TITLES[5] == "Token embeddings" and course.TITLES[3] == "Layer normalization"
    s05 = 's05 = "python -m pytest tests/test_step_05.py"'
    s99 = 's99 = "python -m pytest tests/test_step_99.py"'
    pixi = course_copy / "pixi.toml"
    line = pixi.read_text().splitlines().index(s05) + 2  # s99's line, right under s05 in the block
    pixi.write_text(pixi.read_text().replace(s05, f"{s05}\n{s99}") + 's98 = "python -m pytest tests/test_step_98.py"\n')
    summary = course_copy / "book" / "src" / "SUMMARY.md"
    good = "- [Step 05: Token embeddings](./step_05.md)"
    bad = "- [Step 05: Token embedding](./step_05.md)"
    at = summary.read_text().splitlines().index(good) + 1
    summary.write_text(summary.read_text().replace(good, bad))
    template = course_copy / "templates" / "github-classroom.yml"
    template.write_text(template.read_text().replace("test-name: s03 Layer normalization", "test-name: s03 Layer norm"))
    (course_copy / "book" / "src" / "step_06.md").unlink()

    run = dev_check(course_copy)
    assert run.returncode == 1, run.stdout + run.stderr
    assert sorted(run.stdout.splitlines()) == sorted(
        [
            f"pixi.toml:{line}: sync would remove `{s99}`",
            "pixi.toml: task s98 looks like a step's, but tutorial/course.toml has no such step",
            f"book/src/SUMMARY.md:{at}: sync would write `{good}` instead of `{bad}`",
            "templates/github-classroom.yml: sync would regenerate it: where it has a test named `s03 Layer norm`, "
            "the registry makes `s03 Layer normalization`",
            "tutorial/course.toml: step 06's chapter book/src/step_06.md does not exist",
        ]
    ), run.stdout


def test_dev_check_refuses_steps_out_of_order_in_one_line(course_copy):
    registry = course_copy / "tutorial" / "course.toml"
    registry.write_text(registry.read_text().replace("number = 2\n", "number = 3\n", 1))
    run = dev_check(course_copy)
    assert (run.returncode, run.stdout) == (1, ""), run.stdout + run.stderr
    assert run.stderr == (
        "tutorial/course.toml: [[step]] #2 says number = 3: steps count from 1, in order, with no gaps\n"
    ), run.stderr


def test_dev_sync_puts_back_what_check_names():
    """sync's rewriting, on broken copies of the committed pixi.toml and SUMMARY.md: only the step lines change."""
    pixi = (ROOT / "pixi.toml").read_text()
    s05 = 's05 = "python -m pytest tests/test_step_05.py"\n'
    assert dev.pixi_synced(pixi.replace(s05, "")) == pixi  # a step's task missing
    assert dev.pixi_synced(pixi.replace(s05, s05 + 's99 = "python -m pytest tests/test_step_99.py"\n')) == pixi
    assert dev.pixi_synced(pixi.replace(s05, s05.replace("05.py", "5.py"))) == pixi
    summary = (ROOT / "book" / "src" / "SUMMARY.md").read_text()
    n = len(course.STEPS)
    last = f"- [Step {n:02d}: {course.TITLES[n]}](./step_{n:02d}.md)\n"
    assert last in summary
    assert dev.summary_synced(summary.replace(last, "")) == summary  # a new step: its line after the last
    assert dev.summary_synced(summary.replace(last, last + "- [Step 99: Gone](./step_99.md)\n")) == summary
    assert dev.summary_synced(summary.replace("Token embeddings", "Token embedding")) == summary
    swapped = summary.replace("(./step_05.md)", "(./tmp)").replace("(./step_06.md)", "(./step_05.md)")
    assert dev.summary_synced(swapped.replace("(./tmp)", "(./step_06.md)")) == summary


def pins(text_lines) -> dict[str, str]:
    return dict(re.match(r"([A-Za-z0-9_.-]+)==(\S+)", line).groups() for line in text_lines if "==" in line)


def test_pixi_and_pip_pin_the_same_versions():
    pixi = tomllib.loads((ROOT / "pixi.toml").read_text())
    # the shared table, then each platform's own (torch's CPU index on Linux): one version per package everywhere
    tables = {"pypi-dependencies": pixi["pypi-dependencies"]} | {
        f"target.{platform}.pypi-dependencies": target["pypi-dependencies"]
        for platform, target in pixi.get("target", {}).items()
        if "pypi-dependencies" in target
    }
    ours = {}
    for table, specs in tables.items():
        for name, spec in specs.items():
            version = (spec if isinstance(spec, str) else spec["version"]).removeprefix("==")
            pinned = ours.setdefault(name, version)
            assert pinned == version, f"pixi.toml [{table}] pins {name} {version}, elsewhere {pinned}"
    pip = [ROOT / "requirements.txt", ROOT / "requirements-dev.txt"]  # pixi's one environment has both
    theirs = pins(line.split("#")[0].strip() for f in pip for line in f.read_text().splitlines())
    assert ours == theirs, f"pixi.toml and requirements*.txt disagree: {set(ours.items()) ^ set(theirs.items())}"
    assert pixi["dependencies"]["python"] == "3.11.*"
    assert "python3.11" in (ROOT / ".ci" / "run").read_text(), (
        ".ci/run must build its venv with Python 3.11, as pixi does"
    )


def test_every_task_names_files_that_exist():
    tasks = tomllib.loads((ROOT / "pixi.toml").read_text())["tasks"]
    for name, cmd in tasks.items():
        cmd = cmd if isinstance(cmd, str) else cmd["cmd"]
        for path in re.findall(r"(?:tests|steps|solutions|book)/[\w./-]*\w", cmd):
            assert (ROOT / path).exists(), f"pixi task {name} names {path}, which does not exist"
        if module := re.search(r"python -m (tutorial[\w.]*)", cmd):
            assert (ROOT / (module[1].replace(".", "/") + ".py")).exists() or (
                ROOT / module[1] / "__main__.py"
            ).exists()


@pytest.mark.parametrize("n", STEPS)
def test_committed_stub_fails_its_checks_in_one_line_each(n, tmp_path):
    """The committed stub (not the stub as a learner may have edited it), checked as
    `python -m pytest tests/test_step_NN.py --use DIR` would check it."""
    shown = subprocess.run(["git", "show", f"HEAD:steps/step_{n:02d}.py"], cwd=ROOT, capture_output=True, text=True)
    assert shown.returncode == 0, f"git cannot show the committed stub: {shown.stderr.strip()}"
    (tmp_path / f"step_{n:02d}.py").write_text(shown.stdout)
    done = command("pytest", [f"tests/test_step_{n:02d}.py", "--use", tmp_path], timeout=540)
    out = done.stdout + done.stderr
    assert done.returncode == 1, f"the stub of step {n:02d} exited {done.returncode}, expected 1:\n{out[-2000:]}"
    assert done.failures and all(done.failures.values()), f"step {n:02d}: a check without its line:\n{out[-2000:]}"
    assert "Traceback" not in out, f"step {n:02d}: a traceback reached the learner:\n{out[-2000:]}"


@pytest.mark.parametrize("n", STEPS)
def test_built_step_has_hints_a_task_and_a_chapter(n):
    assert set(hints(n)) == {"nudge", "api"}, f"tutorial/course.toml's step {n} has no nudge and api hint"
    tasks = tomllib.loads((ROOT / "pixi.toml").read_text())["tasks"]
    assert f"s{n:02d}" in tasks, f"pixi.toml has no task s{n:02d}"
    chapter = chapter_path(n).read_text() if chapter_path(n).exists() else ""
    assert f"steps/step_{n:02d}.py" in chapter, (
        f"book/src/step_{n:02d}.md does not include its stub: still the placeholder?"
    )


def test_every_command_has_a_task_that_runs_it_through_the_one_cli():
    from tutorial.__main__ import COMMANDS

    tasks = tomllib.loads((ROOT / "pixi.toml").read_text())["tasks"]
    for name in COMMANDS:
        assert tasks.get(name) == f"python -m tutorial {name}", (
            f"pixi.toml: task {name} must run python -m tutorial {name}"
        )
    stray = [t for t, cmd in tasks.items() if str(cmd).startswith("python -m tutorial.")]
    assert not stray, f"pixi.toml: tasks {stray} run a module, not python -m tutorial <command>"


def test_grading_weights_name_real_checks():
    points = tomllib.loads((ROOT / "tutorial" / "grading.toml").read_text())["points"]
    for step, weights in points.items():
        if isinstance(weights, dict):
            test = ROOT / "tests" / f"test_{step.replace('s', 'step_', 1)}.py"
            names = set(re.findall(r"^def test_(\w+)", test.read_text(), re.M)) if test.exists() else set()
            for check in weights:
                assert check.split("[")[0] in names, (
                    f"tutorial/grading.toml [points.{step}] {check}: no such check in {test.name}"
                )


# every chapter derives each answer and folds it away, but 01 (it copies a table) and 05 (the seed
# chapter, which states its API as the spec)
DERIVED = tuple(n for n in STEPS if n not in (1, 5))
SHORT = 16  # shorter code (`return x`, `k, v = kv`) is too generic to count as an answer


def code_pieces(line: str) -> list[str]:
    """A solution line without its comment, and, for an assignment, its right-hand side."""
    code = re.sub(r"\s+#.*$", "", line).strip()
    pieces = [code]
    if m := re.match(r"^[\w., \[\]*]+?\s=\s(.+)$", code):
        pieces.append(m[1].strip())
    if m := re.match(r"^return\s+(.+)$", code):  # what it returns, written anywhere
        pieces.append(m[1].strip())
    return [p for p in pieces if len(p) >= SHORT]


def answers_in_plain_sight(n: int, chapter: str) -> list[str]:
    """Step n's solution lines (or their right-hand sides) that `chapter` shows outside <details>."""
    from tutorial.hint import solution_lines

    open_text = re.sub(r"<details>.*?</details>", "", chapter, flags=re.S)
    found = []
    for task, (_, lines) in solution_lines(stub_path(n).read_text(), solution_path(n).read_text()).items():
        for line in lines:
            found += [f"task {task}: {piece}" for piece in code_pieces(line) if piece in open_text]
    return found


@pytest.mark.parametrize("n", [n for n in DERIVED if n in STEPS])
def test_derived_chapters_fold_every_answer(n):
    """Ideas before answers: a line that solves a TODO appears only inside a <details> block."""
    assert chapter_path(n).exists(), f"book/src/step_{n:02d}.md is missing"
    leaks = answers_in_plain_sight(n, chapter_path(n).read_text())
    assert not leaks, f"step_{n:02d}.md gives an answer outside <details>: " + "; ".join(leaks)


def test_the_fold_check_catches_an_answer_in_plain_sight():
    """The check above, on chapter 08 with its folded answer copied into the text."""
    from tutorial.hint import solution_lines

    chapter = chapter_path(8).read_text()
    assert not answers_in_plain_sight(8, chapter)
    (_, lines), *_ = solution_lines(stub_path(8).read_text(), solution_path(8).read_text()).values()
    unfolded = chapter.replace("## Validation", "```python\n" + "\n".join(lines) + "\n```\n\n## Validation")
    assert answers_in_plain_sight(8, unfolded), "an answer printed outside <details> went unnoticed"


def test_no_stub_or_solution_line_is_over_88_characters():
    for path in sorted([*(ROOT / "steps").glob("step_*.py"), *(ROOT / "solutions").glob("solution_*.py")]):
        for i, line in enumerate(path.read_text().splitlines(), 1):
            assert len(line) <= 88, f"{path.relative_to(ROOT)}:{i} is {len(line)} characters (at most 88)"
