"""Whatever a learner's file does wrong, the check says so in one line, names the place, and exits 1.

Each case edits the step-05 solution the way a learner might, runs the
step's checks on it as `--use DIR`, in a process of its own
(tests/support/run.py), and asserts the one-line report: its text from the
checks' result records, and that the learner saw it as one line. The file
itself must come out of the run unchanged.
"""

import ast
import hashlib

import pytest

from tutorial.course import solution_path
from tests.support.run import command
from tutorial.runner import run_step

GOOD = "return self.wte(input_ids)  # [B, T] -> [B, T, n_embd]"
CASES = {
    "syntax error": (GOOD, "return self.wte(input_ids", "step_05.py:27: syntax error: '(' was never closed"),
    "module_v2 import": (
        "from max.nn.module_v3 import",
        "from max.nn.module_v2 import",
        "no module named 'max.nn.module_v2': the module API of MAX 25.7 lives in max.nn.module_v3",
    ),
    "max.nn import": (
        "from max.nn.module_v3 import",
        "from max.nn import",
        "Embedding, Linear, Module and Sequential come from max.nn.module_v3",
    ),
    "forward returns None": (
        GOOD,
        "self.wte(input_ids)",
        "GPT2Embeddings(ids) returned None: a TODO still needs its code",
    ),
    "todo left as pass": (
        "self.wte = Embedding(config.vocab_size, dim=config.n_embd)",
        "pass",
        "self.wte is not set, expected max.nn.module_v3.Embedding",
    ),
    "wrong shape": (GOOD, "return self.wte(input_ids)[0]", "shape [4, 768], expected [2, 4, 768]"),
    "wrong values": (GOOD, "return self.wte(input_ids) * 2", "token embeddings differs from HF: max |Δ|"),
    "index out of range": (GOOD, "return self.wte(input_ids + 60000)", "an index outside its table"),
    "Dim arithmetic outside a graph": (
        GOOD,
        "seq = input_ids.shape[1] + 1  # a Dim: needs a graph\n        return self.wte(input_ids)",
        "step_05.py:27: RuntimeError: No active MLIR context: arithmetic on a symbolic Dim",
    ),
    "exception in learner code": (GOOD, "return self.wte(input_ids).reshape([3, 3])", "step_05.py:27: ValueError"),
    "endless loop": (
        GOOD,
        "while True:\n            pass",
        "timed out: your code ran for 3 s without returning, stopped at",
    ),
    "sys.exit at import": (
        "class GPT2Embeddings",
        "import sys\nsys.exit(3)\n\n\nclass GPT2Embeddings",
        "the code called sys.exit(3)",
    ),
}


def check(folder, name: str, text: str, args: list):
    """The learner's file `name`, alone in `folder`, checked by `python -m pytest *args --use folder`:
    (the run, the file, its hash before the run)."""
    learner = folder / name
    learner.write_text(text)
    before = hashlib.sha256(learner.read_bytes()).hexdigest()
    return command("pytest", [*args, "--use", folder], timeout=540), learner, before


def printed(done) -> list[str]:
    """The failure lines the learner saw (what the one-line promise is about)."""
    return [line for line in (done.stdout + done.stderr).splitlines() if line.startswith("✗ ")]


@pytest.mark.parametrize("case", CASES)
def test_mistake_is_reported_in_one_line(case, tmp_path):
    old, new, says = CASES[case]
    text = solution_path(5).read_text()
    assert text.count(old) == 1, f"{old!r} must occur once in solution_05.py"
    # a short hang limit for the endless loop (compiles are not counted: tutorial/watchdog.py)
    args = ["tests/test_step_05.py", *(["--hang-timeout", "3"] if case == "endless loop" else [])]
    done, learner, before = check(tmp_path, "step_05.py", text.replace(old, new), args)
    out = done.stdout + done.stderr
    assert done.returncode == 1, f"{case}: exit {done.returncode}, expected 1:\n{out[-1500:]}"
    assert any(says in line for line in done.failures.values()), f"{case}: expected {says!r} in:\n{out[-1500:]}"
    assert all(len(line.splitlines()) == 1 for line in done.failures.values()), done.failures
    assert "Traceback" not in out, f"{case}: a traceback reached the learner:\n{out[-1500:]}"
    assert hashlib.sha256(learner.read_bytes()).hexdigest() == before, f"{case}: the check modified the learner's file"


