"""Retrieval and triplet metrics over embeddings (Euclidean or cosine distance).

All functions are pure: they take embeddings ``(n, d)``, labels ``(n,)`` (integers or
strings), optionally groups ``(n,)`` (the unit of identity: IMT class of a sample, track of a
segment), and return floats.

Rules shared by every ranking metric
------------------------------------
* ``queries`` selects the items used as queries and ``candidates`` the items that may be
  retrieved; each is ``None`` (every item), an array of item indices or a boolean mask of
  length ``n``. Repeated indices are counted once.
* The query itself is never retrieved, even when it is a candidate.
* Candidates are ranked by Euclidean distance to the query (``distance="euclidean"``, the
  default) or by cosine distance (``distance="cosine"``: rows are L2-normalised first, after
  which Euclidean and cosine distance rank alike); equal distances are ordered by
  item index (stable sort), so results are deterministic. Distances are computed in float64
  as ``|a|^2 + |b|^2 - 2 a.b``; "equal" means equal computed values.
* A query with fewer than ``k`` candidates is scored on the candidates it has: precision is
  taken over ``min(k, n_candidates)`` items.
* Every label metric (P@1, P@k, ii-P@k, MAP@R, R@k) is computed over the same queries: those with
  at least one relevant candidate (R >= 1: another candidate with their label). A query
  without one is left out of every such mean, and :func:`retrieval_metrics` reports how many
  were (``n_without_relevant``). (Scoring such queries 0 in P@k instead, as the AN-GNN paper's
  code does, multiplies P@k by ``n_queries / (n_queries + n_without_relevant)``.) If no
  query counts, the result is NaN.
* Ranking is done in chunks of queries so that memory stays under :data:`MEMORY_BUDGET`
  (200 MB) whatever the number of items, and only as deep as the metrics need (k, R, k plus
  the query's group), so 10,000 x 10,000 takes about 5 s on 2 CPU cores (peak 82 MB).
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
from numpy.typing import ArrayLike

__all__ = ["DISTANCE_NAMES", "retrieval_metrics", "p_at_k", "ii_p_at_k", "p_at_1", "map_at_r",
           "recall_at_k", "centroid_label_auc", "class_centroids", "triplet_score",
           "knn_accuracy", "prepare_embeddings"]

#: Distances every metric accepts (``mirsim.training.distances`` has one object per name).
DISTANCE_NAMES = ("euclidean", "cosine")

#: Memory budget of one chunk of the ranking, in bytes.
MEMORY_BUDGET = 200_000_000
#: Bytes held per (query, candidate) pair while a chunk is ranked and scored.
_BYTES_PER_PAIR = 48


# -- input checking ---------------------------------------------------------------------------
def prepare_embeddings(embeddings: ArrayLike, distance: str = "euclidean") -> np.ndarray:
    """Embeddings as a distance compares them: unchanged for ``"euclidean"``, rows scaled to
    unit length for ``"cosine"`` (a zero row stays zero).

    Examples
    --------
    >>> prepare_embeddings(np.array([[3.0, 4.0], [0.0, 0.0]]), "cosine").tolist()
    [[0.6, 0.8], [0.0, 0.0]]
    """
    if distance not in DISTANCE_NAMES:
        raise ValueError(f"unknown distance {distance!r} (valid: {', '.join(DISTANCE_NAMES)})")
    emb = np.asarray(embeddings)
    if distance == "euclidean":
        return emb
    norms = np.linalg.norm(emb, axis=-1, keepdims=True)
    return emb / np.where(norms > 0, norms, 1.0)


def _check_embeddings(embeddings: ArrayLike, distance: str = "euclidean") -> np.ndarray:
    emb = np.asarray(embeddings, dtype=np.float64)
    if emb.ndim != 2:
        raise ValueError(f"embeddings must be a 2-D array (n, d), got shape {emb.shape}")
    if not np.all(np.isfinite(emb)):
        raise ValueError("embeddings contain NaN or infinity")
    return prepare_embeddings(emb, distance)


def _codes(values: ArrayLike, n: int, name: str) -> np.ndarray:
    """Integer codes of ``values`` (labels or groups of any hashable dtype)."""
    values = np.asarray(values)
    if values.shape != (n,):
        raise ValueError(f"{name} must have shape ({n},), got {values.shape}")
    return np.unique(values, return_inverse=True)[1].reshape(n).astype(np.int32)


def _selection(selection: ArrayLike | None, n: int, name: str) -> np.ndarray:
    """Sorted unique item indices from ``None``, an index array or a boolean mask."""
    if selection is None:
        return np.arange(n)
    sel = np.asarray(selection)
    if sel.dtype == bool:
        if sel.shape != (n,):
            raise ValueError(f"boolean {name} mask must have shape ({n},), got {sel.shape}")
        return np.flatnonzero(sel)
    sel = sel.reshape(-1)
    if sel.size == 0:
        return np.zeros(0, dtype=np.int64)
    if not np.issubdtype(sel.dtype, np.integer):
        raise ValueError(f"{name} must be integer indices or a boolean mask, got {sel.dtype}")
    if sel.min() < 0 or sel.max() >= n:
        raise ValueError(f"{name} indices must lie in [0, {n}), got [{sel.min()}, {sel.max()}]")
    return np.unique(sel).astype(np.int64)


def _check_k(k: int) -> int:
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise ValueError(f"k must be a positive integer, got {k!r}")
    return int(k)


def _mean(per_query: np.ndarray) -> float:
    """Mean over the queries that count (non-NaN); NaN if none does."""
    counted = per_query[~np.isnan(per_query)]
    return float(np.mean(counted)) if counted.size else float("nan")


# -- ranking ----------------------------------------------------------------------------------
def _chunk_length(n_candidates: int, chunk_size: int | None) -> int:
    """Number of queries ranked at once, within :data:`MEMORY_BUDGET` unless given."""
    if chunk_size is not None:
        if chunk_size < 1:
            raise ValueError(f"chunk_size must be positive, got {chunk_size}")
        return int(chunk_size)
    return max(1, MEMORY_BUDGET // (_BYTES_PER_PAIR * max(n_candidates, 1)))


def _stable_head(dist: np.ndarray, depth: int) -> np.ndarray:
    """Columns of the ``depth`` smallest values of each row, ordered by (value, column).

    Equal to ``np.argsort(dist, axis=1, kind="stable")[:, :depth]``, but only the head of
    each row is sorted when ``depth`` is small (rows whose cut-off value is tied fall back to
    the full stable sort, so the head is always the same).

    Examples
    --------
    >>> d = np.array([[3.0, 1.0, 2.0, 1.0, 9.0, 8.0, 7.0, 6.0, 5.0],
    ...               [4.0, 0.0, 2.0, 1.0, 9.0, 8.0, 7.0, 6.0, 5.0]])
    >>> _stable_head(d, 2).tolist()
    [[1, 3], [1, 3]]
    """
    width = dist.shape[1]
    depth = min(depth, width)
    if depth == 0 or 4 * depth >= width:
        return np.argsort(dist, axis=1, kind="stable")[:, :depth]
    head = np.argpartition(dist, depth - 1, axis=1)[:, :depth].copy()
    cut = np.take_along_axis(dist, head[:, -1:], axis=1)
    tied = np.count_nonzero(dist <= cut, axis=1) > depth
    head.sort(axis=1)
    values = np.take_along_axis(dist, head, axis=1)
    head = np.take_along_axis(head, np.argsort(values, axis=1, kind="stable"), axis=1)
    if tied.any():
        head[tied] = np.argsort(dist[tied], axis=1, kind="stable")[:, :depth]
    return head


def _ranked_chunks(emb: np.ndarray, queries: np.ndarray, candidates: np.ndarray, depth: int,
                   chunk_size: int | None) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Yield ``(query indices, ranked candidate indices, number of candidates)`` per chunk.

    Row ``r`` of the ranked array lists the ``depth`` nearest candidates of query ``r``
    (ties by item index). The query itself is ranked last; ``n_valid[r]`` is the number of
    candidates other than the query, so columns ``< n_valid[r]`` may be retrieved.
    """
    cand_emb = emb[candidates]
    cand_sq = np.einsum("ij,ij->i", cand_emb, cand_emb)
    step = _chunk_length(len(candidates), chunk_size)
    for start in range(0, len(queries), step):
        q = queries[start:start + step]
        q_emb = emb[q]
        dist = q_emb @ cand_emb.T
        dist *= -2.0
        dist += np.einsum("ij,ij->i", q_emb, q_emb)[:, None]
        dist += cand_sq[None, :]
        np.maximum(dist, 0.0, out=dist)
        pos = np.minimum(np.searchsorted(candidates, q), len(candidates) - 1)
        is_cand = candidates[pos] == q if len(candidates) else np.zeros(len(q), bool)
        dist[np.flatnonzero(is_cand), pos[is_cand]] = np.inf
        ranked = candidates[_stable_head(dist, depth)]
        del dist
        yield q, ranked, len(candidates) - is_cand.astype(np.int64)


