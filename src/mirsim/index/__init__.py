"""Sound indexes: search a sound library with a learned (or standardised-feature) metric.

>>> from mirsim.index import SoundIndex, build_index
>>> from mirsim.index.faiss_backend import choose_index_type
>>> choose_index_type(1_000)
'flat'

See :mod:`mirsim.index.build` (building, incremental rebuilds), :mod:`mirsim.index.distributed`
(building on a Dask cluster), :mod:`mirsim.index.library_index` (searching, verifying),
:mod:`mirsim.index.manifest` (what an index directory holds) and :mod:`mirsim.index.storage`
(atomic publication).

The names below are imported on first use, so that a process needing one submodule (a Dask
worker unpickling a :class:`~mirsim.index.scan.LibraryFile`) does not import them all.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    from mirsim.index.build import build_index
    from mirsim.index.errors import SoundIndexError
    from mirsim.index.library_index import (
        Neighbour,
        QueryResult,
        SoundIndex,
        VerifyReport,
    )

_EXPORTS = {"build_index": "mirsim.index.build", "SoundIndexError": "mirsim.index.errors",
            "Neighbour": "mirsim.index.library_index", "QueryResult": "mirsim.index.library_index",
            "SoundIndex": "mirsim.index.library_index",
            "VerifyReport": "mirsim.index.library_index"}

__all__ = ["Neighbour", "QueryResult", "SoundIndex", "SoundIndexError", "VerifyReport",
           "build_index"]


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        value = getattr(importlib.import_module(_EXPORTS[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
