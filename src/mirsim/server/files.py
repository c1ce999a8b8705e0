"""Which file the server may send, and how: library files of the manifest, uploads.

The server never takes a path from a request. A sound is asked for by its manifest row, and
its file is ``root / manifest path``; a manifest path that is absolute or climbs out of the
root (``..``) is refused, so even a hand-edited manifest cannot make the server read outside
the library folder. (Symbolic links the library folder itself holds are followed, as the build
that indexed them did.)

Uploads are copied to a private temporary directory in chunks, stopping as soon as they pass
the size limit, and deleted when the request is done.
"""

from __future__ import annotations

import re
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path, PurePosixPath
from typing import BinaryIO

#: Content types of the audio files a library may hold (by lower-case extension).
AUDIO_CONTENT_TYPES = {
    ".wav": "audio/wav", ".wave": "audio/wav", ".flac": "audio/flac", ".ogg": "audio/ogg",
    ".oga": "audio/ogg", ".opus": "audio/ogg", ".mp3": "audio/mpeg", ".aif": "audio/aiff",
    ".aiff": "audio/aiff", ".aifc": "audio/aiff", ".m4a": "audio/mp4", ".webm": "audio/webm",
}
_SAFE_SUFFIX = re.compile(r"^\.[A-Za-z0-9]{1,8}$")


class UploadTooLarge(Exception):
    """An upload passed the size limit (the server answers 413)."""


def content_type(path: str | Path) -> str:
    """The content type of an audio file, by extension.

    Examples
    --------
    >>> content_type("a/b.WAV"), content_type("x.mp3"), content_type("x.unknown")
    ('audio/wav', 'audio/mpeg', 'application/octet-stream')
    """
    return AUDIO_CONTENT_TYPES.get(Path(path).suffix.lower(), "application/octet-stream")


def library_file(root: Path, relpath: str) -> Path | None:
    """``root / relpath`` if ``relpath`` is a plain relative path inside the root, else None.

    Examples
    --------
    >>> library_file(Path("/lib"), "piano/c4.wav")
    PosixPath('/lib/piano/c4.wav')
    >>> library_file(Path("/lib"), "../etc/passwd"), library_file(Path("/lib"), "/etc/passwd")
    (None, None)
    """
    rel = PurePosixPath(relpath)
    if not relpath or rel.is_absolute() or any(part in ("..", "") for part in rel.parts):
        return None
    return Path(root) / Path(*rel.parts)


def upload_suffix(filename: str | None) -> str:
    """The extension to keep on an uploaded file's temporary copy (readers may need it).

    Examples
    --------
    >>> upload_suffix("kick.FLAC"), upload_suffix("../../x.wav"), upload_suffix("a.w/v")
    ('.flac', '.wav', '')
    """
    suffix = PurePosixPath(filename or "").suffix.lower()
    return suffix if _SAFE_SUFFIX.match(suffix) else ""


@contextmanager
def saved_upload(stream: BinaryIO, filename: str | None, max_bytes: int,
                 chunk_size: int = 1 << 16) -> Iterator[Path]:
    """Copy an uploaded file to a temporary file, yield its path, delete it afterwards.

    Raises
    ------
    UploadTooLarge
        The upload holds more than ``max_bytes`` bytes (copying stops there).

    Examples
    --------
    >>> import io
    >>> with saved_upload(io.BytesIO(b"RIFF...."), "a.wav", 100) as p:
    ...     p.suffix, p.read_bytes()
    ('.wav', b'RIFF....')
    >>> p.exists()
    False
    """
    with tempfile.TemporaryDirectory(prefix="mirsim-upload-") as directory:
        path = Path(directory) / f"upload{upload_suffix(filename)}"
        written = 0
        with open(path, "wb") as out:
            while block := stream.read(chunk_size):
                written += len(block)
                if written > max_bytes:
                    raise UploadTooLarge(f"upload larger than the limit of {max_bytes:,} bytes")
                out.write(block)
        yield path
