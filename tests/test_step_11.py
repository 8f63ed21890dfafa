"""Step 11: MaxGPT2LMHeadModel gives HF GPT2LMHeadModel's logits, from HF's own weights."""

import numpy as np
import pytest

from tutorial.checks import CheckFailure, Mutation, call, load, numpy, run, run_compiled, todo
from tutorial.expect import BTC, expect_close, expect_linear, expect_shape, where

IDS = np.array([[15496, 11, 995, 0, 50256, 1000, 262, 13], [464, 2068, 7586, 21831, 18045, 625, 262, 16931]])
CONV1D = ("attn.c_attn.weight", "attn.c_proj.weight", "mlp.c_fc.weight", "mlp.c_proj.weight")


@pytest.fixture(scope="module")
def model(step, config):
    return call(step.MaxGPT2LMHeadModel, config, what="MaxGPT2LMHeadModel(config)")


@pytest.fixture(scope="module")
def logits(model, ref):
    """The model loaded by the reference loader (so TODOs 1-2 are checked alone), run once on IDS."""
    load(model, ref.max_state, what=f"loading HF's weights ({todo(1)})")
    return run_compiled(model, IDS, what="MaxGPT2LMHeadModel(ids)")


def test_lm_head_is_a_linear_from_n_embd_to_vocab_size_without_bias(model, config):
    hint = "Linear(n_embd, vocab_size) stores its weight as [out_dim, in_dim] = [vocab_size, n_embd]"
    expect_linear(model, "lm_head", in_=config.n_embd, out=config.vocab_size, bias=False, todo=1, hint=hint)


def test_logits_are_batch_by_seq_by_vocab_size(logits, config):
    expect_shape(
        logits,
        (2, 8, config.vocab_size),
        "logits of [2, 8] ids",
        todo=2,
        hint="apply self.lm_head to the body's output",
    )


def test_logits_match_hf(model, logits, ref):
    want = ref.compute(lambda hf, ids: hf(ids).logits, IDS)
    try:
        hint = "logits = self.lm_head(self.transformer(input_ids))"
        expect_close(logits, want, "logits", axes=("batch", "position", "token"), todo=2, hint=hint)
    except CheckFailure:  # the body or the head? Only a failure pays for the second run
        body = run(model.transformer, IDS, what="self.transformer(ids)")
        want = ref.compute(lambda hf, ids: hf.transformer(ids).last_hidden_state, IDS)
        hint = "self.transformer is step 10's GPT2Model"
        expect_close(body, want, "the body's output (self.transformer)", axes=BTC, todo=1, hint=hint)
        raise


def test_loader_transposes_exactly_the_conv1d_weights(step, ref):
    state = {f"transformer.{p}{k}": v for p in ("h.0.", "ln_f.") for k, v in ref.state(f"transformer.{p}").items()}
    state |= {k: ref.weight(k) for k in ("transformer.wte.weight", "transformer.wpe.weight", "lm_head.weight")}
    got = call(step.hf_to_max, state, what="hf_to_max(HF's weights)")
    for key, value in state.items():
        out, conv1d = got.get(key), key.endswith(CONV1D)
        if out is None:
            raise CheckFailure(f"hf_to_max dropped '{key}'")
        if conv1d and not np.array_equal(out, value.T):
            raise CheckFailure(
                f"hf_to_max left '{key}' as HF stores it ({list(value.shape)}, [in, out]): a Linear wants [out, in]; "
                f"name it in CONV1D_WEIGHTS{where(3)}"
            )
        if not conv1d and not np.array_equal(out, value):
            raise CheckFailure(
                f"hf_to_max transposed '{key}' ({list(value.shape)} -> {list(np.shape(out))}): "
                f"only the four Conv1D weights are stored [in, out]{where(3)}"
            )


