"""`pixi run bench` runs end to end (on a tiny GPT-2: speed is measured by the bench, never asserted here)."""

import re
import subprocess
import sys

from tutorial.course import ROOT


def test_bench_prints_one_table_with_all_three_loops_and_agreeing_tokens():
    run = subprocess.run(
        [sys.executable, "-m", "tutorial.bench", "--tiny", "--prompt-tokens", "8", "--new-tokens", "8", "--threads", "1"],
        cwd=ROOT, capture_output=True, text=True, timeout=1200,
    )
    out = run.stdout + run.stderr
    assert run.returncode == 0, out[-2000:]
    for row in ("step 12 loop (no cache)", "step 13 loop (KV cache)", "HF generate"):
        assert re.search(rf"{re.escape(row)}.*\s[\d.]+\s+[\d.]+ s\s+[\d.]+ GiB", out), f"no timing row for {row}:\n{out}"
    assert "KV cache vs HF generate:" in out and re.search(r"floor [\d.]+ tok/s", out), out
    assert "tokens: identical in every row" in out, out
