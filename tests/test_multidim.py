"""Multi-dimensional similarity end to end: per-fold ``similar=`` blocks, per-dimension
triplet scores of held-out items, ``mirsim train`` on a collection with dimensions, and
``mirsim reproduce multidim --quick``."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from mirsim.cli import app
from mirsim.datasets import Collection
from mirsim.datasets.dimensions import Dimension
from mirsim.evaluation.protocols import evaluate_protocol
from mirsim.experiments.experiment import FeatureSet, fit_final_model, run_experiment

#: a tiny CSN layout: three inputs of 8 rows, 8 frames (as in test_csn)
TINY = {"inputs": ("mel", "tempogram", "chroma"), "rows": (8, 8, 8), "map_size": 4,
        "width": 2, "dimension_dim": 4, "batch_size": 16, "lr": 1e-2, "epochs": 2}


def _feature_set(n: int = 24, seed: int = 0) -> FeatureSet:
    """Items with a genre (written in the mel rows) and a tempo, each its own song."""
    rng = np.random.default_rng(seed)
    genre = np.array(["rock", "jazz"])[np.arange(n) % 2]
    tempo = np.where(np.arange(n) // (n // 2) == 0, 90.0, 140.0)
    X = 0.5 * rng.standard_normal((n, 24, 8)).astype(np.float32)
    X[:, :8] += 1.5 * (genre == "rock")[:, None, None]
    items = pd.DataFrame({"id": [f"s{i}" for i in range(n)], "label": genre,
                          "group": [f"s{i}" for i in range(n)], "genre": genre, "bpm": tempo})
    c = Collection("toy", items, [None] * n,
                   dimensions=[Dimension("genre"), Dimension("tempo", "tempo", "bpm")])
    return FeatureSet(c, "toy", X.reshape(n, -1), genre, items["group"].to_numpy(),
                      np.arange(n))


class _Recorder:
    """A model that remembers what each fit was given."""

    fits: list[dict] = []

    def fit(self, X, y=None, groups=None, **supervision):
        _Recorder.fits.append({"n": len(X), **supervision})
        return self

    def transform(self, X):
        return np.asarray(X)

    n_parameters = 0


def test_each_fold_learns_the_training_block_of_every_dimension():
    g = np.arange(6) % 2
    S = {"g": g[:, None] == g, "h": np.eye(6, dtype=bool) | (np.arange(6)[:, None] < 3)
         & (np.arange(6)[None, :] < 3)}
    X = np.arange(12.0).reshape(6, 2) + 10 * g[:, None]
    _Recorder.fits = []
    evaluate_protocol(_Recorder, X, g, np.arange(6), "group-kfold", 3, similarities=S)
    for fit in _Recorder.fits:
        assert set(fit["similar"]) == {"g", "h"} and fit["similar"]["g"].shape == (4, 4)
    with pytest.raises(Exception, match="shape"):
        evaluate_protocol(_Recorder, X, g, np.arange(6), similarities={"g": S["g"][:5]})


def test_a_csn_learns_the_dimensions_and_every_model_is_scored_per_dimension():
    fs = _feature_set()
    j = run_experiment(fs, "csn", "group-kfold", 2, 0, TINY).to_json()
    dims = j["metrics"]["dimensions"]
    assert set(dims) == {"genre", "tempo"}
    assert set(dims["genre"]) == {"whole", "genre", "tempo", "genre+tempo"}
    assert all(0 <= s["mean"] <= 1 for spaces in dims.values() for s in spaces.values())
    assert "p_at_1" in j["metrics"]  # still measured against the labels
    plain = run_experiment(fs, "euclidean", "group-kfold", 2, 0).to_json()
    assert {s for spaces in plain["metrics"]["dimensions"].values() for s in spaces} == {"whole"}
    final = fit_final_model(fs, "csn", 0, TINY)
    assert list(final.subspaces_) == ["genre", "tempo"]


def test_train_a_csn_on_a_tagged_library_of_grooves(tmp_path):
    from mirsim.datasets.grooves import load_grooves

    items = load_grooves(tmp_path / "g", songs=16, duration=3.5, soundfonts=["fluidr3"]).items
    csv = tmp_path / "lib.csv"
    pd.DataFrame({"path": items["path"], "genre:same-label": items["genre"],
                  "tempo:tempo": items["tempo"], "key:key": items["key"]}).to_csv(csv, index=False)
    r = CliRunner().invoke(app, ["train", "--data", str(csv), "--feature", "multi-input",
                                 "--model", "csn", "--folds", "2", "-p", "epochs=1",
                                 "--no-save-model", "--runs", str(tmp_path), "--json"])
    assert r.exit_code == 0, r.output
    j = json.loads(r.stdout.strip().splitlines()[-1])
    assert set(j["metrics"]["dimensions"]) == {"genre", "tempo", "key"}
    assert "key" in j["metrics"]["dimensions"]["key"]


def test_reproduce_multidim_quick_writes_the_tables_and_resumes(tmp_path):
    runs = tmp_path / "runs"
    r = CliRunner().invoke(app, ["reproduce", "multidim", "--quick", "--runs", str(runs),
                                 "--json"])
    assert r.exit_code == 0, r.output
    table = json.loads(r.stdout.strip().splitlines()[-1])
    run_dir = table["run_dir"]
    assert table["complete"] and table["rows"] == ["baseline", "multi-input", "musicnn-msd"]
    cell = table["cells"]["multi-input"]["grooves"]
    assert set(cell["single"]) == {"genre", "instrument", "tempo", "key"}
    assert len(cell["dimensions"]["genre"]) == 16  # whole + 15 combinations of sub-spaces
    assert set(table["cells"]["musicnn-msd"]["grooves"]["dimensions"]["key"]) == {"whole"}
    md = (runs / run_dir.split("/")[-1] / "multidim.md").read_text()
    assert "Table 2 — Multi-input CSN" in md and "| genre+instrument+tempo+key |" in md
    png = (runs / run_dir.split("/")[-1] / "multidim.png").read_bytes()
    assert png[:4] == b"\x89PNG"
    again = CliRunner().invoke(app, ["reproduce", "multidim", "--resume", run_dir, "--json"])
    assert again.exit_code == 0, again.output
    assert json.loads(again.stdout.strip().splitlines()[-1])["cells"] == table["cells"]
