"""Wall time of the whole 5-fold run of every Table 1 model on the (simulated) Cyberlioz
extended set, features cached (extracted before the clock starts).

    MIRSIM_CYBERLIOZ_DIR=... python benchmarks/bench_training.py [--feature mfcc] [--models ...]

Writes ``benchmarks/results/training-<feature>.json``. The issue's target: AN-GNN <= 60 s.
"""

from __future__ import annotations

import argparse
import time

from _common import write_result

from mirsim.experiments import load_features, run_experiment
from mirsim.models import TABLE1_MODELS


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="cyberlioz-extended")
    parser.add_argument("--feature", default="mfcc")
    parser.add_argument("--models", default=",".join(TABLE1_MODELS))
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    fs = load_features(args.data, args.feature, n_jobs=args.workers)  # fills the cache
    rows = []
    for model in args.models.split(","):
        t0 = time.perf_counter()
        r = run_experiment(fs, model, "kfold", args.folds, seed=0)
        wall = time.perf_counter() - t0
        j = r.to_json()
        rows.append({"model": model, "wall_seconds": round(wall, 2),
                     "fit_seconds": j["train_seconds"], "n_parameters": j["n_parameters"],
                     "ii_p_at_5": j["metrics"]["ii_p_at_5"]})
        print(f"{model:10s} {wall:7.1f} s  ii-P@5 {j['metrics']['ii_p_at_5']['mean']:.3f}", flush=True)
    path = write_result(f"training-{args.feature}", {
        "what": "5-fold kfold run (fit + embed + metrics), features cached",
        "data": fs.collection.name, "description": fs.collection.description,
        "n_items": len(fs.X), "feature": args.feature, "folds": args.folds, "rows": rows})
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
