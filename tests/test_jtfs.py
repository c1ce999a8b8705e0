"""Joint time–frequency scattering: size, invariance, stability, energy, determinism, spin.

Properties that do not need the full configuration are checked on a small one (T = 2**8
samples, Q = 8) and short signals, to keep the tests fast.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from mirsim.features import make_extractor
from mirsim.features.jtfs import JointTimeFrequencyScattering, JTFSFeature

SR = 8192  # of the synthetic test signals (the operator itself works in samples)
N = 8192
SMALL = {"J": 8, "Q": 8, "J_fr": 2, "F": 8}


def _note(shift: int = 0, warp: float = 0.0, n: int = N, f0: float = 220.0) -> torch.Tensor:
    """A decaying harmonic note (20 partials) starting at sample 1500 + ``shift``, its time
    axis dilated by ``1 + warp``."""
    t = (np.arange(n) - 1500 - shift) / SR * (1 + warp)
    env = np.where(t > 0, np.exp(-3 * t) * (1 - np.exp(-200 * t)), 0.0)
    y = sum(np.sin(2 * np.pi * f0 * (h + 1) * t) / (h + 1) for h in range(20))
    return torch.tensor(env * y, dtype=torch.float32)


def _chirp(up: bool, n: int = N) -> torch.Tensor:
    """An exponential sweep between 100 Hz and 2 kHz under a Hann window."""
    f0, f1 = (100.0, 2000.0) if up else (2000.0, 100.0)
    t = np.arange(n) / SR
    k = math.log(f1 / f0) / (n / SR)
    phase = 2 * np.pi * f0 * (np.exp(k * t) - 1) / k
    return torch.tensor(np.hanning(n) * np.sin(phase), dtype=torch.float32)


def _rel(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).norm() / a.norm())


@pytest.fixture(scope="module")
def op() -> JointTimeFrequencyScattering:
    torch.manual_seed(0)
    return JointTimeFrequencyScattering(N, **SMALL)


def _formula(n_samples: int, J: int, Q: int, J_fr: int, F: int, Q_fr: int = 1) -> int:
    """The module docstring's D = (1 + K)⌈n1/s⌉ + (1 + 2K) Σ_α ⌈R(α)/s⌉, from kymatio's banks."""
    from mirsim._compat import ensure_kymatio_importable

    ensure_kymatio_importable()
    from kymatio.scattering1d.filter_bank import (
        compute_params_filterbank,
        scattering_filter_factory,
    )

    n_pad = max(1 << math.ceil(math.log2(n_samples + 2 ** J // 2)), 2 ** (J + 1))
    _, psi1, psi2 = scattering_filter_factory(n_pad, J, (Q, 1), 2 ** J)
    j1 = np.array([f["j"] for f in psi1])
    rows = [int((j1 < f["j"]).sum()) for f in psi2]
    K = len(compute_params_filterbank(0.1 / 2 ** J_fr, Q_fr, 5.0)[0])
    s = 2 ** math.floor(math.log2(F))
    return (1 + K) * math.ceil(len(psi1) / s) + (1 + 2 * K) * sum(math.ceil(r / s) for r in rows if r)


def test_output_size_is_the_documented_formula(op):
    assert op.output_size == len(op.meta()) == _formula(N, **SMALL)
    assert op(_note()[None]).shape == (1, op.output_size)
    f = make_extractor("jtfs")  # the paper's configuration, on the first second at 22.05 kHz
    y = np.random.default_rng(0).standard_normal(3 * 22050).astype(np.float32) * 0.1
    v = f(y, 22050)
    assert v.shape == (775,) == (_formula(22050, J=14, Q=12, J_fr=4, F=24),)
    assert v.dtype == np.float32 and np.isfinite(v).all()
    np.testing.assert_allclose(v, f(y[:22050], 22050), rtol=1e-5, atol=1e-5)  # first second


def test_identity_covers_every_parameter():
    base = make_extractor("jtfs")
    assert isinstance(base, JTFSFeature) and base.identity == make_extractor("jtfs").identity
    changes = {"J": 13, "Q": 8, "J_fr": 3, "Q_fr": 2, "F": 12, "sample_rate": 16000,
               "duration": 2.0, "log_eps": 1e-5}
    assert set(changes) == set(base.get_params())
    ids = {make_extractor("jtfs", **{k: v}).identity for k, v in changes.items()}
    assert len(ids) == len(changes) and base.identity not in ids


def test_energy_is_bounded_by_the_input_energy():
    small = JointTimeFrequencyScattering(2048, J=6, Q=4, J_fr=2, F=4)
    g = torch.Generator().manual_seed(0)
    click = torch.zeros(2048)
    click[700] = 1.0
    x = torch.stack([torch.randn(2048, generator=g), _note(n=2048), _chirp(True, n=2048), click])
    s = small.coefficients(x, subsample=False)  # every sample, every row, not averaged
    ratio = (s ** 2).sum(dim=(1, 2)) / (x ** 2).sum(dim=1)
    assert torch.all(ratio <= 1.0), ratio
    assert torch.all(ratio > 0.01), ratio  # and not vacuously small


def test_time_average_of_the_raw_coefficients_is_the_feature(op):
    x = torch.stack([_note(), _chirp(False)])
    s = op.coefficients(x)  # frames 2**J samples apart
    assert s.shape[:2] == (2, op.output_size)
    torch.testing.assert_close(s.sum(-1) * 2 ** SMALL["J"] / N, op(x), rtol=1e-4, atol=1e-7)


def test_invariant_to_shifts_smaller_than_the_averaging_scale(op):
    T = 2 ** SMALL["J"]
    ref, small, large = (op.coefficients(_note(shift=s)[None]) for s in (0, 4, 4 * T))
    assert _rel(ref, small) < 0.01  # shift of T/64
    assert _rel(ref, large) > 0.3  # shift of 4T: the coefficients move along time...
    assert _rel(ref, large) > 20 * _rel(ref, small)
    assert _rel(op(_note()[None]), op(_note(shift=4 * T)[None])) < 0.1  # ...their average not


@pytest.mark.parametrize("warp", [0.005, 0.01])
def test_stable_to_small_time_warps(op, warp):
    a, b = _note(), _note(warp=warp)
    change = _rel(op(a[None]), op(b[None]))
    assert change < 2 * warp  # Lipschitz: proportional to the size of the warp
    spectrum_change = _rel(torch.fft.rfft(a).abs(), torch.fft.rfft(b).abs())
    assert spectrum_change > 10 * change  # the Fourier modulus is not stable at high frequencies


def test_spin_separates_rising_from_falling_chirps(op):
    spin = np.array([m["spin"] for m in op.meta()])
    up, down = (op(_chirp(u)[None])[0].numpy() for u in (True, False))
    assert up[spin == 1].sum() > 3 * up[spin == -1].sum()
    assert down[spin == -1].sum() > 3 * down[spin == 1].sum()
    # a falling chirp is the mirror image: the spins swap, the spinless paths stay close
    assert np.corrcoef(up[spin == 1], down[spin == -1])[0, 1] > 0.9


def test_deterministic_and_independent_of_the_batch():
    f = JTFSFeature(**SMALL, sample_rate=SR)
    ys = [_note().numpy(), _chirp(True).numpy(), _note(shift=100, warp=0.01).numpy()]
    batch = f.extract_batch(ys)
    assert np.array_equal(batch, f.extract_batch(ys))
    for i, y in enumerate(ys):
        np.testing.assert_allclose(f.extract_batch([y])[0], batch[i], rtol=1e-5, atol=1e-5)
