"""`pixi run grade-class DIR`: grade a class, one subfolder of DIR per student.

Each student's folder holds step_NN.py files (or a copy of the course repo, whose steps/ is used),
and is graded exactly as `pixi run grade` grades one submission (tutorial/grade.py): each step in
its own process with its limits, so a crash, hang or memory blow-up costs that student's step only.
`--jobs N` students at once (default: the number of cores).

Writes OUT/<student>.json and OUT/<student>.xml as `grade` does, and OUT/gradebook.csv: points per
step, total, and per step passed, failed, crashed, timed out or not submitted. OUT defaults to
.progress/grades/<DIR name>/. A student whose files are unchanged since their last grade here (same
content, same course checks and solutions, same limits) keeps that grade without a run, so a late
submission costs one student's time; --force grades everyone again. Nothing is written into DIR.
Exit code 0 when the gradebook is written, 1 if a student could not be graded, 2 on bad arguments.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import os
import sys
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

from tutorial.course import ROOT, TITLES
from tutorial.grade import (
    Limits,
    add_limit_options,
    course_checks,
    full_points,
    grade,
    limits,
    steps_folder,
    write_reports,
)
from tutorial.runner import Stopped, stop_on_signals
from tutorial.state import STATE, Status
from tutorial import options

# What a step's status becomes in the gradebook (the JSON keeps the finer one).
VERDICT = {
    Status.PASSED: Status.PASSED,
    Status.FAILED: Status.FAILED,
    Status.TIMED_OUT: Status.TIMED_OUT,
    Status.CRASHED: Status.CRASHED,
    Status.OUT_OF_MEMORY: Status.CRASHED,
    Status.ERROR: Status.CRASHED,
}
# The course's side of a grade: a change to any of these changes every student's grade key.
COURSE_FILES = [
    "pytest.ini",
    "requirements.txt",
    "tutorial/*.py",
    "tutorial/*.toml",  # grading.toml, course.toml
    "tests/__init__.py",
    "tests/test_step_*.py",  # not conftest.py or tests/support/: an edit there grades no one again
    "solutions/*.py",
]


@dataclass(frozen=True)
class Student:
    name: str  # the folder's name: the gradebook's first column and the reports' file names
    folder: Path  # where the step files are
    key: str  # hash of their files, the course's files and the limits: unchanged key, unchanged grade


def cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def course_key(limit: Limits) -> hashlib._Hash:
    digest = hashlib.sha256(f"{limit}|max {version('max')}".encode())
    for path in sorted({p for pattern in COURSE_FILES for p in ROOT.glob(pattern)}):
        digest.update(str(path.relative_to(ROOT)).encode() + b"\0" + path.read_bytes() + b"\0")
    return digest


def students(folder: Path, limit: Limits) -> list[Student]:
    course, found = course_key(limit), []
    for sub in sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith(".")):
        steps, digest = steps_folder(sub), course.copy()
        for path in sorted(p for p in steps.rglob("*") if p.is_file() and "__pycache__" not in p.parts):
            digest.update(str(path.relative_to(steps)).encode() + b"\0" + path.read_bytes() + b"\0")
        found.append(Student(sub.name, steps, digest.hexdigest()))
    return found


def last_grade(student: Student, out: Path) -> dict | None:
    """The student's report from an earlier run, if it graded these very files under these limits."""
    try:
        report = json.loads((out / f"{student.name}.json").read_text())
    except (OSError, ValueError):
        return None
    return report if report.get("grade_key") == student.key and (out / f"{student.name}.xml").exists() else None


