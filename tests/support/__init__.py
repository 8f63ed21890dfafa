"""Code the maintainers' suite needs and learners and graders do not: the job pool and the tiny checkpoint."""
