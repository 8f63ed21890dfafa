"""Running learner code for a check: build it, feed it, read its result, fail in one line.

`call` runs learner code and turns an exception into one line naming the file and line;
`run` and `run_compiled` feed it numpy arrays and give numpy back; `load` loads weights.
What a check then says about the numbers is tutorial/expect.py's vocabulary. Every
failure is a `CheckFailure` whose message is the whole report.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from tutorial import explain, weights
from tutorial.explain import CheckFailure, StepError, describe
from tutorial.maxprivate import realize


@dataclass(frozen=True)
class Tolerance:
    atol: float
    rtol: float
    name: str

    def __str__(self) -> str:
        return f"{self.name}: atol={self.atol:g}, rtol={self.rtol:g}"


# fp32 on the CPU matches torch to ~1e-5 through all 12 blocks; GPU kernels
# reorder sums (logits within ~4e-3 of torch on an H100), so they get more room.
TOLERANCES = {
    "cpu": Tolerance(atol=1e-4, rtol=1e-4, name="CPU fp32"),
    "gpu": Tolerance(atol=2e-2, rtol=2e-2, name="GPU fp32"),
}


@dataclass
class CheckSession:
    """What the checks of one pytest run share: the device (--device). The pytest plugin makes one per
    run (`pytest_configure`). The learner's file under check is failure text's: explain.checking."""

    device: str = "cpu"


SESSION = CheckSession()  # outside pytest (a Try it, the tools): the CPU


def tolerance() -> Tolerance:
    return TOLERANCES[SESSION.device]


def device():
    from max.driver import CPU, Accelerator

    return Accelerator() if SESSION.device == "gpu" else CPU()


def tensor(array: np.ndarray):
    """numpy -> MAX Tensor on the checked device, through the driver (no graph compile)."""
    from max import driver
    from max.experimental.tensor import Tensor

    array = np.ascontiguousarray(array)
    if SESSION.device == "cpu":
        return Tensor.from_dlpack(array)
    return Tensor(storage=driver.Tensor.from_numpy(array).to(device()))


def numpy(value, what: str) -> np.ndarray:
    """A learner's result as numpy; None or a non-tensor fails with what it was."""
    from max.driver import CPU
    from max.experimental.tensor import Tensor

    if value is None:
        raise CheckFailure(f"{what} returned None: a TODO still needs its code")
    if not isinstance(value, Tensor):
        raise CheckFailure(f"{what} returned {type(value).__name__}, expected a max Tensor")
    try:
        realize(value)
        return value.storage.to(CPU()).to_numpy()
    except Exception as error:  # MAX compiles and runs the graph only here
        raise CheckFailure(f"{what}: {describe(error)}") from error


def call(fn, *args, what: str):
    """Call learner code; an exception becomes one line naming the file and line."""
    try:
        return fn(*args)
    except (CheckFailure, StepError):
        raise
    except Exception as error:
        raise CheckFailure(f"{what}: {explain.explain(error, explain.UNDER_CHECK)}") from error


def run(fn, *inputs: np.ndarray, what: str) -> np.ndarray:
    """fn(*inputs as MAX tensors) as numpy."""
    return numpy(call(fn, *(tensor(a) for a in inputs), what=what), what)


def run_compiled(module, *inputs: np.ndarray, what: str) -> np.ndarray:
    """module(*inputs) as numpy, through module.compile for the inputs' shapes. For the 124M
    model: an eager call packs all 500 MB of weights again on every run (1.6 s), a compiled
    one once (0.6 s, cache warm)."""
    from max.dtype import DType
    from max.graph import DeviceRef, TensorType

    types = [TensorType(DType.from_numpy(a.dtype), a.shape, device=DeviceRef.from_device(device())) for a in inputs]
    try:
        compiled = module.compile(*types)
    except Exception as error:  # learner code fails while traced: the eager run says where, and how
        run(module, *inputs, what=what)
        raise CheckFailure(f"{what}: {describe(error)}") from error
    return numpy(call(compiled, *(tensor(a) for a in inputs), what=what), what)


def load(module, state: dict[str, np.ndarray], what: str) -> None:
    """Load reference weights (already in MAX layout), strict by key and shape: tutorial.weights.load."""
    weights.load(module, state, what)


@dataclass(frozen=True)
class Mutation:
    """A mistake learners make, applied to the solution: `check` must fail and say `says`.

    tests/test_mutations.py applies every test file's MUTATIONS to a copy of
    the solution and runs only `check` on it.
    """

    name: str
    old: str  # text in the solution, exactly once
    new: str
    check: Callable  # the test function that must catch it, itself: a renamed test takes its mutations along
    says: str  # a piece of its one-line message
    case: str = ""  # for a parametrized check: the one case to run, as pytest names it

    @property
    def node(self) -> str:
        """The check as pytest selects it in its file: name, or name[case]."""
        return self.check.__name__ + (f"[{self.case}]" if self.case else "")

    def __post_init__(self):
        if not (callable(self.check) and getattr(self.check, "__name__", "").startswith("test_")):
            raise TypeError(f"Mutation {self.name!r}: check must be the test function, not {self.check!r}")
