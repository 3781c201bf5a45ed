"""How a script job's command line becomes an argv, without ever letting a parameter
become shell syntax.

A command line is split like a shell would split words and run without a shell, with
the sharding context JSON as one extra argument. Only when the command line itself
uses shell syntax (pipes, redirections, variables, globs, `;`, ...) does it run under
`/bin/sh -c`, and then the JSON is shell-quoted. Pure; used by the task builder
(`controller.mesos.tasks`, for transient script jobs on the Mesos command executor),
the executor (`controller.executor`) and spec validation (`controller.reconcilers.specs`).
"""

from __future__ import annotations

import shlex

SHELL = "/bin/sh"
# Characters with a meaning to the shell outside quotes (beyond word splitting).
_METACHARACTERS = frozenset("|&;<>()$`*?[]{}!\n")
# Characters that only mean something at the start of a word.
_WORD_START = frozenset("~#")


class CommandLineError(ValueError):
    """A script command line that cannot be turned into an argv."""


def needs_shell(command_line: str) -> bool:
    """Whether the command line uses shell syntax that plain word splitting would lose."""
    quote: str | None = None
    escaped = False
    word_start = True
    first_word = True
    for char in command_line:
        if escaped:
            escaped = False
            word_start = False
            continue
        if quote == "'":
            if char == "'":
                quote = None
            continue
        if quote == '"':
            if char == "\\":
                escaped = True
            elif char == '"':
                quote = None
            elif char in "$`":
                return True
            continue
        if char in " \t":
            if not word_start:
                first_word = False
            word_start = True
            continue
        if char == "\\":
            escaped = True
        elif char in "'\"":
            quote = char
        elif char in _METACHARACTERS or (word_start and char in _WORD_START):
            return True
        elif char == "=" and first_word:
            return True  # `NAME=value command`: an environment assignment
        word_start = False
    return False


def split_command_line(command_line: str) -> tuple[str, ...]:
    """The words of a command line that needs no shell."""
    try:
        words = tuple(shlex.split(command_line))
    except ValueError as error:
        raise CommandLineError(
            f"spec.script.commandLine {command_line!r} cannot be split into words ({error}); "
            "balance its quotes"
        ) from None
    if not words:
        raise CommandLineError("spec.script.commandLine is empty; give the program to run")
    return words


def script_argv(command_line: str, sharding_json: str) -> list[str]:
    """The argv of a script run: the sharding context JSON is always exactly one argument."""
    if needs_shell(command_line):
        return [SHELL, "-c", f"{command_line} {shlex.quote(sharding_json)}"]
    return [*split_command_line(command_line), sharding_json]
