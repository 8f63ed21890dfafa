"""Given code for step 13: the compiled prefill and decode graphs, and the copies around them.

The learner's step 13 writes the idea of the KV cache: attention that also
reads cached keys and values (`CachedAttention`), the model run with a
cache (`GPT2WithCache`), and the loop that feeds one token at a time. This
module does the rest, which is plumbing, not the idea:

- it makes each block's attention the learner's `CachedAttention`, in place
  (same weights, same step-07 methods, plus the cache);
- it computes every Linear as `(W @ x^T)^T` (`StreamingLinear`), which
  reads the weights about twice as fast for one row on a CPU;
- it compiles two graphs, once: the prefill (a prompt of any length, nothing
  cached) and the decode step (one token after any number cached);
- it moves ids to the device and logits back, and keeps the cache on the
  device between steps.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from max import driver
from max.driver import CPU, Device
from max.dtype import DType
from max.experimental.tensor import Tensor
from max.graph import DeviceRef, TensorType
from max.nn.module_v3 import Linear, Module

from tutorial.maxprivate import compiled_model

Cache = Sequence[driver.Tensor]  # per block: keys, values, each [B, n_head, P, head_dim], on the device


class StreamingLinear(Linear):
    """module_v3's Linear, computed as (W @ x^T)^T: the same product, faster for a few rows."""

    def __call__(self, x: Tensor) -> Tensor:
        rows = x.reshape([-1, x.shape[-1]])  # [B * T, in]
        # W @ rows^T walks each stored row of W [out, in] once, as a matrix-vector product does;
        # MAX 25.7's kernel for rows @ W^T reads the same bytes at about half the speed on a CPU
        y = (self.weight @ rows.T).T + self.bias  # [B * T, out]
        return y.reshape([*x.shape[:-1], self.out_dim])


def stream_linears(model: Module) -> None:
    """Every Linear of the model becomes a StreamingLinear, in place: same parameters, same function."""
    for _, module in model.descendants:
        if type(module) is Linear:
            module.__class__ = StreamingLinear


def to_device(array, device: Device) -> driver.Tensor:
    """int64 ids or positions onto the device: a driver copy, no graph to compile."""
    return driver.Tensor.from_numpy(np.ascontiguousarray(array, dtype=np.int64)).to(device)


class Engines:
    """The prefill and decode graphs of a GPT2WithCache module, for batch 1."""

    def __init__(self, cached: Module, *, n_layer: int, n_head: int, head_dim: int, device: Device):
        dev = DeviceRef.from_device(device)
        ids, positions = (
            TensorType(DType.int64, ["batch", "new"], device=dev),
            TensorType(DType.int64, ["new"], device=dev),
        )
        cache = TensorType(DType.float32, ["batch", n_head, "cached", head_dim], device=dev)
        prefill = cached.compile(ids, positions)
        decode = cached.compile(
            TensorType(DType.int64, ["batch", 1], device=dev),
            TensorType(DType.int64, [1], device=dev),
            *[cache] * (2 * n_layer),
        )
        # Module.compile wraps the engine's model for eager Tensors; the model itself takes and
        # returns driver tensors, so the cache stays on the device and joins no eager graph
        self._prefill, self._decode, self.device = compiled_model(prefill), compiled_model(decode), device

    def prefill(self, prompt: list[int]) -> tuple[np.ndarray, Cache]:
        """The whole prompt at positions 0..T-1: (next-token logits [vocab_size], the cache)."""
        logits, *cache = self._prefill.execute(
            to_device([prompt], self.device), to_device(np.arange(len(prompt)), self.device)
        )
        return logits.to(CPU()).to_numpy()[0], cache

    def decode(self, token: int, position: int, cache: Cache) -> tuple[np.ndarray, Cache]:
        """One token at `position`, after the `position` tokens in the cache: (logits, the cache grown by one)."""
        logits, *cache = self._decode.execute(
            to_device([[token]], self.device), to_device([position], self.device), *cache
        )
        return logits.to(CPU()).to_numpy()[0], cache


def compile_cached(model: Module, device: Device, *, attention: type, with_cache: type) -> Engines:
    """Engines for the learner's step-11 `model`: `attention` is their CachedAttention class,
    `with_cache` their GPT2WithCache. Changes the model in place (its attention and Linears)."""
    blocks = model.transformer.h
    for block in blocks:
        block.attn.__class__ = attention  # a subclass of their step-07 attention: same weights, one method more
    stream_linears(model)  # a decode step reads every weight once: read them at full speed
    first = blocks[0].attn
    engines = Engines(
        with_cache(model), n_layer=len(blocks), n_head=first.n_head, head_dim=first.head_dim, device=device
    )
    engines.model = model  # for `bench --profile`, which times the decode step's parts with its modules
    return engines
