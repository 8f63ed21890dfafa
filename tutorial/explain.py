"""Every sentence a learner reads about a failure, instead of a traceback: one line for each way
their code can fail, where (file:line, TODO), and what the run did about it (timed out, crashed,
out of memory, not run). The harness decides what happened; this module says it.
"""

from __future__ import annotations

import ast
import difflib
import re
import signal
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache
from pathlib import Path

from tutorial.course import ROOT, solution_path, stub_path
from tutorial.state import committed_stub
from tutorial.maxprivate import graph_failed, index_out_of_bounds, no_mlir_context, op_failure
from tutorial.todos import block_at, blocks


class CheckFailure(AssertionError):
    """A check that did not pass; the message says what and where."""


class StepError(Exception):
    """A learner-facing failure; its message is the whole report."""


class MissingName(StepError, AttributeError):
    """A name the checks need that the learner's file does not define (see missing_name). Also an
    AttributeError, so that getattr(step, name, default) and hasattr keep their meaning."""


# Known mistakes in imports, with the fix a reviewer would suggest.
IMPORT_FIXES = {
    "max.nn.module_v2": "the module API of MAX 25.7 lives in max.nn.module_v3",
    "max.nn.module": "the module API of MAX 25.7 lives in max.nn.module_v3",
    "max.tensor": "Tensor lives in max.experimental.tensor",
    "max.functional": "the functional ops live in max.experimental.functional (import it as F)",
    "torch": "the steps use MAX, not torch: see the chapter's API list",
}


def shown(path: str | Path) -> str:
    path = Path(path).resolve()
    return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path)


def shown_line(file: str | Path, line: int) -> str:
    """A line of a file as a learner reads it: "steps/step_05.py:27"."""
    return f"{shown(file)}:{line}"


UNDER_CHECK: Path | None = None  # the learner's file while its test file's checks run (`checking`)


@contextmanager
def checking(path: Path) -> Iterator[None]:
    """Failure lines name `path` for the duration: one test file's step. The plugin's `step` fixture
    wraps its test file's checks in it, so no check names the file of a test file that ran before it."""
    global UNDER_CHECK
    before, UNDER_CHECK = UNDER_CHECK, path
    try:
        yield
    finally:
        UNDER_CHECK = before


def todo_place(n: int) -> str:
    """TODO n and its line in the file under check, "TODO 2, steps/step_04.py:31"; just "TODO 2" with no
    file under check, or once the learner has deleted the marker."""
    try:
        found = blocks(UNDER_CHECK.read_text()).get(n) if UNDER_CHECK else None
    except OSError:
        found = None
    return f"TODO {n}" + (f", {shown_line(UNDER_CHECK, found[0])}" if found else "")


def pointing_at(message: str, n: int | None) -> str:
    """The message, then " (TODO 2, steps/step_04.py:31)"; the message alone for no TODO."""
    return message + (f" ({todo_place(n)})" if n else "")


def where(error: BaseException, inside: Path) -> tuple[Path, int] | None:
    """The deepest traceback frame in a file under `inside` (a step directory)."""
    if isinstance(error, SyntaxError) and error.filename:
        return Path(error.filename), error.lineno or 0
    found = None
    for frame in traceback.extract_tb(error.__traceback__):
        if Path(frame.filename).resolve().is_relative_to(inside):
            found = Path(frame.filename), frame.lineno or 0
    return found


def explain(error: BaseException, path: Path, inside: Path | None = None) -> str:
    """One line: where (file:line, TODO) and what, with the fix when it is a known one."""
    place = where(error, (inside or Path(path).parent).resolve())
    prefix = ""
    if place:
        file, line = place
        todo = block_at(file, line)
        prefix = shown_line(file, line) + (f" (TODO {todo})" if todo else "") + ": "
    if isinstance(error, NameError) and (todo := todo_naming(place[0] if place else path, error.name)):
        return prefix + f"name '{error.name}' is not defined: TODO {todo[0]} (line {todo[1]}) brings it in"
    return prefix + describe(error)


def todo_naming(path: Path, name: str | None) -> tuple[int, int] | None:
    """(TODO number, line) of the first TODO comment that mentions `name`."""
    try:
        lines = Path(path).read_text().splitlines()
    except OSError:
        return None
    for i, text in enumerate(lines, 1):
        if name and (found := re.match(r"\s*#\s*TODO\s*(\d+)", text)) and re.search(rf"\b{name}\b", text):
            return int(found[1]), i
    return None