def _precision_rows(match: np.ndarray, allowed: np.ndarray, k: int) -> np.ndarray:
    """Per row: share of matches among the first ``k`` allowed columns (NaN if none allowed).

    Examples
    --------
    >>> m = np.array([[True, False, True], [False, False, False]])
    >>> a = np.array([[False, True, True], [False, False, False]])
    >>> _precision_rows(m, a, 1).tolist()
    [0.0, nan]
    """
    rank = np.cumsum(allowed, axis=1, dtype=np.int32)
    taken = allowed & (rank <= k)
    n_taken = taken.sum(axis=1)
    hits = (match & taken).sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(n_taken > 0, hits / np.maximum(n_taken, 1), np.nan)


def _ap_at_r_rows(match: np.ndarray, r: np.ndarray) -> np.ndarray:
    """Per row: AP@R = (1/R) sum_{i<=R} P(i) rel(i) of a ranked match row (NaN if R = 0).

    Examples
    --------
    >>> _ap_at_r_rows(np.array([[True, False, True, False]]), np.array([2])).tolist()
    [0.5]
    """
    depth = int(r.max()) if r.size else 0
    if depth == 0:
        return np.full(len(r), np.nan)
    rel = match[:, :depth]
    ranks = np.arange(1, depth + 1)
    precision = np.cumsum(rel, axis=1) / ranks
    within = ranks[None, :] <= r[:, None]
    # cumsum adds left to right, so the result does not depend on the width of the chunk
    total = np.cumsum(precision * (rel & within), axis=1)[:, -1]
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(r > 0, total / np.maximum(r, 1), np.nan)


