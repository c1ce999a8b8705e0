"""Losses, by name: pytorch-metric-learning's, and the two it lacks (plain softmax
classification and prototypical networks).

Each entry is a small parameter object whose :meth:`Loss.build` makes the torch module to
train with. Defaults are pytorch-metric-learning's (and the AN-GNN paper's for Proxy-Anchor).

What a loss learns from (``supervision``):

``labels``  class labels (proxies, classification, NCA, supervised contrastive);
``tuples``  class labels, or a fixed set of judged triplets (``fit(X, triplets=...)``): the
            triplet, contrastive and multi-similarity losses; they take a miner;
``views``   two augmented views of each item, no labels (self-supervised).

Losses on a similarity (``needs_similarity``) train on cosine similarity only; the others take
a distance: with ``--distance cosine`` pytorch-metric-learning's ``LpDistance`` on normalised
embeddings (its default, so its margins mean what its documentation says), with
``--distance euclidean`` on embeddings as they are.

>>> from mirsim.registries import LOSSES
>>> LOSSES.make("triplet", margin=0.2).margin
0.2
"""

from __future__ import annotations

from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from mirsim.params import Interval, Options, estimator, param
from mirsim.registries import LOSSES
from mirsim.training.components import Component
from mirsim.training.distances import Distance


class Loss(Component):
    """Base class of the registered losses."""

    kind = "loss"
    #: "labels", "tuples" (labels or fixed triplets) or "views" (self-supervised)
    supervision: ClassVar[str] = "labels"
    #: trains on a similarity: cosine distance only
    needs_similarity: ClassVar[bool] = False
    #: has weights of its own (proxies, a classification layer), trained with the network
    has_weights: ClassVar[bool] = False
    #: takes a miner's tuples
    accepts_miner: ClassVar[bool] = False
    #: the distance a model uses when it is not given one
    default_distance: ClassVar[str] = "cosine"
    catalogue_attributes = ("supervision", "needs_similarity", "has_weights", "accepts_miner",
                            "default_distance")

    def build(self, *, n_classes: int, embedding_dim: int, distance: Distance) -> nn.Module:
        """The torch module: ``loss(embeddings, labels=None, indices_tuple=None)``."""
        raise NotImplementedError

    def _pml_distance(self, distance: Distance, power: float = 1):
        return distance.pml_similarity() if self.needs_similarity else distance.pml_distance(power)


@LOSSES.register
@estimator
class ProxyAnchor(Loss):
    """Proxy-Anchor (Kim et al. 2020): one learned proxy per class; the AN-GNN paper's loss."""

    name = "proxy-anchor"
    needs_similarity = True
    has_weights = True
    margin: float = param(0.1, Interval(float, 0, None), "delta: margin around the proxies")
    alpha: float = param(32.0, Interval(float, 0, None, closed="neither"), "scaling factor")

    def build(self, *, n_classes, embedding_dim, distance):
        from pytorch_metric_learning import losses

        return losses.ProxyAnchorLoss(n_classes, embedding_dim, margin=self.margin,
                                      alpha=self.alpha, distance=self._pml_distance(distance))


@LOSSES.register
@estimator
class Triplet(Loss):
    """Triplet margin loss: d(a, p) + margin < d(a, n) (a triplet network with a miner)."""

    name = "triplet"
    supervision = "tuples"
    accepts_miner = True
    margin: float = param(0.05, Interval(float, 0, None), "margin between d(a,p) and d(a,n)")
    triplets_per_anchor: str = param("all", Options(("all",)),
                                     "triplets formed per anchor when no miner is given")

    def build(self, *, n_classes, embedding_dim, distance):
        from pytorch_metric_learning import losses

        return losses.TripletMarginLoss(margin=self.margin,
                                        triplets_per_anchor=self.triplets_per_anchor,
                                        distance=self._pml_distance(distance))


@LOSSES.register
@estimator
class Contrastive(Loss):
    """Contrastive loss (siamese networks): positive pairs closer than ``pos_margin``,
    negative pairs farther than ``neg_margin``."""

    name = "contrastive"
    supervision = "tuples"
    accepts_miner = True
    pos_margin: float = param(0.0, Interval(float, 0, None), "distance below which a positive "
                                                             "pair costs nothing")
    neg_margin: float = param(1.0, Interval(float, 0, None), "distance above which a negative "
                                                             "pair costs nothing")

    def build(self, *, n_classes, embedding_dim, distance):
        from pytorch_metric_learning import losses

        return losses.ContrastiveLoss(pos_margin=self.pos_margin, neg_margin=self.neg_margin,
                                      distance=self._pml_distance(distance))


