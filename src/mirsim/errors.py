"""Exceptions that carry a message meant for the user."""

from __future__ import annotations

from collections.abc import Iterable


class MirsimError(Exception):
    """Base class of every error mirsim reports to a user in one line."""


class UnknownNameError(MirsimError, KeyError):
    """A name (data set, feature, model, protocol...) that mirsim does not know.

    Examples
    --------
    >>> str(UnknownNameError("model", "foo", ["mlp", "lmnn"]))
    "unknown model 'foo' (valid: lmnn, mlp)"
    """

    def __init__(self, kind: str, name: str, valid: Iterable[str]):
        self.kind, self.name, self.valid = kind, name, sorted(valid)
        super().__init__(f"unknown {kind} '{name}' (valid: {', '.join(self.valid)})")

    def __str__(self) -> str:  # KeyError would add quotes around the message
        return self.args[0]


class DataError(MirsimError, ValueError):
    """A data set, manifest or label table that cannot be used as it is."""
