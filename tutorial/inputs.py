"""The gate in front of the model: token ids MAX would fail on, or silently misread.

MAX trusts its indices. An id >= vocab_size stops the graph with "Failed to
compile and execute graph! Please file an issue."; a negative id is read
without any error; float ids, an empty batch or a sequence past the
position table fail deep inside MAX, and can leave its eager graph broken
for the rest of the process. So ids are checked before they become tensors:
here for `bench` and any code of yours, and in `generate`'s own check_ids,
whose messages also name the tokenizer the prompt came from.
"""

from __future__ import annotations

import numpy as np


def valid_ids(ids, vocab_size: int, n_positions: int) -> np.ndarray:
    """ids as a [batch, seq] int64 array, or a ValueError saying what is wrong with them."""
    array = np.asarray(ids)
    if array.dtype.kind not in "iu":
        raise ValueError(f"token ids must be integers, got {array.dtype} (ids index the embedding table)")
    if array.ndim != 2:
        raise ValueError(f"token ids must have shape [batch, seq], got {list(array.shape)}")
    if array.size == 0:
        raise ValueError(f"no tokens to run: ids of shape {list(array.shape)} (an empty batch or an empty prompt)")
    if array.shape[1] > n_positions:
        raise ValueError(
            f"a sequence of {array.shape[1]} tokens is longer than n_positions = {n_positions}, "
            "the rows of the position table"
        )
    if (bad := (array < 0) | (array >= vocab_size)).any():
        at = tuple(int(i) for i in np.argwhere(bad)[0])
        raise ValueError(f"token id {int(array[at])} at {list(at)} is outside the vocabulary [0, {vocab_size})")
    return array.astype(np.int64)
