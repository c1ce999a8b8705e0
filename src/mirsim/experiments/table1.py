"""The AN-GNN paper's Table 1: ii-P@5 (mean ± std over 5 folds) of every model on every feature.

Rows: Euclidean, linear projection, LMNN, MLP, kNN-GNN, AN-GNN. Columns: one per feature, with
the number of learned parameters of each model beside it. A resumable table
(:mod:`mirsim.experiments.tables`): :data:`TABLE1` names its files.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from mirsim.datasets.listeners import JudgedTriplets, ListenerGroupings
from mirsim.experiments.experiment import FeatureSet, run_experiment
from mirsim.experiments.judgments import ExperimentJudgments, judgments_for
from mirsim.experiments.specs import model_params as model_params_from_cli
from mirsim.experiments.specs import params_config
from mirsim.experiments.tables import (METRIC_NAMES, TableKind, fill_table, left_out_note,
                                       percent, preamble, row_label, row_name,
                                       row_overrides)

#: ``mirsim reproduce table1``: ``table1.json`` and ``table1.md`` in its run directory.
TABLE1 = TableKind("reproduce table1", "table1", "models",
                   ("data", "features", "models", "protocol", "folds", "seed", "model_params"))


def table1_config(data: str, features: Sequence[str], models: Sequence[str], protocol: str,
                  folds: int, seed: int, params: Sequence[str] | None = None,
                  sol_root: str | Path | None = None, *, loss: str | None = None,
                  miner: str | None = None, distance: str | None = None,
                  sampler: str | None = None, judgments: str | None = None) -> dict[str, Any]:
    """The checked configuration of a ``reproduce table1`` run (saved as ``config.json``).

    ``params`` are ``MODEL:KEY=VALUE`` overrides; ``loss``, ``miner``, ``distance``,
    ``sampler`` apply to every model that has one; ``judgments`` is the judgments file the
    cells are also scored against (see :mod:`mirsim.experiments.judgments`).
    """
    from mirsim.evaluation.protocols import make_protocol
    from mirsim.features import make_extractor
    from mirsim.registry import class_params
    from mirsim.registries import MODELS

    make_protocol(protocol, folds, seed)
    for f in features:
        make_extractor(f)
    overrides = row_overrides(params, models, "MODEL")
    chosen = {"loss": loss, "miner": miner, "distance": distance, "sampler": sampler}
    model_params = {}
    for m in models:
        has = class_params(MODELS.get(m))
        options = {k: v for k, v in chosen.items() if k in has}
        model_params[m] = params_config(model_params_from_cli(m, overrides.get(m), **options))
    return TABLE1.config(data=data, features=list(features), models=list(models),
                         protocol=protocol, folds=folds, seed=seed, model_params=model_params,
                         sol_root=None if sol_root is None else str(sol_root),
                         judgments=None if judgments is None else str(judgments))


def run_table1(feature_sets: Sequence[FeatureSet], models: Sequence[str] | None = None,
               protocol: str = "kfold", folds: int = 5, seed: int = 0,
               model_params: dict[str, dict[str, Any]] | None = None,
               on_cell: Callable[[str, str, dict], None] | None = None,
               n_jobs: int = 1, done: dict[str, dict[str, dict]] | None = None,
               on_table: Callable[[dict], None] | None = None,
               judgments: ListenerGroupings | JudgedTriplets | None = None) -> dict[str, Any]:
    """Evaluate every model on every feature set; return the table as a JSON-able dict.

    The table has ``"complete": True`` once every cell is in. A long run can be saved after
    each cell (``on_table``) and continued later from what was saved (``done``): the cells are
    seeded, so a continued table equals one computed without a break.

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
    done : dict, optional
        ``cells`` of an earlier, unfinished run of the same table
        (:meth:`TABLE1.load_unfinished <mirsim.experiments.tables.TableKind.load_unfinished>`):
        those cells are kept, not computed again.
    on_table : callable, optional
        Called with the whole table (``"complete": False`` until the last cell) after each
        computed cell, e.g. to save it.
    judgments : ListenerGroupings or JudgedTriplets, optional
        Listener judgments (:func:`mirsim.experiments.judgments.load_judgments`): every cell
        also reports its triplet agreement (and each listener's, as ``listeners``), and the
        table what it records of the judgments, with the human reference, as ``judgments``.
    """
    from mirsim.models import table1_models

    models = list(models) if models is not None else list(table1_models())
    model_params = model_params or {}
    first = feature_sets[0]
    table: dict[str, Any] = {
        "data": first.collection.name, "description": first.collection.description,
        "protocol": protocol, "folds": folds, "seed": seed, "n_items": len(first.X),
        "features": [fs.feature for fs in feature_sets], "models": list(models),
        "row_names": {m: row_name(m, model_params.get(m)) for m in models},
    }
    by_feature = {fs.feature: fs for fs in feature_sets}
    matched = {}
    if judgments is not None:  # per feature set: each may have skipped other items
        matched = {f: judgments_for(fs, judgments) for f, fs in by_feature.items()}
        table["judgments"] = matched[first.feature].describe()
    return fill_table(table, models, list(by_feature),
                      lambda m, f: _table1_cell(by_feature[f], m, protocol, folds, seed,
                                                model_params.get(m), n_jobs, matched.get(f)),
                      done=done, on_table=on_table, on_cell=on_cell)


def _table1_cell(fs: FeatureSet, model: str, protocol: str, folds: int, seed: int,
                 params: dict[str, Any] | None, n_jobs: int,
                 judgments: ExperimentJudgments | None = None) -> dict[str, Any]:
    from mirsim.models import model_class

    cls = model_class(model)
    live = cls._params_from_config(params or {})  # saved configs hold components as JSON
    result = run_experiment(fs, model, protocol, folds, seed, live, n_jobs=n_jobs,
                            judgments=judgments)
    j = result.to_json()
    listeners = {} if "listeners" not in j else {"listeners": j["listeners"]["model"]}
    return {**j["metrics"], "n_parameters": j["n_parameters"],
            "train_seconds": j["train_seconds"], "n_items": j["n_items"], "folds": result.folds,
            "queries": j["queries"], "distance": j["distance"], **listeners}


def _judgments_lines(table: dict[str, Any], metrics: Sequence[str]) -> list[str]:
    """The human-reference row (when the table has judgments) and what the triplet
    agreement columns are."""
    from mirsim.experiments.judgments import JUDGMENT_METRICS

    judgments = table.get("judgments")
    if not judgments:
        return []
    human = judgments.get("human_reference") or {}
    lines = []
    if human and any(m in human for m in metrics):
        cells = " | ".join(percent(human[m]) if m in human else "—" for m in metrics) + " | — | —"
        lines.append(f"| Human reference ({len(judgments['listeners'])} listeners) | "
                     + " | ".join([cells] * len(table["features"])) + " |")
    if any(m in JUDGMENT_METRICS for m in metrics):
        lines += ["", f"Triplet agreement: mean ± std over the {len(judgments['listeners'])} "
                      f"listeners of {Path(judgments['file']).name} of each listener's share "
                      f"of triplets the metric orders as they do, on held-out anchors; ≥90%: "
                      f"on the triplets that at least 90 % of the listeners give. Human "
                      f"reference: each listener predicted from the others."]
    return lines


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
    lines = [*preamble(table), head, sep]
    for model in table["models"]:
        cells = table["cells"][model]
        parts = [" | ".join(percent(cells[f][m]) for m in metrics)
                 + f" | {cells[f]['n_parameters']:,} | {cells[f]['train_seconds']:.1f}"
                 for f in feats]
        lines.append(f"| {row_label(table, model)} | " + " | ".join(parts) + " |")
    lines += _judgments_lines(table, metrics)
    return "\n".join(lines + left_out_note(table))
