"""Does an altered version of a sound find the sound itself? A check of a metric that needs no
labels (for self-supervised models on an unlabelled library).

Each query is an augmented view of a sound (:mod:`mirsim.features.views`); the candidates are
the clean sounds of the same set, and the query's only relevant candidate is its own sound.
With one relevant candidate, average precision is ``1 / rank`` (what scikit-learn's
``label_ranking_average_precision_score`` gives), so MAP is the mean reciprocal rank.
A candidate at the same distance as the own sound counts as ranked before it, so ties never
flatter a metric (a model that maps everything to one point scores chance or worse).
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

from mirsim.evaluation.metrics import prepare_embeddings

__all__ = ["own_sound_metrics", "own_sound_ranks"]


def own_sound_ranks(sounds: ArrayLike, views: ArrayLike, distance: str = "euclidean"
                    ) -> np.ndarray:
    """Rank (from 1) of sound ``i`` among ``sounds`` when view ``i`` is the query.

    Parameters
    ----------
    sounds : array of shape (m, d)
        Embeddings of the clean sounds (the candidates).
    views : array of shape (m, d)
        Embeddings of one augmented view of each sound, in the same order (the queries).
    distance : {"euclidean", "cosine"}

    Examples
    --------
    >>> s = np.array([[0.0, 0.0], [1.0, 0.0], [5.0, 0.0]])
    >>> own_sound_ranks(s, s + [[0.1, 0], [2.9, 0], [0, 0]]).tolist()
    [1, 2, 1]
    """
    s = prepare_embeddings(np.asarray(sounds, dtype=np.float64), distance)
    v = prepare_embeddings(np.asarray(views, dtype=np.float64), distance)
    if s.ndim != 2 or s.shape != v.shape:
        raise ValueError(f"sounds and views must be two arrays of the same shape (m, d), got "
                         f"{s.shape} and {v.shape}")
    d = (v ** 2).sum(1)[:, None] + (s ** 2).sum(1)[None, :] - 2.0 * v @ s.T
    own = np.diag(d)[:, None]
    return np.count_nonzero(d <= own, axis=1)


def own_sound_metrics(sounds: ArrayLike, views: ArrayLike, distance: str = "euclidean",
                      k: int = 5) -> dict[str, float]:
    """How well views retrieve their own sound: top-1, top-``k`` and MAP (mean reciprocal rank).

    Returns
    -------
    dict
        ``own_top_1`` (share of views whose nearest sound is their own), ``own_top_<k>``
        (own sound among the ``k`` nearest; 1.0 when there are at most ``k`` sounds),
        ``own_map`` and ``n_queries``. Chance is ``1 / m`` for top-1.

    Examples
    --------
    >>> s = np.array([[0.0, 0.0], [1.0, 0.0], [5.0, 0.0]])
    >>> m = own_sound_metrics(s, s + [[0.1, 0], [2.9, 0], [0, 0]], k=2)
    >>> round(m["own_top_1"], 3), m["own_top_2"], round(m["own_map"], 3), m["n_queries"]
    (0.667, 1.0, 0.833, 3)
    """
    ranks = own_sound_ranks(sounds, views, distance)
    return {"own_top_1": float(np.mean(ranks <= 1)), f"own_top_{k}": float(np.mean(ranks <= k)),
            "own_map": float(np.mean(1.0 / ranks)), "n_queries": int(len(ranks))}
