"""Graph neural network metric models: kNN-GNN and AN-GNN (Vahidi et al., WASPAA 2023).

A batch of items is a graph. In each of the two blocks the graph is rebuilt from the current
node representations ``h``:

* ``knn`` (kNN-GNN): each node is joined to its k nearest nodes (Euclidean, itself included),
  with weight 1;
* ``adaptive`` (AN-GNN): a relation network predicts a scale ``sigma_i > 0`` per node and
  ``A_ij = exp(-1/2 * d(h_i / sigma_i, h_j / sigma_j))`` with ``d`` the mean squared difference;
  each row keeps its k largest weights (itself included, since ``A_ii = 1``).

The kept edges are made symmetric (an edge kept by either end is kept) and normalised
symmetrically, ``S = D^-1/2 A D^-1/2``. A block is a GCN layer ``ELU(S h W)`` (width d -> d/2),
a linear layer back to d with batch norm and a residual connection, then a two-layer FFN
(d -> d/4 -> d, batch norm, ReLU) with a residual connection.

**Width.** As in the authors' code, the blocks run at the width of the input features, without
an input layer (40 for MFCC, 512 for OpenL3); mirsim caps that default at the embedding
dimension (512, the proxies'), so wider features (scat1d's 800) first go through a linear layer
down to 512. When the blocks are narrower than the embedding, a linear output layer maps them to
it. ``width`` can be set: on the simulated Cyberlioz extended set with MFCC, 512-wide blocks
(after an input layer) reach ii-P@5 0.88 instead of 0.39, at five times the training cost, by
memorising the near-duplicate items of each playing technique; the paper reports about 0.40
for AN-GNN with MFCC, which the default reproduces.

**Embedding items that were not in the graph (inductive inference).** A trained graph model
keeps a *reference set*: the standardised features of the items it was fitted on (or any set
passed to :meth:`GraphModel.set_reference`). A new item q is embedded as one extra node of the
reference graph: in each block its row keeps itself and its k-1 strongest reference neighbours,
its degree is the sum of that row, and the reference nodes' own graph, degrees and
representations are those of the reference set alone (a query never changes the reference, so
every query is embedded independently of the others and of the order of the queries). The
reference set's own embedding (:meth:`GraphModel.embed_reference`) is the transductive run over
the reference graph.

Differences from the authors' code (read for understanding, not copied): there the Gaussian
weights only *select* edges, which are then used unweighted, so the relation network receives no
gradient; here the weights enter the propagation, so sigma is learned, as the paper describes.
The relation network's output goes through a softplus to keep sigma positive.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.utils.validation import validate_data
from torch import nn

from mirsim.models.base import TorchMetricModel
from mirsim.params import Interval, Nullable, estimator, param
from mirsim.registries import MODELS
from mirsim.training import denormals_flushed

_EPS = 1e-8
#: Graphs up to this many nodes are searched with one dense matrix product.
DENSE_SEARCH_MAX_NODES = 4096


def nearest_indices(z_query: torch.Tensor, z_ref: torch.Tensor, k: int,
                    chunk: int = 2048) -> torch.Tensor:
    """Indices of the k nearest rows of ``z_ref`` for each row of ``z_query`` (squared
    Euclidean, ties broken by index), computed in chunks without gradient.

    Examples
    --------
    >>> z = torch.tensor([[0.0], [1.0], [5.0]])
    >>> nearest_indices(z, z, 2).tolist()
    [[0, 1], [1, 0], [2, 1]]
    """
    k = min(k, z_ref.shape[0])
    out = []
    with torch.no_grad():
        for s in range(0, z_query.shape[0], chunk):
            d = torch.cdist(z_query[s:s + chunk], z_ref)
            out.append(torch.topk(d, k, dim=1, largest=False, sorted=True).indices)
    return torch.cat(out)


def symmetric_edges(idx: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Edges ``(src, dst)`` of the symmetric union of a kNN graph (an edge kept by either end,
    listed once); ``idx[i]`` lists the distinct neighbours node ``i`` keeps.

    Every kept edge ``i -> j`` is listed, then its reverse ``j -> i`` unless ``j`` keeps ``i``
    too: one gather of ``idx[idx]`` instead of sorting the edge keys (five times faster).

    Examples
    --------
    >>> src, dst = symmetric_edges(torch.tensor([[0, 1], [1, 0], [2, 1]]))
    >>> sorted(zip(src.tolist(), dst.tolist()))
    [(0, 0), (0, 1), (1, 0), (1, 1), (1, 2), (2, 1), (2, 2)]
    """
    rows = torch.arange(idx.shape[0], device=idx.device)[:, None].expand_as(idx)
    one_way = ~(idx[idx] == rows[..., None]).any(dim=-1)  # j = idx[i, m] does not keep i
    return (torch.cat([rows.reshape(-1), idx[one_way]]),
            torch.cat([idx.reshape(-1), rows[one_way]]))


