"""Step 03: LayerNorm matches HF's transformer.h[0].ln_1, including its epsilon."""

import numpy as np

from tutorial.checks import CheckFailure, Mutation, call, load, numpy, run
from tutorial.expect import BTC, expect_close, expect_shape
from tutorial.explain import todo_place

rng = np.random.default_rng(3)
# [2, 8, 768] activations, each row with its own mean and spread, as a residual stream has
X = (rng.standard_normal((2, 8, 768)) * rng.uniform(0.5, 3, (2, 8, 1)) + rng.uniform(-1, 1, (2, 8, 1))).astype("f4")
# rows whose variance (~1e-6) is below GPT-2's eps (1e-5): here epsilon decides the output
LOW = (rng.standard_normal((2, 8, 768)) * rng.uniform(5e-4, 2e-3, (2, 8, 1))).astype(np.float32)
# [2, 3, 4]: so few features that dim and dim - 1 give far apart variances
SMALL = (rng.standard_normal((2, 3, 4)) * rng.uniform(0.5, 3, (2, 3, 1)) + rng.uniform(-1, 1, (2, 3, 1))).astype("f4")


def normalized(x, eps):
    return (x - x.mean(-1, keepdims=True)) / np.sqrt(x.var(-1, keepdims=True) + eps)


def mistakes(got, x, eps, w, b):
    """What common mistakes output on x, by what a reviewer says about each. One is another epsilon,
    solved from the rows' spread: (got - b) / w = (x - mean) / sqrt(var + eps)."""
    x, n = x.astype(np.float64), normalized(x.astype(np.float64), eps)
    m, var = x.mean(-1, keepdims=True), x.var(-1, keepdims=True)
    with np.errstate(all="ignore"):
        seen = float(np.median(x.var(-1) / ((got - b) / w).var(-1) - x.var(-1)))
        shown = [f"{e:.1e}".replace(".0e", "e") for e in (seen, eps)]  # 1e-06, 1.2e-05: two digits when needed
        found = {
            f"Weight and bias are swapped: scale by self.weight, then add self.bias ({todo_place(3)})": n * b + w,
            f"The bias is not added: add self.bias last ({todo_place(3)})": n * w,
            f"The weight is not applied: multiply by self.weight ({todo_place(3)})": n + b,
            f"x is scaled and shifted but not normalized ({todo_place(3)})": x * w + b,
            f"The mean is not subtracted from x ({todo_place(3)})": x / np.sqrt(var + eps) * w + b,
            f"The variance divides by dim - 1 (unbiased): LayerNorm's divides by dim ({todo_place(2)})": (
                (x - m) / np.sqrt(x.var(-1, ddof=1, keepdims=True) + eps) * w + b
            ),
            f"The variance is the mean of x², not of (x - mean)² ({todo_place(2)})": (
                (x - m) / np.sqrt((x**2).mean(-1, keepdims=True) + eps) * w + b
            ),
            f"The standard deviation, not the variance, is under the square root ({todo_place(3)})": (
                (x - m) / np.sqrt(np.sqrt(var) + eps) * w + b
            ),
            f"eps is added outside the square root: it goes inside, sqrt(var + eps) ({todo_place(3)})": (
                (x - m) / (np.sqrt(var) + eps) * w + b
            ),
        }
        for axis in range(x.ndim - 1):  # a batch or position axis instead of the features
            said = f"over axis {axis} ({'batch' if axis == 0 else 'position'}), not the last axis ({todo_place(2)})"
            m_a = x.mean(axis, keepdims=True)
            found[f"The mean and variance are taken {said}"] = (x - m_a) / np.sqrt(x.var(axis, keepdims=True) + eps)
            found[f"The mean is taken {said}"] = (x - m_a) / np.sqrt(((x - m_a) ** 2).mean(-1, keepdims=True) + eps)
            for key in list(found)[-2:]:
                found[key] = found[key] * w + b
        found[f"Normalized as if eps={shown[0]}, not {shown[1]}: use self.eps ({todo_place(3)})"] = (
            normalized(x, seen) * w + b
        )
        return found


def torch_layer_norm(hf, x):
    """torch's LayerNorm, as HF's ln_1 computes it, with no weight or bias, over the last axis."""
    import torch

    return torch.nn.functional.layer_norm(x, x.shape[-1:], eps=1e-5)


def layer_norm(step, config, ref, x, eps):
    """The learner's LayerNorm(n_embd, eps=eps) with HF's ln_1 weight and bias, on x."""
    module = call(lambda: step.LayerNorm(config.n_embd, eps=eps), what=f"LayerNorm(n_embd, eps={eps:g})")
    load(module, ref.state("transformer.h.0.ln_1."), what=f"loading HF's ln_1 weight and bias ({todo_place(1)})")
    return run(module, x, what="LayerNorm(x)")


def expect_ln_1(step, config, ref, x, what, hint, scale=1):
    """The learner's LayerNorm with HF's eps * scale² on x equals HF's ln_1 on x / scale (the same LayerNorm)."""
    eps = config.layer_norm_epsilon * scale**2
    got = layer_norm(step, config, ref, x, eps)
    want = ref.compute(lambda hf, x: hf.transformer.h[0].ln_1(x), x / np.float32(scale))
    expect_shape(got, x.shape, what, todo=3, hint=hint)
    w, b = (ref.weight(f"transformer.h.0.ln_1.{name}") for name in ("weight", "bias"))
    found = mistakes(got, x, eps, w, b)  # each names its own TODO: the mistake may sit in TODO 2 or 3
    expect_close(got, want, what, axes=BTC, hint=hint + f" ({todo_place(3)})", mistakes=found)


