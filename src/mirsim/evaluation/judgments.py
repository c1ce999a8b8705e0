"""Agreement of a metric with individual listeners: the triplets of their groupings, scored.

All functions are pure: they take item indices and arrays and return arrays or a
:class:`ListenerAgreement`. Files of judgments are read by :mod:`mirsim.datasets.listeners`.

Rules shared by every function
------------------------------
* A listener's grouping is an integer array ``(n,)``: items with equal codes were put in one
  group; a negative code means the listener did not group the item (it is in none of their
  triplets). Groupings of several listeners are an array ``(n_listeners, n)``.
* The triplets of a grouping are every ``(a, p, n)`` with ``a`` and ``p`` in one group
  (``a != p``) and ``n`` in another: the listener put ``p`` nearer to ``a`` than ``n``.
  Triplets are integer arrays ``(m, 3)`` of item indices; the judgments of several listeners
  are a sequence of such arrays, one per listener.
* A metric **agrees** with a triplet when ``d(a, p) < d(a, n)``; a tie counts one half.
  Distances are Euclidean or cosine (rows L2-normalised first, which ranks alike), computed in
  float64 by :func:`scipy.spatial.distance.cdist` over the items the triplets name; "tie"
  means equal computed values.
* A listener's **triplet agreement** is the share of their triplets the metric agrees with
  (weighted, with weights); with ``anchors_held_out`` only triplets whose anchor is among them
  count (under a protocol: the test items of the fit that produced the distances).
  :class:`ListenerAgreement` keeps, per listener, the sum of outcomes and the number (total
  weight) of triplets scored, so that the folds of a protocol add up: a listener's agreement
  over a run is their hits over all folds divided by their triplets over all folds.
  It is reported as mean ± standard deviation over listeners (the sample standard deviation,
  ``ddof=1``, as over folds in :mod:`mirsim.evaluation.protocols`; 0 with one listener).
* **High-agreement** triplets are those at least ``threshold`` (90 %) of the listeners give.
  They are scored per listener, on the listener's own triplets among them: the human
  reference (below) predicts one listener at a time, so a score to set beside it has to be
  measured on each listener's own triplets too. As each high-agreement triplet belongs to at
  least 90 % of the listeners, the mean over listeners is close to the accuracy on the pooled
  set of high-agreement triplets.
* The **human reference** predicts each listener from the others: ``d(i, j) = 1 −`` the share,
  among the other listeners who grouped both ``i`` and ``j``, of those who put them in one
  group (0 when no other listener grouped both); the listener's triplets are scored with it.
* Triplets are enumerated with numpy (boolean masks over blocks of anchors, no Python loop over
  triplets): 78 sounds in 5 to 19 groups give about 17,000 triplets per listener.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

from mirsim.evaluation.metrics import _check_embeddings, _selection

__all__ = ["HIGH_AGREEMENT", "ListenerAgreement", "ListenerJudgments", "coassociation",
           "distance_outcomes", "grouping_triplets", "high_agreement_triplets",
           "human_reference", "sum_agreements", "triplet_agreement", "triplet_agreement_high",
           "triplet_outcomes", "triplet_shares"]

#: Share of the listeners who must give a triplet for it to be a high-agreement triplet.
HIGH_AGREEMENT = 0.9
#: Bytes of boolean mask built at once while triplets are enumerated.
_MASK_BUDGET = 64_000_000
#: Most possible triplets (n ** 3) for which listeners are counted in a dense array.
_DENSE_TRIPLETS = 16_000_000


# -- input checking ---------------------------------------------------------------------------
def _check_groups(groups: ArrayLike, ndim: int) -> np.ndarray:
    g = np.asarray(groups)
    if g.ndim != ndim or (g.size and not np.issubdtype(g.dtype, np.integer)):
        shape = "(n,)" if ndim == 1 else "(n_listeners, n)"
        raise ValueError(f"groupings must be an integer array of shape {shape}, got shape "
                         f"{g.shape} {g.dtype}")
    return g.astype(np.int64)


def _check_triplets(triplets: ArrayLike, n: int | None = None) -> np.ndarray:
    t = np.asarray(triplets)
    if t.size == 0:
        return np.zeros((0, 3), dtype=np.int64)
    if t.ndim != 2 or t.shape[1] != 3 or not np.issubdtype(t.dtype, np.integer):
        raise ValueError(f"triplets must be an integer array of shape (m, 3), got {t.shape} "
                         f"{t.dtype}")
    if t.min() < 0 or (n is not None and t.max() >= n):
        raise ValueError(f"triplet indices must lie in [0, {n})")
    return t.astype(np.int64)


def _check_weights(weights: ArrayLike, m: int) -> np.ndarray:
    w = np.asarray(weights, dtype=np.float64)
    if w.shape != (m,) or np.any(w < 0) or not np.all(np.isfinite(w)):
        raise ValueError(f"weights must be {m} finite non-negative numbers")
    return w


# -- triplets of groupings --------------------------------------------------------------------
def grouping_triplets(groups: ArrayLike) -> np.ndarray:
    """Every triplet of one listener's grouping: ``(a, p, n)`` with ``a`` and ``p`` in one
    group, ``a != p``, and ``n`` in another; ordered by anchor, then positive, then negative.

    Parameters
    ----------
    groups : int array of shape (n,)
        Group code per item; negative: not grouped.

    Returns
    -------
    numpy.ndarray
        ``(m, 3)`` int64 item indices.

    Examples
    --------
    >>> grouping_triplets([0, 0, 1, -1]).tolist()
    [[0, 1, 2], [1, 0, 2]]
    >>> len(grouping_triplets([0, 0, 0, 1, 1]))  # 3*2*2 + 2*1*3
    18
    """
    g = _check_groups(groups, 1)
    items = np.flatnonzero(g >= 0)
    codes = g[items]
    m = len(items)
    same = codes[:, None] == codes[None, :]
    positive = same & ~np.eye(m, dtype=bool)
    negative = ~same
    step = max(1, _MASK_BUDGET // max(m * m, 1))
    blocks = [np.zeros((0, 3), dtype=np.int64)]
    for start in range(0, m, step):
        mask = positive[start:start + step, :, None] & negative[start:start + step, None, :]
        a, p, n = np.nonzero(mask)
        blocks.append(np.stack([a + start, p, n], axis=1))
    return items[np.concatenate(blocks)]


def _keys(triplets: np.ndarray, n: int) -> np.ndarray:
    """One integer per triplet (``(a * n + p) * n + q``), equal for equal triplets."""
    return (triplets[:, 0] * n + triplets[:, 1]) * n + triplets[:, 2]


def _n_items(listener_triplets: Sequence[np.ndarray]) -> int:
    return 1 + max((int(t.max()) for t in listener_triplets if len(t)), default=0)


def _listener_counts(lists: Sequence[np.ndarray], n: int) -> tuple[np.ndarray, np.ndarray]:
    """Distinct triplet keys given by any listener, and how many listeners give each.

    Counted in a dense array over every possible triplet when that is small (no sorting:
    fast), else with :func:`numpy.unique`.
    """
    if n ** 3 <= _DENSE_TRIPLETS:
        counts = np.zeros(n ** 3, dtype=np.int32)
        for t in lists:
            given = np.zeros(n ** 3, dtype=bool)
            given[_keys(t, n)] = True  # a listener who lists a triplet twice counts once
            counts += given
        keys = np.flatnonzero(counts)
        return keys, counts[keys]
    keys = np.concatenate([np.zeros(0, np.int64), *(np.unique(_keys(t, n)) for t in lists)])
    return np.unique(keys, return_counts=True)


def triplet_shares(listener_triplets: Sequence[ArrayLike]) -> tuple[np.ndarray, np.ndarray]:
    """Every triplet that at least one listener gives, and the share of the listeners who
    give it (a listener who lists a triplet twice counts once).

    Parameters
    ----------
    listener_triplets : sequence of int arrays (m_l, 3)
        The triplets of each listener.

    Returns
    -------
    triplets : numpy.ndarray
        ``(u, 3)`` distinct triplets, sorted.
    shares : numpy.ndarray
        ``(u,)`` share of the listeners who give each.

    Examples
    --------
    >>> t, s = triplet_shares([grouping_triplets([0, 0, 1]), grouping_triplets([0, 1, 1])])
    >>> t.tolist(), s.tolist()
    ([[0, 1, 2], [1, 0, 2], [1, 2, 0], [2, 1, 0]], [0.5, 0.5, 0.5, 0.5])
    """
    lists = [_check_triplets(t) for t in listener_triplets]
    if not lists:
        return np.zeros((0, 3), dtype=np.int64), np.zeros(0)
    n = _n_items(lists)
    keys, counts = _listener_counts(lists, n)
    triplets = np.stack([keys // (n * n), keys // n % n, keys % n], axis=1)
    return triplets.astype(np.int64), counts / len(lists)


def high_agreement_triplets(listener_triplets: Sequence[ArrayLike],
                            threshold: float = HIGH_AGREEMENT) -> list[np.ndarray]:
    """Each listener's triplets that at least ``threshold`` of all the listeners give.

    Examples
    --------
    >>> per = [grouping_triplets(g) for g in ([0, 0, 1], [0, 0, 1], [0, 1, 1])]
    >>> [t.tolist() for t in high_agreement_triplets(per, 0.6)]
    [[[0, 1, 2], [1, 0, 2]], [[0, 1, 2], [1, 0, 2]], []]
    """
    if not 0 < threshold <= 1:
        raise ValueError(f"threshold must lie in (0, 1], got {threshold}")
    lists = [_check_triplets(t) for t in listener_triplets]
    n = _n_items(lists)
    keys, counts = _listener_counts(lists, n)
    # compare counts, not shares: 0.9 of 10 listeners is 9, whatever the rounding of 9 / 10
    needed = math.ceil(threshold * len(lists) - 1e-9)
    # every triplet of a listener is among ``keys`` (sorted): look its count up
    return [t[counts[np.searchsorted(keys, _keys(t, n))] >= needed] for t in lists]


# -- scoring ----------------------------------------------------------------------------------
def distance_outcomes(distances: ArrayLike, triplets: ArrayLike) -> np.ndarray:
    """Per triplet: 1 if ``d(a, p) < d(a, n)``, 0.5 if equal, 0 otherwise.

    Parameters
    ----------
    distances : array of shape (n, n)
        Distances between items (only ``distances[a, p]`` and ``distances[a, n]`` are read).
    triplets : int array of shape (m, 3)

    Examples
    --------
    >>> D = np.array([[0.0, 1.0, 2.0], [1.0, 0.0, 1.0], [2.0, 1.0, 0.0]])
    >>> distance_outcomes(D, [[0, 1, 2], [1, 0, 2], [2, 0, 1]]).tolist()
    [1.0, 0.5, 0.0]
    """
    d = np.asarray(distances, dtype=np.float64)
    if d.ndim != 2 or d.shape[0] != d.shape[1]:
        raise ValueError(f"distances must be a square matrix, got shape {d.shape}")
    t = _check_triplets(triplets, len(d))
    d_pos, d_neg = d[t[:, 0], t[:, 1]], d[t[:, 0], t[:, 2]]
    return np.where(d_pos < d_neg, 1.0, np.where(d_pos == d_neg, 0.5, 0.0))


def triplet_outcomes(embeddings: ArrayLike, triplets: ArrayLike,
                     distance: str = "euclidean") -> np.ndarray:
    """Per triplet: 1 if ``d(a, p) < d(a, n)`` between the embeddings, 0.5 if equal, else 0.

    Distances are computed only between the items the triplets name.

    Examples
    --------
    >>> emb = np.array([[0.0], [1.0], [3.0], [-1.0]])
    >>> triplet_outcomes(emb, [[0, 1, 2], [0, 1, 3], [2, 0, 1]]).tolist()
    [1.0, 0.5, 0.0]
    """
    from scipy.spatial.distance import cdist

    emb = _check_embeddings(embeddings, distance)
    t = _check_triplets(triplets, len(emb))
    if len(t) == 0:
        return np.zeros(0)
    involved = np.flatnonzero(np.bincount(t.ravel(), minlength=len(emb)))
    position = np.zeros(len(emb), dtype=np.int64)
    position[involved] = np.arange(len(involved))
    sub = emb[involved]
    return distance_outcomes(cdist(sub, sub), position[t])


@dataclass(frozen=True)
class ListenerAgreement:
    """Per listener: the sum of triplet outcomes (``hits``) and the number, or total weight,
    of the triplets scored (``counts``). Adding two (e.g. the folds of a protocol) adds both.

    Examples
    --------
    >>> a = ListenerAgreement(np.array([3.0, 1.0]), np.array([4.0, 2.0]))
    >>> b = ListenerAgreement(np.array([1.0, 0.5]), np.array([2.0, 2.0]))
    >>> (a + b).per_listener.tolist(), round((a + b).mean, 4), round((a + b).std, 4)
    ([0.6666666666666666, 0.375], 0.5208, 0.2062)
    """

    hits: np.ndarray
    counts: np.ndarray

    def __add__(self, other: ListenerAgreement) -> ListenerAgreement:
        if len(self.hits) != len(other.hits):
            raise ValueError(f"agreements of {len(self.hits)} and {len(other.hits)} listeners "
                             f"cannot be added")
        return ListenerAgreement(self.hits + other.hits, self.counts + other.counts)

    def __len__(self) -> int:
        return len(self.hits)

    @property
    def per_listener(self) -> np.ndarray:
        """Each listener's agreement (NaN for a listener with no triplet scored)."""
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(self.counts > 0, self.hits / np.maximum(self.counts, 1e-300),
                            np.nan)

    def _scored(self) -> np.ndarray:
        v = self.per_listener
        return v[np.isfinite(v)]

    @property
    def mean(self) -> float:
        """Mean over the listeners with triplets scored (NaN if none)."""
        v = self._scored()
        return float(v.mean()) if len(v) else float("nan")

    @property
    def std(self) -> float:
        """Sample standard deviation over those listeners (0 with one, NaN with none)."""
        v = self._scored()
        return float(v.std(ddof=1)) if len(v) > 1 else (0.0 if len(v) else float("nan"))

    def summary(self) -> dict[str, float]:
        """``{"mean", "std"}`` over listeners."""
        return {"mean": self.mean, "std": self.std}


