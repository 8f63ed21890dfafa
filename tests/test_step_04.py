"""Step 04: GPT2MLP matches HF's transformer.h[0].mlp: c_fc, tanh GELU, c_proj."""

import math

import numpy as np

from tutorial.checks import CheckFailure, Mutation, call, load, run
from tutorial.expect import BTC, agrees, expect_close, expect_linear, expect_shape
from tutorial.weights import hf_to_max
from tutorial.explain import todo_place

rng = np.random.default_rng(4)
X = rng.standard_normal((2, 8, 768)).astype(np.float32)  # [2, 8, n_embd] activations
# pre-activations from -6 to 6: tanh and exact GELU differ by up to 4.7e-4 near ±2.7, 4.7x the CPU tolerance
Z = np.linspace(-6, 6, X.size, dtype=np.float32).reshape(X.shape)
ACTIVATIONS = {  # what a learner's activation turns out to be, and what to say about it
    'exact (erf) GELU, F.gelu\'s default: GPT-2 was trained with the tanh approximation, pass approximate="tanh"': (
        lambda x: 0.5 * x * (1 + np.vectorize(math.erf)(x / math.sqrt(2)))
    ),
    "ReLU: GPT-2 uses GELU (tanh approximation)": lambda x: np.maximum(x, 0),
    'the identity (no activation): apply F.gelu(h, approximate="tanh") between c_fc and c_proj': lambda x: x,
}


def mlp(step, config, intermediate_size, state=None):
    """The learner's GPT2MLP(intermediate_size, config), with `state` loaded into it."""
    module = call(step.GPT2MLP, intermediate_size, config, what=f"GPT2MLP({intermediate_size}, config)")
    if state:
        load(module, state, what=f"loading weights into GPT2MLP ({todo_place(1)})")
    return module


def hf_mlp(step, config, ref):
    """The learner's GPT2MLP(4 * n_embd) with HF's weights, and its output on X."""
    module = mlp(step, config, 4 * config.n_embd, hf_to_max(ref.state("transformer.h.0.mlp.")))
    try:
        return module, run(module, X, what="GPT2MLP(x) on x of shape [2, 8, n_embd]")
    except CheckFailure as failure:
        if "Matrix multiplication input lhs" not in str(failure):
            raise
        said = "c_fc takes x (n_embd wide) first, c_proj takes the activated h (intermediate_size wide) last"
        raise CheckFailure(f"{failure}. {said} ({todo_place(2)})") from None


def test_layers_are_linear_with_hf_shapes(step, config):
    from max.nn.module_v3 import Linear

    n, inner = config.n_embd, 2 * config.n_embd  # not 4 * n_embd: the size must come from the argument
    module = mlp(step, config, inner)
    if isinstance(c_fc := getattr(module, "c_fc", None), Linear) and [int(d) for d in c_fc.weight.shape] == [n, inner]:
        said = "c_fc must widen n_embd -> intermediate_size, c_proj narrow back; Linear(in_dim, out_dim)"
        raise CheckFailure(f"c_fc and c_proj are swapped: {said} ({todo_place(1)})")
    said = "a Linear stores [out_dim, in_dim]; intermediate_size is the argument, not always 4 * n_embd"
    expect_linear(module, "c_fc", in_=n, out=inner, bias=True, todo=1, hint=said)
    expect_linear(module, "c_proj", in_=inner, out=n, bias=True, todo=1, hint=said)


def test_output_is_batch_by_seq_by_n_embd(step, config, ref):
    hint = "c_fc widens to 3072, c_proj brings it back to 768"
    expect_shape(hf_mlp(step, config, ref)[1], X.shape, "GPT2MLP of [2, 8, 768] activations", todo=2, hint=hint)


def test_activation_is_tanh_gelu(step, config, ref):
    """With identity c_fc and c_proj the MLP is its activation alone: compare it on -6..6."""
    eye, zero = np.eye(config.n_embd, dtype=np.float32), np.zeros(config.n_embd, dtype=np.float32)
    state = {"c_fc.weight": eye, "c_fc.bias": zero, "c_proj.weight": eye, "c_proj.bias": zero}
    got = run(mlp(step, config, config.n_embd, state), Z, what="GPT2MLP(x) with identity c_fc and c_proj")
    want = ref.compute(lambda hf, z: hf.transformer.h[0].mlp.act(z), Z)  # HF's NewGELUActivation
    said = {f"It is {say}": f(Z.astype(np.float64)) for say, f in ACTIVATIONS.items()}
    what, hint = "the activation between c_fc and c_proj, on -6..6,", 'Use F.gelu(h, approximate="tanh")'
    expect_close(got, want, what, todo=2, hint=hint, mistakes=said)


def test_matches_hf_mlp(step, config, ref):
    (module, out), want = hf_mlp(step, config, ref), ref.compute(lambda hf, x: hf.transformer.h[0].mlp(x), X)
    if agrees(out, want):
        return
    # the first sub-layer that leaves HF: c_fc, then what follows it
    h = ref.compute(lambda hf, x: hf.transformer.h[0].mlp.c_fc(x), X)
    expect_close(run(module.c_fc, X, what="self.c_fc(x)"), h, "mlp.c_fc", axes=BTC, todo=1)
    w, b = (ref.weight(f"transformer.h.0.mlp.c_proj.{name}") for name in ("weight", "bias"))  # Conv1D: [in, out]
    said = {f"the activation is {say}": f(h.astype(np.float64)) @ w + b for say, f in ACTIVATIONS.items()}
    what, hint = "GPT2MLP, though mlp.c_fc agrees with HF,", 'c_proj(F.gelu(h, approximate="tanh"))'
    expect_close(out, want, what, axes=BTC, todo=2, hint=hint, mistakes=said)


FC, PROJ = "(config.n_embd, intermediate_size)", "(intermediate_size, config.n_embd)"  # c_fc's and c_proj's sizes
ORDER, SWAPPED = f"{FC}\n        self.c_proj = Linear{PROJ}", f"{PROJ}\n        self.c_proj = Linear{FC}"
GELU, WHOLE = 'F.gelu(h, approximate="tanh")', test_matches_hf_mlp
LAYERS, ACTIVATION = test_layers_are_linear_with_hf_shapes, test_activation_is_tanh_gelu
MUTATIONS = [
    Mutation("c_fc and c_proj swapped", ORDER, SWAPPED, LAYERS, "swapped"),
    Mutation("4 * n_embd", FC, "(config.n_embd, 4 * config.n_embd)", LAYERS, "intermediate_size is the argument"),
    Mutation("no bias", PROJ, "(intermediate_size, config.n_embd, bias=False)", LAYERS, "no bias"),
    Mutation("exact GELU (F.gelu's default)", GELU, "F.gelu(h)", ACTIVATION, 'approximate="tanh"'),
    Mutation('approximate="none"', 'approximate="tanh"', 'approximate="none"', ACTIVATION, "exact (erf) GELU"),
    Mutation("ReLU instead of GELU", GELU, "F.relu(h)", ACTIVATION, "ReLU"),
    Mutation("activation forgotten", f"h = {GELU}", "h = h", ACTIVATION, "the identity (no activation)"),
    Mutation(
        "c_proj applied first", "h = self.c_fc(x)", "h = self.c_proj(x)", WHOLE, "c_fc takes x (n_embd wide) first"
    ),
]
