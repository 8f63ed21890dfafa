"""`pixi run grade DIR`: grade a submission, a directory of step_NN.py files (any subset).

Each step runs the learner's own check, `python -m pytest tests/test_step_NN.py
--use DIR`, in its own subprocess with a time and a memory limit and a short
limit on importing the step file (tutorial/grading.toml, or --timeout/--memory/
--import-timeout), and with the reference solutions for the earlier steps it
imports. A crash, hang, sys.exit or memory blow-up costs that step only; checks
that finished before it keep their points; the first check that times out ends
its step's run. Points per check come from tutorial/grading.toml. SIGTERM or
Ctrl-C stops the step processes too.

The grader never writes into DIR (no bytecode, no pytest cache; it checks).
Reports: a table here, JSON and JUnit XML (default .progress/grades/<DIR name>.*).
Exit code 0 when every check of every submitted step passes, 1 otherwise, 2 on bad arguments.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from contextlib import ExitStack
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path

from rich.console import Console
from rich.table import Table

from tutorial.course import ROOT, TITLES, built, test_path
from tutorial.runner import StepRun, events, run_step, showing, stop_on_signals
from tutorial.state import SETTINGS, STATE, Status
from tutorial import options

LOOK = {
    Status.PASSED: "green",
    Status.FAILED: "red",
    Status.OUT_OF_MEMORY: "magenta",
    Status.CRASHED: "magenta",
    Status.TIMED_OUT: "magenta",
    Status.ERROR: "magenta",
    Status.NOT_SUBMITTED: "dim",
}


def weight(n: int, check: str) -> float:
    """Points for one check: [points.sNN] "name[case]", then "name", then the default."""
    points = SETTINGS["points"]
    step, name = points.get(f"s{n:02d}", {}), check.removeprefix("test_")
    return step.get(name, step.get(name.split("[")[0], points["default"]))


def snapshot(folder: Path) -> dict[str, tuple[int, int]]:
    return {str(p.relative_to(folder)): (p.stat().st_size, p.stat().st_mtime_ns) for p in sorted(folder.rglob("*"))}


def scored(run: StepRun, folder: Path) -> dict:
    checks = [
        {
            "id": c.id,
            "name": c.name,
            "status": c.status,
            "message": c.message,
            "seconds": c.seconds,
            "points": weight(run.step, c.id) if c.status == Status.PASSED else 0,
            "max_points": 0 if c.status == Status.SKIPPED else weight(run.step, c.id),
        }
        for c in run.checks
    ]
    step = {
        "step": run.step,
        "title": TITLES[run.step],
        "file": str(folder / f"step_{run.step:02d}.py"),
        "status": run.status,
        "message": run.message,
        "seconds": run.seconds,
        "points": sum(c["points"] for c in checks),
        "max_points": sum(c["max_points"] for c in checks),
        "checks": checks,
    }
    if run.status not in (Status.PASSED, Status.FAILED):
        step["output"] = run.output  # pytest's last lines: what the process printed before it stopped
    return step


def junit(report: dict) -> ET.ElementTree:
    suites = ET.Element("testsuites", name="gpt2-max grade", time=f"{report['seconds']:.2f}")
    for step in report["steps"]:
        name = f"step_{step['step']:02d}"
        cases = step["checks"] or [
            {
                "name": "checks",
                "status": step["status"],
                "message": step["message"],
                "seconds": step["seconds"],
                "points": 0,
                "max_points": 0,
            }
        ]
        suite = ET.SubElement(
            suites,
            "testsuite",
            name=f"{name} {step['title']}",
            tests=str(len(cases)),
            time=f"{step['seconds']:.2f}",
            failures=str(sum(c["status"] == Status.FAILED for c in cases)),
            errors=str(sum(c["status"] not in (Status.PASSED, Status.FAILED, Status.SKIPPED) for c in cases)),
            skipped=str(sum(c["status"] == Status.SKIPPED for c in cases)),
        )
        properties = ET.SubElement(suite, "properties")
        for key in ("status", "points", "max_points"):
            ET.SubElement(properties, "property", name=key, value=str(step[key]))
        for c in cases:
            case = ET.SubElement(suite, "testcase", classname=name, name=c["name"], time=f"{c['seconds']:.3f}")
            props = ET.SubElement(case, "properties")
            for key in ("points", "max_points"):
                ET.SubElement(props, "property", name=key, value=str(c[key]))
            if c["status"] != Status.PASSED:
                # JUnit's elements: <failure>, <skipped>, else <error>
                tag = {Status.FAILED: "failure", Status.SKIPPED: "skipped"}.get(c["status"], "error")
                ET.SubElement(case, tag, message=c["message"], type=c["status"]).text = c["message"]
    ET.indent(suites)
    return ET.ElementTree(suites)


@dataclass(frozen=True)
class Limits:
    """What a grade depends on besides the files: part of a report, and of grade-class's cache key."""

    seconds: float = SETTINGS["limits"]["seconds"]
    memory_gib: float = SETTINGS["limits"]["memory_gib"]
    import_seconds: float = SETTINGS["limits"]["import_seconds"]
    hang_seconds: float = SETTINGS["limits"]["hang_seconds"]
    device: str = "cpu"


