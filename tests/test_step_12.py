"""Step 12: generation picks HF's tokens: greedy as HF generate, sampling seeded and within the top k."""

import inspect

import numpy as np

from tutorial import checks
from tutorial.checks import CheckFailure, Mutation, call, close, todo

PROMPT = np.array([[464, 2068, 7586, 21831, 18045, 625, 262, 16931]], dtype=np.int64)  # [1, 8]
NEW = 24  # greedy tokens compared with HF generate
EOS = 50256
LOGITS = (np.random.default_rng(0).normal(size=(2, 50)) * 3).astype(np.float32)  # 2 rows of 50 scores
_compiled = {}  # one compile per session: the graph takes any [batch, seq]


def compiled_model(step, small):
    """The small reference GPT-2 with HF's weights, compiled by the learner's compile_model."""
    if id(step) in _compiled:
        return _compiled[id(step)]
    compiled = call(step.compile_model, small.model(step.MaxGPT2LMHeadModel), checks.device(), what="compile_model(model, device)")
    if not callable(compiled):
        raise CheckFailure(f"compile_model returned {type(compiled).__name__}, expected the compiled model ({todo(1)})")
    _compiled[id(step)] = compiled
    return compiled


def last_logits(step, compiled, ids: np.ndarray) -> np.ndarray:
    out = call(
        step.next_logits, compiled, ids, checks.device(), what=f"next_logits(compiled, {list(ids.shape)} ids, device)"
    )
    if not isinstance(out, np.ndarray):
        raise CheckFailure(f"next_logits returned {type(out).__name__}, expected a numpy array ({todo(2)})")
    return out


class FakeModel:
    """Stands in for the compiled model: for T ids it favours token 3 * T (or random scores)."""

    def __init__(self, vocab: int = 50, random: bool = False):
        self.vocab, self.random = vocab, random

    def __call__(self, ids):
        from max.experimental.tensor import Tensor

        batch, seq = (int(d) for d in ids.shape)
        if self.random:
            logits = np.random.default_rng(seq).normal(size=(batch, self.vocab)).astype(np.float32)
        else:
            logits = np.zeros((batch, self.vocab), np.float32)
            logits[:, (3 * seq) % self.vocab] = 1.0
        return Tensor.from_dlpack(logits)


def generated(step, compiled, prompt, new, sampling, eos_id=None) -> list[int]:
    what = f"generate(prompt of {len(prompt)} ids, max_new_tokens={new})"
    out = call(lambda: step.generate(compiled, prompt, new, sampling, device=checks.device(), eos_id=eos_id), what=what)
    if out is None:
        raise CheckFailure(f"{what} returned None: a TODO still needs its code ({todo(5)})")
    if not inspect.isgenerator(out):
        raise CheckFailure(
            f"{what} returned a {type(out).__name__}: yield each token as it is picked, so text can stream ({todo(5)})"
        )
    return [int(t) for t in call(list, out, what=what)]


def test_compiled_model_takes_any_prompt_length(step, small):
    compiled = compiled_model(step, small)
    first = PROMPT[:, :5]
    for ids in (first, np.concatenate([PROMPT, PROMPT[:, ::-1]])):  # [1, 5], then [2, 8] with the same graph
        try:
            got = last_logits(step, compiled, ids)
        except CheckFailure as error:
            if ids is first:
                raise
            raise CheckFailure(
                f'the compiled model ran {list(first.shape)} ids but not {list(ids.shape)}: compile for the symbolic shape ["batch", "seq"] ({todo(1)})'
            ) from error
        want = small.compute(lambda hf, ids: hf(ids).logits[:, -1], ids)
        close(
            got,
            want,
            f"last-position logits of {list(ids.shape)} ids",
            hint=f"return the compiled model's [B, vocab_size] output as numpy ({todo(2)})",
            axes=("batch", "token"),
        )


