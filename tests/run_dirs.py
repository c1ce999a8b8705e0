"""Run directories for tests, as `mirsim train` leaves them."""

from __future__ import annotations

import json
from pathlib import Path

from mirsim.features.extraction import FeatureCache


def fitted_run_dir(path: Path, model, library: Path, cache: FeatureCache) -> Path:
    """A run directory (config.json + model/) for ``model`` fitted on the MFCC features of
    ``library``."""
    from mirsim.experiments import load_features

    fs = load_features(str(library), "mfcc", cache=cache)
    model.fit(fs.X, fs.labels, fs.groups)
    path.mkdir(parents=True)
    model.save(path / "model")
    (path / "config.json").write_text(json.dumps({
        "command": "train", "feature": "mfcc", "feature_params": {},
        "feature_identity": fs.feature_identity, "model": model.name}))
    return path
