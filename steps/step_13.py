"""Step 13: the KV cache.

Without a cache, every new token reruns the model over the whole text:
token n costs n positions of work. But the keys and values of earlier
positions never change (the mask stops them from seeing later tokens), so
each block can keep them. Then the prompt is run once (prefill) and every
new token is one position of work (decode), attending to the cached keys.

The cache passes through your code in the open, as in HF: each function
takes the cached keys and values (past) and returns them grown by the new
positions (present). It runs your step-07, 08 and 11 modules as they are.
One graph, compiled once, serves the prefill (a cache of length 0) and
every decode step: the cache length is a symbolic dim.

Tasks:
  1. attention_with_cache: the cached keys and values go before the new ones.
  2. block_with_cache: step 09's two halves, the attention's with its cache.
  3. GPT2WithCache: each block on its own cache, then ln_f and the head.
  4. compile_cached: the graph's input types, the cache length symbolic.
  5. generate_cached: after the prefill, feed only the newest token.

Check your work: pixi run s13
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
from max.driver import Device
from max.dtype import DType
from max.experimental import functional as F
from max.experimental.tensor import Tensor
from max.graph import DeviceRef, TensorType
from max.nn.module_v3 import Module

from solutions.solution_01 import GPT2Config
from solutions.solution_07 import GPT2MultiHeadAttention
from solutions.solution_08 import pre_norm_residual
from solutions.solution_09 import GPT2Block
from solutions.solution_11 import MaxGPT2LMHeadModel
from solutions.solution_12 import Sampling, pick
from tutorial.engine import Decoder

# past and present: per block its keys, then its values, 2 * n_layer tensors
# of [B, n_head, P, head_dim] for P cached positions


def attention_with_cache(
    attn: GPT2MultiHeadAttention, x: Tensor, past_k: Tensor, past_v: Tensor
) -> tuple[Tensor, Tensor, Tensor]:
    """Step 07's attention for T new positions after P cached ones:
    (y [B, T, n_embd], then keys and values [B, n_head, P + T, head_dim])."""
    q, k, v = attn.heads(x)  # the new positions: [B, n_head, T, head_dim]
    # TODO 1: the cached keys and values go before the new ones, on the
    #   position axis: [B, n_head, P + T, head_dim] each.
    k, v = None, None

    # step 07's scores offsets the mask by P = S - T: new query t sees keys 0..P + t
    y = attn.c_proj(attn.merge_heads(attn.attend(q, k, v)))
    return y, k, v


def block_with_cache(
    block: GPT2Block, x: Tensor, past_k: Tensor, past_v: Tensor
) -> tuple[Tensor, Tensor, Tensor]:
    """Step 09's block for T new positions: (x [B, T, n_embd], keys, values)."""
    # TODO 2: the attention half as step 09 has it, but through
    #   attention_with_cache with this block's cache; then the MLP half.
    return None, None, None


class GPT2WithCache(Module):
    """Your step-11 model on T new tokens after P cached ones.

    (ids [B, T], position_ids [T], *past) -> (last logits [B, vocab], *present)
    """

    def __init__(self, model: MaxGPT2LMHeadModel):
        self.model = model  # loaded as step 11 loads it: no weights of its own

    def __call__(self, input_ids: Tensor, position_ids: Tensor, *past: Tensor):
        body = self.model.transformer  # step 10's GPT2Model
        x = body.wte(input_ids) + body.wpe(position_ids)  # step 06's sum
        present = []
        # TODO 3: every block in order, each on its own keys and values from
        #   past (laid out as the comment at the top says), each adding its
        #   new ones to present in the same layout.

        # only the last position's logits leave the graph: [B, vocab_size]
        return self.model.lm_head(body.ln_f(x[:, -1])), *present


def compile_cached(
    model: MaxGPT2LMHeadModel, config: GPT2Config, device: Device
) -> Decoder:
    """One graph for the prefill and every decode step, compiled once."""
    on = DeviceRef.from_device(device)
    head_dim = config.n_embd // config.n_head
    # TODO 4: compile GPT2WithCache(model) for int64 ids [batch, new] and
    #   positions [new], then the float32 cache tensors, whose length is a
    #   symbolic dim (0 in the prefill, one more after each decode step).
    compiled = None

    return Decoder(compiled, config, device)  # given: the copies to and from the device


def generate_cached(
    decoder: Decoder,
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
    # logits [vocab_size], and the cache of the prompt's positions
    logits, cache = decoder.prefill(prompt)
    for n in range(len(prompt), len(prompt) + max_new_tokens):
        token = pick(logits, sampling, rng)
        yield token
        if token == eos_id or n + 1 == len(prompt) + max_new_tokens:
            return
        # TODO 5: decode only the new token, at its position n, after the n cached.
        logits, cache = None, None
