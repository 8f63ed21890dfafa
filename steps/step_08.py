"""Step 08: residual connections.

A block never replaces the residual stream; it adds to it. GPT-2 is
pre-norm: the sublayer sees a normalized copy of x, and its output is added
back to x itself, so gradients (and information) have a straight path
through all twelve blocks.

Tasks:
  1. Return x plus the sublayer applied to the normalized x.

Check your work: pixi run s08
"""

from collections.abc import Callable

from max.experimental.tensor import Tensor


def pre_norm_residual(
    x: Tensor,
    norm: Callable[[Tensor], Tensor],
    sublayer: Callable[[Tensor], Tensor],
) -> Tensor:
    """One half of a GPT-2 block.

    The sublayer reads a normalized copy; the stream keeps x.
    """
    # TODO 1: normalize x, apply the sublayer to that, and add its output to x itself.
    return None
