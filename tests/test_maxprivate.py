"""Every MAX internal and error text in tutorial/maxprivate.py still holds for the installed MAX.

One test per assumption, each on the tiniest graph that shows it. After a MAX upgrade, a failure here
says which assumption broke, before it shows up as a puzzling message in a learner's check.
"""

import os
import subprocess
import sys

import numpy as np
import pytest

from tutorial import maxprivate
from tutorial.course import ROOT


def failure_of(make, what: str) -> BaseException:
    """The error of realizing make()'s eager tensor, with its traceback dropped: a traceback keeps the
    failed tensor alive, and MAX would put it in every later eager graph of the session."""
    try:
        maxprivate.realize(make())
    except Exception as error:
        for each in maxprivate.chain(error):
            each.__traceback__ = None
        return error
    pytest.fail(f"MAX changed: {what} now runs; the advice tutorial/maxprivate.py matches it for never shows")


def test_max_imports_without_torch_and_the_pipeline_layers():
    code = (
        "import sys\n"
        "from tutorial.maxprivate import import_max_lean\n"
        "import_max_lean()\n"
        "import max.driver, max.dtype, max.engine, max.graph\n"
        "import max.experimental.functional, max.experimental.tensor, max.nn.module_v3\n"
        "print(sorted(m for m in ('torch', 'transformers') if m in sys.modules))\n"
    )
    run = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, (
        "MAX changed: with torch hidden and max.nn a bare package, importing MAX failed "
        f"(import_max_lean): {run.stderr.strip().splitlines()[-1:]}"
    )
    assert run.stdout.strip() == "[]", (
        f"MAX changed: importing it through import_max_lean still loads {run.stdout.strip()}, "
        "the libraries it exists to skip"
    )


def test_realize_computes_an_eager_tensor():
    from max.driver import CPU
    from max.experimental.tensor import Tensor

    for name in ("_in_global_compute_graph", "_sync_realize", "realize"):
        assert hasattr(Tensor, name), f"MAX changed: Tensor.{name}, which maxprivate.realize uses, is gone"
    y = Tensor.from_dlpack(np.arange(3, dtype=np.float32)) + 1
    assert not y.real and y._in_global_compute_graph, (
        "MAX changed: an eager result is no longer an unrealized tensor of the global compute graph "
        "(Tensor.real, Tensor._in_global_compute_graph)"
    )
    maxprivate.realize(y)
    assert y.real, "MAX changed: maxprivate.realize (awaiting Tensor.realize) no longer realizes an eager tensor"
    assert y.storage.to(CPU()).to_numpy().tolist() == [1, 2, 3], "MAX changed: realize computed wrong values"


def test_realize_refuses_a_symbolic_tensor():
    from max.dtype import DType
    from max.experimental.tensor import Tensor
    from max.graph import DeviceRef, Graph, TensorType

    with Graph("symbolic", input_types=[TensorType(DType.float32, [3], device=DeviceRef.CPU())]) as graph:
        x = Tensor(value=graph.inputs[0].tensor)
        assert not x._in_global_compute_graph, (
            "MAX changed: Tensor._in_global_compute_graph is True for a tensor of another graph"
        )
        with pytest.raises(TypeError, match="symbolic"):  # not a hang, not a run of the eager graph
            maxprivate.realize(x)


def test_seed_eager_graph():
    from max.experimental import tensor
    from max.graph import Graph

    graph = getattr(getattr(tensor, "GRAPH", None), "graph", None)
    assert isinstance(graph, Graph), (
        "MAX changed: max.experimental.tensor.GRAPH.graph (the eager graph, seeded before each check) is gone"
    )
    maxprivate.seed_eager_graph(0)


