"""Wall time of the whole 5-fold run of every Table 1 model on the (simulated) Cyberlioz
extended set, features cached (extracted before the clock starts).

    MIRSIM_CYBERLIOZ_DIR=... python benchmarks/bench_training.py [--feature mfcc] [--models ...]

A model may carry parameter overrides: ``an-gnn:width=512`` (512-wide graph blocks). Folds run
two at a time (one per core, one torch thread each), as ``mirsim train`` does by default. Writes
``benchmarks/results/training-<feature>.json``. The issue's target: AN-GNN <= 60 s.
"""

from __future__ import annotations

import argparse
import time

from _common import write_result

from mirsim.experiments import load_features, run_experiment
from mirsim.models import table1_models


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="cyberlioz-extended")
    parser.add_argument("--feature", default="mfcc")
    parser.add_argument("--models", default=",".join(table1_models()) + ",an-gnn:width=512")
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    fs = load_features(args.data, args.feature, n_jobs=args.workers)  # fills the cache
    rows = []
    for spec in args.models.split(","):
        model, *overrides = spec.split(":")
        params = {k: int(v) for k, v in (o.split("=") for o in overrides)}
        t0 = time.perf_counter()
        r = run_experiment(fs, model, "kfold", args.folds, seed=0, model_params=params,
                           n_jobs=args.jobs)
        wall = time.perf_counter() - t0
        j = r.to_json()
        rows.append({"model": spec, "wall_seconds": round(wall, 2),
                     "fit_seconds": j["train_seconds"], "n_parameters": j["n_parameters"],
                     "ii_p_at_5": j["metrics"]["ii_p_at_5"]})
        print(f"{spec:18s} {wall:7.1f} s  ii-P@5 {j['metrics']['ii_p_at_5']['mean']:.3f}", flush=True)
    path = write_result(f"training-{args.feature}", {
        "what": "5-fold kfold run (fit + embed + metrics), features cached",
        "jobs": args.jobs,
        "data": fs.collection.name, "description": fs.collection.description,
        "n_items": len(fs.X), "feature": args.feature, "folds": args.folds, "rows": rows})
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
