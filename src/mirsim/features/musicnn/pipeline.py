"""musicnn's input: 16 kHz audio → 96-band log mel spectrogram → 3 s patches.

As the original computes it: librosa's mel power spectrogram (FFT 512, hop 256, Slaney mel
scale and normalisation, centred frames), cast to float16, then ``log10(10000 · x + 1)``
evaluated in float16, and cut into non-overlapping patches of 187 frames (3 s), a tail shorter
than a patch being dropped.

Two choices are mirsim's own:

* The original's float16 ``10000 · x`` overflows to infinity wherever the mel power exceeds
  6.55 (a sine of amplitude 0.3 already does), after which its network outputs are not
  finite. Those elements are computed in float32 instead; every finite value is the
  original's, bit for bit.
* The original cannot analyse a sound shorter than 3 s (it has no patch). mirsim repeats the
  spectrogram's frames until one patch is full, the padding the models were trained with
  (``"pad_short": "repeat-pad"`` in the checkpoints' ``config.json``).
"""

from __future__ import annotations

import librosa
import numpy as np

SAMPLE_RATE = 16000
N_FFT = 512
HOP_LENGTH = 256
N_MELS = 96
PATCH_SECONDS = 3.0
#: frames of a 3 s patch, as the original counts them (``time_to_frames(3) + 1``)
PATCH_FRAMES = int(librosa.time_to_frames(PATCH_SECONDS, sr=SAMPLE_RATE, hop_length=HOP_LENGTH,
                                          n_fft=N_FFT)) + 1


def log_mel(y: np.ndarray) -> np.ndarray:
    """Log-compressed mel spectrogram ``(frames, 96)`` of a 16 kHz mono waveform.

    Examples
    --------
    >>> log_mel(np.zeros(16000, dtype=np.float32)).shape
    (63, 96)
    """
    y = np.asarray(y, dtype=np.float32)
    if y.ndim != 1 or len(y) == 0:
        raise ValueError(f"expected a non-empty mono waveform, got shape {y.shape}")
    mel = librosa.feature.melspectrogram(y=y, sr=SAMPLE_RATE, n_fft=N_FFT, hop_length=HOP_LENGTH,
                                         n_mels=N_MELS, power=2.0, center=True,
                                         pad_mode="constant", window="hann", htk=False,
                                         norm="slaney").T
    half = mel.astype(np.float16)
    with np.errstate(over="ignore"):
        compressed = np.log10(np.float16(10000) * half + np.float16(1))  # float16, as the original
    out = compressed.astype(np.float32)
    overflow = ~np.isfinite(compressed)
    if overflow.any():
        out[overflow] = np.log10(10000 * half[overflow].astype(np.float32) + 1)
    return out


def make_patches(spectrogram: np.ndarray, n_frames: int = PATCH_FRAMES,
                 hop: int | None = None) -> np.ndarray:
    """Cut a ``(frames, bands)`` spectrogram into patches ``(n, n_frames, bands)``.

    Parameters
    ----------
    spectrogram : numpy.ndarray
        ``(frames, bands)``.
    n_frames : int
        Frames per patch (187 = 3 s).
    hop : int, optional
        Frames between patch starts; default ``n_frames`` (no overlap, as the original).

    Examples
    --------
    >>> make_patches(np.zeros((400, 96))).shape      # two patches, the 26-frame tail dropped
    (2, 187, 96)
    >>> p = make_patches(np.arange(3.0)[:, None], n_frames=5)  # short: frames repeated
    >>> p[0, :, 0].tolist()
    [0.0, 1.0, 2.0, 0.0, 1.0]
    """
    hop = hop or n_frames
    spec = np.asarray(spectrogram, dtype=np.float32)
    if len(spec) < n_frames:
        spec = np.resize(spec, (n_frames, spec.shape[1])) if len(spec) else spec
    if len(spec) == 0:
        raise ValueError("empty spectrogram")
    starts = range(0, len(spec) - n_frames + 1, hop)
    return np.stack([spec[s:s + n_frames] for s in starts])


def audio_patches(y: np.ndarray, sr: int = SAMPLE_RATE) -> np.ndarray:
    """Patches ``(n, 187, 96)`` of a mono waveform at any sample rate (resampled to 16 kHz with
    soxr, as ``librosa.load`` does).

    Examples
    --------
    >>> audio_patches(np.ones(22050, dtype=np.float32) * 0.01, 22050).shape
    (1, 187, 96)
    """
    y = np.asarray(y, dtype=np.float32)
    if sr != SAMPLE_RATE:
        y = librosa.resample(y, orig_sr=sr, target_sr=SAMPLE_RATE, res_type="soxr_hq")
    return make_patches(log_mel(y))
