"""Analysis of listening tests as the papers do it: a consensus partition from several
listeners' free sortings, true rates with confidence intervals, and how far listeners agree.

A test's answers (:meth:`~mirsim.listening.store.AnswerStore.answers`) first become arrays —
:func:`triplet_choices`, :func:`pairwise_ratings`, :func:`sorting_groups`, one row per
listener, :data:`MISSING` (or NaN) where a trial was not answered — which the other functions
take: triplets (:func:`pair_agreement`, :func:`krippendorff_alpha`,
:func:`majority_reference`, :func:`condition_true_rates`, :func:`confidence_counts`), free
sorting (:func:`rand_matrix`, :func:`leave_one_out_rand`, :func:`groups_per_listener`),
pairwise ratings (:func:`rating_correlations`, :func:`mean_ratings`).

Cyberlioz's consensus clusters were made with a cluster ensemble over the 31 listeners'
partitions. :func:`consensus_partition` is the evidence-accumulation ensemble (Fred & Jain,
2005): the co-association matrix of the listeners' groupings (the share of the listeners who
put two sounds in one group) read as a similarity, clustered hierarchically. Measured on the
16 listeners of the Cyberlioz seed set, average linkage cut at the published 19 clusters:
adjusted Rand index 0.486 against the published consensus (of all 31 listeners); each single
listener's grouping scores 0.14 to 0.37 against it (complete linkage 0.459, single 0.271).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np
from numpy.typing import ArrayLike

from mirsim.errors import MirsimError
from mirsim.listening.design import ListeningTest

if TYPE_CHECKING:  # pragma: no cover
    from mirsim.evaluation.judgments import ListenerAgreement

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


# -- a test's answers as arrays ---------------------------------------------------------------
#: Code of a trial a listener did not answer, in the arrays below.
MISSING = -1
#: The slots of a triplet answer, in code order (``choice`` "b" is 0, "c" is 1).
SLOTS = ("b", "c")
#: Fewest shared pairs on which two listeners' ratings are correlated.
MIN_SHARED_RATINGS = 3


def _rows(test: ListeningTest, answers: Sequence[dict[str, Any]]
          ) -> Iterator[tuple[int, int, dict[str, Any]]]:
    """(listener position, trial, answer) of each answer."""
    position = {name: i for i, name in enumerate(test.listeners)}
    for a in answers:
        yield position[a["listener"]], int(a["trial"]), a["answer"]


def triplet_choices(test: ListeningTest, answers: Sequence[dict[str, Any]]
                    ) -> tuple[np.ndarray, np.ndarray]:
    """Triplet answers as two ``(n_listeners, n_trials)`` int arrays: the choice (0: B, 1: C,
    :data:`MISSING`: not answered) and the confidence (0 where not answered).

    Examples
    --------
    >>> t = ListeningTest("triplets", [], [{"a": 0, "b": 1, "c": 2}] * 2, ["x", "y"])
    >>> c, k = triplet_choices(t, [{"listener": "y", "trial": 1,
    ...                             "answer": {"choice": "c", "confidence": 3}}])
    >>> c.tolist(), k.tolist()
    ([[-1, -1], [-1, 1]], [[0, 0], [0, 3]])
    """
    shape = (len(test.listeners), len(test.trials))
    choices, confidence = np.full(shape, MISSING, dtype=int), np.zeros(shape, dtype=int)
    for listener, trial, answer in _rows(test, answers):
        choices[listener, trial] = SLOTS.index(answer["choice"])
        confidence[listener, trial] = int(answer.get("confidence", 0))
    return choices, confidence


def pairwise_ratings(test: ListeningTest, answers: Sequence[dict[str, Any]]) -> np.ndarray:
    """Pairwise answers as a ``(n_listeners, n_trials)`` float array of similarities (NaN: not
    answered).

    Examples
    --------
    >>> t = ListeningTest("pairwise", [], [{"a": 0, "b": 1}], ["x", "y"])
    >>> pairwise_ratings(t, [{"listener": "x", "trial": 0, "answer": {"similarity": 0.25}}])
    array([[0.25],
           [ nan]])
    """
    ratings = np.full((len(test.listeners), len(test.trials)), np.nan)
    for listener, trial, answer in _rows(test, answers):
        ratings[listener, trial] = float(answer["similarity"])
    return ratings


def sorting_groups(test: ListeningTest, answers: Sequence[dict[str, Any]]
                   ) -> tuple[list[str], np.ndarray]:
    """Free-sorting answers: the listeners who answered and their group codes over the trial's
    items, ``(n_answered, n_sorted)`` (codes 0, 1, ... in the order the listener gave them).

    Examples
    --------
    >>> t = ListeningTest("free-sorting", [], [{"items": [0, 1, 2]}], ["x", "y"])
    >>> sorting_groups(t, [{"listener": "y", "trial": 0, "answer": {"groups": [[2], [0, 1]]}}])
    (['y'], array([[1, 1, 0]]))
    """
    items = list(test.trials[0]["items"]) if test.trials else []
    column = {item: k for k, item in enumerate(items)}
    names, rows = [], []
    for listener, _, answer in _rows(test, answers):
        row = np.full(len(items), MISSING, dtype=int)
        for code, group in enumerate(answer["groups"]):
            row[[column[i] for i in group]] = code
        names.append(test.listeners[listener])
        rows.append(row)
    return names, np.array(rows, dtype=int).reshape(len(rows), len(items))


def trial_conditions(test: ListeningTest) -> list[str]:
    """Each trial's condition: its ``condition`` field, else the test's ``instrument`` (a
    per-instrument listening set, :func:`mirsim.experiments.per_instrument.listening_design`),
    else ``"all"``.

    Examples
    --------
    >>> t = ListeningTest("triplets", [], [{"condition": "bass"}, {}], ["x"],
    ...                   extra={"instrument": "drums"})
    >>> trial_conditions(t)
    ['bass', 'drums']
    """
    default = str(test.extra.get("instrument", "all"))
    return [str(t.get("condition", default)) for t in test.trials]


def expected_choices(test: ListeningTest) -> np.ndarray:
    """Each triplet trial's expected choice (0: B, 1: C, :data:`MISSING`: none): the slot its
    ``positive`` field names (e.g. a per-instrument listening set,
    :func:`mirsim.experiments.per_instrument.listening_design`).

    Examples
    --------
    >>> t = ListeningTest("triplets", [], [{"positive": "c"}, {}, {"positive": "b"}], ["x"])
    >>> expected_choices(t).tolist()
    [1, -1, 0]
    """
    slots = [t.get("positive") for t in test.trials]
    return np.array([SLOTS.index(s) if s in SLOTS else MISSING for s in slots], dtype=int)


# -- triplets ---------------------------------------------------------------------------------
class PairAgreement(NamedTuple):
    """Between every two listeners: the share of equal answers on the trials both answered
    (NaN where none) and the number of such trials."""

    share: np.ndarray
    shared: np.ndarray


def _answered(codes: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    codes = np.asarray(codes, dtype=int)
    if codes.ndim != 2:
        raise MirsimError(f"answers must be a (listeners, trials) array, got shape "
                          f"{codes.shape}")
    return codes, codes != MISSING


def pair_agreement(codes: ArrayLike) -> PairAgreement:
    """The share of equal answers of every two listeners on the trials both answered.

    Parameters
    ----------
    codes : int array of shape (n_listeners, n_trials)
        Each listener's answer code per trial (:data:`MISSING`: not answered), e.g. the
        choices of :func:`triplet_choices`.

    Examples
    --------
    >>> a = pair_agreement([[0, 0, 1, -1], [0, 1, 1, 0], [-1, -1, -1, 1]])
    >>> a.share.round(3).tolist()[0], a.shared.tolist()[0]
    ([1.0, 0.667, nan], [3, 3, 0])
    """
    codes, answered = _answered(codes)
    both = answered[:, None, :] & answered[None, :, :]
    equal = (codes[:, None, :] == codes[None, :, :]) & both
    shared = both.sum(axis=2)
    with np.errstate(invalid="ignore", divide="ignore"):
        share = np.where(shared > 0, equal.sum(axis=2) / np.maximum(shared, 1), np.nan)
    return PairAgreement(share, shared)


def krippendorff_alpha(codes: ArrayLike) -> float:
    """Krippendorff's alpha of nominal answers: ``1 − observed / expected disagreement``
    over the trials at least two listeners answered (1: perfect agreement, 0: chance; NaN
    when there is nothing to compare or every answer is the same).

    Written here: scikit-learn has only Cohen's kappa of two raters, statsmodels (not a
    dependency) has Fleiss' kappa, which needs every trial answered by the same number of
    listeners; alpha allows any listeners per trial.

    Examples
    --------
    >>> round(krippendorff_alpha([[0, 0, 1, 1], [0, 0, 1, 1]]), 3)
    1.0
    >>> round(krippendorff_alpha([[0, 1, 0, 1], [0, 0, 1, 1], [0, 1, 1, -1]]), 3)
    0.333
    """
    codes, answered = _answered(codes)
    categories = np.unique(codes[answered])
    # counts[t, k]: listeners who gave category k on trial t; trials with >= 2 answers only
    counts = np.stack([((codes == k) & answered).sum(axis=0) for k in categories], axis=1
                      ) if len(categories) else np.zeros((codes.shape[1], 0), dtype=int)
    m = counts.sum(axis=1)
    counts, m = counts[m >= 2], m[m >= 2]
    n = m.sum()
    if n == 0 or len(categories) < 2:
        return float("nan")
    # coincidences: o[k, l] = sum over trials of n_k (n_l - [k == l]) / (m - 1)
    o = (counts[:, :, None] * counts[:, None, :]
         - np.eye(len(categories))[None] * counts[:, :, None]) / (m - 1)[:, None, None]
    o = o.sum(axis=0)
    totals = o.sum(axis=1)
    observed = o.sum() - np.trace(o)
    expected = (totals.sum() ** 2 - (totals ** 2).sum()) / (n - 1)
    return float(1.0 - observed / expected)


def majority_reference(codes: ArrayLike) -> ListenerAgreement:
    """The human reference of a triplet test: each listener's answers predicted by the
    majority of the *other* listeners on the same trial (a tie counts one half; a trial no
    other listener answered is not scored).

    Examples
    --------
    >>> r = majority_reference([[0, 0, 1], [0, 1, 1], [0, 0, -1]])
    >>> r.hits.tolist(), r.counts.tolist()  # ties: listener 0 on trial 1, listener 2 on 1
    ([2.5, 2.0, 1.5], [3.0, 3.0, 2.0])
    """
    from mirsim.evaluation.judgments import ListenerAgreement

    codes, answered = _answered(codes)
    categories = np.unique(codes[answered])
    counts = np.stack([((codes == k) & answered).sum(axis=0) for k in categories])
    hits, scored = np.zeros(len(codes)), np.zeros(len(codes))
    for listener, row in enumerate(codes):
        mine = answered[listener]
        others = counts - np.stack([(row == k) & mine for k in categories])
        top = others.max(axis=0)
        winners = (others == top).sum(axis=0)  # categories sharing the majority
        scorable = mine & (others.sum(axis=0) > 0)
        own = np.searchsorted(categories, row)
        agrees = others[np.minimum(own, len(categories) - 1), np.arange(len(row))] == top
        hits[listener] = np.sum(np.where(agrees, 1.0 / winners, 0.0)[scorable])
        scored[listener] = scorable.sum()
    return ListenerAgreement(hits, scored)


def condition_true_rates(correct: ArrayLike, conditions: Sequence[str],
                         confidence: float = 0.95) -> dict[str, TrueRate]:
    """The true rate of each condition (:func:`true_rate`, Wilson's interval), in the order
    the conditions first appear.

    Parameters
    ----------
    correct : bool array of shape (n_answers,)
        Whether each answer agrees with its trial's expected item.
    conditions : sequence of str, of the same length
        Each answer's condition.

    Examples
    --------
    >>> r = condition_true_rates([True, True, False, True], ["drums", "bass", "bass", "drums"])
    >>> {c: (v.rate, v.n) for c, v in r.items()}
    {'drums': (1.0, 2), 'bass': (0.5, 2)}
    """
    correct = np.asarray(correct, dtype=bool)
    conditions = np.asarray(conditions, dtype=str)
    if correct.shape != conditions.shape:
        raise MirsimError(f"{len(correct)} answers and {len(conditions)} conditions")
    order = list(dict.fromkeys(conditions.tolist()))
    return {c: true_rate(int(correct[conditions == c].sum()), int((conditions == c).sum()),
                         confidence) for c in order}


def confidence_counts(confidence: ArrayLike, levels: int) -> np.ndarray:
    """How often each listener gave each confidence level: ``(n_listeners, levels)``, column
    ``k`` counting level ``k + 1`` (0 entries, unanswered trials, are not counted).

    Examples
    --------
    >>> confidence_counts([[1, 3, 3, 0], [2, 0, 0, 0]], 3).tolist()
    [[1, 0, 2], [0, 1, 0]]
    """
    confidence = np.asarray(confidence, dtype=int)
    return np.stack([(confidence == k).sum(axis=1) for k in range(1, levels + 1)], axis=1)


# -- free sorting -----------------------------------------------------------------------------
def _both_grouped(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a != MISSING) & (b != MISSING)


def rand_matrix(groups: ArrayLike) -> np.ndarray:
    """Adjusted Rand index between every two listeners' groupings, on the sounds both grouped
    (1 on the diagonal).

    Examples
    --------
    >>> rand_matrix([[0, 0, 1, 1], [1, 1, 0, 0], [0, 1, 0, 1]]).round(3).tolist()
    [[1.0, 1.0, -0.5], [1.0, 1.0, -0.5], [-0.5, -0.5, 1.0]]
    """
    from sklearn.metrics import adjusted_rand_score

    groups, _ = _answered(groups)
    L = len(groups)
    M = np.eye(L)
    for i in range(L):
        for j in range(i + 1, L):
            keep = _both_grouped(groups[i], groups[j])
            M[i, j] = M[j, i] = adjusted_rand_score(groups[i, keep], groups[j, keep])
    return M


def groups_per_listener(groups: ArrayLike) -> np.ndarray:
    """The number of groups each listener made.

    Examples
    --------
    >>> groups_per_listener([[0, 0, 1, 2], [0, 0, 0, -1]]).tolist()
    [3, 1]
    """
    groups, answered = _answered(groups)
    return np.array([len(np.unique(g[a])) for g, a in zip(groups, answered)], dtype=int)


def leave_one_out_rand(groups: ArrayLike, n_clusters: int | None = None,
                       linkage: str = "average") -> np.ndarray:
    """Each listener's grouping against the consensus of the others
    (:func:`consensus_partition`; adjusted Rand index on the sounds the listener grouped).

    Parameters
    ----------
    groups : int array of shape (n_listeners, n_sounds)
        At least two listeners.
    n_clusters : int, optional
        Clusters of each consensus; default: the median number of groups of the other
        listeners (rounded).
    linkage : {"average", "complete", "single"}

    Examples
    --------
    >>> leave_one_out_rand([[0, 0, 1, 1], [0, 0, 1, 1], [0, 0, 1, 1], [0, 1, 0, 1]]).tolist()
    [1.0, 1.0, 1.0, -0.5]
    """
    from sklearn.metrics import adjusted_rand_score

    groups, answered = _answered(groups)
    if len(groups) < 2:
        raise MirsimError("a consensus of the others needs at least two listeners")
    counts = groups_per_listener(groups)
    scores = np.empty(len(groups))
    for listener in range(len(groups)):
        others = np.delete(np.arange(len(groups)), listener)
        k = n_clusters or int(round(float(np.median(counts[others]))))
        consensus = consensus_partition(groups[others], k, linkage)
        keep = answered[listener]
        scores[listener] = adjusted_rand_score(groups[listener, keep], consensus[keep])
    return scores


# -- pairwise ratings -------------------------------------------------------------------------
def rating_correlations(ratings: ArrayLike, min_shared: int = MIN_SHARED_RATINGS
                        ) -> np.ndarray:
    """Spearman correlation between every two listeners' ratings on the pairs both rated (NaN
    with fewer than ``min_shared`` such pairs, or when one listener's ratings are all equal).

    Examples
    --------
    >>> R = [[0.1, 0.5, 0.9, np.nan], [0.2, 0.4, 1.0, 0.3], [0.9, 0.5, 0.1, 0.5]]
    >>> rating_correlations(R).round(3).tolist()
    [[1.0, 1.0, -1.0], [1.0, 1.0, -0.949], [-1.0, -0.949, 1.0]]
    """
    from scipy.stats import spearmanr

    R = np.asarray(ratings, dtype=np.float64)
    rated = np.isfinite(R)
    M = np.eye(len(R))
    for i in range(len(R)):
        for j in range(i + 1, len(R)):
            keep = rated[i] & rated[j]
            constant = keep.sum() and (np.ptp(R[i, keep]) == 0 or np.ptp(R[j, keep]) == 0)
            M[i, j] = M[j, i] = (np.nan if keep.sum() < min_shared or constant
                                 else spearmanr(R[i, keep], R[j, keep]).statistic)
    return M


def mean_ratings(ratings: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    """Each pair's mean rating over the listeners who rated it (NaN if none) and their
    number.

    Examples
    --------
    >>> mean, n = mean_ratings([[0.2, np.nan], [0.4, np.nan]])
    >>> mean.round(3).tolist(), n.tolist()
    ([0.3, nan], [2, 0])
    """
    R = np.asarray(ratings, dtype=np.float64)
    n = np.isfinite(R).sum(axis=0)
    with np.errstate(invalid="ignore"):
        return np.where(n > 0, np.nansum(R, axis=0) / np.maximum(n, 1), np.nan), n


def upper_mean_std(matrix: ArrayLike) -> tuple[float, float, int]:
    """Mean and sample standard deviation of the finite values above the diagonal of a
    square matrix (e.g. :func:`rand_matrix`), and their number.

    Examples
    --------
    >>> [round(v, 3) for v in upper_mean_std([[1, 0.2, 0.4], [0.2, 1, np.nan], [0.4, np.nan, 1]])]
    [0.3, 0.141, 2]
    """
    M = np.asarray(matrix, dtype=np.float64)
    v = M[np.triu_indices(len(M), k=1)]
    v = v[np.isfinite(v)]
    std = float(v.std(ddof=1)) if len(v) > 1 else (0.0 if len(v) else float("nan"))
    return (float(v.mean()) if len(v) else float("nan")), std, len(v)
