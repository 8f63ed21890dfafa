"""`pixi run bench`: tokens per second of three generation loops, each in its own process.

  pixi run bench                                  # GPT-2 124M, 32-token prompt, 128 new tokens
  pixi run bench --repeats 3 --new-tokens 64 --threads 2

Rows: step 12's loop (a full forward per token), step 13's KV-cache loop, the
same loop on step 14's Q4_0 weights (its own bytes per token; its tokens are
reported as agreement with fp32's, not required equal), and HF transformers'
`generate` (torch, no_grad, its default attention, its own KV
cache). The weights are written once as a save_pretrained directory (pretrained
GPT-2 if it is in the local HF cache, else the seeded random-init reference)
and every row reads that directory in a fresh process, with the same prompt,
greedy decoding, the same thread count and no stop at the end-of-text token,
so all fp32 rows must give the same tokens. A row's process compiles (MAX) or loads
(HF), generates one token to warm up, then is timed; peak RSS is the process's
own, load and compile included.

A fourth process measures the read floor: a decode step reads every weight once,
so weight bytes / read bandwidth bounds the time per token from below. With
--repeats N the rows run interleaved (A B C floor A B C floor ...) and the table
gives each row's median and its min-max.

One row alone prints one JSON line: python -m tutorial.bench --row step13 --weights DIR
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np

from tutorial.course import ROOT
from tutorial import options

ROWS = {  # --row NAME: the table's label
    "step12": "MAX, step 12 loop (no cache)",
    "step13": "MAX, step 13 loop (KV cache)",
    "step14": "MAX, step 14 loop (KV cache, Q4_0)",
    "hf": "HF generate (KV cache)",
}
# MAX 25.7's config key `runtime.num_threads` (libmax.so) as an env var; unset: the physical cores
MAX_THREADS = "MODULAR_RUNTIME_NUM_THREADS"
FLOOR_MIB = 512  # the read floor's array: far past any cache


@dataclass
class RowResult:
    """One run of one row, in its own process: what the child prints as JSON."""

    row: str
    tokens: list[int]
    tok_s: float  # new tokens / seconds from the call to the last token (prefill included)
    decode_tok_s: float  # the tokens after the first / the seconds after it: decode steps alone, no prefill
    first_s: float  # seconds to the first new token (HF: as its streamer is handed it)
    load_s: float
    compile_s: float  # MAX's graph compile; 0 for HF
    threads: int
    pid: int
    peak_rss: int  # bytes: ru_maxrss of the row's process
    detail: str  # versions and settings, for the table's header


@dataclass
class FloorResult:
    """Read bandwidth of a large read-only reduction, best of several, in its own process."""

    gbs: float  # the best method's GB/s
    method: str
    methods: dict[str, float]  # every method's best GB/s
    pid: int


def usable_cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def prompt_ids(n: int, vocab_size: int) -> list[int]:
    return (np.arange(n) * 7919 % vocab_size).tolist()  # any fixed ids


def peak_rss() -> int:
    # ru_maxrss: a sampling thread would compete with the row for the cores
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * (1 if sys.platform == "darwin" else 1024)


# -- the rows, each run by a child process -------------------------------------------------
def run_max(args, cache: bool, quantize: str | None = None) -> RowResult:
    os.environ[MAX_THREADS] = str(args.threads)  # before MAX's runtime starts
    from tutorial.maxprivate import import_max_lean

    import_max_lean()
    from importlib.metadata import version

    from tutorial.generate import build, device_for, read_config
    from tutorial.impl import Source

    path = Path(args.weights)
    config = read_config(path)
    device = device_for(args.device)
    step12, loop, load_s, compile_s = build(Source(args.use), config, path, device, cache=cache, quantize=quantize)
    greedy, prompt = step12.Sampling(greedy=True), prompt_ids(args.prompt_tokens, config["vocab_size"])
    list(loop(prompt, 1, greedy, None))  # warm-up; eos_id None: every row makes all its new tokens
    tokens, first = [], None
    start = time.perf_counter()
    for token in loop(prompt, args.new_tokens, greedy, None):
        first = first or time.perf_counter() - start
        tokens.append(int(token))
    total = time.perf_counter() - start
    detail = f"MAX {version('max')} ({args.device}, --use {args.use}), {MAX_THREADS}={args.threads} ({max_workers()})"
    return RowResult(
        "step14" if quantize else "step13" if cache else "step12",
        tokens,
        len(tokens) / total,
        (len(tokens) - 1) / (total - first),
        first,
        load_s,
        compile_s,
        args.threads,
        os.getpid(),
        peak_rss(),
        detail,
    )


def max_workers() -> str:
    """MAX's compute threads, as the OS lists them: "🔥 Thread0", ... (its blocking pool reuses the names);
    with 1 thread MAX runs on the caller's, so there are none."""
    try:
        names = {Path(task, "comm").read_text().strip() for task in Path("/proc/self/task").iterdir()}
    except OSError:
        return "worker threads not listed"  # not Linux
    workers = sum(1 for name in names if name.removeprefix("🔥 ").startswith("Thread"))
    return f"{workers} worker threads seen" if workers else "no worker threads: it runs on the calling thread"


