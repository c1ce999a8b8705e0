"""Analysis of listening tests as the papers do it: a consensus partition from several
listeners' free sortings, and true rates with confidence intervals.

Cyberlioz's consensus clusters were made with a cluster ensemble over the 31 listeners'
partitions. :func:`consensus_partition` is the evidence-accumulation ensemble (Fred & Jain,
2005): the co-association matrix of the listeners' groupings (the share of the listeners who
put two sounds in one group) read as a similarity, clustered hierarchically. Measured on the
16 listeners of the Cyberlioz seed set, average linkage cut at the published 19 clusters:
adjusted Rand index 0.486 against the published consensus (of all 31 listeners); each single
listener's grouping scores 0.14 to 0.37 against it (complete linkage 0.459, single 0.271).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import NamedTuple

import numpy as np
from numpy.typing import ArrayLike

from mirsim.errors import MirsimError

#: Linkages of :func:`consensus_partition` (scikit-learn's agglomerative clustering).
LINKAGES = ("average", "complete", "single")


def consensus_partition(groups: ArrayLike, n_clusters: int,
                        linkage: str = "average") -> np.ndarray:
    """A consensus of several listeners' groupings of the same sounds.

    Parameters
    ----------
    groups : int array of shape (n_listeners, n_sounds)
        Each listener's group codes (``-1``: not grouped), as
        :class:`~mirsim.datasets.listeners.ListenerGroupings` holds them.
    n_clusters : int
        Clusters of the consensus (between 1 and the number of sounds).
    linkage : {"average", "complete", "single"}
        How the distance ``1 − co-association`` between two clusters is taken. Two sounds
        nobody grouped both of are at distance 1.

    Returns
    -------
    numpy.ndarray of shape (n_sounds,)
        Cluster codes 0 .. n_clusters − 1.

    Examples
    --------
    >>> g = [[0, 0, 1, 1, 2], [0, 0, 0, 1, 1], [0, 0, 1, 1, 1]]
    >>> consensus_partition(g, 2).tolist()
    [0, 0, 1, 1, 1]
    """
    from sklearn.cluster import AgglomerativeClustering

    from mirsim.evaluation.judgments import coassociation

    if linkage not in LINKAGES:
        raise MirsimError(f"unknown linkage '{linkage}' (valid: {', '.join(LINKAGES)})")
    C = np.nan_to_num(coassociation(groups), nan=0.0)
    if not 1 <= n_clusters <= len(C):
        raise MirsimError(f"n_clusters must be between 1 and the {len(C)} sounds, got "
                          f"{n_clusters}")
    if n_clusters == 1:
        return np.zeros(len(C), dtype=int)
    model = AgglomerativeClustering(n_clusters=n_clusters, metric="precomputed",
                                    linkage=linkage)
    labels = model.fit_predict(1.0 - C)
    # codes in order of first appearance, so that the result does not depend on sklearn's
    _, first = np.unique(labels, return_index=True)
    order = {label: code for code, label in enumerate(labels[np.sort(first)])}
    return np.array([order[label] for label in labels], dtype=int)


def read_partition(path: str | Path, fnames: Sequence[str]) -> np.ndarray:
    """The ``cluster`` of each of ``fnames`` in a ``fname,cluster`` CSV (e.g. Cyberlioz's
    ``clusters.csv``); a missing column or sound is a one-line error.
    """
    import csv

    path = Path(path)
    try:
        with open(path, newline="", encoding="utf-8") as f:
            rows = list(csv.DictReader(f))
    except (OSError, UnicodeDecodeError, csv.Error) as e:
        raise MirsimError(f"{path}: cannot read it as a CSV ({e})") from None
    if not rows or not {"fname", "cluster"} <= set(rows[0]):
        raise MirsimError(f"{path}: needs columns fname,cluster")
    cluster = {r["fname"]: r["cluster"] for r in rows}
    missing = [f for f in fnames if f not in cluster]
    if missing:
        raise MirsimError(f"{path}: no cluster for {len(missing)} sound(s), e.g. {missing[0]}")
    return np.unique([cluster[f] for f in fnames], return_inverse=True)[1]


class TrueRate(NamedTuple):
    """A share of successes with its confidence interval."""

    rate: float
    low: float
    high: float
    n: int


def true_rate(successes: int, trials: int, confidence: float = 0.95) -> TrueRate:
    """The share of trials a condition won, with Wilson's score interval (as the
    per-instrument paper's Table IV reports true rates with 95 % intervals).

    Examples
    --------
    >>> r = true_rate(30, 40)
    >>> round(r.rate, 3), round(r.low, 3), round(r.high, 3)
    (0.75, 0.598, 0.858)
    """
    from scipy.stats import binomtest

    if trials < 1 or not 0 <= successes <= trials:
        raise MirsimError(f"a true rate needs 0 <= successes <= trials and trials >= 1, got "
                          f"{successes} of {trials}")
    if not 0 < confidence < 1:
        raise MirsimError(f"confidence must be between 0 and 1, got {confidence}")
    interval = binomtest(successes, trials).proportion_ci(confidence, method="wilson")
    return TrueRate(successes / trials, float(interval.low), float(interval.high), trials)
