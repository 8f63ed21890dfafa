"""Step 13: the KV cache.

Without a cache, every new token reruns the model over the whole text:
token n costs n positions of work. But the keys and values of earlier
positions never change (the mask stops them from seeing later tokens), so
each block can keep them. Then the prompt is run once (prefill) and every
new token is one position of work (decode), attending to the cached keys.

Nothing is written twice: CachedAttention extends your step-07 attention
by one method, and GPT2WithCache runs your whole step-11 model. Compiling
the two graphs and copying ids and logits is given (tutorial/engine.py).

Tasks:
  1. CachedAttention.attend: the cached keys and values go before the new ones.
  2. GPT2WithCache: give each block's attention its cache, then run your model.
  3. generate_cached: after the prefill, feed only the newest token, at its position.

Check your work: pixi run s13
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
from max.driver import Device
from max.experimental import functional as F
from max.experimental.tensor import Tensor
from max.nn.module_v3 import Module

from solutions.solution_07 import GPT2MultiHeadAttention
from solutions.solution_11 import MaxGPT2LMHeadModel
from solutions.solution_12 import Sampling, pick
from tutorial import engine


class CachedAttention(GPT2MultiHeadAttention):
    """Step 07's attention, whose queries also see earlier calls' keys and values."""

    # cached keys, values: [B, n_head, P, head_dim] each
    past: tuple[Tensor, Tensor] | None = None
    present: tuple[Tensor, Tensor] | None = None  # all keys, values after this call

    def attend(self, q: Tensor, k: Tensor, v: Tensor) -> Tensor:
        if self.past is not None:  # NEW
            # TODO 1: the cached keys and values go before the new ones
            #   (on the position axis).
            k, v = None, None  # [B, n_head, P + T, head_dim] each

        self.present = (k, v)  # NEW: the next call's cache
        # step 07's attend: scores offsets the mask by P (S - T), softmax, then @ v
        return super().attend(q, k, v)


class GPT2WithCache(Module):
    """Your step-11 model on T new tokens after P cached ones.

    One call per prefill or decode step:
    (ids [B, T], position_ids [T], *cache) -> (last logits [B, vocab], *cache),
    where the cache is each block's keys and values, 2 * n_layer tensors.
    """

    def __init__(self, model: MaxGPT2LMHeadModel):
        self.model = model

    def __call__(self, input_ids: Tensor, position_ids: Tensor, *cache: Tensor):
        # each block's attention is a CachedAttention (engine.compile_cached)
        attns = [block.attn for block in self.model.transformer.h]
        # TODO 2: set each block's attn.past from the flat cache, laid out as
        #   new_cache below; the prefill has no cache.
        for i, attn in enumerate(attns):
            attn.past = None

        logits = self.model(input_ids, position_ids)  # step 11's forward: [B, T, vocab]
        new_cache = [t for attn in attns for t in attn.present]
        return (logits[:, -1], *new_cache)


def compile_cached(model: MaxGPT2LMHeadModel, device: Device) -> engine.Engines:
    """Given: your model's prefill and decode graphs, compiled once (engine.py)."""
    return engine.compile_cached(
        model, device, attention=CachedAttention, with_cache=GPT2WithCache
    )


def generate_cached(
    engines: engine.Engines,
    prompt: list[int],
    max_new_tokens: int,
    sampling: Sampling,
    *,
    n_positions: int,
    eos_id: int | None = None,
) -> Iterator[int]:
    """Step 12's loop with a cache: one prefill, then one position per new token."""
    if len(prompt) + max_new_tokens > n_positions:
        raise ValueError(
            f"the KV cache holds at most n_positions = {n_positions} tokens: a "
            f"{len(prompt)}-token prompt plus {max_new_tokens} new tokens needs "
            f"{len(prompt) + max_new_tokens}"
        )
    rng = np.random.default_rng(sampling.seed)
    # logits [vocab_size], and the cache: 2 * n_layer tensors
    logits, cache = engines.prefill(prompt)
    for n in range(len(prompt), len(prompt) + max_new_tokens):
        token = pick(logits, sampling, rng)
        yield token
        if token == eos_id or n + 1 == len(prompt) + max_new_tokens:
            return
        # TODO 3: decode only the new token, at its position n, after the n cached ones.
        logits, cache = None, None
