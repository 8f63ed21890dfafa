"""Bad input at run time gets a clear error before MAX sees it, never MAX's internal one.

tutorial.inputs.valid_ids is the gate every entry point uses; these cases
are the ones MAX itself fails on (or, for negative ids, silently misreads).
Bad checkpoints are the loader's job (solutions/solution_11.py).
"""

import numpy as np
import pytest

from solutions.solution_01 import GPT2Config
from tutorial.inputs import valid_ids

BAD_IDS = {
    "id past the vocabulary": (
        np.array([[1, 2, 50257]]),
        "token id 50257 at [0, 2] is outside the vocabulary [0, 50257)",
    ),
    "negative id": (np.array([[1, -3]]), "token id -3 at [0, 1] is outside the vocabulary"),
    "longer than n_positions": (np.zeros((1, 1025), np.int64), "1025 tokens is longer than n_positions = 1024"),
    "float ids": (np.array([[1.0, 2.0]]), "token ids must be integers, got float64"),
    "empty batch": (np.zeros((0, 4), np.int64), "no tokens to run: ids of shape [0, 4]"),
    "empty prompt": (np.zeros((1, 0), np.int64), "no tokens to run: ids of shape [1, 0]"),
    "flat list": (np.array([1, 2, 3]), "must have shape [batch, seq], got [3]"),
}


@pytest.mark.parametrize("case", BAD_IDS)
def test_bad_ids_are_refused_with_the_reason(case):
    ids, says = BAD_IDS[case]
    config = GPT2Config()
    with pytest.raises(ValueError) as error:
        valid_ids(ids, config.vocab_size, config.n_positions)
    assert says in str(error.value)


def test_good_ids_pass_as_int64():
    out = valid_ids([[0, 50256]], 50257, 1024)
    assert out.dtype == np.int64 and out.tolist() == [[0, 50256]]


def test_an_index_error_inside_max_is_explained(tmp_path):
    """Were an id to get past the gate, MAX's own failure is translated, not shown raw."""
    from tutorial.maxprivate import import_max_lean

    import_max_lean()
    from solutions.solution_05 import GPT2Embeddings
    from tutorial.checks import CheckFailure, run

    embeddings = GPT2Embeddings(GPT2Config(vocab_size=10, n_embd=4))
    with pytest.raises(CheckFailure) as failure:
        run(embeddings, np.array([[1, 12]], np.int64), what="GPT2Embeddings(ids)")
    assert "an index outside its table (a token id >= vocab_size" in str(failure.value)


BAD_CHECKPOINTS = {
    "missing tensor": (lambda s: s.pop("h.0.mlp.c_fc.bias"), "missing weight 'transformer.h.0.mlp.c_fc.bias'"),
    "unexpected tensor": (
        lambda s: s.update({"h.0.attn.extra": np.zeros(3, np.float32)}),
        "unexpected weight 'transformer.h.0.attn.extra'",
    ),
    "wrong shape": (
        lambda s: s.update({"wpe.weight": np.zeros((9, 8), np.float32)}),
        "weight 'transformer.wpe.weight' has shape [9, 8], the model expects [16, 8]",
    ),
}


@pytest.mark.parametrize("case", BAD_CHECKPOINTS)
def test_bad_checkpoint_names_the_key(case, tmp_path):
    from safetensors.numpy import save_file

    from tutorial.maxprivate import import_max_lean

    import_max_lean()
    from solutions.solution_11 import MaxGPT2LMHeadModel, WeightError, load_gpt2

    config = GPT2Config(vocab_size=20, n_positions=16, n_embd=8, n_layer=1, n_head=2)
    model = MaxGPT2LMHeadModel(config)
    # a hub-style file: no "transformer." prefix, Conv1D weights [in, out], no lm_head (tied)
    state = {
        name.removeprefix("transformer."): np.zeros([int(d) for d in p.shape], np.float32)
        for name, p in model.parameters
        if name != "lm_head.weight"
    }
    for key in [k for k in state if k.endswith(("c_attn.weight", "c_proj.weight", "c_fc.weight"))]:
        state[key] = np.ascontiguousarray(state[key].T)
    edit, says = BAD_CHECKPOINTS[case]
    edit(state)
    save_file(state, str(tmp_path / "model.safetensors"))
    with pytest.raises(WeightError) as error:
        load_gpt2(model, tmp_path)
    assert says in str(error.value)


def test_a_file_that_is_not_a_checkpoint(tmp_path):
    from tutorial.maxprivate import import_max_lean

    import_max_lean()
    from solutions.solution_11 import MaxGPT2LMHeadModel, WeightError, load_gpt2

    (tmp_path / "model.safetensors").write_text("this is not a checkpoint")
    model = MaxGPT2LMHeadModel(GPT2Config(vocab_size=20, n_positions=16, n_embd=8, n_layer=1, n_head=2))
    with pytest.raises(WeightError) as error:
        load_gpt2(model, tmp_path)
    assert "not a safetensors checkpoint" in str(error.value)
    with pytest.raises(WeightError) as error:
        load_gpt2(model, tmp_path / "nowhere")
    assert "neither model.safetensors nor pytorch_model.bin" in str(error.value)
