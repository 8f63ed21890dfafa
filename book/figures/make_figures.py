"""Draw the book's figures as SVG into book/src/images/ (`pixi run figures`).

The figures are checked in, so the book builds without MAX or torch; rerun
this after changing what a figure shows. The data figures come from real
tensors:

- causal_mask_8.svg, causal_mask_cached.svg: what solutions/solution_02.py's
  `causal_mask` returns (MAX, on the CPU), for 8 tokens, and for 4 queries
  after 4 earlier positions (`num_tokens=4`, as the KV cache of step 13 uses it).
- kv_cache.svg: the same function's masks for a prefill of 4 tokens and the
  decode step after it (`causal_mask(4, 0)`, `causal_mask(1, 4)`), with what
  each step computes and what it reads from the cache.
- qkv_heads.svg: block 0's c_attn output on one sentence, cut into q, k, v and
  heads, then one head's scores, the masked scores and the softmax weights
  (checked against HF's own weights for that head).
- sampling.svg: solutions/solution_12.py's `probabilities` for the top 20 tokens of
  the last position's logits, at temperature 1 and 0.7, and with top_k=5, on one y-axis.
- attention_weights.svg: softmax attention weights on the same sentence.

These three come from one forward pass of an HF GPT2LMHeadModel that has learned
something (`figure_model`): pretrained GPT-2 when it is in the local HF cache (`pixi run
weights`), otherwise a small GPT-2 that book/figures/train_tiny.py trains on this book in
a few CPU minutes. Random weights would show noise: near-uniform attention, and 0.3% of
the probability on the top 20 tokens. Each figure's heading says which model drew it, and
the plotted numbers are kept in the SVG as data-* attributes, which tests/test_figures.py
reads back.

architecture.svg is drawn, not computed: GPT-2 with the module names the code
uses. No plotting library: the SVG is written directly.
"""

from __future__ import annotations

import functools
import sys
from html import escape
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "book" / "figures"))  # train_tiny

OUT = ROOT / "book" / "src" / "images"

# The sentence each model reads: one from the text it learned from. Pretrained GPT-2 (web text)
# reads TEXT and splits it into GPT2_IDS (checked); the small model, trained on this book,
# reads BOOK_TEXT, in the words of its chapters. It never read about cats: on TEXT its
# attention rows are flatter (median largest weight 0.46-0.51 over four trainings, 0.56-0.67 here).
TEXT = "The cat sat on the mat."
GPT2_IDS = [464, 3797, 3332, 319, 262, 2603, 13]
BOOK_TEXT = "Each row sums to 1."
# Pretrained GPT-2's (layer, head) panels: 4.11 is a previous-token head and 5.1 an
# induction head; 0.0 and 11.0 show the first and last layer. The small model shows all.
PRETRAINED_HEADS = [(0, 0), (4, 11), (5, 1), (11, 0)]

FONT = "font-family:'DejaVu Sans',Helvetica,Arial,sans-serif"
MONO = "font-family:'DejaVu Sans Mono',Menlo,Consolas,monospace"


# -- SVG helpers ------------------------------------------------------------------
class Svg:
    def __init__(self, width: int, height: int, title: str):
        self.width, self.height = width, height
        self.parts = [
            f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
            f'viewBox="0 0 {width} {height}" role="img">',
            f"<title>{escape(title)}</title>",
            # an opaque page, so the figure reads the same in mdBook's dark themes
            f'<rect x="0" y="0" width="{width}" height="{height}" fill="#ffffff"/>',
        ]

    def add(self, element: str) -> None:
        self.parts.append(element)

    def text(self, x, y, s, size=13, anchor="start", weight="normal", fill="#222", mono=False, rotate=None):
        extra = f' transform="rotate({rotate} {x:.1f} {y:.1f})"' if rotate is not None else ""
        self.add(
            f'<text x="{x:.1f}" y="{y:.1f}" font-size="{size}" text-anchor="{anchor}" '
            f'font-weight="{weight}" fill="{fill}" style="{MONO if mono else FONT}"{extra}>{escape(s)}</text>'
        )

    def rect(self, x, y, w, h, fill, stroke="none", rx=0, width=1, dash=None, data=None):
        """data: {name: value} written as data-name="value", the plotted number behind a shape."""
        d = f' stroke-dasharray="{dash}"' if dash else ""
        d += "".join(f' data-{k}="{escape(str(v))}"' for k, v in (data or {}).items())
        self.add(
            f'<rect x="{x:.1f}" y="{y:.1f}" width="{w:.1f}" height="{h:.1f}" rx="{rx}" '
            f'fill="{fill}" stroke="{stroke}" stroke-width="{width}"{d}/>'
        )

    def line(self, x1, y1, x2, y2, stroke="#444", width=1.5, arrow=False):
        head = ' marker-end="url(#arrow)"' if arrow else ""
        self.add(
            f'<line x1="{x1:.1f}" y1="{y1:.1f}" x2="{x2:.1f}" y2="{y2:.1f}" '
            f'stroke="{stroke}" stroke-width="{width}"{head}/>'
        )

    def path(self, d, stroke="#444", width=1.5, arrow=False):
        head = ' marker-end="url(#arrow)"' if arrow else ""
        self.add(f'<path d="{d}" fill="none" stroke="{stroke}" stroke-width="{width}"{head}/>')

    def arrowhead(self) -> None:
        self.add(
            '<defs><marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" '
            'markerHeight="7" orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" fill="#444"/></marker></defs>'
        )

    def save(self, name: str) -> Path:
        OUT.mkdir(parents=True, exist_ok=True)
        path = OUT / name
        path.write_text("\n".join(self.parts + ["</svg>", ""]))
        return path


