"""Download the Cyberlioz seed set, checking every file against a SHA-256 that mirsim records.

Two kinds of source are understood:

* the public origin (default): the raw files of two GitHub repositories,
  ``mathieulagrange/lostanlen2020jasmp`` (the 78 MP3s and ``ticelJudgments.mat``, the
  listeners' judgments, from which ``clusters.csv`` (their consensus clusters) and
  ``listener_clusters.csv`` (every listener's own grouping) are derived) and
  ``cyrusvahidi/ipt-similarity`` (``seed_filelist.csv`` and the extended-set manifest);
* a mirror (``base_url``): any server laid out like an unpacked Cyberlioz directory
  (``seed_filelist.csv``, ``clusters.csv``, ``extended_filelist.csv``, ``audio/<fname>.mp3``).
  A mirror gives no ``listener_clusters.csv``: mirsim records no SHA-256 for it (only that of
  the ``.mat`` it is derived from), so it could not be checked.

Every file is streamed to a temporary file next to its destination, checked, then renamed into
place, so an interrupted or failed download never leaves a partial or wrong file under its final
name. A file already present with the right checksum is not downloaded again: a rerun resumes.
The checksums live in ``cyberlioz_sha256.json``, shipped with the package.
"""

from __future__ import annotations

import csv
import hashlib
import http.client
import io
import json
import os
import re
import secrets
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Mapping
from importlib import resources
from pathlib import Path

from mirsim import __version__
from mirsim.config import data_cache_dir
from mirsim.datasets.locations import LISTENER_CLUSTERS
from mirsim.errors import MirsimError

#: Where the public origin's raw files are served from.
GITHUB_RAW = "https://raw.githubusercontent.com"

#: ``owner/repo/branch`` of the two origin repositories.
SOUNDS_REPO = "mathieulagrange/lostanlen2020jasmp/master"
TABLES_REPO = "cyrusvahidi/ipt-similarity/main"

#: Name (in the checksum table) of the origin's cluster table; ``clusters.csv`` is derived from it.
JUDGMENTS = "ticelJudgments.mat"

_ORIGIN_PATHS = {
    "seed_filelist.csv": f"{TABLES_REPO}/jasmp/seed_filelist.csv",
    "extended_filelist.csv": f"{TABLES_REPO}/jasmp/extended_pitch_F4.csv",
    JUDGMENTS: f"{SOUNDS_REPO}/experiments/similarity/ticelJudgments.mat",
}
_TABLES = ("seed_filelist.csv", "extended_filelist.csv", "clusters.csv")
_PART_SUFFIX = ".part"
_PART_NAME = re.compile(r"^\..+\.[0-9a-f]{8}\.part$")  # what _temp_path makes
_CHUNK = 1 << 16


class DownloadError(MirsimError):
    """A file that could not be downloaded; the message names the URL and the reason."""


class ChecksumError(DownloadError):
    """A downloaded (or derived) file whose SHA-256 is not the recorded one."""


def cyberlioz_checksums() -> dict[str, str]:
    """The recorded SHA-256 of every Cyberlioz file, keyed by its path in the data directory.

    The table is a fresh dictionary on every call (change a copy, pass it to
    :func:`fetch_cyberlioz` as ``checksums``). Besides the files of the directory it holds
    ``ticelJudgments.mat``, the origin's cluster table.

    Examples
    --------
    >>> table = cyberlioz_checksums()
    >>> len([k for k in table if k.startswith("audio/")]), table["clusters.csv"][:12]
    (78, 'feb6682f1405')
    """
    text = resources.files("mirsim.datasets").joinpath("cyberlioz_sha256.json").read_text("utf-8")
    return dict(json.loads(text)["sha256"])


