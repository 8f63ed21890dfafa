"""Step 11: MaxGPT2LMHeadModel gives HF GPT2LMHeadModel's logits, from HF's own weights."""

import numpy as np

from tutorial.checks import CheckFailure, Mutation, call, close, load, numpy, run, run_compiled, shape_is, todo

IDS = np.array(
    [[15496, 11, 995, 0, 50256, 1000, 262, 13], [464, 2068, 7586, 21831, 18045, 625, 262, 16931]], dtype=np.int64
)  # [2, 8]
CONV1D = ("attn.c_attn.weight", "attn.c_proj.weight", "mlp.c_fc.weight", "mlp.c_proj.weight")


_MODELS, _RUNS = {}, {}


def built(step, config):
    """One MaxGPT2LMHeadModel(config) per session for the checks that only read or load it."""
    if id(step) not in _MODELS:
        _MODELS[id(step)] = call(step.MaxGPT2LMHeadModel, config, what="MaxGPT2LMHeadModel(config)")
    return _MODELS[id(step)]


def model_with_reference_loader(step, config, ref):
    """The learner's model, loaded by the reference loader (checks TODOs 1-2 alone), and its logits
    for IDS: one 124M run per session."""
    if id(step) not in _RUNS:
        model = built(step, config)
        load(model, ref.max_state, what=f"loading HF's weights ({todo(1)})")
        _RUNS[id(step)] = model, run_compiled(model, IDS, what="MaxGPT2LMHeadModel(ids)")
    return _RUNS[id(step)]


def test_lm_head_is_a_linear_from_n_embd_to_vocab_size_without_bias(step, config):
    from max.experimental.tensor import Tensor
    from max.nn.module_v3 import Linear

    model = built(step, config)
    head = getattr(model, "lm_head", None)
    if not isinstance(head, Linear):
        raise CheckFailure(f"self.lm_head is {type(head).__name__}, expected a max.nn.module_v3.Linear ({todo(1)})")
    shape = [int(d) for d in head.weight.shape]
    if shape != [config.vocab_size, config.n_embd]:
        raise CheckFailure(
            f"lm_head.weight has shape {shape}, expected [vocab_size, n_embd] = [{config.vocab_size}, {config.n_embd}] ({todo(1)})"
        )
    if isinstance(getattr(head, "bias", None), Tensor):  # Linear(..., bias=False) keeps bias = 0
        raise CheckFailure(f"lm_head has a bias; GPT-2's head has none (bias=False, {todo(1)})")


def test_logits_are_batch_by_seq_by_vocab_size(step, config, ref):
    _, out = model_with_reference_loader(step, config, ref)
    shape_is(
        out,
        (2, 8, config.vocab_size),
        "logits of [2, 8] ids",
        hint=f"apply self.lm_head to the body's output ({todo(2)})",
    )


def test_logits_match_hf(step, config, ref):
    model, out = model_with_reference_loader(step, config, ref)
    want = ref.compute(lambda hf, ids: hf(ids).logits, IDS)
    try:
        close(
            out,
            want,
            "logits",
            hint=f"logits = self.lm_head(self.transformer(input_ids)) ({todo(2)})",
            axes=("batch", "position", "token"),
        )
    except CheckFailure:  # the body or the head? Only a failure pays for the second run
        body = run(model.transformer, IDS, what="self.transformer(ids)")
        want = ref.compute(lambda hf, ids: hf.transformer(ids).last_hidden_state, IDS)
        close(
            body,
            want,
            "the body's output (self.transformer)",
            hint=f"self.transformer is step 10's GPT2Model ({todo(1)})",
            axes=("batch", "position", "feature"),
        )
        raise


def test_loader_transposes_exactly_the_conv1d_weights(step, config, ref):
    state = ref.state("transformer.h.0.") | ref.state("transformer.ln_f.")
    state = {
        f"transformer.h.0.{k}" if k.startswith(("ln_", "attn", "mlp")) else f"transformer.ln_f.{k}": v
        for k, v in state.items()
    }
    state |= {k: ref.weight(k) for k in ("transformer.wte.weight", "transformer.wpe.weight", "lm_head.weight")}
    got = call(step.hf_to_max, state, what="hf_to_max(HF's weights)")
    for key, value in state.items():
        conv1d = key.endswith(CONV1D)
        want = value.T if conv1d else value
        out = got.get(key)
        if out is not None and np.array_equal(out, want):
            continue
        if out is None:
            raise CheckFailure(f"hf_to_max dropped '{key}'")
        if conv1d:
            raise CheckFailure(
                f"hf_to_max left '{key}' as HF stores it ({list(value.shape)}, [in, out]): a Linear wants [out, in]; name it in CONV1D_WEIGHTS ({todo(3)})"
            )
        raise CheckFailure(
            f"hf_to_max transposed '{key}' ({list(value.shape)} -> {list(np.shape(out))}): only the four Conv1D weights are stored [in, out] ({todo(3)})"
        )


