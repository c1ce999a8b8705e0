"""Reading audio: one function, clear errors naming the file.

mirsim reads with ``soundfile`` (WAV, FLAC, OGG, MP3, AIFF...), mixes to mono, resamples with
``librosa`` and reads only the frames it needs, so an hour-long file costs no more than its
first second when only that is used.

A file that cannot be decoded gets a reason that says what is wrong with it ("truncated or
corrupt MP3: ..."), and the decoders' own complaints stay off the terminal: libmpg123, the MP3
decoder inside libsndfile, prints warnings on the process's standard error (file descriptor 2)
and offers no setting to silence it through libsndfile, so :func:`quiet_decoder` points file
descriptor 2 at a temporary file while a file is opened and read.
"""

from __future__ import annotations

import hashlib
import os
import re
import sys
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

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
    data, native_sr = _decode(path, offset, duration)
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


#: What libsndfile raises for a file it cannot open or decode.
_DECODE_ERRORS = (sf.LibsndfileError, RuntimeError, ValueError)
#: libsndfile's message when its MP3 decoder finds no frame; misleading, since mirsim has
#: checked that the file exists and is a regular file.
_NO_SUCH_FILE = "File does not exist or is not a regular file"


def _decode(path: Path, offset: float, duration: float | None) -> tuple[np.ndarray, int]:
    """The frames ``(n, channels)`` of ``path`` from ``offset`` s (``duration`` s of them, or
    all) and the file's sample rate; a file that cannot be decoded raises :class:`AudioError`
    with the reason."""
    failure: tuple[Exception, str | None] | None = None
    data, native_sr = np.zeros((0, 1), np.float32), 0
    with quiet_decoder() as messages:
        try:
            with sf.SoundFile(str(path)) as f:
                native_sr, kind = f.samplerate, f.format
                try:
                    start = int(round(offset * native_sr))
                    if f.seekable() and start:
                        f.seek(min(start, f.frames))
                    n = -1 if duration is None else int(np.ceil(duration * native_sr))
                    data = f.read(frames=n, dtype="float32", always_2d=True)
                except _DECODE_ERRORS as exc:
                    failure = (exc, kind)
        except _DECODE_ERRORS as exc:
            failure = (exc, None)
        except OSError as exc:
            raise AudioError(path, f"cannot read ({exc.strerror or exc})") from exc
    if failure is not None:
        exc, kind = failure
        raise AudioError(path, _decode_failure(path, exc, kind, messages)) from exc
    return data, native_sr


def _decode_failure(path: Path, exc: Exception, kind: str | None, messages: list[str]) -> str:
    """Why a file could not be decoded: opening failed (``kind`` None) or reading its
    ``kind`` (libsndfile's format name, e.g. ``MP3``) failed half-way."""
    said = re.sub(r"^(Error opening '.*?': |Error : )", "", _short(exc))
    decoder = [m for m in messages if " error: " in m]
    if kind is not None:
        detail = decoder[-1].split(" error: ", 1)[1].split(" - ")[0] if decoder else said
        return f"truncated or corrupt {kind}: decoding failed ({detail.rstrip('.')[:160]})"
    if _looks_like_mp3(path):
        return "truncated or corrupt MP3: not one complete audio frame could be decoded"
    if said.startswith(_NO_SUCH_FILE):
        said = "not in an audio format that mirsim reads"
    return f"not a readable sound file ({said})"


def _looks_like_mp3(path: Path) -> bool:
    """Whether a file starts as MP3 data does: an ID3v2 tag or an MPEG audio frame header
    (11 set sync bits). Written here because libsndfile reports an MP3 without one decodable
    frame as a missing file, and libmagic is not a dependency of mirsim."""
    try:
        with open(path, "rb") as f:
            head = f.read(3)
    except OSError:
        return False
    return head[:3] == b"ID3" or (len(head) >= 2 and head[0] == 0xFF and head[1] & 0xE0 == 0xE0)


#: A line that libmpg123 (libsndfile's MP3 decoder) writes on standard error.
_DECODER_LINE = re.compile(r"\[[^\]]*mpg123[^\]]*\]|Note: ")


