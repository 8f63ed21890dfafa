"""The hang watchdog (tutorial/watchdog.py) looks at the checked code's stack without keeping it alive.

A frame object it held past its look would keep the locals of a function that has returned: their MAX
tensors would join the next eager graph as outputs, so MAX would compile a graph it has never seen,
20 s on this machine, depending on when the watchdog looked.
"""

import gc
import importlib.util
import sys
import time

from tutorial.watchdog import SAMPLE, Watchdog

CHECKED = """
import time
import weakref


class Local:
    pass


def run(seconds, seen):
    local = Local()  # a local that dies when run returns
    seen.append(weakref.ref(local))
    time.sleep(seconds)  # the watchdog looks meanwhile


"""


def test_a_local_of_the_checked_code_dies_when_its_function_returns(tmp_path):
    (tmp_path / "checked.py").write_text(CHECKED)
    spec = importlib.util.spec_from_file_location("checked_by_the_watchdog", tmp_path / "checked.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    watchdog = Watchdog(60.0, [tmp_path]).start()
    try:
        for _ in range(5):  # the watchdog's look lands inside `run` every time: it sleeps 3 looks long
            seen = []
            module.run(3 * SAMPLE, seen)
            assert seen[0]() is None, "the watchdog kept a frame of the checked code alive after it returned"
            time.sleep(SAMPLE / 2)
    finally:
        watchdog.stop()
        sys.modules.pop("checked_by_the_watchdog", None)
        gc.collect()