@LOSSES.register
@estimator
class MultiSimilarity(Loss):
    """Multi-similarity loss (Wang et al. 2019): weighs pairs by self- and relative similarity."""

    name = "multi-similarity"
    supervision = "tuples"
    needs_similarity = True
    accepts_miner = True
    alpha: float = param(2.0, Interval(float, 0, None, closed="neither"), "weight of positives")
    beta: float = param(50.0, Interval(float, 0, None, closed="neither"), "weight of negatives")
    base: float = param(0.5, Interval(float, -1, 1), "similarity offset")

    def build(self, *, n_classes, embedding_dim, distance):
        from pytorch_metric_learning import losses

        return losses.MultiSimilarityLoss(alpha=self.alpha, beta=self.beta, base=self.base,
                                          distance=self._pml_distance(distance))


@LOSSES.register
@estimator
class NormalizedSoftmax(Loss):
    """Normalised softmax (Zhai & Wu 2019): classification with normalised embeddings and
    class weights (a classifier with a normalisation layer)."""

    name = "normalized-softmax"
    needs_similarity = True
    has_weights = True
    temperature: float = param(0.05, Interval(float, 0, None, closed="neither"),
                               "softmax temperature")

    def build(self, *, n_classes, embedding_dim, distance):
        from pytorch_metric_learning import losses

        return losses.NormalizedSoftmaxLoss(n_classes, embedding_dim,
                                            temperature=self.temperature,
                                            distance=self._pml_distance(distance))


@LOSSES.register
@estimator
class ProxyNCA(Loss):
    """Proxy-NCA (Movshovitz-Attias et al. 2017): NCA against one learned proxy per class."""

    name = "proxy-nca"
    has_weights = True
    softmax_scale: float = param(1.0, Interval(float, 0, None, closed="neither"),
                                 "scale of the negative squared distances in the softmax")

    def build(self, *, n_classes, embedding_dim, distance):
        from pytorch_metric_learning import losses

        return losses.ProxyNCALoss(n_classes, embedding_dim, softmax_scale=self.softmax_scale,
                                   distance=self._pml_distance(distance, power=2))


@LOSSES.register
@estimator
class NCA(Loss):
    """Neighbourhood components analysis (Goldberger et al. 2005) over each batch."""

    name = "nca"
    softmax_scale: float = param(1.0, Interval(float, 0, None, closed="neither"),
                                 "scale of the negative squared distances in the softmax")

    def build(self, *, n_classes, embedding_dim, distance):
        from pytorch_metric_learning import losses

        return losses.NCALoss(softmax_scale=self.softmax_scale,
                              distance=self._pml_distance(distance, power=2))


@LOSSES.register
@estimator
class SupCon(Loss):
    """Supervised contrastive loss (Khosla et al. 2020)."""

    name = "supcon"
    needs_similarity = True
    temperature: float = param(0.1, Interval(float, 0, None, closed="neither"),
                               "softmax temperature")

    def build(self, *, n_classes, embedding_dim, distance):
        from pytorch_metric_learning import losses

        return losses.SupConLoss(temperature=self.temperature,
                                 distance=self._pml_distance(distance))


class _NTXentLoss(nn.Module):
    """NT-Xent over the cosine similarities of a batch, in O(batch²) memory and time.

    pytorch-metric-learning's ``NTXentLoss`` gives the same values and gradients, but builds
    a (positive pairs x negative pairs) matrix: cubic in the batch, 134 million entries for
    a batch of 256 items (512 views), and most of a SimCLR epoch's time even for 64. Here each
    positive pair (a, p) costs ``-s_ap + log(exp(s_ap) + sum over a's negatives of exp(s_an))``
    (similarities over the temperature), from one log-sum-exp per anchor; the mean is over
    the positive pairs, as pytorch-metric-learning's.
    """

    def __init__(self, temperature: float):
        super().__init__()
        self.temperature = temperature

    def forward(self, embeddings: torch.Tensor, labels: torch.Tensor | None = None,
                indices_tuple=None) -> torch.Tensor:
        z = F.normalize(embeddings, dim=1)
        sim = z @ z.T / self.temperature
        same = labels[:, None] == labels[None, :]
        anchors, positives = torch.nonzero(
            same & ~torch.eye(len(labels), dtype=torch.bool, device=labels.device),
            as_tuple=True)
        if len(anchors) == 0:
            return embeddings.sum() * 0.0
        negatives = torch.logsumexp(sim.masked_fill(same, float("-inf")), dim=1)
        pos = sim[anchors, positives]
        return (torch.logaddexp(pos, negatives[anchors]) - pos).mean()


