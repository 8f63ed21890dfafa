"""Step 05: token embeddings.

The model cannot do arithmetic on token ids, so each id picks a row of a
learned [vocab_size, n_embd] table. That row is the token's vector.

Tasks:
  1. Import Embedding and Module from max.nn.module_v3.
  2. Create the token embedding table `self.wte`.
  3. Look the input ids up in it.

Check your work: pixi run s05
"""

from max.experimental.tensor import Tensor
from max.nn.module_v3 import Embedding, Module

from solutions.solution_01 import GPT2Config


class GPT2Embeddings(Module):
    """Token embeddings: one learned n_embd-vector per vocabulary entry."""

    def __init__(self, config: GPT2Config):
        self.wte = Embedding(config.vocab_size, dim=config.n_embd)

    def __call__(self, input_ids: Tensor) -> Tensor:
        return self.wte(input_ids)  # [B, T] -> [B, T, n_embd]
