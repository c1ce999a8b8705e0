"""Atomic writes and JSON files: the one way mirsim writes a file.

Every file is written to a temporary file in the same directory, flushed, and renamed over its
target, so a reader (or a later run) sees either the old file or the new one, never a torn one,
and a process killed mid-write leaves at most a hidden ``.NAME.*.tmp`` file.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from mirsim.errors import MirsimError

__all__ = ["atomic_path", "fsync_path", "fsync_tree", "read_json_object", "write_bytes_atomic",
           "write_json", "write_text_atomic"]


@contextlib.contextmanager
def atomic_path(path: str | Path, *, durable: bool = False) -> Iterator[Path]:
    """A temporary path next to ``path``; when the block ends without error the file written
    there replaces ``path`` in one rename (else it is removed).

    For writers that take a file name (``np.savez``, ``safetensors.save_file``,
    ``faiss.write_index``). With ``durable``, the file and its directory are flushed to disk
    before and after the rename.

    Examples
    --------
    >>> d = Path(tempfile.mkdtemp())
    >>> with atomic_path(d / "x.txt") as tmp:
    ...     _ = tmp.write_text("hello")
    >>> (d / "x.txt").read_text(), sorted(p.name for p in d.iterdir())
    ('hello', ['x.txt'])
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        if durable:
            fsync_path(tmp)
        os.replace(tmp, path)
        if durable:
            fsync_path(path.parent)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_bytes_atomic(path: str | Path, payload: bytes, *, durable: bool = False) -> Path:
    """Write ``payload`` to ``path`` through a temporary file and a rename.

    Examples
    --------
    >>> p = write_bytes_atomic(Path(tempfile.mkdtemp()) / "a" / "x.bin", b"\\x00\\x01")
    >>> p.read_bytes(), [q.name for q in p.parent.iterdir()]
    (b'\\x00\\x01', ['x.bin'])
    """
    path = Path(path)
    with atomic_path(path, durable=durable) as tmp:
        tmp.write_bytes(payload)
    return path


def write_text_atomic(path: str | Path, text: str, *, durable: bool = False) -> Path:
    """Write ``text`` (UTF-8) to ``path`` through a temporary file and a rename."""
    return write_bytes_atomic(path, text.encode("utf-8"), durable=durable)


def write_json(path: str | Path, data: Any, *, durable: bool = False) -> Path:
    """Write ``data`` as indented JSON, atomically (NaN and infinities written as ``null``).

    Examples
    --------
    >>> p = write_json(Path(tempfile.mkdtemp()) / "m.json", {"a": float("nan"), "b": (1, 2)})
    >>> p.read_text()
    '{\\n  "a": null,\\n  "b": [\\n    1,\\n    2\\n  ]\\n}\\n'
    """
    return write_text_atomic(path, json.dumps(_finite(data), indent=2, default=str) + "\n",
                             durable=durable)


def read_json_object(path: str | Path, error: type[MirsimError] = MirsimError) -> dict[str, Any]:
    """The JSON object in ``path``; a missing, unreadable or non-object file raises ``error``
    (one line naming the file).

    Examples
    --------
    >>> p = Path(tempfile.mkdtemp()) / "a.json"
    >>> _ = write_json(p, {"k": 1})
    >>> read_json_object(p)
    {'k': 1}
    >>> read_json_object(p.parent / "none.json")
    Traceback (most recent call last):
    ...
    mirsim.errors.MirsimError: .../none.json: no such file
    """
    path = Path(path)
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise error(f"{path}: no such file") from None
    except IsADirectoryError:
        raise error(f"{path}: is a directory, not a JSON file") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise error(f"{path}: unreadable ({exc})") from None
    if not isinstance(value, dict):
        raise error(f"{path}: not a JSON object")
    return value


def fsync_path(path: str | Path) -> None:
    """Flush one file or directory to disk (best effort: not every system opens directories)."""
    path = Path(path)
    flags = os.O_RDONLY | (getattr(os, "O_DIRECTORY", 0) if path.is_dir() else 0)
    try:
        fd = os.open(path, flags)
    except OSError:  # pragma: no cover - e.g. directories cannot be opened on Windows
        return
    try:
        os.fsync(fd)
    except OSError:  # pragma: no cover
        pass
    finally:
        os.close(fd)


def fsync_tree(directory: str | Path) -> None:
    """Flush every file below ``directory``, then the directories themselves."""
    directory = Path(directory)
    for path in sorted(directory.rglob("*"), key=lambda p: len(p.parts), reverse=True):
        fsync_path(path)
    fsync_path(directory)


def _finite(x: Any) -> Any:
    if isinstance(x, float) and not math.isfinite(x):
        return None
    if isinstance(x, dict):
        return {k: _finite(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_finite(v) for v in x]
    return x
