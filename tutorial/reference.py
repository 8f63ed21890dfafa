"""The HuggingFace GPT-2 every check compares against.

Pretrained `openai-community/gpt2` when it is in the local HF cache;
otherwise a seeded random-init `transformers.GPT2LMHeadModel` of the same
config, with LayerNorm and bias values perturbed so that no parameter is
trivially ones or zeros. The network is never touched.

torch and transformers take seconds to import and the model seconds to
build, so both are paid once: the random weights go to a safetensors file,
and every HF output a check asks for is stored under a key made of the
reference, the library versions, the inputs and the code that computed it
(with every value that code reads: see `code_key`).

The harness owns all of it: the config here, the weights in tutorial/weights.py.
It imports nothing from solutions/, so a check of one step never runs another.
"""

from __future__ import annotations

import hashlib
import inspect
import json
import marshal
import os
import types
from contextlib import suppress
from dataclasses import dataclass, field, fields
from functools import cache, cached_property, partial
from importlib.metadata import version
from pathlib import Path

import numpy as np

PRETRAINED = "openai-community/gpt2"
SEED = 0
CACHE = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "gpt2-max-tutorial"


# HF outputs kept per reference model, the most recently used: the suite reads about 150
OUTPUTS_KEPT = 2000


def write_once(path: Path, write) -> None:
    """write(tmp) then rename to path: checks running at once never read a half-written file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp{path.suffix}")  # keeps the suffix np.save wants
    write(tmp)
    tmp.replace(path)


def prune(folder: Path, pattern: str, keep: int) -> None:
    """Delete all but the `keep` newest entries of folder matching pattern (files or folders), so that a
    cache written under new keys does not grow without end. Another process's entry may vanish meanwhile."""
    import shutil

    def modified(path: Path) -> float:
        try:
            return path.stat().st_mtime
        except FileNotFoundError:
            return 0.0

    for old in sorted(folder.glob(pattern), key=modified, reverse=True)[keep:]:
        if old.is_dir():
            shutil.rmtree(old, ignore_errors=True)
        else:
            old.unlink(missing_ok=True)


def hf_config_defaults() -> dict:
    """HF `GPT2Config()`'s attributes, stored per transformers version: importing it takes ~5 s."""
    path = CACHE / f"hf-gpt2config-{version('transformers')}.json"
    if not path.exists():
        import transformers

        config = transformers.GPT2Config()
        values = {k: v for k, v in vars(config).items() if isinstance(v, (int, float, str, type(None)))}
        write_once(path, lambda tmp: tmp.write_text(json.dumps(values)))
    return json.loads(path.read_text())


@cache
def _hf_defaults() -> dict:
    return hf_config_defaults()


def hf_default(name: str):
    """HF `GPT2Config()`'s default for `name` (hf_config_defaults, read once per process)."""
    return _hf_defaults()[name]


@dataclass(frozen=True)
class Config:
    """The reference's GPT-2 sizes, under HF GPT2Config's names and with its defaults (GPT-2 124M), none typed
    here. The harness's own: the learner's modules only read these attributes. Field order is part of
    `Reference.id` (the on-disk caches), so it stays."""

    vocab_size: int = field(default_factory=partial(hf_default, "vocab_size"))
    n_positions: int = field(default_factory=partial(hf_default, "n_positions"))
    n_embd: int = field(default_factory=partial(hf_default, "n_embd"))
    n_layer: int = field(default_factory=partial(hf_default, "n_layer"))
    n_head: int = field(default_factory=partial(hf_default, "n_head"))
    n_inner: int | None = field(default_factory=partial(hf_default, "n_inner"))
    layer_norm_epsilon: float = field(default_factory=partial(hf_default, "layer_norm_epsilon"))


# A 2-block, 64-wide GPT-2 with the real vocabulary, for checks of the loops around the model
# (steps 12-13, and the bench's own test): one config, so they share compiled graphs.
SMALL = Config(vocab_size=50257, n_positions=32, n_embd=64, n_layer=2, n_head=4)