def test_hf_checkpoint_loads_with_lm_head_tied_to_wte(step, config, ref):
    model = call(
        step.MaxGPT2LMHeadModel, config, what="MaxGPT2LMHeadModel(config)"
    )  # a hub checkpoint: GPT2Model's names without "transformer.", no lm_head (it is wte)
    try:
        step.load_gpt2(model, ref.state("transformer."))
    except step.WeightError as error:
        raise CheckFailure(f"load_gpt2(HF's checkpoint): {error}") from error
    if not np.array_equal(numpy(model.lm_head.weight, "lm_head.weight"), ref.weight("transformer.wte.weight")):
        raise CheckFailure(
            "after load_gpt2, lm_head.weight is not wte's table: GPT-2 ties the head to the token embeddings"
        )
    for key, param in model.parameters:  # the reference loader's weights give HF's logits: load_gpt2 must load the same
        if not np.array_equal(numpy(param, key), ref.max_state[key]):
            raise CheckFailure(
                f"after load_gpt2, '{key}' is not HF's weight in a Linear's [out, in] layout: "
                f"is every Conv1D weight transposed, and nothing else?{where(3)}"
            )


def test_bad_checkpoint_names_the_key_and_both_shapes(step, config):
    model = call(step.MaxGPT2LMHeadModel, config, what="MaxGPT2LMHeadModel(config)")
    good = {key: np.zeros([int(d) for d in p.shape], np.float32) for key, p in model.parameters}
    bias, extra, wpe = "transformer.ln_f.bias", "transformer.h.0.attn.extra", [config.n_positions // 2, config.n_embd]
    if bias not in good:
        raise CheckFailure(f"MaxGPT2LMHeadModel(config) has no {bias} parameter to leave out{where(1)}")
    cases = {
        "a missing tensor": ({k: v for k, v in good.items() if k != bias}, [bias]),
        "an unexpected tensor": (good | {extra: np.zeros(3, np.float32)}, [extra]),
        "a wrong-shaped tensor": (
            good | {"transformer.wpe.weight": np.zeros(wpe, np.float32)},
            ["transformer.wpe.weight", str(wpe), str([config.n_positions, config.n_embd])],
        ),
    }
    for case, (state, says) in cases.items():
        try:
            step.load_weights(model, state)
        except step.WeightError as error:
            if not all(s in str(error) for s in says):
                raise CheckFailure(f"load_weights with {case} said {str(error)!r}, not naming {' and '.join(says)}")
        else:
            raise CheckFailure(f"load_weights accepted {case}: it must raise WeightError naming {' and '.join(says)}")


HEAD, SHAPE = (
    "test_lm_head_is_a_linear_from_n_embd_to_vocab_size_without_bias",
    "test_logits_are_batch_by_seq_by_vocab_size",
)
LOADER, TIED = "test_loader_transposes_exactly_the_conv1d_weights", "test_hf_checkpoint_loads_with_lm_head_tied_to_wte"
MUTATIONS = [
    Mutation("c_fc not transposed", '"c_proj.weight", "c_fc.weight")', '"c_proj.weight")', LOADER, "mlp.c_fc.weight"),
    Mutation("wte transposed too", '"c_fc.weight")', '"c_fc.weight", "wte.weight")', LOADER, "transformer.wte.weight"),
    Mutation(
        "every 2-d weight transposed",
        "key.endswith(CONV1D_WEIGHTS)",
        "value.ndim == 2",
        LOADER,
        "transposed 'transformer.wte.weight'",
    ),
    Mutation("lm_head with a bias", "config.vocab_size, bias=False", "config.vocab_size", HEAD, "has a bias"),
    Mutation(
        "lm_head from vocab to n_embd",
        "(config.n_embd, config.vocab_size",
        "(config.vocab_size, config.n_embd",
        HEAD,
        "expected [50257, 768]: Linear(n_embd, vocab_size)",
    ),
    Mutation("no lm_head in __call__", "return self.lm_head(hidden)", "return hidden", SHAPE, "shape [2, 8, 768]"),
    Mutation(
        "lm_head not tied to wte",
        '.setdefault("lm_head.weight"',
        '.get("lm_head.weight"',
        TIED,
        "missing weight 'lm_head.weight'",
    ),
    Mutation(
        "shapes not checked",
        "if want != got:",
        "if False:",
        "test_bad_checkpoint_names_the_key_and_both_shapes",
        "wrong-shaped",
    ),
]
