"""What fixing the distance mismatch changes: the same fitted models ranked two ways.

Before mirsim had one distance, Proxy-Anchor trained on cosine similarity (pytorch-metric-
learning normalises inside the loss) while the metrics and the index ranked the models' raw
outputs by Euclidean distance. Now ``transform`` returns L2-normalised embeddings and everything
ranks by cosine distance. For every cell of a table this benchmark fits each fold's model once
and scores its held-out embeddings both ways:

* ``cosine``: ``model.transform`` (what mirsim reports now);
* ``euclidean_raw``: the network's raw outputs ranked by Euclidean distance (what it reported).

    MIRSIM_CYBERLIOZ_DIR=... python benchmarks/bench_distance_mismatch.py --table table1
    MIRSIM_CYBERLIOZ_DIR=... python benchmarks/bench_distance_mismatch.py --table new-sounds

``table1``: the simulated extended set, ``kfold``, 5 folds, features mfcc, scat1d, jtfs,
musicnn-msd; ``new-sounds``: the 78 real sounds under ``group-kfold`` (5 folds) and ``loo``.
Rows: the learned models that train on cosine similarity (linear, MLP, kNN-GNN, AN-GNN; LMNN and
Euclidean have no mismatch). Writes ``benchmarks/results/distance-mismatch-<table>.json``.
``--features`` and ``--protocols`` choose columns; the results file is rewritten after every
cell and a rerun skips the cells it holds. ``--quick``: one feature, two models, 600 items
(a smoke run, ``distance-mismatch-<table>-quick.json``).
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
from _common import RESULTS, write_result
from joblib import delayed

from mirsim.evaluation.metrics import retrieval_metrics
from mirsim.evaluation.protocols import make_protocol
from mirsim.experiments import load_features
from mirsim.models import make_model
from mirsim.parallel import worker_processes

ROWS = ("linear", "mlp", "knn-gnn", "an-gnn")
METRICS = ("p_at_1", "p_at_5", "ii_p_at_5", "map_at_r")


def _fold(model_name, X, y, g, train, test, inside):
    import torch

    torch.set_num_threads(1)
    model = make_model(model_name).fit(X[train], y[train], g[train])
    rows = test if inside else np.arange(len(X))
    cosine = model.transform(X[rows])
    raw = model._embed(model._standardise(X[rows].astype(np.float32)))
    out = {}
    for name, emb, distance in (("cosine", cosine, "cosine"), ("euclidean_raw", raw, "euclidean")):
        if inside:
            m = retrieval_metrics(emb, y[test], g[test], distance=distance)
        else:
            m = retrieval_metrics(emb, y, g, queries=test, distance=distance)
        out[name] = {k: m[k] for k in METRICS}
    return out


def _cell(fs, model_name, protocol, jobs):
    proto = make_protocol(protocol, 5, 0)
    splits = proto.split(len(fs.X), fs.groups)
    tasks = (delayed(_fold)(model_name, fs.X, fs.labels, fs.groups, tr, te,
                            proto.queries_inside_test_fold) for tr, te in splits)
    folds = list(worker_processes(jobs)(tasks)) if jobs > 1 else [
        _fold(model_name, fs.X, fs.labels, fs.groups, tr, te, proto.queries_inside_test_fold)
        for tr, te in splits]
    cell = {}
    for way in ("cosine", "euclidean_raw"):
        cell[way] = {k: {"mean": float(np.mean([f[way][k] for f in folds])),
                         "std": float(np.std([f[way][k] for f in folds], ddof=1))}
                     for k in METRICS}
    return cell


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--table", choices=("table1", "new-sounds"), default="table1")
    parser.add_argument("--features", default="mfcc,scat1d,jtfs,musicnn-msd")
    parser.add_argument("--protocols", default=None,
                        help="default: kfold for table1, group-kfold,loo for new-sounds")
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    features = ("mfcc",) if args.quick else tuple(args.features.split(","))
    rows = ROWS[-2:] if args.quick else ROWS
    if args.table == "table1":
        data, protocols = "cyberlioz-extended", ("kfold",)
    else:
        data, protocols = "cyberlioz", ("group-kfold", "loo")
    if args.protocols:
        protocols = tuple(args.protocols.split(","))
    name = f"distance-mismatch-{args.table}" + ("-quick" if args.quick else "")
    path = RESULTS / f"{name}.json"
    cells = json.loads(path.read_text())["cells"] if path.exists() else []
    have = {(c["feature"], c["protocol"], c["model"]) for c in cells}
    for feature in features:
        fs = load_features(data, feature, n_jobs=2)
        if args.quick:
            from dataclasses import replace

            keep = np.sort(np.random.default_rng(0).choice(len(fs.X), min(600, len(fs.X)),
                                                           replace=False))
            fs = replace(fs, X=fs.X[keep], labels=fs.labels[keep], groups=fs.groups[keep])
        for protocol in protocols:
            for model_name in rows:
                if (feature, protocol, model_name) in have:
                    continue
                t0 = time.perf_counter()
                cell = _cell(fs, model_name, protocol, args.jobs)
                cells.append({"feature": feature, "protocol": protocol, "model": model_name,
                              "seconds": round(time.perf_counter() - t0, 1), **cell})
                c, e = cell["cosine"]["map_at_r"]["mean"], cell["euclidean_raw"]["map_at_r"]["mean"]
                print(f"{feature:12s} {protocol:12s} {model_name:8s} MAP@R cosine {c:.3f} "
                      f"raw-euclidean {e:.3f}", flush=True)
                write_result(name, {
                    "what": "each fold's model fitted once, its held-out embeddings ranked by "
                            "cosine distance (transform, what mirsim reports now) and its raw "
                            "outputs by Euclidean distance (what it reported before)",
                    "data": fs.collection.name, "description": fs.collection.description,
                    "n_items": int(len(fs.X)), "quick": args.quick, "cells": cells})
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
