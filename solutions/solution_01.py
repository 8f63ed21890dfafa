"""Step 01: the model configuration.

Every size in GPT-2 comes from one place: a typed dataclass whose field
names and defaults match HuggingFace's `transformers.GPT2Config`, so a
checkpoint's config.json maps onto it field by field.

Tasks:
  1. Give each field its GPT-2 (124M) default.

Check your work: pixi run s01
"""

from dataclasses import dataclass


@dataclass
class GPT2Config:
    """Hyperparameters of GPT-2 (124M), named as in HuggingFace."""

    vocab_size: int = 50257  # 50,000 BPE merges + 256 byte tokens + <|endoftext|>
    n_positions: int = 1024  # longest sequence the position table covers
    n_embd: int = 768  # width of the residual stream
    n_layer: int = 12  # transformer blocks stacked
    n_head: int = 12  # attention heads per block; head_dim = n_embd // n_head
    n_inner: int | None = None  # MLP width; None means 4 * n_embd
    layer_norm_epsilon: float = 1e-5  # added to the variance before the sqrt
