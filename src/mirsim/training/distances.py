"""Distances: the one geometry shared by a model's loss, miner, embeddings, metrics and index.

``cosine``     embeddings are L2-normalised; items are ranked by inner product (equivalently,
               by Euclidean distance on the unit sphere). Losses that need a similarity get
               pytorch-metric-learning's ``CosineSimilarity``; losses and miners that need a
               distance get its ``LpDistance`` on normalised embeddings (its default), the
               chord distance ``sqrt(2 - 2 cos)``, which ranks items the same way.
``euclidean``  embeddings are used as they are, ranked by Euclidean distance (``LpDistance``
               without normalisation); for models that train on it (LMNN, LDA, NCA,
               classifiers without a normalisation layer, prototypical networks).
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from mirsim.errors import MirsimError
from mirsim.evaluation.metrics import prepare_embeddings
from mirsim.params import estimator
from mirsim.registries import DISTANCES
from mirsim.training.components import Component


class Distance(Component):
    """Base class: a geometry of the embedding space."""

    kind = "distance"
    #: whether embeddings are L2-normalised in this geometry
    normalised: ClassVar[bool] = False
    #: FAISS metric of an index over such embeddings: "l2" or "inner_product"
    faiss_metric: ClassVar[str] = "l2"
    catalogue_attributes = ("normalised", "faiss_metric")

    def prepare(self, embeddings: np.ndarray) -> np.ndarray:
        """Embeddings as they are compared in this geometry (rows normalised for cosine)."""
        return prepare_embeddings(embeddings, self.name)

    def pml_distance(self, power: float = 1):
        """pytorch-metric-learning distance for losses and miners that need a distance."""
        from pytorch_metric_learning.distances import LpDistance

        return LpDistance(normalize_embeddings=self.normalised, p=2, power=power)

    def pml_similarity(self):
        """pytorch-metric-learning similarity for losses that need one (cosine only)."""
        raise MirsimError(f"this loss needs a similarity, which the {self.name} distance does "
                          f"not give: use --distance cosine")


@DISTANCES.register
@estimator
class CosineDistance(Distance):
    """Cosine distance: L2-normalised embeddings, ranked by inner product.

    Examples
    --------
    >>> CosineDistance().prepare(np.array([[3.0, 4.0]])).tolist()
    [[0.6, 0.8]]
    """

    name = "cosine"
    normalised = True
    faiss_metric = "inner_product"

    def pml_similarity(self):
        from pytorch_metric_learning.distances import CosineSimilarity

        return CosineSimilarity()


@DISTANCES.register
@estimator
class EuclideanDistance(Distance):
    """Euclidean distance between embeddings as they are.

    Examples
    --------
    >>> EuclideanDistance().prepare(np.array([[3.0, 4.0]])).tolist()
    [[3.0, 4.0]]
    """

    name = "euclidean"
