"""Log-mel spectrograms of fixed-length segments, flattened: the input of the segment CNN.

A segment of 3 s at 22.05 kHz gives 128 mel bands x 130 frames (2048-point FFT, hop 512),
``log(1 + 10 000 S)`` of the power spectrogram, flattened band-major, so that
:class:`mirsim.models.segment_cnn.SegmentCNNModel` can fold it back with ``n_mels``.

>>> import numpy as np
>>> log_mel_segments(np.zeros((2, 22050 * 3), np.float32), 22050).shape
(2, 16640)
"""

from __future__ import annotations

import numpy as np

__all__ = ["N_MELS", "HOP_LENGTH", "N_FFT", "log_mel_segments"]

#: Mel bands.
N_MELS = 128
#: Hop between frames, in samples.
HOP_LENGTH = 512
#: FFT length, in samples.
N_FFT = 2048


def log_mel_segments(segments: np.ndarray, sr: int, *, n_mels: int = N_MELS,
                     hop_length: int = HOP_LENGTH, n_fft: int = N_FFT,
                     block: int = 256) -> np.ndarray:
    """Flattened log-mel spectrograms ``(n, n_mels * frames)`` of equal-length segments
    ``(n, samples)`` (float32), computed ``block`` segments at a time: the complex STFT of
    7,000 segments of 3 s at once would take 16 GB.

    Examples
    --------
    >>> log_mel_segments(np.ones((1, 4096), np.float32), 8000, n_mels=16).shape
    (1, 144)
    >>> x = np.random.default_rng(0).standard_normal((5, 4096)).astype(np.float32)
    >>> bool(np.allclose(log_mel_segments(x, 8000, block=2), log_mel_segments(x, 8000)))
    True
    """
    import librosa

    segments = np.asarray(segments, dtype=np.float32)
    if segments.ndim != 2:
        raise ValueError(f"segments must be a 2-D array (n, samples), got {segments.shape}")
    if block < 1:
        raise ValueError(f"block must be positive, got {block}")
    parts = [librosa.feature.melspectrogram(y=segments[i:i + block], sr=sr, n_fft=n_fft,
                                            hop_length=hop_length, n_mels=n_mels)
             for i in range(0, len(segments), block)]
    if not parts:  # no segment: the shape of none
        frames = 1 + segments.shape[1] // hop_length
        return np.zeros((0, n_mels * frames), np.float32)
    S = np.concatenate(parts)
    return np.log1p(1e4 * S).reshape(len(segments), -1).astype(np.float32)