@LOSSES.register
@estimator
class NTXent(Loss):
    """NT-Xent (SimCLR, Chen et al. 2020): two views of an item against every other item of
    the batch; self-supervised, needs no labels.

    Computed in O(batch²) rather than with pytorch-metric-learning's ``NTXentLoss`` (same
    values, but cubic in the batch): see ``_NTXentLoss``.
    """

    name = "ntxent"
    supervision = "views"
    needs_similarity = True
    temperature: float = param(0.07, Interval(float, 0, None, closed="neither"),
                               "softmax temperature")

    def build(self, *, n_classes, embedding_dim, distance):
        return _NTXentLoss(self.temperature)


class _LinearSoftmaxLoss(nn.Module):
    """Cross-entropy of a linear classification layer over the embeddings."""

    def __init__(self, n_classes: int, embedding_dim: int):
        super().__init__()
        self.classifier = nn.Linear(embedding_dim, n_classes)

    def forward(self, embeddings: torch.Tensor, labels: torch.Tensor | None = None,
                indices_tuple=None) -> torch.Tensor:
        return F.cross_entropy(self.classifier(embeddings), labels)


@LOSSES.register
@estimator
class Softmax(Loss):
    """Softmax classification with an ordinary linear layer (no normalisation): the embedding
    is the layer before it.

    pytorch-metric-learning has only normalised or margin variants of softmax, so this one is
    written here (a linear layer and ``torch.nn.functional.cross_entropy``).
    """

    name = "softmax"
    has_weights = True
    default_distance = "euclidean"

    def build(self, *, n_classes, embedding_dim, distance):
        return _LinearSoftmaxLoss(n_classes, embedding_dim)


class _PrototypicalLoss(nn.Module):
    """Prototypical networks' loss over one batch (an episode): each class's items split into
    support and query halves; queries are classified by their distance to the support means."""

    def __init__(self, normalised: bool, scale: float):
        super().__init__()
        self.normalised, self.scale = normalised, scale

    def forward(self, embeddings: torch.Tensor, labels: torch.Tensor | None = None,
                indices_tuple=None) -> torch.Tensor:
        classes, counts = torch.unique(labels, return_counts=True)
        classes = classes[counts >= 2]
        if len(classes) < 2:  # no episode in this batch
            return embeddings.sum() * 0.0
        emb = F.normalize(embeddings, dim=1) if self.normalised else embeddings
        prototypes, queries, targets = [], [], []
        for c, label in enumerate(classes):
            members = torch.nonzero(labels == label).squeeze(1)
            n_support = (len(members) + 1) // 2
            prototypes.append(emb[members[:n_support]].mean(dim=0))
            queries.append(emb[members[n_support:]])
            targets.append(torch.full((len(members) - n_support,), c, dtype=torch.long,
                                      device=labels.device))
        protos, q, t = torch.stack(prototypes), torch.cat(queries), torch.cat(targets)
        if self.normalised:
            logits = self.scale * q @ F.normalize(protos, dim=1).T
        else:
            logits = -torch.cdist(q, protos).pow(2)
        return F.cross_entropy(logits, t)


@LOSSES.register
@estimator
class Prototypical(Loss):
    """Prototypical networks (Snell et al. 2017): classify each item by its distance to the
    mean embedding (prototype) of every class, within each batch.

    Not in pytorch-metric-learning, so written here: each batch is an episode whose classes
    with two or more items are split into support and query halves; the loss is the
    cross-entropy of the queries over the negative squared Euclidean distances to the support
    prototypes (the paper's), or over scaled cosine similarities with ``--distance cosine``.
    """

    name = "prototypical"
    default_distance = "euclidean"
    scale: float = param(10.0, Interval(float, 0, None, closed="neither"),
                         "scale of the cosine similarities (cosine distance only)")

    def build(self, *, n_classes, embedding_dim, distance):
        return _PrototypicalLoss(distance.normalised, self.scale)
