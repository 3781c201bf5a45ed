"""Fixtures of the whole-stack tests (defined in `tests.e2e.stack`)."""

from tests.e2e.stack import stack

__all__ = ["stack"]
