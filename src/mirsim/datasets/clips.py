"""Several clips of every sound: a collection of songs turned into one of their segments.

A song read as one item is one 3 s excerpt; read as several clips it gives several items of
one group (the song), so that ``group-kfold`` still holds out whole songs while a model
learns from, and is tested on, more of each. Every clip keeps its song's columns (labels,
dimensions) and is read lazily from the song's file
(:class:`~mirsim.audio.ClipSource`: only its own seconds are decoded, and its features are
cached under the file's hash, offset and length).
"""

from __future__ import annotations

import pandas as pd

from mirsim.audio import ClipSource
from mirsim.datasets.collection import Collection
from mirsim.errors import DataError

__all__ = ["clip_collection"]


def clip_collection(collection: Collection, clips: int, length: float = 3.0,
                    hop: float | None = None) -> Collection:
    """The first ``clips`` clips of ``length`` seconds of every item, ``hop`` seconds apart
    (default ``length / 2``: 50 % overlap).

    Parameters
    ----------
    collection : Collection
        Items with a ``path`` column (sound files).
    clips : int
        Clips per item (at least 1); an item is assumed long enough for them (a clip past
        its end is shorter, a silent clip is skipped as any silent sound is).
    length, hop : float
        Seconds of a clip and between the starts of two clips.

    Returns
    -------
    Collection
        ``clips`` items per item: ``id`` = ``"<id>@<offset>"``, ``offset`` and ``clip_length``
        added, ``group`` kept (the item's own), every other column and the dimensions kept.

    Examples
    --------
    >>> import numpy as np, soundfile as sf, tempfile, os
    >>> p = os.path.join(tempfile.mkdtemp(), "song.wav")
    >>> sf.write(p, np.sin(np.arange(8000 * 6) / 9).astype(np.float32), 8000)
    >>> songs = Collection("toy", pd.DataFrame({"id": ["s"], "label": ["rock"],
    ...                                         "group": ["s"], "path": [p]}), [None])
    >>> c = clip_collection(songs, 3)
    >>> c.items[["id", "group", "offset"]].values.tolist()
    [['s@0', 's', 0.0], ['s@1.5', 's', 1.5], ['s@3', 's', 3.0]]
    >>> c.sources[2].load(8000, duration=3.0).shape
    (24000,)
    """
    if clips < 1:
        raise DataError(f"clips must be at least 1, not {clips}")
    if length <= 0 or (hop is not None and hop <= 0):
        raise DataError("a clip's length and hop must be positive")
    if "path" not in collection.items.columns:
        raise DataError(f"{collection.name}: its items have no 'path' column to clip")
    hop = length / 2 if hop is None else hop
    rows, sources = [], []
    for row in collection.items.to_dict("records"):
        for k in range(clips):
            offset = round(k * hop, 6)
            rows.append({**row, "id": f"{row['id']}@{offset:g}", "offset": offset,
                         "clip_length": length})
            sources.append(ClipSource(row["path"], offset, length))
    return Collection(collection.name, pd.DataFrame(rows), sources,
                      f"{collection.description} — {clips} clips of {length:g} s per item, "
                      f"{hop:g} s apart", dimensions=list(collection.dimensions))
