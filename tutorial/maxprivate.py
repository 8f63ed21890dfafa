"""Every MAX internal the course relies on, and every match on MAX's error text, in one place.

MAX 25.7's Python API does not yet offer all the course needs, so the harness reaches past it in a few
places, and reads a few of MAX's error messages to turn them into advice for the learner. Each one is
here, with the reason it is needed. A MAX upgrade may rename or reword any of them: tests/test_maxprivate.py
checks each against the installed MAX and says which assumption broke.

Nothing here imports MAX at module level: `import_max_lean` must run before MAX is first imported.
"""

from __future__ import annotations

import asyncio
import importlib.util
import os
import re
import sys
import types
from collections.abc import Iterator
from pathlib import Path


# -- importing MAX -------------------------------------------------------------------------------------
def import_max_lean() -> None:
    """Import MAX without the ~6 s it spends on libraries the course never calls.

    `max.dtype` imports torch (3-4 s) only to offer torch dtype conversions, and `max/nn/__init__.py`
    imports MAX's pipeline layers and transformers (~3 s). The course moves data through numpy and uses
    only `max.nn.module_v3`, so every tool calls this first: MAX is imported with torch hidden (MAX
    catches the ImportError and skips its torch extras), and `max.nn` is registered as a bare package
    whose submodules load on demand. torch stays importable afterwards (the HF reference uses it).
    """
    if "max.nn" in sys.modules:
        return
    hide = "torch" not in sys.modules
    if hide:
        sys.modules["torch"] = None  # `import torch` raises ImportError
    try:
        import max.dtype  # noqa: F401
    finally:
        if hide:
            del sys.modules["torch"]
    spec = importlib.util.find_spec("max.nn")
    package = types.ModuleType("max.nn")
    package.__path__ = list(spec.submodule_search_locations)
    package.__spec__ = spec
    sys.modules["max.nn"] = package


# -- eager tensors --------------------------------------------------------------------------------------
def realize(value) -> None:
    """Compute an eager Tensor: what the private `Tensor._sync_realize` does, without `asyncio.run`.

    On Python 3.11, asyncio.run formats its task (result included) when it puts the SIGINT handler back,
    and an eager Tensor's repr lists every value: two seconds for a [2, 8, 50257] logits tensor, twice per
    run. So the graph runs on an event loop of our own, through the same private test MAX uses to tell an
    eager tensor (in MAX's global compute graph) from a symbolic one (`Tensor._in_global_compute_graph`).
    """
    if value.real or not value._in_global_compute_graph:
        value._sync_realize()  # nothing to run, or MAX's own error for a symbolic tensor
        return
    loop = asyncio.new_event_loop()
    try:
        loop.run_until_complete(value.realize)
    finally:
        loop.close()


def seed_eager_graph(seed: int) -> None:
    """Set the random seed of MAX's global eager graph (`max.experimental.tensor.GRAPH`, undocumented).

    That graph carries a random seed that advances as checks run; a moved seed means a different graph and
    a fresh compile. The check harness fixes it before each check, so MAX's compile cache hits in any order.
    """
    from max.experimental import tensor
    from max.graph import ops

    with tensor.GRAPH.graph:
        ops.random.set_seed(seed)


def fresh_eager_graph() -> None:
    """Reset MAX's global eager graph (`max.experimental.tensor.GRAPH`, undocumented, through its class's
    `__init__`) to what a new process has: no sources, no unrealized tensors. For a test that fills it on
    purpose (tests/test_maxprivate.py): otherwise what it left would join the eager graphs of the tests
    after it in the same process, as extra inputs."""
    from max.experimental import tensor

    tensor.ComputeGraph.__init__(tensor.GRAPH, context=tensor.GRAPH.context)


# -- compiled modules -----------------------------------------------------------------------------------
def compiled_model(compiled):
    """The engine Model under what `Module.compile` returns, found by the standard `inspect.unwrap`.

    Module.compile (max/nn/module_v3/module.py) wraps the Model that InferenceSession.load returns in
    `F.functional`, which takes and returns eager Tensors. Every eager Tensor made from a result becomes a
    source of MAX's eager graph (`ComputeGraph.add_source`, max/experimental/tensor.py), which keeps it
    alive and grows the graph's signature by one argument each: a decode loop that feeds the cache back
    through the wrapper slows down step by step (measured: 490 ms a step for GPT-2 124M, 14 ms via the Model)
    and never frees a cache. So step 13's Decoder (tutorial/engine.py) calls the Model itself, with
    driver tensors. F.functional's `functools.wraps` keeps the Model where `inspect.unwrap` finds it;
    for a module with several outputs only (for a single one Module.compile wraps once more, around the
    module itself).
    """
    import inspect

    from max.engine import Model

    model = inspect.unwrap(compiled)
    if not isinstance(model, Model):
        raise TypeError(
            f"inspect.unwrap(Module.compile(...)) is {type(model).__name__}, not a max.engine.Model: MAX changed "
            "how Module.compile wraps its Model (see tutorial/maxprivate.py)"
        )
    return model


