"""`pixi run generate` end to end, offline: a tiny random GPT-2 with its own tokenizer (tests/support/tiny.py).

Its greedy tokens must be HF generate's; each bad input must end in one line
on stderr and a non-zero exit, without a traceback.
"""

import json
import re
import shutil

import numpy as np
import pytest

from tests.support import tiny as tiny_model
from tutorial.course import solution_path, stub_path
from tests.support.run import command
from tests.support.tiny import PROMPT

NEW = 24


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """{"dir": checkpoint, "hf": HF's greedy new tokens, ...} for the tiny model."""
    root = tmp_path_factory.mktemp("tiny-gpt2")
    tok = tiny_model.tokenizer()
    model = tiny_model.save_model(root / "model", tok, len(tok))
    tiny_model.save_model(root / "small-vocab", tok, 257)  # the tokenizer's merges (ids >= 257) are not in it
    return {"root": root, "dir": root / "model", "hf": tiny_model.hf_greedy(model, tok, PROMPT, NEW), "vocab": len(tok)}


def generate(*args, env: dict | None = None):
    """`python -m tutorial.generate *args`, in a process of its own (tests/support/run.py), with `env`
    added to its environment."""
    return command("tutorial.generate", list(args), timeout=540, env=env)


def new_ids(run) -> list[int]:
    line = next(x for x in run.stderr.splitlines() if x.startswith("new token ids: "))
    return json.loads(line.removeprefix("new token ids: "))


def test_greedy_tokens_are_hf_generate_tokens(tiny):
    run = generate(
        "--model", tiny["dir"], "--prompt", PROMPT, "--max-new-tokens", NEW, "--greedy", "--use", "solutions", "--ids"
    )
    assert run.returncode == 0, run.stderr[-2000:]
    assert len(tiny["hf"]) >= 20, f"HF stopped after {len(tiny['hf'])} tokens: the test model needs another seed"
    assert new_ids(run) == tiny["hf"]
    assert run.stdout.startswith(PROMPT)
    assert " tok/s; first token after " in run.stderr.splitlines()[-1]


def test_my_model_from_a_directory_of_steps(tiny, tmp_path):
    """--use DIR builds every layer from DIR's step files (here: copies of the solutions)."""
    for n in range(1, 13):
        shutil.copy(solution_path(n), tmp_path / f"step_{n:02d}.py")
    run = generate(
        "--model", tiny["dir"], "--prompt", PROMPT, "--max-new-tokens", NEW, "--greedy", "--use", tmp_path, "--ids"
    )
    assert run.returncode == 0, run.stderr[-2000:]
    assert new_ids(run) == tiny["hf"]


def test_sampling_is_reproducible_from_the_seed(tiny):
    args = [
        "--model",
        tiny["dir"],
        "--prompt",
        PROMPT,
        "--max-new-tokens",
        16,
        "--temperature",
        1.5,
        "--top-k",
        50,
        "--use",
        "solutions",
        "--ids",
    ]
    runs = [generate(*args, "--seed", seed) for seed in (1, 1, 2)]
    assert all(r.returncode == 0 for r in runs), runs[0].stderr[-2000:]
    assert new_ids(runs[0]) == new_ids(runs[1]) and runs[0].stdout == runs[1].stdout
    assert new_ids(runs[0]) != new_ids(runs[2])


def broken_dir(tiny, tmp_path, edit):
    from safetensors.numpy import load_file, save_file

    shutil.copytree(tiny["dir"], tmp_path / "broken")
    state = load_file(str(tmp_path / "broken" / "model.safetensors"))
    edit(state)
    save_file(state, str(tmp_path / "broken" / "model.safetensors"), metadata={"format": "pt"})
    return tmp_path / "broken"


def one_line_error(run, says: str, code: int | None = None):
    lines = run.stderr.strip().splitlines()
    assert run.returncode != 0 and (code is None or run.returncode == code), run.stderr[-2000:]
    assert "Traceback" not in run.stderr, run.stderr[-2000:]
    assert len(lines) == 1 and lines[0].startswith("generate: "), run.stderr[-2000:]
    assert says in lines[0], lines[0]


BAD = {
    "empty prompt": (["--prompt", ""], "the prompt is empty"),
    "prompt longer than the model": (["--max-new-tokens", 60], "more than the model's 64 positions"),
    "temperature 0 when sampling": (["--temperature", 0], "--temperature must be > 0"),
    "negative temperature": (["--temperature", -1], "--temperature must be > 0"),
    "top-k 0": (["--top-k", 0], "--top-k must be between 1 and the vocabulary size"),
    "top-k above the vocabulary": (["--top-k", 100000], "--top-k must be between 1 and the vocabulary size"),
    "greedy with a temperature": (["--greedy", "--temperature", 0.5], "--greedy takes the most likely token"),
    "zero new tokens": (["--max-new-tokens", 0], "--max-new-tokens must be at least 1"),
    "not a number": (["--top-k", "many"], "invalid int value: 'many'"),
}