class RelationNetwork(nn.Module):
    """Predicts a positive scale sigma_i per node: d -> d/8 -> d/32 -> 1, ReLU, softplus."""

    def __init__(self, width: int):
        super().__init__()
        h1 = max(width // 8, 4)
        h2 = max(h1 // 4, 2)
        self.layers = nn.Sequential(nn.Linear(width, h1), nn.ReLU(), nn.Linear(h1, h2), nn.ReLU(),
                                    nn.Linear(h2, 1))

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return F.softplus(self.layers(h)) + 1e-3


class Adjacency(nn.Module):
    """Builds the sparse, symmetric, normalised graph of a set of node representations."""

    def __init__(self, width: int, k: int = 3, kind: str = "adaptive"):
        super().__init__()
        if kind not in {"adaptive", "knn"}:
            raise ValueError("kind must be 'adaptive' or 'knn'")
        self.k, self.kind = k, kind
        self.relation = RelationNetwork(width) if kind == "adaptive" else None

    def coordinates(self, h: torch.Tensor) -> torch.Tensor:
        """Where distances are measured: ``h / sigma`` (adaptive) or ``h`` (knn)."""
        return h / self.relation(h) if self.relation is not None else h

    def weights(self, zi: torch.Tensor, zj: torch.Tensor) -> torch.Tensor:
        if self.relation is None:
            return torch.ones(zi.shape[0], dtype=zi.dtype, device=zi.device)
        return torch.exp(-0.5 * ((zi - zj) ** 2).mean(dim=1))

    def graph(self, h: torch.Tensor):
        """Edges ``(src, dst)``, normalised weights and degrees of the graph over ``h``.

        Neighbours are searched without gradient (one matrix product up to
        :data:`DENSE_SEARCH_MAX_NODES` nodes, in chunks above); the weights of the kept edges
        are then computed with gradient, so sigma is learned.
        """
        n = h.shape[0]
        z = self.coordinates(h)
        if n <= DENSE_SEARCH_MAX_NODES:
            with torch.no_grad():
                # |z_i - z_j|^2 = |z_i|^2 + |z_j|^2 - 2 z_i.z_j: in row i the nearest j has the
                # largest z_i.z_j - |z_j|^2 / 2, one fused matrix product
                half_sq = 0.5 * (z * z).sum(dim=1)
                score = torch.addmm(half_sq[None, :], z, z.T, beta=-1.0)
                score.fill_diagonal_(float("inf"))  # itself first, whatever the rounding
                idx = torch.topk(score, min(self.k, n), dim=1, sorted=True).indices
        else:
            idx = nearest_indices(z, z, self.k)  # itself first: distance 0
        src, dst = symmetric_edges(idx)
        w = self.weights(z[src], z[dst])
        deg = torch.zeros(n, dtype=w.dtype, device=w.device).index_add(0, src, w)
        norm = w / torch.sqrt(deg[src] * deg[dst] + _EPS)
        return src, dst, norm, deg, z

    def query_rows(self, h_query: torch.Tensor, z_ref: torch.Tensor, deg_ref: torch.Tensor):
        """Rows of new nodes attached to a fixed reference graph: (self weight, neighbour
        indices (q, k-1), neighbour weights (q, k-1))."""
        z_q = self.coordinates(h_query)
        idx = nearest_indices(z_q, z_ref, self.k - 1)
        zi = z_q.repeat_interleave(idx.shape[1], dim=0)
        w = self.weights(zi, z_ref[idx.reshape(-1)]).reshape(idx.shape)
        deg_q = 1.0 + w.sum(dim=1)  # the self edge has weight 1 in both kinds of graph
        norm = w / torch.sqrt(deg_q[:, None] * deg_ref[idx] + _EPS)
        return 1.0 / deg_q, idx, norm


class GraphBlock(nn.Module):
    """GCN layer (ELU) + linear/BN with residual + two-layer FFN with residual."""

    def __init__(self, width: int, k: int, kind: str, dropout: float = 0.1):
        super().__init__()
        self.adjacency = Adjacency(width, k, kind)
        half, quarter = max(width // 2, 1), max(width // 4, 1)
        self.gcn = nn.Linear(width, half)
        self.dropout = nn.Dropout(dropout)
        self.expand = nn.Sequential(nn.Linear(half, width), nn.BatchNorm1d(width))
        self.ffn = nn.Sequential(nn.Linear(width, quarter), nn.BatchNorm1d(quarter), nn.ReLU(),
                                 nn.Linear(quarter, width), nn.BatchNorm1d(width))

    def update(self, h: torch.Tensor, message: torch.Tensor) -> torch.Tensor:
        x = self.expand(F.elu(message)) + h
        return self.ffn(x) + x

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        src, dst, norm, _, _ = self.adjacency.graph(h)
        hw = self.gcn(self.dropout(h))
        message = torch.zeros_like(hw).index_add(0, src, norm[:, None] * hw[dst])
        return self.update(h, message)

    def reference_pass(self, h_ref: torch.Tensor):
        """Run the block over the reference graph; return its output and what queries need
        (coordinates, degrees and transformed features of the reference nodes)."""
        src, dst, norm, deg, z_ref = self.adjacency.graph(h_ref)
        hw_ref = self.gcn(self.dropout(h_ref))
        msg_ref = torch.zeros_like(hw_ref).index_add(0, src, norm[:, None] * hw_ref[dst])
        return self.update(h_ref, msg_ref), (z_ref, deg, hw_ref)

    def query_pass(self, h_q: torch.Tensor, state) -> torch.Tensor:
        """Run the block for new nodes attached to a reference graph (see module docstring)."""
        z_ref, deg, hw_ref = state
        self_w, idx, qnorm = self.adjacency.query_rows(h_q, z_ref, deg)
        msg_q = self_w[:, None] * self.gcn(self.dropout(h_q)) + (qnorm[..., None] * hw_ref[idx]).sum(1)
        return self.update(h_q, msg_q)


class GraphEmbeddingNetwork(nn.Module):
    """Input layer + graph blocks. ``forward(x)`` treats the batch as one graph;
    ``embed_queries(x_ref, x_q)`` embeds new nodes against a reference graph."""

    def __init__(self, n_features: int, embedding_dim: int = 512, width: int | None = None,
                 n_blocks: int = 2, k: int = 3, kind: str = "adaptive", dropout: float = 0.1):
        super().__init__()
        # the authors' design, blocks as wide as the input features (no input layer), capped
        # at the embedding's width so that wider features are first projected down to it
        width = width or min(n_features, embedding_dim)
        self.input = nn.Identity() if width == n_features else nn.Linear(n_features, width)
        self.blocks = nn.ModuleList(GraphBlock(width, k, kind, dropout) for _ in range(n_blocks))
        # the blocks' output is the embedding when they are as wide as it (the paper's design)
        self.output = nn.Identity() if width == embedding_dim else nn.Linear(width, embedding_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.input(x)
        for block in self.blocks:
            h = block(h)
        return self.output(h)

    def reference_states(self, x_ref: torch.Tensor) -> list:
        """Per block, what new nodes need of the reference graph (computed once per reference)."""
        h_ref, states = self.input(x_ref), []
        for block in self.blocks:
            h_ref, state = block.reference_pass(h_ref)
            states.append(state)
        return states

    def embed_with_states(self, states: list, x_q: torch.Tensor) -> torch.Tensor:
        """Embeddings of new nodes given :meth:`reference_states` (cost linear in the reference)."""
        h_q = self.input(x_q)
        for block, state in zip(self.blocks, states):
            h_q = block.query_pass(h_q, state)
        return self.output(h_q)

    def embed_queries(self, x_ref: torch.Tensor, x_q: torch.Tensor) -> torch.Tensor:
        """Embeddings of new nodes ``x_q`` attached to the graph of ``x_ref``."""
        return self.embed_with_states(self.reference_states(x_ref), x_q)


@estimator
class GraphModel(TorchMetricModel):
    """Graph metric model (see module docstring). ``kind='adaptive'`` is AN-GNN,
    ``kind='knn'`` kNN-GNN. ``transform`` embeds items inductively against the reference set.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> X = rng.standard_normal((60, 5)); y = np.arange(60) % 3
    >>> m = ANGNNModel(embedding_dim=16, epochs=2).fit(X, y)
    >>> m.transform(X[:4]).shape
    (4, 16)
    """

    kind = "adaptive"
    needs_reference = True

    k: int = param(3, Interval(int, 1, None), "neighbours per node (itself included)")
    width: int | None = param(None, Nullable(Interval(int, 1, None)),
                              "width of the graph blocks (default: the features', up to 512)")
    n_blocks: int = param(2, Interval(int, 1, None), "graph blocks")
    dropout: float = param(0.1, Interval(float, 0, 1, closed="left"), "dropout rate")
    query_chunk: int = param(4096, Interval(int, 1, None), "new items embedded at once")

    def _build_network(self, n_features: int) -> nn.Module:
        return GraphEmbeddingNetwork(n_features, self.embedding_dim, self.width, self.n_blocks,
                                     self.k, self.kind, self.dropout)

    def _fit_standardised(self, X, y, groups, **supervision) -> None:
        super()._fit_standardised(X, y, groups, **supervision)
        self._use_reference(torch.from_numpy(np.ascontiguousarray(X, dtype=np.float32)))

    def _use_reference(self, reference: torch.Tensor) -> None:
        # the reference side of the graph is computed once and reused by every later query
        self.reference_ = reference.to(self._device())
        self.network_.eval()
        with torch.no_grad(), denormals_flushed():
            self.reference_states_ = self.network_.reference_states(reference)

    def set_reference(self, X: np.ndarray) -> GraphModel:
        """Use the items ``X`` (raw features, standardised with the fitted statistics) as the
        reference graph in which new items are embedded."""
        self._require_fitted()
        X = np.asarray(validate_data(self, X, reset=False, dtype=(np.float64, np.float32)),
                       dtype=np.float32)
        self._use_reference(torch.from_numpy(self._standardise(X)))
        return self

    def embed_reference(self) -> np.ndarray:
        """Embeddings of the reference items themselves (one transductive pass)."""
        self._require_fitted()
        self.network_.eval()
        with torch.no_grad(), denormals_flushed():
            return self._finish(self.network_(self.reference_).cpu().numpy())

    def _embed(self, X: np.ndarray) -> np.ndarray:
        device = self._device()
        if self.reference_.device != device:  # loaded on the CPU, embedding elsewhere
            self._use_reference(self.reference_)
        states = self.reference_states_
        self.network_.eval()
        with torch.no_grad(), denormals_flushed():
            parts = [self.network_.embed_with_states(
                states, torch.from_numpy(X[s:s + self.query_chunk]).to(device)).cpu()
                for s in range(0, len(X), self.query_chunk)]
        return torch.cat(parts).numpy().astype(np.float32)

    def _state_tensors(self):
        return {**super()._state_tensors(), "reference": self.reference_.cpu()}

    def _load_state_tensors(self, tensors) -> None:
        super()._load_state_tensors(tensors)
        self._use_reference(tensors["reference"])


@MODELS.register
@estimator
class ANGNNModel(GraphModel):
    """AN-GNN: adaptive Gaussian kNN graph with a learned per-node scale."""

    name = "an-gnn"
    display_name = "AN-GNN"
    table1_row = 6
    kind = "adaptive"


@MODELS.register
@estimator
class KNNGNNModel(GraphModel):
    """kNN-GNN: the same network on a Euclidean k-nearest-neighbour graph (k = 3)."""

    name = "knn-gnn"
    display_name = "kNN-GNN"
    table1_row = 5
    kind = "knn"
