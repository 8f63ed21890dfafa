"""Step 07: GPT2MultiHeadAttention matches HF's transformer.h[0].attn, piece by piece.

Every method runs on HF's own numbers for its input (split_heads on HF's q,
scores on HF's q and k split into heads), so a failure names the first piece
that leaves HF, and the known mistake its numbers match.
"""

import math
import re

import numpy as np

from solutions.solution_11 import hf_to_max
from tutorial.checks import CheckFailure, Mutation, call, load, tensor, todo
from tutorial.probes import difference, result, same, together, which

rng = np.random.default_rng(7)
X = rng.standard_normal((2, 8, 768)).astype(np.float32)  # [B, T, n_embd]: one shape, so one compiled graph
LATER = X.copy()
LATER[:, -1] = rng.standard_normal((2, 768))  # only the last position differs
HEAD_AXES = ("batch", "head", "position", "feature")
SCORE_AXES = ("batch", "head", "query", "key")


def hf_heads(hf, x):
    """HF's q, k, v of block 0 split as HF splits them, view + transpose: [3, B, n_head, T, head_dim]."""
    import torch

    attn = hf.transformer.h[0].attn
    q, k, v = attn.c_attn(x).split(attn.split_size, dim=2)
    return torch.stack([t.view(*t.shape[:2], -1, attn.head_dim).transpose(1, 2) for t in (q, k, v)])


def hf_numbers(ref):
    heads = ref.compute(hf_heads, X)
    return {
        "q": ref.compute(lambda hf, x: hf.transformer.h[0].attn.c_attn(x), X)[..., : X.shape[-1]],  # [B, T, n_embd]
        "heads": heads,
        "merged": heads[2].transpose(0, 2, 1, 3).reshape(X.shape),  # HF: transpose(1, 2), then reshape
        "out": ref.compute(lambda hf, x: hf.transformer.h[0].attn(x)[0], X),
    }


_RUNS = {}


def learner(step, config, ref, group):
    """The learner's methods on HF's inputs ("methods"), or the whole layer ("layer"): one graph each, once per session.

    Two graphs, so that a broken __call__ cannot hide a correct split_heads or scores.
    """
    if (id(step), group) in _RUNS:
        return _RUNS[id(step), group]
    hf = hf_numbers(ref)
    module = call(step.GPT2MultiHeadAttention, config, what="GPT2MultiHeadAttention(config)")
    if group == "methods":
        try:  # the methods use no weights, but random-init ones left alive would join the graph
            load(module, hf_to_max(ref.state("transformer.h.0.attn.")), what="")
        except CheckFailure:
            pass
        q, k, v = (tensor(h) for h in hf["heads"])
        pieces = {
            "split_heads": ("split_heads(q)", lambda: call(module.split_heads, tensor(hf["q"]), what="split_heads(q)")),
            "scores": ("scores(q, k)", lambda: call(module.scores, q, k, what="scores(q, k)")),
            "merge_heads": ("merge_heads(x)", lambda: call(module.merge_heads, v, what="merge_heads(x)")),
        }
    else:
        load(module, hf_to_max(ref.state("transformer.h.0.attn.")), what=f"loading HF's attn weights ({todo(1)})")
        pieces = {
            name: ("attn(x)", lambda x=x: call(module, tensor(x), what="attn(x)"))
            for name, x in (("out", X), ("later", LATER))
        }
    _RUNS[id(step), group] = together(pieces)
    return _RUNS[id(step), group]


def layer_output(step, config, ref, name):
    """attn(x) on X ("out") or LATER ("later"), with advice when MAX could not compile it."""
    try:
        return result(learner(step, config, ref, "layer"), name)
    except CheckFailure as error:
        says = (
            ". Softmax runs over the keys, the last axis of the scores: F.softmax(scores, axis=-1)"
            if "non-inner axis" in str(error)
            else ""
        )
        raise CheckFailure(f"{error}{says}" + ("" if re.search(r"TODO \d", str(error)) else f" ({todo(6)})")) from None


def mask(t, sees=0):
    """-inf where key j is more than `sees` positions after query i."""
    return np.where(np.triu(np.ones((t, t), dtype=bool), k=sees + 1), -np.inf, 0.0)


