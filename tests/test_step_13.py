"""Step 13: a KV-cached decode gives the full forward's logits at every position, and HF's greedy tokens."""

import numpy as np

from tutorial import checks
from tutorial.checks import CheckFailure, Mutation, call, close, todo

PROMPT = [464, 2068, 7586, 21831]  # 4 tokens of prefill
FEED = [18045, 625, 262, 16931]  # then one token per decode step
NEW = 16  # greedy tokens compared with HF generate
_engines = {}


def engines(step, small):
    """(prefill, decode): HF's weights in the step-11 model, compiled by the learner's compile_cached."""
    if id(step) not in _engines:
        _engines[id(step)] = call(
            step.compile_cached, small.model(step.MaxGPT2LMHeadModel), checks.device(), what="compile_cached(model, device)"
        )
    return _engines[id(step)]


def greedy(step, small, prompt, new):
    from solutions.solution_12 import Sampling

    run = lambda: [
        int(t) for t in step.generate_cached(engines(step, small), prompt, new, Sampling(greedy=True), n_positions=32)
    ]  # noqa: E731
    return call(run, what=f"generate_cached(prompt of {len(prompt)}, {new} new, greedy)")


def test_decode_logits_equal_a_full_forward_at_every_position(step, small):
    run = engines(step, small)
    ids = PROMPT + FEED
    want = small.compute(lambda hf, ids: hf(ids).logits[0], np.array([ids]))  # [T, vocab]: every position at once
    logits, cache = call(run.prefill, PROMPT, what="prefill")
    close(
        logits,
        want[len(PROMPT) - 1],
        f"logits after the {len(PROMPT)}-token prefill",
        axes=("token",),
        hint=f"the prefill is a plain forward that also returns each block's keys and values ({todo(2)})",
    )
    for n, token in enumerate(FEED, start=len(PROMPT)):
        logits, cache = call(run.decode, token, n, cache, what=f"decode at position {n}")
        close(
            logits,
            want[n],
            f"decoded logits of position {n} ({n} tokens cached)",
            axes=("token",),
            hint=f"the new key and value go after the cached ones ({todo(1)}), and each block gets its own cache ({todo(2)})",
        )
        if int(cache[0].shape[2]) != n + 1:
            raise CheckFailure(
                f"after position {n} the cache holds {int(cache[0].shape[2])} positions, expected {n + 1} ({todo(1)})"
            )


def test_greedy_tokens_equal_hf_generate(step, small):
    want = small.compute(
        lambda hf, ids: hf.generate(ids, max_new_tokens=16, do_sample=False, pad_token_id=0)[0, 4:], np.array([PROMPT])
    )
    got, want = greedy(step, small, PROMPT, NEW), want.astype(int).tolist()
    if got != want:
        first = next((i for i, (a, b) in enumerate(zip(got, want)) if a != b), min(len(got), len(want)))
        raise CheckFailure(
            f"greedy tokens leave HF generate's at new token {first}: got {got[first : first + 3]}..., "
            f"expected {want[first : first + 3]}... (after the prefill, decode only the new token at its position, {todo(3)})"
        )


class FakeEngines:
    """Records what the loop feeds it; its logits favour token 3 * (last position) + 1."""

    def __init__(self, vocab: int = 50):
        self.calls, self.vocab = [], vocab

    def logits(self, position: int) -> np.ndarray:
        out = np.zeros(self.vocab, np.float32)
        out[(3 * position + 1) % self.vocab] = 1.0
        return out

    def prefill(self, prompt):
        self.calls.append(([list(prompt)], list(range(len(prompt))), 0))
        return self.logits(len(prompt) - 1), ["cache"] * 4

    def decode(self, token, position, cache):
        self.calls.append(([[int(token)]], [int(position)], len(cache)))
        return self.logits(int(position)), ["cache"] * 4


def test_after_the_prefill_each_token_is_fed_alone_at_its_position(step):
    from solutions.solution_12 import Sampling

    engines = FakeEngines()
    got = call(
        lambda: [int(t) for t in step.generate_cached(engines, PROMPT, 4, Sampling(greedy=True), n_positions=32)],
        what="generate_cached(fake engines, 4 new)",
    )
    calls = engines.calls
    want = [([PROMPT], [0, 1, 2, 3], 0)] + [([[3 * n + 1]], [n + 1], 4) for n in range(3, 6)]
    for i, (have, expect) in enumerate(zip(calls, want)):
        if have != expect:
            what = "the prefill" if i == 0 else f"decode step {i}"
            raise CheckFailure(
                f"{what} got ids {have[0]}, positions {have[1]} and {have[2]} cache tensors; expected ids {expect[0]}, "
                f"positions {expect[1]} and {expect[2]} ({todo(3)})"
            )
    if len(calls) != len(want) or got != [3 * n + 1 for n in range(3, 7)]:
        raise CheckFailure(
            f"4 new tokens took {len(calls)} model calls and gave {got}: expected 1 prefill, 3 decodes ({todo(3)})"
        )


def test_decoding_compiles_no_graph(step, small, monkeypatch):
    from max.engine.api import InferenceSession

    engines(step, small)  # compiled before counting
    loads, original = [], InferenceSession.load
    monkeypatch.setattr(InferenceSession, "load", lambda self, *a, **k: loads.append(1) or original(self, *a, **k))
    greedy(step, small, PROMPT, 8)
    if loads:
        raise CheckFailure(
            f"8 new tokens compiled {len(loads)} graph(s): the loop must only execute the compiled engines ({todo(3)})"
        )


def test_cache_never_outgrows_n_positions(step, small):
    try:
        greedy(step, small, PROMPT * 7, 5)
    except CheckFailure as failure:
        if "ValueError" in str(failure) and "n_positions" in str(failure):
            return
        raise
    raise CheckFailure(
        "28 prompt + 5 new tokens > n_positions = 32, yet generate_cached did not raise a ValueError naming n_positions"
    )


MUTATIONS = [
    Mutation(
        "cache not extended",
        "k = F.concat([past_k, k], axis=2)  # [B, n_head, P + T, head_dim]\n            v = F.concat([past_v, v], axis=2)",
        "pass",
        "test_decode_logits_equal_a_full_forward_at_every_position",
        "decoded logits of position 4",
    ),
    Mutation(
        "every block reads block 0's cache",
        "(cache[2 * i], cache[2 * i + 1])",
        "(cache[0], cache[1])",
        "test_decode_logits_equal_a_full_forward_at_every_position",
        "decoded logits of position 4",
    ),
    Mutation(
        "position not advanced",
        "engines.decode(token, n, cache)",
        "engines.decode(token, len(prompt), cache)",
        "test_after_the_prefill_each_token_is_fed_alone_at_its_position",
        "decode step 2 got ids",
    ),
    Mutation(
        "whole text fed again",
        "logits, cache = engines.decode(token, n, cache)",
        "logits, cache = engines.prefill(prompt + [token])",
        "test_after_the_prefill_each_token_is_fed_alone_at_its_position",
        "decode step 1 got ids",
    ),
]
