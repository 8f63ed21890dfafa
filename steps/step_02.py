"""Step 02: the causal mask.

A language model predicts each token from the ones before it, so position i
must not see positions after i. The mask is added to the attention scores:
0 where a query may look, -inf where it may not, so softmax gives those
positions weight 0.

Tasks:
  1. Build a [sequence_length, sequence_length + num_tokens] tensor of -inf.
  2. Zero the band a query may see: every key up to its own position.

Check your work: pixi run s02
"""

from max.driver import Device
from max.dtype import DType
from max.experimental import functional as F
from max.experimental.tensor import Tensor
from max.graph import Dim, DimLike


@F.functional  # builds inside the current graph, so Dim arithmetic works eagerly too
def causal_mask(
    sequence_length: DimLike,
    num_tokens: int,
    *,
    dtype: DType,
    device: Device,
) -> Tensor:
    """Additive mask for `sequence_length` new queries after `num_tokens` cached keys."""
    # TODO 1: a [sequence_length, sequence_length + num_tokens] mask of -inf, in the given dtype and device.
    mask = None
    # TODO 2: return the mask with 0 on every key query i may see: keys 0 .. num_tokens + i.
    return None
