"""Metric learning vs classification (Lee et al., ISMIR 2020) on one data set.

The same MLP backbone (:func:`mirsim.models.baselines.mlp_network`: hidden layers of 256 and
512 units, a 512-wide embedding) and the same training schedule, trained five ways (the
rows): a triplet network (triplet loss, semi-hard mining), two proxy losses (Proxy-NCA,
Proxy-Anchor), and softmax classification without and with a normalisation layer
(:mod:`mirsim.models.classifier`); ``prototypical`` and ``euclidean`` (the standardised
features, as a reference) can be added. Columns: recall at 1, 2, 4
and 8 (:func:`~mirsim.evaluation.metrics.recall_at_k`), the label ROC-AUC from class
centroids (:func:`~mirsim.evaluation.metrics.centroid_label_auc`) and the training time, each
as mean ± std over the protocol's folds.

A resumable table (:mod:`mirsim.experiments.tables`): :data:`METRIC_VS_CLASSIFICATION` names
its files. With ``quick``, every row trains a small network briefly (:data:`QUICK`): a check
that the command runs, not a result.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mirsim.errors import MirsimError, UnknownNameError
from mirsim.evaluation.metrics import centroid_label_auc, recall_at_k
from mirsim.evaluation.protocols import FoldEmbeddings
from mirsim.experiments.experiment import FeatureSet, run_experiment
from mirsim.experiments.tables import (METRIC_NAMES, Cells, TableKind, fill_table,
                                       left_out_note, percent, preamble, row_label, row_name,
                                       row_overrides)

#: ``mirsim reproduce metric-vs-classification``: its files in the run directory.
METRIC_VS_CLASSIFICATION = TableKind(
    "reproduce metric-vs-classification", "metric_vs_classification", "rows",
    ("data", "feature", "rows", "protocol", "folds", "seed", "row_params"))

#: The cut-offs of the recall columns.
RECALL_KS = (1, 2, 4, 8)
#: The metrics of a cell shown in the Markdown table (all are in the JSON).
COLUMNS = tuple(f"r_at_{k}" for k in RECALL_KS) + ("label_auc",)
#: The size of every row with ``quick``.
QUICK = {"epochs": 3, "hidden": (64,), "embedding_dim": 32, "batch_size": 64}


@dataclass(frozen=True)
class Row:
    """One row: a registered model, the components (``loss``, ``miner``...), model
    parameters and ``-p`` assignments that make it this row, and its name in the table
    (``None``: the model's name for these parameters)."""

    model: str
    components: dict[str, str] = field(default_factory=dict)
    params: dict[str, Any] = field(default_factory=dict)
    assignments: tuple[str, ...] = ()
    label: str | None = None


#: Every row the table can have, in the table's order.
ROWS = {
    # one margin for the loss and the miner (pytorch-metric-learning's examples do so): the
    # loss's own default (0.05) would leave the triplets the miner picks (violations up to
    # its 0.2) mostly without a loss
    "triplet": Row("mlp", {"loss": "triplet", "miner": "semihard"}, assignments=("margin=0.2",),
                   label="Triplet network (semi-hard mining)"),
    "proxy-nca": Row("mlp", {"loss": "proxy-nca"}, label="Proxy-NCA"),
    "proxy-anchor": Row("mlp", {"loss": "proxy-anchor"}, label="Proxy-Anchor"),
    "classifier-unnormalised": Row("classifier", params={"normalize": False}),
    "classifier": Row("classifier", params={"normalize": True}),
    "prototypical": Row("prototypical"),
    "euclidean": Row("euclidean", label="Euclidean (no learning)"),
}
#: The rows of the comparison by default (Lee et al.'s three approaches, classification
#: with and without normalisation).
DEFAULT_ROWS = ("triplet", "proxy-nca", "proxy-anchor", "classifier-unnormalised",
                "classifier")

def recall_and_label_auc(fold: FoldEmbeddings) -> dict[str, float]:
    """The table's metrics of one fold: R@1, R@2, R@4, R@8 over the fold's queries and
    candidates, and the label AUC of the queries against the centroids of the training part.

    Examples
    --------
    >>> import numpy as np
    >>> from mirsim.evaluation.protocols import evaluate_protocol
    >>> from mirsim.models import EuclideanModel
    >>> y = np.repeat(np.arange(3), 10); X = np.random.default_rng(0).normal(size=(30, 2)) + 4 * y[:, None]
    >>> r = evaluate_protocol(EuclideanModel, X, y, np.arange(30), "kfold", 3,
    ...                       extra_metrics=recall_and_label_auc)
    >>> sorted(k for k in r.per_fold[0] if k.startswith("r_") or k == "label_auc")
    ['label_auc', 'r_at_1', 'r_at_2', 'r_at_4', 'r_at_8']
    """
    out = {f"r_at_{k}": recall_at_k(fold.embeddings, fold.labels, k, queries=fold.queries,
                                    distance=fold.distance) for k in RECALL_KS}
    out["label_auc"] = centroid_label_auc(fold.train_embeddings(), fold.train_labels,
                                          fold.query_embeddings, fold.query_labels,
                                          distance=fold.distance)
    return out


def metric_vs_classification_config(data: str, feature: str, rows: Sequence[str] | None = None,
                                    protocol: str = "kfold", folds: int = 5, seed: int = 0,
                                    params: Sequence[str] | None = None, quick: bool = False,
                                    sol_root: str | Path | None = None) -> dict[str, Any]:
    """The checked configuration of a ``reproduce metric-vs-classification`` run.

    Parameters
    ----------
    rows : sequence of str, optional
        Keys of :data:`ROWS` (default :data:`DEFAULT_ROWS`).
    params : sequence of str, optional
        ``ROW:KEY=VALUE`` overrides (``KEY=VALUE`` as in ``mirsim train -p``), e.g.
        ``triplet:margin=0.1``.
    quick : bool
        Train every row at the size of :data:`QUICK`.

    Examples
    --------
    >>> c = metric_vs_classification_config("synth", "mfcc", ["triplet", "classifier"],
    ...                                     params=["triplet:margin=0.1"], quick=True)
    >>> c["row_params"]["triplet"]["loss"], c["row_params"]["classifier"]["epochs"]
    ({'name': 'triplet', 'params': {'margin': 0.1, 'triplets_per_anchor': 'all'}}, 3)
    >>> metric_vs_classification_config("synth", "mfcc")["row_params"]["triplet"]["miner"]
    {'name': 'semihard', 'params': {'margin': 0.2}}
    >>> c["row_names"]["classifier"]
    'Classification (normalised)'
    >>> metric_vs_classification_config("synth", "mfcc", ["euclidean"], quick=True)["row_params"]
    {'euclidean': {}}
    """
    from mirsim.evaluation.protocols import make_protocol
    from mirsim.experiments.specs import model_params, params_config
    from mirsim.features import make_extractor
    from mirsim.models import make_model
    from mirsim.registries import MODELS
    from mirsim.registry import class_params

    make_protocol(protocol, folds, seed)
    make_extractor(feature)
    rows = list(rows) if rows else list(DEFAULT_ROWS)
    for r in rows:
        if r not in ROWS:
            raise UnknownNameError("row", r, ROWS)
    if len(set(rows)) != len(rows):
        raise MirsimError(f"--rows names a row twice: {', '.join(rows)}")
    overrides = row_overrides(params, rows)
    row_params, row_names = {}, {}
    for r in rows:
        spec = ROWS[r]
        has = class_params(MODELS.get(spec.model))
        live = {**{k: v for k, v in (QUICK if quick else {}).items() if k in has}, **spec.params,
                **model_params(spec.model, [*spec.assignments, *overrides.get(r, [])],
                               **spec.components)}
        make_model(spec.model, **live)  # every parameter checked before any work
        row_params[r] = params_config(live)
        row_names[r] = spec.label or row_name(spec.model, row_params[r])
    return METRIC_VS_CLASSIFICATION.config(
        data=data, feature=feature, rows=rows, protocol=protocol, folds=folds, seed=seed,
        quick=quick, row_models={r: ROWS[r].model for r in rows}, row_params=row_params,
        row_names=row_names, sol_root=None if sol_root is None else str(sol_root))


def run_metric_vs_classification(fs: FeatureSet, config: dict[str, Any], *, n_jobs: int = 1,
                                 done: Cells | None = None,
                                 on_table: Callable[[dict], None] | None = None,
                                 on_cell: Callable[[str, str, dict], None] | None = None
                                 ) -> dict[str, Any]:
    """Train and evaluate every row of ``config`` on ``fs``; return the table (JSON-able).

    ``done``, ``on_table``, ``on_cell``: as in :func:`mirsim.experiments.tables.fill_table`
    (the cells are seeded: a continued table equals an uninterrupted one).
    """
    rows = config["rows"]
    table: dict[str, Any] = {
        "data": fs.collection.name, "description": fs.collection.description,
        "protocol": config["protocol"], "folds": config["folds"], "seed": config["seed"],
        "n_items": len(fs.X), "quick": bool(config.get("quick")), "features": [fs.feature],
        "models": list(rows), "row_models": config["row_models"],
        "row_names": config["row_names"],
    }
    return fill_table(table, rows, [fs.feature],
                      lambda r, f: _cell(fs, config["row_models"][r], config["row_params"][r],
                                         config, n_jobs),
                      done=done, on_table=on_table, on_cell=on_cell)


def _cell(fs: FeatureSet, model: str, params: dict[str, Any], config: dict[str, Any],
          n_jobs: int) -> dict[str, Any]:
    from mirsim.models import model_class

    live = model_class(model)._params_from_config(params)  # components saved as JSON
    result = run_experiment(fs, model, config["protocol"], config["folds"], config["seed"],
                            live, n_jobs=n_jobs, extra_metrics=recall_and_label_auc)
    summary = result.protocol_result.summary()
    j = result.to_json()
    return {**{m: summary[m] for m in (*COLUMNS, "p_at_1", "map_at_r")},
            "n_parameters": j["n_parameters"], "train_seconds": j["train_seconds"],
            "n_items": j["n_items"], "folds": result.folds, "queries": j["queries"],
            "distance": j["distance"]}


def _auc(stat: dict[str, float]) -> str:
    return f"{stat['mean']:.3f} ± {stat['std']:.3f}"


def metric_vs_classification_markdown(table: dict[str, Any]) -> str:
    """The table as Markdown: one row per method; R@1, R@2, R@4, R@8 (in %), label AUC,
    distance and training time (seconds, all folds), each mean ± std over folds.

    Examples
    --------
    >>> stat = {"mean": 0.5, "std": 0.1}
    >>> t = {"data": "d", "description": "", "protocol": "kfold", "folds": 5, "n_items": 9,
    ...      "features": ["mfcc"], "models": ["classifier"],
    ...      "row_names": {"classifier": "Classification (normalised)"},
    ...      "cells": {"classifier": {"mfcc": {**{c: stat for c in COLUMNS},
    ...                "distance": "cosine", "train_seconds": 12.34}}}}
    >>> print(metric_vs_classification_markdown(t).splitlines()[-1])
    | Classification (normalised) | 50.0 ± 10.0 | 50.0 ± 10.0 | 50.0 ± 10.0 | 50.0 ± 10.0 | 0.500 ± 0.100 | cosine | 12.3 |
    """
    feature = table["features"][0]
    head = ("| Method | " + " | ".join(
        f"{METRIC_NAMES[c]}{'' if c == 'label_auc' else ' (%)'}" for c in COLUMNS)
        + " | distance | train s |")
    lines = [*preamble(table)]
    if table.get("quick"):
        lines[-1:] = ["Quick run (small networks, 3 epochs): a check that the command runs, "
                      "not a result.", ""]
    lines += [f"Feature: {feature}.", "", head, "|---|" + "---:|" * len(COLUMNS) + "---|---:|"]
    for row in table["models"]:
        cell = table["cells"][row][feature]
        values = [_auc(cell[c]) if c == "label_auc" else percent(cell[c]) for c in COLUMNS]
        lines.append(f"| {row_label(table, row)} | " + " | ".join(values)
                     + f" | {cell['distance']} | {cell['train_seconds']:.1f} |")
    return "\n".join(lines + left_out_note(table))
