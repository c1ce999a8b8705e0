"""Judgments of individual listeners, as data: their groupings of sounds, or judged triplets.

Two kinds of file are understood, told apart by their columns:

* **listener groupings** (``listener,fname,cluster``): each listener's own free sorting of the
  sounds, one row per (listener, sound). Cluster ids are per listener and mean nothing across
  listeners; a listener need not group every sound of the file. Cyberlioz ships one as
  ``listener_clusters.csv`` beside ``clusters.csv`` (:func:`find_listener_clusters`).
* **judged triplets** (``anchor,positive,negative[,weight]``): the positive was judged closer
  to the anchor than the negative; an optional non-negative weight per triplet.

Sounds are named by ``fname`` (Cyberlioz item ids are fnames). A file that cannot be used
raises :class:`JudgmentsError` in one line naming the file (and the line, where there is one).
:meth:`ListenerGroupings.align` and :meth:`JudgedTriplets.align` turn names into the positions
of a collection's items, dropping (and listing) sounds the collection lacks.

The CSV is read with the standard library's ``csv`` module rather than pandas: the checks need
line numbers, and the light commands should not import pandas.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mirsim.datasets.locations import LISTENER_CLUSTERS, find_listener_clusters
from mirsim.errors import DataError
#: Columns of a listener-groupings file.
GROUPING_COLUMNS = ("listener", "fname", "cluster")
#: Columns of a judged-triplet file (``weight`` optional).
TRIPLET_COLUMNS = ("anchor", "positive", "negative")


class JudgmentsError(DataError):
    """A judgments file that cannot be used (one line, naming the file)."""


@dataclass(frozen=True)
class ListenerGroupings:
    """Each listener's grouping of the same sounds.

    Attributes
    ----------
    listeners : tuple of str
        Listener ids, in the order of the file.
    fnames : tuple of str
        The sounds (columns of ``groups``), in order of first appearance.
    groups : numpy.ndarray
        ``(n_listeners, n_sounds)`` integer group codes per listener (0, 1, ...; codes of two
        listeners are unrelated); ``-1``: the listener did not group that sound.
    source : str
        Where the groupings were read from (for messages).

    Examples
    --------
    >>> g = ListenerGroupings(("L1", "L2"), ("a", "b", "c"), np.array([[0, 0, 1], [0, 1, 1]]))
    >>> g.n_listeners, g.items_of("L2")
    (2, array([0, 1, 1]))
    """

    listeners: tuple[str, ...]
    fnames: tuple[str, ...]
    groups: np.ndarray
    source: str = ""

    @property
    def n_listeners(self) -> int:
        return len(self.listeners)

    def items_of(self, listener: str) -> np.ndarray:
        """The group codes of one listener (one per sound, ``-1`` where not grouped)."""
        return self.groups[self.listeners.index(listener)]

    def align(self, item_ids: Sequence[str]) -> tuple[ListenerGroupings, list[str]]:
        """The groupings over a collection's items (``fnames`` become ``item_ids``), and the
        sounds of the file that are not among them, in file order.

        An item without a grouping gets ``-1`` from every listener.

        Examples
        --------
        >>> g = ListenerGroupings(("L1",), ("a", "b", "c"), np.array([[0, 0, 1]]))
        >>> aligned, dropped = g.align(["c", "x", "a"])
        >>> aligned.groups.tolist(), dropped
        ([[1, -1, 0]], ['b'])
        """
        position = _positions(item_ids)
        columns = np.array([position.get(f, -1) for f in self.fnames], dtype=np.int64)
        groups = np.full((self.n_listeners, len(position)), -1, dtype=np.int64)
        kept = columns >= 0
        groups[:, columns[kept]] = self.groups[:, kept]
        dropped = [f for f, k in zip(self.fnames, kept) if not k]
        return ListenerGroupings(self.listeners, tuple(position), groups, self.source), dropped


@dataclass(frozen=True)
class JudgedTriplets:
    """Judged triplets over named sounds.

    Attributes
    ----------
    fnames : tuple of str
        The sounds, in order of first appearance.
    triplets : numpy.ndarray
        ``(m, 3)`` positions in ``fnames`` of anchor, positive and negative.
    weights : numpy.ndarray or None
        ``(m,)`` non-negative weights, or ``None`` (all 1).
    source : str
        Where the triplets were read from (for messages).
    """

    fnames: tuple[str, ...]
    triplets: np.ndarray
    weights: np.ndarray | None = None
    source: str = ""

    def align(self, item_ids: Sequence[str]) -> tuple[JudgedTriplets, list[str]]:
        """The triplets over a collection's items, and the sounds of the file that are not
        among them (triplets naming one of them are dropped).

        Examples
        --------
        >>> t = JudgedTriplets(("a", "b", "c"), np.array([[0, 1, 2], [2, 1, 0]]))
        >>> aligned, dropped = t.align(["c", "a"])
        >>> aligned.triplets.tolist(), dropped
        ([], ['b'])
        """
        position = _positions(item_ids)
        new = np.array([position.get(f, -1) for f in self.fnames], dtype=np.int64)
        mapped = new[self.triplets] if len(self.triplets) else np.zeros((0, 3), np.int64)
        kept = np.all(mapped >= 0, axis=1)
        weights = None if self.weights is None else self.weights[kept]
        dropped = [f for f, n in zip(self.fnames, new) if n < 0]
        return JudgedTriplets(tuple(position), mapped[kept], weights, self.source), dropped


def _positions(item_ids: Sequence[str]) -> dict[str, int]:
    position: dict[str, int] = {}
    for i, name in enumerate(item_ids):
        position.setdefault(str(name), i)
    return position


# -- reading ----------------------------------------------------------------------------------
def _read_table(path: str | Path) -> tuple[list[str], list[tuple[int, dict[str, str]]]]:
    """Header (lower-cased, stripped) and ``(line number, row)`` of the non-blank rows."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise JudgmentsError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise JudgmentsError(f"{path}: is a directory, not a judgments CSV") from None
    except UnicodeDecodeError:
        raise JudgmentsError(f"{path}: not a text (UTF-8) CSV file") from None
    except OSError as exc:
        raise JudgmentsError(f"{path}: cannot read ({exc.strerror or exc})") from None
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        lines = [(reader.line_num, row) for row in reader]
    except csv.Error as exc:
        raise JudgmentsError(f"{path}: not a readable CSV ({exc})") from None
    lines = [(n, row) for n, row in lines if any(cell.strip() for cell in row)]
    if not lines:
        raise JudgmentsError(f"{path}: empty file (expected columns "
                             f"{','.join(GROUPING_COLUMNS)} or {','.join(TRIPLET_COLUMNS)}"
                             f"[,weight])")
    header = [c.strip().lower() for c in lines[0][1]]
    rows = []
    for number, row in lines[1:]:
        if len(row) != len(header):
            raise JudgmentsError(f"{path} line {number}: {len(row)} fields, the header has "
                                 f"{len(header)}")
        rows.append((number, {h: cell.strip() for h, cell in zip(header, row)}))
    if not rows:
        raise JudgmentsError(f"{path}: no rows below the header")
    return header, rows


