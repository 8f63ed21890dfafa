"""Step 10: GPT2Model matches HF's transformer(ids).last_hidden_state, full 124M config.

All of HF's transformer.* weights go into the learner's model and a spy
replaces every block and ln_f, so one run (one compiled graph) shows the
residual stream between them. A failure names the first place it leaves
HF's: the embedding sum, a block h.i, or ln_f.
"""

import numpy as np

from tutorial.checks import CheckFailure, Mutation, call, load, tensor, todo
from tutorial.probes import Spy, difference, resembles, result, same, together

# [2, 8] token ids: "Hello, world" and friends, the first id, <|endoftext|>; one shape, one graph
IDS = np.array(
    [[15496, 11, 995, 0, 50256, 1000, 318, 257], [464, 2068, 7586, 21831, 18045, 625, 262, 16931]], dtype=np.int64
)
AXES = ("batch", "position", "feature")


def hf_stream(hf, ids):
    """HF's residual stream: embedding sum, each block's output, last_hidden_state: [n_layer + 2, B, T, n_embd]."""
    import torch

    body = hf.transformer
    stream = [body.wte(ids) + body.wpe(torch.arange(ids.shape[1]))]
    for block in body.h:
        stream.append(block(stream[-1])[0])
    stream.append(body(ids).last_hidden_state)
    return torch.stack(stream)


def hf_state(ref):
    """HF's transformer.* weights in MAX layout, under GPT2Model's own names (wte, h.0..., ln_f)."""
    return {k.removeprefix("transformer."): v for k, v in ref.max_state.items() if k.startswith("transformer.")}


def model(step, config):
    return call(step.GPT2Model, config, what="GPT2Model(config)")


_RUNS = {}


def learner(step, config, ref):
    """The learner's model on IDS with HF's weights and a spy on every block and ln_f (once per session)."""
    if id(step) in _RUNS:
        return _RUNS[id(step)]
    body = model(step, config)
    load(body, hf_state(ref), what=f"loading HF's transformer.* weights ({todo(1)})")
    spies = {}
    if isinstance(getattr(body, "h", None), list):
        for i, block in enumerate(body.h):
            body.h[i] = spies[f"h.{i}"] = Spy(block, f"h.{i}")
    if callable(getattr(body, "ln_f", None)):
        body.ln_f = spies["ln_f"] = Spy(body.ln_f, "ln_f")
    _RUNS[id(step)] = (
        together({"model": ("GPT2Model(ids)", lambda: call(body, tensor(IDS), what="GPT2Model(ids)"))}),
        spies,
    )
    return _RUNS[id(step)]


def test_parts_are_named_as_in_hf(step, config, ref):
    from max.nn.module_v3 import Embedding, Sequential

    from solutions.solution_03 import LayerNorm
    from solutions.solution_09 import GPT2Block

    body = model(step, config)
    for name, cls, rows in (("wte", Embedding, "vocab_size"), ("wpe", Embedding, "n_positions")):
        table = getattr(body, name, None)
        if not isinstance(table, cls):
            raise CheckFailure(f"self.{name} is {table!r:.40}, expected an Embedding of [{rows}, n_embd] ({todo(1)})")
        shape, want = [int(d) for d in table.weight.shape], [getattr(config, rows), config.n_embd]
        if shape != want:
            raise CheckFailure(f"self.{name} has shape {shape}, expected [{rows}, n_embd] = {want} ({todo(1)})")
    h = getattr(body, "h", None)
    if not isinstance(h, Sequential):
        raise CheckFailure(f"self.h is {h!r:.40}, expected a Sequential of n_layer GPT2Blocks ({todo(1)})")
    if len(h) != config.n_layer or not all(isinstance(b, GPT2Block) for b in h):
        raise CheckFailure(
            f"self.h holds {len(h)} modules ({', '.join(sorted({type(b).__name__ for b in h}))}), expected n_layer = {config.n_layer} GPT2Blocks ({todo(1)})"
        )
    if len({id(b) for b in h}) != len(h):
        raise CheckFailure(
            f"self.h holds the same block more than once, so its layers share weights: create a new GPT2Block(config) for each layer ({todo(1)})"
        )
    if not isinstance(getattr(body, "ln_f", None), LayerNorm):
        raise CheckFailure(
            f"self.ln_f is {getattr(body, 'ln_f', None)!r:.40}, expected a LayerNorm (step 03) ({todo(1)})"
        )
    load(body, hf_state(ref), what=f"loading HF's transformer.* weights ({todo(1)})")


