"""The tutorial's first demo: 1-nearest-neighbour classification in the Euclidean space and in
the spaces learned by LDA, NCA and LMNN (McFee, Lee & Nam, ISMIR 2020 tutorial "Metric
learning for MIR", notebook 1), cross-validated.

For each method and each fold of the protocol, the model (which standardises with the
training part's statistics) is fitted on the training part only; then

* a 1-nearest-neighbour classifier (scikit-learn's ``KNeighborsClassifier(n_neighbors=1)``)
  is fitted on the training part's embeddings and predicts the test part's labels (accuracy
  per fold; predictions pooled over folds for the classification report and the confusion
  matrix);
* P@1 and MAP@R (:mod:`mirsim.evaluation.metrics`) are measured as the protocol says:
  ``kfold`` queries the test part among itself, ``group-kfold`` queries it among every item;
* the last fold's test embeddings get a 2-D UMAP map (umap-learn), and the learned linear maps
  of that fold's LDA, NCA and LMNN models are kept.

The run directory (:func:`save_linear_methods`) holds, besides ``config.json``:

====================  ========================================================================
``metrics.json``      per method: ``accuracy``, ``p_at_1``, ``map_at_r`` (mean and std over
                      folds), per-fold values, parameters, training time
``classification.json``  per method: scikit-learn's classification report (a dict) and the
                      confusion matrix of the pooled held-out predictions, rows = true labels
``maps.npz``          ``<method>.xy`` (m, 2) UMAP coordinates and ``<method>.embeddings`` of
                      the last fold's m test items; ``labels``, ``ids``, ``rows`` of them
``projections.npz``   ``<method>`` (k, d): the linear map of the standardised features
``summary.md``        the accuracy table in Markdown
``skipped.json``      items of the data that could not be used
====================  ========================================================================

Every NPZ reads with ``allow_pickle=False``.
"""

from __future__ import annotations

import io
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

import mirsim
from mirsim.errors import DataError, MirsimError
from mirsim.experiments.experiment import FeatureSet

#: ``command`` of the run directory's ``config.json``.
COMMAND = "reproduce linear-methods"
#: The tutorial's methods, in its order.
METHODS = ("euclidean", "lda", "nca", "lmnn")
#: Protocols that keep a held-out fold to map (``loo``'s last fold is one item).
PROTOCOLS = ("kfold", "group-kfold")
#: Items kept by ``--quick`` (a stratified sample) and the short training it uses.
QUICK_ITEMS = 48
QUICK_PARAMS: dict[str, dict[str, Any]] = {"nca": {"max_iter": 10}, "lmnn": {"epochs": 20}}
#: The metrics of each method, in table order.
METRICS = ("accuracy", "p_at_1", "map_at_r")
METRIC_TITLES = {"accuracy": "1-NN accuracy", "p_at_1": "P@1", "map_at_r": "MAP@R"}


@dataclass
class MethodResult:
    """One method under the protocol.

    Attributes
    ----------
    method : str
        Registered model name.
    per_fold : list of dict
        ``accuracy``, ``p_at_1``, ``map_at_r``, ``n_queries`` of each fold.
    y_true, y_pred : ndarray
        Held-out labels and 1-NN predictions, pooled over folds (test order of each fold).
    held_out_rows : ndarray
        Rows of the last fold's test part.
    held_out : ndarray
        Their embeddings by that fold's model.
    projection : ndarray or None
        That model's linear map ``(k, d)`` of the standardised features (None: Euclidean).
    fit_seconds : list of float
    n_parameters : int
    distance : str
    """

    method: str
    per_fold: list[dict[str, float]]
    y_true: np.ndarray
    y_pred: np.ndarray
    held_out_rows: np.ndarray
    held_out: np.ndarray
    projection: np.ndarray | None
    fit_seconds: list[float] = field(default_factory=list)
    n_parameters: int = 0
    distance: str = "euclidean"

    def summary(self) -> dict[str, dict[str, float]]:
        """``{metric: {"mean", "std"}}`` over folds (sample std; NaN folds left out)."""
        out = {}
        for name in METRICS:
            v = np.array([f[name] for f in self.per_fold], dtype=float)
            v = v[np.isfinite(v)]
            out[name] = {"mean": float(v.mean()) if len(v) else float("nan"),
                         "std": float(v.std(ddof=1)) if len(v) > 1 else 0.0}
        return out


