"""Fixtures of the pipeline tests' subfolders: the demo tables and a store holding them (views_helpers.py)."""

from views_helpers import demo_tables, store  # noqa: F401 (fixtures, found by name)
