"""The self-supervised model (simclr): it learns from views only, its views come from the
training items only, and an unlabelled folder trains it end to end (run, then index)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import soundfile as sf
from sklearn.base import clone
from typer.testing import CliRunner

from mirsim.cli import app
from mirsim.errors import DataError, MirsimError
from mirsim.evaluation.own_sound import own_sound_metrics, own_sound_ranks
from mirsim.experiments import load_features, run_experiment
from mirsim.experiments.experiment import fit_final_model
from mirsim.features.extraction import FeatureCache
from mirsim.models import load_model, make_model
from synthetic_audio import SR, harmonic_tone, write_timbre_library

#: strong augmentations, so that a view's own sound is not trivially its nearest
STRONG = {"pitch_semitones": 4.0, "min_snr_db": 5.0, "gain_db": 12.0, "eq_db": 12.0,
          "p_augment": 1.0, "n_views": 4}


def write_flat_library(root, n, seed=0):
    """``n`` tones of random pitch (one octave) and timbre, directly in ``root``."""
    rng = np.random.default_rng(seed)
    root.mkdir(parents=True)
    for i in range(n):
        freq, n_harmonics = 200 * 2 ** (rng.uniform(0, 12) / 12), int(rng.integers(1, 30))
        sf.write(root / f"s{i:02d}.wav", harmonic_tone(freq, n_harmonics, i), SR)
    return root


@pytest.fixture(scope="module")
def flat(tmp_path_factory):
    return write_flat_library(tmp_path_factory.mktemp("flat") / "lib", 20)


def test_simclr_makes_new_views_find_their_sound_better_than_an_untrained_network(
        flat, feature_cache):
    train = load_features(str(flat), "mfcc", cache=feature_cache, model="simclr",
                          model_params={**STRONG, "seed": 0})
    unseen = load_features(str(flat), "mfcc", cache=feature_cache, model="simclr",
                           model_params={**STRONG, "seed": 1})  # views not trained on
    assert train.views.shape == (20, 4, 40) and not np.allclose(train.views, unseen.views)

    def own_map(model):
        sounds = model.transform(train.X)
        return np.mean([own_sound_metrics(sounds, model.transform(unseen.views[:, j]),
                                          model.distance_)["own_map"] for j in range(4)])

    trained = make_model("simclr", **STRONG, epochs=100).fit(train.X, views=train.views)
    # the same network, standardisation and views, but a learning rate too small to move it
    untrained = make_model("simclr", **STRONG, epochs=1, lr=1e-12).fit(train.X,
                                                                       views=train.views)
    assert trained.loss_history_[-1] < trained.loss_history_[0]
    assert own_map(trained) > own_map(untrained) + 0.05


def test_simclr_learns_from_views_only_and_saves_its_backbone_without_the_head(tmp_path):
    rng = np.random.default_rng(0)
    X = rng.standard_normal((30, 5)).astype(np.float32)
    views = X[:, None, :] + 0.1 * rng.standard_normal((30, 2, 5)).astype(np.float32)
    with pytest.raises(MirsimError, match="simclr cannot learn from labels"):
        make_model("simclr", epochs=1).fit(X, np.arange(30) % 2)
    with pytest.raises(ValueError, match="simclr learns from views"):
        make_model("simclr", epochs=1).fit(X)
    model = clone(make_model("simclr", epochs=3, hidden=(16,), embedding_dim=8,
                             projection_dim=4)).fit(X, views=views)
    emb = model.transform(X)
    assert emb.shape == (30, 8) and np.allclose(np.linalg.norm(emb, axis=1), 1, atol=1e-5)
    backbone = sum(p.numel() for p in model.network_.parameters())
    assert model.n_parameters == backbone == (5 * 16 + 16) + 2 * 16 + (16 * 8 + 8)
    model.save(tmp_path / "m")
    loaded = load_model(tmp_path / "m")
    np.testing.assert_allclose(loaded.transform(X), emb, atol=1e-6)
    assert (loaded.n_views, loaded.distance_) == (2, "cosine")


def test_a_fold_never_sees_the_views_of_its_test_items():
    from mirsim.evaluation.protocols import _run_fold

    rng = np.random.default_rng(0)
    y = np.repeat(np.arange(3), 10)
    X = (rng.standard_normal((30, 4)) + 3 * y[:, None]).astype(np.float32)
    views = X[:, None, :] + 0.1 * rng.standard_normal((30, 2, 4)).astype(np.float32)
    test = np.arange(0, 30, 3)
    train = np.setdiff1d(np.arange(30), test)
    views[test] = np.nan  # a fit that used them would diverge (or refuse NaN input)
    metrics, *_ = _run_fold(lambda: make_model("simclr", epochs=5), X, y, np.arange(30),
                            train, test, True, 5, None, views=views)
    assert 0 <= metrics["p_at_1"] <= 1


def test_with_labels_the_protocols_measure_the_self_supervised_metric(tmp_path, feature_cache):
    library = write_timbre_library(tmp_path / "lib", 6)
    fs = load_features(str(library), "mfcc", cache=feature_cache, model="simclr",
                       model_params={"n_views": 1})
    assert fs.labelled and fs.views.shape == (18, 1, 40)
    r = run_experiment(fs, "simclr", "group-kfold", 3, model_params={"n_views": 1,
                                                                     "epochs": 5})
    assert set(r.to_json()["metrics"]) == {"p_at_1", "p_at_5", "ii_p_at_5", "map_at_r"}
    assert fit_final_model(fs, "simclr", model_params={"n_views": 1, "epochs": 2}
                           ).n_features_in_ == 40
    plain = load_features(str(library), "mfcc", cache=feature_cache)
    with pytest.raises(MirsimError, match="features were loaded without views"):
        run_experiment(plain, "simclr")
    with pytest.raises(MirsimError, match="with other view settings"):
        run_experiment(fs, "simclr", model_params={"n_views": 2})


def test_an_unlabelled_folder_trains_only_self_supervised_models(flat, feature_cache, tmp_path):
    from mirsim.datasets import load_collection

    collection = load_collection(str(flat))
    assert not collection.labelled and collection.items["label"].isna().all()
    assert "no labels" in collection.summary()
    with pytest.raises(DataError, match="has no labels .* model 'mlp' needs labels"):
        load_features(str(flat), "mfcc", cache=FeatureCache(tmp_path / "c"), model="mlp")
    assert not (tmp_path / "c").exists()  # refused before any feature was extracted
    fs = load_features(str(flat), "mfcc", cache=feature_cache)
    for model in ("euclidean", "lmnn"):
        with pytest.raises(DataError, match=f"model '{model}' needs labels"):
            run_experiment(fs, model)


@pytest.mark.parametrize("labels", [np.tile(np.arange(8), 2), np.arange(20) % 4, np.arange(6)])
def test_the_quadratic_ntxent_equals_pytorch_metric_learnings(labels):
    import torch
    from pytorch_metric_learning.losses import NTXentLoss

    from mirsim.registries import DISTANCES, LOSSES

    ours = LOSSES.make("ntxent", temperature=0.1).build(
        n_classes=1, embedding_dim=5, distance=DISTANCES.make("cosine"))
    labels = torch.as_tensor(labels)
    a = torch.randn(len(labels), 5, generator=torch.Generator().manual_seed(0),
                    requires_grad=True)
    b = a.detach().clone().requires_grad_(True)
    expected, got = NTXentLoss(temperature=0.1)(a, labels), ours(b, labels)
    expected.backward()
    got.backward()
    assert got.item() == pytest.approx(expected.item(), abs=1e-5)
    torch.testing.assert_close(b.grad, a.grad, atol=1e-6, rtol=1e-4)


def test_own_sound_ranks_count_ties_against_the_query():
    from sklearn.metrics import label_ranking_average_precision_score

    rng = np.random.default_rng(0)
    sounds = rng.standard_normal((12, 3))
    views = sounds + 0.8 * rng.standard_normal((12, 3))
    ranks = own_sound_ranks(sounds, views)
    d = ((views[:, None] - sounds[None]) ** 2).sum(-1)
    assert np.mean(1 / ranks) == pytest.approx(label_ranking_average_precision_score(
        np.eye(12, dtype=bool), -d))
    same = np.zeros((4, 2))  # every sound at one point: no view finds its own sound first
    assert own_sound_ranks(same, same).tolist() == [4, 4, 4, 4]


def _run(args, cache):
    return CliRunner().invoke(app, args, env={"MIRSIM_CACHE_DIR": str(cache)})


@pytest.mark.slow
def test_train_simclr_on_an_unlabelled_folder_then_index_it(tmp_path):
    lib = write_flat_library(tmp_path / "lib", 10)
    cache = tmp_path / "cache"
    r = _run(["train", "--data", str(lib), "--feature", "mfcc", "--model", "simclr",
              "-p", "epochs=5", "-p", "n_views=1", "--workers", "1", "--jobs", "1",
              "--runs", str(tmp_path / "runs"), "--json"], cache)
    assert r.exit_code == 0, r.output
    j = json.loads(r.stdout.strip().splitlines()[-1])
    assert (j["labelled"], j["protocol"], j["n_items"], j["n_held_out"]) == (
        False, "held-out-views", 10, 2)
    assert set(j["metrics"]) == {"own_top_1", "own_top_5", "own_map"}
    assert j["reference"]["model"] == "euclidean" and j["note"].startswith("no labels")
    run = tmp_path / "runs" / j["run_dir"].rsplit("/", 1)[-1]
    assert load_model(run / "model").name == "simclr"
    r = _run(["index", "build", str(lib), "--run", str(run), "--out", str(tmp_path / "idx"),
              "--workers", "1"], cache)
    assert r.exit_code == 0, r.output
    assert "indexed 10 sound(s)" in r.stdout.replace("\n", " ")
    r = _run(["report", str(run)], cache)
    assert r.exit_code == 0, r.output
    assert "(no label)" in (run / "report.html").read_text()
    table = _run(["train", "--data", str(lib), "--feature", "mfcc", "--model", "simclr",
                  "-p", "epochs=2", "-p", "n_views=1", "--workers", "1", "--jobs", "1",
                  "--runs", str(tmp_path / "runs"), "--no-save-model"], cache)
    assert table.exit_code == 0, table.output
    assert "own top-1" in table.stdout and "(reference)" in table.stdout
    assert "no labels" in table.stdout


def test_models_that_need_labels_refuse_an_unlabelled_folder_in_one_line(tmp_path):
    lib = write_flat_library(tmp_path / "lib", 4)
    r = _run(["train", "--data", str(lib), "--feature", "mfcc", "--model", "mlp",
              "--runs", str(tmp_path / "runs")], tmp_path / "cache")
    assert r.exit_code == 2
    assert "has no labels" in r.stderr and len(r.stderr.strip().splitlines()) <= 3
    assert not (tmp_path / "cache" / "features").exists()  # refused before any extraction
