"""Step 13: a KV-cached decode gives the full forward's logits at every position, and HF's greedy tokens."""

from types import SimpleNamespace

import numpy as np
import pytest
from max.engine.api import InferenceSession

from tutorial.checks import CheckFailure, Mutation, call, device, todo
from tutorial.expect import expect_close, expect_tokens, where, yielded

PROMPT, FEED, NEW = [464, 2068, 7586, 21831], [18045, 625, 262, 16931], 16  # prefill, decode steps, greedy tokens


@pytest.fixture(scope="module")
def engines(step, small):  # prefill and decode: HF's weights in the step-11 model, compiled by compile_cached
    return call(step.compile_cached, small.model(step.MaxGPT2LMHeadModel), device(), what="compile_cached")


def fake(calls: list):  # engines that record each call's (ids, positions, cache size), favour token 3 * position + 1
    run = lambda ids, at, cache: calls.append((ids, [*at], len(cache))) or (np.eye(50)[(3 * at[-1] + 1) % 50], [0] * 4)  # noqa: E731
    return SimpleNamespace(prefill=lambda p: run([[*p]], range(len(p)), ()), decode=lambda t, n, c: run([[t]], [n], c))


def greedy(step, engines, prompt, new) -> list[int]:
    what = f"generate_cached(prompt of {len(prompt)}, {new} new, greedy)"
    return yielded(step.generate_cached, engines, prompt, new, step.Sampling(), what=what, todo=3, n_positions=32)


def test_decode_logits_equal_a_full_forward_at_every_position(engines, small):
    want = small.compute(lambda hf, ids: hf(ids).logits[0], np.array([PROMPT + FEED]))  # [T, vocab]: every position
    logits, cache = call(engines.prefill, PROMPT, what="prefill")
    hint = "the prefill is a plain forward that also returns each block's keys and values"
    expect_close(logits, want[3], "logits after the 4-token prefill", axes=("token",), todo=2, hint=hint)
    for n, token in enumerate(FEED, start=len(PROMPT)):
        logits, cache = call(engines.decode, token, n, cache, what=f"decode at position {n}")
        hint = f"the new key and value go after the cached ones ({todo(1)}), and each block gets its own cache"
        expect_close(logits, want[n], f"decoded logits of position {n}", axes=("token",), todo=2, hint=hint)
        if (held := int(cache[0].shape[2])) != n + 1:
            raise CheckFailure(f"after position {n} the cache holds {held} positions, expected {n + 1}{where(1)}")


def test_greedy_tokens_equal_hf_generate(step, engines, small):
    hf_greedy = lambda hf, ids: hf.generate(ids, max_new_tokens=NEW, do_sample=False, pad_token_id=0)  # noqa: E731
    want = small.compute(hf_greedy, np.array([PROMPT]))[0, len(PROMPT) :].astype(int).tolist()
    hint = "after the prefill, decode only the new token at its position"
    expect_tokens(greedy(step, engines, PROMPT, NEW), want, "greedy generation", todo=3, hint=hint)


def test_after_the_prefill_each_token_is_fed_alone_at_its_position(step):
    got = greedy(step, fake(calls := []), PROMPT, 4)
    want = [([PROMPT], [0, 1, 2, 3], 0)] + [([[3 * n + 1]], [n + 1], 4) for n in range(3, 6)]
    for i, (have, expect) in enumerate(zip(calls, want)):
        if have != expect:
            (ids, at, n), who = expect, f"decode step {i}" if i else "the prefill"
            says = f"ids {have[0]}, positions {have[1]} and {have[2]} cache tensors, not {ids}, {at} and {n}"
            raise CheckFailure(f"{who} got {says}{where(3)}")
    if len(calls) != len(want) or got != [3 * n + 1 for n in range(3, 7)]:
        raise CheckFailure(f"4 new tokens took {len(calls)} calls, gave {got}: expected 1 prefill, 3 decodes{where(3)}")


def test_decoding_compiles_no_graph(step, engines, monkeypatch):
    loads, load = [], InferenceSession.load
    monkeypatch.setattr(InferenceSession, "load", lambda self, *a, **k: loads.append(1) or load(self, *a, **k))
    greedy(step, engines, PROMPT, 8)
    if loads:
        raise CheckFailure(f"8 new tokens compiled {len(loads)} graph(s): only run the compiled engines{where(3)}")


def test_cache_never_outgrows_n_positions(step):
    try:
        greedy(step, fake([]), PROMPT * 7, 5)
    except CheckFailure as failure:
        if "ValueError" in str(failure) and "n_positions" in str(failure):
            return
        raise
    raise CheckFailure("28 prompt + 5 new tokens > n_positions = 32, yet generate_cached raised no ValueError")


DECODE = "test_decode_logits_equal_a_full_forward_at_every_position"
FED, BLOCK_I = "test_after_the_prefill_each_token_is_fed_alone_at_its_position", "(cache[2 * i], cache[2 * i + 1])"
MUTATIONS = [
    Mutation("cache not extended", "if self.past is not None:", "if False:", DECODE, "decoded logits of position 4"),
    Mutation("block 0's cache for all", BLOCK_I, "(cache[0], cache[1])", DECODE, "decoded logits of position 4"),
    Mutation("position not advanced", "decode(token, n,", "decode(token, len(prompt),", FED, "decode step 2 got ids"),
    Mutation("text fed again", "decode(token, n, cache)", "prefill(prompt + [token])", FED, "decode step 1 got ids"),
]
