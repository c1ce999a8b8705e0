"""Time–frequency inputs of the multi-input conditional similarity network (Ribecky, Abeßer &
Lukashevich 2021): a mel spectrogram, a cyclic tempogram and CENS chroma of one 3-second
segment, on one time axis.

How a matrix fits the extractor idiom
-------------------------------------
An extractor returns one vector per sound (that is what the cache, the collections and every
model store). :class:`MultiInputFeature` therefore returns its matrix flattened: the inputs
are stacked row-wise into one ``(rows, frames)`` matrix — mel bands first, then tempo bins,
then chroma bins, all with the same hop, so column ``t`` of every input is the same moment —
and that matrix is flattened in C order (row by row). What a network needs to undo it is
declared by the extractor: :meth:`MultiInputFeature.layout` (rows of each input, in order)
and ``n_frames``; ``x.reshape(sum(rows), n_frames)`` gives the matrix back. The models that
read such features (:mod:`mirsim.models.csn`) take the same two numbers as parameters, and
their defaults are this extractor's.

One extractor (with an ``inputs`` parameter) rather than one per input, because the inputs
must share their segment, rate and hop: Lee et al.'s baseline reads ``inputs=("mel",)``.

chroma_cens and numba
---------------------
``librosa.feature.chroma_cens`` estimates the tuning of the sound (``estimate_tuning`` →
``piptrack`` → ``librosa.util.localmax``, a numba function loaded from numba's on-disk cache)
unless it is given one. A numba cache written by several processes at once can hold an index
that names the machine code of another signature; loading it crashes the process with a
segmentation fault (:mod:`mirsim.parallel` explains the race and how mirsim avoids it). Here
the tuning is fixed (``tuning=0.0``, A440 — also what a rendered or studio-tuned song has, and
the same chroma bins for every segment of a song, where a per-segment estimate over 3 s would
move them), so the extractor never reaches that code; tests run it in fresh subprocesses and
in a worker pool.
"""

from __future__ import annotations

from typing import ClassVar

import librosa
import numpy as np

from mirsim.features.base import FeatureExtractor
from mirsim.params import Interval, ListOf, Nullable, Options, ParameterError, estimator, param
from mirsim.registries import FEATURES

#: The inputs, in the order they are stacked.
INPUTS = ("mel", "tempogram", "chroma")


def log_mel(y: np.ndarray, sr: int, n_fft: int, hop_length: int, n_mels: int,
            n_frames: int | None = None) -> np.ndarray:
    """Compressed, z-scored mel spectrogram: ``log10(1 + 10 S)`` of the mel power ``S``
    (its first ``n_frames`` frames), then zero mean and unit variance over the matrix.

    Examples
    --------
    >>> y = np.random.default_rng(0).standard_normal(22050).astype(np.float32)
    >>> m = log_mel(y, 22050, 512, 256, 64)
    >>> m.shape, bool(abs(m.mean()) < 1e-5), round(float(m.std()), 3)
    ((64, 87), True, 1.0)
    """
    S = librosa.feature.melspectrogram(y=y, sr=sr, n_fft=n_fft, hop_length=hop_length,
                                       n_mels=n_mels)
    M = np.log10(1.0 + 10.0 * S[:, :n_frames])
    return (M - M.mean()) / max(float(M.std()), 1e-8)


