"""Prototypical networks (Snell, Swersky & Zemel 2017): an embedding in which each class is
represented by the mean embedding of its items, its prototype.

Training draws episodes (``m-per-class`` batches: ``m`` items of each class) and classifies
half of each class's items by their squared Euclidean distance to the prototypes of the other
halves (the ``prototypical`` loss). After training, the model keeps the prototype of every
training class, ``prototypes_``: what ``mirsim query INDEX --prototype LABEL`` can search with
("sounds like this class").
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from mirsim.evaluation.metrics import class_centroids
from mirsim.models.baselines import MLPModel
from mirsim.models.base import _component
from mirsim.params import Nullable, estimator, param
from mirsim.registries import LOSSES, MODELS, SAMPLERS


@MODELS.register
@estimator
class PrototypicalModel(MLPModel):
    """Prototypical network over an MLP (the MLP model's network), trained on episodes
    (``m-per-class`` batches) with the ``prototypical`` loss, on Euclidean distance by default.

    Attributes
    ----------
    prototypes_ : ndarray of shape (n_classes, embedding_dim)
        Mean embedding of each training class (row ``i`` is class ``classes_[i]``), as the
        model's distance compares embeddings; saved with the model.

    Examples
    --------
    >>> X = np.random.default_rng(0).standard_normal((40, 6)); y = np.arange(40) % 2
    >>> m = PrototypicalModel(epochs=2, embedding_dim=8).fit(X, y)
    >>> m.distance_, m.prototypes_.shape
    ('euclidean', (2, 8))
    """

    name = "prototypical"
    display_name = "Prototypical network"
    table1_row = None
    supervision = ("labels",)

    loss: Any = param("prototypical", _component(LOSSES), "training loss (name or object)")
    sampler: Any = param("m-per-class", Nullable(_component(SAMPLERS)),
                         "how batches (episodes) are drawn")

    def _fit_standardised(self, X, y, groups, *, distance, triplets, triplet_weights, views):
        super()._fit_standardised(X, y, groups, distance=distance, triplets=triplets,
                                  triplet_weights=triplet_weights, views=views)
        # y holds codes 0..C-1 of every training class: row i of the centroids is class i
        self.prototypes_ = class_centroids(self._embed(X), y, distance)[1].astype(np.float32)

    def _state_tensors(self):
        return {**super()._state_tensors(),
                "prototypes": torch.from_numpy(np.ascontiguousarray(self.prototypes_))}

    def _load_state_tensors(self, tensors) -> None:
        super()._load_state_tensors(tensors)
        self.prototypes_ = tensors["prototypes"].numpy()
