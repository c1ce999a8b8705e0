"""The classifier (softmax classification with and without a normalisation layer) and the
prototypical network: what they learn, how they are named, what they keep."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.base import clone

from mirsim.errors import MirsimError
from mirsim.evaluation import map_at_r
from mirsim.experiments.specs import model_params
from mirsim.experiments.tables import row_name
from mirsim.models import load_model, make_model
from mirsim.registries import DISTANCES, LOSSES


def _clusters(n_per=30, n_classes=4, dim=10, seed=0, spread=1.5, held_out=False):
    """Gaussian classes whose centres differ along half the features (the others are noise);
    ``held_out``: other items of the same classes."""
    centres = np.random.default_rng(seed).standard_normal((n_classes, dim)) * spread
    centres[:, dim // 2:] = 0.0  # half the features carry no class information
    y = np.repeat(np.arange(n_classes), n_per)
    noise = np.random.default_rng([seed, int(held_out)]).standard_normal((len(y), dim))
    return (centres[y] + noise).astype(np.float32), y


SMALL = {"hidden": (32,), "embedding_dim": 16, "batch_size": 32, "lr": 0.01}


def test_normalize_chooses_the_loss_and_the_distance():
    X, y = _clusters()
    normalised = make_model("classifier", epochs=3, **SMALL).fit(X, y)
    plain = make_model("classifier", normalize=False, epochs=3, **SMALL).fit(X, y)
    assert (normalised._loss_spec().name, normalised.distance_) == ("normalized-softmax",
                                                                     "cosine")
    assert (plain._loss_spec().name, plain.distance_) == ("softmax", "euclidean")
    np.testing.assert_allclose(np.linalg.norm(normalised.transform(X), axis=1), 1.0, rtol=1e-5)
    assert np.linalg.norm(plain.transform(X), axis=1).std() > 0.01  # not on a sphere
    # the temperature reaches the loss
    assert make_model("classifier", temperature=0.2)._loss_spec().temperature == 0.2
    # an unnormalised classifier may still be searched by cosine
    assert make_model("classifier", normalize=False, distance="cosine", epochs=1,
                      **SMALL).fit(X, y).distance_ == "cosine"


def test_the_classifier_has_no_loss_or_miner_to_choose():
    params = make_model("classifier").get_params()
    assert {"normalize", "temperature", "hidden", "epochs"} <= set(params)
    assert not {"loss", "miner"} & set(params)
    with pytest.raises(MirsimError, match="model 'classifier' takes no --loss"):
        model_params("classifier", loss="triplet")
    with pytest.raises(MirsimError, match="not understood for model 'classifier'.*temperature"):
        model_params("classifier", ["margin=0.2"])
    assert model_params("classifier", ["normalize=false", "temperature=0.1"]) == {
        "normalize": False, "temperature": 0.1}
    with pytest.raises(MirsimError, match="normalize must be one of: False, True"):
        make_model("classifier", normalize="yes")
    with pytest.raises(MirsimError, match="cannot learn from triplets"):
        make_model("classifier").fit(np.zeros((4, 2)), triplets=[[0, 1, 2]])
    assert clone(make_model("classifier", normalize=False)).normalize is False


def test_both_variants_are_named_in_tables():
    assert row_name("classifier") == "Classification (normalised)"
    assert row_name("classifier", {"normalize": True}) == "Classification (normalised)"
    assert row_name("classifier", {"normalize": False}) == "Classification (not normalised)"
    assert row_name("prototypical") == "Prototypical network"


def test_classifiers_learn_a_metric_and_survive_save_and_load(tmp_path):
    X, y = _clusters(seed=1)
    Xt, yt = _clusters(seed=1, n_per=10, held_out=True)
    base = map_at_r(make_model("euclidean").fit(X, y).transform(Xt), yt)
    for normalize in (True, False):
        model = make_model("classifier", normalize=normalize, epochs=30, **SMALL).fit(X, y)
        emb = model.transform(Xt)
        # measured: Euclidean MAP@R 0.55; normalised 0.75, not normalised 0.76
        assert map_at_r(emb, yt, distance=model.distance_) > base + 0.1, normalize
        loaded = load_model(model.save(tmp_path / str(normalize)))
        np.testing.assert_allclose(loaded.transform(Xt), emb, rtol=1e-5, atol=1e-6)
        assert loaded.get_params() == model.get_params()


def test_prototypes_are_the_mean_training_embeddings_and_are_saved(tmp_path):
    X, y = _clusters(seed=2)
    labels = np.array(["bass", "flute", "harp", "oboe"])[y]
    model = make_model("prototypical", epochs=5, **SMALL).fit(X, labels)
    assert model.distance_ == "euclidean" and model.sampler == "m-per-class"
    emb = model.transform(X)
    expected = np.stack([emb[labels == c].mean(axis=0) for c in model.classes_])
    np.testing.assert_allclose(model.prototypes_, expected, rtol=1e-4, atol=1e-5)
    assert model.prototypes_.dtype == np.float32
    loaded = load_model(model.save(tmp_path / "p"))
    np.testing.assert_array_equal(loaded.prototypes_, model.prototypes_)
    assert loaded.classes_.tolist() == ["bass", "flute", "harp", "oboe"]
    # a refit forgets the earlier classes' prototypes
    model.fit(X[y < 2], labels[y < 2])
    assert model.prototypes_.shape == (2, 16)


def test_cosine_prototypes_are_unit_vectors():
    X, y = _clusters(seed=3)
    model = make_model("prototypical", distance="cosine", epochs=3, **SMALL).fit(X, y)
    np.testing.assert_allclose(np.linalg.norm(model.prototypes_, axis=1), 1.0, rtol=1e-5)
    # the nearest prototype of a training class's centroid direction is that class
    emb = model.transform(X)
    centroid = emb[y == 0].mean(axis=0)
    assert np.argmax(model.prototypes_ @ centroid) == 0


def test_prototypical_network_learns_from_episodes():
    X, y = _clusters(seed=4)
    Xt, yt = _clusters(seed=4, n_per=10, held_out=True)
    base = map_at_r(make_model("euclidean").fit(X, y).transform(Xt), yt)
    model = make_model("prototypical", epochs=30, **SMALL).fit(X, y)
    # measured: Euclidean MAP@R 0.42, prototypical 0.73
    assert map_at_r(model.transform(Xt), yt) > base + 0.1
    assert model.loss_history_[-1] < model.loss_history_[0]


def test_prototypical_loss_classifies_queries_by_the_support_means():
    # two classes, four items each: support = first two of each class, queries = last two.
    # Queries of class 0 lie on class 0's support mean; those of class 1 halfway between the
    # means: the loss is the cross-entropy of softmax(-squared distances).
    emb = torch.tensor([[0.0, 0.0], [2.0, 0.0], [1.0, 0.0], [1.0, 0.0],
                        [5.0, 0.0], [7.0, 0.0], [3.5, 0.0], [6.0, 0.0]])
    labels = torch.tensor([0, 0, 0, 0, 1, 1, 1, 1])
    loss = LOSSES.make("prototypical").build(n_classes=2, embedding_dim=2,
                                             distance=DISTANCES.make("euclidean"))
    # prototypes 1 and 6.  Queries: 1 (d^2 0, 25), 1 (0, 25), 3.5 (6.25, 6.25), 6 (25, 0)
    ce = [np.log1p(np.exp(-25.0)), np.log1p(np.exp(-25.0)), np.log(2.0), np.log1p(np.exp(-25.0))]
    assert float(loss(emb, labels)) == pytest.approx(np.mean(ce), rel=1e-5)
