"""Step 04: GPT2MLP matches HF's transformer.h[0].mlp: c_fc, tanh GELU, c_proj."""

import math
import re

import numpy as np

from solutions.solution_11 import hf_to_max
from tutorial.checks import CheckFailure, Mutation, call, close, load, run, shape_is, todo, tolerance

rng = np.random.default_rng(4)
X = rng.standard_normal((2, 8, 768)).astype(np.float32)  # [2, 8, n_embd] activations
# pre-activations from -6 to 6: tanh and exact GELU differ by up to 4.7e-4 near ±2.7, 4.7x the CPU tolerance
Z = np.linspace(-6, 6, X.size, dtype=np.float32).reshape(X.shape)


def mlp(step, config, intermediate_size):
    return call(step.GPT2MLP, intermediate_size, config, what=f"GPT2MLP({intermediate_size}, config)")


def hf_mlp(step, config, ref):
    """The learner's GPT2MLP(4 * n_embd) with HF's block-0 MLP weights (Conv1D transposed)."""
    module = mlp(step, config, 4 * config.n_embd)
    load(module, hf_to_max(ref.state("transformer.h.0.mlp.")), what=f"loading HF's mlp weights ({todo(1)})")
    return module


def forward(module, x):
    """module(x) as numpy; a matmul that gets the wrong width says which layer goes first."""
    try:
        return run(module, x, what="GPT2MLP(x) on x of shape [2, 8, n_embd]")
    except CheckFailure as failure:
        found = re.search(r"lhs \(shape (\[.*?\])\).*rhs \(shape (\[.*?\])\)", str(failure.__cause__ or ""))
        if not found:
            raise
        raise CheckFailure(
            f"{str(failure).rstrip(':')}: a Linear got input {found[1]} but its weight needs width {found[2].split(',')[0][1:]}. "
            f"c_fc takes x (n_embd wide) first, c_proj takes the activated h (intermediate_size wide) last ({todo(2)})"
        ) from None


def erf_gelu(x):
    return 0.5 * x * (1 + np.vectorize(math.erf)(x / math.sqrt(2)))


# what a learner's activation turns out to be, and what to say about it
ACTIVATIONS = {
    'exact (erf) GELU, F.gelu\'s default: GPT-2 was trained with the tanh approximation, pass approximate="tanh"': erf_gelu,
    "ReLU: GPT-2 uses GELU (tanh approximation)": lambda x: np.maximum(x, 0),
    'the identity (no activation): apply F.gelu(h, approximate="tanh") between c_fc and c_proj': lambda x: x,
}


def test_layers_are_linear_with_hf_shapes(step, config):
    from max.nn.module_v3 import Linear

    inner = 2 * config.n_embd  # not 4 * n_embd: the size must come from the argument
    module = mlp(step, config, inner)
    want = {"c_fc": [inner, config.n_embd], "c_proj": [config.n_embd, inner]}
    layers = {name: getattr(module, name, None) for name in want}
    for name, layer in layers.items():
        if not isinstance(layer, Linear):
            raise CheckFailure(f"self.{name} is {layer!r:.40}, expected a max.nn.module_v3.Linear ({todo(1)})")
    got = {name: [int(d) for d in layer.weight.shape] for name, layer in layers.items()}
    if got == {"c_fc": want["c_proj"], "c_proj": want["c_fc"]}:
        raise CheckFailure(
            f"c_fc and c_proj are swapped: c_fc must widen n_embd -> intermediate_size, c_proj narrow back; Linear(in_dim, out_dim) ({todo(1)})"
        )
    for name, shape in got.items():
        if shape != want[name]:
            which = "[intermediate_size, n_embd]" if name == "c_fc" else "[n_embd, intermediate_size]"
            raise CheckFailure(
                f"GPT2MLP({inner}, config).{name} has weight shape {shape}, expected {which} = {want[name]} "
                f"(a Linear stores [out_dim, in_dim]; intermediate_size is the argument, not always 4 * n_embd) ({todo(1)})"
            )
        if isinstance(layers[name].bias, int):
            raise CheckFailure(f"self.{name} has no bias, HF's has one: keep Linear's default bias=True ({todo(1)})")


def test_output_is_batch_by_seq_by_n_embd(step, config, ref):
    out = forward(hf_mlp(step, config, ref), X)
    shape_is(
        out,
        X.shape,
        "GPT2MLP of [2, 8, 768] activations",
        hint=f"c_fc widens to 3072, c_proj brings it back to 768 ({todo(2)})",
    )