def tempo_folding(n_lags: int, sr: int, hop_length: int, n_bins: int,
                  bpm_range: tuple[float, float] = (30.0, 480.0)) -> np.ndarray:
    """The ``(n_bins, n_lags)`` matrix that folds an autocorrelation tempogram by tempo
    octaves: row ``b`` averages the lags whose tempo ``T`` (BPM) has
    ``floor(n_bins * frac(log2(T / 60))) == b``, over the tempi in ``bpm_range``.

    librosa has the tempogram and the tempo of each lag (``tempo_frequencies``) but no cyclic
    tempogram; libfmp has one (``compute_cyclic_tempogram``) but installs music21, IPython
    and matplotlib with it, for what is one averaging matrix, so the fold is written here.

    Examples
    --------
    >>> W = tempo_folding(384, 22050, 256, 16)
    >>> W.shape, bool(np.allclose(W.sum(axis=1), 1.0)), bool((W[:, 0] == 0).all())
    ((16, 384), True, True)
    """
    bpm = librosa.tempo_frequencies(n_lags, hop_length=hop_length, sr=sr)
    with np.errstate(divide="ignore"):
        octave = np.log2(bpm / 60.0)
    used = np.isfinite(octave) & (bpm >= bpm_range[0]) & (bpm <= bpm_range[1])
    bins = np.minimum((np.mod(octave[used], 1.0) * n_bins).astype(int), n_bins - 1)
    W = np.zeros((n_bins, n_lags))
    W[bins, np.flatnonzero(used)] = 1.0
    counts = W.sum(axis=1, keepdims=True)
    if np.any(counts == 0):
        raise ParameterError(f"{n_bins} tempo bins per octave are more than the tempogram's "
                             f"lags in {bpm_range} BPM can fill: use fewer")
    return W / counts


def cyclic_tempogram(y: np.ndarray, sr: int, hop_length: int, win_length: int,
                     n_bins: int) -> np.ndarray:
    """Autocorrelation tempogram (librosa, ``win_length`` onset frames) folded by tempo
    octaves into ``n_bins`` bins (:func:`tempo_folding`).

    Examples
    --------
    >>> y = np.random.default_rng(0).standard_normal(22050).astype(np.float32)
    >>> cyclic_tempogram(y, 22050, 256, 384, 32).shape
    (32, 87)
    """
    T = librosa.feature.tempogram(y=y, sr=sr, hop_length=hop_length, win_length=win_length)
    return tempo_folding(win_length, sr, hop_length, n_bins) @ T


def cens_chroma(y: np.ndarray, sr: int, hop_length: int, n_rows: int,
                tuning: float | None = 0.0) -> np.ndarray:
    """CENS chroma (librosa, 12 bins) zero-padded to ``n_rows`` rows.

    ``tuning=0.0`` (A440) skips librosa's tuning estimate: see the module's note on numba.

    Examples
    --------
    >>> y = np.random.default_rng(0).standard_normal(22050).astype(np.float32)
    >>> c = cens_chroma(y, 22050, 256, 16)
    >>> c.shape, bool((c[12:] == 0).all())
    ((16, 87), True)
    """
    C = librosa.feature.chroma_cens(y=y, sr=sr, hop_length=hop_length, tuning=tuning)
    return np.pad(C, ((0, n_rows - C.shape[0]), (0, 0)))


