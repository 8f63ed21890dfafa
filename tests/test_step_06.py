"""Step 06: GPT2PositionEmbeddings extends step 05's embeddings with HF's transformer.wpe;
token + position embeddings equal HF's embedding output."""

import numpy as np

from tutorial.checks import Mutation, call, load, run
from tutorial.expect import BTC, agrees, expect_close, expect_embedding, expect_shape
from tutorial.explain import todo_place

POSITIONS = np.arange(8, dtype=np.int64)  # a fresh 8-token sequence
LAST = np.arange(1016, 1024, dtype=np.int64)  # the last 8 of 1024 positions: the table's far end
IDS = np.array([[15496, 11, 995, 1000, 50256, 0, 3, 262], [464, 3290, 318, 257, 1332, 13, 50256, 11]])  # [2, 8]


def embeddings(step, config, ref, *, tokens: bool = True):
    """The learner's module with HF's wpe loaded, and HF's wte, or a table of zeros (`tokens=False`):
    then the output is the position vectors alone, row for row."""
    module = call(step.GPT2PositionEmbeddings, config, what="GPT2PositionEmbeddings(config)")
    wte = ref.weight("transformer.wte.weight")
    state = {"wte.weight": wte if tokens else np.zeros_like(wte), "wpe.weight": ref.weight("transformer.wpe.weight")}
    load(module, state, what=f"loading HF's wte and wpe ({todo_place(1)})")
    return module


def looked_up(step, config, ref, positions):
    """The position vectors the learner's module adds ([T, n_embd], the wte table all zeros), and a hint
    naming the rows of wpe it added when they are the wrong ones."""
    ids, what = IDS[:1, : len(positions)], "GPT2PositionEmbeddings(ids, positions)"
    out = run(embeddings(step, config, ref, tokens=False), ids, positions, what=what)
    out = out[0] if out.ndim == 3 and out.shape[0] == 1 else out
    table, said = ref.weight("transformer.wpe.weight"), "add self.wpe(position_ids) to the tokens"
    if out.shape == (len(positions), table.shape[1]):  # a lookup copies whole rows
        rows = [int(np.abs(table - vector).max(-1).argmin()) for vector in out]
        if np.array_equal(out, table[rows]) and rows != positions.tolist():
            said = f"Position ids {positions.tolist()} came back as rows {rows} of wpe: look up position_ids themselves"
    return out, said if out.any() else "The position vectors are all zeros: look position_ids up in self.wpe"


def expect_wpe(step, config, ref, positions):
    out, hint = looked_up(step, config, ref, positions)
    want = ref.compute(lambda hf, positions: hf.transformer.wpe(positions), positions)
    what = f"position embeddings of positions {positions[0]}..{positions[-1]}"
    expect_close(out, want, what, axes=BTC[1:], todo=2, hint=hint)


def test_wpe_is_a_module_v3_embedding(step, config):
    module = call(step.GPT2PositionEmbeddings, config, what="GPT2PositionEmbeddings(config)")
    expect_embedding(module, "wpe", rows=("n_positions", config.n_positions), dim=config.n_embd, todo=1)
    # step 05's table is still there, under its own name: super().__init__ ran
    expect_embedding(module, "wte", rows=("vocab_size", config.vocab_size), dim=config.n_embd, todo=1)


def test_output_is_batch_by_seq_by_n_embd(step, config, ref):
    out = run(embeddings(step, config, ref), IDS, POSITIONS, what="GPT2PositionEmbeddings(ids, positions)")
    what, hint = "embeddings of [2, 8] ids at 8 positions", "[T, n_embd] positions broadcast over the batch"
    expect_shape(out, (2, 8, config.n_embd), what, todo=2, hint=hint)


def test_lookup_matches_hf_wpe(step, config, ref):
    expect_wpe(step, config, ref, POSITIONS)


def test_uses_the_position_ids_it_is_given(step, config, ref):
    """Positions need not start at 0 (a KV cache continues at num_tokens): 1016..1023."""
    expect_wpe(step, config, ref, LAST)


def test_tokens_plus_positions_match_hf_embedding_output(step, config, ref):
    out = run(embeddings(step, config, ref), IDS, POSITIONS, what="GPT2PositionEmbeddings(ids, positions)")
    # what HF's GPT2Model feeds its first block: hidden_states[0] = wte(ids) + wpe(0..T-1)
    want = ref.compute(lambda hf, ids: hf.transformer(ids, output_hidden_states=True).hidden_states[0], IDS)
    hint = "add step 05's token vectors, super().__call__(input_ids), to the position vectors"
    if not agrees(out, want):  # unless the position lookup itself is off
        alone, said = looked_up(step, config, ref, POSITIONS)
        hint = hint if agrees(alone, ref.weight("transformer.wpe.weight")[:8]) else said
    expect_close(out, want, "token + position embeddings", axes=BTC, todo=2, hint=hint)


LOOKUP, FROM_0 = "self.wpe(position_ids)", test_lookup_matches_hf_wpe
TABLE, GIVEN = test_wpe_is_a_module_v3_embedding, test_uses_the_position_ids_it_is_given
SUM = test_tokens_plus_positions_match_hf_embedding_output
ARANGE = "self.wpe(Tensor.arange(position_ids.shape[-1], dtype=position_ids.dtype, device=position_ids.device))"
MUTATIONS = [
    Mutation("table sized by vocab_size", "(config.n_positions", "(config.vocab_size", TABLE, "[n_positions, n_embd]"),
    Mutation("table named wte", "self.wpe = Embedding", "self.wte = Embedding", TABLE, "name the table wpe"),
    Mutation("every position looked up as 0", LOOKUP, "self.wpe(position_ids * 0)", FROM_0, "came back as rows [0, 0,"),
    Mutation("positions counted from 1", LOOKUP, "self.wpe(position_ids + 1)", FROM_0, "came back as rows [1, 2,"),
    Mutation("zeros added", f"tokens + {LOOKUP}", f"tokens + {LOOKUP} * 0", FROM_0, "are all zeros"),
    Mutation("ids ignored: arange(T) instead", LOOKUP, ARANGE, GIVEN, "came back as rows [0, 1, 2, 3, 4, 5, 6, 7]"),
    Mutation("tokens dropped", f"return tokens + {LOOKUP}", f"return {LOOKUP}", SUM, "super().__call__(input_ids)"),
]
