"""One model, all yours: every step a learner writes runs in the GPT-2 that writes their text.

With every step solved, one step's functions and methods are made to return
zeros (one that returns nothing does nothing instead). `pixi run generate
--use DIR --greedy` must then write other tokens than HF's, or refuse in one
line, on both loops: step 12's full forward (step 13 still a stub) and step
13's KV cache. A step whose code could be wrong without changing the text
would be decoration.
"""

import ast

import pytest

from tests.support import tiny
from tutorial.course import model_steps, solution_path, stub_path
from tests.support.run import command

NEW = 8
LOOPS = {"full forward": False, "KV cache": True}  # loop -> is step 13 solved?
# from tutorial/course.toml: the steps with model = true (01-12), then step 13, the KV cache, the optional
# step right after them that the other loop runs. The steps zeroed are the layers: all but the first (01,
# the config, a dataclass without functions) and the last (12, the generation loop)
MODEL = model_steps()
CACHE = MODEL[-1] + 1
LAYERS = MODEL[1:-1]
ZEROED = '''
def _zeroed_(fn):
    """fn, returning zeros of its result's shape; a function that returns None does nothing."""
    import functools

    import numpy as np

    def zeros(value):
        from max.experimental import functional as F
        from max.experimental.tensor import Tensor

        if isinstance(value, Tensor):
            zero = Tensor.constant(0.0, dtype=value.dtype, device=value.device)
            return F.broadcast_to(zero, value.shape)
        if isinstance(value, np.ndarray):
            return np.zeros_like(value)
        if isinstance(value, dict):
            return {k: zeros(v) for k, v in value.items()}
        if isinstance(value, (tuple, list)):
            return type(value)(zeros(v) for v in value)
        return value

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        if fn.__annotations__.get("return", "?") in (None, "None"):
            return None
        return zeros(fn(*args, **kwargs))

    return wrapper
'''


def zeroed(source: str) -> str:
    """The step's source with every function and method but __init__ wrapped by _zeroed_."""
    tree = ast.parse(source)
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef):
            for fn in node.body:
                if isinstance(fn, ast.FunctionDef) and fn.name != "__init__":
                    fn.decorator_list.insert(0, ast.Name("_zeroed_", ast.Load()))
    at = 0  # after the docstring and `from __future__` imports, which must come first
    while isinstance(tree.body[at], ast.Expr) or getattr(tree.body[at], "module", None) == "__future__":
        at += 1
    tree.body[at:at] = ast.parse(ZEROED).body
    return ast.unparse(tree)


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    root = tmp_path_factory.mktemp("one-model")
    tok = tiny.tokenizer()
    model = tiny.save_model(root / "model", tok, len(tok))
    return {"dir": root / "model", "hf": tiny.hf_greedy(model, tok, tiny.PROMPT, NEW), "root": root}


def write_steps(folder, cached: bool, broken: int | None = None):
    """Every step solved (step 13 only when `cached`), step `broken` zeroed."""
    folder.mkdir()
    for n in [*MODEL, CACHE]:
        source = (solution_path(n) if n != CACHE or cached else stub_path(n)).read_text()
        (folder / f"step_{n:02d}.py").write_text(zeroed(source) if n == broken else source)
    return folder


def generate(checkpoint, loop: str, step: int | None, folder) -> tuple[int, str]:
    """(exit status, stderr) of `generate --greedy` on every step solved but `step`, zeroed, in a
    process of its own (tests/support/run.py). It compiles its own graphs, mostly on one core."""
    write_steps(folder / "steps", LOOPS[loop], broken=step)
    args = ["--model", checkpoint["dir"], "--prompt", tiny.PROMPT, "--greedy", "--max-new-tokens", NEW]
    done = command("tutorial.generate", [*args, "--use", folder / "steps", "--ids"], timeout=540)
    return done.returncode, done.stderr


def new_ids(stderr: str) -> str | None:
    return next(
        (line.removeprefix("new token ids: ") for line in stderr.splitlines() if line.startswith("new token ids: ")),
        None,
    )


@pytest.mark.parametrize("loop", LOOPS)
def test_solved_steps_write_hf_tokens(checkpoint, loop, tmp_path):
    code, stderr = generate(checkpoint, loop, None, tmp_path)
    assert code == 0, stderr[-2000:]
    assert new_ids(stderr) == str(checkpoint["hf"]), f"{loop}: {new_ids(stderr)} != HF's {checkpoint['hf']}"
    assert ("step 12's loop" in stderr) != LOOPS[loop], stderr[-2000:]  # the loop we meant


@pytest.mark.parametrize("loop", LOOPS)
@pytest.mark.parametrize("step", LAYERS)
def test_a_zeroed_step_changes_the_text(checkpoint, step, loop, tmp_path):
    code, stderr = generate(checkpoint, loop, step, tmp_path)
    if code == 0:
        assert new_ids(stderr) != str(checkpoint["hf"]), (
            f"step {step:02d} returned zeros and the {loop} loop still wrote HF's tokens"
        )
    else:
        lines = stderr.strip().splitlines()
        assert lines[-1].startswith("generate: ") and "Traceback" not in stderr, stderr[-2000:]


def test_zeroing_reaches_every_function_and_method():
    """The breaker itself: no function or method but __init__ escapes it."""
    source = zeroed(solution_path(7).read_text())
    wrapped = {
        n.name
        for n in ast.walk(ast.parse(source))
        if isinstance(n, ast.FunctionDef)
        and any(isinstance(d, ast.Name) and d.id == "_zeroed_" for d in n.decorator_list)
    }
    assert wrapped == {"split_heads", "merge_heads", "scores", "attend", "heads", "__call__"}, wrapped
