"""LDA and NCA as metric models: properties that can be checked by hand, persistence, the
estimator contract."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest
import torch
from safetensors.torch import load_file
from sklearn.base import clone
from sklearn.neighbors import KNeighborsClassifier

from mirsim.errors import MirsimError
from mirsim.models import load_model, make_model
from mirsim.models.linear_metrics import LDAModel, NCAModel
from mirsim.params import ParameterError


def two_gaussians(n_per_class: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Two classes with the same diagonal covariance (std 5, 0.5, 2), whose means differ by 2
    along feature 1 only: the discriminant axis is feature 1, and the Mahalanobis distance
    between the means is 2 / 0.5 = 4."""
    rng = np.random.default_rng(seed)
    y = np.repeat([0, 1], n_per_class)
    X = rng.standard_normal((len(y), 3)) * [5.0, 0.5, 2.0]
    X[y == 1, 1] += 2.0
    return X, y


def noise_feature_classes(n_per_class: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Six classes spaced 1 apart on feature 0 (within-class std 0.15) and feature 1 pure
    noise of std 50. After standardisation the noise has the same variance as the class
    feature, so Euclidean nearest neighbours are often of another class; a metric that
    stretches feature 0 against feature 1 classifies every item."""
    rng = np.random.default_rng(seed)
    y = np.repeat(np.arange(6), n_per_class)
    X = np.c_[y + 0.15 * rng.standard_normal(len(y)), 50.0 * rng.standard_normal(len(y))]
    return X, y


def one_nn_accuracy(model, X_train, y_train, X_test, y_test) -> float:
    knn = KNeighborsClassifier(n_neighbors=1).fit(model.transform(X_train), y_train)
    return float(knn.score(model.transform(X_test), y_test))


def test_lda_projects_two_gaussians_onto_the_known_axis():
    X, y = two_gaussians(200, seed=0)
    model = make_model("lda").fit(X, y)
    assert model.L_.shape == (1, 3)  # two labels: one discriminant axis
    axis = model.L_[0].numpy()
    assert abs(axis[1]) / np.linalg.norm(axis) > 0.99  # feature 1 (standardised or not)
    z = model.transform(X)[:, 0]
    # the eigen solver scales the axis to unit within-class variance, so the projected
    # means are the Mahalanobis distance apart: 4
    assert abs(z[y == 1].mean() - z[y == 0].mean()) == pytest.approx(4.0, rel=0.1)
    assert z[y == 0].std() == pytest.approx(1.0, rel=0.1)
    X_test, y_test = two_gaussians(200, seed=1)
    assert one_nn_accuracy(model, X, y, X_test, y_test) > 0.9  # 4 sigma apart: ~0.95


def test_lda_keeps_labels_minus_one_axes_and_checks_n_components():
    rng = np.random.default_rng(0)
    y = np.repeat(np.arange(4), 10)
    X = rng.standard_normal((40, 6)) + np.eye(4, 6)[y] * 3
    assert make_model("lda").fit(X, y).transform(X).shape == (40, 3)
    assert make_model("lda", n_components=2).fit(X, y).n_parameters == 12
    with pytest.raises(MirsimError, match="n_components must be at most 3"):
        make_model("lda", n_components=4).fit(X, y)
    with pytest.raises(MirsimError, match="svd solver takes no shrinkage"):
        make_model("lda", solver="svd").fit(X, y)
    svd = make_model("lda", solver="svd", shrinkage=None).fit(X, y)
    assert svd.transform(X).shape == (40, 3)
    with pytest.raises(ParameterError, match="shrinkage must be auto, none or a number"):
        make_model("lda", shrinkage=1.5)


def test_nca_improves_one_nn_accuracy_when_a_feature_is_noise():
    X_train, y_train = noise_feature_classes(5, seed=0)
    X_test, y_test = noise_feature_classes(50, seed=10)
    euclid = make_model("euclidean").fit(X_train, y_train)
    nca = make_model("nca").fit(X_train, y_train)
    acc_euclid = one_nn_accuracy(euclid, X_train, y_train, X_test, y_test)
    acc_nca = one_nn_accuracy(nca, X_train, y_train, X_test, y_test)
    # measured: 0.777 and 1.0
    assert acc_euclid < 0.9
    assert acc_nca >= 0.98
    L = nca.L_.numpy()
    assert np.linalg.norm(L[:, 0]) > 5 * np.linalg.norm(L[:, 1])  # measured: 13.5 times
    assert 1 <= nca.n_iter_ <= nca.max_iter


@pytest.mark.parametrize("name", ["lda", "nca"])
def test_save_and_load_round_trip_exactly(name, tmp_path):
    X, y = noise_feature_classes(8, seed=1)
    model = make_model(name, **({"max_iter": 10} if name == "nca" else {})).fit(X, y)
    saved = model.save(tmp_path / name)
    loaded = load_model(saved)
    assert type(loaded) is type(model) and loaded.get_params() == model.get_params()
    np.testing.assert_array_equal(loaded.transform(X), model.transform(X))
    assert torch.equal(loaded.L_, model.L_)
    assert loaded.n_parameters == model.n_parameters == model.L_.numel()
    tensors = load_file(str(saved / "weights.safetensors"))
    assert set(tensors) == {"scaler.mean", "scaler.scale", f"{name}.L"}
    assert not list(tmp_path.rglob("*.pkl"))
    config = json.loads((saved / "config.json").read_text())
    assert config["distance"] == "euclidean" and config["model"] == name
    if name == "nca":
        assert loaded.n_iter_ == model.n_iter_


@pytest.mark.parametrize("name", ["lda", "nca"])
def test_clone_gives_an_unfitted_copy_with_the_same_parameters(name):
    model = make_model(name, n_components=1, seed=3)
    X, y = noise_feature_classes(5, seed=0)
    model.fit(X, y)
    copy = clone(model)
    assert copy.get_params() == model.get_params()
    assert not hasattr(copy, "L_")
    np.testing.assert_array_equal(copy.fit(X, y).transform(X), model.transform(X))


@pytest.mark.parametrize("name", ["lda", "nca", "lmnn"])  # LMNN is a LinearMapModel too
def test_nan_and_infinity_are_refused_in_one_line(name):
    X, y = noise_feature_classes(5, seed=0)
    bad = X.copy()
    bad[3, 1] = np.nan
    with pytest.raises(ValueError, match="NaN or infinity") as fit_error:
        make_model(name).fit(bad, y)
    assert isinstance(fit_error.value, MirsimError) and "\n" not in str(fit_error.value)
    model = make_model(name, **({"epochs": 2} if name == "lmnn" else {})).fit(X, y)
    bad[3, 1] = np.inf
    with pytest.raises(MirsimError, match="NaN or infinity") as transform_error:
        model.transform(bad)
    assert "\n" not in str(transform_error.value)


@pytest.mark.parametrize("name", ["lda", "nca"])
def test_labels_only(name):
    X, _ = noise_feature_classes(5, seed=0)
    with pytest.raises(MirsimError, match="cannot learn from triplets"):
        make_model(name).fit(X, triplets=np.array([[0, 1, 2]]))
    with pytest.raises(MirsimError, match="at least two labels"):
        make_model(name).fit(X, np.zeros(len(X), dtype=int))


def test_catalogue_names_them():
    from mirsim.registries import MODELS

    assert MODELS.entry("lda").attributes["display_name"] == "LDA"
    assert MODELS.entry("nca").attributes["display_name"] == "NCA"
    assert list(MODELS.entry("nca").attributes["supervision"]) == ["labels"]


@pytest.mark.parametrize("model", [LDAModel(), NCAModel(max_iter=5)], ids=["lda", "nca"])
def test_scikit_learn_estimator_checks_pass(model):
    from sklearn.utils.estimator_checks import check_estimator

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        check_estimator(model)


def test_a_fold_ensemble_averages_its_members_squared_distances():
    from sklearn.base import clone

    from mirsim.evaluation.protocols import split_indices
    from mirsim.models import make_model

    rng = np.random.default_rng(0)
    y = np.repeat(np.arange(4), 10)
    X = rng.standard_normal((40, 6)) + 1.5 * y[:, None]
    groups = np.arange(40) // 2
    ensemble = make_model("fold-ensemble", estimator=make_model("lda"), inner_folds=4)
    E = ensemble.fit(X, y, groups).transform(X)
    assert len(ensemble.members_) == 4 and ensemble.distance_ == "euclidean"
    # each member is the base model fitted on one inner training part (groups never split)
    for member, (train, test) in zip(ensemble.members_,
                                     split_indices("group-kfold", 40, groups, 4, 0)):
        assert not set(groups[train]) & set(groups[test])
        alone = clone(make_model("lda")).fit(X[train], y[train], groups[train])
        np.testing.assert_allclose(member.transform(X), alone.transform(X), rtol=1e-5)
    d2 = ((E[:, None] - E[None]) ** 2).sum(-1)
    parts = [m.transform(X) for m in ensemble.members_]
    mean = np.mean([((P[:, None] - P[None]) ** 2).sum(-1) for P in parts], axis=0)
    np.testing.assert_allclose(d2, mean, rtol=1e-4, atol=1e-4)
    assert not hasattr(clone(ensemble), "members_")  # nothing learned before fit
    with pytest.raises(Exception, match="cannot be saved"):
        ensemble.save("unused")


def test_the_diagonal_metric_weights_each_feature_by_its_shrunk_fisher_ratio():
    from mirsim.models import make_model

    # two labels, two features; hand-computed on the standardised values
    X = np.array([[0.0, 1.0], [2.0, 3.0], [4.0, 1.0], [6.0, 3.0]])
    y = np.array([0, 0, 1, 1])
    model = make_model("diagonal", shrinkage=0.0).fit(X, y)
    Z = (X - X.mean(0)) / X.std(0)  # feature 0: -1.342, -0.447, 0.447, 1.342; feature 1: -1, 1, -1, 1
    between = np.array([0.8, 0.0])  # label means (-0.894, 0.894) and (0, 0)
    within = ((Z - np.array([Z[:2].mean(0), Z[:2].mean(0), Z[2:].mean(0), Z[2:].mean(0)])) ** 2).mean(0)
    np.testing.assert_allclose(within, [0.2, 1.0], rtol=1e-6)
    np.testing.assert_allclose(np.diag(model.L_.numpy()) ** 2, between / within, rtol=1e-5)
    shrunk = make_model("diagonal", shrinkage=1.0).fit(X, y)  # denominators all mean(W) = 0.6
    np.testing.assert_allclose(np.diag(shrunk.L_.numpy()) ** 2, between / 0.6, rtol=1e-5)
    assert model.n_parameters == 2 and model.transform(X).shape == (4, 2)
