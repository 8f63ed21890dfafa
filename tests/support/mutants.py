"""Many runs of broken code, and of `generate`, in a few long-lived Python processes, for the maintainers' tests.

tests/test_mutations.py runs one check on each of 84 broken copies of a solution, tests/test_one_model.py
`generate` on 22 models with a step broken, tests/test_learner_mistakes.py a step's checks on broken
files, tests/test_course.py each committed stub's checks, tests/test_generate.py its `generate` runs
(`Pool.run`: one job, ahead of the queue, waited for). A fresh process per run pays Python's start
and the imports (MAX, numpy, pytest; torch and transformers for `generate`) every time. A `Worker` pays
them once, then runs one job after another, each `python -m MODULE ARGS` (pytest or tutorial.generate)
as that command would run in a fresh process:

- before each job it forgets what the jobs before it loaded: the step modules (`checked_step_NN`, every
  `solutions.solution_NN`, a `--use DIR` redirect of them), the test modules, conftest and the check
  harness's pytest plugin (imported, and assertion-rewritten, again), MAX's eager graph (which holds
  every eager tensor a job made) and any alarm left armed or blocked; sys.path, sys.meta_path, os.environ and the
  working directory go back to what they were when the worker started;
- fds 1 and 2 go to the job's own files, so its output is what the command would print;
- its exit status is pytest.main's, or a SystemExit's code as the interpreter would turn it into one.
  A job that raises past the command, or calls sys.exit outside a check, retires its worker after
  reporting (its state is not trusted), and so does a worker past `RETIRE_RSS` of memory.

What stays: imported libraries, the harness's modules (tutorial/*) with their caches of read-only data
(the HF reference's weights and outputs), and MAX's inference session. A job that hangs past its
limit, or kills the process (os._exit, a crash in MAX), gets its output so far, a line saying what
happened and the end of its stderr, with exit status -1; its worker is killed, and a fresh one takes
the next job.

A job marked `fresh` (a command that times its own processes, reads stdin, or is a whole pytest
session) runs in a `python -m` process of its own instead, and counts as a busy worker. `Pool.start`
runs a thread that hands out jobs as workers finish them, so the queue moves while a long test runs.

Run as `python -m tests.support.mutants`: the worker, reading one JSON job a line on stdin.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

ROOT = Path(__file__).resolve().parents[2]  # tests/support/mutants.py -> the repository
FORGET = ("checked_step_", "solutions.solution_", "tests.", "tutorial.pytest_plugin")  # module name prefixes
NOW = 10  # the priority of a job a test is waiting for (Pool.run): queued jobs have 0 or 1
RETIRE_RSS = 4 << 30  # bytes: a worker this big after a job exits and a fresh one takes its place


# -- the test session's side -----------------------------------------------------------------------------
@dataclass
class Job:
    """`python -m module *args` in `folder` (created, and its own): stdout.txt and stderr.txt go there."""

    module: str
    args: list
    folder: Path
    timeout: float = 900  # seconds, cold compiles included, before its worker is killed
    priority: int = 0  # higher first; in the order added within one priority
    started: float | None = None  # when a worker took it
    result: tuple[int, str, str] | None = None  # (exit status, stdout, stderr)
    cost: dict | None = None  # its worker's seconds on it: "wall", "cpu" (all its threads)
    fresh: bool = False  # in a `python -m` process of its own, not a worker (see the module docstring)
    stdin: str = ""  # what a fresh job reads on stdin (a worker's job reads nothing)
    env: dict = field(default_factory=dict)  # added to a fresh job's environment


@dataclass
class Worker:
    process: subprocess.Popen
    log: IO[str]  # its own stderr, outside jobs: why it failed to start or to forget a job
    job: Job | None = None
    retired: bool = False  # it said it takes no more jobs, and is exiting

    @classmethod
    def start(cls) -> Worker:
        log = tempfile.TemporaryFile("w+", errors="replace")
        process = subprocess.Popen(
            [sys.executable, "-m", "tests.support.mutants"],
            cwd=ROOT,
            env={k: v for k, v in os.environ.items() if k != "PYTEST_CURRENT_TEST"},  # the test it started in
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            stderr=log,
            text=True,
            start_new_session=True,  # its own process group: a kill takes anything it started too
        )
        return cls(process, log)

    def give(self, job: Job) -> None:
        job.folder.mkdir(parents=True, exist_ok=True)
        job.started, self.job = time.monotonic(), job
        try:
            self.process.stdin.write(
                json.dumps({"module": job.module, "args": list(map(str, job.args)), "folder": str(job.folder)}) + "\n"
            )
            self.process.stdin.flush()
        except OSError:  # it died since its last job: poll() says so
            pass

    def poll(self) -> bool:
        """Whether its job is over, and job.result set: done, or the worker died, or it ran past its limit."""
        job, dead = self.job, self.process.poll() is not None  # dead first: it writes its result, then may exit
        done = job.folder / "exit.json"
        if done.exists():
            status = json.loads(done.read_text())
            job.result, self.retired = (status["code"], *read_output(job.folder)), status["retired"]
            job.cost = status["cost"]
        elif dead:
            job.result = self.ended(job, f"the worker running it died with exit status {self.process.returncode}")
        elif time.monotonic() - job.started > job.timeout:
            job.result = self.ended(job, f"no result after {job.timeout:g} s: the worker running it was killed")
            self.kill()
        else:
            return False
        self.job = None
        return True

    def ended(self, job: Job, what: str) -> tuple[int, str, str]:
        """A job whose worker never finished it: its output so far, what happened, and the end of its stderr and
        of the worker's own (an error before the job started, say)."""
        out, err = read_output(job.folder)
        self.log.seek(0)
        if worker := self.log.read()[-1000:]:
            what += f"; the worker's own stderr ends:\n{worker}"
        return -1, f"{out}\n[{what}; the job's stderr ends:]\n{err[-1000:]}", f"{err}\n[{what}]"

    def kill(self) -> None:
        if self.process.poll() is None:
            with suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait()
        with suppress(OSError):  # a job it was given after it died is still in the pipe
            self.process.stdin.close()
        self.log.close()


