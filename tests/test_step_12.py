"""Step 12: generation picks HF's tokens: greedy as HF generate, sampling seeded and within the top k."""

import numpy as np
import pytest

from tutorial.checks import CheckFailure, Mutation, device, tensor
from tutorial.expect import expect_close, expect_tokens, returned, yielded
from tutorial.explain import todo_place

PROMPT, NEW, EOS = np.array([[464, 2068, 7586, 21831, 18045, 625, 262, 16931]]), 24, 50256  # 24 greedy tokens, or EOS
LAST = lambda hf, ids: hf(ids).logits[:, -1]  # noqa: E731 (HF's last-position logits)
LOGITS = (np.random.default_rng(0).normal(size=(2, 50)) * 3).astype(np.float32)  # 2 rows of 50 scores


@pytest.fixture(scope="module")
def compiled(step, small):  # the small reference GPT-2 with HF's weights, compiled once by the learner's compile_model
    return returned(step.compile_model, small.model(step.MaxGPT2LMHeadModel), device(), what="compile_model", todo=1)


def fake(ids, random: bool = False):  # stands in for the compiled model: for T ids it favours token 3 * T
    batch, seq = (int(d) for d in ids.shape)
    rows = np.random.default_rng(seq).normal(size=(batch, 50)) if random else np.eye(50)[[3 * seq % 50] * batch]
    return tensor(rows.astype(np.float32))


def generate(step, model, prompt, new, sampling, eos_id=None) -> list[int]:
    what, on = f"generate(prompt of {len(prompt)} ids, max_new_tokens={new})", device()
    return yielded(step.generate, model, prompt, new, sampling, what=what, todo=5, device=on, eos_id=eos_id)


def test_compiled_model_takes_any_prompt_length(step, compiled, small):
    again = f', after [1, 5] ids: compile for the symbolic shape ["batch", "seq"] ({todo_place(1)})'
    for ids, what in ((PROMPT[:, :5], "[1, 5] ids"), (np.concatenate([PROMPT, PROMPT[:, ::-1]]), "[2, 8] ids")):
        on = f"next_logits of {what}{again if len(ids) > 1 else ''}"  # the same graph for both
        got = returned(step.next_logits, compiled, ids, device(), what=on, todo=2)
        expect_close(np.asarray(got), small.compute(LAST, ids), f"logits of {what}", axes=("batch", "token"), todo=2)


def test_probabilities_match_torch_softmax_with_temperature_and_top_k(step, small):
    cases = {"softmax the logits": (1.0, None), "divide the logits by temperature first": (0.5, None)}
    cases["keep the top_k highest logits (ties with the k-th too), the rest -inf"] = (2.0, 5)
    cases["top_k=1 keeps the single highest logit: probability 1"] = (1.0, 1)
    vocab = LOGITS.shape[1]  # HF clamps a top_k beyond the vocabulary to all of it
    cases[f"top_k >= the vocabulary ({vocab}) keeps every token, as HF's top-k clamps it"] = (1.0, vocab + 10)
    for hint, (temperature, top_k) in cases.items():

        def hf_sampling(hf, x):  # HF generate's warpers: temperature, then top-k, then softmax
            from transformers import TemperatureLogitsWarper, TopKLogitsWarper

            x = TemperatureLogitsWarper(temperature)(None, x.double())
            return (TopKLogitsWarper(top_k)(None, x) if top_k else x).softmax(-1)

        what = f"probabilities(logits, temperature={temperature}, top_k={top_k})"
        got = [returned(step.probabilities, row, temperature, top_k, what=what, todo=3) for row in LOGITS]
        expect_close(np.array(got, np.float64), small.compute(hf_sampling, LOGITS), what, todo=3, hint=hint)
    big = returned(step.probabilities, LOGITS[0] + 1000, 1.0, None, what="probabilities(logits + 1000)", todo=3)
    if not np.isfinite(big).all():
        raise CheckFailure(
            f"probabilities(logits + 1000) hold NaN: exp overflows; subtract the max first ({todo_place(3)})"
        )


def test_greedy_pick_is_the_highest_logit(step):
    got = [returned(step.pick, r, step.Sampling(), np.random.default_rng(0), what="pick", todo=4) for r in LOGITS]
    if got != (want := np.argmax(LOGITS, axis=1).tolist()):
        raise CheckFailure(f"greedy pick gave {got}, the highest logits are tokens {want} ({todo_place(4)})")


