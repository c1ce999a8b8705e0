"""Model selection inside the training data: hyper-parameters chosen by an inner
cross-validation, never by the test fold.

:class:`InnerCVSearch` is a meta-model, as scikit-learn's ``GridSearchCV``: ``fit`` runs an
inner protocol (by default ``group-kfold``, so that items of one group, the copies of one
sound, are never split) over the training items it is given, scores every candidate setting
by the mean of a retrieval metric over the inner folds, and refits the best one on all those
items; ``transform`` is the refitted model's. Used as the model of an outer protocol, it keeps
the test fold out of every choice.

Examples
--------
>>> import numpy as np
>>> from mirsim.models import make_model
>>> rng = np.random.default_rng(0); y = np.repeat(np.arange(3), 12)
>>> X = rng.standard_normal((36, 4)) + 2.0 * y[:, None]
>>> search = make_model("inner-cv", estimator=make_model("lmnn", epochs=5),
...                     param_grid={"n_neighbors": [1, 3]}, inner_folds=3)
>>> search.fit(X, y, groups=np.arange(36)).best_params_["n_neighbors"] in (1, 3)
True
>>> search.transform(X).shape
(36, 4)
"""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import numpy as np

from mirsim.errors import MirsimError
from mirsim.models.base import MetricModel
from mirsim.params import Interval, Options, Satisfies, estimator, param
from mirsim.registries import MODELS
from mirsim.training.trainer import NothingMinedError

#: Metrics an inner cross-validation can maximise.
SCORES = ("map_at_r", "p_at_1", "p_at_5")


def candidates(param_grid: dict[str, list] | list[dict[str, list]]) -> list[dict[str, Any]]:
    """Every setting of a grid (a dict of lists, or a list of such dicts), in order.

    Examples
    --------
    >>> candidates({"a": [1, 2], "b": ["x"]})
    [{'a': 1, 'b': 'x'}, {'a': 2, 'b': 'x'}]
    >>> candidates([{"a": [1]}, {"b": [3, 4]}])
    [{'a': 1}, {'b': 3}, {'b': 4}]
    """
    grids = [param_grid] if isinstance(param_grid, dict) else list(param_grid)
    out = []
    for grid in grids:
        keys = list(grid)
        out += [dict(zip(keys, values)) for values in itertools.product(*(grid[k] for k in keys))]
    return out


@MODELS.register
@estimator
class InnerCVSearch(MetricModel):
    """A model whose hyper-parameters are chosen by cross-validation on its training items."""

    name = "inner-cv"
    display_name = "Inner-CV search"
    supervision = ("labels",)

    estimator: Any = param(None, Satisfies(lambda v: isinstance(v, MetricModel),
                                           "a mirsim model"), "the model to tune")
    param_grid: Any = param(None, Satisfies(lambda v: isinstance(v, (dict, list)) and bool(v),
                                            "a non-empty grid"), "settings to try")
    inner_folds: int = param(4, Interval(int, 2, None), "folds of the inner protocol")
    inner_protocol: str = param("group-kfold", Options(("group-kfold", "kfold")),
                                "how the training items are split")
    scoring: str = param("map_at_r", Options(SCORES), "the metric maximised")
    seed: int = param(0, Interval(int, 0, None), "seed of the inner split")
    n_jobs: int = param(1, Interval(int, 1, None), "inner folds trained at once")

    def fit(self, X, y=None, groups=None, **supervision) -> InnerCVSearch:
        """Score every setting by inner cross-validation, then refit the best on all of X."""
        from sklearn.base import clone

        from mirsim.evaluation.protocols import evaluate_protocol

        self._check_own_params()
        for attr in [a for a in vars(self) if a.endswith("_") and not a.startswith("_")]:
            delattr(self, attr)
        if supervision.get("triplets") is not None or supervision.get("views") is not None:
            raise MirsimError("inner-cv search scores settings with labels: it needs y")
        X, y = np.asarray(X, dtype=np.float32), np.asarray(y)
        groups = np.arange(len(X)) if groups is None else np.asarray(groups)
        scores = []
        for setting in candidates(self.param_grid):
            model = clone(self.estimator).set_params(**setting)
            try:
                result = evaluate_protocol(lambda m=model: clone(m), X, y, groups,
                                           self.inner_protocol, self.inner_folds, self.seed,
                                           n_jobs=self.n_jobs)
            except NothingMinedError as e:  # a setting that learns nothing is no candidate
                scores.append({"params": setting, "score": float("nan"), "skipped": str(e)})
                continue
            scores.append({"params": setting,
                           "score": result.summary()[self.scoring]["mean"]})
        if all("skipped" in s for s in scores):
            raise MirsimError(f"inner-cv: no setting could be trained ({scores[0]['skipped']})")
        best = max(range(len(scores)), key=lambda i: np.nan_to_num(scores[i]["score"], nan=-1))
        self.cv_results_ = scores
        self.best_params_ = scores[best]["params"]
        self.best_estimator_ = clone(self.estimator).set_params(**self.best_params_).fit(
            X, y, groups)
        self.n_features_in_ = self.best_estimator_.n_features_in_
        self.classes_ = self.best_estimator_.classes_
        self.distance_ = self.best_estimator_.distance_
        self.mean_ = self.best_estimator_.mean_  # fitted from here on
        return self

    def transform(self, X) -> np.ndarray:
        self._require_fitted()
        return self.best_estimator_.transform(X)

    def _resolve_distance(self) -> str:
        return self.estimator._resolve_distance()

    @property
    def n_parameters(self) -> int:
        self._require_fitted()
        return self.best_estimator_.n_parameters

    def save(self, directory: str | Path) -> Path:
        """Save the refitted best model (a plain model: ``load_model`` gives it back)."""
        self._require_fitted()
        return self.best_estimator_.save(directory)


