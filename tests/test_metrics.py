"""Hand-computed checks of mirsim.evaluation.metrics.

Most tests use six points on a line::

    item    0  1  2  3  4  5
    x       0  1  2  4  7  8
    label   0  0  1  1  0  1
    group   0  0  1  2  3  3

Rankings (nearest first; equal distances ordered by item index):

    query 0: 1(d1) 2(d2) 3(d4) 4(d7) 5(d8)   labels 0 1 1 0 1   relevant 1 0 0 1 0
    query 1: 0(d1) 2(d1) 3(d3) 4(d6) 5(d7)   labels 0 1 1 0 1   relevant 1 0 0 1 0
    query 2: 1(d1) 0(d2) 3(d2) 4(d5) 5(d6)   labels 0 0 1 0 1   relevant 0 0 1 0 1
    query 3: 2(d2) 1(d3) 4(d3) 0(d4) 5(d4)   labels 1 0 0 0 1   relevant 1 0 0 0 1
    query 4: 5(d1) 3(d3) 2(d5) 1(d6) 0(d7)   labels 1 1 1 0 0   relevant 0 0 0 1 1
    query 5: 4(d1) 3(d4) 2(d6) 1(d7) 0(d8)   labels 0 1 1 0 0   relevant 0 1 1 0 0
"""

from __future__ import annotations

import math
import time
import tracemalloc

import numpy as np
import pytest
import torch

from mirsim.evaluation import (
    centroid_label_auc,
    ii_p_at_k,
    knn_accuracy,
    map_at_r,
    p_at_1,
    p_at_k,
    recall_at_k,
    retrieval_metrics,
    triplet_score,
)
from mirsim.evaluation.metrics import MEMORY_BUDGET

X = np.array([[0.0], [1.0], [2.0], [4.0], [7.0], [8.0]])
LABELS = np.array([0, 0, 1, 1, 0, 1])
GROUPS = np.array([0, 0, 1, 2, 3, 3])
COUNTS = ("n_queries", "n_without_relevant")


def scores_of(metrics: dict) -> dict:
    """The metric values of a ``retrieval_metrics`` result, without its query counts."""
    return {k: v for k, v in metrics.items() if k not in COUNTS}


