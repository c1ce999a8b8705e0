"""A metric learned from one person's judgments: the personal model against its properties,
the protocol (folds by sound), and ``mirsim train --judgments ... --listener NAME`` end to end
with an index built from its run."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from typer.testing import CliRunner

from mirsim.cli import app
from mirsim.evaluation.judgments import grouping_triplets, triplet_outcomes
from mirsim.experiments.personal import evaluate_listener, paired_summary
from mirsim.models import load_model, make_model
from synthetic_audio import write_groupings_file, write_timbre_library


#: A cheaper personal model than the default (fewer steps, two penalties to choose from).
FAST = {"steps": 150, "penalties": (0.01, 0.1)}


def _hidden_listener(n: int = 60, d: int = 8, seed: int = 0, hears: int = -1):
    """Items whose labels follow feature 0, and a listener who groups them by feature
    ``hears`` alone (in three bands), which the group metric weighs like any other."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d))
    labels = (X[:, 0] > 0).astype(int)
    heard = np.digitize(X[:, hears], [-0.5, 0.5])
    features = SimpleNamespace(X=X, labels=labels, groups=np.arange(n))
    return features, grouping_triplets(heard)


@pytest.mark.parametrize("base", ["euclidean", "lda"])
def test_without_triplets_or_with_an_infinite_penalty_it_is_the_group_metric(base):
    features, triplets = _hidden_listener()
    X, y = features.X, features.labels
    group = make_model(base).fit(X, y)
    for kwargs in ({"triplets": np.zeros((0, 3), dtype=np.int64)},
                   {"triplets": triplets, "penalty": float("inf")}):
        penalty = kwargs.pop("penalty", None)
        personal = make_model("personal", base=base, penalty=penalty).fit(X, y, **kwargs)
        assert np.array_equal(personal.map_.numpy(), np.eye(personal.map_.shape[0]))
        # the same embedding up to one scale: every distance, hence every ranking, alike
        assert np.allclose(personal.transform(X) * personal.input_scale_, group.transform(X),
                           atol=1e-5)
        assert np.array_equal(triplet_outcomes(personal.transform(X), triplets),
                              triplet_outcomes(group.transform(X), triplets))


def test_it_learns_a_listener_who_hears_a_hidden_feature():
    """A few dozen triplets per fold, held-out sounds: the personal metric must predict the
    listener clearly better than the group metric (which is near chance for them)."""
    features, triplets = _hidden_listener()
    r = evaluate_listener(features, triplets, None, listener="hidden", base="euclidean",
                          personal_params=FAST, folds=3, seed=0, max_triplets=60)
    assert r.n_train == 3 * 60
    assert r.group < 0.62  # chance is 0.5
    assert r.personal > r.group + 0.04  # measured: 0.588 -> 0.655 (with penalty=inf: equal)


def test_a_metric_tuned_to_another_listener_predicts_this_one_worse():
    features, mine = _hidden_listener()
    _, theirs = _hidden_listener(hears=-2)  # the same sounds, another hidden feature
    common = {"listener": "hidden", "base": "euclidean", "personal_params": FAST, "folds": 3,
              "seed": 0, "max_triplets": 60}
    own = evaluate_listener(features, mine, None, **common)
    other = evaluate_listener(features, mine, None, learn_from=(theirs, None), **common)
    assert other.group == own.group
    assert other.personal < own.personal - 0.04  # measured: 0.542 against 0.655


def test_the_penalty_is_chosen_by_inner_cross_validation():
    features, triplets = _hidden_listener()
    rng = np.random.default_rng(1)
    chosen = triplets[rng.choice(len(triplets), 80, replace=False)]
    m = make_model("personal", base="euclidean", **FAST).fit(features.X, features.labels,
                                                              triplets=chosen)
    assert set(m.cv_scores_) == {"inf", *(repr(p) for p in m.penalties)}
    best = max(m.cv_scores_.values())
    assert m.cv_scores_["inf" if np.isinf(m.penalty_) else repr(m.penalty_)] == best


def test_a_personal_model_saves_and_loads_with_its_group_metric(tmp_path):
    features, triplets = _hidden_listener()
    m = make_model("personal", base="lda", penalty=0.01, steps=20).fit(
        features.X, features.labels, triplets=triplets[:200])
    loaded = load_model(m.save(tmp_path / "m"))
    assert loaded.base_.name == "lda" and loaded.penalty_ == 0.01
    assert np.array_equal(loaded.transform(features.X), m.transform(features.X))


