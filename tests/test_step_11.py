"""Step 11: MaxGPT2LMHeadModel gives HF GPT2LMHeadModel's logits, from HF's own weights."""

import numpy as np
import pytest

from tutorial.checks import CheckFailure, Mutation, call, load, numpy, run, run_compiled, todo
from tutorial.expect import BTC, expect_close, expect_linear, expect_shape, where

IDS = np.array([[15496, 11, 995, 0, 50256, 1000, 262, 13], [464, 2068, 7586, 21831, 18045, 625, 262, 16931]])
CONV1D = ("attn.c_attn.weight", "attn.c_proj.weight", "mlp.c_fc.weight", "mlp.c_proj.weight")


@pytest.fixture(scope="module")
def ran(step, config, ref):  # the model, loaded by the harness (TODOs 1-2 checked alone), and its logits for IDS
    model = call(step.MaxGPT2LMHeadModel, config, what="MaxGPT2LMHeadModel(config)")
    load(model, ref.max_state, what=f"loading HF's weights ({todo(1)})")
    return model, run_compiled(model, IDS, what="MaxGPT2LMHeadModel(ids)")


def test_lm_head_is_a_linear_from_n_embd_to_vocab_size_without_bias(step, config):
    model = call(step.MaxGPT2LMHeadModel, config, what="MaxGPT2LMHeadModel(config)")
    hint = "Linear(n_embd, vocab_size) stores its weight as [out_dim, in_dim] = [vocab_size, n_embd]"
    expect_linear(model, "lm_head", in_=config.n_embd, out=config.vocab_size, bias=False, todo=1, hint=hint)


def test_logits_are_batch_by_seq_by_vocab_size(ran, config):
    expect_shape(ran[1], (2, 8, config.vocab_size), "logits of [2, 8] ids", todo=2, hint="apply self.lm_head last")


def test_logits_match_hf(ran, ref):
    want, hint = ref.compute(lambda hf, ids: hf(ids).logits, IDS), "logits = self.lm_head(self.transformer(input_ids))"
    try:
        expect_close(ran[1], want, "logits", axes=("batch", "position", "token"), todo=2, hint=hint)
    except CheckFailure:  # the body or the head? Only a failure pays for the second run
        body = run(ran[0].transformer, IDS, what="self.transformer(ids)")
        want = ref.compute(lambda hf, ids: hf.transformer(ids).last_hidden_state, IDS)
        expect_close(body, want, "self.transformer(ids)", axes=BTC, todo=1, hint="it is step 10's GPT2Model")
        raise


def test_loader_transposes_exactly_the_conv1d_weights(step, ref):
    state = {f"transformer.{p}{k}": v for p in ("h.0.", "ln_f.") for k, v in ref.state(f"transformer.{p}").items()}
    state |= {k: ref.weight(k) for k in ("transformer.wte.weight", "transformer.wpe.weight", "lm_head.weight")}
    got = call(step.hf_to_max, state, what="hf_to_max(HF's weights)")
    for key, value in state.items():
        if (out := got.get(key)) is None:
            raise CheckFailure(f"hf_to_max dropped '{key}'")
        if key.endswith(CONV1D) and not np.array_equal(out, value.T):
            says = f"{list(value.shape)}, [in, out]: a Linear wants [out, in]; name it in CONV1D_WEIGHTS"
            raise CheckFailure(f"hf_to_max left '{key}' as HF stores it, {says}{where(3)}")
        if not key.endswith(CONV1D) and not np.array_equal(out, value):
            says = f"{list(value.shape)} -> {list(np.shape(out))}: only the four Conv1D weights are stored [in, out]"
            raise CheckFailure(f"hf_to_max transposed '{key}', {says}{where(3)}")


def test_hf_checkpoint_loads_with_lm_head_tied_to_wte(step, config, ref):
    model = call(step.MaxGPT2LMHeadModel, config, what="MaxGPT2LMHeadModel(config)")
    # a hub checkpoint: GPT2Model's names without "transformer.", and no lm_head (it is wte)
    call(step.load_gpt2, model, ref.state("transformer."), what="load_gpt2(HF's checkpoint)")
    if not np.array_equal(numpy(model.lm_head.weight, "lm_head.weight"), ref.weight("transformer.wte.weight")):
        raise CheckFailure("after load_gpt2, lm_head.weight is not wte's table: GPT-2 ties the head to the embeddings")
    for key, param in model.parameters:  # the weights that give HF's logits (test_logits_match_hf)
        if not np.array_equal(numpy(param, key), ref.max_state[key]):
            raise CheckFailure(f"after load_gpt2, '{key}' is not HF's: transpose the Conv1D weights only{where(3)}")


def test_bad_checkpoint_names_the_key_and_both_shapes(step, config):
    model = call(step.MaxGPT2LMHeadModel, config, what="MaxGPT2LMHeadModel(config)")
    good = {key: np.zeros([int(d) for d in p.shape], np.float32) for key, p in model.parameters}
    if (bias := "transformer.ln_f.bias") not in good:
        raise CheckFailure(f"MaxGPT2LMHeadModel(config) has no {bias} parameter to leave out{where(1)}")
    wpe, full = "transformer.wpe.weight", [config.n_positions, config.n_embd]
    half = np.zeros([full[0] // 2, full[1]], np.float32)
    for case, state, says in (
        ("a missing tensor", {k: v for k, v in good.items() if k != bias}, [bias]),
        ("an unexpected tensor", good | {"transformer.h.0.attn.extra": half}, ["transformer.h.0.attn.extra"]),
        ("a wrong-shaped tensor", good | {wpe: half}, [wpe, str([*half.shape]), str(full)]),
    ):
        try:
            step.load_weights(model, state)
        except step.WeightError as error:
            if not all(s in str(error) for s in says):
                raise CheckFailure(f"load_weights with {case} said {str(error)!r}, not naming {' and '.join(says)}")
        else:
            raise CheckFailure(f"load_weights accepted {case}: it must raise WeightError naming {' and '.join(says)}")


HEAD = "test_lm_head_is_a_linear_from_n_embd_to_vocab_size_without_bias"
SHAPE, LOADER = "test_logits_are_batch_by_seq_by_vocab_size", "test_loader_transposes_exactly_the_conv1d_weights"
TIED, BAD = "test_hf_checkpoint_loads_with_lm_head_tied_to_wte", "test_bad_checkpoint_names_the_key_and_both_shapes"
N_V, V_N = "(config.n_embd, config.vocab_size", "(config.vocab_size, config.n_embd"
MUTATIONS = [
    Mutation("c_fc not transposed", '"c_proj.weight", "c_fc.weight")', '"c_proj.weight")', LOADER, "mlp.c_fc.weight"),
    Mutation("wte transposed too", '"c_fc.weight")', '"c_fc.weight", "wte.weight")', LOADER, "transformer.wte.weight"),
    Mutation("all transposed", "key.endswith(CONV1D_WEIGHTS)", "True", LOADER, "transposed 'transformer.wte.weight'"),
    Mutation("lm_head with a bias", "config.vocab_size, bias=False", "config.vocab_size", HEAD, "has a bias"),
    Mutation("lm_head backwards", N_V, V_N, HEAD, "expected [50257, 768]: Linear(n_embd, vocab_size)"),
    Mutation("no lm_head in __call__", "return self.lm_head(hidden)", "return hidden", SHAPE, "shape [2, 8, 768]"),
    Mutation("lm_head not tied", "state.setdefault(", "state.get(", TIED, "missing weight 'lm_head.weight'"),
    Mutation("shapes not checked", "if want != got:", "if False:", BAD, "wrong-shaped"),
]