def blues(value: float, hi=(8, 48, 107)) -> str:
    """0 -> near white, 1 -> dark blue (a sequential scale, like matplotlib's Blues)."""
    lo = (247, 251, 255)
    v = min(max(value, 0.0), 1.0) ** 0.6  # lift small weights off white
    return "#" + "".join(f"{round(a + (b - a) * v):02x}" for a, b in zip(lo, hi))


def oranges(value: float) -> str:
    """The same scale in orange, for a figure that already uses blue for something else."""
    return blues(value, hi=(127, 39, 4))


HIDDEN = "#e2e8f0"  # a cell the causal mask hides: light grey, in every panel that has one


# -- figure 1: the architecture ------------------------------------------------------
def architecture() -> Path:
    W, H = 720, 900
    s = Svg(W, H, "GPT-2 (124M): the modules and their names in the code")
    s.arrowhead()
    cx, bw = 260, 320  # the column of the residual stream and the width of a box
    rx = cx - bw / 2 - 28  # where the residual (skip) paths run
    label_x = cx + bw / 2 + 62  # the "step NN" labels, right of the block's frame

    def box(y, h, name, details, step, fill, stroke):
        s.rect(cx - bw / 2, y, bw, h, fill, stroke, rx=8, width=1.5)
        s.text(cx - bw / 2 + 12, y + 21, name, size=15, weight="bold", mono=True)
        for k, detail in enumerate(details):
            s.text(cx - bw / 2 + 12, y + 39 + 15 * k, detail, size=12, fill="#444")
        s.text(label_x, y + h / 2 + 5, step, size=12, fill="#8a4b00")

    def plus(y):
        s.add(f'<circle cx="{cx}" cy="{y}" r="11" fill="#fff" stroke="#444" stroke-width="1.5"/>')
        s.line(cx - 6, y, cx + 6, y)
        s.line(cx, y - 6, cx, y + 6)

    def residual(y_from, y_to):
        s.path(f"M{cx},{y_from} H{rx} V{y_to} H{cx - 13}", arrow=True)
        s.text(rx - 8, (y_from + y_to) / 2 + 28, "residual", size=12, fill="#555", rotate=-90)

    s.text(W / 2, 30, "GPT-2 (124M), as the code names it", size=18, anchor="middle", weight="bold")
    s.text(cx, 60, "input_ids  [B, T]", size=13, anchor="middle", mono=True)

    # embeddings: two tables, summed
    ey = 96
    for x, name, detail, step in [
        (cx - 155, "wte", "Embedding(50257, 768)", "step 05"),
        (cx + 5, "wpe", "Embedding(1024, 768)", "step 06"),
    ]:
        s.rect(x, ey, 150, 58, "#dbeafe", "#3b82f6", rx=8, width=1.5)
        s.text(x + 10, ey + 21, name, size=15, weight="bold", mono=True)
        s.text(x + 10, ey + 38, detail, size=11, fill="#444")
        s.text(x + 10, ey + 52, step, size=11, fill="#8a4b00")
    s.line(cx - 30, 68, cx - 80, ey, arrow=True)
    s.line(cx + 30, 68, cx + 80, ey, arrow=True)
    s.text(cx - 62, 82, "ids", size=11, anchor="end", fill="#555")
    s.text(cx + 62, 82, "positions 0..T-1", size=11, fill="#555")
    s.line(cx - 80, ey + 58, cx - 8, 176)
    s.line(cx + 80, ey + 58, cx + 8, 176)
    plus(182)
    s.text(cx + 20, 204, "x  [B, T, 768]: the residual stream", size=12, fill="#444", mono=True)

    # one transformer block, drawn once, repeated 12 times
    top, bottom = 214, 650
    s.rect(cx - bw / 2 - 50, top, bw + 100, bottom - top, "#f8fafc", "#64748b", rx=12, width=1.5, dash="6 4")
    s.text(cx - bw / 2 - 38, top + 19, "h[0] … h[11]", size=14, weight="bold", mono=True)
    s.text(label_x, top + 19, "12 × GPT2Block", size=14, weight="bold", mono=True)
    s.text(label_x, top + 37, "step 09 (one block)", size=12, fill="#8a4b00")
    s.text(label_x, top + 53, "step 10 (all twelve)", size=12, fill="#8a4b00")
    s.line(cx, 193, cx, 256, arrow=True)

    # attention half: x + attn(ln_1(x))
    box(256, 52, "ln_1", ["LayerNorm(768)"], "step 03", "#fef9c3", "#ca8a04")
    s.line(cx, 308, cx, 326, arrow=True)
    box(
        326,
        66,
        "attn",
        ["c_attn 768 → 3×768: q, k, v; 12 heads of 64", "causal mask, softmax, c_proj 768 → 768"],
        "step 07 (mask: step 02)",
        "#ffedd5",
        "#ea580c",
    )
    s.line(cx, 392, cx, 413)
    plus(424)
    residual(248, 424)
    s.text(cx + 20, 450, "x + attn(ln_1(x))", size=12, fill="#444", mono=True)
    s.text(label_x, 429, "step 08", size=12, fill="#8a4b00")

    # MLP half: x + mlp(ln_2(x))
    s.line(cx, 435, cx, 470, arrow=True)
    box(470, 52, "ln_2", ["LayerNorm(768)"], "step 03", "#fef9c3", "#ca8a04")
    s.line(cx, 522, cx, 540, arrow=True)
    box(540, 56, "mlp", ["c_fc 768 → 3072, GELU (tanh), c_proj 3072 → 768"], "step 04", "#dcfce7", "#16a34a")
    s.line(cx, 596, cx, 609)
    plus(620)
    residual(456, 620)
    s.text(label_x, 625, "step 08", size=12, fill="#8a4b00")

    # the head
    s.line(cx, 631, cx, 676, arrow=True)
    box(676, 52, "ln_f", ["LayerNorm(768), after the last block"], "step 10", "#fef9c3", "#ca8a04")
    s.line(cx, 728, cx, 750, arrow=True)
    box(750, 56, "lm_head", ["Linear(768, 50257, no bias), tied to wte"], "step 11", "#ede9fe", "#7c3aed")
    s.line(cx, 806, cx, 830, arrow=True)
    s.text(cx, 846, "logits  [B, T, 50257]: a score for every next token", size=13, anchor="middle", mono=True)
    s.text(
        cx,
        868,
        "sampling the next token: step 12; reusing keys and values: step 13",
        size=12,
        anchor="middle",
        fill="#8a4b00",
    )
    s.text(
        W / 2,
        892,
        "checkpoint names: transformer.wte.weight, transformer.h.0.attn.c_attn.weight, …, lm_head.weight",
        size=10,
        anchor="middle",
        fill="#777",
        mono=True,
    )
    return s.save("architecture.svg")


