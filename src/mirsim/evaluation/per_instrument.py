"""Evaluation of per-instrument metrics (Hashizume, Li & Toda), as pure functions.

* Track identification (Table II): each test segment's song is predicted by the majority of
  its 5 nearest other test segments (:func:`track_identification`); over trials, the mean and
  the variance (:func:`trial_summary`).
* Distinct metrics (Fig. 4, Table III): the centroid embedding of each test song per
  condition (:func:`song_distance_matrix`), and between two conditions the Pearson
  correlation of the upper triangles of their song-distance matrices and the mean Spearman
  rank correlation of their columns (:func:`matrix_correlations`, :func:`condition_correlations`).
* Listening sets (the subjective test): an anchor song, a positive among the instrument
  metric's nearest songs, a negative among the mix metric's nearest (:func:`listening_sets`).

Distances are cosine (``1 - cos``) by default, the distance the paper's metrics are trained on.
"""

from __future__ import annotations

from collections.abc import Mapping
from itertools import combinations

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike
from scipy import stats

from mirsim.evaluation.metrics import class_centroids, knn_accuracy, prepare_embeddings

__all__ = ["track_identification", "trial_summary", "song_distance_matrix",
           "matrix_correlations", "condition_correlations", "listening_sets", "tsne_map"]


def track_identification(embeddings: ArrayLike, songs: ArrayLike, k: int = 5, *,
                         distance: str = "cosine") -> float:
    """Share of segments whose song is the majority song of their ``k`` nearest other segments.

    Examples
    --------
    >>> E = np.array([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0], [0.1, 0.9], [0.8, 0.2]])
    >>> track_identification(E, ["a", "a", "b", "b", "b"], k=1)  # the last one's nearest is "a"
    0.8
    """
    return knn_accuracy(embeddings, songs, k=k, distance=distance)


def trial_summary(values: ArrayLike) -> dict[str, float]:
    """Mean and (population) variance of a score over trials, and the number of trials.

    Examples
    --------
    >>> trial_summary([0.9, 0.8, 1.0])
    {'mean': 0.9, 'variance': 0.006667, 'trials': 3}
    """
    v = np.asarray(values, dtype=np.float64).reshape(-1)
    if v.size == 0:
        raise ValueError("no trials to summarise")
    return {"mean": round(float(v.mean()), 6), "variance": round(float(v.var()), 6),
            "trials": int(v.size)}


def song_distance_matrix(embeddings: ArrayLike, songs: ArrayLike, *, distance: str = "cosine"
                         ) -> tuple[np.ndarray, np.ndarray]:
    """Distances between the songs' centroid embeddings: the sorted song names and the
    symmetric ``(s, s)`` matrix (cosine: ``1 - cos`` of the normalised centroids).

    Examples
    --------
    >>> E = np.array([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
    >>> names, D = song_distance_matrix(E, ["x", "x", "y"])
    >>> names.tolist(), D.round(6).tolist()
    (['x', 'y'], [[0.0, 1.0], [1.0, 0.0]])
    """
    names, centroids = class_centroids(embeddings, songs, distance)
    if distance == "cosine":
        D = 1.0 - centroids @ centroids.T
    else:
        sq = (centroids ** 2).sum(1)
        D = np.sqrt(np.maximum(sq[:, None] + sq[None, :] - 2 * centroids @ centroids.T, 0))
    D = (D + D.T) / 2
    np.fill_diagonal(D, 0.0)
    return names, np.maximum(D, 0.0)


def _check_square(D: ArrayLike, name: str) -> np.ndarray:
    D = np.asarray(D, dtype=np.float64)
    if D.ndim != 2 or D.shape[0] != D.shape[1] or D.shape[0] < 3:
        raise ValueError(f"{name} must be a square distance matrix of at least 3 songs, "
                         f"got shape {D.shape}")
    return D


def matrix_correlations(a: ArrayLike, b: ArrayLike) -> dict[str, float]:
    """Pearson correlation of the upper triangles of two song-distance matrices and the mean,
    over songs, of the Spearman rank correlation of their columns (each column without its
    diagonal zero, which every metric shares).

    Examples
    --------
    >>> A = np.array([[0, 1, 2], [1, 0, 3], [2, 3, 0]])
    >>> matrix_correlations(A, 2 * A)
    {'pearson': 1.0, 'spearman': 1.0}
    """
    A, B = _check_square(a, "a"), _check_square(b, "b")
    if A.shape != B.shape:
        raise ValueError(f"the matrices differ in shape: {A.shape} and {B.shape}")
    upper = np.triu_indices(len(A), k=1)
    pearson = float(stats.pearsonr(A[upper], B[upper]).statistic)
    columns = []
    for j in range(len(A)):
        keep = np.arange(len(A)) != j
        columns.append(stats.spearmanr(A[keep, j], B[keep, j]).statistic)
    return {"pearson": round(pearson, 6), "spearman": round(float(np.nanmean(columns)), 6)}


