"""Agreement with individual listeners: triplets of groupings, their scores, the human
reference, and a run scored against listeners fold by fold.

Hand-computed cases use four points on a line and three listeners::

    item        0  1  2  3
    x           0  1  3  4
    listener A  0  0  1  1     (two groups: {0, 1}, {2, 3})
    listener B  0  0  1  1
    listener C  0  1  1  0     ({0, 3}, {1, 2})

A's (and B's) 8 triplets all agree with the line (d(0,1) = 1 < d(0,2) = 3 ...). C's 8 triplets:
(0,3,1) (0,3,2) (3,0,1) (3,0,2) disagree (d(0,3) = 4 is the largest), (1,2,0) disagrees
(d(1,2) = 2 > d(1,0) = 1), (1,2,3) agrees (2 < 3), (2,1,0) agrees (2 < 3), (2,1,3) disagrees
(2 > 1): 2 of 8.
"""

from __future__ import annotations

import itertools
import logging

import numpy as np
import pandas as pd
import pytest

from mirsim.datasets import Collection
from mirsim.datasets.listeners import (JudgedTriplets, ListenerGroupings,
                                       read_listener_groupings)
from mirsim.evaluation.judgments import (ListenerAgreement, ListenerJudgments, coassociation,
                                         distance_outcomes, grouping_triplets,
                                         high_agreement_triplets, human_reference,
                                         sum_agreements, triplet_agreement,
                                         triplet_agreement_high, triplet_outcomes,
                                         triplet_shares)
from mirsim.evaluation.protocols import split_indices
from mirsim.experiments import FeatureSet, load_features, run_experiment
from mirsim.experiments.judgments import judgments_for

LINE = np.array([[0.0], [1.0], [3.0], [4.0]])
GROUPS = np.array([[0, 0, 1, 1], [0, 0, 1, 1], [0, 1, 1, 0]])


def brute_force_triplets(groups) -> list[tuple[int, int, int]]:
    """The definition, one triplet at a time (the reference for the vectorised enumeration)."""
    n = len(groups)
    return [(a, p, q) for a, p, q in itertools.product(range(n), repeat=3)
            if a != p and groups[a] >= 0 and groups[a] == groups[p]
            and groups[q] >= 0 and groups[q] != groups[a]]


# -- enumeration ------------------------------------------------------------------------------
@pytest.mark.parametrize("seed", range(5))
def test_grouping_triplets_are_exactly_the_definition(seed):
    rng = np.random.default_rng(seed)
    groups = rng.integers(-1, 4, 14)  # some items not grouped
    assert [tuple(t) for t in grouping_triplets(groups).tolist()] == brute_force_triplets(groups)


def test_grouping_triplets_in_blocks_equal_one_block(monkeypatch):
    groups = np.random.default_rng(0).integers(0, 5, 30)
    whole = grouping_triplets(groups)
    monkeypatch.setattr("mirsim.evaluation.judgments._MASK_BUDGET", 30 * 30 * 2)  # 2 anchors
    assert np.array_equal(grouping_triplets(groups), whole)


def test_grouping_triplets_of_degenerate_groupings():
    assert grouping_triplets([0, 0, 0]).shape == (0, 3)  # one group: no negative
    assert grouping_triplets([0, 1, 2]).shape == (0, 3)  # singletons: no positive
    assert grouping_triplets([-1, -1]).shape == (0, 3)
    with pytest.raises(ValueError, match="integer array"):
        grouping_triplets([0.5, 1.0])


def test_the_real_listeners_give_their_number_of_triplets(cyberlioz_dir):
    g = read_listener_groupings(cyberlioz_dir / "listener_clusters.csv")
    for groups in g.groups:
        sizes = np.bincount(groups)
        expected = int(np.sum(sizes * (sizes - 1) * (len(groups) - sizes)))
        assert len(grouping_triplets(groups)) == expected


# -- shares and high agreement ----------------------------------------------------------------
def test_triplet_shares_count_each_listener_once():
    a = grouping_triplets(GROUPS[0])
    t, s = triplet_shares([a, np.concatenate([a, a]), grouping_triplets(GROUPS[2])])
    share = dict(zip(map(tuple, t.tolist()), s.tolist()))
    assert share[(0, 1, 2)] == pytest.approx(2 / 3) and share[(0, 3, 1)] == pytest.approx(1 / 3)
    assert len(t) == 16 and s.max() == pytest.approx(2 / 3)


