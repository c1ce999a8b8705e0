"""Tempo and key of a piece of music, estimated from its audio: labels for the ``tempo`` and
``key`` dimensions of similarity where no one wrote them down (real soundtracks).

* **Tempo**: librosa's estimate (:func:`librosa.feature.tempo`: the peak of the onset
  autocorrelation weighted by a log-normal prior around 120 BPM), in BPM.
* **Key**: the Krumhansl–Schmuckler key-finding algorithm with the Krumhansl–Kessler probe-tone
  profiles (Krumhansl 1990, *Cognitive Foundations of Musical Pitch*): the mean CQT chroma of
  the piece is correlated (Pearson) with the major and minor profiles rotated to each of the
  12 tonics, and the best of the 24 is the key. No maintained MIT-compatible library does
  this (librosa has no key estimator; essentia's ``KeyExtractor`` is AGPL, madmom's key model
  non-commercial), so it is written here: a dozen lines over librosa's chroma.

:class:`TempoKeyFeature` (``tempo-key``) gives both as a 2-vector ``[bpm, key index]``, so
that estimates are cached like any feature (:func:`mirsim.features.extraction.extract_features`);
:func:`key_name` turns an index into ``"F# minor"``, the spelling the ``key`` rule of
:mod:`mirsim.datasets.dimensions` reads.
"""

from __future__ import annotations

import librosa
import numpy as np

from mirsim.features.base import FeatureExtractor
from mirsim.params import Interval, Nullable, estimator, param
from mirsim.registries import FEATURES

__all__ = ["KRUMHANSL_MAJOR", "KRUMHANSL_MINOR", "TempoKeyFeature", "estimate_key",
           "estimate_tempo", "key_name", "key_scores"]

#: Krumhansl–Kessler probe-tone ratings of the 12 pitch classes above a major tonic.
KRUMHANSL_MAJOR = np.array([6.35, 2.23, 3.48, 2.33, 4.38, 4.09, 2.52, 5.19, 2.39, 3.66, 2.29,
                            2.88])
#: The same above a minor tonic.
KRUMHANSL_MINOR = np.array([6.33, 2.68, 3.52, 5.38, 2.60, 3.53, 2.54, 4.75, 3.98, 2.69, 3.34,
                            3.17])
