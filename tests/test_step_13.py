"""Step 13: a KV-cached decode gives the full forward's logits at every position, and HF's greedy tokens."""

from types import SimpleNamespace

import numpy as np
import pytest
from max.engine.api import InferenceSession

from tutorial.checks import CheckFailure, Mutation, call, device
from tutorial.expect import expect_close, expect_tokens, yielded
from tutorial.explain import todo_place

PROMPT, FEED, NEW = [464, 2068, 7586, 21831], [18045, 625, 262, 16931], 16  # prefill, decode steps, greedy tokens


@pytest.fixture(scope="module")
def decoder(step, small):  # HF's weights in the step-11 model, with a cache, compiled by compile_cached
    model = small.model(step.MaxGPT2LMHeadModel)
    return call(step.compile_cached, model, small.config, device(), what=f"compile_cached ({todo_place(4)})")


def fake(calls: list):  # a decoder that records each call's (ids, positions, cache size), favours 3 * position + 1
    run = lambda ids, at, cache: calls.append((ids, [*at], len(cache))) or (np.eye(50)[(3 * at[-1] + 1) % 50], [0] * 4)  # noqa: E731
    return SimpleNamespace(prefill=lambda p: run([[*p]], range(len(p)), ()), decode=lambda t, n, c: run([[t]], [n], c))


def run(fn, *args, what: str):
    """decoder.prefill or decoder.decode; a shape the graph refuses is named as a fixed dim."""
    try:
        return call(fn, *args, what=what)
    except CheckFailure as failure:
        if "Shape mismatch" not in str(failure):
            raise
        says = "the prefill passes T new tokens and a cache of length 0, a decode step 1 token and a longer cache"
        raise CheckFailure(f"{failure} {says}: the new and cached dims must be symbolic ({todo_place(4)})") from None


def greedy(step, decoder, prompt, new) -> list[int]:
    what = f"generate_cached(prompt of {len(prompt)}, {new} new, greedy)"
    return yielded(step.generate_cached, decoder, prompt, new, step.Sampling(), what=what, todo=5, n_positions=32)


def test_decode_logits_equal_a_full_forward_at_every_position(decoder, small):
    want = small.compute(lambda hf, ids: hf(ids).logits[0], np.array([PROMPT + FEED]))  # [T, vocab]: every position
    logits, cache = run(decoder.prefill, PROMPT, what="the prefill (nothing cached)")
    hint = f"with nothing cached this is step 11's forward: each block as in step 09 ({todo_place(2)}), "
    hint += f"in order ({todo_place(3)})"
    expect_close(logits, want[3], "logits after the 4-token prefill", axes=("token",), todo=2, hint=hint)
    if len(cache) != 2 * small.config.n_layer:
        raise CheckFailure(f"the prefill returned {len(cache)} cache tensors, expected 2 * n_layer ({todo_place(3)})")
    for n, token in enumerate(FEED, start=len(PROMPT)):
        logits, cache = run(decoder.decode, token, n, cache, what=f"decode at position {n}")
        hint = f"the new keys and values go after the cached ones ({todo_place(1)}), "
        hint += f"and each block reads its own ({todo_place(3)})"
        expect_close(logits, want[n], f"decoded logits of position {n}", axes=("token",), todo=3, hint=hint)
        if (held := int(cache[0].shape[2])) != n + 1:
            raise CheckFailure(
                f"after position {n} the cache holds {held} positions, expected {n + 1} ({todo_place(1)})"
            )


def test_one_graph_for_every_cache_length(step, decoder, monkeypatch):
    loads, load = [], InferenceSession.load
    monkeypatch.setattr(InferenceSession, "load", lambda self, *a, **k: loads.append(1) or load(self, *a, **k))
    _, cache = run(decoder.prefill, PROMPT[:2], what="the prefill (nothing cached)")
    run(decoder.decode, PROMPT[2], 2, cache, what="decode at position 2")
    if loads:
        says = "compile once, with a symbolic cache length: a number fixes the graph to one length"
        raise CheckFailure(
            f"the prefill and one decode step compiled {len(loads)} more graph(s): {says} ({todo_place(4)})"
        )