def _require(path: Path, header: list[str], columns: Sequence[str], kind: str) -> None:
    missing = [c for c in columns if c not in header]
    if missing:
        raise JudgmentsError(f"{path}: a {kind} file needs columns {','.join(columns)}; missing "
                             f"{', '.join(missing)} (found: {', '.join(header)})")


def _check_known(path: Path, number: int, name: str, column: str,
                 known: frozenset[str] | None) -> None:
    if not name:
        raise JudgmentsError(f"{path} line {number}: empty '{column}'")
    if known is not None and name not in known:
        raise JudgmentsError(f"{path} line {number}: unknown sound '{name}' in '{column}'")


def read_listener_groupings(path: str | Path, fnames: Sequence[str] | None = None
                            ) -> ListenerGroupings:
    """Read a listener-groupings CSV (``listener,fname,cluster``).

    Parameters
    ----------
    path : path
        The file.
    fnames : sequence of str, optional
        The sounds the file may name; another name is an error. Without it any name goes.

    Returns
    -------
    ListenerGroupings

    Raises
    ------
    JudgmentsError
        Empty file, missing columns, an empty value, an unknown sound (with ``fnames``), a
        listener who groups one sound twice.

    Examples
    --------
    >>> import tempfile, os
    >>> p = os.path.join(tempfile.mkdtemp(), "g.csv")
    >>> _ = open(p, "w").write("listener,fname,cluster\\nL1,a,7\\nL1,b,7\\nL2,a,1\\nL2,b,2\\n")
    >>> g = read_listener_groupings(p)
    >>> g.listeners, g.fnames, g.groups.tolist()
    (('L1', 'L2'), ('a', 'b'), [[0, 0], [0, 1]])
    """
    path = Path(path)
    return _groupings_from_rows(path, *_read_table(path), fnames)


