"""The non-graph models of the AN-GNN paper's Table 1: Euclidean, linear projection, MLP.

With a tuple loss and a miner, the linear and MLP models are the tutorial's siamese and
triplet networks: ``make_model("mlp", loss="triplet", miner="semihard")``.
"""

from __future__ import annotations

import numpy as np  # noqa: F401  (used by the examples)
from torch import nn

from mirsim.models.base import MetricModel, TorchMetricModel
from mirsim.params import Interval, ListOf, estimator, param
from mirsim.registries import MODELS


@MODELS.register
@estimator
class EuclideanModel(MetricModel):
    """No learning: the Euclidean distance between standardised features.

    Examples
    --------
    >>> X = np.array([[0.0, 10.0], [2.0, 30.0]])
    >>> EuclideanModel().fit(X, [0, 1]).transform(X).tolist()
    [[-1.0, -1.0], [1.0, 1.0]]
    """

    name = "euclidean"
    display_name = "Euclidean"
    table1_row = 1
    supervision = ("labels", "triplets", "views", "similarities")  # nothing is learned: any supervision will do

    seed: int = param(0, Interval(int, 0, None), "unused (no randomness); kept for a uniform CLI")


@MODELS.register
@estimator
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
    display_name = "Linear projection"
    table1_row = 2

    def _build_network(self, n_features: int) -> nn.Module:
        return nn.Linear(n_features, self.embedding_dim, bias=False)


def mlp_network(n_features: int, hidden: tuple[int, ...], dropout: float,
                output: int) -> nn.Sequential:
    """Hidden layers (linear, batch norm, ReLU, dropout) and a linear output layer."""
    layers: list[nn.Module] = []
    width = n_features
    for h in hidden:
        layers += [nn.Linear(width, h), nn.BatchNorm1d(h), nn.ReLU(), nn.Dropout(dropout)]
        width = h
    layers.append(nn.Linear(width, output))
    return nn.Sequential(*layers)


@MODELS.register
@estimator
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
    display_name = "MLP"
    table1_row = 4

    hidden: tuple = param((256, 512), ListOf(Interval(int, 1, None)), "hidden layer widths")
    dropout: float = param(0.5, Interval(float, 0, 1, closed="left"), "dropout rate")

    def _build_network(self, n_features: int) -> nn.Module:
        return mlp_network(n_features, tuple(self.hidden), self.dropout, self.embedding_dim)
