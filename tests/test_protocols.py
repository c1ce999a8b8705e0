"""Protocols: splits, what is queried against what, and mean ± std over folds."""

from __future__ import annotations

import numpy as np
import pytest

from mirsim.errors import DataError, UnknownNameError
from mirsim.evaluation import retrieval_metrics
from mirsim.evaluation.protocols import ProtocolResult, evaluate_protocol, split_indices
from mirsim.models import EuclideanModel


def test_kfold_partitions_the_items():
    splits = split_indices("kfold", 23, n_folds=5, seed=1)
    tests = np.concatenate([te for _, te in splits])
    assert sorted(tests.tolist()) == list(range(23))
    for tr, te in splits:
        assert set(tr).isdisjoint(te) and len(tr) + len(te) == 23
    assert [te.tolist() for _, te in split_indices("kfold", 23, n_folds=5, seed=1)] == \
        [te.tolist() for _, te in splits]  # the seed fixes the split


def test_group_kfold_never_splits_a_group():
    groups = np.repeat(np.arange(10), 3)
    for tr, te in split_indices("group-kfold", 30, groups, n_folds=5, seed=0):
        assert set(groups[tr]).isdisjoint(groups[te])


def test_loo_and_errors():
    assert [te.tolist() for _, te in split_indices("loo", 3)] == [[0], [1], [2]]
    with pytest.raises(UnknownNameError, match="valid: group-kfold, kfold, loo"):
        split_indices("holdout", 10)
    with pytest.raises(DataError, match="at least 5 groups"):
        split_indices("group-kfold", 6, np.array([0, 0, 1, 1, 2, 2]), n_folds=5)


def test_summary_is_mean_and_sample_std_over_folds():
    r = ProtocolResult("kfold", [{"m": 0.2}, {"m": 0.4}, {"m": float("nan")}, {"m": 0.6}])
    s = r.summary()["m"]
    assert s["mean"] == pytest.approx(0.4) and s["std"] == pytest.approx(0.2)


def _data():
    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(4), 6)
    groups = np.repeat(np.arange(12), 2)  # two items per group, three groups per label
    X = rng.standard_normal((24, 3)) + labels[:, None] * 1.5
    return X, labels, groups


def test_kfold_queries_and_retrieves_inside_the_test_fold():
    X, y, g = _data()
    r = evaluate_protocol(EuclideanModel, X, y, g, "kfold", n_folds=3, seed=0)
    for (tr, te), fold in zip(split_indices("kfold", 24, n_folds=3, seed=0), r.per_fold):
        emb = EuclideanModel().fit(X[tr], y[tr]).transform(X[te])
        assert fold == retrieval_metrics(emb, y[te], g[te])


def test_group_kfold_queries_test_items_against_every_other_item():
    X, y, g = _data()
    r = evaluate_protocol(EuclideanModel, X, y, g, "group-kfold", n_folds=3, seed=0)
    for (tr, te), fold in zip(split_indices("group-kfold", 24, g, 3, 0), r.per_fold):
        emb = EuclideanModel().fit(X[tr], y[tr]).transform(X)
        assert fold == retrieval_metrics(emb, y, g, queries=te)
    assert len(r.fit_seconds) == 3 and r.train_seconds >= 0


def test_loo_has_one_query_per_fold():
    X, y, g = _data()
    r = evaluate_protocol(EuclideanModel, X[:8], y[:8], g[:8], "loo")
    assert len(r.per_fold) == 8
    assert set(r.per_fold[0]["p_at_1"] for _ in [0]) <= {0.0, 1.0}


@pytest.mark.parametrize("protocol", ["kfold", "group-kfold"])
def test_the_last_fold_keeps_its_test_embeddings(protocol):
    X, y, g = _data()
    r = evaluate_protocol(EuclideanModel, X, y, g, protocol, n_folds=3, seed=0)
    train, test = split_indices(protocol, 24, g, n_folds=3, seed=0)[-1]
    held = r.held_out
    assert (held.fold, held.n_folds, len(held)) == (3, 3, len(test))
    assert held.indices.tolist() == test.tolist()  # the last fold's test split, in order
    assert held.embeddings.dtype == np.float32 and held.embeddings.shape == (len(test), 3)
    model = EuclideanModel().fit(X[train].astype(np.float32), y[train])
    np.testing.assert_allclose(held.embeddings, model.transform(X[test].astype(np.float32)),
                               rtol=1e-6)


def test_loo_keeps_no_held_out_embeddings():
    X, y, g = _data()
    assert evaluate_protocol(EuclideanModel, X[:6], y[:6], g[:6], "loo").held_out is None