def _groupings_from_rows(path: Path, header: list[str], rows: list[tuple[int, dict[str, str]]],
                         fnames: Sequence[str] | None) -> ListenerGroupings:
    _require(path, header, GROUPING_COLUMNS, "listener-groupings")
    known = frozenset(fnames) if fnames is not None else None
    listeners: dict[str, dict[str, str]] = {}
    seen: dict[tuple[str, str], int] = {}
    sounds: dict[str, None] = {}
    for number, row in rows:
        listener, name, cluster = row["listener"], row["fname"], row["cluster"]
        if not listener:
            raise JudgmentsError(f"{path} line {number}: empty 'listener'")
        _check_known(path, number, name, "fname", known)
        if not cluster:
            raise JudgmentsError(f"{path} line {number}: empty 'cluster'")
        if (listener, name) in seen:
            raise JudgmentsError(f"{path} line {number}: listener {listener} groups '{name}' "
                                 f"twice (also on line {seen[listener, name]})")
        seen[listener, name] = number
        listeners.setdefault(listener, {})[name] = cluster
        sounds.setdefault(name)
    order = list(sounds)
    groups = np.full((len(listeners), len(order)), -1, dtype=np.int64)
    column = {name: j for j, name in enumerate(order)}
    for i, assigned in enumerate(listeners.values()):
        codes: dict[str, int] = {}
        for name, cluster in assigned.items():
            groups[i, column[name]] = codes.setdefault(cluster, len(codes))
    return ListenerGroupings(tuple(listeners), tuple(order), groups, str(path))


