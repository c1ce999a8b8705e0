"""The spectrogram side of a mask-based separator: a complex STFT of a (multichannel) signal,
its inverse, and soft masks that split a mix's STFT among magnitude estimates.

>>> import torch
>>> x = torch.randn(1, 4096)
>>> X = stft(x, n_fft=512, hop_length=128)
>>> X.shape, bool(torch.allclose(istft(X, 512, 128, 4096), x, atol=1e-5))
(torch.Size([1, 257, 33]), True)
"""

from __future__ import annotations

from collections.abc import Mapping

import torch

__all__ = ["stft", "istft", "soft_masks"]


def stft(x: torch.Tensor, n_fft: int, hop_length: int) -> torch.Tensor:
    """Complex STFT ``(..., bins, frames)`` of signals ``(..., samples)`` (Hann window,
    centred: the inverse reconstructs every sample).

    Examples
    --------
    >>> stft(torch.zeros(2, 1, 1024), 256, 64).shape
    torch.Size([2, 1, 129, 17])
    """
    shape = x.shape
    window = torch.hann_window(n_fft, device=x.device, dtype=x.dtype)
    X = torch.stft(x.reshape(-1, shape[-1]), n_fft, hop_length, window=window, center=True,
                   return_complex=True)
    return X.reshape(*shape[:-1], *X.shape[-2:])


def istft(X: torch.Tensor, n_fft: int, hop_length: int, length: int) -> torch.Tensor:
    """Signals ``(..., length)`` of complex STFTs ``(..., bins, frames)`` made by :func:`stft`.

    Examples
    --------
    >>> istft(torch.zeros(3, 129, 17, dtype=torch.complex64), 256, 64, 1000).shape
    torch.Size([3, 1000])
    """
    shape = X.shape
    window = torch.hann_window(n_fft, device=X.device, dtype=X.real.dtype)
    x = torch.istft(X.reshape(-1, *shape[-2:]), n_fft, hop_length, window=window, center=True,
                    length=length)
    return x.reshape(*shape[:-2], length)


def soft_masks(mix: torch.Tensor, estimates: Mapping[str, torch.Tensor], *,
               residual: bool = True, power: float = 2.0, eps: float = 1e-10
               ) -> dict[str, torch.Tensor]:
    """Each target's complex STFT: the mix's STFT times ``est^p / (sum of est^p)``, a
    Wiener-like ratio mask of the magnitude estimates (the mix's phase is kept).

    With ``residual`` the sum also has what the estimates leave of the mix's magnitude
    (``relu(|mix| - sum of estimates)``): the part of the mix no target claims (an instrument
    that is not a target, e.g. guitar) goes there and is dropped, instead of being forced
    into a target. The masks (with the residual's) sum to one.

    Examples
    --------
    >>> X = torch.ones(1, 3, 2, dtype=torch.complex64)
    >>> est = {"a": torch.ones(1, 3, 2), "b": torch.zeros(1, 3, 2)}
    >>> out = soft_masks(X, est)
    >>> float(out["a"].abs().max()), float(out["b"].abs().max())
    (1.0, 0.0)
    """
    powered = {k: v.clamp_min(0) ** power for k, v in estimates.items()}
    total = sum(powered.values())
    if residual:
        rest = torch.relu(mix.abs() - sum(v.clamp_min(0) for v in estimates.values()))
        total = total + rest ** power
    total = total + eps
    return {k: mix * (v / total) for k, v in powered.items()}
