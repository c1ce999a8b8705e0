"""A collection: a table of items (sounds or segments) with labels and groups, and their audio."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from mirsim.datasets.dimensions import Dimension, check_dimensions
from mirsim.errors import DataError
from mirsim.features.extraction import AudioSource

REQUIRED_COLUMNS = ("id", "label", "group")


@dataclass
class Collection:
    """Items and their audio sources.

    Attributes
    ----------
    name : str
        Data set name, e.g. ``"cyberlioz-extended"``.
    items : pandas.DataFrame
        One row per item with at least ``id``, ``label`` (e.g. a perceptual cluster) and
        ``group`` (the unit of identity: items of one group are "the same sound", e.g. one IMT
        class at several pitches), plus free metadata columns.
    sources : list of AudioSource
        ``sources[i]`` is the audio of ``items.iloc[i]``.
    description : str
        One line that says what the data is (e.g. that it is simulated).
    skipped : list of dict
        Entries of the data that are not items, and why (``{"id", "source", "reason"}``, as
        in a run's ``skipped.json``): e.g. dangling symlinks of a folder.
    labelled : bool
        Whether the items have labels. An unlabelled collection (a flat folder of sounds) has
        ``None`` as every label: only self-supervised models learn from it, and nothing is
        evaluated against its labels.
    dimensions : list of Dimension
        The dimensions of similarity the data set declares (genre, tempo, key...: each names
        the item column(s) it reads and its rule; see :mod:`mirsim.datasets.dimensions`).
        Empty by default. ``similarity_matrices(c.items, c.dimensions)`` gives one boolean
        ``(n, n)`` matrix per dimension, which a conditional model learns from.

    Examples
    --------
    >>> items = pd.DataFrame({"id": ["a", "b"], "label": ["x", "y"], "group": ["a", "b"]})
    >>> c = Collection("toy", items, sources=[None, None])
    >>> len(c), c.label_codes().tolist()
    (2, [0, 1])
    """

    name: str
    items: pd.DataFrame
    sources: Sequence[AudioSource | None]
    description: str = ""
    triplets: pd.DataFrame | None = field(default=None, repr=False)
    skipped: list[dict[str, str]] = field(default_factory=list, repr=False)
    labelled: bool = True
    dimensions: list[Dimension] = field(default_factory=list, repr=False)

    def __post_init__(self) -> None:
        missing = [c for c in REQUIRED_COLUMNS if c not in self.items.columns]
        if missing:
            raise DataError(f"collection '{self.name}' lacks column(s) {', '.join(missing)}")
        if len(self.items) != len(self.sources):
            raise DataError(f"collection '{self.name}': {len(self.items)} items but "
                            f"{len(self.sources)} sources")
        self.items = self.items.reset_index(drop=True)
        self.dimensions = list(self.dimensions)
        check_dimensions(self.items.columns, self.dimensions)

    def __len__(self) -> int:
        return len(self.items)

    def label_codes(self) -> np.ndarray:
        """Labels as integers 0..n_labels-1 (sorted label order)."""
        return pd.factorize(self.items["label"], sort=True)[0]

    def group_codes(self) -> np.ndarray:
        """Groups as integers 0..n_groups-1 (sorted group order)."""
        return pd.factorize(self.items["group"].astype(str), sort=True)[0]

    def subset(self, index: Sequence[int] | np.ndarray) -> Collection:
        """The collection restricted to the given positions (order kept)."""
        index = np.asarray(index, dtype=int)
        return Collection(self.name, self.items.iloc[index].reset_index(drop=True),
                          [self.sources[i] for i in index], self.description,
                          labelled=self.labelled, dimensions=self.dimensions)

    def summary(self) -> str:
        """One line: name, size, number of labels (or "no labels") and groups."""
        labels = f"{self.items['label'].nunique()} labels" if self.labelled else "no labels"
        return f"{self.name}: {len(self)} items, {labels}, {self.items['group'].nunique()} groups"
