"""Step 06: GPT2PositionEmbeddings looks positions up in HF's transformer.wpe;
token + position embeddings equal HF's embedding output."""

import numpy as np

from tutorial.checks import CheckFailure, Mutation, call, close, load, run, shape_is, todo

POSITIONS = np.arange(8, dtype=np.int64)  # a fresh 8-token sequence
LAST = np.arange(1016, 1024, dtype=np.int64)  # the last 8 of 1024 positions: the table's far end
IDS = np.array(
    [[15496, 11, 995, 1000, 50256, 0, 3, 262], [464, 3290, 318, 257, 1332, 13, 50256, 11]], dtype=np.int64
)  # [2, 8]


def position_embeddings(step, config, ref):
    """The learner's module with HF's position table loaded into it."""
    module = call(step.GPT2PositionEmbeddings, config, what="GPT2PositionEmbeddings(config)")
    load(module, {"wpe.weight": ref.weight("transformer.wpe.weight")}, what=f"loading HF's wpe ({todo(1)})")
    return module


def rows_returned(out, ref):
    """For each output vector, the row of HF's wpe table it equals (None: no row)."""
    table = ref.weight("transformer.wpe.weight")
    if out.ndim != 2 or out.shape[1] != table.shape[1]:
        return None
    found = []
    for vector in out:
        distance = np.abs(table - vector).max(axis=1)
        found.append(int(distance.argmin()) if distance.min() < 1e-6 else None)
    return found


def lookup_hint(out, positions, ref):
    rows = rows_returned(out, ref)
    if rows is not None and None not in rows and rows != positions.tolist():
        return f"Position ids {positions.tolist()} came back as rows {rows} of wpe: look up position_ids themselves ({todo(2)})"
    if not out.any():
        return f"The output is all zeros: look position_ids up in self.wpe ({todo(2)})"
    return f"return self.wpe(position_ids) ({todo(2)})"


def test_wpe_is_a_module_v3_embedding(step, config):
    from max.nn.module_v3 import Embedding

    module = call(step.GPT2PositionEmbeddings, config, what="GPT2PositionEmbeddings(config)")
    if not hasattr(module, "wpe"):
        raise CheckFailure(
            f"GPT2PositionEmbeddings has no self.wpe: name the table wpe, as HF does, so its weights load by name ({todo(1)})"
        )
    wpe = module.wpe
    if not isinstance(wpe, Embedding):
        raise CheckFailure(f"self.wpe is {wpe!r:.40}, expected a max.nn.module_v3.Embedding ({todo(1)})")
    shape = [int(d) for d in wpe.weight.shape]
    if shape != [config.n_positions, config.n_embd]:
        raise CheckFailure(
            f"self.wpe has shape {shape}, expected [n_positions, n_embd] = [{config.n_positions}, {config.n_embd}]: one row per position ({todo(1)})"
        )


def test_output_is_seq_by_n_embd(step, config, ref):
    out = run(position_embeddings(step, config, ref), POSITIONS, what="GPT2PositionEmbeddings(position_ids)")
    shape_is(
        out, (8, config.n_embd), "position embeddings of 8 position ids", hint=f"[T] ids give [T, n_embd] ({todo(2)})"
    )


def test_lookup_matches_hf_wpe(step, config, ref):
    out = run(position_embeddings(step, config, ref), POSITIONS, what="GPT2PositionEmbeddings(position_ids)")
    want = ref.compute(lambda hf, positions: hf.transformer.wpe(positions), POSITIONS)
    close(
        out,
        want,
        "position embeddings of positions 0..7",
        hint=lookup_hint(out, POSITIONS, ref),
        axes=("position", "feature"),
    )


def test_uses_the_position_ids_it_is_given(step, config, ref):
    """Positions need not start at 0 (a KV cache continues at num_tokens): 1016..1023."""
    out = run(position_embeddings(step, config, ref), LAST, what="GPT2PositionEmbeddings(position_ids)")
    want = ref.compute(lambda hf, positions: hf.transformer.wpe(positions), LAST)
    close(
        out,
        want,
        "position embeddings of positions 1016..1023",
        hint=lookup_hint(out, LAST, ref),
        axes=("position", "feature"),
    )


def test_tokens_plus_positions_match_hf_embedding_output(step, config, ref):
    from solutions.solution_05 import GPT2Embeddings

    wte = GPT2Embeddings(config)
    load(wte, {"wte.weight": ref.weight("transformer.wte.weight")}, what="loading HF's wte")
    wpe = position_embeddings(step, config, ref)
    out = run(lambda ids, positions: wte(ids) + wpe(positions), IDS, POSITIONS, what="wte(ids) + wpe(position_ids)")
    # what HF's GPT2Model feeds its first block: hidden_states[0] = wte(ids) + wpe(0..T-1)
    want = ref.compute(lambda hf, ids: hf.transformer(ids, output_hidden_states=True).hidden_states[0], IDS)
    hint = f"wpe(position_ids) is [T, n_embd] and broadcasts over the batch ({todo(2)})"
    if out.shape == want.shape and not np.allclose(out, want, atol=1e-4, rtol=1e-4):
        alone = run(wpe, POSITIONS, what="GPT2PositionEmbeddings(position_ids)")
        if not np.allclose(alone, ref.weight("transformer.wpe.weight")[:8], atol=1e-4, rtol=1e-4):
            hint = lookup_hint(alone, POSITIONS, ref)  # the position lookup itself is off
    close(out, want, "token + position embeddings", hint=hint, axes=("batch", "position", "feature"))


MUTATIONS = [
    Mutation(
        "position ids ignored: arange(T) instead",
        "self.wpe(position_ids)",
        "self.wpe(Tensor.arange(position_ids.shape[-1], dtype=position_ids.dtype, device=position_ids.device))",
        "test_uses_the_position_ids_it_is_given",
        "came back as rows [0, 1, 2, 3, 4, 5, 6, 7]",
    ),
    Mutation(
        "every position looked up as 0",
        "self.wpe(position_ids)",
        "self.wpe(position_ids * 0)",
        "test_lookup_matches_hf_wpe",
        "came back as rows [0, 0,",
    ),
    Mutation(
        "positions counted from 1",
        "self.wpe(position_ids)",
        "self.wpe(position_ids + 1)",
        "test_lookup_matches_hf_wpe",
        "came back as rows [1, 2,",
    ),
    Mutation(
        "zeros returned",
        "return self.wpe(position_ids)",
        "return self.wpe(position_ids) * 0",
        "test_lookup_matches_hf_wpe",
        "The output is all zeros",
    ),
    Mutation(
        "table sized by vocab_size",
        "Embedding(config.n_positions",
        "Embedding(config.vocab_size",
        "test_wpe_is_a_module_v3_embedding",
        "[n_positions, n_embd]",
    ),
    Mutation(
        "table named wte",
        "self.wpe = Embedding",
        "self.wte = Embedding",
        "test_wpe_is_a_module_v3_embedding",
        "name the table wpe",
    ),
]
