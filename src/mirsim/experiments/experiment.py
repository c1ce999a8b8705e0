"""One experiment: data -> features -> metric model -> protocol -> metrics."""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from pathlib import Path

from mirsim.datasets import Collection, load_collection
from mirsim.errors import DataError, UnknownNameError
from mirsim.evaluation.protocols import ProtocolResult, evaluate_protocol
from mirsim.experiments.judgments import ExperimentJudgments
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


#: What :func:`load_features` does with items whose audio is an earlier item's.
DUPLICATES = ("drop", "error")


def load_features(data: str | Collection, feature: str, feature_params: dict | None = None,
                  data_options: dict | None = None, n_jobs: int = 1,
                  cache: FeatureCache | None = None,
                  progress: Callable[[int, int], None] | None = None,
                  duplicates: str = "drop") -> FeatureSet:
    """Load a data set and extract (or read from the cache) one feature for every item.

    Unreadable items are skipped and listed in ``skipped`` with their reason, after what the
    collection itself skipped (e.g. dangling symlinks of a folder).

    Items with the same audio content as an earlier item (the same content hash, hence also
    two rows naming one file) are duplicates: left in, a duplicate could sit in a training
    fold while its copy is a test query, and retrieve it at distance 0. By default each is
    dropped, listed in ``skipped`` with the reason ``duplicate of <id of the first>``, and a
    warning (logger ``mirsim.experiments.experiment``) says how many.

    Parameters
    ----------
    progress : callable, optional
        Called with ``(items done so far, total)``.
    duplicates : {"drop", "error"}
        Drop duplicates (default), or raise :class:`~mirsim.errors.DataError` if there is one.

    Examples
    --------
    >>> import tempfile, os, soundfile as sf
    >>> d = tempfile.mkdtemp()
    >>> for name, f in (("a", 0.1), ("b", 0.3)):
    ...     sf.write(os.path.join(d, name + ".wav"), np.sin(np.arange(8000) * f), 8000)
    >>> _ = open(os.path.join(d, "m.csv"), "w").write("path,label\\na.wav,x\\nb.wav,y\\na.wav,x\\n")
    >>> fs = load_features(os.path.join(d, "m.csv"), "mfcc", cache=FeatureCache(d))
    >>> fs.X.shape, fs.skipped[0]["reason"]
    ((2, 40), 'duplicate of a.wav')
    """
    if duplicates not in DUPLICATES:
        raise UnknownNameError("duplicates setting", duplicates, DUPLICATES)
    collection = data if isinstance(data, Collection) else load_collection(data, **(data_options or {}))
    extractor = make_extractor(feature, **(feature_params or {}))
    done = [0]

    def step(n: int) -> None:
        done[0] += n
        if progress:
            progress(done[0], len(collection))

    result = extract_features(collection.sources, extractor, cache=cache, n_jobs=n_jobs,
                              progress=step)
    unique, copies = _first_of_each_content(collection, result.ok)
    if copies and duplicates == "error":
        raise DataError(f"{collection.name}: {len(copies)} item(s) have the same audio as an "
                        f"earlier item, e.g. {copies[0]['id']}: {copies[0]['reason']}")
    kept = result.ok[unique]
    if len(kept) < 2:
        raise DataError(f"{collection.name}: fewer than two usable items "
                        f"({len(result.skipped) + len(copies)} skipped)")
    items = collection.items.iloc[kept]
    skipped = list(collection.skipped) + [
        {"id": str(collection.items.at[i, "id"]), "source": name, "reason": reason}
        for i, name, reason in result.skipped] + copies
    if copies:
        logging.getLogger(__name__).warning(
            "%s: %d duplicate item(s) dropped (the same audio as an earlier item), e.g. %s: %s",
            collection.name, len(copies), copies[0]["id"], copies[0]["reason"])
    return FeatureSet(collection, feature, result.features[unique], items["label"].to_numpy(),
                      items["group"].astype(str).to_numpy(), kept, skipped,
                      extractor.identity)


def _first_of_each_content(collection: Collection, ok: np.ndarray
                           ) -> tuple[np.ndarray, list[dict[str, str]]]:
    """Positions in ``ok`` of the first item of each audio content (content hash: the key
    that the feature cache already computed), and the later ones as skipped entries."""
    first: dict[str, int] = {}
    unique: list[int] = []
    copies: list[dict[str, str]] = []
    for position, i in enumerate(ok):
        source = collection.sources[i]
        if source.key in first:
            copies.append({"id": str(collection.items.at[i, "id"]), "source": source.name,
                           "reason": f"duplicate of {collection.items.at[first[source.key], 'id']}"})
        else:
            first[source.key] = int(i)
            unique.append(position)
    return np.asarray(unique, dtype=int), copies


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
    #: agreement with listeners over the run (``--judgments``), see
    #: :meth:`mirsim.experiments.judgments.ExperimentJudgments.result_json`
    judgments: dict[str, Any] | None = None

    def to_json(self) -> dict[str, Any]:
        """The ``--json`` object: data, feature, model, protocol, folds, n_items,
        train_seconds, metrics {name: {mean, std}} and extras (with judgments, the triplet
        agreement metrics and a ``listeners`` entry)."""
        summary = self.protocol_result.summary()
        extra = {} if self.judgments is None else {"listeners": self.judgments["listeners"]}
        return {
            "data": self.data, "feature": self.feature, "model": self.model,
            "protocol": self.protocol, "folds": self.folds, "n_items": self.n_items,
            "train_seconds": round(self.protocol_result.train_seconds, 3),
            "metrics": {**{m: summary[m] for m in REPORTED_METRICS},
                        **(self.judgments or {}).get("metrics", {})},
            "queries": {"counted": summary.get("n_queries", {}).get("total"),
                        "without_relevant": summary.get("n_without_relevant", {}).get("total")},
            "distance": self.distance,
            "seed": self.seed, "n_parameters": self.protocol_result.n_parameters,
            "model_params": params_config(self.model_params), "description": self.description,
            "n_skipped": len(self.skipped),
            "per_fold": self.protocol_result.per_fold,
            **extra,
        }


def run_experiment(features: FeatureSet, model: str, protocol: str = "kfold", folds: int = 5,
                   seed: int = 0, model_params: dict[str, Any] | None = None,
                   on_fold: Callable[[int, int], None] | None = None,
                   n_jobs: int = 1, judgments: ExperimentJudgments | None = None
                   ) -> ExperimentResult:
    """Evaluate one model on one feature set under one protocol (``n_jobs`` folds at once).

    With ``judgments`` (:func:`mirsim.experiments.judgments.judgments_for` of the same feature
    set) each fold's model is also scored against the listeners, on the triplets whose anchor
    is one of the fold's test items, and the run reports their agreement.

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
                                        seed, on_fold=on_fold, n_jobs=n_jobs,
                                        fold_scorer=None if judgments is None
                                        else judgments.scorer)
    n_folds = len(protocol_result.per_fold)
    return ExperimentResult(features.collection.name, features.feature, model, protocol, n_folds,
                            seed, protocol_result, len(features.X), params,
                            features.collection.description, features.skipped,
                            probe._resolve_distance(),
                            None if judgments is None
                            else judgments.result_json(protocol_result.fold_scores))


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
