"""Classification as metric learning: a softmax classifier whose penultimate layer is the
embedding, with or without a normalisation layer.

Lee et al. (ISMIR 2020, "Metric learning vs classification for disentangled music
representation learning") found that the normalisation layer decides whether a classifier's
embedding is good for retrieval: without it, R@1 6.1; with it, 43.8, above triplet networks'
31.8 (their data and task: see the README's *Results*). ``normalize`` chooses between the two:

``True``   the normalised softmax (Zhai & Wu 2019; the ``normalized-softmax`` loss): embeddings
           and class weights L2-normalised, logits their cosine divided by a temperature;
           embeddings compared by cosine distance;
``False``  an ordinary linear classification layer (the ``softmax`` loss); embeddings compared
           by Euclidean distance (or cosine, with ``distance="cosine"``).

The classification layer belongs to the loss: only the embedding network is kept.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np  # noqa: F401  (used by the examples)

from mirsim.models.baselines import MLPModel
from mirsim.params import Interval, Options, estimator, param
from mirsim.registries import LOSSES, MODELS


@MODELS.register
@estimator
class ClassifierModel(MLPModel):
    """Softmax classification over the embedding of an MLP (the MLP model's network: hidden
    layers of 256 and 512 units, a linear output layer of ``embedding_dim`` units), with a
    normalisation layer (``normalize=True``, the default) or without.

    The loss follows from ``normalize`` (``normalized-softmax`` or ``softmax``), so the model
    has no ``loss`` or ``miner`` parameter; ``temperature`` is the normalised softmax's.

    Examples
    --------
    >>> X = np.random.default_rng(0).standard_normal((40, 6)); y = np.arange(40) % 2
    >>> m = ClassifierModel(epochs=2, embedding_dim=8).fit(X, y)
    >>> m.distance_, float(np.linalg.norm(m.transform(X), axis=1).round(4).min())
    ('cosine', 1.0)
    >>> ClassifierModel(normalize=False, epochs=2).fit(X, y).distance_
    'euclidean'
    """

    name = "classifier"
    display_name = "Classification (normalised)"
    table1_row = None
    supervision = ("labels",)

    normalize: bool = param(True, Options((True, False)),
                            "normalisation layer: normalized-softmax on cosine distance (true) "
                            "or a plain softmax layer on Euclidean distance (false)")
    temperature: float = param(0.05, Interval(float, 0, None, closed="neither"),
                               "softmax temperature of the normalised classifier")
    # not parameters here: the loss follows from ``normalize`` and takes no miner
    loss: Any = dataclasses.field(default=None, init=False, repr=False)
    miner: Any = dataclasses.field(default=None, init=False, repr=False)

    @classmethod
    def display_name_for(cls, params: dict[str, Any] | None = None) -> str:
        """``Classification (normalised)`` or ``Classification (not normalised)``.

        >>> ClassifierModel.display_name_for({"normalize": False})
        'Classification (not normalised)'
        """
        normalised = (params or {}).get("normalize", True)
        return cls.display_name if normalised else "Classification (not normalised)"

    def _loss_spec(self):
        if self.normalize:
            return LOSSES.make("normalized-softmax", temperature=self.temperature)
        return LOSSES.make("softmax")