def run_hf(args) -> RowResult:
    import torch
    import transformers

    torch.set_num_threads(args.threads)
    start = time.perf_counter()
    model = transformers.GPT2LMHeadModel.from_pretrained(args.weights, local_files_only=True).eval()
    load_s = time.perf_counter() - start
    model.generation_config.eos_token_id = None  # as eos_id=None in the MAX rows: always all new tokens
    ids = torch.tensor([prompt_ids(args.prompt_tokens, model.config.vocab_size)])

    def generate(new: int, streamer=None):  # use_cache stays at its default, True: HF's own KV cache
        with torch.no_grad():  # an explicit mask: HF would otherwise guess one from pad_token_id
            return model.generate(
                ids,
                attention_mask=torch.ones_like(ids),
                max_new_tokens=new,
                do_sample=False,
                pad_token_id=0,
                streamer=streamer,
            )

    generate(1)  # warm-up, as in the MAX rows

    class Clock(transformers.generation.streamers.BaseStreamer):
        """When generate hands out each token: first the prompt, then each new token as it is made."""

        def __init__(self):
            self.times = []

        def put(self, value):
            self.times.append(time.perf_counter())

        def end(self):
            pass

    clock = Clock()
    start = time.perf_counter()
    tokens = generate(args.new_tokens, clock)[0, args.prompt_tokens :].tolist()
    total = time.perf_counter() - start
    first = clock.times[1] - start  # times[0]: the prompt
    detail = (
        f"torch {torch.__version__}, transformers {transformers.__version__}, "
        f"torch.set_num_threads({torch.get_num_threads()}), {model.config._attn_implementation} attention, "
        f"{str(model.dtype).removeprefix('torch.')}, no_grad, "
        f"generate(use_cache={model.generation_config.use_cache})"
    )
    decode_tok_s = (len(tokens) - 1) / (clock.times[-1] - clock.times[1])  # after the first token, to the last
    return RowResult(
        "hf",
        tokens,
        len(tokens) / total,
        decode_tok_s,
        first,
        load_s,
        0.0,
        torch.get_num_threads(),
        os.getpid(),
        peak_rss(),
        detail,
    )


def run_profile(args) -> dict:
    os.environ[MAX_THREADS] = str(args.threads)  # before MAX's runtime starts
    from tutorial import decode_profile

    return {"rows": decode_profile.profile(args), "pid": os.getpid()}


