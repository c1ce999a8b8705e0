"""Songs cut into fixed-length segments, the items of track-based weak supervision.

Hashizume, Li & Toda cut every song (its mix or one instrument's stem) into 3 s segments
with 50 % overlap and drop the silent ones; a training song contributes its first 40
segments, a test song all of them. A segment's group is its song, so segments of one song are
positives and segments of other songs negatives.

A segment is *silent* when its RMS is below :data:`SILENT_RMS_DB` (-50 dB re full scale,
i.e. an RMS under about 0.003): a stem where its instrument rests, or the fade at a song's end.
The threshold is a parameter everywhere.

>>> import numpy as np
>>> song = np.ones(22050 * 9, dtype=np.float32) * 0.1
>>> [start for start, _ in song_segments(song, 22050)]  # 9 s: starts at 0, 1.5, ..., 6 s
[0, 33075, 66150, 99225, 132300]
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

__all__ = ["SEGMENT_SECONDS", "OVERLAP", "TRAIN_SEGMENTS", "SILENT_RMS_DB", "segment_starts",
           "is_silent", "song_segments", "segment_table"]

#: Length of a segment, in seconds (the paper's).
SEGMENT_SECONDS = 3.0
#: Share of a segment that overlaps the next one.
OVERLAP = 0.5
#: Segments a training song contributes (its first ones that are not silent).
TRAIN_SEGMENTS = 40
#: RMS level (dB re full scale) under which a segment is silent and dropped.
SILENT_RMS_DB = -50.0


def segment_starts(n_samples: int, sr: int, seconds: float = SEGMENT_SECONDS,
                   overlap: float = OVERLAP) -> np.ndarray:
    """Start samples of every whole segment of a signal of ``n_samples``.

    Examples
    --------
    >>> segment_starts(10, 1, seconds=4, overlap=0.5).tolist()
    [0, 2, 4, 6]
    >>> segment_starts(3, 1, seconds=4).tolist()  # shorter than one segment
    []
    """
    if sr <= 0 or seconds <= 0:
        raise ValueError(f"sample rate and segment length must be positive, got {sr}, {seconds}")
    if not 0 <= overlap < 1:
        raise ValueError(f"overlap must lie in [0, 1), got {overlap}")
    length = int(round(seconds * sr))
    hop = max(1, int(round(length * (1 - overlap))))
    if n_samples < length:
        return np.zeros(0, dtype=np.int64)
    return np.arange(0, n_samples - length + 1, hop, dtype=np.int64)


def is_silent(segment: np.ndarray, threshold_db: float = SILENT_RMS_DB) -> bool:
    """Whether the RMS of ``segment`` is below ``threshold_db`` dB re full scale.

    Examples
    --------
    >>> is_silent(np.full(100, 0.001)), is_silent(np.full(100, 0.1))
    (True, False)
    """
    x = np.asarray(segment, dtype=np.float64)
    if x.size == 0:
        return True
    rms = float(np.sqrt(np.mean(x * x)))
    return rms <= 10 ** (threshold_db / 20)


def song_segments(audio: np.ndarray, sr: int, *, seconds: float = SEGMENT_SECONDS,
                  overlap: float = OVERLAP, max_segments: int | None = None,
                  threshold_db: float = SILENT_RMS_DB) -> list[tuple[int, np.ndarray]]:
    """The non-silent segments of one mono signal, as ``(start_sample, samples)``, in order.

    ``max_segments`` keeps the first ones (a training song's 40); ``None`` keeps all.

    Examples
    --------
    >>> x = np.r_[np.zeros(4), np.ones(4)]  # silent first half
    >>> [s for s, _ in song_segments(x, 1, seconds=2, overlap=0)]
    [4, 6]
    """
    audio = np.asarray(audio)
    if audio.ndim != 1:
        raise ValueError(f"audio must be mono (1-D), got shape {audio.shape}")
    if max_segments is not None and max_segments < 1:
        raise ValueError(f"max_segments must be positive or None, got {max_segments}")
    length = int(round(seconds * sr))
    kept: list[tuple[int, np.ndarray]] = []
    for start in segment_starts(len(audio), sr, seconds, overlap):
        piece = audio[start:start + length]
        if is_silent(piece, threshold_db):
            continue
        kept.append((int(start), piece))
        if max_segments is not None and len(kept) == max_segments:
            break
    return kept


def segment_table(songs: Sequence[str], audio: Sequence[np.ndarray], sr: int,
                  train: Sequence[bool], *, train_segments: int = TRAIN_SEGMENTS,
                  **options) -> tuple[pd.DataFrame, np.ndarray]:
    """Segments of several songs: a table (``song``, ``group``, ``start``, ``train``) and the
    stacked samples ``(n_segments, segment_length)``.

    Training songs contribute their first ``train_segments`` non-silent segments, the others
    all theirs; ``group`` is the song. ``options`` go to :func:`song_segments`.

    Examples
    --------
    >>> tab, X = segment_table(["a", "b"], [np.ones(8), np.ones(8)], 1, [True, False],
    ...                        train_segments=1, seconds=2, overlap=0)
    >>> tab["song"].tolist(), X.shape
    (['a', 'b', 'b', 'b', 'b'], (5, 2))
    """
    if not len(songs) == len(audio) == len(train):
        raise ValueError("songs, audio and train must have the same length")
    rows, pieces = [], []
    for song, signal, is_train in zip(songs, audio, train):
        limit = train_segments if is_train else None
        for start, piece in song_segments(signal, sr, max_segments=limit, **options):
            rows.append({"song": song, "group": song, "start": start, "train": bool(is_train)})
            pieces.append(piece)
    length = int(round(options.get("seconds", SEGMENT_SECONDS) * sr))
    samples = np.stack(pieces) if pieces else np.zeros((0, length), dtype=np.float32)
    return pd.DataFrame(rows, columns=["song", "group", "start", "train"]), samples
