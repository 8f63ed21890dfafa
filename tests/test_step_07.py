"""Step 07: GPT2MultiHeadAttention is HF's transformer.h[0].attn, each method checked on HF's own inputs."""

import math
from contextlib import suppress

import numpy as np
import pytest

from tutorial.checks import CheckFailure, Mutation, call, load, tensor
from tutorial.expect import BTC, agrees, expect_close, expect_equal, expect_linear
from tutorial.maxprivate import softmax_not_last_axis
from tutorial.probes import result, together
from tutorial.weights import hf_to_max
from tutorial.explain import todo_place

rng = np.random.default_rng(7)
X = rng.standard_normal((2, 8, 768)).astype(np.float32)  # [B, T, n_embd]: one shape, so one compiled graph
LATER = X.copy()
LATER[:, -1] = rng.standard_normal((2, 768))  # only the last position differs
INPUTS = {"out": X, "later": LATER}
HEADS, SCORES = ("batch", "head", "position", "feature"), ("batch", "head", "query", "key")
NEW = "GPT2MultiHeadAttention(config)"


@pytest.fixture(scope="module")
def hf(ref, config):
    """HF's q, k, v ([B, T, n_embd]), each split into heads as HF's view + transpose(1, 2) does, and attn(x)."""
    q, k, v = np.split(ref.compute(lambda hf, x: hf.transformer.h[0].attn.c_attn(x), X), 3, axis=-1)
    heads = [t.reshape(*t.shape[:2], config.n_head, -1).transpose(0, 2, 1, 3) for t in (q, k, v)]
    return {"q": q, "v": v, "heads": heads, "out": ref.compute(lambda hf, x: hf.transformer.h[0].attn(x)[0], X)}


@pytest.fixture(scope="module")
def methods(step, config, ref, hf):
    """The methods on HF's inputs, in a graph apart from __call__'s: a broken __call__ cannot hide them."""
    module = call(step.GPT2MultiHeadAttention, config, what=NEW)
    with suppress(CheckFailure):  # no weights used, but random-init ones left alive would join the graph
        load(module, hf_to_max(ref.state("transformer.h.0.attn.")), what="")
    q, k, v = (tensor(h) for h in hf["heads"])
    pieces = {  # in the order __call__ runs them
        "split_heads": ("split_heads(q)", module.split_heads, tensor(hf["q"])),
        "scores": ("scores(q, k)", module.scores, q, k),
        "merge_heads": ("merge_heads(x)", module.merge_heads, v),
    }
    return together({name: (w, lambda f=f, a=a, w=w: call(f, *a, what=w)) for name, (w, f, *a) in pieces.items()})


@pytest.fixture(scope="module")
def layer(step, config, ref):
    module = call(step.GPT2MultiHeadAttention, config, what=NEW)
    load(module, hf_to_max(ref.state("transformer.h.0.attn.")), what=f"loading HF's attn weights ({todo_place(1)})")
    runs = together({k: ("attn(x)", lambda x=x: call(module, tensor(x), what="attn(x)")) for k, x in INPUTS.items()})
    axis = "Softmax runs over the keys, the last axis of the scores: F.softmax(scores, axis=-1)"
    for k, v in runs.items():
        if isinstance(v, CheckFailure) and softmax_not_last_axis(v):
            runs[k] = CheckFailure(f"{v}. {axis}")
    return runs


def known_scores(q, k):
    """Scores with each scale and each mask learners use; the first is right."""
    dots, hd, t = q.astype(np.float64) @ k.astype(np.float64).swapaxes(-1, -2), q.shape[-1], q.shape[-2]
    scales = {
        "": math.sqrt(hd),
        "There is no scaling. Did you scale by sqrt(head_dim)? Divide q @ k^T by math.sqrt(self.head_dim)": 1.0,
        "They are scaled by 1/sqrt(n_embd): the scale is per head, 1/sqrt(head_dim) = 1/8": math.sqrt(hd * q.shape[1]),
        "They are divided by head_dim: divide by sqrt(head_dim) (8), not head_dim (64)": float(hd),
    }
    sees = {  # how many later keys a query sees
        "": 0,
        "There is no causal mask: add causal_mask(T, S - T, ...) so query i sees only keys 0..i": t,
        "The mask is off by one: query i also sees key i+1": 1,
        "The mask is off by one: it hides each query's own key; query i must see keys 0..i": -1,
    }
    mask = {says: np.triu(np.full((t, t), -np.inf), n + 1) for says, n in sees.items()}
    return {". ".join(filter(None, (s, m))): dots / scale + mask[m] for s, scale in scales.items() for m in mask}