@pytest.mark.parametrize("case", BAD)
def test_bad_input_is_one_line(tiny, case):
    args, says = BAD[case]
    base = {"--model": tiny["dir"], "--prompt": PROMPT, "--use": "solutions", "--max-new-tokens": 8}
    flags = [x for k, v in base.items() if k not in args for x in (k, v)]
    one_line_error(generate(*flags, *args), says, code=2)


def test_missing_tensor_is_named(tiny, tmp_path):
    path = broken_dir(tiny, tmp_path, lambda s: s.pop("transformer.h.1.mlp.c_fc.bias"))
    run = generate("--model", path, "--prompt", PROMPT, "--use", "solutions", "--max-new-tokens", 8)
    one_line_error(run, "missing weight 'transformer.h.1.mlp.c_fc.bias'", code=1)


def test_wrong_shaped_tensor_is_named_with_both_shapes(tiny, tmp_path):
    path = broken_dir(tiny, tmp_path, lambda s: s.update({"transformer.wpe.weight": np.zeros((32, 64), np.float32)}))
    run = generate("--model", path, "--prompt", PROMPT, "--use", "solutions", "--max-new-tokens", 8)
    one_line_error(run, "weight 'transformer.wpe.weight' has shape [32, 64], the model expects [64, 64]", code=1)


def test_token_outside_the_vocabulary_is_refused(tiny):
    run = generate("--model", tiny["root"] / "small-vocab", "--prompt", PROMPT, "--use", "solutions")
    one_line_error(run, "outside the model's vocabulary of 257")


def test_unknown_model_name_offline(tiny):
    one_line_error(generate("--model", "nobody/no-such-gpt2", "--use", "solutions"), "not in the local HF cache")


def test_missing_pretrained_weights_say_how_to_get_them(tmp_path):
    run = generate("--use", "solutions", env={"HF_HOME": str(tmp_path / "empty-hf-home")})
    one_line_error(run, "run `pixi run weights`")


def test_unfinished_steps_are_named(tiny, tmp_path):
    for n in range(1, 13):
        shutil.copy(solution_path(n), tmp_path / f"step_{n:02d}.py")
    with open(tmp_path / "step_12.py", "a") as step:
        step.write("# TODO 5: a task left\n")
    run = generate("--model", tiny["dir"], "--use", tmp_path)
    one_line_error(run, "step 12 still has TODOs")


def test_gpu_without_a_gpu(tiny):
    from max.driver import accelerator_count

    if accelerator_count():
        pytest.skip("this machine has a GPU")
    one_line_error(
        generate("--model", tiny["dir"], "--use", "solutions", "--max-new-tokens", 8, "--device", "gpu"), "no GPU"
    )


def test_quantize_q4_0_runs_step_14_in_step_13s_loop(tiny):
    """--quantize q4_0: step 14's Linears in the KV-cache loop, weights' size and tok/s printed. Its greedy tokens
    are Q4_0's own: a random-init model's top two logits are often closer than Q4_0's error, so they are not HF's."""
    args = ["--model", tiny["dir"], "--prompt", PROMPT, "--max-new-tokens", NEW, "--greedy", "--use", "solutions"]
    run = generate(*args, "--ids", "--quantize", "q4_0")
    assert run.returncode == 0, run.stderr[-2000:]
    assert len(new_ids(run)) == NEW, run.stderr[-2000:]
    assert re.search(r"weights: [\d.]+ MB float32 -> [\d.]+ MB with Q4_0 matmuls", run.stderr), run.stderr[-2000:]
    assert " tok/s; first token after " in run.stderr.splitlines()[-1] and "Q4_0)" in run.stderr.splitlines()[-1]


def test_quantize_with_step_14_still_a_stub_is_one_line(tiny, tmp_path):
    for n in range(1, 14):
        shutil.copy(solution_path(n), tmp_path / f"step_{n:02d}.py")
    shutil.copy(stub_path(14), tmp_path / "step_14.py")
    run = generate(
        "--model", tiny["dir"], "--prompt", PROMPT, "--max-new-tokens", 8, "--use", tmp_path, "--quantize", "q4_0"
    )
    one_line_error(run, "step 14 still has TODOs", 1)


def test_quantize_perplexity_scores_the_paragraph_fp32_and_q4_0(tiny):
    run = generate("--model", tiny["dir"], "--use", "solutions", "--quantize", "q4_0", "--perplexity")
    assert run.returncode == 0, run.stderr[-2000:]
    assert re.search(r"perplexity of the \d+-token paragraph .+: float32 [\d.]+, Q4_0 [\d.]+", run.stdout), run.stdout
