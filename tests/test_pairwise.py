"""Metrics learned from target similarities (the listeners' co-association): the models,
the fold that never sees a test item's similarities, and the supervisions of
``reproduce new-sounds`` built from them."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.spatial.distance import pdist, squareform
from scipy.stats import spearmanr
from sklearn.base import clone

from mirsim.evaluation.protocols import evaluate_protocol, split_indices, training_similarities
from mirsim.models import PairRegressionModel, SoftLDAModel, load_model


def _toy(n=60, d=8, seed=0):
    """Items whose target similarity depends on their first two features only; the other
    features are louder noise."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d))
    X[:, 2:] *= 3.0
    S = np.exp(-squareform(pdist(X[:, :2])))
    return X, S


def _regression():
    return PairRegressionModel(n_components=4, steps=300, lr=0.01, weight_decay=1e-3)


@pytest.mark.parametrize("make", [_regression, lambda: SoftLDAModel(n_components=2)])
def test_learned_distances_follow_the_target_similarities_on_new_items(make):
    X, S = _toy()
    train, test = np.arange(40), np.arange(40, 60)
    model = make().fit(X[train], similarities=S[np.ix_(train, train)])
    target = 1 - S[np.ix_(test, test)][np.triu_indices(len(test), 1)]
    learned = spearmanr(pdist(model.transform(X[test])), target).statistic
    plain = spearmanr(pdist((X[test] - X[train].mean(0)) / X[train].std(0)), target).statistic
    assert learned > 0.8 and learned > plain + 0.3


def test_pair_regression_learns_the_target_scale_and_survives_clone_and_save(tmp_path):
    X, S = _toy()
    model = _regression()
    fitted = model.fit(X, similarities=S)
    distances = pdist(fitted.transform(X))
    assert abs(np.median(distances) - np.median(1 - squareform(S, checks=False))) < 0.15
    again = clone(model)
    assert not hasattr(again, "L_") and again.get_params() == model.get_params()
    loaded = load_model(fitted.save(tmp_path / "m"))
    np.testing.assert_allclose(loaded.transform(X), fitted.transform(X), rtol=1e-6)


def test_soft_lda_from_labels_is_lda_without_shrinkage():
    from mirsim.models.linear_metrics import LDAModel

    rng = np.random.default_rng(1)
    y = np.repeat(np.arange(4), 10)
    X = rng.standard_normal((40, 6)) + y[:, None]
    soft = SoftLDAModel(n_components=3, shrinkage=None).fit(X, y)
    lda = LDAModel(shrinkage=None).fit(X, y)
    np.testing.assert_allclose(pdist(soft.transform(X)), pdist(lda.transform(X)), rtol=1e-3)
    same = (y[:, None] == y[None, :]).astype(float)
    np.testing.assert_allclose(SoftLDAModel(n_components=3, shrinkage=None)
                               .fit(X, similarities=same).transform(X), soft.transform(X),
                               rtol=1e-5, atol=1e-5)


def test_bad_similarities_are_one_line_errors():
    X, S = _toy(n=6)
    model = SoftLDAModel(n_components=2)
    with pytest.raises(ValueError, match=r"shape \(6, 6\)"):
        model.fit(X, similarities=S[:5, :5])
    with pytest.raises(ValueError, match="symmetric"):
        model.fit(X, similarities=np.triu(S))
    with pytest.raises(ValueError, match=r"in \[0, 1\]"):
        model.fit(X, similarities=S * 2)
    with pytest.raises(ValueError, match="not labels and similarities"):
        model.fit(X, np.arange(6), similarities=S)
    with pytest.raises(Exception, match="lda cannot learn from similarities"):
        from mirsim.models.linear_metrics import LDAModel
        LDAModel().fit(X, similarities=S)


@pytest.mark.parametrize("protocol", ["group-kfold", "kfold"])
def test_a_fold_never_learns_from_a_test_items_similarities(protocol):
    """Changing a test item's row and column changes nothing its fold's model does; changing
    a pair of training items does."""
    X, S = _toy(n=30)
    groups = np.arange(30)
    labels = np.arange(30) % 3
    splits = split_indices(protocol, 30, groups, n_folds=3, seed=0)
    run = lambda sim: evaluate_protocol(lambda: SoftLDAModel(n_components=2), X, labels,
                                        groups, protocol, n_folds=3, seed=0,
                                        fold_scorer=lambda e, t, d: e, similarities=sim)
    base = run(S).fold_scores
    for f, (train, test) in enumerate(splits):
        poisoned = S.copy()
        rng = np.random.default_rng(f)
        noise = rng.uniform(0, 1, (30, 30))
        noise = (noise + noise.T) / 2
        poisoned[test, :], poisoned[:, test] = noise[test, :], noise[:, test]
        np.testing.assert_allclose(run(poisoned).fold_scores[f], base[f], rtol=1e-6)
        np.testing.assert_array_equal(training_similarities(poisoned, train),
                                      S[np.ix_(train, train)])
        changed = S.copy()
        a, b = train[:2]
        changed[a, b] = changed[b, a] = 1.0 - S[a, b]
        assert not np.allclose(run(changed).fold_scores[f], base[f])
    with pytest.raises(Exception, match="not with views, triplets or similarities"):
        from mirsim.evaluation.protocols import TrainingVariants
        evaluate_protocol(SoftLDAModel, X, labels, groups, protocol, n_folds=3,
                          similarities=S, variants=TrainingVariants(X[:2], np.array([0, 1])))


def test_new_sounds_supervisions_from_the_listeners(cyberlioz_dir):
    """The co-association of the Cyberlioz listeners over the items, and soft labels."""
    from mirsim.datasets.cyberlioz import load_cyberlioz
    from mirsim.datasets.listeners import read_listener_groupings
    from mirsim.experiments.experiment import FeatureSet
    from mirsim.experiments.judgments import judgments_for
    from mirsim.experiments.new_sounds import listener_coassociation, soft_labels

    collection = load_cyberlioz(cyberlioz_dir)
    kept = np.arange(1, 78)[::-1]  # one sound left out, the others in another order
    items = collection.items.iloc[kept]
    fs = FeatureSet(collection, "mfcc", np.zeros((len(kept), 2)), items["label"].to_numpy(),
                    items["group"].astype(str).to_numpy(), kept)
    groupings = read_listener_groupings(cyberlioz_dir / "listener_clusters.csv")
    C = listener_coassociation(judgments_for(fs, groupings))
    assert C.shape == (77, 77) and np.allclose(np.diag(C), 1.0)
    ids = items["id"].astype(str).tolist()
    a, b = ids[0], ids[1]
    rows = groupings.groups[:, [groupings.fnames.index(a), groupings.fnames.index(b)]]
    both = (rows >= 0).all(axis=1)
    assert C[0, 1] == pytest.approx((rows[both, 0] == rows[both, 1]).mean())
    soft = soft_labels(fs.labels, C)
    same = fs.labels[:, None] == fs.labels[None, :]
    np.testing.assert_allclose(soft, 0.5 * np.nan_to_num(C) + 0.5 * same)


@pytest.mark.parametrize("model", [SoftLDAModel(), PairRegressionModel(steps=20)],
                         ids=["soft-lda", "pair-regression"])
def test_scikit_learn_estimator_checks_pass(model):
    import warnings

    from sklearn.utils.estimator_checks import check_estimator

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        check_estimator(model)
