"""Per-instrument similarity (Hashizume et al.): segments, the segment CNN, the per-condition
model, the paper's evaluation."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.base import clone

from mirsim.datasets.segments import segment_table, song_segments
from mirsim.evaluation.per_instrument import (condition_correlations, listening_sets,
                                              matrix_correlations, song_distance_matrix,
                                              track_identification, trial_summary, tsne_map)
from mirsim.features.log_mel import log_mel_segments
from mirsim.models.per_instrument import PerInstrumentModel
from mirsim.models.segment_cnn import SegmentCNNModel

SR = 8000


def _songs(n_songs: int, n_segments: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Segments of synthetic songs: each song a quiet tone of its own pitch under loud noise
    bursts whose band changes from segment to segment (a nuisance a metric must ignore)."""
    rng = np.random.default_rng(seed)
    t = np.arange(3 * SR) / SR
    X, y = [], []
    for song in range(n_songs):
        pitch = 200 * 2 ** (song / 2)
        for _ in range(n_segments):
            noise = rng.standard_normal(len(t))
            band = rng.uniform(300, 3000)
            burst = np.sin(2 * np.pi * band * t) * noise * 0.5
            X.append(0.2 * np.sin(2 * np.pi * pitch * t + rng.uniform(0, 6)) + burst)
            y.append(song)
    return log_mel_segments(np.asarray(X, np.float32), SR, n_mels=32), np.asarray(y)


def _tiny(**params) -> SegmentCNNModel:
    return SegmentCNNModel(**{"n_mels": 32, "channels": (8, 16), "epochs": 1,
                              "batch_size": 32, **params})


# -- segments ----------------------------------------------------------------------------------
def test_segments_overlap_by_half_and_silence_is_dropped():
    x = np.r_[np.zeros(3 * SR), 0.1 * np.ones(6 * SR)].astype(np.float32)
    starts = [s for s, _ in song_segments(x, SR)]
    # 9 s: candidate starts 0, 1.5, 3, 4.5, 6 s; those at 0 s is wholly silent, the one at
    # 1.5 s half-silent (RMS 0.07, kept)
    assert starts == [int(1.5 * SR), 3 * SR, int(4.5 * SR), 6 * SR]


def test_training_songs_keep_their_first_segments_and_test_songs_all():
    songs = [np.ones(30 * SR, np.float32) * 0.1] * 2
    table, samples = segment_table(["a", "b"], songs, SR, [True, False], train_segments=3)
    assert table.groupby("song").size().to_dict() == {"a": 3, "b": 19}
    assert table.loc[table.song == "a", "start"].tolist() == [0, int(1.5 * SR), 3 * SR]
    assert samples.shape == (22, 3 * SR) and (table.group == table.song).all()


def test_bad_segment_input_is_one_line():
    with pytest.raises(ValueError, match="mono"):
        song_segments(np.zeros((2, 100)), SR)


# -- evaluation --------------------------------------------------------------------------------
def test_track_identification_votes_among_five_other_segments():
    # song a: 6 segments near (1, 0); song b: 6 near (0, 1), one of which sits among a's
    E = np.r_[[[1, 0.01 * i] for i in range(6)], [[0.01 * i, 1] for i in range(5)], [[1, 0.02]]]
    songs = ["a"] * 6 + ["b"] * 6
    assert track_identification(E, songs, k=5) == pytest.approx(11 / 12)


def test_trial_summary_is_mean_and_population_variance():
    assert trial_summary([0.5, 1.0]) == {"mean": 0.75, "variance": 0.0625, "trials": 2}


def test_song_distances_are_between_centroids():
    E = np.array([[1, 0], [0.8, 0.6], [0, 1], [0, 1]], float)
    names, D = song_distance_matrix(E, ["x", "x", "y", "y"])
    c = np.array([1.8, 0.6]) / np.linalg.norm([1.8, 0.6])
    assert D[0, 1] == pytest.approx(1 - c[1]) and D[1, 0] == D[0, 1] and D[0, 0] == 0


