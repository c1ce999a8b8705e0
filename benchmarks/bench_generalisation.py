"""What else makes a learned metric generalise to new sounds: more inputs (musicnn's pooled
mid-end features), ensembles over folds, and the extended set's variants as augmentation, on
the 78 real Cyberlioz sounds under group-kfold, scored against the consensus clusters and the
16 listeners.

    MIRSIM_CYBERLIOZ_DIR=... python benchmarks/bench_generalisation.py [--sections inputs,ensembles,augmentation] [--quick]

Sections (each cell is ``mirsim.experiments.run_experiment``, the numbers ``mirsim train
--judgments cyberlioz`` prints; 5 group folds, seed 0):

* ``inputs``: Euclidean, LDA and soft-label LDA (supervision ``soft-labels`` of ``reproduce
  new-sounds``) on ``musicnn-msd`` with ``layer=pooled`` (its mid-end features pooled over
  time, mean and max: 1,506 values; the default ``musicnn-msd`` is the 200-unit penultimate
  layer) and on ``jtfs`` beside it (the two side by side);
* ``ensembles``: ``fold-ensemble`` (one member per inner group fold of the training sounds,
  embeddings side by side) of LDA on ``jtfs`` and ``jtfs+musicnn-msd``, and of the MLP on
  ``musicnn-msd``, against the single model;
* ``augmentation``: LDA and the MLP on ``mfcc`` and ``jtfs`` trained with the simulated
  variants of their training sounds (the extended set: the seed recording transposed and
  scaled), keeping the variants at most 0.5 (gain only), 2, 5, 12 semitones from the seed, or
  all of them (what ``reproduce new-sounds`` supervision ``extended`` uses).

The results file is rewritten after every cell and a rerun skips the cells it holds.
Writes ``benchmarks/results/generalisation-new-sounds.json`` (``--quick``: MFCC only, a few
cells, ``...-quick.json``).
"""

from __future__ import annotations

import argparse
import json
import time
from typing import Any

import numpy as np
from _common import RESULTS, write_result

from mirsim.datasets.cyberlioz import seed_copies
from mirsim.experiments import load_features
from mirsim.experiments.experiment import FeatureSet, run_experiment, variants_of
from mirsim.experiments.judgments import judgments_for, load_judgments
from mirsim.experiments.new_sounds import listener_coassociation, soft_labels
from mirsim.models import make_model

METRICS = ("p_at_1", "p_at_5", "map_at_r", "triplet_agreement", "triplet_agreement_high")
#: Largest transposition (semitones) of the variants kept; ``None``: every variant.
SEMITONES = (0.5, 2, 5, 12, None)


def side_by_side(a: FeatureSet, b: FeatureSet, name: str) -> FeatureSet:
    """Two feature sets of the same items as one (columns of ``a`` then ``b``)."""
    if not np.array_equal(a.kept, b.kept):
        raise SystemExit(f"{a.feature} and {b.feature} hold different items")
    return FeatureSet(a.collection, name, np.concatenate([a.X, b.X], axis=1), a.labels,
                      a.groups, a.kept, a.skipped)


def _features(name: str, cache: dict) -> FeatureSet:
    if name not in cache:
        if name == "musicnn-msd-pooled":
            cache[name] = load_features("cyberlioz", "musicnn-msd", {"layer": "pooled"})
        elif name == "jtfs+musicnn-msd-pooled":
            cache[name] = side_by_side(_features("jtfs", cache),
                                       _features("musicnn-msd-pooled", cache), name)
        else:
            cache[name] = load_features("cyberlioz", name)
    return cache[name]


