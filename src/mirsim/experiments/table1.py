"""The AN-GNN paper's Table 1: ii-P@5 (mean ± std over 5 folds) of every model on every feature.

Rows: Euclidean, linear projection, LMNN, MLP, kNN-GNN, AN-GNN. Columns: one per feature, with
the number of learned parameters of each model beside it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from mirsim.experiments.experiment import FeatureSet, run_experiment
from mirsim.models import TABLE1_MODELS

#: Display names of the rows, as in the paper.
ROW_NAMES = {"euclidean": "Euclidean", "linear": "Linear projection", "lmnn": "LMNN",
             "mlp": "MLP", "knn-gnn": "kNN-GNN", "an-gnn": "AN-GNN"}


def run_table1(feature_sets: Sequence[FeatureSet], models: Sequence[str] = TABLE1_MODELS,
               protocol: str = "kfold", folds: int = 5, seed: int = 0,
               model_params: dict[str, dict[str, Any]] | None = None,
               on_cell: Callable[[str, str, dict], None] | None = None,
               n_jobs: int = 1) -> dict[str, Any]:
    """Evaluate every model on every feature set; return the table as a JSON-able dict.

    Parameters
    ----------
    feature_sets : sequence of FeatureSet
        One per column (all from the same collection).
    model_params : dict, optional
        Per-model parameter overrides, e.g. ``{"an-gnn": {"epochs": 20}}``.
    on_cell : callable, optional
        Called with ``(model, feature, cell)`` as each cell is finished.
    n_jobs : int
        Folds trained at once (see :func:`mirsim.evaluation.protocols.evaluate_protocol`).
    """
    model_params = model_params or {}
    first = feature_sets[0]
    table: dict[str, Any] = {
        "data": first.collection.name, "description": first.collection.description,
        "protocol": protocol, "folds": folds, "seed": seed, "n_items": len(first.X),
        "features": [fs.feature for fs in feature_sets], "models": list(models), "cells": {},
    }
    for model in models:
        table["cells"][model] = {}
        for fs in feature_sets:
            result = run_experiment(fs, model, protocol, folds, seed, model_params.get(model),
                                    n_jobs=n_jobs)
            j = result.to_json()
            cell = {**j["metrics"], "n_parameters": j["n_parameters"],
                    "train_seconds": j["train_seconds"], "n_items": j["n_items"]}
            table["cells"][model][fs.feature] = cell
            table["folds"] = result.folds  # as run (loo: one per item)
            if on_cell:
                on_cell(model, fs.feature, cell)
    return table


def _pct(stat: dict[str, float]) -> str:
    return f"{100 * stat['mean']:.1f} ± {100 * stat['std']:.1f}"


METRIC_NAMES = {"ii_p_at_5": "ii-P@5", "p_at_5": "P@5", "p_at_1": "P@1", "map_at_r": "MAP@R"}


def table1_markdown(table: dict[str, Any], metrics: Sequence[str] = ("ii_p_at_5",)) -> str:
    """The table as Markdown: one row per model; per feature, each metric (in %, mean ± std
    over folds), the number of learned parameters and the training time (all folds).

    Examples
    --------
    >>> t = {"data": "d", "description": "", "protocol": "kfold", "folds": 5, "n_items": 9,
    ...      "features": ["mfcc"], "models": ["euclidean"], "cells": {"euclidean": {"mfcc":
    ...      {"ii_p_at_5": {"mean": 0.385, "std": 0.01}, "n_parameters": 0,
    ...       "train_seconds": 0.0}}}}
    >>> print(table1_markdown(t).splitlines()[-1])
    | Euclidean | 38.5 ± 1.0 | 0 | 0.0 |
    """
    feats = table["features"]
    head = "| Model | " + " | ".join(
        " | ".join(f"{f} {METRIC_NAMES.get(m, m)} (%)" for m in metrics)
        + f" | {f} params | {f} train s" for f in feats) + " |"
    sep = "|---|" + ("---:|" * (len(metrics) + 2)) * len(feats)
    lines = [f"Data: {table['data']} ({table['n_items']} items) — {table['description']}",
             f"Protocol: {table['protocol']}, {table['folds']} folds; cells: mean ± std over "
             f"folds{' (one query each)' if table['protocol'] == 'loo' else ''}.", "", head, sep]
    for model in table["models"]:
        cells = table["cells"][model]
        parts = [" | ".join(_pct(cells[f][m]) for m in metrics)
                 + f" | {cells[f]['n_parameters']:,} | {cells[f]['train_seconds']:.1f}"
                 for f in feats]
        lines.append(f"| {ROW_NAMES.get(model, model)} | " + " | ".join(parts) + " |")
    return "\n".join(lines)
