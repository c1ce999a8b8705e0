"""Large Margin Nearest Neighbour (Weinberger & Saul 2009), a linear metric learned in torch.

``metric-learn`` 0.7 (the usual LMNN implementation) no longer works with current
scikit-learn, so LMNN is written here: a linear map ``L`` learned by stochastic gradient
descent on the paper's objective,

    eps(L) = (1 - mu) sum_{i, j ~> i} d(x_i, x_j)
             + mu sum_{i, j ~> i} sum_l (1 - y_il) [1 + d(x_i, x_j) - d(x_i, x_l)]_+

with ``d(a, b) = |L (a - b)|^2`` (squared Euclidean distance after ``L``), ``j ~> i`` the
target neighbours of ``i`` (its ``k`` nearest items of the same label in the standardised
input space, fixed before learning) and ``l`` the impostors (items of another label).
"""

from __future__ import annotations

import math

import numpy as np
import torch
from sklearn.decomposition import PCA
from sklearn.neighbors import NearestNeighbors

from mirsim.models.linear_metrics import LinearMapModel
from mirsim.params import Interval, Nullable, estimator, param
from mirsim.registries import MODELS
from mirsim.training import seeded, single_threaded, without_torch_reregistration_warning

__all__ = ["LMNNModel", "lmnn_objective", "n_epochs", "target_neighbors"]


def target_neighbors(X: np.ndarray, y: np.ndarray, n_neighbors: int) -> np.ndarray:
    """The ``n_neighbors`` nearest items of the same label of every item (Euclidean).

    Parameters
    ----------
    X : ndarray of shape (n, d)
    y : ndarray of shape (n,)
        Integer labels.
    n_neighbors : int
        Target neighbours per item. An item of a label with ``m <= n_neighbors`` items gets
        the ``m - 1`` others; an item alone in its label gets none.

    Returns
    -------
    ndarray of shape (n, n_neighbors), int64
        Item indices, nearest first; ``-1`` pads missing neighbours.

    Examples
    --------
    >>> X = np.array([[0.0], [1.0], [3.0], [10.0], [12.0]])
    >>> target_neighbors(X, np.array([0, 0, 0, 1, 2]), 2).tolist()
    [[1, 2], [0, 2], [1, 0], [-1, -1], [-1, -1]]
    """
    targets = np.full((len(X), n_neighbors), -1, dtype=np.int64)
    for label in np.unique(y):
        members = np.flatnonzero(y == label)
        m = min(n_neighbors, len(members) - 1)
        if m < 1:
            continue
        nn = NearestNeighbors(n_neighbors=m, algorithm="brute").fit(X[members])
        targets[members, :m] = members[nn.kneighbors(return_distance=False)]
    return targets


