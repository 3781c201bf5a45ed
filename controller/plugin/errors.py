"""`PluginError`: what `kubectl cloudjob` cannot do, said so that the user knows what to
do next. Raised by the modules that reach the APIs; `controller.plugin.cli` prints it
and exits non-zero."""

from __future__ import annotations


class PluginError(Exception):
    """The message is the whole story: it is printed after `error: `."""
