"""Step 09: GPT2Block matches HF's transformer.h[0], sub-layer by sub-layer.

HF's block 0 weights go into the learner's block, and a spy replaces each
sub-layer, so one run shows what ln_1, attn, ln_2 and mlp were given and
gave back. A failure names the first of ln_1 -> attn -> first residual ->
ln_2 -> mlp -> output whose numbers leave HF's.
"""

import dataclasses

import numpy as np

from solutions.solution_11 import hf_to_max
from tutorial.checks import CheckFailure, Mutation, call, load, tensor, todo
from tutorial.probes import difference, resembles, result, same, spy_on, together

rng = np.random.default_rng(9)
X = rng.standard_normal((2, 8, 768)).astype(np.float32)  # [B, T, n_embd] residual stream
AXES = ("batch", "position", "feature")
PARTS = ["ln_1", "attn", "ln_2", "mlp"]


def hf_block_0(hf, x):
    """HF's block 0 step by step: [ln_1, attn, first residual, ln_2, mlp, block output] of [B, T, n_embd]."""
    import torch

    block = hf.transformer.h[0]
    normed = block.ln_1(x)
    attended = block.attn(normed)[0]
    first = x + attended
    normed_2 = block.ln_2(first)
    return torch.stack([normed, attended, first, normed_2, block.mlp(normed_2), block(x)[0]])


def expected_classes():
    from solutions.solution_03 import LayerNorm
    from solutions.solution_04 import GPT2MLP
    from solutions.solution_07 import GPT2MultiHeadAttention

    return {"ln_1": LayerNorm, "attn": GPT2MultiHeadAttention, "ln_2": LayerNorm, "mlp": GPT2MLP}


def block(step, config):
    return call(step.GPT2Block, config, what="GPT2Block(config)")


_RUNS = {}


def learner(step, config, ref):
    """The learner's block on X with HF's block-0 weights and a spy on each sub-layer (once per session)."""
    if id(step) in _RUNS:
        return _RUNS[id(step)]
    module = block(step, config)
    load(module, hf_to_max(ref.state("transformer.h.0.")), what=f"loading HF's block-0 weights ({todo(1)})")
    spies = spy_on(module, [p for p in PARTS if callable(getattr(module, p, None))])
    _RUNS[id(step)] = together({"block": ("block(x)", lambda: call(module, tensor(X), what="block(x)"))}), spies
    return _RUNS[id(step)]


def test_sub_layers_are_two_layernorms_attention_and_mlp(step, config, ref):
    module = block(step, config)
    for name, cls in expected_classes().items():
        part = getattr(module, name, None)
        if not isinstance(part, cls):
            raise CheckFailure(f"self.{name} is {part!r:.40}, expected {cls.__name__} ({cls.__module__}) ({todo(1)})")
    load(module, hf_to_max(ref.state("transformer.h.0.")), what=f"loading HF's block-0 weights ({todo(1)})")


def test_mlp_width_comes_from_the_config(step, config):
    for inner, says in ((None, "4 * n_embd"), (2 * config.n_embd, "n_inner")):
        module = block(step, dataclasses.replace(config, n_inner=inner))
        c_fc = getattr(getattr(module, "mlp", None), "c_fc", None)
        if c_fc is None:
            raise CheckFailure(
                f"self.mlp is {getattr(module, 'mlp', None)!r:.40}, expected a GPT2MLP with a c_fc layer ({todo(1)})"
            )
        got = [int(d) for d in c_fc.weight.shape]
        want = [inner or 4 * config.n_embd, config.n_embd]
        if got != want:
            raise CheckFailure(
                f"with n_inner={inner} the MLP's c_fc has weight shape {got}, expected [{says}, n_embd] = {want} ({todo(1)})"
            )


def check_part(name, seen, given, gives, wiring, label=None):
    """A sub-layer was called, on HF's input to it, and gave HF's output."""
    if seen is None:
        raise CheckFailure(f"self.{name} was never called in __call__ ({todo(2)})")
    inp, out = seen
    if not same(inp, given):
        label = label or f"the input of {name}"
        raise CheckFailure(
            f"{label} differs from HF's block: {difference(inp, given, AXES)}; {wiring(inp)} ({todo(2)})"
        )
    if not same(out, gives):
        raise CheckFailure(
            f"{name} differs from HF's {name} on the same input: {difference(out, gives, AXES)}; check how self.{name} is built ({todo(1)})"
        )


