"""Step 14: GGML's Q4_0 bytes, a quantized Linear within the format's error bound, and the whole model quantized."""

import numpy as np
import pytest

from tutorial import checks
from tutorial.checks import CheckFailure, Mutation, call, numpy, run_compiled
from tutorial.expect import expect_shape, returned
from tutorial.explain import todo_place

IDS = np.array([[15496, 11, 995, 0, 50256, 1000, 262, 13], [464, 2068, 7586, 21831, 18045, 625, 262, 16931]])
LAYERS = ("transformer.h.0.mlp.c_fc", "lm_head")  # one with a bias, and the head: 50257 rows, padded
F16_EPS = 2.0**-11  # fp16's relative rounding: each block's scale is stored as fp16


@pytest.fixture(autouse=True)
def cpu_only():
    if checks.SESSION.device == "gpu":
        pytest.skip("the quantized path is CPU-only in MAX 25.7")


def q4_0(w: np.ndarray) -> np.ndarray:
    """GGML's own quantizer (the gguf package): the bytes a learner's must equal."""
    import gguf

    return gguf.quantize(np.ascontiguousarray(w, dtype=np.float32), gguf.GGMLQuantizationType.Q4_0)


def blocks(packed: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """[N, K / 32 * 18] uint8 -> (scales [N * K / 32] float32, code bytes [N * K / 32, 16])."""
    b = np.ascontiguousarray(packed, dtype=np.uint8).reshape(-1, 18)
    return b[:, :2].copy().view(np.float16)[:, 0].astype(np.float32), b[:, 2:]


def weights() -> dict[str, np.ndarray]:
    """Test matrices [N, K]: square, wide, tall, and blocks of all zeros, negative and positive peaks."""
    rng = np.random.default_rng(14)
    w = rng.standard_normal((64, 96)).astype(np.float32) * 0.02
    w[0, :32] = 0  # an all-zero block: scale 0, every code 8
    w[1, 32:64] = rng.uniform(-1, 0.5, 32).astype(np.float32)
    w[1, 40] = -1.5  # the block's value of largest magnitude is negative
    w[2, 0] = 1.5  # and here positive
    return {"[64, 96]": w, "[32, 256]": rng.standard_normal((32, 256)).astype(np.float32), "[96, 32]": w.T[:, :32]}


def diagnose(got: np.ndarray, w: np.ndarray) -> str:
    """Which known mistake the bytes are, judged against gguf's bytes of w (and of w's transpose)."""
    want = q4_0(w)
    if got.size == want.size and np.array_equal(got.ravel(), q4_0(np.ascontiguousarray(w.T)).ravel()):
        return "blocks cut along the output axis: a block is 32 consecutive weights of one row (input axis)"
    (d, codes), (want_d, want_codes) = blocks(got), blocks(want)
    off = np.flatnonzero(d != want_d)
    if off.size and np.array_equal(d[off], -want_d[off]):
        return (
            f"{off.size} block scale(s) have the wrong sign: d = max / -8, max being the value of largest "
            "magnitude with its sign (not its absolute value)"
        )
    if off.size:
        return f"block {off[0]}'s scale is {d[off[0]]:.5g}, expected {want_d[off[0]]:.5g} (max / -8)"
    if np.array_equal((codes >> 4) | (codes << 4), want_codes):
        return "nibbles in the wrong order: element j goes in byte j's low 4 bits, element j + 16 in its high 4"
    row = int(np.flatnonzero((codes != want_codes).any(axis=1))[0])
    return f"block {row}'s codes are {codes[row, :4].tolist()}..., expected {want_codes[row, :4].tolist()}..."


def test_quantize_q4_0_gives_ggml_bytes(step):
    for name, w in weights().items():
        got = returned(step.quantize_q4_0, w.copy(), what=f"quantize_q4_0({name} weights)", todo=1)
        got = np.asarray(got)
        want = q4_0(w)
        expect_shape(got, want.shape, f"quantize_q4_0({name})", todo=1, hint="[N, K / 32 * 18]: 18 bytes per block")
        if got.dtype != np.uint8:
            raise CheckFailure(f"quantize_q4_0({name}) gave {got.dtype}, expected uint8 bytes ({todo_place(1)})")
        if not np.array_equal(got, want):
            bad = int((got != want).sum())
            says = diagnose(got, w)
            raise CheckFailure(
                f"quantize_q4_0({name}): {bad} of {got.size} bytes differ from GGML's: {says} ({todo_place(1)})"
            )


def layer_input(name: str):
    """HF's input to one of its layers (block 0's c_fc, or the head), for IDS."""

    def capture(hf, ids):
        seen = []
        hook = hf.get_submodule(name).register_forward_pre_hook(lambda _, args: seen.append(args[0]))
        try:
            hf(ids)
        finally:
            hook.remove()
        return seen[0]

    return capture


def steps(x: np.ndarray, w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each weight's Q4_0 step |d| [N, K], and each activation's 8-bit step [M, K] (the kernel rounds each
    block of 32 activations to GGML's Q8_0: steps of max|x| / 127)."""
    rows = x.reshape(-1, x.shape[-1])  # [M, K]
    d_w = np.repeat(np.abs(blocks(q4_0(w))[0]).reshape(w.shape[0], -1), 32, axis=1)
    d_x = np.repeat(np.abs(rows.reshape(rows.shape[0], -1, 32)).max(axis=-1) / 127, 32, axis=1)
    return d_w, d_x


def bound(x: np.ndarray, w: np.ndarray) -> np.ndarray:
    """The most |x @ W^T| can move, per output, from Q4_0 weights and the kernel's 8-bit activations.

    A weight is rounded to the nearest of 16 steps of |d| = |max| / 8, so it moves at most |d| / 2, except
    -max (code 16, clipped to 15) which moves |d|; the fp16 scale adds up to 8 * |d| * 2^-11. An activation
    moves at most half its step, plus 127 steps' fp16 rounding. So |Δy| <= Σ|x| e_w + Σ e_x |W_q| (+ fp32
    sums' slack)."""
    rows = x.reshape(-1, x.shape[-1])  # [M, K]
    d_w, d_x = steps(x, w)
    e_w, e_x = d_w * (1 + 8 * F16_EPS), d_x * (0.5 + 127 * F16_EPS)
    slack = 1e-5 * (np.abs(rows) @ np.abs(w).T)
    return (np.abs(rows) @ e_w.T + e_x @ (np.abs(w) + e_w).T + slack).reshape(*x.shape[:-1], w.shape[0])


def typical(x: np.ndarray, w: np.ndarray) -> float:
    """The RMS of Δy that rounding gives on average: each rounding error is uniform over its step, variance
    step² / 12, and independent ones add: E[Δy²] = Σ x² d_w² / 12 + Σ d_x² W² / 12 (averaged over outputs)."""
    rows = x.reshape(-1, x.shape[-1])
    d_w, d_x = steps(x, w)
    return float(np.sqrt(np.mean((rows**2 @ (d_w**2).T + d_x**2 @ (w**2).T) / 12)))


@pytest.mark.parametrize("name", LAYERS)
def test_quantized_linear_is_within_the_q4_0_bound_of_fp32(step, ref, name):
    w, bias = ref.max_state[f"{name}.weight"], ref.max_state.get(f"{name}.bias")  # [N, K], [N]
    if bias is not None:  # random-init biases are zeros, which would hide a bias left out
        bias = bias + np.random.default_rng(14).normal(0, 0.1, bias.shape).astype(np.float32)
    x = ref.compute(layer_input(name), IDS)  # [2, 8, K]: what HF's layer reads
    rows = -w.shape[0] % 32
    packed = q4_0(np.pad(w, [(0, rows), (0, 0)]))  # GGML's bytes: TODO 2 checked alone
    what = f"QuantizedLinear({name}, Q4_0)"
    layer = call(step.QuantizedLinear, packed, bias, w.shape[0], what=what)
    got = run_compiled(layer, x, what=what)
    want = x @ w.T + (0 if bias is None else bias)
    expect_shape(got, want.shape, what, todo=2, hint="drop the outputs of the padding rows, past out_dim")
    limit, delta, rms = bound(x, w), np.abs(got - want), typical(x, w)
    rel = np.linalg.norm(got - want) / np.linalg.norm(want)
    # the worst case bounds every output; the RMS of 10^4-10^5 outputs concentrates near its expectation
    if (delta > limit).any() or np.sqrt(np.mean(delta**2)) > 1.5 * rms:
        at = np.unravel_index(np.argmax(delta - limit), delta.shape)
        off = np.sqrt(np.mean(np.square(got - (want - bias)))) if bias is not None else np.inf
        says = "the bias is not added" if off <= 1.5 * rms else "qmatmul(Q4_0, None, x, packed weight), then the bias"
        raise CheckFailure(
            f"{what}: RMS |Δ| {np.sqrt(np.mean(delta**2)):.3g}, rounding gives {rms:.3g} (1.5x allowed); max |Δ| "
            f"{delta.max():.3g}, bound at {list(map(int, at))} {limit[at]:.3g} (relative error {rel:.2%}): "
            f"{says} ({todo_place(2)})"
        )
    print(f"{what}: relative error {rel:.2%} vs fp32; RMS |Δ| {np.sqrt(np.mean(delta**2)):.3g} (rounding: {rms:.3g})")


@pytest.fixture(scope="module")
def quantized(step, small):  # the small reference model, loaded, then quantize_model(model)
    model = small.model(step.MaxGPT2LMHeadModel)
    out = call(step.quantize_model, model, what="quantize_model(model)")
    return model if out is None else out


def matmuls(model) -> dict[str, tuple[str, tuple[int, ...]]]:
    """{name: (dtype, shape)} of every matmul weight, by the parameter names."""
    return {
        key.removesuffix(".weight"): (str(p.dtype), tuple(int(d) for d in p.shape))
        for key, p in model.parameters
        if key.endswith(".weight") and key.rsplit(".", 2)[-2] in ("c_attn", "c_proj", "c_fc", "lm_head")
    }


def test_every_linear_is_q4_0_and_decode_reads_7x_fewer_bytes(quantized, small):
    got, config = matmuls(quantized), small.config
    fp32 = {k.removesuffix(".weight"): ("float32", w.shape) for k, w in small.max_state.items()}
    fp32 = {k: v for k, v in fp32.items() if k.rsplit(".", 1)[-1] in ("c_attn", "c_proj", "c_fc", "lm_head")}
    if missing := sorted(fp32.keys() - got.keys()):
        raise CheckFailure(
            f"after quantize_model, '{missing[0]}.weight' is gone: keep each layer's name ({todo_place(3)})"
        )
    read = {k: int(np.prod(s)) * (4 if "float32" in d else 1) for k, (d, s) in got.items()}
    want = {k: -(-s[0] // 32) * 32 * s[1] // 32 * 18 for k, (_, s) in fp32.items()}  # rows padded to 32
    total, best = sum(read.values()), sum(want.values())
    for key, (dtype, shape) in got.items():
        if "float32" in dtype:
            raise CheckFailure(
                f"decode reads {total / 1e6:.2f} MB of matmul weights per token, Q4_0 reads {best / 1e6:.2f}: "
                f"{key} is still a float32 Linear {list(shape)} ({todo_place(3)})"
            )
        if shape[0] % 32:
            raise CheckFailure(
                f"{key}'s Q4_0 weight has {shape[0]} rows: the kernel needs a multiple of 32, pad with zero rows "
                f"to {shape[0] + -shape[0] % 32} ({todo_place(3)})"
            )
        if read[key] != want[key]:
            raise CheckFailure(
                f"{key} holds {read[key]} bytes, Q4_0 of {list(fp32[key][1])} is {want[key]} ({todo_place(3)})"
            )
    for key in ("transformer.wte.weight", "transformer.wpe.weight"):
        if not np.array_equal(numpy(dict(quantized.parameters)[key], key), small.max_state[key]):
            raise CheckFailure(f"{key} changed: the embedding tables stay float32, for the lookups ({todo_place(3)})")
    print(
        f"matmul weights read per token: {sum(4 * np.prod(s) for _, s in fp32.values()) / 1e6:.2f} MB -> "
        f"{total / 1e6:.2f} MB ({config.n_layer} blocks)"
    )


def relative_bound(small) -> float:
    """The logits' relative error that Q4_0 should stay under, from the format alone.

    Rounding to the nearest of a block's steps |d| is an error uniform on ±|d|/2: RMS |d| / sqrt(12).
    Relative to the weights' RMS, that is each matmul's relative error ε_i (a random input sees a
    random mix of the errors). Independent errors add in quadrature over the 4 * n_layer + 1 matmuls
    on the path to the logits; the bound doubles that sum for the tails of one short text.
    """
    eps = []
    for key, w in small.max_state.items():
        if key.endswith(("c_attn.weight", "c_proj.weight", "c_fc.weight", "lm_head.weight")):
            d = blocks(q4_0(w[: w.shape[0] // 32 * 32]))[0]
            eps.append(np.sqrt(np.mean(d**2) / 12) / np.sqrt(np.mean(w**2)))
    return 2 * float(np.sqrt(np.sum(np.square(eps))))


def test_logits_stay_within_q4_0s_error_of_fp32(quantized, small):
    want = small.compute(lambda hf, ids: hf(ids).logits, IDS)  # [2, 8, vocab]: fp32
    layers = matmuls(quantized)
    if not any("uint8" in d for d, _ in layers.values()):
        raise CheckFailure(f"quantize_model left every Linear in float32: nothing was quantized ({todo_place(3)})")
    if short := [k for k, (d, s) in layers.items() if "uint8" in d and s[0] % 32]:
        n = layers[short[0]][1][0]  # the kernel's own error says only "N must be a multiple of 32"
        raise CheckFailure(
            f"{short[0]} has {n} rows and the Q4_0 kernel needs a multiple of 32 (N): pad lm_head with "
            f"{-n % 32} zero rows ({todo_place(3)})"
        )
    got = run_compiled(quantized, IDS, what="the quantized model(ids)")
    hint = f"drop the padding's logits: {got.shape[-1] - want.shape[-1]} extra columns" if got.ndim == 3 else ""
    expect_shape(got, want.shape, "the quantized model's logits of [2, 8] ids", todo=3, hint=hint)
    limit = relative_bound(small)
    rel = float(np.linalg.norm(got - want) / np.linalg.norm(want))
    logp, logq = (
        z - np.log(np.exp(z - z.max(-1, keepdims=True)).sum(-1, keepdims=True)) - z.max(-1, keepdims=True)
        for z in (want.astype(np.float64), got.astype(np.float64))
    )
    kl = float((np.exp(logp) * (logp - logq)).sum(-1).mean())  # nats per position, fp32 || Q4_0
    # second order: KL ≈ Var_p(δ) / 2 <= E[δ²] / 2, δ the logits' error, at most limit * RMS(logits)
    kl_limit = 0.5 * (limit * float(np.sqrt(np.mean(want.astype(np.float64) ** 2)))) ** 2
    agree = float((got.argmax(-1) == want.argmax(-1)).mean())
    says = f"relative error {rel:.2%} (bound {limit:.2%}), KL {kl:.2e} nats (bound {kl_limit:.2e}), greedy {agree:.0%}"
    if rel > limit or kl > kl_limit:
        raise CheckFailure(f"the quantized model's logits are too far from fp32's: {says} ({todo_place(3)})")
    # a random-init model's top two logits are often closer than Q4_0's error, so some greedy tokens
    # flip; wrong weights (a transposed or dropped layer) agree on about none of 50257 choices
    if agree < 0.5:
        raise CheckFailure(
            f"the quantized model's greedy tokens agree with fp32 on {agree:.0%} of positions ({todo_place(3)})"
        )
    print(f"the quantized model vs fp32 over {IDS.size} positions: {says}")


BYTES = test_quantize_q4_0_gives_ggml_bytes
LINEAR, ALL = test_every_linear_is_q4_0_and_decode_reads_7x_fewer_bytes, test_logits_stay_within_q4_0s_error_of_fp32
PEAK = "peak = np.take_along_axis(blocks, at, axis=-1)"
PACK = "codes[..., :16] | (codes[..., 16:] << np.uint8(4))"
CUT = "blocks = w.astype(np.float32).reshape(n, k // BLOCK, BLOCK)"
MUTATIONS = [
    Mutation("scale from |max|", PEAK, f"peak = np.abs({PEAK[7:]})", BYTES, "have the wrong sign"),
    Mutation("nibbles swapped", PACK, "codes[..., 16:] | (codes[..., :16] << np.uint8(4))", BYTES, "wrong order"),
    Mutation(
        "blocks on the output axis",
        CUT,
        CUT.replace("w.", "w.T.").replace("(n, k //", "(k, n //"),
        BYTES,
        "along the output axis",
    ),
    Mutation(
        "no bias",
        "y = y + self.bias",
        "y = y",
        test_quantized_linear_is_within_the_q4_0_bound_of_fp32,
        "the bias is not added",
        case=LAYERS[0],
    ),
    Mutation("head not padded", "rows = -n % BLOCK", "rows = 0", ALL, "needs a multiple of 32 (N): pad lm_head"),
    Mutation("padded logits kept", "bias, n))", "bias, n + rows))", ALL, "drop the padding's logits"),
    Mutation(
        "a Linear left fp32",
        "if not isinstance(layer, Linear):",
        'if not isinstance(layer, Linear) or name == "c_fc":',
        LINEAR,
        "mlp.c_fc is still a float32 Linear",
    ),
]
