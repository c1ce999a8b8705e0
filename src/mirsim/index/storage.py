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

One build writes a target at a time: :func:`index_lock` holds an exclusive ``flock`` on a
hidden lock file next to it (``.NAME.lock``, holding the writer's pid). The kernel drops the lock
when its holder ends, however it ends, so a killed build never leaves a stale lock; the file
itself stays (removing it could let two writers lock two different files).

A server notices that a build replaced the index it serves through :func:`index_version`.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import errno
import hashlib
import json
import os
import re
import secrets
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: no flock; builds are not serialised there
    fcntl = None  # type: ignore[assignment]

from mirsim.index.errors import SoundIndexError

#: File that marks a directory as a mirsim sound index.
MARKER = "index.json"
#: File whose identity is the index's version (:data:`mirsim.index.manifest.MANIFEST_FILE`,
#: not imported here: that module needs pandas).
VERSION_FILE = "manifest.csv"
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


def lock_path(target: Path) -> Path:
    """The lock file of the index directory ``target`` (beside it, hidden).

    Examples
    --------
    >>> lock_path(Path("/data/lib.index"))
    PosixPath('/data/.lib.index.lock')
    """
    return target.parent / f".{target.name}.lock"


@contextlib.contextmanager
def index_lock(target: Path, wait: bool = False,
               on_wait: Callable[[int | None], None] | None = None) -> Iterator[Path]:
    """Hold the exclusive write lock of the index directory ``target`` (see the module).

    Parameters
    ----------
    target : Path
        The index directory (it need not exist; its parent is created).
    wait : bool
        Wait for the holder to finish instead of failing at once.
    on_wait : callable, optional
        With ``wait``: called once with the holder's pid (None if unknown) before waiting.

    Raises
    ------
    SoundIndexError
        Another process holds the lock (and ``wait`` is false), or the lock file cannot be
        created.

    Examples
    --------
    >>> import tempfile
    >>> target = Path(tempfile.mkdtemp()) / "lib.index"
    >>> with index_lock(target):
    ...     with index_lock(target):
    ...         pass
    Traceback (most recent call last):
    ...
    mirsim.index.errors.SoundIndexError: .../lib.index: another process (pid ...) is writing this index; wait for it to finish, or pass --wait
    >>> with index_lock(target) as path:  # released when its holder is done
    ...     path.name
    '.lib.index.lock'
    """
    path = lock_path(target)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)  # not inherited by child processes
    except OSError as exc:
        raise SoundIndexError(f"{target}: cannot create its lock file {path.name} in "
                              f"{target.parent} ({exc.strerror or exc})") from None
    try:
        _acquire(fd, target, wait, on_wait)
        _write_pid(fd)
        yield path
    finally:
        os.close(fd)  # closing the file releases the lock


def _acquire(fd: int, target: Path, wait: bool,
             on_wait: Callable[[int | None], None] | None) -> None:
    if fcntl is None:  # pragma: no cover
        return
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return
    except BlockingIOError:
        holder = _holder_pid(fd)
    if not wait:
        who = f"pid {holder}" if holder is not None else "pid unknown"
        raise SoundIndexError(f"{target}: another process ({who}) is writing this index; wait "
                              f"for it to finish, or pass --wait")
    if on_wait is not None:
        on_wait(holder)
    fcntl.flock(fd, fcntl.LOCK_EX)


def _holder_pid(fd: int) -> int | None:
    """The pid the lock's holder wrote into the lock file (None before it wrote it, when the
    file still names an earlier holder that has ended)."""
    text = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
    return int(text) if text.isdigit() and _alive(int(text)) else None


def _write_pid(fd: int) -> None:
    """Record the holder's pid for the message of a refused writer (best effort: a full disk
    must not stop a build that could still fail with a clearer message later)."""
    with contextlib.suppress(OSError):
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode("ascii"), 0)


def index_version(directory: Path) -> str | None:
    """A token that changes whenever a build publishes a new index at ``directory`` (None if
    it holds no manifest): the identity of its manifest file, which every build writes anew
    (device, inode, size, modification time).

    Examples
    --------
    >>> import tempfile
    >>> d = Path(tempfile.mkdtemp())
    >>> index_version(d) is None
    True
    >>> _ = (d / "manifest.csv").write_text("path\\n")
    >>> v = index_version(d); v == index_version(d), len(v)
    (True, 16)
    """
    try:
        st = os.stat(directory / VERSION_FILE)
    except OSError:
        return None
    identity = (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)
    return hashlib.blake2b(repr(identity).encode(), digest_size=8).hexdigest()


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
