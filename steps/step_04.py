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
        # TODO 1: create the two Linear layers: self.c_fc widens n_embd ->
        #   intermediate_size, self.c_proj narrows back.
        self.c_fc = None
        self.c_proj = None

    def __call__(self, x: Tensor) -> Tensor:
        # TODO 2: c_fc, then GELU in its tanh approximation (GPT-2's "gelu_new"),
        #   then c_proj.
        return None
