"""`pixi run generate`: GPT-2 writes text, with your model or the reference.

  pixi run generate --prompt "The meaning of life is"
  pixi run generate --prompt "Once upon a time" --temperature 0.8 --top-k 40 --seed 1
  pixi run generate --prompt "Hello" --greedy --use solutions

The model is built from `--use steps` (the default: every layer from your
steps/ files) or `--use solutions` (the reference), compiled once, and fed
the pretrained GPT-2 weights from the local HuggingFace cache (`pixi run
weights` puts them there) or a `save_pretrained` directory (`--model DIR`).
It never downloads. Text streams as it is generated; the last line gives
tokens per second and the time to the first token.

  pixi run generate --quantize q4_0               # step 14: 4-bit weights, MAX's CPU kernels
  pixi run generate --quantize q4_0 --perplexity  # fp32 and Q4_0 perplexity of PARAGRAPH
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # before huggingface_hub is imported: never the network

from tutorial.course import model_steps  # noqa: E402
from tutorial.explain import StepError, explain  # noqa: E402
from tutorial.impl import Source, stub_steps  # noqa: E402
from tutorial import options

PRETRAINED = "openai-community/gpt2"
ALIASES = {"gpt2": PRETRAINED}
STEPS = model_steps()  # the layers of the model and the generation loop (course.toml's model = true)
CONFIG_FIELDS = ("vocab_size", "n_positions", "n_embd", "n_layer", "n_head", "n_inner", "layer_norm_epsilon")


class Stop(Exception):
    """Ends the command with one line on stderr and exit status `code`."""

    def __init__(self, message: str, code: int = 2):
        super().__init__(message)
        self.code = code


class Parser(argparse.ArgumentParser):
    def error(self, message):  # one line instead of the usage block
        raise Stop(f"{message} (see --help)")


def parse(argv) -> argparse.Namespace:
    parser = Parser(
        prog="pixi run generate",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        parents=[options.use(), options.device()],
    )
    parser.add_argument("--prompt", default="Hello, I'm a language model,", help="the text to continue")
    parser.add_argument("--max-new-tokens", type=int, default=50, help="tokens to generate (default 50)")
    parser.add_argument("--greedy", action="store_true", help="always the most likely token (reproduces HF generate)")
    parser.add_argument("--temperature", type=float, help="sampling: < 1 sharper, > 1 more random (default 0.8)")
    parser.add_argument("--top-k", type=int, help="sampling: draw among the k most likely tokens (default 40)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the sampling draws: same seed, same text")
    parser.add_argument(
        "--model",
        default=PRETRAINED,
        help=f"a save_pretrained directory, or a model in the local HF cache (default {PRETRAINED})",
    )
    parser.add_argument("--ids", action="store_true", help="also print the new token ids (stderr)")
    parser.add_argument("--quantize", choices=["q4_0"], help="step 14: the Linears' weights as Q4_0 blocks (CPU)")
    parser.add_argument(
        "--perplexity", action="store_true", help="with --quantize: fp32 and quantized perplexity of a fixed paragraph"
    )
    args = parser.parse_args(argv)
    if args.greedy and (args.temperature is not None or args.top_k is not None):
        raise Stop("--greedy takes the most likely token: drop --temperature/--top-k, or drop --greedy to sample")
    if not args.greedy:
        args.temperature = 0.8 if args.temperature is None else args.temperature
        args.top_k = 40 if args.top_k is None else args.top_k
        if not args.temperature > 0:
            raise Stop(
                f"--temperature must be > 0 when sampling (got {args.temperature:g}); --greedy is the limit at 0"
            )
    if not args.prompt.strip():
        raise Stop("the prompt is empty: give some text to continue with --prompt")
    if args.max_new_tokens < 1:
        raise Stop(f"--max-new-tokens must be at least 1 (got {args.max_new_tokens})")
    if args.quantize and args.device != "cpu":
        raise Stop("--quantize: the quantized path is CPU-only in MAX 25.7; on a GPU, drop --quantize (fp32)")
    if args.perplexity and not args.quantize:
        raise Stop("--perplexity compares fp32 with a quantized model: add --quantize q4_0")
    return args


# -- the checkpoint: a directory with config.json, weights and tokenizer files ----------
def model_dir(name: str) -> Path:
    path = Path(name).expanduser()
    if path.is_dir():
        return path
    if path.exists():
        raise Stop(f"--model {name}: not a directory (pass the directory save_pretrained wrote)")
    repo = ALIASES.get(name, name)
    from huggingface_hub import snapshot_download

    try:
        return Path(snapshot_download(repo, local_files_only=True))
    except Exception:  # not cached, or not a valid repo id: the same advice
        if repo == PRETRAINED:
            raise Stop(
                f"pretrained GPT-2 ({PRETRAINED}) is not in the local HF cache: run `pixi run weights` "
                "once (needs the network), or pass --model DIR (a save_pretrained directory)"
            ) from None
        raise Stop(
            f"--model {name}: no such directory, and not in the local HF cache (generate never downloads): "
            f"pass a save_pretrained directory, or `pixi run weights` for {PRETRAINED}"
        ) from None


def read_config(path: Path) -> dict:
    try:
        raw = json.loads((path / "config.json").read_text())
    except FileNotFoundError:
        raise Stop(f"{path} has no config.json: pass a directory written by save_pretrained") from None
    except json.JSONDecodeError as error:
        raise Stop(f"{path}/config.json is not valid JSON: {error}") from None
    if raw.get("model_type", "gpt2") != "gpt2":
        raise Stop(f"{path} holds a {raw['model_type']} model; this course builds GPT-2")
    config = {k: raw[k] for k in CONFIG_FIELDS if k in raw}
    generation = path / "generation_config.json"
    eos = json.loads(generation.read_text()).get("eos_token_id") if generation.exists() else None
    eos = raw.get("eos_token_id") if eos is None else eos
    config["eos_id"] = eos[0] if isinstance(eos, list) else eos  # HF generate stops at the same id
    return config


def load_tokenizer(path: Path):
    """HF's GPT-2 tokenizer as the `tokenizers` library reads it (no transformers, no torch)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers

    if (path / "tokenizer.json").exists():
        return Tokenizer.from_file(str(path / "tokenizer.json"))
    if (path / "vocab.json").exists() and (path / "merges.txt").exists():
        tokenizer = Tokenizer(models.BPE.from_file(str(path / "vocab.json"), str(path / "merges.txt")))
        tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
        tokenizer.decoder = decoders.ByteLevel()
        return tokenizer
    raise Stop(
        f"{path} has no tokenizer (tokenizer.json, or vocab.json and merges.txt): "
        "save one there with tokenizer.save_pretrained(DIR)"
    )


