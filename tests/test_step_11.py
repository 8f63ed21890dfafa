"""Step 11: MaxGPT2LMHeadModel gives HF GPT2LMHeadModel's logits, from HF's own weights."""

import numpy as np
import pytest

from tutorial import weights
from tutorial.checks import CheckFailure, Mutation, call, load, numpy, run, run_compiled
from tutorial.expect import BTC, agrees, difference, expect_close, expect_linear, expect_shape
from tutorial.explain import todo_place

IDS = np.array([[15496, 11, 995, 0, 50256, 1000, 262, 13], [464, 2068, 7586, 21831, 18045, 625, 262, 16931]])
LOGITS = ("batch", "position", "token")


@pytest.fixture(scope="module")
def ran(step, config, ref):  # the model, loaded by the harness (TODOs 1-2 checked alone), and its logits for IDS
    model = call(step.MaxGPT2LMHeadModel, config, what="MaxGPT2LMHeadModel(config)")
    load(model, ref.max_state, what=f"loading HF's weights ({todo_place(1)})")
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
        expect_close(ran[1], want, "logits", axes=LOGITS, todo=2, hint=hint)
    except CheckFailure:  # the body or the head? Only a failure pays for the second run
        body = run(ran[0].transformer, IDS, what="self.transformer(ids)")
        want = ref.compute(lambda hf, ids: hf.transformer(ids).last_hidden_state, IDS)
        expect_close(body, want, "self.transformer(ids)", axes=BTC, todo=1, hint="it is step 10's GPT2Model")
        raise


def hub_checkpoint(ref, prefix="") -> dict[str, np.ndarray]:
    """HF's weights under `prefix` ("" for all) laid out as the hub's openai-community/gpt2 file, which
    learners download: GPT2Model's bare names ("h.0.attn.c_attn.weight"), each block's causal-mask
    buffer "h.N.attn.bias" ([1, 1, n_positions, n_positions]), and no lm_head."""
    state = {k: v for k, v in ref.state("transformer.").items() if k.startswith(prefix)}
    n = ref.weight("transformer.wpe.weight").shape[0]
    mask = np.tril(np.ones((n, n), np.float32))[None, None]  # one array for every block: it is never written
    blocks = {k.split(".")[1] for k in state if k.startswith("h.")}
    return state | {f"h.{i}.attn.bias": mask for i in sorted(blocks)}


def expect_converted(got, source: dict, what: str) -> None:
    """The learner's hf_to_max(source) equals the harness's conversion (tutorial/weights.py), key by key."""
    want = weights.checkpoint_to_max(source)
    if not isinstance(got, dict):
        raise CheckFailure(f"{what} returned {type(got).__name__}, expected a dict of arrays ({todo_place(3)})")
    for key in sorted(got.keys() - want.keys()):
        if key.endswith(weights.MASK_BUFFERS):
            says = f"a causal-mask buffer {list(np.shape(got[key]))}, not a parameter: skip it"
            raise CheckFailure(f"{what} kept '{key}', {says} ({todo_place(3)})")
        if f"transformer.{key}" in want:
            says = f"the hub's name: this model calls it 'transformer.{key}'"
            raise CheckFailure(f"{what} gave '{key}', {says} ({todo_place(3)})")
        raise CheckFailure(f"{what} gave '{key}', which MaxGPT2LMHeadModel has no parameter for ({todo_place(3)})")
    for key in sorted(want.keys() - got.keys()):
        if key == "lm_head.weight":
            says = "HF saves no head: GPT-2 ties it to the token table, so give it transformer.wte.weight"
            raise CheckFailure(f"{what} gave no 'lm_head.weight': {says} ({todo_place(5)})")
        if key.endswith(".attn.c_attn.bias"):
            says = "a parameter whose name also ends in 'attn.bias': skip only '.attn.bias', the mask buffer"
            raise CheckFailure(f"{what} dropped '{key}', {says} ({todo_place(3)})")
        raise CheckFailure(f"{what} gave no '{key}' ({todo_place(3)})")
    for key, value in want.items():
        out = np.asarray(got[key])
        if out.shape == value.shape and np.array_equal(out, value):
            continue
        stored = np.asarray(source.get(key, source.get(key.removeprefix("transformer."))))
        shape = list(stored.shape)
        if weights.is_conv1d(key) and np.array_equal(out, stored):
            square = " (square: only its values show it)" if shape[0] == shape[1] else ""
            says = f"{shape}, [in, out]{square}: a Linear wants [out, in]; transpose every Conv1D weight"
            raise CheckFailure(f"{what} left '{key}' as HF stores it, {says} ({todo_place(4)})")
        if stored.ndim == 2 and np.array_equal(out, stored.T) and not weights.is_conv1d(key):
            says = f"{shape} -> {list(out.shape)}: only the four Conv1D weights are stored [in, out]"
            raise CheckFailure(f"{what} transposed '{key}', {says} ({todo_place(4)})")
        raise CheckFailure(f"{what} changed the values of '{key}': {difference(out, value)} ({todo_place(4)})")