def run_floor(args) -> FloorResult:
    """A read-only reduction over FLOOR_MIB of float32: it reads every byte once, as a decode step reads the weights."""
    import torch

    torch.set_num_threads(args.threads)
    array = np.ones(FLOOR_MIB * 2**20 // 4, dtype=np.float32)  # ones, not empty: every page is mapped before timing
    tensor = torch.from_numpy(array)

    def best(fn, times: int = 8) -> float:
        seconds = []
        for _ in range(times):
            start = time.perf_counter()
            fn()
            seconds.append(time.perf_counter() - start)
        return array.nbytes / min(seconds) / 1e9

    methods = {  # numpy's sum runs on one thread, torch's on the rows' thread count
        "numpy a.sum() (1 thread)": best(array.sum),
        f"torch.sum ({plural(torch.get_num_threads(), 'thread')})": best(tensor.sum),
    }
    method = max(methods, key=methods.get)
    return FloorResult(methods[method], method, methods, os.getpid())


# -- the parent: weights once, then every run in a fresh process ---------------------------
def weights_dir(config) -> tuple[Path, str]:
    """(a save_pretrained directory of the reference's weights, its name); written once, then reused."""
    from tutorial.reference import CACHE, Reference

    ref = Reference(config)
    path = CACHE / "bench" / ref.id
    if not (path / "model.safetensors").exists():
        print(f"writing the weights once to {path} ...", flush=True)
        tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")  # renamed when whole: runs at once never see half
        ref.hf.save_pretrained(tmp)
        try:
            tmp.rename(path)
        except OSError:  # another run got there first
            import shutil

            shutil.rmtree(tmp)
    return path, ref.name


def decode_bytes(path: Path, quantized: bool = False) -> int:
    """Bytes one decode step reads: every weight once, the head (tied to wte) whole, but neither embedding table:
    wte and wpe only give one row each to the new token. `quantized`: step 14's, whose matmul weights (and the
    head, padded to a multiple of 32 rows) are Q4_0, 18 bytes per 32 weights."""
    with open(path / "model.safetensors", "rb") as f:  # the header: 8-byte length, then JSON with byte offsets
        header = json.loads(f.read(int.from_bytes(f.read(8), "little")))
    masks = (".attn.bias", ".attn.masked_bias")  # buffers, not weights (older files store them)
    tensors = {k: v for k, v in header.items() if k != "__metadata__" and not k.endswith(masks)}
    size = {k.removeprefix("transformer."): v["data_offsets"][1] - v["data_offsets"][0] for k, v in tensors.items()}
    head = size.pop("lm_head.weight", size["wte.weight"])  # stored only when not tied
    if quantized:
        shapes = {k.removeprefix("transformer."): v["shape"] for k, v in tensors.items()}
        matmuls = [k for k in size if k.endswith(("c_attn.weight", "c_proj.weight", "c_fc.weight"))]
        for key in matmuls:  # Conv1D [in, out] -> Q4_0 [out, in / 32 * 18]
            size[key] = -(-shapes[key][1] // 32) * 32 * shapes[key][0] // 32 * 18
        rows, dim = shapes.get("lm_head.weight", shapes["wte.weight"])
        head = -(-rows // 32) * 32 * dim // 32 * 18
    return sum(size.values()) - size["wte.weight"] - size["wpe.weight"] + head


def busy_seconds() -> float | None:
    """CPU seconds every core has spent busy since boot (/proc/stat's first line), None where there is none."""
    try:
        with open("/proc/stat") as f:
            ticks = [int(t) for t in f.readline().split()[1:9]]  # user nice system idle iowait irq softirq steal
    except OSError:
        return None
    return (sum(ticks) - ticks[3] - ticks[4]) / os.sysconf("SC_CLK_TCK")


def children_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def spawn(row: str, args, path: Path) -> dict:
    """Run one row in a fresh process; its JSON line as a dict, plus `others`: the cores other processes
    kept busy meanwhile, on average (all busy CPU time less the row's own, over the wall time)."""
    command = [
        sys.executable,
        "-m",
        "tutorial.bench",
        "--row",
        row,
        "--weights",
        str(path),
        "--threads",
        str(args.threads),
        "--prompt-tokens",
        str(args.prompt_tokens),
        "--new-tokens",
        str(args.new_tokens),
        "--device",
        args.device,
        "--use",
        args.use,
    ]
    busy, own, start = busy_seconds(), children_seconds(), time.perf_counter()
    run = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
    wall, own = time.perf_counter() - start, children_seconds() - own
    lines = [line for line in run.stdout.splitlines() if line.startswith("{")]
    if run.returncode != 0 or not lines:
        sys.exit(f"bench: the {row} row failed (exit {run.returncode}):\n{(run.stdout + run.stderr)[-3000:]}")
    others = None if busy is None else max(0.0, (busy_seconds() - busy - own) / wall)
    return json.loads(lines[-1]) | {"others": others}


def plural(n: int, word: str) -> str:
    return f"{n} {word}{'s' * (n != 1)}"


def spread(values: list[float], fmt: str) -> str:
    return f"{min(values):{fmt}}-{max(values):{fmt}}"


def report(
    args, name: str, weight_bytes: int, runs: dict[str, list[dict]], floors: list[dict], q4_bytes: int = 0
) -> bool:
    """Print the table; True when every run of every fp32 row gave the same tokens."""
    floor = statistics.median(f["gbs"] for f in floors) * 1e9 / weight_bytes  # tok/s
    read = {row: q4_bytes if row == "step14" else weight_bytes for row in runs}  # bytes per decode step
    print(
        f"\nGPT-2: {name}; prompt {args.prompt_tokens} tokens, {args.new_tokens} new, greedy, no stop at eos; "
        f"device {args.device}; {plural(args.threads, 'thread')} per row ({usable_cores()} usable cores); "
        f"{plural(args.repeats, 'run')} per row, interleaved, each in its own process"
    )
    for row, label in ROWS.items():
        if row in runs:
            print(f"  {label}: {runs[row][0]['detail']}")
    width = max(len(ROWS[row]) for row in runs)
    print(
        f"\n{'':{width}} {'decode tok/s':>12} {'(min-max)':>15} {'read GB/s':>9} {'% of floor':>10} "
        f"{'all tok/s':>9} {'first token':>11} {'peak RSS':>9} {'MB/token':>9}"
    )
    medians = {}
    for row, results in runs.items():
        rates = [r["decode_tok_s"] for r in results]
        medians[row] = rate = statistics.median(rates)
        overall = statistics.median(r["tok_s"] for r in results)
        first = statistics.median(r["first_s"] for r in results)
        rss = max(r["peak_rss"] for r in results) / 2**30
        print(
            f"{ROWS[row]:{width}} {rate:12.2f} {'(' + spread(rates, '.2f') + ')':>15} "
            f"{rate * read[row] / 1e9:9.2f} {rate / floor:10.0%} {overall:9.2f} {first:9.3f} s {rss:5.2f} GiB "
            f"{read[row] / 1e6:9.1f}"
        )
    print(
        "decode tok/s: the tokens after the first over the time after it (no prefill); all tok/s: every new "
        "token over the whole call, prefill included; % of floor: of the float32 read floor below"
    )
    gbs = [f["gbs"] for f in floors]
    won = statistics.mode(f["method"] for f in floors)
    print(
        f"\nread floor: {statistics.median(gbs):.2f} GB/s median ({spread(gbs, '.2f')}), per run the faster of "
        f"{' and '.join(floors[0]['methods'])} over {FLOOR_MIB} MiB float32, best of 8 each (faster: {won}, "
        f"{sum(f['method'] == won for f in floors)} of {len(floors)} runs); {weight_bytes / 1e6:.0f} MB read per "
        f"decode step (every weight once; the head whole, the embedding tables one row) -> floor {floor:.1f} tok/s"
    )
    if "hf" in medians:
        ratios = [
            f"{label} {medians[row] / medians['hf']:.2f}x"
            for row, label in (("step14", "Q4_0 loop"), ("step13", "KV-cache loop"), ("step12", "step 12 loop"))
            if row in medians
        ]
        print(f"vs HF generate, decode tok/s (median / median): {'; '.join(ratios)}")
    every_run = [*floors, *(r for results in runs.values() for r in results)]
    if others := [r["others"] for r in every_run if r["others"] is not None]:
        busy, free = statistics.median(others), usable_cores() - args.threads
        print(
            f"other processes: {busy:.1f} cores busy during a run, median ({spread(others, '.1f')}), beside "
            f"the row's {plural(args.threads, 'thread')} on {usable_cores()} cores"
            + (": more than the free ones, so the table measures that contention too" if busy > free + 0.25 else "")
        )
    if "step14" in runs and "step13" in runs:  # Q4_0 moves the logits: its greedy tokens may leave fp32's
        fp32 = runs["step13"][0]["tokens"]
        same = [sum(a == b for a, b in zip(r["tokens"], fp32)) for r in runs["step14"]]
        split = [
            next((i for i, (a, b) in enumerate(zip(r["tokens"], fp32)) if a != b), len(fp32)) for r in runs["step14"]
        ]
        print(
            f"step 14 (Q4_0) vs fp32 greedy tokens: {min(same)}-{max(same)} of {len(fp32)} equal, "
            f"identical up to new token {min(split)}"
        )
    return check_tokens({row: results for row, results in runs.items() if row != "step14"})


def check_tokens(runs: dict[str, list[dict]]) -> bool:
    first_row = next(iter(runs))
    reference = runs[first_row][0]["tokens"]
    agree = True
    for row, results in runs.items():
        for i, tokens in enumerate(r["tokens"] for r in results):
            if tokens != reference:
                agree = False
                at = next(
                    (j for j, (a, b) in enumerate(zip(tokens, reference)) if a != b), min(len(tokens), len(reference))
                )
                print(
                    f"tokens: {ROWS[row]} (run {i + 1}) leaves {ROWS[first_row]}'s at new token {at}: "
                    f"{tokens[at : at + 4]} vs {reference[at : at + 4]}"
                )
    if agree:
        print(f"tokens: identical in every row and run ({len(reference)} new tokens)")
    return agree


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        prog="pixi run bench",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        parents=[options.use(default="solutions"), options.device()],
    )
    parser.add_argument("--prompt-tokens", type=int, default=32, help="prompt length (default 32)")
    parser.add_argument("--new-tokens", type=int, default=128, help="greedy tokens to generate (default 128)")
    parser.add_argument(
        "--repeats", type=int, default=1, help="runs per row, interleaved: median and min-max (default 1)"
    )
    parser.add_argument(
        "--threads",
        type=int,
        default=usable_cores(),
        help=f"threads of every row: {MAX_THREADS} for MAX, torch.set_num_threads for HF "
        f"(default: the usable cores, {usable_cores()})",
    )
    parser.add_argument("--tiny", action="store_true", help="a 2-block, 64-wide GPT-2 (for testing the bench itself)")
    parser.add_argument("--skip-no-cache", action="store_true", help="leave out the slow step-12 row")
    parser.add_argument("--json", type=Path, help="also write every run's result to this file")
    parser.add_argument(
        "--profile", action="store_true", help="where one decode step's time goes, kind by kind (see decode_profile.py)"
    )
    parser.add_argument("--profile-out", type=Path, help="with --profile: also write the table to this file")
    # a child: one run, one JSON line
    parser.add_argument("--row", choices=[*ROWS, "floor", "profile"], help=argparse.SUPPRESS)
    parser.add_argument("--weights", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.row:
        result = {
            "step12": lambda: run_max(args, False),
            "step13": lambda: run_max(args, True),
            "step14": lambda: run_max(args, True, "q4_0"),
            "hf": lambda: run_hf(args),
            "floor": lambda: run_floor(args),
            "profile": lambda: run_profile(args),
        }[args.row]()
        print(json.dumps(result if isinstance(result, dict) else asdict(result)), flush=True)
        return 0

    from tutorial.generate import Stop, choose_source, use_cache
    from tutorial.impl import stub_steps
    from tutorial.inputs import valid_ids
    from tutorial.reference import SMALL

    # --tiny is reference.SMALL (the step 12-13 checks' model: its graphs compile once), with room for the tokens
    room = max(SMALL.n_positions, args.prompt_tokens + args.new_tokens)
    config = replace(SMALL, n_positions=room) if args.tiny else None
    path, name = weights_dir(config)
    model = json.loads((path / "config.json").read_text())
    valid_ids(
        [prompt_ids(args.prompt_tokens, model["vocab_size"])],
        model["vocab_size"],
        model["n_positions"] - args.new_tokens,
    )
    rows = [row for row in ROWS if not (row == "step12" and args.skip_no_cache)]
    if args.device != "cpu":  # the quantized path is CPU-only in MAX 25.7
        rows.remove("step14")
    if args.use != "solutions":  # the learner's steps: unfinished ones named here, not in a child's traceback
        try:
            source = choose_source(args.use)
        except Stop as stop:
            sys.exit(f"bench: {stop}")
        if not use_cache(source):
            rows.remove("step13")
        if not source.path(14).exists() or stub_steps(source, [14]):
            rows.remove("step14")
    print(f"bench (pid {os.getpid()}): weights {path}; every run below is a fresh process", flush=True)
    if args.profile:  # the read floor, then the step's parts, each in its own process
        from tutorial import decode_profile

        floor = spawn("floor", args, path)
        parts = spawn("profile", args, path)["rows"]
        weights = "pretrained" if name.startswith("pretrained") else "random-init"
        shape = f"GPT-2, {model['n_layer']} blocks, n_embd {model['n_embd']}, {weights} weights"
        lines = decode_profile.report(parts, floor["gbs"], decode_bytes(path), args, shape)
        print("\n" + "\n".join(lines))
        if args.profile_out:  # the step-13 chapter includes this file
            args.profile_out.write_text("\n".join(lines) + "\n")
        return 0
    runs: dict[str, list[dict]] = {row: [] for row in rows}
    floors: list[dict] = []
    for repeat in range(args.repeats):
        for row in [*rows, "floor"]:
            result = spawn(row, args, path)
            (floors if row == "floor" else runs[row]).append(result)
            what = (
                f"{result['gbs']:.2f} GB/s read"
                if row == "floor"
                else f"{result['tok_s']:.2f} tok/s (load {result['load_s']:.1f} s, compile {result['compile_s']:.1f} s)"
            )
            others = "" if result["others"] is None else f"; other processes busy on {result['others']:.1f} cores"
            print(f"  run {repeat + 1}/{args.repeats} {row:6} pid {result['pid']}: {what}{others}", flush=True)
    if args.json:
        sizes = {"fp32": decode_bytes(path), "q4_0": decode_bytes(path, quantized=True)}  # per decode step
        args.json.write_text(
            json.dumps({"pid": os.getpid(), "name": name, "bytes": sizes, "runs": runs, "floor": floors}, indent=1)
        )
    return 0 if report(args, name, decode_bytes(path), runs, floors, decode_bytes(path, quantized=True)) else 1


if __name__ == "__main__":
    sys.exit(options.run(main, "bench"))
