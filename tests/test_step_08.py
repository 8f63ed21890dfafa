"""Step 08: pre_norm_residual(x, norm, sublayer) is each half of HF's block 0, given HF's sub-layers as spies."""

import numpy as np
import pytest

from solutions.solution_03 import LayerNorm
from solutions.solution_04 import GPT2MLP
from solutions.solution_07 import GPT2MultiHeadAttention
from tutorial.checks import Mutation, call, load, tensor
from tutorial.expect import BTC, expect_close, expect_equal, expect_wired
from tutorial.probes import Spy, result, together
from tutorial.weights import hf_to_max

rng = np.random.default_rng(8)
X = rng.standard_normal((2, 8, 768)).astype(np.float32)  # [B, T, n_embd] residual stream
HALVES = {"attention half": ("ln_1", "attn"), "MLP half": ("ln_2", "mlp")}


@pytest.fixture(scope="module")
def hf(ref):
    """HF's block-0 sub-layers on X, each on what HF gives it."""
    ln_1 = ref.compute(lambda hf, x: hf.transformer.h[0].ln_1(x), X)
    ln_2 = ref.compute(lambda hf, x: hf.transformer.h[0].ln_2(x), X)
    attn = ref.compute(lambda hf, x: hf.transformer.h[0].attn(x)[0], ln_1)
    mlp = ref.compute(lambda hf, x: hf.transformer.h[0].mlp(x), ln_2)
    return {"ln_1": ln_1, "attn": attn, "ln_2": ln_2, "mlp": mlp}


@pytest.fixture(scope="module")
def halves(step, config, ref):
    """Both halves, and ln_1 with a sublayer returning zeros, through the learner's function: one graph."""
    n, eps = config.n_embd, config.layer_norm_epsilon
    parts = {"ln_1": LayerNorm(n, eps=eps), "attn": GPT2MultiHeadAttention(config), "ln_2": LayerNorm(n, eps=eps)}
    parts["mlp"], spies = GPT2MLP(4 * n, config), {}
    for name, part in parts.items():
        load(part, hf_to_max(ref.state(f"transformer.h.0.{name}.")), what=f"loading HF's {name}")
        spies[name] = Spy(part, f"{name} (the {'norm' if name.startswith('ln') else 'sublayer'})")

    def half(what, norm, sublayer):
        return what, lambda: call(step.pre_norm_residual, tensor(X), norm, sublayer, what=what)

    pieces = {h: half(f"pre_norm_residual(x, {a}, {b})", spies[a], spies[b]) for h, (a, b) in HALVES.items()}
    pieces["silent"] = half("pre_norm_residual(x, ln_1, a sublayer returning zeros)", parts["ln_1"], lambda h: h * 0.0)
    return together(pieces), spies


def test_attention_half_matches_hf_block_0(halves, hf, half="attention half"):
    """The half's output; if it differs, the first of its norm and sublayer that was given other numbers."""
    (runs, spies), (norm, sub) = halves, HALVES[half]
    got, formula = result(runs, half, todo=1), f"x + {sub}({norm}(x))"
    post = X + seen[1] if (seen := spies[sub].seen()) else None  # what the norm reads in post-norm
    after = f"{norm} was applied to x + {sub}(x), after the residual add (post-norm). GPT-2 is pre-norm: {formula}"
    path = [(norm, X, {after: post}, f"{sub} must read {norm}(x), and {norm} reads x itself")]
    path.append((sub, hf[norm], {"it got x itself, normalize first": X}, f"{sub} reads {norm}(x)"))
    expect_wired(spies, hf, path, axes=BTC, todo=1)
    mistakes = {f"the residual is missing: add x back, {formula}": hf[sub]}
    mistakes[f"{norm}(x) is added back instead of x: the stream carries x itself ({formula})"] = hf[norm] + hf[sub]
    expect_close(got, X + hf[sub], f"the {half}", axes=BTC, todo=1, hint=f"expected {formula}", mistakes=mistakes)


def test_mlp_half_matches_hf_block_0(halves, hf):
    test_attention_half_matches_hf_block_0(halves, hf, "MLP half")


def test_a_sublayer_that_adds_nothing_leaves_x_unchanged(halves, hf):
    """The residual path: whatever a sublayer does, x itself gets through."""
    got, what = result(halves[0], "silent", todo=1), "with a sublayer that returns zeros, the result differs from x"
    mistakes = {
        "the result is all zeros: x itself must be added back": 0 * X,
        "the result is ln_1(x): the stream carries x itself, the norm only feeds the sublayer (pre-norm)": hf["ln_1"],
    }
    expect_equal(got, X, what, axes=BTC, todo=1, hint="it must be x + 0 = x", mistakes=mistakes)


RIGHT, POST, BARE = "return x + sublayer(norm(x))", "return norm(x + sublayer(x))", "return sublayer(norm(x))"
SKIPPED, NORMED = "return x + sublayer(x)", "return norm(x) + sublayer(norm(x))"
ATTENTION, MLP = test_attention_half_matches_hf_block_0, test_mlp_half_matches_hf_block_0
SILENT = test_a_sublayer_that_adds_nothing_leaves_x_unchanged
MUTATIONS = [
    Mutation("post-norm", RIGHT, POST, ATTENTION, "post-norm"),
    Mutation("post-norm, seen with a silent sublayer", RIGHT, POST, SILENT, "pre-norm"),
    Mutation("residual missing", RIGHT, BARE, MLP, "residual is missing"),
    Mutation("residual missing, seen with a silent sublayer", RIGHT, BARE, SILENT, "x itself must be added back"),
    Mutation("norm skipped", RIGHT, SKIPPED, ATTENTION, "ln_1 (the norm) was never called"),
    Mutation("normalized residual", RIGHT, NORMED, ATTENTION, "ln_1(x) is added back instead of x"),
]
