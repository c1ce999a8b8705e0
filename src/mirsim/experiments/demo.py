"""The end-to-end demo: compare models on one data set and keep the best learned one."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import mirsim
from mirsim.artefacts.runs import create_run_dir
from mirsim.experiments.experiment import (ExperimentResult, FeatureSet, fit_final_model,
                                           run_experiment, save_run)

#: Models the demo compares by default: the Euclidean baseline, mirsim's default metric (LDA,
#: the best on new sounds), a network and the AN-GNN paper's graph model.
DEMO_MODELS = ("euclidean", "lda", "mlp", "an-gnn")
#: The demo's protocol: new sounds (test folds hold groups, e.g. IMTs, never seen in training).
DEMO_PROTOCOL = "group-kfold"


@dataclass
class DemoResult:
    """What the demo measured and where it left its run directory."""

    results: list[ExperimentResult]
    saved_model: str
    run_dir: Path


def best_learned(results: Sequence[ExperimentResult]) -> str:
    """The learned model (not ``euclidean``) with the best mean MAP@R over folds."""
    learned = [r for r in results if r.model != "euclidean"] or list(results)
    return max(learned, key=lambda r: r.protocol_result.summary()["map_at_r"]["mean"]).model


def run_demo(features: FeatureSet, models: Sequence[str] = DEMO_MODELS, folds: int = 5,
             seed: int = 0, n_jobs: int = 1, runs: str | Path | None = None,
             data: str = "", on_model: Callable[[str], None] | None = None,
             judgments=None, protocol: str = DEMO_PROTOCOL) -> DemoResult:
    """Every model at its defaults under ``protocol`` (new sounds); the learned model with the
    best MAP@R is fitted on every item and saved with the run.

    Parameters
    ----------
    on_model : callable, optional
        Called with each model's name before it is evaluated (progress).
    judgments : ExperimentJudgments, optional
        :func:`mirsim.experiments.judgments.judgments_for` of ``features``: every model is also
        scored against the listeners (triplet agreement on held-out sounds).
    """
    results = []
    for m in models:
        if on_model:
            on_model(m)
        results.append(run_experiment(features, m, protocol, folds, seed, {}, n_jobs=n_jobs,
                                      judgments=judgments))
    learned = best_learned(results)
    final = fit_final_model(features, learned, seed, {})
    run_dir = create_run_dir(f"demo-{features.collection.name}-{features.feature}", runs)
    config = {"command": "demo", "data": data or features.collection.name,
              "feature": features.feature, "feature_params": {},
              "feature_identity": features.feature_identity, "models": list(models),
              "model_params": {m: {} for m in models}, "protocol": protocol, "folds": folds,
              "seed": seed, "saved_model": learned,
              "judgments": None if judgments is None else judgments.source,
              "mirsim_version": mirsim.__version__}
    save_run(run_dir, config, features, results, final, held_out_of=learned)
    return DemoResult(results, learned, run_dir)