class _StandardErrorCapture:
    """File descriptor 2 pointed at a temporary file while any decode of this process runs.

    File descriptor 2 belongs to the process, hence one instance per process (the module's)
    shared by all threads: overlapping decodes share one redirection, counted under a lock,
    and nothing is serialised but the bookkeeping. When the last one ends, file descriptor 2
    is restored and what else was written meanwhile (a progress bar, another thread's warning)
    is written to it then, late but not lost; the decoder's lines are returned to the decodes.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._users = 0
        self._sink: IO[bytes] | None = None
        self._saved = -1

    def start(self) -> int:
        """Begin a decode; returns where its output starts in the temporary file."""
        with self._lock:
            if self._users == 0:
                self._redirect()
            self._users += 1
            return self._size()

    def stop(self, start: int) -> list[str]:
        """End a decode; returns the decoder lines written since ``start``."""
        with self._lock:
            written = self._read(start)
            self._users -= 1
            if self._users == 0 and self._saved >= 0:
                # fd 2 back first, then read: a line another thread writes meanwhile lands
                # either in the sink (read below) or on the real standard error, never lost
                os.dup2(self._saved, 2)
                os.close(self._saved)
                self._saved = -1
                sink, self._sink = self._sink, None  # a fresh sink for the next decode
                everything = os.pread(sink.fileno(), os.fstat(sink.fileno()).st_size, 0)
                sink.close()
                others = [line for line in everything.splitlines(keepends=True)
                          if not _is_decoder_line(line)]
                _write_all(2, b"".join(others))
        return [line.decode("utf-8", "replace") for line in written.splitlines()
                if _is_decoder_line(line)]

    def _redirect(self) -> None:
        if os.name != "posix":
            return
        try:
            if self._sink is None:  # read with pread only: the offset stays the writers'
                self._sink = tempfile.TemporaryFile()
            saved = os.dup(2)
        except OSError:  # no file descriptor 2 (a daemon), or no temporary folder
            return
        if sys.stderr is not None:
            sys.stderr.flush()  # what Python holds goes where it was meant to
        os.dup2(self._sink.fileno(), 2)
        self._saved = saved

    def _size(self) -> int:
        return os.fstat(self._sink.fileno()).st_size if self._saved >= 0 else 0

    def _read(self, start: int) -> bytes:
        if self._saved < 0:
            return b""
        return os.pread(self._sink.fileno(), max(self._size() - start, 0), start)


def _is_decoder_line(line: bytes) -> bool:
    return _DECODER_LINE.match(line.decode("utf-8", "replace")) is not None


def _write_all(fd: int, data: bytes) -> None:
    while data:
        data = data[os.write(fd, data):]


_CAPTURE = _StandardErrorCapture()


@contextmanager
def quiet_decoder() -> Iterator[list[str]]:
    """Keep what C decoders write on standard error off the terminal while the block runs;
    the list it yields holds the decoder's lines once the block is over.

    Only the decoder's lines are dropped: anything else written on standard error meanwhile
    (by other threads) is written out when the block ends.

    Examples
    --------
    >>> with quiet_decoder() as messages:
    ...     _ = os.write(2, b"[src/libmpg123/parse.c:f():1] warning: frame lost\\n")
    >>> messages
    ['[src/libmpg123/parse.c:f():1] warning: frame lost']
    """
    messages: list[str] = []
    start = _CAPTURE.start()
    try:
        yield messages
    finally:
        messages.extend(_CAPTURE.stop(start))


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


class ClipSource:
    """A clip of a sound file: ``length`` seconds from ``offset`` (the audio source protocol of
    :class:`FileSource`: ``name``, ``key``, ``load(sr, duration)``).

    Examples
    --------
    >>> import tempfile, os, soundfile as sf
    >>> p = os.path.join(tempfile.mkdtemp(), "tone.wav")
    >>> sf.write(p, np.sin(np.arange(8000) / 5.0), 8000)
    >>> clip = ClipSource(p, offset=0.25, length=0.5)
    >>> clip.load(8000).shape, clip.load(8000, duration=0.1).shape, clip.name.endswith("@0.25")
    ((4000,), (800,), True)
    """

    def __init__(self, path: str | Path, offset: float, length: float):
        self.file, self.offset, self.length = FileSource(path), float(offset), float(length)

    @property
    def name(self) -> str:
        return f"{self.file.name}@{self.offset:g}"

    @property
    def key(self) -> str:
        clip = f"{self.file.key}:{self.offset!r}:{self.length!r}".encode()
        return hashlib.sha256(clip).hexdigest()

    def load(self, sr: int, duration: float | None = None) -> np.ndarray:
        seconds = self.length if duration is None else min(duration, self.length)
        return load_audio(self.file.path, sr=sr, offset=self.offset, duration=seconds)

    def __repr__(self) -> str:
        return f"ClipSource({self.name!r}, length={self.length:g})"
