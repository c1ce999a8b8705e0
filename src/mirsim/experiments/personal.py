"""Does a metric tuned to one listener predict that listener better than the group metric?

Protocol (:func:`evaluate_listener`), on one listener's triplets over the items of a feature
set:

* The items are split into folds by sound (``group-kfold`` over the items' groups: for
  Cyberlioz every sound is its own group). In each fold, the **held-out triplets** are the
  listener's triplets whose anchor is a test sound (the rule of
  :mod:`mirsim.experiments.judgments`); the **training triplets** are those whose three sounds
  are all training sounds. No fitted step sees a test sound.
* The **group metric** is fitted on the training sounds alone, on their labels (for Cyberlioz
  the consensus clusters). The consensus was made from all 31 listeners, this one among them,
  so the training labels carry a little of this listener's judgment of the training sounds:
  that favours the group metric, never the personal one, and no test sound's label is used.
* The **personal metric** (:class:`mirsim.models.personal.PersonalMetricModel`) starts from
  that fitted group metric and learns from the training triplets (at most ``max_triplets`` of
  them, drawn with ``seed``: a listener's few dozen answers); its penalty is chosen by inner
  cross-validation over those triplets only.
* Both are scored on the held-out triplets; a listener's agreement is hits over all folds
  divided by held-out triplets over all folds (ties count one half).

:func:`paired_summary` compares the two over listeners: mean ± sd of the differences,
wins/losses/ties, a two-sided sign test and a Wilcoxon signed-rank test (scipy).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from mirsim.datasets.listeners import JudgedTriplets, JudgmentsError, ListenerGroupings
from mirsim.evaluation.judgments import triplet_outcomes
from mirsim.evaluation.protocols import split_indices
from mirsim.models import make_model
from mirsim.models.personal import triplets_within

__all__ = ["MIN_TRIPLETS", "ListenerResult", "evaluate_listener", "listener_names",
           "listener_triplets",
           "load_personal_judgments", "paired_summary"]

#: Fewest triplets of a listener a personal metric is learned from.
MIN_TRIPLETS = 10


@dataclass
class ListenerResult:
    """One listener's held-out agreement under the group and the personal metric.

    Attributes
    ----------
    listener : str
    group, personal : float
        Held-out triplet agreement of each metric.
    n_train, n_test : int
        Training triplets used (over all folds) and held-out triplets scored.
    penalties : list of float
        The penalty each fold's inner cross-validation chose (``inf``: no correction).
    """

    listener: str
    group: float
    personal: float
    n_train: int
    n_test: int
    penalties: list[float] = field(default_factory=list)

    @property
    def difference(self) -> float:
        """Personal minus group."""
        return self.personal - self.group

    def to_json(self) -> dict[str, Any]:
        """The result as JSON values (an infinite penalty as ``"inf"``)."""
        return {"listener": self.listener, "group": self.group, "personal": self.personal,
                "difference": self.difference, "n_train_triplets": self.n_train,
                "n_test_triplets": self.n_test,
                "penalties": ["inf" if math.isinf(p) else p for p in self.penalties]}


def listener_triplets(judgments: Any, listener: str) -> tuple[np.ndarray, np.ndarray | None]:
    """One listener's triplets (and weights) from judgments matched to items
    (:class:`mirsim.experiments.judgments.ExperimentJudgments`).

    Raises
    ------
    JudgmentsError
        No such listener (the message lists them), or fewer than :data:`MIN_TRIPLETS`.
    """
    scorer = judgments.scorer
    if listener not in scorer.listeners:
        raise JudgmentsError(f"{judgments.source}: no listener '{listener}' (listeners: "
                             f"{', '.join(scorer.listeners)})")
    i = scorer.listeners.index(listener)
    triplets = scorer.triplets[i]
    if len(triplets) < MIN_TRIPLETS:
        raise JudgmentsError(f"{judgments.source}: listener '{listener}' has {len(triplets)} "
                             f"triplets among the items, fewer than the {MIN_TRIPLETS} a "
                             f"personal metric needs")
    return triplets, None if scorer.weights is None else scorer.weights[i]


def listener_names(judgments: ListenerGroupings | JudgedTriplets) -> tuple[str, ...]:
    """The listeners of judgments as :func:`~mirsim.experiments.judgments.judgments_for`
    names them: a triplet file is one listener, named by the file's name.

    Examples
    --------
    >>> listener_names(JudgedTriplets(("a", "b", "c"), np.array([[0, 1, 2]]), None, "x/t.csv"))
    ('t.csv',)
    """
    if isinstance(judgments, ListenerGroupings):
        return judgments.listeners
    return (Path(judgments.source).name or "triplets",)


def load_personal_judgments(spec: str | Path, listener: str
                            ) -> ListenerGroupings | JudgedTriplets:
    """``--judgments`` for a personal metric: what
    :func:`~mirsim.experiments.judgments.load_judgments` reads, or a listening-test directory,
    whose answers by ``listener`` are taken as the export would write them
    (:mod:`mirsim.listening.export`; a test of pairwise answers gives no triplets).
    """
    from mirsim.experiments.judgments import load_judgments

    path = Path(spec)
    if not path.is_dir():
        return load_judgments(spec)
    from mirsim.listening.design import load_test
    from mirsim.listening.export import grouping_rows, triplet_rows
    from mirsim.listening.store import ANSWERS_FILE, AnswerStore

    test = load_test(path)
    with AnswerStore(path / ANSWERS_FILE) as store:
        answers = store.answers()
    names = sorted({a["listener"] for a in answers})
    if listener not in names:
        raise JudgmentsError(f"{path}: no answers by listener '{listener}' (listeners who "
                             f"answered: {', '.join(names) or 'none'})")
    mine = [a for a in answers if a["listener"] == listener]
    if test.kind == "triplets":
        # named so that the one "listener" of the triplets is this listener
        return _triplets_of_rows(triplet_rows(test, mine), str(path / listener))
    if test.kind == "free-sorting":
        return _groupings_of_rows(grouping_rows(test, mine), str(path))
    raise JudgmentsError(f"{path}: a {test.kind} test gives no triplets to learn from")


def _triplets_of_rows(rows: list[list], source: str) -> JudgedTriplets:
    """Exported triplet rows ``[anchor, positive, negative, weight]`` as judged triplets."""
    sounds: dict[str, int] = {}
    triplets = [[sounds.setdefault(str(name), len(sounds)) for name in row[:3]] for row in rows]
    return JudgedTriplets(tuple(sounds), np.asarray(triplets, dtype=np.int64).reshape(-1, 3),
                          np.asarray([float(r[3]) for r in rows]), source)


def _groupings_of_rows(rows: list[list], source: str) -> ListenerGroupings:
    """Exported grouping rows ``[listener, fname, cluster]`` of one listener as groupings."""
    fnames = tuple(dict.fromkeys(str(r[1]) for r in rows))
    codes = {str(r[1]): int(r[2]) for r in rows}
    groups = np.array([[codes[f] for f in fnames]], dtype=np.int64)
    return ListenerGroupings((str(rows[0][0]),), fnames, groups, source)


def _tally(emb: np.ndarray, triplets: np.ndarray, weights: np.ndarray, distance: str
           ) -> float:
    return float(weights @ triplet_outcomes(emb, triplets, distance)) if len(triplets) else 0.0


def evaluate_listener(features: Any, triplets: np.ndarray, weights: np.ndarray | None, *,
                      listener: str, base: str, base_params: dict[str, Any] | None = None,
                      personal_params: dict[str, Any] | None = None, folds: int = 5,
                      seed: int = 0, max_triplets: int | None = None,
                      learn_from: tuple[np.ndarray, np.ndarray | None] | None = None
                      ) -> ListenerResult:
    """Held-out agreement of the group and the personal metric with one listener (the
    protocol of this module).

    Parameters
    ----------
    features : FeatureSet
        ``X``, ``labels`` (what the group metric learns) and ``groups`` (the unit of a fold).
    triplets : int array (m, 3)
        The listener's triplets, as rows of ``features.X``.
    weights : array (m,), optional
    listener : str
    base, base_params
        The group metric (a registered model name and its parameters).
    personal_params : dict, optional
        Parameters of the personal model (besides its base).
    folds, seed : int
        Folds by sound, and the seed of the split, the subsample and the models.
    max_triplets : int, optional
        Learn from at most this many training triplets per fold (default: all of them).
    learn_from : (triplets, weights), optional
        Learn from these triplets (among the training sounds, as the listener's would be)
        instead of the listener's own, and score on the listener's: the control of another
        listener's metric (does tuning help because it is *this* person's?).
    """
    X, n = features.X, len(features.X)
    w = np.ones(len(triplets)) if weights is None else np.asarray(weights, dtype=np.float64)
    rng = np.random.default_rng(seed)
    hits = {"group": 0.0, "personal": 0.0}
    count, n_train, n_test, penalties = 0.0, 0, 0, []
    source, source_w = (triplets, w) if learn_from is None else (
        learn_from[0], np.ones(len(learn_from[0])) if learn_from[1] is None else learn_from[1])
    weighted = weights is not None if learn_from is None else learn_from[1] is not None
    for train, test in split_indices("group-kfold", n, features.groups, folds, seed):
        held = np.isin(triplets[:, 0], test)
        learn = _training_rows(source, train, n)
        if max_triplets is not None and len(learn) > max_triplets:
            learn = np.sort(rng.choice(learn, max_triplets, replace=False))
        group = make_model(base, **{"seed": seed, **(base_params or {})}).fit(
            X[train], features.labels[train], features.groups[train])
        position = np.full(n, -1)
        position[train] = np.arange(len(train))
        personal = make_model("personal", **{"seed": seed, **(personal_params or {})}).fit(
            X[train], triplets=position[source[learn]],
            triplet_weights=source_w[learn] if weighted else None, base_model=group)
        for name, model in (("group", group), ("personal", personal)):
            hits[name] += _tally(model.transform(X), triplets[held], w[held], model.distance_)
        count += float(w[held].sum())
        n_train += len(learn)
        n_test += int(held.sum())
        penalties.append(personal.penalty_)
    per = {k: v / count if count else float("nan") for k, v in hits.items()}
    return ListenerResult(listener, per["group"], per["personal"], n_train, n_test, penalties)


def _training_rows(triplets: np.ndarray, train: np.ndarray, n: int) -> np.ndarray:
    """Row numbers of the triplets whose three sounds are training sounds."""
    inside = np.zeros(n, dtype=bool)
    inside[train] = True
    return np.flatnonzero(inside[triplets].all(axis=1))


def paired_summary(group: np.ndarray, personal: np.ndarray) -> dict[str, Any]:
    """Personal against group over listeners: mean ± sd (``ddof=1``) of each and of the
    differences, wins/losses/ties of the personal metric, a two-sided sign test (ties
    dropped) and the Wilcoxon signed-rank test (``None`` with fewer than two listeners or
    no nonzero difference).

    Examples
    --------
    >>> s = paired_summary(np.array([0.6, 0.6, 0.6]), np.array([0.7, 0.65, 0.6]))
    >>> s["wins"], s["losses"], s["ties"], round(s["difference"]["mean"], 3)
    (2, 0, 1, 0.05)
    >>> s["sign_test_p"]
    0.5
    """
    from scipy.stats import binomtest, wilcoxon

    g, p = np.asarray(group, dtype=np.float64), np.asarray(personal, dtype=np.float64)
    d = p - g
    wins, losses = int((d > 0).sum()), int((d < 0).sum())

    def stats(v: np.ndarray) -> dict[str, float]:
        return {"mean": float(v.mean()), "std": float(v.std(ddof=1)) if len(v) > 1 else 0.0}

    nonzero = wins + losses
    out: dict[str, Any] = {"n_listeners": len(d), "group": stats(g), "personal": stats(p),
                           "difference": stats(d), "wins": wins, "losses": losses,
                           "ties": len(d) - nonzero,
                           "sign_test_p": (float(binomtest(wins, nonzero).pvalue) if nonzero
                                           else None),
                           "wilcoxon_p": None}
    if len(d) > 1 and nonzero:
        out["wilcoxon_p"] = float(wilcoxon(p, g).pvalue)
    return out
