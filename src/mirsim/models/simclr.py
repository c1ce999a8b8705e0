"""SimCLR (Chen et al., 2020) on audio features: a metric learned from unlabelled sounds.

Each sound comes with augmented views (random crop, pitch shift, filtering, gain, noise:
:mod:`mirsim.features.views`), whose features are extracted like the sound's. An MLP backbone
maps features to the embedding; a projection head maps the embedding to the space where the
NT-Xent loss pulls the two views of a sound together and pushes the other sounds of the batch
away. As in SimCLR, the head is used in training only: the embedding is the layer before it.

No label is used, ever: with a labelled data set, labels only measure the metric learned.
The experiment layer (:mod:`mirsim.experiments.experiment`) makes the views a model asks for
(``needs_views``) with :meth:`SimCLRModel.view_augmentation`, ``n_views`` and ``seed``.
"""

from __future__ import annotations

from typing import Any

import numpy as np  # noqa: F401  (used by the examples)
from torch import nn

from mirsim.features.views import AugmentationParams, ViewAugmentation
from mirsim.models.base import TorchMetricModel, _component
from mirsim.models.baselines import mlp_network
from mirsim.params import Interval, ListOf, estimator, param
from mirsim.registries import LOSSES, MODELS


@MODELS.register
@estimator
class SimCLRModel(TorchMetricModel, AugmentationParams):
    """Self-supervised (no labels): an MLP trained with NT-Xent over augmented views of each
    sound, with a projection head used in training only; cosine distance.

    Defaults are for a library of about 100 to 1,000 sounds on a CPU: a small backbone (one
    hidden layer of 256 units, a 128-d embedding) that a few hundred sounds can train without
    memorising them; Adam's usual learning rate (1e-3) rather than the AN-GNN paper's 0.05,
    which makes contrastive training diverge; batches of 256 (NT-Xent's negatives are the
    batch's other sounds: the larger the better, and 256 sounds still train in a second per
    epoch); two augmented views per sound besides the clean one (each view costs one feature
    extraction of the whole library); the temperature of pytorch-metric-learning's NT-Xent
    is set with ``-p temperature=...``.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> X = rng.standard_normal((40, 6)); views = X[:, None, :] + 0.1 * rng.standard_normal((40, 2, 6))
    >>> m = SimCLRModel(epochs=3).fit(X, views=views)
    >>> m.transform(X).shape, m.distance_
    ((40, 128), 'cosine')
    """

    name = "simclr"
    display_name = "SimCLR (self-supervised)"
    supervision = ("views",)
    needs_views = True

    embedding_dim: int = param(128, Interval(int, 1, None), "width of the embedding")
    loss: Any = param("ntxent", _component(LOSSES), "training loss (self-supervised: ntxent)")
    hidden: tuple = param((256,), ListOf(Interval(int, 1, None)), "hidden layer widths")
    dropout: float = param(0.1, Interval(float, 0, 1, closed="left"), "dropout rate")
    projection_dim: int = param(64, Interval(int, 1, None),
                                "output width of the projection head (training only)")
    n_views: int = param(2, Interval(int, 1, 16), "augmented views of each sound")
    epochs: int = param(200, Interval(int, 1, None), "passes over the training data")
    batch_size: int = param(256, Interval(int, 2, None), "sounds per batch")
    lr: float = param(1e-3, Interval(float, 0, None, closed="neither"), "AdamW learning rate")
    weight_decay: float = param(1e-4, Interval(float, 0, None), "AdamW weight decay")
    lr_step: int = param(50, Interval(int, 1, None), "epochs between learning-rate decays")

    def _build_network(self, n_features: int) -> nn.Module:
        return mlp_network(n_features, tuple(self.hidden), self.dropout, self.embedding_dim)

    def _build_head(self) -> nn.Module:
        # SimCLR's head g(h) = W2 ReLU(W1 h), with batch norm as in SimCLR v2
        return nn.Sequential(nn.Linear(self.embedding_dim, self.embedding_dim),
                             nn.BatchNorm1d(self.embedding_dim), nn.ReLU(),
                             nn.Linear(self.embedding_dim, self.projection_dim))

    def view_augmentation(self) -> ViewAugmentation:
        """How the model's views are made (its augmentation parameters).

        Examples
        --------
        >>> SimCLRModel(pitch_semitones=2.0).view_augmentation().pitch_semitones
        2.0
        """
        return ViewAugmentation(**self.augmentation_params())
