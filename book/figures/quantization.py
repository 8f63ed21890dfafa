"""Draw step 14's figures as SVG into book/src/images/ (from the repository root):

  python book/figures/quantization.py --bench bench.json   # bench's --json output

- q4_0_block.svg: one Q4_0 block of real weights, the first 32 inputs of row 0 of
  block 0's mlp.c_fc in the course's reference GPT-2 (pretrained when it is in the
  local HF cache, else the seeded random-init one; the heading says which), as
  solutions/solution_14.py's quantize_q4_0 stores them: the scale, the 16 levels,
  each weight's code, and the 18 bytes with their two nibbles.
- read_floor.svg: `pixi run bench --json FILE`'s numbers: the bytes a decode step
  reads, fp32 and Q4_0, and the tok/s that each read floor allows beside the
  measured rows.

The plotted numbers are kept in each SVG as data-* attributes. No plotting
library: the SVG is written directly, as book/figures/make_figures.py does.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from html import escape
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
OUT = ROOT / "book" / "src" / "images"
FONT = "font-family:'DejaVu Sans',Helvetica,Arial,sans-serif"
MONO = "font-family:'DejaVu Sans Mono',Menlo,Consolas,monospace"


def text(x, y, s, size=12, anchor="start", mono=False, fill="#222", weight="normal") -> str:
    style = MONO if mono else FONT
    return (
        f'<text x="{x:.1f}" y="{y:.1f}" font-size="{size}" text-anchor="{anchor}" fill="{fill}" '
        f'font-weight="{weight}" style="{style}">{escape(str(s))}</text>'
    )


def svg(width, height, title, body, data) -> str:
    attrs = " ".join(f"data-{k}='{escape(json.dumps(v))}'" for k, v in data.items())
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img" {attrs}><title>{escape(title)}</title>'
        f'<rect width="{width}" height="{height}" fill="white"/>' + "".join(body) + "</svg>\n"
    )


def block_figure() -> str:
    from solutions.solution_14 import quantize_q4_0
    from tutorial.reference import reference

    ref = reference()
    w = ref.max_state["transformer.h.0.mlp.c_fc.weight"][:1, :32]  # [1, 32]: one block
    packed = quantize_q4_0(w)[0]  # 18 bytes
    d = float(packed[:2].view(np.float16)[0])
    codes = np.concatenate([packed[2:] & 15, packed[2:] >> 4]).astype(int)  # element j, then j + 16
    back = d * (codes - 8)
    width, height, left, top, plot_h = 940, 520, 70, 60, 220
    step_x = (width - left - 30) / 32
    scale_y = plot_h / 2 / (8.5 * abs(d))
    mid = top + plot_h / 2
    which = "pretrained GPT-2" if ref.name.startswith("pretrained") else "the random-init reference GPT-2 (seed 0)"
    body = [text(width / 2, 24, f"One Q4_0 block: 32 weights of {which}, h.0.mlp.c_fc row 0", 15, "middle")]
    body.append(text(width / 2, 44, f"scale d = max / -8 = {d:.3g} (fp16); weight ≈ d × (code − 8)", 12, "middle"))
    for level in range(16):  # the 16 values a code can stand for
        y = mid - d * (level - 8) * scale_y
        body.append(f'<line x1="{left}" x2="{width - 30}" y1="{y:.1f}" y2="{y:.1f}" stroke="#e3e3e3"/>')
        body.append(text(left - 6, y + 4, level, 9, "end", mono=True, fill="#888"))
    body.append(text(14, mid, "code", 11, "middle"))
    for j in range(32):
        x = left + (j + 0.5) * step_x
        y0, y1 = mid - float(w[0, j]) * scale_y, mid - float(back[j]) * scale_y
        body.append(f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{mid:.1f}" y2="{y0:.1f}" stroke="#4c78a8" stroke-width="6"/>')
        body.append(f'<circle cx="{x:.1f}" cy="{y1:.1f}" r="3.5" fill="#e45756"/>')
    body.append(f'<line x1="{left}" x2="{width - 30}" y1="{mid:.1f}" y2="{mid:.1f}" stroke="#999"/>')
    body.append(text(left, top + plot_h + 18, "bars: the float32 weights; dots: what Q4_0 gives back", 11))
    # the 18 bytes: 2 of scale, then byte j = code j (low nibble) | code j + 16 (high nibble)
    by, bw = top + plot_h + 60, (width - left - 30) / 18
    for i in range(18):
        x = left + i * bw
        fill = "#fde0c5" if i < 2 else "#dbe8f5"
        body.append(f'<rect x="{x:.1f}" y="{by}" width="{bw - 2:.1f}" height="40" fill="{fill}" stroke="#777"/>')
        body.append(text(x + bw / 2 - 1, by + 17, f"{packed[i]:02x}", 12, "middle", mono=True))
        if i >= 2:
            j = i - 2
            body.append(text(x + bw / 2 - 1, by + 33, f"{codes[j + 16]:x}|{codes[j]:x}", 10, "middle", True, "#555"))
    body.append(
        text(left, by - 8, "18 bytes: fp16 scale (2), then byte j = code j+16 (high 4 bits) | code j (low)", 11)
    )
    body.append(text(left, by + 62, f"32 × 4 bytes = 128 bytes of float32 → 18 bytes: {128 / 18:.1f}× fewer", 12))
    data = {"weights": [round(float(v), 6) for v in w[0]], "codes": codes.tolist(), "scale": d}
    return svg(width, height, "One Q4_0 block", body, data)


def floor_figure(bench: dict) -> str:
    from tutorial.bench import ROWS

    runs, floors = bench["runs"], bench["floor"]
    gbs = statistics.median(f["gbs"] for f in floors)
    fp32_mb, q4_mb = bench["bytes"]["fp32"] / 1e6, bench["bytes"]["q4_0"] / 1e6
    bars = [("fp32 read floor", gbs * 1e3 / fp32_mb, "#bbbbbb"), ("Q4_0 read floor", gbs * 1e3 / q4_mb, "#dddddd")]
    colors = {"step12": "#9ecae9", "step13": "#4c78a8", "step14": "#e45756", "hf": "#72b7b2"}
    bars += [(ROWS[row], statistics.median(r["decode_tok_s"] for r in rs), colors[row]) for row, rs in runs.items()]
    width, left, row_h = 860, 260, 34
    height = 90 + row_h * len(bars) + 40
    top = max(v for _, v, _ in bars)
    body = [
        text(width / 2, 24, "Decode tokens per second, and the floors set by reading the weights", 15, "middle"),
        text(
            width / 2,
            44,
            f"a decode step reads {fp32_mb:.0f} MB in float32, {q4_mb:.0f} MB in Q4_0; memory "
            f"streams {gbs:.1f} GB/s (bench's read floor)",
            11,
            "middle",
        ),
    ]
    for i, (label, value, color) in enumerate(bars):
        y, w = 70 + i * row_h, (width - left - 90) * np.log10(max(value, 1)) / np.log10(top)  # log scale
        body.append(text(left - 8, y + 18, label, 12, "end"))
        body.append(f'<rect x="{left}" y="{y}" width="{w:.1f}" height="{row_h - 8}" fill="{color}"/>')
        body.append(text(left + w + 6, y + 18, f"{value:.1f} tok/s", 12))
    body.append(text(20, height - 16, f"bars on a log scale; medians of bench's runs; {bench.get('name', '')}", 10))
    data = {"gbs": gbs, "bytes": bench["bytes"], "bars": [[label, value] for label, value, _ in bars]}
    return svg(width, height, "Decode speed and the read floor", body, data)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bench", type=Path, help="bench --json output, with 'bytes' added (see the chapter)")
    args = parser.parse_args()
    (OUT / "q4_0_block.svg").write_text(block_figure())
    if args.bench:
        (OUT / "read_floor.svg").write_text(floor_figure(json.loads(args.bench.read_text())))


if __name__ == "__main__":
    main()
