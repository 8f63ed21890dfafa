"""One entry point, `python -m tutorial <command>`: every command is reachable through it, and
Ctrl-C ends every command with one line and exit status 130, not a traceback."""

import importlib
import os
import signal
import subprocess
import sys
import threading

import pytest

from tutorial import __main__ as cli
from tutorial.course import ROOT


@pytest.mark.parametrize("name", cli.COMMANDS)
def test_ctrl_c_ends_the_command_with_one_line_and_130(name, monkeypatch, capsys):
    module = importlib.import_module(cli.COMMANDS[name][0])

    def interrupted(argv):
        raise KeyboardInterrupt

    monkeypatch.setattr(module, "main", interrupted)
    assert cli.main([name]) == 130
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"{name}: stopped (Ctrl-C)"], err


@pytest.mark.parametrize("name", cli.COMMANDS)
def test_help_names_the_pixi_task(name, capsys):
    with pytest.raises(SystemExit) as done:
        cli.main([name, "--help"])
    assert done.value.code == 0
    assert capsys.readouterr().out.startswith(f"usage: pixi run {name}")


def test_an_unknown_command_lists_the_commands(capsys):
    assert cli.main(["genrate"]) == 2
    err = capsys.readouterr().err
    assert "no command 'genrate'" in err and all(name in err for name in cli.COMMANDS), err


def test_a_real_sigint_to_a_waiting_command():
    """`watch` waits for a save; SIGINT, as the terminal sends on Ctrl-C, ends it with 130 and one line."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "TUTORIAL_STATE": str(ROOT / "build" / "test-cli-state")}
    env["PYTHONFAULTHANDLER"] = "1"  # a SIGABRT prints where it is, should it not end
    # as a terminal starts it: with SIGINT's default action, whatever this process inherited (a program
    # a script starts in the background has SIGINT ignored, and so has everything it starts)
    before = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        watch = subprocess.Popen(
            [sys.executable, "-m", "tutorial", "watch", "--use", "solutions", "s01"],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
    finally:
        signal.signal(signal.SIGINT, before)
    # it imports, checks step 01 once (minutes on a cold machine), then says it waits for a save
    deadline = threading.Timer(300, watch.kill)
    deadline.start()
    seen = ""
    for line in watch.stdout:
        seen += line
        if line.startswith("Watching "):
            break
    deadline.cancel()
    assert watch.poll() is None, f"watch ended before it waited for a save: {watch.returncode}\n{seen[-1500:]}"
    watch.send_signal(signal.SIGINT)
    try:
        out, err = watch.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        watch.send_signal(signal.SIGABRT)
        out, err = watch.communicate()
        raise AssertionError(f"watch did not end within 60 s of SIGINT:\n{(seen + out)[-1500:]}{err[-1500:]}") from None
    assert watch.returncode == 130, (watch.returncode, out[-1500:], err[-1500:])
    assert "Traceback" not in err, err[-1500:]
    assert err.strip().splitlines()[-1] == "watch: stopped (Ctrl-C)", err[-1500:]