def check_ids(ids: list[int], config: dict, args, tokenizer, path: Path) -> None:
    vocab, positions = config["vocab_size"], config["n_positions"]
    if bad := [i for i in ids if not 0 <= i < vocab]:
        raise Stop(
            f"the prompt has token id {bad[0]} ({tokenizer.id_to_token(bad[0])!r}), outside the model's "
            f"vocabulary of {vocab}: the tokenizer in {path} does not belong to this model"
        )
    if len(ids) + args.max_new_tokens > positions:
        room = positions - len(ids)
        fix = f"ask for at most {room} new tokens" if room > 0 else f"shorten the prompt below {positions} tokens"
        raise Stop(
            f"the prompt is {len(ids)} tokens, plus {args.max_new_tokens} new ones makes "
            f"{len(ids) + args.max_new_tokens}: more than the model's {positions} positions; {fix}"
        )
    if not args.greedy and not 1 <= args.top_k <= vocab:
        raise Stop(f"--top-k must be between 1 and the vocabulary size {vocab} (got {args.top_k})")


# -- the model: the chosen source's classes, loaded, moved, compiled once -------------
def choose_source(use: str) -> Source:
    try:
        source = Source(use)
    except StepError as error:
        raise Stop(str(error)) from None
    if stubs := stub_steps(source, STEPS):
        names = ", ".join(f"{n:02d}" for n in stubs)
        raise Stop(
            f"--use {use}: step{'s' if len(stubs) > 1 else ''} {names} still "
            f"{'have' if len(stubs) > 1 else 'has'} TODOs ({source.shown(stubs[0])}"
            f"{', ...' if len(stubs) > 1 else ''}): finish {'them' if len(stubs) > 1 else 'it'} "
            f"(pixi run s{stubs[0]:02d}), or run the reference with --use solutions"
        )
    return source


def device_for(name: str):
    from max.driver import CPU, Accelerator, accelerator_count

    if name == "cpu":
        return CPU()
    if accelerator_count() == 0:
        raise Stop("--device gpu: MAX finds no GPU on this machine; use --device cpu")
    return Accelerator()


def to_device(model, device) -> None:
    """Parameters are loaded on the CPU; a driver copy moves each (no graph, no compile)."""
    from max.driver import CPU
    from max.experimental.tensor import Tensor

    if device != CPU():
        model.apply_to_parameters(lambda _, t: Tensor(storage=t.storage.to(device)))


