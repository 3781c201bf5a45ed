"""Fixtures of the Kubernetes layer's tests: the same stack the end-to-end tests use (the
handlers are tested against the API emulator and the real scheduling core)."""

from tests.stack import stack

__all__ = ["stack"]
