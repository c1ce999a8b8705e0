"""Errors of ``mirsim report``, reported to the user in one line."""

from __future__ import annotations

from mirsim.errors import MirsimError


class ReportError(MirsimError, ValueError):
    """A run directory, an option or a part of a run that a report cannot use.

    Examples
    --------
    >>> str(ReportError("runs/x: no such run directory"))
    'runs/x: no such run directory'
    """
