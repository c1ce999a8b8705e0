"""``mirsim train --judgments TEST_OR_CSV --listener NAME``: a metric learned from one person's
answers on top of the group metric (``--model``), evaluated on that person's held-out
triplets (:mod:`mirsim.experiments.personal`), written to a run directory whose model an
index can be built with (``mirsim index build --run RUN``)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import mirsim
from mirsim.cli.common import data_options, err, load_features_with_progress, out
from mirsim.errors import MirsimError

#: ``protocol`` of a personal run's configuration.
PERSONAL_PROTOCOL = "folds by sound"


def train_personal(*, data: str, feature: str, fparams: dict[str, Any], model: str,
                   params: dict[str, Any], folds: int, seed: int, workers: int,
                   sol_root: Path | None, judgments: str, listener: str, save_model: bool,
                   runs: Path | None, as_json: bool) -> None:
    """Evaluate and fit the personal metric of ``listener`` (see the module docstring)."""
    from mirsim.artefacts.files import write_json
    from mirsim.artefacts.runs import create_run_dir
    from mirsim.experiments.judgments import judgments_for
    from mirsim.experiments.personal import (evaluate_listener, listener_names,
                                             listener_triplets, load_personal_judgments)
    from mirsim.models import make_model

    judged = load_personal_judgments(judgments, listener)
    names = listener_names(judged)
    if listener not in names:  # before any work
        raise MirsimError(f"{judgments}: no listener '{listener}' (listeners: "
                          f"{', '.join(names)})")
    fs = load_features_with_progress(data, feature, fparams, workers, data_options(sol_root))
    if not fs.labelled:
        raise MirsimError(f"{data}: no labels, and the group metric {model} is fitted on "
                          f"labels: a personal metric needs a labelled data set")
    matched = judgments_for(fs, judged)
    triplets, weights = listener_triplets(matched, listener)
    result = evaluate_listener(fs, triplets, weights, listener=listener, base=model,
                               base_params=params, folds=folds, seed=seed)
    final = None
    if save_model:
        group = make_model(model, **{"seed": seed, **params}).fit(fs.X, fs.labels, fs.groups)
        final = make_model("personal", seed=seed).fit(
            fs.X, triplets=triplets, triplet_weights=weights, base_model=group)
    run_dir = create_run_dir(f"{fs.collection.name}-{feature}-personal-{listener}", runs)
    config = {"command": "train", "data": data, "feature": feature, "feature_params": fparams,
              "feature_identity": fs.feature_identity, "model": "personal",
              "model_params": {"base": model, "base_params": params},
              "base_model": model, "listener": listener, "protocol": PERSONAL_PROTOCOL,
              "folds": folds, "seed": seed, "judgments": matched.source,
              "distance": None if final is None else final.distance_,
              "mirsim_version": mirsim.__version__}
    metrics = {"data": data, "feature": feature, "model": "personal", "base_model": model,
               "protocol": PERSONAL_PROTOCOL, "folds": folds, "n_items": len(fs.X),
               **result.to_json(),
               "final_penalty": None if final is None else _penalty(final.penalty_),
               # what `mirsim report` tables: the listener's held-out triplets, agreed with by
               # the group metric and by the personal one (one number over the folds: no std)
               "metrics": {"triplet_agreement_group": {"mean": result.group, "std": None},
                           "triplet_agreement_personal": {"mean": result.personal,
                                                          "std": None}}}
    write_json(run_dir / "config.json", config)
    write_json(run_dir / "metrics.json", metrics)
    write_json(run_dir / "skipped.json", fs.skipped)
    if final is not None:
        final.save(run_dir / "model")
    if as_json:
        err.print(f"run directory: {run_dir}", highlight=False)
        print(json.dumps({**metrics, "run_dir": str(run_dir)}))
        return
    out.print(f"{fs.collection.name} · {feature} · listener {listener} · {folds} folds by "
              f"sound: held-out triplet agreement ({result.n_test} triplets; learned from "
              f"{result.n_train} over the folds)", highlight=False)
    out.print(f"  group metric ({model}):  {result.group:.4f}", highlight=False)
    out.print(f"  personal metric:      {result.personal:.4f}  ({result.difference:+.4f})",
              highlight=False)
    out.print(f"run directory: {run_dir}", highlight=False)


def _penalty(value: float) -> float | str:
    return "inf" if value == float("inf") else value
