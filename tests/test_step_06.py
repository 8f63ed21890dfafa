"""Step 06: GPT2PositionEmbeddings looks positions up in HF's transformer.wpe;
token + position embeddings equal HF's embedding output."""

import numpy as np

from solutions.solution_05 import GPT2Embeddings
from tutorial.checks import Mutation, call, load, run
from tutorial.expect import BTC, agrees, expect_close, expect_embedding, expect_shape, where

POSITIONS = np.arange(8, dtype=np.int64)  # a fresh 8-token sequence
LAST = np.arange(1016, 1024, dtype=np.int64)  # the last 8 of 1024 positions: the table's far end
IDS = np.array([[15496, 11, 995, 1000, 50256, 0, 3, 262], [464, 3290, 318, 257, 1332, 13, 50256, 11]])  # [2, 8]


def position_embeddings(step, config, ref):
    """The learner's module with HF's position table loaded into it."""
    module = call(step.GPT2PositionEmbeddings, config, what="GPT2PositionEmbeddings(config)")
    load(module, {"wpe.weight": ref.weight("transformer.wpe.weight")}, what=f"loading HF's wpe{where(1)}")
    return module


def looked_up(step, config, ref, positions):
    """The learner's wpe(positions), and a hint naming the rows of wpe it returned when they are the wrong ones."""
    out = run(position_embeddings(step, config, ref), positions, what="GPT2PositionEmbeddings(position_ids)")
    table, said = ref.weight("transformer.wpe.weight"), "return self.wpe(position_ids)"
    if out.shape == (len(positions), table.shape[1]):  # a lookup copies whole rows
        rows = [int(np.abs(table - vector).max(-1).argmin()) for vector in out]
        if np.array_equal(out, table[rows]) and rows != positions.tolist():
            said = f"Position ids {positions.tolist()} came back as rows {rows} of wpe: look up position_ids themselves"
    return out, said if out.any() else "The output is all zeros: look position_ids up in self.wpe"


def expect_wpe(step, config, ref, positions):
    out, hint = looked_up(step, config, ref, positions)
    want = ref.compute(lambda hf, positions: hf.transformer.wpe(positions), positions)
    what = f"position embeddings of positions {positions[0]}..{positions[-1]}"
    expect_close(out, want, what, axes=BTC[1:], todo=2, hint=hint)


def test_wpe_is_a_module_v3_embedding(step, config):
    module = call(step.GPT2PositionEmbeddings, config, what="GPT2PositionEmbeddings(config)")
    expect_embedding(module, "wpe", rows=("n_positions", config.n_positions), dim=config.n_embd, todo=1)


def test_output_is_seq_by_n_embd(step, config, ref):
    out, _ = looked_up(step, config, ref, POSITIONS)
    what, hint = "position embeddings of 8 position ids", "[T] ids give [T, n_embd]"
    expect_shape(out, (8, config.n_embd), what, todo=2, hint=hint)


def test_lookup_matches_hf_wpe(step, config, ref):
    expect_wpe(step, config, ref, POSITIONS)


def test_uses_the_position_ids_it_is_given(step, config, ref):
    """Positions need not start at 0 (a KV cache continues at num_tokens): 1016..1023."""
    expect_wpe(step, config, ref, LAST)


def test_tokens_plus_positions_match_hf_embedding_output(step, config, ref):
    wte, wpe = GPT2Embeddings(config), position_embeddings(step, config, ref)
    load(wte, {"wte.weight": ref.weight("transformer.wte.weight")}, what="loading HF's wte")
    out = run(lambda ids, positions: wte(ids) + wpe(positions), IDS, POSITIONS, what="wte(ids) + wpe(position_ids)")
    # what HF's GPT2Model feeds its first block: hidden_states[0] = wte(ids) + wpe(0..T-1)
    want = ref.compute(lambda hf, ids: hf.transformer(ids, output_hidden_states=True).hidden_states[0], IDS)
    hint = "wpe(position_ids) is [T, n_embd] and broadcasts over the batch"
    if not agrees(out, want):  # unless the position lookup itself is off
        alone, said = looked_up(step, config, ref, POSITIONS)
        hint = hint if agrees(alone, ref.weight("transformer.wpe.weight")[:8]) else said
    expect_close(out, want, "token + position embeddings", axes=BTC, todo=2, hint=hint)


LOOKUP, FROM_0 = "self.wpe(position_ids)", "test_lookup_matches_hf_wpe"
TABLE, GIVEN = "test_wpe_is_a_module_v3_embedding", "test_uses_the_position_ids_it_is_given"
ARANGE = "self.wpe(Tensor.arange(position_ids.shape[-1], dtype=position_ids.dtype, device=position_ids.device))"
MUTATIONS = [
    Mutation("table sized by vocab_size", "(config.n_positions", "(config.vocab_size", TABLE, "[n_positions, n_embd]"),
    Mutation("table named wte", "self.wpe = Embedding", "self.wte = Embedding", TABLE, "name the table wpe"),
    Mutation("every position looked up as 0", LOOKUP, "self.wpe(position_ids * 0)", FROM_0, "came back as rows [0, 0,"),
    Mutation("positions counted from 1", LOOKUP, "self.wpe(position_ids + 1)", FROM_0, "came back as rows [1, 2,"),
    Mutation("zeros returned", f"return {LOOKUP}", f"return {LOOKUP} * 0", FROM_0, "The output is all zeros"),
    Mutation("ids ignored: arange(T) instead", LOOKUP, ARANGE, GIVEN, "came back as rows [0, 1, 2, 3, 4, 5, 6, 7]"),
]
