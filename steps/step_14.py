"""Step 14: quantization, past the fp32 read floor.

A decode step reads every weight once to make one token: 124M float32
weights are about 0.5 GB per token, so memory bandwidth, not arithmetic,
sets the speed. The only way past that floor is to read fewer bytes.
GGML's Q4_0 format stores each run of 32 weights as one fp16 scale and 32
4-bit codes: 18 bytes instead of 128, 7.1 times fewer. MAX 25.7 has CPU
kernels that multiply by such blocks directly (ops.qmatmul).

Nothing is written twice: your step-11 model is built and loaded as before,
then its Linears are swapped for quantized ones. Step 13's KV-cache loop
runs the quantized model unchanged.

Tasks:
  1. quantize_q4_0: float32 [N, K] -> GGML's Q4_0 bytes, [N, K / 32 * 18] uint8.
  2. QuantizedLinear: multiply by the packed weight with MAX's Q4_0 kernel.
  3. quantize_model: swap every Linear for a QuantizedLinear, rows padded to 32.

Check your work: pixi run s14
"""

from __future__ import annotations

import numpy as np
from max.experimental import functional as F
from max.experimental.tensor import Tensor
from max.graph import ops
from max.graph.quantization import QuantizationEncoding
from max.nn.module_v3 import Linear, Module

from solutions.solution_11 import MaxGPT2LMHeadModel

BLOCK = 32  # weights per Q4_0 block, along the input (K) axis
BLOCK_BYTES = 18  # per block: an fp16 scale (2 bytes), then 32 4-bit codes (16 bytes)
# MAX's Q4_0 matmul on Tensors: (encoding, None, x [M, K], packed [N, _]) -> [M, N]
qmatmul = F.functional(ops.qmatmul)


def quantize_q4_0(w: np.ndarray) -> np.ndarray:
    """[N, K] float32, K a multiple of 32 -> [N, K // 32 * 18] uint8, GGML's layout."""
    n, k = w.shape
    # TODO 1: w as Q4_0 blocks of 32 along each row: per block, its fp16 scale
    #   (2 bytes), then its 32 4-bit codes packed two per byte (16 bytes), laid
    #   out as the chapter's "The Q4_0 block format" shows: [N, K / 32 * 18] uint8.
    return None


class QuantizedLinear(Module):
    """A Linear whose weight is Q4_0 blocks, computed by MAX's CPU kernel."""

    def __init__(self, packed: np.ndarray, bias: np.ndarray | None, out_dim: int):
        self.weight = Tensor.from_dlpack(packed)  # [N, K / 32 * 18] uint8, N >= out_dim
        self.bias = None if bias is None else Tensor.from_dlpack(bias)  # [out_dim]
        self.out_dim = out_dim  # rows past it are padding

    def __call__(self, x: Tensor) -> Tensor:
        rows = x.reshape([-1, x.shape[-1]])  # [B * T, K]
        # TODO 2: multiply by the Q4_0 weight with MAX's kernel, keep the first
        #   out_dim outputs (the rest are padding), then add the bias if there is one.
        y = None  # [B * T, out_dim]
        return y.reshape([*x.shape[:-1], self.out_dim])


def quantize_model(model: MaxGPT2LMHeadModel) -> MaxGPT2LMHeadModel:
    """Every Linear of the model becomes a QuantizedLinear, in place.

    c_attn, attn.c_proj, c_fc, mlp.c_proj and lm_head; wte and wpe stay float32.
    """
    owners = [model, *(module for _, module in model.descendants)]
    for owner in owners:
        for name, layer in list(owner.children):
            if not isinstance(layer, Linear):
                continue
            # TODO 3: quantize layer.weight ([N, K] float32) padded with zero rows to a
            #   multiple of 32 (the kernel's N), and set a QuantizedLinear in its place,
            #   with the layer's bias (bias=False leaves the int 0: pass None) and N.
            pass
    return model
