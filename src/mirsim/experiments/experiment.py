"""One experiment: data -> features -> metric model -> protocol -> metrics."""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from pathlib import Path

from mirsim.datasets import Collection, load_collection
from mirsim.errors import DataError
from mirsim.evaluation.protocols import ProtocolResult, evaluate_protocol
from mirsim.experiments.specs import params_config
from mirsim.features import make_extractor
from mirsim.features.extraction import FeatureCache, extract_features
from mirsim.models import make_model

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

    Unreadable items are skipped and listed in ``skipped`` with their reason.

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
    skipped = [{"id": str(collection.items.at[i, "id"]), "source": name, "reason": reason}
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
    distance: str = ""

    def to_json(self) -> dict[str, Any]:
        """The ``--json`` object: data, feature, model, protocol, folds, n_items,
        train_seconds, metrics {name: {mean, std}} and extras."""
        summary = self.protocol_result.summary()
        return {
            "data": self.data, "feature": self.feature, "model": self.model,
            "protocol": self.protocol, "folds": self.folds, "n_items": self.n_items,
            "train_seconds": round(self.protocol_result.train_seconds, 3),
            "metrics": {m: summary[m] for m in REPORTED_METRICS},
            "queries": {"counted": summary.get("n_queries", {}).get("total"),
                        "without_relevant": summary.get("n_without_relevant", {}).get("total")},
            "distance": self.distance,
            "seed": self.seed, "n_parameters": self.protocol_result.n_parameters,
            "model_params": params_config(self.model_params), "description": self.description,
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
    probe = make_model(model, **params)  # fail early, with the list of valid parameters
    protocol_result = evaluate_protocol(functools.partial(make_model, model, **params), features.X,
                                        features.labels, features.groups, protocol, folds,
                                        seed, on_fold=on_fold, n_jobs=n_jobs)
    n_folds = len(protocol_result.per_fold)
    return ExperimentResult(features.collection.name, features.feature, model, protocol, n_folds,
                            seed, protocol_result, len(features.X), params,
                            features.collection.description, features.skipped,
                            probe._resolve_distance())


def fit_final_model(features: FeatureSet, model: str, seed: int = 0,
                    model_params: dict[str, Any] | None = None):
    """The model fitted on every usable item (what a run directory keeps)."""
    params = {"seed": seed, **(model_params or {})}
    return make_model(model, **params).fit(features.X, features.labels, features.groups)


def save_run(run_dir: str | Path, config: dict[str, Any], features: FeatureSet,
             results: list[ExperimentResult], model: Any = None,
             held_out_of: str | None = None) -> Path:
    """Write a run directory: ``config.json``, ``metrics.json``, ``skipped.json``, the model
    (``model/``) if any, and the held-out embeddings (``test_embeddings.npz``) of the result
    of model ``held_out_of`` (default: the only result), when its protocol kept them."""
    from mirsim.artefacts.files import write_json
    from mirsim.experiments.heldout import held_out_embeddings, save_test_embeddings

    run_dir = Path(run_dir)
    write_json(run_dir / "config.json", config)
    write_json(run_dir / "metrics.json", results[0].to_json() if len(results) == 1
               else {r.model: r.to_json() for r in results})
    write_json(run_dir / "skipped.json", features.skipped)
    if model is not None:
        model.save(run_dir / "model")
    result = next((r for r in results if r.model == held_out_of), results[0])
    held = held_out_embeddings(result, features)
    if held is not None:
        save_test_embeddings(run_dir, held)
    return run_dir