def subsample(features: FeatureSet, n_items: int, seed: int = 0) -> FeatureSet:
    """At most ``n_items`` items, about as many of each label (seeded): ``--quick``.

    Examples
    --------
    >>> import pandas as pd
    >>> from mirsim.datasets import Collection
    >>> y = np.repeat(["a", "b", "c"], [30, 30, 4])
    >>> c = Collection("toy", pd.DataFrame({"id": range(64), "label": y, "group": range(64)}),
    ...                [None] * 64)
    >>> fs = FeatureSet(c, "toy", np.zeros((64, 2)), y, np.arange(64).astype(str), np.arange(64))
    >>> small = subsample(fs, 24)
    >>> len(small.X), sorted(set(small.labels.tolist()))
    (24, ['a', 'b', 'c'])
    """
    if len(features.X) <= n_items:
        return features
    rng = np.random.default_rng(seed)
    labels = np.asarray(features.labels)
    pools = [rng.permutation(np.flatnonzero(labels == lab)).tolist() for lab in np.unique(labels)]
    chosen: list[int] = []
    while len(chosen) < n_items:  # one item of each label in turn
        for pool in pools:
            if pool and len(chosen) < n_items:
                chosen.append(pool.pop())
    rows = np.sort(np.asarray(chosen))
    return FeatureSet(features.collection, features.feature, features.X[rows], labels[rows],
                      np.asarray(features.groups)[rows], np.asarray(features.kept)[rows],
                      features.skipped, features.feature_identity)


def linear_map(model: Any) -> np.ndarray | None:
    """The learned linear map ``L`` (``(k, d)``, float32) of a linear metric model, else None.

    Examples
    --------
    >>> from mirsim.models import make_model
    >>> X = np.random.default_rng(0).standard_normal((20, 3)); y = np.arange(20) % 2
    >>> linear_map(make_model("lda").fit(X, y)).shape, linear_map(make_model("euclidean"))
    ((1, 3), None)
    """
    L = getattr(model, "L_", None)
    return None if L is None else np.asarray(L, dtype=np.float32)


def _fold(model: Any, X: np.ndarray, y: np.ndarray, groups: np.ndarray, train: np.ndarray,
          test: np.ndarray, inside_test_fold: bool) -> tuple[dict[str, float], np.ndarray,
                                                             np.ndarray, float]:
    """Fit on ``train``; 1-NN accuracy and retrieval metrics of ``test``; its predictions and
    embeddings; the fit time."""
    from sklearn.neighbors import KNeighborsClassifier

    from mirsim.evaluation.metrics import retrieval_metrics

    t0 = time.perf_counter()
    model.fit(X[train], y[train], groups[train])
    seconds = time.perf_counter() - t0
    emb = model.transform(X)
    knn = KNeighborsClassifier(n_neighbors=1).fit(emb[train], y[train])
    predicted = knn.predict(emb[test])
    if inside_test_fold:
        found = retrieval_metrics(emb[test], y[test], groups[test], k=1,
                                  distance=model.distance_)
    else:
        found = retrieval_metrics(emb, y, groups, queries=test, k=1, distance=model.distance_)
    metrics = {"accuracy": float(np.mean(predicted == y[test])), "p_at_1": found["p_at_1"],
               "map_at_r": found["map_at_r"], "n_queries": found["n_queries"]}
    return metrics, predicted, emb[test], seconds


