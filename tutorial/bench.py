"""`pixi run bench`: tokens per second of three generation loops, in one process.

  pixi run bench                                  # GPT-2 124M, 32-token prompt, 128 new tokens
  pixi run bench --new-tokens 64 --repeats 3 --threads 2

Rows: step 12's loop (a full forward per token), step 13's KV-cache loop,
and HF transformers' `generate` (torch, with its own KV cache). All use the
same weights (pretrained GPT-2 if cached, else the seeded random-init
reference), the same prompt and greedy decoding, so their tokens must agree.
It also measures this machine's memory bandwidth: every decode step reads
all the weights once, so bandwidth / weight bytes is a floor on time per token.
"""

from __future__ import annotations

import argparse
import os
import sys
import threading
import time
from dataclasses import replace

import numpy as np

from tutorial import fastmax


class PeakRSS:
    """Peak resident memory while the block runs, sampled every 5 ms from /proc."""

    def __enter__(self):
        self.peak, self.running = self.now(), True
        self.thread = threading.Thread(target=self.sample, daemon=True)
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.running = False
        self.thread.join()

    def sample(self):
        while self.running:
            self.peak = max(self.peak, self.now())
            time.sleep(0.005)

    @staticmethod
    def now() -> int:
        try:
            with open("/proc/self/statm") as f:
                return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
        except OSError:  # not Linux: ru_maxrss is a running maximum, good enough for one row
            import resource

            return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * (1 if sys.platform == "darwin" else 1024)


