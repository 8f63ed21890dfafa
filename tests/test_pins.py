"""The pins resolve on every platform pixi.toml declares, at the minimums it declares.

pixi locks all its platforms at once and picks each PyPI wheel for the glibc or macOS version in
`[workspace].platforms`, not for the machine it runs on: one pin without a wheel there and `pixi run`
fails for everyone. uv's resolver (`uv pip compile`, from requirements-dev.txt) answers the same
question here. It asks PyPI, so without the network these checks fail: CI has it.

Last, pixi's quoting of a task's arguments, which the README works around for `generate`.
"""

import importlib.util
import os
import re
import shlex
import shutil
import subprocess
import sys
import tomllib

import pytest

from tutorial.course import ROOT

PIXI = tomllib.loads((ROOT / "pixi.toml").read_text())
# what a bare "linux-64" or "osx-arm64" entry means to pixi (its docs: default declared virtual packages)
DEFAULTS = {"linux-64": {"glibc": "2.28"}, "osx-arm64": {"macos": "13.0"}}


def declared() -> dict[str, tuple[int, int]]:
    """Each platform's minimum as (major, minor): glibc on Linux, macOS on Apple silicon."""
    minimums = {}
    for entry in PIXI["workspace"]["platforms"]:
        entry = ({"platform": entry} | DEFAULTS.get(entry, {})) if isinstance(entry, str) else entry
        version = entry.get("glibc") or entry.get("macos") or entry.get("osx")
        assert version, f"pixi.toml declares {entry['platform']} without a glibc or macOS minimum"
        minimums[entry["platform"]] = tuple(int(part) for part in version.split(".")[:2])
    return minimums


def pins(platform: str) -> list[str]:
    """What pixi resolves on `platform`: the shared pins, then that platform's own over them."""
    specs = PIXI["pypi-dependencies"] | PIXI.get("target", {}).get(platform, {}).get("pypi-dependencies", {})
    # Only the version: Linux's torch index (download.pytorch.org) is not reachable from here, so torch
    # resolves from PyPI on both platforms. Same version, same manylinux_2_28 tag as the index's 2.13.0+cpu.
    return [f"{name}{spec if isinstance(spec, str) else spec['version']}" for name, spec in specs.items()]


def uv() -> list[str]:
    if importlib.util.find_spec("uv"):
        return [sys.executable, "-m", "uv"]
    assert shutil.which("uv"), "uv is not installed: pip install -r requirements-dev.txt"
    return ["uv"]


def resolve(platform: str, minimum: tuple[int, int], cache) -> subprocess.CompletedProcess:
    """uv pip compile of `platform`'s pins, for that platform at `minimum`."""
    env = dict(os.environ)
    if platform == "linux-64":
        target = f"x86_64-manylinux_{minimum[0]}_{minimum[1]}"
    elif platform == "osx-arm64":
        target, env["MACOSX_DEPLOYMENT_TARGET"] = "aarch64-apple-darwin", f"{minimum[0]}.{minimum[1]}"
    else:
        pytest.fail(f"pixi.toml declares {platform}: teach tests/test_pins.py its uv --python-platform")
    python = re.match(r"\d+\.\d+", PIXI["dependencies"]["python"])[0]
    return subprocess.run(
        [
            *uv(),
            "pip",
            "compile",
            "-",
            "--python-version",
            python,
            "--python-platform",
            target,
            "--cache-dir",
            str(cache),
            "--no-header",
            "--no-annotate",
            "--quiet",
        ],
        input="\n".join(pins(platform)),
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
    )


def shown(minimum: tuple[int, int]) -> str:
    return ".".join(map(str, minimum))


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return tmp_path_factory.mktemp("uv-cache")


@pytest.mark.parametrize("platform", declared())
def test_pins_resolve_at_the_declared_minimum(platform, cache):
    minimum = declared()[platform]
    run = resolve(platform, minimum, cache)
    assert run.returncode == 0, f"{platform} at {shown(minimum)}: the pins do not resolve:\n{run.stderr.strip()}"
    resolved = set(run.stdout.split())
    missing = [pin for pin in pins(platform) if pin not in resolved]
    assert not missing, f"{platform} at {shown(minimum)}: uv resolved without {missing}"


@pytest.mark.parametrize("platform", declared())
def test_pins_do_not_resolve_just_below_the_declared_minimum(platform, cache):
    """The minimum is needed (the README may ask for it), and the check above can tell."""
    major, minor = declared()[platform]
    below = (major, minor - 1) if platform.startswith("linux") else (major - 1, 0)
    run = resolve(platform, below, cache)
    assert run.returncode != 0, (
        f"{platform}: the pins resolve at {shown(below)}, below the declared {shown((major, minor))}: "
        "lower the minimum in pixi.toml and the README (or uv ignored the platform)"
    )
    assert "no wheels with a matching platform tag" in run.stderr, (
        f"{platform} at {shown(below)}: uv failed, but not for want of a wheel:\n{run.stderr.strip()}"
    )


def test_readme_spells_out_generate_for_a_prompt_with_an_apostrophe():
    """pixi appends a task's extra arguments as '{arg}' without escaping (pixi_task's as_script),
    so an apostrophe ends the quote; a plain command's arguments are escaped, so it works."""
    task = PIXI["tasks"]["generate"]
    task = task if isinstance(task, str) else task["cmd"]
    with pytest.raises(ValueError, match="No closing quotation"):
        shlex.split(task + " " + " ".join(f"'{arg}'" for arg in ["--prompt", "It's late"]))
    form = f'pixi run {task} --prompt "It\'s late"'
    assert form in (ROOT / "README.md").read_text(), f"README.md must show `{form}` beside the generate examples"