def fetch_cyberlioz(
    dest: str | Path | None = None,
    base_url: str | None = None,
    progress: Callable[[int, int], None] | None = None,
    timeout: float = 30,
    *,
    checksums: Mapping[str, str] | None = None,
    origin: str = GITHUB_RAW,
) -> Path:
    """Download the Cyberlioz seed set into ``dest``, verifying every file's SHA-256.

    Parameters
    ----------
    dest : path, optional
        Target directory (created if needed); default ``mirsim.config.data_cache_dir("cyberlioz")``.
    base_url : str, optional
        A mirror laid out like a Cyberlioz directory. Without it the files come from the public
        origin (see the module docstring) and ``clusters.csv`` and ``listener_clusters.csv``
        (all 31 listeners' groupings) are derived from ``ticelJudgments.mat``.
    progress : callable, optional
        Called as ``progress(done, total)`` (numbers of files; the two tables derived from
        ``ticelJudgments.mat`` count as one) after each file, including files that were
        already present.
    timeout : float
        Seconds to wait for the server on each request.
    checksums : mapping, optional
        SHA-256 table to check against (default: :func:`cyberlioz_checksums`).
    origin : str
        Base URL of the raw-file server of the origin (``owner/repo/branch/path`` below it).

    Returns
    -------
    Path
        ``dest``, which then satisfies :func:`mirsim.datasets.cyberlioz.is_complete`.

    Raises
    ------
    ChecksumError
        A file's SHA-256 differs from the recorded one (the message names the file and both
        hashes; the bad file is not kept).
    DownloadError
        A network or server error (the message names the URL), or ``dest`` is unusable.

    Examples
    --------
    >>> root = fetch_cyberlioz()                      # doctest: +SKIP
    >>> from mirsim.datasets.cyberlioz import is_complete
    >>> is_complete(root)                             # doctest: +SKIP
    True
    """
    dest = Path(dest) if dest is not None else data_cache_dir("cyberlioz")
    table = dict(checksums) if checksums is not None else cyberlioz_checksums()
    _prepare_dir(dest / "audio")
    url_of = _mirror_url(base_url) if base_url is not None else _origin_url(origin)

    _ensure_file("seed_filelist.csv", dest, url_of, table, timeout)
    fnames = _seed_names(dest / "seed_filelist.csv")
    audio = [f"audio/{name}.mp3" for name in fnames]
    total = len(_TABLES) + len(audio)
    done = 1
    _report(progress, done, total)
    for name in ("extended_filelist.csv", "clusters.csv", *audio):
        if name == "clusters.csv" and base_url is None:
            _ensure_tables_from_judgments(dest, fnames, url_of, table, timeout)
        else:
            _ensure_file(name, dest, url_of, table, timeout)
        done += 1
        _report(progress, done, total)
    return dest


def _report(progress: Callable[[int, int], None] | None, done: int, total: int) -> None:
    if progress is not None:
        progress(done, total)


def _prepare_dir(path: Path) -> None:
    """Create ``path`` (and parents) and remove temporary files left by an interrupted run."""
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DownloadError(f"{path}: cannot create the directory ({exc.strerror or exc})") from exc
    for folder in (path.parent, path):
        for stale in folder.glob(f".*{_PART_SUFFIX}"):
            if _PART_NAME.match(stale.name):
                stale.unlink(missing_ok=True)


def _mirror_url(base_url: str) -> Callable[[str], str]:
    base = base_url.rstrip("/")
    return lambda name: f"{base}/{urllib.parse.quote(name)}"


def _origin_url(origin: str) -> Callable[[str], str]:
    base = origin.rstrip("/")

    def url(name: str) -> str:
        if name.startswith("audio/"):
            path = f"{SOUNDS_REPO}/demo/sounds/mp3/{name.removeprefix('audio/')}"
        elif name in _ORIGIN_PATHS:
            path = _ORIGIN_PATHS[name]
        else:
            raise DownloadError(f"{name}: not a file of the Cyberlioz origin")
        return f"{base}/{urllib.parse.quote(path)}"

    return url


def _expected(table: Mapping[str, str], name: str) -> str:
    try:
        return table[name].lower()
    except KeyError:
        raise DownloadError(f"{name}: no recorded SHA-256 for this file; cannot verify it") from None