def bandwidth_gbs(size_mb: int = 512) -> float:
    """Measured copy bandwidth: a copy reads and writes every byte."""
    src = np.ones(size_mb * 2**20 // 4, dtype=np.float32)
    dst = np.empty_like(src)
    best = float("inf")
    for _ in range(3):
        start = time.perf_counter()
        np.copyto(dst, src)
        best = min(best, time.perf_counter() - start)
    return 2 * src.nbytes / best / 1e9


def timed(tokens_fn, new_tokens: int):
    """(tokens, seconds to first token, tok/s over all new tokens, peak RSS bytes)."""
    with PeakRSS() as rss:
        start = time.perf_counter()
        tokens, first = [], None
        for token in tokens_fn():
            first = first or time.perf_counter() - start
            tokens.append(int(token))
        total = time.perf_counter() - start
    return tokens, first, len(tokens) / total, rss.peak


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="pixi run bench", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--prompt-tokens", type=int, default=32, help="prompt length (default 32)")
    parser.add_argument("--new-tokens", type=int, default=128, help="greedy tokens to generate (default 128)")
    parser.add_argument("--repeats", type=int, default=1, help="runs per row; the best is reported (default 1)")
    parser.add_argument("--threads", type=int, default=None, help="torch threads for HF (default: torch's own)")
    parser.add_argument("--device", default="cpu", choices=["cpu", "gpu"], help="where MAX runs (default cpu)")
    parser.add_argument("--tiny", action="store_true", help="a 2-block, 64-wide GPT-2 (for testing the bench itself)")
    parser.add_argument("--skip-no-cache", action="store_true", help="leave out the slow step-12 row")
    args = parser.parse_args(argv)

    fastmax.prepare()
    from max.driver import CPU, Accelerator

    from solutions.solution_12 import Sampling, compile_model, generate
    from solutions.solution_13 import compile_cached, generate_cached
    from tutorial.inputs import valid_ids
    from tutorial.reference import SMALL, Reference

    # --tiny is reference.SMALL (the step 12-13 checks' model, so its graphs are compiled once), with room for the tokens
    config = replace(SMALL, n_positions=max(SMALL.n_positions, args.prompt_tokens + args.new_tokens)) if args.tiny else None
    ref = Reference(config)
    config = ref.config
    device = Accelerator() if args.device == "gpu" else CPU()
    model = ref.model()
    prompt = (np.arange(args.prompt_tokens) * 7919 % config.vocab_size).tolist()  # any fixed ids
    valid_ids([prompt], config.vocab_size, config.n_positions - args.new_tokens)
    greedy = Sampling(greedy=True)
    print(f"model: {ref.name}; prompt {args.prompt_tokens} tokens, {args.new_tokens} new, greedy; device {args.device}")
    print("compiling (once: minutes on a cold MAX cache)...", flush=True)
    plain = compile_model(model, device)
    engines = compile_cached(model, device)

    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    hf, ids = ref.hf, torch.tensor([prompt])

    def hf_tokens():  # generate returns all tokens at once: its first-token time is measured apart
        with torch.no_grad():
            # an explicit mask: with pad_token_id=0 HF would otherwise mask every id 0 in the prompt
            out = hf.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=args.new_tokens, do_sample=False,
                              pad_token_id=0, min_new_tokens=args.new_tokens)
        yield from out[0, args.prompt_tokens:].tolist()

    rows = {
        "MAX, step 12 loop (no cache)": lambda: generate(plain, prompt, args.new_tokens, greedy, device=device),
        "MAX, step 13 loop (KV cache)": lambda: generate_cached(engines, prompt, args.new_tokens, greedy,
                                                                device=device, n_positions=config.n_positions),
        f"HF generate (torch {torch.__version__}, {torch.get_num_threads()} threads)": hf_tokens,
    }
    if args.skip_no_cache:
        rows.pop("MAX, step 12 loop (no cache)")
    results = {}
    for name, fn in rows.items():
        runs = [timed(fn, args.new_tokens) for _ in range(args.repeats)]
        results[name] = max(runs, key=lambda r: r[2])
        print(f"  measured {name}", flush=True)
    hf_name = next(n for n in results if n.startswith("HF"))
    with torch.no_grad():
        start = time.perf_counter()
        hf.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=1, do_sample=False, pad_token_id=0)
        tokens, _, rate, peak = results[hf_name]
        results[hf_name] = (tokens, time.perf_counter() - start, rate, peak)

    # bytes a decode step reads: every weight but the two tables it only gathers one row from
    weights = 4 * sum(p.num_elements() for name, p in model.parameters if not name.endswith(("wte.weight", "wpe.weight")))
    gbs = bandwidth_gbs()
    print(f"\n{'':42} {'tok/s':>8} {'first token':>12} {'peak RSS':>10}")
    for name, (tokens, first, rate, peak) in results.items():
        print(f"{name:42} {rate:8.2f} {first:10.3f} s {peak / 2**30:7.2f} GiB")
    cached = "MAX, step 13 loop (KV cache)"
    print(f"\nKV cache vs HF generate: {results[cached][2] / results[hf_name][2]:.2f}x", end="")
    if "MAX, step 12 loop (no cache)" in results:
        print(f"; KV cache vs no cache: {results[cached][2] / results['MAX, step 12 loop (no cache)'][2]:.1f}x", end="")
    print(f"\nmemory bandwidth {gbs:.1f} GB/s (numpy copy); {weights / 1e6:.0f} MB of weights per token "
          f"-> floor {gbs * 1e9 / weights:.1f} tok/s; the KV-cache loop reads them at "
          f"{results[cached][2] * weights / 1e9:.1f} GB/s ({results[cached][2] * weights / (gbs * 1e9):.0%} of the floor)")
    reference_tokens = results[hf_name][0]
    agree = True
    for name, (tokens, *_) in results.items():
        if tokens != reference_tokens:
            agree = False
            at = next((i for i, (a, b) in enumerate(zip(tokens, reference_tokens)) if a != b), min(len(tokens), len(reference_tokens)))
            print(f"tokens: {name} leaves HF's at new token {at}: {tokens[at:at + 4]} vs {reference_tokens[at:at + 4]}")
    if agree:
        print("tokens: identical in every row")
    return 0 if agree else 1


if __name__ == "__main__":
    sys.exit(main())
