"""Errors that reach the user.

Every problem with the user's input is a :class:`TimeticInputError`: a one-line message that names
the problem and what to do about it. The CLI prints it and exits with status 2.
"""

from __future__ import annotations


class TimeticError(Exception):
    """Base class of timetic's own errors."""


class TimeticInputError(TimeticError, ValueError):
    """Bad input (file, columns, values, options). The message is one line: problem; fix."""

    exit_code = 2

    def __init__(self, message: str):
        super().__init__(" ".join(str(message).split()))


class TimeticWarning(UserWarning):
    """Something was dropped or changed in the user's input, and timetic went on."""
