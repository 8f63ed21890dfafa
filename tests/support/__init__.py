"""Code the maintainers' suite needs and learners and graders do not: running whole commands
(run.py, preload.py), pasting a chapter's Try it (paste.py), the tiny checkpoint (tiny.py)."""
