"""`pixi run grade DIR`: grade a submission, a directory of step_NN.py files (any subset).

Each step runs the learner's own check, `python -m pytest tests/test_step_NN.py
--use DIR`, in its own subprocess with a time and a memory limit
(tutorial/grading.toml, or --timeout/--memory), and with the reference
solutions for the earlier steps it imports. A crash, hang, sys.exit or
memory blow-up costs that step only; checks that finished before it keep
their points. Points per check come from tutorial/grading.toml.

The grader never writes into DIR (no bytecode, no pytest cache; it checks).
Reports: a table here, JSON and JUnit XML (default .progress/grades/<DIR name>.*).
Exit code 0 when every check of every submitted step passes, 1 otherwise, 2 on bad arguments.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import xml.etree.ElementTree as ET
from importlib.metadata import version
from pathlib import Path

from rich.console import Console
from rich.table import Table

from tutorial.course import TITLES, built
from tutorial.runner import SETTINGS, STATE, StepRun, run_step, showing

LOOK = {"passed": "green", "failed": "red", "out of memory": "magenta", "crashed": "magenta",
        "timed out": "magenta", "error": "magenta"}


def weight(n: int, check: str) -> float:
    """Points for one check: [points.sNN] "name[case]", then "name", then the default."""
    points = SETTINGS["points"]
    step, name = points.get(f"s{n:02d}", {}), check.removeprefix("test_")
    return step.get(name, step.get(name.split("[")[0], points["default"]))


def snapshot(folder: Path) -> dict[str, tuple[int, int]]:
    return {str(p.relative_to(folder)): (p.stat().st_size, p.stat().st_mtime_ns) for p in sorted(folder.rglob("*"))}


def scored(run: StepRun, folder: Path) -> dict:
    checks = [{"id": c.id, "name": c.name, "status": c.status, "message": c.message, "seconds": c.seconds,
               "points": weight(run.step, c.id) if c.status == "passed" else 0,
               "max_points": 0 if c.status == "skipped" else weight(run.step, c.id)} for c in run.checks]
    step = {"step": run.step, "title": TITLES[run.step], "file": str(folder / f"step_{run.step:02d}.py"),
            "status": run.status, "message": run.message, "seconds": run.seconds,
            "points": sum(c["points"] for c in checks), "max_points": sum(c["max_points"] for c in checks),
            "checks": checks}
    if run.status not in ("passed", "failed"):
        step["output"] = run.output  # pytest's last lines: what the process printed before it stopped
    return step


def junit(report: dict) -> ET.ElementTree:
    suites = ET.Element("testsuites", name="gpt2-max grade", time=f"{report['seconds']:.2f}")
    for step in report["steps"]:
        name = f"step_{step['step']:02d}"
        cases = step["checks"] or [{"name": "checks", "status": step["status"], "message": step["message"],
                                    "seconds": step["seconds"], "points": 0, "max_points": 0}]
        suite = ET.SubElement(suites, "testsuite", name=f"{name} {step['title']}", tests=str(len(cases)),
                              time=f"{step['seconds']:.2f}",
                              failures=str(sum(c["status"] == "failed" for c in cases)),
                              errors=str(sum(c["status"] not in ("passed", "failed", "skipped") for c in cases)),
                              skipped=str(sum(c["status"] == "skipped" for c in cases)))
        properties = ET.SubElement(suite, "properties")
        for key in ("status", "points", "max_points"):
            ET.SubElement(properties, "property", name=key, value=str(step[key]))
        for c in cases:
            case = ET.SubElement(suite, "testcase", classname=name, name=c["name"], time=f"{c['seconds']:.3f}")
            props = ET.SubElement(case, "properties")
            for key in ("points", "max_points"):
                ET.SubElement(props, "property", name=key, value=str(c[key]))
            if c["status"] != "passed":
                tag = {"failed": "failure", "skipped": "skipped"}.get(c["status"], "error")
                ET.SubElement(case, tag, message=c["message"], type=c["status"]).text = c["message"]
    ET.indent(suites)
    return ET.ElementTree(suites)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="pixi run grade", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("submission", type=Path, help="a directory of step_NN.py files")
    parser.add_argument("--json", type=Path, help="where to write the JSON report")
    parser.add_argument("--junit", type=Path, help="where to write the JUnit XML report")
    parser.add_argument("--timeout", type=float, default=SETTINGS["limits"]["seconds"], help="seconds per step")
    parser.add_argument("--memory", type=float, default=SETTINGS["limits"]["memory_gib"],
                        help="address space per step, GiB (0: no limit)")
    parser.add_argument("--device", default="cpu", choices=["cpu", "gpu"])
    args = parser.parse_args(argv)
    console, folder = Console(), args.submission.resolve()
    if not folder.is_dir():
        parser.error(f"{args.submission} is not a directory")
    steps = [n for n in built() if (folder / f"step_{n:02d}.py").exists()]
    if not steps:
        parser.error(f"{args.submission} has no step_NN.py file for a step of the course ({built()})")
    out = {"json": args.json or STATE / "grades" / f"{folder.name}.json",
           "junit": args.junit or STATE / "grades" / f"{folder.name}.xml"}
    if inside := [str(p) for p in out.values() if p.resolve().is_relative_to(folder)]:
        parser.error(f"the grader never writes into the submission: {inside[0]} is inside it")

    before, start, runs = snapshot(folder), time.monotonic(), []
    for i, n in enumerate(steps, 1):
        with showing(console, f"grading step {n:02d} · {TITLES[n]} ({i} of {len(steps)})") as on_check:
            runs.append(run_step(n, str(folder), seconds=args.timeout, memory_gib=args.memory,
                                 device=args.device, on_check=on_check))
    changed = sorted(set(snapshot(folder).items()) ^ set(before.items()))
    session = next((r.session for r in runs if r.session), {})
    report = {
        "submission": str(folder),
        "graded_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "seconds": round(time.monotonic() - start, 2),
        "max_version": session.get("max", version("max")),
        "device": args.device,
        "tolerance": session.get("tolerance"),
        "reference": session.get("reference"),
        "earlier_steps": "each step imports the reference solutions (solutions/solution_NN.py) of earlier steps",
        "limits": {"seconds": args.timeout, "memory_gib": args.memory},
        "steps": [scored(run, folder) for run in runs],
        "not_submitted": [n for n in built() if n not in steps],
        "submission_changed": [name for name, _ in changed],
    }
    report["points"] = sum(s["points"] for s in report["steps"])
    report["max_points"] = sum(s["max_points"] for s in report["steps"])
    report["passed"] = all(s["status"] == "passed" for s in report["steps"]) and not changed

    table = Table("step", "title", "status", "points", "time", title=f"Grade of {folder}")
    table.add_column("first problem", overflow="fold")
    for s in report["steps"]:
        table.add_row(f"s{s['step']:02d}", s["title"], f"[{LOOK[s['status']]}]{s['status']}",
                      f"{s['points']:g}/{s['max_points']:g}", f"{s['seconds']:.0f} s", s["message"])
    console.print(table)
    console.print(f"Total: {report['points']:g}/{report['max_points']:g} points · "
                  f"{sum(s['status'] == 'passed' for s in report['steps'])} of {len(steps)} steps pass · "
                  f"MAX {report['max_version']} · {args.device} · reference: {report['reference']}", highlight=False)
    if changed:
        console.print(f"[red]The submission changed while it was graded: {', '.join(report['submission_changed'])}")
    for path in out.values():
        path.parent.mkdir(parents=True, exist_ok=True)
    out["json"].write_text(json.dumps(report, indent=2) + "\n")
    junit(report).write(out["junit"], encoding="utf-8", xml_declaration=True)
    console.print(f"Reports: {out['json']} (JSON), {out['junit']} (JUnit XML)", highlight=False)
    return 0 if report["passed"] else 1


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        sys.exit(130)