def test_sampling_is_seeded_and_follows_the_probabilities(step):
    sampling, what = step.Sampling(greedy=False, temperature=1.5, top_k=5), "pick(temperature=1.5, top_k=5)"
    draw = lambda rng: [returned(step.pick, LOGITS[0], sampling, rng, what=what, todo=4) for _ in range(2000)]  # noqa: E731
    draws = [draw(np.random.default_rng(7)), draw(np.random.default_rng(7))]
    if draws[0] != draws[1]:
        raise CheckFailure(
            f"two Generators of the same seed drew other tokens: draw with rng, not np.random ({todo_place(4)})"
        )
    top = np.argsort(LOGITS[0])[-5:]
    if outside := sorted(set(draws[0]) - set(top.tolist())):
        raise CheckFailure(
            f"top_k=5 drew token {outside[0]}, which is not among the 5 highest logits ({todo_place(4)})"
        )
    want = (weights := np.where(np.isin(np.arange(50), top), np.exp(LOGITS[0] / 1.5), 0)) / weights.sum()
    if abs((freq := np.bincount(draws[0], minlength=50) / 2000) - want).max() > 0.05:  # 2000 draws: 4 std errors
        t, says = np.argmax(abs(freq - want)), "draw from probabilities(logits, temperature, top_k)"
        raise CheckFailure(
            f"token {t} was drawn {freq[t]:.0%} of the time, p = {want[t]:.0%}: {says} ({todo_place(4)})"
        )


def test_generation_stops_at_max_new_tokens_or_eos(step):
    stops = {None: "max_new_tokens picks, each appended before the next", 15: "yield the EOS token, then stop"}
    for eos, hint in stops.items():
        got, want = generate(step, fake, [1, 2, 3], 6, step.Sampling(), eos), [9, 12, 15, 18, 21, 24][: 3 if eos else 6]
        expect_tokens(got, want, "greedy generation", of=f"the test model (eos_id={eos})", todo=5, hint=hint)


def test_sampled_generation_is_reproducible(step):
    sampled = [step.Sampling(greedy=False, top_k=10, seed=seed) for seed in (3, 3, 4)]
    runs = [generate(step, lambda ids: fake(ids, random=True), [1, 2, 3], 12, sampling) for sampling in sampled]
    if runs[0] != runs[1]:
        raise CheckFailure(
            f"seed 3 gave {runs[0]}, then {runs[1]}: one Generator of sampling.seed per call ({todo_place(5)})"
        )
    if runs[0] == runs[2]:
        raise CheckFailure(
            f"seed 3 and seed 4 gave the same tokens: seed the Generator with sampling.seed ({todo_place(5)})"
        )


def test_greedy_generation_matches_hf_generate(step, compiled, small):
    got = generate(step, compiled, PROMPT[0].tolist(), NEW, step.Sampling(), eos_id=EOS)
    hf_greedy = lambda hf, ids: hf.generate(ids, max_new_tokens=NEW, do_sample=False, pad_token_id=EOS)  # noqa: E731
    want = small.compute(hf_greedy, PROMPT)[0, PROMPT.shape[1] :].astype(int).tolist()
    expect_tokens(got, want[: want.index(EOS) + 1] if EOS in want else want, "greedy generation", todo=5)  # pads after


PROBS = test_probabilities_match_torch_softmax_with_temperature_and_top_k
SAMPLE = test_sampling_is_seeded_and_follows_the_probabilities
STOPS, GREEDY = test_generation_stops_at_max_new_tokens_or_eos, test_greedy_generation_matches_hf_generate
ANY, SEEDED = test_compiled_model_takes_any_prompt_length, test_sampled_generation_is_reproducible
MUTATIONS = [
    Mutation("compiled for one fixed shape", '["batch", "seq"]', "[1, 5]", ANY, "symbolic shape"),
    Mutation("first position's logits", "(input_ids)[:, -1]", "(input_ids)[:, 0]", GREEDY, "differs from HF generate"),
    Mutation("no temperature", "np.float64) / temperature", "np.float64)", PROBS, "divide the logits by temperature"),
    Mutation("top-k drops the k-th", "scaled >= kth", "scaled > kth", PROBS, "keep the top_k highest"),
    Mutation("top_k not clamped", " and top_k < scaled.size", "", PROBS, "top_k=60"),
    Mutation("top_k=1 taken as no filter", "top_k is not None and", "top_k and top_k > 1 and", PROBS, "top_k=1"),
    Mutation("exp without the max", "np.exp(scaled - scaled.max())", "np.exp(scaled)", PROBS, "exp overflows"),
    Mutation("unseeded draw", "int(rng.choice(", "int(np.random.choice(", SAMPLE, "same seed"),
    Mutation("top-k ignored when sampling", "sampling.top_k)", ")", SAMPLE, "not among the 5 highest"),
    Mutation("no stop at EOS", "if token == eos_id:", "if False:", STOPS, "then stop"),
    Mutation("new token not fed back", "ids.append(token)", "pass", STOPS, "each appended"),
    Mutation("one token short", "range(max_new_tokens)", "range(max_new_tokens - 1)", STOPS, "max_new_tokens picks"),
    Mutation("Generator ignores the seed", "default_rng(sampling.seed)", "default_rng(0)", SEEDED, "seed 3 and seed 4"),
]