# -- compiling -------------------------------------------------------------------------------------------
def compiled_graphs() -> list[Path]:
    """The compiled graphs in MAX's on-disk cache, one file each: $XDG_DATA_HOME/modular (default
    ~/.local/share/modular), under .max_cache/mof/mef/<MAX version>/ in MAX 25.7. The suite counts the
    new ones to say how many distinct graphs it compiled."""
    from importlib.metadata import version

    data = Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share")
    folder = data / "modular" / ".max_cache" / "mof" / "mef" / version("max")
    return list(folder.glob("*")) if folder.is_dir() else []


def compiler_code():
    """The code object every MAX graph compile runs under, or None before MAX is imported.

    That is `InferenceSession.load` (max/engine/api.py): `Module.compile` and the eager graph's evaluation
    (`ComputeGraph.evaluate`, max/experimental/tensor.py) both compile through it, and MAX 25.7 releases
    the GIL while it compiles, so another thread can see it on the stack. The hang watchdog
    (tutorial/watchdog.py) counts no time while a thread is in it: a cold compile is not a hang.
    """
    api = sys.modules.get("max.engine.api")
    return api.InferenceSession.load.__code__ if api else None


# -- MAX's error text -----------------------------------------------------------------------------------
# The RuntimeError of ComputeGraph.evaluate (max/experimental/tensor.py) when the eager graph fails to
# compile or run, e.g. at an index out of range; MAX's own reason is the exception it was raised from.
GRAPH_FAILURE = "Failed to compile and execute graph"


def chain(error: BaseException | None) -> Iterator[BaseException]:
    """The error, then what it was raised from or during."""
    seen = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        yield error
        error = error.__cause__ or error.__context__


def graph_failed(text: str) -> bool:
    """The text is MAX's "the eager graph did not compile or run" (its reason is in the chained error)."""
    return GRAPH_FAILURE in text


def op_failure(message: str) -> str | None:
    """'Failed to create op 'matmul': <MAX's reason>' as one line, from a graph-building error's message.

    Those errors (Graph._add_op, max/graph/graph.py) take several lines: the op, its inputs, then the reason
    after a "Diagnostics:" header. None for any other message.
    """
    lines = [line.strip() for line in message.strip().splitlines() if line.strip()]
    if lines and lines[0].startswith("Failed to create op") and "Diagnostics:" in lines[:-1]:
        return f"{lines[0]} {lines[lines.index('Diagnostics:') + 1]}"
    return None


def index_out_of_bounds(text: str) -> bool:
    """MAX's reason when a gather reads outside its table: "gather index 12 is out of bounds for axis 0 ..."."""
    return "out of bounds" in text


# matmul's diagnostic: "Matrix multiplication input lhs (shape [2, 3]) dimension at axis -1 (value 3) must
# match input rhs (shape [4, 5]) dimension at axis -2 (value 4)"
MATMUL_SHAPES = re.compile(r"lhs \(shape (\[.*?\])\).*rhs \(shape (\[.*?\])\)")


def matmul_shapes(error: BaseException | None) -> tuple[str, str] | None:
    """(lhs shape, rhs shape) as MAX prints them ("[2, 8, 3072]"), when a matmul got widths that do not
    match; looks through the error and what it was raised from. None for any other error."""
    for each in chain(error):
        if found := MATMUL_SHAPES.search(str(each)):
            return found[1], found[2]
    return None


# MAX builds a Dim's arithmetic (x.shape[1] + 1, Dim(n) + num_tokens) as MLIR attributes, which exist only
# while a graph is being built (inside `with Graph(...)`, an @F.functional function, or a traced module);
# outside one, max.graph's dims raise a bare RuntimeError with this text.
NO_MLIR_CONTEXT = "No active MLIR context"


def no_mlir_context(text: str) -> bool:
    """The text is MAX's error for arithmetic on a Dim outside a graph."""
    return NO_MLIR_CONTEXT in text


def softmax_not_last_axis(error: BaseException | None) -> bool:
    """MAX 25.7 compiles softmax only over the last axis; over another, compiling the graph fails with
    "softmax not supported on non-inner axis yet". Looks through the error and what it was raised from."""
    return any("non-inner axis" in str(each) for each in chain(error))
