"""Import MAX without the ~6 s it spends on libraries the course never calls.

`max.dtype` imports torch (3-4 s) only to offer torch dtype conversions, and
`max/nn/__init__.py` imports MAX's pipeline layers and transformers (~3 s).
The course moves data through numpy and uses only `max.nn.module_v3`, so
every tool calls `prepare()` first: MAX is imported with torch hidden, and
`max.nn` is registered as a bare package whose submodules load on demand.
torch stays importable afterwards (the HF reference uses it).
"""

import importlib.util
import sys
import types


def prepare() -> None:
    if "max.nn" in sys.modules:
        return
    hide = "torch" not in sys.modules
    if hide:
        sys.modules["torch"] = None  # `import torch` raises ImportError; MAX skips its torch extras
    try:
        import max.dtype  # noqa: F401
    finally:
        if hide:
            del sys.modules["torch"]
    spec = importlib.util.find_spec("max.nn")
    package = types.ModuleType("max.nn")
    package.__path__ = list(spec.submodule_search_locations)
    package.__spec__ = spec
    sys.modules["max.nn"] = package