def known_scores(q, k):
    """Scores as learners get them wrong: each scale with each mask. The first entry is right."""
    dots = q.astype(np.float64) @ k.astype(np.float64).swapaxes(-1, -2)
    hd, t = q.shape[-1], q.shape[-2]
    scales = {
        None: math.sqrt(hd),
        "There is no scaling. Did you scale by sqrt(head_dim)? Divide q @ k^T by math.sqrt(self.head_dim)": 1.0,
        "They are scaled by 1/sqrt(n_embd): the scale is per head, 1/sqrt(head_dim) = 1/8": math.sqrt(hd * q.shape[1]),
        "They are divided by head_dim: divide by sqrt(head_dim) (8), not head_dim (64)": float(hd),
    }
    masks = {
        None: mask(t),
        "There is no causal mask: add causal_mask(T, S - T, ...) so query i sees only keys 0..i": np.zeros((t, t)),
        "The mask is off by one: query i also sees key i+1": mask(t, sees=1),
        "The mask is off by one: it hides each query's own key; query i must see keys 0..i": mask(t, sees=-1),
    }
    return {
        ". ".join(m for m in (scale_says, mask_says) if m): dots / scale + add
        for scale_says, scale in scales.items()
        for mask_says, add in masks.items()
    }


def softmax(s, axis):
    e = np.exp(s - s.max(axis, keepdims=True))
    return e / e.sum(axis, keepdims=True)


def known_outputs(ref, heads):
    """Outputs of an __call__ whose pieces are right but wired wrong."""
    w = ref.weight("transformer.h.0.attn.c_proj.weight").astype(np.float64)  # Conv1D: [in, out]
    b = ref.weight("transformer.h.0.attn.c_proj.bias").astype(np.float64)

    def attend(q, k, v, axis=-1, project=True):
        s = next(iter(known_scores(q, k).values()))
        y = softmax(s, axis) @ v.astype(np.float64)  # [B, n_head, T, head_dim]
        y = y.transpose(0, 2, 1, 3).reshape(*y.shape[:1], y.shape[2], -1)
        return y @ w + b if project else y

    q, k, v = heads
    return {
        "softmax ran over the queries (axis=-2): each query's weights must sum to 1 over the keys, "
        f"F.softmax(scores, axis=-1) ({todo(5)})": attend(q, k, v, axis=-2),
        "q and k are swapped: c_attn's output is q, then k, then v": attend(k, q, v),
        "q, k and v are taken in the wrong order: c_attn's output is q, then k, then v": attend(q, v, k),
        "c_proj is not applied: the merged heads go through self.c_proj": attend(q, k, v, project=False),
    }


def test_c_attn_and_c_proj_are_linear_layers_of_hf_shapes(step, config):
    from max.nn.module_v3 import Linear

    module = call(step.GPT2MultiHeadAttention, config, what="GPT2MultiHeadAttention(config)")
    n = config.n_embd
    for name, shape, says in (("c_attn", [3 * n, n], "n_embd -> 3 * n_embd"), ("c_proj", [n, n], "n_embd -> n_embd")):
        layer = getattr(module, name, None)
        if not isinstance(layer, Linear):
            raise CheckFailure(f"self.{name} is {layer!r:.40}, expected a max.nn.module_v3.Linear ({todo(1)})")
        got = [int(d) for d in layer.weight.shape]
        if got != shape:
            raise CheckFailure(
                f"self.{name} has weight shape {got}, expected {shape}: Linear({says.replace(' -> ', ', ')}) stores [out, in] ({todo(1)})"
            )
        if isinstance(layer.bias, int):
            raise CheckFailure(f"self.{name} has no bias, HF's has one: keep Linear's default bias=True ({todo(1)})")


