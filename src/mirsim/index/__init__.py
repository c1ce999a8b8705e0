"""Sound indexes: search a sound library with a learned (or standardised-feature) metric.

>>> from mirsim.index import SoundIndex, build_index
>>> from mirsim.index.faiss_backend import choose_index_type
>>> choose_index_type(1_000)
'flat'

See :mod:`mirsim.index.build` (building, incremental rebuilds), :mod:`mirsim.index.library_index`
(searching, verifying), :mod:`mirsim.index.manifest` (what an index directory holds) and
:mod:`mirsim.index.storage` (atomic publication).
"""

from __future__ import annotations

from mirsim.index.build import build_index
from mirsim.index.errors import SoundIndexError
from mirsim.index.library_index import Neighbour, QueryResult, SoundIndex, VerifyReport

__all__ = ["Neighbour", "QueryResult", "SoundIndex", "SoundIndexError", "VerifyReport",
           "build_index"]