def pretrained_file() -> Path | None:
    """model.safetensors of pretrained GPT-2, if the local HF cache has it (no network)."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from huggingface_hub import constants

    sep = constants.REPO_ID_SEPARATOR  # the hub cache's folder of a model: models--{owner}--{name}
    if not (Path(constants.HF_HUB_CACHE) / f"models{sep}{PRETRAINED.replace('/', sep)}").is_dir():
        return None  # never downloaded: said without importing the hub's client (a quarter second per run)
    from huggingface_hub import try_to_load_from_cache

    found = try_to_load_from_cache(PRETRAINED, "model.safetensors")
    return Path(found) if isinstance(found, str) else None


class Reference:
    def __init__(self, config: Config | None = None, seed: int = SEED):
        self.config = config or Config()
        self.seed = seed
        self.file = pretrained_file() if config is None else None
        if self.file:
            self.name = f"pretrained {PRETRAINED} (local HF cache)"
            self.id = "pretrained-" + hashlib.sha256(str(self.file).encode()).hexdigest()[:12]
        else:
            self.name = f"random-init GPT-2, seed {seed} (pretrained GPT-2 is not in the local HF cache)"
            shape = "-".join(f"{getattr(self.config, f.name)}" for f in fields(self.config))
            self.id = f"random-{seed}-{shape}"
            self.file = CACHE / self.id / "model.safetensors"
        self.versions = f"transformers={version('transformers')} torch={version('torch')}"
        self._read: dict[str, np.ndarray] = {}  # tensors already read from self.file

    # -- weights, as numpy arrays under GPT2LMHeadModel's names ------------------
    @cached_property
    def _tensors(self):
        if not self.file.exists():
            self._save_random_weights()
        from safetensors import safe_open

        return safe_open(str(self.file), framework="np")

    def weight(self, key: str) -> np.ndarray:
        """One HF tensor, e.g. "transformer.h.0.attn.c_attn.weight" (Conv1D layout), shared: never modify it."""
        if key == "lm_head.weight":
            key = "transformer.wte.weight"  # tied to wte: stored once
        stored = key if self.id.startswith("random") else key.removeprefix("transformer.")
        if stored not in self._read:  # read from disk once per process (writable: MAX copies read-only arrays)
            self._read[stored] = self._tensors.get_tensor(stored)
        return self._read[stored]

    @cached_property
    def max_state(self) -> dict[str, np.ndarray]:
        """Every GPT2LMHeadModel weight in this course's layout, by the harness's tutorial.weights; shared.

        What hf_to_max changed (the Conv1D transposes) is stored next to the HF weights, keyed by the
        weights file (its size and modification time) and weights.CONVERSION: reading it back is faster
        than transposing again per process. Only the newest such file is kept."""
        from safetensors import safe_open
        from safetensors.numpy import load_file, save_file

        from tutorial import weights

        hf = self.state("") | {"lm_head.weight": self.weight("lm_head.weight")}
        stat = self.file.stat()
        digest = hashlib.sha256(f"{stat.st_size} {stat.st_mtime_ns} {weights.CONVERSION}".encode()).hexdigest()[:12]
        path = CACHE / self.id / f"max-layout-{digest}.safetensors"
        if not path.exists():
            state = weights.hf_to_max(hf)
            changed = {k: v for k, v in state.items() if v is not hf.get(k)}
            kept = json.dumps(sorted(state.keys() - changed.keys()))
            write_once(path, lambda tmp: save_file(changed, str(tmp), metadata={"kept": kept}))
            prune(path.parent, "max-layout-*.safetensors", keep=1)
            return state
        with safe_open(str(path), framework="np") as f:
            kept = json.loads(f.metadata()["kept"])
        return load_file(str(path)) | {k: hf[k] for k in kept}

    def state(self, prefix: str) -> dict[str, np.ndarray]:
        """Every HF tensor under `prefix`, with the prefix removed (mask buffers excluded)."""
        keys = self._tensors.keys()
        if not self.id.startswith("random"):
            keys = ["transformer." + k for k in keys]
        wanted = [k for k in keys if k.startswith(prefix) and not k.endswith((".attn.bias", ".attn.masked_bias"))]
        if 2 * len(wanted) > len(keys) and len(self._read) < len(
            keys
        ):  # most of the file: one read, 2x faster than per tensor
            from safetensors.numpy import load_file

            self._read |= {k: v for k, v in load_file(str(self.file)).items() if k not in self._read}
        return {k.removeprefix(prefix): self.weight(k) for k in wanted}

    def model(self, model_class):
        """A fresh `model_class(self.config)` holding these weights. model_class is step 11's
        MaxGPT2LMHeadModel as the code under check imports it (e.g. `step.MaxGPT2LMHeadModel` in a
        step-12 check): the harness builds no model of its own."""
        from tutorial import weights

        model = model_class(self.config)
        weights.load(model, self.max_state, what=f"loading HF's weights into {model_class.__name__}")
        return model

    # -- HF outputs, computed once per inputs and stored ---------------------------
    def compute(self, fn, *inputs: np.ndarray) -> np.ndarray:
        """fn(hf_model, *torch_inputs) -> torch tensor, cached as numpy on disk."""
        digest = hashlib.sha256(
            json.dumps([self.id, self.versions, code_key(fn)]).encode()
            + b"".join(np.ascontiguousarray(a).tobytes() + str(a.dtype).encode() for a in inputs)
        ).hexdigest()[:24]
        path = CACHE / self.id / "outputs" / f"{digest}.npy"
        if path.exists():
            with suppress(OSError):  # used now: the newest, for prune (a read-only cache stays as it is)
                os.utime(path)
            return np.load(path)
        import torch

        with torch.no_grad():
            out = fn(self.hf, *(torch.from_numpy(np.asarray(a)) for a in inputs))
        result = out.detach().float().numpy()
        write_once(path, lambda tmp: np.save(tmp, result))
        prune(path.parent, "*.npy", keep=OUTPUTS_KEPT)
        return result

    @cached_property
    def hf(self):
        """The transformers model itself (imports torch: seconds)."""
        import torch
        import transformers

        if not self.id.startswith("random"):
            return transformers.GPT2LMHeadModel.from_pretrained(PRETRAINED, local_files_only=True).eval()
        model = transformers.GPT2LMHeadModel(self.hf_config()).eval()
        state = {k: torch.from_numpy(self.weight(k)) for k in self._tensors.keys()}
        model.load_state_dict(state, strict=False)  # strict=False: mask buffers are not stored
        return model

    def hf_config(self):
        import transformers

        c = self.config
        return transformers.GPT2Config(
            vocab_size=c.vocab_size,
            n_positions=c.n_positions,
            n_embd=c.n_embd,
            n_layer=c.n_layer,
            n_head=c.n_head,
            n_inner=c.n_inner,
            layer_norm_epsilon=c.layer_norm_epsilon,
        )

    def _save_random_weights(self) -> None:
        import torch
        import transformers
        from safetensors.numpy import save_file

        torch.manual_seed(self.seed)
        model = transformers.GPT2LMHeadModel(self.hf_config())
        with torch.no_grad():
            for name, p in model.named_parameters():
                if ".ln_" in name or name.startswith("transformer.ln_f"):
                    p.add_(torch.randn_like(p) * 0.1)  # LayerNorm away from ones/zeros
                elif name.endswith(".bias"):
                    p.add_(torch.randn_like(p) * 0.02)  # HF initialises biases to zero
        state = {
            k: v.detach().numpy().copy()
            for k, v in model.state_dict().items()
            if not k.endswith((".attn.bias", ".attn.masked_bias")) and k != "lm_head.weight"
        }
        write_once(self.file, lambda tmp: save_file(state, str(tmp)))


@cache
def reference(config: Config | None = None) -> Reference:
    return Reference(config)


# -- what a computation depends on, for the key of its stored output ---------------------------------
def code_key(fn) -> list:
    """fn's code and every value it reads, as JSON: its source (its bytecode when there is none), its
    default arguments, the values of the cells it closes over and of the module globals its code (nested
    code included) names, and the same for each plain function among those. Two lambdas of the same
    source that close over different values get different keys; a changed global constant changes it.
    Functions of other modules (the harness's helpers) count by name: what they read is not the HF
    computation's input."""
    return _function_key(fn, set(), fn.__module__)


def _function_key(fn: types.FunctionType, seen: set[int], home: str) -> list:
    seen.add(id(fn))
    code = fn.__code__
    try:
        text = inspect.getsource(fn)
    except (OSError, TypeError):  # defined by exec or in a REPL
        text = marshal.dumps(code).hex()
    closure = {}
    for name, cell in zip(code.co_freevars, fn.__closure__ or ()):
        try:
            closure[name] = _value_key(cell.cell_contents, seen, home)
        except ValueError:  # a cell not yet filled
            closure[name] = None
    names = sorted(_names(code) & fn.__globals__.keys())
    return [
        text,
        _value_key(fn.__defaults__, seen, home),
        _value_key(fn.__kwdefaults__, seen, home),
        closure,
        {name: _value_key(fn.__globals__[name], seen, home) for name in names},
    ]


def _names(code: types.CodeType) -> set[str]:
    """The names code reads as globals (or attributes), with those of the code nested in it (lambdas,
    comprehensions), which inspect.getclosurevars leaves out."""
    found = set(code.co_names)
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            found |= _names(const)
    return found


def _value_key(value, seen: set[int], home: str):
    if isinstance(value, types.FunctionType):
        inside = id(value) not in seen and value.__module__ == home
        return ["function", value.__module__, value.__qualname__, _function_key(value, seen, home) if inside else None]
    if type(value).__module__.startswith("torch") and hasattr(value, "numpy"):  # a torch tensor: its repr elides
        value = value.detach().cpu().numpy()
    if isinstance(value, (np.ndarray, np.generic)):
        array = np.ascontiguousarray(value)
        return ["array", str(array.dtype), list(array.shape), hashlib.sha256(array.tobytes()).hexdigest()]
    if isinstance(value, types.ModuleType):
        return ["module", value.__name__]
    if isinstance(value, type):
        return ["class", f"{value.__module__}.{value.__qualname__}"]
    if isinstance(value, (list, tuple)):
        return [type(value).__name__, [_value_key(v, seen, home) for v in value]]
    if isinstance(value, dict):
        return ["dict", [[_value_key(k, seen, home), _value_key(v, seen, home)] for k, v in value.items()]]
    if isinstance(value, (set, frozenset)):
        return [type(value).__name__, sorted(json.dumps(_value_key(v, seen, home)) for v in value)]
    if value is None or isinstance(value, (bool, int, float, complex, str, bytes, range, slice)):
        return ["value", repr(value)]  # immutable: its repr is its whole value
    # an object whose repr need not show its state (a mutable instance, a closed-over model...): a key
    # built from it could serve a stale output, so it must reach fn as an input instead
    raise TypeError(
        f"Reference.compute: the function reads a {type(value).__name__} ({value!r:.60}) that cannot be part of "
        "its cache key; pass it as an input array, or as a number, string or tuple of them"
    )
