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
        self.c_attn = Linear(config.n_embd, 3 * config.n_embd)
        self.c_proj = Linear(config.n_embd, config.n_embd)

    def split_heads(self, x: Tensor) -> Tensor:
        batch, seq, _ = x.shape
        x = x.reshape([batch, seq, self.n_head, self.head_dim])
        return x.transpose(1, 2)  # [B, n_head, T, head_dim]

    def merge_heads(self, x: Tensor) -> Tensor:
        batch, _, seq, _ = x.shape
        x = x.transpose(1, 2)  # [B, T, n_head, head_dim]
        return x.reshape([batch, seq, self.n_head * self.head_dim])

    @F.functional  # runs inside the current graph: shape arithmetic works eagerly too
    def scores(self, q: Tensor, k: Tensor) -> Tensor:
        # without the scale, dot products grow with head_dim and softmax saturates
        s = q @ k.transpose(-1, -2) / math.sqrt(self.head_dim)  # [B, n_head, T, S]
        # the T queries are the last T of the S key positions (S = T until step 13)
        earlier = k.shape[-2] - q.shape[-2]
        return s + causal_mask(q.shape[-2], earlier, dtype=s.dtype, device=s.device)

    def attend(self, q: Tensor, k: Tensor, v: Tensor) -> Tensor:
        weights = F.softmax(self.scores(q, k), axis=-1)  # each query's weights sum to 1
        return weights @ v  # [B, n_head, T, head_dim]

    def heads(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        n_embd = self.n_head * self.head_dim
        q, k, v = F.split(self.c_attn(x), [n_embd, n_embd, n_embd], axis=-1)
        # [B, n_head, T, head_dim] each
        return self.split_heads(q), self.split_heads(k), self.split_heads(v)

    def __call__(self, x: Tensor) -> Tensor:
        q, k, v = self.heads(x)
        return self.c_proj(self.merge_heads(self.attend(q, k, v)))
