"""Reading audio: one function, clear errors naming the file.

mirsim reads with ``soundfile`` (WAV, FLAC, OGG, MP3, AIFF...), mixes to mono, resamples with
``librosa`` and reads only the frames it needs, so an hour-long file costs no more than its
first second when only that is used.
"""

from __future__ import annotations

from pathlib import Path

import librosa
import numpy as np
import soundfile as sf

from mirsim.errors import MirsimError

#: Peak amplitude under which a signal counts as silent (-120 dBFS).
SILENCE_THRESHOLD = 1e-6


class AudioError(MirsimError, ValueError):
    """A file that cannot be used as audio; the message names the file and the reason.

    Examples
    --------
    >>> str(AudioError("a.wav", "empty file (0 bytes)"))
    'a.wav: empty file (0 bytes)'
    """

    def __init__(self, path: str | Path, reason: str):
        self.path, self.reason = str(path), reason
        super().__init__(f"{path}: {reason}")


def load_audio(
    path: str | Path,
    sr: int = 22050,
    duration: float | None = None,
    offset: float = 0.0,
    allow_silent: bool = False,
) -> np.ndarray:
    """Read a sound file as a mono float32 waveform at sample rate ``sr``.

    Parameters
    ----------
    path : str or Path
        The file.
    sr : int
        Target sample rate (the file is resampled if it differs).
    duration : float, optional
        Read at most this many seconds (after ``offset``); ``None`` reads to the end.
    offset : float
        Start reading this many seconds into the file.
    allow_silent : bool
        If False (default) a signal whose peak is below -120 dBFS raises :class:`AudioError`.

    Returns
    -------
    numpy.ndarray
        1-D float32 array.

    Raises
    ------
    AudioError
        Missing, empty, unreadable, non-audio, corrupt, sample-less, non-finite or silent file.

    Examples
    --------
    >>> import tempfile, os, soundfile as sf
    >>> p = os.path.join(tempfile.mkdtemp(), "tone.wav")
    >>> sf.write(p, np.sin(np.arange(8000) / 5.0), 8000)
    >>> load_audio(p, sr=4000).shape
    (4000,)
    """
    path = Path(path)
    if not path.exists():
        raise AudioError(path, "no such file")
    if path.is_dir():
        raise AudioError(path, "is a directory, not a sound file")
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise AudioError(path, f"cannot read ({exc.strerror})") from exc
    if size == 0:
        raise AudioError(path, "empty file (0 bytes)")
    try:
        with sf.SoundFile(str(path)) as f:
            native_sr = f.samplerate
            start = int(round(offset * native_sr))
            if f.seekable() and start:
                f.seek(min(start, f.frames))
            n = -1 if duration is None else int(np.ceil(duration * native_sr))
            data = f.read(frames=n, dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError, ValueError) as exc:
        raise AudioError(path, f"not a readable sound file ({_short(exc)})") from exc
    except OSError as exc:
        raise AudioError(path, f"cannot read ({exc.strerror or exc})") from exc
    if data.shape[0] == 0:
        raise AudioError(path, "contains no audio samples")
    y = data.mean(axis=1)
    if not np.all(np.isfinite(y)):
        raise AudioError(path, "contains non-finite samples (NaN or infinity)")
    if not allow_silent and float(np.max(np.abs(y))) < SILENCE_THRESHOLD:
        raise AudioError(path, "silent (peak below -120 dBFS)")
    if native_sr != sr:
        y = librosa.resample(y, orig_sr=native_sr, target_sr=sr, res_type="soxr_hq")
    if duration is not None:
        y = y[: int(round(duration * sr))]
    return np.ascontiguousarray(y, dtype=np.float32)


def fit_length(y: np.ndarray, n_samples: int) -> np.ndarray:
    """Crop or zero-pad a waveform to exactly ``n_samples`` samples.

    Examples
    --------
    >>> fit_length(np.ones(3, dtype=np.float32), 5).tolist()
    [1.0, 1.0, 1.0, 0.0, 0.0]
    """
    return librosa.util.fix_length(y, size=n_samples)


def _short(exc: Exception) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return text[:200]


def file_sha256(path: str | Path, chunk_size: int = 1 << 20) -> str:
    """SHA-256 of a file's bytes, as hex.

    Examples
    --------
    >>> import tempfile, os
    >>> p = os.path.join(tempfile.mkdtemp(), "x")
    >>> _ = open(p, "wb").write(b"abc")
    >>> file_sha256(p)[:12]
    'ba7816bf8f01'
    """
    import hashlib

    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk_size):
            h.update(block)
    return h.hexdigest()


class FileSource:
    """A sound stored in a file: the unit that feature extraction reads.

    An audio source has a ``name`` (for messages), a ``key`` (a hash of its content, used to
    cache features) and ``load(sr, duration)``. Other sources (e.g. sounds rendered on the fly)
    follow the same three-member protocol.

    Examples
    --------
    >>> import tempfile, os, soundfile as sf
    >>> p = os.path.join(tempfile.mkdtemp(), "tone.wav")
    >>> sf.write(p, np.sin(np.arange(800) / 5.0), 8000)
    >>> src = FileSource(p)
    >>> src.load(8000, duration=0.05).shape, len(src.key)
    ((400,), 64)
    """

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self._key: str | None = None

    @property
    def name(self) -> str:
        return str(self.path)

    @property
    def key(self) -> str:
        if self._key is None:
            if not self.path.exists():
                raise AudioError(self.path, "no such file")
            if self.path.is_dir():
                raise AudioError(self.path, "is a directory, not a sound file")
            try:
                self._key = file_sha256(self.path)
            except OSError as exc:
                raise AudioError(self.path, f"cannot read ({exc.strerror or exc})") from exc
        return self._key

    def load(self, sr: int, duration: float | None = None) -> np.ndarray:
        return load_audio(self.path, sr=sr, duration=duration)

    def __repr__(self) -> str:
        return f"FileSource({str(self.path)!r})"
