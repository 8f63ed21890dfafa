"""`pixi run classroom`: write templates/github-classroom.yml from tutorial/grading.toml (--check: compare only).

The template is a GitHub Classroom autograding workflow for a starter repo made from this course:
copied to .github/workflows/classroom.yml, it installs the pins the README's pip way (a Python 3.11
venv, `pip install -r requirements.txt`), then runs each step's check, `python -m pytest
tests/test_step_NN.py` (what `pixi run sNN` runs), as one test worth the step's full points.
GitHub's command grader scores a command all or nothing, so a step earns its points when every
check passes; `pixi run grade-class` and Gradescope give per-check credit from the same weights.
"""

from __future__ import annotations

import argparse
import math
import sys

from tutorial.course import ROOT, TITLES
from tutorial.grade import course_checks, full_points
from tutorial.state import SETTINGS
from tutorial import options

TEMPLATE = ROOT / "templates" / "github-classroom.yml"

HEAD = """\
# GitHub Classroom autograding for this course: copy to .github/workflows/classroom.yml in the
# assignment's starter repository. Generated from tutorial/grading.toml by `pixi run classroom`;
# edit that file and regenerate rather than editing this one (tests/test_grade_class.py compares).
# One test per step, worth the step's full points when all its checks pass ({total:g} in all).
name: Autograding Tests
'on':
  - push
  - repository_dispatch
permissions:
  checks: write
  actions: read
  contents: read
jobs:
  run-autograding-tests:
    runs-on: ubuntu-latest
    if: github.actor != 'github-classroom[bot]'
    steps:
      - name: Checkout code
        uses: actions/checkout@v4
      - name: Python 3.11
        uses: actions/setup-python@v5
        with:
          python-version: '3.11'
          cache: pip
      - name: MAX's version, from requirements.txt (the compile cache's key)
        id: max
        run: echo "version=$(sed -n 's/^max==//p' requirements.txt)" >> "$GITHUB_OUTPUT"
      # MAX compiles into ~/.local/share/modular; the HF reference's outputs go to
      # ~/.cache/gpt2-max-tutorial. A push that changes steps/ saves its compiles, and every
      # push starts from the newest cache of this MAX version: only changed code compiles.
      - name: Restore MAX's compile cache and the HF reference's outputs
        id: cache
        uses: actions/cache/restore@v5.0.5
        with:
          path: |
            ~/.local/share/modular
            ~/.cache/gpt2-max-tutorial
          key: gpt2-max-${{{{ runner.os }}}}-${{{{ runner.arch }}}}-max${{{{ steps.max.outputs.version }}}}-${{{{ hashFiles('steps/**') }}}}-${{{{ hashFiles('tutorial/**', 'solutions/**') }}}}
          restore-keys: |
            gpt2-max-${{{{ runner.os }}}}-${{{{ runner.arch }}}}-max${{{{ steps.max.outputs.version }}}}-
      - name: Install the course's pins (the README's pip path)
        run: |
          python -m venv .venv
          .venv/bin/pip install -r requirements.txt --extra-index-url https://download.pytorch.org/whl/cpu
          echo "$PWD/.venv/bin" >> "$GITHUB_PATH"
"""  # noqa: E501 (the cache key is one YAML line)

STEP = """\
      - name: s{n:02d} {title}
        id: s{n:02d}
        uses: classroom-resources/autograding-command-grader@v1
        with:
          test-name: s{n:02d} {title}
          command: python -m pytest tests/test_step_{n:02d}.py
          timeout: {minutes}
          max-score: {points:g}
"""


# saved even when a check failed (a student's usual push), under the restore step's key
SAVE = """\
      - name: Save the caches
        if: ${{ !cancelled() && steps.cache.outputs.cache-hit != 'true' }}
        uses: actions/cache/save@v5.0.5
        with:
          path: |
            ~/.local/share/modular
            ~/.cache/gpt2-max-tutorial
          key: ${{ steps.cache.outputs.cache-primary-key }}
"""


def render(points: dict[int, float]) -> str:
    minutes = math.ceil(SETTINGS["limits"]["seconds"] / 60)  # the command grader's timeout is in minutes
    text = HEAD.format(total=sum(points.values()))
    text += "".join(STEP.format(n=n, title=TITLES[n], minutes=minutes, points=p) for n, p in points.items())
    text += SAVE
    text += "      - name: Autograding Reporter\n"
    text += "        uses: classroom-resources/autograding-grading-reporter@v1\n"
    text += "        env:\n"
    text += "".join(f'          S{n:02d}_RESULTS: "${{{{steps.s{n:02d}.outputs.result}}}}"\n' for n in points)
    text += "        with:\n"
    text += f"          runners: {','.join(f's{n:02d}' for n in points)}\n"
    return text


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        prog="pixi run classroom", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--check", action="store_true", help="exit 1 if the committed template is out of date")
    args = parser.parse_args(argv)
    text = render(full_points(course_checks()))
    if args.check:
        same = TEMPLATE.exists() and TEMPLATE.read_text() == text
        print(f"{TEMPLATE.relative_to(ROOT)} is " + ("up to date" if same else "out of date: run `pixi run classroom`"))
        return 0 if same else 1
    TEMPLATE.parent.mkdir(parents=True, exist_ok=True)
    TEMPLATE.write_text(text)
    print(f"wrote {TEMPLATE.relative_to(ROOT)}: copy it to .github/workflows/classroom.yml in the starter repo")
    return 0


if __name__ == "__main__":
    sys.exit(options.run(main, "classroom"))