def add_limit_options(parser: argparse.ArgumentParser) -> None:
    """--timeout, --memory, --import-timeout, --hang-timeout and --device, defaults from tutorial/grading.toml."""
    parser.add_argument("--timeout", type=float, default=Limits.seconds, help="seconds per step")
    parser.add_argument(
        "--memory", type=float, default=Limits.memory_gib, help="address space per step, GiB (0: no limit)"
    )
    parser.add_argument(
        "--import-timeout", type=float, default=Limits.import_seconds, help="seconds a step file may take to import"
    )
    parser.add_argument(
        "--hang-timeout",
        type=float,
        default=Limits.hang_seconds,
        help="seconds the submitted code may run in one check, MAX's compiles not counted",
    )
    parser.add_argument("--device", default="cpu", choices=options.DEVICES, help=options.DEVICE_HELP)


def limits(args: argparse.Namespace) -> Limits:
    return Limits(args.timeout, args.memory, args.import_timeout, args.hang_timeout, args.device)


def submitted(folder: Path) -> list[int]:
    return [n for n in built() if (folder / f"step_{n:02d}.py").exists()]


def steps_folder(folder: Path) -> Path:
    """Where a submission's step files are: the folder itself, or the steps/ of a copy of the course repo."""
    return folder / "steps" if not submitted(folder) and submitted(folder / "steps") else folder


def grade(folder: Path, limit: Limits, on_step=None, on_check=None) -> dict:
    """Grade every submitted step of `folder`; the report as written to JSON. on_step(n, i, count) hears
    each step start, on_check(name) each check (progress display)."""
    steps = submitted(folder)
    before, start, runs = snapshot(folder), time.monotonic(), []
    for i, n in enumerate(steps, 1):
        check_hook = on_step(n, i, len(steps)) if on_step else on_check
        runs.append(
            run_step(
                n,
                str(folder),
                seconds=limit.seconds,
                memory_gib=limit.memory_gib,
                import_seconds=limit.import_seconds,
                hang_seconds=limit.hang_seconds,
                device=limit.device,
                on_check=check_hook,
            )
        )
    changed = sorted(set(snapshot(folder).items()) ^ set(before.items()))
    session = next((r.session for r in runs if r.session), {})
    report = {
        "submission": str(folder),
        "graded_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "seconds": round(time.monotonic() - start, 2),
        "max_version": session.get("max", version("max")),
        "device": limit.device,
        "tolerance": session.get("tolerance"),
        "reference": session.get("reference"),
        "earlier_steps": "each step imports the reference solutions (solutions/solution_NN.py) of earlier steps",
        "limits": {
            "seconds": limit.seconds,
            "memory_gib": limit.memory_gib,
            "import_seconds": limit.import_seconds,
            "hang_seconds": limit.hang_seconds,
        },
        "steps": [scored(run, folder) for run in runs],
        "not_submitted": [n for n in built() if n not in steps],
        "submission_changed": [name for name, _ in changed],
    }
    report["points"] = sum(s["points"] for s in report["steps"])
    report["max_points"] = sum(s["max_points"] for s in report["steps"])
    report["passed"] = bool(steps) and all(s["status"] == Status.PASSED for s in report["steps"]) and not changed
    return report


