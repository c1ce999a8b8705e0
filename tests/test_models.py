"""Metric models: the estimator contract, graph properties, persistence, and that training
improves retrieval on real data."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mirsim.errors import MirsimError, UnknownNameError
from mirsim.evaluation import ii_p_at_k
from mirsim.models import (available_models, load_model, make_model)
from mirsim.models.base import NotFittedError
from mirsim.models.graph import Adjacency, GraphEmbeddingNetwork, nearest_indices, symmetric_edges

FAST = {"euclidean": {}, "linear": {"epochs": 3}, "lmnn": {}, "mlp": {"epochs": 3},
        "knn-gnn": {"epochs": 3}, "an-gnn": {"epochs": 3}, "classifier": {"epochs": 3},
        "prototypical": {"epochs": 3}, "pair-regression": {"steps": 30},
        "soft-lda": {"n_components": 2}, "diagonal": {}}


def _blobs(n_per=12, n_classes=3, dim=6, seed=0):
    rng = np.random.default_rng(seed)
    y = np.repeat(np.arange(n_classes), n_per)
    X = rng.standard_normal((len(y), dim)) + 3.0 * np.eye(n_classes, dim)[y] * 2
    X[:, -1] *= 100.0  # one feature on another scale: standardisation must handle it
    return X.astype(np.float32), y


@pytest.mark.parametrize("name", sorted(FAST))
def test_estimator_contract(name, tmp_path):
    X, y = _blobs()
    model = make_model(name, **FAST[name])
    assert not any(k.endswith("_") for k in vars(model))  # nothing learned before fit
    with pytest.raises(NotFittedError):
        model.transform(X)
    emb = model.fit(X, y).transform(X)
    assert emb.dtype == np.float32 and emb.shape[0] == len(X) and np.isfinite(emb).all()
    assert model.n_parameters >= 0 and (name == "euclidean") == (model.n_parameters == 0)
    again = make_model(name, **FAST[name]).fit(X, y).transform(X)
    np.testing.assert_array_equal(emb, again)  # same seed, same numbers
    loaded = load_model(model.save(tmp_path / name))
    np.testing.assert_allclose(loaded.transform(X), emb, rtol=1e-5, atol=1e-5)
    assert loaded.get_params() == model.get_params()
    assert not list(tmp_path.rglob("*.pkl")) and (tmp_path / name / "weights.safetensors").exists()
    with pytest.raises(ValueError, match="expecting 6 features"):
        model.transform(X[:, :4])


def test_standardisation_uses_training_statistics_only():
    X, y = _blobs()
    model = make_model("euclidean").fit(X[:20], y[:20])
    np.testing.assert_allclose(model.mean_, X[:20].mean(0), rtol=1e-6)
    np.testing.assert_allclose(model.transform(X[20:]), (X[20:] - X[:20].mean(0)) / X[:20].std(0),
                               rtol=1e-4, atol=1e-5)


def test_unknown_model_and_parameter_errors_list_what_is_valid():
    with pytest.raises(UnknownNameError, match="valid: " + ", ".join(available_models())):
        make_model("gnn")
    with pytest.raises(MirsimError, match="no parameter epoch .*valid: .*epochs"):
        make_model("mlp", epoch=3)
    with pytest.raises(MirsimError, match="not a saved mirsim model"):
        load_model("/nonexistent/model")


def test_bad_feature_arrays_are_rejected():
    model = make_model("euclidean")
    with pytest.raises(ValueError, match="0 sample"):
        model.fit(np.zeros((0, 3)), [])
    with pytest.raises(ValueError, match="NaN"):
        model.fit(np.array([[np.nan, 1.0], [0.0, 1.0]]), [0, 1])


# -- graphs ------------------------------------------------------------------------------------
def test_nearest_indices_hand_example():
    z = torch.tensor([[0.0], [1.0], [3.0], [10.0]])
    assert nearest_indices(z, z, 2).tolist() == [[0, 1], [1, 0], [2, 1], [3, 2]]
    assert nearest_indices(torch.tensor([[2.4]]), z, 2).tolist() == [[2, 1]]


def test_knn_graph_is_the_symmetric_normalised_adjacency():
    # points 0, 1, 3, 10 on a line, k = 2 (itself + its nearest): edges 0-1, 2-1, 3-2 and loops
    adj = Adjacency(width=1, k=2, kind="knn")
    src, dst, norm, deg, _ = adj.graph(torch.tensor([[0.0], [1.0], [3.0], [10.0]]))
    A = torch.zeros(4, 4)
    A[src, dst] = 1.0
    expected = torch.tensor([[1, 1, 0, 0], [1, 1, 1, 0], [0, 1, 1, 1], [0, 0, 1, 1]], dtype=torch.float)
    assert torch.equal(A, expected)
    assert deg.tolist() == [2.0, 3.0, 3.0, 2.0]
    S = torch.zeros(4, 4)
    S[src, dst] = norm
    d = expected.sum(1)
    torch.testing.assert_close(S, expected / torch.sqrt(d[:, None] * d[None, :]), rtol=1e-5, atol=1e-6)


def test_adaptive_graph_weights_follow_the_gaussian_of_scaled_distances():
    torch.manual_seed(0)
    adj = Adjacency(width=4, k=3, kind="adaptive")
    h = torch.randn(12, 4)
    src, dst, norm, deg, z = adj.graph(h)
    sigma = adj.relation(h)
    torch.testing.assert_close(z, h / sigma)
    w = torch.exp(-0.5 * ((z[src] - z[dst]) ** 2).mean(1))
    W = torch.zeros(12, 12)
    W[src, dst] = w
    torch.testing.assert_close(W, W.T)  # symmetric
    assert torch.all(torch.diag(W) == 1.0)  # every node keeps itself (distance 0)
    assert torch.all((W > 0).sum(1) >= 3)  # and at least k neighbours in all
    torch.testing.assert_close(deg, W.sum(1))
    assert torch.all(sigma > 0)


def test_symmetric_edges_are_the_union_of_both_directions_listed_once():
    g = torch.Generator().manual_seed(0)
    n, k = 30, 4
    rows = []
    for i in range(n):  # itself, then k - 1 distinct other nodes
        others = torch.randperm(n - 1, generator=g)[:k - 1]
        rows.append(torch.cat([torch.tensor([i]), others + (others >= i).long()]))
    idx = torch.stack(rows)
    src, dst = symmetric_edges(idx)
    kept = torch.zeros(n, n, dtype=torch.bool)
    kept[torch.arange(n)[:, None], idx] = True
    expected = kept | kept.T
    counts = torch.zeros(n, n)
    counts.index_put_((src, dst), torch.ones(len(src)), accumulate=True)
    assert torch.equal(counts, expected.float())  # every edge of the union, exactly once


def test_graph_blocks_are_as_wide_as_the_features_up_to_the_embedding():
    narrow = GraphEmbeddingNetwork(40, embedding_dim=512)
    assert isinstance(narrow.input, torch.nn.Identity)  # the authors' design: no input layer
    assert narrow.blocks[0].gcn.in_features == 40
    assert narrow(torch.randn(8, 40)).shape == (8, 512)  # an output layer up to the proxies
    wide = GraphEmbeddingNetwork(800, embedding_dim=512)
    assert wide.input.out_features == 512 and isinstance(wide.output, torch.nn.Identity)
    assert GraphEmbeddingNetwork(40, embedding_dim=512, width=128).blocks[0].gcn.in_features == 128


@pytest.mark.parametrize("kind", ["adaptive", "knn"])
def test_dense_and_chunked_graph_construction_agree(kind, monkeypatch):
    import mirsim.models.graph as graph

    torch.manual_seed(0)
    adj = Adjacency(width=8, k=3, kind=kind)
    h = torch.randn(40, 8)
    dense = adj.graph(h)
    monkeypatch.setattr(graph, "DENSE_SEARCH_MAX_NODES", 0)
    chunked = adj.graph(h)
    for a, b in zip(dense, chunked):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)


def _fitted_gnn(kind="an-gnn"):
    X, y = _blobs(n_per=15)
    return make_model(kind, epochs=5, batch_size=16, embedding_dim=16, width=16).fit(X, y), X


@pytest.mark.parametrize("kind", ["an-gnn", "knn-gnn"])
def test_graph_forward_is_permutation_equivariant(kind):
    model, X = _fitted_gnn(kind)
    x = torch.from_numpy(model._standardise(X))
    perm = torch.randperm(len(x), generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        full, permuted = model.network_(x), model.network_(x[perm])
    torch.testing.assert_close(permuted, full[perm], rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("kind", ["an-gnn", "knn-gnn"])
def test_new_items_are_embedded_independently_of_each_other(kind):
    model, X = _fitted_gnn(kind)
    queries = X[:10] + 0.3
    together = model.transform(queries)
    alone = np.stack([model.transform(q[None])[0] for q in queries])
    reversed_ = model.transform(queries[::-1])[::-1]
    np.testing.assert_allclose(together, alone, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(together, reversed_, rtol=1e-4, atol=1e-5)


def test_cached_reference_graph_gives_what_a_fresh_computation_gives():
    model, X = _fitted_gnn()
    cached = [model.transform(X[i:i + 1] + 0.1)[0] for i in range(3)]  # the cache is reused
    with torch.no_grad():
        fresh = model.network_.embed_queries(model.reference_,
                                             torch.from_numpy(model._standardise(X[:3] + 0.1)))
    np.testing.assert_allclose(np.stack(cached), model._finish(fresh.numpy()), rtol=1e-5,
                               atol=1e-6)


def test_reference_set_can_be_replaced():
    model, X = _fitted_gnn()
    before = model.transform(X[:3])
    model.set_reference(X[::-1] * 0.5)
    assert not np.allclose(before, model.transform(X[:3]))
    assert model.embed_reference().shape == (len(X), 16)


# -- learning on real data ---------------------------------------------------------------------
@pytest.fixture(scope="module")
def extended_mfcc(cyberlioz_dir, feature_cache):
    """MFCC of a fixed random 1,200-item subset of the simulated Cyberlioz extended set."""
    from mirsim.datasets.cyberlioz import load_cyberlioz_extended
    from mirsim.features import make_extractor
    from mirsim.features.extraction import extract_features

    c = load_cyberlioz_extended(cyberlioz_dir)
    c = c.subset(np.sort(np.random.default_rng(0).choice(len(c), 1200, replace=False)))
    r = extract_features(c.sources, make_extractor("mfcc"), cache=feature_cache, n_jobs=2)
    assert not r.skipped
    return r.features, c.items["label"].to_numpy(), c.group_codes()


@pytest.mark.slow
@pytest.mark.parametrize("name", ["mlp", "an-gnn"])
def test_training_improves_retrieval_on_real_sounds(extended_mfcc, name):
    X, y, g = extended_mfcc
    train, test = np.arange(len(X)) % 5 != 0, np.arange(len(X)) % 5 == 0
    base = make_model("euclidean").fit(X[train], y[train]).transform(X[test])
    model = make_model(name, epochs=20, batch_size=256).fit(X[train], y[train])
    learned = model.transform(X[test])
    before, after = ii_p_at_k(base, y[test], g[test]), ii_p_at_k(learned, y[test], g[test])
    # measured: Euclidean 0.118, MLP 0.192, AN-GNN 0.165 (seeded, CPU)
    assert after > 1.3 * before, (before, after)
    assert model.loss_history_[-1] < model.loss_history_[0]


def test_a_failed_fit_leaves_no_fitted_state():
    X, y = _blobs()
    model = make_model("lmnn").fit(X, y)
    model.set_params(n_neighbors=0)
    with pytest.raises(ValueError):
        model.fit(X, y)
    with pytest.raises(NotFittedError):
        model.transform(X)


def test_numpy_parameters_survive_save_and_load(tmp_path):
    X, y = _blobs()
    model = make_model("mlp", epochs=np.int64(2), hidden=(np.int64(8), 16)).fit(X, y)
    loaded = load_model(model.save(tmp_path / "m"))
    assert loaded.get_params() == {**model.get_params(), "hidden": (8, 16)}
    loaded.fit(X, y)  # the loaded parameters are usable again