def _vote_rows(neighbour_groups: np.ndarray, n_votes: np.ndarray) -> np.ndarray:
    """Per row: the majority group of the first ``n_votes`` columns, ties to the nearest.

    Rows with no vote give -1.

    Examples
    --------
    >>> _vote_rows(np.array([[4, 7, 7, 4], [5, 6, 6, 6]]), np.array([2, 0])).tolist()
    [4, -1]
    """
    width = neighbour_groups.shape[1]
    if width == 0:
        return np.full(len(neighbour_groups), -1)
    voting = np.arange(width)[None, :] < n_votes[:, None]
    same = neighbour_groups[:, :, None] == neighbour_groups[:, None, :]
    counts = (same & voting[:, None, :]).sum(axis=2)
    counts[~voting] = -1
    winner = neighbour_groups[np.arange(len(counts)), np.argmax(counts, axis=1)]
    return np.where(n_votes > 0, winner, -1)


def _ranking_depth(wanted: set[str], k: int, lab: np.ndarray | None, grp: np.ndarray | None,
                   queries: np.ndarray, candidates: np.ndarray) -> int:
    """How many ranks the metrics in ``wanted`` need: 1 for P@1, k for P@k and kNN votes,
    the largest R for MAP@R, k plus the largest own-group candidate count for ii-P@k.

    Examples
    --------
    >>> lab, grp = np.array([0, 0, 0, 1]), np.array([0, 0, 1, 2])
    >>> q = c = np.arange(4)
    >>> [_ranking_depth(w, 1, lab, grp, q, c) for w in ({"p_at_1"}, {"map_at_r"}, {"ii_p_at_k"})]
    [1, 2, 3]
    """
    depth = 1 if wanted == {"p_at_1"} else k
    if "map_at_r" in wanted:
        r = np.bincount(lab[candidates], minlength=int(lab.max(initial=-1)) + 1)[lab[queries]]
        r -= np.isin(queries, candidates)
        depth = max(depth, int(np.max(r, initial=0)))
    if "ii_p_at_k" in wanted:
        own = np.bincount(grp[candidates], minlength=int(grp.max(initial=-1)) + 1)[grp[queries]]
        depth = max(depth, k + int(np.max(own, initial=0)))
    return depth