def test_greedy_tokens_equal_hf_generate(step, decoder, small):
    hf_greedy = lambda hf, ids: hf.generate(ids, max_new_tokens=NEW, do_sample=False, pad_token_id=0)  # noqa: E731
    want = small.compute(hf_greedy, np.array([PROMPT]))[0, len(PROMPT) :].astype(int).tolist()
    hint = "after the prefill, decode only the new token at its position"
    expect_tokens(greedy(step, decoder, PROMPT, NEW), want, "greedy generation", todo=5, hint=hint)


def test_after_the_prefill_each_token_is_fed_alone_at_its_position(step):
    got = greedy(step, fake(calls := []), PROMPT, 4)
    want = [([PROMPT], [0, 1, 2, 3], 0)] + [([[3 * n + 1]], [n + 1], 4) for n in range(3, 6)]
    for i, (have, expect) in enumerate(zip(calls, want)):
        if have != expect:
            (ids, at, n), who = expect, f"decode step {i}" if i else "the prefill"
            says = f"ids {have[0]}, positions {have[1]} and {have[2]} cache tensors, not {ids}, {at} and {n}"
            raise CheckFailure(f"{who} got {says} ({todo_place(5)})")
    if len(calls) != len(want) or got != [3 * n + 1 for n in range(3, 7)]:
        raise CheckFailure(
            f"4 new tokens took {len(calls)} calls, gave {got}: expected 1 prefill, 3 decodes ({todo_place(5)})"
        )


def test_decoding_compiles_no_graph(step, decoder, monkeypatch):
    loads, load = [], InferenceSession.load
    monkeypatch.setattr(InferenceSession, "load", lambda self, *a, **k: loads.append(1) or load(self, *a, **k))
    greedy(step, decoder, PROMPT, 8)
    if loads:
        raise CheckFailure(
            f"8 new tokens compiled {len(loads)} graph(s): only run the compiled decoder ({todo_place(5)})"
        )


def test_cache_never_outgrows_n_positions(step):
    try:
        greedy(step, fake([]), PROMPT * 7, 5)
    except CheckFailure as failure:
        if "ValueError" in str(failure) and "n_positions" in str(failure):
            return
        raise
    raise CheckFailure("28 prompt + 5 new tokens > n_positions = 32, yet generate_cached raised no ValueError")


DECODE = test_decode_logits_equal_a_full_forward_at_every_position
FED, BLOCK_I = test_after_the_prefill_each_token_is_fed_alone_at_its_position, "past[2 * i], past[2 * i + 1]"
CONCAT = "k = F.concat([past_k, k], axis=2)  # [B, n_head, P + T, head_dim]\n    v = F.concat([past_v, v], axis=2)"
ONE_GRAPH = test_one_graph_for_every_cache_length
MUTATIONS = [
    Mutation("cache not extended", CONCAT, "pass", DECODE, "decoded logits of position 4"),
    Mutation("block 0's cache for all", BLOCK_I, "past[0], past[1]", DECODE, "decoded logits of position 4"),
    Mutation("keys and values swapped", "present += [k, v]", "present += [v, k]", DECODE, "decoded logits of position"),
    Mutation("attention residual dropped", "x = x + y  #", "x = y  #", DECODE, "logits after the 4-token prefill"),
    Mutation("cache length fixed", '"cached", head_dim]', "4, head_dim]", ONE_GRAPH, "cached dims must be symbolic"),
    Mutation("position not advanced", "decode(token, n,", "decode(token, len(prompt),", FED, "decode step 2 got ids"),
    Mutation("text fed again", "decode(token, n, cache)", "prefill(prompt + [token])", FED, "decode step 1 got ids"),
]
