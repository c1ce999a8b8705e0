"""The toolbox on new sounds: every loss on a linear and an MLP backbone, and the tutorial's
other methods, on the 78 real Cyberlioz sounds.

    MIRSIM_CYBERLIOZ_DIR=... python benchmarks/bench_toolbox.py [--features jtfs,musicnn-msd]
        [--protocols group-kfold,loo] [--jobs 2] [--quick]

Rows: ``euclidean`` (the standardised features); ``lda``, ``nca``, ``lmnn``; ``linear`` and
``mlp`` trained with each supervised loss (``proxy-anchor``, ``proxy-nca``,
``normalized-softmax``, ``nca``, ``supcon``, ``triplet``, ``contrastive``,
``multi-similarity``); ``classifier`` without and with normalisation; ``prototypical``.
Losses that take a miner (triplet, contrastive, multi-similarity) get their miner chosen by
an inner cross-validation on each outer fold's training sounds only (``inner-cv``: 3
group folds, MAP@R, miners none / semihard / hard / batch-hard / distance-weighted with
``nonzero_loss_cutoff=2``: at its default 1.4 it picks nothing from 512-d embeddings at
initialisation, see ``NothingMinedError``) under
``group-kfold``; under ``loo`` (78 outer folds) they use their default (every triplet or
pair of the batch, which holds every training sound), as the inner search would cost 16
fits per fold. Every model at mirsim's defaults otherwise (50 epochs, AdamW, batch 512, seed
0). ``simclr`` (no labels) is in the README's own section.

Each cell is ``mirsim.experiments.run_experiment`` (the numbers ``mirsim train`` prints);
the results file is rewritten after every cell and a rerun skips the cells it holds, so an
interrupted run continues. Writes ``benchmarks/results/toolbox-new-sounds.json`` (``--quick``:
``toolbox-new-sounds-quick.json``: MFCC, group-kfold, three rows, 5 epochs; a smoke run).
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import dataclass, field
from typing import Any

from _common import RESULTS, write_result

from mirsim.experiments import load_features
from mirsim.experiments.experiment import run_experiment

#: Supervised losses of the toolbox (``ntxent`` is self-supervised: ``simclr``).
LOSSES = ("proxy-anchor", "proxy-nca", "normalized-softmax", "nca", "supcon", "triplet",
          "contrastive", "multi-similarity")
#: Losses whose miner is chosen by the inner cross-validation.
MINED = ("triplet", "contrastive", "multi-similarity")
MINERS = (None, "semihard", "hard", "batch-hard", "distance-weighted")
MINER_PARAMS = {"distance-weighted": {"nonzero_loss_cutoff": 2.0}}
METRICS = ("p_at_1", "p_at_5", "map_at_r")


@dataclass(frozen=True)
class Row:
    """One row: a model and its parameters (``search``: choose the miner by inner CV)."""

    name: str
    model: str
    params: dict[str, Any] = field(default_factory=dict)
    search: bool = False


def rows() -> list[Row]:
    out = [Row("euclidean", "euclidean"), Row("lda", "lda"), Row("nca", "nca"),
           Row("lmnn", "lmnn")]
    for backbone in ("linear", "mlp"):
        out += [Row(f"{backbone} {loss}", backbone, {"loss": loss}, loss in MINED)
                for loss in LOSSES]
    return out + [Row("classifier (not normalised)", "classifier", {"normalize": False}),
                  Row("classifier (normalised)", "classifier", {"normalize": True}),
                  Row("prototypical", "prototypical")]


def _model_and_params(row: Row, protocol: str, epochs: int | None
                      ) -> tuple[str, dict[str, Any]]:
    from mirsim.models import make_model
    from mirsim.registries import MINERS as MINER_REGISTRY
    from mirsim.registry import class_params

    from mirsim.registries import MODELS

    params = dict(row.params)
    if epochs is not None and "epochs" in class_params(MODELS.get(row.model)):
        params["epochs"] = epochs
    if not (row.search and protocol == "group-kfold"):
        return row.model, params
    grid = [None if m is None else MINER_REGISTRY.make(m, **MINER_PARAMS.get(m, {}))
            for m in MINERS]
    return "inner-cv", {"estimator": make_model(row.model, **params),
                        "param_grid": {"miner": grid}, "inner_folds": 3}


def _cell(fs, row: Row, protocol: str, jobs: int, epochs: int | None) -> dict[str, Any]:
    model, params = _model_and_params(row, protocol, epochs)
    t0 = time.perf_counter()
    result = run_experiment(fs, model, protocol, 5, 0, params, n_jobs=jobs)
    j = result.to_json()
    cell = {m: j["metrics"][m] for m in METRICS}
    cell.update(seconds=round(time.perf_counter() - t0, 1), folds=j["folds"],
                queries=j["queries"], distance=j["distance"])
    if model == "inner-cv":
        cell["miner_search"] = [str(m) for m in MINERS]
        cell["miner_params"] = MINER_PARAMS
    return cell


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--features", default="jtfs,musicnn-msd")
    parser.add_argument("--protocols", default="group-kfold,loo")
    parser.add_argument("--rows", default=None, help="comma-separated row names (default: all)")
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    features = ["mfcc"] if args.quick else args.features.split(",")
    protocols = ["group-kfold"] if args.quick else args.protocols.split(",")
    table_rows = [r for r in rows() if r.name in ("euclidean", "linear triplet", "prototypical")
                  ] if args.quick else rows()
    if args.rows:
        wanted = [n.strip() for n in args.rows.split(",")]
        unknown = sorted(set(wanted) - {r.name for r in rows()})
        if unknown:
            parser.error(f"unknown rows: {', '.join(unknown)}")
        table_rows = [r for r in table_rows if r.name in wanted]
    epochs = 5 if args.quick else None
    name = "toolbox-new-sounds" + ("-quick" if args.quick else "")
    path = RESULTS / f"{name}.json"
    cells = json.loads(path.read_text())["cells"] if path.exists() else []
    have = {(c["feature"], c["protocol"], c["row"]) for c in cells}
    description = ""
    for feature in features:
        fs = load_features("cyberlioz", feature, n_jobs=2)
        description = fs.collection.description
        for protocol in protocols:
            for row in table_rows:
                if (feature, protocol, row.name) in have:
                    continue
                cell = _cell(fs, row, protocol, args.jobs, epochs)
                cells.append({"feature": feature, "protocol": protocol, "row": row.name,
                              "model": row.model, "params": row.params, **cell})
                print(f"{feature:12s} {protocol:12s} {row.name:32s} "
                      + " ".join(f"{m} {cell[m]['mean']:.3f}" for m in METRICS)
                      + f"  {cell['seconds']:.0f} s", flush=True)
                write_result(name, {
                    "what": "each row cross-validated on the 78 real sounds (mirsim train's "
                            "numbers): P@1, P@5, MAP@R mean ± std over folds",
                    "data": "cyberlioz", "description": description, "quick": args.quick,
                    "cells": cells})
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