def test_matrix_correlations_by_hand():
    A = np.array([[0, 1, 2, 3], [1, 0, 4, 5], [2, 4, 0, 6], [3, 5, 6, 0]], float)
    B = A.copy()
    B[0, 1] = B[1, 0] = 7  # upper triangles (1..6) and (7,2,3,4,5,6)
    r = np.corrcoef([1, 2, 3, 4, 5, 6], [7, 2, 3, 4, 5, 6])[0, 1]
    # columns without the diagonal: col 0 (1,2,3) vs (7,2,3) -> rho -0.5; col 1 (1,4,5) vs
    # (7,4,5) -> -0.5; cols 2, 3 unchanged order -> 1
    out = matrix_correlations(A, B)
    assert out["pearson"] == pytest.approx(r, abs=1e-6)
    assert out["spearman"] == pytest.approx((-0.5 - 0.5 + 1 + 1) / 4)
    table = condition_correlations({"mix": A, "drums": B, "bass": A})
    assert table[["a", "b"]].values.tolist() == [["mix", "drums"], ["mix", "bass"],
                                                 ["drums", "bass"]]
    assert table.pearson.iloc[1] == pytest.approx(1.0)


def test_listening_sets_are_invalid_when_the_top_lists_overlap():
    rng = np.random.default_rng(3)
    P = rng.random((10, 2))
    D = np.linalg.norm(P[:, None] - P[None], axis=-1)
    assert listening_sets(D, D, n_sets=8, top=2) == []  # the same metric: always overlapping
    Q = rng.random((10, 2))
    M = np.linalg.norm(Q[:, None] - Q[None], axis=-1)
    sets = listening_sets(D, M, n_sets=8, top=2, seed=1)
    assert 0 < len(sets) <= 8 and len({s["a"] for s in sets}) == len(sets)
    for s in sets:
        top_i = [j for j in np.argsort(D[s["a"]]) if j != s["a"]][:2]
        top_m = [j for j in np.argsort(M[s["a"]]) if j != s["a"]][:2]
        assert s["b"] in top_i and s["c"] in top_m and not set(top_i) & set(top_m)


def test_tsne_map_is_seeded():
    E = np.random.default_rng(0).standard_normal((20, 5))
    assert np.allclose(tsne_map(E, seed=1), tsne_map(E, seed=1))


# -- models ------------------------------------------------------------------------------------
def test_trained_cnn_identifies_tracks_better_than_untrained():
    X_train, y_train = _songs(6, 12, seed=0)
    X_test, y_test = _songs(6, 6, seed=1)
    untrained = _tiny(epochs=1, lr=1e-9).fit(X_train, y_train)
    trained = _tiny(epochs=15, lr=1e-2).fit(X_train, y_train)
    before = track_identification(untrained.transform(X_test), y_test)
    after = track_identification(trained.transform(X_test), y_test)
    assert after > before + 0.2, (before, after)


def test_cnn_defaults_are_the_papers_and_clone_save_load_round_trip(tmp_path):
    m = SegmentCNNModel()
    assert (m.embedding_dim, m.batch_size, m.epochs, m.loss.margin, m.distance) == (
        128, 64, 150, 0.2, "cosine")
    X, y = _songs(3, 4, seed=0)
    model = clone(_tiny(seed=3)).fit(X, y)
    per = PerInstrumentModel()
    per.models_ = {"drums": model}
    loaded = PerInstrumentModel.load(per.save(tmp_path / "m"))
    assert np.allclose(loaded.transform(X, "drums"), model.transform(X), atol=1e-6)
    with pytest.raises(Exception, match="no metric for condition 'bass'"):
        loaded.transform(X, "bass")


def test_cnn_refuses_a_width_that_is_not_whole_frames():
    with pytest.raises(Exception, match="whole number of frames"):
        _tiny().fit(np.zeros((8, 33)), np.arange(8) % 2)


