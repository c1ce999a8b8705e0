"""``mirsim reproduce new-sounds`` on the 78 real Cyberlioz sounds and its 16 listeners, and
the concatenated inputs it compares."""

from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from mirsim.cli import app
from mirsim.features import make_extractor


def _run(args):
    return CliRunner().invoke(app, args)


def test_a_concatenation_is_its_parts_side_by_side():
    rng = np.random.default_rng(0)
    y = (0.1 * rng.standard_normal(44100)).astype(np.float32)
    both = make_extractor("mfcc+scat1d")
    parts = [make_extractor("mfcc")(y, 44100), make_extractor("scat1d")(y, 44100)]
    np.testing.assert_allclose(both(y, 44100), np.concatenate(parts), rtol=1e-5, atol=1e-6)
    assert both.identity != make_extractor("scat1d+mfcc").identity


def test_a_part_takes_its_parameters_in_brackets():
    rng = np.random.default_rng(0)
    y = (0.1 * rng.standard_normal(44100)).astype(np.float32)
    both = make_extractor("mfcc[n_mfcc=20,n_mels=64]+scat1d")
    parts = [make_extractor("mfcc", n_mfcc=20, n_mels=64)(y, 44100),
             make_extractor("scat1d")(y, 44100)]
    assert both(y, 44100).shape == (20 + len(parts[1]),)
    np.testing.assert_allclose(both(y, 44100), np.concatenate(parts), rtol=1e-5, atol=1e-6)
    assert both.identity != make_extractor("mfcc+scat1d").identity  # another cache key
    assert make_extractor("mfcc[n_mfcc=20]").identity == make_extractor("mfcc", n_mfcc=20).identity


def test_default_candidates_follow_the_data_and_the_judgments():
    from mirsim.experiments.new_sounds import (FROM_LISTENERS, default_candidates,
                                               new_sounds_config, parse_candidate)

    def supervisions(names):
        return {parse_candidate(c)[2] for c in names}

    assert supervisions(default_candidates("cyberlioz", judged=True)) == {
        "clusters", "listeners", "coassociation", "soft-labels", "extended", "augmented"}
    assert supervisions(default_candidates("cyberlioz", judged=False)) == {
        "clusters", "extended", "augmented"}
    assert supervisions(default_candidates("synth", judged=False)) == {"clusters",
                                                                       "augmented"}
    assert not supervisions(default_candidates("synth", judged=True)) & {"extended"}
    assert "jtfs+musicnn-msd[layer=pooled]" in {parse_candidate(c)[0]
                                                for c in default_candidates()}
    # every default candidate is one its model can learn (checked before any work)
    config = new_sounds_config(judgments="cyberlioz")
    assert config["candidates"] == default_candidates("cyberlioz", judged=True)
    assert config["variant_inputs"] == config["augmented_inputs"] == ["jtfs", "mfcc"]
    assert not set(FROM_LISTENERS) & supervisions(new_sounds_config("synth")["candidates"])


def test_bad_concatenations_are_one_line_errors():
    r = _run(["train", "--feature", "mfcc+mel"])
    assert r.exit_code == 2 and "unknown feature 'mel'" in r.stderr
    r = _run(["train", "--feature", "mfcc+jtfs", "--feature-param", "n_mfcc=20"])
    assert r.exit_code == 2 and "KEY one of: none" in r.stderr
    for bad in ("mfcc[n_mfcc=many]", "mfcc[n_mfcc=20", "mfcc[hop=1]+jtfs"):
        r = _run(["train", "--feature", bad])
        assert r.exit_code == 2 and len(r.stderr.strip().splitlines()) == 1, bad
    r = _run(["reproduce", "new-sounds", "--candidates", "lda"])
    assert r.exit_code == 2 and "write INPUT/MODEL" in r.stderr
    assert _run(["reproduce", "new-sounds", "--help"]).exit_code == 0
    r = _run(["reproduce", "new-sounds", "--candidates", ","])
    assert r.exit_code == 2 and "names no candidate" in r.stderr
    r = _run(["reproduce", "new-sounds", "--candidates", "mfcc/lda/listeners"])
    assert r.exit_code == 2 and "does not learn from judged triplets" in r.stderr