def cells(section: str, quick: bool) -> list[dict[str, Any]]:
    """The cells of a section: input, model (and its parameters), variants kept."""
    if section == "inputs":
        inputs = ["mfcc"] if quick else ["musicnn-msd-pooled", "jtfs+musicnn-msd-pooled"]
        return ([{"input": i, "model": m} for i in inputs for m in ("euclidean", "lda")]
                + [{"input": i, "model": "soft-lda", "supervision": "soft-labels"}
                   for i in inputs])
    if section == "ensembles":
        pairs = ([("mfcc", "lda")] if quick else
                 [("jtfs", "lda"), ("jtfs+musicnn-msd", "lda"), ("musicnn-msd", "mlp")])
        return [{"input": i, "model": m, "ensemble": e} for i, m in pairs for e in (False, True)]
    if section == "augmentation":
        inputs = ["mfcc"] if quick else ["mfcc", "jtfs"]
        models = ["lda"] if quick else ["lda", "mlp"]
        limits = (None,) if quick else SEMITONES
        return [{"input": i, "model": m, "semitones": s} for i in inputs for m in models
                for s in ("none", *limits)]
    raise SystemExit(f"unknown section '{section}' (valid: inputs, ensembles, augmentation)")


def _run_cell(cell: dict[str, Any], cache: dict, judgments, quick: bool) -> dict[str, Any]:
    fs = _features(cell["input"], cache)
    params = {"epochs": 5} if quick and cell["model"] == "mlp" else {}
    model = cell["model"]
    if cell.get("ensemble"):
        params = {"estimator": make_model(model, **params), "inner_folds": 5}
        model = "fold-ensemble"
    variants = None
    if cell.get("semitones", "none") != "none":
        own = f"extended:{cell['input']}"
        if own not in cache:
            cache[own] = load_features("cyberlioz-extended", cell["input"])
        extended = cache[own]
        limit = cell["semitones"]
        far = (lambda items: seed_copies(items)) if limit is None else \
            (lambda items: seed_copies(items) | (np.abs(items["n_steps"].to_numpy()) > limit))
        variants = variants_of(fs, extended, "seed", unchanged=far)
    matched = judgments_for(fs, judgments)
    similarities = None
    if cell.get("supervision") == "soft-labels":  # as reproduce new-sounds' supervision
        similarities = soft_labels(fs.labels, listener_coassociation(matched))
    t0 = time.perf_counter()
    j = run_experiment(fs, model, "group-kfold", 5, 0, params, judgments=matched,
                       variants=variants, similarities=similarities).to_json()
    return {**{m: j["metrics"][m] for m in METRICS if m in j["metrics"]},
            "n_variants": 0 if variants is None else int(len(variants.X)),
            "seconds": round(time.perf_counter() - t0, 1)}


def key(cell: dict[str, Any]) -> str:
    """What identifies a cell (its section, input, model, ensemble and variants kept)."""
    return json.dumps({k: cell[k] for k in ("section", "input", "model", "ensemble",
                                            "semitones", "supervision") if k in cell},
                      sort_keys=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sections", default="inputs,ensembles,augmentation")
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    name = "generalisation-new-sounds" + ("-quick" if args.quick else "")
    path = RESULTS / f"{name}.json"
    done = json.loads(path.read_text())["cells"] if path.exists() else []
    have = {key(c) for c in done}
    judgments, cache = load_judgments("cyberlioz"), {}
    for section in args.sections.split(","):
        for cell in cells(section.strip(), args.quick):
            cell = {"section": section.strip(), **cell}
            if key(cell) in have:
                continue
            cell.update(_run_cell(cell, cache, judgments, args.quick))
            done.append(cell)
            print(" ".join(f"{k}={cell[k]}" for k in ("section", "input", "model", "ensemble",
                                                       "semitones", "supervision") if k in cell),
                  " ".join(f"{m} {cell[m]['mean']:.3f}" for m in METRICS if m in cell),
                  f"variants {cell['n_variants']}  {cell['seconds']:.0f} s", flush=True)
            write_result(name, {"what": "78 real Cyberlioz sounds, group-kfold (5 folds, seed "
                                        "0): P@1, P@5, MAP@R mean ± std over folds, triplet "
                                        "agreement mean ± std over the 16 listeners",
                                "quick": args.quick, "cells": done})
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