def condition_correlations(matrices: Mapping[str, ArrayLike]) -> pd.DataFrame:
    """:func:`matrix_correlations` between every pair of conditions (Table III): one row per
    pair, columns ``a``, ``b``, ``pearson``, ``spearman``. The matrices must be over the same
    songs in the same order.

    Examples
    --------
    >>> A = np.array([[0, 1, 2], [1, 0, 3], [2, 3, 0]])
    >>> condition_correlations({"mix": A, "drums": A})[["a", "b", "pearson"]].values.tolist()
    [['mix', 'drums', 1.0]]
    """
    rows = [{"a": a, "b": b, **matrix_correlations(matrices[a], matrices[b])}
            for a, b in combinations(matrices, 2)]
    return pd.DataFrame(rows, columns=["a", "b", "pearson", "spearman"])


def _nearest(D: np.ndarray, anchor: int, top: int) -> list[int]:
    order = [int(j) for j in np.argsort(D[anchor], kind="stable") if j != anchor]
    return order[:top]


def listening_sets(instrument: ArrayLike, mix: ArrayLike, n_sets: int = 8, top: int = 2,
                   seed: int = 0) -> list[dict[str, int]]:
    """The paper's listening sets for one instrument: ``{"a", "b", "c"}`` song indices with
    ``b`` (the positive) among the ``top`` nearest songs to the anchor ``a`` by the instrument
    metric and ``c`` (the negative) among its ``top`` nearest by the mix metric. A set is
    invalid, and the anchor skipped, when the two top lists overlap. Anchors are tried in an
    order drawn from ``seed`` until ``n_sets`` valid sets are found (fewer when there are not
    that many valid anchors); positive and negative are each drawn from their top list.

    Examples
    --------
    >>> inst = np.array([[0, 1, 5, 5], [1, 0, 5, 5], [5, 5, 0, 1], [5, 5, 1, 0]], float)
    >>> mix = np.array([[0, 5, 1, 5], [5, 0, 5, 1], [1, 5, 0, 5], [5, 1, 5, 0]], float)
    >>> sets = listening_sets(inst, mix, n_sets=2, top=1, seed=0)
    >>> sorted((s["a"], s["b"], s["c"]) for s in sets)
    [(0, 1, 2), (2, 3, 0)]
    """
    I, M = _check_square(instrument, "instrument"), _check_square(mix, "mix")
    if I.shape != M.shape:
        raise ValueError(f"the matrices differ in shape: {I.shape} and {M.shape}")
    if top < 1 or n_sets < 1:
        raise ValueError(f"n_sets and top must be positive, got {n_sets}, {top}")
    rng = np.random.default_rng(seed)
    sets: list[dict[str, int]] = []
    for anchor in rng.permutation(len(I)):
        positives, negatives = _nearest(I, anchor, top), _nearest(M, anchor, top)
        if set(positives) & set(negatives):
            continue
        sets.append({"a": int(anchor), "b": int(rng.choice(positives)),
                     "c": int(rng.choice(negatives))})
        if len(sets) == n_sets:
            break
    return sets


def tsne_map(embeddings: ArrayLike, seed: int = 0, *, distance: str = "cosine") -> np.ndarray:
    """A 2-D t-SNE map of segment embeddings (Fig. 3; scikit-learn), perplexity capped below
    the number of points.

    Examples
    --------
    >>> tsne_map(np.random.default_rng(0).standard_normal((12, 4))).shape
    (12, 2)
    """
    from sklearn.manifold import TSNE

    X = prepare_embeddings(np.asarray(embeddings, dtype=np.float64), distance)
    if len(X) < 3:
        raise ValueError(f"t-SNE needs at least 3 points, got {len(X)}")
    perplexity = min(30.0, max(1.0, (len(X) - 1) / 3))
    return TSNE(2, perplexity=perplexity, init="pca", random_state=seed).fit_transform(X)
