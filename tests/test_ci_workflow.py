"""The GitHub workflow runs what learners run: pixi.toml's tasks, on pixi.toml's platforms.

.github/workflows/ci.yml runs `pixi run test` on Linux and, on Apple silicon, every step of
tutorial/course.toml against the solutions, `pixi run generate` on tests/support/tiny.py's offline
checkpoint and the book's test. Its jobs and the Classroom template (templates/github-classroom.yml)
keep MAX's compile cache and the HF reference's outputs under a key made of the MAX version and a
hash of tutorial/ and solutions/. Each check lists what a workflow gets wrong, one line each; the
last tests run the checks on broken copies. (.ci/run validates both files against GitHub's schema.)
"""

import copy
import os
import re
import subprocess
import tomllib

import pytest
import yaml

from tests.support import tiny
from tutorial import course
from tutorial.classroom import TEMPLATE
from tutorial.course import ROOT

WORKFLOW = ROOT / ".github" / "workflows" / "ci.yml"
PIXI = tomllib.loads((ROOT / "pixi.toml").read_text())
PLATFORMS = {entry["platform"] if isinstance(entry, dict) else entry for entry in PIXI["workspace"]["platforms"]}
# GitHub's runner labels and the pixi platform each is: Ubuntu 22.04+ has glibc 2.35 (pixi.toml
# declares 2.34), macos-14 and newer are Apple silicon (macos-13 is Intel, ubuntu-20.04 glibc 2.31)
RUNNERS = {"ubuntu-22.04": "linux-64", "ubuntu-24.04": "linux-64", "macos-14": "osx-arm64", "macos-15": "osx-arm64"}
CACHED = {"~/.local/share/modular", "~/.cache/gpt2-max-tutorial"}  # MAX's $XDG_DATA_HOME/modular; reference.py
HASHED = "hashFiles('tutorial/**', 'solutions/**')"
PIXI_RUN = re.compile(r"\bpixi run (\S+)(.*)")


def load(path=WORKFLOW) -> dict:
    return yaml.safe_load(path.read_text())


def pixi_runs(job: dict) -> list[tuple[str, list[str]]]:
    """Every `pixi run TASK ARGS` of the job's scripts, as (TASK, ARGS), continued lines joined."""
    runs = []
    for step in job["steps"]:
        for line in step.get("run", "").replace("\\\n", " ").splitlines():
            if match := PIXI_RUN.search(line):
                runs.append((match[1], re.findall(r'"[^"]*"|\S+', match[2].split("|")[0].split(" 2>")[0])))
    return runs


def platform(job: dict) -> str | None:
    return RUNNERS.get(job["runs-on"])


def job_on(workflow: dict, name: str) -> dict:
    return next((job for job in workflow["jobs"].values() if platform(job) == name), {"steps": []})


def unknown_tasks(workflow: dict) -> list[str]:
    return [
        f"{name}: `pixi run {task}` is not a task of pixi.toml"
        for name, job in workflow["jobs"].items()
        for task, _ in pixi_runs(job)
        if task not in PIXI["tasks"]
    ]


def platform_problems(workflow: dict) -> list[str]:
    """Each job on a runner of one of pixi.toml's platforms, every platform run, Python from pixi."""
    wrong = []
    requires = tuple(int(x) for x in PIXI["workspace"]["requires-pixi"].removeprefix(">=").split("."))
    for name, job in workflow["jobs"].items():
        if not platform(job):
            wrong.append(f"{name}: runs on {job['runs-on']}, which is none of pixi.toml's {sorted(PLATFORMS)}")
        if "timeout-minutes" not in job:
            wrong.append(f"{name}: has no timeout-minutes")
        uses = {s.get("uses", "").split("@")[0]: s for s in job["steps"]}
        if "actions/setup-python" in uses:
            wrong.append(f"{name}: sets up its own Python; pixi.toml's python = {PIXI['dependencies']['python']!r}")
        pixi = uses.get("prefix-dev/setup-pixi")
        if not pixi:
            wrong.append(f"{name}: does not set up pixi")
            continue
        version = tuple(int(x) for x in pixi.get("with", {}).get("pixi-version", "v0").lstrip("v").split("."))
        if version < requires:
            wrong.append(f"{name}: pixi {version}, pixi.toml requires-pixi {PIXI['workspace']['requires-pixi']}")
    ran = {platform(job) for job in workflow["jobs"].values()}
    wrong += [f"no job runs on {p}, a platform of pixi.toml" for p in sorted(PLATFORMS - ran)]
    return wrong


