"""Many runs of deliberately broken code in one long-lived Python process each, for the maintainers' tests.

tests/test_mutations.py runs one check on each of 84 broken copies of a solution, tests/test_one_model.py
runs `generate` on 22 broken models, tests/test_learner_mistakes.py a step's checks on 14 broken files. A
fresh process per run pays Python's start, the imports (MAX, numpy, pytest: seconds) and MAX's session
every time. A `Worker` pays them once and runs `python -m MODULE ARGS` (pytest or tutorial.generate) for
one job after another, each as that command would run in a fresh process:

- before each job it forgets what the previous one loaded: the step modules (`checked_step_NN`, every
  `solutions.solution_NN`, a `--use DIR` redirect of them), the test modules and conftest (so their
  module-level and module-scoped fixture state is built again), MAX's eager graph (every eager tensor
  a job made) and any alarm left armed; sys.path, sys.meta_path, os.environ and the working directory
  are put back as they were when the worker started;
- fds 1 and 2 go to the job's own files, so its output is what the command would print;
- its exit status is pytest.main's, or a SystemExit's code; a job that raises past the command or calls
  sys.exit outside a check retires the worker after reporting (its state is not trusted).

What stays: imported libraries, the harness's modules (tutorial/*) and their caches of read-only data
(the HF reference's weights and outputs), and MAX's inference session. A job that hangs past its
limit, or kills the process (os._exit, a crash in MAX), gets its output so far and a line saying what
happened; its worker is killed and a fresh one takes the next job.

Run as `python -m tutorial.mutants`: the worker side, reading one JSON job a line on stdin.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FORGET = ("checked_step_", "solutions.solution_", "tests.")  # module name prefixes a job's own code lives under


# -- the parent's side ------------------------------------------------------------------------------------
@dataclass
class Job:
    """`python -m module *args` in `folder` (which it owns): stdout.txt and stderr.txt end up there."""

    module: str
    args: list[str]
    folder: Path
    timeout: float = 900
    started: float | None = None  # when a worker took it
    result: tuple[int, str, str] | None = None  # (exit status, stdout, stderr)

    @property
    def done_file(self) -> Path:
        return self.folder / "exit.json"


@dataclass
class Worker:
    process: subprocess.Popen
    job: Job | None = None
    retired: bool = False  # it said it runs no more jobs, and exits

    @classmethod
    def start(cls) -> Worker:
        process = subprocess.Popen(
            [sys.executable, "-m", "tutorial.mutants"],
            cwd=ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            text=True,
            start_new_session=True,  # its own process group: a kill takes anything it started too
        )
        return cls(process)

    def give(self, job: Job) -> None:
        job.folder.mkdir(parents=True, exist_ok=True)
        job.started, self.job = time.monotonic(), job
        request = {"module": job.module, "args": [str(a) for a in job.args], "folder": str(job.folder)}
        try:
            self.process.stdin.write(json.dumps(request) + "\n")
            self.process.stdin.flush()
        except OSError:  # it died since its last job: poll() sees it
            pass

    def poll(self) -> bool:
        """Whether its job is over (then job.result is set); a hang past the limit or a dead worker ends it too."""
        job, dead = self.job, self.process.poll() is not None  # dead first: it may write its result, then exit
        if job.done_file.exists():
            done = json.loads(job.done_file.read_text())
            job.result, self.retired = (done["code"], *read_output(job.folder)), done["retired"]
        elif dead:
            job.result = ended(job, f"the worker running it died (exit status {self.process.returncode})")
            job.result = (self.process.returncode or -1, *job.result[1:])
        elif time.monotonic() - job.started > job.timeout:
            self.kill()
            job.result = ended(job, f"no result after {job.timeout:g} s: the worker running it was killed")
        else:
            return False
        self.job = None
        return True

    def alive(self) -> bool:
        return self.process.poll() is None

    def kill(self) -> None:
        if self.process.poll() is None:
            try:
                os.killpg(self.process.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.process.wait()
        if self.process.stdin:
            self.process.stdin.close()


def ended(job: Job, what: str) -> tuple[int, str, str]:
    """A job its worker never finished: its output so far, then what happened and the end of its stderr."""
    out, err = read_output(job.folder)
    return -1, f"{out}\n[{what}; its stderr ends:]\n{err[-1000:]}", err


def read_output(folder: Path) -> tuple[str, str]:
    return tuple(
        (folder / name).read_text(errors="replace") if (folder / name).exists() else ""
        for name in ("stdout.txt", "stderr.txt")
    )


@dataclass
class Pool:
    """Jobs queued in the order their results will be asked for, run by at most `width` workers at a time.

    `top_up(width)` hands out jobs until `width` workers are busy; `result(key)` waits for one job's,
    keeping every core busy meanwhile. A worker is replaced when it dies or retires."""

    jobs: dict = field(default_factory=dict)  # key -> Job, in order
    workers: list[Worker] = field(default_factory=list)

    def add(self, key, job: Job) -> None:
        self.jobs[key] = job

    def busy(self) -> int:
        return sum(w.job is not None for w in self.workers)

    def reap(self) -> None:
        for worker in self.workers:
            if worker.job is not None:
                worker.poll()
        for worker in [w for w in self.workers if w.job is None and (w.retired or not w.alive())]:
            worker.kill()  # closes its pipe; a retired one is on its way out
            self.workers.remove(worker)

    def top_up(self, width: int) -> None:
        self.reap()
        waiting = (job for job in self.jobs.values() if job.started is None)
        while self.busy() < width and (job := next(waiting, None)):
            idle = next((w for w in self.workers if w.job is None), None)
            if idle is None:
                idle = Worker.start()
                self.workers.append(idle)
            idle.give(job)

    def result(self, key, width: int | None = None) -> tuple[int, str, str]:
        job, width = self.jobs[key], width or os.cpu_count() or 1
        while job.result is None:
            self.top_up(width)
            if job.result is None:
                time.sleep(0.1)
        return job.result

    def close(self) -> None:
        for worker in self.workers:
            worker.kill()
        self.workers.clear()


# -- the worker's side -------------------------------------------------------------------------------------
def forget(start: dict) -> None:
    """Put the process back as a fresh `python -m` would find the job's code: see the module docstring."""
    import gc

    from tutorial import checks
    from tutorial.impl import _Redirect

    for name in [m for m in sys.modules if m.startswith(FORGET) or m == "tests"]:
        del sys.modules[name]
    sys.meta_path[:] = [f for f in start["meta_path"] if not isinstance(f, _Redirect)]
    sys.path[:] = start["path"]
    os.environ.clear()
    os.environ.update(start["environ"])
    os.chdir(ROOT)
    checks.DEVICE, checks.LEARNER_FILE = "cpu", None
    signal.setitimer(signal.ITIMER_REAL, 0)
    signal.signal(signal.SIGALRM, signal.SIG_DFL)
    fresh_eager_graph()
    gc.collect()


