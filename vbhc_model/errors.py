"""User-facing errors.

A mistake in a user's input is a :class:`VbhcError`: the CLI prints its message and exits with
code 2, never a traceback. Anything else escaping to the CLI is a bug in vbhc_model.
"""

from __future__ import annotations

from dataclasses import dataclass


class VbhcError(Exception):
    """Base class of errors caused by user input (exit code 2)."""


class ExpressionError(VbhcError):
    """An expression in a scenario file cannot be parsed or is not allowed.

    The message says what is wrong with the expression only; the scenario loader adds the
    file, key path and line.
    """


#: Messages quote at most this many characters of a user's file (a cell, a header, a line).
EXCERPT_CHARS = 80


def excerpt(text: object, limit: int = EXCERPT_CHARS) -> str:
    """``text`` as a message quotes it: at most ``limit`` characters, '...' for the rest.

    A file may be large or not meant to be shown (a cell of 10 MB, a line of a system file),
    so a message never echoes more than a short excerpt of it.

    Examples
    --------
    >>> excerpt("abc")
    'abc'
    >>> excerpt("x" * 100, 10)
    'xxxxxxx...'
    """
    text = str(text)
    return text if len(text) <= limit else text[:limit - 3] + "..."


@dataclass(frozen=True)
class Issue:
    """One problem found in a scenario file."""

    file: str
    path: str
    message: str
    line: int | None = None
    #: The parameter draw whose numbers failed a check (numeric checks), if any.
    draw: int | None = None

    def __str__(self) -> str:
        where = self.file if self.line is None else f"{self.file}, line {self.line}"
        key = f"{self.path}: " if self.path else ""
        return f"{where}: {key}{self.message}"


class ScenarioError(VbhcError):
    """One or more problems in a scenario file, all reported at once."""

    def __init__(self, issues: list[Issue]):
        self.issues = list(issues)
        super().__init__("\n".join(str(i) for i in self.issues))