# -- separation --------------------------------------------------------------------------------
def test_hpss_puts_clicks_in_drums_and_a_low_tone_in_bass():
    from mirsim.separation.hpss import hpss_separate
    from mirsim.separation.scores import separation_scores

    t = np.arange(2 * SR) / SR
    clicks = np.zeros_like(t)
    clicks[:: SR // 4] = 1.0
    bass = 0.3 * np.sin(2 * np.pi * 80 * t)
    piano = 0.3 * np.sin(2 * np.pi * 880 * t)
    stems = hpss_separate((clicks + bass + piano).astype(np.float32), SR)
    assert np.allclose(sum(stems.values()), clicks + bass + piano, atol=1e-3)
    scores = separation_scores({"drums": clicks, "bass": bass, "piano": piano}, stems)
    # the tones come out cleanly; clicks only roughly (HPSS leaves their low end harmonic)
    assert scores["bass"]["sdr"] > 10 and scores["piano"]["sdr"] > 10, scores
    assert scores["drums"]["sdr"] > 0, scores
    with pytest.raises(ValueError, match="silent reference"):
        separation_scores({"drums": 0 * t, "bass": bass}, {"drums": t, "bass": t})


# -- experiment --------------------------------------------------------------------------------
def test_experiment_resumes_to_the_uninterrupted_table(tmp_path):
    from mirsim.experiments.per_instrument import (PER_INSTRUMENT, ConditionSegments,
                                                   per_instrument_markdown, run_per_instrument)

    X_train, y_train = _songs(4, 4, seed=0)
    X_test, y_test = _songs(4, 3, seed=1)
    data = {"mix": ConditionSegments(X_train, y_train, X_test, y_test),
            "drums": ConditionSegments(X_train[::-1].copy(), y_train[::-1], X_test, y_test)}
    params = {"n_mels": 32, "channels": (4,), "epochs": 1, "batch_size": 16}
    run_dir = PER_INSTRUMENT.start(PER_INSTRUMENT.config(
        data="toy", conditions=list(data), trials=2, seed=0, model_params=params), "per-instrument",
                                   tmp_path)
    saved = []

    def stop_after_first(table):
        PER_INSTRUMENT.save(run_dir, table)
        saved.append(1)
        if len(saved) == 1:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_per_instrument(data, trials=2, model_params=params, on_table=stop_after_first)
    _, done = PER_INSTRUMENT.load_unfinished(run_dir)
    assert list(done) == ["mix"] and list(done["mix"]) == ["trial-0"]
    resumed = run_per_instrument(data, trials=2, model_params=params, done=done)
    whole = run_per_instrument(data, trials=2, model_params=params)
    assert resumed["accuracy"] == whole["accuracy"]
    assert [r["a"] for r in whole["correlations"]] == ["mix"]
    assert "| mix |" in per_instrument_markdown(whole)


@pytest.mark.slow
def test_reproduce_per_instrument_quick_end_to_end_and_resume(tmp_path):
    import json

    from typer.testing import CliRunner

    from mirsim.cli import app

    runner = CliRunner()
    args = ["reproduce", "per-instrument", "--quick", "--conditions", "mix,drums,separated-bass",
            "--runs", str(tmp_path), "--json"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    table = json.loads(result.output.strip().splitlines()[-1])
    run_dir = tmp_path / next(p.name for p in tmp_path.iterdir())
    assert table["complete"] and set(table["accuracy"]) == {"mix", "drums", "separated-bass"}
    assert set(table["separation"]["bass"]) == {"sdr", "sir", "sar"}
    assert {"per_instrument.md", "per_instrument.json", "song_distances.png", "tsne.png",
            "config.json"} <= {p.name for p in run_dir.iterdir()}
    first = table["cells"]["drums"]["trial-0"]  # Fig. 3: every test segment mapped, by song
    assert len(first["tsne"]) == len(first["segment_songs"]) == first["n_test"]
    assert set(first["segment_songs"]) == set(first["songs"])
    again = runner.invoke(app, ["reproduce", "per-instrument", "--resume", str(run_dir), "--json"])
    assert again.exit_code == 0, again.output
    assert json.loads(again.output.strip().splitlines()[-1])["accuracy"] == table["accuracy"]
    bad = runner.invoke(app, ["reproduce", "per-instrument", "--conditions", "flute", "--quick",
                              "--runs", str(tmp_path)])
    assert bad.exit_code != 0 and "unknown condition 'flute'" in bad.output


def test_listening_design_is_a_triplet_test_that_listen_serve_can_load(tmp_path):
    from mirsim.experiments.per_instrument import listening_design
    from mirsim.listening.design import load_test, write_test

    rng = np.random.default_rng(0)
    songs = [f"s{i}" for i in range(10)]

    def cell():
        P = rng.random((10, 2))
        return {"trial-0": {"songs": songs,
                            "song_distances": np.linalg.norm(P[:, None] - P[None], axis=-1)}}

    table = {"cells": {"mix": cell(), "bass": cell()}}
    test = listening_design(table, "bass", {s: f"/{s}.flac" for s in songs}, seed=2)
    loaded = load_test(write_test(test, tmp_path / "t"))
    assert loaded.kind == "triplets" and loaded.trials == test.trials and test.trials
    assert loaded.extra["clip_seconds"] == 10.0 and loaded.name_of(test.trials[0]["a"]) in songs
    with pytest.raises(ValueError, match="no 'piano' condition"):
        listening_design(table, "piano", {})