@dataclass
class Fresh:
    """A job in a process of its own (`Job.fresh`): the pool counts it as a busy worker."""

    process: subprocess.Popen
    job: Job

    @classmethod
    def start(cls, job: Job) -> Fresh:
        job.folder.mkdir(parents=True, exist_ok=True)
        job.started = time.monotonic()
        (job.folder / "stdin.txt").write_text(job.stdin)
        names = (job.folder / "stdin.txt", job.folder / "stdout.txt", job.folder / "stderr.txt")
        with open(names[0]) as stdin, open(names[1], "w") as out, open(names[2], "w") as err:
            process = subprocess.Popen(
                [sys.executable, "-m", job.module, *map(str, job.args)],
                cwd=ROOT,
                env={k: v for k, v in os.environ.items() if k != "PYTEST_CURRENT_TEST"} | job.env,
                stdin=stdin,
                stdout=out,
                stderr=err,
                start_new_session=True,  # its own process group: a kill takes anything it started too
            )
        return cls(process, job)

    def poll(self) -> bool:
        """Whether it is over, and job.result set: it exited, or it ran past its limit and was killed."""
        job = self.job
        pid, status, usage = os.wait4(self.process.pid, os.WNOHANG)  # wait4: its CPU seconds too
        if pid:
            self.process.returncode = os.waitstatus_to_exitcode(status)
            job.result = (self.process.returncode, *read_output(job.folder))
            job.cost = {"wall": time.monotonic() - job.started, "cpu": usage.ru_utime + usage.ru_stime}
        elif time.monotonic() - job.started > job.timeout:
            self.kill()
            out, err = read_output(job.folder)
            what = f"no result after {job.timeout:g} s: its process was killed"
            job.result = -1, f"{out}\n[{what}]", f"{err}\n[{what}]"
        return job.result is not None

    def kill(self) -> None:
        if self.process.returncode is None:
            with suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()


@contextmanager
def limit_paused():
    """pytest-timeout's limit on the running test (its signal method: a SIGALRM timer on the main thread)
    stopped meanwhile, and re-armed afterwards with what was left of it."""
    on_main = threading.current_thread() is threading.main_thread()
    left = signal.getitimer(signal.ITIMER_REAL)[0] if on_main else 0.0
    if left:
        signal.setitimer(signal.ITIMER_REAL, 0)
    try:
        yield
    finally:
        if left:
            signal.setitimer(signal.ITIMER_REAL, left)


def read_output(folder: Path) -> tuple[str, str]:
    return tuple(
        (folder / name).read_text(errors="replace") if (folder / name).exists() else ""
        for name in ("stdout.txt", "stderr.txt")
    )


