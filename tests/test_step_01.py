"""Step 01: GPT2Config has HF GPT2Config's fields, types and defaults."""

import dataclasses

import pytest

from tutorial.checks import CheckFailure
from tutorial.reference import hf_config_defaults
from tutorial.explain import todo_place

# The fields the rest of the course reads, and HF's name for each.
FIELDS = ["vocab_size", "n_positions", "n_embd", "n_layer", "n_head", "n_inner", "layer_norm_epsilon"]


def test_is_a_dataclass(step):
    if not dataclasses.is_dataclass(step.GPT2Config):
        raise CheckFailure("GPT2Config is not a @dataclass")
    names = [f.name for f in dataclasses.fields(step.GPT2Config)]
    if missing := [f for f in FIELDS if f not in names]:
        raise CheckFailure(f"GPT2Config has no field {missing[0]!r}: keep HF's names ({todo_place(1)})")


@pytest.mark.parametrize("field", FIELDS)
def test_default_matches_hf(step, field):
    ours, theirs = getattr(step.GPT2Config(), field, None), hf_config_defaults()[field]
    if ours is ... or type(ours) is not type(theirs) or ours != theirs:
        raise CheckFailure(f"{field} defaults to {ours!r}; HF GPT2Config().{field} is {theirs!r} ({todo_place(1)})")


def test_sizes_fit_together(step):
    config = step.GPT2Config()
    if not isinstance(config.n_embd, int) or not isinstance(config.n_head, int) or config.n_embd % config.n_head:
        raise CheckFailure(f"n_embd ({config.n_embd!r}) must split evenly into n_head ({config.n_head!r}) heads")
