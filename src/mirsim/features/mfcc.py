"""MFCC features: the AN-GNN paper's baseline input."""

from __future__ import annotations

import librosa
import numpy as np

from mirsim.features.base import FeatureExtractor
from mirsim.registries import FEATURES


@FEATURES.register
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

    def __init__(self, n_mfcc: int = 40, n_mels: int = 128, sample_rate: int = 22050,
                 duration: float | None = 1.0, n_fft: int = 2048, hop_length: int = 512):
        self.n_mfcc, self.n_mels = n_mfcc, n_mels
        self.sample_rate, self.duration = sample_rate, duration
        self.n_fft, self.hop_length = n_fft, hop_length

    def extract(self, y: np.ndarray) -> np.ndarray:
        mel = librosa.feature.melspectrogram(y=y, sr=self.sample_rate, n_fft=self.n_fft,
                                             hop_length=self.hop_length, n_mels=self.n_mels)
        m = librosa.feature.mfcc(S=librosa.power_to_db(mel), n_mfcc=self.n_mfcc)
        return m.mean(axis=1)
