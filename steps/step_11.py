"""Step 11: the language-model head, and loading HF's weights.

The head turns each position's final vector into one score (logit) per
vocabulary token. GPT-2 reuses the token table for this (`lm_head` is tied
to `wte`): a token scores high when its embedding points the same way as
the model's output.

HF's checkpoint is not laid out as this model is: hf_to_max converts it.

Tasks:
  1. Create `transformer` (the step-10 GPT2Model) and `lm_head` (no bias).
  2. __call__: the body, then the head: [B, T] ids -> [B, T, vocab_size] logits.
  3. hf_to_max: keep only parameters, under this model's names.
  4. hf_to_max: transpose the weights HF stores as Conv1D, [in, out].
  5. hf_to_max: the head, tied to the token table.

Check your work: pixi run s11
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np
from max.experimental.tensor import Tensor
from max.nn.module_v3 import Linear, Module

from solutions.solution_01 import GPT2Config
from solutions.solution_10 import GPT2Model


class MaxGPT2LMHeadModel(Module):
    """GPT2Model plus a vocabulary projection, named as HF's GPT2LMHeadModel."""

    def __init__(self, config: GPT2Config):
        # TODO 1: create self.transformer (the step-10 body) and self.lm_head
        #   (n_embd -> vocab_size, no bias).
        self.transformer = None
        self.lm_head = None

    def __call__(self, input_ids: Tensor, position_ids: Tensor | None = None) -> Tensor:
        # TODO 2: the body (with the position_ids), then the head:
        #   [B, T] -> [B, T, vocab_size].
        return None


class WeightError(ValueError):
    """A checkpoint that does not fit the model: the message names the key."""


def hf_to_max(state: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """HF GPT-2 tensors -> this model's state dict, in MAX's layout (float32).

    `state` is the hub's checkpoint, named as HF's GPT2Model ("h.0.ln_1.weight",
    with the causal-mask buffers "h.0.attn.bias"), or the state dict of HF's
    GPT2LMHeadModel ("transformer.h.0.ln_1.weight").
    """
    out = {}
    for key, value in state.items():
        # TODO 3: skip HF's causal-mask buffers (attn.bias, attn.masked_bias: not
        #   parameters), and name the body's keys as this model does.

        # TODO 4: transpose exactly the weights HF stores as Conv1D, [in, out].
        out[key] = np.ascontiguousarray(value, dtype=np.float32)

    # TODO 5: the head: lm_head.weight, tied to the token table.
    return out


def load_weights(module: Module, state: Mapping[str, np.ndarray]) -> None:
    """Load by name after checking the key set and every shape.

    load_state_dict rejects missing and unexpected keys, but not a wrong shape.
    """
    params = dict(module.parameters)
    if missing := sorted(params.keys() - state.keys()):
        raise WeightError(
            f"missing weight '{missing[0]}' ({len(missing)} missing in all)"
        )
    if unexpected := sorted(state.keys() - params.keys()):
        raise WeightError(
            f"unexpected weight '{unexpected[0]}': the model has no such parameter"
        )
    for key, param in params.items():
        want, got = tuple(int(d) for d in param.shape), tuple(state[key].shape)
        if want != got:
            raise WeightError(
                f"weight '{key}' has shape {list(got)}, the model expects {list(want)}"
            )
    module.load_state_dict(state)


def read_checkpoint(path: Path) -> dict[str, np.ndarray]:
    """The tensors of a save_pretrained directory.

    It holds model.safetensors or pytorch_model.bin.
    """
    path = Path(path)
    if (path / "model.safetensors").exists():
        from safetensors import SafetensorError
        from safetensors.numpy import load_file

        try:
            return load_file(str(path / "model.safetensors"))
        except SafetensorError as error:
            raise WeightError(
                f"{path / 'model.safetensors'} is not a safetensors checkpoint: {error}"
            ) from None
    if (path / "pytorch_model.bin").exists():
        import torch

        state = torch.load(
            path / "pytorch_model.bin", map_location="cpu", weights_only=True
        )
        return {k: v.float().numpy() for k, v in state.items()}
    raise WeightError(f"{path} has neither model.safetensors nor pytorch_model.bin")


def load_gpt2(
    model: MaxGPT2LMHeadModel, source: Mapping[str, np.ndarray] | Path
) -> None:
    """Load HF's GPT-2 tensors, or a checkpoint directory, into `model`."""
    state = read_checkpoint(source) if isinstance(source, (str, Path)) else source
    load_weights(model, hf_to_max(state))
