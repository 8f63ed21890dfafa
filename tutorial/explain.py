"""One line for each way a learner's code can fail, instead of a traceback."""

from __future__ import annotations

import ast
import difflib
import re
import traceback
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


def todo_line(path: Path, todo: int) -> int | None:
    """The line of `# TODO <todo>:` in the file, if it is still there."""
    try:
        found = blocks(Path(path).read_text()).get(todo)
    except OSError:
        return None
    return found[0] if found else None


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
        prefix = f"{shown(file)}:{line}" + (f" (TODO {todo})" if todo else "") + ": "
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
