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
# TODO 1: import Embedding and Module from max.nn.module_v3.

from solutions.solution_01 import GPT2Config


class GPT2Embeddings(Module):
    """Token embeddings: one learned n_embd-vector per vocabulary entry."""

    def __init__(self, config: GPT2Config):
        # TODO 2: create the token embedding table (vocab_size rows of n_embd)
        #   as self.wte.
        self.wte = None

    def __call__(self, input_ids: Tensor) -> Tensor:
        # TODO 3: look input_ids up in self.wte: [B, T] -> [B, T, n_embd].
        return None
