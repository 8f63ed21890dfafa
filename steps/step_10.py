"""Step 10: stacking blocks into the GPT-2 body.

Embed tokens and positions, run the sum through n_layer blocks, and
normalize once more. The result is one n_embd-vector per position, ready
for the language-model head of step 11. Names match HF's `transformer.*`.

Tasks:
  1. Create wte, wpe, the Sequential `h` of n_layer blocks, and ln_f.
  2. __call__: token + position embeddings, the blocks, then ln_f.

Check your work: pixi run s10
"""

from max.dtype import DType
from max.experimental.tensor import Tensor
from max.nn.module_v3 import Embedding, Module, Sequential

from solutions.solution_01 import GPT2Config
from solutions.solution_03 import LayerNorm
from solutions.solution_09 import GPT2Block


class GPT2Model(Module):
    """The transformer body: embeddings, n_layer blocks, final LayerNorm."""

    def __init__(self, config: GPT2Config):
        # TODO 1: create wte, wpe, the Sequential `h` of n_layer GPT2Blocks, and ln_f.
        self.wte = None
        self.wpe = None
        self.h = None
        self.ln_f = None

    def __call__(self, input_ids: Tensor) -> Tensor:
        # TODO 2: token embeddings plus the embeddings of positions 0..T-1, then the blocks, then ln_f.
        return None
