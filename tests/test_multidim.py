"""Multi-dimensional similarity end to end: per-fold ``similar=`` blocks, per-dimension
triplet scores of held-out items, ``mirsim train`` on a collection with dimensions, and
``mirsim reproduce multidim --quick``."""

from __future__ import annotations

import importlib.util
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
    assert table["complete"]
    assert table["rows"] == ["baseline", "multi-input", "musicnn-msd", "openl3"]
    openl3 = table["cells"]["openl3"]["grooves"]
    if importlib.util.find_spec("torchopenl3") is None and importlib.util.find_spec("openl3") is None:
        assert "pip install" in openl3["skipped"]  # a row skipped with its reason, not a crash
    cell = table["cells"]["multi-input"]["grooves"]
    assert set(cell["single"]) == {"genre", "instrument", "tempo", "key"}
    assert len(cell["dimensions"]["genre"]) == 16  # whole + 15 combinations of sub-spaces
    assert set(table["cells"]["musicnn-msd"]["grooves"]["dimensions"]["key"]) == {"whole"}
    md = (runs / run_dir.split("/")[-1] / "multidim.md").read_text()
    assert "Table 2 — Proposed CSN, multi-input" in md and "| genre+instrument+tempo+key |" in md
    assert "The best six combinations" in md
    assert "Disentanglement" in md and "| Proposed CSN, multi-input" in md.split("Disentangle")[1]
    png = (runs / run_dir.split("/")[-1] / "multidim.png").read_bytes()
    assert png[:4] == b"\x89PNG"
    again = CliRunner().invoke(app, ["reproduce", "multidim", "--resume", run_dir, "--json"])
    assert again.exit_code == 0, again.output
    assert json.loads(again.stdout.strip().splitlines()[-1])["cells"] == table["cells"]


def test_reproduce_multidim_on_cyberlioz_scores_the_listeners_in_every_sub_space(
        cyberlioz_dir, tmp_path, monkeypatch):
    """The Cyberlioz dimensions (cluster, family, instrument, technique) and the listeners'
    triplets among held-out sounds, scored in each sub-space: which one predicts them best."""
    monkeypatch.setenv("MIRSIM_CYBERLIOZ_DIR", str(cyberlioz_dir))
    r = CliRunner().invoke(app, ["reproduce", "multidim", "--data", "cyberlioz", "--quick",
                                 "--rows", "baseline,musicnn-msd", "--runs",
                                 str(tmp_path), "--json"])
    assert r.exit_code == 0, r.output
    table = json.loads(r.stdout.strip().splitlines()[-1])
    assert table["dimensions"] == ["cluster", "family", "instrument", "technique"]
    assert table["judgments"] == "cyberlioz"
    cell = table["cells"]["baseline"]["cyberlioz"]
    assert cell["learned_dimensions"] == table["dimensions"]
    listeners = cell["judged_triplets"]["listeners"]
    assert {"whole", "cluster", "technique", "cluster+family"} <= set(listeners)
    assert all(0.0 <= s["mean"] <= 1.0 for s in listeners.values())
    assert cell["judged_counts"]["listeners"] > cell["judged_counts"]["listeners-high"] > 0
    assert set(table["cells"]["musicnn-msd"]["cyberlioz"]["judged_triplets"]["listeners"]) \
        == {"whole"}
    md = (tmp_path / table["run_dir"].split("/")[-1] / "multidim.md").read_text()
    assert "Which dimension predicts the judges best" in md and "| listeners (%) |" in md


def test_a_csn_learns_only_the_dimensions_it_is_given():
    from mirsim.models.csn import CSNModel

    fs = _feature_set()
    half = np.arange(len(fs.X)) < len(fs.X) // 2
    S = {"genre": fs.labels[:, None] == fs.labels, "other": half[:, None] == half}
    m = CSNModel(**{**TINY, "epochs": 1}, dimensions=("genre",)).fit(fs.X, similar=S)
    assert m.dimensions_ == ("genre",) and m.transform(fs.X).shape[1] == TINY["dimension_dim"]
    with pytest.raises(Exception, match="no dimension tempo"):
        CSNModel(**TINY, dimensions=("tempo",)).fit(fs.X, similar=S)


def test_judged_triplets_are_scored_among_test_items_only_in_every_space():
    from mirsim.evaluation.dimensions import DimensionTripletMetrics, dimension_summary
    from mirsim.models import EuclideanModel

    g = np.repeat(np.arange(4), 10)
    X = np.random.default_rng(0).standard_normal((40, 3)) + 3 * g[:, None]
    right = np.array([[i, i + 1, (i + 10) % 40] for i in range(0, 40, 2)])  # same g nearer
    wrong = right[:, [0, 2, 1]]
    scorer = DimensionTripletMetrics(X, {"g": g[:, None] == g}, n_per_dimension=50,
                                     judged={"right": right, "wrong": wrong})
    r = evaluate_protocol(EuclideanModel, X, g, np.arange(40), "group-kfold", 2,
                          extra_metrics=scorer)
    judged = dimension_summary(r.summary(), prefix="judged")
    assert judged["right"]["whole"]["mean"] > 0.9 and judged["wrong"]["whole"]["mean"] < 0.1


def test_segments_of_one_song_are_never_each_others_positives():
    """With several clips per song, a dimension's positive comes from another song: a model
    that only recognises the song scores chance, not 100 %."""
    from mirsim.evaluation.dimensions import dimension_triplets

    songs = np.repeat(np.arange(6), 4)
    genre = songs % 2
    t = dimension_triplets({"genre": genre[:, None] == genre}, n_per_dimension=300,
                           groups=songs)["genre"]
    assert (songs[t[:, 0]] != songs[t[:, 1]]).all()
    assert (genre[t[:, 0]] == genre[t[:, 1]]).all() and (genre[t[:, 0]] != genre[t[:, 2]]).all()