def _squared_distances(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """``|a_i - b_j|^2`` for every row pair, without a (len(a), len(b), dim) tensor."""
    sq = (a * a).sum(1)[:, None] + (b * b).sum(1)[None, :] - 2.0 * (a @ b.T)
    return sq.clamp_min(0.0)


def _active_triples(d_target: torch.Tensor, d_impostor: torch.Tensor, has_target: torch.Tensor,
                    other_label: torch.Tensor, block_elements: int = 1 << 18
                    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Hinge sum and active-triple counts per target pair and per impostor pair.

    Works on blocks of anchors so that no (anchors, k, impostors) tensor exceeds
    ``block_elements`` (large temporaries are much slower than a few small ones).
    """
    n_anchors, k = d_target.shape
    step = max(1, block_elements // max(k * d_impostor.shape[1], 1))
    hinge_sum = d_target.new_zeros(())
    per_target, per_impostor = torch.zeros_like(d_target), torch.zeros_like(d_impostor)
    for s in range(0, n_anchors, step):
        block = slice(s, s + step)
        margin = 1.0 + d_target[block, :, None] - d_impostor[block, None, :]
        active = (margin > 0) & other_label[block, None, :] & has_target[block, :, None]
        hinge_sum += (margin * active).sum()
        per_target[block] = active.sum(2)
        per_impostor[block] = active.sum(1)
    return hinge_sum, per_target, per_impostor


def _lmnn_terms(L: torch.Tensor, X: torch.Tensor, y: torch.Tensor, targets: torch.Tensor,
                anchors: torch.Tensor, impostors: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """Pull sum, push (hinge) sum and number of target pairs of a batch of anchors.

    The hinge ``[1 + d(i, j) - d(i, l)]_+`` is evaluated for every (anchor, target, impostor)
    triple without gradient; its gradient is carried by ``sum_ij a_ij d(i, j) -
    sum_il b_il d(i, l)``, where ``a_ij`` (``b_il``) counts the active triples of a target
    pair (an impostor pair). That is the same gradient as autograd through the hinge, with
    a graph over pairs only (a (batch, k, impostors) graph is the slow part otherwise).
    """
    z_anchor = X[anchors] @ L.T
    tgt = targets[anchors]
    has_target = tgt >= 0
    z_target = X[tgt.clamp_min(0)] @ L.T
    d_target = ((z_anchor[:, None, :] - z_target) ** 2).sum(-1) * has_target
    d_impostor = _squared_distances(z_anchor, X[impostors] @ L.T)
    with torch.no_grad():
        hinge_sum, per_target, per_impostor = _active_triples(
            d_target, d_impostor, has_target, y[anchors][:, None] != y[impostors][None, :])
    carrier = (per_target * d_target).sum() - (per_impostor * d_impostor).sum()
    push = hinge_sum + (carrier - carrier.detach())
    return d_target.sum(), push, has_target.sum()


def lmnn_objective(L: np.ndarray | torch.Tensor, X: np.ndarray, y: np.ndarray,
                   targets: np.ndarray, push_weight: float = 0.5,
                   chunk_size: int = 256) -> float:
    """The exact LMNN objective of ``L`` (every impostor), divided by the number of target pairs.

    Parameters
    ----------
    L : array of shape (p, d)
        Linear map; distances are ``|L (a - b)|^2``.
    X : ndarray of shape (n, d)
    y : ndarray of shape (n,)
    targets : ndarray of shape (n, k)
        From :func:`target_neighbors`.
    push_weight : float
        ``mu`` of the objective.
    chunk_size : int
        Anchors evaluated at once (memory: ``chunk_size * k * n`` floats).

    Returns
    -------
    float

    Examples
    --------
    >>> X = np.array([[0.0], [1.0], [1.5]]); y = np.array([0, 0, 1])
    >>> t = target_neighbors(X, y, 1)
    >>> # pairs 0->1 and 1->0 pull 1 each; impostor 2: [1+1-2.25]_+ = 0 and [1+1-0.25]_+ = 1.75
    >>> lmnn_objective(np.eye(1), X, y, t)
    0.9375
    """
    Lt = torch.as_tensor(L).detach().to(torch.float64)
    Xt = torch.as_tensor(np.asarray(X, dtype=np.float64))
    yt, tt = torch.as_tensor(np.asarray(y)), torch.as_tensor(np.asarray(targets))
    everyone = torch.arange(len(Xt))
    pull = push = 0.0
    pairs = 0
    with torch.no_grad():
        for start in range(0, len(Xt), chunk_size):
            anchors = everyone[start:start + chunk_size]
            p, q, m = _lmnn_terms(Lt, Xt, yt, tt, anchors, everyone)
            pull, push, pairs = pull + float(p), push + float(q), pairs + int(m)
    if pairs == 0:
        return float("nan")
    return ((1.0 - push_weight) * pull + push_weight * push) / pairs


def _initial_map(X: np.ndarray, n_components: int | None) -> torch.Tensor:
    """Identity (full rank) or the leading principal axes (``n_components < d``)."""
    d = X.shape[1]
    if n_components is None or n_components == d:
        return torch.eye(d, dtype=torch.float32)
    if not 1 <= n_components < d:
        raise ValueError(f"n_components must be between 1 and the {d} features, "
                         f"got {n_components}")
    axes = PCA(n_components=n_components, svd_solver="full").fit(X).components_
    return torch.as_tensor(axes, dtype=torch.float32)


def n_epochs(epochs: int | None, n_anchors: int, batch_size: int, auto_steps: int = 500) -> int:
    """Epochs to run: ``epochs``, or when ``None`` the fewest giving ``auto_steps`` steps.

    Parameters
    ----------
    epochs : int, optional
        The model's ``epochs`` parameter.
    n_anchors : int
        Items with at least one target neighbour.
    batch_size : int
        Anchors per step (an epoch has ``ceil(n_anchors / batch_size)`` steps).
    auto_steps : int
        Steps aimed at when ``epochs`` is ``None``.

    Returns
    -------
    int

    Examples
    --------
    >>> n_epochs(None, 77, 256), n_epochs(None, 6000, 256), n_epochs(7, 6000, 256)
    (500, 21, 7)
    """
    if epochs is not None:
        return int(epochs)
    return max(1, math.ceil(auto_steps / math.ceil(n_anchors / batch_size)))


@MODELS.register
@estimator
class LMNNModel(LinearMapModel):
    """Large Margin Nearest Neighbour metric learning (Weinberger & Saul 2009).

    Learns ``x -> L x`` so that every item's ``n_neighbors`` target neighbours (nearest
    same-label items in the standardised input space, fixed at the start) come closer and
    items of other labels stay at least a unit margin farther, minimising
    ``(1 - mu) sum d(x_i, x_j) + mu sum [1 + d(x_i, x_j) - d(x_i, x_l)]_+`` with squared
    Euclidean distances after ``L`` (see :func:`lmnn_objective`).

    Written in torch because ``metric-learn`` 0.7 no longer works with current scikit-learn.
    Optimisation is stochastic: each step takes ``batch_size`` anchors and all their target
    pairs, and ``n_impostor_candidates`` items drawn at random as possible impostors (their
    hinge sum is scaled by ``n / n_impostor_candidates`` so that the step is an unbiased
    estimate of the full objective; with fewer items than that, every item is used and the
    gradient is exact). The optimiser is Adam, its learning rate annealed to zero along a
    cosine over all steps (``CosineAnnealingLR``).

    Defaults: ``epochs=None`` runs about 500 steps whatever the size of the data: 500
    full-batch (exact gradient) steps for the 77 training items of a Cyberlioz seed-set fold,
    21 epochs of 24 steps for 6,000 items. Measured on 2 shared CPU cores (d = 40, 19 labels,
    synthetic data): n = 77 fits in about 1.3 s and takes the objective from 117 to 0.26
    (0.11 after three times as many steps); n = 6,000 fits in about 4.5 s, from 23.0 to
    3.19 (3.16 after three times as many steps). The learning rate is annealed to zero along
    a cosine, so a fit ends on a settled ``L`` whatever its length. Fitting runs torch on one
    thread (see :func:`single_threaded`).

    Parameters
    ----------
    n_neighbors : int
        Target neighbours per item (``k``).
    push_weight : float
        ``mu`` in [0, 1]: weight of the impostor hinge term against the pull term.
    n_components : int, optional
        Rows of ``L``. ``None``: full rank, ``L`` is ``d x d`` and starts as the identity;
        fewer than ``d``: ``L`` starts as the leading principal axes of the training data.
    epochs : int, optional
        Passes over the anchors; ``None``: enough for about 500 steps (see :func:`n_epochs`).
    lr : float
        Adam's initial learning rate.
    batch_size : int
        Anchors per step.
    n_impostor_candidates : int
        Items drawn per step as possible impostors (bounds memory and time on large sets).
    seed : int
        Seeds the order of anchors and the impostor draws: same seed, same ``L``.

    Attributes
    ----------
    L_ : torch.Tensor of shape (n_components, n_features)
    loss_history_ : list of float
        Mean loss per target pair of each epoch (a stochastic estimate of
        :func:`lmnn_objective` when batches or impostors are sampled).

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> X = rng.standard_normal((60, 5)); y = (X[:, 0] > 0).astype(int)
    >>> model = LMNNModel(epochs=20).fit(X, y)
    >>> model.transform(X).shape, model.n_parameters
    ((60, 5), 25)
    >>> model.loss_history_[-1] < model.loss_history_[0]
    True
    """

    name = "lmnn"
    display_name = "LMNN"
    table1_row = 3
    supervision = ("labels", "triplets")

    n_neighbors: int = param(3, Interval(int, 1, None), "target neighbours per item")
    push_weight: float = param(0.5, Interval(float, 0, 1), "mu: weight of the impostor term")
    n_components: int | None = param(None, Nullable(Interval(int, 1, None)),
                                     "rows of L (default: full rank)")
    epochs: int | None = param(None, Nullable(Interval(int, 1, None)),
                               "passes over the anchors (default: about 500 steps)")
    lr: float = param(0.03, Interval(float, 0, None, closed="neither"), "Adam learning rate")
    batch_size: int = param(256, Interval(int, 1, None), "anchors per step")
    n_impostor_candidates: int = param(512, Interval(int, 1, None),
                                       "items drawn per step as possible impostors")
    seed: int = param(0, Interval(int, 0, None), "seed of the anchor order and impostor draws")

    def _fit_standardised(self, X: np.ndarray, y: np.ndarray, groups, *, triplets=None,
                          triplet_weights=None, **supervision) -> None:
        if triplets is not None:
            with seeded(self.seed), single_threaded():
                self.L_, self.loss_history_ = self._train_triplets(X, triplets, triplet_weights)
            return
        targets = target_neighbors(X, y, self.n_neighbors)
        anchors = np.flatnonzero(targets[:, 0] >= 0)
        if len(anchors) == 0:
            raise ValueError("lmnn needs at least one label with two or more items")
        with seeded(self.seed), single_threaded():
            self.L_, self.loss_history_ = self._train(X, y, targets, anchors)

    def _train(self, X: np.ndarray, y: np.ndarray, targets: np.ndarray,
               anchors: np.ndarray) -> tuple[torch.Tensor, list[float]]:
        Xt, yt = torch.from_numpy(np.ascontiguousarray(X)), torch.as_tensor(y, dtype=torch.long)
        tt, at = torch.from_numpy(targets), torch.from_numpy(anchors)
        n = len(Xt)
        n_imp = min(self.n_impostor_candidates, n)
        push_scale = n / n_imp
        generator = torch.Generator().manual_seed(self.seed)
        L = _initial_map(X, self.n_components).requires_grad_(True)
        with without_torch_reregistration_warning():
            optimizer = torch.optim.Adam([L], lr=self.lr)
        epochs = n_epochs(self.epochs, len(at), self.batch_size)
        scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(
            optimizer, T_max=epochs * math.ceil(len(at) / self.batch_size))
        history: list[float] = []
        for _ in range(epochs):
            total, pairs = 0.0, 0
            for batch in torch.split(at[torch.randperm(len(at), generator=generator)],
                                     self.batch_size):
                impostors = (torch.randperm(n, generator=generator)[:n_imp] if n_imp < n
                             else torch.arange(n))
                pull, push, n_pairs = _lmnn_terms(L, Xt, yt, tt, batch, impostors)
                loss = ((1.0 - self.push_weight) * pull
                        + self.push_weight * push_scale * push) / n_pairs
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
                scheduler.step()
                total += float(loss.detach()) * int(n_pairs)
                pairs += int(n_pairs)
            history.append(total / pairs)
        return L.detach().clone(), history

    def _train_triplets(self, X: np.ndarray, triplets: np.ndarray,
                        weights: np.ndarray | None) -> tuple[torch.Tensor, list[float]]:
        """LMNN's objective over judged triplets ``(a, p, n)`` instead of target neighbours and
        impostors: ``(1 - mu) sum w d(a, p) + mu sum w [1 + d(a, p) - d(a, n)]_+``, weights
        normalised to a mean of 1 (Adam, the learning rate annealed along a cosine)."""
        Xt = torch.from_numpy(np.ascontiguousarray(X))
        trip = torch.from_numpy(np.asarray(triplets, dtype=np.int64))
        w = torch.ones(len(trip)) if weights is None else torch.as_tensor(weights,
                                                                          dtype=torch.float32)
        w = w / w.mean()
        generator = torch.Generator().manual_seed(self.seed)
        L = _initial_map(X, self.n_components).requires_grad_(True)
        with without_torch_reregistration_warning():
            optimizer = torch.optim.Adam([L], lr=self.lr)
        epochs = n_epochs(self.epochs, len(trip), self.batch_size)
        scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(
            optimizer, T_max=epochs * math.ceil(len(trip) / self.batch_size))
        history: list[float] = []
        for _ in range(epochs):
            total = 0.0
            for batch in torch.split(torch.randperm(len(trip), generator=generator),
                                     self.batch_size):
                a, p, n = (Xt[trip[batch, i]] @ L.T for i in range(3))
                d_ap, d_an = ((a - p) ** 2).sum(1), ((a - n) ** 2).sum(1)
                hinge = torch.clamp(1.0 + d_ap - d_an, min=0.0)
                loss = (w[batch] * ((1.0 - self.push_weight) * d_ap
                                    + self.push_weight * hinge)).mean()
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
                scheduler.step()
                total += float(loss.detach()) * len(batch)
            history.append(total / len(trip))
        return L.detach().clone(), history
