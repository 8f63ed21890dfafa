"""Step 02: causal_mask follows HF's causal rule: query i sees keys 0 .. num_tokens + i.

Every new mask shape compiles a graph, so a check realizes its masks together,
and the shape and dtype checks realize none: two graphs in all.
"""

import numpy as np

from tutorial import checks
from tutorial.checks import CheckFailure, Mutation, call, device, numpy, todo


def mask(step, sequence_length, num_tokens, dtype=None):
    """The learner's causal_mask(sequence_length, num_tokens), unrealized."""
    from max.dtype import DType

    dtype = dtype or DType.float32
    what = f"causal_mask({sequence_length!r}, {num_tokens}, dtype={dtype}, device={checks.DEVICE})"
    out = call(lambda: step.causal_mask(sequence_length, num_tokens, dtype=dtype, device=device()), what=what)
    if out is None:
        raise CheckFailure(f"{what} returned None: a TODO still needs its code ({todo(2)})")
    return out


def hf_rule(sequence_length, num_tokens):
    """HF's mask for these queries (transformers.masking_utils.causal_mask_function):
    query i sits at cache position num_tokens + i and sees key j iff j <= num_tokens + i."""
    q = num_tokens + np.arange(sequence_length)[:, None]
    k = np.arange(sequence_length + num_tokens)[None, :]
    return np.where(k <= q, 0.0, -np.inf).astype(np.float32)


def compare(got, sequence_length, num_tokens):
    """One line naming the first query whose row breaks the causal rule."""
    want, n = hf_rule(sequence_length, num_tokens), num_tokens
    case = f"causal_mask({sequence_length}, num_tokens={n})"
    if got.shape != want.shape:
        raise CheckFailure(
            f"{case} has shape {list(got.shape)}, expected [sequence_length, sequence_length + num_tokens] = {list(want.shape)} ({todo(1)})"
        )
    odd = ~((got == 0) | (got == -np.inf))
    if odd.any():
        i, j = np.argwhere(odd)[0]
        raise CheckFailure(
            f"{case}[{i}, {j}] is {got[i, j]:g}: a mask holds only 0 (may attend) and -inf (hidden), so that softmax gives hidden keys weight exactly 0 ({todo(1)})"
        )
    if np.array_equal(got, want):
        return
    if (got == 0).all():
        raise CheckFailure(
            f"{case} is all zeros: every query sees every future token. Start from -inf ({todo(1)}) and zero only keys 0 .. num_tokens + i ({todo(2)})"
        )
    if (got == -np.inf).all():
        raise CheckFailure(
            f"{case} is all -inf: no query sees anything. Zero keys 0 .. num_tokens + i of row i ({todo(2)})"
        )
    if np.array_equal(got == 0, want != 0):
        raise CheckFailure(f"{case} is inverted: 0 on the future keys and -inf on the visible ones ({todo(2)})")
    i, j = np.argwhere(got != want)[0]
    if got[i, j] == 0:
        raise CheckFailure(
            f"mask row {i} lets query {i} see key {j} (a future token): with num_tokens={n} it may see keys 0 .. num_tokens + i = {n + i} only, later keys must be -inf ({todo(2)})"
        )
    raise CheckFailure(
        f"mask row {i} hides key {j} from query {i}, but with num_tokens={n} query {i} sits at position {n + i} "
        f"and sees keys 0 .. {n + i}, its past and itself ({todo(2)})"
    )


def test_shape_is_queries_by_all_keys(step):
    from max.graph import Dim

    # attention passes the query length as a Dim (q.shape[-2]), so accept one
    for sequence_length, num_tokens in ((4, 0), (Dim(4), 3)):
        shape = [int(d) for d in mask(step, sequence_length, num_tokens).shape]
        want = [4, 4 + num_tokens]
        if shape != want:
            raise CheckFailure(
                f"causal_mask({sequence_length!r}, {num_tokens}) has shape {shape}, expected [sequence_length, sequence_length + num_tokens] "
                f"= {want}: a key for every cached token and every new one ({todo(1)})"
            )


def test_follows_the_dtype_and_device_it_is_given(step):
    from max.dtype import DType

    out = mask(step, 4, 0, dtype=DType.float16)  # never realized: no graph to compile
    if out.dtype != DType.float16:
        raise CheckFailure(
            f"causal_mask(..., dtype=DType.float16) returned {out.dtype}: build the mask with dtype=dtype, the scores' dtype ({todo(1)})"
        )
    if out.device != device():
        raise CheckFailure(
            f"causal_mask(..., device={device()}) returned a mask on {out.device}: build it with device=device ({todo(1)})"
        )


def test_without_cache_matches_hf(step):
    compare(numpy(mask(step, 5, 0), "causal_mask(5, 0)"), 5, 0)


def test_cached_tokens_shift_the_diagonal(step):
    # a prompt after 3 cached tokens, then one generated token after 5
    masks = {(4, 3): mask(step, 4, 3), (1, 5): mask(step, 1, 5)}
    for (sequence_length, num_tokens), out in masks.items():
        compare(numpy(out, f"causal_mask({sequence_length}, {num_tokens})"), sequence_length, num_tokens)


MUTATIONS = [
    Mutation(
        "off by one: one future key visible",
        "key_pos[None, :] > query_pos[:, None]",
        "key_pos[None, :] > query_pos[:, None] + 1",
        "test_without_cache_matches_hf",
        "lets query 0 see key 1 (a future token)",
    ),
    Mutation(
        "the diagonal hidden: >= instead of >",
        "key_pos[None, :] > query_pos[:, None]",
        "key_pos[None, :] >= query_pos[:, None]",
        "test_without_cache_matches_hf",
        "hides key 0 from query 0",
    ),
    Mutation(
        "the past hidden: < instead of >",
        "key_pos[None, :] > query_pos[:, None]",
        "key_pos[None, :] < query_pos[:, None]",
        "test_without_cache_matches_hf",
        "(a future token)",
    ),
    Mutation(
        "no mask: all zeros",
        'Tensor.constant(float("-inf")',
        "Tensor.constant(0.0",
        "test_without_cache_matches_hf",
        "all zeros",
    ),
    Mutation(
        "inverted: 0 on the future",
        "F.where(future, minus_inf, 0.0)",
        "F.where(future, 0.0, minus_inf)",
        "test_without_cache_matches_hf",
        "inverted",
    ),
    Mutation("finite -1e9 instead of -inf", 'float("-inf")', "-1e9", "test_without_cache_matches_hf", "-inf"),
    Mutation(
        "queries start at 0 whatever num_tokens",
        "Tensor.arange(num_tokens, n_keys,",
        "Tensor.arange(0, sequence_length,",
        "test_cached_tokens_shift_the_diagonal",
        "sits at position",
    ),
    Mutation(
        "num_tokens ignored in the shape",
        "n_keys = Dim(sequence_length) + num_tokens",
        "n_keys = Dim(sequence_length)",
        "test_shape_is_queries_by_all_keys",
        "sequence_length + num_tokens",
    ),
    Mutation(
        "dtype ignored",
        'float("-inf"), dtype=dtype',
        'float("-inf"), dtype=DType.float32',
        "test_follows_the_dtype_and_device_it_is_given",
        "dtype=dtype",
    ),
]
