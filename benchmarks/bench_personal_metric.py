"""Does a metric tuned to one listener predict that listener's held-out triplets better than
the group metric it started from? On the 78 real Cyberlioz sounds and the 16 listeners' own
groupings.

    MIRSIM_CYBERLIOZ_DIR=... python benchmarks/bench_personal_metric.py [--quick] [--listeners N]
        [--feature jtfs] [--base lda] [--budgets 30,100] [--folds 5] [--seed 0]

Each cell is :func:`mirsim.experiments.personal.evaluate_listener` (what ``mirsim train
--judgments cyberlioz --listener NAME`` prints): 5 folds by sound; in each, the group metric
(``--base``, fitted on the consensus clusters of the training sounds) and the personal metric
(the group metric plus a linear map learned from at most ``budget`` of the listener's
triplets among the training sounds, penalty chosen by inner CV) are scored on the listener's
triplets whose anchor is a test sound. Per budget, :func:`paired_summary` over listeners.

``--control`` adds, per listener, the metric tuned the same way to the next listener (in file
order) scored on this listener's held-out triplets: whether tuning helps because it is this
person's judgments, or because any listener's do.

Default: JTFS + LDA (``mirsim train``'s default), every listener, every training triplet
(budget ``all``, what ``mirsim train --listener`` does). ``--quick``: MFCC + LDA, 3
listeners, budget 100. Writes ``benchmarks/results/personal-metric.json`` (``--quick``:
``personal-metric-quick.json``; ``--name`` another), rewritten after every listener.
``personal-metric-small-budgets-partial.json`` is ``--budgets 30,100 --name ...`` stopped
after 3 listeners, ``personal-metric-control-partial.json`` ``--control --name ...`` after 12.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from _common import write_result

from mirsim.experiments import load_features
from mirsim.experiments.judgments import judgments_for, load_judgments
from mirsim.experiments.personal import evaluate_listener, listener_triplets, paired_summary


def _arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="MFCC, 3 listeners, budget 100")
    parser.add_argument("--listeners", type=int, default=None, help="first N listeners only")
    parser.add_argument("--feature", default=None)
    parser.add_argument("--base", default="lda")
    parser.add_argument("--budgets", default=None,
                        help="training triplets per fold, e.g. 30,100,all (all: every one)")
    parser.add_argument("--name", default=None, help="results file name (default: "
                                                     "personal-metric[-quick])")
    parser.add_argument("--control", action="store_true",
                        help="also: each listener scored by the metric tuned to the next one")
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    return parser.parse_args()


def main() -> None:
    args = _arguments()
    feature = args.feature or ("mfcc" if args.quick else "jtfs")
    budgets = [None if b == "all" else int(b)
               for b in (args.budgets or ("100" if args.quick else "all")).split(",")]
    n_listeners = args.listeners or (3 if args.quick else None)
    name = args.name or ("personal-metric-quick" if args.quick else "personal-metric")
    features = load_features("cyberlioz", feature)
    judgments = judgments_for(features, load_judgments("cyberlioz"))
    listeners = list(judgments.scorer.listeners)[:n_listeners]
    results: dict[str, list[dict]] = {_key(b): [] for b in budgets}
    start = time.perf_counter()
    out = {}
    everyone = list(judgments.scorer.listeners)
    for listener in listeners:
        triplets, weights = listener_triplets(judgments, listener)
        other = everyone[(everyone.index(listener) + 1) % len(everyone)]
        for budget in budgets:
            r = evaluate_listener(features, triplets, weights, listener=listener, base=args.base,
                                  folds=args.folds, seed=args.seed, max_triplets=budget)
            row = r.to_json()
            if args.control:
                c = evaluate_listener(features, triplets, weights, listener=listener,
                                      base=args.base, folds=args.folds, seed=args.seed,
                                      max_triplets=budget,
                                      learn_from=listener_triplets(judgments, other))
                row["control"] = {"tuned_to": other, "agreement": c.personal}
            results[_key(budget)].append(row)
            print(f"{listener} budget {_key(budget)}: group {r.group:.4f} personal "
                  f"{r.personal:.4f} ({r.difference:+.4f})"
                  + (f" tuned to {other}: {row['control']['agreement']:.4f}"
                     if args.control else ""), flush=True)
        out = _summary(feature, args, results, listeners, time.perf_counter() - start)
        write_result(name, out)
    print(out["summary"])


def _key(budget: int | None) -> str:
    return "all" if budget is None else str(budget)


def _summary(feature: str, args: argparse.Namespace, results: dict[str, list[dict]],
             listeners: list[str], seconds: float) -> dict:
    summary = {}
    for budget, rows in results.items():
        if rows:
            summary[budget] = paired_summary(np.array([r["group"] for r in rows]),
                                             np.array([r["personal"] for r in rows]))
            if "control" in rows[0]:  # own metric against the metric tuned to another
                summary[budget]["own_vs_other"] = paired_summary(
                    np.array([r["control"]["agreement"] for r in rows]),
                    np.array([r["personal"] for r in rows]))
    return {"data": "cyberlioz", "feature": feature, "base": args.base, "folds": args.folds,
            "seed": args.seed, "protocol": "folds by sound (group-kfold); held out: triplets "
            "whose anchor is a test sound; learned from: triplets among training sounds",
            "listeners_planned": listeners, "listeners_done": len(next(iter(results.values()))),
            "seconds": round(seconds, 1), "summary": summary, "per_listener": results}


if __name__ == "__main__":
    main()
