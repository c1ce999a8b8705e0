"""MFCC features: the AN-GNN paper's baseline input."""

from __future__ import annotations

import librosa
import numpy as np

from mirsim.features.base import FeatureExtractor
from mirsim.params import Interval, Nullable, ParameterError, estimator, param
from mirsim.registries import FEATURES


@FEATURES.register
@estimator
class MFCC(FeatureExtractor):
    """Time-averaged MFCCs of a log-power mel spectrogram (librosa).

    Parameters
    ----------
    n_mfcc : int
        Number of coefficients (40 in the AN-GNN paper).
    n_mels : int
        Mel bands of the log-power spectrogram (128).
    sample_rate, duration, n_fft, hop_length :
        Analysis settings; ``duration`` seconds from the start of the sound.

    Examples
    --------
    >>> y = np.random.default_rng(0).standard_normal(22050).astype(np.float32)
    >>> MFCC()(y, 22050).shape
    (40,)
    """

    name = "mfcc"

    n_mfcc: int = param(40, Interval(int, 1, None), "coefficients")
    n_mels: int = param(128, Interval(int, 1, None), "mel bands")
    sample_rate: int = param(22050, Interval(int, 1000, None), "analysis rate (Hz)")
    duration: float | None = param(1.0, Nullable(Interval(float, 0, None, closed="neither")),
                                   "seconds analysed from the start (none: all)")
    n_fft: int = param(2048, Interval(int, 16, None), "FFT size")
    hop_length: int = param(512, Interval(int, 1, None), "hop in samples")

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.n_mfcc > self.n_mels:
            raise ParameterError(f"feature 'mfcc': n_mfcc ({self.n_mfcc}) cannot exceed "
                                 f"n_mels ({self.n_mels})")

    def extract(self, y: np.ndarray) -> np.ndarray:
        mel = librosa.feature.melspectrogram(y=y, sr=self.sample_rate, n_fft=self.n_fft,
                                             hop_length=self.hop_length, n_mels=self.n_mels)
        m = librosa.feature.mfcc(S=librosa.power_to_db(mel), n_mfcc=self.n_mfcc)
        return m.mean(axis=1)
