"""Step 08: pre_norm_residual(x, norm, sublayer) is each half of HF's block 0.

The norm and sublayer handed to the learner's function are HF's block-0
ln_1/attn and ln_2/mlp (the reference modules of steps 03, 04 and 07 with
HF's weights), wrapped in spies: a failure says what the norm and the
sublayer were actually given, which names post-norm and a missing residual.
"""

import numpy as np

from solutions.solution_03 import LayerNorm
from solutions.solution_04 import GPT2MLP
from solutions.solution_07 import GPT2MultiHeadAttention
from solutions.solution_11 import hf_to_max
from tutorial.checks import CheckFailure, Mutation, call, load, tensor, todo
from tutorial.probes import Spy, difference, result, resembles, same, together

rng = np.random.default_rng(8)
X = rng.standard_normal((2, 8, 768)).astype(np.float32)  # [B, T, n_embd] residual stream
AXES = ("batch", "position", "feature")
HALVES = {"attention half": ("ln_1", "attn"), "MLP half": ("ln_2", "mlp")}


def block_0(config, ref):
    """HF's block-0 sub-layers as MAX modules (the reference solutions, HF's weights)."""
    parts = {
        "ln_1": LayerNorm(config.n_embd, eps=config.layer_norm_epsilon),
        "attn": GPT2MultiHeadAttention(config),
        "ln_2": LayerNorm(config.n_embd, eps=config.layer_norm_epsilon),
        "mlp": GPT2MLP(4 * config.n_embd, config),
    }
    for name, part in parts.items():
        load(part, hf_to_max(ref.state(f"transformer.h.0.{name}.")), what=f"loading HF's {name}")
    return parts


def hf_halves(ref):
    return {
        "attention half": ref.compute(lambda hf, x: x + hf.transformer.h[0].attn(hf.transformer.h[0].ln_1(x))[0], X),
        "MLP half": ref.compute(lambda hf, x: x + hf.transformer.h[0].mlp(hf.transformer.h[0].ln_2(x)), X),
    }


_RUNS = {}


def learner(step, config, ref):
    """Both halves and a silent sublayer through the learner's function, in one graph (once per session)."""
    if id(step) in _RUNS:
        return _RUNS[id(step)]
    parts = block_0(config, ref)
    spies = {name: Spy(part, name) for name, part in parts.items()}

    def half(norm, sublayer):
        what = f"pre_norm_residual(x, {norm}, {sublayer})"
        return what, lambda: call(step.pre_norm_residual, tensor(X), spies[norm], spies[sublayer], what=what)

    pieces = {name: half(*names) for name, names in HALVES.items()}
    silent = "pre_norm_residual(x, ln_1, a sublayer returning zeros)"
    pieces["silent"] = (
        silent,
        lambda: call(step.pre_norm_residual, tensor(X), parts["ln_1"], lambda h: h * 0.0, what=silent),
    )
    _RUNS[id(step)] = together(pieces), spies
    return _RUNS[id(step)]


def check_half(step, config, ref, half):
    runs, spies = learner(step, config, ref)
    got, want = result(runs, half, todo(1)), hf_halves(ref)[half]
    norm_name, sub_name = HALVES[half]
    formula = f"x + {sub_name}({norm_name}(x))"
    if got.shape != want.shape:
        raise CheckFailure(
            f"the {half} gives shape {list(got.shape)}, expected {list(want.shape)}, the shape of x ({todo(1)})"
        )
    if same(got, want):
        return
    norm, sub = spies[norm_name].seen(), spies[sub_name].seen()
    if norm is None:
        says = f"{norm_name} (the norm) was never called: {sub_name} must read {norm_name}(x), not x"
    elif sub is None:
        says = f"{sub_name} (the sublayer) was never called"
    elif not same(norm[0], X):
        if resembles(norm[0], X + sub[1]):
            says = f"{norm_name} was applied to x + {sub_name}(x), after the residual add (post-norm). GPT-2 is pre-norm: {formula}"
        else:
            says = f"{norm_name} (the norm) was given something other than x itself"
    elif not same(sub[0], norm[1]):
        says = f"{sub_name} was not given {norm_name}(x)" + (
            ": it got x itself, normalize first" if same(sub[0], X) else ""
        )
    elif resembles(got, sub[1]):
        says = f"the residual is missing: add x back, {formula}"
    elif resembles(got, norm[1] + sub[1]):
        says = f"{norm_name}(x) is added back instead of x: the stream carries x itself, unnormalized ({formula})"
    else:
        says = f"expected {formula}"
    raise CheckFailure(
        f"the {half} differs from HF's {formula} of block 0: {difference(got, want, AXES)}; {says} ({todo(1)})"
    )


def ln_1(ref, x):
    """HF's ln_1 in numpy."""
    x = x.astype(np.float64)
    n = (x - x.mean(-1, keepdims=True)) / np.sqrt(x.var(-1, keepdims=True) + 1e-5)
    return n * ref.weight("transformer.h.0.ln_1.weight") + ref.weight("transformer.h.0.ln_1.bias")


def test_attention_half_matches_hf_block_0(step, config, ref):
    check_half(step, config, ref, "attention half")


def test_mlp_half_matches_hf_block_0(step, config, ref):
    check_half(step, config, ref, "MLP half")


def test_a_sublayer_that_adds_nothing_leaves_x_unchanged(step, config, ref):
    """The residual path: whatever a sublayer does, x itself gets through."""
    got = result(learner(step, config, ref)[0], "silent", todo(1))
    if same(got, X):
        return
    if got.shape == X.shape and resembles(got, np.zeros_like(X)):
        says = "the result is all zeros: x itself must be added back"
    elif got.shape == X.shape and resembles(got, ln_1(ref, X)):
        says = "the result is ln_1(x): the stream carries x itself, the norm only feeds the sublayer (pre-norm)"
    else:
        says = "it must be x + 0 = x"
    raise CheckFailure(
        f"with a sublayer that returns zeros, the result differs from x: {difference(got, X, AXES)}; {says} ({todo(1)})"
    )


RIGHT = "return x + sublayer(norm(x))"
MUTATIONS = [
    Mutation("post-norm", RIGHT, "return norm(x + sublayer(x))", "test_attention_half_matches_hf_block_0", "post-norm"),
    Mutation(
        "post-norm, seen with a silent sublayer",
        RIGHT,
        "return norm(x + sublayer(x))",
        "test_a_sublayer_that_adds_nothing_leaves_x_unchanged",
        "pre-norm",
    ),
    Mutation(
        "residual missing", RIGHT, "return sublayer(norm(x))", "test_mlp_half_matches_hf_block_0", "residual is missing"
    ),
    Mutation(
        "residual missing, seen with a silent sublayer",
        RIGHT,
        "return sublayer(norm(x))",
        "test_a_sublayer_that_adds_nothing_leaves_x_unchanged",
        "x itself must be added back",
    ),
    Mutation(
        "norm skipped",
        RIGHT,
        "return x + sublayer(x)",
        "test_attention_half_matches_hf_block_0",
        "ln_1 (the norm) was never called",
    ),
    Mutation(
        "normalized residual",
        RIGHT,
        "return norm(x) + sublayer(norm(x))",
        "test_attention_half_matches_hf_block_0",
        "ln_1(x) is added back instead of x",
    ),
]
