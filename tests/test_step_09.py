"""Step 09: GPT2Block is HF's transformer.h[0]; spies on its sub-layers name the first that HF's numbers leave."""

import dataclasses

import numpy as np
import pytest

from solutions.solution_03 import LayerNorm
from solutions.solution_04 import GPT2MLP
from solutions.solution_07 import GPT2MultiHeadAttention
from tutorial.checks import CheckFailure, Mutation, call, load, tensor
from tutorial.expect import BTC, agrees, expect_close, expect_linear, expect_wired, what_it_is
from tutorial.probes import result, spy_on, together
from tutorial.weights import hf_to_max
from tutorial.explain import todo_place

rng = np.random.default_rng(9)
X = rng.standard_normal((2, 8, 768)).astype(np.float32)  # [B, T, n_embd] residual stream
BLOCK_0 = "transformer.h.0."  # the prefix of block 0's weights in HF's state
PARTS = {"ln_1": LayerNorm, "attn": GPT2MultiHeadAttention, "ln_2": LayerNorm, "mlp": GPT2MLP}


def sub_layers(step, config):
    """The learner's GPT2Block(config), once each sub-layer is of its class."""
    module = call(step.GPT2Block, config, what="GPT2Block(config)")
    for name, cls in PARTS.items():
        if not isinstance(part := getattr(module, name, None), cls):
            raise CheckFailure(
                f"self.{name} is {what_it_is(part)}, expected {cls.__module__}.{cls.__name__} ({todo_place(1)})"
            )
    return module


@pytest.fixture(scope="module")
def hf(ref):
    ln_1 = ref.compute(lambda hf, x: hf.transformer.h[0].ln_1(x), X)
    attn = ref.compute(lambda hf, x: hf.transformer.h[0].attn(x)[0], ln_1)
    ln_2 = ref.compute(lambda hf, x: hf.transformer.h[0].ln_2(x), X + attn)
    mlp = ref.compute(lambda hf, x: hf.transformer.h[0].mlp(x), ln_2)
    out = ref.compute(lambda hf, x: hf.transformer.h[0](x)[0], X)
    return {"ln_1": ln_1, "attn": attn, "first": X + attn, "ln_2": ln_2, "mlp": mlp, "out": out}


@pytest.fixture(scope="module")
def run(step, config, ref):
    """The learner's block on X, with HF's block-0 weights and a spy on each sub-layer: one graph."""
    module = call(step.GPT2Block, config, what="GPT2Block(config)")
    load(module, hf_to_max(ref.state(BLOCK_0)), what=f"loading HF's block-0 weights ({todo_place(1)})")
    spies = spy_on(module, list(PARTS), prefix="self.")
    return together({"block": ("block(x)", lambda: call(module, tensor(X), what="block(x)"))}), spies


def test_sub_layers_are_two_layernorms_attention_and_mlp(step, config, ref):
    weights = hf_to_max(ref.state(BLOCK_0))
    load(sub_layers(step, config), weights, what=f"loading HF's block-0 weights ({todo_place(1)})")


def test_mlp_width_comes_from_the_config(step, config):
    for inner, says in ((None, "4 * n_embd"), (2 * config.n_embd, "n_inner")):
        mlp = sub_layers(step, dataclasses.replace(config, n_inner=inner)).mlp
        hint = f"with n_inner={inner} the MLP's c_fc is [{says}, n_embd]"
        expect_linear(mlp, "c_fc", in_=config.n_embd, out=inner or 4 * config.n_embd, bias=True, todo=1, hint=hint)


def test_block_matches_hf_block_0(run, hf):
    """The whole block; if it differs, the first sub-layer that was given other numbers than HF's is named."""
    (runs, spies), h, pre = run, hf, "x + attn(ln_1(x))"
    got, stream = result(runs, "block", todo=2), f"the stream after attention is {pre}"
    if not agrees(got, h["out"]):
        post = X + seen[1] if (seen := spies["attn"].seen()) else None  # what ln_1 reads in post-norm
        ln_1 = {f"ln_1 was applied to x + attn(x), after the residual add (post-norm). GPT-2 is pre-norm: {pre}": post}
        ln_2 = {f"the first residual is missing: {stream}": h["attn"]}
        ln_2[f"ln_1(x) is added back instead of x: {stream}"] = h["ln_1"] + h["attn"]
        mlp = {"mlp got the stream itself: it reads ln_2 of it": h["first"]}
        path = [
            ("ln_1", X, ln_1, "ln_1 reads the block's input x"),
            ("attn", h["ln_1"], {"attn got x itself: it reads ln_1(x)": X}, "attn reads ln_1(x)"),
            ("ln_2", h["first"], ln_2, f"ln_2 reads the stream after the attention half, {pre}"),
            ("mlp", h["ln_2"], mlp, "mlp reads ln_2 of the stream after the attention half"),
        ]
        expect_wired(spies, h, path, axes=BTC, todo=2)
    mistakes = {
        "the second residual is missing: add the MLP's output to the stream": h["mlp"],
        "the MLP's output is added to the block's input x, not to the stream after attention": X + h["mlp"],
        "the MLP half is computed but the attention half is returned": h["first"],
    }
    expect_close(got, h["out"], "block(x)", axes=BTC, todo=2, hint="return x after both halves", mistakes=mistakes)


HALVES = "x = pre_norm_residual(x, self.ln_1, self.attn)\n        return pre_norm_residual(x, self.ln_2, self.mlp)"
FIRST, SECOND = HALVES.split("\n        ")
POST = "x = self.ln_1(x + self.attn(x))\n        return self.ln_2(x + self.mlp(x))"
INNER, BLOCK = "inner = config.n_inner or 4 * config.n_embd", test_block_matches_hf_block_0
LN_1_TWICE, WIDTH = "(x, self.ln_1, self.mlp)", test_mlp_width_comes_from_the_config
PARTS_CHECK = test_sub_layers_are_two_layernorms_attention_and_mlp
MUTATIONS = [
    Mutation("post-norm", HALVES, POST, BLOCK, "post-norm"),
    Mutation("first residual missing", FIRST, "x = self.attn(self.ln_1(x))", BLOCK, "first residual is missing"),
    Mutation("second residual missing", SECOND, "return self.mlp(self.ln_2(x))", BLOCK, "second residual is missing"),
    Mutation("ln_1 used twice", "(x, self.ln_2, self.mlp)", LN_1_TWICE, BLOCK, "self.ln_2 was never called"),
    Mutation("n_inner ignored", INNER, "inner = 4 * config.n_embd", WIDTH, "n_inner"),
    Mutation("mlp built n_embd wide", INNER, "inner = config.n_embd", PARTS_CHECK, "mlp.c_fc.weight"),
]