def fetch_file(url: str, target: str | Path, expected: str, *, checksum: str = "sha256",
               timeout: float = 60) -> Path:
    """Download ``url`` to ``target`` unless it is there already with the expected checksum.

    The body is streamed to a temporary file next to ``target``, checked, then renamed into
    place: an interrupted or failed download never leaves a partial or wrong file under the
    final name, and a rerun after a failure starts again cleanly.

    Parameters
    ----------
    url : str
        What to download (``http``, ``https`` or ``file``).
    target : path
        Where the file goes; its folder is created if needed.
    expected : str
        Hex digest the file must have.
    checksum : {"sha256", "git-blob-sha1"}
        ``git-blob-sha1`` is the id git gives a file (SHA-1 of ``b"blob <size>\\0"`` and the
        content): the checksum to use for a file known by its id in a public git repository.
        ``sha256-prefix``: ``expected`` is the start (at least 8 hex digits) of the SHA-256,
        for files whose publisher records only that (torch.hub's ``hash_prefix`` convention,
        e.g. ``drums-9619578f.pth``).
    timeout : float
        Seconds to wait for the server.

    Returns
    -------
    Path
        ``target``.

    Raises
    ------
    ChecksumError
        The downloaded file has another checksum (it is not kept).
    DownloadError
        A network or server error, or an unusable ``target`` folder.

    Examples
    --------
    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as d:
    ...     source = Path(d) / "hello.txt"
    ...     _ = source.write_bytes(b"hello\\n")
    ...     copy = fetch_file(source.as_uri(), Path(d) / "copy" / "hello.txt",
    ...                       "ce013625030ba8dba906f756967f9e9ca394464a", checksum="git-blob-sha1")
    ...     copy.read_bytes()
    b'hello\\n'
    """
    target = Path(target)
    if checksum not in _CHECKSUMS:
        raise ValueError(f"checksum must be one of {sorted(_CHECKSUMS)}, not {checksum!r}")
    if checksum == "sha256-prefix" and len(expected) < 8:
        raise ValueError(f"a SHA-256 prefix needs at least 8 hex digits, got {expected!r}")
    _prepare_dir(target.parent)
    _fetch_unless_valid(url, target, target.name, expected.lower(), timeout, checksum)
    return target


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(_CHUNK):
            h.update(block)
    return h.hexdigest()


def git_blob_sha1(path: str | Path) -> str:
    """The id git gives the file's content (what ``git hash-object PATH`` prints).

    Examples
    --------
    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as d:
    ...     p = Path(d) / "hello"
    ...     _ = p.write_bytes(b"hello\\n")
    ...     git_blob_sha1(p)
    'ce013625030ba8dba906f756967f9e9ca394464a'
    """
    path = Path(path)
    h = hashlib.sha1(f"blob {path.stat().st_size}\0".encode())  # noqa: S324 (git's own id)
    with open(path, "rb") as f:
        while block := f.read(_CHUNK):
            h.update(block)
    return h.hexdigest()


_CHECKSUMS: dict[str, Callable[[Path], str]] = {"sha256": _sha256, "git-blob-sha1": git_blob_sha1,
                                                "sha256-prefix": _sha256}


def _matches(actual: str, expected: str, checksum: str) -> bool:
    return actual.startswith(expected) if checksum == "sha256-prefix" else actual == expected


def _is_valid(path: Path, expected: str, digest: Callable[[Path], str] = _sha256) -> bool:
    return path.is_file() and digest(path) == expected


def _temp_path(target: Path) -> Path:
    return target.with_name(f".{target.name}.{secrets.token_hex(4)}{_PART_SUFFIX}")


def _ensure_file(name: str, dest: Path, url_of: Callable[[str], str],
                 table: Mapping[str, str], timeout: float) -> bool:
    """Download ``name`` into ``dest`` unless it is there with the right hash; True if fetched."""
    return _fetch_unless_valid(url_of(name), dest / name, name, _expected(table, name), timeout)


def _fetch_unless_valid(url: str, target: Path, name: str, expected: str, timeout: float,
                        checksum: str = "sha256") -> bool:
    """Download ``url`` to ``target`` unless it is there with the right hash; True if fetched."""
    if target.is_file() and _matches(_CHECKSUMS[checksum](target), expected, checksum):
        return False
    tmp = _download_verified(url, target, name, expected, timeout, checksum=checksum)
    os.replace(tmp, target)
    return True


def _download_verified(url: str, target: Path, name: str, expected: str, timeout: float,
                       checksum: str = "sha256") -> Path:
    """Stream ``url`` to a temporary file next to ``target``; return it once its hash matches."""
    tmp = _temp_path(target)
    try:
        actual = _stream(url, tmp, timeout)
        if _CHECKSUMS[checksum] is not _sha256:
            actual = _CHECKSUMS[checksum](tmp)
        if not _matches(actual, expected, checksum):
            raise ChecksumError(f"{name}: checksum mismatch (expected {checksum} {expected}, "
                                f"got {actual}) from {url}; the file was not kept")
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return tmp


