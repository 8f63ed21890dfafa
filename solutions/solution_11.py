"""Step 11: the language-model head, and loading HF's weights.

The head turns each position's final vector into one score (logit) per
vocabulary token. GPT-2 reuses the token table for this (`lm_head` is tied
to `wte`): a token scores high when its embedding points the same way as
the model's output.

HF stores four weights per block as Conv1D, [in, out]. A Linear wants
[out, in], so exactly those four are transposed on the way in.

Tasks:
  1. Create `transformer` (the step-10 GPT2Model) and `lm_head` (no bias).
  2. __call__: the body, then the head: [B, T] ids -> [B, T, vocab_size] logits.
  3. Name the HF weights stored as Conv1D, which hf_to_max transposes.

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
        self.transformer = GPT2Model(config)
        self.lm_head = Linear(config.n_embd, config.vocab_size, bias=False)

    def __call__(self, input_ids: Tensor, position_ids: Tensor | None = None) -> Tensor:
        hidden = self.transformer(input_ids, position_ids)  # [B, T, n_embd]
        return self.lm_head(hidden)  # [B, T, vocab_size]


# attn.c_attn, attn.c_proj, mlp.c_fc, mlp.c_proj: HF Conv1D layers, weights [in, out]
CONV1D_WEIGHTS = ("c_attn.weight", "c_proj.weight", "c_fc.weight")

# causal-mask buffers some HF checkpoints carry; they are not parameters
MASK_BUFFERS = (".attn.bias", ".attn.masked_bias")


class WeightError(ValueError):
    """A checkpoint that does not fit the model: the message names the key."""


def hf_to_max(state: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """HF GPT-2 tensors -> this model's layout.

    Drops the mask buffers and transposes the Conv1D weights.
    """
    out = {}
    for key, value in state.items():
        if key.endswith(MASK_BUFFERS):
            continue
        value = np.asarray(value, dtype=np.float32)
        value = value.T if key.endswith(CONV1D_WEIGHTS) else value
        out[key] = np.ascontiguousarray(value)
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
    """Load an HF GPT2LMHeadModel state dict, or a checkpoint directory, into `model`.

    HF stores no lm_head.weight (the head was tied to wte in training): it is
    filled with a copy of transformer.wte.weight here, at load time.
    """
    state = read_checkpoint(source) if isinstance(source, (str, Path)) else dict(source)
    state = {
        # hub files of the bare GPT2Model drop the "transformer." prefix
        k if k.startswith(("transformer.", "lm_head.")) else f"transformer.{k}": v
        for k, v in state.items()
    }
    state = hf_to_max(state)
    if "transformer.wte.weight" in state:
        # tied at load time: lm_head is its own parameter, holding wte's values
        state.setdefault("lm_head.weight", state["transformer.wte.weight"])
    load_weights(model, state)
