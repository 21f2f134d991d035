"""Helpers shared by the suite's tests (not installed; on sys.path through tests/conftest)."""