def without(text: str, name: str) -> str:
    """text with the top-level def or class `name` deleted, decorators included."""
    node = next(n for n in ast.parse(text).body if getattr(n, "name", None) == name)
    lines = text.splitlines(keepends=True)
    first = min([node.lineno] + [d.lineno for d in node.decorator_list])
    return "".join(lines[: first - 1] + lines[node.end_lineno :])


def renamed_class() -> str:
    return solution_path(6).read_text().replace("class GPT2PositionEmbeddings", "class PositionEmbeddings")


# a check needs a name the file lacks: (step, the file's text, what its one line must say)
NEEDS_THE_CLASS = "`class GPT2PositionEmbeddings` at line "
MISSING = {
    "renamed class": (
        6,
        renamed_class,
        ["does not define GPT2PositionEmbeddings (found: PositionEmbeddings)", NEEDS_THE_CLASS],
    ),
    "deleted function": (
        2,
        lambda: without(solution_path(2).read_text(), "causal_mask"),
        ["does not define causal_mask (it defines no class or function)", "`def causal_mask` at line "],
    ),
    "another step's code": (
        6,
        solution_path(5).read_text,
        ["does not define GPT2PositionEmbeddings (found: GPT2Embeddings)", NEEDS_THE_CLASS],
    ),
}


@pytest.mark.parametrize("case", MISSING)
def test_missing_name_is_reported_once_in_the_learners_terms(case, tmp_path):
    n, text, says = MISSING[case]
    done, learner, before = check(tmp_path, f"step_{n:02d}.py", text(), [f"tests/test_step_{n:02d}.py"])
    out, failures = done.stdout + done.stderr, printed(done)
    assert done.returncode == 1, f"{case}: exit {done.returncode}, expected 1:\n{out[-1500:]}"
    assert done.failures and all(says[0] in line for line in done.failures.values()), done.failures
    # every check needs the name: one line for the cause, naming the checks it blocked
    assert len(failures) == 1 and " checks (" in failures[0], f"{case}: expected one collapsed line:\n{out[-1500:]}"
    for piece in [f"{learner} does not define", "the checks and later steps import it by that name", *says]:
        assert piece in failures[0], f"{case}: expected {piece!r} in:\n{failures[0]}"
    assert "checked_step" not in out, f"{case}: the harness's module name reached the learner:\n{out[-1500:]}"
    assert "Traceback" not in out, f"{case}: a traceback reached the learner:\n{out[-1500:]}"
    assert hashlib.sha256(learner.read_bytes()).hexdigest() == before, f"{case}: the check modified the learner's file"


def test_missing_name_reaches_grade_progress_and_watch(tmp_path):
    """They all read each check's line through tutorial/runner.py."""
    n, text, says = MISSING["renamed class"]
    (tmp_path / f"step_{n:02d}.py").write_text(text())
    run = run_step(n, str(tmp_path))
    assert run.status == "failed" and run.checks, f"{run.status}: {run.message}"
    assert says[0] in run.message and "checked_step" not in run.message, run.message
    assert all(c.status == "failed" and says[0] in c.message for c in run.checks), [c.message for c in run.checks]


def test_one_process_loads_each_folders_step_as_its_own_module(tmp_path):
    """Source.load is keyed by the file's path: a second folder's step 05 is not the first one's."""
    from tutorial.impl import Source

    for name, text in (("a", "X = 1\n"), ("b", "X = 2\n")):
        (tmp_path / name).mkdir()
        (tmp_path / name / "step_05.py").write_text(text)
    first, second = Source(str(tmp_path / "a")).load(5), Source(str(tmp_path / "b")).load(5)
    assert (first.X, second.X) == (1, 2), "the second folder's step 05 was served the first one's module"
    assert Source(str(tmp_path / "a")).load(5) is first  # loaded once per path