def clustered(n_per_class: int, n_classes: int, dim: int, seed: int,
              spread: float = 2.0) -> tuple[np.ndarray, ...]:
    """Gaussian clusters (unit noise) whose centres have standard deviation ``spread``."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((n_classes, dim)) * spread
    labels = np.repeat(np.arange(n_classes), n_per_class)
    emb = centres[labels] + rng.standard_normal((len(labels), dim))
    groups = labels * 10 + rng.integers(0, 3, len(labels))  # 3 groups per class
    return emb, labels, groups


# -- P@k ------------------------------------------------------------------------------------
def test_p_at_1_hand_computed():
    # first relevant flags: 1 1 0 1 0 0
    assert p_at_1(X, LABELS) == pytest.approx(3 / 6)


def test_p_at_k_hand_computed():
    # k=2: 1/2 1/2 0 1/2 0 1/2 -> 2/6 ; k=3: 1/3 1/3 1/3 1/3 0 2/3 -> 2/6
    assert p_at_k(X, LABELS, k=2) == pytest.approx(1 / 3)
    assert p_at_k(X, LABELS, k=3) == pytest.approx(1 / 3)
    # k=1 is P@1
    assert p_at_k(X, LABELS, k=1) == pytest.approx(0.5)


def test_labels_may_be_strings():
    names = np.array(["a", "a", "b", "b", "a", "b"])
    assert p_at_k(X, names, k=2) == pytest.approx(1 / 3)


# -- inter-IMT precision -------------------------------------------------------------------
def test_ii_p_at_k_hand_computed_and_differs_from_p_at_k():
    # Rankings without the query's own group (k=2):
    # q0 (g0, drop 1): 2 3 -> labels 1 1 -> 0      q1 (g0, drop 0): 2 3 -> 0
    # q2 (g1): 1 0 -> labels 0 0 -> 0              q3 (g2): 2 1 -> labels 1 0 -> 1/2
    # q4 (g3, drop 5): 3 2 -> labels 1 1 -> 0      q5 (g3, drop 4): 3 2 -> labels 1 1 -> 1
    # mean = 1.5 / 6 = 0.25, while P@2 = 1/3
    assert ii_p_at_k(X, LABELS, GROUPS, k=2) == pytest.approx(0.25)
    assert p_at_k(X, LABELS, k=2, groups=GROUPS, exclude_same_group=True) == pytest.approx(0.25)
    assert p_at_k(X, LABELS, k=2, groups=GROUPS) == pytest.approx(1 / 3)


def test_ii_p_at_k_equals_p_at_k_when_every_item_is_its_own_group():
    assert ii_p_at_k(X, LABELS, np.arange(6), k=2) == pytest.approx(1 / 3)


def test_exclude_same_group_needs_groups():
    with pytest.raises(ValueError, match="groups"):
        p_at_k(X, LABELS, exclude_same_group=True)


# -- MAP@R ---------------------------------------------------------------------------------
def test_map_at_r_hand_computed_six_points():
    # every label has 3 items, so R = 2 for every query; AP@R = (1/2) sum_{i<=2} P(i) rel(i)
    # q0: rel 1 0 -> 1/2 ; q1: 1/2 ; q2: 0 0 -> 0 ; q3: 1 0 -> 1/2 ; q4: 0 ; q5: 0 1 -> (1/2)(1/2)
    # mean = (0.5 + 0.5 + 0 + 0.5 + 0 + 0.25) / 6
    assert map_at_r(X, LABELS) == pytest.approx(1.75 / 6)


def test_map_at_r_known_ranking_r3():
    # query 0 (label A) ranks 1(A) 2(B) 3(A) 4(A); R = 3 -> AP@R = (1/3)(1/1 + 0 + 2/3) = 5/9
    emb = np.array([[0.0], [1.0], [2.0], [3.0], [5.0]])
    labels = np.array(["A", "A", "B", "A", "A"])
    assert map_at_r(emb, labels, queries=[0]) == pytest.approx(5 / 9)


def test_map_at_r_r2_perfect_and_half():
    # query 0 (label 0): ranking 1(0) 2(0) -> AP@2 = (1/2)(1 + 1) = 1
    # query 3 (label 1): ranking 2(d2, 0) 4(d2.5, 1) 1(d3, 0) 0(d4, 0) 5(d5, 1), R = 2
    # -> AP@2 = (1/2)(0 + 1/2) = 1/4
    emb = np.array([[0.0], [1.0], [2.0], [4.0], [6.5], [9.0]])
    labels = np.array([0, 0, 0, 1, 1, 1])
    assert map_at_r(emb, labels, queries=[0]) == pytest.approx(1.0)
    assert map_at_r(emb, labels, queries=[3]) == pytest.approx(0.25)


# -- R@k ------------------------------------------------------------------------------------
def test_recall_at_k_hand_computed_six_points():
    # first relevant rank of each query (from the rankings above): q0 1, q1 1, q2 3, q3 1,
    # q4 4, q5 2 -> R@1 3/6, R@2 4/6, R@3 5/6, R@4 6/6
    assert [recall_at_k(X, LABELS, k) for k in (1, 2, 3, 4)] == pytest.approx(
        [3 / 6, 4 / 6, 5 / 6, 1.0])
    assert recall_at_k(X, LABELS, 1) == p_at_1(X, LABELS)


def test_recall_at_k_rules_of_queries_and_candidates():
    # q0, q3 against candidates 0, 2: q0 has no relevant candidate (left out); q3 ranks
    # 2(d2, label 1) first -> R@1 = 1 over q3 alone
    assert recall_at_k(X, LABELS, 1, queries=[0, 3], candidates=[0, 2]) == 1.0
    # q4 against 3, 5 only: 5 (label 1) then 3 (label 1), no label-0 candidate -> NaN
    assert math.isnan(recall_at_k(X, LABELS, 2, queries=[4], candidates=[3, 5]))
    # q4 against 0, 5 with k = 5: only two candidates, 0 (label 0) is second -> hit
    assert recall_at_k(X, LABELS, 5, queries=[4], candidates=[0, 5]) == 1.0
    # cosine: directions only.  (1, 0) and (10, 1) point the same way, (0, 1) does not
    emb = np.array([[1.0, 0.0], [10.0, 1.0], [0.0, 1.0], [0.0, 3.0]])
    assert recall_at_k(emb, [0, 0, 1, 1], 1, distance="cosine") == 1.0
    assert recall_at_k(emb, [0, 0, 1, 1], 1) == 0.5  # Euclidean: 0's nearest is 2


def test_recall_at_k_agrees_with_brute_force_on_ties():
    rng = np.random.default_rng(7)
    emb = rng.integers(0, 6, (120, 2)).astype(float)
    labels = rng.integers(0, 8, 120)
    for k in (1, 2, 4, 8):
        expected = []
        for q in range(len(emb)):
            ranked = sorted((float(np.sum((emb[q] - emb[c]) ** 2)), c) for c in range(len(emb))
                            if c != q)
            rel = [labels[c] == labels[q] for _, c in ranked]
            if any(rel):
                expected.append(float(any(rel[:k])))
        assert recall_at_k(emb, labels, k) == pytest.approx(np.mean(expected), abs=1e-12)


# -- label AUC from class centroids ------------------------------------------------------------
def test_centroid_label_auc_hand_computed():
    # centroids: a at 0, b at 10, c at 20 (from two training items each)
    train = np.array([[-1.0], [1.0], [9.0], [11.0], [19.0], [21.0]])
    train_labels = ["a", "a", "b", "b", "c", "c"]
    queries = np.array([[2.0], [12.0], [9.0], [30.0]])
    query_labels = ["a", "a", "b", "c"]
    # scores -|q - mu|:       q0   q1   q2   q3
    #   a (positives q0, q1): -2  -12   -9  -30  -> pairs (q0,q2) (q0,q3) (q1,q3) right,
    #                                              (q1,q2) wrong -> 3/4
    #   b (positive q2):      -8   -2   -1  -20  -> above all three -> 1
    #   c (positive q3):     -18   -8  -11  -10  -> above q0 and q2, below q1 -> 2/3
    expected = (3 / 4 + 1 + 2 / 3) / 3
    assert centroid_label_auc(train, train_labels, queries, query_labels) == pytest.approx(
        expected)


def test_centroid_label_auc_counts_ties_half_and_skips_undefined_labels():
    # centroids a at 0, b at 10, z at 50.  Label z has no query: not scored.  Label y has a
    # query (at 3) but no centroid: that query is a negative of a and b.
    train = np.array([[0.0], [10.0], [50.0]])
    queries, labels = np.array([[-1.0], [1.0], [3.0]]), ["a", "b", "y"]
    # a: scores -1 (a), -1 (b), -3 (y): positive vs b tie 1/2, vs y right 1 -> 3/4
    # b: scores -11 (a), -9 (b), -7 (y): positive above a, below y -> 1/2
    auc = centroid_label_auc(train, ["a", "b", "z"], queries, labels)
    assert auc == pytest.approx((3 / 4 + 1 / 2) / 2)
    # a single label among the queries: no negatives, nothing defined
    assert math.isnan(centroid_label_auc(train, ["a", "b", "z"], queries[:1], ["a"]))


def test_centroid_label_auc_cosine_uses_directions():
    # a's items point along x (one of them long), b's along y; the a query (2, 0.5) points
    # nearly along x, the b query (30, 40) more along y: by cosine both are ranked right.
    # By Euclidean distance the long item drags a's centroid to (50.5, 0), nearer the b query,
    # and b's centroid (0, 1) is nearer the short a query: both ranked wrong.
    train = np.array([[1.0, 0.0], [100.0, 0.0], [0.0, 1.0], [0.0, 1.0]])
    queries = np.array([[2.0, 0.5], [30.0, 40.0]])
    args = (train, ["a", "a", "b", "b"], queries, ["a", "b"])
    assert centroid_label_auc(*args, distance="cosine") == 1.0
    assert centroid_label_auc(*args) == 0.0


def test_centroid_label_auc_bad_inputs():
    with pytest.raises(ValueError, match="dimensions"):
        centroid_label_auc(np.zeros((2, 2)), [0, 1], np.zeros((2, 3)), [0, 1])
    with pytest.raises(ValueError, match="one label per"):
        centroid_label_auc(np.zeros((2, 2)), [0], np.zeros((2, 2)), [0, 1])


# -- kNN accuracy ----------------------------------------------------------------------------
def test_knn_accuracy_hand_computed_with_ties_to_the_nearest():
    # k=3 neighbour groups: q0: 0 1 2 (tie -> 0, right)  q1: 0 1 2 (tie -> 0, right)
    # q2: 0 0 2 (0, wrong)  q3: 1 0 3 (tie -> 1, wrong)  q4: 3 2 1 (tie -> 3, right)
    # q5: 3 2 1 (tie -> 3, right)  -> 4/6.  Breaking ties towards the smallest group id instead
    # would make q4 and q5 wrong (2/6).
    assert knn_accuracy(X, GROUPS, k=3) == pytest.approx(4 / 6)


def test_knn_accuracy_majority():
    # k=5 for q2: groups of 1 0 3 4 5 = 0 0 2 3 3 -> tie between 0 and 3, nearest is 0: wrong
    # k=5 for q4: groups of 5 3 2 1 0 = 3 2 1 0 0 -> group 0 has the majority: wrong
    # k=1 for q4: group of 5 = 3: right
    assert knn_accuracy(X, GROUPS, k=5, queries=[2, 4]) == 0.0
    assert knn_accuracy(X, GROUPS, k=1, queries=[4]) == 1.0


# -- queries / candidates --------------------------------------------------------------------
def test_queries_and_candidates_restriction():
    # queries 0, 3; candidates 0 2 3 4.
    # q0: 2(d2) 3(d4) 4(d7) -> labels 1 1 0 ; q3: 2(d2) 4(d3) 0(d4) -> labels 1 0 0
    # P@1 = (0 + 1)/2 ; P@2 = (0 + 1/2)/2 ; MAP@R: q0 R=1 (item 4) -> 0, q3 R=1 (item 2) -> 1
    # ii-P@2: q0 (g0) 2 3 -> 0 ; q3 (g2) 2 4 -> 1/2 -> 0.25
    expected = {"p_at_1": 0.5, "p_at_2": 0.25, "ii_p_at_2": 0.25, "map_at_r": 0.5}
    by_index = retrieval_metrics(X, LABELS, GROUPS, queries=[3, 0], candidates=[4, 0, 2, 3], k=2)
    qmask = np.isin(np.arange(6), [0, 3])
    cmask = np.isin(np.arange(6), [0, 2, 3, 4])
    by_mask = retrieval_metrics(X, LABELS, GROUPS, queries=qmask, candidates=cmask, k=2)
    assert scores_of(by_index) == pytest.approx(expected)
    assert scores_of(by_mask) == pytest.approx(expected)
    assert by_index["n_queries"] == 2 and by_index["n_without_relevant"] == 0
    assert p_at_k(X, LABELS, k=2, queries=qmask, candidates=cmask) == pytest.approx(0.25)
    assert map_at_r(X, LABELS, queries=[0, 3], candidates=[0, 2, 3, 4]) == pytest.approx(0.5)


def test_fewer_candidates_than_k_scores_on_those_available():
    # query 0 with candidates 0 1 2: itself is dropped, two remain: 1 (label 0), 2 (label 1)
    # -> precision 1/2 (not 1/5)
    assert p_at_k(X, LABELS, k=5, queries=[0], candidates=[0, 1, 2]) == pytest.approx(0.5)
    assert retrieval_metrics(X, LABELS, k=5, queries=[0], candidates=[1, 2])["p_at_5"] == 0.5


def test_queries_without_a_relevant_candidate_are_left_out_of_every_metric():
    # queries 0, 3 ; candidates 0, 2.
    # q0: only candidate 2 (label 1); no other label-0 candidate (R = 0): left out of all
    # q3: 2(d2) 0(d4) -> P@1 = 1 ; R = 1 -> AP 1.  Every metric over q3 alone.
    m = retrieval_metrics(X, LABELS, queries=[0, 3], candidates=[0, 2])
    assert m["p_at_1"] == pytest.approx(1.0)
    assert m["map_at_r"] == pytest.approx(1.0)
    assert m["p_at_5"] == pytest.approx(0.5)  # q3's candidates 2, 0: one relevant of two
    assert (m["n_queries"], m["n_without_relevant"]) == (1, 1)
    assert p_at_1(X, LABELS, queries=[0, 3], candidates=[0, 2]) == pytest.approx(1.0)


def test_nan_when_no_query_counts():
    m = retrieval_metrics(X, LABELS, GROUPS, queries=[0], candidates=[0])
    assert all(math.isnan(v) for v in scores_of(m).values())
    assert (m["n_queries"], m["n_without_relevant"]) == (0, 1)
    assert math.isnan(p_at_k(X, LABELS, queries=[], candidates=None))
    assert math.isnan(knn_accuracy(X, GROUPS, queries=[1], candidates=[1]))
    # every candidate of query 0 is in its own group: ii-P@k undefined, P@1 defined (=1)
    assert math.isnan(ii_p_at_k(X, LABELS, GROUPS, queries=[0], candidates=[0, 1]))
    assert p_at_1(X, LABELS, queries=[0], candidates=[0, 1]) == 1.0
    # R = 0 for every query
    assert math.isnan(map_at_r(X, np.arange(6)))


def test_k_1_gives_three_keys():
    assert scores_of(retrieval_metrics(X, LABELS, GROUPS, k=1)) == pytest.approx(
        {"p_at_1": 0.5, "ii_p_at_1": 2 / 6, "map_at_r": 1.75 / 6})
    # ii-P@1: nearest outside the own group is relevant for q3 (item 2) and q5 (item 3) only


def test_ii_is_nan_without_groups():
    m = retrieval_metrics(X, LABELS, k=3)
    assert set(m) == {"p_at_1", "p_at_3", "ii_p_at_3", "map_at_r", *COUNTS}
    assert math.isnan(m["ii_p_at_3"])


# -- ties ------------------------------------------------------------------------------------
def test_ties_are_broken_by_item_index():
    # query 1 is at distance 1 from items 0 and 2: item 0 comes first
    line = np.array([[0.0], [1.0], [2.0]])
    assert p_at_1(line, [0, 0, 1], queries=[1]) == 1.0
    assert p_at_1(line, [1, 0, 0], queries=[1]) == 0.0
    # all points equal: every ranking is by index.  Nearest of q0 is 1, of the others 0.
    # labels 0 1 0 1 0 -> q0 wrong, q1 wrong, q2 right, q3 wrong, q4 right -> 2/5
    same = np.zeros((5, 3))
    labels = [0, 1, 0, 1, 0]
    assert p_at_1(same, labels) == pytest.approx(0.4)
    assert all(p_at_1(same, labels) == pytest.approx(0.4) for _ in range(3))


# -- retrieval_metrics -----------------------------------------------------------------------
def test_retrieval_metrics_matches_the_single_metrics_on_the_line():
    m = retrieval_metrics(X, LABELS, GROUPS, k=2)
    assert scores_of(m) == pytest.approx({"p_at_1": 0.5, "p_at_2": 1 / 3, "ii_p_at_2": 0.25,
                               "map_at_r": 1.75 / 6})


def test_chunked_and_unchunked_are_identical():
    emb, labels, groups = clustered(30, 7, 5, seed=1)
    rng = np.random.default_rng(2)
    queries = rng.choice(len(emb), 120, replace=False)
    candidates = rng.random(len(emb)) < 0.7
    for kwargs in ({}, {"queries": queries, "candidates": candidates}):
        whole = retrieval_metrics(emb, labels, groups, k=5, chunk_size=10_000, **kwargs)
        for chunk in (1, 7, 64):
            assert retrieval_metrics(emb, labels, groups, k=5, chunk_size=chunk,
                                     **kwargs) == whole
        assert retrieval_metrics(emb, labels, groups, k=5, **kwargs) == whole
        assert whole["p_at_5"] == p_at_k(emb, labels, k=5, **kwargs)
        assert whole["ii_p_at_5"] == ii_p_at_k(emb, labels, groups, k=5, **kwargs)
        assert whole["map_at_r"] == map_at_r(emb, labels, **kwargs)
        assert whole["p_at_1"] == p_at_1(emb, labels, **kwargs)


def _brute_force(emb, labels, groups, queries, candidates, k):
    """Straightforward per-query loops: sort (squared distance, index) pairs."""
    scores = {"p_at_1": [], "p_at_k": [], "ii_p_at_k": [], "map_at_r": [], "knn": []}
    for q in queries:
        ranked = sorted((float(np.sum((emb[q] - emb[c]) ** 2)), int(c)) for c in candidates
                        if c != q)
        ranked = [c for _, c in ranked]
        if not ranked:
            continue
        votes = [groups[c] for c in ranked[:k]]
        best = max(votes, key=lambda g: (votes.count(g), -votes.index(g)))
        scores["knn"].append(float(best == groups[q]))
        rel = [labels[c] == labels[q] for c in ranked]
        if not any(rel):  # no relevant candidate: left out of every label metric
            continue
        scores["p_at_1"].append(float(rel[0]))
        scores["p_at_k"].append(np.mean(rel[:k]))
        others = [labels[c] == labels[q] for c in ranked if groups[c] != groups[q]]
        if others:
            scores["ii_p_at_k"].append(np.mean(others[:k]))
        r = sum(rel)
        hits = np.cumsum(rel[:r])
        scores["map_at_r"].append(sum(hits[i] / (i + 1) for i in range(r) if rel[i]) / r)
    return {name: np.mean(v) if v else np.nan for name, v in scores.items()}


@pytest.mark.parametrize(("seed", "n_labels", "coord_range"),
                         [(0, 4, 4), (1, 10, 10), (2, 10, 10), (3, 10, None)])
def test_agrees_with_brute_force_on_data_full_of_ties(seed, n_labels, coord_range):
    # small integer coordinates: many exactly equal distances (None: continuous, no ties).
    # With 10 labels only the head of each ranking is sorted (the partial-sort path, with its
    # fallback on rows where the cut-off distance is tied); with 4 labels every row is sorted.
    rng = np.random.default_rng(seed)
    n = 150
    emb = (rng.integers(0, coord_range, (n, 2)).astype(float) if coord_range
           else rng.standard_normal((n, 2)))
    labels = rng.integers(0, n_labels, n)
    groups = rng.integers(0, 12, n)
    queries = np.flatnonzero(rng.random(n) < 0.6)
    candidates = np.flatnonzero(rng.random(n) < 0.8)
    for k in (1, 3, 5):
        expected = _brute_force(emb, labels, groups, queries, candidates, k)
        got = retrieval_metrics(emb, labels, groups, queries=queries, candidates=candidates,
                                k=k, chunk_size=17)
        assert scores_of(got) == pytest.approx({"p_at_1": expected["p_at_1"],
                                     f"p_at_{k}": expected["p_at_k"],
                                     f"ii_p_at_{k}": expected["ii_p_at_k"],
                                     "map_at_r": expected["map_at_r"]}, abs=1e-12)
        assert knn_accuracy(emb, groups, k, queries, candidates) == pytest.approx(expected["knn"])


def test_memory_stays_within_budget():
    # 4000 x 4000 pairs: ranking everything at once would hold > 300 MB.
    emb, labels, groups = clustered(400, 10, 16, seed=3)
    tracemalloc.start()
    try:
        retrieval_metrics(emb, labels, groups)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < MEMORY_BUDGET


# -- agreement with pytorch-metric-learning --------------------------------------------------
def _pml_accuracy(query, query_labels, reference=None, reference_labels=None):
    from pytorch_metric_learning.distances import LpDistance
    from pytorch_metric_learning.utils.accuracy_calculator import AccuracyCalculator
    from pytorch_metric_learning.utils.inference import CustomKNN

    calc = AccuracyCalculator(include=("precision_at_1", "mean_average_precision_at_r"),
                              k="max_bin_count", device=torch.device("cpu"),
                              knn_func=CustomKNN(LpDistance(normalize_embeddings=False)))
    as_torch = [None if a is None else torch.from_numpy(a)
                for a in (query, query_labels, reference, reference_labels)]
    return calc.get_accuracy(*as_torch)


def test_agrees_with_pytorch_metric_learning_query_set_is_reference_set():
    emb, labels, _ = clustered(25, 8, 16, seed=0, spread=0.7)
    emb = emb.astype(np.float32)
    ref = _pml_accuracy(emb, labels)
    assert 0.1 < ref["mean_average_precision_at_r"] < 0.9  # not a degenerate case
    assert p_at_1(emb, labels) == pytest.approx(ref["precision_at_1"], abs=1e-6)
    assert p_at_k(emb, labels, k=1) == pytest.approx(ref["precision_at_1"], abs=1e-6)
    assert map_at_r(emb, labels) == pytest.approx(ref["mean_average_precision_at_r"], abs=1e-6)


def test_agrees_with_pytorch_metric_learning_separate_reference_set():
    emb, labels, _ = clustered(25, 8, 16, seed=5, spread=0.7)
    emb = emb.astype(np.float32)
    queries = np.arange(len(emb)) % 4 == 0
    ref = _pml_accuracy(emb[queries], labels[queries], emb[~queries], labels[~queries])
    m = retrieval_metrics(emb, labels, queries=queries, candidates=~queries)
    assert m["p_at_1"] == pytest.approx(ref["precision_at_1"], abs=1e-6)
    assert m["map_at_r"] == pytest.approx(ref["mean_average_precision_at_r"], abs=1e-6)


# -- triplets --------------------------------------------------------------------------------
def test_triplet_score_hand_computed():
    # (0,1,2): d=1 < 2 right ; (3,2,4): d=2 < 3 right ; (5,3,4): d=4 < 1 wrong ;
    # (1,0,2): d=1 vs 1, a tie counts as wrong
    trips = np.array([[0, 1, 2], [3, 2, 4], [5, 3, 4], [1, 0, 2]])
    assert triplet_score(X, trips) == pytest.approx(2 / 4)
    # weights 1 2 3 4 -> (1 + 2) / 10
    assert triplet_score(X, trips, weights=[1, 2, 3, 4]) == pytest.approx(0.3)


def test_triplet_score_edge_cases():
    assert math.isnan(triplet_score(X, np.zeros((0, 3), dtype=int)))
    assert math.isnan(triplet_score(X, [[0, 1, 2]], weights=[0.0]))
    with pytest.raises(ValueError):
        triplet_score(X, [[0, 1]])
    with pytest.raises(ValueError):
        triplet_score(X, [[0, 1, 6]])
    with pytest.raises(ValueError):
        triplet_score(X, [[0, 1, 2]], weights=[-1.0])


# -- input checks ----------------------------------------------------------------------------
def test_bad_inputs_raise():
    with pytest.raises(ValueError, match="labels"):
        p_at_k(X, LABELS[:5])
    with pytest.raises(ValueError, match="queries"):
        p_at_k(X, LABELS, queries=[0, 6])
    with pytest.raises(ValueError, match="candidates"):
        p_at_k(X, LABELS, candidates=np.ones(5, dtype=bool))
    with pytest.raises(ValueError, match="k must"):
        p_at_k(X, LABELS, k=0)
    with pytest.raises(ValueError, match="NaN"):
        p_at_1(np.array([[0.0], [np.nan]]), [0, 0])


def test_large_ranking_is_fast_enough():
    emb, labels, groups = clustered(200, 10, 32, seed=4)
    start = time.perf_counter()
    retrieval_metrics(emb, labels, groups)
    assert time.perf_counter() - start < 5.0