def test_a_supervision_the_model_cannot_learn_from_is_a_one_line_error():
    r = _run(["reproduce", "new-sounds", "--candidates", "mfcc/lda/coassociation"])
    assert r.exit_code == 2 and "model 'lda' does not learn from target similarities" in r.stderr
    r = _run(["reproduce", "new-sounds", "--candidates", "mfcc/lmnn/soft-labels"])
    assert r.exit_code == 2 and "does not learn from target similarities" in r.stderr
    r = _run(["reproduce", "new-sounds", "--candidates", "mfcc/pair-regression/listeners"])
    assert r.exit_code == 2 and "does not learn from judged triplets" in r.stderr
    r = _run(["reproduce", "new-sounds", "--candidates", "mfcc/soft-lda/coassociation",
              "--judgments", "none"])
    assert r.exit_code == 2 and "supervision 'coassociation' needs --judgments" in r.stderr
    r = _run(["reproduce", "new-sounds", "--candidates", "mfcc/soft-lda/coassoc"])
    assert r.exit_code == 2 and "unknown supervision 'coassoc'" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1


def test_new_sounds_table_scores_candidates_against_clusters_and_listeners(
        cyberlioz_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("MIRSIM_CYBERLIOZ_DIR", str(cyberlioz_dir))
    candidates = ("mfcc/euclidean,mfcc+mfcc/euclidean,mfcc/lda,mfcc/lmnn/listeners,"
                  "mfcc/lda/augmented")
    args = ["reproduce", "new-sounds", "--candidates", candidates, "--quick", "--workers", "1",
            "--runs", str(tmp_path / "runs")]
    r = _run(args)
    assert r.exit_code == 0, r.output
    run = next((tmp_path / "runs").glob("*new-sounds*"))
    table = json.loads((run / "new_sounds.json").read_text())
    assert table["complete"] and table["n_items"] == 78 and table["protocol"] == "group-kfold"
    cells = {c: table["cells"][c]["group-kfold"] for c in candidates.split(",")}
    # a column twice scales every distance by sqrt(2): the same neighbours, the same numbers
    for m in ("p_at_1", "p_at_5", "map_at_r", "triplet_agreement"):
        assert cells["mfcc+mfcc/euclidean"][m] == pytest.approx(cells["mfcc/euclidean"][m])
    assert len(table["judgments"]["listeners"]) == 16
    for cell in cells.values():
        assert 0.5 < cell["triplet_agreement"]["mean"] < 1.0
    listened = cells["mfcc/lmnn/listeners"]
    assert listened["supervision"] == "listeners" and listened["n_triplets"] > 1000
    augmented = cells["mfcc/lda/augmented"]  # 8 audio-augmented views of each sound
    assert augmented["supervision"] == "augmented" and augmented["n_variants"] == 8 * 78
    assert augmented["map_at_r"] != cells["mfcc/lda"]["map_at_r"]
    md = (run / "new_sounds.md").read_text()
    assert "| mfcc | LMNN | listeners |" in md and "nothing about new listeners" in md
    assert "| — | Human reference (16 listeners) |" in md
    assert "Goal: best learned mfcc/lda against best Euclidean" in md
    # resumable: a cell taken out is computed again, to the same numbers
    before = table["cells"].pop("mfcc/lda")
    table["complete"] = False
    (run / "new_sounds.json").write_text(json.dumps(table))
    r = _run(["reproduce", "new-sounds", "--resume", str(run), "--workers", "1"])
    assert r.exit_code == 0, r.output
    again = json.loads((run / "new_sounds.json").read_text())["cells"]["mfcc/lda"]
    assert again["group-kfold"]["map_at_r"] == before["group-kfold"]["map_at_r"]


def test_a_network_supervised_by_listeners_learns_with_the_triplet_loss():
    from mirsim.experiments.new_sounds import new_sounds_config

    config = new_sounds_config(candidates=["mfcc/linear/listeners", "mfcc/linear"],
                               judgments="listeners.csv")
    params = config["candidate_params"]
    assert params["mfcc/linear/listeners"]["loss"]["name"] == "triplet"
    assert "loss" not in params["mfcc/linear"]  # the model's default (proxy-anchor)


def _random_features(collection, kept, dim=6, seed=0):
    """A FeatureSet of ``collection``'s rows ``kept`` with random features (no audio read)."""
    from mirsim.experiments.experiment import FeatureSet

    items = collection.items.iloc[kept]
    X = np.random.default_rng(seed).standard_normal((len(kept), dim)).astype(np.float32)
    X += items["label"].to_numpy()[:, None].astype(np.float32)  # something to learn
    return FeatureSet(collection, "mfcc", X, items["label"].to_numpy(),
                      items["group"].astype(str).to_numpy(), np.asarray(kept))


def test_the_extended_rows_are_training_variants_of_their_seed_sounds(cyberlioz_dir):
    from mirsim.datasets.cyberlioz import load_cyberlioz, load_cyberlioz_extended, seed_copies
    from mirsim.experiments.experiment import variants_of
    from mirsim.experiments.new_sounds import new_sounds_config, run_new_sounds

    seeds, extended = load_cyberlioz(cyberlioz_dir), load_cyberlioz_extended(cyberlioz_dir)
    fs = _random_features(seeds, np.arange(1, 78))  # the first seed sound left out
    ext = _random_features(extended, np.arange(len(extended.items)), seed=1)
    v = variants_of(fs, ext, "seed", unchanged=seed_copies)
    items = extended.items
    ids = seeds.items["id"].to_numpy()
    expected = ((items["seed"] != ids[0]) & ~seed_copies(items)).to_numpy()
    assert len(v.X) == expected.sum() > 5000
    np.testing.assert_array_equal(v.X, ext.X[expected])
    assert (ids[1:][v.source] == items["seed"].to_numpy()[expected]).all()  # each its seed
    assert (fs.labels[v.source] == items["label"].to_numpy()[expected]).all()
    assert seed_copies(items).sum() >= 78  # a row at every seed's own pitch and dynamics
    with pytest.raises(Exception, match="no column 'fname'"):
        variants_of(fs, ext, "fname")

    config = new_sounds_config(candidates=["mfcc/lda", "mfcc/lda/extended"])
    assert config["variant_data"] == "cyberlioz-extended" and config["variant_inputs"] == ["mfcc"]
    table = run_new_sounds({"mfcc": fs}, config, variant_sets={"mfcc": ext})
    cell = table["cells"]["mfcc/lda/extended"]["group-kfold"]
    assert cell["supervision"] == "extended" and cell["n_variants"] == len(v.X)
    plain = table["cells"]["mfcc/lda"]["group-kfold"]
    assert plain["supervision"] == "clusters" and plain["map_at_r"] != cell["map_at_r"]
    with pytest.raises(Exception, match="variants' features were not loaded"):
        run_new_sounds({"mfcc": fs}, new_sounds_config(candidates=["mfcc/lda/extended"]))


def test_extended_supervision_needs_data_with_variants(tmp_path):
    r = _run(["reproduce", "new-sounds", "--data", str(tmp_path), "--candidates",
              "mfcc/lda/extended"])
    assert r.exit_code == 2 and "needs data with variants (cyberlioz)" in r.stderr


def test_the_goal_check_names_the_candidates_that_meet_both_goals():
    from mirsim.experiments.new_sounds import goal_check, new_sounds_markdown

    def cell(map_at_r, agreement):
        s = lambda v: {"mean": v, "std": 0.0}  # noqa: E731
        return {"group-kfold": {"p_at_1": s(0.5), "p_at_5": s(0.5), "map_at_r": s(map_at_r),
                                "triplet_agreement": s(agreement), "train_seconds": 0.0}}

    names = ["a/euclidean", "a/lda", "a/soft-lda/soft-labels", "a/soft-lda/coassociation"]
    table = {"data": "d", "description": "", "protocol": "group-kfold", "folds": 5,
             "n_items": 9, "features": ["group-kfold"], "models": names,
             "candidate_models": dict(zip(names, ["euclidean", "lda", "soft-lda", "soft-lda"])),
             "cells": dict(zip(names, [cell(0.26, 0.72), cell(0.38, 0.88), cell(0.37, 0.905),
                                       cell(0.30, 0.91)]))}
    goal = goal_check(table)
    assert goal["learned"] == "a/lda" and not goal["agreement_goal_met"]
    assert goal["both_met"] == ["a/soft-lda/soft-labels"]  # coassociation: MAP@R +4 only
    assert "Both goals met by: a/soft-lda/soft-labels." in new_sounds_markdown(table)