def test_weight_starts_at_ones_and_bias_at_zeros(step):
    from max.experimental.tensor import Tensor

    module = call(step.LayerNorm, 16, what="LayerNorm(16)")
    for name, fill, word in (("weight", 1.0, "ones"), ("bias", 0.0, "zeros")):
        if not isinstance(value := getattr(module, name, None), Tensor):
            raise CheckFailure(
                f"LayerNorm(16).{name} is {value!r:.40}, expected a Tensor of 16 {word} ({todo_place(1)})"
            )
        got = numpy(value, f"LayerNorm(16).{name}")
        expect_shape(got, (16,), f"LayerNorm(16).{name}", todo=1, hint="One value per feature: [dim] = [16]")
        if not np.all(got == fill):
            said = f"expected {word}: an untrained LayerNorm must change nothing"
            raise CheckFailure(f"LayerNorm(16).{name} starts as {got[:3].tolist()}..., {said} ({todo_place(1)})")


def test_output_has_the_input_shape(step, config, ref):
    got = layer_norm(step, config, ref, X, config.layer_norm_epsilon)
    hint = "Take mean and var over the last axis only"
    expect_shape(got, X.shape, "LayerNorm of [2, 8, 768] activations", todo=2, hint=hint)


def test_matches_hf_on_typical_activations(step, config, ref):
    expect_ln_1(step, config, ref, X, "LayerNorm", "(x - mean) / sqrt(var + eps) * weight + bias")


def test_variance_divides_by_the_number_of_features(step, ref):
    """Four features: dividing by dim - 1 instead of dim moves every output by 13%, beyond any device's
    tolerance (with 768 features it is 0.07%, hidden by a GPU's)."""
    module = call(step.LayerNorm, 4, what="LayerNorm(4)")
    got, want = run(module, SMALL, what="LayerNorm(4)(x)"), ref.compute(torch_layer_norm, SMALL)
    hint = "var is the mean of (x - mean)² over the last axis"
    found, what = mistakes(got, SMALL, 1e-5, 1.0, 0.0), "LayerNorm(4) on [2, 3, 4] activations"
    expect_close(got, want, what, axes=BTC, hint=hint + f" ({todo_place(2)})", mistakes=found)


def test_low_variance_rows_match_hf(step, config, ref):
    """Rows with variance below eps: a wrong or missing epsilon shows only here."""
    what = f"LayerNorm on rows of variance ~1e-6 (below eps={config.layer_norm_epsilon:g})"
    expect_ln_1(step, config, ref, LOW, what, "Is self.eps added to var under the square root?")


def test_uses_the_eps_it_is_given(step, config, ref):
    what = f"LayerNorm(n_embd, eps={100 * config.layer_norm_epsilon:g})"
    expect_ln_1(step, config, ref, LOW, what, "Use the eps the constructor was given: self.eps", scale=10)


INIT, TYPICAL = test_weight_starts_at_ones_and_bias_at_zeros, test_matches_hf_on_typical_activations
LOW_ROWS, GIVEN_EPS = test_low_variance_rows_match_hf, test_uses_the_eps_it_is_given
SMALL_DIM, RSQRT = test_variance_divides_by_the_number_of_features, "F.rsqrt(var + self.eps)"
VAR, SQ = "((x - mean) ** 2).mean(axis=-1)", "(x - mean) ** 2"
MUTATIONS = [
    Mutation("weight starts at zeros", "Tensor.ones([dim])", "Tensor.zeros([dim])", INIT, "expected ones"),
    Mutation("size hard-coded to 768", "Tensor.zeros([dim])", "Tensor.zeros([768])", INIT, "[dim] = [16]"),
    Mutation("weight and bias swapped", "* self.weight + self.bias", "* self.bias + self.weight", TYPICAL, "swapped"),
    Mutation("bias not added", "* self.weight + self.bias", "* self.weight", TYPICAL, "bias is not added"),
    Mutation("not normalized", "normalized * self.weight", "x * self.weight", TYPICAL, "not normalized"),
    Mutation("mean not subtracted", "normalized = (x - mean) *", "normalized = x *", TYPICAL, "mean is not subtracted"),
    Mutation("std under the sqrt", RSQRT, "F.rsqrt(F.sqrt(var) + self.eps)", TYPICAL, "standard deviation, not"),
    Mutation(
        "mean over the positions", "mean = x.mean(axis=-1)", "mean = x.mean(axis=1)", TYPICAL, "axis 1 (position)"
    ),
    Mutation("stats over the positions", "x.mean(axis=-1)  #", "x.mean(axis=1)  #", TYPICAL, "axis 1 (position)"),
    Mutation("variance of x, not x - mean", VAR, "(x**2).mean(axis=-1)", TYPICAL, "mean of x², not"),
    Mutation("unbiased variance", VAR, f"F.sum({SQ}, axis=-1) / (int(x.shape[-1]) - 1)", SMALL_DIM, "dim - 1"),
    Mutation("eps outside the sqrt", RSQRT, "(1 / (F.sqrt(var) + self.eps))", LOW_ROWS, "outside the square root"),
    Mutation("eps hard-coded to 1e-6", "var + self.eps", "var + 1e-6", LOW_ROWS, "as if eps=1e-06, not 1e-05"),
    Mutation("eps ignored (always 1e-5)", "var + self.eps", "var + 1e-5", GIVEN_EPS, "as if eps=1e-05, not 1e-03"),
]