def test_fresh_eager_graph_forgets_every_eager_tensor():
    from max.experimental import tensor
    from max.experimental.tensor import Tensor

    kept = Tensor.from_dlpack(np.ones(3, dtype=np.float32)) + 1  # an unrealized eager tensor
    assert tensor.GRAPH.unrealized, "MAX changed: GRAPH.unrealized no longer lists eager tensors not yet computed"
    maxprivate.fresh_eager_graph()
    assert not tensor.GRAPH.sources and not tensor.GRAPH.unrealized, (
        "MAX changed: ComputeGraph.__init__ no longer empties the eager graph (tests here rely on it)"
    )
    del kept


def test_compiled_model_is_the_engine_model_under_module_compile():
    from max import driver
    from max.dtype import DType
    from max.engine import Model
    from max.graph import DeviceRef, TensorType
    from max.nn.module_v3 import Module

    class Two(Module):  # several outputs, as step 13's GPT2WithCache
        def __call__(self, x):
            return x + 1, x * 2

    compiled = Two().compile(TensorType(DType.float32, [3], device=DeviceRef.CPU()))
    model = maxprivate.compiled_model(compiled)
    assert isinstance(model, Model)
    out = model.execute(driver.Tensor.from_numpy(np.arange(3, dtype=np.float32)))
    assert all(isinstance(o, driver.Tensor) for o in out), (
        "MAX changed: the Model under Module.compile no longer returns driver tensors"
    )
    assert [o.to_numpy().tolist() for o in out] == [[1, 2, 3], [0, 2, 4]]


def test_the_compiled_callables_results_stay_in_the_eager_graph():
    """Why step 13's Decoder calls the engine Model: every result of Module.compile's callable becomes a
    source of the eager graph and stays there. If MAX stops doing that, the Decoder can use the callable."""
    from max import driver
    from max.dtype import DType
    from max.experimental import tensor
    from max.experimental.tensor import Tensor
    from max.graph import DeviceRef, TensorType
    from max.nn.module_v3 import Module

    class Two(Module):
        def __call__(self, x):
            return x + 1, x * 2

    compiled = Two().compile(TensorType(DType.float32, [3], device=DeviceRef.CPU()))
    x = Tensor(storage=driver.Tensor.from_numpy(np.arange(3, dtype=np.float32)))
    before = len(tensor.GRAPH.sources)
    for _ in range(5):
        compiled(x)
    grew = len(tensor.GRAPH.sources) - before
    assert grew == 10, f"MAX changed: 5 calls of 2 results added {grew} eager-graph sources, not 10"
    maxprivate.fresh_eager_graph()


def test_a_matmul_of_mismatched_widths_names_both_shapes():
    from max.experimental.tensor import Tensor

    x, w = Tensor.from_dlpack(np.ones((2, 3), np.float32)), Tensor.from_dlpack(np.ones((4, 5), np.float32))
    with pytest.raises(Exception) as caught:
        x @ w  # MAX refuses it as it builds the op: no compile
    error = caught.value
    line = maxprivate.op_failure(str(error))
    assert line and line.startswith("Failed to create op 'matmul':"), (
        f"MAX changed: a graph-building error is no longer 'Failed to create op' + 'Diagnostics:' + reason: {error}"
    )
    assert maxprivate.matmul_shapes(error) == ("[2, 3]", "[4, 5]"), (
        f"MAX changed: matmul_shapes does not find 'lhs (shape ...)' and 'rhs (shape ...)' in: {line}"
    )


def test_softmax_over_a_non_last_axis_is_recognised():
    from max.experimental import functional as F
    from max.experimental.tensor import Tensor

    x = Tensor.from_dlpack(np.ones((2, 3), np.float32))
    error = failure_of(lambda: F.softmax(x, axis=0), "softmax over a non-last axis")
    assert maxprivate.graph_failed(str(error)), (
        f"MAX changed: a graph that fails to compile no longer raises '{maxprivate.GRAPH_FAILURE}': {error}"
    )
    assert maxprivate.softmax_not_last_axis(error), (
        "MAX changed: softmax over axis 0 no longer fails with 'non-inner axis' (step 07's advice on the softmax "
        f"axis relies on it): {[str(e) for e in maxprivate.chain(error)]}"
    )


