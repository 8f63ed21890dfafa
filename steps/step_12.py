"""Step 12: text generation.

GPT-2 writes one token at a time: run the model on every token so far, turn
the last position's logits into a choice, append it, and go again. Greedy
decoding takes the most likely token. Sampling draws one, after temperature
sharpens or flattens the distribution and top-k cuts off its unlikely tail;
a seeded numpy Generator makes the draws, so a seed reproduces a text.

Tasks:
  1. Compile the model once, for int64 ids of any [batch, seq] shape.
  2. Run the compiled model on numpy ids; return the last position's logits as numpy.
  3. Turn logits into probabilities, with temperature and top-k.
  4. Pick the next token: the argmax when greedy, else a draw from rng.
  5. Generate: yield picked tokens until max_new_tokens or EOS.

Check your work: pixi run s12
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np
from max import driver
from max.driver import CPU, Device
from max.dtype import DType
from max.experimental.tensor import Tensor
from max.graph import DeviceRef, TensorType
from max.nn.module_v3 import Module

from solutions.solution_11 import MaxGPT2LMHeadModel


@dataclass(frozen=True)
class Sampling:
    """How each token is chosen: greedy, or a seeded draw after temperature, top-k."""

    greedy: bool = True
    temperature: float = 1.0
    top_k: int | None = None  # None: the whole vocabulary
    seed: int = 0


class LastLogits(Module):
    """Your step-11 model, keeping only the last position: the next token's logits."""

    def __init__(self, model: MaxGPT2LMHeadModel):
        self.model = model

    def __call__(self, input_ids: Tensor) -> Tensor:
        # inside the graph: only [B, vocab_size] comes back to the host,
        # not [B, T, vocab_size]
        return self.model(input_ids)[:, -1]


def compile_model(
    model: MaxGPT2LMHeadModel, device: Device
) -> Callable[[Tensor], Tensor]:
    """One graph for every prompt length: a new shape would mean a new compile."""
    # TODO 1: compile LastLogits(model) for int64 ids of symbolic shape
    #   ["batch", "seq"] on device.
    return None


def next_logits(
    compiled: Callable[[Tensor], Tensor], ids: np.ndarray, device: Device
) -> np.ndarray:
    """[B, T] int64 ids -> [B, vocab_size] logits of the last position, as numpy."""
    # TODO 2: move ids to device as a Tensor, run compiled on it, return its
    #   logits as a numpy array.
    return None


def probabilities(
    logits: np.ndarray, temperature: float = 1.0, top_k: int | None = None
) -> np.ndarray:
    """[vocab] logits -> [vocab] probabilities after temperature and top-k."""
    # TODO 3: divide by temperature, keep only the top_k highest (None: all), softmax.
    return None


def pick(logits: np.ndarray, sampling: Sampling, rng: np.random.Generator) -> int:
    """The next token id from one position's [vocab] logits."""
    # TODO 4: greedy: the highest logit; otherwise draw from probabilities(...)
    #   with rng.
    return None


def generate(
    compiled: Callable[[Tensor], Tensor],
    prompt: list[int],
    max_new_tokens: int,
    sampling: Sampling,
    *,
    device: Device,
    eos_id: int | None = None,
) -> Iterator[int]:
    """Yield up to max_new_tokens new ids, one at a time; stop after yielding EOS."""
    # TODO 5: seed a Generator; per step pick from the last logits, yield it,
    #   stop after EOS, append.
    return None
