"""Evaluation protocols: how items are split, what is a query and what can be retrieved.

``kfold``        the AN-GNN paper's: items split at random into K folds; train on K-1 folds;
                 queries and retrievals both inside the held-out fold.
``group-kfold``  new sounds: folds by group, so the test groups (IMT classes, tracks) were never
                 seen in training; queries are the held-out items, the searchable library is
                 every other item (training items included).
``loo``          leave one item out: train on the rest, query it against the rest.

Every fitted preprocessing (standardisation) is fitted by the model on the training part only.
Graph models embed every item inductively against their training set (see
:mod:`mirsim.models.graph`).

Held-out embeddings
-------------------
Besides the metrics, a protocol run keeps the embeddings of the test part of its **last fold**
(:class:`HeldOutEmbeddings`): the items of one fold, embedded by the one model trained without
them, so that distances between them are those the metrics were measured with (embeddings of
different folds come from different models and are not comparable). Only one fold is kept, to
bound memory. ``kfold`` keeps ``model.transform(X[test])``; ``group-kfold`` embeds every item
and keeps the test rows. ``loo`` keeps none: its last fold holds a single item, with no
neighbours to show.

Extra metrics
-------------
Besides P@1, P@k, ii-P@k and MAP@R, :func:`evaluate_protocol` can measure more in each fold:
``extra_metrics(fold)`` receives the fold's :class:`FoldEmbeddings` (the fitted model, the
embeddings the retrieval metrics were measured on, the training part) and returns named
numbers, which are averaged over folds like the others.

Scores of every fold
--------------------
A ``fold_scorer`` given to :func:`evaluate_protocol` is called on every fold with
``(embeddings of every item by the fold's model, the fold's test indices, the model's
distance)``; what it returns is kept, fold by fold, in ``ProtocolResult.fold_scores``. This is
how scores that must be added up over the run rather than averaged over folds (e.g. each
listener's triplet agreement over held-out anchors, :class:`mirsim.evaluation.judgments.
ListenerJudgments`) see each fold's model. Under ``kfold`` too the scorer gets every item
embedded (its metrics embed the test part only).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
from joblib import delayed

from mirsim.errors import DataError, MirsimError
from mirsim.evaluation.metrics import retrieval_metrics
from mirsim.params import Interval, estimator, param
from mirsim.registries import PROTOCOLS


class Protocol:
    """How items are split into training and test parts, and what is searched.

    ``queries_inside_test_fold``: queries retrieve among the test part only (``kfold``, the
    paper's); otherwise among every item (what a user adding a new sound sees).
    """

    name: ClassVar[str]
    queries_inside_test_fold: ClassVar[bool] = False
    #: the last fold's test part is kept as held-out embeddings (see the module's description)
    keeps_held_out: ClassVar[bool] = True
    catalogue_attributes = ("queries_inside_test_fold", "keeps_held_out")

    def split(self, n_items: int, groups: np.ndarray | None = None
              ) -> list[tuple[np.ndarray, np.ndarray]]:
        """(train, test) index pairs."""
        raise NotImplementedError


@PROTOCOLS.register
@estimator
class KFoldProtocol(Protocol):
    """The AN-GNN paper's: random folds; queries and retrievals inside the test fold."""

    name = "kfold"
    queries_inside_test_fold = True
    n_folds: int = param(5, Interval(int, 2, None), "number of folds")
    seed: int = param(0, Interval(int, 0, None), "seed of the split")

    def split(self, n_items, groups=None):
        from sklearn.model_selection import KFold

        if self.n_folds > n_items:
            raise DataError(f"{self.n_folds} folds need at least {self.n_folds} items "
                            f"(have {n_items})")
        return list(KFold(self.n_folds, shuffle=True, random_state=self.seed).split(
            np.arange(n_items)))


@PROTOCOLS.register
@estimator
class GroupKFoldProtocol(Protocol):
    """New sounds: folds by group; a test item is searched among every other item."""

    name = "group-kfold"
    n_folds: int = param(5, Interval(int, 2, None), "number of folds")
    seed: int = param(0, Interval(int, 0, None), "seed of the split")

    def split(self, n_items, groups=None):
        from sklearn.model_selection import GroupKFold

        if groups is None:
            raise DataError("group-kfold needs groups")
        n_groups = len(np.unique(groups))
        if self.n_folds > n_groups:
            raise DataError(f"{self.n_folds} folds need at least {self.n_folds} groups "
                            f"(have {n_groups})")
        return list(GroupKFold(self.n_folds, shuffle=True, random_state=self.seed).split(
            np.arange(n_items), groups=groups))


@PROTOCOLS.register
@estimator
class LeaveOneOutProtocol(Protocol):
    """Leave one item out: train on the rest, query it against the rest."""

    name = "loo"
    keeps_held_out = False

    def split(self, n_items, groups=None):
        from sklearn.model_selection import LeaveOneOut

        return list(LeaveOneOut().split(np.arange(n_items)))


def make_protocol(name: str, n_folds: int = 5, seed: int = 0) -> Protocol:
    """The protocol ``name`` with the settings it has (``loo`` has neither).

    Examples
    --------
    >>> make_protocol("kfold", 3).n_folds, make_protocol("loo").name
    (3, 'loo')
    """
    from mirsim.registry import class_params

    cls = PROTOCOLS.get(name)
    given = {"n_folds": n_folds, "seed": seed}
    return PROTOCOLS.make(name, **{k: v for k, v in given.items() if k in class_params(cls)})


def split_indices(protocol: str, n_items: int, groups: np.ndarray | None = None,
                  n_folds: int = 5, seed: int = 0) -> list[tuple[np.ndarray, np.ndarray]]:
    """(train, test) index pairs of a protocol.

    Examples
    --------
    >>> [len(te) for _, te in split_indices("kfold", 10, n_folds=5)]
    [2, 2, 2, 2, 2]
    >>> g = np.array([0, 0, 1, 1, 2, 2])
    >>> all(set(g[tr]).isdisjoint(g[te]) for tr, te in split_indices("group-kfold", 6, g, 3))
    True
    """
    return make_protocol(protocol, n_folds, seed).split(n_items, groups)


@dataclass
class HeldOutEmbeddings:
    """The test part of one fold, embedded by the model trained without it.

    Attributes
    ----------
    fold : int
        Which fold, counted from 1 (the last one: ``fold == n_folds``).
    n_folds : int
        Folds of the protocol run.
    indices : numpy.ndarray
        ``(m,)`` rows of ``X`` that were the fold's test part, in split order.
    embeddings : numpy.ndarray
        ``(m, d)`` float32 embeddings of those rows.

    Examples
    --------
    >>> h = HeldOutEmbeddings(3, 3, np.array([4, 7]), np.zeros((2, 8), np.float32))
    >>> len(h), h.embeddings.dtype
    (2, dtype('float32'))
    """

    fold: int
    n_folds: int
    indices: np.ndarray
    embeddings: np.ndarray

    def __len__(self) -> int:
        return len(self.indices)


@dataclass
class FoldEmbeddings:
    """One fold as its extra metrics see it (see the module's description).

    Attributes
    ----------
    model : MetricModel
        The model fitted on the fold's training part.
    distance : str
        The model's distance.
    embeddings : numpy.ndarray
        ``(m, d)`` the items the fold ranks: its test part (``kfold``) or every item.
    labels, groups : numpy.ndarray
        ``(m,)`` of those rows.
    queries : numpy.ndarray or None
        Rows of ``embeddings`` used as queries (``None``: every row); the candidates are every
        row.
    train_labels : numpy.ndarray
        Labels of the training part.

    Examples
    --------
    >>> from mirsim.models import EuclideanModel
    >>> X = np.arange(8.0).reshape(4, 2); y = np.array([0, 0, 1, 1])
    >>> m = EuclideanModel().fit(X[:2], y[:2])
    >>> f = FoldEmbeddings(m, "euclidean", m.transform(X), y, y, np.array([2, 3]), y[:2],
    ...                    X[:2], train_rows=np.array([0, 1]))
    >>> f.query_labels.tolist(), f.train_embeddings().shape
    ([1, 1], (2, 2))
    """

    model: Any
    distance: str
    embeddings: np.ndarray
    labels: np.ndarray
    groups: np.ndarray
    queries: np.ndarray | None
    train_labels: np.ndarray
    X_train: np.ndarray = field(repr=False)
    #: rows of ``embeddings`` that are the training part, when they are among them
    train_rows: np.ndarray | None = None
    #: the fold's test part, as indices into the protocol's ``X``
    test: np.ndarray | None = None

    @property
    def query_embeddings(self) -> np.ndarray:
        return self.embeddings if self.queries is None else self.embeddings[self.queries]

    @property
    def query_labels(self) -> np.ndarray:
        return self.labels if self.queries is None else self.labels[self.queries]

    def train_embeddings(self) -> np.ndarray:
        """The training part embedded by the model (computed when not already at hand)."""
        if self.train_rows is not None:
            return self.embeddings[self.train_rows]
        return self.model.transform(self.X_train)


@dataclass
class ProtocolResult:
    """Per-fold metrics of one protocol run, their mean and standard deviation, and the
    held-out embeddings of the last fold (``None`` for ``loo``; see the module's description).
    """

    protocol: str
    per_fold: list[dict[str, float]]
    fit_seconds: list[float] = field(default_factory=list)
    n_parameters: int = 0
    held_out: HeldOutEmbeddings | None = None
    #: what the ``fold_scorer`` returned for each fold (empty without one)
    fold_scores: list[Any] = field(default_factory=list)

    def summary(self) -> dict[str, dict[str, float]]:
        """``{metric: {"mean", "std"}}`` over folds (NaN folds ignored; sample std); query
        counts (``n_queries``, ``n_without_relevant``) as ``{"total"}`` over folds."""
        out: dict[str, dict[str, float]] = {}
        for name in self.per_fold[0]:
            if name.startswith("n_"):
                out[name] = {"total": int(sum(f.get(name, 0) for f in self.per_fold))}
                continue
            v = np.array([f[name] for f in self.per_fold], dtype=float)
            v = v[np.isfinite(v)]
            out[name] = {"mean": float(v.mean()) if len(v) else float("nan"),
                         "std": float(v.std(ddof=1)) if len(v) > 1 else 0.0}
        return out

    @property
    def train_seconds(self) -> float:
        return float(sum(self.fit_seconds))


@dataclass(frozen=True)
class TrainingVariants:
    """Extra training items made from items of a data set (transposed or louder versions of a
    sound, say): a fold learns from the variants of its training items, never from those of a
    test item. A variant has its source's label and group.

    Parameters
    ----------
    X : array of shape (m, d)
        The variants' features (the data set's feature space).
    source : array of shape (m,)
        For each variant, the index of the item it was made from (into the data set's ``X``).

    Examples
    --------
    >>> v = TrainingVariants(np.arange(8.0).reshape(4, 2), np.array([0, 0, 2, 3]))
    >>> v.of(np.array([0, 3])).tolist()  # rows of the variants of items 0 and 3
    [0, 1, 3]
    """

    X: np.ndarray
    source: np.ndarray

    def __post_init__(self):
        if len(self.X) != len(self.source):
            raise ValueError(f"{len(self.X)} variants but {len(self.source)} sources")

    def of(self, train: np.ndarray) -> np.ndarray:
        """Rows of the variants whose source is in ``train``."""
        return np.flatnonzero(np.isin(self.source, train))


def _with_variants(X: np.ndarray, labels: np.ndarray, groups: np.ndarray, train: np.ndarray,
                   variants: TrainingVariants | None
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Features, labels and groups a fold fits on: its training items and their variants."""
    if variants is None:
        return X[train], labels[train], groups[train]
    rows = variants.of(train)
    source = variants.source[rows]
    return (np.concatenate([X[train], np.asarray(variants.X[rows], dtype=X.dtype)]),
            np.concatenate([labels[train], labels[source]]),
            np.concatenate([groups[train], groups[source]]))


def training_triplets(triplets: np.ndarray, weights: np.ndarray | None, train: np.ndarray
                      ) -> tuple[np.ndarray, np.ndarray | None]:
    """The triplets whose three items are all in ``train``, as positions in ``train``, and
    their weights: what a fold's model may learn from.

    Examples
    --------
    >>> t = np.array([[0, 1, 2], [0, 1, 3], [2, 3, 0]])
    >>> local, w = training_triplets(t, np.array([1.0, 0.5, 0.2]), np.array([0, 2, 3]))
    >>> local.tolist(), w.tolist()
    ([[1, 2, 0]], [0.2])
    """
    position = np.full(int(max(triplets.max(initial=-1), train.max(initial=-1))) + 1, -1)
    position[train] = np.arange(len(train))
    local = position[triplets]
    keep = (local >= 0).all(axis=1)
    if not keep.any():
        raise MirsimError("no judged triplet lies among the training items of a fold")
    return local[keep], None if weights is None else np.asarray(weights)[keep]


def training_similarities(similarities: np.ndarray | Mapping[str, np.ndarray],
                          train: np.ndarray) -> np.ndarray | dict[str, np.ndarray]:
    """The target similarities among the items of ``train`` (rows and columns in the order of
    ``train``): what a fold's model may learn from, never a test item's row or column. A dict
    of matrices (one per dimension of similarity, for a conditional model's ``similar=``)
    gives the training block of each.

    Examples
    --------
    >>> S = np.array([[1.0, 0.5, 0.0], [0.5, 1.0, 0.2], [0.0, 0.2, 1.0]])
    >>> training_similarities(S, np.array([2, 0])).tolist()
    [[1.0, 0.0], [0.0, 1.0]]
    >>> training_similarities({"g": S > 0.4}, np.array([0, 1]))["g"].tolist()
    [[True, True], [True, True]]
    """
    if isinstance(similarities, Mapping):
        return {name: training_similarities(S, train) for name, S in similarities.items()}
    S = np.asarray(similarities)
    if S.ndim != 2 or S.shape[0] != S.shape[1]:
        raise MirsimError(f"target similarities must be a square matrix, got shape {S.shape}")
    return S[np.ix_(train, train)]


def _run_fold(make_model: Callable, X: np.ndarray, labels: np.ndarray, groups: np.ndarray,
              train: np.ndarray, test: np.ndarray, inside_test_fold: bool, k: int,
              torch_threads: int | None, keep: bool = False, views: np.ndarray | None = None,
              triplets: tuple[np.ndarray, np.ndarray | None] | None = None,
              extra_metrics: Callable[[FoldEmbeddings], dict[str, float]] | None = None,
              fold_scorer: Callable[[np.ndarray, np.ndarray, str], Any] | None = None,
              variants: TrainingVariants | None = None,
              similarities: np.ndarray | Mapping[str, np.ndarray] | None = None
              ) -> tuple[dict[str, float], float, int, np.ndarray | None, Any]:
    """Fit on ``train`` (on the training items' views, triplets or target similarities instead
    of their labels, if given), embed, and measure retrieval for one fold (with the model's
    own distance), and ``extra_metrics``; with ``keep``, also return the test part's
    embeddings (rows in the order of ``test``), else ``None``; with ``fold_scorer``, also what
    it returns for the embeddings of every item and ``test``, else ``None``."""
    if torch_threads is not None:
        import torch

        torch.set_num_threads(torch_threads)
    model = make_model()
    t0 = time.perf_counter()
    if triplets is not None:  # judged triplets among the training items only, no label
        local, weights = training_triplets(*triplets, train)
        model.fit(X[train], groups=groups[train], triplets=local, triplet_weights=weights)
    elif isinstance(similarities, Mapping):  # per dimension, among the training items only
        model.fit(X[train], groups=groups[train],
                  similar=training_similarities(similarities, train))
    elif similarities is not None:  # the similarities among the training items only
        model.fit(X[train], groups=groups[train],
                  similarities=training_similarities(similarities, train))
    elif views is None:
        model.fit(*_with_variants(X, labels, groups, train, variants))
    else:  # self-supervised: the training items' views only, and no label
        model.fit(X[train], groups=groups[train], views=views[train])
    fit_seconds = time.perf_counter() - t0
    distance = getattr(model, "distance_", "euclidean")
    if inside_test_fold:
        emb = model.transform(X[test])
        metrics = retrieval_metrics(emb, labels[test], groups[test], k=k, distance=distance)
        held = emb
        fold = FoldEmbeddings(model, distance, emb, labels[test], groups[test], None,
                              labels[train], X[train], test=test)
    else:
        emb = model.transform(X)
        metrics = retrieval_metrics(emb, labels, groups, queries=test, k=k, distance=distance)
        held = emb[test]
        fold = FoldEmbeddings(model, distance, emb, labels, groups, test, labels[train],
                              X[train], train_rows=train, test=test)
    if extra_metrics is not None:
        metrics = {**metrics, **extra_metrics(fold)}
    kept = np.asarray(held, dtype=np.float32) if keep else None
    scores = None
    if fold_scorer is not None:
        every = model.transform(X) if inside_test_fold else emb
        scores = fold_scorer(np.asarray(every), test, distance)
    return metrics, fit_seconds, model.n_parameters, kept, scores


def evaluate_protocol(
    make_model: Callable[[], object],
    X: np.ndarray,
    labels: np.ndarray,
    groups: np.ndarray,
    protocol: str | Protocol = "kfold",
    n_folds: int = 5,
    seed: int = 0,
    k: int = 5,
    on_fold: Callable[[int, int], None] | None = None,
    n_jobs: int = 1,
    views: np.ndarray | None = None,
    triplets: tuple[np.ndarray, np.ndarray | None] | None = None,
    extra_metrics: Callable[[FoldEmbeddings], dict[str, float]] | None = None,
    fold_scorer: Callable[[np.ndarray, np.ndarray, str], Any] | None = None,
    variants: TrainingVariants | None = None,
    similarities: np.ndarray | Mapping[str, np.ndarray] | None = None,
) -> ProtocolResult:
    """Fit a fresh model on each training part and measure retrieval on its test part.

    Parameters
    ----------
    make_model : callable
        Returns a new, unfitted model (one per fold: nothing learned leaks across folds).
    X, labels, groups : arrays of length n
        Features, labels (e.g. perceptual clusters) and groups (e.g. IMT classes).
    protocol : str or Protocol
        ``kfold``, ``group-kfold``, ``loo`` (:data:`mirsim.registries.PROTOCOLS`) or a
        protocol object.
    n_folds, seed : int
        Folds (ignored by ``loo``) and the seed of the split, when ``protocol`` is a name.
    k : int
        Cut-off of P@k and ii-P@k.
    on_fold : callable, optional
        Called with ``(folds done, number of folds)`` as folds finish.
    n_jobs : int
        Folds trained at once, in worker processes of one torch thread each (small networks
        train faster on one thread per core than on several threads for one fold). The
        numbers do not depend on it.
    views : array of shape (n, v, d), optional
        Augmented views of every item, for self-supervised models: each fold's model is fitted
        on the views of its training items (never on a test item's) and no label; the labels
        serve only to measure retrieval.
    triplets : (array of shape (m, 3), array of shape (m,) or None), optional
        Judged triplets over all items (indices into ``X``) and their weights: each fold's
        model is fitted on the triplets whose three items are all training items
        (:func:`training_triplets`) and no label; the labels serve only to measure retrieval.
    extra_metrics : callable, optional
        ``extra_metrics(fold: FoldEmbeddings) -> {name: value}``, measured in every fold
        beside the retrieval metrics (a module-level function when ``n_jobs > 1``: it is
        sent to the worker processes).
    fold_scorer : callable, optional
        Called on every fold as ``fold_scorer(embeddings, test, distance)``: the fold model's
        embeddings of every item, the fold's test indices and the model's distance; its
        results go to ``fold_scores`` (see the module's description). Picklable when
        ``n_jobs > 1``.
    variants : TrainingVariants, optional
        Extra training items made from the items (e.g. the simulated pitch and dynamics
        variants of the Cyberlioz sounds): each fold's model is also fitted on the variants of
        its training items, with their sources' labels and groups; test items and their
        variants are never seen. Only with labels (not with ``views`` or ``triplets``).
    similarities : array of shape (n, n), optional
        Target similarities between all items (e.g. the listeners' co-association,
        :func:`mirsim.evaluation.judgments.coassociation`): each fold's model is fitted on the
        block of its training items (:func:`training_similarities`; no test item's row or
        column) and no label; the labels serve only to measure retrieval. A dict ``{dimension:
        (n, n) bool}`` (:func:`mirsim.datasets.dimensions.similarity_matrices`) is given to a
        conditional model (``csn``) as ``similar=``, each matrix sliced the same way.

    Returns
    -------
    ProtocolResult
        Its ``held_out`` holds the last fold's test embeddings (``None`` for ``loo``), its
        ``fold_scores`` what ``fold_scorer`` returned for each fold.

    Examples
    --------
    >>> from mirsim.models import EuclideanModel
    >>> rng = np.random.default_rng(0)
    >>> y = np.repeat(np.arange(4), 10); X = rng.standard_normal((40, 3)) + y[:, None] * 3
    >>> r = evaluate_protocol(EuclideanModel, X, y, np.arange(40), "kfold", 2)
    >>> r.summary()["p_at_1"]["mean"] > 0.9
    True
    >>> r.held_out.fold, r.held_out.embeddings.shape
    (2, (20, 3))
    """
    X = np.asarray(X, dtype=np.float32)
    labels, groups = np.asarray(labels), np.asarray(groups)
    given = [n for n, v in (("views", views), ("triplets", triplets),
                            ("similarities", similarities)) if v is not None]
    if variants is not None and given:
        raise MirsimError("training variants go with labels, not with views, triplets or "
                          "similarities")
    if len(given) > 1:
        raise MirsimError(f"give one supervision besides labels, not {' and '.join(given)}")
    for S in (similarities.values() if isinstance(similarities, Mapping)
              else [] if similarities is None else [similarities]):
        if np.shape(S) != (len(X), len(X)):
            raise MirsimError(f"target similarities must have shape ({len(X)}, {len(X)}), got "
                              f"{np.shape(S)}")
    proto = make_protocol(protocol, n_folds, seed) if isinstance(protocol, str) else protocol
    splits = proto.split(len(X), groups)
    args = (make_model, X, labels, groups)
    inside = proto.queries_inside_test_fold
    last = len(splits) - 1 if proto.keeps_held_out else -1  # the fold whose test part is kept
    if n_jobs == 1:
        results = (_run_fold(*args, tr, te, inside, k, None, i == last, views, triplets,
                             extra_metrics, fold_scorer, variants, similarities)
                   for i, (tr, te) in enumerate(splits))
    else:
        from mirsim.parallel import worker_processes  # workers that end with this process

        results = worker_processes(n_jobs)(
            delayed(_run_fold)(*args, tr, te, inside, k, 1, i == last, views, triplets,
                               extra_metrics, fold_scorer, variants, similarities)
            for i, (tr, te) in enumerate(splits))
    per_fold, fit_seconds, n_params, held_out, fold_scores = [], [], 0, None, []
    for i, (metrics, seconds, n_params, kept, scores) in enumerate(results):
        per_fold.append(metrics)
        fit_seconds.append(seconds)
        if fold_scorer is not None:
            fold_scores.append(scores)
        if kept is not None:
            held_out = HeldOutEmbeddings(i + 1, len(splits), splits[i][1], kept)
        if on_fold:
            on_fold(i + 1, len(splits))
    return ProtocolResult(proto.name, per_fold, fit_seconds, n_params, held_out, fold_scores)