def _per_query(embeddings: ArrayLike, labels: ArrayLike | None, groups: ArrayLike | None,
               queries: ArrayLike | None, candidates: ArrayLike | None, k: int,
               wanted: set[str], chunk_size: int | None = None,
               distance: str = "euclidean") -> dict[str, np.ndarray]:
    """Per-query scores (NaN where a query does not count) of the metrics in ``wanted``.

    ``wanted`` holds any of ``"p_at_1"``, ``"p_at_k"``, ``"ii_p_at_k"``, ``"map_at_r"``,
    ``"r_at_k"``, ``"knn"`` (the last compares ``groups`` votes, the others ``labels``).
    """
    emb = _check_embeddings(embeddings, distance)
    n = len(emb)
    k = _check_k(k)
    lab = _codes(labels, n, "labels") if labels is not None else None
    grp = _codes(groups, n, "groups") if groups is not None else None
    q_idx = _selection(queries, n, "queries")
    c_idx = _selection(candidates, n, "candidates")
    if lab is not None:
        label_count = np.bincount(lab[c_idx], minlength=int(lab.max(initial=-1)) + 1)
    depth = _ranking_depth(wanted, k, lab, grp, q_idx, c_idx)
    out: dict[str, list[np.ndarray]] = {name: [] for name in wanted | {"relevant"}}
    for q, ranked, n_valid in _ranked_chunks(emb, q_idx, c_idx, depth, chunk_size):
        column = np.arange(ranked.shape[1])[None, :]
        if lab is not None:
            match = lab[ranked] == lab[q][:, None]
            out["relevant"].append(label_count[lab[q]] - (len(c_idx) - n_valid))
        if "p_at_1" in wanted:
            out["p_at_1"].append(_precision_rows(match[:, :1], column[:, :1] < n_valid[:, None], 1))
        if "p_at_k" in wanted:
            head = column[:, :k] < n_valid[:, None]
            out["p_at_k"].append(_precision_rows(match[:, :k], head, k))
        if "ii_p_at_k" in wanted:
            allowed = (grp[ranked] != grp[q][:, None]) & (column < n_valid[:, None])
            out["ii_p_at_k"].append(_precision_rows(match, allowed, k))
        if "map_at_r" in wanted:
            out["map_at_r"].append(_ap_at_r_rows(match, out["relevant"][-1]))
        if "r_at_k" in wanted:
            head = column[:, :k] < n_valid[:, None]
            out["r_at_k"].append((match[:, :k] & head).any(axis=1).astype(float))
        if "knn" in wanted:
            vote = _vote_rows(grp[ranked[:, :k]], np.minimum(n_valid, k))
            out["knn"].append(np.where(vote >= 0, (vote == grp[q]).astype(float), np.nan))
    scores = {name: (np.concatenate(parts) if parts else np.zeros(0)) for name, parts in out.items()}
    if lab is not None:  # label metrics count the same queries: those with a relevant candidate
        none_relevant = scores["relevant"] < 1
        for name in wanted & {"p_at_1", "p_at_k", "ii_p_at_k", "map_at_r", "r_at_k"}:
            scores[name] = np.where(none_relevant, np.nan, scores[name])
    return scores


