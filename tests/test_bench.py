"""`pixi run bench` measures each row in its own process (on a tiny GPT-2: speed is measured, never asserted)."""

import json
import re
import subprocess
import sys

from tutorial.bench import ROWS
from tutorial.course import ROOT


def test_bench_runs_every_row_in_its_own_process_and_prints_medians_floor_and_agreeing_tokens(tmp_path):
    report = tmp_path / "runs.json"
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "tutorial.bench",
            "--tiny",
            "--prompt-tokens",
            "4",
            "--new-tokens",
            "4",
            "--repeats",
            "2",
            "--json",
            str(report),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=280,  # under pytest.ini's 300 s per check
    )
    out = run.stdout + run.stderr
    assert run.returncode == 0, out[-3000:]
    runs = json.loads(report.read_text())
    pids = [r["pid"] for results in runs["runs"].values() for r in results] + [f["pid"] for f in runs["floor"]]
    assert set(runs["runs"]) == set(ROWS) and all(len(r) == 2 for r in runs["runs"].values()), runs["runs"].keys()
    assert len(set(pids)) == len(pids) == 8 and runs["pid"] not in pids, f"a process ran two runs: {pids}"
    for label in ROWS.values():  # median, (min-max), first token, peak RSS, read GB/s, % of floor
        assert re.search(
            rf"{re.escape(label)}\s+[\d.]+\s+\([\d.]+-[\d.]+\)\s+[\d.]+ s\s+[\d.]+ GiB\s+[\d.]+\s+\d+%", out
        ), f"no median row for {label}:\n{out}"
    assert re.search(r"read floor: [\d.]+ GB/s median \([\d.]+-[\d.]+\), .+ -> floor [\d.]+ tok/s", out), out
    assert "tokens: identical in every row and run" in out, out
