"""`pixi run bench --profile`: where the time of one KV-cache decode step goes, kind by kind.

MAX 25.7 has no per-kernel timer on the CPU, so each kind of work in a decode step is compiled
alone, at the step's own shapes and with the model's own modules and weights, and timed:

- the matrix-vector products: every Linear of the model (4 per block, and the head) on one row;
- attention over the cache: each block's step-07 `attend` on one query and P + 1 keys;
- the cache update: each block's keys and values grown by one position (`concat`);
- everything else on the row: embeddings, LayerNorms, GELUs and residual adds;
- a graph launch: the smallest graph, to show what each execute costs before any work;
- the host round trip: ids to the device, logits back to numpy;
- the sampling: step 12's `pick`, greedy and top-k.

Each row is set against the bytes it must read at least, so a row far below the read floor is
where time is lost. The parts are timed apart, so their sum is not exactly the step's time: the
table prints both.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

REPEATS = 30  # timed calls per row, after 3 warm-up calls; the table gives the median


def timed(fn: Callable[[], object], repeats: int = REPEATS) -> float:
    """Median seconds of fn()."""
    for _ in range(3):
        fn()
    seconds = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        seconds.append(time.perf_counter() - start)
    return statistics.median(seconds)


def profile(args) -> list[tuple[str, float, int]]:
    """(what, seconds, bytes it must read) per row, the decode step itself last. Runs in its own process."""
    from max.dtype import DType
    from max.experimental import functional as F
    from max.graph import DeviceRef, TensorType
    from max.nn.module_v3 import Linear, Module

    from tutorial.engine import to_device, to_host
    from tutorial.generate import build, device_for, read_config
    from tutorial.impl import Source
    from tutorial.maxprivate import compiled_model

    path = Path(args.weights)
    config = read_config(path)
    device = device_for(args.device)
    step12, loop, _, _ = build(Source(args.use), config, path, device, cache=True)
    decoder, model = loop.decoder, loop.model
    blocks = list(model.transformer.h)
    n_head, head_dim, n_embd = blocks[0].attn.n_head, blocks[0].attn.head_dim, config["n_embd"]
    cached = args.prompt_tokens + args.new_tokens // 2  # the middle of the bench's decode steps
    dev = DeviceRef.from_device(device)

    def compile_alone(module: Module, *shapes: list[int]) -> Callable[..., object]:
        """module compiled for float32 inputs of these shapes; calling it runs it on zeros."""
        types = [TensorType(DType.float32, shape, device=dev) for shape in shapes]
        model = compiled_model(module.compile(*types))  # the engine Model: driver tensors in and out
        inputs = [to_device(np.zeros(shape), device, np.float32) for shape in shapes]
        return lambda: model.execute(*inputs)

    class Parts(Module):
        """Holds the model's own modules under new names, so that compile finds their weights."""

        def __init__(self, **parts):
            for name, part in parts.items():
                setattr(self, name, part)

    linears = {f"l{i}": m for i, (_, m) in enumerate(model.descendants) if isinstance(m, Linear)}

    class Matvecs(Parts):
        def __call__(self, x, h):  # x [1, 1, n_embd], h [1, 1, 4 * n_embd]
            return tuple(getattr(self, n)(x if int(getattr(self, n).in_dim) == n_embd else h) for n in linears)

    class Attention(Parts):
        def __call__(self, q, k, v):  # one query; P + 1 keys and values per block
            # step 07's attend, no concat: the update is timed apart
            return tuple(block.attn.attend(q, k, v) for block in blocks)

    class CacheUpdate(Module):
        def __call__(self, past, new):
            return tuple(F.concat([past, new], axis=2) for _ in range(2 * len(blocks)))

    class Rest(Parts):
        """Embeddings, 2 LayerNorms, a GELU and 2 residual adds per block, ln_f: what a row meets besides
        the products and the attention."""

        def __call__(self, x, h):
            y = x
            for block in blocks:
                y = y + block.ln_1(y)
                y = y + block.ln_2(y)
                h = F.gelu(h, approximate="tanh")
            return model.transformer.ln_f(y), h

    class Launch(Module):
        def __call__(self, x):
            return (x + 1.0,)

    row, wide = [1, 1, n_embd], [1, 1, 4 * n_embd]
    kv_new, kv_all = [1, n_head, 1, head_dim], [1, n_head, cached + 1, head_dim]
    weight_bytes = sum(int(np.prod([int(d) for d in m.weight.shape])) * 4 for m in linears.values())
    kv_bytes = 2 * len(blocks) * int(np.prod(kv_all)) * 4
    logits_bytes = config["vocab_size"] * 4
    rows: list[tuple[str, float, int]] = []

    rows.append(
        (
            f"matrix-vector products ({len(linears)} Linears)",
            timed(compile_alone(Matvecs(**linears), row, wide)),
            weight_bytes,
        )
    )
    rows.append(
        (
            f"attention over the cache ({cached + 1} keys)",
            timed(compile_alone(Attention(**{f"b{i}": b.attn for i, b in enumerate(blocks)}), kv_new, kv_all, kv_all)),
            kv_bytes,
        )
    )
    past = [1, n_head, cached, head_dim]
    rows.append(
        (
            f"cache update ({2 * len(blocks)} concats)",
            timed(compile_alone(CacheUpdate(), past, kv_new)),
            2 * kv_bytes,  # every cached value is read and written again
        )
    )
    norms = {f"n{i}": m for i, m in enumerate(m for b in blocks for m in (b.ln_1, b.ln_2))}
    rows.append(
        (
            "LayerNorms, GELUs, residual adds",
            timed(compile_alone(Rest(ln_f=model.transformer.ln_f, **norms), row, wide)),
            (2 * len(norms) + 2) * n_embd * 4,
        )
    )
    rows.append(("a graph launch (x + 1)", timed(compile_alone(Launch(), [1])), 4))

    def round_trip():
        to_device([[0]], device), to_device([cached], device)
        to_host(last_logits)

    last_logits = to_device(np.zeros((1, config["vocab_size"])), device, np.float32)
    rows.append(("host round trip (ids, logits)", timed(round_trip), logits_bytes))
    logits = np.random.default_rng(0).normal(size=config["vocab_size"]).astype(np.float32)
    rng = np.random.default_rng(0)
    for name, sampling in (("greedy", step12.Sampling(greedy=True)), ("top-k 40", step12.Sampling(False, 0.8, 40))):
        rows.append((f"sampling: {name} (pick)", timed(lambda s=sampling: step12.pick(logits, s, rng)), 0))

    _, cache = decoder.prefill(list(range(cached)))
    rows.append(("the decode step (decoder.decode)", timed(lambda: decoder.decode(0, cached, cache)), 0))
    return rows