def known_outputs(ref, q, k, v):
    """Outputs of an __call__ whose pieces are right but wired wrong."""
    w, b = (ref.weight(f"transformer.h.0.attn.c_proj.{p}").astype(np.float64) for p in ("weight", "bias"))

    def attend(q, k, v, axis=-1, project=True):
        s = next(iter(known_scores(q, k).values()))
        e = np.exp(s - s.max(axis, keepdims=True))
        y = ((e / e.sum(axis, keepdims=True)) @ v.astype(np.float64)).transpose(0, 2, 1, 3).reshape(X.shape)
        return y @ w + b if project else y  # HF's Conv1D weight is [in, out]

    order = f"c_attn's output is q, then k, then v ({todo_place(6)})"
    return {
        "softmax ran over the queries (axis=-2): each query's weights must sum to 1 over the keys, "
        f"F.softmax(scores, axis=-1) ({todo_place(5)})": attend(q, k, v, axis=-2),
        f"q and k are swapped: {order}": attend(k, q, v),
        f"q, k and v are taken in the wrong order: {order}": attend(q, v, k),
        "c_proj is not applied: the merged heads go through self.c_proj": attend(q, k, v, project=False),
    }


def test_c_attn_and_c_proj_are_linear_layers_of_hf_shapes(step, config):
    module, n = call(step.GPT2MultiHeadAttention, config, what=NEW), config.n_embd
    expect_linear(module, "c_attn", in_=n, out=3 * n, bias=True, todo=1)
    expect_linear(module, "c_proj", in_=n, out=n, bias=True, todo=1)


def test_split_heads_matches_hf(methods, hf):
    got, want = result(methods, "split_heads", todo=2), hf["heads"][0]
    then = "reshape to [B, T, n_head, head_dim] first, then swap axes 1 and 2: transpose(1, 2)"
    hint = f"head h must hold features h*head_dim ... (h+1)*head_dim - 1 of every position: {then}"
    straight = hf["q"].reshape(want.shape)  # [B, T, n_embd] cut straight into [B, n_head, T, head_dim]
    mistakes = {f"it reshapes straight to [B, n_head, T, head_dim], which cuts across positions: {then}": straight}
    expect_close(got, want, "split_heads(q)", axes=HEADS, todo=2, hint=hint, mistakes=mistakes)


def test_merge_heads_undoes_split_heads(methods, hf):
    got, unmoved = result(methods, "merge_heads", todo=3), hf["heads"][2].reshape(X.shape)
    back = "transpose back to [B, T, n_head, head_dim] first, then reshape to [B, T, n_embd]"
    moved = {f"it reshapes [B, n_head, T, head_dim] without moving the head axis: {back}": unmoved}
    expect_close(got, hf["v"], "merge_heads(x)", axes=BTC, todo=3, hint=back, mistakes=moved)


def test_scores_match_hf_before_softmax(methods, hf):
    (_, want), *wrong = known_scores(*hf["heads"][:2]).items()
    got, says = result(methods, "scores", todo=4), "Expected q @ k^T / sqrt(head_dim) + causal_mask"
    hint = f"{says}. Did you scale by sqrt(head_dim)?"
    expect_close(got, want, "scores(q, k)", axes=SCORES, todo=4, hint=hint, mistakes=dict(wrong))


def test_attention_matches_hf(layer, methods, hf, ref):
    """The whole layer; if it differs, the first piece that does is named."""
    got = result(layer, "out", todo=7)
    pieces = (test_split_heads_matches_hf, test_scores_match_hf_before_softmax, test_merge_heads_undoes_split_heads)
    if not agrees(got, hf["out"]):
        for piece, check in zip(methods, pieces):  # in the order __call__ runs them
            try:
                check(methods, hf)
            except CheckFailure as error:
                raise CheckFailure(f"attn(x) differs from HF, first in {piece}: {error}") from None
    says = "split_heads, scores and merge_heads match HF, so look at attend (softmax over the keys, axis=-1, then "
    says += f"weights @ v, {todo_place(5)}), at heads (c_attn, cut into q, k, v, each split, {todo_place(6)}) "
    says += f"and at how __call__ joins them: heads, attend, merge, c_proj ({todo_place(7)})"
    if np.isnan(got).any():
        says = "it has NaN: does every score go through F.softmax before the matmul with v?"
    expect_close(got, hf["out"], "attn(x)", axes=BTC, todo=7, hint=says, mistakes=known_outputs(ref, *hf["heads"]))


