"""Named data sets: a registered class per data set, whose options are its parameters and
whose :meth:`Dataset.load` gives the :class:`~mirsim.datasets.collection.Collection`."""

from __future__ import annotations

from typing import ClassVar

from mirsim.datasets.collection import Collection


class Dataset:
    """Base class of the registered data sets (``mirsim.registries.DATASETS``)."""

    name: ClassVar[str]
    #: the items have labels (False: unlabelled audio, for self-supervised models)
    labelled: ClassVar[bool] = True
    catalogue_attributes = ("labelled",)

    def load(self) -> Collection:
        """The collection of items and their audio."""
        raise NotImplementedError
