"""A tiny GPT-2 checkpoint made offline: a random 2-layer model and a byte-level BPE tokenizer.

The directory looks like any `save_pretrained` GPT-2 (config.json,
model.safetensors, tokenizer files), so `pixi run generate --model DIR` runs
on it exactly as on pretrained GPT-2. Tests use it end to end.
"""

from __future__ import annotations

from pathlib import Path

PROMPT = "the quick brown fox jumps over the lazy dog"
TEXT = [  # what the tokenizer learns its merges from
    "the quick brown fox jumps over the lazy dog. the dog sleeps; the fox runs on.",
    "a language model predicts the next token from the tokens before it, one at a time.",
    "GPT-2 reads bytes, merges frequent pairs, and writes text: hello, world!",
] * 20


def tokenizer(text: list[str] = TEXT, vocab_size: int = 320):
    """HF's GPT2TokenizerFast over a byte-level BPE trained on `text` (about `vocab_size` tokens)."""
    from tokenizers import ByteLevelBPETokenizer
    from transformers import GPT2TokenizerFast

    trained = ByteLevelBPETokenizer()
    trained.train_from_iterator(text, vocab_size=vocab_size, min_frequency=2, special_tokens=["<|endoftext|>"])
    return GPT2TokenizerFast(
        tokenizer_object=trained._tokenizer,
        bos_token="<|endoftext|>",
        eos_token="<|endoftext|>",
        unk_token="<|endoftext|>",
    )


def save_model(path: Path, tok, vocab_size: int, seed: int = 0):
    """A random 2-layer GPT-2, scaled so that greedy text varies and its choices are clear."""
    import torch
    import transformers

    eos = tok.convert_tokens_to_ids("<|endoftext|>")
    config = transformers.GPT2Config(
        vocab_size=vocab_size, n_positions=64, n_embd=64, n_layer=2, n_head=4, bos_token_id=eos, eos_token_id=eos
    )
    torch.manual_seed(seed)
    model = transformers.GPT2LMHeadModel(config).eval()
    with torch.no_grad():
        for name, p in model.named_parameters():
            if ".ln_" in name or name.startswith("transformer.ln_f"):
                p.add_(torch.randn_like(p) * 0.1)
            elif name.endswith(".bias"):
                p.add_(torch.randn_like(p) * 0.02)
            elif ".h." in name:
                p.mul_(20)  # blocks, not the token's own embedding, decide: varied text, no loop
            elif name.endswith("wte.weight"):
                p.mul_(5)  # logits far apart: rounding never decides a greedy pick
    model.save_pretrained(path)
    tok.save_pretrained(path)
    return model


def hf_greedy(model, tok, prompt: str, new: int) -> list[int]:
    """HF generate's greedy new ids, up to and including EOS."""
    ids = tok(prompt, return_tensors="pt").input_ids
    out = model.generate(
        ids, attention_mask=ids * 0 + 1, max_new_tokens=new, do_sample=False, pad_token_id=tok.eos_token_id
    )
    got = out[0, ids.shape[1] :].tolist()
    return got[: got.index(tok.eos_token_id) + 1] if tok.eos_token_id in got else got
