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


def per_instrument_run_dir(runs: Path) -> Path:
    """A ``mirsim reproduce per-instrument --quick`` run (its models kept in ``model/``) of
    the conditions mix, drums, bass and separated-drums, with an even smaller network: bass
    has no separated-stem model, so a per-instrument index falls back to its original-stem
    model for separated bass."""
    from typer.testing import CliRunner

    from mirsim.cli import app

    result = CliRunner().invoke(app, [
        "reproduce", "per-instrument", "--quick", "--conditions",
        "mix,drums,bass,separated-drums", "-p", "channels=4", "-p", "epochs=1",
        "--runs", str(runs)])
    assert result.exit_code == 0, result.output
    return next(p for p in runs.iterdir() if (p / "config.json").is_file())


#: General MIDI programs (and drum flags) of the stems of :func:`write_slakh_songs`.
SLAKH_PROGRAMS = {"drums": (128, True), "bass": (33, False), "piano": (0, False),
                  "guitar": (25, False)}


def write_slakh_songs(root: Path, n_tracks: int, seconds: float = 6.0, seed: int = 7) -> Path:
    """``n_tracks`` synthetic songs in Slakh2100's layout (``TrackNNNNN/mix.flac``,
    ``stems/Snn.flac``, ``metadata.yaml``), then one more as a plain file ``loose/song.wav``
    (no stems: a per-instrument index separates it)."""
    import soundfile as sf
    import yaml

    from mirsim.datasets.synthetic_multitrack import synthetic_multitrack

    sr = 22050
    songs = synthetic_multitrack(n_tracks + 1, seconds, sr, seed)
    for i, song in enumerate(songs[:-1]):
        track = root / f"Track{i:05d}"
        (track / "stems").mkdir(parents=True)
        stems = {}
        for j, group in enumerate(g for g in SLAKH_PROGRAMS if g in song):
            name = f"S{j:02d}"
            sf.write(track / "stems" / f"{name}.flac", song[group], sr)
            program, is_drum = SLAKH_PROGRAMS[group]
            stems[name] = {"program_num": program, "is_drum": is_drum, "audio_rendered": True}
        sf.write(track / "mix.flac", song["mix"], sr)
        (track / "metadata.yaml").write_text(yaml.safe_dump({"audio_dir": "stems",
                                                             "stems": stems}))
    (root / "loose").mkdir()
    sf.write(root / "loose" / "song.wav", songs[-1]["mix"], sr)
    return root
