"""Time scattering (kymatio ``Scattering1D``), time-averaged."""

from __future__ import annotations

import numpy as np
import torch

from mirsim.features.base import FeatureExtractor
from mirsim.params import Interval, Nullable, estimator, param
from mirsim.registries import FEATURES


@FEATURES.register
@estimator
class Scattering1DFeature(FeatureExtractor):
    """First- and second-order time scattering coefficients, averaged over time, log-compressed.

    Parameters
    ----------
    J : int
        Log2 of the averaging scale in samples (2**12 samples = 186 ms at 22.05 kHz).
    Q : int
        Wavelets per octave of the first-order filter bank (second order uses 1).
    log_eps : float
        Offset of the log compression ``log(eps + S)``.

    Examples
    --------
    >>> y = np.random.default_rng(0).standard_normal(22050).astype(np.float32)
    >>> v = Scattering1DFeature(J=8, Q=4)(y, 22050)
    >>> v.ndim, bool(np.isfinite(v).all())
    (1, True)
    """

    name = "scat1d"

    J: int = param(12, Interval(int, 1, 20), "log2 of the averaging scale (samples)")
    Q: int = param(12, Interval(int, 1, 64), "first-order wavelets per octave")
    sample_rate: int = param(22050, Interval(int, 1000, None), "analysis rate (Hz)")
    duration: float | None = param(1.0, Nullable(Interval(float, 0, None, closed="neither")),
                                   "seconds analysed from the start (none: all)")
    log_eps: float = param(1e-6, Interval(float, 0, None, closed="neither"),
                           "offset of the log compression")

    def __post_init__(self) -> None:
        super().__post_init__()
        self._transform = None

    def _scattering(self, n_samples: int):
        from mirsim._compat import ensure_kymatio_importable

        ensure_kymatio_importable()
        from kymatio.torch import Scattering1D

        if self._transform is None or self._transform[0] != n_samples:
            scattering = Scattering1D(J=self.J, shape=n_samples, Q=(self.Q, 1))
            # order 0 is a signed low-pass of the waveform (its time average is the DC offset):
            # it carries no timbre, and cannot be log-compressed, so only orders 1 and 2 are kept
            keep = torch.from_numpy(scattering.meta()["order"] > 0)
            self._transform = (n_samples, scattering, keep)
        return self._transform[1], self._transform[2]

    def extract(self, y: np.ndarray) -> np.ndarray:
        return self.extract_batch([y])[0]

    def extract_batch(self, waveforms: list[np.ndarray]) -> np.ndarray:
        if self.duration is None:  # variable lengths: one at a time
            if len(waveforms) > 1:
                return np.stack([self.extract_batch([y])[0] for y in waveforms])
        n = len(waveforms[0])
        n_pad = max(n, 2 ** self.J)  # kymatio needs at least one averaging window
        x = np.zeros((len(waveforms), n_pad), dtype=np.float32)
        for i, y in enumerate(waveforms):
            x[i, : len(y)] = y
        scattering, keep = self._scattering(n_pad)
        with torch.no_grad():
            s = scattering(torch.from_numpy(x))[:, keep]  # (batch, paths, time)
        return np.log(self.log_eps + s.mean(dim=-1).numpy()).astype(np.float32)