def test_block_matches_hf_block_0(step, config, ref):
    """The whole block; if it differs, the first sub-layer that does is named."""
    runs, spies = learner(step, config, ref)
    got = result(runs, "block", todo(2))
    normed, attended, first, normed_2, fed, want = ref.compute(hf_block_0, X)
    if got.shape != want.shape:
        raise CheckFailure(
            f"block(x) gives shape {list(got.shape)}, expected {list(want.shape)}, the shape of x ({todo(2)})"
        )
    if same(got, want):
        return
    seen = {name: spy.seen() for name, spy in spies.items()}
    attn_out = seen["attn"][1] if seen.get("attn") else None

    def ln_1_input(inp):
        if attn_out is not None and resembles(inp, X + attn_out):
            return "ln_1 was applied to x + attn(x), after the residual add (post-norm). GPT-2 is pre-norm: x + attn(ln_1(x))"
        return "ln_1 reads the block's input x"

    def attn_input(inp):
        return "attn got x itself: it reads ln_1(x)" if same(inp, X) else "attn reads ln_1(x)"

    def ln_2_input(inp):
        known = {
            "the first residual is missing: the stream after attention is x + attn(ln_1(x))": attended,
            "ln_1(x) is added back instead of x: the stream is x + attn(ln_1(x))": normed + attended,
        }
        return next(
            (says for says, value in known.items() if resembles(inp, value)),
            "ln_2 reads the stream after the attention half, x + attn(ln_1(x))",
        )

    def mlp_input(inp):
        return (
            "mlp got the stream itself: it reads ln_2 of it"
            if same(inp, first)
            else "mlp reads ln_2(x + attn(ln_1(x)))"
        )

    check_part("ln_1", seen.get("ln_1"), X, normed, ln_1_input)
    check_part("attn", seen.get("attn"), normed, attended, attn_input)
    check_part("ln_2", seen.get("ln_2"), first, normed_2, ln_2_input, label="the first residual (the input of ln_2)")
    check_part("mlp", seen.get("mlp"), normed_2, fed, mlp_input)
    known = {
        "the second residual is missing: add the MLP's output to the stream": fed,
        "the MLP's output is added to the block's input x, not to the stream after attention": X + fed,
        "the MLP half is computed but the attention half is returned": first,
    }
    says = next((s for s, value in known.items() if resembles(got, value)), "return the stream after both halves")
    raise CheckFailure(
        f"block(x) differs from HF's block 0 after every sub-layer matched: {difference(got, want, AXES)}; {says} ({todo(2)})"
    )


HALVES = "x = pre_norm_residual(x, self.ln_1, self.attn)\n        return pre_norm_residual(x, self.ln_2, self.mlp)"
MUTATIONS = [
    Mutation(
        "post-norm",
        HALVES,
        "x = self.ln_1(x + self.attn(x))\n        return self.ln_2(x + self.mlp(x))",
        "test_block_matches_hf_block_0",
        "post-norm",
    ),
    Mutation(
        "first residual missing",
        "x = pre_norm_residual(x, self.ln_1, self.attn)",
        "x = self.attn(self.ln_1(x))",
        "test_block_matches_hf_block_0",
        "first residual is missing",
    ),
    Mutation(
        "second residual missing",
        "return pre_norm_residual(x, self.ln_2, self.mlp)",
        "return self.mlp(self.ln_2(x))",
        "test_block_matches_hf_block_0",
        "second residual is missing",
    ),
    Mutation(
        "ln_1 used twice",
        "pre_norm_residual(x, self.ln_2, self.mlp)",
        "pre_norm_residual(x, self.ln_1, self.mlp)",
        "test_block_matches_hf_block_0",
        "self.ln_2 was never called",
    ),
    Mutation(
        "n_inner ignored",
        "inner = config.n_inner or 4 * config.n_embd",
        "inner = 4 * config.n_embd",
        "test_mlp_width_comes_from_the_config",
        "n_inner",
    ),
    Mutation(
        "mlp built n_embd wide",
        "inner = config.n_inner or 4 * config.n_embd",
        "inner = config.n_embd",
        "test_sub_layers_are_two_layernorms_attention_and_mlp",
        "mlp.c_fc.weight",
    ),
]
