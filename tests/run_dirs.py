"""Run directories for tests, as `mirsim train` leaves them."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from mirsim.features.extraction import FeatureCache

#: A tiny multi-input feature (8 mel bands, 4 tempo bins, 16 chroma rows, 16 frames) ...
CSN_FEATURE = {"n_mels": 8, "tempo_bins": 4, "chroma_rows": 16, "n_frames": 16,
               "duration": 1.0, "tempo_window": 32}
#: ... and a tiny CSN that reads it (two sub-spaces of 4 columns). Ten epochs of every
#: violating triplet (about 2 s): after two, every sound still had nearly the same embedding
#: (cosine distances below 1e-3), too close for rankings that float rounding cannot flip.
CSN_PARAMS = {"inputs": ("mel", "tempogram", "chroma"), "rows": (8, 4, 16), "map_size": 4,
              "width": 2, "dimension_dim": 4, "epochs": 10, "batch_size": 4, "lr": 1e-2,
              "mining": "all", "seed": 0}


def write_run_dir(path: Path, model, feature: str, feature_params: dict,
                  feature_identity: str) -> Path:
    """``config.json`` and ``model/`` of a fitted ``model``, as `mirsim train` writes them."""
    path.mkdir(parents=True)
    model.save(path / "model")
    (path / "config.json").write_text(json.dumps({
        "command": "train", "feature": feature, "feature_params": feature_params,
        "feature_identity": feature_identity, "model": model.name}))
    return path


def fitted_run_dir(path: Path, model, library: Path, cache: FeatureCache) -> Path:
    """A run directory (config.json + model/) for ``model`` fitted on the MFCC features of
    ``library``."""
    from mirsim.experiments import load_features

    fs = load_features(str(library), "mfcc", cache=cache)
    model.fit(fs.X, fs.labels, fs.groups)
    return write_run_dir(path, model, "mfcc", {}, fs.feature_identity)


def csn_run_dir(path: Path, library: Path, cache: FeatureCache) -> Path:
    """A run directory of a CSN (:data:`CSN_PARAMS`) fitted on the multi-input features
    (:data:`CSN_FEATURE`) of a timbre library (:func:`synthetic_audio.write_timbre_library`),
    with two dimensions from what the files are: ``timbre`` (their folder) and ``register``
    (the lower or the upper half of their pitches, from their number)."""
    from mirsim.experiments import load_features
    from mirsim.models import make_model

    fs = load_features(str(library), "multi-input", CSN_FEATURE, cache=cache)
    ids = fs.collection.items["id"].to_numpy()[fs.kept]
    pitch = np.array([int(Path(str(i)).stem.split()[-1]) for i in ids])
    high = pitch >= np.median(pitch)
    similar = {"timbre": fs.labels[:, None] == fs.labels[None, :],
               "register": high[:, None] == high[None, :]}
    model = make_model("csn", **CSN_PARAMS).fit(fs.X, similar=similar)
    return write_run_dir(path, model, "multi-input", CSN_FEATURE, fs.feature_identity)
