"""`pixi run bench` measures each row in its own process (on a tiny GPT-2: speed is measured, never asserted)."""

import json
import re

import pytest

from tutorial.bench import ROWS
from tutorial.course import ROOT
from tests.support.run import command

TINY = ["--tiny", "--prompt-tokens", 4, "--new-tokens", 4]


@pytest.fixture(scope="module")
def bench(tmp_path_factory):
    """`bench` on a tiny GPT-2, each row in a process of its own: (the run, its runs.json)."""
    runs = tmp_path_factory.mktemp("bench") / "runs.json"
    return command("tutorial.bench", [*TINY, "--repeats", 2, "--json", runs], timeout=280), runs


@pytest.fixture(scope="module")
def profile(tmp_path_factory):
    """`bench --profile` on a tiny GPT-2: (the run, the table it wrote)."""
    table = tmp_path_factory.mktemp("profile") / "profile.txt"
    return command("tutorial.bench", [*TINY, "--profile", "--profile-out", table], timeout=280), table


def test_bench_runs_every_row_in_its_own_process_and_prints_medians_floor_and_agreeing_tokens(bench):
    done, written = bench
    out = done.stdout + done.stderr
    assert done.returncode == 0, out[-3000:]
    runs = json.loads(written.read_text())
    pids = [r["pid"] for results in runs["runs"].values() for r in results] + [f["pid"] for f in runs["floor"]]
    assert set(runs["runs"]) == set(ROWS) and all(len(r) == 2 for r in runs["runs"].values()), runs["runs"].keys()
    assert len(set(pids)) == len(pids) == 2 * (len(ROWS) + 1) and runs["pid"] not in pids, f"two runs shared: {pids}"
    for label in ROWS.values():  # decode median, (min-max), read GB/s, % of floor, all tok/s, first token, peak RSS
        assert re.search(
            rf"{re.escape(label)}\s+[\d.]+\s+\([\d.]+-[\d.]+\)\s+[\d.]+\s+\d+%\s+[\d.]+\s+[\d.]+ s\s+[\d.]+ GiB", out
        ), f"no median row for {label}: {[line for line in out.splitlines() if line.startswith(label)]}\n{out}"
    assert re.search(r"read floor: [\d.]+ GB/s median \([\d.]+-[\d.]+\), .+ -> floor [\d.]+ tok/s", out), out
    assert "tokens: identical in every row and run" in out, out  # the fp32 rows; step 14's, as agreement:
    assert re.search(r"step 14 \(Q4_0\) vs fp32 greedy tokens: \d+-\d+ of \d+ equal", out), out


def kinds(table: str) -> list[str]:
    """The profile's row names, without their numbers: 'matrix-vector products', ..."""
    return [line.split(" (")[0].split("  ")[0] for line in table.splitlines()[4:] if line.strip()]


def test_profile_times_each_kind_of_work_and_the_chapter_shows_its_table(profile):
    done, table = profile
    assert done.returncode == 0, (done.stdout + done.stderr)[-3000:]
    rows = {line.split("  ")[0]: line for line in table.read_text().splitlines()[4:]}
    for kind in ("matrix-vector products", "attention over the cache", "cache update", "host round trip"):
        row = next((line for name, line in rows.items() if name.startswith(kind)), None)
        assert row and re.search(r"\s[\d.]+\s+\d+%\s+[\d.]+", row), f"no timed row for {kind}:\n{table.read_text()}"
    assert re.search(r"the decode step \(decoder\.decode\)\s+[\d.]+\s+100%", table.read_text()), table.read_text()
    # the chapter's table was written by the same command (on GPT-2 124M): same rows, in the same order
    shown = (ROOT / "book" / "src" / "measured" / "decode_profile.txt").read_text()
    assert "{{#include measured/decode_profile.txt}}" in (ROOT / "book" / "src" / "step_13.md").read_text()
    assert kinds(shown) == kinds(table.read_text()), f"the chapter's table is out of date:\n{shown}"
