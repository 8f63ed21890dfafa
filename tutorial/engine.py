"""Given code for step 13: the copies to and from the device, and a faster Linear.

The learner's step 13 writes the idea of the KV cache: attention, blocks and
a model that take the cached keys and values and return them grown, and the
graph compiled once with a symbolic cache length. This module is plumbing:

- `Decoder` runs that compiled graph for batch 1: it copies ids and positions
  to the device, brings the next token's logits back as numpy, hands the
  prefill a cache of length 0, and leaves the cache on the device between
  steps (the graph's outputs go straight back in as its inputs). It calls
  the engine Model under `Module.compile`'s callable with driver tensors:
  through the callable, each step's cache would join MAX's eager graph and
  stay there (tutorial/maxprivate.py's compiled_model says why);
- `stream_linears` makes every Linear a `StreamingLinear`, which reads the
  weights about twice as fast for one row on a CPU (`pixi run generate` and
  the bench choose it when they build the model).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
from max import driver
from max.driver import CPU, Device
from max.experimental.tensor import Tensor
from max.nn.module_v3 import Linear, Module

from tutorial.maxprivate import compiled_model

Cache = Sequence[driver.Tensor]  # per block its keys, then its values: [1, n_head, P, head_dim] each


def to_device(array, device: Device, dtype=np.int64) -> driver.Tensor:
    """A numpy array on the device: a driver copy, no graph to compile."""
    return driver.Tensor.from_numpy(np.ascontiguousarray(array, dtype=dtype)).to(device)


def to_host(tensor: driver.Tensor) -> np.ndarray:
    return tensor.to(CPU()).to_numpy()


class Decoder:
    """The learner's compiled GPT2WithCache, fed and read for batch 1.

    `compiled(ids [1, T], positions [T], *past) -> (logits [1, vocab_size], *present)`.
    """

    def __init__(self, compiled: Callable[..., Sequence[Tensor]], config, device: Device):
        if not callable(compiled):  # a compile_cached whose TODO is still open
            raise TypeError(f"Decoder(compiled, ...) got {compiled!r}, not what Module.compile returns")
        self.model, self.device = compiled_model(compiled), device
        head_dim = config.n_embd // config.n_head
        empty = to_device(np.zeros([1, config.n_head, 0, head_dim]), device, np.float32)
        self.empty = [empty] * (2 * config.n_layer)  # the prefill's cache: nothing cached yet

    def prefill(self, prompt: list[int]) -> tuple[np.ndarray, Cache]:
        """The whole prompt at positions 0..T-1: (next-token logits [vocab_size], the cache)."""
        return self._run([prompt], np.arange(len(prompt)), self.empty)

    def decode(self, token: int, position: int, cache: Cache) -> tuple[np.ndarray, Cache]:
        """One token at `position`, after the `position` tokens in the cache: (logits, the cache grown by one)."""
        return self._run([[token]], [position], cache)

    def _run(self, ids, positions, cache: Cache) -> tuple[np.ndarray, Cache]:
        logits, *cache = self.model.execute(to_device(ids, self.device), to_device(positions, self.device), *cache)
        return to_host(logits)[0], cache


class StreamingLinear(Linear):
    """module_v3's Linear, computed as (W @ x^T)^T: the same product, faster for a few rows."""

    def __init__(self, linear: Linear):  # shares the Linear's weight and bias: nothing is copied
        self.weight, self.bias = linear.weight, linear.bias

    def __call__(self, x: Tensor) -> Tensor:
        rows = x.reshape([-1, x.shape[-1]])  # [B * T, in]
        # W @ rows^T walks each stored row of W [out, in] once, as a matrix-vector product does;
        # MAX 25.7's kernel for rows @ W^T reads the same bytes at about half the speed on a CPU
        y = (self.weight @ rows.T).T + self.bias  # [B * T, out]
        return y.reshape([*x.shape[:-1], self.out_dim])


def stream_linears(model: Module) -> None:
    """Every Linear of the model is replaced by a StreamingLinear on its parameters: same names, same
    function. A build-time choice, before compiling; step 14's QuantizedLinears are left as they are."""
    for owner in [model, *(module for _, module in model.descendants)]:
        for name, child in list(owner.children):
            if type(child) is Linear:
                setattr(owner, name, StreamingLinear(child))
