"""The analysis of a listening test's answers against small examples worked by hand, and
``mirsim report TEST_DIR`` on simulated tests (answers given through the web app)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from mirsim.cli import app
from mirsim.listening import analysis as A
from mirsim.listening.app import create_listen_app, issue_links
from mirsim.listening.design import ListeningTest, design_test, load_test, write_test
from mirsim.listening.store import ANSWERS_FILE

M = A.MISSING


# -- triplets ------------------------------------------------------------------------------------
def test_pair_agreement_counts_only_shared_trials():
    codes = [[0, 1, 1, 0, M],
             [0, 1, 0, M, 1],
             [1, M, M, M, M]]
    a = A.pair_agreement(codes)
    # 0 and 1 share trials 0-2 and agree on two; 0 and 2 share trial 0 and disagree
    assert a.shared.tolist() == [[4, 3, 1], [3, 4, 1], [1, 1, 1]]
    assert a.share[0, 1] == pytest.approx(2 / 3) and a.share[0, 2] == 0.0
    assert a.share[1, 2] == 0.0 and a.share[2, 2] == 1.0
    assert np.isnan(A.pair_agreement([[0, M], [M, 1]]).share[0, 1])


def test_krippendorff_alpha_of_krippendorffs_own_example():
    # Krippendorff (2011), "Computing Krippendorff's alpha-reliability": 4 observers, 12
    # units, nominal values 1-5, missing data; alpha = 0.743 (unit 12 has one value only)
    x = M
    data = [[1, 2, 3, 3, 2, 1, 4, 1, 2, x, x, x],
            [1, 2, 3, 3, 2, 2, 4, 1, 2, 5, x, 3],
            [x, 3, 3, 3, 2, 3, 4, 2, 2, 5, 1, x],
            [1, 2, 3, 3, 2, 4, 4, 1, 2, 5, 1, x]]
    assert A.krippendorff_alpha(data) == pytest.approx(0.743, abs=5e-4)
    assert A.krippendorff_alpha([[0, 1, 0, 1], [0, 1, 0, 1]]) == pytest.approx(1.0)
    # two listeners who always disagree on balanced answers: below chance
    assert A.krippendorff_alpha([[0, 1, 0, 1], [1, 0, 1, 0]]) < 0
    assert np.isnan(A.krippendorff_alpha([[0, M], [M, 0]]))  # no trial answered twice


def test_majority_reference_predicts_each_listener_from_the_others():
    codes = [[0, 0, 1, 1],
             [0, 1, 1, M],
             [0, 0, 0, M],
             [1, 1, 1, M]]
    r = A.majority_reference(codes)
    # listener 0: trial 0 others 0,0,1 -> 0 (hit); 1: 1,0,1 -> 1 (miss); 2: 1,0,1 -> 1 (hit);
    # 3: nobody else -> not scored
    # listener 1: 0,0,1 -> hit; 0,0,1 -> miss; 1,0,1 -> hit
    # listener 2: 0,0,1 -> hit; 0,1,1 -> miss; 1,1,1 -> miss
    # listener 3: 0,0,0 -> miss; 0,1,0 -> miss; 1,1,0 -> hit
    assert r.hits.tolist() == [2.0, 2.0, 1.0, 1.0]
    assert r.counts.tolist() == [3.0, 3.0, 3.0, 3.0]
    tie = A.majority_reference([[0], [0], [1]])  # listener 0: others 0 and 1, a tie
    assert tie.hits.tolist() == [0.5, 0.5, 0.0]


def test_true_rates_per_condition_and_expected_items():
    test = ListeningTest("triplets", [], [{"a": 0, "b": 1, "c": 2, "condition": "drums",
                                           "positive": "b"},
                                          {"a": 0, "b": 1, "c": 2, "condition": "bass",
                                           "positive": "c"},
                                          {"a": 0, "b": 1, "c": 2}], ["x"])
    assert A.expected_choices(test).tolist() == [0, 1, M]
    assert A.trial_conditions(test) == ["drums", "bass", "all"]
    correct = [True, True, True, False, False, True, False]
    conditions = ["drums", "drums", "bass", "bass", "bass", "drums", "drums"]
    rates = A.condition_true_rates(correct, conditions)
    assert list(rates) == ["drums", "bass"]
    assert (rates["drums"].rate, rates["drums"].n) == (0.75, 4)
    assert rates["bass"] == A.true_rate(1, 3)
    with pytest.raises(A.MirsimError):
        A.condition_true_rates([True], ["a", "b"])


def test_answers_become_arrays():
    test = ListeningTest("triplets", [], [{"a": 0, "b": 1, "c": 2}] * 3, ["x", "y"])
    answers = [{"listener": "y", "trial": 2, "answer": {"choice": "b", "confidence": 1}},
               {"listener": "x", "trial": 0, "answer": {"choice": "c", "confidence": 3}}]
    choices, confidence = A.triplet_choices(test, answers)
    assert choices.tolist() == [[1, M, M], [M, M, 0]]
    assert A.confidence_counts(confidence, 3).tolist() == [[0, 0, 1], [1, 0, 0]]


# -- free sorting --------------------------------------------------------------------------------
def test_rand_matrix_and_groups():
    g = [[0, 0, 1, 1], [5, 5, 7, 7], [0, 1, 0, 1], [0, 0, 1, M]]
    R = A.rand_matrix(g)
    # the same partition under other codes: 1; crossed 2 x 2 partitions of 4: -0.5 (by hand:
    # index 0, expected 2 * 2 / 6, maximum 2); listener 3 compared on the three sounds grouped
    assert R[0, 1] == 1.0 and R[0, 2] == pytest.approx(-0.5) and R[0, 3] == 1.0
    assert A.groups_per_listener(g).tolist() == [2, 2, 2, 2]
    mean, sd, n = A.upper_mean_std(R[:3, :3])
    assert n == 3 and mean == pytest.approx((1 - 0.5 - 0.5) / 3)


def test_leave_one_out_consensus():
    same = [0, 0, 1, 1]
    g = [same, same, same, [0, 1, 2, 3]]
    # the three alike: the others' co-association cut at their median 2 groups is their own
    # partition; the fourth, all singletons, has index 0 against it (no pair in common)
    assert A.leave_one_out_rand(g).tolist() == pytest.approx([1.0, 1.0, 1.0, 0.0])
    assert A.leave_one_out_rand(g, n_clusters=4)[:3].tolist() == pytest.approx([0.0] * 3)
    with pytest.raises(A.MirsimError, match="two listeners"):
        A.leave_one_out_rand([same])


# -- pairwise ------------------------------------------------------------------------------------
def test_rating_correlations_and_means():
    nan = np.nan
    R = [[0.1, 0.2, 0.3, 0.4, nan],
         [0.9, 0.8, 0.7, 0.6, 0.5],
         [0.5, 0.5, nan, nan, 0.5],
         [nan, nan, 0.1, 0.9, 0.2]]
    rho = A.rating_correlations(R)
    assert rho[0, 1] == pytest.approx(-1.0)
    assert np.isnan(rho[0, 2])  # two pairs in common, under MIN_SHARED_RATINGS
    assert np.isnan(rho[1, 2])  # listener 2 rates every shared pair alike
    assert rho[1, 3] == pytest.approx(-0.5)  # ranks (3, 2, 1) against (1, 3, 2)
    mean, n = A.mean_ratings(R)
    assert n.tolist() == [3, 3, 3, 3, 3]
    assert mean.tolist() == pytest.approx([0.5, 0.5, 1.1 / 3, 1.9 / 3, 0.4])


# -- mirsim report TEST_DIR ---------------------------------------------------------------------
def _sounds(tmp_path: Path, n: int) -> tuple[list[str], list[str]]:
    names = [f"s{i}" for i in range(n)]
    return names, [str(tmp_path / f"{name}.wav") for name in names]


def _answer(test_dir: Path, listener: str, answers: dict[int, dict]) -> None:
    """Give ``answers`` (trial -> answer) as ``listener`` through the web app."""
    token = issue_links(test_dir)[listener]
    client = TestClient(create_listen_app(test_dir), base_url="http://127.0.0.1")
    for trial, answer in answers.items():
        r = client.post(f"/api/t/{token}/answers", json={"trial": trial, "answer": answer})
        assert r.status_code == 200, r.text


def _report(test_dir: Path, *options: str):
    return CliRunner().invoke(app, ["report", str(test_dir), *options])


def test_report_of_a_triplet_test_with_conditions(tmp_path: Path):
    names, paths = _sounds(tmp_path, 6)
    test = design_test("triplets", names, paths, n=8, seed=3, listeners=["ann", "bob", "cy"])
    for k, trial in enumerate(test.trials):  # half drums, half bass; the positive is B
        trial.update(condition="drums" if k < 4 else "bass", positive="b")
    d = write_test(test, tmp_path / "test")
    picks = {"ann": "bbbbbbcc", "bob": "bbbcbbcc", "cy": "bbbbbccc"}
    for listener, choices in picks.items():
        _answer(d, listener, {k: {"choice": c, "confidence": 1 + k % 3}
                              for k, c in enumerate(choices)})
    r = _report(d, "--out", str(tmp_path / "page" / "listen.html"))
    assert r.exit_code == 0, r.output
    page = (tmp_path / "page" / "listen.html").read_text()
    # drums: 11 of 12 answers chose B; bass: 5 of 12 (worked from `picks`)
    drums, bass = A.true_rate(11, 12), A.true_rate(5, 12)
    for rate in (drums, bass):
        assert f"{rate.rate:.3f}</td><td class=\"num\">{rate.low:.3f} – {rate.high:.3f}" in page
    # ann-bob agree on 7 of 8, ann-cy on 7, bob-cy on 6
    share = np.array([7, 7, 6]) / 8
    assert f"{share.mean():.3f} ± {share.std(ddof=1):.3f} over 3 pair(s)" in page
    codes = [[0 if c == "b" else 1 for c in picks[x]] for x in picks]
    assert f"{A.krippendorff_alpha(codes):.3f}." in page
    assert {p.name for p in (tmp_path / "page").glob("*.png")} == {
        "listen-agreement.png", "listen-reference.png", "listen-true-rates.png"}
    assert "<script" not in page and "http" not in page.split("</style>")[1]


def test_report_of_a_per_instrument_listening_set(tmp_path: Path):
    from mirsim.experiments.per_instrument import listening_design

    D = [[0, 1, 5, 5], [1, 0, 5, 5], [5, 5, 0, 1], [5, 5, 1, 0]]
    mix = [[0, 5, 1, 5], [5, 0, 5, 1], [1, 5, 0, 5], [5, 1, 5, 0]]
    songs = ["w", "x", "y", "z"]
    cell = lambda d: {"trial-0": {"songs": songs, "song_distances": d}}  # noqa: E731
    test = listening_design({"cells": {"mix": cell(mix), "drums": cell(D)}}, "drums",
                            dict(zip(songs, _sounds(tmp_path, 4)[1])), n_sets=2, top=1,
                            listeners=["ann"])
    d = write_test(test, tmp_path / "drums")
    right = test.trials[0]["positive"]
    wrong = "b" if test.trials[1]["positive"] == "c" else "c"
    _answer(d, "ann", {0: {"choice": right, "confidence": 3},
                       1: {"choice": wrong, "confidence": 2}})
    r = _report(d)
    assert r.exit_code == 0, r.output
    page = (d / "report.html").read_text()
    rate = A.true_rate(1, 2)
    assert f"<td>drums</td><td class=\"num\">2</td><td class=\"num\">{rate.rate:.3f}" in page
    assert "no two listeners to compare" in page


def test_report_of_random_triplets_says_why_there_are_no_true_rates(tmp_path: Path):
    names, paths = _sounds(tmp_path, 5)
    d = write_test(design_test("triplets", names, paths, n=2, listeners=["ann"]),
                   tmp_path / "t")
    _answer(d, "ann", {0: {"choice": "c", "confidence": 1}})
    r = _report(d)
    assert r.exit_code == 0 and "true rates left out" in r.output
    assert "No true rates" in (d / "report.html").read_text()
    assert not (d / "report-true-rates.png").exists()


def test_report_bad_input_is_one_line(tmp_path: Path):
    names, paths = _sounds(tmp_path, 5)
    d = write_test(design_test("pairwise", names, paths, n=3), tmp_path / "t")
    for directory, message in ((d, "no answers yet"), (tmp_path / "nothing", "no such run"),
                               (tmp_path, "")):
        r = _report(directory)
        assert r.exit_code == 2 and len(r.stderr.strip().splitlines()) == 1, r.output
        assert message in r.stderr
    (d / ANSWERS_FILE).unlink()
    r = _report(d)
    assert r.exit_code == 2 and "no answer database" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1
    assert load_test(d).kind == "pairwise"


def test_report_of_the_cyberlioz_listeners_as_a_free_sorting_test(cyberlioz_dir, tmp_path):
    """The 16 Cyberlioz listeners' groupings given as the answers of a free-sorting test."""
    from itertools import combinations

    from sklearn.metrics import adjusted_rand_score

    from mirsim.datasets.listeners import read_listener_groupings
    from mirsim.listening.design import sounds_of_data
    from mirsim.listening.store import AnswerStore

    g = read_listener_groupings(cyberlioz_dir / "listener_clusters.csv")
    sounds = sounds_of_data(str(cyberlioz_dir))
    d = write_test(design_test("free-sorting", sounds["names"], sounds["paths"],
                               listeners=list(g.listeners)), tmp_path / "cyberlioz")
    item = {Path(name).stem: i for i, name in enumerate(sounds["names"])}
    with AnswerStore(d / ANSWERS_FILE) as store:
        for listener, codes in zip(g.listeners, g.groups):
            store.add_answer(listener, 0, {"groups": [
                [item[f] for f, c in zip(g.fnames, codes) if c == k] for k in np.unique(codes)]})
    r = _report(d)
    assert r.exit_code == 0, r.output
    page = (d / "report.html").read_text()
    pairs = [adjusted_rand_score(a, b) for a, b in combinations(g.groups, 2)]
    assert f"{np.mean(pairs):.3f} ± {np.std(pairs, ddof=1):.3f} over 120 pair(s)" in page
    # a listener is closer to the consensus of the 15 others than to another listener
    assert A.leave_one_out_rand(g.groups).mean() > np.mean(pairs) + 0.05