def _weight(path: Path, number: int, text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise JudgmentsError(f"{path} line {number}: weight '{text}' is not a number") from None
    if not math.isfinite(value) or value < 0:
        raise JudgmentsError(f"{path} line {number}: weight {text} is not a finite number >= 0")
    return value


def read_triplets(path: str | Path, fnames: Sequence[str] | None = None) -> JudgedTriplets:
    """Read a judged-triplet CSV (``anchor,positive,negative[,weight]``, sounds by fname).

    Parameters
    ----------
    path : path
        The file.
    fnames : sequence of str, optional
        The sounds the file may name; another name is an error.

    Raises
    ------
    JudgmentsError
        Empty file, missing columns, an empty value, an unknown sound (with ``fnames``), a
        triplet naming one sound twice, a weight that is not a finite number >= 0.

    Examples
    --------
    >>> import tempfile, os
    >>> p = os.path.join(tempfile.mkdtemp(), "t.csv")
    >>> _ = open(p, "w").write("anchor,positive,negative,weight\\na,b,c,0.5\\nc,b,a,2\\n")
    >>> t = read_triplets(p)
    >>> t.fnames, t.triplets.tolist(), t.weights.tolist()
    (('a', 'b', 'c'), [[0, 1, 2], [2, 1, 0]], [0.5, 2.0])
    """
    path = Path(path)
    return _triplets_from_rows(path, *_read_table(path), fnames)


def _triplets_from_rows(path: Path, header: list[str], rows: list[tuple[int, dict[str, str]]],
                        fnames: Sequence[str] | None) -> JudgedTriplets:
    _require(path, header, TRIPLET_COLUMNS, "triplet")
    known = frozenset(fnames) if fnames is not None else None
    weighted = "weight" in header
    sounds: dict[str, int] = {}
    triplets, weights = [], []
    for number, row in rows:
        names = [row[c] for c in TRIPLET_COLUMNS]
        for name, col in zip(names, TRIPLET_COLUMNS):
            _check_known(path, number, name, col, known)
        if len(set(names)) < 3:
            raise JudgmentsError(f"{path} line {number}: a triplet names three different "
                                 f"sounds (got {', '.join(names)})")
        triplets.append([sounds.setdefault(name, len(sounds)) for name in names])
        if weighted:
            weights.append(_weight(path, number, row["weight"]))
    return JudgedTriplets(tuple(sounds), np.asarray(triplets, dtype=np.int64).reshape(-1, 3),
                          np.asarray(weights, dtype=np.float64) if weighted else None,
                          str(path))


def read_judgments(path: str | Path, fnames: Sequence[str] | None = None
                   ) -> ListenerGroupings | JudgedTriplets:
    """Read a listener-groupings CSV or a judged-triplet CSV, told apart by its columns.

    Examples
    --------
    >>> import tempfile, os
    >>> p = os.path.join(tempfile.mkdtemp(), "t.csv")
    >>> _ = open(p, "w").write("anchor,positive,negative\\na,b,c\\n")
    >>> type(read_judgments(p)).__name__
    'JudgedTriplets'
    """
    path = Path(path)
    header, rows = _read_table(path)
    if all(c in header for c in GROUPING_COLUMNS):
        return _groupings_from_rows(path, header, rows, fnames)
    if all(c in header for c in TRIPLET_COLUMNS):
        return _triplets_from_rows(path, header, rows, fnames)
    raise JudgmentsError(f"{path}: not a judgments file: expected columns "
                         f"{','.join(GROUPING_COLUMNS)} (listener groupings) or "
                         f"{','.join(TRIPLET_COLUMNS)}[,weight] (triplets); found "
                         f"{', '.join(header)}")


# -- writing ----------------------------------------------------------------------------------
def listener_groupings_csv(groups: np.ndarray, fnames: Sequence[str],
                           listeners: Sequence[str] | None = None) -> bytes:
    """The bytes of a listener-groupings CSV (``listener,fname,cluster``; CRLF lines, as
    Cyberlioz's ``clusters.csv``): listener by listener, sounds in the order of ``fnames``.

    Parameters
    ----------
    groups : array of shape (n_listeners, n_sounds)
        Integer cluster numbers as the listeners gave them; negative: not grouped (no row).
    fnames : sequence of str
        The sounds (columns of ``groups``).
    listeners : sequence of str, optional
        Listener ids; default ``L01``, ``L02``, ... (two digits at least).

    Examples
    --------
    >>> listener_groupings_csv(np.array([[2, 1], [1, -1]]), ["a", "b"]).decode().splitlines()
    ['listener,fname,cluster', 'L01,a,2', 'L01,b,1', 'L02,a,1']
    """
    groups = np.asarray(groups)
    if groups.ndim != 2 or groups.shape[1] != len(fnames):
        raise ValueError(f"groups must have shape (n_listeners, {len(fnames)}), "
                         f"got {groups.shape}")
    width = max(2, len(str(len(groups))))
    ids = list(listeners) if listeners is not None else [
        f"L{i:0{width}d}" for i in range(1, len(groups) + 1)]
    buffer = io.StringIO(newline="")
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(GROUPING_COLUMNS)
    for listener, row in zip(ids, groups):
        writer.writerows([listener, name, int(k)] for name, k in zip(fnames, row) if k >= 0)
    return buffer.getvalue().encode("utf-8")


__all__ = ["GROUPING_COLUMNS", "JudgedTriplets", "JudgmentsError", "LISTENER_CLUSTERS",
           "ListenerGroupings", "TRIPLET_COLUMNS", "find_listener_clusters",
           "listener_groupings_csv", "read_judgments", "read_listener_groupings",
           "read_triplets"]