def test_hub_checkpoint_converts_as_the_harness_does(step, ref):
    """The hub's file (bare names, mask buffers, no head) and GPT2LMHeadModel's state dict ("transformer."
    names, a head of its own, and the older "masked_bias" buffer) convert to the same weights."""
    hub = hub_checkpoint(ref, "h.0.") | hub_checkpoint(ref, "ln_f.") | hub_checkpoint(ref, "w")
    what = "hf_to_max(the hub's checkpoint)"
    expect_converted(call(step.hf_to_max, hub, what=what), hub, what)
    lm = {f"transformer.{k}": v for k, v in hub.items()} | {"lm_head.weight": ref.weight("lm_head.weight")}
    lm["transformer.h.0.attn.masked_bias"] = np.float32(-1e4)
    what = "hf_to_max(GPT2LMHeadModel's state dict)"
    expect_converted(call(step.hf_to_max, lm, what=what), lm, what)


def test_hub_checkpoint_gives_hf_logits(step, config, ref):
    """load_gpt2 on the hub's file, then the logits: a weight left [in, out] loads without complaint when
    it is square (attn.c_proj, [768, 768]), so only the model's output shows it."""
    model = call(step.MaxGPT2LMHeadModel, config, what="MaxGPT2LMHeadModel(config)")
    state = hub_checkpoint(ref)
    call(step.load_gpt2, model, state, what="load_gpt2(the hub's checkpoint)")
    got = run_compiled(model, IDS, what="MaxGPT2LMHeadModel(ids) after load_gpt2")
    want = ref.compute(lambda hf, ids: hf(ids).logits, IDS)
    if agrees(got, want):
        return
    loaded, harness = dict(model.parameters), weights.checkpoint_to_max(state)
    for key, value in harness.items():  # which weight load_gpt2 got wrong, by the harness's own loader
        if not np.array_equal(numpy(loaded[key], key), value):
            says = f"'{key}' is not HF's weight in this model's layout (hf_to_max)"
            task = 5 if key == "lm_head.weight" else 4 if weights.is_conv1d(key) else 3
            break
    else:
        says, task = "every weight is HF's: is __call__ the body, then the head?", 2
    raise CheckFailure(
        f"logits after load_gpt2 differ from HF: {difference(got, want, LOGITS)}; {says} ({todo_place(task)})"
    )


def test_bad_checkpoint_names_the_key_and_both_shapes(step, config):
    model = call(step.MaxGPT2LMHeadModel, config, what="MaxGPT2LMHeadModel(config)")
    good = {key: np.zeros([int(d) for d in p.shape], np.float32) for key, p in model.parameters}
    if (bias := "transformer.ln_f.bias") not in good:
        raise CheckFailure(f"MaxGPT2LMHeadModel(config) has no {bias} parameter to leave out ({todo_place(1)})")
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


HEAD = test_lm_head_is_a_linear_from_n_embd_to_vocab_size_without_bias
SHAPE, CONVERTS = test_logits_are_batch_by_seq_by_vocab_size, test_hub_checkpoint_converts_as_the_harness_does
LOGITS_HUB, BAD = test_hub_checkpoint_gives_hf_logits, test_bad_checkpoint_names_the_key_and_both_shapes
N_V, V_N = "(config.n_embd, config.vocab_size", "(config.vocab_size, config.n_embd"
FOUR, BUFFERS = '("c_attn.weight", "c_proj.weight", "c_fc.weight")', '(".attn.bias", ".attn.masked_bias")'
MUTATIONS = [
    Mutation("lm_head with a bias", "config.vocab_size, bias=False", "config.vocab_size", HEAD, "has a bias"),
    Mutation("lm_head backwards", N_V, V_N, HEAD, "expected [50257, 768]: Linear(n_embd, vocab_size)"),
    Mutation("no lm_head in __call__", "return self.lm_head(hidden)", "return hidden", SHAPE, "shape [2, 8, 768]"),
    Mutation("mask buffers kept", "continue", "pass", CONVERTS, "attn.bias', a causal-mask buffer [1, 1"),
    Mutation("c_attn.bias dropped", BUFFERS, '("attn.bias", "attn.masked_bias")', CONVERTS, "dropped 'transfor"),
    Mutation("no transformer. prefix", 'key = f"transformer.{key}"', "pass", CONVERTS, "this model calls it"),
    Mutation(
        "c_fc not transposed", FOUR, '("c_attn.weight", "c_proj.weight")', CONVERTS, "left 'transformer.h.0.mlp.c_fc"
    ),
    Mutation(
        "wte transposed too", FOUR, FOUR[:-1] + ', "wte.weight")', CONVERTS, "transposed 'transformer.wte.weight'"
    ),
    Mutation(
        "every 2-D weight transposed",
        "value.T if conv1d",
        "value.T if value.ndim == 2",
        CONVERTS,
        "only the four Conv1D",
    ),
    Mutation("head not tied", 'out.setdefault("lm_head.weight"', 'out.get("lm_head.weight"', CONVERTS, "no 'lm_head"),
    Mutation(
        "square attn.c_proj left as stored",
        FOUR,
        '("c_attn.weight", "mlp.c_proj.weight", "c_fc.weight")',
        LOGITS_HUB,
        "'transformer.h.0.attn.c_proj.weight' is not HF's",
    ),
    Mutation("shapes not checked", "if want != got:", "if False:", BAD, "wrong-shaped"),
]
