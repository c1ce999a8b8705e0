"""Training time per epoch of every loss (with the miner it is used with) on the simulated
Cyberlioz extended set: an MLP on MFCC, batches of 512, one torch thread, features cached.

    MIRSIM_CYBERLIOZ_DIR=... python benchmarks/bench_losses.py [--epochs 5] [--quick]

Each row fits ``mirsim.models.MLPModel`` for ``--epochs`` epochs on all items and reports the
fit time divided by the number of epochs, and the last epoch's loss. Writes
``benchmarks/results/losses-epoch-time.json``. ``--quick``: 600 items, 2 epochs (a smoke run).
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from _common import write_result

from mirsim.experiments import load_features
from mirsim.models import make_model

#: (loss, miner) rows: tuple losses with the miners the tutorial pairs them with.
ROWS = [("proxy-anchor", None), ("proxy-nca", None), ("normalized-softmax", None),
        ("softmax", None), ("nca", None), ("supcon", None), ("prototypical", None),
        ("multi-similarity", None), ("contrastive", None), ("contrastive", "all"),
        ("triplet", None), ("triplet", "semihard"), ("triplet", "hard"),
        ("triplet", "batch-hard"), ("triplet", "distance-weighted")]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="cyberlioz-extended")
    parser.add_argument("--feature", default="mfcc")
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    fs = load_features(args.data, args.feature, n_jobs=2)
    X, y = fs.X, fs.labels
    epochs = 2 if args.quick else args.epochs
    if args.quick:
        keep = np.sort(np.random.default_rng(0).choice(len(X), min(600, len(X)), replace=False))
        X, y = X[keep], y[keep]
    rows = []
    for loss, miner in ROWS:
        sampler = "m-per-class" if loss == "prototypical" else None
        model = make_model("mlp", loss=loss, miner=miner, sampler=sampler, epochs=epochs)
        t0 = time.perf_counter()
        model.fit(X, y)
        total = time.perf_counter() - t0
        per_epoch = total / epochs
        rows.append({"loss": loss, "miner": miner, "epochs": epochs,
                     "seconds_per_epoch": round(per_epoch, 3),
                     "final_loss": round(float(model.loss_history_[-1]), 4)})
        print(f"{loss:20s} {str(miner):18s} {per_epoch:7.3f} s/epoch", flush=True)
    path = write_result("losses-epoch-time", {
        "what": "MLP (256-512-512) fit on every item, seconds per epoch (fit time / epochs)",
        "data": fs.collection.name, "description": fs.collection.description,
        "n_items": int(len(X)), "feature": args.feature, "batch_size": 512,
        "quick": args.quick, "rows": rows})
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
