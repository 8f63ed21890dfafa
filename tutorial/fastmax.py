"""`prepare()`: import MAX without the ~6 s it spends on libraries the course never calls.

One definition, in tutorial/maxprivate.py (`import_max_lean`, with the reason); this name stays for its
callers (pytest_plugin, bench, generate, tests and book figures).
"""

from tutorial.maxprivate import import_max_lean as prepare

__all__ = ["prepare"]
