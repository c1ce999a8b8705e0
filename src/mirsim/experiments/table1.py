"""The AN-GNN paper's Table 1: ii-P@5 (mean ± std over 5 folds) of every model on every feature.

Rows: Euclidean, linear projection, LMNN, MLP, kNN-GNN, AN-GNN. Columns: one per feature, with
the number of learned parameters of each model beside it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import mirsim
from mirsim.artefacts.runs import read_run
from mirsim.errors import MirsimError
from mirsim.datasets.listeners import JudgedTriplets, ListenerGroupings
from mirsim.experiments.experiment import FeatureSet, run_experiment
from mirsim.experiments.judgments import ExperimentJudgments, judgments_for
from mirsim.experiments.specs import model_params as model_params_from_cli
from mirsim.experiments.specs import params_config


def row_name(model: str) -> str:
    """A model's name in tables: its registered ``display_name`` (or its name).

    >>> row_name("lmnn"), row_name("linear")
    ('LMNN', 'Linear projection')
    """
    from mirsim.registries import MODELS

    if model not in MODELS:
        return model
    return MODELS.entry(model).attributes.get("display_name") or model


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
    overrides: dict[str, list[str]] = {}
    for p in params or []:
        name, sep, kv = p.partition(":")
        if not sep:
            raise MirsimError(f"--param '{p}': use MODEL:KEY=VALUE")
        overrides.setdefault(name, []).append(kv)
    unknown = sorted(set(overrides) - set(models))
    if unknown:
        raise MirsimError(f"--param for model(s) not in the table: {', '.join(unknown)}")
    chosen = {"loss": loss, "miner": miner, "distance": distance, "sampler": sampler}
    model_params = {}
    for m in models:
        has = class_params(MODELS.get(m))
        options = {k: v for k, v in chosen.items() if k in has}
        model_params[m] = params_config(model_params_from_cli(m, overrides.get(m), **options))
    return {"command": "reproduce table1", "data": data, "features": list(features),
            "models": list(models), "protocol": protocol, "folds": folds, "seed": seed,
            "model_params": model_params,
            "sol_root": None if sol_root is None else str(sol_root),
            "judgments": None if judgments is None else str(judgments),
            "mirsim_version": mirsim.__version__}


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
        ``cells`` of an earlier, unfinished run of the same table: those cells are kept, not
        computed again.
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
        "features": [fs.feature for fs in feature_sets], "models": list(models), "cells": {},
        "complete": False,
    }
    matched = {}
    if judgments is not None:  # per feature set: each may have skipped other items
        matched = {fs.feature: judgments_for(fs, judgments) for fs in feature_sets}
        table["judgments"] = matched[first.feature].describe()
    for model in models:
        table["cells"][model] = {}
        for fs in feature_sets:
            cell = (done or {}).get(model, {}).get(fs.feature)
            computed = cell is None
            if computed:
                cell = _table1_cell(fs, model, protocol, folds, seed, model_params.get(model),
                                    n_jobs, matched.get(fs.feature))
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
    run = read_run(run_dir)
    run_dir, config = run.path, run.config
    if config.get("command") != "reproduce table1":
        raise MirsimError(f"{run_dir}: not a `reproduce table1` run directory "
                          f"(config.json says {config.get('command')!r})")
    missing = sorted({"data", "features", "models", "protocol", "folds", "seed",
                      "model_params"} - set(config))
    if missing:
        raise MirsimError(f"{run_dir / 'config.json'}: missing {', '.join(missing)}")
    if run.problems:
        raise MirsimError(run.problems[0])
    cells = (run.table1 or {}).get("cells", {})
    return config, {m: dict(row) for m, row in cells.items() if m in config["models"]}


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


def _pct(stat: dict[str, float]) -> str:
    return f"{100 * stat['mean']:.1f} ± {100 * stat['std']:.1f}"


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
        cells = " | ".join(_pct(human[m]) if m in human else "—" for m in metrics) + " | — | —"
        lines.append(f"| Human reference ({len(judgments['listeners'])} listeners) | "
                     + " | ".join([cells] * len(table["features"])) + " |")
    if any(m in JUDGMENT_METRICS for m in metrics):
        lines += ["", f"Triplet agreement: mean ± std over the {len(judgments['listeners'])} "
                      f"listeners of {Path(judgments['file']).name} of each listener's share "
                      f"of triplets the metric orders as they do, on held-out anchors; ≥90%: "
                      f"on the triplets that at least 90 % of the listeners give. Human "
                      f"reference: each listener predicted from the others."]
    return lines


METRIC_NAMES = {"ii_p_at_5": "ii-P@5", "p_at_5": "P@5", "p_at_1": "P@1", "map_at_r": "MAP@R",
                "triplet_agreement": "triplet agreement",
                "triplet_agreement_high": "triplet agreement ≥90%"}


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
        lines.append(f"| {row_name(model)} | " + " | ".join(parts) + " |")
    lines += _judgments_lines(table, metrics)
    left_out = {(table["cells"][m][f].get("queries") or {}).get("without_relevant") or 0
                for m in table["models"] for f in feats}
    if max(left_out, default=0) > 0:
        lines += ["", f"Queries without a relevant item (no other item of their label among "
                      f"the candidates), left out of every metric: {max(left_out)} in all "
                      f"folds together."]
    return "\n".join(lines)
