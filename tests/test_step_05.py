"""Step 05: GPT2Embeddings looks token ids up in HF's transformer.wte table."""

import numpy as np

from tutorial.checks import CheckFailure, call, close, load, run, shape_is, todo

IDS = np.array([[15496, 11, 995, 1000], [1000, 50256, 0, 3]], dtype=np.int64)  # [2, 4]: edges and repeats


def embeddings(step, config, ref):
    """The learner's module with HF's token table loaded into it."""
    module = call(step.GPT2Embeddings, config, what="GPT2Embeddings(config)")
    load(module, {"wte.weight": ref.weight("transformer.wte.weight")}, what=f"loading HF's wte ({todo(2)})")
    return module


def test_wte_is_a_module_v3_embedding(step, config):
    from max.nn.module_v3 import Embedding

    wte = getattr(call(step.GPT2Embeddings, config, what="GPT2Embeddings(config)"), "wte", None)
    if not isinstance(wte, Embedding):
        what = "not set" if wte is None else f"a {type(wte).__module__}.{type(wte).__name__}"
        raise CheckFailure(f"self.wte is {what}, expected max.nn.module_v3.Embedding ({todo(2)})")
    shape = [int(d) for d in wte.weight.shape]
    if shape != [config.vocab_size, config.n_embd]:
        raise CheckFailure(
            f"self.wte has shape {shape}, expected [vocab_size, n_embd] = [{config.vocab_size}, {config.n_embd}] ({todo(2)})"
        )


def test_output_is_batch_by_seq_by_n_embd(step, config, ref):
    out = run(embeddings(step, config, ref), IDS, what="GPT2Embeddings(ids)")
    shape_is(out, (2, 4, config.n_embd), "embeddings of [2, 4] ids", hint=f"return self.wte(input_ids) ({todo(3)})")


def test_lookup_matches_hf(step, config, ref):
    out = run(embeddings(step, config, ref), IDS, what="GPT2Embeddings(ids)")
    want = ref.compute(lambda hf, ids: hf.transformer.wte(ids), IDS)
    close(
        out,
        want,
        "token embeddings",
        hint=f"look the ids up in self.wte ({todo(3)})",
        axes=("batch", "position", "feature"),
    )


def test_token_1000_is_row_1000(step, config, ref):
    out = run(embeddings(step, config, ref), IDS, what="GPT2Embeddings(ids)")
    row = ref.weight("transformer.wte.weight")[1000]
    if out.shape[:2] != IDS.shape or not np.array_equal(out[1, 0], row):
        raise CheckFailure(f"token 1000 did not come back as row 1000 of the table ({todo(3)})")