def test_split_heads_matches_hf(step, config, ref):
    got = result(learner(step, config, ref, "methods"), "split_heads", todo(2))
    want = hf_numbers(ref)["heads"][0]
    if got.shape != want.shape:
        raise CheckFailure(
            f"split_heads gives shape {list(got.shape)}, expected [B, n_head, T, head_dim] = {list(want.shape)}: "
            f"reshape to [B, T, n_head, head_dim], then swap axes 1 and 2 ({todo(2)})"
        )
    if same(got, want):
        return
    q = hf_numbers(ref)["q"]
    if same(got, q.reshape(want.shape)):
        says = "it reshapes straight to [B, n_head, T, head_dim], which cuts across positions: reshape to [B, T, n_head, head_dim] first, then transpose(1, 2)"
    else:
        says = "head h must hold features h*head_dim ... (h+1)*head_dim - 1 of every position: reshape to [B, T, n_head, head_dim] first, then transpose(1, 2)"
    raise CheckFailure(
        f"split_heads differs from HF's q.view(B, T, n_head, head_dim).transpose(1, 2): {difference(got, want, HEAD_AXES)}; {says} ({todo(2)})"
    )


def test_merge_heads_undoes_split_heads(step, config, ref):
    got = result(learner(step, config, ref, "methods"), "merge_heads", todo(3))
    want, heads = hf_numbers(ref)["merged"], hf_numbers(ref)["heads"][2]
    if got.shape != want.shape:
        raise CheckFailure(
            f"merge_heads gives shape {list(got.shape)}, expected [B, T, n_embd] = {list(want.shape)} ({todo(3)})"
        )
    if same(got, want):
        return
    says = "transpose back to [B, T, n_head, head_dim] first, then reshape to [B, T, n_embd]"
    if same(got, heads.reshape(want.shape)):
        says = "it reshapes [B, n_head, T, head_dim] without moving the head axis: " + says
    raise CheckFailure(
        f"merge_heads differs from HF's x.transpose(1, 2).reshape(B, T, n_embd): {difference(got, want, ('batch', 'position', 'feature'))}; {says} ({todo(3)})"
    )


def test_scores_match_hf_before_softmax(step, config, ref):
    got = result(learner(step, config, ref, "methods"), "scores", todo(4))
    q, k, _ = hf_numbers(ref)["heads"]
    candidates = known_scores(q, k)
    want = next(iter(candidates.values()))
    if got.shape != want.shape:
        raise CheckFailure(
            f"scores give shape {list(got.shape)}, expected [B, n_head, T, T] = {list(want.shape)}: q @ k.transpose(-1, -2) ({todo(4)})"
        )
    if same(got, want):
        return
    says = which(got, candidates) or "Expected q @ k^T / sqrt(head_dim) + causal_mask. Did you scale by sqrt(head_dim)?"
    raise CheckFailure(f"scores differ before softmax: {difference(got, want, SCORE_AXES)}. {says} ({todo(4)})")


def test_attention_matches_hf(step, config, ref):
    """The whole layer; if it differs, the first piece that does is named."""
    got, want = layer_output(step, config, ref, "out"), hf_numbers(ref)["out"]
    if got.shape != want.shape:
        raise CheckFailure(
            f"attn(x) gives shape {list(got.shape)}, expected [B, T, n_embd] = {list(want.shape)} ({todo(6)})"
        )
    if same(got, want):
        return
    for piece, check in (
        ("split_heads", test_split_heads_matches_hf),
        ("scores", test_scores_match_hf_before_softmax),
        ("merge_heads", test_merge_heads_undoes_split_heads),
    ):
        try:
            check(step, config, ref)
        except CheckFailure as error:
            raise CheckFailure(f"attn(x) differs from HF, first in {piece}: {error}") from None
    if np.isnan(got).any():
        says = "it has NaN: does every score go through F.softmax before the matmul with v?"
    else:
        says = which(got, known_outputs(ref, hf_numbers(ref)["heads"])) or (
            "split_heads, scores and merge_heads match HF, so look at attend (softmax over the keys, axis=-1, "
            f"then weights @ v, {todo(5)}) and at how __call__ joins them: c_attn, split q/k/v, attend, merge, c_proj"
        )
    raise CheckFailure(
        f"attn(x) differs from HF: {difference(got, want, ('batch', 'position', 'feature'))}; {says} ({todo(6)})"
    )


def test_a_position_never_sees_later_ones(step, config, ref):
    """Change only the last position's input: every earlier output must stay as it was."""
    got, later = layer_output(step, config, ref, "out"), layer_output(step, config, ref, "later")
    if got.shape != X.shape or later.shape != X.shape:
        raise CheckFailure(f"attn(x) gives shape {list(got.shape)}, expected {list(X.shape)} ({todo(6)})")
    earlier = slice(0, X.shape[1] - 1)
    if not same(later[:, earlier], got[:, earlier]):
        raise CheckFailure(
            f"changing only the last position's input changed earlier outputs: {difference(later[:, earlier], got[:, earlier], ('batch', 'position', 'feature'))}. "
            f"A query must not see later keys: add the causal mask to the scores ({todo(4)})"
        )


