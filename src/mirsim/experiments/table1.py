"""The AN-GNN paper's Table 1: ii-P@5 (mean ± std over 5 folds) of every model on every feature.

Rows: Euclidean, linear projection, LMNN, MLP, kNN-GNN, AN-GNN. Columns: one per feature, with
the number of learned parameters of each model beside it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from mirsim.errors import MirsimError
from mirsim.experiments.experiment import FeatureSet, run_experiment
from mirsim.experiments.runs import read_json_object
from mirsim.models import TABLE1_MODELS

#: Display names of the rows, as in the paper.
ROW_NAMES = {"euclidean": "Euclidean", "linear": "Linear projection", "lmnn": "LMNN",
             "mlp": "MLP", "knn-gnn": "kNN-GNN", "an-gnn": "AN-GNN"}


def run_table1(feature_sets: Sequence[FeatureSet], models: Sequence[str] = TABLE1_MODELS,
               protocol: str = "kfold", folds: int = 5, seed: int = 0,
               model_params: dict[str, dict[str, Any]] | None = None,
               on_cell: Callable[[str, str, dict], None] | None = None,
               n_jobs: int = 1, done: dict[str, dict[str, dict]] | None = None,
               on_table: Callable[[dict], None] | None = None) -> dict[str, Any]:
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
        ``cells`` of an earlier, unfinished run of the same table: those cells are kept, not
        computed again.
    on_table : callable, optional
        Called with the whole table (``"complete": False`` until the last cell) after each
        computed cell, e.g. to save it.
    """
    model_params = model_params or {}
    first = feature_sets[0]
    table: dict[str, Any] = {
        "data": first.collection.name, "description": first.collection.description,
        "protocol": protocol, "folds": folds, "seed": seed, "n_items": len(first.X),
        "features": [fs.feature for fs in feature_sets], "models": list(models), "cells": {},
        "complete": False,
    }
    for model in models:
        table["cells"][model] = {}
        for fs in feature_sets:
            cell = (done or {}).get(model, {}).get(fs.feature)
            computed = cell is None
            if computed:
                cell = _table1_cell(fs, model, protocol, folds, seed, model_params.get(model),
                                    n_jobs)
            table["cells"][model][fs.feature] = cell
            table["folds"] = cell.get("folds", table["folds"])  # as run (loo: one per item)
            if computed and on_table:
                on_table(table)
            if on_cell:
                on_cell(model, fs.feature, cell)
    table["complete"] = True
    return table


def load_unfinished_table1(run_dir: str | Path) -> tuple[dict[str, Any], dict[str, dict]]:
    """The configuration and finished cells of a ``reproduce table1`` run directory.

    Parameters
    ----------
    run_dir : path
        A directory written by ``mirsim reproduce table1`` (``config.json``, and
        ``table1.json`` once a cell is finished).

    Returns
    -------
    config : dict
        The saved configuration (data, features, models, protocol, folds, seed, model_params).
    cells : dict
        ``cells[model][feature]`` of the finished cells (empty if none); pass as ``done`` to
        :func:`run_table1`.

    Raises
    ------
    MirsimError
        Not such a run directory, or files that cannot be read (one line, naming the file).

    Examples
    --------
    >>> import tempfile
    >>> d = Path(tempfile.mkdtemp())
    >>> _ = (d / "config.json").write_text('{"command": "reproduce table1", "data": "x", '
    ...     '"features": ["mfcc"], "models": ["euclidean"], "protocol": "kfold", "folds": 5, '
    ...     '"seed": 0, "model_params": {"euclidean": {}}}')
    >>> config, cells = load_unfinished_table1(d)
    >>> config["features"], cells
    (['mfcc'], {})
    """
    run_dir = Path(run_dir)
    config = read_json_object(run_dir / "config.json")
    if config.get("command") != "reproduce table1":
        raise MirsimError(f"{run_dir}: not a `reproduce table1` run directory "
                          f"(config.json says {config.get('command')!r})")
    missing = sorted({"data", "features", "models", "protocol", "folds", "seed",
                      "model_params"} - set(config))
    if missing:
        raise MirsimError(f"{run_dir / 'config.json'}: missing {', '.join(missing)}")
    table_path = run_dir / "table1.json"
    cells = read_json_object(table_path).get("cells", {}) if table_path.exists() else {}
    return config, {m: dict(row) for m, row in cells.items() if m in config["models"]}


def _table1_cell(fs: FeatureSet, model: str, protocol: str, folds: int, seed: int,
                 params: dict[str, Any] | None, n_jobs: int) -> dict[str, Any]:
    result = run_experiment(fs, model, protocol, folds, seed, params, n_jobs=n_jobs)
    j = result.to_json()
    return {**j["metrics"], "n_parameters": j["n_parameters"],
            "train_seconds": j["train_seconds"], "n_items": j["n_items"], "folds": result.folds}


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