# -- figure 2: the causal mask -----------------------------------------------------
def mask_values(sequence_length: int, num_tokens: int):
    from tutorial.maxprivate import import_max_lean

    import_max_lean()
    from max.driver import CPU
    from max.dtype import DType

    from solutions.solution_02 import causal_mask
    from tutorial import checks

    mask = causal_mask(sequence_length, num_tokens, dtype=DType.float32, device=CPU())
    return checks.numpy(mask, "causal_mask")


def mask_row(s: "Svg", row, left: float, top: float, cell: float, size: int) -> None:
    """One query's row of a mask: a light 0 where it may look, a dark −∞ where it may not."""
    for j, value in enumerate(row):
        visible = value == 0
        x = left + j * cell
        s.rect(x, top, cell, cell, "#bbf7d0" if visible else "#334155", "#ffffff", width=1.5)
        s.text(
            x + cell / 2,
            top + cell / 2 + 5,
            "0" if visible else "−∞",
            size=size,
            anchor="middle",
            fill="#14532d" if visible else "#e2e8f0",
            mono=True,
        )


def mask_figure(values, num_tokens: int, name: str, title: str, note: str) -> Path:
    rows, cols = values.shape
    cell = 44
    left, top = 150, 136
    W = left + cols * cell + 40
    H = top + rows * cell + 74
    s = Svg(W, H, title)
    s.text(20, 28, title, size=16, weight="bold", mono=True)
    s.text(20, 50, note, size=12, fill="#444")
    s.text(
        left + cols * cell / 2,
        top - 62,
        "keys: the positions a query may look at →",
        size=12,
        anchor="middle",
        fill="#444",
    )
    s.text(left - 10, top - 8, "queries ↓", size=12, anchor="end", fill="#444")
    if num_tokens:  # which keys come before the queries and which are their own
        for first, last, label, fill in [
            (0, num_tokens, f"earlier (num_tokens = {num_tokens})", "#94a3b8"),
            (num_tokens, cols, "the queries' own", "#22c55e"),
        ]:
            s.rect(left + first * cell + 3, top - 30, (last - first) * cell - 6, 5, fill)
            s.text(left + (first + last) * cell / 2, top - 36, label, size=11, anchor="middle", fill="#475569")
    for j in range(cols):
        s.text(left + j * cell + cell / 2, top - 10, str(j), size=12, anchor="middle", mono=True)
    for i in range(rows):
        position = num_tokens + i
        s.text(left - 10, top + i * cell + cell / 2 + 4, f"position {position}", size=12, anchor="end", mono=True)
        mask_row(s, values[i], left, top + i * cell, cell, size=14)
    ly = top + rows * cell + 28
    s.rect(left, ly - 12, 14, 14, "#bbf7d0", "#14532d")
    s.text(left + 20, ly, "0: visible, the score passes unchanged", size=12)
    s.rect(left, ly + 8, 14, 14, "#334155")
    s.text(left + 20, ly + 20, "−∞: hidden, softmax gives it weight 0", size=12)
    return s.save(name)


