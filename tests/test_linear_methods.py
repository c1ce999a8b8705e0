"""``mirsim reproduce linear-methods`` (the tutorial's first demo) and its report page."""

from __future__ import annotations

import json
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from synthetic_audio import write_timbre_library
from typer.testing import CliRunner

from mirsim.cli import app
from mirsim.datasets import Collection
from mirsim.errors import MirsimError
from mirsim.experiments import FeatureSet
from mirsim.experiments.linear_methods import (classification_summary, run_linear_methods,
                                               subsample)

METHODS = ("euclidean", "lda", "nca", "lmnn")


def _run(args: list) -> object:
    return CliRunner().invoke(app, [str(a) for a in args])


def noise_feature_set(n_per_class: int = 10, seed: int = 0) -> FeatureSet:
    """Six classes spaced 1 apart on feature 0 (std 0.15); feature 1 pure noise of std 50.
    After standardisation the noise has the class feature's variance: Euclidean 1-NN errs,
    a learned metric stretches feature 0."""
    rng = np.random.default_rng(seed)
    y = np.repeat(np.arange(6), n_per_class)
    X = np.c_[y + 0.15 * rng.standard_normal(len(y)), 50.0 * rng.standard_normal(len(y))]
    n = len(y)
    items = pd.DataFrame({"id": [f"i{k}" for k in range(n)], "label": y.astype(str),
                          "group": np.arange(n) // 2})
    return FeatureSet(Collection("toy", items, [None] * n), "toy", X.astype(np.float32),
                      y.astype(str), (np.arange(n) // 2).astype(str), np.arange(n))


# -- the experiment ------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def toy_results():
    return run_linear_methods(noise_feature_set(), ("euclidean", "lda", "nca"), "kfold",
                              folds=3, seed=0, model_params={"nca": {"max_iter": 30}})


def test_learned_metrics_beat_euclidean_when_a_feature_is_noise(toy_results):
    accuracy = {r.method: r.summary()["accuracy"]["mean"] for r in toy_results}
    # measured: Euclidean 0.867, LDA and NCA 1.0
    assert accuracy["euclidean"] < 0.95
    assert accuracy["lda"] >= 0.98 and accuracy["nca"] >= 0.98


def test_every_item_is_predicted_once_and_the_report_agrees(toy_results):
    fs = noise_feature_set()
    for r in toy_results:
        assert sorted(r.y_true.tolist()) == sorted(fs.labels.tolist())  # kfold: each item once
        pooled = float(np.mean(r.y_true == r.y_pred))
        per_fold = [f["accuracy"] for f in r.per_fold]
        assert len(per_fold) == 3 and min(per_fold) <= pooled <= max(per_fold)
        summary = classification_summary(r, [str(k) for k in range(6)])
        matrix = np.array(summary["confusion_matrix"])
        assert matrix.sum() == len(fs.X) and np.trace(matrix) / matrix.sum() == pooled
        assert summary["report"]["accuracy"] == pytest.approx(pooled)


def test_projections_are_the_last_folds_linear_maps(toy_results):
    by_name = {r.method: r for r in toy_results}
    assert by_name["euclidean"].projection is None
    assert by_name["lda"].projection.shape == (2, 2)  # min(6 labels - 1, 2 features) axes
    assert by_name["nca"].projection.shape == (2, 2)
    nca = by_name["nca"].projection
    # the class feature outweighs the noise (measured: 17 times)
    assert np.linalg.norm(nca[:, 0]) > 5 * np.linalg.norm(nca[:, 1])
    for r in toy_results:
        assert r.held_out.shape[0] == len(r.held_out_rows) == 20


def test_group_kfold_keeps_groups_apart_and_loo_is_refused():
    fs = noise_feature_set()
    [r] = run_linear_methods(fs, ["lda"], "group-kfold", folds=3)
    test_groups = set(fs.groups[r.held_out_rows])
    assert len(test_groups) == len(r.held_out_rows) // 2  # pairs of items share a group
    with pytest.raises(MirsimError, match="use --protocol kfold or group-kfold, not loo"):
        run_linear_methods(fs, ["lda"], "loo")


def test_subsample_is_stratified_and_seeded():
    fs = noise_feature_set(20)
    a, b = subsample(fs, 30, seed=1), subsample(fs, 30, seed=1)
    assert len(a.X) == 30 and np.array_equal(a.X, b.X)
    assert set(np.unique(a.labels, return_counts=True)[1]) == {5}


# -- the command and its report --------------------------------------------------------------------
@pytest.fixture(scope="module")
def quick_run(tmp_path_factory, isolated_env) -> Path:
    """One ``--quick`` run on three timbres x 8 tones (24 items, 3 folds of 8)."""
    library = write_timbre_library(tmp_path_factory.mktemp("lm-lib"), 8)
    runs = tmp_path_factory.mktemp("lm-runs")
    r = _run(["reproduce", "linear-methods", "--data", library, "--quick", "--folds", 3,
              "--workers", 1, "--runs", runs, "--json"])
    assert r.exit_code == 0, r.output
    run_dir = Path(json.loads(r.stdout.strip().splitlines()[-1])["run_dir"])
    assert run_dir.parent == runs
    return run_dir


@pytest.mark.slow  # UMAP compiles its numba functions on first use: 10-30 s
def test_quick_run_writes_every_artefact(quick_run):
    config = json.loads((quick_run / "config.json").read_text())
    assert config["command"] == "reproduce linear-methods" and config["quick"] is True
    assert config["models"] == list(METHODS) and config["n_items"] == 24
    metrics = json.loads((quick_run / "metrics.json").read_text())
    assert list(metrics) == list(METHODS)
    for entry in metrics.values():
        assert set(entry["metrics"]) == {"accuracy", "p_at_1", "map_at_r"}
        assert len(entry["per_fold"]) == 3
    # three timbres, told apart by MFCC (measured 1-NN accuracy: Euclidean 0.875, LDA 1.0,
    # NCA 0.875, LMNN 0.958; chance 1/3)
    for entry in metrics.values():
        assert entry["metrics"]["accuracy"]["mean"] > 0.7
    classification = json.loads((quick_run / "classification.json").read_text())
    for entry in classification.values():
        assert entry["labels"] == ["bright", "dull", "mellow"]
        assert np.array(entry["confusion_matrix"]).sum() == 24
    with np.load(quick_run / "maps.npz", allow_pickle=False) as maps:
        assert maps["labels"].shape == (8,)
        for m in METHODS:
            assert maps[f"{m}.xy"].shape == (8, 2) and np.isfinite(maps[f"{m}.xy"]).all()
    with np.load(quick_run / "projections.npz", allow_pickle=False) as projections:
        assert sorted(projections.files) == ["lda", "lmnn", "nca"]
        assert projections["lda"].shape == (2, 40)  # 3 labels, 40 MFCCs
        assert projections["nca"].shape == projections["lmnn"].shape == (40, 40)
    summary = (quick_run / "summary.md").read_text()
    for name in ("Euclidean", "LDA", "NCA", "LMNN"):
        assert f"| {name} |" in summary


class _Page(HTMLParser):
    def __init__(self):
        super().__init__()
        self.sections, self.images = [], []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "section":
            self.sections.append(attrs.get("id"))
        if tag == "img":
            self.images.append(attrs.get("src", ""))


@pytest.mark.slow
def test_report_of_a_quick_run_has_every_section_and_image(quick_run):
    r = _run(["report", quick_run])
    assert r.exit_code == 0, r.output
    page = quick_run / "report.html"
    parser = _Page()
    parser.feed(page.read_text())
    assert parser.sections == ["accuracy", "classification", "confusion", "umap", "projections"]
    # the metrics chart, 4 confusion matrices, 4 maps, 3 projection matrices
    assert len(parser.images) == 12
    assert all(src.startswith("data:image/png;base64,") for src in parser.images)
    pngs = sorted(p.name for p in quick_run.glob("report-*.png"))
    assert len(pngs) == 12 and "report-projection-lda.png" in pngs
    assert "report-umap-euclidean.png" in pngs and "report-confusion-nca.png" in pngs
    text = page.read_text()
    assert "1-nearest-neighbour classification" in text and "f1-score" in text


@pytest.mark.parametrize("args, message", [
    (["--protocol", "loo"], "use --protocol kfold or group-kfold, not loo"),
    (["--methods", "lda,pca"], "unknown model 'pca'"),
    (["--folds", "1"], "n_folds must be an integer >= 2"),
])
def test_bad_options_are_one_line_errors(args, message):
    r = _run(["reproduce", "linear-methods", *args])
    assert r.exit_code == 2
    assert message in r.stderr.replace("\n", "") and len(r.stderr.strip().splitlines()) <= 2