def report(rows: list[tuple[str, float, int]], floor_gbs: float, step_bytes: int, args, model: str) -> list[str]:
    """The table's lines: each kind's median time, its share of the step, and the bytes it must read."""
    *parts, (step_name, step_s, _) = rows
    width = max(len(name) for name, _, _ in rows)
    lines = [
        model,
        f"one decode step after {args.prompt_tokens + args.new_tokens // 2} cached positions; {args.device}, "
        f"MODULAR_RUNTIME_NUM_THREADS={args.threads}",
        f"each kind compiled alone at the step's shapes; median of {REPEATS} calls",
        f"{'':{width}} {'ms':>7} {'of step':>8} {'MB read':>8} {'GB/s':>6} {'of floor':>8}",
    ]
    for name, seconds, read in parts:
        speed = read / seconds / 1e9 if read > 2**20 else None  # below a MiB the time is all overhead
        lines.append(
            f"{name:{width}} {seconds * 1e3:7.3f} {seconds / step_s:8.0%} {read / 1e6:8.2f} "
            + (f"{speed:6.1f} {speed / floor_gbs:8.0%}" if speed else "")
        )
    total = sum(seconds for name, seconds, _ in parts if not name.startswith("sampling: top-k"))
    floor_s = step_bytes / (floor_gbs * 1e9)
    lines += [
        f"{'sum of the parts (greedy)':{width}} {total * 1e3:7.3f} {total / step_s:8.0%}",
        f"{step_name:{width}} {step_s * 1e3:7.3f} {1:8.0%}",
        f"{'read floor for the step':{width}} {floor_s * 1e3:7.3f} {floor_s / step_s:8.0%} "
        f"{step_bytes / 1e6:8.2f} {floor_gbs:6.1f} {1:8.0%}",
    ]
    return [line.rstrip() for line in lines]
