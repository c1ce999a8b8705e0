"""Scanning a library folder: audio files (:func:`mirsim.datasets.files.walk_library`, the
walk ``mirsim train --data FOLDER`` uses too), their content hashes, labels and groups.

A file's content hash (SHA-256) identifies its features: a renamed or copied file reuses them,
an edited one does not. Hashing reads the whole file, so a rebuild trusts the hash recorded by
the previous build for a file whose path, size and modification time (ns) are unchanged
(``rehash=True`` hashes every file again; ``mirsim index verify`` always does).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from typing import TYPE_CHECKING

import numpy as np

from mirsim.audio import file_sha256, load_audio, quiet_decoder
from mirsim.datasets.files import walk_library
from mirsim.index.errors import SoundIndexError

if TYPE_CHECKING:  # group_of is on the query path, which must not import pandas
    import pandas as pd

#: Values of ``group_by``: what counts as "the same sound" for ``exclude_same_group``.
GROUP_BY = ("folder", "file")

Progress = Callable[[str, int, int], None]


@dataclass
class LibraryFile:
    """One audio file of the library; also an audio source for feature extraction.

    Examples
    --------
    >>> f = LibraryFile(Path("/lib/piano/c4.wav"), "piano/c4.wav", 10, 0, "ab" * 32)
    >>> f.name, group_of(f.relpath, "folder")
    ('/lib/piano/c4.wav', 'piano')
    """

    path: Path
    relpath: str
    size: int
    mtime_ns: int
    key: str

    @property
    def name(self) -> str:
        return str(self.path)

    def load(self, sr: int, duration: float | None = None) -> np.ndarray:
        return load_audio(self.path, sr=sr, duration=duration)


def group_of(relpath: str, group_by: str = "folder") -> str:
    """The group of a file: its folder relative to the library root (``folder``; ``"."`` at
    the top) or the file itself (``file``).

    Examples
    --------
    >>> group_of("strings/violin/a4.wav"), group_of("a4.wav"), group_of("a4.wav", "file")
    ('strings/violin', '.', 'a4.wav')
    """
    if group_by not in GROUP_BY:
        raise SoundIndexError(f"unknown group_by '{group_by}' (valid: {', '.join(GROUP_BY)})")
    return relpath if group_by == "file" else str(PurePosixPath(relpath).parent)


def scan_library(root: Path, previous: pd.DataFrame | None = None, rehash: bool = False,
                 progress: Progress | None = None) -> tuple[list[LibraryFile], list[dict]]:
    """Audio files below ``root`` with their content hashes, and what could not be used
    (``[{"path", "reason"}]``, paths relative to ``root``): what the walk of the folder skipped
    (:func:`mirsim.datasets.files.walk_library`), then the files that could not be read.

    Parameters
    ----------
    root : Path
        The library folder.
    previous : pandas.DataFrame, optional
        The previous manifest (columns ``path, size, mtime_ns, sha256``): hashes of files whose
        path, size and modification time are unchanged are taken from it.
    rehash : bool
        Hash every file even when ``previous`` has it.
    progress : callable, optional
        ``progress("hash", done, total)``.

    Examples
    --------
    >>> import tempfile
    >>> root = Path(tempfile.mkdtemp()); (root / "kick").mkdir()
    >>> _ = (root / "kick" / "a.wav").write_bytes(b"RIFF")
    >>> files, skipped = scan_library(root)
    >>> [(f.relpath, f.key[:8]) for f in files], skipped
    ([('kick/a.wav', 'a40ff3d5')], [])
    """
    walk = walk_library(root)
    paths = walk.files
    known = _known_hashes(previous) if previous is not None and not rehash else {}
    files: list[LibraryFile] = []
    skipped: list[dict] = list(walk.skipped)  # dangling links, loops... (see walk_library)
    if progress:
        progress("hash", 0, len(paths))
    for i, path in enumerate(paths):
        rel = path.relative_to(root).as_posix()
        try:
            st = path.stat()
            key = known.get((rel, st.st_size, st.st_mtime_ns)) or file_sha256(path)
        except OSError as exc:
            skipped.append({"path": rel, "reason": f"cannot read ({exc.strerror or exc})"})
        else:
            files.append(LibraryFile(path, rel, st.st_size, st.st_mtime_ns, key))
        if progress and (i + 1 == len(paths) or (i + 1) % 64 == 0):
            progress("hash", i + 1, len(paths))
    return files, skipped


def _known_hashes(manifest: pd.DataFrame) -> dict[tuple[str, int, int], str]:
    cols = zip(manifest["path"], manifest["size"], manifest["mtime_ns"], manifest["sha256"])
    return {(p, int(s), int(m)): h for p, s, m, h in cols}


def audio_duration(path: Path) -> float:
    """Length of a sound file in seconds, from its header (NaN if the header cannot say)."""
    import soundfile as sf

    try:
        with quiet_decoder():
            info = sf.info(os.fspath(path))
        return float(info.frames) / float(info.samplerate) if info.samplerate else float("nan")
    except Exception:  # a readable file whose header lacks a length
        return float("nan")
