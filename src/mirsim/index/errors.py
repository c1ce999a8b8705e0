"""Errors of the sound index, reported to the user in one line."""

from __future__ import annotations

from mirsim.errors import MirsimError


class SoundIndexError(MirsimError, ValueError):
    """An index directory, a run directory or a request that the index cannot use.

    Examples
    --------
    >>> str(SoundIndexError("lib.index: not a mirsim sound index (index.json missing)"))
    'lib.index: not a mirsim sound index (index.json missing)'
    """
