"""Dimensions of similarity as data: a dimension names the item column(s) it reads and the rule
that says when two items are alike in it (genre, mood, instrument, tempo, key...).

A data set declares its dimensions (``Collection.dimensions``); a conditional model learns one
sub-space per dimension from :func:`similarity_matrices` (one boolean matrix per dimension).

Rules (:data:`RULES`)
---------------------
* ``same-label``: alike when the values are equal (genre, mood, instrument, era). Strings are
  compared with surrounding white space removed, otherwise as they are (``"Rock"`` is not
  ``"rock"``).
* ``shared-tag``: multi-label values, alike when they share a tag. A value is a string of tags
  separated by ``|`` (``"rock|pop"``) or a list, tuple or set of tags; tags are compared with
  white space stripped and case folded.
* ``tempo``: tempi in BPM, alike when ``|t1 - 2**k * t2| <= tolerance`` for some integer ``k``
  (within ``tolerance`` BPM, default 5, possibly a whole number of tempo octaves apart), in
  either direction: the test is made for ``(t1, t2)`` and for ``(t2, t1)``, so that the
  relation is symmetric (``t1 = 50``, ``t2 = 108`` are alike: ``|50 - 108 / 2| = 4``, although
  ``|108 - 2 * 50| = 8``).
* ``key``: musical keys, alike when equal or parallel (same tonic, other mode), i.e. when their
  tonics are the same pitch class. Spellings: ``"C major"``, ``"A minor"``, ``"F# minor"``,
  ``"Gb major"`` (enharmonic with ``"F# major"``), ``"Bbm"``, ``"Am"``, ``"CM"``, ``"E:min"``,
  ``"c minor"``, ``"F sharp major"``, ``"Eb"`` (a bare tonic is major); ``♯``/``♭`` too.

Missing values
--------------
``None``, NaN, an empty or blank string, or an empty tag set are *missing*: an item whose
value is missing is similar to nothing, itself included (its row and column of the matrix
are all False). Every other item is similar to itself (the diagonal is True).

Several columns
---------------
A dimension may read several columns: ``shared-tag`` takes the union of their tags (missing
only when every column is); ``key`` joins them with a space (``tonic`` and ``mode`` columns:
``"F#"`` + ``"minor"``); ``same-label`` compares the tuples of values; ``tempo`` reads one
column. For the other rules a value is missing when any of its columns is.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from mirsim.errors import DataError, UnknownNameError

__all__ = ["Dimension", "RULES", "Rule", "check_dimensions", "dimension_values", "parse_key",
           "parse_value", "similarity_matrices", "similarity_matrix"]


# -- values -----------------------------------------------------------------------------------
def _is_missing(value: Any) -> bool:
    """None, NaN, a blank string or an empty collection."""
    if value is None:
        return True
    if isinstance(value, str):
        return not value.strip()
    if isinstance(value, (list, tuple, set, frozenset)):
        return not value
    try:
        return bool(pd.isna(value))
    except (TypeError, ValueError):
        return False


def _parse_label(value: Any) -> Any:
    return value.strip() if isinstance(value, str) else value


def _parse_tags(value: Any) -> frozenset[str] | None:
    parts = value.split("|") if isinstance(value, str) else list(value)
    tags = frozenset(str(t).strip().casefold() for t in parts if str(t).strip())
    return tags or None


def _parse_tempo(value: Any) -> float:
    try:
        tempo = float(value)
    except (TypeError, ValueError):
        raise DataError(f"cannot read tempo {value!r} (a number of BPM, e.g. 120)") from None
    if not math.isfinite(tempo) or tempo <= 0:
        raise DataError(f"tempo must be a positive number of BPM, got {value!r}")
    return tempo


_PITCH_CLASSES = {"c": 0, "d": 2, "e": 4, "f": 5, "g": 7, "a": 9, "b": 11}
_KEY = re.compile(r"(?P<tonic>[A-Ga-g])(?P<acc>[#♯b♭]*)(?:[\s-]*(?P<word>(?i:sharp|flat)))?"
                  r"[\s:_-]*(?P<mode>(?i:major|maj|minor|min)|M|m|)")


def parse_key(value: Any) -> tuple[int, str]:
    """The tonic (pitch class 0..11, C = 0) and mode (``"major"`` or ``"minor"``) of a key.

    Raises
    ------
    DataError
        A spelling that is not a key (one line, naming the value).

    Examples
    --------
    >>> parse_key("F# minor"), parse_key("Gb major"), parse_key("Bbm"), parse_key("E:min")
    ((6, 'minor'), (6, 'major'), (10, 'minor'), (4, 'minor'))
    >>> parse_key("C"), parse_key("a minor"), parse_key("F sharp major"), parse_key("Cb")
    ((0, 'major'), (9, 'minor'), (6, 'major'), (11, 'major'))
    >>> parse_key("H dur")
    Traceback (most recent call last):
    ...
    mirsim.errors.DataError: cannot read key 'H dur' (write e.g. 'C major', 'F# minor', 'Bbm')
    """
    match = _KEY.fullmatch(str(value).strip())
    if match is None:
        raise DataError(f"cannot read key {value!r} (write e.g. 'C major', 'F# minor', 'Bbm')")
    shift = sum(+1 if a in "#♯" else -1 for a in match["acc"])
    if match["word"]:
        shift += 1 if match["word"].lower() == "sharp" else -1
    tonic = (_PITCH_CLASSES[match["tonic"].lower()] + shift) % 12
    minor = match["mode"] == "m" or match["mode"].lower().startswith("min")
    return tonic, "minor" if minor else "major"


# -- similarity of parsed values --------------------------------------------------------------
def _equal(values: list[Any], present: np.ndarray) -> np.ndarray:
    codes = np.full(len(values), -1, dtype=np.int64)
    if present.any():
        codes[present] = pd.factorize(pd.Series([values[i] for i in np.flatnonzero(present)],
                                                dtype=object))[0]
    return codes[:, None] == codes[None, :]


def _same_label(values: list[Any], present: np.ndarray) -> np.ndarray:
    return _equal(values, present)


def _shared_tag(values: list[Any], present: np.ndarray) -> np.ndarray:
    vocabulary = sorted({t for i in np.flatnonzero(present) for t in values[i]})
    column = {t: j for j, t in enumerate(vocabulary)}
    onehot = np.zeros((len(values), len(vocabulary)), dtype=np.int32)
    for i in np.flatnonzero(present):
        onehot[i, [column[t] for t in values[i]]] = 1
    return (onehot @ onehot.T) > 0


def _tempo(values: list[Any], present: np.ndarray, tolerance: float = 5.0) -> np.ndarray:
    t = np.array([values[i] if present[i] else 1.0 for i in range(len(values))], dtype=np.float64)
    a, b = t[:, None], t[None, :]
    octaves = np.log2(a / b)
    close = np.zeros(octaves.shape, dtype=bool)
    for k in (np.floor(octaves), np.ceil(octaves)):  # the nearest octaves of b to a
        close |= np.abs(a - np.exp2(k) * b) <= tolerance
    return close | close.T


def _key(values: list[Any], present: np.ndarray) -> np.ndarray:
    return _equal([v[0] if v is not None else None for v in values], present)


@dataclass(frozen=True)
class Rule:
    """How one kind of dimension reads its values and compares them.

    Attributes
    ----------
    name : str
        The rule's name in :data:`RULES` (and in a tagged CSV's header).
    summary : str
        One line: when two items are alike.
    parse : callable
        A value that is not missing -> its parsed form (raises ``DataError`` on a bad value).
    similar : callable
        ``similar(parsed, present, **options)``: the ``(n, n)`` boolean matrix; ``present`` is
        the mask of the values that are not missing (the others are ``None`` in ``parsed``).
    combine : callable
        The values of one item's columns (none missing) -> one value.
    options : mapping
        The rule's options and their defaults (``tempo``: ``tolerance``).
    """

    name: str
    summary: str
    parse: Callable[[Any], Any]
    similar: Callable[..., np.ndarray]
    combine: Callable[[tuple], Any]
    options: Mapping[str, float] = field(default_factory=dict)


def _one_column(parts: tuple) -> Any:
    if len(parts) != 1:
        raise DataError("a tempo dimension reads exactly one column")
    return parts[0]


#: The similarity rules by name.
RULES: Mapping[str, Rule] = {
    "same-label": Rule("same-label", "equal values (genre, mood, instrument, era)",
                       _parse_label, _same_label, lambda parts: tuple(parts)),
    "shared-tag": Rule("shared-tag", "tag sets ('rock|pop') that share a tag",
                       _parse_tags, _shared_tag, lambda parts: "|".join(map(str, parts))),
    "tempo": Rule("tempo", "tempi within a tolerance (BPM), up to whole tempo octaves",
                  _parse_tempo, _tempo, _one_column, {"tolerance": 5.0}),
    "key": Rule("key", "equal or parallel keys (same tonic)", parse_key, _key,
                lambda parts: " ".join(str(p).strip() for p in parts)),
}


# -- dimensions -------------------------------------------------------------------------------
@dataclass(frozen=True)
class Dimension:
    """A dimension of similarity: its name, the item column(s) it reads and its rule.

    Parameters
    ----------
    name : str
        The dimension's name (e.g. ``"genre"``).
    rule : str
        A name of :data:`RULES`: ``same-label``, ``shared-tag``, ``tempo`` or ``key``.
    columns : str or tuple of str, optional
        Item columns it reads (default: the column named ``name``).
    options : mapping, optional
        The rule's options (``tempo``: ``tolerance`` in BPM, default 5).

    Raises
    ------
    MirsimError
        An unknown rule or option, or an empty name.

    Examples
    --------
    >>> Dimension("bpm", "tempo", options={"tolerance": 3}).columns
    ('bpm',)
    >>> Dimension.parse("genre=shared-tag")
    Dimension(name='genre', rule='shared-tag', columns=('genre',), options={})
    """

    name: str
    rule: str = "same-label"
    columns: tuple[str, ...] | str = ()
    options: Mapping[str, float] = field(default_factory=dict, hash=False)

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name.strip():
            raise DataError("a dimension needs a name")
        if self.rule not in RULES:
            raise UnknownNameError("similarity rule", str(self.rule), RULES)
        columns = (self.columns,) if isinstance(self.columns, str) else tuple(self.columns)
        object.__setattr__(self, "columns", columns or (self.name,))
        unknown = sorted(set(self.options) - set(RULES[self.rule].options))
        if unknown:
            raise UnknownNameError(f"option of rule {self.rule}", unknown[0],
                                   RULES[self.rule].options)
        object.__setattr__(self, "options", dict(self.options))

    @classmethod
    def parse(cls, text: str) -> Dimension:
        """A dimension from ``NAME=RULE`` (it reads the column ``NAME``), as on a command line.

        Raises
        ------
        DataError
            Not of the form ``NAME=RULE``.
        """
        name, sep, rule = str(text).partition("=")
        if not sep or not name.strip() or not rule.strip():
            raise DataError(f"a dimension is NAME=RULE (e.g. genre=same-label), got {text!r}")
        return cls(name.strip(), rule.strip())


def check_dimensions(columns: Iterable[str], dimensions: Sequence[Dimension]) -> None:
    """Raise ``DataError`` unless the names are unique and every column read is among
    ``columns``.

    Examples
    --------
    >>> check_dimensions(["genre"], [Dimension("tempo", "tempo")])
    Traceback (most recent call last):
    ...
    mirsim.errors.DataError: dimension 'tempo' reads column(s) tempo, which the items lack
    """
    names = [d.name for d in dimensions]
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise DataError(f"dimension names must be unique: {', '.join(repeated)} repeated")
    have = set(columns)
    for d in dimensions:
        lacking = [c for c in d.columns if c not in have]
        if lacking:
            raise DataError(f"dimension '{d.name}' reads column(s) {', '.join(lacking)}, "
                            "which the items lack")


def _as_dimension(dimension: Dimension | str) -> Dimension:
    return dimension if isinstance(dimension, Dimension) else Dimension("values", dimension)


def parse_value(value: Any, dimension: Dimension | str) -> Any:
    """A value as its dimension's rule reads it (``None`` when missing).

    Raises
    ------
    DataError
        A value the rule cannot read (a tempo that is not a positive number, an unknown key).

    Examples
    --------
    >>> parse_value(" rock|Pop ", "shared-tag") == frozenset({"rock", "pop"})
    True
    >>> parse_value(float("nan"), "tempo") is None
    True
    """
    return None if _is_missing(value) else RULES[_as_dimension(dimension).rule].parse(value)


def dimension_values(items: pd.DataFrame, dimension: Dimension) -> list[Any]:
    """One value per item: the dimension's column, or its columns combined (see the module's
    description), missing values as ``None``.

    Examples
    --------
    >>> items = pd.DataFrame({"tonic": ["C", "F#", None], "mode": ["minor", "major", "minor"]})
    >>> dimension_values(items, Dimension("key", "key", columns=("tonic", "mode")))
    ['C minor', 'F# major', None]
    """
    check_dimensions(items.columns, [dimension])
    rule = RULES[dimension.rule]
    if len(dimension.columns) == 1:
        rule.combine(dimension.columns)  # a rule that reads one column says so here too
        return [None if _is_missing(v) else v for v in items[dimension.columns[0]].tolist()]
    rows = items[list(dimension.columns)].itertuples(index=False, name=None)
    if dimension.rule == "shared-tag":
        return [rule.combine(tuple(p for p in row if not _is_missing(p))) or None for row in rows]
    return [None if any(_is_missing(p) for p in row) else rule.combine(row) for row in rows]


def similarity_matrix(values: Sequence[Any] | pd.Series | np.ndarray,
                      dimension: Dimension | str) -> np.ndarray:
    """Which pairs of items are alike in one dimension.

    Parameters
    ----------
    values : sequence
        One value per item (see the module's description for what each rule reads); missing
        values (``None``, NaN, blank) are similar to nothing, themselves included.
    dimension : Dimension or str
        The dimension, or just the name of its rule.

    Returns
    -------
    numpy.ndarray
        ``(n, n)`` bool, symmetric; ``[i, j]`` is True when items ``i`` and ``j`` are alike.
        The diagonal is True except for items with a missing value.

    Raises
    ------
    DataError
        A value that the rule cannot read (the message names it).

    Examples
    --------
    >>> similarity_matrix(["rock", "jazz", "rock", None], "same-label").astype(int)
    array([[1, 0, 1, 0],
           [0, 1, 0, 0],
           [1, 0, 1, 0],
           [0, 0, 0, 0]])
    >>> similarity_matrix([120, 62, 240.5, 90], "tempo").astype(int)
    array([[1, 1, 1, 0],
           [1, 1, 1, 0],
           [1, 1, 1, 0],
           [0, 0, 0, 1]])
    >>> similarity_matrix(["C major", "c minor", "G major"], "key").astype(int)
    array([[1, 1, 0],
           [1, 1, 0],
           [0, 0, 1]])
    """
    dimension = _as_dimension(dimension)
    rule = RULES[dimension.rule]
    values = list(values.tolist() if isinstance(values, (pd.Series, np.ndarray)) else values)
    parsed = [parse_value(v, dimension) for v in values]
    present = np.array([p is not None for p in parsed], dtype=bool)
    similar = np.asarray(rule.similar(parsed, present, **{**rule.options, **dimension.options}),
                         dtype=bool)
    return similar & present[:, None] & present[None, :]


def similarity_matrices(items: pd.DataFrame,
                        dimensions: Sequence[Dimension]) -> dict[str, np.ndarray]:
    """The similarity matrix of every dimension over a table of items.

    Parameters
    ----------
    items : pandas.DataFrame
        One row per item (e.g. ``collection.items``), with every column the dimensions read.
    dimensions : sequence of Dimension
        E.g. ``collection.dimensions``; names must be unique.

    Returns
    -------
    dict of str to numpy.ndarray
        ``{dimension.name: (n, n) bool matrix}`` in the order of ``dimensions``, each as
        :func:`similarity_matrix` gives it (row ``i`` is ``items.iloc[i]``).

    Raises
    ------
    DataError
        A dimension reads a column the items lack, two dimensions share a name, or a value
        cannot be read.

    Examples
    --------
    >>> items = pd.DataFrame({"genre": ["rock", "rock|pop", "jazz"], "bpm": [100, 52, 70]})
    >>> S = similarity_matrices(items, [Dimension("genre", "shared-tag"),
    ...                                 Dimension("tempo", "tempo", columns="bpm")])
    >>> {name: m.astype(int).tolist() for name, m in S.items()}
    {'genre': [[1, 1, 0], [1, 1, 0], [0, 0, 1]], 'tempo': [[1, 1, 0], [1, 1, 0], [0, 0, 1]]}
    """
    check_dimensions(items.columns, dimensions)
    return {d.name: _named_error(d, lambda d=d: similarity_matrix(dimension_values(items, d), d))
            for d in dimensions}


def _named_error(dimension: Dimension, compute: Callable[[], np.ndarray]) -> np.ndarray:
    try:
        return compute()
    except DataError as exc:
        raise DataError(f"dimension '{dimension.name}': {exc}") from None
