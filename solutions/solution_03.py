"""Step 03: layer normalization.

LayerNorm rescales each token's vector to mean 0 and variance 1, then
applies a learned per-feature scale (`weight`) and shift (`bias`). GPT-2
normalizes before attention, before the MLP, and once more at the end.

Tasks:
  1. Create the learned parameters `weight` (ones) and `bias` (zeros).
  2. Normalize the last axis with F.layer_norm and this layer's epsilon.

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
        return F.layer_norm(x, gamma=self.weight, beta=self.bias, epsilon=self.eps)