def build(source: Source, config: dict, path: Path, device, cache: bool | None = None, quantize: str | None = None):
    """(step 12's module, the loop, load seconds, compile seconds).

    `loop(ids, max_new_tokens, sampling, eos_id)` yields new token ids. `cache`: True for step 13's
    KV-cache loop, False for step 12's full forward per token, None for step 13 once it is done.
    `quantize`: "q4_0" swaps the model's Linears for step 14's quantized ones before compiling.
    """
    from tutorial.maxprivate import import_max_lean

    import_max_lean()
    try:
        step12 = source.load(12, chain=True)  # every solutions.solution_NN import now reads `source`
    except StepError as error:
        raise Stop(str(error), 1) from None
    cached = use_cache(source) if cache is None else cache
    step13 = source.load(13, chain=True) if cached else None
    step01 = importlib.import_module("solutions.solution_01")
    step11 = importlib.import_module("solutions.solution_11")
    start = time.perf_counter()
    gpt2_config = step01.GPT2Config(**{k: config[k] for k in CONFIG_FIELDS if k in config})
    model = step11.MaxGPT2LMHeadModel(gpt2_config)
    try:
        step11.load_gpt2(model, path)
    except step11.WeightError as error:
        raise Stop(f"--model {path}: {error}", 1) from None
    to_device(model, device)
    if quantize:
        quantized(source, model)
    loaded = time.perf_counter()
    print(
        "compiling the model (once: a minute or two on a cold MAX cache, seconds after)...", file=sys.stderr, flush=True
    )
    if step13:  # the KV cache: one graph for the prefill and every decode step
        from tutorial import engine

        engine.stream_linears(model)  # a decode step reads every weight once: read them at full speed
        decoder = step13.compile_cached(model, gpt2_config, device)
        agree_with_full_forward(step12, decoder, model, config, device)
        loop = lambda ids, new, sampling, eos: step13.generate_cached(  # noqa: E731
            decoder, ids, new, sampling, n_positions=config["n_positions"], eos_id=eos
        )
        loop.decoder, loop.model = decoder, model  # for `bench --profile`, which times the decode step's parts
    else:  # step 12's loop: a full forward over the whole text per token
        compiled = step12.compile_model(model, device)
        loop = lambda ids, new, sampling, eos: step12.generate(compiled, ids, new, sampling, device=device, eos_id=eos)  # noqa: E731
    return step12, loop, loaded - start, time.perf_counter() - loaded


def agree_with_full_forward(step12, decoder, model, config: dict, device) -> None:
    """Step 13's prefill against step 12's full forward, once, on a fixed 8-token text.

    The KV-cache model reuses the learner's modules but writes its own forward, so a step whose
    __call__ it bypasses (06, 09, 10, 11) could be broken while the cached text looks fine; the
    two must agree before a token is written.
    """
    import numpy as np

    ids = [(7 * i + 3) % config["vocab_size"] for i in range(8)]
    want = step12.next_logits(step12.compile_model(model, device), np.array([ids]), device)[0]
    got, _ = decoder.prefill(ids)
    gap = float(np.abs(got - want).max())
    if not gap <= 1e-2 * max(1.0, float(np.abs(want).max())):
        raise Stop(
            f"step 13's KV-cache model and step 12's full forward disagree on the same 8 tokens' next-token "
            f"logits (max |Δ| = {gap:.3g}): one of the steps they share is wrong; pixi run progress shows which",
            1,
        )


def weight_bytes(model) -> int:
    import numpy as np

    return sum(np.from_dlpack(p).nbytes for _, p in model.parameters)


def quantized(source: Source, model):
    """Step 14's quantize_model on the loaded model, in place; one line for a step 14 still a stub."""
    if stub_steps(source, [14]):
        raise Stop(
            f"--quantize: step 14 still has TODOs ({source.shown(14)}): finish it (pixi run s14), "
            "or run the reference with --use solutions",
            1,
        )
    step14 = source.load(14, chain=True)
    before = weight_bytes(model)
    step14.quantize_model(model)
    print(
        f"weights: {before / 1e6:.1f} MB float32 -> {weight_bytes(model) / 1e6:.1f} MB with Q4_0 matmuls "
        "(wte, wpe, LayerNorms and biases stay float32)",
        file=sys.stderr,
        flush=True,
    )
    return model


# a paragraph the repo ships, for --perplexity: fp32 and Q4_0 scored on the same tokens
PARAGRAPH = (
    "The Eiffel Tower is a wrought-iron lattice tower on the Champ de Mars in Paris, France. It is named "
    "after the engineer Gustave Eiffel, whose company designed and built the tower from 1887 to 1889. "
    "Locally nicknamed the Iron Lady, it was constructed as the centrepiece of the 1889 World's Fair, and "
    "to crown the centennial anniversary of the French Revolution."
)


