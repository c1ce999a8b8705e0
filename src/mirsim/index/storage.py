"""Writing an index directory atomically.

A build writes the whole new index into a hidden staging directory next to the target
(``.NAME.tmp-<pid>-<token>``), flushes it to disk, then swaps it with the target in one step:

* on Linux, ``renameat2(RENAME_EXCHANGE)`` exchanges the two directories atomically, so at every
  moment the target path holds either the complete old index or the complete new one;
* elsewhere (or on file systems without that call) the old directory is first renamed aside
  (``.NAME.old-<pid>-<token>``) and the new one renamed into place; if the process dies between
  the two renames, the next build (:func:`clean_stale`) puts the old index back.

A build killed before the swap leaves only its hidden staging directory, which the next build
removes once the process that owned it is gone.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import json
import os
import re
import secrets
import shutil
from pathlib import Path
from typing import Any

from mirsim.index.errors import SoundIndexError

#: File that marks a directory as a mirsim sound index.
MARKER = "index.json"
_STAGING = re.compile(r"^\.(?P<name>.+)\.(?P<kind>tmp|old)-(?P<pid>\d+)-[0-9a-f]+$")


def staging_dir(target: Path) -> Path:
    """Create and return a fresh hidden staging directory next to ``target``.

    Examples
    --------
    >>> import tempfile
    >>> d = staging_dir(Path(tempfile.mkdtemp()) / "lib.index")
    >>> d.name.startswith(".lib.index.tmp-"), d.is_dir()
    (True, True)
    """
    target.parent.mkdir(parents=True, exist_ok=True)
    path = target.parent / f".{target.name}.tmp-{os.getpid()}-{secrets.token_hex(4)}"
    path.mkdir()
    return path


def write_json_file(path: Path, data: Any) -> None:
    """Write ``data`` as indented JSON and flush it to disk (inside a staging directory)."""
    with open(path, "w", encoding="utf-8") as f:
        json.dump(data, f, indent=2, default=str)
        f.write("\n")
        f.flush()
        os.fsync(f.fileno())


def fsync_tree(directory: Path) -> None:
    """Flush every file of ``directory`` (recursively) and the directories themselves."""
    for path in sorted(directory.rglob("*")) + [directory]:
        _fsync_path(path)


def is_index_dir(path: Path) -> bool:
    """Whether ``path`` is a directory written by :func:`publish` (it holds ``index.json``)."""
    return path.is_dir() and (path / MARKER).is_file()


def check_target(target: Path) -> None:
    """Refuse to replace anything but a missing path, an empty directory or a sound index."""
    if not target.exists():
        return
    if not target.is_dir():
        raise SoundIndexError(f"{target}: exists and is not a directory; refusing to replace it")
    if not is_index_dir(target) and any(target.iterdir()):
        raise SoundIndexError(f"{target}: exists and is not a mirsim sound index; refusing to "
                              f"replace it (choose another --out)")


def publish(staging: Path, target: Path) -> None:
    """Make the complete directory ``staging`` appear at ``target`` in one step (see module)."""
    fsync_tree(staging)
    if not target.exists():
        os.rename(staging, target)
    elif _exchange(staging, target):
        shutil.rmtree(staging, ignore_errors=True)  # now holds the previous index
    else:
        aside = target.parent / f".{target.name}.old-{os.getpid()}-{secrets.token_hex(4)}"
        os.rename(target, aside)
        os.rename(staging, target)
        shutil.rmtree(aside, ignore_errors=True)
    _fsync_path(target.parent)


def clean_stale(target: Path) -> list[Path]:
    """Remove staging directories of ``target`` left by dead builds; restore an index that a
    build killed mid-swap left aside. Returns the paths removed or restored.

    Examples
    --------
    >>> import tempfile
    >>> root = Path(tempfile.mkdtemp())
    >>> (root / ".lib.tmp-999999999-ab").mkdir()
    >>> [p.name for p in clean_stale(root / "lib")]
    ['.lib.tmp-999999999-ab']
    """
    if not target.parent.is_dir():
        return []
    touched = []
    for path in sorted(target.parent.iterdir()):
        m = _STAGING.match(path.name)
        if not m or m["name"] != target.name or _alive(int(m["pid"])):
            continue
        if m["kind"] == "old" and not target.exists() and is_index_dir(path):
            os.rename(path, target)
        else:
            shutil.rmtree(path, ignore_errors=True)
        touched.append(path)
    return touched


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except (ProcessLookupError, OverflowError):
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


def _exchange(a: Path, b: Path) -> bool:
    """Atomically exchange two paths (Linux ``renameat2``); False where unsupported."""
    libc_name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(libc_name, use_errno=True)
        renameat2 = libc.renameat2
    except (OSError, AttributeError, TypeError):
        return False
    at_fdcwd, rename_exchange = -100, 2
    renameat2.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p,
                          ctypes.c_uint]
    if renameat2(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange) == 0:
        return True
    code = ctypes.get_errno()
    if code in (errno.ENOSYS, errno.EINVAL, errno.ENOTSUP, errno.EOPNOTSUPP):
        return False
    raise OSError(code, os.strerror(code), str(b))


def _fsync_path(path: Path) -> None:
    """Flush one file or directory to disk (best effort: not every system can open a directory)."""
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
