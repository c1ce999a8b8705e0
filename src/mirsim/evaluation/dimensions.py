"""Per-dimension triplet evaluation of a conditional model (:mod:`mirsim.models.csn`):
triplets of held-out items drawn from each dimension's similarity matrix, scored on that
dimension's sub-space with :func:`mirsim.evaluation.metrics.triplet_score`."""

from __future__ import annotations

from collections.abc import Callable, Mapping

import numpy as np
from numpy.typing import ArrayLike

from mirsim.evaluation.metrics import triplet_score

__all__ = ["dimension_triplets", "dimension_triplet_scores"]


def dimension_triplets(similar: Mapping[str, ArrayLike], items: ArrayLike | None = None,
                       n_per_dimension: int = 1000, seed: int = 0) -> dict[str, np.ndarray]:
    """Draw, per dimension, triplets ``(a, p, n)`` among ``items``: ``p`` similar to ``a``
    in that dimension, ``n`` not (uniformly over the anchors that have both, then over
    their positives and negatives; repeats possible).

    Parameters
    ----------
    similar : dict of str to bool array of shape (N, N)
        Similarity matrices over all items.
    items : int array, optional
        The held-out items to draw from (default: all); triplets index into all ``N``.
    n_per_dimension : int
    seed : int

    Returns
    -------
    dict of str to int array of shape (m, 3)
        ``m = n_per_dimension``, or 0 rows for a dimension without any triplet.

    Examples
    --------
    >>> g = np.array([0, 0, 1, 1, 0])
    >>> t = dimension_triplets({"g": g[:, None] == g}, items=[0, 1, 2, 3], n_per_dimension=5)
    >>> t["g"].shape, bool(np.isin(t["g"], [0, 1, 2, 3]).all())
    ((5, 3), True)
    >>> bool((g[t["g"][:, 0]] == g[t["g"][:, 1]]).all() and (g[t["g"][:, 0]] != g[t["g"][:, 2]]).all())
    True
    """
    rng = np.random.default_rng(seed)
    out = {}
    for name, S in similar.items():
        S = np.asarray(S, dtype=bool)
        idx = np.arange(len(S)) if items is None else np.unique(np.asarray(items, dtype=np.int64))
        sub = S[np.ix_(idx, idx)]
        pos = sub & ~np.eye(len(idx), dtype=bool)
        neg = ~sub
        anchors = np.flatnonzero(pos.any(axis=1) & neg.any(axis=1))
        if len(anchors) == 0:
            out[name] = np.zeros((0, 3), dtype=np.int64)
            continue
        a = rng.choice(anchors, n_per_dimension)
        p = np.array([rng.choice(np.flatnonzero(pos[i])) for i in a])
        n = np.array([rng.choice(np.flatnonzero(neg[i])) for i in a])
        out[name] = idx[np.stack([a, p, n], axis=1)]
    return out


def dimension_triplet_scores(embed: Callable[[str], np.ndarray],
                             triplets: Mapping[str, ArrayLike], distance: str = "cosine"
                             ) -> dict[str, float]:
    """Triplet score of each dimension's triplets on that dimension's embedding.

    ``embed(name)`` gives the ``(N, d)`` embeddings of all items in dimension ``name``'s
    sub-space, e.g. ``lambda d: model.transform(X, dimension=d)``.

    Examples
    --------
    >>> emb = {"g": np.array([[0.0], [0.1], [5.0]])}
    >>> dimension_triplet_scores(emb.__getitem__, {"g": [[0, 1, 2], [1, 2, 0]]}, "euclidean")
    {'g': 0.5}
    """
    return {name: triplet_score(embed(name), np.asarray(t, dtype=np.int64), distance=distance)
            for name, t in triplets.items()}
