"""A personal metric: a group metric corrected for one listener by a linear map learned from
that listener's own triplets.

The embedding is ``x -> A g(x) / s``: ``g`` is the group metric (any fitted metric model: a
run's saved model, or ``base`` fitted on the training items' labels), ``s`` one number that
brings the group embeddings' mean pairwise distance to 1 (a scale changes no ranking; it makes
``margin`` mean the same for every group metric), and ``A`` a square map that starts at the
identity. ``A`` is learned with the triplet margin loss of :mod:`mirsim.training.losses` in
the group metric's own geometry (:mod:`mirsim.training.distances`), plus ``penalty *
||A - I||_F^2``: with few triplets or a large penalty ``A`` stays at the identity, so the
personal metric is the group metric; no triplet, or ``penalty=inf``, gives the group metric
exactly.

The penalty is chosen by inner cross-validation over the listener's training triplets alone
(``penalty=None``, the default): the sounds the triplets name are split into
``inner_folds`` folds; for each fold, ``A`` is learned from the triplets among the other
sounds and scored on the triplets whose anchor is in the fold. Every value of ``penalties``
and infinity (no correction) are tried; the best pooled agreement wins, a tie going to the
larger penalty (the map nearer the group metric). (Not
:class:`mirsim.models.selection.InnerCVSearch`: it scores label retrieval over items, where
this choice scores triplet agreement over triplets split by sound, the group metric fixed.)

>>> PersonalMetricModel().penalties
(0.001, 0.01, 0.1, 1.0)
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
from sklearn.utils.validation import validate_data
from torch import nn

from mirsim.errors import MirsimError
from mirsim.evaluation.judgments import triplet_outcomes
from mirsim.models.base import MetricModel, _check_finite
from mirsim.params import Interval, ListOf, Nullable, Satisfies, estimator, param
from mirsim.registries import DISTANCES, LOSSES, MODELS

__all__ = ["PersonalMetricModel", "sound_folds", "triplets_within"]

#: Prefix of the group metric's tensors in a saved personal model.
_BASE = "base."


def triplets_within(triplets: np.ndarray, items: np.ndarray, n: int) -> np.ndarray:
    """The triplets whose three sounds are all among ``items`` (indices out of ``n``).

    Examples
    --------
    >>> triplets_within(np.array([[0, 1, 2], [0, 1, 3]]), np.array([0, 1, 2]), 4).tolist()
    [[0, 1, 2]]
    """
    inside = np.zeros(n, dtype=bool)
    inside[items] = True
    return triplets[inside[triplets].all(axis=1)]


def sound_folds(triplets: np.ndarray, n_folds: int, seed: int
                ) -> list[tuple[np.ndarray, np.ndarray]]:
    """Inner folds by sound: for each fold, the triplets among the other sounds (to learn
    from) and the triplets whose anchor is in the fold (to score).

    Examples
    --------
    >>> t = np.array([[0, 1, 2], [1, 0, 2], [3, 4, 5], [4, 3, 5], [5, 3, 1]])
    >>> [(a.tolist(), b.tolist()) for a, b in sound_folds(t, 3, 0)][2]
    ([[3, 4, 5], [4, 3, 5]], [[0, 1, 2], [1, 0, 2]])
    """
    sounds = np.unique(triplets)
    order = np.random.default_rng(seed).permutation(sounds)
    n = int(sounds.max()) + 1
    out = []
    for held in np.array_split(order, min(n_folds, len(sounds))):
        anchored = np.isin(triplets[:, 0], held)
        out.append((triplets_within(triplets, np.setdiff1d(sounds, held), n),
                    triplets[anchored]))
    return out


def _penalty_ok(value: Any) -> bool:
    return value is None or (isinstance(value, (int, float)) and not isinstance(value, bool)
                             and value >= 0 and not math.isnan(value))


class _Correction(nn.Module):
    """``z -> (I + D) z`` with ``D`` starting at zero."""

    def __init__(self, dim: int):
        super().__init__()
        self.delta = nn.Parameter(torch.zeros(dim, dim))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return z + z @ self.delta.T


class _PenalisedLoss(nn.Module):
    """A triplet loss plus ``penalty * ||D||_F^2`` (the map's distance to the identity)."""

    def __init__(self, loss: nn.Module, correction: _Correction, penalty: float):
        super().__init__()
        self.loss, self.correction, self.penalty = loss, correction, penalty
        self.distance = loss.distance  # the trainer checks the loss's geometry

    def forward(self, embeddings, labels=None, indices_tuple=None):
        return (self.loss(embeddings, labels, indices_tuple)
                + self.penalty * (self.correction.delta ** 2).sum())


@MODELS.register
@estimator
class PersonalMetricModel(MetricModel):
    """A group metric corrected for one listener: a linear map of the group embedding,
    initialised at the identity, learned from the listener's triplets with a penalty pulling
    it back to the identity (strength chosen by inner cross-validation).

    ``fit(X, y, triplets=..., base_model=None)``: without ``base_model`` the group metric is
    ``base`` fitted on ``(X, y)`` (labels of the same items, e.g. consensus clusters); with
    one (a fitted metric model, e.g. a run's), it is used as it is.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> X, y = rng.standard_normal((12, 3)), np.arange(12) % 3
    >>> t = np.array([[0, 3, 1], [1, 4, 2], [2, 5, 0]])
    >>> m = PersonalMetricModel(base="euclidean", penalty=float("inf")).fit(X, y, triplets=t)
    >>> bool(np.allclose(m.map_, np.eye(3)))
    True
    """

    name = "personal"
    display_name = "Personal metric"
    supervision = ("triplets",)

    base: str = param("lda", Satisfies(lambda v: v in MODELS and v != "personal",
                                       "a registered metric model other than personal"),
                      "group metric fitted on the labels when fit gets no base_model")
    base_params: Any = param(None, Nullable(Satisfies(lambda v: isinstance(v, dict),
                                                      "a dict of parameters")),
                             "parameters of the group metric")
    penalty: Any = param(None, Satisfies(_penalty_ok, "none (inner cross-validation) or a "
                                                      "number >= 0 (inf: no correction)"),
                         "strength of the pull toward the identity")
    penalties: tuple = param((0.001, 0.01, 0.1, 1.0), ListOf(Interval(float, 0, None)),
                             "penalties the inner cross-validation tries (and infinity)")
    inner_folds: int = param(3, Interval(int, 2, None), "folds by sound of the inner CV")
    margin: float = param(0.1, Interval(float, 0, None), "triplet margin (unit: the group "
                                                         "embeddings' mean pairwise distance)")
    steps: int = param(300, Interval(int, 1, None), "optimiser steps (at least; whole passes "
                                                    "over the triplets)")
    batch_size: int = param(3072, Interval(int, 3, None), "items per batch (a third: triplets)")
    lr: float = param(0.01, Interval(float, 0, None, closed="neither"), "Adam learning rate")
    seed: int = param(0, Interval(int, 0, None), "seed of the batches and inner folds")

    # -- fitting ---------------------------------------------------------------------------
    def fit(self, X: Any, y: Any = None, groups: Any = None, *, triplets: Any = None,
            triplet_weights: Any = None, base_model: MetricModel | None = None
            ) -> PersonalMetricModel:
        """Fit (or take) the group metric, then learn the listener's map from ``triplets``
        (row indices of ``X``; an empty array: no correction)."""
        for attr in [a for a in vars(self) if a.endswith("_") and not a.startswith("_")]:
            delattr(self, attr)
        self._check_own_params()
        _check_finite(X)
        X = np.asarray(validate_data(self, X, dtype=(np.float64, np.float32),
                                     ensure_min_samples=2), dtype=np.float32)
        base = self._group_metric(X, y, groups, base_model)
        trip, weights = self._listener_triplets(triplets, triplet_weights, len(X))
        Z = np.asarray(base.transform(X), dtype=np.float64)
        self.input_scale_ = _mean_distance(Z, base.distance_)
        Z = (Z / self.input_scale_).astype(np.float32)
        penalty = self.penalty
        if penalty is None:
            penalty, self.cv_scores_ = self._choose_penalty(Z, trip, weights, base.distance_)
        self.penalty_ = float(penalty)
        self.map_ = self._learn_map(Z, trip, weights, self.penalty_, base.distance_)
        self.base_, self.distance_ = base, base.distance_
        self.classes_ = np.asarray(getattr(base, "classes_", np.zeros(0)))
        self.mean_ = np.zeros(X.shape[1], dtype=np.float32)  # the group metric standardises
        self.scale_ = np.ones(X.shape[1], dtype=np.float32)
        return self

    def _group_metric(self, X: np.ndarray, y: Any, groups: Any,
                      base_model: MetricModel | None) -> MetricModel:
        if base_model is not None:
            if not hasattr(base_model, "mean_"):
                raise MirsimError("personal: base_model must be a fitted metric model")
            if base_model.n_features_in_ != X.shape[1]:
                raise ValueError(f"base_model takes {base_model.n_features_in_} features, X "
                                 f"has {X.shape[1]}")
            return base_model
        if y is None:
            raise ValueError(f"personal: give y, the labels the group metric {self.base} is "
                             f"fitted on, or a fitted base_model")
        return MODELS.make(self.base, **(self.base_params or {})).fit(X, y, groups)

    @staticmethod
    def _listener_triplets(triplets: Any, weights: Any, n: int
                           ) -> tuple[np.ndarray, np.ndarray | None]:
        if triplets is None:
            raise ValueError("personal learns from the listener's triplets: give triplets "
                             "(an empty array for none)")
        if np.asarray(triplets).size == 0:
            return np.zeros((0, 3), dtype=np.int64), None
        trip, w = MetricModel._check_triplets(triplets, weights, n)
        return trip, w

    def _choose_penalty(self, Z: np.ndarray, triplets: np.ndarray, weights: np.ndarray | None,
                        distance: str) -> tuple[float, dict[str, float]]:
        """The penalty of best inner-CV agreement (ties: the larger), and every score."""
        candidates = sorted(self.penalties, reverse=True)
        scores = {"inf": 0.0, **{repr(float(p)): 0.0 for p in candidates}}
        if len(triplets) == 0:
            return math.inf, scores
        w = np.ones(len(triplets)) if weights is None else weights
        key = {tuple(t): i for i, t in enumerate(triplets.tolist())}
        totals = dict.fromkeys(scores, 0.0)
        count = 0.0
        for learn, held in sound_folds(triplets, self.inner_folds, self.seed):
            if len(held) == 0:
                continue
            hw = w[[key[tuple(t)] for t in held.tolist()]]
            lw = None if weights is None or len(learn) == 0 else w[
                [key[tuple(t)] for t in learn.tolist()]]
            count += hw.sum()
            for name, p in [("inf", math.inf), *((repr(float(p)), p) for p in candidates)]:
                A = self._learn_map(Z, learn, lw, p, distance)
                emb = (Z.astype(np.float64) @ A.numpy().astype(np.float64).T)
                totals[name] += float(hw @ triplet_outcomes(emb, held, distance))
        scores = {k: v / count if count else float("nan") for k, v in totals.items()}
        best, best_score = math.inf, scores["inf"]
        for p in candidates:  # from the largest: a tie keeps the larger penalty
            if scores[repr(float(p))] > best_score + 1e-12:
                best, best_score = float(p), scores[repr(float(p))]
        return best, scores

    def _learn_map(self, Z: np.ndarray, triplets: np.ndarray, weights: np.ndarray | None,
                   penalty: float, distance: str) -> torch.Tensor:
        """``A`` (float32, square) learned from ``triplets`` of the rows of ``Z``."""
        from mirsim.training import train_embedding
        from mirsim.training.runtime import seeded

        dim = Z.shape[1]
        if len(triplets) == 0 or math.isinf(penalty):
            return torch.eye(dim)
        geometry = DISTANCES.make(distance)
        with seeded(self.seed):
            correction = _Correction(dim)
        triplet_loss = LOSSES.make("triplet", margin=self.margin).build(
            n_classes=1, embedding_dim=dim, distance=geometry)
        loss = _PenalisedLoss(triplet_loss, correction, penalty)
        optimizer = torch.optim.Adam(correction.parameters(), lr=self.lr)
        per_pass = math.ceil(len(triplets) / max(1, self.batch_size // 3))
        self.loss_history_ = train_embedding(
            correction, Z, loss=loss, distance=geometry, optimizer=optimizer,
            epochs=math.ceil(self.steps / per_pass), batch_size=self.batch_size, seed=self.seed, triplets=triplets,
            triplet_weights=weights)
        return (torch.eye(dim) + correction.delta.detach()).contiguous()

    # -- embedding ---------------------------------------------------------------------------
    def _embed(self, X: np.ndarray) -> np.ndarray:
        Z = np.asarray(self.base_.transform(X), dtype=np.float64) / self.input_scale_
        return (Z @ self.map_.numpy().astype(np.float64).T).astype(np.float32)

    @property
    def n_parameters(self) -> int:
        """Entries of the map (the group metric's own are not counted)."""
        self._require_fitted()
        return int(self.map_.numel())

    # -- persistence -------------------------------------------------------------------------
    def _state_tensors(self) -> dict[str, torch.Tensor]:
        return {"personal.map": self.map_,
                **{_BASE + k: v for k, v in self.base_._tensors_to_save().items()}}

    def _load_state_tensors(self, tensors: dict[str, torch.Tensor]) -> None:
        self.map_ = tensors["personal.map"].to(torch.float32).clone()

    def _extra_config(self) -> dict[str, Any]:
        return {"base_model": self.base_._config_to_save(),
                "input_scale": float(self.input_scale_),
                "chosen_penalty": None if math.isinf(self.penalty_) else self.penalty_}

    def _load_extra_config(self, config: dict[str, Any]) -> None:
        self.input_scale_ = float(config["input_scale"])
        chosen = config.get("chosen_penalty")
        self.penalty_ = math.inf if chosen is None else float(chosen)

    @classmethod
    def _from_config(cls, config: dict, tensors: dict[str, torch.Tensor]) -> MetricModel:
        model = super()._from_config(config, tensors)
        base_config = config["base_model"]
        base_tensors = {k[len(_BASE):]: v for k, v in tensors.items() if k.startswith(_BASE)}
        model.base_ = MODELS.get(base_config["model"])._from_config(base_config, base_tensors)
        return model


def _mean_distance(Z: np.ndarray, distance: str) -> float:
    """Mean distance between distinct rows of ``Z`` in the geometry ``distance`` (1 if all
    rows are equal).

    Examples
    --------
    >>> _mean_distance(np.array([[0.0], [2.0]]), "euclidean")
    2.0
    """
    from scipy.spatial.distance import pdist

    from mirsim.evaluation.metrics import prepare_embeddings

    d = pdist(prepare_embeddings(Z, distance))
    mean = float(d.mean()) if len(d) else 0.0
    return mean if mean > 1e-12 else 1.0