def describe(error: BaseException) -> str:
    name = type(error).__name__
    lines = [line.strip() for line in str(error).strip().splitlines() if line.strip()]
    text = op_failure(str(error)) or (lines[0] if lines else "")  # a graph-building error: its reason, on one line
    if isinstance(error, SyntaxError):
        return f"syntax error: {error.msg}"
    if isinstance(error, ModuleNotFoundError):
        fix = next((f for mod, f in IMPORT_FIXES.items() if (error.name or "").startswith(mod)), None)
        return f"no module named '{error.name}'" + (f": {fix}" if fix else "")
    if isinstance(error, ImportError):
        fix = " Embedding, Linear, Module and Sequential come from max.nn.module_v3" if "max.nn" in text else ""
        return f"import failed: {text}.{fix}"
    if isinstance(error, NameError):
        return f"{text}: is it imported or defined? (a TODO may be unfinished)"
    if isinstance(error, SystemExit):
        return f"the code called sys.exit({error.code!r})"
    if isinstance(error, RecursionError):
        return "infinite recursion: does a method call itself (e.g. self(x) inside __call__)?"
    if graph_failed(text) or graph_failed(str(error.__cause__ or "")):
        # MAX's own reason is in the chained exception, e.g. "gather index 12 is out of bounds ..."
        cause = next((x.strip() for x in str(error.__cause__ or "").splitlines() if x.strip()), "")[:200]
        if cause and not index_out_of_bounds(cause):
            return f"MAX failed to run the graph: {cause}"
        return (
            f"MAX failed to run the graph{': ' + cause if cause else ''}. This almost always means an index outside "
            "its table (a token id >= vocab_size, a position >= n_positions) or tensors on different devices"
        )
    if isinstance(error, RuntimeError) and no_mlir_context(text):
        return (
            f"{name}: {text}: arithmetic on a symbolic Dim (a shape entry such as x.shape[1] + 1) outside a graph. "
            "Use int(x.shape[1]) for a number, or do the arithmetic inside an @F.functional function"
        )
    if isinstance(error, (TypeError, AttributeError)) and "NoneType" in text:
        return f"{name}: {text}: a TODO still returns or holds None"
    return f"{name}: {text}" if text else name


def definitions(text: str) -> dict[str, tuple[str, int]]:
    """The top-level names a file defines itself, imports left out: {name: ("class NAME", line)}."""
    found = {}
    for node in ast.parse(text).body:
        if isinstance(node, ast.ClassDef):
            found[node.name] = f"class {node.name}", node.lineno
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            found[node.name] = f"def {node.name}", node.lineno  # the def line, below any decorator
        elif isinstance(node, (ast.Assign, ast.AnnAssign)):
            for target in node.targets if isinstance(node, ast.Assign) else [node.target]:
                if isinstance(target, ast.Name):
                    found[target.id] = f"{target.id} =", node.lineno
    return found


@cache
def course_texts(n: int) -> tuple[tuple[str, str], ...]:
    """("stub" | "solution", text) of step n as the course wrote it, best first. steps/step_NN.py may be
    the learner's own file, the very one that lost the name, so git's committed stub comes first."""
    texts = [("stub", stub[0])] if (stub := committed_stub(n)) and stub[0] else []  # None: no git history
    for label, path in (("stub", stub_path(n)), ("solution", solution_path(n))):
        if path.exists():
            texts.append((label, path.read_text()))
    return tuple(texts)


def course_place(n: int, name: str) -> str:
    """Where the course defines `name` in step n: "the course's stub has `class X` in TODO 2 (line 30)"."""
    for label, text in course_texts(n):
        try:
            what, line = definitions(text).get(name, ("", 0))
        except SyntaxError:  # steps/step_NN.py, half edited
            continue
        if what:
            todo = next((t for t, (first, last) in blocks(text).items() if first <= line <= last), None)
            where = f"in TODO {todo} (line {line})" if todo else f"at line {line}"
            return f"the course's {label} has `{what}` {where}"
    return ""


