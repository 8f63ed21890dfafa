"""Step 03: LayerNorm matches HF's transformer.h[0].ln_1, including its epsilon."""

import numpy as np

from tutorial.checks import CheckFailure, Mutation, call, close, load, numpy, run, shape_is, todo, tolerance

rng = np.random.default_rng(3)
# [2, 8, 768] activations, each row with its own mean and spread, as a residual stream has
X = (rng.standard_normal((2, 8, 768)) * rng.uniform(0.5, 3, (2, 8, 1)) + rng.uniform(-1, 1, (2, 8, 1))).astype(
    np.float32
)
# rows whose variance (~1e-6) is below GPT-2's eps (1e-5): here epsilon decides the output
LOW = (rng.standard_normal((2, 8, 768)) * rng.uniform(5e-4, 2e-3, (2, 8, 1))).astype(np.float32)


def layer_norm(step, config, ref, **kwargs):
    """The learner's LayerNorm(n_embd) with HF's ln_1 weight and bias loaded into it."""
    shown = "".join(f", {k}={v}" for k, v in kwargs.items())
    module = call(lambda: step.LayerNorm(config.n_embd, **kwargs), what=f"LayerNorm(n_embd{shown})")
    load(module, ref.state("transformer.h.0.ln_1."), what=f"loading HF's ln_1 weight and bias ({todo(1)})")
    return module


def normalized(x, eps):
    mean, var = x.mean(-1, keepdims=True), x.var(-1, keepdims=True)
    return (x - mean) / np.sqrt(var + eps)


def reviewer_hint(got, x, ref, eps):
    """What `got` is, when it is a common mistake: a reviewer's guess, checked numerically."""
    w, b = ref.weight("transformer.h.0.ln_1.weight"), ref.weight("transformer.h.0.ln_1.bias")
    tol = tolerance()
    if got.shape != x.shape:
        return None
    x, n = x.astype(np.float64), normalized(x.astype(np.float64), eps)
    guesses = {
        "Weight and bias are swapped: gamma=self.weight, beta=self.bias": n * b + w,
        "The bias is not added: pass beta=self.bias": n * w,
        "The weight is not applied: pass gamma=self.weight": n + b,
        "x is scaled and shifted but not normalized: call F.layer_norm": x * w + b,
    }
    for guess, value in guesses.items():
        if np.allclose(got, value, atol=tol.atol, rtol=tol.rtol):
            return guess
    # a LayerNorm with another epsilon: solve eps from the rows' spread, then confirm it
    with np.errstate(all="ignore"):
        spread, var = ((got - b) / w).var(-1), x.var(-1)  # (got - b) / w = (x - mean) / sqrt(var + eps)
        seen = float(np.median(var / spread - var))
    if (
        np.isfinite(seen)
        and seen > 0
        and np.allclose(got, normalized(x, seen) * w + b, atol=10 * tol.atol, rtol=10 * tol.rtol)
    ):
        shown = [f"{e:.1e}".replace(".0e", "e") for e in (seen, eps)]  # 1e-06, 1.2e-05: two digits when needed
        return f"Your rows are normalized as if eps={shown[0]}, not {shown[1]}: pass epsilon=self.eps to F.layer_norm"
    return None


def test_weight_starts_at_ones_and_bias_at_zeros(step):
    from max.experimental.tensor import Tensor

    module = call(step.LayerNorm, 16, what="LayerNorm(16)")
    for name, fill, word in (("weight", 1.0, "ones"), ("bias", 0.0, "zeros")):
        value = getattr(module, name, None)
        if not isinstance(value, Tensor):
            raise CheckFailure(f"LayerNorm(16).{name} is {value!r:.40}, expected a Tensor of 16 {word} ({todo(1)})")
        got = numpy(value, f"LayerNorm(16).{name}")
        if got.shape != (16,):
            raise CheckFailure(f"LayerNorm(16).{name} has shape {list(got.shape)}, expected [dim] = [16] ({todo(1)})")
        if not np.all(got == fill):
            raise CheckFailure(
                f"LayerNorm(16).{name} starts as {got[:3].tolist()}..., expected {word}: an untrained LayerNorm must change nothing ({todo(1)})"
            )