def test_activation_is_tanh_gelu(step, config, ref):
    """With identity c_fc and c_proj the MLP is its activation alone: compare it on -6..6."""
    n = config.n_embd
    module = mlp(step, config, n)
    eye, zero = np.eye(n, dtype=np.float32), np.zeros(n, dtype=np.float32)
    state = {"c_fc.weight": eye, "c_fc.bias": zero, "c_proj.weight": eye, "c_proj.bias": zero}
    load(module, state, what=f"loading identity weights into GPT2MLP(n_embd, config) ({todo(1)})")
    got = run(module, Z, what="GPT2MLP(x) with identity c_fc and c_proj")
    want = ref.compute(lambda hf, z: hf.transformer.h[0].mlp.act(z), Z)  # HF's NewGELUActivation
    shape_is(got, want.shape, "the activation", hint=f"({todo(2)})")
    tol = tolerance()
    bad = ~np.isclose(got, want, atol=tol.atol, rtol=tol.rtol)
    if not bad.any():
        return
    at = np.unravel_index(np.argmax(np.where(bad, np.abs(got - want), -1)), got.shape)
    z = Z.astype(np.float64)
    seen = next((say for say, f in ACTIVATIONS.items() if np.allclose(got, f(z), atol=tol.atol, rtol=tol.rtol)), None)
    raise CheckFailure(
        f"the activation between c_fc and c_proj differs from HF's tanh GELU at pre-activation {Z[at]:.2f}: "
        f"got {got[at]:.5g}, expected {want[at]:.5g} (max |Δ| {np.abs(got - want).max():.2g}; {tol}). "
        + (f"It is {seen}" if seen else 'Use F.gelu(h, approximate="tanh")')
        + f" ({todo(2)})"
    )


def test_matches_hf_mlp(step, config, ref):
    module = hf_mlp(step, config, ref)
    out = forward(module, X)
    want = ref.compute(lambda hf, x: hf.transformer.h[0].mlp(x), X)
    try:
        close(out, want, "GPT2MLP", axes=("batch", "position", "feature"))
    except CheckFailure as failure:
        # report the first sub-layer that leaves HF: c_fc, then what follows it
        h = run(module.c_fc, X, what="self.c_fc(x)")
        hf_h = ref.compute(lambda hf, x: hf.transformer.h[0].mlp.c_fc(x), X)
        close(h, hf_h, "mlp.c_fc", hint=f"({todo(1)})", axes=("batch", "position", "feature"))
        w, b = (
            ref.weight("transformer.h.0.mlp.c_proj.weight"),
            ref.weight("transformer.h.0.mlp.c_proj.bias"),
        )  # Conv1D: [in, out]
        tol, h = tolerance(), hf_h.astype(np.float64)
        seen = next(
            (say for say, f in ACTIVATIONS.items() if np.allclose(out, f(h) @ w + b, atol=tol.atol, rtol=tol.rtol)),
            None,
        )
        raise CheckFailure(
            f"{failure}. mlp.c_fc agrees with HF, so the activation or c_proj does not: "
            + (f"the activation is {seen}" if seen else 'c_proj(F.gelu(h, approximate="tanh"))')
            + f" ({todo(2)})"
        ) from None


MUTATIONS = [
    Mutation(
        "exact GELU (F.gelu's default)",
        'F.gelu(h, approximate="tanh")',
        "F.gelu(h)",
        "test_activation_is_tanh_gelu",
        'approximate="tanh"',
    ),
    Mutation(
        'approximate="none"',
        'approximate="tanh"',
        'approximate="none"',
        "test_activation_is_tanh_gelu",
        "exact (erf) GELU",
    ),
    Mutation(
        "ReLU instead of GELU", 'F.gelu(h, approximate="tanh")', "F.relu(h)", "test_activation_is_tanh_gelu", "ReLU"
    ),
    Mutation(
        "activation forgotten",
        'h = F.gelu(h, approximate="tanh")',
        "h = h",
        "test_activation_is_tanh_gelu",
        "the identity (no activation)",
    ),
    Mutation(
        "c_fc and c_proj swapped",
        "self.c_fc = Linear(config.n_embd, intermediate_size)\n        self.c_proj = Linear(intermediate_size, config.n_embd)",
        "self.c_fc = Linear(intermediate_size, config.n_embd)\n        self.c_proj = Linear(config.n_embd, intermediate_size)",
        "test_layers_are_linear_with_hf_shapes",
        "swapped",
    ),
    Mutation(
        "c_proj applied first",
        "h = self.c_fc(x)",
        "h = self.c_proj(x)",
        "test_matches_hf_mlp",
        "c_fc takes x (n_embd wide) first",
    ),
    Mutation(
        "4 * n_embd hard-coded",
        "Linear(config.n_embd, intermediate_size)",
        "Linear(config.n_embd, 4 * config.n_embd)",
        "test_layers_are_linear_with_hf_shapes",
        "intermediate_size is the argument",
    ),
    Mutation(
        "no bias",
        "Linear(intermediate_size, config.n_embd)",
        "Linear(intermediate_size, config.n_embd, bias=False)",
        "test_layers_are_linear_with_hf_shapes",
        "no bias",
    ),
]
