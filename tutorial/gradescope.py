"""Gradescope: `pixi run gradescope` builds build/gradescope/autograder.zip; upload it as the autograder.

The zip follows Gradescope's autograder specification: setup.sh and run_autograder at its root
(templates/gradescope/), with the course's checks, harness and solutions beside them. setup.sh
installs requirements.txt's pins into a Python 3.11 venv. run_autograder runs `python -m
tutorial.gradescope results`, which grades /autograder/submission as `pixi run grade` does and
writes /autograder/results/results.json: one test per check of every step, its points from
tutorial/grading.toml, its one-line message as the output. A step the student did not submit
scores 0, so the total is out of the whole course's points.
"""

from __future__ import annotations

import argparse
import json
import sys
import zipfile
from pathlib import Path

from tutorial.course import ROOT, TITLES
from tutorial.state import Status
from tutorial.grade import add_limit_options, course_checks, grade, limits, steps_folder, weight
from tutorial.runner import Check, stop_on_signals
from tutorial import options

ZIP = ROOT / "build" / "gradescope" / "autograder.zip"
# The course as the grader needs it; steps/ holds the stubs, by which the harness knows the steps.
COURSE = [
    "requirements.txt",
    "pytest.ini",
    "tutorial/*.py",
    "tutorial/*.toml",
    "tests/__init__.py",
    "tests/test_step_*.py",  # not conftest.py or tests/support/: the maintainers' suite only
    "solutions/*.py",
    "steps/*.py",
]
SCRIPTS = ROOT / "templates" / "gradescope"  # setup.sh and run_autograder, at the zip's root
VISIBILITY = "visible"  # Gradescope's per-test visibility: students see each check's line at once


def build(path: Path = ZIP) -> list[str]:
    """Write the autograder zip; the names in it."""
    files = {p.relative_to(ROOT).as_posix(): p for pattern in COURSE for p in sorted(ROOT.glob(pattern))}
    files |= {p.name: p for p in sorted(SCRIPTS.iterdir()) if p.is_file()}
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, source in sorted(files.items()):
            info = zipfile.ZipInfo(name, date_time=(2025, 1, 1, 0, 0, 0))  # fixed: same course, same zip
            info.external_attr = (0o755 if name in ("setup.sh", "run_autograder") else 0o644) << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(info, source.read_bytes())
    return sorted(files)


def results(report: dict, checks: dict[int, list[str]]) -> dict:
    """Gradescope's results.json for one graded submission: a test per check of every step of the course."""
    graded, tests = {s["step"]: s for s in report["steps"]}, []
    for n, ids in checks.items():
        step = graded.get(n)
        ran = {c["id"]: c for c in step["checks"]} if step else {}
        for i, check in enumerate(ids, 1):
            c = ran.get(check)
            if step is None:
                status, output = Status.NOT_SUBMITTED, f"step_{n:02d}.py was not submitted"
            elif c is None:  # the step's run stopped before its checks were collected
                status, output = step["status"], step["message"]
            else:
                status, output = c["status"], c["message"]
            points = weight(n, check)
            tests.append(
                {
                    "name": f"s{n:02d} {TITLES[n]} · {Check(check, '').name}",
                    "number": f"{n}.{i}",
                    "score": points if status == Status.PASSED else 0,
                    "max_score": points,
                    "status": Status.PASSED if status == Status.PASSED else Status.FAILED,
                    "output": output
                    if status in (Status.PASSED, Status.FAILED, Status.NOT_SUBMITTED) or not output
                    else f"{status}: {output}",
                    "visibility": VISIBILITY,
                }
            )
    score = sum(t["score"] for t in tests)
    passed = [s["step"] for s in report["steps"] if s["status"] == Status.PASSED]
    summary = (
        f"{score:g} of {sum(t['max_score'] for t in tests):g} points. Steps passed: "
        f"{', '.join(f'{n:02d}' for n in passed) or 'none'}. Not submitted: "
        f"{', '.join(f'{n:02d}' for n in report['not_submitted']) or 'none'}. "
        f"Checked with MAX {report['max_version']} on {report['device']} against {report['reference']}."
    )
    return {
        "score": score,
        "execution_time": round(report["seconds"]),
        "output": summary,
        "stdout_visibility": "hidden",
        "tests": tests,
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        prog="pixi run gradescope", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="command")
    make = sub.add_parser("build", help="write the autograder zip (the default)")
    make.add_argument("--out", type=Path, default=ZIP, help=f"the zip to write (default {ZIP.relative_to(ROOT)})")
    run = sub.add_parser("results", help="what run_autograder runs: grade a submission, write results.json")
    run.add_argument("--submission", type=Path, required=True)
    run.add_argument("--results", type=Path, required=True)
    add_limit_options(run)
    args = parser.parse_args(argv)
    if args.command == "results":
        stop_on_signals()
        folder = steps_folder(args.submission.resolve())
        report = grade(folder, limits(args))
        out = results(report, course_checks())
        args.results.parent.mkdir(parents=True, exist_ok=True)
        args.results.write_text(json.dumps(out, indent=2) + "\n")
        print(out["output"])  # Gradescope keeps stdout for the instructor
        for step in report["steps"]:
            print(f"s{step['step']:02d} {step['status']}: {step['points']:g}/{step['max_points']:g} {step['message']}")
        return 0
    out = getattr(args, "out", ZIP)
    names = build(out)
    print(
        f"{out}: {len(names)} files. Upload it as the assignment's autograder on Gradescope "
        f"(its Configure Autograder page)."
    )
    return 0


if __name__ == "__main__":
    sys.exit(options.run(main, "gradescope"))
