"""Experiments: run one (data, feature, model, protocol) configuration
(:mod:`~mirsim.experiments.experiment`), the papers' tables (:mod:`~mirsim.experiments.table1`,
:mod:`~mirsim.experiments.metric_vs_classification`, resumable: :mod:`~mirsim.experiments.tables`),
the demo (:mod:`~mirsim.experiments.demo`); what a run directory keeps of held-out embeddings
(:mod:`~mirsim.experiments.heldout`); model parameters from a command line
(:mod:`~mirsim.experiments.specs`). Run directories themselves: :mod:`mirsim.artefacts.runs`."""

from mirsim._lazy import lazy_exports

_EXPORTS = {
    "ExperimentResult": ".experiment", "FeatureSet": ".experiment",
    "load_features": ".experiment", "run_experiment": ".experiment",
    "fit_final_model": ".experiment", "save_run": ".experiment",
}
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
__all__ = sorted(_EXPORTS)