def run_method(features: FeatureSet, method: str, splits: Sequence[tuple[np.ndarray, np.ndarray]],
               inside_test_fold: bool, params: dict[str, Any] | None = None,
               on_fold: Callable[[str, int, int], None] | None = None) -> MethodResult:
    """One method on every fold (see the module's description).

    Parameters
    ----------
    splits : list of (train, test) index arrays
        The protocol's folds.
    inside_test_fold : bool
        Retrieval queries search the test part only (``kfold``), else every item.
    params : dict, optional
        Keyword arguments of ``make_model(method, ...)``.
    on_fold : callable, optional
        Called with ``(method, folds done, folds)``.
    """
    from mirsim.models import make_model

    X = np.asarray(features.X, dtype=np.float32)
    y, groups = np.asarray(features.labels), np.asarray(features.groups)
    per_fold, y_true, y_pred, seconds = [], [], [], []
    model = None
    for i, (train, test) in enumerate(splits):
        model = make_model(method, **(params or {}))
        metrics, predicted, held_out, fit_seconds = _fold(model, X, y, groups, train, test,
                                                          inside_test_fold)
        per_fold.append(metrics)
        y_true.append(y[test])
        y_pred.append(predicted)
        seconds.append(fit_seconds)
        if on_fold:
            on_fold(method, i + 1, len(splits))
    return MethodResult(method, per_fold, np.concatenate(y_true), np.concatenate(y_pred),
                        np.asarray(splits[-1][1]), held_out, linear_map(model), seconds,
                        model.n_parameters, model.distance_)


def check_protocol(protocol: str, folds: int, seed: int):
    """The protocol object, or a one-line error for ``loo`` and bad settings.

    Examples
    --------
    >>> check_protocol("kfold", 3, 0).n_folds
    3
    >>> check_protocol("loo", 3, 0)
    Traceback (most recent call last):
    ...
    mirsim.errors.MirsimError: linear-methods maps a held-out fold: use --protocol kfold or group-kfold, not loo
    """
    from mirsim.evaluation.protocols import make_protocol

    if protocol not in PROTOCOLS:
        raise MirsimError(f"linear-methods maps a held-out fold: use --protocol "
                          f"{' or '.join(PROTOCOLS)}, not {protocol}")
    return make_protocol(protocol, folds, seed)


def run_linear_methods(features: FeatureSet, methods: Sequence[str] = METHODS,
                       protocol: str = "kfold", folds: int = 5, seed: int = 0,
                       model_params: dict[str, dict[str, Any]] | None = None,
                       on_fold: Callable[[str, int, int], None] | None = None
                       ) -> list[MethodResult]:
    """Every method on the same folds of ``protocol``; models seeded with ``seed``.

    Examples
    --------
    >>> import pandas as pd
    >>> from mirsim.datasets import Collection
    >>> rng = np.random.default_rng(0); y = np.repeat(np.arange(3), 10)
    >>> c = Collection("toy", pd.DataFrame({"id": range(30), "label": y, "group": range(30)}),
    ...                [None] * 30)
    >>> fs = FeatureSet(c, "toy", rng.standard_normal((30, 4)) + 4 * np.eye(3, 4)[y], y,
    ...                 np.arange(30).astype(str), np.arange(30))
    >>> [r] = run_linear_methods(fs, ["lda"], "kfold", folds=3)
    >>> r.summary()["accuracy"]["mean"], r.projection.shape, len(r.y_pred)
    (1.0, (2, 4), 30)
    """
    proto = check_protocol(protocol, folds, seed)
    splits = proto.split(len(features.X), np.asarray(features.groups))
    return [run_method(features, m, splits, proto.queries_inside_test_fold,
                       {"seed": seed, **(model_params or {}).get(m, {})}, on_fold)
            for m in methods]


