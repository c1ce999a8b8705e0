"""Samplers, by name: how training items are drawn into batches (default: a random
permutation of all items each epoch).

``m-per-class``  pytorch-metric-learning's ``MPerClassSampler``: every batch holds ``m`` items
                 of each of ``batch_size / m`` classes (what tuple miners and prototypical
                 episodes need).

>>> from mirsim.registries import SAMPLERS
>>> SAMPLERS.make("m-per-class", m=4).m
4
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import numpy as np

from mirsim.errors import MirsimError
from mirsim.params import Interval, estimator, param
from mirsim.registries import SAMPLERS
from mirsim.training.components import Component


class Sampler(Component):
    """Base class of the registered samplers."""

    kind = "sampler"

    def batches(self, labels: np.ndarray, batch_size: int, seed: int) -> list[np.ndarray]:
        """One epoch's batches of item indices."""
        raise NotImplementedError


@contextlib.contextmanager
def _pml_random_state(seed: int) -> Iterator[None]:
    """Seed pytorch-metric-learning's module-level NumPy random state for a block (its
    samplers draw from it), restoring it afterwards."""
    from pytorch_metric_learning.utils import common_functions as c_f

    previous = c_f.NUMPY_RANDOM
    c_f.NUMPY_RANDOM = np.random.RandomState(seed)
    try:
        yield
    finally:
        c_f.NUMPY_RANDOM = previous


@SAMPLERS.register
@estimator
class MPerClass(Sampler):
    """Batches of ``m`` items from each of ``batch_size / m`` classes (items drawn with
    replacement within small classes), as many items per epoch as the training set has."""

    name = "m-per-class"
    m: int = param(4, Interval(int, 1, None), "items of each class in a batch")

    def batches(self, labels, batch_size, seed):
        from pytorch_metric_learning.samplers import MPerClassSampler

        n_classes = len(np.unique(labels))
        size = min(batch_size, self.m * n_classes)
        size -= size % self.m
        if size < 2:
            raise MirsimError(f"m-per-class sampler: m={self.m} with {n_classes} classes "
                              f"gives batches of fewer than 2 items")
        with _pml_random_state(seed):
            sampler = MPerClassSampler(labels, self.m, batch_size=size,
                                       length_before_new_iter=max(len(labels), size))
            order = np.fromiter(iter(sampler), dtype=np.int64)
        return [order[i:i + size] for i in range(0, len(order) - size + 1, size)]
