"""Miners, by name: which tuples of a batch a tuple loss (triplet, contrastive,
multi-similarity) learns from. All are pytorch-metric-learning's.

``all``, ``hard``, ``semihard``, ``easy``  its triplet-margin miner with that type of triplets
    (semi-hard: the negative is farther than the positive, by less than the margin);
``batch-hard``        the hardest positive and the hardest negative of every anchor;
``distance-weighted`` negatives sampled by the inverse density of distances on the unit
    sphere (Wu et al. 2017; cosine distance only).

>>> from mirsim.registries import MINERS
>>> MINERS.names()
['all', 'batch-hard', 'distance-weighted', 'easy', 'hard', 'semihard']
"""

from __future__ import annotations

from typing import ClassVar

from mirsim.errors import MirsimError
from mirsim.params import Interval, estimator, param
from mirsim.registries import MINERS
from mirsim.training.components import Component
from mirsim.training.distances import Distance


class Miner(Component):
    """Base class of the registered miners."""

    kind = "miner"

    def build(self, *, distance: Distance):
        """The pytorch-metric-learning miner: ``miner(embeddings, labels) -> indices``."""
        raise NotImplementedError


class _TripletMarginMiner(Miner):
    type_of_triplets: ClassVar[str]

    def build(self, *, distance):
        from pytorch_metric_learning import miners

        return miners.TripletMarginMiner(margin=self.margin,
                                         type_of_triplets=self.type_of_triplets,
                                         distance=distance.pml_distance())


@MINERS.register
@estimator
class AllTriplets(_TripletMarginMiner):
    """Every triplet that violates the margin."""

    name = "all"
    type_of_triplets = "all"
    margin: float = param(0.2, Interval(float, 0, None), "margin of the triplets kept")


@MINERS.register
@estimator
class HardTriplets(_TripletMarginMiner):
    """Triplets whose negative is nearer to the anchor than the positive."""

    name = "hard"
    type_of_triplets = "hard"
    margin: float = param(0.2, Interval(float, 0, None), "margin of the triplets kept")


@MINERS.register
@estimator
class SemihardTriplets(_TripletMarginMiner):
    """Triplets whose negative is farther than the positive, by less than the margin."""

    name = "semihard"
    type_of_triplets = "semihard"
    margin: float = param(0.2, Interval(float, 0, None), "margin of the triplets kept")


@MINERS.register
@estimator
class EasyTriplets(_TripletMarginMiner):
    """Triplets whose negative is farther than the positive by more than the margin."""

    name = "easy"
    type_of_triplets = "easy"
    margin: float = param(0.2, Interval(float, 0, None), "margin of the triplets kept")


@MINERS.register
@estimator
class BatchHard(Miner):
    """The hardest positive and hardest negative of each anchor in the batch (Hermans et al.)."""

    name = "batch-hard"

    def build(self, *, distance):
        from pytorch_metric_learning import miners

        return miners.BatchHardMiner(distance=distance.pml_distance())


@MINERS.register
@estimator
class DistanceWeighted(Miner):
    """Distance-weighted sampling of negatives (Wu et al. 2017); cosine distance only."""

    name = "distance-weighted"
    cutoff: float = param(0.5, Interval(float, 0, 2), "smallest distance considered")
    nonzero_loss_cutoff: float = param(1.4, Interval(float, 0, 2, closed="right"),
                                       "negatives farther than this are not sampled")

    def build(self, *, distance):
        from pytorch_metric_learning import miners

        if not distance.normalised:
            raise MirsimError("the distance-weighted miner works on normalised embeddings: "
                              "use --distance cosine")
        return miners.DistanceWeightedMiner(cutoff=self.cutoff,
                                            nonzero_loss_cutoff=self.nonzero_loss_cutoff,
                                            distance=distance.pml_distance())