def test_probabilities_match_torch_softmax_with_temperature_and_top_k(step, small):
    cases = [
        (1.0, None, "softmax the logits", small.compute(lambda hf, x: x.double().softmax(-1), LOGITS)),
        (
            0.5,
            None,
            "divide the logits by temperature first",
            small.compute(lambda hf, x: x.double().div(0.5).softmax(-1), LOGITS),
        ),
        (
            2.0,
            5,
            "keep the top_k highest logits (ties with the k-th too), the rest -inf",
            small.compute(
                lambda hf, x: x.double().div(2.0).masked_fill(x < x.topk(5).values[:, -1:], float("-inf")).softmax(-1),
                LOGITS,
            ),
        ),
    ]
    for temperature, top_k, hint, want in cases:
        for row in range(len(LOGITS)):
            what = f"probabilities(logits, temperature={temperature}, top_k={top_k})"
            got = call(step.probabilities, LOGITS[row], temperature, top_k, what=what)
            if got is None:
                raise CheckFailure(f"{what} returned None: a TODO still needs its code ({todo(3)})")
            close(np.asarray(got, dtype=np.float64), want[row], what, hint=f"{hint} ({todo(3)})", axes=("token",))
    big = call(step.probabilities, LOGITS[0] + 1000, 1.0, None, what="probabilities(logits + 1000)")
    if not np.all(np.isfinite(big)):
        raise CheckFailure(
            f"probabilities of logits near 1000 contain NaN or inf: exp overflows; subtract the largest logit first ({todo(3)})"
        )


def test_greedy_pick_is_the_highest_logit(step):
    rng = np.random.default_rng(0)
    for row in LOGITS:
        got = call(step.pick, row, step.Sampling(greedy=True), rng, what="pick(logits, Sampling(greedy=True), rng)")
        if got is None:
            raise CheckFailure(f"pick returned None: a TODO still needs its code ({todo(4)})")
        if not isinstance(got, (int, np.integer)) or int(got) != int(np.argmax(row)):
            raise CheckFailure(
                f"greedy pick gave {got!r}, the highest logit is token {int(np.argmax(row))} ({todo(4)})"
            )


def test_sampling_is_seeded_and_follows_the_probabilities(step):
    sampling = step.Sampling(greedy=False, temperature=1.5, top_k=5)
    row = LOGITS[0]
    what = "pick(logits, Sampling(greedy=False, temperature=1.5, top_k=5), rng)"
    draws = [
        [call(step.pick, row, sampling, rng, what=what) for _ in range(2000)]
        for rng in (np.random.default_rng(7), np.random.default_rng(7))
    ]
    if None in draws[0]:
        raise CheckFailure(f"pick returned None: a TODO still needs its code ({todo(4)})")
    if draws[0] != draws[1]:
        raise CheckFailure(
            f"two Generators with the same seed drew different tokens: draw with the rng argument (rng.choice), not np.random ({todo(4)})"
        )
    top = set(np.argsort(row)[-5:].tolist())
    if outside := sorted(set(map(int, draws[0])) - top):
        raise CheckFailure(
            f"sampling with top_k=5 drew token {outside[0]}, which is not among the 5 highest logits ({todo(4)})"
        )
    scaled = np.where(np.isin(np.arange(row.size), list(top)), row / 1.5, -np.inf)
    want = np.exp(scaled - scaled.max()) / np.exp(scaled - scaled.max()).sum()
    freq = np.bincount(np.array(draws[0], dtype=np.int64), minlength=row.size) / len(draws[0])
    worst = int(np.argmax(np.abs(freq - want)))
    if abs(freq[worst] - want[worst]) > 0.05:  # 2000 draws: 4 standard errors
        raise CheckFailure(
            f"token {worst} was drawn {freq[worst]:.0%} of the time, its probability is {want[worst]:.0%}: draw from probabilities(logits, temperature, top_k) ({todo(4)})"
        )


def test_generation_stops_at_max_new_tokens_or_eos(step):
    fake = FakeModel()
    got = generated(step, fake, [1, 2, 3], 6, step.Sampling())
    want = [9, 12, 15, 18, 21, 24]  # 3 * T for T = 3, 4, ...: each pick is fed back in
    if got != want:
        raise CheckFailure(
            f"greedy generation on a test model gave {got}, expected {want}: "
            f"max_new_tokens picks, each appended before the next ({todo(5)})"
        )
    got = generated(step, fake, [1, 2, 3], 6, step.Sampling(), eos_id=15)
    if got != [9, 12, 15]:
        raise CheckFailure(
            f"with eos_id=15, generation gave {got}, expected [9, 12, 15]: yield the EOS token, then stop ({todo(5)})"
        )


