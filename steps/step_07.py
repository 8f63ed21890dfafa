"""Step 07: multi-head causal self-attention.

Each position asks a question (query), advertises what it holds (key) and
offers content (value). A query's dot product with every earlier key,
scaled and softmaxed, decides how much of each value it takes. Twelve heads
do this in parallel on 64-wide slices of the 768-wide stream.

Tasks:
  1. Create `c_attn` (q, k and v in one projection) and `c_proj`.
  2. split_heads: [B, T, n_embd] -> [B, n_head, T, head_dim].
  3. merge_heads: the inverse.
  4. scores: q @ k^T scaled by 1/sqrt(head_dim), plus the causal mask.
  5. attend: softmax the scores over the keys, then weight the values.
  6. heads: project x to q, k and v, and split each into heads.
  7. __call__: heads, attend, merge, project.

Check your work: pixi run s07
"""

import math

from max.experimental import functional as F
from max.experimental.tensor import Tensor
from max.nn.module_v3 import Linear, Module

from solutions.solution_01 import GPT2Config
from solutions.solution_02 import causal_mask


class GPT2MultiHeadAttention(Module):
    """Causal self-attention, named as HF's `attn`."""

    def __init__(self, config: GPT2Config):
        self.n_head = config.n_head
        self.head_dim = config.n_embd // config.n_head
        # TODO 1: create c_attn (n_embd -> 3 * n_embd: q, k and v side by side)
        #   and c_proj (n_embd -> n_embd).
        self.c_attn = None
        self.c_proj = None

    def split_heads(self, x: Tensor) -> Tensor:
        # TODO 2: [B, T, n_embd] -> [B, T, n_head, head_dim]
        #   -> [B, n_head, T, head_dim].
        return None

    def merge_heads(self, x: Tensor) -> Tensor:
        # TODO 3: [B, n_head, T, head_dim] -> [B, T, n_head, head_dim]
        #   -> [B, T, n_embd].
        return None

    @F.functional  # runs inside the current graph: shape arithmetic works eagerly too
    def scores(self, q: Tensor, k: Tensor) -> Tensor:
        # TODO 4: q @ k^T / sqrt(head_dim), plus the causal mask: [B, n_head, T, S].
        #   The T queries are the last T of the S key positions (S = T until step 13).
        return None

    def attend(self, q: Tensor, k: Tensor, v: Tensor) -> Tensor:
        # TODO 5: softmax of the scores over the keys, then weights @ v:
        #   [B, n_head, T, head_dim].
        return None

    def heads(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        # TODO 6: c_attn, cut into q, k and v, each split into heads:
        #   [B, n_head, T, head_dim] each.
        return None, None, None

    def __call__(self, x: Tensor) -> Tensor:
        # TODO 7: the heads, attend, merge the heads, c_proj.
        return None
