"""Step 09: the transformer block.

A block is two pre-norm residual halves: attention, which moves
information between positions, then the MLP, which transforms each
position. Names match HF's `h.N.ln_1`, `h.N.attn`, `h.N.ln_2`, `h.N.mlp`.

Tasks:
  1. Create ln_1, attn, ln_2 and mlp (the MLP is 4 * n_embd wide unless n_inner
     says otherwise).
  2. __call__: the attention half, then the MLP half, each with pre_norm_residual.

Check your work: pixi run s09
"""

from max.experimental.tensor import Tensor
from max.nn.module_v3 import Module

from solutions.solution_01 import GPT2Config
from solutions.solution_03 import LayerNorm
from solutions.solution_04 import GPT2MLP
from solutions.solution_07 import GPT2MultiHeadAttention
from solutions.solution_08 import pre_norm_residual


class GPT2Block(Module):
    """One transformer block: x + attn(ln_1(x)), then + mlp(ln_2(.))."""

    def __init__(self, config: GPT2Config):
        inner = config.n_inner or 4 * config.n_embd
        self.ln_1 = LayerNorm(config.n_embd, eps=config.layer_norm_epsilon)
        self.attn = GPT2MultiHeadAttention(config)
        self.ln_2 = LayerNorm(config.n_embd, eps=config.layer_norm_epsilon)
        self.mlp = GPT2MLP(inner, config)

    def __call__(self, x: Tensor) -> Tensor:
        x = pre_norm_residual(x, self.ln_1, self.attn)
        return pre_norm_residual(x, self.ln_2, self.mlp)
