"""Fixtures of the whole-stack tests (defined in `tests.stack`)."""

from tests.stack import stack

__all__ = ["stack"]