def test_a_gather_out_of_bounds_is_recognised():
    from max.experimental import functional as F
    from max.experimental.tensor import Tensor

    table, ids = Tensor.from_dlpack(np.ones((4, 2), np.float32)), Tensor.from_dlpack(np.array([1, 5], np.int64))
    error = failure_of(lambda: F.gather(table, ids, axis=0), "a gather outside its table")
    assert maxprivate.graph_failed(str(error)), (
        f"MAX changed: a graph that fails to run no longer raises '{maxprivate.GRAPH_FAILURE}': {error}"
    )
    cause = str(error.__cause__ or "")
    assert maxprivate.index_out_of_bounds(cause), (
        f"MAX changed: an index outside a gather's table no longer says 'out of bounds': {cause!r}"
    )


def test_every_compile_goes_through_inference_session_load():
    """The hang watchdog does not count time while a thread is in InferenceSession.load
    (maxprivate.compiler_code): both ways the course compiles must call it."""
    import inspect

    from max.engine.api import InferenceSession
    from max.experimental.tensor import ComputeGraph
    from max.nn.module_v3 import Module

    assert maxprivate.compiler_code() is InferenceSession.load.__code__
    for name, function in (("Module.compile", Module.compile), ("ComputeGraph.evaluate", ComputeGraph.evaluate)):
        assert ".load(" in inspect.getsource(function), (
            f"MAX changed: {name} no longer compiles through InferenceSession.load, so the hang watchdog "
            "(tutorial/watchdog.py) would count its compile time as the learner's"
        )


def test_dim_arithmetic_outside_a_graph_names_no_mlir_context():
    from max.dtype import DType
    from max.graph import DeviceRef, Dim, Graph, TensorType

    try:
        Dim(4) + 3
    except RuntimeError as error:
        assert maxprivate.no_mlir_context(str(error)), (
            f"MAX changed: Dim arithmetic outside a graph now says {str(error)!r}, not "
            f"{maxprivate.NO_MLIR_CONTEXT!r}: tutorial/explain.py's advice for it never shows"
        )
    else:
        pytest.fail("MAX changed: Dim arithmetic outside a graph now works; explain.py's advice for it is stale")
    with Graph("dims", input_types=[TensorType(DType.float32, [3], device=DeviceRef.CPU())]):
        assert int(Dim(4) + 3) == 7, "MAX changed: Dim arithmetic inside a graph no longer gives a Dim"


def test_a_new_graph_is_one_new_file_in_the_cache_the_suite_counts(tmp_path):
    """maxprivate.compiled_graphs reads MAX's on-disk cache: compiling one graph adds one file there.

    It compiles in its own process with its own XDG_DATA_HOME: the suite's other workers compile into the
    shared cache at the same time, so counting there would count their graphs too."""
    program = (
        "from max.dtype import DType\n"
        "from max.graph import DeviceRef, TensorType\n"
        "from max.nn.module_v3 import Module\n"
        "from tutorial import maxprivate\n"
        "class Plus(Module):\n"
        "    def __call__(self, x):\n"
        "        return x + 0.25\n"
        "before = len(maxprivate.compiled_graphs())\n"
        "Plus().compile(TensorType(DType.float32, [3], device=DeviceRef.CPU()))\n"
        "print(before, len(maxprivate.compiled_graphs()))\n"
    )
    env = {**os.environ, "XDG_DATA_HOME": str(tmp_path)}
    run = subprocess.run(
        [sys.executable, "-c", program], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300
    )
    assert run.returncode == 0, run.stderr[-2000:]
    before, after = map(int, run.stdout.split()[-2:])
    assert (before, after) == (0, 1), (
        f"MAX changed where it caches compiled graphs: {after - before} new files for one graph"
    )