SCALE = "q @ k.transpose(-1, -2) / math.sqrt(self.head_dim)"
MASK = "s + causal_mask(q.shape[-2], earlier, dtype=s.dtype, device=s.device)"
SPLIT = "x = x.reshape([batch, seq, self.n_head, self.head_dim])\n        return x.transpose(1, 2)"
MUTATIONS = [
    Mutation(
        "missing scale",
        SCALE,
        "q @ k.transpose(-1, -2)",
        "test_scores_match_hf_before_softmax",
        "Did you scale by sqrt(head_dim)?",
    ),
    Mutation(
        "scale by sqrt(n_embd)",
        SCALE,
        "q @ k.transpose(-1, -2) / math.sqrt(self.n_head * self.head_dim)",
        "test_scores_match_hf_before_softmax",
        "1/sqrt(n_embd)",
    ),
    Mutation(
        "scale by head_dim",
        SCALE,
        "q @ k.transpose(-1, -2) / self.head_dim",
        "test_scores_match_hf_before_softmax",
        "not head_dim",
    ),
    Mutation("mask missing", MASK, "s", "test_scores_match_hf_before_softmax", "no causal mask"),
    Mutation(
        "mask missing, seen as a leak", MASK, "s", "test_a_position_never_sees_later_ones", "must not see later keys"
    ),
    Mutation(
        "mask off by one",
        MASK,
        "s + causal_mask(q.shape[-2], earlier + 1, dtype=s.dtype, device=s.device)[:, :-1]",
        "test_scores_match_hf_before_softmax",
        "off by one: query i also sees key i+1",
    ),
    Mutation(
        "softmax over the wrong axis",
        "F.softmax(self.scores(q, k), axis=-1)",
        "F.softmax(self.scores(q, k), axis=-2)",
        "test_attention_matches_hf",
        "Softmax runs over the keys, the last axis",
    ),
    Mutation(
        "heads reshaped without the transpose",
        SPLIT,
        "return x.reshape([batch, self.n_head, seq, self.head_dim])",
        "test_split_heads_matches_hf",
        "reshapes straight to [B, n_head, T, head_dim]",
    ),
    Mutation(
        "heads transposed on the wrong axes",
        "x.transpose(1, 2)  # [B, n_head",
        "x.transpose(2, 3)  # [B, n_head",
        "test_split_heads_matches_hf",
        "swap axes 1 and 2",
    ),
    Mutation(
        "heads interleaved",
        SPLIT,
        "x = x.reshape([batch, seq, self.head_dim, self.n_head])\n        return x.permute([0, 3, 1, 2])",
        "test_split_heads_matches_hf",
        "head h must hold features",
    ),
    Mutation(
        "heads split wrong, seen in the output",
        SPLIT,
        "return x.reshape([batch, self.n_head, seq, self.head_dim])",
        "test_attention_matches_hf",
        "first in split_heads",
    ),
    Mutation(
        "merge without the transpose",
        "x = x.transpose(1, 2)  # [B, T, n_head, head_dim]\n        return",
        "return",
        "test_merge_heads_undoes_split_heads",
        "without moving the head axis",
    ),
    Mutation(
        "q and k swapped",
        "q, k, v = F.split(",
        "k, q, v = F.split(",
        "test_attention_matches_hf",
        "q and k are swapped",
    ),
    Mutation(
        "c_proj missing",
        "return self.c_proj(self.merge_heads(self.attend(q, k, v)))",
        "return self.merge_heads(self.attend(q, k, v))",
        "test_attention_matches_hf",
        "c_proj is not applied",
    ),
    Mutation(
        "c_attn too narrow",
        "Linear(config.n_embd, 3 * config.n_embd)",
        "Linear(config.n_embd, config.n_embd)",
        "test_c_attn_and_c_proj_are_linear_layers_of_hf_shapes",
        "expected [2304, 768]",
    ),
]
