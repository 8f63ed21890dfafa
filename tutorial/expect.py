"""The check vocabulary: a test of a step reads as a list of these sentences.

    expect_linear(mlp, "c_fc", in_=768, out=3072, bias=True, todo=1)
    expect_embedding(embeddings, "wte", rows=("vocab_size", 50257), dim=768, todo=2)
    expect_shape(out, (2, 8, 768), "GPT2MLP of [2, 8, 768] activations", todo=2)
    expect_close(out, want, "GPT2MLP", axes=BTC, todo=2, mistakes={"exact GELU ...": erf_out})
    known_mistake(out, {"exact GELU ...": erf_out, "ReLU ...": relu_out})

Each raises `CheckFailure` with one line: what differs, by how much and where,
the known mistake the numbers match when there is one, and the TODO to look
at. Tolerances come from the device under check (`checks.tolerance()`), never
from a test.
"""

from __future__ import annotations

import numpy as np

from tutorial.checks import CheckFailure, tolerance
from tutorial.explain import pointing_at

BTC = ("batch", "position", "feature")  # the axes of a [B, T, n_embd] activation


def what_it_is(value) -> str:
    return "not set" if value is None else f"a {type(value).__module__}.{type(value).__name__}"


def expect_linear(owner, name: str, *, in_: int, out: int, bias: bool, todo: int, hint: str = "") -> None:
    """`owner.name` is a module_v3 Linear(in_, out), with a bias or without one."""
    from max.experimental.tensor import Tensor
    from max.nn.module_v3 import Linear

    layer = getattr(owner, name, None)
    if not isinstance(layer, Linear):
        raise CheckFailure(pointing_at(f"self.{name} is {what_it_is(layer)}, expected a max.nn.module_v3.Linear", todo))
    shape = [int(d) for d in layer.weight.shape]
    if shape != [out, in_]:
        says = hint or f"Linear({in_}, {out}) stores its weight as [out_dim, in_dim]"
        raise CheckFailure(pointing_at(f"self.{name} has weight shape {shape}, expected [{out}, {in_}]: {says}", todo))
    has_bias = isinstance(layer.bias, Tensor)  # Linear(..., bias=False) keeps the int 0 there
    if has_bias and not bias:
        raise CheckFailure(pointing_at(f"self.{name} has a bias, HF's has none: pass bias=False", todo))
    if bias and not has_bias:
        raise CheckFailure(pointing_at(f"self.{name} has no bias, HF's has one: keep Linear's default bias=True", todo))


def expect_embedding(owner, name: str, *, rows: tuple[str, int], dim: int, todo: int) -> None:
    """`owner.name` is a module_v3 Embedding of `rows` = (its name in the config, its count) by `dim`."""
    from max.nn.module_v3 import Embedding

    table = getattr(owner, name, None)
    if table is None:
        says = f"self.{name} is not set, expected max.nn.module_v3.Embedding: name the table {name}, as HF does, "
        raise CheckFailure(pointing_at(says + "so its weights load by name", todo))
    if not isinstance(table, Embedding):
        raise CheckFailure(
            pointing_at(f"self.{name} is {what_it_is(table)}, expected max.nn.module_v3.Embedding", todo)
        )
    shape = [int(d) for d in table.weight.shape]
    if shape != [rows[1], dim]:
        expected = f"expected [{rows[0]}, n_embd] = [{rows[1]}, {dim}]"
        raise CheckFailure(pointing_at(f"self.{name} has shape {shape}, {expected}", todo))


def expect_shape(got: np.ndarray, want: tuple[int, ...], what: str, *, todo: int | None = None, hint: str = "") -> None:
    if tuple(got.shape) != tuple(want):
        says = f". {hint}" if hint else ""
        raise CheckFailure(pointing_at(f"{what}: shape {list(got.shape)}, expected {list(want)}{says}", todo))


def agrees(got: np.ndarray, want: np.ndarray) -> bool:
    """Same shape, and every value within the session's tolerance (inf equals inf; NaN never passes)."""
    tol = tolerance()
    return (
        got.shape == want.shape
        and not np.isnan(got).any()
        and bool(np.isclose(got, want, atol=tol.atol, rtol=tol.rtol).all())
    )


def known_mistake(got: np.ndarray, mistakes: dict[str, np.ndarray] | None) -> str | None:
    """The first mistake whose numbers `got` matches. A wrong formula misses by far more than the
    1e-3 used here, so float32 rounding on any device still names the right one."""
    for says, value in (mistakes or {}).items():
        with np.errstate(invalid="ignore"):
            if got.shape == np.shape(value) and bool(np.isclose(got, value, atol=1e-3, rtol=1e-3).all()):
                return says
    return None


