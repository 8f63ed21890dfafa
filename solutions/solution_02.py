"""Step 02: the causal mask.

A language model predicts each token from the ones before it, so position i
must not see positions after i. The mask is added to the attention scores:
0 where a query may look, -inf where it may not, so softmax gives those
positions weight 0.

The queries need not start at position 0: they may follow `num_tokens`
earlier positions whose keys they also see (0 for a whole text; step 13
keeps earlier keys around). So query i sits at position num_tokens + i.

Tasks:
  1. The positions of the queries and of the keys.
  2. -inf where a key comes after its query, 0 everywhere else.

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
    num_tokens: DimLike,
    *,
    dtype: DType,
    device: Device,
) -> Tensor:
    """Additive [sequence_length, num_tokens + sequence_length] mask."""
    n_keys = Dim(sequence_length) + num_tokens
    query_pos = Tensor.arange(num_tokens, n_keys, dtype=DType.int64, device=device)
    key_pos = Tensor.arange(0, n_keys, dtype=DType.int64, device=device)

    future = key_pos[None, :] > query_pos[:, None]  # [T, n_keys]
    minus_inf = Tensor.constant(float("-inf"), dtype=dtype, device=device)
    return F.where(future, minus_inf, 0.0)
