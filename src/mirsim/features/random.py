"""Random features: the AN-GNN paper's control input, which carries no acoustic information."""

from __future__ import annotations

import hashlib

import numpy as np

from mirsim.features.base import FeatureExtractor
from mirsim.params import Interval, Nullable, estimator, param
from mirsim.registries import FEATURES


@FEATURES.register
@estimator
class RandomFeature(FeatureExtractor):
    """A Gaussian vector drawn from a generator seeded by the waveform's bytes.

    Two identical sounds get identical vectors; any other pair gets independent ones, so a
    metric learned on these features can only memorise, never generalise (a control).

    Examples
    --------
    >>> y = np.ones(22050, dtype=np.float32)
    >>> f = RandomFeature(dim=8)
    >>> np.array_equal(f(y, 22050), f(y, 22050)), f(y, 22050).shape
    (True, (8,))
    """

    name = "random"

    dim: int = param(128, Interval(int, 1, None), "vector size")
    seed: int = param(0, Interval(int, 0, None), "seed")
    sample_rate: int = param(22050, Interval(int, 1000, None), "analysis rate (Hz)")
    duration: float | None = param(1.0, Nullable(Interval(float, 0, None, closed="neither")),
                                   "seconds analysed from the start (none: all)")

    def extract(self, y: np.ndarray) -> np.ndarray:
        digest = hashlib.sha256(np.ascontiguousarray(y).tobytes()).digest()
        rng = np.random.default_rng([self.seed, int.from_bytes(digest[:8], "little")])
        return rng.standard_normal(self.dim).astype(np.float32)
