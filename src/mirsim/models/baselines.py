"""The non-graph models of the AN-GNN paper's Table 1: Euclidean, linear projection, MLP."""

from __future__ import annotations

import numpy as np  # noqa: F401  (used by the examples)
from torch import nn

from mirsim.models.base import MetricModel, TorchMetricModel


class EuclideanModel(MetricModel):
    """No learning: the Euclidean distance between standardised features.

    Examples
    --------
    >>> X = np.array([[0.0, 10.0], [2.0, 30.0]])
    >>> EuclideanModel().fit(X, [0, 1]).transform(X).tolist()
    [[-1.0, -1.0], [1.0, 1.0]]
    """

    name = "euclidean"

    def __init__(self, seed: int = 0):
        self.seed = seed


class LinearModel(TorchMetricModel):
    """A learned linear projection ``x -> W x`` (no bias), i.e. a Mahalanobis metric.

    The projection is full rank: its output (``embedding_dim``, 512) is at least as wide as the
    input features used here.

    Examples
    --------
    >>> X = np.random.default_rng(0).standard_normal((40, 6)); y = np.arange(40) % 2
    >>> LinearModel(embedding_dim=8, epochs=2).fit(X, y).transform(X).shape
    (40, 8)
    """

    name = "linear"

    def _build_network(self, n_features: int) -> nn.Module:
        return nn.Linear(n_features, self.embedding_dim, bias=False)


class MLPModel(TorchMetricModel):
    """Multi-layer perceptron: hidden layers of 256 and 512 units (batch norm, ReLU,
    dropout 0.5), then a linear output layer of ``embedding_dim`` (512) units.

    Examples
    --------
    >>> X = np.random.default_rng(0).standard_normal((40, 6)); y = np.arange(40) % 2
    >>> MLPModel(epochs=2).fit(X, y).transform(X).shape
    (40, 512)
    """

    name = "mlp"

    def __init__(self, hidden: tuple[int, ...] = (256, 512), dropout: float = 0.5, **kwargs):
        super().__init__(**kwargs)
        self.hidden, self.dropout = tuple(hidden), dropout

    def _build_network(self, n_features: int) -> nn.Module:
        layers: list[nn.Module] = []
        width = n_features
        for h in self.hidden:
            layers += [nn.Linear(width, h), nn.BatchNorm1d(h), nn.ReLU(), nn.Dropout(self.dropout)]
            width = h
        layers.append(nn.Linear(width, self.embedding_dim))
        return nn.Sequential(*layers)