def test_output_matches_hf_last_hidden_state(step, config, ref):
    """The whole body; if it differs, the first place in the stream that does is named."""
    runs, spies = learner(step, config, ref)
    got = result(runs, "model", todo(2))
    stream = ref.compute(hf_stream, IDS)
    want = stream[-1]
    if got.shape != want.shape:
        raise CheckFailure(
            f"GPT2Model(ids) gives shape {list(got.shape)}, expected [B, T, n_embd] = {list(want.shape)} ({todo(2)})"
        )
    if same(got, want):
        return
    seen = {name: spy.seen() for name, spy in spies.items()}
    if first := seen.get("h.0"):
        tokens = ref.weight("transformer.wte.weight")[IDS]
        positions = ref.weight("transformer.wpe.weight")[: IDS.shape[1]]
        known = {
            "positions are not added: add step 06's lookup of positions 0..T-1": tokens,
            "the token embeddings are missing: add step 05's lookup of input_ids": np.broadcast_to(
                positions, tokens.shape
            ),
        }
        if not same(first[0], stream[0]):
            says = next(
                (s for s, v in known.items() if resembles(first[0], v)),
                "expected wte(input_ids) + wpe(positions 0..T-1)",
            )
            raise CheckFailure(
                f"the embedding sum (the input of h.0) differs from HF's: {difference(first[0], stream[0], AXES)}; {says} ({todo(2)})"
            )
    for i in range(config.n_layer):
        name = f"h.{i}"
        if name not in spies:
            break
        if seen[name] is None:
            raise CheckFailure(
                f"{name} was never called: the stream goes through all n_layer = {config.n_layer} blocks, e.g. self.h(x) ({todo(2)})"
            )
        inp, out = seen[name]
        if not same(inp, stream[i]):
            raise CheckFailure(
                f"the input of {name} differs from HF's: {difference(inp, stream[i], AXES)}; each block reads the previous block's output ({todo(2)})"
            )
        if not same(out, stream[i + 1]):
            raise CheckFailure(
                f"{name} differs from HF's block {i} on the same input: {difference(out, stream[i + 1], AXES)}; check how self.h is built ({todo(1)})"
            )
    if "ln_f" in spies:
        if seen["ln_f"] is None:
            says = (
                "the blocks' output is returned as is"
                if resembles(got, stream[-2])
                else "the final norm is not applied"
            )
            raise CheckFailure(
                f"ln_f is missing: {says}; GPT-2 normalizes the last block's output with self.ln_f ({todo(2)})"
            )
        inp, out = seen["ln_f"]
        if not same(inp, stream[-2]):
            raise CheckFailure(
                f"the input of ln_f differs from HF's: {difference(inp, stream[-2], AXES)}; ln_f reads the last block's output ({todo(2)})"
            )
    raise CheckFailure(
        f"GPT2Model(ids) differs from HF's last_hidden_state: {difference(got, want, AXES)}; return ln_f of the last block's output ({todo(2)})"
    )


MUTATIONS = [
    Mutation(
        "positions not added",
        "self.h(tokens + positions)",
        "self.h(tokens)",
        "test_output_matches_hf_last_hidden_state",
        "positions are not added",
    ),
    Mutation(
        "final ln_f missing",
        "return self.ln_f(self.h(tokens + positions))",
        "return self.h(tokens + positions)",
        "test_output_matches_hf_last_hidden_state",
        "ln_f is missing",
    ),
    Mutation(
        "only the first block",
        "self.h(tokens + positions)",
        "self.h[0](tokens + positions)",
        "test_output_matches_hf_last_hidden_state",
        "h.1 was never called",
    ),
    Mutation(
        "one block repeated",
        "Sequential(*(GPT2Block(config) for _ in range(config.n_layer)))",
        "Sequential(*[GPT2Block(config)] * config.n_layer)",
        "test_parts_are_named_as_in_hf",
        "the same block",
    ),
    Mutation(
        "six layers", "range(config.n_layer)", "range(6)", "test_parts_are_named_as_in_hf", "expected n_layer = 12"
    ),
]