def test_hf_checkpoint_loads_with_lm_head_tied_to_wte(step, config, ref):
    # a hub checkpoint: GPT2Model's names without "transformer.", no lm_head (it is wte)
    model = call(step.MaxGPT2LMHeadModel, config, what="MaxGPT2LMHeadModel(config)")
    try:
        step.load_gpt2(model, ref.state("transformer."))
    except step.WeightError as error:
        raise CheckFailure(f"load_gpt2(HF's checkpoint): {error}") from error
    head = numpy(model.lm_head.weight, "lm_head.weight")
    if not np.array_equal(head, ref.weight("transformer.wte.weight")):
        raise CheckFailure(
            "after load_gpt2, lm_head.weight is not wte's table: GPT-2 ties the head to the token embeddings"
        )
    # the reference loader's weights give HF's logits (test_logits_match_hf): load_gpt2 must load the same
    want = ref.max_state
    for key, param in model.parameters:
        got = numpy(param, key)
        if got.shape != want[key].shape or not np.array_equal(got, want[key]):
            raise CheckFailure(
                f"after load_gpt2, '{key}' is not HF's weight in a Linear's [out, in] layout: "
                f"is every Conv1D weight transposed, and nothing else? ({todo(3)})"
            )


def test_bad_checkpoint_names_the_key_and_both_shapes(step, config, ref):
    model = call(step.MaxGPT2LMHeadModel, config, what="MaxGPT2LMHeadModel(config)")
    good = {key: np.zeros([int(d) for d in p.shape], np.float32) for key, p in model.parameters}
    if "transformer.ln_f.bias" not in good:
        raise CheckFailure(
            f"MaxGPT2LMHeadModel(config) has no transformer.ln_f.bias parameter to leave out ({todo(1)})"
        )
    wpe = [config.n_positions // 2, config.n_embd]
    cases = {
        "a missing tensor": (
            {k: v for k, v in good.items() if k != "transformer.ln_f.bias"},
            ["transformer.ln_f.bias"],
        ),
        "an unexpected tensor": (
            good | {"transformer.h.0.attn.extra": np.zeros(3, np.float32)},
            ["transformer.h.0.attn.extra"],
        ),
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
                raise CheckFailure(
                    f"load_weights with {case} said {str(error)!r}, which does not name {' and '.join(says)}"
                ) from error
        else:
            raise CheckFailure(f"load_weights accepted {case}: it must raise WeightError naming {' and '.join(says)}")


MUTATIONS = [
    Mutation(
        "a Conv1D weight not transposed",
        '"c_proj.weight", "c_fc.weight")',
        '"c_proj.weight")',
        "test_loader_transposes_exactly_the_conv1d_weights",
        "mlp.c_fc.weight",
    ),
    Mutation(
        "wte transposed too",
        '"c_fc.weight")',
        '"c_fc.weight", "wte.weight")',
        "test_loader_transposes_exactly_the_conv1d_weights",
        "transformer.wte.weight",
    ),
    Mutation(
        "every 2-d weight transposed",
        "if key.endswith(CONV1D_WEIGHTS)",
        "if value.ndim == 2",
        "test_loader_transposes_exactly_the_conv1d_weights",
        "transposed 'transformer.wte.weight'",
    ),
    Mutation(
        "lm_head with a bias",
        "config.vocab_size, bias=False",
        "config.vocab_size",
        "test_lm_head_is_a_linear_from_n_embd_to_vocab_size_without_bias",
        "has a bias",
    ),
    Mutation(
        "lm_head from vocab to n_embd",
        "Linear(config.n_embd, config.vocab_size",
        "Linear(config.vocab_size, config.n_embd",
        "test_lm_head_is_a_linear_from_n_embd_to_vocab_size_without_bias",
        "expected [vocab_size, n_embd]",
    ),
    Mutation(
        "no lm_head in __call__",
        "return self.lm_head(hidden)",
        "return hidden",
        "test_logits_are_batch_by_seq_by_vocab_size",
        "shape [2, 8, 768]",
    ),
    Mutation(
        "lm_head not tied to wte",
        'state.setdefault("lm_head.weight", state["transformer.wte.weight"])',
        "pass",
        "test_hf_checkpoint_loads_with_lm_head_tied_to_wte",
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