def test_paired_summary_counts_wins_and_tests_them():
    s = paired_summary(np.full(8, 0.6), np.array([0.7] * 7 + [0.5]))
    assert (s["wins"], s["losses"], s["ties"]) == (7, 1, 0)
    assert s["sign_test_p"] == pytest.approx(0.0703125)  # 2 * P(X >= 7), X ~ B(8, 1/2)
    assert 0 < s["wilcoxon_p"] < 0.1


# -- the command line ---------------------------------------------------------------------
@pytest.fixture(scope="module")
def library(tmp_path_factory):
    return write_timbre_library(tmp_path_factory.mktemp("lib"), 6)


def _train(library, judgments, listener, runs, *extra):
    return CliRunner().invoke(app, ["train", "--data", str(library), "--feature", "mfcc",
                                    "--model", "lda", "--judgments", str(judgments),
                                    "--listener", listener, "--folds", "3", "--workers", "1",
                                    "--runs", str(runs), *extra])


def test_train_listener_writes_a_run_an_index_is_built_from(library, tmp_path):
    judgments = write_groupings_file(library, tmp_path / "listeners.csv")
    r = _train(library, judgments, "lumper", tmp_path / "runs", "--json")
    assert r.exit_code == 0, r.output
    j = json.loads(r.stdout.strip().splitlines()[-1])
    assert (j["listener"], j["model"], j["base_model"]) == ("lumper", "personal", "lda")
    assert 0 <= j["group"] <= 1 and 0 <= j["personal"] <= 1
    assert j["n_test_triplets"] == len(grouping_triplets(np.repeat([0, 1, 1], 6)))
    run = Path(j["run_dir"])
    config = json.loads((run / "config.json").read_text())
    assert (config["model"], config["listener"]) == ("personal", "lumper")
    assert load_model(run / "model").base_.name == "lda"
    page = CliRunner().invoke(app, ["report", str(run)])
    assert page.exit_code == 0, page.output
    html = (run / "report.html").read_text()
    assert "triplet_agreement_personal" in html and f"{j['personal']:.3f}" in html
    index = tmp_path / "index"
    r = CliRunner().invoke(app, ["index", "build", str(library), "--out", str(index),
                                 "--run", str(run), "--workers", "1", "--json"])
    assert r.exit_code == 0, r.output
    built = json.loads((index / "index.json").read_text())
    assert built["model"] == "personal"
    r = CliRunner().invoke(app, ["query", str(index), str(next(library.rglob("*.wav"))),
                                 "-k", "3", "--json"])
    assert r.exit_code == 0, r.output


def test_train_listener_refuses_an_unknown_listener_in_one_line(library, tmp_path):
    judgments = write_groupings_file(library, tmp_path / "listeners.csv")
    r = _train(library, judgments, "nobody", tmp_path)
    assert r.exit_code == 2
    message = r.stderr.strip().replace("\n", "")
    assert "no listener 'nobody' (listeners: by-timbre, lumper)" in message
    r = CliRunner().invoke(app, ["train", "--data", str(library), "--listener", "lumper"])
    assert r.exit_code == 2 and "--listener needs --judgments" in r.stderr.replace("\n", "")


def test_train_listener_from_a_listening_test_with_too_few_answers(library, tmp_path):
    from mirsim.datasets import load_collection
    from mirsim.listening.design import design_test, write_test
    from mirsim.listening.store import ANSWERS_FILE, AnswerStore

    items = load_collection(str(library)).items
    names = items["id"].astype(str).tolist()
    test = write_test(design_test("triplets", names, names, n=4, listeners=["ann", "bob"]),
                      tmp_path / "test")
    with AnswerStore(test / ANSWERS_FILE) as store:
        for trial in range(3):
            store.add_answer("ann", trial, {"choice": "b", "confidence": 2})
    r = _train(library, test, "bob", tmp_path)
    assert r.exit_code == 2 and "no answers by listener 'bob' (listeners who answered: ann)" \
        in r.stderr.replace("\n", "")
    r = _train(library, test, "ann", tmp_path)
    assert r.exit_code == 2
    assert "listener 'ann' has 3 triplets among the items, fewer than the 10" in \
        r.stderr.replace("\n", "")
