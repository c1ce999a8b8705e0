"""The simplest separator: harmonic-percussive source separation (librosa's HPSS).

HPSS splits a mix into what is smooth in time (sustained, pitched: the *harmonic* part) and
what is smooth in frequency (onsets, noise bursts: the *percussive* part). It knows no
instruments, so what it gives for the paper's stems is:

* ``drums``: the percussive part (drums, but also the attacks of piano and guitar notes);
* ``bass``: the harmonic part low-passed at :data:`BASS_CUTOFF_HZ` (bass and the low notes of
  every other instrument);
* ``piano``: the harmonic part above that cutoff (piano, guitar, and every other pitched part).

It is a floor for a trained separator, not a separator of piano from guitar.

>>> import numpy as np
>>> stems = hpss_separate(np.zeros(4096, np.float32), 22050)
>>> sorted(stems)
['bass', 'drums', 'piano']
"""

from __future__ import annotations

import numpy as np

__all__ = ["BASS_CUTOFF_HZ", "hpss_separate"]

#: Frequency below which the harmonic part is called "bass", in Hz.
BASS_CUTOFF_HZ = 250.0


def hpss_separate(mix: np.ndarray, sr: int, *, margin: float = 1.0,
                  bass_cutoff_hz: float = BASS_CUTOFF_HZ) -> dict[str, np.ndarray]:
    """Stems ``drums``, ``bass`` and ``piano`` of a mono ``mix`` by HPSS (same length).

    The stems add up to the mix when ``margin`` is 1 (soft masks that sum to one).

    Examples
    --------
    >>> t = np.arange(22050) / 22050
    >>> x = np.sin(2 * np.pi * 440 * t).astype(np.float32)
    >>> s = hpss_separate(x, 22050)
    >>> bool(np.abs(s["piano"]).sum() > np.abs(s["drums"]).sum())  # a steady tone is harmonic
    True
    """
    import librosa

    mix = np.asarray(mix, dtype=np.float32)
    if mix.ndim != 1:
        raise ValueError(f"mix must be mono (1-D), got shape {mix.shape}")
    stft = librosa.stft(mix)
    harmonic, percussive = librosa.decompose.hpss(stft, margin=margin)
    low = librosa.fft_frequencies(sr=sr)[:, None] < bass_cutoff_hz
    n = len(mix)
    return {"drums": librosa.istft(percussive, length=n),
            "bass": librosa.istft(harmonic * low, length=n),
            "piano": librosa.istft(harmonic * ~low, length=n)}
