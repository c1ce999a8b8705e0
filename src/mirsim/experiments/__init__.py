"""Experiments: run one (data, feature, model, protocol) configuration, or a paper table;
run directories (:mod:`~mirsim.experiments.runs`) and the held-out embeddings they keep
(:mod:`~mirsim.experiments.heldout`)."""

from mirsim.experiments.experiment import ExperimentResult, FeatureSet, load_features, run_experiment
from mirsim.experiments.runs import create_run_dir, write_json

__all__ = ["ExperimentResult", "FeatureSet", "create_run_dir", "load_features", "run_experiment",
           "write_json"]