def linux_problems(workflow: dict) -> list[str]:
    runs = pixi_runs(job_on(workflow, "linux-64"))
    return [] if ("test", []) in runs else ["the Linux job does not run `pixi run test` (the suite .ci/run runs)"]


def macos_problems(workflow: dict) -> list[str]:
    """Every step's check against the solutions, in the course's order; generate; the book."""
    runs = pixi_runs(job_on(workflow, "osx-arm64"))
    checks = [(task, args) for task, args in runs if task in {step.task for step in course.STEPS.values()}]
    want = [(step.task, ["--use", "solutions"]) for step in course.STEPS.values()]
    wrong = []
    if checks != want:
        shown = ", ".join(f"pixi run {t} {' '.join(a)}".strip() for t, a in checks)
        wrong.append(
            f"the macOS job must run {', '.join(f'pixi run {t} --use solutions' for t, _ in want)}; it runs {shown}"
        )
    generate = next((args for task, args in runs if task == "generate"), [])
    given = dict(zip(generate, generate[1:]))  # each flag and the word after it
    want_args = {"--model": "build/tiny-gpt2", "--prompt": f'"{tiny.PROMPT}"', "--use": "solutions"}
    if any(given.get(flag) != value for flag, value in want_args.items()):
        wrong.append(f"the macOS job must run `pixi run generate` with {want_args} (tests/support/tiny.py's prompt)")
    if ("test-book", []) not in runs:
        wrong.append("the macOS job does not run `pixi run test-book`")
    return wrong


def step_output(script: str) -> dict[str, str]:
    """What a step's `run` script writes to $GITHUB_OUTPUT, run here in the repository's root."""
    out = ROOT / "build" / f"github-output-{os.getpid()}"
    out.parent.mkdir(exist_ok=True)
    try:
        subprocess.run(["bash", "-ec", script], cwd=ROOT, env={**os.environ, "GITHUB_OUTPUT": str(out)}, check=True)
        return dict(line.split("=", 1) for line in out.read_text().splitlines())
    finally:
        out.unlink(missing_ok=True)


def cache_problems(job: dict, name: str) -> list[str]:
    """Restored under a key of the MAX version, ending in a hash of tutorial/ and solutions/, else from
    the newest cache of that MAX version, and saved even when a check failed."""
    steps = {s.get("id"): s for s in job["steps"]}
    uses = {s.get("uses", "").split("@")[0]: s for s in job["steps"]}
    restore, save = uses.get("actions/cache/restore"), uses.get("actions/cache/save")
    if not restore or not save or "cache" not in steps or steps["cache"] is not restore:
        return [f"{name}: MAX's cache needs an actions/cache/restore step with id cache and an actions/cache/save step"]
    wrong = []
    for step in (restore, save):
        paths = set(step["with"]["path"].split())
        if paths != CACHED:
            wrong.append(f"{name}: {step['uses']} caches {sorted(paths)}, not {sorted(CACHED)}")
    key, max_part = restore["with"]["key"], "max${{ steps.max.outputs.version }}-"
    if max_part not in key or not key.endswith(HASHED + " }}"):
        wrong.append(f"{name}: the cache key {key} is not the MAX version then {HASHED}")
        return wrong
    prefix = key[: key.index(max_part) + len(max_part)]
    if restore["with"].get("restore-keys", "").strip().splitlines() != [prefix]:
        wrong.append(f"{name}: restore-keys must be {prefix}: a changed harness starts from the newest cache")
    after_failures = "!cancelled()" in save.get("if", "")
    if save["with"]["key"] != "${{ steps.cache.outputs.cache-primary-key }}" or not after_failures:
        wrong.append(f"{name}: the caches must be saved under the restore step's key, also after a failed check")
    pin = next(
        line.split("==")[1] for line in (ROOT / "requirements.txt").read_text().splitlines() if line.startswith("max==")
    )
    version = step_output(steps["max"]["run"]).get("version") if "max" in steps else None
    if version != pin:
        wrong.append(f"{name}: the max step gives version {version!r}, the pins say max=={pin}")
    return wrong


