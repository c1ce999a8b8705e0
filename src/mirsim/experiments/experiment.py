"""One experiment: data -> features -> metric model -> protocol -> metrics."""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from mirsim.datasets import Collection, load_collection
from mirsim.errors import DataError
from mirsim.evaluation.protocols import ProtocolResult, evaluate_protocol
from mirsim.features import make_extractor
from mirsim.features.extraction import FeatureCache, extract_features
from mirsim.models import MetricModel, make_model

#: Metrics reported by ``mirsim train --json`` (mean and std over folds).
REPORTED_METRICS = ("p_at_1", "p_at_5", "ii_p_at_5", "map_at_r")


@dataclass
class FeatureSet:
    """Features of the usable items of a collection, and the items that were skipped."""

    collection: Collection
    feature: str
    X: np.ndarray
    labels: np.ndarray
    groups: np.ndarray
    kept: np.ndarray
    skipped: list[dict[str, str]] = field(default_factory=list)
    feature_identity: str = ""


def load_features(data: str | Collection, feature: str, feature_params: dict | None = None,
                  data_options: dict | None = None, n_jobs: int = 1,
                  cache: FeatureCache | None = None,
                  progress: Callable[[int, int], None] | None = None) -> FeatureSet:
    """Load a data set and extract (or read from the cache) one feature for every item.

    Unreadable items are skipped and listed in ``skipped`` with their reason, after what the
    collection itself skipped (e.g. dangling symlinks of a folder).

    Parameters
    ----------
    progress : callable, optional
        Called with ``(items done so far, total)``.
    """
    collection = data if isinstance(data, Collection) else load_collection(data, **(data_options or {}))
    extractor = make_extractor(feature, **(feature_params or {}))
    done = [0]

    def step(n: int) -> None:
        done[0] += n
        if progress:
            progress(done[0], len(collection))

    result = extract_features(collection.sources, extractor, cache=cache, n_jobs=n_jobs,
                              progress=step)
    if len(result.ok) < 2:
        raise DataError(f"{collection.name}: fewer than two usable items "
                        f"({len(result.skipped)} skipped)")
    items = collection.items.iloc[result.ok]
    skipped = list(collection.skipped) + [
        {"id": str(collection.items.at[i, "id"]), "source": name, "reason": reason}
        for i, name, reason in result.skipped]
    return FeatureSet(collection, feature, result.features, items["label"].to_numpy(),
                      items["group"].astype(str).to_numpy(), result.ok, skipped,
                      extractor.identity)


@dataclass
class ExperimentResult:
    """What ``mirsim train`` reports. ``protocol_result.held_out`` holds the last fold's
    held-out embeddings, which a run directory keeps as ``test_embeddings.npz``
    (:mod:`mirsim.experiments.heldout`)."""

    data: str
    feature: str
    model: str
    protocol: str
    folds: int
    seed: int
    protocol_result: ProtocolResult
    n_items: int
    model_params: dict[str, Any]
    description: str = ""
    skipped: list[dict[str, str]] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        """The ``--json`` object: data, feature, model, protocol, folds, n_items,
        train_seconds, metrics {name: {mean, std}} and extras."""
        summary = self.protocol_result.summary()
        return {
            "data": self.data, "feature": self.feature, "model": self.model,
            "protocol": self.protocol, "folds": self.folds, "n_items": self.n_items,
            "train_seconds": round(self.protocol_result.train_seconds, 3),
            "metrics": {m: summary[m] for m in REPORTED_METRICS},
            "seed": self.seed, "n_parameters": self.protocol_result.n_parameters,
            "model_params": self.model_params, "description": self.description,
            "n_skipped": len(self.skipped),
            "per_fold": self.protocol_result.per_fold,
        }


def run_experiment(features: FeatureSet, model: str, protocol: str = "kfold", folds: int = 5,
                   seed: int = 0, model_params: dict[str, Any] | None = None,
                   on_fold: Callable[[int, int], None] | None = None,
                   n_jobs: int = 1) -> ExperimentResult:
    """Evaluate one model on one feature set under one protocol (``n_jobs`` folds at once).

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> from mirsim.datasets import Collection
    >>> rng = np.random.default_rng(0); y = np.repeat(np.arange(3), 20)
    >>> c = Collection("toy", pd.DataFrame({"id": range(60), "label": y, "group": range(60)}),
    ...                [None] * 60)
    >>> fs = FeatureSet(c, "toy", rng.standard_normal((60, 4)) + 10 * y[:, None], y,
    ...                 np.arange(60).astype(str), np.arange(60))
    >>> r = run_experiment(fs, "euclidean", "kfold", folds=3)
    >>> r.to_json()["metrics"]["p_at_1"]["mean"]
    1.0
    """
    params = {"seed": seed, **(model_params or {})}
    make_model(model, **params)  # fail early, with the list of valid parameters
    protocol_result = evaluate_protocol(functools.partial(make_model, model, **params), features.X,
                                        features.labels, features.groups, protocol, folds,
                                        seed, on_fold=on_fold, n_jobs=n_jobs)
    n_folds = len(protocol_result.per_fold)
    return ExperimentResult(features.collection.name, features.feature, model, protocol, n_folds,
                            seed, protocol_result, len(features.X), params,
                            features.collection.description, features.skipped)


def fit_final_model(features: FeatureSet, model: str, seed: int = 0,
                    model_params: dict[str, Any] | None = None) -> MetricModel:
    """The model fitted on every usable item (what a run directory keeps)."""
    params = {"seed": seed, **(model_params or {})}
    return make_model(model, **params).fit(features.X, features.labels, features.groups)