def difference(got: np.ndarray, want: np.ndarray, axes: tuple[str, ...] = ()) -> str:
    """'max |Δ| 0.31 at head 2, query 5 (got 1.2, expected 0.9; CPU fp32: ...)', or the two shapes."""
    if got.shape != want.shape:
        return f"shape {list(got.shape)}, expected {list(want.shape)}"
    tol = tolerance()
    with np.errstate(invalid="ignore"):
        bad = ~np.isclose(got, want, atol=tol.atol, rtol=tol.rtol) | (np.isnan(got) != np.isnan(want))
        delta = np.where(np.isnan(got) | np.isnan(want), np.inf, np.abs(got - want))
    delta = np.where(np.isnan(delta), np.inf, delta)  # inf - inf
    at = np.unravel_index(np.argmax(np.where(bad, delta, -1)), got.shape)
    place = ", ".join(f"{n} {i}" for n, i in zip(axes, at)) if axes else str(list(map(int, at)))
    return f"max |Δ| {delta[at]:.3g} at {place} (got {got[at]:.5g}, expected {want[at]:.5g}; {tol})"


def expect_close(
    got: np.ndarray,
    want: np.ndarray,
    what: str,
    *,
    axes: tuple[str, ...] = (),
    todo: int | None = None,
    hint: str = "",
    mistakes: dict[str, np.ndarray] | None = None,
) -> None:
    """`got` equals HF's `want` within the device's tolerance; otherwise one line that says by how much,
    where, and which known mistake (from `mistakes`) the numbers match, else `hint`."""
    expect_shape(got, want.shape, what, todo=todo, hint=hint)
    if agrees(got, want):
        return
    says = known_mistake(got, mistakes) or hint
    raise CheckFailure(
        pointing_at(f"{what} differs from HF: {difference(got, want, axes)}" + (f". {says}" if says else ""), todo)
    )


def expect_wired(spies: dict, hf: dict[str, np.ndarray], path, *, axes: tuple[str, ...] = (), todo: int | None = None):
    """A module's sub-layers in HF's order, each (its name in `spies` and `hf`, HF's input to it, {known
    mistake: the input it would get}, what it reads): the first that was never called, was given other
    numbers than HF's, or gave other numbers than `hf` on them, fails, naming the known mistake."""
    for name, given, mistakes, reads in path:
        spy = spies[name]  # a probes.Spy
        if not spy.calls:
            raise CheckFailure(pointing_at(f"{spy.name} was never called: {reads}", todo))
        got_in, got_out = spy.seen()
        expect_close(got_in, given, f"the input of {spy.name}", axes=axes, todo=todo, hint=reads, mistakes=mistakes)
        expect_close(
            got_out, hf[name], f"{spy.name}, given HF's input,", axes=axes, hint=f"check how {spy.name} is built"
        )


def expect_equal(got: np.ndarray, want: np.ndarray, what: str, *, axes=(), todo=None, hint="", mistakes=None) -> None:
    """`got` equals `want` within the device's tolerance, where `want` is not HF's (the input itself, or the
    learner's own other run); otherwise '{what}: max |Δ| ... . {known mistake, else hint}'."""
    if not agrees(got, want):
        says = known_mistake(got, mistakes) or hint
        raise CheckFailure(pointing_at(f"{what}: {difference(got, want, axes)}" + (f". {says}" if says else ""), todo))


def returned(fn, *args, what: str, todo: int, **kwargs):
    """fn(*args, **kwargs) through checks.call, for learner code that returns a plain value (numpy, an
    int, a generator): None, what a function whose TODO is still `pass` returns, fails naming that TODO."""
    from tutorial.checks import call

    out = call(lambda: fn(*args, **kwargs), what=what)
    if out is None:
        raise CheckFailure(pointing_at(f"{what} returned None: a TODO still needs its code", todo))
    return out


def yielded(fn, *args, what: str, todo: int, **kwargs) -> list[int]:
    """The token ids a learner's generation loop yields; it must be a generator, so that text streams."""
    import inspect

    from tutorial.checks import call

    out = returned(fn, *args, what=what, todo=todo, **kwargs)
    if not inspect.isgenerator(out):
        says = "yield each token as it is picked, so text can stream"
        raise CheckFailure(pointing_at(f"{what} returned a {type(out).__name__}: {says}", todo))
    return [int(t) for t in call(list, out, what=what)]


def expect_tokens(got: list[int], want: list[int], what: str, *, of="HF generate", todo=None, hint="") -> None:
    """Generated token ids equal those `of` a reference (HF generate, or a test model), in order; otherwise
    one line naming the first new token that differs, or the two counts."""
    says = pointing_at(f". {hint}" if hint else "", todo)
    if (at := next((i for i, (a, b) in enumerate(zip(got, want)) if a != b), None)) is not None:
        raise CheckFailure(f"{what} differs from {of} at new token {at}: got {got[at]}, expected {want[at]}{says}")
    if len(got) != len(want):
        raise CheckFailure(f"{what} gave {len(got)} new tokens, {of} gives {len(want)}{says}")
