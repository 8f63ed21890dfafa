"""The steps of the course, in order. Every tool and test reads this table."""

from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

TITLES = {
    1: "Model configuration",
    2: "Causal masking",
    3: "Layer normalization",
    4: "Feed-forward network",
    5: "Token embeddings",
    6: "Position embeddings",
    7: "Multi-head attention",
    8: "Residual connections",
    9: "Transformer block",
    10: "Stacking blocks",
    11: "Language-model head",
    12: "Text generation",
    13: "KV cache",
}


def stub_path(n: int) -> Path:
    return ROOT / "steps" / f"step_{n:02d}.py"


def solution_path(n: int) -> Path:
    return ROOT / "solutions" / f"solution_{n:02d}.py"


def test_path(n: int) -> Path:
    return ROOT / "tests" / f"test_step_{n:02d}.py"


def chapter_path(n: int) -> Path:
    return ROOT / "book" / "src" / f"step_{n:02d}.md"


def built() -> list[int]:
    """The steps that exist so far (a stub and a test), in order."""
    return [n for n in TITLES if stub_path(n).exists() and test_path(n).exists()]


def next_step(n: int) -> int | None:
    later = [m for m in built() if m > n]
    return later[0] if later else None
