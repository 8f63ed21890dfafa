"""Step 06: position embeddings.

Attention treats its input as a set, so nothing yet tells the model where a
token stands. GPT-2 learns one vector per position (0..n_positions-1) and
adds it to the token's embedding.

Tasks:
  1. Create the position embedding table `self.wpe`.
  2. Look the position ids up in it.

Check your work: pixi run s06
"""

from max.experimental.tensor import Tensor
from max.nn.module_v3 import Embedding, Module

from solutions.solution_01 import GPT2Config


class GPT2PositionEmbeddings(Module):
    """Learned absolute position embeddings, named as HF's `wpe`."""

    def __init__(self, config: GPT2Config):
        # TODO 1: create the position table (n_positions rows of n_embd) as self.wpe.
        self.wpe = None

    def __call__(self, position_ids: Tensor) -> Tensor:
        # TODO 2: look position_ids up in self.wpe: [T] -> [T, n_embd].
        return None