# -- public metrics ---------------------------------------------------------------------------
def retrieval_metrics(embeddings: ArrayLike, labels: ArrayLike, groups: ArrayLike | None = None,
                      queries: ArrayLike | None = None, candidates: ArrayLike | None = None,
                      k: int = 5, *, chunk_size: int | None = None,
                      distance: str = "euclidean") -> dict[str, float]:
    """P@1, P@k, inter-IMT P@k and MAP@R from one distance computation and one sort.

    Parameters
    ----------
    embeddings : array of shape (n, d)
    labels : array of shape (n,)
        Relevance: a retrieved item is relevant when it has the query's label.
    groups : array of shape (n,), optional
        Unit of identity for ``ii_p_at_k``. Without groups, ``ii_p_at_k`` is NaN.
    queries, candidates : index array or boolean mask, optional
        Items used as queries / items that may be retrieved (default: all). The query itself
        is never retrieved.
    k : int
        Cut-off of ``p_at_k`` and ``ii_p_at_k``.
    chunk_size : int, optional
        Queries ranked at once (default: as many as fit in :data:`MEMORY_BUDGET`). Results do
        not depend on it.
    distance : {"euclidean", "cosine"}
        How items are compared (the model's distance).

    Returns
    -------
    dict
        ``{"p_at_1", f"p_at_{k}", f"ii_p_at_{k}", "map_at_r"}``: means over the queries that
        have a relevant candidate (the same queries for all four; see the module's rules),
        ``"n_queries"``: how many those are, ``"n_without_relevant"``: how many queries had
        no relevant candidate and were left out. With ``k=1`` the first two keys are the same
        entry.

    Examples
    --------
    >>> emb = np.array([[0.0], [1.0], [3.0], [4.0]])
    >>> m = retrieval_metrics(emb, [0, 0, 1, 1], groups=[0, 1, 2, 2], k=2)
    >>> m == {"p_at_1": 1.0, "p_at_2": 0.5, "ii_p_at_2": 0.25, "map_at_r": 1.0,
    ...       "n_queries": 4, "n_without_relevant": 0}
    True
    >>> retrieval_metrics(emb, [0, 0, 0, 1], k=1)["n_without_relevant"]  # item 3 is alone
    1
    """
    names = {"p_at_1", "p_at_k", "map_at_r"} | ({"ii_p_at_k"} if groups is not None else set())
    scores = _per_query(embeddings, labels, groups, queries, candidates, k, names, chunk_size,
                        distance)
    nan = float("nan")
    counted = int(np.count_nonzero(scores["relevant"] >= 1))
    return {"p_at_1": _mean(scores["p_at_1"]),
            f"p_at_{k}": _mean(scores["p_at_k"]),
            f"ii_p_at_{k}": _mean(scores["ii_p_at_k"]) if groups is not None else nan,
            "map_at_r": _mean(scores["map_at_r"]),
            "n_queries": counted, "n_without_relevant": len(scores["relevant"]) - counted}


def p_at_k(embeddings: ArrayLike, labels: ArrayLike, k: int = 5, groups: ArrayLike | None = None,
           exclude_same_group: bool = False, queries: ArrayLike | None = None,
           candidates: ArrayLike | None = None, *, distance: str = "euclidean") -> float:
    """Precision at k: share of the k nearest neighbours with the query's label.

    The AN-GNN paper's eq. 8-9, averaged over queries. A query with fewer than ``k``
    candidates is scored over the ``min(k, n_candidates)`` it has; a query without a relevant
    candidate is left out; NaN if no query counts. Ties in distance are ordered by item index.

    Parameters
    ----------
    embeddings : array of shape (n, d)
    labels : array of shape (n,)
    k : int
    groups : array of shape (n,), optional
        Needed when ``exclude_same_group`` is true.
    exclude_same_group : bool
        Drop every candidate of the query's group first (this is :func:`ii_p_at_k`).
    queries, candidates : index array or boolean mask, optional
        Items used as queries / that may be retrieved (default all; never the query itself).
    distance : {"euclidean", "cosine"}

    Returns
    -------
    float

    Examples
    --------
    >>> emb = np.array([[0.0], [1.0], [3.0], [4.0]])
    >>> p_at_k(emb, [0, 0, 1, 1], k=2)
    0.5
    """
    if exclude_same_group:
        if groups is None:
            raise ValueError("exclude_same_group=True needs groups")
        return ii_p_at_k(embeddings, labels, groups, k, queries, candidates, distance=distance)
    return _mean(_per_query(embeddings, labels, None, queries, candidates, k, {"p_at_k"},
                            distance=distance)["p_at_k"])


