"""Per-dimension triplet evaluation of a conditional model (:mod:`mirsim.models.csn`):
triplets of held-out items drawn from each dimension's similarity matrix, scored on that
dimension's sub-space with :func:`mirsim.evaluation.metrics.triplet_score`."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from itertools import combinations
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from mirsim.evaluation.metrics import triplet_score

__all__ = ["DimensionTripletMetrics", "dimension_summary", "dimension_triplets",
           "dimension_triplet_scores", "subspace_combinations"]

#: Prefix of the per-fold metric names of :class:`DimensionTripletMetrics`.
PREFIX = "dimension"
#: Prefix of the per-fold metric names of judged (human) triplets, e.g. the listeners'.
JUDGED_PREFIX = "judged"
#: The space that is the whole embedding (no mask).
WHOLE = "whole"


def dimension_triplets(similar: Mapping[str, ArrayLike], items: ArrayLike | None = None,
                       n_per_dimension: int = 1000, seed: int = 0,
                       groups: ArrayLike | None = None) -> dict[str, np.ndarray]:
    """Draw, per dimension, triplets ``(a, p, n)`` among ``items``: ``p`` similar to ``a``
    in that dimension, ``n`` not (uniformly over the anchors that have both, then over
    their positives and negatives; repeats possible). With ``groups`` (e.g. the song of
    each segment), a positive is never of the anchor's group: two segments of one song are
    alike in every dimension, and would make the test easy.

    Parameters
    ----------
    similar : dict of str to bool array of shape (N, N)
        Similarity matrices over all items.
    items : int array, optional
        The held-out items to draw from (default: all); triplets index into all ``N``.
    n_per_dimension : int
    seed : int
    groups : array of shape (N,), optional
        The group of every item; positives are drawn from other groups.

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
    >>> songs = np.array([0, 0, 1, 2, 3])
    >>> t = dimension_triplets({"g": g[:, None] == g}, n_per_dimension=20, groups=songs)
    >>> set(map(tuple, t["g"][:, :2].tolist())) <= {(0, 4), (1, 4), (4, 0), (4, 1), (2, 3), (3, 2)}
    True
    """
    rng = np.random.default_rng(seed)
    out = {}
    for name, S in similar.items():
        S = np.asarray(S, dtype=bool)
        idx = np.arange(len(S)) if items is None else np.unique(np.asarray(items, dtype=np.int64))
        sub = S[np.ix_(idx, idx)]
        pos = sub & ~np.eye(len(idx), dtype=bool)
        if groups is not None:
            g = np.asarray(groups)[idx]
            pos &= g[:, None] != g[None, :]
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


def subspace_combinations(names: Sequence[str]) -> list[tuple[str, ...]]:
    """Every non-empty combination of sub-spaces, smallest first, in the given order.

    Examples
    --------
    >>> subspace_combinations(["genre", "tempo"])
    [('genre',), ('tempo',), ('genre', 'tempo')]
    """
    return [c for r in range(1, len(names) + 1) for c in combinations(names, r)]


@dataclass
class DimensionTripletMetrics:
    """Per-fold triplet prediction scores of held-out items, one set of triplets per
    dimension of similarity: an ``extra_metrics`` of
    :func:`mirsim.evaluation.protocols.evaluate_protocol`.

    In each fold, :func:`dimension_triplets` draws ``n_per_dimension`` triplets among the
    fold's test items from each matrix of ``similar`` (positives of other ``groups`` than
    the anchor's, when given); they are scored in the whole embedding
    (no mask, the model's distance) and, for a conditional model (one with ``subspaces_``),
    in every combination of its sub-spaces (:func:`subspace_combinations`: the chosen
    sub-spaces concatenated, cosine distance). The metrics are named
    ``dimension:<dimension>:<space>``, ``<space>`` being ``whole`` or the chosen sub-spaces
    joined by ``+``; :func:`dimension_summary` nests their summary.

    ``judged`` adds fixed sets of judged triplets over all items (e.g. the listeners' of
    Cyberlioz, pooled: a triplet that several listeners give counts once per listener): in
    each fold, those whose three items are all test items are scored in the same spaces, as
    ``judged:<name>:<space>`` (:func:`dimension_summary` with ``prefix="judged"``), and
    their number as ``n_judged:<name>`` (a total over folds in the summary). Which
    sub-space predicts them best says which dimension the judges attend to.

    Examples
    --------
    >>> from mirsim.evaluation.protocols import evaluate_protocol
    >>> from mirsim.models import EuclideanModel
    >>> rng = np.random.default_rng(0); g = np.repeat(np.arange(4), 10)
    >>> X = rng.standard_normal((40, 3)) + 3 * g[:, None]
    >>> scorer = DimensionTripletMetrics(X, {"g": g[:, None] == g}, n_per_dimension=50)
    >>> r = evaluate_protocol(EuclideanModel, X, g, np.arange(40), "kfold", 2,
    ...                       extra_metrics=scorer)
    >>> dimension_summary(r.summary())["g"]["whole"]["mean"] > 0.9
    True
    """

    X: np.ndarray = field(repr=False)
    similar: Mapping[str, np.ndarray] = field(repr=False)
    n_per_dimension: int = 1000
    seed: int = 0
    judged: Mapping[str, np.ndarray] | None = field(default=None, repr=False)
    groups: np.ndarray | None = field(default=None, repr=False)

    def __call__(self, fold: Any) -> dict[str, float]:
        test = np.asarray(fold.test)
        X = np.asarray(self.X, dtype=np.float32)[test]
        blocks = {d: np.asarray(S, dtype=bool)[np.ix_(test, test)]
                  for d, S in self.similar.items()}
        groups = None if self.groups is None else np.asarray(self.groups)[test]
        triplets = dimension_triplets(blocks, None, self.n_per_dimension, self.seed, groups)
        spaces = _spaces(fold.model, X, fold.distance)
        scores = {f"{PREFIX}:{d}:{space}": _score(emb, t, distance)
                  for d, t in triplets.items() for space, (emb, distance) in spaces.items()}
        for name, t in _judged_among(self.judged or {}, test).items():
            scores.update({f"{JUDGED_PREFIX}:{name}:{space}": _score(emb, t, distance)
                           for space, (emb, distance) in spaces.items()})
            scores[f"n_{JUDGED_PREFIX}:{name}"] = len(t)  # summed over folds
        return scores


def _score(embeddings: np.ndarray, triplets: np.ndarray, distance: str) -> float:
    """:func:`triplet_score`, or NaN for a fold without any triplet (left out of the mean
    over folds)."""
    return triplet_score(embeddings, triplets, distance=distance) if len(triplets) \
        else float("nan")


def _spaces(model: Any, X: np.ndarray, distance: str) -> dict[str, tuple[np.ndarray, str]]:
    """The whole embedding and, for a conditional model, every combination of its sub-spaces
    (each L2-normalised, side by side; cosine distance), with their distances."""
    spaces = {WHOLE: (model.transform(X), distance)}
    own = getattr(model, "dimensions_", None) if hasattr(model, "subspaces_") else None
    sub = {d: model.transform(X, dimension=d) for d in own or []}
    for chosen in subspace_combinations(list(sub)):
        spaces["+".join(chosen)] = (np.concatenate([sub[d] for d in chosen], axis=1), "cosine")
    return spaces


def _judged_among(judged: Mapping[str, ArrayLike], test: np.ndarray) -> dict[str, np.ndarray]:
    """Each set's triplets whose three items are test items, re-indexed into ``test``
    (possibly none).

    >>> _judged_among({"h": [[0, 1, 2], [0, 1, 3]]}, np.array([2, 1, 0]))
    {'h': array([[2, 1, 0]])}
    """
    where = np.full(int(max([test.max(initial=-1), *[np.max(t, initial=-1) for t in
                                                     judged.values()]])) + 1, -1)
    where[test] = np.arange(len(test))
    out = {}
    for name, t in judged.items():
        local = where[np.asarray(t, dtype=np.int64).reshape(-1, 3)]
        out[name] = local[(local >= 0).all(axis=1)]
    return out


def dimension_summary(summary: Mapping[str, Mapping[str, float]], prefix: str = PREFIX
                      ) -> dict[str, dict[str, dict[str, float]]]:
    """``{dimension: {space: {"mean", "std"}}}`` from a protocol summary holding
    :class:`DimensionTripletMetrics` (``{}`` if it holds none); ``prefix="judged"``: the
    same for its judged triplets, ``{set name: {space: ...}}``.

    Examples
    --------
    >>> dimension_summary({"p_at_1": {}, "dimension:tempo:whole": {"mean": 0.7, "std": 0.1}})
    {'tempo': {'whole': {'mean': 0.7, 'std': 0.1}}}
    """
    out: dict[str, dict[str, dict[str, float]]] = {}
    for name, stat in summary.items():
        head, _, rest = name.partition(":")
        if head == prefix:
            dimension, _, space = rest.partition(":")
            out.setdefault(dimension, {})[space] = dict(stat)
    return out