def write_reports(report: dict, json_path: Path, junit_path: Path) -> None:
    for path in (json_path, junit_path):
        path.parent.mkdir(parents=True, exist_ok=True)
    json_path.write_text(json.dumps(report, indent=2) + "\n")
    junit(report).write(junit_path, encoding="utf-8", xml_declaration=True)


def course_checks() -> dict[int, list[str]]:
    """Every check of every step, as named in its file ("test_default_matches_hf[n_embd]"), by collecting
    the course's tests (~3 s) with the result record on (tutorial/record.py's "collected" event): the full
    points of a step are its checks' weights, whatever was submitted."""
    tests = [str(test_path(n).relative_to(ROOT)) for n in built()]
    with tempfile.TemporaryDirectory(prefix="tutorial-collect-") as tmp:
        record = Path(tmp, "record.jsonl")
        command = [sys.executable, "-m", "pytest", "--collect-only", "-p", "tutorial.record", "-p", "no:cacheprovider"]
        env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1", "TUTORIAL_RECORD": str(record)}
        out = subprocess.run([*command, *tests], cwd=ROOT, capture_output=True, text=True, env=env)
        collected = next((e for e in events(record) if e["event"] == "collected"), {"checks": [], "files": []})
    found: dict[int, list[str]] = {n: [] for n in built()}
    for file, check in zip(collected["files"], collected["checks"]):
        if (m := re.fullmatch(r"test_step_(\d\d)\.py", file)) and int(m[1]) in found:
            found[int(m[1])].append(check)
    if out.returncode or not all(found.values()):
        raise RuntimeError(f"collecting the course's checks failed:\n{out.stdout[-2000:]}{out.stderr[-2000:]}")
    return found


def full_points(checks: dict[int, list[str]]) -> dict[int, float]:
    """Points a step is worth when every check passes (tutorial/grading.toml's weights)."""
    return {n: sum(weight(n, c) for c in ids) for n, ids in checks.items()}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        prog="pixi run grade", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("submission", type=Path, help="a directory of step_NN.py files")
    parser.add_argument("--json", type=Path, help="where to write the JSON report")
    parser.add_argument("--junit", type=Path, help="where to write the JUnit XML report")
    add_limit_options(parser)
    args = parser.parse_args(argv)
    console, folder = Console(), args.submission.resolve()
    if not folder.is_dir():
        parser.error(f"{args.submission} is not a directory")
    steps = submitted(folder)
    if not steps:
        parser.error(f"{args.submission} has no step_NN.py file for a step of the course ({built()})")
    out = {
        "json": args.json or STATE / "grades" / f"{folder.name}.json",
        "junit": args.junit or STATE / "grades" / f"{folder.name}.xml",
    }
    if inside := [str(p) for p in out.values() if p.resolve().is_relative_to(folder)]:
        parser.error(f"the grader never writes into the submission: {inside[0]} is inside it")

    stop_on_signals()  # SIGTERM or Ctrl-C: the step processes (their own sessions) die with the grader
    stack = ExitStack()

    def on_step(n, i, count):
        stack.close()  # the previous step's status line
        return stack.enter_context(showing(console, f"grading step {n:02d} · {TITLES[n]} ({i} of {count})"))

    with stack:
        report = grade(folder, limits(args), on_step=on_step)

    table = Table("step", "title", "status", "points", "time", title=f"Grade of {folder}")
    table.add_column("first problem", overflow="fold")
    for s in report["steps"]:
        table.add_row(
            f"s{s['step']:02d}",
            s["title"],
            f"[{LOOK[s['status']]}]{s['status']}",
            f"{s['points']:g}/{s['max_points']:g}",
            f"{s['seconds']:.0f} s",
            s["message"],
        )
    console.print(table)
    console.print(
        f"Total: {report['points']:g}/{report['max_points']:g} points · "
        f"{sum(s['status'] == 'passed' for s in report['steps'])} of {len(steps)} steps pass · "
        f"MAX {report['max_version']} · {args.device} · reference: {report['reference']}",
        highlight=False,
    )
    if report["submission_changed"]:
        console.print(f"[red]The submission changed while it was graded: {', '.join(report['submission_changed'])}")
    write_reports(report, out["json"], out["junit"])
    console.print(f"Reports: {out['json']} (JSON), {out['junit']} (JUnit XML)", highlight=False)
    return 0 if report["passed"] else 1


if __name__ == "__main__":
    sys.exit(options.run(main, "grade"))