def ii_p_at_k(embeddings: ArrayLike, labels: ArrayLike, groups: ArrayLike, k: int = 5,
              queries: ArrayLike | None = None, candidates: ArrayLike | None = None, *,
              distance: str = "euclidean") -> float:
    """Inter-IMT precision at k: :func:`p_at_k` without the query's own group.

    Every candidate that shares the query's group is removed from its ranking before the k
    nearest are taken, so pitch/dynamics copies of the query do not count. Same rules as
    :func:`p_at_k`: fewer than ``k`` remaining candidates -> precision over those; none, or no
    relevant candidate at all -> the query is left out; NaN if no query counts.

    Parameters
    ----------
    embeddings : array of shape (n, d)
    labels, groups : arrays of shape (n,)
    k : int
    queries, candidates : index array or boolean mask, optional
    distance : {"euclidean", "cosine"}

    Returns
    -------
    float

    Examples
    --------
    >>> emb = np.array([[0.0], [1.0], [3.0], [4.0]])
    >>> ii_p_at_k(emb, [0, 0, 1, 1], groups=[0, 1, 2, 2], k=2)
    0.25
    """
    scores = _per_query(embeddings, labels, groups, queries, candidates, k, {"ii_p_at_k"},
                        distance=distance)
    return _mean(scores["ii_p_at_k"])


def p_at_1(embeddings: ArrayLike, labels: ArrayLike, queries: ArrayLike | None = None,
           candidates: ArrayLike | None = None, *, distance: str = "euclidean") -> float:
    """Precision at 1: share of queries whose nearest candidate has their label.

    Queries without a relevant candidate are left out; NaN if no query counts. Ties in distance go
    to the lower item index.

    Parameters
    ----------
    embeddings : array of shape (n, d)
    labels : array of shape (n,)
    queries, candidates : index array or boolean mask, optional
    distance : {"euclidean", "cosine"}

    Returns
    -------
    float

    Examples
    --------
    >>> p_at_1(np.array([[0.0], [1.0], [3.0], [4.0]]), [0, 0, 1, 0])
    0.6666666666666666
    >>> p_at_1(np.array([[0.0], [1.0], [3.0]]), [0, 0, 1])  # item 2 has no relevant candidate
    1.0
    """
    return _mean(_per_query(embeddings, labels, None, queries, candidates, 1, {"p_at_1"},
                            distance=distance)["p_at_1"])


def map_at_r(embeddings: ArrayLike, labels: ArrayLike, queries: ArrayLike | None = None,
             candidates: ArrayLike | None = None, *, distance: str = "euclidean") -> float:
    """Mean average precision at R (Musgrave et al. 2020, "A metric learning reality check").

    For a query, R is the number of candidates (other than the query) with its label and
    ``AP@R = (1/R) sum_{i=1..R} P(i) rel(i)``, where ``P(i)`` is the precision of the first
    ``i`` retrieved items and ``rel(i)`` is 1 when the i-th one has the query's label.
    Queries with R = 0 are left out; NaN if no query counts.

    Parameters
    ----------
    embeddings : array of shape (n, d)
    labels : array of shape (n,)
    queries, candidates : index array or boolean mask, optional
    distance : {"euclidean", "cosine"}

    Returns
    -------
    float

    Examples
    --------
    >>> emb = np.array([[0.0], [1.0], [2.0], [3.0]])
    >>> map_at_r(emb, [0, 1, 0, 1], queries=[0])  # R = 1, nearest is item 1: AP = 0
    0.0
    """
    return _mean(_per_query(embeddings, labels, None, queries, candidates, 1,
                            {"map_at_r"}, distance=distance)["map_at_r"])


def recall_at_k(embeddings: ArrayLike, labels: ArrayLike, k: int = 1,
                queries: ArrayLike | None = None, candidates: ArrayLike | None = None, *,
                distance: str = "euclidean") -> float:
    """Recall at k: share of queries with at least one item of their label among their k
    nearest candidates.

    The R@K of deep metric learning's retrieval benchmarks (as in Lee et al. 2020). A query
    with fewer than ``k`` candidates is scored on those it has; a query without a relevant
    candidate is left out; NaN if no query counts. ``recall_at_k(..., k=1)`` equals
    :func:`p_at_1`. Ties in distance are ordered by item index.

    Parameters
    ----------
    embeddings : array of shape (n, d)
    labels : array of shape (n,)
    k : int
    queries, candidates : index array or boolean mask, optional
    distance : {"euclidean", "cosine"}

    Returns
    -------
    float

    Examples
    --------
    Item 2 has no relevant candidate; item 3's nearest is item 2, its second item 1:

    >>> emb = np.array([[0.0], [1.0], [3.0], [4.5]])
    >>> recall_at_k(emb, [0, 0, 1, 0], k=1), recall_at_k(emb, [0, 0, 1, 0], k=2)
    (0.6666666666666666, 1.0)
    """
    return _mean(_per_query(embeddings, labels, None, queries, candidates, k, {"r_at_k"},
                            distance=distance)["r_at_k"])


