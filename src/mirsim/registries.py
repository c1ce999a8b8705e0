"""The registries of mirsim, one per kind of thing (see :mod:`mirsim.registry`).

Each names the package whose modules define its entries; an entry registers itself with
``@REGISTRY.register`` where it is defined.

>>> from mirsim.registries import LOSSES
>>> "triplet" in LOSSES.names()
True
"""

from __future__ import annotations

from mirsim.registry import Registry

FEATURES = Registry("feature", ("mirsim.features",))
MODELS = Registry("model", ("mirsim.models",))
LOSSES = Registry("loss", ("mirsim.training.losses",))
MINERS = Registry("miner", ("mirsim.training.miners",))
DISTANCES = Registry("distance", ("mirsim.training.distances",))
SAMPLERS = Registry("sampler", ("mirsim.training.samplers",))
DATASETS = Registry("data set", ("mirsim.datasets",))
PROTOCOLS = Registry("protocol", ("mirsim.evaluation.protocols",))

__all__ = ["DATASETS", "DISTANCES", "FEATURES", "LOSSES", "MINERS", "MODELS", "PROTOCOLS",
           "SAMPLERS"]