@dataclass
class Pool:
    """The session's jobs and the workers running them (tests/conftest.py keeps one).

    `start(width)` starts a thread that hands waiting jobs to workers, keeping `width` busy and
    starting workers as needed: a worker that finishes a job gets the next one while a long test
    runs. `result(key)` waits for one job's result, keeping a worker per core busy meanwhile.
    Without `start`, `result` alone does the handing out."""

    jobs: dict = field(default_factory=dict)  # key -> Job
    workers: list[Worker] = field(default_factory=list)
    fresh: list[Fresh] = field(default_factory=list)  # jobs running in processes of their own
    width: int = 0  # workers kept busy by the thread (none before `start`)
    waiting: int = 0  # callers in `result`: each adds workers, up to one per core
    lock: threading.RLock = field(default_factory=threading.RLock)
    stopped: threading.Event = field(default_factory=threading.Event)

    def add(self, key, job: Job) -> None:
        with self.lock:
            assert key not in self.jobs, f"job {key!r} queued twice"
            self.jobs[key] = job

    def start(self, width: int) -> None:
        self.width = width
        threading.Thread(target=self.dispatch, name="job pool", daemon=True).start()

    def dispatch(self) -> None:
        while not self.stopped.wait(0.05):
            self.top_up()

    def top_up(self) -> None:
        with self.lock:
            if self.stopped.is_set():
                return
            width = (os.cpu_count() or 1) if self.waiting else self.width
            for worker in self.workers:
                if worker.job is not None:
                    worker.poll()
            self.fresh = [f for f in self.fresh if not f.poll()]
            for worker in [w for w in self.workers if w.job is None and (w.retired or w.process.poll() is not None)]:
                worker.kill()
                self.workers.remove(worker)
            waiting = iter(sorted((j for j in self.jobs.values() if j.started is None), key=lambda j: -j.priority))
            while sum(w.job is not None for w in self.workers) + len(self.fresh) < width and (
                job := next(waiting, None)
            ):
                if job.fresh:
                    self.fresh.append(Fresh.start(job))
                    continue
                idle = next((w for w in self.workers if w.job is None), None)
                if idle is None:
                    idle = Worker.start()
                    self.workers.append(idle)
                idle.give(job)

    def result(self, key) -> tuple[int, str, str]:
        """(exit status, stdout, stderr) of the job queued under `key`.

        The calling test's own time limit stops while it waits (`limit_paused`): the job has its own,
        `Job.timeout`, counted from when a worker takes it. Otherwise a test whose job waits in the
        queue behind slow ones (a cold MAX cache: half an hour of compiles) would time out for the
        queue's sake, not its own."""
        job = self.jobs[key]
        with self.lock:
            self.waiting += 1
        try:
            with limit_paused():
                while job.result is None:
                    self.top_up()
                    if job.result is None:
                        time.sleep(0.05)
        finally:
            with self.lock:
                self.waiting -= 1
        return job.result

    def run(self, key, job: Job) -> subprocess.CompletedProcess:
        """`job` ahead of every queued one, waited for: what subprocess.run(capture_output=True, text=True)
        would return for its command."""
        job.priority = NOW
        self.add(key, job)
        code, out, err = self.result(key)
        return subprocess.CompletedProcess(["python", "-m", job.module, *map(str, job.args)], code, out, err)

    def close(self) -> None:
        with self.lock:
            self.stopped.set()
            for worker in [*self.workers, *self.fresh]:
                worker.kill()
            self.workers.clear()
            self.fresh.clear()


# -- the worker's side --------------------------------------------------------------------------------------
def forget(start: dict) -> None:
    """Put the process back as `python -m` would find it for the next job: see the module docstring."""
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
    sys.stdout, sys.stderr = start["stdout"], start["stderr"]
    checks.SESSION = checks.CheckSession()
    signal.setitimer(signal.ITIMER_REAL, 0)
    signal.signal(signal.SIGALRM, signal.SIG_DFL)
    signal.pthread_sigmask(signal.SIG_SETMASK, set())  # a job that blocked SIGALRM must not block the next one's
    from tutorial.maxprivate import fresh_eager_graph

    fresh_eager_graph()
    gc.collect()


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
    except SystemExit as exit:  # as the interpreter turns it into an exit status
        again = module != "pytest"  # a module's normal way out; out of pytest.main, it is not
        if exit.code is None or isinstance(exit.code, int):
            return exit.code or 0, again
        print(exit.code, file=sys.stderr)
        return 1, again
    except BaseException:
        traceback.print_exc()
        return 1, False


def cpu_seconds() -> float:
    import resource

    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def rss() -> int:
    """Bytes of memory this process holds now."""
    return int(Path("/proc/self/statm").read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def serve() -> None:
    jobs = os.fdopen(os.dup(0), "r")  # a job's own stdin is /dev/null
    null = os.open(os.devnull, os.O_RDWR)
    os.dup2(null, 0)
    quiet = os.dup(2)  # between jobs, stderr goes where the session sent it
    import numpy  # noqa: F401  # what every job imports, paid once
    import pytest  # noqa: F401

    from tutorial.maxprivate import import_max_lean

    import_max_lean()
    import max.driver  # noqa: F401
    import max.experimental.functional  # noqa: F401
    import max.experimental.tensor  # noqa: F401
    import max.nn.module_v3  # noqa: F401

    start = {"meta_path": list(sys.meta_path), "path": list(sys.path), "environ": dict(os.environ)}
    start |= {"stdout": sys.stdout, "stderr": sys.stderr}
    for line in jobs:
        request = json.loads(line)
        folder = Path(request["folder"])
        forget(start)
        wall, cpu = time.monotonic(), cpu_seconds()
        with open(folder / "stdout.txt", "w") as out, open(folder / "stderr.txt", "w") as err:
            sys.stdout.flush()
            sys.stderr.flush()
            os.dup2(out.fileno(), 1)
            os.dup2(err.fileno(), 2)
            try:
                code, again = run(request["module"], request["args"])
            finally:
                sys.stdout.flush()
                sys.stderr.flush()
                os.dup2(null, 1)
                os.dup2(quiet, 2)
        again = again and rss() < RETIRE_RSS
        cost = {"wall": time.monotonic() - wall, "cpu": cpu_seconds() - cpu}
        (folder / "exit.json.tmp").write_text(json.dumps({"code": code, "retired": not again, "cost": cost}))
        (folder / "exit.json.tmp").replace(folder / "exit.json")
        if not again:
            return


if __name__ == "__main__":
    serve()
