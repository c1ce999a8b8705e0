"""The multi-dimensional similarity tables (Ribecky, Abeßer & Lukashevich 2021, after Lee et
al. 2020): how well each embedding predicts triplets of held-out songs drawn from each
dimension of similarity (genre, instrument, tempo, key of ``grooves``).

Rows (:data:`ROWS`):

* ``baseline``: Lee et al.'s conditional similarity network on the mel spectrogram alone
  (``csn`` with ``backbone=baseline, inputs=("mel",)`` on ``multi-input[inputs=mel]``);
* ``multi-input``: the proposed network on mel, cyclic tempogram and CENS chroma;
* ``musicnn-msd``: a pretrained embedding (musicnn trained on the Million Song Dataset),
  Euclidean distance, nothing learned.

An item is one song, read as **one 3 s segment**: the ``multi-input`` feature (and
``musicnn-msd`` too) reads the song's first 3 s (its ``duration``), so each song is one item
and its own group, and ``group-kfold`` holds out whole songs. The conditional networks learn,
in each fold, from the training block of each dimension's similarity matrix
(:func:`mirsim.experiments.experiment.run_experiment`); every row is scored on
:func:`~mirsim.evaluation.dimensions.dimension_triplets` of the fold's test songs
(:class:`~mirsim.evaluation.dimensions.DimensionTripletMetrics`).

*Table 1*: per row, each dimension's score — in that dimension's own sub-space for a
conditional network, in the whole embedding otherwise — and their mean (``overall``).
*Table 2*: per conditional row, the score on each dimension's triplets of every combination
of active sub-spaces (the chosen sub-spaces concatenated). A radar plot draws the
single-dimension scores of Table 1. A resumable table (:mod:`mirsim.experiments.tables`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from mirsim.experiments.experiment import FeatureSet, run_experiment
from mirsim.experiments.tables import TableKind, fill_table, percent

#: ``mirsim reproduce multidim``: ``multidim.json``, ``multidim.md`` (and ``multidim.png``).
MULTIDIM = TableKind("reproduce multidim", "multidim", "rows",
                     ("data", "data_params", "rows", "protocol", "folds", "seed",
                      "model_params"))

#: row -> (feature, feature parameters, model, model parameters, name in the tables)
ROWS: dict[str, tuple[str, dict[str, Any], str, dict[str, Any], str]] = {
    "baseline": ("multi-input", {"inputs": ["mel"]}, "csn",
                 {"backbone": "baseline", "inputs": ["mel"], "rows": [128]},
                 "Baseline CSN (mel only)"),
    "multi-input": ("multi-input", {}, "csn", {}, "Multi-input CSN (mel, tempo, chroma)"),
    "musicnn-msd": ("musicnn-msd", {}, "euclidean", {}, "musicnn-msd (pretrained, Euclidean)"),
}

#: What ``--quick`` changes: a handful of short songs, one epoch, two folds.
QUICK = {"songs": 16, "duration": 3.5, "epochs": 1, "folds": 2}


def multidim_config(songs: int = 120, epochs: int = 10, folds: int = 5, seed: int = 0,
                    rows: Sequence[str] = tuple(ROWS), lr: float = 1e-3,
                    duration: float | None = None, root: str | None = None) -> dict[str, Any]:
    """The checked configuration of a ``reproduce multidim`` run (saved as ``config.json``).

    ``epochs`` and ``lr`` go to every conditional row (the papers train for far longer, at
    1e-5: see the README); ``duration`` and ``root`` to the ``grooves`` songs.

    Examples
    --------
    >>> c = multidim_config(songs=8, epochs=1, folds=2)
    >>> c["rows"], c["model_params"]["multi-input"]
    (['baseline', 'multi-input', 'musicnn-msd'], {'epochs': 1, 'lr': 0.001, 'seed': 0})
    """
    from mirsim.errors import UnknownNameError
    from mirsim.evaluation.protocols import make_protocol
    from mirsim.models import make_model

    make_protocol("group-kfold", folds, seed)
    for r in rows:
        if r not in ROWS:
            raise UnknownNameError("row", r, list(ROWS))
    model_params = {}
    for r in rows:
        _, _, model, params, _ = ROWS[r]
        learned = {"epochs": epochs, "lr": lr} if model == "csn" else {}
        model_params[r] = {**params, **learned, "seed": seed}
        make_model(model, **model_params[r])  # every parameter checked before any work
    data_params = {"songs": songs, **({"duration": duration} if duration else {}),
                   **({"root": root} if root else {})}
    return MULTIDIM.config(data="grooves", data_params=data_params, rows=list(rows),
                           protocol="group-kfold", folds=folds, seed=seed,
                           model_params=model_params,
                           feature_params={r: ROWS[r][1] for r in rows})


def row_features(row: str) -> tuple[str, dict[str, Any]]:
    """The feature and its parameters that ``row`` reads.

    >>> row_features("baseline")
    ('multi-input', {'inputs': ['mel']})
    """
    feature, params, _, _, _ = ROWS[row]
    return feature, params


def run_multidim(feature_sets: dict[str, FeatureSet], config: dict[str, Any], n_jobs: int = 1,
                 done: dict[str, dict[str, dict]] | None = None,
                 on_table: Callable[[dict], None] | None = None,
                 on_cell: Callable[[str, str, dict], None] | None = None) -> dict[str, Any]:
    """Evaluate every row on its feature set (``feature_sets[row]``); the table as a
    JSON-able dict (``cells[row]["grooves"]``: the run's metrics, with ``dimensions``)."""
    first = next(iter(feature_sets.values()))
    data = first.collection.name
    table: dict[str, Any] = {
        "data": data, "description": first.collection.description,
        "protocol": config["protocol"], "folds": config["folds"], "seed": config["seed"],
        "n_items": len(first.X), "data_params": config["data_params"],
        "segment": "one 3 s segment per song (its first 3 s)",
        "dimensions": [d.name for d in first.collection.dimensions],
        "rows": list(config["rows"]), "models": list(config["rows"]), "features": [data],
        "row_names": {r: ROWS[r][4] for r in config["rows"]},
    }
    return fill_table(table, config["rows"], [data],
                      lambda r, _: _cell(feature_sets[r], r, config, n_jobs),
                      done=done, on_table=on_table, on_cell=on_cell)


def _cell(fs: FeatureSet, row: str, config: dict[str, Any], n_jobs: int) -> dict[str, Any]:
    model = ROWS[row][2]
    params = config["model_params"][row]
    result = run_experiment(fs, model, config["protocol"], config["folds"], config["seed"],
                            {**params, **_tuples(params)}, n_jobs=n_jobs)
    j = result.to_json()
    dims = j["metrics"]["dimensions"]
    single = {d: spaces.get(d, spaces["whole"]) for d, spaces in dims.items()}
    overall = sum(s["mean"] for s in single.values()) / len(single)
    return {**j["metrics"], "single": single, "overall": overall,
            "n_parameters": j["n_parameters"], "train_seconds": j["train_seconds"],
            "n_items": j["n_items"], "folds": result.folds, "distance": j["distance"],
            "queries": j["queries"]}


def _tuples(params: dict[str, Any]) -> dict[str, Any]:
    """JSON lists of a saved configuration back to the tuples the model's parameters are."""
    return {k: tuple(v) for k, v in params.items() if isinstance(v, list)}


def multidim_markdown(table: dict[str, Any]) -> str:
    """Table 1 (every row: overall and per-dimension triplet prediction, genre P@5,
    parameters, training time) and Table 2 (every combination of a conditional row's
    sub-spaces) as Markdown.

    Examples
    --------
    >>> s = {"mean": 0.7, "std": 0.1}
    >>> cell = {"single": {"g": s}, "overall": 0.7, "p_at_5": s, "n_parameters": 5,
    ...         "train_seconds": 1.0, "dimensions": {"g": {"whole": s, "g": s}}}
    >>> t = {"data": "grooves", "n_items": 9, "description": "songs", "protocol":
    ...      "group-kfold", "folds": 2, "rows": ["m"], "dimensions": ["g"],
    ...      "features": ["grooves"], "cells": {"m": {"grooves": cell}}}
    >>> print(multidim_markdown(t).splitlines()[5])
    | m | 70.0 | 70.0 ± 10.0 | 70.0 ± 10.0 | 5 | 1.0 |
    """
    from mirsim.experiments.tables import preamble, row_label

    dims, data = table["dimensions"], table["features"][0]
    lines = [*preamble(table),
             "| Embedding | overall (%) | " + " | ".join(f"{d} (%)" for d in dims)
             + " | genre P@5 (%) | params | train s |",
             "|---|" + "---:|" * (len(dims) + 4)]
    for row in table["rows"]:
        c = table["cells"][row][data]
        lines.append(f"| {row_label(table, row)} | {100 * c['overall']:.1f} | "
                     + " | ".join(percent(c["single"][d]) for d in dims)
                     + f" | {percent(c['p_at_5'])} | {c['n_parameters']:,} | "
                       f"{c['train_seconds']:.1f} |")
    lines += ["", "Triplet prediction of held-out songs (mean ± std over folds): a triplet "
                  "(a, p, n) of a dimension is right when a is nearer to p (alike in that "
                  "dimension) than to n (not). A conditional network is scored in the "
                  "dimension's own sub-space, another embedding in the whole embedding; "
                  "overall = the mean over dimensions."]
    for row in table["rows"]:
        spaces = table["cells"][row][data]["dimensions"][dims[0]]
        combos = [s for s in spaces if s != "whole"]
        if not combos:
            continue
        lines += ["", f"Table 2 — {row_label(table, row)}: triplets of each dimension scored "
                      f"on the chosen sub-spaces concatenated (%)", "",
                  "| sub-spaces | " + " | ".join(dims) + " |",
                  "|---|" + "---:|" * len(dims)]
        for combo in [*combos, "whole"]:
            name = "whole embedding" if combo == "whole" else combo
            lines.append(f"| {name} | " + " | ".join(
                percent(table["cells"][row][data]["dimensions"][d][combo]) for d in dims)
                + " |")
    return "\n".join(lines)


def multidim_radar(table: dict[str, Any], path: str | Path) -> Path:
    """A Kiviat (radar) plot of Table 1's single-dimension scores, one polygon per row,
    written atomically as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    from mirsim.artefacts.files import atomic_path
    from mirsim.experiments.tables import row_label

    dims, data = table["dimensions"], table["features"][0]
    angles = np.linspace(0, 2 * np.pi, len(dims), endpoint=False).tolist()
    fig, ax = plt.subplots(figsize=(5.5, 5.5), subplot_kw={"polar": True})
    for row in table["rows"]:
        single = table["cells"][row][data]["single"]
        values = [100 * single[d]["mean"] for d in dims]
        ax.plot(angles + angles[:1], values + values[:1], label=row_label(table, row))
        ax.fill(angles + angles[:1], values + values[:1], alpha=0.1)
    ax.set_xticks(angles, dims)
    ax.set_ylim(0, 100)
    ax.set_title(f"Triplet prediction of held-out songs (%), {data}", fontsize=10)
    ax.legend(loc="upper right", bbox_to_anchor=(1.3, 1.12), fontsize=8)
    path = Path(path)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    return path