def gradebook(reports: dict[str, dict], full: dict[int, float], path: Path) -> None:
    steps = sorted(full)
    with path.open("w", newline="") as file:
        out = csv.writer(file)
        out.writerow(["student", *(f"s{n:02d}" for n in steps), "total", "max", *(f"s{n:02d} status" for n in steps)])
        for name, report in sorted(reports.items()):
            graded = {s["step"]: s for s in report["steps"]}
            points = [graded[n]["points"] if n in graded else 0 for n in steps]
            status = [VERDICT[graded[n]["status"]] if n in graded else Status.NOT_SUBMITTED for n in steps]
            out.writerow([name, *(f"{p:g}" for p in points), f"{sum(points):g}", f"{sum(full.values()):g}", *status])


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        prog="pixi run grade-class", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("folder", type=Path, help="a directory with one subfolder of step_NN.py files per student")
    parser.add_argument(
        "--out", type=Path, help="where the reports and gradebook.csv go (default .progress/grades/<DIR name>/)"
    )
    parser.add_argument("--jobs", type=int, default=cores(), help="students graded at once (default: cores)")
    parser.add_argument("--force", action="store_true", help="grade every student again, changed or not")
    add_limit_options(parser)
    args = parser.parse_args(argv)
    console, folder = Console(), args.folder.resolve()
    if not folder.is_dir():
        parser.error(f"{args.folder} is not a directory")
    out = (args.out or STATE / "grades" / folder.name).resolve()
    if out.is_relative_to(folder):
        parser.error(f"the grader never writes into the class's folder: {out} is inside it")
    if args.jobs < 1:
        parser.error("--jobs must be at least 1")
    limit, start = limits(args), time.monotonic()
    everyone = students(folder, limit)
    if not everyone:
        parser.error(f"{args.folder} has no student folders")
    stop_on_signals()  # SIGTERM or Ctrl-C: every step process of every student dies with the grader
    full = full_points(course_checks())

    reports = {} if args.force else {s.name: r for s in everyone if (r := last_grade(s, out))}
    todo = [s for s in everyone if s.name not in reports]
    if reports:
        console.print(
            f"{len(reports)} of {len(everyone)} students unchanged since their last grade: "
            f"skipped ({', '.join(sorted(reports))}); --force grades them again",
            highlight=False,
        )
    failures = grade_all(todo, limit, out, args.jobs, console, reports)

    out.mkdir(parents=True, exist_ok=True)
    gradebook(reports, full, out / "gradebook.csv")
    table = Table("student", "points", "steps passed", title=f"Class {folder.name}")
    table.add_column("first problem", overflow="fold")
    for name, report in sorted(reports.items()):
        first = next((s for s in report["steps"] if s["status"] != Status.PASSED), None)
        table.add_row(
            name,
            f"{report['points']:g}/{sum(full.values()):g}",
            f"{sum(s['status'] == 'passed' for s in report['steps'])} of {len(full)}",
            escape(f"s{first['step']:02d}: {first['message']}") if first else "",
        )
    console.print(table)
    console.print(
        f"{len(todo) - len(failures)} graded, {len(everyone) - len(todo)} unchanged, in "
        f"{time.monotonic() - start:.1f} s · gradebook {out / 'gradebook.csv'}",
        highlight=False,
    )
    return 1 if failures else 0


def grade_all(
    todo: list[Student], limit: Limits, out: Path, jobs: int, console: Console, reports: dict[str, dict]
) -> list[str]:
    """Grade `todo`, `jobs` at once, into `reports` (and their JSON and JUnit files); the names that failed."""
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("ETA"),
        TimeRemainingColumn(),
    )
    failures: list[str] = []
    if not todo:
        return failures
    with Progress(*columns, console=console) as progress:
        overall = progress.add_task("students graded", total=len(todo))

        def one(student: Student) -> dict:
            task = progress.add_task(f"  {student.name}", total=None)

            def on_step(n, i, count):
                label = f"  {student.name}: step {n:02d} · {TITLES[n]} ({i} of {count})"
                progress.update(task, description=label)
                return lambda check: progress.update(task, description=f"{label}: {check}")

            try:
                report = grade(student.folder, limit, on_step=on_step)
            finally:
                progress.remove_task(task)
            report["grade_key"] = student.key
            write_reports(report, out / f"{student.name}.json", out / f"{student.name}.xml")
            return report

        # threads, not processes: each step already runs in its own process, and the threads share
        # runner's registry of them, which SIGTERM and Ctrl-C empty (stop_on_signals)
        pool = ThreadPoolExecutor(max_workers=jobs, thread_name_prefix="grade")
        try:
            futures = {pool.submit(one, s): s for s in todo}
            for future in as_completed(futures):
                student = futures[future]
                try:
                    report = reports[student.name] = future.result()
                except Stopped:
                    raise
                except Exception as error:  # a fault of the grader's, not the student's: say so, grade the rest
                    failures.append(student.name)
                    why = escape(f"{student.name}: not graded: {type(error).__name__}: {error}")
                    progress.console.print(f"[red]{why}")
                else:
                    passed = sum(s["status"] == Status.PASSED for s in report["steps"])
                    progress.console.print(
                        f"{student.name}: {report['points']:g} points, {passed} of "
                        f"{len(report['steps'])} submitted steps pass ({report['seconds']:.0f} s)",
                        highlight=False,
                    )
                progress.advance(overall)
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
    return failures


if __name__ == "__main__":
    sys.exit(options.run(main, "grade-class"))
