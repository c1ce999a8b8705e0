"""Listener judgments in an experiment (``--judgments FILE``): the file matched to the items
of a feature set, scored on every fold, added up over the run.

* The file's sounds are matched to the items by name: a sound is an item whose ``id`` is its
  ``fname`` (Cyberlioz item ids are fnames). Sounds the feature set lacks (not in the data,
  or skipped as unreadable or duplicate) are dropped with a one-line warning (logger
  ``mirsim.experiments.judgments``), and so are the triplets that name them.
* Each fold's model embeds every item; a triplet counts in the fold where its anchor is a
  test item (:class:`mirsim.evaluation.judgments.ListenerJudgments`), and each listener's
  agreement is their hits over all folds divided by their triplets over all folds. Under
  ``group-kfold``, ``loo`` and ``kfold`` every item is a test item exactly once, so every
  triplet is counted exactly once, by the model that did not see its anchor. (Under ``kfold``
  the positive and the negative may be training items of that fold, as under ``group-kfold``;
  the fold's retrieval metrics, by contrast, search the test fold only.)
* ``triplet_agreement`` and ``triplet_agreement_high`` join the run's metrics as
  ``{"mean", "std"}`` over listeners; the run's JSON also has a ``listeners`` entry with each
  listener's values and the human reference (each listener predicted from the others).
  A triplet file counts as one listener and has neither the high-agreement score nor a human
  reference (both need several listeners).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mirsim.datasets.listeners import (JudgedTriplets, JudgmentsError, ListenerGroupings,
                                       find_listener_clusters, read_judgments)
from mirsim.evaluation.judgments import (HIGH_AGREEMENT, ListenerAgreement, ListenerJudgments,
                                         sum_agreements)

#: Metrics a run with judgments reports, in table order.
JUDGMENT_METRICS = ("triplet_agreement", "triplet_agreement_high")
#: ``--judgments`` value that names the Cyberlioz listeners' groupings, wherever they are.
CYBERLIOZ_LISTENERS = "cyberlioz"

_log = logging.getLogger(__name__)


def judgment_metrics(judgments: ListenerGroupings | JudgedTriplets | None) -> tuple[str, ...]:
    """The metrics judgments give: both for groupings, ``triplet_agreement`` alone for a
    triplet file (one "listener": no high-agreement set), none without judgments.

    Examples
    --------
    >>> judgment_metrics(None)
    ()
    """
    if judgments is None:
        return ()
    return JUDGMENT_METRICS if isinstance(judgments, ListenerGroupings) else JUDGMENT_METRICS[:1]


def load_judgments(spec: str | Path) -> ListenerGroupings | JudgedTriplets:
    """Read ``--judgments``: a listener-groupings or triplet CSV, or ``cyberlioz`` for the
    ``listener_clusters.csv`` of the Cyberlioz directory that mirsim finds.

    Raises
    ------
    JudgmentsError
        No such file, a file that cannot be used, or no Cyberlioz listener groupings found.

    Examples
    --------
    >>> load_judgments("no/such.csv")
    Traceback (most recent call last):
    ...
    mirsim.datasets.listeners.JudgmentsError: no/such.csv: no such file
    """
    path = Path(spec)
    if str(spec) == CYBERLIOZ_LISTENERS and not path.exists():
        found = find_listener_clusters()
        if found is None:
            raise JudgmentsError("no Cyberlioz listener groupings found (listener_clusters.csv "
                                 "beside clusters.csv; `mirsim data fetch cyberlioz` writes it)")
        path = found
    return read_judgments(path)


@dataclass
class ExperimentJudgments:
    """A judgments file matched to the items of one feature set.

    Attributes
    ----------
    source : str
        The file.
    kind : str
        ``"listener groupings"`` or ``"triplets"``.
    scorer : ListenerJudgments
        The triplets over the items, called on every fold.
    dropped : list of str
        The file's sounds that are not among the items.
    human : dict or None
        The human reference per metric (:meth:`ListenerJudgments.human_reference`).
    """

    source: str
    kind: str
    scorer: ListenerJudgments
    dropped: list[str] = field(default_factory=list)
    human: dict[str, ListenerAgreement] | None = None

    @property
    def metrics(self) -> tuple[str, ...]:
        """The metrics these judgments give (no high-agreement score for a triplet file)."""
        return JUDGMENT_METRICS if self.scorer.high is not None else JUDGMENT_METRICS[:1]

    def describe(self) -> dict[str, Any]:
        """What a run records of the judgments themselves (not of a model): the file, the
        listeners, their numbers of triplets, the dropped sounds and the human reference."""
        scorer = self.scorer
        return {
            "file": self.source, "kind": self.kind, "listeners": list(scorer.listeners),
            "n_triplets": scorer.n_triplets.tolist(),
            "n_high_triplets": (None if scorer.high is None
                                else [len(t) for t in scorer.high]),
            "high_agreement": HIGH_AGREEMENT if scorer.high is not None else None,
            "dropped_sounds": list(self.dropped),
            "human_reference": None if self.human is None else agreement_json(self.human),
        }

    def result_json(self, fold_scores: list[dict[str, ListenerAgreement]]) -> dict[str, Any]:
        """A model's agreement over a run: ``{"metrics": {name: {mean, std}}, "listeners":
        {...}}`` from what :attr:`scorer` returned on each fold."""
        total = sum_agreements(fold_scores)
        return {"metrics": {name: total[name].summary() for name in self.metrics},
                "listeners": {**self.describe(), **{"model": agreement_json(total)}}}


def agreement_json(scores: dict[str, ListenerAgreement]) -> dict[str, dict[str, Any]]:
    """``{metric: {"mean", "std", "per_listener"}}`` (NaN: a listener with no triplet).

    Examples
    --------
    >>> import numpy as np
    >>> agreement_json({"m": ListenerAgreement(np.array([1.0, 1.0]), np.array([2.0, 1.0]))})
    {'m': {'mean': 0.75, 'std': 0.3535533905932738, 'per_listener': [0.5, 1.0]}}
    """
    return {name: {**a.summary(), "per_listener": a.per_listener.tolist()}
            for name, a in scores.items()}


def judgments_for(features: Any, judgments: ListenerGroupings | JudgedTriplets
                  ) -> ExperimentJudgments:
    """Match judgments to the items of a :class:`~mirsim.experiments.experiment.FeatureSet`.

    Raises
    ------
    JudgmentsError
        No triplet is left among the items (e.g. the file names other sounds).

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> from types import SimpleNamespace
    >>> from mirsim.datasets import Collection
    >>> items = pd.DataFrame({"id": ["a", "b", "c", "d"], "label": [1, 1, 2, 2],
    ...                       "group": ["a", "b", "c", "d"]})
    >>> fs = SimpleNamespace(collection=Collection("toy", items, [None] * 4),
    ...                      kept=np.array([0, 1, 2, 3]))
    >>> g = ListenerGroupings(("L1", "L2"), ("a", "b", "c", "x"),
    ...                       np.array([[0, 0, 1, 1], [0, 1, 1, 0]]))
    >>> j = judgments_for(fs, g)
    >>> j.dropped, j.scorer.n_triplets.tolist()
    (['x'], [2, 2])
    """
    ids = features.collection.items["id"].iloc[features.kept].astype(str).tolist()
    aligned, dropped = judgments.align(ids)
    name = features.collection.name
    if dropped:
        _log.warning("%s: %d of its %d sounds are not among the %d items of %s and are dropped "
                     "(first: %s)", judgments.source, len(dropped), len(judgments.fnames),
                     len(ids), name, dropped[0])
    if isinstance(aligned, ListenerGroupings):
        scorer = ListenerJudgments.from_groupings(aligned.groups, aligned.listeners)
        kind = "listener groupings"
    else:
        scorer = ListenerJudgments.from_triplets(aligned.triplets, aligned.weights,
                                                 Path(judgments.source).name or "triplets")
        kind = "triplets"
    if int(scorer.n_triplets.sum()) == 0:
        raise JudgmentsError(f"{judgments.source}: no triplet left among the items of {name} "
                             f"({len(dropped)} of its {len(judgments.fnames)} sounds are not "
                             f"among them)")
    return ExperimentJudgments(judgments.source, kind, scorer, dropped, scorer.human_reference())
