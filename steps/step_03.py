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
        # TODO 1: create self.weight (ones) and self.bias (zeros), one value per
        #   feature: [dim].
        self.weight = None
        self.bias = None

    def __call__(self, x: Tensor) -> Tensor:
        # TODO 2: the mean and the variance of x over its last axis: [..., 1] each.
        mean = None
        var = None

        # TODO 3: normalize x with mean, var and self.eps, then scale by weight and
        #   shift by bias: [..., dim].
        return None
