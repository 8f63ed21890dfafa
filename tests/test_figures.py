"""The committed data figures show a model that has learned something, and say which.

The numbers are read back from the SVGs in book/src/images/: make_figures.py keeps each
plotted value on its shape as a data-* attribute (an attention cell's weight, a bar's
probability). Nothing here recomputes them. The figures are drawn by pretrained GPT-2
when it is in the local HF cache, else by the small GPT-2 of book/figures/train_tiny.py;
random weights would fail both measures (near-uniform attention, 0.3% on the top 20).
"""

from __future__ import annotations

import os
import re
import statistics
import subprocess
import sys
from collections import defaultdict
from pathlib import Path
from xml.etree import ElementTree

ROOT = Path(__file__).resolve().parents[1]
IMAGES = ROOT / "book" / "src" / "images"
SVG = "{http://www.w3.org/2000/svg}"


def shapes(name: str, attribute: str) -> list[dict[str, str]]:
    """The attributes of every <rect> in images/name that carries data-<attribute>."""
    root = ElementTree.parse(IMAGES / name).getroot()
    found = [dict(r.attrib) for r in root.iter(f"{SVG}rect") if f"data-{attribute}" in r.attrib]
    assert found, f"{name} has no shape with data-{attribute}: redraw it with book/figures/make_figures.py"
    return found


def title(name: str) -> str:
    return ElementTree.parse(IMAGES / name).getroot().findtext(f"{SVG}title") or ""


def test_attention_rows_pick_out_keys():
    rows = defaultdict(list)  # (layer, head, query) -> that row's weights
    for cell in shapes("attention_weights.svg", "weight"):
        rows[cell["data-layer"], cell["data-head"], cell["data-query"]].append(float(cell["data-weight"]))
    sums = {key: sum(row) for key, row in rows.items()}
    off = {key: total for key, total in sums.items() if abs(total - 1) > 0.01}
    assert not off, f"attention rows that do not sum to 1 (layer, head, query: sum): {off}"
    median = statistics.median(max(row) for row in rows.values())
    assert median >= 0.5, (
        f"attention_weights.svg: the median over {len(rows)} rows of the largest weight is {median:.2f}, "
        "under 0.5: near-uniform rows, as random weights give"
    )


def bars() -> list[dict[str, str]]:
    return shapes("sampling.svg", "p")


def test_the_top_20_tokens_hold_most_of_the_probability_at_temperature_1():
    row = [b for b in bars() if float(b["data-temperature"]) == 1.0 and b["data-top-k"] == "none"]
    assert len(row) == 20, f"sampling.svg: {len(row)} bars at temperature 1 without top-k, expected 20"
    mass = sum(float(b["data-p"]) for b in row)
    assert mass >= 0.5, f"sampling.svg: the top 20 tokens hold {mass:.1%} at temperature 1, under 50%"


def test_the_sampling_rows_share_one_y_axis():
    drawn = [(float(b["data-p"]), float(b["height"])) for b in bars()]
    p_top, h_top = max(drawn)
    scale = h_top / p_top  # pixels per unit of probability, the same in every row
    wrong = [(p, h) for p, h in drawn if abs(h - scale * p) > 0.1]
    assert not wrong, f"sampling.svg: bars off the shared axis (p, height px; {scale:.1f} px per 1.0): {wrong[:5]}"


def test_tokens_are_shown_as_words():
    tokens = [b["data-token"] for b in bars() if "data-token" in b]
    assert tokens, "sampling.svg: the bars do not say which token they are (data-token)"
    words = [t for t in tokens if re.search(r"[A-Za-z]", t)]
    assert len(words) >= len(tokens) / 2, f"sampling.svg: most tokens are not words: {tokens[:20]}"


def test_each_data_figure_names_the_model_that_drew_it():
    for name in ("attention_weights.svg", "qkv_heads.svg", "sampling.svg"):
        heading = title(name)
        assert "pretrained GPT-2" in heading or "trained on this book" in heading, f"{name}: {heading!r}"
        assert "random" not in heading, f"{name} was drawn from random weights: {heading!r}"


def luminance(fill: str) -> float:
    r, g, b = (int(fill[i : i + 2], 16) / 255 for i in (1, 3, 5))
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def test_dark_means_one_thing_in_the_heads_figure():
    """In qkv_heads.svg dark blue is a high softmax weight; a −∞ cell must not be drawn dark too."""
    root = ElementTree.parse(IMAGES / "qkv_heads.svg").getroot()
    elements = list(root)
    dark = [
        elements[k - 1].get("fill")
        for k, e in enumerate(elements)
        if e.tag == f"{SVG}text" and e.text == "−∞" and elements[k - 1].tag == f"{SVG}rect"
    ]
    assert dark, "qkv_heads.svg has no −∞ cells"
    assert min(luminance(f) for f in dark) > 0.5, f"qkv_heads.svg draws −∞ dark ({set(dark)}), like a high weight"


def test_the_attention_figure_is_in_step_07():
    assert "images/attention_weights.svg" in (ROOT / "book" / "src" / "step_07.md").read_text()


def test_figures_come_from_pretrained_gpt2_when_it_is_cached(tmp_path):
    """make_figures picks pretrained GPT-2 when the hub cache holds it, else the model trained here."""
    snapshot = tmp_path / "hub" / "models--openai-community--gpt2" / "snapshots" / "abc123"
    snapshot.mkdir(parents=True)
    (snapshot / "model.safetensors").write_bytes(b"")
    (snapshot.parent.parent / "refs").mkdir()
    (snapshot.parent.parent / "refs" / "main").write_text("abc123")
    code = "import sys; sys.path.insert(0, 'book/figures'); import make_figures; print(make_figures.which_model())"
    found = {}
    for name, cache in (("cached", tmp_path / "hub"), ("empty", tmp_path / "empty")):
        run = subprocess.run(
            [sys.executable, "-c", code],
            cwd=ROOT,
            env={**os.environ, "HF_HUB_CACHE": str(cache)},
            capture_output=True,
            text=True,
        )
        found[name] = run.stdout.strip() or run.stderr
    assert found == {"cached": "pretrained", "empty": "trained here"}, found