def class_centroids(embeddings: ArrayLike, labels: ArrayLike, distance: str = "euclidean"
                    ) -> tuple[np.ndarray, np.ndarray]:
    """The centroid of each label: the mean of its items' embeddings as ``distance`` compares
    them, itself a point of that space (for cosine: the mean of the L2-normalised embeddings,
    normalised; a zero mean stays zero).

    Parameters
    ----------
    embeddings : array of shape (n, d)
    labels : array of shape (n,)
    distance : {"euclidean", "cosine"}

    Returns
    -------
    labels : ndarray of shape (c,)
        The distinct labels, sorted.
    centroids : ndarray of shape (c, d)
        Row ``i``: the centroid of ``labels[i]`` (float64).

    Examples
    --------
    >>> E = np.array([[1.0, 0.0], [3.0, 0.0], [0.0, 2.0]])
    >>> names, c = class_centroids(E, ["a", "a", "b"])
    >>> names.tolist(), c.tolist()
    (['a', 'b'], [[2.0, 0.0], [0.0, 2.0]])
    >>> class_centroids(E, ["a", "a", "b"], "cosine")[1].tolist()
    [[1.0, 0.0], [0.0, 1.0]]
    """
    emb = _check_embeddings(embeddings, distance)
    names, codes = np.unique(np.asarray(labels), return_inverse=True)
    if codes.size != len(emb):
        raise ValueError(f"labels must have shape ({len(emb)},), got {np.shape(labels)}")
    sums = np.zeros((len(names), emb.shape[1]))
    np.add.at(sums, codes.reshape(-1), emb)
    counts = np.bincount(codes.reshape(-1), minlength=len(names))[:, None]
    return names, prepare_embeddings(sums / counts, distance)


def centroid_label_auc(train_embeddings: ArrayLike, train_labels: ArrayLike,
                       query_embeddings: ArrayLike, query_labels: ArrayLike, *,
                       distance: str = "euclidean") -> float:
    """Label ROC-AUC from class centroids: how well the nearness of a held-out item to each
    class's centroid tells whether the item has that label, averaged over labels.

    What is computed:

    1. the centroid of each label ``c`` of the training items (:func:`class_centroids`): the
       mean of their embeddings as ``distance`` compares them (for cosine, the mean of the
       L2-normalised embeddings);
    2. the score of every query ``q`` for label ``c``: its similarity to that centroid, minus
       the Euclidean distance ``-|q - mu_c|`` or the cosine similarity ``cos(q, mu_c)``;
    3. for each label ``c``, the ROC-AUC of those scores over the queries, the queries with
       label ``c`` being the positives and all others the negatives (ties count one half;
       scikit-learn's ``roc_auc_score``): the probability that a random query of the label is
       nearer its centroid than a random query of another label;
    4. the unweighted mean over labels (macro average) of the labels that have a centroid,
       at least one positive and at least one negative query. NaN if no label has.

    This is the tag-wise, macro-averaged ROC-AUC of auto-tagging, with the nearness to a
    centroid as the tag score, so that it applies to models without a classification layer.

    Parameters
    ----------
    train_embeddings : array of shape (n, d)
        Training items, embedded by the model.
    train_labels : array of shape (n,)
    query_embeddings : array of shape (m, d)
        Held-out items, embedded by the same model.
    query_labels : array of shape (m,)
        Their labels; a label without training items is never scored (its queries are
        negatives of the other labels).
    distance : {"euclidean", "cosine"}

    Returns
    -------
    float

    Examples
    --------
    Centroids 0 (label a) and 10 (label b); the a at 8 is nearer b's centroid than the b at
    7, so each label ranks one of its two pairs wrongly:

    >>> train = np.array([[-1.0], [1.0], [9.0], [11.0]])
    >>> centroid_label_auc(train, ["a", "a", "b", "b"], np.array([[1.0], [8.0], [7.0]]),
    ...                    ["a", "a", "b"])
    0.5
    """
    from sklearn.metrics import roc_auc_score

    train = _check_embeddings(train_embeddings, distance)
    queries = _check_embeddings(query_embeddings, distance)
    if train.shape[1] != queries.shape[1]:
        raise ValueError(f"training embeddings have {train.shape[1]} dimensions, queries "
                         f"{queries.shape[1]}")
    train_lab = np.asarray(train_labels)
    query_lab = np.asarray(query_labels)
    if train_lab.shape != (len(train),) or query_lab.shape != (len(queries),):
        raise ValueError("there must be one label per training item and per query")
    aucs = []
    for label, centroid in zip(*class_centroids(train, train_lab, distance)):
        positive = query_lab == label
        if positive.all() or not positive.any():
            continue
        if distance == "cosine":
            scores = queries @ centroid
        else:
            scores = -np.linalg.norm(queries - centroid, axis=1)
        aucs.append(roc_auc_score(positive, scores))
    return float(np.mean(aucs)) if aucs else float("nan")


