"""Every API hint (level 2 of `pixi run hint`) names calls that exist, with arguments they take.

Each `api` hint is read as `;`-separated code. Every call whose target can be
resolved statically (a MAX or numpy function, a name the step's solution
imports or defines, a method of the step's own classes, a method of a
tensor or of the given engines) must exist and accept the keyword arguments
and the number of positional arguments the hint gives it.
"""

import ast
import builtins
import importlib
import inspect
import math

import numpy as np
import pytest

from tutorial.course import STEPS, built, hints

HINTS = {f"s{n:02d}": hints(n) for n in STEPS}  # each step's nudge and api, from tutorial/course.toml


def fragments(text: str) -> list[ast.AST]:
    """The pieces of a hint that parse as Python: each `;` part, or what follows its last ': '."""
    found = []
    for part in text.split(";"):
        for candidate in (part, part.rsplit(": ", 1)[-1]):
            candidate = candidate.strip().rstrip(".").split(" returns ")[0].split(" compares ")[0]
            try:
                found.append(ast.parse(candidate))
                break
            except SyntaxError:
                continue
    return found


def parameters(n: int) -> set[str]:
    """The argument names of every function in step n's solution."""
    tree = ast.parse(inspect.getsource(importlib.import_module(f"solutions.solution_{n:02d}")))
    return {a.arg for f in ast.walk(tree) if isinstance(f, ast.FunctionDef) for a in f.args.args + f.args.kwonlyargs}


def receivers(n: int) -> dict[str, object]:
    """What a plain name before a dot stands for in step n's hints."""
    from max.experimental.tensor import Tensor

    from tutorial.engine import Decoder

    names = {name: Tensor for name in ("x", "q", "k", "v", "s", "h", "scores", "result", "key_pos", "query_pos")}
    names |= {"rng": np.random.default_rng(0), "decoder": Decoder, "str": str, "math": math, "np": np}
    if n == 13:
        names["attn"] = importlib.import_module("solutions.solution_07").GPT2MultiHeadAttention
    return names


def resolve(node: ast.AST, scope: dict, classes: list[type], n: int):
    """The object a call's target names, or None when it cannot be known without running the hint."""
    if isinstance(node, ast.Name):
        if node.id in scope:
            return scope[node.id]
        if hasattr(builtins, node.id):
            return getattr(builtins, node.id)
        if node.id in parameters(n):  # a function's own argument, e.g. pre_norm_residual's sublayer
            return None
        raise AssertionError(
            f"s{n:02d}'s API hint calls {node.id}, which solution_{n:02d}.py neither imports nor defines"
        )
    if not isinstance(node, ast.Attribute):
        return None
    base = node.value
    if isinstance(base, ast.Name) and base.id == "self":
        owners = [c for c in classes if hasattr(c, node.attr)]
        if owners:
            return getattr(owners[0], node.attr)
        source = inspect.getsource(importlib.import_module(f"solutions.solution_{n:02d}"))
        assert f"self.{node.attr} =" in source, (
            f"s{n:02d}'s API hint calls self.{node.attr}, which no class of step {n} has"
        )
        return None  # a sub-module set in __init__: a Linear or Embedding, callable
    if isinstance(base, ast.Call) and isinstance(base.func, ast.Name) and base.func.id == "super":
        owners = [b for c in classes for b in c.__mro__[1:] if hasattr(b, node.attr)]
        assert owners, f"s{n:02d}'s API hint calls super().{node.attr}, which no base class has"
        return getattr(owners[0], node.attr)
    if isinstance(base, ast.Name) and base.id in receivers(n) and base.id not in scope:
        owner = receivers(n)[base.id]
    else:
        owner = resolve(base, scope, classes, n) if isinstance(base, (ast.Name, ast.Attribute)) else None
    if owner is None:
        return None
    assert hasattr(owner, node.attr), f"s{n:02d}'s API hint calls {ast.unparse(node)}: {owner!r:.60} has no {node.attr}"
    return getattr(owner, node.attr)


def check_call(call: ast.Call, target, n: int) -> None:
    try:
        signature = inspect.signature(target)
    except (TypeError, ValueError):  # a builtin without a signature, or not a function
        return
    params = signature.parameters
    takes_kwargs = any(p.kind is p.VAR_KEYWORD for p in params.values())
    for keyword in call.keywords:
        assert keyword.arg is None or keyword.arg in params or takes_kwargs, (
            f"s{n:02d}'s API hint passes {keyword.arg}= to {ast.unparse(call.func)}, whose signature is {signature}"
        )
    positional = [p for p in params.values() if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    varargs = any(p.kind is p.VAR_POSITIONAL for p in params.values())
    unbound = (
        isinstance(call.func, ast.Attribute)
        and inspect.isfunction(target)
        and positional
        and positional[0].name == "self"
    )
    room = len(positional) - (1 if unbound and not _on_class(call) else 0)
    assert varargs or len(call.args) <= room, (
        f"s{n:02d}'s API hint gives {ast.unparse(call.func)} {len(call.args)} positional arguments; "
        f"its signature is {signature}"
    )


def _on_class(call: ast.Call) -> bool:
    """GPT2Embeddings.__call__(self, ids): a method called through its class passes self itself."""
    value = call.func.value
    return isinstance(value, ast.Name) and value.id[:1].isupper() and value.id not in ("F",)


@pytest.mark.parametrize("n", built())
def test_api_hint_names_real_calls(n):
    hint = HINTS[f"s{n:02d}"]["api"]
    module = importlib.import_module(f"solutions.solution_{n:02d}")
    scope = dict(vars(module))
    classes = [c for c in vars(module).values() if inspect.isclass(c) and c.__module__ == module.__name__]
    checked = 0
    for tree in fragments(hint):
        for call in (node for node in ast.walk(tree) if isinstance(node, ast.Call)):
            target = resolve(call.func, scope, classes, n)
            if target is not None:
                check_call(call, target, n)
                checked += 1
    assert checked or n in (1, 8), f"no call in s{n:02d}'s API hint could be checked: {hint}"


def test_a_wrong_signature_is_caught(monkeypatch):
    """The check itself: the old s13 hint's attn.scores(q, k, num_tokens=...) fails it (steps 01 and 08 name no API)."""
    monkeypatch.setitem(HINTS["s13"], "api", "attn.scores(q, k, num_tokens=past_k.shape[2])")
    with pytest.raises(AssertionError, match="passes num_tokens= to attn.scores"):
        test_api_hint_names_real_calls(13)
    monkeypatch.setitem(HINTS["s13"], "api", "attn.no_such_method(q)")
    with pytest.raises(AssertionError, match="has no no_such_method"):
        test_api_hint_names_real_calls(13)