def test_output_has_the_input_shape(step, config, ref):
    out = run(layer_norm(step, config, ref), X, what="LayerNorm(x)")
    shape_is(
        out, X.shape, "LayerNorm of [2, 8, 768] activations", hint=f"normalize over the last axis only ({todo(2)})"
    )


def test_matches_hf_on_typical_activations(step, config, ref):
    out = run(layer_norm(step, config, ref), X, what="LayerNorm(x)")
    want = ref.compute(lambda hf, x: hf.transformer.h[0].ln_1(x), X)
    guess = reviewer_hint(out, X, ref, config.layer_norm_epsilon) or "F.layer_norm(x, gamma=..., beta=..., epsilon=...)"
    hint = f"{guess} ({todo(2)})"
    close(out, want, "LayerNorm", hint=hint, axes=("batch", "position", "feature"))


def test_low_variance_rows_match_hf(step, config, ref):
    """Rows with variance below eps: a wrong or missing epsilon shows only here."""
    out = run(layer_norm(step, config, ref), LOW, what="LayerNorm(x)")
    want = ref.compute(lambda hf, x: hf.transformer.h[0].ln_1(x), LOW)
    guess = reviewer_hint(out, LOW, ref, config.layer_norm_epsilon) or "Is epsilon=self.eps passed to F.layer_norm?"
    hint = f"{guess} ({todo(2)})"
    close(
        out,
        want,
        "LayerNorm on rows of variance ~1e-6 (below eps=1e-5)",
        hint=hint,
        axes=("batch", "position", "feature"),
    )


def test_uses_the_eps_it_is_given(step, config, ref):
    out = run(layer_norm(step, config, ref, eps=1e-3), LOW, what="LayerNorm(x)")
    # LayerNorm with eps on x equals LayerNorm with eps / 100 on x / 10, so HF's ln_1
    # (eps=1e-5) on x / 10 is exactly LayerNorm(eps=1e-3) on x
    want = ref.compute(lambda hf, x: hf.transformer.h[0].ln_1(x / 10), LOW)
    guess = reviewer_hint(out, LOW, ref, 1e-3) or "Use the eps the constructor was given: epsilon=self.eps"
    hint = f"{guess} ({todo(2)})"
    close(out, want, "LayerNorm(n_embd, eps=1e-3)", hint=hint, axes=("batch", "position", "feature"))


MUTATIONS = [
    Mutation(
        "eps hard-coded to 1e-6",
        "epsilon=self.eps",
        "epsilon=1e-6",
        "test_low_variance_rows_match_hf",
        "as if eps=1e-06, not 1e-05",
    ),
    Mutation(
        "eps ignored (always 1e-5)",
        "epsilon=self.eps",
        "epsilon=1e-5",
        "test_uses_the_eps_it_is_given",
        "as if eps=1e-05, not 1e-03",
    ),
    Mutation(
        "weight and bias swapped",
        "gamma=self.weight, beta=self.bias",
        "gamma=self.bias, beta=self.weight",
        "test_matches_hf_on_typical_activations",
        "swapped",
    ),
    Mutation(
        "bias not added",
        "beta=self.bias",
        "beta=self.bias * 0",
        "test_matches_hf_on_typical_activations",
        "bias is not added",
    ),
    Mutation(
        "weight starts at zeros",
        "self.weight = Tensor.ones([dim])",
        "self.weight = Tensor.zeros([dim])",
        "test_weight_starts_at_ones_and_bias_at_zeros",
        "expected ones",
    ),
    Mutation(
        "size hard-coded to 768",
        "Tensor.zeros([dim])",
        "Tensor.zeros([768])",
        "test_weight_starts_at_ones_and_bias_at_zeros",
        "[dim] = [16]",
    ),
]
