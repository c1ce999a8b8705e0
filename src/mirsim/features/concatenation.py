"""Several features of one sound side by side: the feature called ``"jtfs+musicnn-msd"``.

Each part sees the sound at its own sample rate and duration (resampled from the highest rate
of the parts, so up to resampling a concatenation's vector is its parts' vectors end to end,
tested to a tolerance); models standardise every
column, so parts of different scales weigh alike per column (a part with more columns weighs
more in a Euclidean distance).
"""

from __future__ import annotations

import hashlib
from typing import Any

import librosa
import numpy as np

from mirsim.audio import fit_length
from mirsim.errors import MirsimError
from mirsim.features.base import FeatureExtractor

#: What joins the names of the parts.
SEPARATOR = "+"


class ConcatenatedFeatures(FeatureExtractor):
    """The features of ``parts`` (extractors) side by side, in order.

    Parameters
    ----------
    *parts : FeatureExtractor
        At least two extractors (see :func:`mirsim.features.make_extractor`, which makes one
        from a name such as ``"jtfs+musicnn-msd"``).

    Examples
    --------
    >>> from mirsim.features import make_extractor
    >>> both = make_extractor("mfcc+mfcc")
    >>> y = np.sin(np.linspace(0, 2000, 22050)).astype(np.float32)
    >>> both(y, 22050).shape, make_extractor("mfcc")(y, 22050).shape
    ((80,), (40,))
    >>> both.name, both.identity.startswith("mfcc+mfcc-")
    ('mfcc+mfcc', True)
    """

    version = 1

    def __init__(self, *parts: FeatureExtractor) -> None:
        if len(parts) < 2:
            raise MirsimError("a concatenation of features needs at least two parts")
        self.parts = list(parts)
        self.name = SEPARATOR.join(p.name for p in self.parts)  # type: ignore[misc]
        self.sample_rate = max(p.sample_rate for p in self.parts)
        durations = [p.duration for p in self.parts]
        self.duration = None if None in durations else max(durations)

    def get_params(self) -> dict[str, Any]:
        return {"parts": [p.identity for p in self.parts]}

    @property
    def identity(self) -> str:
        blob = "|".join(p.identity for p in self.parts) + f"|v{self.version}"
        return f"{self.name}-{hashlib.sha256(blob.encode()).hexdigest()[:12]}"

    def _part_input(self, part: FeatureExtractor, y: np.ndarray) -> np.ndarray:
        """The waveform ``part`` would have prepared from the same sound."""
        if part.sample_rate != self.sample_rate:
            y = librosa.resample(y, orig_sr=self.sample_rate, target_sr=part.sample_rate,
                                 res_type="soxr_hq")
        if part.duration is not None:
            y = fit_length(y, int(round(part.duration * part.sample_rate)))
        return np.asarray(y, dtype=np.float32)

    def extract_batch(self, waveforms: list[np.ndarray]) -> np.ndarray:
        return np.concatenate(
            [p.extract_batch([self._part_input(p, y) for y in waveforms]) for p in self.parts],
            axis=1).astype(np.float32)

    def extract(self, y: np.ndarray) -> np.ndarray:
        return self.extract_batch([y])[0]