def cache_figure(prefill, decode) -> Path:
    """Prefill and one decode step side by side: their masks, and what each computes."""
    cell = 40
    P = prefill.shape[0]
    W, H = 130 + (2 * P + 1) * cell + 170, 410
    s = Svg(W, H, "KV cache: prefill, then decode")
    s.arrowhead()
    s.text(20, 28, "KV cache: one prefill, then one position per token", size=16, weight="bold")
    s.text(20, 50, "masks returned by causal_mask (step 02); dark cells are -inf", size=12, fill="#444")

    def grid(values, left, top, first_position, cached):
        rows, cols = values.shape
        for j in range(cols):
            s.text(left + j * cell + cell / 2, top - 8, str(j), size=12, anchor="middle", mono=True)
            if j < cached:  # keys read from the cache, not computed in this step
                s.rect(left + j * cell + 3, top - 28, cell - 6, 5, "#94a3b8")
            else:
                s.rect(left + j * cell + 3, top - 28, cell - 6, 5, "#22c55e")
        for i in range(rows):
            s.text(
                left - 8, top + i * cell + cell / 2 + 4, f"pos {first_position + i}", size=12, anchor="end", mono=True
            )
            mask_row(s, values[i], left, top + i * cell, cell, size=13)

    left1, top = 90, 146
    s.text(left1, 82, f"prefill: causal_mask({P}, 0)", size=13, weight="bold", mono=True)
    s.text(left1, 100, f"runs {P} positions; stores k, v of 0..{P - 1}", size=12, fill="#444")
    grid(prefill, left1, top, 0, 0)
    left2 = left1 + P * cell + 150
    s.text(left2, 82, f"decode: causal_mask(1, {P})", size=13, weight="bold", mono=True)
    s.text(left2, 100, f"runs 1 position; reads {P} cached k, v", size=12, fill="#444")
    grid(decode, left2, top + (P - 1) * cell, P, P)
    s.line(left1 + P * cell + 20, top + P * cell / 2, left2 - 60, top + P * cell / 2, arrow=True)
    s.text(
        (left1 + P * cell + left2 - 40) / 2, top + P * cell / 2 - 8, "cache", size=12, anchor="middle", fill="#475569"
    )
    ly = top + P * cell + 40
    s.rect(left1, ly - 10, 14, 5, "#22c55e")
    s.text(left1 + 20, ly - 4, "key computed in this step", size=12)
    s.rect(left1, ly + 12, 14, 5, "#94a3b8")
    s.text(left1 + 20, ly + 18, "key read from the cache (computed earlier, never changes)", size=12)
    s.text(
        left1,
        ly + 44,
        "scores: prefill [B, 12, 4, 4]; decode [B, 12, 1, 5]: one query, all keys",
        size=12,
        fill="#444",
        mono=True,
    )
    return s.save(name="kv_cache.svg")


