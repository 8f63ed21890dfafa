"""Step 04: the feed-forward network (MLP).

After attention mixes information between positions, the MLP transforms
each position on its own: widen to 4 * n_embd, apply GELU, project back.

Tasks:
  1. Create `c_fc` (n_embd -> intermediate_size) and `c_proj` (back to n_embd).
  2. Apply c_fc, the tanh approximation of GELU, then c_proj.

Check your work: pixi run s04
"""

from max.experimental import functional as F
from max.experimental.tensor import Tensor
from max.nn.module_v3 import Linear, Module

from solutions.solution_01 import GPT2Config


class GPT2MLP(Module):
    """Position-wise feed-forward block, named as HF's `mlp`."""

    def __init__(self, intermediate_size: int, config: GPT2Config):
        self.c_fc = Linear(config.n_embd, intermediate_size)
        self.c_proj = Linear(intermediate_size, config.n_embd)

    def __call__(self, x: Tensor) -> Tensor:
        h = self.c_fc(x)  # [B, T, 4 * n_embd]
        # GPT-2 was trained with the tanh approximation ("gelu_new" in HF)
        h = F.gelu(h, approximate="tanh")
        return self.c_proj(h)  # [B, T, n_embd]
