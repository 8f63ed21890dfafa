"""Step 10: GPT2Model gives HF's last_hidden_state (124M); spies on each block and ln_f name where it leaves HF's."""

import numpy as np
import pytest
from max.nn.module_v3 import Sequential

from solutions.solution_03 import LayerNorm
from solutions.solution_09 import GPT2Block
from tutorial.checks import CheckFailure, Mutation, call, load, tensor
from tutorial.expect import BTC, agrees, expect_close, expect_embedding, expect_wired, what_it_is
from tutorial.probes import Spy, result, spy_on, together
from tutorial.explain import todo_place

# [2, 8] token ids: "Hello, world" and friends, the first id, <|endoftext|>; one shape, one graph
IDS = np.array([[15496, 11, 995, 0, 50256, 1000, 318, 257], [464, 2068, 7586, 21831, 18045, 625, 262, 16931]])


def hf_stream(hf, ids):  # what each of HF's blocks reads, what ln_f reads, its output: [n_layer + 2, B, T, n_embd]
    import torch

    *reads, out = hf.transformer(ids, output_hidden_states=True).hidden_states
    return torch.stack([*reads, hf.transformer.h[-1](reads[-1])[0], out])


@pytest.fixture  # one per check: a module-scoped one's unrealized weights would join the run's graph
def body(step, config):
    return call(step.GPT2Model, config, what="GPT2Model(config)")


@pytest.fixture(scope="module")
def run(step, config, ref):  # GPT2Model(IDS), HF's weights, a spy on every block and on ln_f: (its result, the spies)
    body = call(step.GPT2Model, config, what="GPT2Model(config)")
    state = {k.removeprefix("transformer."): v for k, v in ref.max_state.items() if k.startswith("transformer.")}
    load(body, state, what=f"loading HF's transformer.* weights under GPT2Model's names ({todo_place(1)})")
    spies = spy_on(body, ["ln_f"]) if callable(getattr(body, "ln_f", None)) else {}
    for i, block in enumerate(body.h if isinstance(getattr(body, "h", None), list) else []):
        body.h[i] = spies[f"h.{i}"] = Spy(block, f"h.{i}")
    return together({"model": ("GPT2Model(ids)", lambda: call(body, tensor(IDS), what="GPT2Model(ids)"))}), spies


def test_wte_and_wpe_are_embeddings_of_n_embd(body, config):
    expect_embedding(body, "wte", rows=("vocab_size", config.vocab_size), dim=config.n_embd, todo=1)
    expect_embedding(body, "wpe", rows=("n_positions", config.n_positions), dim=config.n_embd, todo=1)


def test_h_is_a_sequential_of_n_layer_new_blocks(body, config):
    h, want = getattr(body, "h", None), f"n_layer = {config.n_layer} GPT2Blocks ({todo_place(1)})"
    if not isinstance(h, Sequential):
        raise CheckFailure(f"self.h is {what_it_is(h)}, expected a Sequential of {want}")
    if len(h) != config.n_layer or not all(isinstance(b, GPT2Block) for b in h):
        raise CheckFailure(f"self.h holds {len(h)} {'/'.join(sorted({type(b).__name__ for b in h}))}, expected {want}")
    if len({id(b) for b in h}) != len(h):
        raise CheckFailure(f"self.h holds the same block more than once: a new GPT2Block per layer ({todo_place(1)})")


def test_ln_f_is_a_layer_norm(body):
    if not isinstance(ln_f := getattr(body, "ln_f", None), LayerNorm):
        raise CheckFailure(f"self.ln_f is {what_it_is(ln_f)}, expected a LayerNorm (step 03) ({todo_place(1)})")


def test_output_matches_hf_last_hidden_state(run, ref, config):
    (runs, spies), stream = run, ref.compute(hf_stream, IDS)
    got = result(runs, "model", todo=2)
    if not agrees(got, stream[-1]):
        wte, wpe = ref.weight("transformer.wte.weight")[IDS], ref.weight("transformer.wpe.weight")[: IDS.shape[1]]
        sums = {"positions are not added: add wpe(0..T-1)": wte, "tokens are not added: add wte(ids)": wpe + 0 * wte}
        reads = {"h.0": "expected wte(input_ids) + wpe(positions 0..T-1)", "ln_f": "GPT-2 ends with self.ln_f"}
        each = f"the stream goes through all n_layer = {config.n_layer} blocks in turn, e.g. self.h(x)"
        names = [f"h.{i}" for i in range(config.n_layer)] + ["ln_f"]  # names[i] reads stream[i]
        path = [(n, stream[i], {} if i else sums, reads.get(n, each)) for i, n in enumerate(names) if n in spies]
        expect_wired(spies, dict(zip(names, stream[1:])), path, axes=BTC, todo=2)
    expect_close(got, stream[-1], "GPT2Model(ids)", axes=BTC, todo=2, hint="return ln_f of the last block's output")


OUT, PARTS = test_output_matches_hf_last_hidden_state, test_h_is_a_sequential_of_n_layer_new_blocks
MUTATIONS = [
    Mutation("positions counted from 1", "ids, position_ids)", "ids, position_ids + 1)", OUT, "wpe(positions 0..T-1)"),
    Mutation("final ln_f missing", "return self.ln_f(self.h(", "return (self.h(", OUT, "ln_f was never called"),
    Mutation("only the first block", "self.h(x)", "self.h[0](x)", OUT, "h.1 was never called"),
    Mutation("block reused", "(GPT2Block(config) for _ in", "[GPT2Block(config)] * len(", PARTS, "the same block"),
    Mutation("six layers", "range(config.n_layer)", "range(6)", PARTS, "expected n_layer = 12"),
]
