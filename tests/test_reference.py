"""The HF reference: pretrained weights found in the hub cache, and stored outputs keyed on what they read."""

import os
import subprocess
import sys

import numpy as np
import pytest

from tutorial import reference
from tutorial.course import ROOT
from tutorial.reference import SMALL, Reference, code_key

SCALE = 2.0


def scaled(k):
    return lambda hf, x: x * k  # one source for every k


def reads_scale(hf, x):
    return x * SCALE


def calls_reads_scale(hf, x):
    return reads_scale(hf, x) + 1


def test_same_source_different_closed_over_values_different_keys():
    assert code_key(scaled(2.0)) != code_key(scaled(3.0))
    assert code_key(scaled(2.0)) == code_key(scaled(2.0))


def test_closed_over_arrays_count_by_dtype_shape_and_bytes():
    a = np.zeros((2, 3), np.float32)
    assert code_key(scaled(a)) == code_key(scaled(a.copy()))
    assert code_key(scaled(a)) != code_key(scaled(a + 1))  # same shape, other values
    assert code_key(scaled(a)) != code_key(scaled(a.astype(np.float64)))
    assert code_key(scaled(a)) != code_key(scaled(a.reshape(3, 2)))
    big = np.zeros(10_000, np.float32)  # repr would elide the middle
    changed = big.copy()
    changed[5000] = 1
    assert code_key(scaled(big)) != code_key(scaled(changed))


def test_globals_and_the_functions_it_calls_are_in_the_key(monkeypatch):
    before, calling = code_key(reads_scale), code_key(calls_reads_scale)
    monkeypatch.setitem(reads_scale.__globals__, "SCALE", 3.0)
    assert code_key(reads_scale) != before
    assert code_key(calls_reads_scale) != calling  # read by a function it calls


def test_globals_read_inside_a_comprehension_are_in_the_key(monkeypatch):
    def fn(hf, x):
        return [x * SCALE for _ in range(2)]  # SCALE is read by the comprehension's own code

    before = code_key(fn)
    monkeypatch.setitem(fn.__globals__, "SCALE", 3.0)
    assert code_key(fn) != before


class Counting:
    """Stands in for the HF model: counts the computations that were not read from the cache."""

    runs = 0

    def count(self, out):
        self.runs += 1
        return out


def test_compute_misses_on_a_new_closure_value_and_hits_on_the_same(tmp_path, monkeypatch):
    monkeypatch.setattr(reference, "CACHE", tmp_path)
    ref = Reference(SMALL)
    ref.__dict__["hf"] = hf = Counting()  # no transformers model: the test is about the cache
    x = np.ones(3, np.float32)

    def times(k):
        return lambda hf, x: hf.count(x * k)

    assert ref.compute(times(2.0), x).tolist() == [2, 2, 2]
    assert ref.compute(times(3.0), x).tolist() == [3, 3, 3]  # same source: the old key would have read 2s
    assert hf.runs == 2
    assert ref.compute(times(2.0), x).tolist() == [2, 2, 2]
    assert hf.runs == 2, "an identical computation was run again instead of read from the cache"


def test_pretrained_weights_are_found_in_the_hub_cache_or_said_missing(tmp_path):
    """pretrained_file() reads the hub's cache layout (HF_HUB_CACHE, read when the hub is imported)."""
    snapshot = tmp_path / "hub" / "models--openai-community--gpt2" / "snapshots" / "abc123"
    snapshot.mkdir(parents=True)
    (snapshot / "model.safetensors").write_bytes(b"")
    (snapshot.parent.parent / "refs").mkdir()
    (snapshot.parent.parent / "refs" / "main").write_text("abc123")
    found = {}
    for name, cache in (("cached", tmp_path / "hub"), ("empty", tmp_path / "empty")):
        run = subprocess.run(
            [sys.executable, "-c", "from tutorial.reference import pretrained_file; print(pretrained_file())"],
            cwd=ROOT,
            env={**os.environ, "HF_HUB_CACHE": str(cache)},
            capture_output=True,
            text=True,
        )
        found[name] = run.stdout.strip() or run.stderr
    assert found == {"cached": str(snapshot / "model.safetensors"), "empty": "None"}, found


def test_a_value_whose_repr_need_not_show_its_state_is_refused_in_a_key():
    """A closed-over object (a list that changes, a model) would key by a repr that need not change with
    it: a stale HF output could come back. Such a value must be an input, and the key says so."""

    class Settings:
        scale = 2.0

    settings = Settings()
    with pytest.raises(TypeError, match="cannot be part of its cache key"):
        code_key(lambda hf, x: x * settings.scale)