@MODELS.register
@estimator
class FoldEnsemble(MetricModel):
    """An ensemble over folds of the training items: one copy of ``estimator`` fitted on each
    training part of an inner protocol (every group but those of one inner fold), the
    embeddings side by side, scaled by ``1 / sqrt(n_members)``.

    With Euclidean members the squared distance between two sounds is then the mean of the
    members' squared distances; with cosine members (unit-norm embeddings) the cosine
    similarity is the mean of theirs. Each member sees a different ``(inner_folds - 1) /
    inner_folds`` of the training sounds, so the ensemble averages away what a single fit
    learns from a few particular sounds (bagging over folds, for data sets of a few dozen
    sounds).

    Examples
    --------
    >>> from mirsim.models import make_model
    >>> rng = np.random.default_rng(0); y = np.repeat(np.arange(3), 12)
    >>> X = rng.standard_normal((36, 4)) + 2.0 * y[:, None]
    >>> ensemble = make_model("fold-ensemble", estimator=make_model("lda"), inner_folds=3)
    >>> ensemble.fit(X, y, groups=np.arange(36)).transform(X).shape  # 3 members x 2 axes
    (36, 6)
    """

    name = "fold-ensemble"
    display_name = "Ensemble over folds"
    supervision = ("labels",)

    estimator: Any = param(None, Satisfies(lambda v: isinstance(v, MetricModel),
                                           "a mirsim model"), "the model of every member")
    inner_folds: int = param(5, Interval(int, 2, None), "members (folds of the inner protocol)")
    inner_protocol: str = param("group-kfold", Options(("group-kfold", "kfold")),
                                "how the training items are split")
    seed: int = param(0, Interval(int, 0, None), "seed of the inner split")

    def fit(self, X, y=None, groups=None, **supervision) -> FoldEnsemble:
        """Fit one member per inner training part."""
        from sklearn.base import clone

        from mirsim.evaluation.protocols import split_indices

        self._check_own_params()
        for attr in [a for a in vars(self) if a.endswith("_") and not a.startswith("_")]:
            delattr(self, attr)
        if any(v is not None for v in supervision.values()):
            raise MirsimError("a fold ensemble splits labelled items: it needs y")
        X, y = np.asarray(X, dtype=np.float32), np.asarray(y)
        groups = np.arange(len(X)) if groups is None else np.asarray(groups)
        splits = split_indices(self.inner_protocol, len(X), groups, self.inner_folds, self.seed)
        self.members_ = [clone(self.estimator).fit(X[train], y[train], groups[train])
                         for train, _ in splits]
        first = self.members_[0]
        self.n_features_in_ = first.n_features_in_
        self.classes_ = np.unique(y)
        self.distance_ = first.distance_
        self.mean_ = first.mean_  # fitted from here on
        return self

    def transform(self, X) -> np.ndarray:
        self._require_fitted()
        parts = [m.transform(X) for m in self.members_]
        return (np.concatenate(parts, axis=1) / np.sqrt(len(parts))).astype(np.float32)

    def _resolve_distance(self) -> str:
        return self.estimator._resolve_distance()

    @property
    def n_parameters(self) -> int:
        self._require_fitted()
        return int(sum(m.n_parameters for m in self.members_))

    def save(self, directory: str | Path) -> Path:
        raise MirsimError("a fold ensemble cannot be saved yet (save its members_ one by one)")
