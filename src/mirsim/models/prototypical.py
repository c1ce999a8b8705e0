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

from mirsim.evaluation.metrics import prepare_embeddings
from mirsim.models.baselines import MLPModel
from mirsim.models.base import _component
from mirsim.params import Nullable, estimator, param
from mirsim.registries import LOSSES, MODELS, SAMPLERS


def class_means(embeddings: np.ndarray, codes: np.ndarray, n_classes: int,
                distance: str) -> np.ndarray:
    """Mean embedding of each class ``0..n_classes-1``, as ``distance`` compares embeddings
    (for cosine: the mean of the L2-normalised embeddings, normalised again).

    Examples
    --------
    >>> E = np.array([[1.0, 0.0], [3.0, 0.0], [0.0, 2.0]])
    >>> class_means(E, np.array([0, 0, 1]), 2, "euclidean").tolist()
    [[2.0, 0.0], [0.0, 2.0]]
    >>> class_means(E, np.array([0, 0, 1]), 2, "cosine").tolist()
    [[1.0, 0.0], [0.0, 1.0]]
    """
    emb = prepare_embeddings(np.asarray(embeddings, dtype=np.float64), distance)
    sums = np.zeros((n_classes, emb.shape[1]))
    np.add.at(sums, codes, emb)
    counts = np.bincount(codes, minlength=n_classes)[:, None]
    means = sums / np.maximum(counts, 1)
    return prepare_embeddings(means, distance).astype(np.float32)


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
        self.prototypes_ = class_means(self._embed(X), y, int(np.max(y)) + 1, distance)

    def _state_tensors(self):
        return {**super()._state_tensors(),
                "prototypes": torch.from_numpy(np.ascontiguousarray(self.prototypes_))}

    def _load_state_tensors(self, tensors) -> None:
        super()._load_state_tensors(tensors)
        self.prototypes_ = tensors["prototypes"].numpy()