def test_high_agreement_counts_listeners_not_rounded_shares():
    # 10 listeners: 9 give the triplets of one grouping, one another: 9/10 is "at least 90 %"
    per = [grouping_triplets([0, 0, 1])] * 9 + [grouping_triplets([0, 1, 1])]
    high = high_agreement_triplets(per, 0.9)
    assert [len(t) for t in high] == [2] * 9 + [0]
    assert [len(t) for t in high_agreement_triplets(per, 0.95)] == [0] * 10


@pytest.mark.parametrize("dense", [True, False])
def test_high_agreement_is_the_same_either_way_of_counting(dense, monkeypatch):
    if not dense:  # as past the dense array's limit: counted with numpy.unique
        monkeypatch.setattr("mirsim.evaluation.judgments._DENSE_TRIPLETS", 1000)
    n = 40
    rng = np.random.default_rng(n)
    base = rng.integers(0, 4, n)
    groupings = [np.where(rng.random(n) < 0.1, rng.integers(0, 4, n), base) for _ in range(5)]
    per = [grouping_triplets(g) for g in groupings]
    high = high_agreement_triplets(per, 0.8)
    t, s = triplet_shares(per)
    pooled = {tuple(x) for x in t[s >= 0.8].tolist()}
    for listener, h in zip(per, high):
        mine = {tuple(x) for x in listener.tolist()}
        assert {tuple(x) for x in h.tolist()} == mine & pooled


# -- outcomes and agreement -------------------------------------------------------------------
def test_outcomes_of_the_line_and_ties():
    d = np.abs(LINE - LINE.T)
    assert distance_outcomes(d, [[0, 1, 2], [1, 0, 2], [1, 2, 0]]).tolist() == [1.0, 1.0, 0.0]
    tied = np.array([[0.0], [1.0], [-1.0]])
    assert triplet_outcomes(tied, [[0, 1, 2]]).tolist() == [0.5]


def test_cosine_agreement_uses_directions():
    emb = np.array([[1.0, 0.0], [10.0, 1.0], [0.0, 1.0]])  # 1 is far from 0 but points its way
    assert triplet_outcomes(emb, [[0, 1, 2]], "euclidean").tolist() == [0.0]
    assert triplet_outcomes(emb, [[0, 1, 2]], "cosine").tolist() == [1.0]


def test_triplet_agreement_per_listener_by_hand():
    per = [grouping_triplets(g) for g in GROUPS]
    r = triplet_agreement(LINE, per)
    assert r.per_listener.tolist() == [1.0, 1.0, 0.25]
    assert r.mean == pytest.approx(0.75) and r.std == pytest.approx(np.std([1, 1, 0.25], ddof=1))
    assert r.counts.tolist() == [8, 8, 8]


def test_only_held_out_anchors_count():
    per = [grouping_triplets(g) for g in GROUPS]
    # anchors 1 and 2: C's (1,2,0) (1,2,3) (2,1,0) (2,1,3) -> 0 1 1 0
    r = triplet_agreement(LINE, per, anchors_held_out=[1, 2])
    assert r.per_listener.tolist() == [1.0, 1.0, 0.5] and r.counts.tolist() == [4, 4, 4]
    mask = np.array([False, True, True, False])
    assert triplet_agreement(LINE, per, mask).hits.tolist() == r.hits.tolist()
    none = triplet_agreement(LINE, per, anchors_held_out=np.array([], dtype=int))
    assert np.isnan(none.mean) and np.isnan(none.per_listener).all()


def test_weighted_agreement():
    t = [np.array([[0, 1, 2], [1, 2, 0]])]  # agrees, disagrees
    assert triplet_agreement(LINE, t, weights=[np.array([3.0, 1.0])]).mean == 0.75
    with pytest.raises(ValueError, match="non-negative"):
        triplet_agreement(LINE, t, weights=[np.array([-1.0, 1.0])])


def test_high_agreement_score_by_hand():
    per = [grouping_triplets(g) for g in GROUPS]
    # at least 2 of 3: the 8 triplets of A and B; C gives none of them
    r = triplet_agreement_high(LINE, per, threshold=0.6)
    assert r.counts.tolist() == [8, 8, 0] and r.per_listener[:2].tolist() == [1.0, 1.0]
    assert np.isnan(r.per_listener[2]) and r.mean == 1.0 and r.std == 0.0


