"""A user's own tagged library: a CSV of files and their values in each dimension.

Format: a column ``path`` (relative paths are relative to the CSV) and one column per
dimension whose header declares its rule as ``NAME:RULE``::

    path,genre:same-label,tags:shared-tag,bpm:tempo,key:key,artist
    songs/a.flac,rock,rock|live,121,E minor,The Xs
    songs/b.flac,jazz,,96,Bb major,Ys

Rules are those of :mod:`mirsim.datasets.dimensions` (``same-label``, ``shared-tag``,
``tempo``, ``key``); an empty cell is a missing value (similar to nothing). Columns without a
rule (``artist``) are kept as item metadata; ``label`` and ``group`` keep their meaning (by
default the label is the first dimension's value and every file is its own group). Header
names are read in lower case. A CSV whose header declares a rule loads as a tagged library
wherever a data set is named (``mirsim train --data lib.csv``...); rules may also be given (or
overridden) as ``NAME=RULE`` options (``mirsim data info lib.csv --dimension genre=same-label``),
which makes a plain ``path,genre,...`` CSV a tagged library too.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from mirsim.audio import FileSource
from mirsim.datasets.collection import Collection
from mirsim.datasets.dimensions import Dimension, parse_value
from mirsim.datasets.files import read_csv_table, require_values
from mirsim.errors import DataError, MirsimError

__all__ = ["declared_dimensions", "is_tagged_csv", "load_tagged"]

#: Columns that are never dimensions.
RESERVED = ("path", "id", "label", "group")


def declared_dimensions(columns: Sequence[str]) -> tuple[list[str], list[Dimension]]:
    """The column names without their rules, and the dimensions the header declares.

    Examples
    --------
    >>> names, dims = declared_dimensions(["path", "genre:same-label", "bpm : tempo", "artist"])
    >>> names, [(d.name, d.rule) for d in dims]
    (['path', 'genre', 'bpm', 'artist'], [('genre', 'same-label'), ('bpm', 'tempo')])
    """
    names, dims = [], []
    for column in columns:
        name, sep, rule = (part.strip() for part in str(column).partition(":"))
        if sep and name in RESERVED:
            raise DataError(f"column '{name}' cannot be a dimension")
        names.append(name)
        if sep:
            dims.append(Dimension(name, rule))
    return names, dims


def is_tagged_csv(path: str | Path) -> bool:
    """Whether the CSV's header declares a dimension (a column ``NAME:RULE``)."""
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            header = f.readline()
    except OSError:
        return False
    return any(":" in cell for cell in header.split(","))


def load_tagged(csv_path: str | Path,
                dimensions: Sequence[Dimension | str] | None = None) -> Collection:
    """A collection from a tagged library CSV (see the module's description for the format).

    Parameters
    ----------
    csv_path : path
        The CSV file.
    dimensions : sequence of Dimension or str, optional
        More dimensions (``"NAME=RULE"`` strings or :class:`Dimension`); one named like a
        declared one replaces it.

    Returns
    -------
    Collection
        Items ``id`` (the path as written), ``label``, ``group``, ``path`` and every column;
        ``dimensions`` as declared.

    Raises
    ------
    DataError
        Unreadable CSV, no ``path`` column, no dimension, an unknown rule, an empty path, a
        value a rule cannot read, no rows: one line naming the file (and the line).

    Examples
    --------
    >>> import tempfile, os
    >>> d = tempfile.mkdtemp(); p = os.path.join(d, "lib.csv")
    >>> _ = open(p, "w").write("path,genre:shared-tag,bpm:tempo\\na.wav,rock|pop,120\\nb.wav,pop,\\n")
    >>> c = load_tagged(p)
    >>> c.items[["id", "label", "genre", "bpm"]].values.tolist()
    [['a.wav', 'rock|pop', 'rock|pop', '120'], ['b.wav', 'pop', 'pop', '']]
    >>> [(x.name, x.rule) for x in c.dimensions]
    [('genre', 'shared-tag'), ('bpm', 'tempo')]
    """
    csv_path = Path(csv_path)
    table = read_csv_table(csv_path, "tagged library")
    try:
        names, dims = declared_dimensions(table.columns)
        dims = _merged(dims, [d if isinstance(d, Dimension) else Dimension.parse(d)
                              for d in dimensions or ()])
    except MirsimError as exc:  # an unknown rule, a bad NAME=RULE
        raise DataError(f"{csv_path}: {exc}") from None
    table.columns = names
    _check_table(csv_path, table, dims)
    paths = [Path(p) if Path(p).is_absolute() else csv_path.parent / p for p in table["path"]]
    items = table.rename(columns={"path": "library_path"}).copy()
    items.insert(0, "id", table["path"].values)
    if "label" not in items.columns:
        items.insert(1, "label", items[dims[0].columns[0]].values)
    if "group" not in items.columns:
        items["group"] = items["id"]
    items["path"] = [str(p) for p in paths]
    return Collection(csv_path.stem, items, [FileSource(p) for p in paths],
                      f"tagged library {csv_path} (dimensions "
                      f"{', '.join(f'{d.name}:{d.rule}' for d in dims)})", dimensions=dims)


def _merged(declared: list[Dimension], given: list[Dimension]) -> list[Dimension]:
    by_name = {d.name: d for d in declared}
    by_name.update({d.name: d for d in given})
    return list(by_name.values())


def _check_table(csv_path: Path, table: pd.DataFrame, dims: list[Dimension]) -> None:
    repeated = sorted({c for c in table.columns if list(table.columns).count(c) > 1})
    if repeated:
        raise DataError(f"{csv_path}: column {repeated[0]} appears twice")
    if "path" not in table.columns:
        raise DataError(f"{csv_path}: a tagged library needs a column path "
                        f"(found: {', '.join(table.columns)})")
    if not dims:
        raise DataError(f"{csv_path}: no dimension: declare one in the header as NAME:RULE "
                        "(e.g. genre:same-label) or give NAME=RULE")
    for d in dims:
        lacking = [c for c in d.columns if c not in table.columns]
        if lacking:
            raise DataError(f"{csv_path}: dimension '{d.name}' reads column {lacking[0]}, "
                            "which the CSV lacks")
    if table.empty:
        raise DataError(f"{csv_path}: tagged library has no rows")
    require_values(table, csv_path, ("path",))
    for d in dims:
        for line, value in zip(table.index + 2, table[d.columns[0]]):
            try:
                parse_value(value, d)
            except DataError as exc:
                raise DataError(f"{csv_path}: line {line}, column '{d.columns[0]}': "
                                f"{exc}") from None
