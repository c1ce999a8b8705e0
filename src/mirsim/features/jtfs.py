"""Joint time–frequency scattering (JTFS), averaged over time (Andén, Lostanlen & Mallat 2019).

kymatio 0.3 (the released version) has time scattering only, so mirsim computes JTFS itself, in
PyTorch (FFT convolutions over time, small matrix products over log-frequency, a batch of sounds
at a time, CPU), on top of kymatio's Morlet filter banks.

Structure
---------
*First layer* (the scalogram). ``x`` is zero-padded to ``n_pad`` samples and convolved with the
``n1`` first-order Morlet wavelets ψ_λ of kymatio (``Q`` per octave, largest scale ``2**J``):
``U1(t, λ) = |x * ψ_λ|(t)``. The rows λ are in kymatio's order, from high to low frequency;
row ``λ`` is computed at a time step of ``2**j1(λ)`` samples, where ``j1`` is kymatio's
largest alias-free subsampling of that wavelet.

*Second layer* (joint). Each path convolves the whole scalogram in time and log-frequency with a
separable 2-D wavelet and takes the modulus:

- order 2 (temporal modulation rate α > 0): ``|U1 ⊛ (ψ_α ⊗ g)|`` where ψ_α is a second-order
  Morlet wavelet of kymatio (one per octave) and g is a frequential filter: φ_F (spin 0), a
  Morlet ψ_β (spin +1, responds to frequencies that rise over time) or its mirror image
  ψ_β(−u) (spin −1, falling frequencies). As kymatio's ``Scattering1D`` keeps a second-order
  path only when ``j2 > j1``, the wavelet ψ_α is applied only to the rows λ with
  ``j1(λ) < j2(α)``: the high-frequency rows whose bandwidth exceeds α. Those rows are
  ``R(α)`` consecutive rows from the top, so the same row index means the same frequency for
  every α.
- order 1 (α = 0): ``|(U1 *_t φ_T) ⊛_λ g|`` with g = φ_F or ψ_β (one spin: the input is real).

Every path is then low-passed by φ_F over log-frequency and sampled every ``s = 2**⌊log2 F⌋``
rows (``⌈R/s⌉`` positions, from the top row down), and averaged over time (the low-pass φ_T of
the paper, followed by averaging over the whole sound, is the same as averaging over time).
The frequential filters are kymatio's Morlet wavelets with ``Q_fr`` per octave and largest scale
``2**J_fr`` rows (``K`` of them; ``K = J_fr + 1`` when ``Q_fr = 1``) and kymatio's Gaussian
low-pass with averaging scale ``F`` rows; over log-frequency the convolutions are linear (zero
outside the scalogram), not circular.

Output size::

    D = (1 + K) ⌈n1 / s⌉ + (1 + 2K) Σ_α ⌈R(α) / s⌉        (sum over α with R(α) > 0)

(:meth:`JointTimeFrequencyScattering.meta` lists every coefficient.) With the defaults,
n1 = 148, K = 5, s = 16 and 12 rates α: D = 6·10 + 11·65 = **775**. The feature is
``log(log_eps + mean_t S)`` like ``scat1d``. Order 0 (the waveform's own low-pass) is dropped,
as in ``scat1d``.

Energy. Each filter bank is scaled so that its Littlewood–Paley sum is at most one (first
layer over λ; second layer over time {φ_T, ψ_α} and, separately, over log-frequency
{φ_F, ψ_β, ψ_β mirrored}), so the un-averaged coefficients satisfy ``‖Sx‖² ≤ ‖x‖²``
(:meth:`JointTimeFrequencyScattering.coefficients` with ``subsample=False``).

Parameters and their source
---------------------------
Lostanlen, El-Hajj, Rossignol, Lafay, Andén & Lagrange (2021), "Time–frequency scattering
accurately models auditory similarities between instrumental playing techniques", EURASIP
J. Audio Speech Music Process. 2021:3 — the JTFS used on the Cyberlioz sounds: first-order
wavelets with Q = 12 per octave; time–frequency wavelets of quality factor one in time and in
log-frequency (Q2 = Q_fr = 1), rates α and scales β in powers of two, α from 1/T up to λ/Q;
β = 0 is a Gaussian low-pass φ_F over F = 2 octaves (F = 24 rows at Q = 12); T = 1000 ms.
mirsim analyses 22.05 kHz audio with dyadic scales and takes ``J = 14`` (T = 2**14 samples =
743 ms, the power of two nearest to 1 s; kymatio's second-order bank then gives 12 rates α in
use, from 965 Hz down to 0.5 Hz) and ``J_fr = 4`` (β from 4.2 down to 0.26 cycles per octave,
``2**J_fr`` ≤ F). Differences from the paper: it divides each averaged coefficient by its
median over the training set before ``log1p`` (mirsim standardises features with training-fold
statistics downstream instead); it does not low-pass order-1 paths over log-frequency after
the modulus; its vector had d = 1180 coefficients. For comparison, the AN-GNN authors' ``jtfs``
vector (746 coefficients) came from kymatio's unreleased JTFS on 44.1 kHz audio with
Q = (12, 1), J = 8, J_fr = 6, Q_fr = 1, T = 2**16.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import torch

from mirsim.features.base import FeatureExtractor
from mirsim.params import Interval, Nullable, estimator, param
from mirsim.registries import FEATURES

__all__ = ["JTFSFeature", "JointTimeFrequencyScattering", "jtfs_output_size"]


def _next_pow2(n: int) -> int:
    return 1 << max(0, math.ceil(math.log2(max(n, 1))))


def _mirror(h_hat: np.ndarray) -> np.ndarray:
    """``h_hat`` at the opposite frequencies (index ``-k mod N``)."""
    return np.roll(h_hat[..., ::-1], 1, axis=-1)


def _lp_scale(power: np.ndarray) -> float:
    """Factor that brings the largest value of a Littlewood–Paley sum down to one."""
    return 1.0 / math.sqrt(max(float(power.max()), 1e-12))


def _crop(h_hat: torch.Tensor, length: int) -> torch.Tensor:
    """The ``length`` lowest-frequency bins of a spectrum (its band-limited decimation)."""
    if h_hat.shape[-1] == length:
        return h_hat
    return torch.cat([h_hat[..., : length // 2], h_hat[..., -(length // 2):]], dim=-1)


def _decimate(u_hat: torch.Tensor, length: int) -> torch.Tensor:
    """Spectrum of the signal sampled every ``N / length`` samples, ``N = u_hat.shape[-1]``,
    assuming it is band-limited to the kept bins (ideal low-pass, then decimation)."""
    return _crop(u_hat, length) * (length / u_hat.shape[-1])


def _periodize(h_hat: torch.Tensor, length: int) -> torch.Tensor:
    """Spectrum of ``ifft(h_hat)`` sampled every ``N / length`` samples (aliasing included)."""
    n = h_hat.shape[-1]
    return h_hat.reshape(*h_hat.shape[:-1], n // length, length).mean(dim=-2)


def _toeplitz(h: np.ndarray, n_rows: int) -> np.ndarray:
    """Matrix of the linear convolution ``z[r] = Σ h[r - r'] y[r']`` over ``n_rows`` rows;
    ``h`` is indexed by lag modulo its length."""
    lags = np.arange(n_rows)[:, None] - np.arange(n_rows)[None, :]
    return h[lags % len(h)]


@dataclass(frozen=True)
class _Block:
    """One group of paths sharing a time filter: its rows and frequential filters."""

    order: int
    n2: int | None  # index of the second-order wavelet (None: φ_T, order 1)
    j2: int | None
    n_rows: int
    mix: torch.Tensor  # (n_filters * n_rows, n_rows) complex: the frequential filters
    pool: torch.Tensor  # (n_out, n_rows): φ_F low-pass and subsampling over log-frequency
    pool_full: torch.Tensor  # (n_rows, n_rows): the same low-pass without subsampling
    spins: tuple[int, ...]
    betas: tuple[float, ...]


class JointTimeFrequencyScattering:
    """The JTFS operator for signals of ``n_samples`` samples (see the module docstring).

    Parameters
    ----------
    n_samples : int
        Length of the input signals.
    J : int
        Log2 of the averaging scale T in samples (and of the largest wavelet scales).
    Q : int
        First-order wavelets per octave.
    J_fr, Q_fr : int
        Log2 of the largest frequential wavelet scale (in rows), frequential wavelets per octave.
    F : int
        Averaging scale over log-frequency, in rows of the scalogram (``Q`` rows = one octave).

    Examples
    --------
    >>> op = JointTimeFrequencyScattering(4096, J=8, Q=4, J_fr=2, F=4)
    >>> x = torch.randn(3, 4096)
    >>> op(x).shape == (3, op.output_size)
    True
    """

    def __init__(self, n_samples: int, J: int = 14, Q: int = 12, J_fr: int = 4,
                 Q_fr: int = 1, F: int = 24):
        from mirsim._compat import ensure_kymatio_importable

        ensure_kymatio_importable()
        from kymatio.scattering1d.filter_bank import (
            compute_params_filterbank,
            gauss_1d,
            morlet_1d,
            scattering_filter_factory,
        )

        if F < 1 or J_fr < 0 or J < 1:
            raise ValueError("J >= 1, J_fr >= 0 and F >= 1 are required")
        self.n_samples, self.J, self.Q, self.J_fr, self.Q_fr, self.F = n_samples, J, Q, J_fr, Q_fr, F
        self.n_pad = max(_next_pow2(n_samples + 2 ** J // 2), 2 ** (J + 1))
        self.step_fr = 2 ** math.floor(math.log2(F))
        phi, psi1, psi2 = scattering_filter_factory(self.n_pad, J, (Q, 1), 2 ** J)
        self.xi1 = np.array([f["xi"] for f in psi1])
        self.j1 = np.array([f["j"] for f in psi1])
        if np.any(np.diff(self.j1) < 0):
            raise AssertionError("kymatio's first-order wavelets are not sorted by j")
        rows = [int((self.j1 < f["j"]).sum()) for f in psi2]
        used2 = [n for n, r in enumerate(rows) if r > 0]
        self.xi2 = np.array([psi2[n]["xi"] for n in used2])
        self.j2 = np.array([psi2[n]["j"] for n in used2])
        self.rows2 = np.array([rows[n] for n in used2])

        # time filters, scaled to Littlewood–Paley sums <= 1
        psi1_hat = np.stack([f["levels"][0] for f in psi1])
        power1 = 0.5 * (psi1_hat ** 2 + _mirror(psi1_hat) ** 2).sum(axis=0)
        psi1_hat = psi1_hat * _lp_scale(power1)
        phi_hat = np.asarray(phi["levels"][0])
        psi2_hat = np.stack([psi2[n]["levels"][0] for n in used2])
        power2 = phi_hat ** 2 + 0.5 * (psi2_hat ** 2 + _mirror(psi2_hat) ** 2).sum(axis=0)
        c2 = _lp_scale(power2)
        self._psi1 = torch.from_numpy(psi1_hat).to(torch.complex64)
        self._psi2 = torch.from_numpy(psi2_hat * c2).to(torch.complex64)
        self._phi_joint = torch.from_numpy(phi_hat * c2).to(torch.complex64)
        self._phi = torch.from_numpy(phi_hat).to(torch.complex64)  # DC gain 1: averaging

        # frequential filters, as impulse responses over rows (lags modulo n_fr)
        n1 = len(psi1)
        n_fr = 4 * _next_pow2(n1)
        xis_fr, sigmas_fr, _ = compute_params_filterbank(0.1 / 2 ** J_fr, Q_fr, 5.0)
        self.xi_fr = np.array(xis_fr)
        psi_fr = np.stack([np.fft.ifft(morlet_1d(n_fr, xi, s)) for xi, s in zip(xis_fr, sigmas_fr)])
        phi_fr = np.fft.ifft(gauss_1d(n_fr, 0.1 / F)).real
        keep = np.abs(np.fft.fftfreq(n_fr) * n_fr) < n1  # lags a scalogram can use
        psi_fr, phi_fr = psi_fr * keep, phi_fr * keep
        dense = 8 * n_fr  # Littlewood–Paley sum of the truncated filters on a fine grid
        psi_fr_hat = np.abs(np.fft.fft(np.roll(psi_fr, n1, axis=-1), dense)) ** 2
        phi_fr_hat = np.abs(np.fft.fft(np.roll(phi_fr, n1), dense)) ** 2
        power_fr = phi_fr_hat + psi_fr_hat.sum(axis=0) + _mirror(psi_fr_hat).sum(axis=0)
        c_fr = _lp_scale(power_fr)
        up = psi_fr * c_fr
        down = up[:, (-np.arange(n_fr)) % n_fr]  # ψ_β(-u)
        self._phi_fr_pool = phi_fr / phi_fr.sum()
        bank2 = np.concatenate([phi_fr[None] * c_fr, up, down])
        bank1 = np.concatenate([phi_fr[None] * c_fr, up])
        spins2 = (0,) + (1,) * len(up) + (-1,) * len(up)
        betas = (0.0,) + tuple(self.xi_fr * Q) + tuple(self.xi_fr * Q)

        self._blocks = [self._block(1, None, None, n1, bank1, (0,) * len(bank1), betas[: len(bank1)])]
        for n, (j2, r) in enumerate(zip(self.j2, self.rows2)):
            self._blocks.append(self._block(2, n, int(j2), int(r), bank2, spins2, betas))

    def _block(self, order, n2, j2, n_rows, bank, spins, betas) -> _Block:
        mix = np.concatenate([_toeplitz(h, n_rows) for h in bank])
        full = _toeplitz(self._phi_fr_pool, n_rows)
        pool = full[:: self.step_fr]
        return _Block(order, n2, j2, n_rows, torch.from_numpy(mix).to(torch.complex64),
                      torch.from_numpy(pool).float(), torch.from_numpy(full).float(),
                      tuple(spins), tuple(float(b) for b in betas))

    @property
    def output_size(self) -> int:
        """Length of the time-averaged vector (the module docstring's formula)."""
        return sum(len(b.spins) * math.ceil(b.n_rows / self.step_fr) for b in self._blocks)

    def meta(self, sample_rate: float = 1.0) -> list[dict]:
        """One record per output coefficient, in output order.

        Keys: ``order`` (1 or 2), ``alpha`` (temporal modulation rate, 0 for order 1),
        ``beta`` (frequential modulation, cycles per octave; 0 for φ_F), ``spin`` (+1 rising,
        -1 falling, 0 none), ``lam`` (centre frequency of the first-order wavelet at the
        coefficient's log-frequency position). Frequencies in Hz when ``sample_rate`` is
        given, else in cycles per sample.
        """
        out = []
        for b in self._blocks:
            alpha = 0.0 if b.n2 is None else float(self.xi2[b.n2]) * sample_rate
            for spin, beta in zip(b.spins, b.betas):
                for row in range(0, b.n_rows, self.step_fr):
                    out.append({"order": b.order, "alpha": alpha, "beta": beta, "spin": spin,
                                "lam": float(self.xi1[row]) * sample_rate})
        return out

    def _scalogram(self, x: torch.Tensor, subsample: bool) -> dict[int, torch.Tensor]:
        """Spectra of the rows of U1, grouped by ``j1``: ``{j1: (batch, rows, length)}``."""
        x_hat = torch.fft.fft(torch.nn.functional.pad(x, (0, self.n_pad - x.shape[-1])))
        groups = {}
        for j1 in np.unique(self.j1):
            sel = np.flatnonzero(self.j1 == j1)
            length = self.n_pad >> min(int(j1), self.J) if subsample else self.n_pad
            prod = x_hat[:, None, :] * self._psi1[sel[0]: sel[-1] + 1]
            u = torch.fft.ifft(_periodize(prod, length)).abs()
            groups[int(j1)] = torch.fft.fft(u)
        return groups

    def _rows(self, groups: dict[int, torch.Tensor], j_max: int | None, length: int):
        """Spectra of the rows with ``j1 < j_max`` (all rows if None), at a common length."""
        parts = [_decimate(g, length) for j1, g in groups.items() if j_max is None or j1 < j_max]
        return torch.cat(parts, dim=1)

    def _moduli(self, x: torch.Tensor, subsample: bool) -> Iterator[tuple[_Block, torch.Tensor]]:
        """Each block and its un-averaged moduli, shape ``(batch, filters, rows, time)``."""
        groups = self._scalogram(x, subsample)
        for b in self._blocks:
            if b.n2 is None:
                length = self.n_pad >> self.J if subsample else self.n_pad
                v = self._rows(groups, None, length) * _crop(self._phi_joint, length)
                y = torch.fft.ifft(v).real.to(torch.complex64)
            else:
                length = self.n_pad >> min(b.j2, self.J) if subsample else self.n_pad
                v = self._rows(groups, b.j2, length) * _crop(self._psi2[b.n2], length)
                y = torch.fft.ifft(v)
            z = torch.linalg.vector_norm(torch.view_as_real(torch.matmul(b.mix, y)), dim=-1)
            yield b, z.reshape(x.shape[0], len(b.spins), b.n_rows, length)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        """Time-averaged coefficients (not logged), shape ``(batch, output_size)``."""
        out = []
        with torch.no_grad():
            for b, m in self._moduli(x, subsample=True):
                hop = self.n_pad / m.shape[-1]
                avg = m.sum(dim=-1) * (hop / self.n_samples)
                out.append(torch.einsum("bfr,kr->bfk", avg, b.pool).flatten(1))
        return torch.cat(out, dim=1)

    def coefficients(self, x: torch.Tensor, subsample: bool = True) -> torch.Tensor:
        """Coefficients before averaging over time, shape ``(batch, paths, frames)``.

        With ``subsample=True`` the frames are ``2**J`` samples apart and the paths are those of
        :meth:`meta`; with ``subsample=False`` nothing is subsampled (every sample, every row:
        ``paths`` is then larger), so that ``(S**2).sum() <= (x**2).sum()`` holds exactly.
        The time average of the subsampled coefficients (``S.sum(-1) * 2**J / n_samples``)
        equals :meth:`__call__`.
        """
        out = []
        with torch.no_grad():
            for b, m in self._moduli(x, subsample):
                length = self.n_pad >> self.J if subsample else self.n_pad
                s_hat = torch.fft.fft(m) * _crop(self._phi, m.shape[-1])
                s = torch.fft.ifft(_periodize(s_hat, length)).real
                pool = b.pool if subsample else b.pool_full
                out.append(torch.einsum("bfrt,kr->bfkt", s, pool).flatten(1, 2))
        return torch.cat(out, dim=1)


@functools.lru_cache(maxsize=4)
def _cached_operator(n_samples: int, J: int, Q: int, J_fr: int, Q_fr: int,
                     F: int) -> JointTimeFrequencyScattering:
    """One operator per configuration and process (building one takes about a second)."""
    return JointTimeFrequencyScattering(n_samples, J=J, Q=Q, J_fr=J_fr, Q_fr=Q_fr, F=F)


def jtfs_output_size(n_samples: int, **params) -> int:
    """Length of the JTFS vector for signals of ``n_samples`` samples.

    Examples
    --------
    >>> jtfs_output_size(22050)
    775
    """
    return JointTimeFrequencyScattering(n_samples, **params).output_size


@FEATURES.register
@estimator
class JTFSFeature(FeatureExtractor):
    """Joint time–frequency scattering, averaged over time, log-compressed (``jtfs``).

    Parameters
    ----------
    J : int
        Log2 of the averaging scale T in samples (2**14 samples = 743 ms at 22.05 kHz).
    Q : int
        First-order wavelets per octave (12, as in the paper).
    J_fr : int
        Log2 of the largest frequential wavelet scale, in scalogram rows.
    Q_fr : int
        Frequential wavelets per octave (1, as in the paper).
    F : int
        Averaging scale over log-frequency in rows (24 rows = 2 octaves at Q = 12).
    sample_rate, duration :
        Analysis rate and seconds analysed from the start of the sound.
    log_eps : float
        Offset of the log compression ``log(eps + S)``.

    Examples
    --------
    >>> y = np.random.default_rng(0).standard_normal(22050).astype(np.float32)
    >>> f = JTFSFeature(J=8, Q=4, J_fr=2, F=4)
    >>> v = f(y, 22050)
    >>> v.shape == (f.output_size(),), bool(np.isfinite(v).all())
    (True, True)
    """

    name = "jtfs"

    J: int = param(14, Interval(int, 1, 20), "log2 of the averaging scale T (samples)")
    Q: int = param(12, Interval(int, 1, 64), "first-order wavelets per octave")
    J_fr: int = param(4, Interval(int, 1, 10), "log2 of the largest frequential scale (rows)")
    Q_fr: int = param(1, Interval(int, 1, 8), "frequential wavelets per octave")
    F: int = param(24, Interval(int, 1, None), "averaging scale over log-frequency (rows)")
    sample_rate: int = param(22050, Interval(int, 1000, None), "analysis rate (Hz)")
    duration: float | None = param(1.0, Nullable(Interval(float, 0, None, closed="neither")),
                                   "seconds analysed from the start (none: all)")
    log_eps: float = param(1e-6, Interval(float, 0, None, closed="neither"),
                           "offset of the log compression")

    def operator(self, n_samples: int | None = None) -> JointTimeFrequencyScattering:
        """The JTFS operator for ``n_samples`` (default: ``duration`` seconds), built once per
        process and configuration."""
        if n_samples is None:
            n_samples = round((self.duration or 1.0) * self.sample_rate)
        return _cached_operator(n_samples, self.J, self.Q, self.J_fr, self.Q_fr, self.F)

    def output_size(self) -> int:
        """Length of the feature vector."""
        return self.operator().output_size

    def extract(self, y: np.ndarray) -> np.ndarray:
        return self.extract_batch([y])[0]

    def extract_batch(self, waveforms: list[np.ndarray], chunk: int = 8) -> np.ndarray:
        if self.duration is None and len({len(y) for y in waveforms}) > 1:
            return np.stack([self.extract_batch([y])[0] for y in waveforms])
        op = self.operator(len(waveforms[0]))
        out = []
        for start in range(0, len(waveforms), chunk):
            x = torch.from_numpy(np.stack(waveforms[start:start + chunk]).astype(np.float32))
            out.append(op(x).numpy())
        return np.log(self.log_eps + np.concatenate(out)).astype(np.float32)
