"""Step 10: stacking blocks into the GPT-2 body.

Embed tokens and positions, run the sum through n_layer blocks, and
normalize once more. The result is one n_embd-vector per position, ready
for the language-model head of step 11.

The body extends your step-06 embeddings (which extend step 05's): their
tables are its own `wte` and `wpe`, under HF's names
(`transformer.wte.weight`), and their lookups are yours. It adds the
blocks and the final LayerNorm (the lines marked NEW).

Tasks:
  1. Create the Sequential `h` of n_layer blocks, and ln_f.
  2. __call__: token plus position embeddings, the blocks, then ln_f.

Check your work: pixi run s10
"""

from max.dtype import DType
from max.experimental.tensor import Tensor
from max.nn.module_v3 import Sequential

from solutions.solution_01 import GPT2Config
from solutions.solution_03 import LayerNorm
from solutions.solution_06 import GPT2PositionEmbeddings
from solutions.solution_09 import GPT2Block


class GPT2Model(GPT2PositionEmbeddings):
    """The transformer body: embeddings, n_layer blocks, final LayerNorm."""

    def __init__(self, config: GPT2Config):
        super().__init__(config)  # self.wte and self.wpe, from steps 05 and 06
        self.h = Sequential(*(GPT2Block(config) for _ in range(config.n_layer)))  # NEW
        self.ln_f = LayerNorm(config.n_embd, eps=config.layer_norm_epsilon)  # NEW

    def __call__(self, input_ids: Tensor, position_ids: Tensor | None = None) -> Tensor:
        if position_ids is None:  # the whole text: 0..T-1 (step 13 passes others)
            seq = input_ids.shape[-1]
            position_ids = Tensor.arange(
                seq, dtype=DType.int64, device=input_ids.device
            )
        x = super().__call__(input_ids, position_ids)  # NEW: [B, T, n_embd]
        return self.ln_f(self.h(x))  # NEW