def test_agreements_of_folds_add_up_to_the_whole():
    per = [grouping_triplets(g) for g in GROUPS]
    folds = [triplet_agreement(LINE, per, anchors_held_out=[i]) for i in range(4)]
    total = sum_agreements([{"m": f} for f in folds])["m"]
    whole = triplet_agreement(LINE, per)
    assert total.hits.tolist() == whole.hits.tolist()
    assert total.counts.tolist() == whole.counts.tolist()
    with pytest.raises(ValueError, match="cannot be added"):
        folds[0] + ListenerAgreement(np.zeros(2), np.zeros(2))


# -- the human reference ----------------------------------------------------------------------
def test_coassociation_ignores_listeners_who_did_not_group_the_pair():
    c = coassociation([[0, 0, -1], [0, 1, 1]])
    assert c[0, 1] == 0.5 and c[1, 2] == 1.0 and c[0, 2] == 0.0  # (1, 2): only the second
    assert np.isnan(coassociation([[0, -1]])[0, 1])


def test_human_reference_by_hand():
    # A from B and C: share(0,1) = 1/2, share(0,2) = 0, share(0,3) = 1/2 ... -> d = 1 - share
    r = human_reference(GROUPS)
    others_of_a = 1 - coassociation(GROUPS[1:])
    expected_a = distance_outcomes(others_of_a, grouping_triplets(GROUPS[0])).mean()
    assert r.per_listener[0] == pytest.approx(expected_a)
    # C from A and B, who agree with each other: d(0,1) = d(2,3) = 0 and every other pair is
    # at 1, so of C's 8 triplets 4 are ordered the other way round, e.g. (0, 3, 1), and 4
    # are ties, e.g. (0, 3, 2): 2 of 8
    assert r.per_listener[2] == 0.25
    with pytest.raises(ValueError, match="at least two listeners"):
        human_reference(GROUPS[:1])


def test_human_reference_of_the_16_listeners(cyberlioz_dir):
    g = read_listener_groupings(cyberlioz_dir / "listener_clusters.csv")
    j = ListenerJudgments.from_groupings(g.groups, g.listeners)
    human = j.human_reference()
    r = human["triplet_agreement"]
    assert len(r) == 16 and np.all(r.per_listener > 0.8) and 0.88 < r.mean < 0.96
    # a triplet given by >= 90 % of all listeners is given by >= 14 of any 15 others: they
    # order it the listener's way, so the reference is exactly 1 on the high set
    assert human["triplet_agreement_high"].per_listener.tolist() == [1.0] * 16
    assert all(0 < len(h) < len(t) for h, t in zip(j.high, j.triplets))


# -- a run scored against listeners -----------------------------------------------------------
def _toy_features(n_per_label: int = 6, seed: int = 0) -> FeatureSet:
    rng = np.random.default_rng(seed)
    labels = np.repeat(np.arange(3), n_per_label)
    n = len(labels)
    items = pd.DataFrame({"id": [f"s{i}" for i in range(n)], "label": labels,
                          "group": [f"s{i}" for i in range(n)]})
    X = rng.standard_normal((n, 4)) + 3 * labels[:, None]
    return FeatureSet(Collection("toy", items, [None] * n), "toy", X, labels,
                      items["group"].to_numpy(), np.arange(n))


def _toy_groupings(fs: FeatureSet, extra: tuple[str, ...] = ()) -> ListenerGroupings:
    rng = np.random.default_rng(1)
    labels = fs.labels
    noisy = np.where(rng.random(len(labels)) < 0.2, rng.integers(0, 3, len(labels)), labels)
    names = tuple(fs.collection.items["id"]) + extra
    pad = np.zeros(len(extra), dtype=int)
    return ListenerGroupings(("A", "B"), names,
                             np.stack([np.r_[labels, pad], np.r_[noisy, pad]]))