@pytest.mark.slow
def test_folds_in_parallel_workers_give_the_same_numbers():
    import functools

    from mirsim.models import make_model

    X, y, g = _data()
    factory = functools.partial(make_model, "mlp", epochs=3, batch_size=8, embedding_dim=16)
    serial = evaluate_protocol(factory, X, y, g, "kfold", n_folds=3, seed=0)
    parallel = evaluate_protocol(factory, X, y, g, "kfold", n_folds=3, seed=0, n_jobs=2)
    assert serial.per_fold == parallel.per_fold
    # the workers return the last fold's held-out embeddings, identical to the serial run's
    assert parallel.held_out.fold == serial.held_out.fold == 3
    np.testing.assert_array_equal(parallel.held_out.indices, serial.held_out.indices)
    assert parallel.held_out.embeddings.shape == (len(serial.held_out), 16)
    # the serial run uses every torch thread, a worker one: float32 sums in another order
    np.testing.assert_allclose(parallel.held_out.embeddings, serial.held_out.embeddings,
                               rtol=0, atol=1e-6)


class RecordingScorer:
    """A fold scorer that returns what it was given (picklable, for worker processes)."""

    def __call__(self, embeddings, test, distance):
        return {"embeddings": np.array(embeddings), "test": np.array(test), "distance": distance}


@pytest.mark.parametrize("protocol", ["kfold", "group-kfold", "loo"])
def test_a_fold_scorer_sees_every_item_embedded_by_each_fold_model(protocol):
    X, y, g = _data()
    X, y, g = (X[:10], y[:10], g[:10]) if protocol == "loo" else (X, y, g)
    r = evaluate_protocol(EuclideanModel, X, y, g, protocol, n_folds=3, seed=0,
                          fold_scorer=RecordingScorer())
    splits = split_indices(protocol, len(X), g, n_folds=3, seed=0)
    assert len(r.fold_scores) == len(splits)
    for (tr, te), seen in zip(splits, r.fold_scores):
        model = EuclideanModel().fit(X[tr].astype(np.float32), y[tr])
        # every item, under kfold too (whose metrics embed the test fold only)
        np.testing.assert_array_equal(seen["embeddings"], model.transform(X.astype(np.float32)))
        assert seen["test"].tolist() == te.tolist() and seen["distance"] == "euclidean"
    without = evaluate_protocol(EuclideanModel, X, y, g, protocol, n_folds=3, seed=0)
    assert without.per_fold == r.per_fold and without.fold_scores == []


@pytest.mark.slow
def test_fold_scores_from_parallel_workers_equal_the_serial_ones():
    X, y, g = _data()
    serial = evaluate_protocol(EuclideanModel, X, y, g, "group-kfold", n_folds=3, seed=0,
                               fold_scorer=RecordingScorer())
    parallel = evaluate_protocol(EuclideanModel, X, y, g, "group-kfold", n_folds=3, seed=0,
                                 fold_scorer=RecordingScorer(), n_jobs=2)
    for a, b in zip(serial.fold_scores, parallel.fold_scores):
        np.testing.assert_array_equal(a["embeddings"], b["embeddings"])
        assert a["test"].tolist() == b["test"].tolist()


def test_a_fold_learns_from_the_variants_of_its_training_items_only():
    from mirsim.evaluation.protocols import TrainingVariants
    from mirsim.models.linear_metrics import LDAModel

    X, y, g = _data()
    rng = np.random.default_rng(1)
    source = np.repeat(np.arange(len(X)), 2)  # two variants of every item
    variants = TrainingVariants(X[source] + 0.3 * rng.standard_normal((len(source), 3)), source)
    r = evaluate_protocol(LDAModel, X, y, g, "group-kfold", n_folds=3, seed=0,
                          fold_scorer=RecordingScorer(), variants=variants)
    plain = evaluate_protocol(LDAModel, X, y, g, "group-kfold", n_folds=3, seed=0,
                              fold_scorer=RecordingScorer())
    splits = split_indices("group-kfold", len(X), g, n_folds=3, seed=0)
    X32 = X.astype(np.float32)
    for (tr, te), seen, without in zip(splits, r.fold_scores, plain.fold_scores):
        rows = variants.of(tr)
        assert set(source[rows]) == set(tr.tolist())  # never a variant of a test item
        fitted = LDAModel().fit(np.concatenate([X32[tr], variants.X[rows].astype(np.float32)]),
                                np.concatenate([y[tr], y[source[rows]]]),
                                np.concatenate([g[tr], g[source[rows]]]))
        np.testing.assert_allclose(seen["embeddings"], fitted.transform(X32), rtol=1e-5)
        assert not np.allclose(seen["embeddings"], without["embeddings"])  # they did count
    with pytest.raises(Exception, match="not with views, triplets or similarities"):
        evaluate_protocol(LDAModel, X, y, g, "group-kfold", n_folds=3, variants=variants,
                          triplets=(np.array([[0, 1, 2]]), None))


def test_variants_need_one_source_each():
    from mirsim.evaluation.protocols import TrainingVariants

    with pytest.raises(ValueError, match="3 variants but 2 sources"):
        TrainingVariants(np.zeros((3, 2)), np.array([0, 1]))
