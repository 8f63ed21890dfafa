"""Step 06: position embeddings.

One causal attention layer cannot tell where a token stands: the last
token's output is the same for any order of the tokens before it. Deeper
causal stacks can infer position, but GPT-2 makes it explicit: it learns one
vector per position (0..n_positions-1) and adds it to the token's embedding.

GPT2PositionEmbeddings extends your step-05 GPT2Embeddings: it keeps `wte`
and its lookup, and adds the `wpe` table (the lines marked NEW).

Tasks:
  1. Create the position embedding table `self.wpe`.
  2. Look the position ids up in it and add them to the token vectors.

Check your work: pixi run s06
"""

from max.experimental.tensor import Tensor
from max.nn.module_v3 import Embedding

from solutions.solution_01 import GPT2Config
from solutions.solution_05 import GPT2Embeddings


class GPT2PositionEmbeddings(GPT2Embeddings):
    """Step 05's token embeddings plus learned absolute positions, HF's `wpe`."""

    def __init__(self, config: GPT2Config):
        super().__init__(config)  # self.wte, from step 05
        self.wpe = Embedding(config.n_positions, dim=config.n_embd)  # NEW

    def __call__(self, input_ids: Tensor, position_ids: Tensor) -> Tensor:
        tokens = super().__call__(input_ids)  # step 05's lookup: [B, T, n_embd]
        return tokens + self.wpe(position_ids)  # NEW: [T, n_embd] broadcasts over B
