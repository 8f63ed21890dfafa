"""Step 03: layer normalization.

LayerNorm rescales each token's vector to mean 0 and variance 1, then
applies a learned per-feature scale (`weight`) and shift (`bias`). GPT-2
normalizes before attention, before the MLP, and once more at the end.

Tasks:
  1. Create the learned parameters `weight` (ones) and `bias` (zeros).
  2. The mean and the variance of each token's vector (the last axis).
  3. Normalize with them and this layer's epsilon, then scale and shift.

Check your work: pixi run s03
"""

from max.experimental import functional as F
from max.experimental.tensor import Tensor
from max.graph import DimLike
from max.nn.module_v3 import Module


class LayerNorm(Module):
    """Layer normalization over the last axis, as HF's `ln_1`, `ln_2`, `ln_f`."""

    def __init__(self, dim: DimLike, *, eps: float = 1e-5):
        self.eps = eps
        self.weight = Tensor.ones([dim])  # gamma: identity scale at init
        self.bias = Tensor.zeros([dim])  # beta: no shift at init

    def __call__(self, x: Tensor) -> Tensor:
        mean = x.mean(axis=-1)  # [..., 1]: one per token, kept for broadcasting
        var = ((x - mean) ** 2).mean(axis=-1)  # [..., 1]: divided by dim, not dim - 1

        normalized = (x - mean) * F.rsqrt(var + self.eps)  # mean 0, variance 1
        return normalized * self.weight + self.bias