def sum_agreements(parts: Sequence[dict[str, ListenerAgreement]]) -> dict[str, ListenerAgreement]:
    """The agreements of several folds added up, metric by metric.

    Examples
    --------
    >>> one = {"m": ListenerAgreement(np.array([1.0]), np.array([2.0]))}
    >>> sum_agreements([one, one])["m"].counts.tolist()
    [4.0]
    """
    total: dict[str, ListenerAgreement] = {}
    for part in parts:
        for name, agreement in part.items():
            total[name] = total[name] + agreement if name in total else agreement
    return total


def _tally(outcomes: np.ndarray, owner: np.ndarray, weights: np.ndarray,
           n_listeners: int) -> ListenerAgreement:
    hits = np.bincount(owner, weights * outcomes, minlength=n_listeners).astype(np.float64)
    counts = np.bincount(owner, weights, minlength=n_listeners).astype(np.float64)
    return ListenerAgreement(hits, counts)


def triplet_agreement(embeddings: ArrayLike, listener_triplets: Sequence[ArrayLike],
                      anchors_held_out: ArrayLike | None = None, distance: str = "euclidean",
                      weights: Sequence[ArrayLike] | None = None) -> ListenerAgreement:
    """Each listener's share of triplets ``(a, p, n)`` with ``d(a, p) < d(a, n)`` (ties 0.5).

    Parameters
    ----------
    embeddings : array of shape (n, d)
    listener_triplets : sequence of int arrays (m_l, 3)
        The triplets of each listener (e.g. :func:`grouping_triplets` of their grouping).
    anchors_held_out : int indices or boolean mask of length n, optional
        Only triplets whose anchor is among these count (default: all).
    distance : {"euclidean", "cosine"}
    weights : sequence of arrays (m_l,), optional
        A non-negative weight per triplet of each listener: weighted shares.

    Returns
    -------
    ListenerAgreement
        ``.per_listener``, ``.mean`` and ``.std`` over listeners.

    Examples
    --------
    >>> emb = np.array([[0.0], [1.0], [3.0], [4.0]])
    >>> listeners = [grouping_triplets([0, 0, 1, 1]), grouping_triplets([0, 1, 1, 0])]
    >>> r = triplet_agreement(emb, listeners)
    >>> r.per_listener.tolist(), r.mean
    ([1.0, 0.25], 0.625)
    >>> triplet_agreement(emb, listeners, anchors_held_out=[0]).per_listener.tolist()
    [1.0, 0.0]
    """
    emb = _check_embeddings(embeddings, distance)
    lists = [_check_triplets(t, len(emb)) for t in listener_triplets]
    if weights is None:
        w_lists = [np.ones(len(t)) for t in lists]
    else:
        if len(weights) != len(lists):
            raise ValueError(f"{len(weights)} weight arrays for {len(lists)} listeners")
        w_lists = [_check_weights(w, len(t)) for w, t in zip(weights, lists)]
    if anchors_held_out is not None:
        held = np.zeros(len(emb), dtype=bool)
        held[_selection(anchors_held_out, len(emb), "anchors_held_out")] = True
        keep = [held[t[:, 0]] for t in lists]
        lists = [t[k] for t, k in zip(lists, keep)]
        w_lists = [w[k] for w, k in zip(w_lists, keep)]
    owner = np.repeat(np.arange(len(lists)), [len(t) for t in lists])
    every = np.concatenate([np.zeros((0, 3), dtype=np.int64), *lists])
    return _tally(triplet_outcomes(emb, every, distance), owner,
                  np.concatenate([np.zeros(0), *w_lists]), len(lists))


