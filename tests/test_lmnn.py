"""LMNNModel: learning, objective, persistence, determinism."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from mirsim.evaluation.metrics import p_at_k
from mirsim.models import make_model
from mirsim.models.base import NotFittedError
from mirsim.models.baselines import EuclideanModel
from mirsim.models.lmnn import (
    LMNNModel,
    _lmnn_terms,
    lmnn_objective,
    n_epochs,
    target_neighbors,
)

# Full-batch settings for the small problems below: every anchor and every impostor each step.
FAST = {"epochs": 150, "lr": 0.05}


def noisy_classes(n_per_class: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """3 classes separated in 2 dimensions, plus 8 dimensions of high-variance noise.

    After standardisation every dimension has unit variance, so the 8 noise dimensions
    dominate Euclidean distances; a linear metric can drop them.
    """
    rng = np.random.default_rng(seed)
    y = np.repeat(np.arange(3), n_per_class)
    angles = 2 * np.pi * y / 3
    informative = 1.5 * np.c_[np.cos(angles), np.sin(angles)]
    informative += 0.5 * rng.standard_normal(informative.shape)
    noise = 10.0 * rng.standard_normal((len(y), 8))
    return np.c_[informative, noise], y


@pytest.fixture(scope="module")
def problem():
    X_train, y_train = noisy_classes(30, seed=0)
    X_test, y_test = noisy_classes(30, seed=1)
    model = LMNNModel(**FAST).fit(X_train, y_train)
    return model, X_train, y_train, X_test, y_test


def test_lmnn_beats_euclidean_on_held_out_data(problem):
    model, X_train, y_train, X_test, y_test = problem
    euclid = EuclideanModel().fit(X_train, y_train)
    p_euclid = p_at_k(euclid.transform(X_test), y_test, k=5)
    p_lmnn = p_at_k(model.transform(X_test), y_test, k=5)
    # measured: 0.733 and 0.964
    assert p_euclid < 0.8
    assert p_lmnn > 0.92
    assert p_lmnn > p_euclid + 0.15


def test_lmnn_learns_to_ignore_the_noise_dimensions(problem):
    model = problem[0]
    column_norms = np.linalg.norm(model.L_.numpy(), axis=0)
    # measured: informative columns >= 0.80, noise columns <= 0.29 (from 1 each at the start)
    assert column_norms[:2].min() > 2 * column_norms[2:].max()


def test_loss_decreases(problem):
    model, X_train, y_train = problem[:3]
    history = model.loss_history_
    assert len(history) == FAST["epochs"]
    assert history[-1] < 0.2 * history[0]
    # the exact objective (every impostor) of the learned map is lower than the identity's
    Xs = model._standardise(np.asarray(X_train, np.float32))
    targets = target_neighbors(Xs, y_train, model.n_neighbors)
    learned = lmnn_objective(model.L_.numpy(), Xs, y_train, targets)
    identity = lmnn_objective(np.eye(10), Xs, y_train, targets)
    assert learned < 0.2 * identity
    # full batch with every impostor: the first epoch's loss is the exact objective at L = I
    assert history[0] == pytest.approx(identity, rel=1e-5)


def test_shapes_and_parameters(problem):
    model, X_train, y_train, X_test, _ = problem
    assert model.transform(X_test).shape == (90, 10)
    assert model.transform(X_test).dtype == np.float32
    assert model.n_parameters == 100
    low = LMNNModel(n_components=2, epochs=5).fit(X_train, y_train)
    assert low.transform(X_test).shape == (90, 2)
    assert low.n_parameters == 20
    assert set(model.get_params()) == {"n_neighbors", "push_weight", "n_components", "epochs",
                                       "lr", "batch_size", "n_impostor_candidates", "seed"}


def test_save_load_round_trip(problem, tmp_path):
    model, _, _, X_test, _ = problem
    model.save(tmp_path / "lmnn")
    config = json.loads((tmp_path / "lmnn" / "config.json").read_text())
    tensors = load_file(str(tmp_path / "lmnn" / "weights.safetensors"))
    loaded = LMNNModel._from_config(config, tensors)
    assert config["model"] == "lmnn"
    assert loaded.get_params() == model.get_params()
    assert np.array_equal(loaded.transform(X_test), model.transform(X_test))


def test_same_seed_same_map_other_seed_other_map():
    X, y = noisy_classes(30, seed=2)
    # sampled anchors and impostors, so the seed matters
    params = {"epochs": 4, "batch_size": 16, "n_impostor_candidates": 32}
    a = LMNNModel(seed=3, **params).fit(X, y)
    b = LMNNModel(seed=3, **params).fit(X, y)
    c = LMNNModel(seed=4, **params).fit(X, y)
    assert torch.equal(a.L_, b.L_)
    assert a.loss_history_ == b.loss_history_
    assert not torch.equal(a.L_, c.L_)


def test_fitting_does_not_touch_the_global_rng():
    X, y = noisy_classes(10, seed=3)
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    LMNNModel(epochs=2, batch_size=8, n_impostor_candidates=8).fit(X, y)
    assert torch.equal(torch.rand(3), expected)


def test_transform_before_fit_raises():
    with pytest.raises(NotFittedError):
        LMNNModel().transform(np.zeros((2, 3)))


def test_bad_inputs_raise():
    X, y = noisy_classes(5, seed=4)
    with pytest.raises(ValueError, match="two or more"):
        LMNNModel(epochs=1).fit(X[:3], [0, 1, 2])
    with pytest.raises(ValueError, match="n_components"):
        LMNNModel(n_components=11, epochs=1).fit(X, y)
    with pytest.raises(ValueError, match="push_weight"):
        LMNNModel(push_weight=1.5).fit(X, y)


# -- the pieces -------------------------------------------------------------------------------
def test_target_neighbors_hand_computed():
    # label 0 at 0, 1, 3, 6.5; label 1 at 10, 12; label 2 alone at 20.  Two neighbours each:
    # item 0: 1 (d1), 2 (d3) ; item 1: 0 (d1), 2 (d2) ; item 2: 1 (d2), 0 (d3) ;
    # item 3: 2 (d3.5), 1 (d5.5) ; items 4, 5: only each other ; item 6: none
    X = np.array([[0.0], [1.0], [3.0], [6.5], [10.0], [12.0], [20.0]])
    y = np.array([0, 0, 0, 0, 1, 1, 2])
    assert target_neighbors(X, y, 2).tolist() == [
        [1, 2], [0, 2], [1, 0], [2, 1], [5, -1], [4, -1], [-1, -1]]


def test_objective_hand_computed():
    # items 0, 1 (label 0) at 0 and 1; item 2 (label 1) at 1.5; L = [[2]] doubles distances.
    # d = 4 (x_a - x_b)^2: pull pairs 0->1, 1->0: 4 + 4
    # hinge: anchor 0, target 1: [1 + 4 - 9]_+ = 0 ; anchor 1, target 0: [1 + 4 - 1]_+ = 4
    # objective = (0.5 * 8 + 0.5 * 4) / 2 pairs = 3
    X = np.array([[0.0], [1.0], [1.5]])
    y = np.array([0, 0, 1])
    targets = target_neighbors(X, y, 1)
    assert lmnn_objective(np.array([[2.0]]), X, y, targets) == pytest.approx(3.0)
    assert lmnn_objective(np.array([[2.0]]), X, y, targets, push_weight=0.0) == pytest.approx(4.0)


def test_gradient_equals_autograd_through_the_hinge():
    rng = np.random.default_rng(5)
    X = torch.as_tensor(rng.standard_normal((40, 4)))
    y = torch.as_tensor(rng.integers(0, 3, 40))
    targets = torch.as_tensor(target_neighbors(X.numpy(), y.numpy(), 3))
    L = torch.as_tensor(np.eye(4) + 0.3 * rng.standard_normal((4, 4))).requires_grad_(True)
    everyone = torch.arange(40)
    _, push, _ = _lmnn_terms(L, X, y, targets, everyone, everyone)
    push.backward()
    fast_grad, L.grad = L.grad.clone(), None
    # plain autograd through every (anchor, target, impostor) hinge
    z = X @ L.T
    has = targets >= 0
    d_target = ((z[:, None] - z[targets.clamp_min(0)]) ** 2).sum(-1) * has
    d_all = ((z[:, None] - z[None]) ** 2).sum(-1)
    mask = (y[:, None] != y[None])[:, None, :] & has[:, :, None]
    hinge = (torch.relu(1 + d_target[:, :, None] - d_all[:, None, :]) * mask).sum()
    hinge.backward()
    assert float(push.detach()) == pytest.approx(float(hinge.detach()), rel=1e-12)
    assert torch.allclose(fast_grad, L.grad, rtol=1e-10, atol=1e-10)


def test_auto_epochs():
    # 500 steps: full batch for 77 anchors; 6000 anchors in batches of 256 make 24 steps an
    # epoch, ceil(500 / 24) = 21 epochs
    assert n_epochs(None, 77, 256) == 500
    assert n_epochs(None, 6000, 256) == 21
    assert n_epochs(None, 10, 4) == 167  # 3 steps an epoch
    assert n_epochs(3, 6000, 256) == 3
    assert len(LMNNModel(batch_size=64).fit(*noisy_classes(30, seed=6)).loss_history_) == 250


def test_lmnn_learns_from_judged_triplets_alone():
    from mirsim.evaluation.metrics import triplet_score

    rng = np.random.default_rng(0)
    y = np.repeat(np.arange(4), 20)
    X = rng.standard_normal((80, 6)) * 3.0
    X[:, 0] = y * 2.0 + 0.2 * rng.standard_normal(80)  # the labels live in one feature
    anchors = rng.integers(0, 80, 500)
    pos = np.array([rng.choice(np.flatnonzero((y == y[a]) & (np.arange(80) != a))) for a in anchors])
    neg = np.array([rng.choice(np.flatnonzero(y != y[a])) for a in anchors])
    triplets = np.stack([anchors, pos, neg], axis=1)
    model = make_model("lmnn", epochs=30).fit(X, triplets=triplets[:400])
    emb = model.transform(X)
    assert model.loss_history_[-1] < model.loss_history_[0]
    assert triplet_score(emb, triplets[400:]) > triplet_score(X, triplets[400:]) + 0.15
