"""Tooling behind the exercises: choosing what to check, the HF reference, readable checks."""