@pytest.mark.parametrize("protocol", ["group-kfold", "loo", "kfold"])
def test_every_triplet_is_counted_once_by_the_model_that_held_its_anchor_out(protocol):
    fs = _toy_features()
    j = judgments_for(fs, _toy_groupings(fs))
    result = run_experiment(fs, "euclidean", protocol, folds=3, judgments=j)
    listeners = result.to_json()["listeners"]
    assert listeners["listeners"] == ["A", "B"]
    # each fold's scores count the triplets of its test anchors; together, each triplet once
    totals = sum(np.asarray(s["triplet_agreement"].counts) for s in
                 result.protocol_result.fold_scores)
    assert totals.tolist() == j.scorer.n_triplets.tolist()
    tests = [te for _, te in split_indices(protocol, len(fs.X), fs.groups, 3)]
    for scores, test in zip(result.protocol_result.fold_scores, tests):
        anchors = [np.isin(t[:, 0], test).sum() for t in j.scorer.triplets]
        assert scores["triplet_agreement"].counts.tolist() == anchors
    m = result.to_json()["metrics"]["triplet_agreement"]
    assert 0.7 < m["mean"] <= 1.0  # well-separated labels: most triplets agree


def test_agreement_of_a_fold_is_that_of_its_own_model():
    """The per-fold score is the agreement of the embeddings that fold's model produced."""
    from mirsim.models import make_model

    fs = _toy_features()
    j = judgments_for(fs, _toy_groupings(fs))
    result = run_experiment(fs, "euclidean", "group-kfold", folds=3, judgments=j)
    for (train, test), scores in zip(split_indices("group-kfold", len(fs.X), fs.groups, 3),
                                     result.protocol_result.fold_scores):
        model = make_model("euclidean", seed=0).fit(fs.X[train], fs.labels[train])
        direct = triplet_agreement(model.transform(fs.X), j.scorer.triplets, test)
        assert scores["triplet_agreement"].hits.tolist() == direct.hits.tolist()


def test_sounds_missing_from_the_items_are_dropped_with_one_warning(caplog):
    fs = _toy_features()
    with caplog.at_level(logging.WARNING, logger="mirsim.experiments.judgments"):
        j = judgments_for(fs, _toy_groupings(fs, extra=("gone-1", "gone-2")))
    assert j.dropped == ["gone-1", "gone-2"]
    [record] = caplog.records
    assert "2 of its 20 sounds are not among the 18 items of toy" in record.getMessage()
    assert "\n" not in record.getMessage()
    full = judgments_for(fs, _toy_groupings(fs))
    assert j.scorer.n_triplets.tolist() == full.scorer.n_triplets.tolist()


def test_judgments_naming_no_item_are_refused():
    from mirsim.datasets.listeners import JudgmentsError

    fs = _toy_features()
    other = ListenerGroupings(("A",), ("x", "y", "z"), np.array([[0, 0, 1]]), "other.csv")
    with pytest.raises(JudgmentsError, match="other.csv: no triplet left among the items"):
        judgments_for(fs, other)


def test_a_triplet_file_is_one_listener_without_high_set_or_reference():
    fs = _toy_features()
    t = JudgedTriplets(("s0", "s1", "s17"), np.array([[0, 1, 2], [2, 1, 0]]), None, "t.csv")
    j = judgments_for(fs, t)
    result = run_experiment(fs, "euclidean", "loo", judgments=j).to_json()
    assert set(result["metrics"]) >= {"triplet_agreement"}
    assert "triplet_agreement_high" not in result["metrics"]
    assert result["listeners"]["listeners"] == ["t.csv"]
    assert result["listeners"]["human_reference"] is None
    # s0 and s1 share a label, s17 is of another: (s0, s1, s17) agrees, (s17, s1, s0) is a
    # coin toss between two far items: the mean is one of 0.5 or 1
    assert result["metrics"]["triplet_agreement"]["mean"] in (0.5, 1.0)


def test_the_real_sounds_and_listeners(cyberlioz_dir, feature_cache):
    from mirsim.datasets import load_collection

    fs = load_features(load_collection("cyberlioz", root=cyberlioz_dir), "mfcc",
                       cache=feature_cache)
    g = read_listener_groupings(cyberlioz_dir / "listener_clusters.csv")
    j = judgments_for(fs, g)
    assert j.dropped == [] and j.scorer.n_triplets.tolist() == [
        len(grouping_triplets(x)) for x in g.groups]
    m = run_experiment(fs, "euclidean", "group-kfold", 5, judgments=j).to_json()["metrics"]
    human = j.human["triplet_agreement"].mean
    assert 0.6 < m["triplet_agreement"]["mean"] < human  # better than chance, below people
    assert m["triplet_agreement_high"]["mean"] > m["triplet_agreement"]["mean"]