# -- the workflow and the template as committed ----------------------------------------------------
def test_every_pixi_run_is_a_task_of_pixi_toml():
    wrong = unknown_tasks(load())
    assert not wrong, wrong[0]


def test_the_jobs_run_on_pixi_tomls_platforms_with_its_python():
    wrong = platform_problems(load())
    assert not wrong, wrong[0]


def test_linux_runs_the_whole_suite():
    wrong = linux_problems(load())
    assert not wrong, wrong[0]


def test_macos_checks_every_step_generates_and_builds_the_book():
    wrong = macos_problems(load())
    assert not wrong, wrong[0]


def test_both_jobs_and_the_classroom_template_keep_maxs_compile_cache():
    workflow, [(name, template)] = load(), load(TEMPLATE)["jobs"].items()
    wrong = [p for job_name, job in workflow["jobs"].items() for p in cache_problems(job, job_name)]
    wrong += cache_problems(template, f"{TEMPLATE.name} {name}")
    assert not wrong, wrong[0]
    # the Classroom template installs with pip: its Python must be pixi.toml's
    python = next(s for s in template["steps"] if s.get("uses", "").startswith("actions/setup-python"))
    assert f"{python['with']['python-version']}.*" == PIXI["dependencies"]["python"], (
        f"{TEMPLATE.name} sets up Python {python['with']['python-version']}, pixi.toml {PIXI['dependencies']['python']}"
    )


# -- the checks above, on broken copies --------------------------------------------------------------
def edit_run(job: str, old: str, new: str):
    def edit(workflow):
        for step in workflow["jobs"][job]["steps"]:
            if old in step.get("run", ""):
                step["run"] = step["run"].replace(old, new)
                return
        raise AssertionError(f"no step of {job} runs {old}")

    return edit


def drop_step(job: str, run: str):
    def edit(workflow):
        steps = workflow["jobs"][job]["steps"]
        steps.remove(next(s for s in steps if run in s.get("run", "")))

    return edit


def set_job(job: str, key: str, value):
    def edit(workflow):
        if value is None:
            del workflow["jobs"][job][key]
        else:
            workflow["jobs"][job][key] = value

    return edit


def set_with(job: str, uses: str, key: str, value):
    def edit(workflow):
        step = next(s for s in workflow["jobs"][job]["steps"] if s.get("uses", "").startswith(uses))
        step["with"][key] = value

    return edit


def add_setup_python(workflow):
    workflow["jobs"]["macos"]["steps"].insert(
        1, {"uses": "actions/setup-python@v6", "with": {"python-version": "3.12"}}
    )


