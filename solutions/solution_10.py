"""Step 10: stacking blocks into the GPT-2 body.

Embed tokens and positions, run the sum through n_layer blocks, and
normalize once more. The result is one n_embd-vector per position, ready
for the language-model head of step 11.

The body extends your embeddings of steps 05 and 06: it is a GPT2Embeddings
and a GPT2PositionEmbeddings, so their tables are its own `wte` and `wpe`,
under HF's names (`transformer.wte.weight`), and their lookups are yours.

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
from solutions.solution_05 import GPT2Embeddings
from solutions.solution_06 import GPT2PositionEmbeddings
from solutions.solution_09 import GPT2Block


class GPT2Model(GPT2Embeddings, GPT2PositionEmbeddings):
    """The transformer body: embeddings, n_layer blocks, final LayerNorm."""

    def __init__(self, config: GPT2Config):
        GPT2Embeddings.__init__(self, config)  # self.wte, from step 05
        GPT2PositionEmbeddings.__init__(self, config)  # self.wpe, from step 06
        self.h = Sequential(*(GPT2Block(config) for _ in range(config.n_layer)))
        self.ln_f = LayerNorm(config.n_embd, eps=config.layer_norm_epsilon)

    def __call__(self, input_ids: Tensor, position_ids: Tensor | None = None) -> Tensor:
        if position_ids is None:  # the whole text: 0..T-1 (step 13 passes others)
            seq = input_ids.shape[-1]
            position_ids = Tensor.arange(
                seq, dtype=DType.int64, device=input_ids.device
            )
        tokens = GPT2Embeddings.__call__(self, input_ids)  # [B, T, n_embd]
        positions = GPT2PositionEmbeddings.__call__(self, position_ids)  # [T, n_embd]
        return self.ln_f(self.h(tokens + positions))
