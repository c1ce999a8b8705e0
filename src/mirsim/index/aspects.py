"""Aspects: searching an index by a weighted mix of the sub-spaces of a conditional model.

A conditional similarity network (:class:`mirsim.models.csn.CSNModel`) splits its embedding
into one named sub-space per dimension of similarity (genre, tempo, key...), each compared by
the cosine distance. An index built with such a model keeps, besides the whole embedding,
every sound's sub-space embeddings: its **aspects**. A query then says how much each aspect
counts (``tempo=1,key=0,genre=0.5``) and the sounds are ranked by

.. math::  d_w(q, x) = \\sum_k w_k \\, (1 - q_k \\cdot x_k),

the weighted sum of the sub-space cosine distances (``q_k``, ``x_k``: the L2-normalised
sub-space embeddings of aspect ``k``; weights ``w_k >= 0``, at least one > 0).

How it is stored
----------------
``aspects.npy`` holds the concatenation ``[x_1, ..., x_K]`` of every sound's normalised
sub-spaces (float32, one row per manifest row). ``index.json`` says, under ``"aspects"``,
which columns of the whole embedding each aspect reads and with what mask
(:class:`AspectSpace`), so that the stored rows can be recomputed from ``embeddings.npy``
(what ``mirsim index verify`` does) and a new sound's aspects follow from its embedding.
Above the approximate-search threshold the index also holds ``aspects.faiss`` (see below).
An index with aspects is written as format version 2; one without as version 1, as before,
so that an older mirsim still reads it.

Why one FAISS index serves every weighting
------------------------------------------
With unit vectors ``q_k`` and ``x_k`` and ``W = sum_k w_k``,

.. math::  d_w(q, x) = W - \\sum_k w_k \\, q_k \\cdot x_k
                     = W - \\langle \\sqrt{w} \\odot q, \\sqrt{w} \\odot x \\rangle
                     = W - \\langle [w_1 q_1, \\ldots, w_K q_K], [x_1, \\ldots, x_K] \\rangle.

So the ranking by ``d_w`` *is* the ranking by inner product between the concatenation of
``sqrt(w_k) q_k`` and that of ``sqrt(w_k) x_k`` — exactly, not approximately — and, moving
both square roots to the query, between ``[w_k q_k]`` and the *unweighted* stored rows
``[x_k]``. The weights therefore never touch the library: one inner-product index of the
stored rows answers every weighting, the query carrying the weights (:func:`weighted_query`).
Every stored row has the same norm (``sqrt(K)``), so this inner-product search is also a
Euclidean one, which is what HNSW graphs navigate well.

* **exact** (up to ``approximate_threshold`` sounds, 100,000 by default): a brute-force scan
  of ``aspects.npy`` in blocks (:func:`exact_aspect_search`);
* **approximate** (above it): candidates from the HNSW index of the stored rows, searched with
  the weighted query (:func:`weighted_query`), then re-ranked exactly by
  :func:`aspect_distances` (:func:`approximate_aspect_search`). The graph is built on the
  unweighted rows; a query that weighs one aspect alone asks it for neighbours in a space
  its edges were not built for, so more candidates than ``k`` are taken
  (``candidates_per_result``), and a query weighing one aspect (nearly) alone is answered by
  the exact scan (:func:`effective_aspects`). ``benchmarks/bench_aspects.py`` measures the
  recall.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from mirsim.evaluation.metrics import prepare_embeddings
from mirsim.index.errors import SoundIndexError

#: File of the stored aspects (one row per manifest row).
ASPECTS_FILE = "aspects.npy"
#: The approximate index of the stored aspects (above the approximate threshold only).
ASPECTS_FAISS_FILE = "aspects.faiss"
#: Rows scanned at a time by the exact search.
_BLOCK = 65536
#: Approximate search: candidates taken from the FAISS index per result asked for...
CANDIDATES_PER_RESULT = 10
#: ... and at least this many.
MIN_CANDIDATES = 100
#: Approximate search only for weights spread over at least this many aspects
#: (:func:`effective_aspects`); a query that weighs one aspect (nearly) alone is scanned.
MIN_EFFECTIVE_ASPECTS = 1.5


def effective_aspects(weights: np.ndarray) -> float:
    """``(sum w)^2 / sum w^2``: 1 for one aspect alone, K for K equal weights.

    The HNSW graph of the stored rows links sounds near in *all* aspects; sounds near in one
    aspect alone are strewn across it, so a search that weighs one aspect alone finds few of
    them (recall@10 0.22 at 100,000 sounds, ``benchmarks/bench_aspects.py``). Such queries
    are answered by the exact scan instead.

    Examples
    --------
    >>> effective_aspects(np.array([1.0, 0.0, 0.0])), effective_aspects(np.ones(3))
    (1.0, 3.0)
    """
    w = np.asarray(weights, dtype=np.float64)
    return float(w.sum() ** 2 / (w ** 2).sum())


@dataclass(frozen=True)
class AspectSpace:
    """Which columns of the whole embedding make each aspect, and where each aspect lies in
    the stored rows.

    Attributes
    ----------
    names : tuple of str
        The aspects (the model's dimensions), in order.
    columns : tuple of (int, int)
        For each aspect, the ``[start, stop)`` columns of the whole embedding it reads.
    masks : tuple of (numpy.ndarray or None)
        For each aspect, the weight of each of those columns (a learned mask), or ``None``
        (a fixed mask: every column counts once).

    Examples
    --------
    >>> space = AspectSpace(("tempo", "key"), ((0, 2), (2, 4)), (None, None))
    >>> space.slices, space.width
    ({'tempo': slice(0, 2, None), 'key': slice(2, 4, None)}, 4)
    >>> space.embed(np.array([[3.0, 4.0, 0.0, 2.0]])).astype(float).round(3).tolist()
    [[0.6, 0.8, 0.0, 1.0]]
    >>> AspectSpace.from_config(space.to_config()) == space
    True
    """

    names: tuple[str, ...]
    columns: tuple[tuple[int, int], ...]
    masks: tuple[np.ndarray | None, ...]

    def __eq__(self, other: object) -> bool:
        return (isinstance(other, AspectSpace) and self.to_config() == other.to_config())

    @property
    def widths(self) -> tuple[int, ...]:
        """Columns of each aspect in the stored rows."""
        return tuple(stop - start for start, stop in self.columns)

    @property
    def width(self) -> int:
        """Columns of a stored row (all aspects side by side)."""
        return sum(self.widths)

    @property
    def slices(self) -> dict[str, slice]:
        """Columns of each aspect in the stored rows."""
        ends = np.cumsum((0, *self.widths))
        return {n: slice(int(a), int(b)) for n, a, b in zip(self.names, ends[:-1], ends[1:])}

    # -- construction -----------------------------------------------------------------------
    @classmethod
    def from_model(cls, model: Any) -> AspectSpace | None:
        """The aspects of a fitted conditional model (``dimensions_``, ``subspaces_`` and
        ``masks_``, as :class:`~mirsim.models.csn.CSNModel` has them), or ``None`` for a
        model without sub-spaces."""
        dimensions = getattr(model, "dimensions_", None)
        if not dimensions or not hasattr(model, "subspaces_"):
            return None
        subspaces, masks = model.subspaces_, model.masks_
        columns, kept = [], []
        for name in dimensions:
            s = subspaces[name]
            mask = np.asarray(masks[name], dtype=np.float32)[s]
            columns.append((int(s.start), int(s.stop)))
            kept.append(None if np.all(mask == 1.0) else mask)
        return cls(tuple(dimensions), tuple(columns), tuple(kept))

    def to_config(self) -> dict[str, Any]:
        """What ``index.json`` records under ``"aspects"`` (with the search settings)."""
        return {"names": list(self.names), "width": self.width,
                "spaces": [{"name": n, "columns": list(c),
                            "mask": None if m is None else [float(v) for v in m]}
                           for n, c, m in zip(self.names, self.columns, self.masks)]}

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> AspectSpace:
        """The inverse of :meth:`to_config`."""
        try:
            spaces = config["spaces"]
            return cls(tuple(str(s["name"]) for s in spaces),
                       tuple((int(s["columns"][0]), int(s["columns"][1])) for s in spaces),
                       tuple(None if s.get("mask") is None
                             else np.asarray(s["mask"], dtype=np.float32) for s in spaces))
        except (KeyError, TypeError, IndexError, ValueError) as exc:
            raise SoundIndexError(f"index.json: unreadable 'aspects' entry ({exc})") from None

    # -- embedding --------------------------------------------------------------------------
    def embed(self, embeddings: np.ndarray) -> np.ndarray:
        """Stored rows of whole embeddings: each aspect's columns (times its mask), L2-
        normalised, side by side; ``(n, width)`` float32. The same as the model's
        ``transform(X, dimension=name)``, since normalising the whole embedding first only
        scales every sub-space by a positive number."""
        E = np.atleast_2d(np.asarray(embeddings, dtype=np.float32))
        out = np.empty((len(E), self.width), dtype=np.float32)
        for (start, stop), mask, s in zip(self.columns, self.masks, self.slices.values()):
            sub = E[:, start:stop] if mask is None else E[:, start:stop] * mask
            out[:, s] = prepare_embeddings(sub, "cosine")
        return out


def parse_aspect_weights(text: str, names: Sequence[str]) -> dict[str, float]:
    """Weights written as ``name=weight,name=weight`` (aspects not named weigh 0).

    Raises
    ------
    SoundIndexError
        An unknown aspect, a weight that is not a finite number >= 0, an aspect named twice,
        or no weight above 0: one line listing the aspects.

    Examples
    --------
    >>> parse_aspect_weights("tempo=1, genre=0.5", ["tempo", "key", "genre"])
    {'tempo': 1.0, 'key': 0.0, 'genre': 0.5}
    >>> parse_aspect_weights("mood=1", ["tempo", "key"])
    Traceback (most recent call last):
    ...
    mirsim.index.aspects.AspectWeightsError: unknown aspect 'mood' (aspects: tempo, key)
    """
    weights: dict[str, float] = {}
    for entry in (e.strip() for e in str(text).split(",")):
        name, sep, value = entry.partition("=")
        name = name.strip()
        if not sep or not name:
            raise _weights_error(f"expected NAME=WEIGHT, got {entry!r}", names,
                                 public="expected NAME=WEIGHT pairs separated by commas")
        if name in weights:
            raise _weights_error(f"aspect '{name}' given twice", names,
                                 public="an aspect given twice")
        try:
            weights[name] = float(value)
        except ValueError:
            raise _weights_error(f"the weight of '{name}' must be a number, got "
                                 f"{value.strip()!r}", names,
                                 public="a weight that is not a number") from None
    return dict(zip(names, check_aspect_weights(weights, names).tolist()))


def check_aspect_weights(weights: Mapping[str, float], names: Sequence[str]) -> np.ndarray:
    """The weights as a vector in the order of ``names`` (missing aspects weigh 0), checked.

    Examples
    --------
    >>> check_aspect_weights({"key": 2}, ["tempo", "key"]).tolist()
    [0.0, 2.0]
    >>> check_aspect_weights({"key": 0}, ["tempo", "key"])
    Traceback (most recent call last):
    ...
    mirsim.index.aspects.AspectWeightsError: at least one aspect weight must be above 0 (aspects: tempo, key)
    """
    unknown = [n for n in weights if n not in names]
    if unknown:
        raise _weights_error(f"unknown aspect '{unknown[0]}'", names, with_colon=False,
                             public="an unknown aspect")
    w = np.array([float(weights.get(n, 0.0)) for n in names], dtype=np.float64)
    bad = [n for n, v in zip(names, w) if not math.isfinite(v) or v < 0]
    if bad:
        raise _weights_error(f"the weight of '{bad[0]}' must be a finite number >= 0, got "
                             f"{weights[bad[0]]}", names,
                             public=f"the weight of '{bad[0]}' must be a finite number >= 0")
    if not (w > 0).any():
        raise _weights_error("at least one aspect weight must be above 0", names,
                             with_colon=False)
    return w


def aspect_distances(query: np.ndarray, rows: np.ndarray, space: AspectSpace,
                     weights: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Weighted aspect distances of one query to stored rows.

    Parameters
    ----------
    query : numpy.ndarray
        ``(width,)`` stored row of the query (:meth:`AspectSpace.embed`).
    rows : numpy.ndarray
        ``(n, width)`` stored rows.
    space : AspectSpace
    weights : numpy.ndarray
        ``(K,)`` weights, in the order of ``space.names`` (:func:`check_aspect_weights`).

    Returns
    -------
    total : numpy.ndarray
        ``(n,)`` ``sum_k w_k (1 - q_k . x_k)``.
    per_aspect : numpy.ndarray
        ``(n, K)`` the cosine distances ``1 - q_k . x_k`` of each aspect (unweighted).

    Examples
    --------
    Two aspects of two columns; the item is the query's twin in the first aspect and
    orthogonal to it in the second:

    >>> space = AspectSpace(("a", "b"), ((0, 2), (2, 4)), (None, None))
    >>> q = np.array([1.0, 0.0, 1.0, 0.0]); x = np.array([[1.0, 0.0, 0.0, 1.0]])
    >>> total, per = aspect_distances(q, x, space, np.array([1.0, 0.5]))
    >>> per.tolist(), total.tolist()  # 1 * 0 + 0.5 * 1
    ([[0.0, 1.0]], [0.5])
    """
    q = np.asarray(query, dtype=np.float64).reshape(-1)
    X = np.atleast_2d(np.asarray(rows, dtype=np.float64))
    per = np.stack([1.0 - X[:, s] @ q[s] for s in space.slices.values()], axis=1)
    return per @ np.asarray(weights, dtype=np.float64), per


def weighted_query(query: np.ndarray, space: AspectSpace, weights: np.ndarray) -> np.ndarray:
    """``[w_1 q_1, ..., w_K q_K]``: its inner product with a stored row ``x`` is
    ``W - d_w(q, x)`` (see the module's description), so the nearest rows by ``d_w`` are the
    rows of largest inner product with it.

    Examples
    --------
    >>> space = AspectSpace(("a", "b"), ((0, 2), (2, 4)), (None, None))
    >>> q = np.array([1.0, 0.0, 1.0, 0.0]); x = np.array([[1.0, 0.0, 0.0, 1.0]])
    >>> w = np.array([1.0, 0.5])
    >>> wq = weighted_query(q, space, w)
    >>> float(w.sum() - x[0] @ wq) == float(aspect_distances(q, x, space, w)[0][0])
    True
    """
    q = np.asarray(query, dtype=np.float32).reshape(-1).copy()
    for s, w in zip(space.slices.values(), weights):
        q[s] *= np.float32(w)
    return q


def exact_aspect_search(query: np.ndarray, rows: np.ndarray, space: AspectSpace,
                        weights: np.ndarray, k: int, exclude: set[int] = frozenset()
                        ) -> np.ndarray:
    """Row ids of the ``k`` stored rows nearest to ``query`` by :func:`aspect_distances`,
    nearest first, never one of ``exclude``: a scan of every row (in blocks, so a
    memory-mapped ``rows`` is read once, never held whole).

    Examples
    --------
    >>> space = AspectSpace(("a", "b"), ((0, 1), (1, 2)), (None, None))
    >>> rows = np.array([[1, 1], [1, -1], [-1, 1], [-1, -1]], dtype=np.float32)
    >>> exact_aspect_search(rows[0], rows, space, np.array([1.0, 0.0]), 2, {0}).tolist()
    [1, 2]
    """
    wq = weighted_query(query, space, weights)
    want = min(k + len(exclude) + 1, len(rows))  # one spare: float32 near-ties at the edge
    best = []
    for start in range(0, len(rows), _BLOCK):
        scores = np.asarray(rows[start:start + _BLOCK], dtype=np.float32) @ wq
        top = np.argpartition(-scores, want - 1)[:want] if len(scores) > want else (
            np.arange(len(scores)))
        best.append(top + start)
    return _reranked(query, rows, space, weights, np.concatenate(best), k, exclude)


def approximate_aspect_search(query: np.ndarray, rows: np.ndarray, space: AspectSpace,
                              weights: np.ndarray, k: int, faiss_index,
                              exclude: set[int] = frozenset(),
                              candidates_per_result: int = CANDIDATES_PER_RESULT
                              ) -> np.ndarray:
    """Like :func:`exact_aspect_search`, from the candidates an inner-product FAISS index of
    the stored rows returns for the weighted query, re-ranked exactly."""
    want = k + len(exclude)
    n_candidates = min(len(rows), max(MIN_CANDIDATES, candidates_per_result * want))
    wq = weighted_query(query, space, weights)[None, :]
    _, found = faiss_index.search(np.ascontiguousarray(wq, dtype=np.float32), n_candidates)
    return _reranked(query, rows, space, weights, found[0][found[0] >= 0], k, exclude)


def _reranked(query: np.ndarray, rows: np.ndarray, space: AspectSpace, weights: np.ndarray,
              candidates: np.ndarray, k: int, exclude: set[int]) -> np.ndarray:
    """The ``k`` candidates nearest by :func:`aspect_distances` (ties by row), none of
    ``exclude``: exact and approximate search order their candidates by one computation."""
    candidates = np.unique(candidates)
    total, _ = aspect_distances(query, np.asarray(rows[candidates]), space, weights)
    order = candidates[np.lexsort((candidates, total))]
    return np.array([r for r in order if r not in exclude][:k], dtype=np.int64)


class AspectWeightsError(SoundIndexError):
    """Aspect weights that cannot be used. ``public`` says what is wrong without repeating
    what was sent (the web API answers with it; see :mod:`mirsim.server`)."""

    def __init__(self, message: str, public: str):
        super().__init__(message)
        self.public = public


def _weights_error(what: str, names: Sequence[str], with_colon: bool = True,
                   public: str | None = None) -> AspectWeightsError:
    listed = f"(aspects: {', '.join(names)})"
    message = f"{what} {listed}" if not with_colon else f"bad aspect weights: {what} {listed}"
    return AspectWeightsError(message, f"bad aspect weights: {public or what} {listed}")