def missing_name(path: Path, n: int, name: str) -> str:
    """One line for a check that needs `name` from step n's file, which does not define it: what the file
    has instead, and where the course defines it. Said in the file's own terms, not the harness's module."""
    try:
        have = definitions(Path(path).read_text())
    except (OSError, SyntaxError, ValueError):
        have = {}
    public = [d for d in have if not d.startswith("_")]
    # a rename shows up as a close match; otherwise what the file does define (another step's code?)
    listed = difflib.get_close_matches(name, public, n=3) or [d for d in public if not have[d][0].endswith("=")][:5]
    found = f"found: {', '.join(listed)}" if listed else "it defines no class or function"
    place = course_place(n, name)
    return f"{shown(path)} does not define {name} ({found}), and the checks and later steps import it by that name" + (
        f": {place}" if place else ""
    )


def compiler_says(error: CheckFailure, what: str) -> str:
    """The message, with MAX's own reason when a graph did not compile (it is the root cause)."""
    root = error
    while root.__cause__ is not None:
        root = root.__cause__
    text = str(root).strip().splitlines()[0] if str(root).strip() else ""
    if root is error or not text or graph_failed(text):
        return str(error)
    return f"{what}: MAX could not compile it: {type(root).__name__}: {text}"


# -- time-outs: `at` is where the code under check was, "steps/step_05.py:27", and `code` that line's text
def stopped_at(at: str, code: str) -> str:
    """ ", stopped at steps/step_05.py:27 (`while True:`)"."""
    return f", stopped at {at}" + (f" (`{code}`)" if code else "")


def ran_too_long(seconds: float, stopped: str) -> str:
    """The watchdog's limit (tutorial/watchdog.py): the code under check itself ran `seconds`, compiles not
    counted; `stopped` from stopped_at."""
    return (
        f"timed out: your code ran for {seconds:g} s without returning{stopped}. "
        "An endless loop? (MAX's compile time is not counted: this was your code running)"
    )


def timed_out(seconds: float, stopped: str) -> str:
    """pytest-timeout's wall-clock limit on a check (pytest.ini), which may stop it mid-compile."""
    return (
        f"timed out after {seconds:g} s{stopped}. That is not a wrong answer: look for an endless loop or very "
        "slow code; a first run on a cold MAX cache can also take minutes, so run it again"
    )


def import_timed_out(seconds: float, at: str) -> str:
    """The import limit (tutorial/impl.py): the learner's file was still importing."""
    return f"your file did not finish importing in {seconds:g} s (an endless loop at top level?)" + (
        f"; it was at {at} when stopped" if at else ""
    )


def run_stops(check: str, left: int) -> str:
    """A step's run stops at its first time-out, before the checks `left`."""
    return f"'{check}' timed out: the run stops here" + (f", {left} later checks not run" if left else "")


# -- a step's run that ended without every check's result (tutorial/runner.py) -------------------------
SIGNALS = {
    "SIGABRT": "abort(): os.abort(), or a C++ error such as running out of memory",
    "SIGSEGV": "a segmentation fault",
    "SIGKILL": "killed from outside, often for using too much memory",
}


def run_ended(returncode: int, limit: float | None = None) -> str:
    """Why the run has no more results: the grader stopped it at its time `limit`, a signal killed it
    (returncode -N), or it exited."""
    if limit is not None:
        return f"no result within the time limit ({limit:g} s)"
    if returncode < 0:
        name = signal.Signals(-returncode).name
        return f"the process died of {name}" + (f" ({SIGNALS[name]})" if name in SIGNALS else "")
    return f"the process exited with code {returncode} in the middle of the checks"


def during(why: str, check: str | None, stopped: str = "") -> str:
    """ "... during 'lookup matches hf', stopped at ...": the check that was running, where it was if known."""
    return why + (f" during '{check}'" if check else "") + stopped


def not_run(why: str) -> str:
    return f"not run: {why}"


def not_run_after(check: str) -> str:
    """A check after the one whose time-out stopped the run."""
    return not_run(f"the run stopped when '{check}' timed out")


def not_started(last: str) -> str:
    """pytest stopped before it listed the checks; `last` is the last line it printed."""
    return f"pytest did not get to the checks: {last or 'no output'}"


NO_CHECKS = "pytest collected no checks"


def out_of_memory(message: str, gib: float) -> str:
    return f"{message} (memory limit {gib:g} GiB)"