def test_a_position_never_sees_later_ones(layer):
    """Change only the last position's input: every earlier output must stay as it was."""
    got, later = result(layer, "out", todo=7)[:, :-1], result(layer, "later", todo=7)[:, :-1]
    what, says = "changing only the last position's input changed earlier outputs", "A query must not see later keys"
    expect_equal(later, got, what, axes=BTC, todo=4, hint=f"{says}: add the causal mask to the scores")


SCALE, SOFTMAX = "q @ k.transpose(-1, -2) / math.sqrt(self.head_dim)", "F.softmax(self.scores(q, k), axis=-1)"
QUERIES = SOFTMAX.replace("-1", "-2")
MASK = "s + causal_mask(q.shape[-2], earlier, dtype=s.dtype, device=s.device)"
OFF_BY_ONE = MASK.replace("earlier,", "earlier + 1,") + "[:, :-1]"
SPLIT = "x = x.reshape([batch, seq, self.n_head, self.head_dim])\n        return x.transpose(1, 2)"
FLAT = (SPLIT, "return x.reshape([batch, self.n_head, seq, self.head_dim])")  # (old, new): no transpose
INTERLEAVED = "x = x.reshape([batch, seq, self.head_dim, self.n_head])\n        return x.permute([0, 3, 1, 2])"
AXES_12, AXES_23 = "x.transpose(1, 2)  # [B, n_head", "x.transpose(2, 3)  # [B, n_head"
MERGE = "x = x.transpose(1, 2)  # [B, T, n_head, head_dim]\n        return"
OUT = "return self.c_proj(self.merge_heads(self.attend(q, k, v)))"
C_ATTN = "Linear(config.n_embd, 3 * config.n_embd)"
SHAPES, SPLITS = test_c_attn_and_c_proj_are_linear_layers_of_hf_shapes, test_split_heads_matches_hf
SCORED, LAYER = test_scores_match_hf_before_softmax, test_attention_matches_hf
LEAK, MERGES = test_a_position_never_sees_later_ones, test_merge_heads_undoes_split_heads
MUTATIONS = [
    Mutation("missing scale", SCALE, "q @ k.transpose(-1, -2)", SCORED, "Did you scale by sqrt(head_dim)?"),
    Mutation("scale by sqrt(n_embd)", SCALE, SCALE.replace("(self.", "(self.n_head * self."), SCORED, "1/sqrt(n_embd)"),
    Mutation("scale by head_dim", SCALE, "q @ k.transpose(-1, -2) / self.head_dim", SCORED, "not head_dim"),
    Mutation("mask missing", MASK, "s", SCORED, "no causal mask"),
    Mutation("mask missing, seen as a leak", MASK, "s", LEAK, "must not see later keys"),
    Mutation("mask off by one", MASK, OFF_BY_ONE, SCORED, "off by one: query i also sees key i+1"),
    Mutation("softmax over the wrong axis", SOFTMAX, QUERIES, LAYER, "Softmax runs over the keys, the last axis"),
    Mutation("heads reshaped without the transpose", *FLAT, SPLITS, "reshapes straight to [B, n_head, T, head_dim]"),
    Mutation("heads transposed on the wrong axes", AXES_12, AXES_23, SPLITS, "swap axes 1 and 2"),
    Mutation("heads interleaved", SPLIT, INTERLEAVED, SPLITS, "head h must hold features"),
    Mutation("heads split wrong, seen in the output", *FLAT, LAYER, "first in split_heads"),
    Mutation("merge without the transpose", MERGE, "return", MERGES, "without moving the head axis"),
    Mutation("q and k swapped", "q, k, v = F.split(", "k, q, v = F.split(", LAYER, "q and k are swapped"),
    Mutation("c_proj missing", OUT, "return self.merge_heads(self.attend(q, k, v))", LAYER, "c_proj is not applied"),
    Mutation("c_attn too narrow", C_ATTN, "Linear(config.n_embd, config.n_embd)", SHAPES, "expected [2304, 768]"),
]