def knn_accuracy(embeddings: ArrayLike, groups: ArrayLike, k: int = 5,
                 queries: ArrayLike | None = None, candidates: ArrayLike | None = None, *,
                 distance: str = "euclidean") -> float:
    """Share of queries whose k nearest neighbours vote, by majority, for the query's group.

    Among groups with the same number of votes, the one with the nearest member wins. A query
    with fewer than ``k`` candidates votes with those it has; one without candidates is left
    out; NaN if no query counts.

    Parameters
    ----------
    embeddings : array of shape (n, d)
    groups : array of shape (n,)
        E.g. the track id of each segment.
    k : int
    queries, candidates : index array or boolean mask, optional
    distance : {"euclidean", "cosine"}

    Returns
    -------
    float

    Examples
    --------
    >>> emb = np.array([[0.0], [1.0], [2.0], [10.0]])
    >>> knn_accuracy(emb, ["a", "a", "b", "b"], k=1)  # item 2's nearest is item 1 ("a")
    0.75
    """
    return _mean(_per_query(embeddings, None, groups, queries, candidates, k, {"knn"},
                            distance=distance)["knn"])


def triplet_score(embeddings: ArrayLike, triplets: ArrayLike,
                  weights: ArrayLike | None = None, *, distance: str = "euclidean") -> float:
    """Share of triplets ``(a, p, n)`` with ``d(a, p) < d(a, n)`` (ties fail).

    Parameters
    ----------
    embeddings : array of shape (n, d)
    triplets : int array of shape (m, 3)
        Item indices of anchor, positive (judged closer to the anchor) and negative.
    weights : array of shape (m,), optional
        Non-negative weight of each triplet (e.g. listener agreement): weighted mean.
    distance : {"euclidean", "cosine"}

    Returns
    -------
    float
        NaN when there is no triplet (or all weights are zero).

    Examples
    --------
    >>> emb = np.array([[0.0], [1.0], [3.0]])
    >>> triplet_score(emb, [[0, 1, 2], [2, 0, 1]])
    0.5
    >>> triplet_score(emb, [[0, 1, 2], [2, 0, 1]], weights=[3.0, 1.0])
    0.75
    """
    emb = _check_embeddings(embeddings, distance)
    trip = np.asarray(triplets)
    if trip.size == 0:
        return float("nan")
    if trip.ndim != 2 or trip.shape[1] != 3 or not np.issubdtype(trip.dtype, np.integer):
        raise ValueError(f"triplets must be an integer array of shape (m, 3), got {trip.shape} "
                         f"{trip.dtype}")
    if trip.min() < 0 or trip.max() >= len(emb):
        raise ValueError(f"triplet indices must lie in [0, {len(emb)})")
    d_pos = np.linalg.norm(emb[trip[:, 0]] - emb[trip[:, 1]], axis=1)
    d_neg = np.linalg.norm(emb[trip[:, 0]] - emb[trip[:, 2]], axis=1)
    correct = (d_pos < d_neg).astype(np.float64)
    if weights is None:
        return float(correct.mean())
    w = np.asarray(weights, dtype=np.float64)
    if w.shape != (len(trip),) or np.any(w < 0) or not np.all(np.isfinite(w)):
        raise ValueError(f"weights must be {len(trip)} finite non-negative numbers")
    return float(np.sum(w * correct) / w.sum()) if w.sum() > 0 else float("nan")