# -- the model behind figures 3 to 5 -------------------------------------------------------
def which_model() -> str:
    """Which model draws figures 3 to 5: "pretrained" when GPT-2's weights are in the local HF cache
    (`pixi run weights`), else "trained here": the small GPT-2 of train_tiny.py."""
    from tutorial.reference import pretrained_file

    return "pretrained" if pretrained_file() else "trained here"


@functools.cache
def figure_model():
    """(HF GPT2LMHeadModel, its tokenizer, the words that name it, the (layer, head) panels, its sentence)."""
    import transformers

    if which_model() == "pretrained":
        from tutorial.reference import PRETRAINED

        model = transformers.GPT2LMHeadModel.from_pretrained(PRETRAINED, local_files_only=True)
        tokenizer = transformers.AutoTokenizer.from_pretrained(PRETRAINED, local_files_only=True)
        ids = tokenizer(TEXT)["input_ids"]
        assert ids == GPT2_IDS, f"GPT-2 tokenizes {TEXT!r} as {ids}, not {GPT2_IDS}"
        return model.eval(), tokenizer, "pretrained GPT-2 (openai-community/gpt2)", PRETRAINED_HEADS, TEXT

    import train_tiny

    path = train_tiny.checkpoint()
    model = transformers.GPT2LMHeadModel.from_pretrained(path)
    tokenizer = transformers.AutoTokenizer.from_pretrained(path)
    c = model.config
    which = "a small GPT-2 trained on this book (book/figures/train_tiny.py)"
    heads = [(layer, head) for layer in range(c.n_layer) for head in range(c.n_head)]
    return model.eval(), tokenizer, which, heads, BOOK_TEXT


@functools.cache
def hf_run():
    """The figures' model on its sentence, once: its attention weights [n_layer, n_head, T, T],
    block 0's c_attn output [T, 3 * n_embd], the last position's logits [vocab], the tokens as
    text, which model it is, its tokenizer, the (layer, head) panels to draw and the sentence."""
    import numpy as np
    import torch

    model, tokenizer, which, heads, text = figure_model()
    ids = tokenizer(text)["input_ids"]
    tokens = [tokenizer.decode([i]) for i in ids]
    model.set_attn_implementation("eager")  # the fused kernels do not return their weights
    captured = {}

    def keep(module, args, output):  # returns None, so HF's forward goes on with its own output
        captured["qkv"] = output[0].numpy().copy()

    hook = model.transformer.h[0].attn.c_attn.register_forward_hook(keep)
    with torch.no_grad():
        out = model(torch.tensor([ids]), output_attentions=True)
    hook.remove()
    weights = np.stack([a[0].numpy() for a in out.attentions])
    return weights, captured["qkv"], out.logits[0, -1].numpy().copy(), tokens, which, tokenizer, heads, text


