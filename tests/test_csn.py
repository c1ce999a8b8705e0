"""The conditional similarity network: inputs to maps, masks, learning, disentanglement,
the estimator contract."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.base import clone

from mirsim.errors import MirsimError
from mirsim.evaluation.dimensions import dimension_triplet_scores, dimension_triplets
from mirsim.models import load_model, make_model
from mirsim.models.base import NotFittedError
from mirsim.models.inception import ConditionalBackbone, InputLayout

#: a tiny layout: three inputs of 8 rows, 8 frames, pooled to 4x4 maps
TINY = {"inputs": ("mel", "tempogram", "chroma"), "rows": (8, 8, 8), "map_size": 4,
        "width": 4, "dimension_dim": 4, "batch_size": 16, "lr": 1e-2}


def _problem(n=32, seed=0):
    """Two independent binary dimensions: A written in the mel rows, B in the chroma rows."""
    rng = np.random.default_rng(seed)
    a, b = rng.permutation(np.arange(n) % 2), rng.permutation(np.arange(n) // (n // 2))
    m = 0.5 * rng.standard_normal((n, 24, 8)).astype(np.float32)
    m[:, :8] += 1.5 * (2 * a[:, None, None] - 1)
    m[:, 16:] += 1.5 * (2 * b[:, None, None] - 1)
    similar = {"A": a[:, None] == a[None, :], "B": b[:, None] == b[None, :]}
    return m.reshape(n, -1), similar, a, b


@pytest.fixture(scope="module")
def fitted():
    torch.set_num_threads(1)
    X, similar, _, _ = _problem()
    # every violating triplet: semi-hard mining alone learns this tiny problem too slowly for
    # a unit test (a few triplets of a batch of 16 fall within its margin)
    model = make_model("csn", epochs=15, mining="all", **TINY)
    return model.fit(X, similar=similar), X, similar


def test_both_backbones_map_the_default_inputs_to_16x16():
    layout = InputLayout(("mel", "tempogram", "chroma"), (128, 32, 16), 256)
    x = torch.randn(1, layout.n_features)
    with torch.no_grad():
        for kind, branches in (("multi-input", 3), ("baseline", 1)):
            net = ConditionalBackbone(layout, kind, width=2, embedding_dim=6).eval()
            for name, branch in net.branches.items():
                assert branch(layout.split(x)[name]).shape[2:] == (16, 16)
            maps = net.maps(x)
            assert maps.shape == (1, branches * 8, 16, 16) and net(x).shape == (1, 6)
    with pytest.raises(MirsimError, match="mel"):
        ConditionalBackbone(InputLayout(("chroma",), (16,), 256), "baseline")


def test_semihard_mining_keeps_only_semihard_triplets():
    from mirsim.models.csn import mine_triplets

    g = torch.Generator().manual_seed(0)
    d = torch.rand(12, 12, generator=g)
    d = (d + d.T) / 2
    labels = torch.arange(12) % 3
    S = labels[:, None] == labels[None, :]
    a, p, n = mine_triplets(d, S, 0.1)
    assert len(a) > 0 and (a != p).all() and S[a, p].all() and not S[a, n].any()
    assert ((d[a, n] > d[a, p]) & (d[a, n] < d[a, p] + 0.1)).all()
    every = mine_triplets(d, S, 0.1, kind="all")
    assert len(every[0]) > len(a) and (d[every[0], every[2]] < d[every[0], every[1]] + 0.1).all()


def test_fixed_masks_are_disjoint_and_cover_the_embedding(fitted):
    model, X, _ = fitted
    cols = [np.arange(64)[s] for s in model.subspaces_.values()]
    assert model.subspaces_ == {"A": slice(0, 4), "B": slice(4, 8)}
    assert sorted(np.concatenate(cols).tolist()) == list(range(model.embedding_dim_))
    masks = np.stack(list(model.masks_.values()))
    assert set(np.unique(masks)) == {0.0, 1.0} and (masks.sum(axis=0) == 1).all()
    full, a = model.transform(X), model.transform(X, dimension="A")
    np.testing.assert_allclose(np.linalg.norm(a, axis=1), 1.0, rtol=1e-5)
    raw_a = full[:, :4] / np.linalg.norm(full[:, :4], axis=1, keepdims=True)
    np.testing.assert_allclose(a, raw_a, rtol=1e-4, atol=1e-5)
    with pytest.raises(MirsimError, match="valid: A, B"):
        model.transform(X, dimension="C")


def test_loss_decreases_and_subspaces_disentangle_independent_dimensions(fitted):
    model, _, _ = fitted
    assert model.loss_history_[-1] < 0.7 * model.loss_history_[0]
    assert len(model.validation_history_) == len(model.loss_history_)
    X, similar, _, _ = _problem(n=40, seed=1)  # held-out items
    triplets = dimension_triplets(similar, n_per_dimension=400, seed=0)
    own = dimension_triplet_scores(lambda d: model.transform(X, dimension=d), triplets)
    swapped = {"A": "B", "B": "A"}
    other = dimension_triplet_scores(lambda d: model.transform(X, dimension=swapped[d]),
                                     triplets)
    for d in ("A", "B"):  # each sub-space orders its own dimension, not the other one
        assert own[d] > 0.85 and own[d] > other[d] + 0.2, (own, other)


def test_learned_masks_and_track_regularisation_train():
    X, similar, a, _ = _problem()
    groups = np.arange(len(X)) // 2  # two segments per "song"
    model = make_model("csn", epochs=2, masks="learned", track_regularisation=True, **TINY)
    model.fit(X, groups=groups, similar=similar)
    masks = model.masks_
    assert masks["A"].shape == (8,) and (masks["A"] >= 0).all()
    assert model.subspaces_["A"] == slice(0, 8)
    assert model.transform(X, dimension="B").shape == (len(X), 8)
    assert np.isfinite(model.loss_history_).all()
    with pytest.raises(ValueError, match="groups"):
        clone(model).fit(X, similar=similar)


def test_estimator_contract_save_load_and_clone(fitted, tmp_path):
    model, X, similar = fitted
    fresh = make_model("csn", epochs=15, mining="all", **TINY)
    assert not any(k.endswith("_") for k in vars(fresh))
    with pytest.raises(NotFittedError):
        fresh.transform(X)
    emb = model.transform(X)
    assert emb.dtype == np.float32 and emb.shape == (len(X), 8) and model.n_parameters > 0
    copy = clone(model)
    assert copy.get_params() == model.get_params() and not hasattr(copy, "network_")
    loaded = load_model(model.save(tmp_path / "csn"))
    assert loaded.get_params() == model.get_params() and loaded.dimensions_ == ("A", "B")
    np.testing.assert_array_equal(loaded.transform(X), emb)
    np.testing.assert_array_equal(loaded.transform(X, dimension="B"),
                                  model.transform(X, dimension="B"))
    assert not list(tmp_path.rglob("*.pkl"))
    with pytest.raises(ValueError, match="expecting"):
        model.transform(X[:, :24])


def test_same_seed_same_numbers_and_labels_make_one_dimension():
    X, _, a, _ = _problem(n=16)
    one = make_model("csn", epochs=1, **TINY).fit(X, a)
    two = make_model("csn", epochs=1, **TINY).fit(X, a)
    assert one.dimensions_ == ("label",)
    np.testing.assert_array_equal(one.transform(X), two.transform(X))


@pytest.mark.parametrize("params, message", [
    ({"masks": "soft"}, "masks must be one of: fixed, learned"),
    ({"lr": 0.0}, "lr must be a number > 0"),
    ({"backbone": "resnet"}, "backbone must be one of"),
    ({"mining": "hard"}, "mining must be one of"),
    ({"lr_factor": 1.0}, "lr_factor must be a number in"),
])
def test_bad_parameters_are_one_line_errors(params, message):
    X, similar, _, _ = _problem(n=8)
    with pytest.raises(MirsimError, match=message) as err:
        make_model("csn", **{**TINY, **params}).fit(X, similar=similar)
    assert "\n" not in str(err.value)


def test_bad_supervision_is_refused_in_one_line():
    X, similar, a, _ = _problem(n=8)
    model = make_model("csn", epochs=1, **TINY)
    for kwargs, message in (({}, "give one of them"),
                            ({"similar": {"A": similar["A"].astype(int)}}, "boolean"),
                            ({"similar": {"A": np.ones((8, 8), bool)}}, "dissimilar"),
                            ({"similar": {"A": similar["A"][:4, :4]}}, r"\(8, 8\)")):
        with pytest.raises(ValueError, match=message):
            model.fit(X, **kwargs)
    with pytest.raises(ValueError, match="rows"):
        model.fit(X[:, :20], similar=similar)
