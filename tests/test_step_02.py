"""Step 02: causal_mask follows HF's causal rule: query i sees keys 0 .. num_tokens + i.

Every new mask shape compiles a graph, so a check realizes its masks together,
and the shape and dtype checks realize none: two graphs in all.
"""

import numpy as np

from tutorial import checks
from tutorial.checks import CheckFailure, Mutation, device, numpy
from tutorial.expect import expect_shape, known_mistake, returned
from tutorial.explain import todo_place

KEYS = "[sequence_length, sequence_length + num_tokens]: a key for every cached token and every new one"


def mask(step, sequence_length, num_tokens, dtype=None):
    """The learner's causal_mask(sequence_length, num_tokens), unrealized."""
    from max.dtype import DType

    dtype = dtype or DType.float32
    what = f"causal_mask({sequence_length!r}, {num_tokens}, dtype={dtype}, device={checks.SESSION.device})"
    return returned(step.causal_mask, sequence_length, num_tokens, dtype=dtype, device=device(), what=what, todo=2)


def compare(got, sequence_length, n):
    """One line on what breaks HF's rule (transformers.masking_utils.causal_mask_function):
    query i sits at position n + i and sees key j iff j <= n + i."""
    want = np.where(np.arange(sequence_length + n) <= n + np.arange(sequence_length)[:, None], 0.0, -np.inf)
    case = f"causal_mask({sequence_length}, num_tokens={n})"
    expect_shape(got, want.shape, case, todo=1, hint=f"A mask is {KEYS}")
    # HF hides a key with the dtype's lowest value, torch.finfo(dtype).min: as -inf, it outweighs any score
    hidden = got <= (np.finfo(got.dtype).min if np.issubdtype(got.dtype, np.floating) else -np.inf)
    if (odd := np.argwhere((got != 0) & ~hidden)).size:
        said = (
            "a mask holds only 0 (may attend) and -inf (hidden), so softmax gives hidden keys weight exactly 0 "
            "(the dtype's lowest value, as HF's finfo(dtype).min, hides them too)"
        )
        raise CheckFailure(f"{case}{odd[0].tolist()} is {got[tuple(odd[0])]:g}: {said} ({todo_place(1)})")
    got = np.where(hidden, -np.inf, got)  # -inf or finfo.min: the same mask
    start = f"Start from -inf ({todo_place(1)}), then zero"
    whole = {  # a whole mask's mistake, and what to do instead
        f"all zeros: every query sees every future token. {start}": np.zeros_like(want),
        "all -inf: no query sees anything. Zero": np.full_like(want, -np.inf),
        "inverted: 0 on the future keys and -inf on the visible ones. Zero": np.where(want == 0, -np.inf, 0),
    }
    if not np.array_equal(got, want) and (said := known_mistake(got, whole)):
        raise CheckFailure(f"{case} is {said} only keys 0 .. num_tokens + i of row i ({todo_place(2)})")
    if (wrong := np.argwhere(got != want)).size:
        i, j = wrong[0]
        said = f"lets query {i} see key {j} (a future token)" if got[i, j] == 0 else f"hides key {j} from query {i}"
        sees = f"with num_tokens={n} query {i} sits at position {n + i} and sees keys 0 .. {n + i}, its past and itself"
        raise CheckFailure(f"mask row {i} {said}: {sees} ({todo_place(2)})")


def test_shape_is_queries_by_all_keys(step):
    from max.graph import Dim

    for sequence_length, num_tokens in ((4, 0), (Dim(4), 3)):  # attention passes the query length as a Dim
        shape, want = [int(d) for d in mask(step, sequence_length, num_tokens).shape], [4, 4 + num_tokens]
        if shape != want:
            case = f"causal_mask({sequence_length!r}, {num_tokens})"
            raise CheckFailure(f"{case} has shape {shape}, expected {want} = {KEYS} ({todo_place(1)})")


def test_follows_the_dtype_and_device_it_is_given(step):
    from max.dtype import DType

    out = mask(step, 4, 0, dtype=DType.float16)  # never realized: no graph to compile
    for name, got, want in (("dtype", out.dtype, DType.float16), ("device", out.device, device())):
        if got != want:
            said = f"returned a mask of {name} {got}: build it with {name}={name}"
            raise CheckFailure(f"causal_mask(..., {name}={want}) {said} ({todo_place(1)})")


def test_without_cache_matches_hf(step):
    compare(numpy(mask(step, 5, 0), "causal_mask(5, 0)"), 5, 0)


def test_cached_tokens_shift_the_diagonal(step):
    masks = {(4, 3): mask(step, 4, 3), (1, 5): mask(step, 1, 5)}  # a prompt after 3 cached tokens, a token after 5
    for (sequence_length, num_tokens), out in masks.items():
        compare(numpy(out, f"causal_mask({sequence_length}, {num_tokens})"), sequence_length, num_tokens)


SHAPE, TYPES = test_shape_is_queries_by_all_keys, test_follows_the_dtype_and_device_it_is_given
FRESH, CACHED = test_without_cache_matches_hf, test_cached_tokens_shift_the_diagonal
MUTATIONS = [
    Mutation("num_tokens ignored in the shape", " + num_tokens", "", SHAPE, "sequence_length + num_tokens"),
    Mutation("dtype ignored", "dtype=dtype", "dtype=DType.float32", TYPES, "dtype=dtype"),
    Mutation("off by one", "[:, None]", "[:, None] + 1", FRESH, "lets query 0 see key 1 (a future token)"),
    Mutation("the diagonal hidden: >= instead of >", "> query_pos", ">= query_pos", FRESH, "hides key 0 from query 0"),
    Mutation("the past hidden: < instead of >", "> query_pos", "< query_pos", FRESH, "(a future token)"),
    Mutation("no mask: all zeros", 'Tensor.constant(float("-inf")', "Tensor.constant(0.0", FRESH, "all zeros"),
    Mutation("inverted: 0 on the future", "(future, minus_inf, 0.0)", "(future, 0.0, minus_inf)", FRESH, "inverted"),
    Mutation("finite -1e9 instead of -inf", 'float("-inf")', "-1e9", FRESH, "-inf"),
    Mutation("queries start at 0", "(num_tokens, n_keys,", "(0, sequence_length,", CACHED, "sits at position"),
]