def _stream(url: str, path: Path, timeout: float) -> str:
    """Write the body of ``url`` to ``path`` (created exclusively); return its SHA-256."""
    request = urllib.request.Request(url, headers={"User-Agent": f"mirsim/{__version__}"})
    h = hashlib.sha256()
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response, \
                open(path, "xb") as out:
            while block := response.read(_CHUNK):
                h.update(block)
                out.write(block)
    except urllib.error.HTTPError as exc:
        raise DownloadError(f"cannot download {url}: HTTP {exc.code} {exc.reason}") from None
    except urllib.error.URLError as exc:
        raise DownloadError(f"cannot download {url}: {_reason(exc.reason, timeout)}") from None
    except (OSError, http.client.HTTPException, ValueError) as exc:
        raise DownloadError(f"cannot download {url}: {_reason(exc, timeout)}") from None
    return h.hexdigest()


def _reason(reason: object, timeout: float) -> str:
    if isinstance(reason, TimeoutError):
        return f"no answer within {timeout:g} s"
    if isinstance(reason, OSError) and reason.strerror:
        return reason.strerror
    text = str(reason).strip() or type(reason).__name__
    return text.splitlines()[0][:200]


def _seed_names(path: Path) -> list[str]:
    """The ``fname`` column of a (verified) ``seed_filelist.csv``, in row order."""
    with open(path, newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    if not rows or "fname" not in rows[0]:
        raise DownloadError(f"{path}: no 'fname' column")
    return [row["fname"] for row in rows]


def _ensure_tables_from_judgments(dest: Path, fnames: list[str], url_of: Callable[[str], str],
                                  table: Mapping[str, str], timeout: float) -> bool:
    """Derive ``clusters.csv`` and ``listener_clusters.csv`` from the origin's
    ``ticelJudgments.mat`` unless both are there already: ``clusters.csv`` with its recorded
    SHA-256, ``listener_clusters.csv`` readable as every listener's grouping of every seed
    sound (its SHA-256 is not recorded: it is checked through that of the ``.mat``)."""
    clusters, listeners = dest / "clusters.csv", dest / LISTENER_CLUSTERS
    expected = _expected(table, "clusters.csv")
    if _is_valid(clusters, expected) and _is_listener_table(listeners, fnames):
        return False
    url = url_of(JUDGMENTS)
    mat = _download_verified(url, clusters, JUDGMENTS, _expected(table, JUDGMENTS), timeout)
    try:
        data = clusters_csv_from_judgments(mat, fnames)
        actual = hashlib.sha256(data).hexdigest()
        if actual != expected:
            raise ChecksumError(f"clusters.csv: checksum mismatch (expected sha256 {expected}, "
                                f"got {actual}) when derived from {url}; the file was not kept")
        groupings = listener_clusters_csv_from_judgments(mat, fnames)
    finally:
        mat.unlink(missing_ok=True)
    _write_atomic(listeners, groupings)
    _write_atomic(clusters, data)
    return True


def _is_listener_table(path: Path, fnames: list[str]) -> bool:
    """True if ``path`` holds groupings of exactly the seed sounds, every one by every listener."""
    import numpy as np

    from mirsim.datasets.listeners import JudgmentsError, read_listener_groupings

    if not path.is_file():
        return False
    try:
        groupings = read_listener_groupings(path, fnames)
    except JudgmentsError:
        return False
    return len(groupings.fnames) == len(fnames) and bool(np.all(groupings.groups >= 0))


def _load_judgments(mat_path: str | Path, variable: str) -> dict:
    """The contents of ``ticelJudgments.mat``, which must hold ``variable``."""
    import scipy.io

    try:
        contents = scipy.io.loadmat(str(mat_path))
    except Exception as exc:  # scipy raises many kinds of errors on bytes that are not MATLAB
        raise DownloadError(f"{mat_path}: not a readable MATLAB file "
                            f"({type(exc).__name__}: {str(exc)[:120]})") from None
    if variable not in contents:
        raise DownloadError(f"{mat_path}: no '{variable}' variable")
    return contents


def _integers(values) -> bool:
    import numpy as np

    return (np.issubdtype(values.dtype, np.number) and bool(np.all(np.isfinite(values)))
            and bool(np.all(values == np.round(values))))


def clusters_csv_from_judgments(mat_path: str | Path, fnames: list[str]) -> bytes:
    """The bytes of ``clusters.csv`` (``fname,cluster``; CRLF lines) from ``ticelJudgments.mat``.

    The MATLAB file's variable ``ensemble`` holds one consensus cluster (1, 2, ...) per seed
    sound, in the row order of ``seed_filelist.csv``, whose ``fname`` column is ``fnames``.

    Raises
    ------
    DownloadError
        The file is not a MATLAB file with a suitable ``ensemble`` variable.

    Examples
    --------
    >>> import tempfile, os, scipy.io
    >>> p = os.path.join(tempfile.mkdtemp(), "j.mat")
    >>> scipy.io.savemat(p, {"ensemble": [[2, 1]]})
    >>> clusters_csv_from_judgments(p, ["a", "b"])
    b'fname,cluster\\r\\na,2\\r\\nb,1\\r\\n'
    """
    import numpy as np

    ensemble = np.asarray(_load_judgments(mat_path, "ensemble")["ensemble"]).reshape(-1)
    if len(ensemble) != len(fnames):
        raise DownloadError(f"{mat_path}: 'ensemble' has {len(ensemble)} entries for "
                            f"{len(fnames)} sounds")
    if not _integers(ensemble) or ensemble.min() < 1:
        raise DownloadError(f"{mat_path}: 'ensemble' does not hold cluster numbers 1, 2, ...")
    buffer = io.StringIO(newline="")
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(["fname", "cluster"])
    writer.writerows([name, int(k)] for name, k in zip(fnames, ensemble))
    return buffer.getvalue().encode("utf-8")


def listener_clusters_csv_from_judgments(mat_path: str | Path, fnames: list[str]) -> bytes:
    """The bytes of ``listener_clusters.csv`` (``listener,fname,cluster``; CRLF lines): every
    listener's own grouping of the seed sounds, from ``ticelJudgments.mat``.

    The MATLAB file's variable ``ci`` holds, for each subject (row), a group index per seed
    sound (column), in the row order of ``seed_filelist.csv`` (whose ``fname`` column is
    ``fnames``); ``names``, when present, names the sounds (only its length is checked: the
    order is that of ``seed_filelist.csv``, as for ``ensemble``). Listener ids are ``L01``,
    ``L02``, ... in row order; group indices are kept as they are (they mean nothing across
    listeners).

    Raises
    ------
    DownloadError
        The file is not a MATLAB file with a suitable ``ci`` variable.

    Examples
    --------
    >>> import tempfile, os, scipy.io
    >>> p = os.path.join(tempfile.mkdtemp(), "j.mat")
    >>> scipy.io.savemat(p, {"ci": [[1, 1, 2], [1, 2, 3]]})
    >>> listener_clusters_csv_from_judgments(p, ["a", "b", "c"]).decode().splitlines()[:3]
    ['listener,fname,cluster', 'L01,a,1', 'L01,b,1']
    """
    import numpy as np

    from mirsim.datasets.listeners import listener_groupings_csv

    contents = _load_judgments(mat_path, "ci")
    ci = np.asarray(contents["ci"])
    if ci.ndim != 2 or ci.shape[1] != len(fnames) or ci.shape[0] < 1:
        raise DownloadError(f"{mat_path}: 'ci' has shape {ci.shape}, expected (subjects, "
                            f"{len(fnames)} sounds)")
    if not _integers(ci):
        raise DownloadError(f"{mat_path}: 'ci' does not hold group numbers")
    if "names" in contents and np.asarray(contents["names"]).size != len(fnames):
        raise DownloadError(f"{mat_path}: 'names' has {np.asarray(contents['names']).size} "
                            f"entries for {len(fnames)} sounds")
    return listener_groupings_csv(ci.astype(np.int64), fnames)


def _write_atomic(path: Path, data: bytes) -> None:
    tmp = _temp_path(path)
    try:
        with open(tmp, "xb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


__all__ = ["ChecksumError", "DownloadError", "GITHUB_RAW", "clusters_csv_from_judgments",
           "cyberlioz_checksums", "fetch_cyberlioz", "listener_clusters_csv_from_judgments"]
