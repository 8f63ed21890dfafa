"""HF GPT-2 weights into the course's MAX modules: the harness's own conversion and loader.

Step 11 teaches the learner the same conversion (`hf_to_max`, `load_weights`). The harness keeps its
own, so that checking step 04 never runs the learner's step 11, and the step-11 checks have something
of the harness's to compare the learner's loader with.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from tutorial.explain import CheckFailure

# HF's Conv1D layers (attn.c_attn, attn.c_proj, mlp.c_fc, mlp.c_proj) store their weight [in, out];
# a Linear's is [out, in]. Matched by layer name alone: a check loads one sub-layer's weights with
# its prefix removed ("c_fc.weight"), and no other GPT-2 layer has these names.
CONV1D_WEIGHTS = ("c_attn.weight", "c_proj.weight", "c_fc.weight")

# causal-mask buffers some HF checkpoints carry; they are not parameters
MASK_BUFFERS = (".attn.bias", ".attn.masked_bias")


def is_conv1d(key: str) -> bool:
    return key in CONV1D_WEIGHTS or key.endswith(tuple(f".{name}" for name in CONV1D_WEIGHTS))


# Bump when hf_to_max's output changes: the stored max-layout weights (tutorial/reference.py) are keyed on it.
CONVERSION = 1


def hf_to_max(state: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """HF GPT-2 tensors -> the MAX modules' layout: mask buffers dropped, Conv1D weights transposed,
    everything float32 and contiguous. An array already in that form is passed on, not copied."""
    out = {}
    for key, value in state.items():
        if key.endswith(MASK_BUFFERS):
            continue
        value = np.asarray(value, dtype=np.float32)
        out[key] = np.ascontiguousarray(value.T if is_conv1d(key) else value)
    return out


def checkpoint_to_max(state: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """A whole GPT-2 checkpoint -> MaxGPT2LMHeadModel's state dict: what step 11's hf_to_max must give.

    Takes the hub's layout (GPT2Model's bare names, "h.0.attn.c_attn.weight", with "h.N.attn.bias"
    buffers) or GPT2LMHeadModel's state dict ("transformer." names, with or without "lm_head.weight").
    The head is tied: without its own tensor, lm_head.weight holds wte's table."""
    named = {k if k.startswith(("transformer.", "lm_head.")) else f"transformer.{k}": v for k, v in state.items()}
    out = hf_to_max(named)
    if "transformer.wte.weight" in out:
        out.setdefault("lm_head.weight", out["transformer.wte.weight"])
    return out


def load(module, state: Mapping[str, np.ndarray], what: str) -> None:
    """Load weights already in MAX layout by name; a mismatch is a CheckFailure naming the key.

    module_v3's `load_state_dict` rejects missing and unexpected keys, but not a wrong shape: every
    shape is checked first, and the message names the key and both shapes.
    """
    params = dict(module.parameters)
    if missing := sorted(params.keys() - state.keys()):
        raise CheckFailure(f"{what}: missing weight '{missing[0]}' ({len(missing)} missing in all)")
    if unexpected := sorted(state.keys() - params.keys()):
        raise CheckFailure(f"{what}: unexpected weight '{unexpected[0]}': the model has no such parameter")
    for key, param in params.items():
        want, got = tuple(int(d) for d in param.shape), tuple(state[key].shape)
        if want != got:
            raise CheckFailure(f"{what}: weight '{key}' has shape {list(got)}, the model expects {list(want)}")
    module.load_state_dict(state)
