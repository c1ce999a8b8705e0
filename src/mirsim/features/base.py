"""The feature extractor interface: a small object with a name, parameters and ``__call__``."""

from __future__ import annotations

import hashlib
import json
from abc import ABC, abstractmethod
from typing import Any, ClassVar

import librosa
import numpy as np

from mirsim.audio import fit_length
from mirsim.params import check_params


class FeatureExtractor(ABC):
    """Turns a waveform into a fixed-size feature vector.

    Subclasses set ``name``, declare their parameters (``@estimator`` dataclasses with
    ``param(default, constraint, help)``, :mod:`mirsim.params`: stored as attributes of the same
    name, as in scikit-learn, and checked when the extractor is made) and implement
    :meth:`extract`, which
    receives a waveform already resampled to ``sample_rate`` and cropped/padded to
    ``duration`` seconds. :meth:`extract_batch` may be overridden for vectorised extractors.

    ``duration`` follows the AN-GNN paper: the first second of audio.
    """

    name: ClassVar[str]
    #: seconds of audio the extractor looks at (``None`` = the whole sound)
    duration: float | None = 1.0
    sample_rate: int = 22050

    def __post_init__(self) -> None:
        check_params(self, f"feature '{self.name}'")

    def get_params(self) -> dict[str, Any]:
        """Parameters that define the extractor's output (part of the cache key)."""
        import inspect

        names = [p for p in inspect.signature(type(self).__init__).parameters if p != "self"]
        return {n: getattr(self, n) for n in names}

    @property
    def identity(self) -> str:
        """A string that changes whenever the output would change: name + parameter hash.

        Examples
        --------
        >>> from mirsim.features import make_extractor
        >>> make_extractor("mfcc").identity.startswith("mfcc-")
        True
        """
        blob = json.dumps({"name": self.name, "params": self.get_params(), "v": self.version},
                          sort_keys=True, default=str)
        return f"{self.name}-{hashlib.sha256(blob.encode()).hexdigest()[:12]}"

    #: bump when the implementation changes its output for the same parameters
    version: ClassVar[int] = 1

    def prepare(self, waveform: np.ndarray, sr: int) -> np.ndarray:
        """Resample to ``sample_rate`` and crop/pad to ``duration``."""
        y = np.asarray(waveform, dtype=np.float32)
        if sr != self.sample_rate:
            y = librosa.resample(y, orig_sr=sr, target_sr=self.sample_rate, res_type="soxr_hq")
        if self.duration is not None:
            y = fit_length(y, int(round(self.duration * self.sample_rate)))
        return y

    def __call__(self, waveform: np.ndarray, sr: int) -> np.ndarray:
        """Feature vector (1-D float32) of one waveform sampled at ``sr``."""
        return self.extract_batch([self.prepare(waveform, sr)])[0]

    def extract_batch(self, waveforms: list[np.ndarray]) -> np.ndarray:
        """Features of prepared waveforms, shape ``(len(waveforms), dim)``."""
        return np.stack([self.extract(y) for y in waveforms]).astype(np.float32)

    @abstractmethod
    def extract(self, y: np.ndarray) -> np.ndarray:
        """Feature vector of one prepared waveform."""

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
        return f"{type(self).__name__}({args})"
