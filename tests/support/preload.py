"""What every forkserver child of tests/support/run.py finds imported: numpy, pytest and MAX up to
its graph and engine APIs, about 0.35 s of each run's start on this machine.

Nothing more: `max.experimental` starts MAX's runtime threads when it is imported, and a process
must not fork with them running (the child would have the runtime's state without its threads).
"""

import numpy  # noqa: F401
import pytest  # noqa: F401
import safetensors.numpy  # noqa: F401

from tutorial.maxprivate import import_max_lean

import_max_lean()

import max.driver  # noqa: E402, F401
import max.engine  # noqa: E402, F401
import max.graph  # noqa: E402, F401
