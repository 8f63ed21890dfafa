"""Train a small GPT-2 on this book's own chapters, for the figures when pretrained GPT-2 is absent.

`python book/figures/train_tiny.py` trains it (make_figures.py calls `checkpoint()` itself).
A random-init GPT-2 spreads its attention almost evenly and puts 0.3% of the next-token
probability on its top 20 tokens: figures drawn from it show noise. This model has learned
something: HF's GPT2LMHeadModel, 2 blocks of 4 heads, 128 wide, trained from a fixed seed on
book/src/*.md with tests/support/tiny.py's byte-level BPE tokenizer, in a few CPU minutes.

The checkpoint (config, weights, tokenizer: a `save_pretrained` folder) goes to
build/figures/ (gitignored), under a key made of this file and the training text, so a
second run reads it and a changed book trains a new one. One thread, seeded weights and
seeded batches make the run repeatable on one machine.
"""

from __future__ import annotations

import hashlib
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

SEED = 0
VOCAB = 2048  # big enough that common words are one token, so the figures show words
CONTEXT = 128  # tokens per training sequence
SIZES = dict(n_layer=2, n_head=4, n_embd=128)
STEPS, BATCH, LR = 600, 16, 3e-3
HELD_OUT = 0.05  # the last 5% of the text: a loss on text the model never trained on


def book_text() -> str:
    """Every chapter of the book, in file-name order: the text the model learns from."""
    return "\n\n".join(p.read_text() for p in sorted((ROOT / "book" / "src").glob("*.md")))


def folder(text: str) -> Path:
    key = hashlib.sha256(Path(__file__).read_bytes() + text.encode()).hexdigest()[:12]
    return ROOT / "build" / "figures" / f"tiny-book-gpt2-{key}"


def checkpoint() -> Path:
    """The trained checkpoint's folder: trained now unless this book and script already made it."""
    text = book_text()  # read once: the key and the training see the same book
    path = folder(text)
    if not (path / "training.json").exists():
        train(path, text)
    return path


def train(path: Path, text: str) -> dict:
    import torch
    import transformers

    from tests.support import tiny

    torch.set_num_threads(1)  # repeatable sums, and the machine stays usable
    torch.manual_seed(SEED)
    tok = tiny.tokenizer(text.split("\n\n"), vocab_size=VOCAB)
    ids = torch.tensor(tok(text)["input_ids"])
    split = int(len(ids) * (1 - HELD_OUT))
    train_ids, held_ids = ids[:split], ids[split:]
    eos = tok.eos_token_id
    config = transformers.GPT2Config(
        vocab_size=len(tok),
        n_positions=CONTEXT,
        **SIZES,
        resid_pdrop=0.0,
        embd_pdrop=0.0,
        attn_pdrop=0.0,
        bos_token_id=eos,
        eos_token_id=eos,
    )
    model = transformers.GPT2LMHeadModel(config)
    optimizer = torch.optim.AdamW(model.parameters(), lr=LR, weight_decay=0.01)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=LR, total_steps=STEPS, pct_start=0.1)
    order = torch.Generator().manual_seed(SEED)
    start, losses = time.process_time(), []
    model.train()
    for step in range(STEPS):
        first = torch.randint(0, len(train_ids) - CONTEXT, (BATCH,), generator=order)
        batch = torch.stack([train_ids[i : i + CONTEXT] for i in first.tolist()])  # [BATCH, CONTEXT]
        loss = model(batch, labels=batch).loss  # HF shifts the labels by one itself
        optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        schedule.step()
        losses.append(loss.item())
        if step % 100 == 0 or step == STEPS - 1:
            print(f"step {step:4d}  loss {loss.item():.3f}  {time.process_time() - start:.0f} CPU s", flush=True)
    model.eval()
    with torch.no_grad():  # the held-out text in CONTEXT-long pieces
        pieces = held_ids[: len(held_ids) // CONTEXT * CONTEXT].view(-1, CONTEXT)
        held = model(pieces, labels=pieces).loss.item()
    record = {
        "steps": STEPS,
        "batch": BATCH,
        "context": CONTEXT,
        "tokens": len(ids),
        "vocab": len(tok),
        **SIZES,
        "train_loss": round(sum(losses[-50:]) / len(losses[-50:]), 3),  # the last 50 steps
        "held_out_loss": round(held, 3),
        "cpu_seconds": round(time.process_time() - start, 1),
    }
    path.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(path)
    tok.save_pretrained(path)
    (path / "training.json").write_text(json.dumps(record, indent=1))
    print(json.dumps(record))
    return record


if __name__ == "__main__":
    print(f"checkpoint: {checkpoint().relative_to(ROOT)}")
