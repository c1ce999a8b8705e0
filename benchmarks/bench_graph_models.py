"""Why the graph models lose on new sounds: controlled experiments on AN-GNN and kNN-GNN.

The 78 real Cyberlioz sounds under ``group-kfold`` (5 folds, seed 0: every test sound is new
to its fold's model, each sound being its own IMT), MAP@R against the consensus clusters, every
model at mirsim's defaults unless a row says otherwise::

    MIRSIM_CYBERLIOZ_DIR=... python benchmarks/bench_graph_models.py
    MIRSIM_CYBERLIOZ_DIR=... python benchmarks/bench_graph_models.py --features musicnn-msd \
        --experiments memorisation,optimisation,inner-cv-lr
    MIRSIM_CYBERLIOZ_DIR=... python benchmarks/bench_graph_models.py --imt musicnn-msd
    MIRSIM_CYBERLIOZ_DIR=... python benchmarks/bench_graph_models.py --quick

Experiments (``--experiments``; a row shared by two experiments is measured once):

``memorisation``
    Euclidean, MLP, kNN-GNN, AN-GNN, and AN-GNN with ``k=1`` (every node its own only
    neighbour: the graph disabled, the same network as an MLP of the graph model's width and
    epochs). Besides the test MAP@R (test sounds queried among all 77 others), each cell has the
    **training** MAP@R: the fold's training sounds queried among themselves, embedded as they
    were fitted (graph models: one pass over the training graph, :meth:`GraphModel.
    embed_reference`). ``gap`` = training - test.
``neighbourhood``
    Graph models trained with ``k`` = 1, 3 (default), 5, 10. In every graph cell also: the
    models trained at that ``k`` embedding the test sounds with another ``k`` at inference
    (``k_query``); the label purity of the neighbours a test sound is attached to (block 1 and
    2) against that of the training sounds' neighbours in the training graph; and, **as a
    diagnostic only** (transductive, not the protocol: a new sound would move the other sounds'
    embeddings), the test sounds embedded inside one graph of all 78 sounds.
``capacity``
    AN-GNN, one setting changed at a time from the defaults: epochs, block width, dropout,
    weight decay, learning rate. A sweep, scored on the test folds: it shows what moves the
    numbers, it does not choose a setting.
``optimisation``
    AN-GNN with a smaller, constant learning rate, for 50 or 200 epochs, and at two of these
    settings the MLP and AN-GNN ``k=1`` (kNN-GNN at one), to compare like with like: with 62
    training sounds and batches of 512, an epoch is one optimiser step, and at the default
    rate (0.05, AdamW) the networks on the 775-d ``jtfs`` do not even fit their training
    sounds. A sweep, as ``capacity``.
``seeds``
    MLP, kNN-GNN and AN-GNN with two more seeds of the weights and batches (the split fixed):
    how much of a difference between rows is the seed's.
``inner-cv``
    AN-GNN with epochs, dropout and weight decay chosen in every outer fold by a 3-fold inner
    ``group-kfold`` on that fold's training sounds only (``inner-cv``, MAP@R): the one number
    of this benchmark that may be quoted as "AN-GNN, tuned".
``inner-cv-lr``
    The same with the learning rate chosen (0.05, 0.005, 0.0005; constant, 50 epochs).
``--imt FEATURES`` (instead of the above)
    The simulated extended set (5,083 distinct items rendered from the 78 sounds: 78 IMTs),
    Euclidean, AN-GNN and AN-GNN ``k=1`` under ``kfold`` (the paper's: a test item's IMT has
    copies in training) and ``group-kfold`` (it has none): what seen IMTs are worth, and whether
    it is the graph that uses them. Written to ``graph-models-imt-extended.json``.

Writes ``benchmarks/results/graph-models-new-sounds.json`` (``-quick`` with ``--quick``: 2
epochs, the memorisation rows only); the file is rewritten after every cell and a rerun skips
the cells it holds. Folds run one at a time (``n_jobs=1``), one torch thread.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import torch
from _common import RESULTS, write_result

from mirsim.evaluation.metrics import retrieval_metrics
from mirsim.evaluation.protocols import FoldEmbeddings, evaluate_protocol
from mirsim.experiments import load_features
from mirsim.models import make_model
from mirsim.models.graph import GraphModel

PROTOCOL, FOLDS, SEED = "group-kfold", 5, 0
#: ``k`` at inference for the models trained at their own ``k`` (itself included: 1 = alone)
K_QUERY = (1, 2, 3, 5, 10)
#: The inner-CV grid, fixed before any outer result was seen.
INNER_GRID = {"epochs": [10, 50], "dropout": [0.1, 0.5], "weight_decay": [1e-5, 1e-2]}
#: The learning-rate grid, set after the ``capacity`` sweep showed that the learning rate is
#: what matters on ``jtfs`` (so the grid, not the choice in it, saw test folds).
LR_GRID = {"lr": [0.05, 0.005, 0.0005]}
#: No learning-rate decay within the run (the default decays it by 0.8 every 10 epochs).
CONSTANT_LR = {"lr_step": 1000}

#: experiment -> rows (label, model, params)
EXPERIMENTS: dict[str, list[tuple[str, str, dict]]] = {
    "memorisation": [
        ("Euclidean", "euclidean", {}),
        ("MLP", "mlp", {}),
        ("kNN-GNN", "knn-gnn", {}),
        ("AN-GNN", "an-gnn", {}),
        ("AN-GNN k=1 (graph disabled)", "an-gnn", {"k": 1}),
    ],
    "neighbourhood": [
        *[(f"AN-GNN k={k}", "an-gnn", {"k": k} if k != 3 else {}) for k in (1, 3, 5, 10)],
        *[(f"kNN-GNN k={k}", "knn-gnn", {"k": k} if k != 3 else {}) for k in (1, 3, 5, 10)],
    ],
    "capacity": [
        *[(f"AN-GNN epochs={e}", "an-gnn", {"epochs": e}) for e in (5, 10, 20)],
        *[(f"AN-GNN width={w}", "an-gnn", {"width": w}) for w in (16, 128, 512)],
        *[(f"AN-GNN dropout={d}", "an-gnn", {"dropout": d}) for d in (0.3, 0.5)],
        *[(f"AN-GNN weight_decay={w}", "an-gnn", {"weight_decay": w}) for w in (1e-3, 1e-2, 1e-1)],
        ("AN-GNN lr=0.005", "an-gnn", {"lr": 0.005}),
    ],
    "optimisation": [
        *[(f"AN-GNN lr={lr}, constant", "an-gnn", {"lr": lr, **CONSTANT_LR})
          for lr in (0.005, 0.001, 0.0005)],
        ("AN-GNN lr=0.001, constant, 200 epochs", "an-gnn",
         {"lr": 0.001, "epochs": 200, **CONSTANT_LR}),
        ("AN-GNN k=1 (graph disabled) lr=0.0005, constant", "an-gnn",
         {"k": 1, "lr": 0.0005, **CONSTANT_LR}),
        ("kNN-GNN lr=0.0005, constant", "knn-gnn", {"lr": 0.0005, **CONSTANT_LR}),
        ("MLP lr=0.0005, constant", "mlp", {"lr": 0.0005, **CONSTANT_LR}),
        ("AN-GNN k=1 (graph disabled) lr=0.001, constant, 200 epochs", "an-gnn",
         {"k": 1, "lr": 0.001, "epochs": 200, **CONSTANT_LR}),
        ("MLP lr=0.001, constant, 200 epochs", "mlp",
         {"lr": 0.001, "epochs": 200, **CONSTANT_LR}),
    ],
    "seeds": [(f"{label} seed={s}", model, {"seed": s}) for label, model in (
        ("MLP", "mlp"), ("kNN-GNN", "knn-gnn"), ("AN-GNN", "an-gnn")) for s in (1, 2)],
    "inner-cv": [("AN-GNN, inner-CV (epochs, dropout, weight decay)", "inner-cv",
                  {"grid": INNER_GRID})],
    "inner-cv-lr": [("AN-GNN, inner-CV (lr 0.05/0.005/0.0005, constant)", "inner-cv",
                     {"grid": LR_GRID, "base": CONSTANT_LR})],
}
QUICK = {"epochs": 2}
#: ``--imt``: the same rows on the simulated extended set, with test IMTs seen or not
IMT_ROWS = [("Euclidean", "euclidean", {}), ("AN-GNN", "an-gnn", {}),
            ("AN-GNN k=1 (graph disabled)", "an-gnn", {"k": 1})]


def _graph(model) -> GraphModel | None:
    """The graph model inside ``model`` (itself, or an inner-cv search's refitted best)."""
    model = getattr(model, "best_estimator_", model)
    return model if isinstance(model, GraphModel) else None


def _map(emb, labels, groups, distance, queries=None) -> float:
    return retrieval_metrics(emb, labels, groups, queries=queries, distance=distance)["map_at_r"]


def _set_k(model: GraphModel, k: int) -> None:
    """Attach queries (and build the reference graph) with ``k`` neighbours from now on."""
    for block in model.network_.blocks:
        block.adjacency.k = k
    model._use_reference(model.reference_)


def _purity(model: GraphModel, X_test: np.ndarray, test_labels, train_labels) -> dict:
    """Share of the neighbours (itself excluded) that have the node's label, per block: a test
    sound's k-1 reference neighbours, and a training sound's neighbours in the training graph."""
    net, out = model.network_, {}
    train_labels = torch.as_tensor(train_labels)
    with torch.no_grad():
        h_q = net.input(torch.from_numpy(model._standardise(X_test.astype(np.float32))))
        h_r = net.input(model.reference_)
        for b, (block, state) in enumerate(zip(net.blocks, model.reference_states_), 1):
            if block.adjacency.k > 1:
                _, idx, _ = block.adjacency.query_rows(h_q, state[0], state[1])
                same = train_labels[idx] == torch.as_tensor(test_labels)[:, None]
                out[f"purity_test_block{b}"] = float(same.float().mean())
                src, dst, *_ = block.adjacency.graph(h_r)
                off = src != dst
                out[f"purity_train_block{b}"] = float(
                    (train_labels[src[off]] == train_labels[dst[off]]).float().mean())
            h_q = block.query_pass(h_q, state)
            h_r = block(h_r)
    return out


def diagnostics(X: np.ndarray):
    """The ``extra_metrics`` of every cell (``X``: every item's features, for the graph of
    all items)."""

    def extra(fold: FoldEmbeddings) -> dict[str, float]:
        train, test, d = fold.train_rows, fold.queries, fold.distance
        labels, groups = fold.labels, fold.groups
        graph = _graph(fold.model)
        out = {}
        if graph is None:
            out["train_map_at_r"] = _map(fold.train_embeddings(), labels[train], groups[train], d)
            return out
        fitted = graph.embed_reference()  # the training sounds as they were fitted
        out["train_map_at_r"] = _map(fitted, labels[train], groups[train], d)
        out["train_inductive_map_at_r"] = _map(fold.train_embeddings(), labels[train],
                                               groups[train], d)
        library = fold.embeddings.copy()
        library[train] = fitted
        out["library_as_fitted_map_at_r"] = _map(library, labels, groups, d, test)
        out.update(_purity(graph, X[test], labels[test], labels[train]))
        k_trained = graph.k
        for k in K_QUERY:
            _set_k(graph, k)
            out[f"k_query_{k}_map_at_r"] = _map(graph.transform(X), labels, groups, d, test)
        _set_k(graph, k_trained)
        graph.set_reference(X)  # diagnostic only: the test sounds are nodes of the graph
        out["transductive_map_at_r"] = _map(graph.embed_reference(), labels, groups, d, test)
        return out

    return extra


def train_map(fold: FoldEmbeddings) -> dict[str, float]:
    """The ``extra_metrics`` of ``--imt``: the training items queried among themselves, as
    they were fitted (any protocol)."""
    graph = _graph(fold.model)
    emb = graph.embed_reference() if graph is not None else fold.model.transform(fold.X_train)
    return {"train_map_at_r": _map(emb, fold.train_labels, None, fold.distance)}


def _factory(model: str, params: dict, quick: bool):
    if model == "inner-cv":
        base = make_model("an-gnn", **(QUICK if quick else {}), **params.get("base", {}))
        grid = {k: v for k, v in params["grid"].items() if not (quick and k == "epochs")}
        return lambda: make_model("inner-cv", estimator=base, param_grid=grid, inner_folds=3,
                                  seed=SEED)
    live = {**(QUICK if quick and model != "euclidean" else {}), **params}
    return lambda: make_model(model, **live)


def _chosen(model) -> dict[str, float]:
    best = getattr(model, "best_params_", None)
    return {} if best is None else {f"chosen_{k}": float(v) for k, v in best.items()}


def _cell(fs, model: str, params: dict, quick: bool, protocol: str = PROTOCOL) -> dict:
    extra = diagnostics(fs.X) if protocol == PROTOCOL else train_map

    def with_choice(fold):
        return {**extra(fold), **_chosen(fold.model)}

    result = evaluate_protocol(_factory(model, params, quick), fs.X, fs.labels, fs.groups,
                               protocol, FOLDS, SEED, n_jobs=1, extra_metrics=with_choice)
    summary = result.summary()
    keep = [k for k in summary if not k.startswith("n_")]
    cell = {k: summary[k] for k in keep}
    cell["gap_map_at_r"] = {"mean": cell["train_map_at_r"]["mean"] - cell["map_at_r"]["mean"]}
    cell["per_fold"] = [{k: f[k] for k in keep if k in f} for f in result.per_fold]
    cell["train_seconds"] = round(result.train_seconds, 1)
    cell["n_parameters"] = int(result.n_parameters)
    return cell


def _key(feature: str, model: str, params: dict) -> str:
    return f"{feature}|{model}|{json.dumps(params, sort_keys=True)}"


def _pct(stat: dict) -> str:
    return f"{100 * stat['mean']:.1f} ± {100 * stat['std']:.1f}" if "std" in stat else \
        f"{100 * stat['mean']:.1f}"


def markdown(saved: dict) -> str:
    """The results file as Markdown tables, in %: test and training MAP@R of every row, then
    the graph diagnostics of every graph row (``--markdown``)."""
    cells, lines = saved["cells"], []
    for experiment, by_feature in saved["experiments"].items():
        if experiment == "imt":
            lines += [f"\n{experiment} (cyberlioz-extended)\n",
                      "| Feature | Protocol | Row | test MAP@R | train MAP@R |", "|---|---|---|---:|---:|"]
            for feature, by_protocol in by_feature.items():
                for protocol, rows in by_protocol.items():
                    for label, key in rows.items():
                        if key in cells:
                            c = cells[key]
                            lines.append(f"| {feature} | {protocol} | {label} | "
                                         f"{_pct(c['map_at_r'])} | {_pct(c['train_map_at_r'])} |")
            continue
        features = list(by_feature)
        labels = list(dict.fromkeys(lab for f in features for lab in by_feature[f]))
        head = "".join(f" {f} test | {f} train |" for f in features)
        lines += [f"\n{experiment}\n", f"| Row |{head}", "|---|" + "---:|---:|" * len(features)]
        for label in labels:
            row = f"| {label} |"
            for f in features:
                c = cells.get(by_feature[f].get(label, ""))
                row += (f" {_pct(c['map_at_r'])} | {_pct(c['train_map_at_r'])} |" if c
                        else " — | — |")
            lines.append(row)
    diag = ("map_at_r", "k_query_1_map_at_r", "k_query_10_map_at_r", "transductive_map_at_r",
            "library_as_fitted_map_at_r", "purity_train_block1", "purity_test_block1",
            "purity_train_block2", "purity_test_block2")
    lines += ["\ngraph diagnostics\n", "| Feature | Model | Params | " + " | ".join(diag) + " |",
              "|---|---|---|" + "---:|" * len(diag)]
    for c in cells.values():
        if "transductive_map_at_r" in c:
            lines.append(f"| {c['feature']} | {c['model']} | {json.dumps(c['params'])} | " +
                         " | ".join(_pct({"mean": c[d]["mean"]}) if d in c else "—"
                                    for d in diag) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--features", default="mfcc,jtfs")
    parser.add_argument("--experiments", default=",".join(EXPERIMENTS))
    parser.add_argument("--imt", default=None, metavar="FEATURES",
                        help="instead: the IMT experiment on the simulated extended set, "
                             "kfold against group-kfold, for these features")
    parser.add_argument("--markdown", action="store_true",
                        help="print the results file as Markdown tables and stop")
    parser.add_argument("--quick", action="store_true",
                        help="2 epochs, memorisation rows only (a smoke run)")
    args = parser.parse_args()
    torch.set_num_threads(1)
    experiments = ("memorisation",) if args.quick else tuple(args.experiments.split(","))
    name = ("graph-models-imt-extended" if args.imt else "graph-models-new-sounds") + (
        "-quick" if args.quick else "")
    path = RESULTS / f"{name}.json"
    saved = json.loads(path.read_text()) if path.exists() else {}
    if args.markdown:
        print(markdown(saved))
        return
    cells, experiments_rows = saved.get("cells", {}), saved.get("experiments", {})

    def save() -> None:
        data = {"data": "cyberlioz-extended"} if args.imt else {
            "data": "cyberlioz", "n_items": 78, "protocol": PROTOCOL}
        write_result(name, {"what": __doc__.split("\n\n")[0], **data, "folds": FOLDS, "seed": SEED,
                            "quick": args.quick, "experiments": experiments_rows,
                            "cells": cells})

    if args.imt:
        imt = experiments_rows.setdefault("imt", {})
        for feature in args.imt.split(","):
            fs = load_features("cyberlioz-extended", feature, n_jobs=1)
            for protocol in ("kfold", PROTOCOL):
                for label, model, params in IMT_ROWS:
                    key = f"extended|{protocol}|" + _key(feature, model, params)
                    imt.setdefault(feature, {}).setdefault(protocol, {})[label] = key
                    if key not in cells:
                        t0 = time.perf_counter()
                        cells[key] = {"data": fs.collection.name, "description":
                                      fs.collection.description, "n_items": len(fs.X),
                                      "protocol": protocol, "feature": feature, "model": model,
                                      "params": params,
                                      **_cell(fs, model, params, args.quick, protocol),
                                      "seconds": round(time.perf_counter() - t0, 1)}
                        save()
                    c = cells[key]
                    print(f"extended {feature:12s} {protocol:12s} {label:30s} test "
                          f"{c['map_at_r']['mean']:.3f} train {c['train_map_at_r']['mean']:.3f}",
                          flush=True)
        print(f"wrote {path}")
        return
    for feature in args.features.split(","):
        fs = load_features("cyberlioz", feature, n_jobs=1)
        for experiment in experiments:
            rows = experiments_rows.setdefault(experiment, {})
            for label, model, params in EXPERIMENTS[experiment]:
                key = _key(feature, model, params)
                rows.setdefault(feature, {})[label] = key
                if key not in cells:
                    t0 = time.perf_counter()
                    cells[key] = {"feature": feature, "model": model, "params": params,
                                  **_cell(fs, model, params, args.quick),
                                  "seconds": round(time.perf_counter() - t0, 1)}
                    save()
                c = cells[key]
                extra = "".join(f" {n} {c[m]['mean']:.3f}" for n, m in (
                    ("k_query=1", "k_query_1_map_at_r"), ("transductive", "transductive_map_at_r"))
                    if m in c)
                print(f"{feature:12s} {experiment:13s} {label:45s} test {c['map_at_r']['mean']:.3f}"
                      f" train {c['train_map_at_r']['mean']:.3f}{extra}", flush=True)
    save()
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