def triplet_agreement_high(embeddings: ArrayLike, listener_triplets: Sequence[ArrayLike],
                           anchors_held_out: ArrayLike | None = None,
                           distance: str = "euclidean",
                           threshold: float = HIGH_AGREEMENT) -> ListenerAgreement:
    """:func:`triplet_agreement` on each listener's high-agreement triplets (those at least
    ``threshold`` of the listeners give; :func:`high_agreement_triplets`).

    Examples
    --------
    >>> emb = np.array([[0.0], [1.0], [3.0], [4.0]])
    >>> listeners = [grouping_triplets(g) for g in ([0, 1, 1, 0], [0, 1, 1, 0], [0, 0, 1, 1])]
    >>> triplet_agreement(emb, listeners).per_listener.tolist()
    [0.25, 0.25, 1.0]
    >>> triplet_agreement_high(emb, listeners, threshold=0.6).per_listener.tolist()
    [0.25, 0.25, nan]
    """
    return triplet_agreement(embeddings, high_agreement_triplets(listener_triplets, threshold),
                             anchors_held_out, distance)


# -- the human reference ----------------------------------------------------------------------
def _together(groups: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per listener: (grouped i and j together, grouped both i and j), ``(L, n, n)`` bool."""
    grouped = groups >= 0
    both = grouped[:, :, None] & grouped[:, None, :]
    return (groups[:, :, None] == groups[:, None, :]) & both, both


def coassociation(groupings: ArrayLike) -> np.ndarray:
    """Share of the listeners who put items ``i`` and ``j`` in one group, among those who
    grouped both (NaN where nobody did).

    Examples
    --------
    >>> coassociation([[0, 0, 1], [0, 1, 1]]).tolist()
    [[1.0, 0.5, 0.0], [0.5, 1.0, 0.5], [0.0, 0.5, 1.0]]
    """
    together, both = _together(_check_groups(groupings, 2))
    n_both = both.sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(n_both > 0, together.sum(axis=0) / np.maximum(n_both, 1), np.nan)


def human_reference(groupings: ArrayLike,
                    listener_triplets: Sequence[ArrayLike] | None = None) -> ListenerAgreement:
    """Each listener predicted from the others: their triplets scored with the distance
    ``1 −`` share of the *other* listeners who grouped the pair together (among those who
    grouped both; 0 if none did).

    Parameters
    ----------
    groupings : int array of shape (n_listeners, n)
        At least two listeners.
    listener_triplets : sequence of int arrays, optional
        The triplets to score for each listener (default: all of their grouping's, from
        :func:`grouping_triplets`; e.g. :func:`high_agreement_triplets` for the high set).

    Examples
    --------
    >>> g = np.array([[0, 0, 1], [0, 0, 1], [0, 1, 1]])
    >>> human_reference(g).per_listener.tolist()  # the third disagrees with the other two
    [0.75, 0.75, 0.25]
    """
    groups = _check_groups(groupings, 2)
    n_listeners, n = groups.shape
    if n_listeners < 2:
        raise ValueError("the human reference needs at least two listeners")
    lists = ([grouping_triplets(g) for g in groups] if listener_triplets is None
             else [_check_triplets(t, n) for t in listener_triplets])
    if len(lists) != n_listeners:
        raise ValueError(f"{len(lists)} triplet arrays for {n_listeners} listeners")
    together, both = _together(groups)
    all_together, all_both = together.sum(axis=0), both.sum(axis=0)
    hits, counts = np.zeros(n_listeners), np.zeros(n_listeners)
    for listener in range(n_listeners):  # one distance matrix per listener (not per triplet)
        others = all_both - both[listener]
        share = np.where(others > 0, (all_together - together[listener]) / np.maximum(others, 1),
                         0.0)
        outcomes = distance_outcomes(1.0 - share, lists[listener])
        hits[listener], counts[listener] = outcomes.sum(), len(outcomes)
    return ListenerAgreement(hits, counts)


# -- judgments scored on every fold of a protocol ---------------------------------------------
@dataclass(frozen=True)
class ListenerJudgments:
    """The judgments of listeners over the items of an experiment, scored on each fold.

    Called with ``(embeddings of every item, test indices, distance)`` — what
    :func:`mirsim.evaluation.protocols.evaluate_protocol` passes a ``fold_scorer`` — it returns
    ``{"triplet_agreement": ListenerAgreement}`` (plus ``"triplet_agreement_high"`` for
    groupings) over the triplets whose anchor is a test item; :func:`sum_agreements` adds the
    folds up.

    Attributes
    ----------
    listeners : tuple of str
        One name per listener (a triplet file is one "listener": its name).
    triplets : tuple of arrays
        Each listener's triplets (item indices).
    weights : tuple of arrays or None
        Each listener's triplet weights (``None``: all 1).
    high : tuple of arrays or None
        Each listener's high-agreement triplets (``None``: not defined, as for a triplet file).
    groupings : array or None
        ``(n_listeners, n)`` groupings, for the human reference (``None`` for a triplet file).

    Examples
    --------
    >>> j = ListenerJudgments.from_groupings(np.array([[0, 0, 1, 1], [0, 0, 1, 1]]), ("A", "B"))
    >>> emb = np.array([[0.0], [1.0], [3.0], [4.0]])
    >>> folds = [j(emb, np.array([0, 1]), "euclidean"), j(emb, np.array([2, 3]), "euclidean")]
    >>> sum_agreements(folds)["triplet_agreement"].per_listener.tolist()
    [1.0, 1.0]
    """

    listeners: tuple[str, ...]
    triplets: tuple[np.ndarray, ...]
    weights: tuple[np.ndarray, ...] | None = None
    high: tuple[np.ndarray, ...] | None = None
    groupings: np.ndarray | None = None

    @classmethod
    def from_groupings(cls, groupings: ArrayLike, listeners: Sequence[str],
                       threshold: float = HIGH_AGREEMENT) -> ListenerJudgments:
        """Judgments from listeners' groupings ``(n_listeners, n)``: their triplets, and the
        high-agreement ones."""
        groups = _check_groups(groupings, 2)
        if len(listeners) != len(groups):
            raise ValueError(f"{len(listeners)} names for {len(groups)} listeners")
        triplets = tuple(grouping_triplets(g) for g in groups)
        high = tuple(high_agreement_triplets(triplets, threshold))
        return cls(tuple(listeners), triplets, None, high, groups)

    @classmethod
    def from_triplets(cls, triplets: ArrayLike, weights: ArrayLike | None = None,
                      name: str = "triplets") -> ListenerJudgments:
        """Judgments from one list of judged triplets (one "listener")."""
        t = _check_triplets(triplets)
        w = None if weights is None else (_check_weights(weights, len(t)),)
        return cls((name,), (t,), w)

    @property
    def n_triplets(self) -> np.ndarray:
        """Each listener's number of triplets."""
        return np.array([len(t) for t in self.triplets])

    def __call__(self, embeddings: np.ndarray, test: np.ndarray,
                 distance: str = "euclidean") -> dict[str, ListenerAgreement]:
        scores = {"triplet_agreement": triplet_agreement(embeddings, self.triplets, test,
                                                         distance, self.weights)}
        if self.high is not None:
            scores["triplet_agreement_high"] = triplet_agreement(embeddings, self.high, test,
                                                                 distance)
        return scores

    def human_reference(self) -> dict[str, ListenerAgreement] | None:
        """Each listener predicted from the others (:func:`human_reference`), on all their
        triplets and on their high-agreement ones; ``None`` without groupings of at least two
        listeners."""
        if self.groupings is None or len(self.groupings) < 2:
            return None
        scores = {"triplet_agreement": human_reference(self.groupings, self.triplets)}
        if self.high is not None:
            scores["triplet_agreement_high"] = human_reference(self.groupings, self.high)
        return scores