def umap_map(embeddings: np.ndarray, seed: int = 0) -> np.ndarray:
    """2-D UMAP coordinates of the rows (umap-learn; ``n_neighbors`` 15, fewer for few rows).

    The exact nearest-neighbour graph is computed by scikit-learn and given to UMAP
    (``precomputed_knn``): it is the graph UMAP computes itself for fewer than 4,096 rows, and
    UMAP then skips compiling its own parallel neighbour search, about half of the numba
    compilation a process pays on its first map (10-20 s on 2 cores; later maps of a few
    thousand rows take a second or two).
    """
    import umap
    from sklearn.neighbors import NearestNeighbors

    emb = np.asarray(embeddings, dtype=np.float32)
    if len(emb) < 4:
        raise DataError(f"a UMAP map needs at least 4 items (the held-out fold has {len(emb)})")
    k = min(15, len(emb) - 1)
    distances, indices = NearestNeighbors(n_neighbors=k).fit(emb).kneighbors(emb)
    with warnings.catch_warnings():  # "n_jobs overridden by random_state", tiny-graph notes
        warnings.simplefilter("ignore")
        reducer = umap.UMAP(n_components=2, n_neighbors=k, random_state=seed,
                            precomputed_knn=(indices, distances.astype(np.float32), None))
        return np.asarray(reducer.fit_transform(emb), dtype=np.float32)


def classification_summary(result: MethodResult, labels: Sequence[Any]) -> dict[str, Any]:
    """scikit-learn's classification report (a dict) and confusion matrix of the pooled
    held-out predictions; rows and columns of the matrix in the order of ``labels``."""
    from sklearn.metrics import classification_report, confusion_matrix

    names = [str(x) for x in labels]
    y_true, y_pred = result.y_true.astype(str), result.y_pred.astype(str)
    report = classification_report(y_true, y_pred, labels=names, output_dict=True,
                                   zero_division=0)
    matrix = confusion_matrix(y_true, y_pred, labels=names)
    return {"labels": names, "report": report, "confusion_matrix": matrix.tolist()}


def ordered_labels(labels: Sequence[Any]) -> list[str]:
    """The distinct labels as strings, in natural order (``2`` before ``10``).

    Examples
    --------
    >>> ordered_labels(["10", "2", "b", "2"])
    ['2', '10', 'b']
    """
    from mirsim.reports.plots import natural_key

    return sorted({str(x) for x in labels}, key=natural_key)


def _npz_bytes(arrays: dict[str, np.ndarray]) -> bytes:
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return buffer.getvalue()


def method_json(result: MethodResult, features: FeatureSet, protocol: str) -> dict[str, Any]:
    """The ``metrics.json`` entry of one method (laid out as ``mirsim train --json``'s)."""
    from mirsim.models import model_class

    return {"model": result.method, "display_name": model_class(result.method).display_name,
            "data": features.collection.name, "feature": features.feature,
            "protocol": protocol, "folds": len(result.per_fold), "n_items": len(features.X),
            "metrics": result.summary(), "per_fold": result.per_fold,
            "n_parameters": result.n_parameters,
            "train_seconds": round(float(sum(result.fit_seconds)), 3),
            "distance": result.distance}