@FEATURES.register
@estimator
class MultiInputFeature(FeatureExtractor):
    """Mel spectrogram, cyclic tempogram and CENS chroma of a segment, stacked on one time
    axis and flattened (the inputs of :class:`mirsim.models.csn.CSNModel`).

    The defaults are Ribecky et al.'s: 3-second segments at 22,050 Hz, a 23 ms window
    (512 samples) with 50 % overlap (hop 256), 128 mel bands compressed as
    ``log10(1 + 10 S)`` and z-scored, an onset autocorrelation window of 384 frames folded by
    tempo octaves, 12 CENS chroma bins zero-padded to 16. The 259 frames of 3 s are cropped
    to 256 (2.97 s), so that the networks' pooling maps them to 16 columns. The tempogram's
    32 bins per octave are this module's choice (the paper's number was not found).

    Parameters
    ----------
    inputs : tuple of {"mel", "tempogram", "chroma"}
        Which inputs, stacked in this order (``("mel",)``: Lee et al.'s baseline).
    n_mels, tempo_bins, chroma_rows : int
        Rows of each input (``chroma_rows`` >= 12: the 12 chroma bins, then zeros).
    n_frames : int
        Frames kept (from the start of the segment).
    sample_rate, duration, n_fft, hop_length, tempo_window, tuning :
        Analysis settings (``tuning``: chroma reference in fractions of a bin; ``None``
        estimates it per segment).

    Examples
    --------
    >>> f = MultiInputFeature()
    >>> f.layout(), f.n_frames
    ({'mel': 128, 'tempogram': 32, 'chroma': 16}, 256)
    >>> y = np.random.default_rng(0).standard_normal(3 * 22050).astype(np.float32)
    >>> x = f(y, 22050)
    >>> x.shape, x.reshape(176, 256).shape
    ((45056,), (176, 256))
    """

    name: ClassVar[str] = "multi-input"

    inputs: tuple = param(INPUTS, ListOf(Options(INPUTS), min_len=1), "inputs stacked, in order")
    n_mels: int = param(128, Interval(int, 1, None), "mel bands")
    tempo_bins: int = param(32, Interval(int, 2, None), "tempogram bins per tempo octave")
    chroma_rows: int = param(16, Interval(int, 12, None), "chroma rows (12 bins, then zeros)")
    n_frames: int = param(256, Interval(int, 1, None), "frames kept from the segment's start")
    sample_rate: int = param(22050, Interval(int, 1000, None), "analysis rate (Hz)")
    duration: float | None = param(3.0, Nullable(Interval(float, 0, None, closed="neither")),
                                   "segment length (s)")
    n_fft: int = param(512, Interval(int, 16, None), "window (samples; 512 = 23 ms)")
    hop_length: int = param(256, Interval(int, 64, None), "hop (samples), shared by all inputs")
    tempo_window: int = param(384, Interval(int, 8, None), "onset autocorrelation window (frames)")
    tuning: float | None = param(0.0, Nullable(Interval(float, -0.5, 0.5)),
                                 "chroma tuning in bins (none: estimate per segment)")

    def __post_init__(self) -> None:
        super().__post_init__()
        if len(set(self.inputs)) != len(self.inputs):
            raise ParameterError(f"feature '{self.name}': inputs repeat one ({self.inputs})")
        if "chroma" in self.inputs and self.hop_length % 64:
            raise ParameterError(f"feature '{self.name}': chroma needs a hop that is a multiple "
                                 f"of 64 (the CQT's 7 octaves), got {self.hop_length}")
        if self.duration is not None:
            frames = 1 + int(round(self.duration * self.sample_rate)) // self.hop_length
            if frames < self.n_frames:
                raise ParameterError(f"feature '{self.name}': {self.duration} s give {frames} "
                                     f"frames, fewer than n_frames={self.n_frames}")

    def layout(self) -> dict[str, int]:
        """Rows of each input, in the order they are stacked (the flattened vector is the
        ``(sum of rows, n_frames)`` matrix, row by row)."""
        rows = {"mel": self.n_mels, "tempogram": self.tempo_bins, "chroma": self.chroma_rows}
        return {name: rows[name] for name in self.inputs}

    def matrix(self, y: np.ndarray) -> np.ndarray:
        """The ``(rows, n_frames)`` matrix of a prepared waveform (shorter sounds are padded
        with silence, so every input has ``n_frames`` frames)."""
        from mirsim.parallel import warm_numba_caches

        warm_numba_caches()  # numba's cache written by one process at a time (see above)
        y = librosa.util.fix_length(y, size=max(len(y), self.n_frames * self.hop_length))
        parts = {"mel": lambda: log_mel(y, self.sample_rate, self.n_fft, self.hop_length,
                                        self.n_mels, self.n_frames),
                 "tempogram": lambda: cyclic_tempogram(y, self.sample_rate, self.hop_length,
                                                       self.tempo_window, self.tempo_bins),
                 "chroma": lambda: cens_chroma(y, self.sample_rate, self.hop_length,
                                               self.chroma_rows, self.tuning)}
        return np.concatenate([parts[name]()[:, :self.n_frames] for name in self.inputs])

    def extract(self, y: np.ndarray) -> np.ndarray:
        return self.matrix(y).astype(np.float32).reshape(-1)