def test_sampled_generation_is_reproducible(step):
    fake = FakeModel(random=True)
    runs = [
        generated(step, fake, [1, 2, 3], 12, step.Sampling(greedy=False, top_k=10, seed=seed)) for seed in (3, 3, 4)
    ]
    if runs[0] != runs[1]:
        raise CheckFailure(
            f"two runs with seed 3 gave {runs[0]} and {runs[1]}: make one Generator from sampling.seed per call ({todo(5)})"
        )
    if runs[0] == runs[2]:
        raise CheckFailure(f"seed 3 and seed 4 gave the same tokens: seed the Generator with sampling.seed ({todo(5)})")


def test_greedy_generation_matches_hf_generate(step, small):
    compiled = compiled_model(step, small)
    got = generated(step, compiled, PROMPT[0].tolist(), NEW, step.Sampling(), eos_id=EOS)
    want = small.compute(
        lambda hf, ids: hf.generate(
            ids, attention_mask=ids * 0 + 1, max_new_tokens=24, do_sample=False, pad_token_id=50256
        )[:, ids.shape[1] :],
        PROMPT,
    )
    want = [int(t) for t in want[0]]
    want = want[: want.index(EOS) + 1] if EOS in want else want  # HF pads after EOS
    for i, (a, b) in enumerate(zip(got, want)):
        if a != b:
            raise CheckFailure(
                f"greedy generation differs from HF generate at new token {i}: got {a}, HF chose {b} ({todo(5)})"
            )
    if len(got) != len(want):
        raise CheckFailure(f"greedy generation gave {len(got)} new tokens, HF generate {len(want)} ({todo(5)})")


MUTATIONS = [
    Mutation(
        "compiled for one fixed shape",
        '["batch", "seq"]',
        "[1, 5]",
        "test_compiled_model_takes_any_prompt_length",
        "symbolic shape",
    ),
    Mutation(
        "logits of the first position",
        "self.model(input_ids)[:, -1]",
        "self.model(input_ids)[:, 0]",
        "test_greedy_generation_matches_hf_generate",
        "differs from HF generate",
    ),
    Mutation(
        "no temperature",
        "logits.astype(np.float64) / temperature",
        "logits.astype(np.float64)",
        "test_probabilities_match_torch_softmax_with_temperature_and_top_k",
        "divide the logits by temperature",
    ),
    Mutation(
        "top-k drops the k-th",
        "scaled >= kth",
        "scaled > kth",
        "test_probabilities_match_torch_softmax_with_temperature_and_top_k",
        "keep the top_k highest",
    ),
    Mutation(
        "exp without the max",
        "np.exp(scaled - scaled.max())",
        "np.exp(scaled)",
        "test_probabilities_match_torch_softmax_with_temperature_and_top_k",
        "exp overflows",
    ),
    Mutation(
        "unseeded draw",
        "int(rng.choice(",
        "int(np.random.choice(",
        "test_sampling_is_seeded_and_follows_the_probabilities",
        "same seed",
    ),
    Mutation(
        "top-k ignored when sampling",
        "sampling.temperature, sampling.top_k)",
        "sampling.temperature)",
        "test_sampling_is_seeded_and_follows_the_probabilities",
        "not among the 5 highest",
    ),
    Mutation(
        "no stop at EOS",
        "if token == eos_id:",
        "if False:",
        "test_generation_stops_at_max_new_tokens_or_eos",
        "then stop",
    ),
    Mutation(
        "new token not fed back",
        "ids.append(token)",
        "pass",
        "test_generation_stops_at_max_new_tokens_or_eos",
        "each appended",
    ),
    Mutation(
        "one token short",
        "for _ in range(max_new_tokens):",
        "for _ in range(max_new_tokens - 1):",
        "test_generation_stops_at_max_new_tokens_or_eos",
        "max_new_tokens picks",
    ),
    Mutation(
        "Generator ignores the seed",
        "np.random.default_rng(sampling.seed)",
        "np.random.default_rng(0)",
        "test_sampled_generation_is_reproducible",
        "seed 3 and seed 4",
    ),
]