def summary_markdown(results: Sequence[MethodResult], title: str = "") -> str:
    """The accuracy table: one row per method, mean ± std over folds.

    Examples
    --------
    >>> r = MethodResult("lda", [{"accuracy": 0.5, "p_at_1": 0.5, "map_at_r": 0.25},
    ...                          {"accuracy": 1.0, "p_at_1": 1.0, "map_at_r": 0.75}],
    ...                  np.zeros(2), np.zeros(2), np.zeros(1), np.zeros((1, 1)), None)
    >>> print(summary_markdown([r]))
    | method | 1-NN accuracy | P@1 | MAP@R | parameters |
    |---|---|---|---|---|
    | LDA | 0.750 ± 0.354 | 0.750 ± 0.354 | 0.500 ± 0.354 | 0 |
    """
    from mirsim.models import model_class

    head = ["method", *(METRIC_TITLES[m] for m in METRICS), "parameters"]
    lines = ([f"**{title}**", ""] if title else []) + [
        "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in results:
        s = r.summary()
        cells = [f"{s[m]['mean']:.3f} ± {s[m]['std']:.3f}" for m in METRICS]
        lines.append(f"| {model_class(r.method).display_name} | " + " | ".join(cells)
                     + f" | {r.n_parameters:,} |")
    return "\n".join(lines)


def linear_methods_config(data: str, features: FeatureSet, methods: Sequence[str],
                          protocol: str, folds: int, seed: int, quick: bool,
                          model_params: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """The run's ``config.json``."""
    from mirsim.experiments.specs import params_config

    return {"command": COMMAND, "data": data, "feature": features.feature,
            "feature_identity": features.feature_identity, "models": list(methods),
            "model_params": {m: params_config(model_params.get(m, {})) for m in methods},
            "protocol": protocol, "folds": folds, "seed": seed, "quick": quick,
            "n_items": len(features.X), "mirsim_version": mirsim.__version__}


def save_linear_methods(run_dir: str | Path, config: dict[str, Any], features: FeatureSet,
                        results: Sequence[MethodResult], maps: dict[str, np.ndarray]) -> Path:
    """Write the run directory's files (see the module's description)."""
    from mirsim.artefacts.files import write_bytes_atomic, write_json, write_text_atomic

    run_dir = Path(run_dir)
    labels = ordered_labels(features.labels)
    rows = results[0].held_out_rows
    ids = features.collection.items.iloc[np.asarray(features.kept)[rows]]["id"]
    write_json(run_dir / "config.json", config)
    write_json(run_dir / "metrics.json", {r.method: method_json(r, features, config["protocol"])
                                          for r in results})
    write_json(run_dir / "classification.json",
               {r.method: classification_summary(r, labels) for r in results})
    arrays = {"labels": np.asarray(features.labels)[rows].astype(str),
              "ids": ids.astype(str).to_numpy(dtype=str), "rows": rows.astype(np.int64)}
    for r in results:
        arrays[f"{r.method}.embeddings"] = np.asarray(r.held_out, dtype=np.float32)
        if r.method in maps:
            arrays[f"{r.method}.xy"] = maps[r.method]
    write_bytes_atomic(run_dir / "maps.npz", _npz_bytes(arrays))
    write_bytes_atomic(run_dir / "projections.npz", _npz_bytes(
        {r.method: r.projection for r in results if r.projection is not None}))
    title = (f"{features.collection.name} · {features.feature} · {config['protocol']}, "
             f"{len(results[0].per_fold)} folds · {len(features.X)} items")
    write_text_atomic(run_dir / "summary.md", summary_markdown(results, title) + "\n")
    write_json(run_dir / "skipped.json", features.skipped)
    return run_dir


@dataclass
class LinearMethodsRun:
    """What :func:`reproduce_linear_methods` measured and where it wrote it."""

    results: list[MethodResult]
    run_dir: Path
    markdown: str


def reproduce_linear_methods(features: FeatureSet, data: str = "", methods: Sequence[str] = METHODS,
                             protocol: str = "kfold", folds: int = 5, seed: int = 0,
                             quick: bool = False, runs: str | Path | None = None,
                             on_fold: Callable[[str, int, int], None] | None = None
                             ) -> LinearMethodsRun:
    """The whole demo: (with ``quick``, a stratified sample of :data:`QUICK_ITEMS` items and
    :data:`QUICK_PARAMS`) every method cross-validated, UMAP maps of the last fold, and the
    run directory."""
    from mirsim.artefacts.runs import create_run_dir

    if quick:
        features = subsample(features, QUICK_ITEMS, seed)
    params = {m: dict(QUICK_PARAMS.get(m, {})) for m in methods} if quick else {}
    results = run_linear_methods(features, methods, protocol, folds, seed, params, on_fold)
    # a fold of fewer than 4 items has no map (the report says so); the metrics stand
    maps = ({r.method: umap_map(r.held_out, seed) for r in results}
            if len(results[0].held_out_rows) >= 4 else {})
    run_dir = create_run_dir(f"linear-methods-{features.collection.name}-{features.feature}",
                             runs)
    config = linear_methods_config(data or features.collection.name, features, methods,
                                   protocol, folds, seed, quick, params)
    save_linear_methods(run_dir, config, features, results, maps)
    return LinearMethodsRun(results, run_dir, (run_dir / "summary.md").read_text().strip())