_TONICS = ("C", "C#", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B")


def key_name(index: int) -> str:
    """The key of an index of :func:`key_scores`: 0–11 major on C..B, 12–23 minor.

    >>> key_name(0), key_name(21), key_name(18)
    ('C major', 'A minor', 'F# minor')
    """
    index = int(index)
    if not 0 <= index < 24:
        raise ValueError(f"a key index is 0..23, not {index}")
    return f"{_TONICS[index % 12]} {'major' if index < 12 else 'minor'}"


def key_scores(chroma: np.ndarray) -> np.ndarray:
    """The Pearson correlation of a 12-bin chroma vector (C first) with the 24 rotated
    Krumhansl–Kessler profiles: 12 major keys on C..B, then 12 minor.

    Examples
    --------
    >>> c_major_scale = np.array([1, 0, 1, 0, 1, 1, 0, 1, 0, 1, 0, 1], dtype=float)
    >>> key_name(int(np.argmax(key_scores(c_major_scale))))
    'C major'
    >>> key_name(int(np.argmax(key_scores(np.roll(KRUMHANSL_MINOR, 9)))))  # A minor's profile
    'A minor'
    """
    chroma = np.asarray(chroma, dtype=np.float64).reshape(-1)
    if chroma.shape != (12,):
        raise ValueError(f"a chroma vector has 12 bins, not {chroma.size}")
    profiles = np.stack([np.roll(p, k) for p in (KRUMHANSL_MAJOR, KRUMHANSL_MINOR)
                         for k in range(12)])
    c = chroma - chroma.mean()
    p = profiles - profiles.mean(axis=1, keepdims=True)
    norm = np.linalg.norm(c) * np.linalg.norm(p, axis=1)
    return np.where(norm > 0, p @ c / np.where(norm > 0, norm, 1.0), 0.0)


def estimate_key(y: np.ndarray, sr: int, hop_length: int = 2048) -> str:
    """The key of a piece of music (Krumhansl–Schmuckler over the mean CQT chroma).

    Examples
    --------
    >>> sr = 22050; t = np.arange(sr) / sr
    >>> triad = lambda *midi: sum(np.sin(2 * np.pi * librosa.midi_to_hz(m) * t) for m in midi)
    >>> y = np.concatenate([triad(57, 60, 64), triad(62, 65, 69), triad(64, 68, 71),
    ...                     triad(57, 60, 64)]).astype(np.float32)   # Am Dm E Am
    >>> estimate_key(y, sr)
    'A minor'
    """
    return key_name(int(np.argmax(key_scores(_mean_chroma(y, sr, hop_length)))))


def _mean_chroma(y: np.ndarray, sr: int, hop_length: int) -> np.ndarray:
    # tuning estimated once for the whole piece (recordings are not always at A440)
    return librosa.feature.chroma_cqt(y=y, sr=sr, hop_length=hop_length).mean(axis=1)


def estimate_tempo(y: np.ndarray, sr: int, hop_length: int = 256) -> float:
    """The tempo of a piece of music in BPM (:func:`librosa.feature.tempo`).

    The onset envelope's hop sets the resolution: at 22,050 Hz, 256 samples put autocorrelation
    lags 1.4 BPM apart near 120 BPM (librosa's 512: 5.7 BPM, the whole tolerance of the
    ``tempo`` rule).

    Examples
    --------
    >>> sr = 22050; y = np.zeros(sr * 8, dtype=np.float32)
    >>> for beat in range(16):                       # clicks every 0.5 s: 120 BPM
    ...     y[int(beat * 0.5 * sr):][:200] = 1.0
    >>> round(estimate_tempo(y, sr))
    120
    """
    onset = librosa.onset.onset_strength(y=y, sr=sr, hop_length=hop_length)
    return float(librosa.feature.tempo(onset_envelope=onset, sr=sr, hop_length=hop_length)[0])


@FEATURES.register
@estimator
class TempoKeyFeature(FeatureExtractor):
    """Estimated tempo (BPM) and key (index 0–23, :func:`key_name`) of a piece of music.

    Parameters
    ----------
    sample_rate : int
        Analysis rate (Hz).
    duration : float or None
        Seconds analysed from the start (``None``: the whole piece, the default: tempo and
        key are properties of the piece, not of its first seconds).

    Examples
    --------
    >>> sr = 22050; y = np.zeros(sr * 8, dtype=np.float32)
    >>> for beat in range(16):
    ...     y[int(beat * 0.5 * sr):][:200] = 1.0
    >>> bpm, key = TempoKeyFeature()(y, sr)
    >>> round(bpm), key_name(int(key)).split()[1] in ("major", "minor")
    (120, True)
    """

    name = "tempo-key"

    sample_rate: int = param(22050, Interval(int, 1000, None), "analysis rate (Hz)")
    duration: float | None = param(None, Nullable(Interval(float, 0, None, closed="neither")),
                                   "seconds analysed from the start (none: all)")

    def extract(self, y: np.ndarray) -> np.ndarray:
        key = int(np.argmax(key_scores(_mean_chroma(y, self.sample_rate, 2048))))
        return np.array([estimate_tempo(y, self.sample_rate), key], dtype=np.float32)


def estimated_tempo_key(sources: list, n_jobs: int = 1, cache=None, progress=None,
                        duration: float | None = None
                        ) -> tuple[list[float | None], list[str | None], list]:
    """Tempo (BPM) and key of every source, estimated (and cached) by :class:`TempoKeyFeature`
    (over its first ``duration`` seconds; ``None``: all of it).

    Returns ``(tempi, keys, skipped)``: ``None`` for a source that could not be read or
    analysed (silent, corrupt), listed in ``skipped`` as the extraction lists it; the labels
    of the ``tempo`` and ``key`` rules.

    Examples
    --------
    >>> import tempfile, os, soundfile as sf
    >>> from mirsim.audio import FileSource
    >>> from mirsim.features.extraction import FeatureCache
    >>> d = tempfile.mkdtemp(); sr = 22050; y = np.zeros(sr * 6, dtype=np.float32)
    >>> for beat in range(12):
    ...     y[int(beat * 0.5 * sr):][:200] = 1.0
    >>> sf.write(os.path.join(d, "click.wav"), y, sr)
    >>> sf.write(os.path.join(d, "silent.wav"), np.zeros(sr, dtype=np.float32), sr)
    >>> tempi, keys, skipped = estimated_tempo_key(
    ...     [FileSource(os.path.join(d, f)) for f in ("click.wav", "silent.wav")],
    ...     cache=FeatureCache(os.path.join(d, "cache")))
    >>> round(tempi[0]), tempi[1], len(skipped)
    (120, None, 1)
    """
    from mirsim.features.extraction import extract_features

    result = extract_features(sources, TempoKeyFeature(duration=duration), cache=cache, n_jobs=n_jobs,
                              progress=progress)
    tempi: list[float | None] = [None] * len(sources)
    keys: list[str | None] = [None] * len(sources)
    for row, i in zip(result.features, result.ok):
        tempi[int(i)], keys[int(i)] = float(row[0]), key_name(int(row[1]))
    return tempi, keys, list(result.skipped)
