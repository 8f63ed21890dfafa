"""The course's own guarantees (rustlings' `dev check`): run with `pixi run test`.

Every stub leaves work (TODO markers) and fails its checks as committed;
a stub differs from its solution only inside its TODO blocks; chapters,
tasks and pins agree with the files they describe; pixi.toml's sNN tasks and
book/src/SUMMARY.md agree with the registry, tutorial/course.toml.
"""

import re
import subprocess
import tomllib

import pytest

from tests.conftest import pool
from tutorial import course, todos
from tutorial.course import ROOT, TITLES, built, chapter_path, hints, solution_path, stub_path
from tutorial.mutants import Job

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


# -- the registry: tutorial/course.toml, and what must agree with it ------------------------------
SUMMARY = ROOT / "book" / "src" / "SUMMARY.md"
STEP_TASK = re.compile(r"s\d+")  # a pixi task named like a step's: s05, s14
LINK = re.compile(r"^\s*- \[(.+?)\]\(\./([^)]+)\)", re.M)  # "- [Step 05: Token embeddings](./step_05.md)"


def step_tasks_disagree(tasks: dict) -> list[str]:
    """What pixi.toml's [tasks] gets wrong about the registry's steps, one line each."""
    wrong = []
    for n, step in course.STEPS.items():
        want = f"python -m pytest {step.test.relative_to(ROOT).as_posix()}"
        got = tasks.get(step.task)
        got = got if isinstance(got, str) or got is None else got.get("cmd")
        if got != want:
            wrong.append(f"pixi.toml: task {step.task} must be `{want}`, it is " + (f"`{got}`" if got else "missing"))
    registered = {step.task for step in course.STEPS.values()}
    wrong += [
        f"pixi.toml: task {name} looks like a step's, but tutorial/course.toml has no such step"
        for name in tasks
        if STEP_TASK.fullmatch(name) and name not in registered
    ]
    return wrong


def summary_disagrees(text: str) -> list[str]:
    """What SUMMARY.md gets wrong about the registry's steps: each chapter, "Step NN: <title>", in order."""
    chapters = {step.chapter.relative_to(SUMMARY.parent).as_posix() for step in course.STEPS.values()}
    found = [(title, path) for title, path in LINK.findall(text) if path in chapters or title.startswith("Step ")]
    want = [
        (f"Step {n:02d}: {step.title}", step.chapter.relative_to(SUMMARY.parent).as_posix())
        for n, step in course.STEPS.items()
    ]
    for i, (got, wanted) in enumerate(zip(found + [None] * len(want), want)):
        if got != wanted:
            shown = f"[{got[0]}](./{got[1]})" if got else "nothing"
            return [f"SUMMARY.md: step entry {i + 1} must be [{wanted[0]}](./{wanted[1]}), it is {shown}"]
    return [f"SUMMARY.md: [{t}](./{p}) is not a step of tutorial/course.toml" for t, p in found[len(want) :]]


def test_registry_files_exist():
    for n, step in course.STEPS.items():
        for path in step.files:
            assert path.exists(), (
                f"tutorial/course.toml's step {n:02d} names {path.relative_to(ROOT)}, which does not exist"
            )


def test_pixi_step_tasks_match_the_registry():
    wrong = step_tasks_disagree(tomllib.loads((ROOT / "pixi.toml").read_text())["tasks"])
    assert not wrong, wrong[0]


def test_summary_lists_every_step_in_order_with_its_title():
    wrong = summary_disagrees(SUMMARY.read_text())
    assert not wrong, wrong[0]


def test_the_registry_checks_catch_a_stray_task_and_a_wrong_title():
    """The two checks above, on a broken copy of pixi.toml's tasks and of SUMMARY.md."""
    tasks = tomllib.loads((ROOT / "pixi.toml").read_text())["tasks"]
    assert step_tasks_disagree({**tasks, "s99": "python -m pytest tests/test_step_99.py"}) == [
        "pixi.toml: task s99 looks like a step's, but tutorial/course.toml has no such step"
    ]
    del tasks["s05"]
    assert step_tasks_disagree(tasks)[0].startswith(
        "pixi.toml: task s05 must be `python -m pytest tests/test_step_05.py`"
    )
    text = SUMMARY.read_text()
    broken = text.replace("[Step 05: Token embeddings]", "[Step 05: Token embedding]")
    assert summary_disagrees(broken) == [
        "SUMMARY.md: step entry 5 must be [Step 05: Token embeddings](./step_05.md), "
        "it is [Step 05: Token embedding](./step_05.md)"
    ]
    swapped = text.replace("(./step_05.md)", "(./tmp.md)").replace("(./step_06.md)", "(./step_05.md)")
    assert summary_disagrees(swapped.replace("(./tmp.md)", "(./step_06.md)"))[0].startswith(
        "SUMMARY.md: step entry 5 must be [Step 05: Token embeddings](./step_05.md)"
    )


def test_registry_is_the_steps_in_order():
    assert list(course.STEPS) == list(range(1, len(course.STEPS) + 1))
    assert TITLES == {n: step.title for n, step in course.STEPS.items()}
    assert all(0 < step.minutes <= 120 for step in course.STEPS.values()), "minutes: an estimate per step, 1-120"
    assert not (ROOT / "tutorial" / "hints.toml").exists(), "the hints live in tutorial/course.toml now"


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


@pytest.fixture(scope="module")
def stub_runs(tmp_path_factory):
    """Each committed stub's checks (not the stub as a learner may have edited it), queued at once in the
    session's job pool (tests/conftest.py): `python -m pytest tests/test_step_NN.py --use DIR`."""
    root = tmp_path_factory.mktemp("stubs")
    for n in STEPS:
        shown = subprocess.run(["git", "show", f"HEAD:steps/step_{n:02d}.py"], cwd=ROOT, capture_output=True, text=True)
        assert shown.returncode == 0, f"git cannot show the committed stub: {shown.stderr.strip()}"
        (root / f"{n}").mkdir()
        (root / f"{n}" / f"step_{n:02d}.py").write_text(shown.stdout)
        args = [f"tests/test_step_{n:02d}.py", "--use", root / f"{n}"]
        pool.add(("stub", n), Job("pytest", args, root / f"{n}-run", 900, priority=1))
    return lambda n: pool.result(("stub", n))


@pytest.mark.parametrize("n", STEPS)
def test_committed_stub_fails_its_checks_in_one_line_each(n, stub_runs):
    code, stdout, stderr = stub_runs(n)
    out = stdout + stderr
    assert code == 1, f"the stub of step {n:02d} exited {code}, expected 1 (checks failing):\n{out[-2000:]}"
    failures = [line for line in out.splitlines() if line.startswith("✗ ")]
    assert failures, f"step {n:02d}: no one-line failure report:\n{out[-2000:]}"
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


def test_learner_and_instructor_commands_have_tasks():
    tasks = tomllib.loads((ROOT / "pixi.toml").read_text())["tasks"]
    for name in ("progress", "hint", "watch", "reset", "grade"):
        assert tasks.get(name) == f"python -m tutorial.{name}", (
            f"pixi.toml: task {name} must run python -m tutorial.{name}"
        )


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