def perplexity(source: Source, config: dict, path: Path, tokenizer) -> None:
    """exp(mean next-token loss) over PARAGRAPH, fp32 then Q4_0, from one full forward each."""
    import numpy as np
    from max.driver import CPU
    from max.dtype import DType
    from max.experimental.tensor import Tensor
    from max.graph import DeviceRef, TensorType

    from tutorial.maxprivate import import_max_lean

    import_max_lean()
    source.load(12, chain=True)  # every solutions.solution_NN import now reads `source`
    step01 = importlib.import_module("solutions.solution_01")
    step11 = importlib.import_module("solutions.solution_11")
    ids = np.array([tokenizer.encode(PARAGRAPH).ids[: config["n_positions"]]], dtype=np.int64)
    model = step11.MaxGPT2LMHeadModel(step01.GPT2Config(**{k: config[k] for k in CONFIG_FIELDS if k in config}))
    step11.load_gpt2(model, path)
    scores = {}
    for name in ("float32", "Q4_0"):
        if name == "Q4_0":
            quantized(source, model)
        compiled = model.compile(TensorType(DType.int64, list(ids.shape), device=DeviceRef.CPU()))
        z = compiled(Tensor.from_dlpack(ids)).storage.to(CPU()).to_numpy()[0].astype(np.float64)  # [T, vocab]
        logp = z - z.max(-1, keepdims=True)
        logp -= np.log(np.exp(logp).sum(-1, keepdims=True))
        scores[name] = float(np.exp(-logp[np.arange(ids.shape[1] - 1), ids[0, 1:]].mean()))
    print(
        f"perplexity of the {ids.shape[1]}-token paragraph (weights {path}): float32 {scores['float32']:.2f}, "
        f"Q4_0 {scores['Q4_0']:.2f} ({scores['Q4_0'] / scores['float32'] - 1:+.1%})"
    )


def use_cache(source: Source) -> bool:
    """Step 13 (the KV cache) when the source has it finished; otherwise step 12's loop, announced."""
    if source.path(13).exists() and not stub_steps(source, [13]):
        return True
    print(
        "note: step 13 (KV cache) is not done: generating with step 12's loop, a full forward per token",
        file=sys.stderr,
    )
    return False


def stream(step12, loop, ids, args, config, tokenizer) -> tuple[list[int], float, float]:
    """Print the text as it comes; (new ids, seconds to the first token, seconds in all)."""
    sampling = step12.Sampling(
        greedy=args.greedy, temperature=args.temperature or 1.0, top_k=args.top_k, seed=args.seed
    )
    print(args.prompt, end="", flush=True)
    new, shown, first = [], "", None
    start = time.perf_counter()
    try:
        for token in loop(ids, args.max_new_tokens, sampling, config["eos_id"]):
            first = first or time.perf_counter() - start
            new.append(int(token))
            text = tokenizer.decode(new, skip_special_tokens=True)
            if not text.endswith("\ufffd"):  # half of a UTF-8 character: wait for its other bytes
                print(text[len(shown) :], end="", flush=True)
                shown = text
    except KeyboardInterrupt:
        print(flush=True)  # the text so far stays on its own lines; options.run says it stopped
        raise
    print(flush=True)
    return new, first or 0.0, time.perf_counter() - start


def run(argv) -> int:
    args = parse(argv)
    source = choose_source(args.use)
    path = model_dir(args.model)
    config = read_config(path)
    tokenizer = load_tokenizer(path)
    if args.perplexity:  # scores PARAGRAPH, no prompt: nothing to generate
        try:
            perplexity(source, config, path, tokenizer)
        except Stop:
            raise
        except Exception as error:  # the learner's code: one line with file, line and TODO
            raise Stop(explain(error, source.path(14)), 1) from None
        return 0
    ids = tokenizer.encode(args.prompt).ids
    check_ids(ids, config, args, tokenizer, path)
    device = device_for(args.device)
    if missing := [n for n in STEPS if not source.path(n).exists()]:
        names = ", ".join(f"{n:02d}" for n in missing)
        print(f"note: no step {names} in {source.use}/: the reference solution stands in", file=sys.stderr)
    try:
        step12, loop, load_s, compile_s = build(source, config, path, device, quantize=args.quantize)
        new, first, total = stream(step12, loop, ids, args, config, tokenizer)
    except Stop:
        raise
    except Exception as error:  # the learner's code: one line with file, line and TODO
        raise Stop(explain(error, source.path(12)), 1) from None
    mode = "greedy" if args.greedy else f"temperature {args.temperature:g}, top-k {args.top_k}, seed {args.seed}"
    if args.ids:
        print(f"new token ids: {new}", file=sys.stderr)
    print(
        f"{len(new)} new tokens in {total:.2f} s: {len(new) / total:.2f} tok/s; first token after {first:.2f} s "
        f"(load {load_s:.1f} s, compile {compile_s:.1f} s; {mode}; model from {source.use}, {args.device}"
        f"{', ' + args.quantize.upper() if args.quantize else ''})",
        file=sys.stderr,
    )
    return 0


def main(argv=None) -> int:
    try:
        return run(argv)
    except Stop as stop:
        print(f"generate: {stop}", file=sys.stderr)
        return stop.code


if __name__ == "__main__":
    sys.exit(options.run(main, "generate"))
