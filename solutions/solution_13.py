"""Step 13: the KV cache.

Without a cache, every new token reruns the model over the whole text:
token n costs n positions of work. But the keys and values of earlier
positions never change (the mask stops them from seeing later tokens), so
each block can keep them. Then the prompt is run once (prefill) and every
new token is one position of work (decode), attending to the cached keys.

Tasks:
  1. In attend: append the new keys and values after the cached ones.
  2. In GPT2WithCache: give each block its cached keys and values, and keep what it returns.
  3. In generate_cached: after the prefill, feed only the newest token, at its position.

Check your work: pixi run s13
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
from max import driver
from max.driver import CPU, Device
from max.dtype import DType
from max.experimental import functional as F
from max.experimental.tensor import Tensor
from max.graph import DeviceRef, TensorType
from max.nn.module_v3 import Linear, Module

from solutions.solution_07 import GPT2MultiHeadAttention
from solutions.solution_11 import MaxGPT2LMHeadModel
from solutions.solution_12 import Sampling, pick


def attend(attn: GPT2MultiHeadAttention, x: Tensor, past_k: Tensor | None, past_v: Tensor | None):
    """Step 07's attention for new positions after cached ones: (output, all keys, all values)."""
    n_embd = attn.n_head * attn.head_dim
    q, k, v = F.split(attn.c_attn(x), [n_embd, n_embd, n_embd], axis=-1)
    q, k, v = attn.split_heads(q), attn.split_heads(k), attn.split_heads(v)  # [B, n_head, T, head_dim]
    if past_k is not None:
        k = F.concat([past_k, k], axis=2)  # [B, n_head, P + 1, head_dim]
        v = F.concat([past_v, v], axis=2)

    # Decode feeds one query: its row of causal_mask(1, num_tokens=P) is all zeros, and
    # step 07's causal_mask(1, 0) = [[0]] broadcasts to exactly that over the P + 1 keys.
    weights = F.softmax(attn.scores(q, k), axis=-1)  # [B, n_head, T, P + T]
    return attn.c_proj(attn.merge_heads(weights @ v)), k, v


class GPT2WithCache(Module):
    """The step-11 model, one call per prefill or decode step, carrying each block's keys and values."""

    def __init__(self, model: MaxGPT2LMHeadModel):
        self.model = model

    def __call__(self, input_ids: Tensor, positions: Tensor, *cache: Tensor):
        body = self.model.transformer
        x = body.wte(input_ids) + body.wpe(positions)  # [B, T, n_embd]
        past = cache or [None] * (2 * len(body.h))  # the prefill starts with nothing cached
        new_cache = []
        for i, block in enumerate(body.h):
            out, k, v = attend(block.attn, block.ln_1(x), past[2 * i], past[2 * i + 1])
            new_cache += [k, v]

            x = x + out  # step 08's pre-norm residual, with the cache threaded through
            x = x + block.mlp(block.ln_2(x))
        logits = self.model.lm_head(body.ln_f(x[:, -1]))  # [B, vocab_size]: only the last position is needed
        return (logits, *new_cache)


class StreamingLinear(Linear):
    """module_v3's Linear, computed as (W @ x^T)^T: the same product, faster for a few rows."""

    def __call__(self, x: Tensor) -> Tensor:
        rows = x.reshape([-1, x.shape[-1]])  # [B * T, in]
        # W @ rows^T walks each stored row of W [out, in] once, as a matrix-vector product does;
        # MAX 25.7's kernel for rows @ W^T reads the same bytes at about half the speed on a CPU
        y = (self.weight @ rows.T).T + self.bias  # [B * T, out]
        return y.reshape([*x.shape[:-1], self.out_dim])


def stream_linears(model: Module) -> None:
    """Make every Linear in the model a StreamingLinear, in place: same parameters, same function."""
    for _, module in model.descendants:
        if type(module) is Linear:
            module.__class__ = StreamingLinear


def compile_cached(model: MaxGPT2LMHeadModel, device: Device):
    """(prefill, decode) engines: the prompt at any length, then one token after any number cached."""
    c = model.transformer.h[0].attn
    dev = DeviceRef.from_device(device)
    cache = TensorType(DType.float32, ["batch", c.n_head, "cached", c.head_dim], device=dev)
    stream_linears(model)  # a decode step reads every weight once: read them at full speed
    cached = GPT2WithCache(model)
    prefill = cached.compile(TensorType(DType.int64, ["batch", "new"], device=dev), TensorType(DType.int64, ["new"], device=dev))
    decode = cached.compile(
        TensorType(DType.int64, ["batch", 1], device=dev),
        TensorType(DType.int64, [1], device=dev),
        *[cache] * (2 * len(model.transformer.h)),
    )
    # The engine models under MAX's eager-Tensor wrapper: they take and return driver
    # tensors, so the cache stays on the device and nothing joins MAX's global graph.
    return prefill.__wrapped__, decode.__wrapped__


def on(device: Device, array: np.ndarray):
    return driver.Tensor.from_numpy(np.ascontiguousarray(array, dtype=np.int64)).to(device)


def generate_cached(
    engines,
    prompt: list[int],
    max_new_tokens: int,
    sampling: Sampling,
    *,
    device: Device,
    n_positions: int,
    eos_id: int | None = None,
) -> Iterator[int]:
    """Step 12's loop with a cache: one prefill over the prompt, then one position per token."""
    if len(prompt) + max_new_tokens > n_positions:
        raise ValueError(
            f"the KV cache holds at most n_positions = {n_positions} tokens: a {len(prompt)}-token prompt "
            f"plus {max_new_tokens} new tokens needs {len(prompt) + max_new_tokens}"
        )
    prefill, decode = engines
    rng = np.random.default_rng(sampling.seed)
    logits, *cache = prefill.execute(on(device, [prompt]), on(device, np.arange(len(prompt))))
    for n in range(len(prompt), len(prompt) + max_new_tokens):
        token = pick(logits.to(CPU()).to_numpy()[0], sampling, rng)
        yield token
        if token == eos_id or n + 1 == len(prompt) + max_new_tokens:
            return
        logits, *cache = decode.execute(on(device, [[token]]), on(device, [n]), *cache)  # the cache has the rest
