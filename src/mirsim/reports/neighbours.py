"""Queries and their nearest neighbours in the embedding space (Euclidean distance)."""

from __future__ import annotations

import numpy as np


def pick_queries(labels: np.ndarray, n: int, seed: int = 0) -> np.ndarray:
    """``n`` query items: one item of each of ``n`` labels drawn at random (seeded); when there
    are fewer labels than ``n``, the remaining queries are drawn from the other items.

    Examples
    --------
    >>> labels = np.array(["a", "a", "b", "b", "c", "c"])
    >>> q = pick_queries(labels, 3, seed=0)
    >>> sorted(labels[q].tolist()), len(set(q.tolist()))
    (['a', 'b', 'c'], 3)
    >>> len(pick_queries(labels, 5)), len(pick_queries(labels, 10))
    (5, 6)
    """
    labels = np.asarray(labels)
    n = min(max(n, 0), len(labels))
    rng = np.random.default_rng(seed)
    names = np.unique(labels)
    chosen = rng.choice(len(names), size=min(n, len(names)), replace=False)
    queries = [int(rng.choice(np.flatnonzero(labels == names[c]))) for c in chosen]
    rest = np.setdiff1d(np.arange(len(labels)), queries)
    extra = rng.choice(rest, size=n - len(queries), replace=False) if n > len(queries) else []
    return np.array(queries + [int(i) for i in extra], dtype=int)


def nearest_neighbours(embeddings: np.ndarray, item: int, k: int = 5
                       ) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` items nearest to ``item`` (itself excluded; ties broken by position) and
    their Euclidean distances.

    Examples
    --------
    >>> E = np.array([[0.0], [1.0], [3.0], [0.5]])
    >>> rows, dist = nearest_neighbours(E, 0, k=2)
    >>> rows.tolist(), dist.tolist()
    ([3, 1], [0.5, 1.0])
    """
    E = np.asarray(embeddings, dtype=np.float64)
    dist = np.linalg.norm(E - E[item], axis=1)
    dist[item] = np.inf
    order = np.argsort(dist, kind="stable")[: min(k, len(E) - 1)]
    return order, dist[order]