BROKEN = {
    "a task pixi.toml lacks": (
        edit_run("linux", "pixi run test", "pixi run tests"),
        unknown_tasks,
        "linux: `pixi run tests` is not a task of pixi.toml",
    ),
    "Linux runs only the book's test": (
        edit_run("linux", "pixi run test", "pixi run test-book"),
        linux_problems,
        "the Linux job does not run `pixi run test`",
    ),
    "a step left out on macOS": (
        drop_step("macos", "pixi run s07 "),
        macos_problems,
        "the macOS job must run pixi run s01 --use solutions",
    ),
    "a step checked against the learner's stub": (
        edit_run("macos", "pixi run s05 --use solutions", "pixi run s05"),
        macos_problems,
        "it runs pixi run s01 --use solutions, pixi run s02 --use solutions, pixi run s03 --use solutions, "
        "pixi run s04 --use solutions, pixi run s05, pixi run s06",
    ),
    "generate on the learner's steps": (
        edit_run("macos", "--greedy --use solutions", "--greedy --use steps"),
        macos_problems,
        "the macOS job must run `pixi run generate` with",
    ),
    "generate on another prompt": (
        edit_run("macos", tiny.PROMPT, "hello"),
        macos_problems,
        "(tests/support/tiny.py's prompt)",
    ),
    "no book on macOS": (
        drop_step("macos", "pixi run test-book"),
        macos_problems,
        "the macOS job does not run `pixi run test-book`",
    ),
    "macOS on an Intel runner": (set_job("macos", "runs-on", "macos-13"), platform_problems, "macos: runs on macos-13"),
    "Linux on glibc 2.31": (
        set_job("linux", "runs-on", "ubuntu-20.04"),
        platform_problems,
        "linux: runs on ubuntu-20.04",
    ),
    "no Apple silicon job": (
        set_job("macos", "runs-on", "ubuntu-22.04"),
        platform_problems,
        "no job runs on osx-arm64, a platform of pixi.toml",
    ),
    "a Python of its own": (add_setup_python, platform_problems, "macos: sets up its own Python"),
    "a pixi older than requires-pixi": (
        set_with("linux", "prefix-dev/setup-pixi", "pixi-version", "v0.71.0"),
        platform_problems,
        "linux: pixi (0, 71, 0), pixi.toml requires-pixi",
    ),
    "no timeout": (set_job("macos", "timeout-minutes", None), platform_problems, "macos: has no timeout-minutes"),
}
CACHE_BROKEN = {
    "the compile cache at ~/.cache/modular": (
        lambda job: job["steps"][3]["with"].update(path="~/.cache/modular\n~/.cache/gpt2-max-tutorial\n"),
        "caches ['~/.cache/gpt2-max-tutorial', '~/.cache/modular']",
    ),
    "a key without the MAX version": (
        lambda job: job["steps"][3]["with"].update(
            key=job["steps"][3]["with"]["key"].replace("max${{ steps.max.outputs.version }}", "")
        ),
        "is not the MAX version then",
    ),
    "a key without solutions/": (
        lambda job: job["steps"][3]["with"].update(key=job["steps"][3]["with"]["key"].replace(", 'solutions/**'", "")),
        "is not the MAX version then",
    ),
    "no restore-keys": (lambda job: job["steps"][3]["with"].pop("restore-keys"), "restore-keys must be gpt2-max-"),
    "saved only when every check passed": (
        lambda job: next(s for s in job["steps"] if s.get("uses", "").startswith("actions/cache/save")).update(
            {"if": "${{ success() }}"}
        ),
        "also after a failed check",
    ),
    "the version read from the wrong line": (
        lambda job: job["steps"][2].update(run=job["steps"][2]["run"].replace("^max = ", "^uv = ")),
        "the max step gives version '0.13.9', the pins say max==",
    ),
}


@pytest.mark.parametrize("case", BROKEN)
def test_the_checks_name_a_broken_workflow(case):
    edit, check, message = BROKEN[case]
    assert not check(load()), f"{check.__name__} fails on the committed workflow"
    broken = copy.deepcopy(load())
    edit(broken)
    wrong = check(broken)
    assert any(message in line for line in wrong), f"{case}: {check.__name__} says {wrong}, not {message!r}"


@pytest.mark.parametrize("case", CACHE_BROKEN)
def test_the_cache_check_names_a_broken_cache(case):
    edit, message = CACHE_BROKEN[case]
    job = copy.deepcopy(load()["jobs"]["linux"])
    assert [s.get("id") for s in job["steps"][2:4]] == ["max", "cache"], "the edits below expect max, then cache"
    assert not cache_problems(job, "linux")
    edit(job)
    wrong = cache_problems(job, "linux")
    assert any(message in line for line in wrong), f"{case}: cache_problems says {wrong}, not {message!r}"