def fresh_eager_graph() -> None:
    """MAX's global eager graph (`max.experimental.tensor.GRAPH`, undocumented) as a new process has it: no
    sources, seed 0. It keeps every eager tensor ever made alive as a source otherwise (all of a job's
    weights), and the previous job's unrealized ones would join the next job's graph."""
    from max.experimental import tensor

    tensor.ComputeGraph.__init__(tensor.GRAPH, context=tensor.GRAPH.context)


def run(module: str, args: list[str]) -> tuple[int, bool]:
    """`python -m module *args` in this process: (exit status, whether this process may run another job)."""
    import runpy
    import traceback

    sys.argv = [module, *args]
    try:
        if module == "pytest":
            import pytest

            return int(pytest.main(args)), True
        runpy.run_module(module, run_name="__main__", alter_sys=True)
        return 0, True
    except SystemExit as exit:  # as the interpreter turns it into a status
        if exit.code is None or isinstance(exit.code, int):
            return exit.code or 0, module != "pytest"
        print(exit.code, file=sys.stderr)
        return 1, module != "pytest"
    except BaseException:
        traceback.print_exc()
        return 1, False


def serve() -> None:
    jobs = os.fdopen(os.dup(0), "r")  # the job's own stdin is /dev/null, as for a command in the background
    null = os.open(os.devnull, os.O_RDWR)
    os.dup2(null, 0)
    quiet = os.dup(2)  # between jobs, stderr goes where the parent sent it
    import pytest  # noqa: F401  # the imports every job shares, paid once

    from tutorial import pytest_plugin  # noqa: F401  # imports MAX the lean way first

    start = {"meta_path": list(sys.meta_path), "path": list(sys.path), "environ": dict(os.environ)}
    for line in jobs:
        request = json.loads(line)
        folder = Path(request["folder"])
        forget(start)
        with open(folder / "stdout.txt", "w") as out, open(folder / "stderr.txt", "w") as err:
            os.dup2(out.fileno(), 1)
            os.dup2(err.fileno(), 2)
            try:
                code, again = run(request["module"], request["args"])
            finally:
                sys.stdout.flush()
                sys.stderr.flush()
                os.dup2(null, 1)
                os.dup2(quiet, 2)
        tmp = folder / "exit.json.tmp"
        tmp.write_text(json.dumps({"code": code, "retired": not again}))
        tmp.replace(folder / "exit.json")
        if not again:
            return


if __name__ == "__main__":
    serve()