# -- figure 3: attention weights ---------------------------------------------------------
def attention_figure(weights, tokens: list[str], which: str, heads: list[tuple[int, int]]) -> Path:
    """One heatmap per (layer, head); every cell keeps its weight as data-weight."""
    T = len(tokens)
    columns = 2  # two panels a row: the page's width at full size
    cell, gap_x, gap_y = (38, 90, 100) if len(heads) <= 4 else (28, 74, 84)
    left, top = 70, 190
    panel = T * cell
    rows = -(-len(heads) // columns)
    W = max(left + columns * panel + (columns - 1) * gap_x + 30, 720)
    H = top + rows * panel + (rows - 1) * gap_y + 50
    title = f"Attention weights on “{''.join(tokens)}”"
    s = Svg(W, H, f"{title} ({which})")
    s.text(20, 28, title, size=17, weight="bold")
    s.text(20, 50, f"computed by {which}", size=12, fill="#8a4b00")
    s.text(20, 72, "Row: the query token. Column: a key token. Each row sums to 1.", size=12, fill="#444")
    s.text(20, 88, "Darker blue = more weight. Grey: a key after the query, hidden by the causal mask.", size=12)
    for p, (layer, head) in enumerate(heads):
        x0 = left + (p % columns) * (panel + gap_x)
        y0 = top + (p // columns) * (panel + gap_y)
        s.text(x0 + panel / 2, y0 - 48, f"layer {layer}, head {head}", size=13, anchor="middle", weight="bold")
        for j, tok in enumerate(tokens):
            s.text(x0 + j * cell + cell / 2 - 2, y0 - 6, tok_label(tok), size=11, mono=True, rotate=-50)
        for i in range(T):
            s.text(x0 - 8, y0 + i * cell + cell / 2 + 4, tok_label(tokens[i]), size=11, anchor="end", mono=True)
            for j in range(T):
                w = float(weights[layer, head, i, j])
                x, y = x0 + j * cell, y0 + i * cell
                data = {"layer": layer, "head": head, "query": i, "key": j, "weight": f"{w:.4f}"}
                s.rect(x, y, cell, cell, blues(w) if j <= i else HIDDEN, "#ffffff", width=1, data=data)
                if j <= i:
                    s.text(
                        x + cell / 2,
                        y + cell / 2 + 4,
                        f"{w:.2f}".lstrip("0") if w < 0.995 else "1",
                        size=10 if cell > 30 else 9,
                        anchor="middle",
                        fill="#ffffff" if w > 0.45 else "#1e293b",
                        mono=True,
                    )
    return s.save("attention_weights.svg")


def tok_label(token: str) -> str:
    return token.strip() or repr(token)


# -- figure 4: q, k, v and the heads (step 07) ---------------------------------------------
HEAD = 0  # the head whose scores the figure follows


def heads_figure(qkv, weights, tokens: list[str], which: str, n_head: int) -> Path:
    """Block 0's c_attn output cut into q, k, v and heads; one head's scores, masked, softmaxed.

    The scores are recomputed here from HF's q and k (the hook in hf_run) and checked
    against HF's own weights for that head, so the figure shows what the model did."""
    import numpy as np

    sentence, tokens = "".join(tokens), [tok_label(t) for t in tokens]
    T, width = qkv.shape
    n_embd = width // 3
    head_dim = n_embd // n_head
    slices = qkv.reshape(T, 3, n_head, head_dim)  # [T, q/k/v, head, head_dim]
    q, k = slices[:, 0, HEAD], slices[:, 1, HEAD]
    scores = q @ k.T / np.sqrt(head_dim)
    masked = np.where(np.triu(np.ones((T, T), bool), 1), -np.inf, scores)
    soft = np.exp(masked - masked.max(-1, keepdims=True))
    soft /= soft.sum(-1, keepdims=True)
    assert np.allclose(soft, weights[HEAD], atol=1e-5), "the recomputed weights are not HF's"

    cell, gap_x, left = 30, 62, 70  # the three panels of one head, below the strip
    W = max(830, left + 3 * T * cell + 2 * gap_x + 20)
    top, ch = 110, 15  # the strip: one row of ch pixels per token
    ptop = top + T * ch + 110
    H = ptop + T * cell + 60
    title = f"Block 0's attention: c_attn's output cut into q, k, v and {n_head} heads"
    s = Svg(W, H, f"{title} ({which})")
    s.arrowhead()
    s.text(20, 28, title, size=16, weight="bold")
    s.text(20, 48, f"on “{sentence}”, computed by {which}", size=12, fill="#8a4b00")

    # the strip: one cell per token and per head_dim-wide head slice, shaded by its RMS
    cw, gap = max(17, 204 // n_head), 10
    rms = np.sqrt((slices**2).mean(-1))  # [T, 3, n_head]
    for part, name in enumerate("qkv"):
        x0 = left + part * (n_head * cw + gap)
        s.text(
            x0 + n_head * cw / 2,
            top - 30,
            f"{name}  [{T}, {n_embd}]",
            size=13,
            anchor="middle",
            weight="bold",
            mono=True,
        )
        for h in range(n_head):
            s.text(x0 + h * cw + cw / 2, top - 6, str(h), size=8, anchor="middle", fill="#555", mono=True)
            for i in range(T):
                shade = (rms[i, part, h] - rms.min()) / (rms.max() - rms.min())  # the spread, not the size
                s.rect(x0 + h * cw, top + i * ch, cw, ch, oranges(shade), "#ffffff", width=0.5)
        if name in "qk":  # the head the panels below follow
            s.rect(x0 + HEAD * cw, top, cw, T * ch, "none", "#111111", width=2.5)
    for i, tok in enumerate(tokens):
        s.text(left - 6, top + i * ch + ch - 3, tok, size=10, anchor="end", mono=True)
    strip_w = 3 * n_head * cw + 2 * gap
    s.text(left + strip_w + 10, top + 12, "c_attn(x)", size=12, mono=True)
    s.text(left + strip_w + 10, top + 28, f"[{T}, {width}]", size=12, mono=True)
    s.text(
        left,
        top + T * ch + 18,
        f"one cell: one token's {head_dim} numbers of one head (orange: their RMS, light to dark = low to high)",
        size=11,
        fill="#444",
    )
    s.text(
        left,
        top + T * ch + 34,
        f"head h is features {head_dim}h … {head_dim}h + {head_dim - 1} of q, k and v",
        size=11,
        fill="#444",
    )
    s.text(left, top + T * ch + 50, f"outlined: head {HEAD} of q and of k, whose scores follow", size=11)

    # one head: scores, plus the mask, softmax; grey = hidden by the mask, blue = weight
    panels = [
        (f"q·kᵀ / √{head_dim}", scores, "scores"),
        ("+ causal mask", masked, "masked"),
        ("softmax, each row", soft, "soft"),
    ]
    for p, (label, values, kind) in enumerate(panels):
        x0 = left + p * (T * cell + gap_x)
        s.text(x0 + T * cell / 2, ptop - 36, f"head {HEAD}: {label}", size=13, anchor="middle", weight="bold")
        for j, tok in enumerate(tokens):
            s.text(x0 + j * cell + cell / 2 - 2, ptop - 4, tok, size=9, mono=True, rotate=-50)
        for i in range(T):
            if p == 0:
                s.text(x0 - 6, ptop + i * cell + cell / 2 + 4, tokens[i], size=10, anchor="end", mono=True)
            for j in range(T):
                v = float(values[i, j])
                x, y = x0 + j * cell, ptop + i * cell
                if kind == "masked" and j > i:
                    s.rect(x, y, cell, cell, HIDDEN, "#ffffff", width=1)
                    s.text(x + cell / 2, y + cell / 2 + 4, "−∞", size=10, anchor="middle", fill="#334155", mono=True)
                elif kind == "soft":
                    s.rect(x, y, cell, cell, blues(v) if j <= i else HIDDEN, "#ffffff", width=1)
                    label_v = ("1" if v > 0.995 else f"{v:.2f}".lstrip("0")) if j <= i else "0"
                    s.text(
                        x + cell / 2,
                        y + cell / 2 + 4,
                        label_v,
                        size=9,
                        anchor="middle",
                        fill="#ffffff" if v > 0.45 else "#1e293b",
                        mono=True,
                    )
                else:
                    s.rect(x, y, cell, cell, HIDDEN if j > i else "#f8fafc", "#cbd5e1", width=0.5)
                    s.text(
                        x + cell / 2,
                        y + cell / 2 + 4,
                        f"{v:.2f}".replace("-", "−"),
                        size=8.5,
                        anchor="middle",
                        fill="#64748b" if j > i else "#1e293b",
                        mono=True,
                    )
        if p < 2:
            s.line(x0 + T * cell + 8, ptop + T * cell / 2, x0 + T * cell + gap_x - 8, ptop + T * cell / 2, arrow=True)
    s.text(
        left,
        ptop + T * cell + 24,
        "Rows: queries; columns: keys. Grey: keys after the query; the mask makes them −∞, softmax turns that into 0.",
        size=11,
        fill="#444",
    )
    s.text(
        left,
        ptop + T * cell + 40,
        "Blue: the weight (darker = more); each row sums to 1. These are HF's own weights for this head.",
        size=11,
        fill="#444",
    )
    return s.save("qkv_heads.svg")


# -- figure 5: temperature and top-k (step 12) -----------------------------------------
def sampling_figure(logits, text: str, which: str, tokenizer, top: int = 20) -> Path:
    """The top tokens of one logits vector: probabilities at temperature 1, 0.7, and with top_k=5,
    on one y-axis. Each bar keeps its probability, temperature and top_k as data-* attributes."""
    import math

    import numpy as np

    from tutorial.maxprivate import import_max_lean

    import_max_lean()
    from solutions.solution_12 import probabilities

    order = np.argsort(logits)[::-1][:top]  # the same tokens, by logit, in every row
    rows = [  # (label, temperature, top_k)
        ("temperature 1.0", 1.0, None),
        ("temperature 0.7: sharper", 0.7, None),
        ("top_k = 5 (temperature 1.0): the rest is exactly 0", 1.0, 5),
    ]
    shown = [probabilities(logits, t, top_k=k)[order] for _, t, k in rows]
    ymax = math.ceil(max(float(p.max()) for p in shown) * 10) / 10  # one axis for every row
    bw, left, ph, gap = 34, 96, 96, 52
    W = left + top * bw + 40
    H = 96 + len(rows) * (ph + gap) + 40
    title = f"The next token after “{text}”: the top {top} probabilities"
    s = Svg(W, H, f"{title} ({which})")
    s.text(20, 28, "Next-token probabilities: temperature and top-k", size=16, weight="bold")
    s.text(20, 48, f"from {which}", size=11, fill="#8a4b00")
    s.text(
        20,
        66,
        f"the last position's logits on “{text}”, through step 12's probabilities(logits, temperature, top_k),",
        size=11,
        fill="#444",
    )
    s.text(
        20,
        82,
        f"for the {top} tokens with the highest logits, in the same order in each row; one y-axis for all rows",
        size=11,
        fill="#444",
    )
    for r, ((label, temperature, top_k), p) in enumerate(zip(rows, shown)):
        y0 = 96 + r * (ph + gap) + 18  # the top of the plot area
        s.text(left, y0 - 6, label, size=12, weight="bold")
        s.text(
            left + top * bw,
            y0 - 6,
            f"these {top} hold {p.sum():.1%} of the probability",
            size=11,
            anchor="end",
            fill="#444",
        )
        for tick in (0.5, 1.0):  # gridlines at half and full scale
            s.line(left - 4, y0 + ph * (1 - tick), left + top * bw, y0 + ph * (1 - tick), stroke="#e2e8f0", width=1)
            s.text(left - 8, y0 + ph * (1 - tick) + 4, f"{ymax * tick:g}", size=10, anchor="end", mono=True)
        s.line(left - 4, y0 + ph, left + top * bw, y0 + ph, stroke="#94a3b8", width=1)
        s.line(left - 4, y0, left - 4, y0 + ph, stroke="#94a3b8", width=1)
        s.text(left - 8, y0 + ph + 4, "0", size=10, anchor="end", mono=True)
        for b, (token, value) in enumerate(zip(order, p)):
            h = ph * float(value) / ymax
            data = {
                "temperature": temperature,
                "top-k": top_k or "none",
                "token": tokenizer.decode([int(token)]),
                "p": f"{float(value):.6g}",
            }
            s.rect(left + b * bw + 3, y0 + ph - h, bw - 6, h, "#2563eb" if value > 0 else "#e2e8f0", data=data)
            if value == 0:
                s.text(left + b * bw + bw / 2, y0 + ph - 4, "0", size=9, anchor="middle", fill="#94a3b8", mono=True)
    base = 96 + len(rows) * (ph + gap) - gap + 30
    for b, token in enumerate(order):
        label = tok_label(tokenizer.decode([int(token)]))
        s.text(left + b * bw + bw / 2 + 3, base, label, size=9, mono=True, rotate=-50, anchor="end")
    s.text(20, base - 4, "token", size=10, fill="#444")
    return s.save("sampling.svg")


def main(argv: list[str]) -> int:
    only = set(argv)
    made = []
    if not only or "architecture" in only:
        made.append(architecture())
    if not only or "mask" in only:
        made.append(
            mask_figure(
                mask_values(8, 0),
                0,
                "causal_mask_8.svg",
                "causal_mask(8, num_tokens=0)",
                "8 tokens, none cached: query i sees keys 0..i",
            )
        )
        made.append(
            mask_figure(
                mask_values(4, 4),
                4,
                "causal_mask_cached.svg",
                "causal_mask(4, num_tokens=4)",
                "4 queries after 4 earlier positions: query i sees keys 0..4+i",
            )
        )
    if not only or "cache" in only:
        made.append(cache_figure(mask_values(4, 0), mask_values(1, 4)))
    if {"attention", "heads", "sampling"} & only or not only:
        weights, qkv, logits, tokens, which, tokenizer, heads, text = hf_run()
        if not only or "attention" in only:
            made.append(attention_figure(weights, tokens, which, heads))
        if not only or "heads" in only:
            made.append(heads_figure(qkv, weights[0], tokens, which, n_head=weights.shape[1]))
        if not only or "sampling" in only:
            made.append(sampling_figure(logits, text, which, tokenizer))
    for path in made:
        print(f"wrote {path.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
