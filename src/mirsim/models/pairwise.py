"""Linear metrics learned from target similarities between items (e.g. the listeners'
co-association: the share of listeners who put two sounds in one group).

Both models learn a map ``L`` of the standardised features and compare embeddings ``L x`` by
Euclidean distance, as LDA and LMNN do (:class:`~mirsim.models.linear_metrics.LinearMapModel`:
``L_`` is the state, saved with safetensors). Both learn from ``similarities=`` — an
``(n, n)`` matrix ``S`` in [0, 1], NaN where a pair has no target — or from labels, read as
``S_ij = 1`` for two items of one label and 0 otherwise, so that the two supervisions can be
compared with the same model.

``pair-regression``  regresses the distance of every pair on ``1 - S_ij`` (gradient descent).
``soft-lda``         LDA whose class means are similarity-weighted means: with labels it is
                     LDA itself; with the co-association, each item is pulled towards the
                     sounds the listeners grouped it with, in proportion to how many did
                     (closed form, an eigenproblem).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch

from mirsim.errors import DataError
from mirsim.models.linear_metrics import LinearMapModel, _shrinkage_ok
from mirsim.params import Interval, Nullable, Satisfies, estimator, param
from mirsim.registries import MODELS
from mirsim.training import seeded, single_threaded, without_torch_reregistration_warning

__all__ = ["PairRegressionModel", "SoftLDAModel", "target_similarities"]


def target_similarities(y: np.ndarray | None, similarities: np.ndarray | None) -> np.ndarray:
    """The similarity targets a model learns from: ``similarities`` as given, or from labels
    ``y`` 1 for two items of one label and 0 otherwise; the diagonal is 1 (an item is like
    itself).

    Examples
    --------
    >>> target_similarities(np.array([0, 0, 1]), None).tolist()
    [[1.0, 1.0, 0.0], [1.0, 1.0, 0.0], [0.0, 0.0, 1.0]]
    >>> target_similarities(None, np.array([[np.nan, 0.25], [0.25, 0.0]])).tolist()
    [[1.0, 0.25], [0.25, 1.0]]
    """
    if similarities is None:
        y = np.asarray(y)
        S = (y[:, None] == y[None, :]).astype(np.float64)
    else:
        S = np.array(similarities, dtype=np.float64)
    np.fill_diagonal(S, 1.0)
    return S


@MODELS.register
@estimator
class PairRegressionModel(LinearMapModel):
    """A linear metric whose distances regress on target dissimilarities ``1 - S_ij``.

    Learns ``L`` (``n_components x n_features``) minimising, over the pairs ``i < j`` of
    training items with a target,

        mean_ij w_ij (|L (x_i - x_j)| - (1 - S_ij))^2 + weight_decay * |L|_F^2

    with Euclidean (not squared) distances, so that a pair half the listeners grouped sits
    half as far as a pair nobody grouped. Why a regression: the co-association is graded (1/16
    steps for 16 listeners) and a regression keeps every grade, where triplets or labels keep
    only its order or a threshold; the target scale is fixed (no free offset or slope, which
    would let ``L`` collapse to zero). With ``balance`` (default), the pairs with ``S_ij >=
    0.5`` and the others carry equal total weight (``w_ij``): most pairs of sounds are
    unrelated, and unweighted their term would spread every sound out evenly. The weight
    decay (ridge on ``L``) matters: 62 training sounds in 775 JTFS dimensions give about
    1,900 pairs for 24,800 entries of ``L`` at 32 rows.

    Measured on the 78 Cyberlioz sounds (``reproduce new-sounds``, ``group-kfold``, supervision
    ``coassociation``; MAP@R / listener agreement in %): on ``jtfs`` 26.5 / 90.1 whatever the
    weight decay (1e-4 to 0.1); on ``jtfs+musicnn-msd`` 28.1 / 85.6 at 1e-4, 28.9 / 89.2 at
    0.01, 31.0 / 90.6 at 0.1 (the default; chosen on those same folds). Adam at
    ``lr=0.01`` first throws the loss from 0.3 to 160 before it settles: hence 0.001.

    ``L`` starts as the leading principal axes of the training data, scaled so that the
    median pair distance is 1 (the target of unrelated pairs). Adam, full batch when the
    items are at most ``batch_size`` (else batches of anchor rows against every item), the
    learning rate annealed to zero along a cosine; torch runs on one thread.

    Parameters
    ----------
    n_components : int, optional
        Rows of ``L``, at most the features (with fewer features, as many as features);
        ``None``: as many as features.
    weight_decay : float
        Ridge penalty on ``L``.
    balance : bool
        Weigh similar (``S >= 0.5``) and dissimilar pairs equally in total.
    steps : int
        Optimiser steps.
    lr : float
        Adam's initial learning rate.
    batch_size : int
        Anchor rows per step.
    seed : int
        Seeds the order of anchors: same seed, same ``L``.

    Attributes
    ----------
    L_ : torch.Tensor of shape (n_components, n_features)
    loss_history_ : list of float
        The loss of every 10th step.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> X = rng.standard_normal((40, 5)); S = np.exp(-np.abs(X[:, :1] - X[:, :1].T))
    >>> model = PairRegressionModel(n_components=2, steps=200).fit(X, similarities=S)
    >>> model.transform(X).shape, model.loss_history_[-1] < model.loss_history_[0]
    ((40, 2), True)
    """

    name = "pair-regression"
    display_name = "Pair regression"
    supervision = ("labels", "similarities")

    n_components: int | None = param(32, Nullable(Interval(int, 1, None)),
                                     "rows of L, at most the features (None: all)")
    weight_decay: float = param(0.1, Interval(float, 0, None), "ridge penalty on L")
    balance: bool = param(True, Satisfies(lambda v: isinstance(v, bool), "true or false"),
                          "weigh similar and dissimilar pairs equally")
    steps: int = param(500, Interval(int, 1, None), "optimiser steps")
    lr: float = param(0.001, Interval(float, 0, None, closed="neither"), "Adam learning rate")
    batch_size: int = param(512, Interval(int, 1, None), "anchor rows per step")
    seed: int = param(0, Interval(int, 0, None), "seed of the anchor order")

    def _fit_standardised(self, X: np.ndarray, y: np.ndarray | None, groups, *,
                          similarities: np.ndarray | None = None, **supervision) -> None:
        S = target_similarities(y, similarities)
        with seeded(self.seed), single_threaded():
            self.L_, self.loss_history_ = self._train(X, S)

    def _weights(self, S: np.ndarray) -> np.ndarray:
        known = np.isfinite(S) & ~np.eye(len(S), dtype=bool)
        w = known.astype(np.float64)
        if self.balance:
            similar = known & (np.nan_to_num(S) >= 0.5)
            for part in (similar, known & ~similar):
                if part.any():
                    w[part] = 0.5 / part.sum()
        return w / w.sum() * known.sum()  # mean weight 1 over the known pairs

    def _train(self, X: np.ndarray, S: np.ndarray) -> tuple[torch.Tensor, list[float]]:
        from sklearn.decomposition import PCA

        n, d = X.shape
        k = d if self.n_components is None else min(self.n_components, d)
        axes = PCA(n_components=min(k, n, d), svd_solver="full").fit(X).components_
        if len(axes) < k:  # more rows than the data spans: the rest start at zero
            axes = np.vstack([axes, np.zeros((k - len(axes), d))])
        Xt = torch.from_numpy(np.ascontiguousarray(X, dtype=np.float32))
        with torch.no_grad():
            z = Xt @ torch.as_tensor(axes, dtype=torch.float32).T
            scale = float(torch.pdist(z).median()) if n > 1 else 1.0
        L = torch.as_tensor(axes / max(scale, 1e-12), dtype=torch.float32).requires_grad_(True)
        target = torch.as_tensor(np.nan_to_num(1.0 - S), dtype=torch.float32)
        weight = torch.as_tensor(self._weights(S), dtype=torch.float32)
        with without_torch_reregistration_warning():
            optimizer = torch.optim.Adam([L], lr=self.lr)
        scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=self.steps)
        generator = torch.Generator().manual_seed(self.seed)
        batches = math.ceil(n / self.batch_size)
        order: list[torch.Tensor] = []
        history: list[float] = []
        for step in range(self.steps):
            if not order:
                order = list(torch.split(torch.randperm(n, generator=generator),
                                         self.batch_size)) if batches > 1 else [torch.arange(n)]
            rows = order.pop(0)
            z = Xt @ L.T
            diff = z[rows, None, :] - z[None, :, :]
            dist = torch.sqrt((diff * diff).sum(-1) + 1e-9)
            w = weight[rows]
            fit = (w * (dist - target[rows]) ** 2).sum() / w.sum().clamp_min(1e-12)
            loss = fit + self.weight_decay * (L * L).sum()
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            scheduler.step()
            if step % 10 == 0 or step == self.steps - 1:
                history.append(float(loss.detach()))
        return L.detach().clone(), history


@MODELS.register
@estimator
class SoftLDAModel(LinearMapModel):
    """LDA with soft labels: each item's class mean becomes the similarity-weighted mean of
    the items, ``m_i = sum_j S_ij x_j / sum_j S_ij``.

    The within scatter is that of the residuals ``r_i = x_i - m_i``, the between scatter the
    total scatter minus it, and the axes are the leading generalised eigenvectors of (between,
    shrunk within), scaled to unit within variance — LDA's ``eigen`` solver. With labels
    (``S_ij`` 1 within a label) ``m_i`` is the mean of ``i``'s label and this is LDA with one
    pooled within covariance (exactly, without shrinkage; scikit-learn shrinks each label's
    covariance on its own, so with shrinkage the two differ). With the listeners'
    co-association, a sound is pulled towards the sounds the listeners grouped it with, in
    proportion to how many did: the soft labels of every listener's grouping at once (an
    item's class is the share of listeners who put it with each other item), with no
    threshold and no consensus. Shrinkage ``auto`` is
    Ledoit-Wolf's on the residuals, as LDA's on the within-label deviations. Deterministic;
    fitting costs an eigendecomposition of a ``d x d`` matrix.

    Parameters
    ----------
    shrinkage : "auto", float in [0, 1] or None
        Shrinkage of the within covariance towards a scaled identity.
    n_components : int
        Axes kept, at most the features (with fewer features, as many as features).
    seed : int
        Unused (deterministic); kept for a uniform command line.

    Attributes
    ----------
    L_ : torch.Tensor of shape (n_components, n_features)
    shrinkage_ : float
        The shrinkage used.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> y = np.repeat([0, 1, 2], 20); X = rng.standard_normal((60, 5)); X[:, 0] += 3 * y
    >>> soft = SoftLDAModel(n_components=2, shrinkage=None).fit(X, y)  # from labels
    >>> from mirsim.models.linear_metrics import LDAModel
    >>> lda = LDAModel(shrinkage=None).fit(X, y)
    >>> bool(np.allclose(soft.transform(X), lda.transform(X), atol=1e-4))  # LDA itself
    True
    >>> S = (y[:, None] == y[None, :]) * 0.8 + 0.1  # soft: every pair a little alike
    >>> SoftLDAModel(n_components=2).fit(X, similarities=S).transform(X).shape
    (60, 2)
    """

    name = "soft-lda"
    display_name = "Soft-label LDA"
    supervision = ("labels", "similarities")

    shrinkage: Any = param("auto", Satisfies(_shrinkage_ok, "auto, none or a number in [0, 1]"),
                           "within-covariance shrinkage: auto is Ledoit-Wolf")
    n_components: int = param(18, Interval(int, 1, None), "axes kept, at most the features")
    seed: int = param(0, Interval(int, 0, None), "unused (deterministic)")

    def _fit_standardised(self, X: np.ndarray, y: np.ndarray | None, groups, *,
                          similarities: np.ndarray | None = None, **supervision) -> None:
        from scipy.linalg import eigh
        from sklearn.covariance import ledoit_wolf_shrinkage

        X = X.astype(np.float64)
        n, d = X.shape
        W = np.nan_to_num(target_similarities(y, similarities))
        residuals = X - (W @ X) / W.sum(axis=1, keepdims=True)
        if not np.any(np.abs(residuals) > 1e-12):
            raise DataError(f"{self.name}: every item is its own class (no two items are "
                            f"similar): nothing to learn")
        within = residuals.T @ residuals / n
        centred = X - X.mean(axis=0)
        between = centred.T @ centred / n - within
        alpha = (float(ledoit_wolf_shrinkage(residuals, assume_centered=True))
                 if self.shrinkage == "auto" else float(self.shrinkage or 0.0))
        within = (1 - alpha) * within + alpha * np.trace(within) / d * np.eye(d)
        values, vectors = eigh(between, within)
        order = np.argsort(values)[::-1][:min(self.n_components, d)]
        self.shrinkage_ = alpha
        self.L_ = torch.from_numpy(np.ascontiguousarray(vectors[:, order].T, dtype=np.float32))

    def _extra_config(self) -> dict[str, Any]:
        return {"shrinkage_used": self.shrinkage_}

    def _load_extra_config(self, config: dict[str, Any]) -> None:
        self.shrinkage_ = float(config.get("shrinkage_used", 0.0))
