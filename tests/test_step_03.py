"""Step 03: LayerNorm matches HF's transformer.h[0].ln_1, including its epsilon."""

import numpy as np

from tutorial.checks import CheckFailure, Mutation, call, load, numpy, run
from tutorial.expect import BTC, expect_close, expect_shape, where

rng = np.random.default_rng(3)
# [2, 8, 768] activations, each row with its own mean and spread, as a residual stream has
X = (rng.standard_normal((2, 8, 768)) * rng.uniform(0.5, 3, (2, 8, 1)) + rng.uniform(-1, 1, (2, 8, 1))).astype("f4")
# rows whose variance (~1e-6) is below GPT-2's eps (1e-5): here epsilon decides the output
LOW = (rng.standard_normal((2, 8, 768)) * rng.uniform(5e-4, 2e-3, (2, 8, 1))).astype(np.float32)


def normalized(x, eps):
    return (x - x.mean(-1, keepdims=True)) / np.sqrt(x.var(-1, keepdims=True) + eps)


def mistakes(got, x, eps, w, b):
    """What common mistakes output on x, by what a reviewer says about each. One is another epsilon,
    solved from the rows' spread: (got - b) / w = (x - mean) / sqrt(var + eps)."""
    x, n = x.astype(np.float64), normalized(x.astype(np.float64), eps)
    with np.errstate(all="ignore"):
        seen = float(np.median(x.var(-1) / ((got - b) / w).var(-1) - x.var(-1)))
        shown = [f"{e:.1e}".replace(".0e", "e") for e in (seen, eps)]  # 1e-06, 1.2e-05: two digits when needed
        return {
            "Weight and bias are swapped: gamma=self.weight, beta=self.bias": n * b + w,
            "The bias is not added: pass beta=self.bias": n * w,
            "The weight is not applied: pass gamma=self.weight": n + b,
            "x is scaled and shifted but not normalized: call F.layer_norm": x * w + b,
            f"Normalized as if eps={shown[0]}, not {shown[1]}: pass epsilon=self.eps": normalized(x, seen) * w + b,
        }


def layer_norm(step, config, ref, x, eps):
    """The learner's LayerNorm(n_embd, eps=eps) with HF's ln_1 weight and bias, on x."""
    module = call(lambda: step.LayerNorm(config.n_embd, eps=eps), what=f"LayerNorm(n_embd, eps={eps:g})")
    load(module, ref.state("transformer.h.0.ln_1."), what=f"loading HF's ln_1 weight and bias{where(1)}")
    return run(module, x, what="LayerNorm(x)")


def expect_ln_1(step, config, ref, x, what, hint, scale=1):
    """The learner's LayerNorm with HF's eps * scale² on x equals HF's ln_1 on x / scale (the same LayerNorm)."""
    eps = config.layer_norm_epsilon * scale**2
    got = layer_norm(step, config, ref, x, eps)
    want = ref.compute(lambda hf, x: hf.transformer.h[0].ln_1(x), x / np.float32(scale))
    expect_shape(got, x.shape, what, todo=2, hint=hint)
    w, b = (ref.weight(f"transformer.h.0.ln_1.{name}") for name in ("weight", "bias"))
    expect_close(got, want, what, axes=BTC, todo=2, hint=hint, mistakes=mistakes(got, x, eps, w, b))


def test_weight_starts_at_ones_and_bias_at_zeros(step):
    from max.experimental.tensor import Tensor

    module = call(step.LayerNorm, 16, what="LayerNorm(16)")
    for name, fill, word in (("weight", 1.0, "ones"), ("bias", 0.0, "zeros")):
        if not isinstance(value := getattr(module, name, None), Tensor):
            raise CheckFailure(f"LayerNorm(16).{name} is {value!r:.40}, expected a Tensor of 16 {word}{where(1)}")
        got = numpy(value, f"LayerNorm(16).{name}")
        expect_shape(got, (16,), f"LayerNorm(16).{name}", todo=1, hint="One value per feature: [dim] = [16]")
        if not np.all(got == fill):
            said = f"expected {word}: an untrained LayerNorm must change nothing"
            raise CheckFailure(f"LayerNorm(16).{name} starts as {got[:3].tolist()}..., {said}{where(1)}")


def test_output_has_the_input_shape(step, config, ref):
    got = layer_norm(step, config, ref, X, config.layer_norm_epsilon)
    expect_shape(got, X.shape, "LayerNorm of [2, 8, 768] activations", todo=2, hint="Normalize over the last axis only")


def test_matches_hf_on_typical_activations(step, config, ref):
    expect_ln_1(step, config, ref, X, "LayerNorm", "F.layer_norm(x, gamma=..., beta=..., epsilon=...)")


def test_low_variance_rows_match_hf(step, config, ref):
    """Rows with variance below eps: a wrong or missing epsilon shows only here."""
    what = f"LayerNorm on rows of variance ~1e-6 (below eps={config.layer_norm_epsilon:g})"
    expect_ln_1(step, config, ref, LOW, what, "Is epsilon=self.eps passed to F.layer_norm?")


def test_uses_the_eps_it_is_given(step, config, ref):
    what = f"LayerNorm(n_embd, eps={100 * config.layer_norm_epsilon:g})"
    expect_ln_1(step, config, ref, LOW, what, "Use the eps the constructor was given: epsilon=self.eps", scale=10)


INIT, TYPICAL = "test_weight_starts_at_ones_and_bias_at_zeros", "test_matches_hf_on_typical_activations"
LOW_ROWS, GIVEN_EPS = "test_low_variance_rows_match_hf", "test_uses_the_eps_it_is_given"
MUTATIONS = [
    Mutation("weight starts at zeros", "Tensor.ones([dim])", "Tensor.zeros([dim])", INIT, "expected ones"),
    Mutation("size hard-coded to 768", "Tensor.zeros([dim])", "Tensor.zeros([768])", INIT, "[dim] = [16]"),
    Mutation("weight and bias swapped", "weight, beta=self.bias", "bias, beta=self.weight", TYPICAL, "swapped"),
    Mutation("bias not added", "beta=self.bias", "beta=self.bias * 0", TYPICAL, "bias is not added"),
    Mutation("eps hard-coded to 1e-6", "epsilon=self.eps", "epsilon=1e-6", LOW_ROWS, "as if eps=1e-06, not 1e-05"),
    Mutation("eps ignored (always 1e-5)", "epsilon=self.eps", "epsilon=1e-5", GIVEN_EPS, "as if eps=1e-05, not 1e-03"),
]
