"""Step 05: GPT2Embeddings looks token ids up in HF's transformer.wte table."""

import numpy as np

from tutorial.checks import CheckFailure, call, load, run
from tutorial.expect import BTC, expect_close, expect_embedding, expect_shape
from tutorial.explain import todo_place

IDS = np.array([[15496, 11, 995, 1000], [1000, 50256, 0, 3]], dtype=np.int64)  # [2, 4]: edges and repeats


def embeddings(step, config, ref):
    """The learner's module with HF's token table loaded into it."""
    module = call(step.GPT2Embeddings, config, what="GPT2Embeddings(config)")
    load(module, {"wte.weight": ref.weight("transformer.wte.weight")}, what=f"loading HF's wte ({todo_place(2)})")
    return run(module, IDS, what="GPT2Embeddings(ids)")


def test_wte_is_a_module_v3_embedding(step, config):
    module = call(step.GPT2Embeddings, config, what="GPT2Embeddings(config)")
    expect_embedding(module, "wte", rows=("vocab_size", config.vocab_size), dim=config.n_embd, todo=2)


def test_output_is_batch_by_seq_by_n_embd(step, config, ref):
    hint = "return self.wte(input_ids)"
    expect_shape(embeddings(step, config, ref), (2, 4, config.n_embd), "embeddings of [2, 4] ids", todo=3, hint=hint)


def test_lookup_matches_hf(step, config, ref):
    want = ref.compute(lambda hf, ids: hf.transformer.wte(ids), IDS)
    expect_close(
        embeddings(step, config, ref), want, "token embeddings", axes=BTC, todo=3, hint="look the ids up in self.wte"
    )


def test_token_1000_is_row_1000(step, config, ref):
    out = embeddings(step, config, ref)
    if out.shape[:2] != IDS.shape or not np.array_equal(out[1, 0], ref.weight("transformer.wte.weight")[1000]):
        raise CheckFailure(f"token 1000 did not come back as row 1000 of the table ({todo_place(3)})")
