"""Conditional similarity network (CSN): one embedding, one masked sub-space per dimension of
similarity (genre, tempo, key...), after Lee et al. (ICASSP 2020) and Ribecky, Abeßer &
Lukashevich (2021), who adapt Veit et al.'s CSN to music.

Supervision is one boolean similarity matrix per dimension (``similar={"genre": S, ...}``,
``S[i, j]``: items ``i`` and ``j`` are alike in that dimension, e.g. from
``mirsim.datasets.dimensions.similarity_matrices``). For each dimension, the batch's
triplets (anchor, a similar positive, a dissimilar negative) are mined on the distances of
that dimension's masked embedding, semi-hard by default (the negative farther than the
positive by less than ``mining_margin``); the triplet loss of each dimension's triplets is
averaged over the dimensions. With ``track_regularisation``, segments of one song
(``groups``) are one more dimension whose mask is all ones (Lee et al.).

The mining is written here, not taken from pytorch-metric-learning: its miners take class
labels, and a similarity matrix need not be an equivalence relation (two songs 5 BPM apart
are alike in tempo, as are the second and a third 5 BPM further). The loss itself is
pytorch-metric-learning's ``TripletMarginLoss`` on the mined triplets, and the distance its
``LpDistance`` on normalised embeddings (mirsim's ``cosine``).

Sub-spaces
----------
The embedding has ``dimension_dim`` columns per dimension. With fixed masks (the default)
dimension ``k`` owns columns ``subspaces_[name]`` (a slice; disjoint and covering); with
learned masks (``masks="learned"``, Veit et al.'s: non-negative weights over all columns,
L1-penalised) every sub-space spans all columns, weighted by ``masks_[name]``.
``transform(X)`` is the whole embedding (L2-normalised); ``transform(X, dimension=name)`` is
that dimension's masked embedding (L2-normalised), as its loss saw it: the columns of the
slice for fixed masks, all columns times the mask for learned ones.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from sklearn.utils.validation import validate_data
from torch import nn

from mirsim.errors import MirsimError
from mirsim.evaluation.metrics import prepare_embeddings
from mirsim.models.base import MetricModel, _check_finite
from mirsim.models.inception import ConditionalBackbone, InputLayout
from mirsim.params import Interval, ListOf, Options, Satisfies, estimator, param
from mirsim.registries import DISTANCES, MODELS
from mirsim.training.devices import DEVICE_CHOICES, is_device_name, resolve_device
from mirsim.training.runtime import denormals_flushed, seeded, single_threaded
from mirsim.training.trainer import _diverged, _random_batches

#: The name of the dimension that the labels ``y`` make (same label: similar).
LABEL_DIMENSION = "label"
#: The name of the track-regularisation condition (same group: similar; all-ones mask).
TRACK_DIMENSION = "track"


def mine_triplets(dist: torch.Tensor, similar: torch.Tensor, margin: float,
                  kind: str = "semihard") -> tuple[torch.Tensor, ...]:
    """Triplets ``(a, p, n)`` of a batch: ``p`` similar to ``a``, ``n`` not, and
    ``d(a, p) < d(a, n) < d(a, p) + margin`` (``"semihard"``) or just
    ``d(a, n) < d(a, p) + margin`` (``"all"``: every triplet with a positive loss).

    Examples
    --------
    >>> d = torch.tensor([[0.0, 0.3, 0.35], [0.3, 0.0, 0.9], [0.35, 0.9, 0.0]])
    >>> S = torch.tensor([[1, 1, 0], [1, 1, 0], [0, 0, 1]], dtype=torch.bool)
    >>> [t.tolist() for t in mine_triplets(d, S, 0.1)]
    [[0], [1], [2]]
    """
    eye = torch.eye(len(dist), dtype=torch.bool, device=dist.device)
    d_ap, d_an = dist[:, :, None], dist[:, None, :]
    keep = ((similar & ~eye)[:, :, None] & ~similar[:, None, :] & (d_an < d_ap + margin))
    if kind == "semihard":
        keep &= d_an > d_ap
    return tuple(torch.nonzero(keep, as_tuple=True))


class ConditionalTripletLoss(nn.Module):
    """The mean over conditions of the triplet loss of each condition's mined triplets,
    each on its masked embedding; conditions without a triplet in the batch are left out.

    ``masks`` is ``(conditions, width)`` (fixed, or the ReLU of learned weights).
    """

    def __init__(self, margin: float, mining_margin: float, mining: str):
        super().__init__()
        from pytorch_metric_learning import losses

        self.distance = DISTANCES.make("cosine").pml_distance()
        self.triplet = losses.TripletMarginLoss(margin=margin, distance=self.distance)
        self.mining_margin, self.mining = mining_margin, mining

    def forward(self, embeddings: torch.Tensor, masks: torch.Tensor,
                similar: torch.Tensor) -> tuple[torch.Tensor, int]:
        terms, mined = [], 0
        for mask, S in zip(masks, similar):
            z = embeddings * mask
            with torch.no_grad():
                trip = mine_triplets(self.distance(z), S, self.mining_margin, self.mining)
            if len(trip[0]):
                terms.append(self.triplet(z, None, indices_tuple=trip))
                mined += len(trip[0])
        if not terms:
            return embeddings.sum() * 0.0, 0
        return torch.stack(terms).mean(), mined


def _check_similar(similar: Any, n: int) -> dict[str, np.ndarray]:
    """The per-dimension similarity matrices as boolean arrays, checked (one-line errors)."""
    if not isinstance(similar, dict) or not similar:
        raise ValueError("similar must be a non-empty dict {dimension name: (n, n) bool array}")
    out = {}
    for name, S in similar.items():
        if not isinstance(name, str) or not name or name == TRACK_DIMENSION:
            raise ValueError(f"dimension names must be non-empty strings other than "
                             f"'{TRACK_DIMENSION}', got {name!r}")
        S = np.asarray(S)
        if S.shape != (n, n) or S.dtype != bool:
            raise ValueError(f"similar['{name}'] must be a ({n}, {n}) boolean array, got "
                             f"{S.shape} {S.dtype}")
        if not np.array_equal(S, S.T):
            raise ValueError(f"similar['{name}'] must be symmetric")
        off = S & ~np.eye(n, dtype=bool)
        if not off.any() or (S | np.eye(n, dtype=bool)).all():
            raise ValueError(f"similar['{name}'] needs both similar and dissimilar pairs")
        out[name] = S
    return out


@MODELS.register
@estimator
class CSNModel(MetricModel):
    """Conditional similarity network on time–frequency inputs: an Inception backbone
    (:mod:`mirsim.models.inception`, multi-input or Lee et al.'s baseline) whose embedding is
    split into one masked sub-space per dimension of similarity.

    Defaults are the papers' where they were found: Adam at 1e-5, divided by 5 when the
    validation loss has not improved for 10 epochs, down to 1e-10; triplet margin and
    semi-hard mining margin 0.1; cosine distance; learned masks initialised and L1-penalised
    as in Veit et al.'s CSN (weights ~ N(0.9, 0.7), penalty 5e-4). ``dimension_dim`` = 64
    columns per dimension follows Lee et al.'s 256-d embedding of four dimensions (as
    remembered: not checked against the paper here). Epochs (100), batch size (32), the
    validation share (10 %) and the backbone's ``width`` (8) are this module's choices.

    ``fit(X, y=None, groups=None, similar=None)``: ``X`` are flattened
    :class:`~mirsim.features.multi_input.MultiInputFeature` matrices whose inputs and rows
    are ``inputs`` and ``rows`` (the frames follow from the width of ``X``); ``similar`` is
    ``{dimension: (n, n) bool}``; labels ``y`` instead make one dimension called
    ``"label"`` (same label: similar); ``groups`` (the song of each segment) are needed by
    ``track_regularisation``.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> X = rng.standard_normal((12, 3 * 8 * 8)).astype(np.float32)
    >>> a, b = np.arange(12) % 2, np.arange(12) // 6
    >>> m = CSNModel(inputs=("mel", "tempogram", "chroma"), rows=(8, 8, 8), map_size=4,
    ...              width=2, dimension_dim=4, epochs=1)
    >>> m = m.fit(X, similar={"a": a[:, None] == a, "b": b[:, None] == b})
    >>> m.subspaces_
    {'a': slice(0, 4, None), 'b': slice(4, 8, None)}
    >>> m.transform(X).shape, m.transform(X, dimension="b").shape
    ((12, 8), (12, 4))
    """

    name = "csn"
    display_name = "Conditional similarity network"
    supervision = ("labels", "similar")
    default_distance = "cosine"

    backbone: str = param("multi-input", Options(("multi-input", "baseline")),
                          "one branch per input (Ribecky et al.) or mel only (Lee et al.)")
    inputs: tuple = param(("mel", "tempogram", "chroma"),
                          ListOf(Satisfies(lambda v: isinstance(v, str) and v != "",
                                           "a name"), min_len=1),
                          "the inputs stacked in the features, in order")
    rows: tuple = param((128, 32, 16), ListOf(Interval(int, 1, None), min_len=1),
                        "rows of each input in the features")
    map_size: int = param(16, Interval(int, 1, None), "side of the branches' maps")
    width: int = param(8, Interval(int, 1, None), "channels of each convolution path")
    dimension_dim: int = param(64, Interval(int, 1, None), "embedding columns per dimension")
    dimensions: tuple = param((), ListOf(Satisfies(lambda v: isinstance(v, str) and v != "",
                                                   "a name")),
                              "the dimensions of similar= learned, in order (default: all)")
    masks: str = param("fixed", Options(("fixed", "learned")), "fixed disjoint or learned masks")
    mask_l1: float = param(5e-4, Interval(float, 0, None), "L1 penalty of learned masks")
    margin: float = param(0.1, Interval(float, 0, None, closed="neither"), "triplet margin")
    mining: str = param("semihard", Options(("semihard", "all")), "which triplets are mined")
    mining_margin: float = param(0.1, Interval(float, 0, None, closed="neither"),
                                 "negatives within this of the anchor-positive distance")
    track_regularisation: bool = param(False, Options((False, True)),
                                       "segments of one song (groups) similar, all-ones mask")
    epochs: int = param(100, Interval(int, 1, None), "passes over the training data")
    batch_size: int = param(32, Interval(int, 2, None), "items per batch")
    lr: float = param(1e-5, Interval(float, 0, None, closed="neither"), "Adam learning rate")
    lr_factor: float = param(0.2, Interval(float, 0, 1, closed="neither"),
                             "learning-rate factor when the validation loss stalls")
    lr_patience: int = param(10, Interval(int, 0, None), "epochs without improvement first")
    min_lr: float = param(1e-10, Interval(float, 0, None), "lowest learning rate")
    validation_fraction: float = param(0.1, Interval(float, 0, 0.5, closed="left"),
                                       "share of items held out for the validation loss")
    seed: int = param(0, Interval(int, 0, None), "seed of the weights, split and batches")
    device: str = param("cpu", Satisfies(is_device_name, DEVICE_CHOICES),
                        "where the network trains and embeds (auto: a CUDA GPU if there is "
                        "one)")

    # -- fitting ---------------------------------------------------------------------------
    def fit(self, X: Any, y: Any = None, groups: Any = None, *, similar: Any = None
            ) -> CSNModel:
        """Learn the standardisation (per input row), the backbone and the masks.

        Parameters
        ----------
        X : array of shape (n, sum(rows) * frames)
        y : array of shape (n,), optional
            Labels: one dimension ``"label"``, instead of ``similar``.
        groups : array of shape (n,), optional
            Song of each segment (for ``track_regularisation``).
        similar : dict of str to bool array of shape (n, n)
            Per dimension, which pairs of items are alike (symmetric).

        Returns
        -------
        self
        """
        for attr in [a for a in vars(self) if a.endswith("_") and not a.startswith("_")]:
            delattr(self, attr)
        self._check_own_params()
        if (y is None) == (similar is None):
            raise ValueError(f"{self.name} learns from similar= (per-dimension similarity "
                             f"matrices) or from labels y: give one of them")
        _check_finite(X)
        X = np.asarray(validate_data(self, X, dtype=(np.float64, np.float32),
                                     ensure_min_samples=2), dtype=np.float32)
        layout = self._layout(X.shape[1])
        if y is not None:
            y = np.asarray(y).reshape(-1)
            if len(y) != len(X):
                raise ValueError(f"X has {len(X)} rows but y has {len(y)}")
            similar = {LABEL_DIMENSION: y[:, None] == y[None, :]}
        similar = self._chosen(_check_similar(similar, len(X)))
        conditions = dict(similar)
        if self.track_regularisation:
            if groups is None or len(groups) != len(X):
                raise ValueError("track_regularisation needs groups (the song of each segment) "
                                 "for every row of X")
            g = np.asarray(groups)
            conditions[TRACK_DIMENSION] = g[:, None] == g[None, :]
        elif groups is not None and len(groups) != len(X):
            raise ValueError(f"X has {len(X)} rows but groups has {len(groups)}")
        mean, scale = _band_statistics(X, layout)
        self.dimensions_ = tuple(similar)
        device = resolve_device(self.device)  # a device not here: one line, before any work
        with seeded(self.seed):
            self.network_ = ConditionalBackbone(layout, self.backbone, width=self.width,
                                                map_size=self.map_size,
                                                embedding_dim=self.embedding_dim_).to(device)
            self._mask_weights = self._initial_masks(device)
        self._train(((X - mean) / scale).astype(np.float32),
                    np.stack(list(conditions.values())))
        self.mean_, self.scale_, self.classes_, self.distance_ = mean, scale, np.zeros(0), "cosine"
        return self

    def _chosen(self, similar: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """The dimensions of ``similar`` named by ``dimensions`` (all when it is empty)."""
        if not self.dimensions:
            return similar
        unknown = [d for d in self.dimensions if d not in similar]
        if unknown:
            raise MirsimError(f"model '{self.name}': no dimension {', '.join(unknown)} to "
                              f"learn (the data's: {', '.join(similar)})")
        return {d: similar[d] for d in self.dimensions}

    @property
    def embedding_dim_(self) -> int:
        return self.dimension_dim * len(self.dimensions_)

    def _layout(self, n_features: int) -> InputLayout:
        if len(self.inputs) != len(self.rows):
            raise MirsimError(f"model '{self.name}': {len(self.inputs)} inputs but "
                              f"{len(self.rows)} rows")
        total = sum(self.rows)
        if n_features % total:
            raise ValueError(f"{n_features} features are not {total} rows ({self.rows}) of "
                             f"equal length: use the multi-input feature with the same rows")
        return InputLayout(tuple(self.inputs), tuple(int(r) for r in self.rows),
                           n_features // total)

    def _initial_masks(self, device: torch.device) -> torch.Tensor:
        k, width = len(self.dimensions_), self.embedding_dim_
        if self.masks == "learned":  # Veit et al.: N(0.9, 0.7), through a ReLU
            return nn.Parameter((0.9 + 0.7 * torch.randn(k, width)).to(device))
        fixed = torch.zeros(k, width)
        for i in range(k):
            fixed[i, i * self.dimension_dim:(i + 1) * self.dimension_dim] = 1.0
        return fixed.to(device)

    def _mask_matrix(self, with_track: bool) -> torch.Tensor:
        """``(conditions, width)`` masks: the dimensions', then the all-ones track mask."""
        m = torch.relu(self._mask_weights) if self.masks == "learned" else self._mask_weights
        if with_track:
            m = torch.cat([m, torch.ones(1, m.shape[1], device=m.device)])
        return m

    def _train(self, X: np.ndarray, similar: np.ndarray) -> None:
        rng = np.random.default_rng(self.seed)
        order = rng.permutation(len(X))
        n_val = int(round(self.validation_fraction * len(X)))
        n_val = n_val if n_val >= 3 and len(X) - n_val >= 3 else 0
        val, train = np.sort(order[:n_val]), np.sort(order[n_val:])
        Xt, S = torch.from_numpy(X), torch.from_numpy(similar)
        loss_fn = ConditionalTripletLoss(self.margin, self.mining_margin, self.mining)
        learned = [self._mask_weights] if self.masks == "learned" else []
        optimizer = torch.optim.Adam([*self.network_.parameters(), *learned], lr=self.lr)
        scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(
            optimizer, factor=self.lr_factor, patience=self.lr_patience, min_lr=self.min_lr)
        generator = torch.Generator().manual_seed(self.seed)
        track = self.track_regularisation
        self.loss_history_, self.validation_history_ = [], []

        device = self._mask_weights.device

        def batch_loss(idx: np.ndarray) -> tuple[torch.Tensor, int]:
            i = torch.from_numpy(idx)
            value, mined = loss_fn(self.network_(Xt[i].to(device)), self._mask_matrix(track),
                                   S[:, i][:, :, i].to(device))
            if learned:
                value = value + self.mask_l1 * torch.relu(learned[0]).sum(dim=1).mean()
            return value, mined

        with seeded(self.seed), single_threaded(), denormals_flushed():
            for epoch in range(self.epochs):
                self.network_.train()
                total, count = 0.0, 0
                for b in _random_batches(len(train), self.batch_size, generator):
                    value, _ = batch_loss(train[b])
                    if not torch.isfinite(value):
                        raise _diverged(epoch, float(value.detach()), optimizer)
                    optimizer.zero_grad()
                    value.backward()
                    optimizer.step()
                    total, count = total + float(value.detach()) * len(b), count + len(b)
                self.loss_history_.append(total / max(count, 1))
                monitored = self.loss_history_[-1]
                if n_val:
                    self.network_.eval()
                    with torch.no_grad():
                        monitored = float(batch_loss(val)[0])
                    self.validation_history_.append(monitored)
                scheduler.step(monitored)
        self.network_.eval()

    # -- embeddings ------------------------------------------------------------------------
    @property
    def subspaces_(self) -> dict[str, slice]:
        """Columns of the embedding that each dimension's sub-space uses (all of them, with
        learned masks: see ``masks_``)."""
        self._require_fitted()
        if self.masks == "learned":
            return {d: slice(0, self.embedding_dim_) for d in self.dimensions_}
        w = self.dimension_dim
        return {d: slice(i * w, (i + 1) * w) for i, d in enumerate(self.dimensions_)}

    @property
    def masks_(self) -> dict[str, np.ndarray]:
        """Weight of every embedding column in each dimension's sub-space."""
        self._require_fitted()
        with torch.no_grad():
            m = self._mask_matrix(False).cpu().numpy().copy()
        return dict(zip(self.dimensions_, m))

    def _embed(self, X: np.ndarray) -> np.ndarray:
        device = resolve_device(self.device)
        self.network_.to(device)
        self.network_.eval()
        with torch.no_grad(), denormals_flushed():
            out = [self.network_(torch.from_numpy(X[s:s + 256]).to(device)).cpu()
                   for s in range(0, len(X), 256)]
        return torch.cat(out).numpy().astype(np.float32)

    def transform(self, X: Any, dimension: str | None = None) -> np.ndarray:
        """Embeddings of ``X``: the whole embedding, or the sub-space of ``dimension``
        (L2-normalised, as compared by the cosine distance)."""
        self._require_fitted()
        if dimension is not None and dimension not in self.dimensions_:
            raise MirsimError(f"unknown dimension {dimension!r} (valid: "
                              f"{', '.join(self.dimensions_)})")
        _check_finite(X)
        X = np.asarray(validate_data(self, X, reset=False, dtype=(np.float64, np.float32)),
                       dtype=np.float32)
        emb = self._embed(self._standardise(X))
        if dimension is None:
            return self._finish(emb)
        if self.masks == "learned":
            sub = emb * self.masks_[dimension]
        else:
            sub = emb[:, self.subspaces_[dimension]]
        return np.ascontiguousarray(prepare_embeddings(sub, "cosine"), dtype=np.float32)

    @property
    def n_parameters(self) -> int:
        self._require_fitted()
        learned = self._mask_weights.numel() if self.masks == "learned" else 0
        return sum(p.numel() for p in self.network_.parameters()) + learned

    # -- persistence -----------------------------------------------------------------------
    def _state_tensors(self) -> dict[str, torch.Tensor]:
        return {**{f"network.{k}": v.cpu() for k, v in self.network_.state_dict().items()},
                "masks": self._mask_weights.detach().cpu().clone()}

    def _extra_config(self) -> dict[str, Any]:
        return {"dimensions": list(self.dimensions_)}

    def _load_state_tensors(self, tensors: dict[str, torch.Tensor]) -> None:
        self._saved_tensors = tensors  # the network is built once the dimensions are known

    def _load_extra_config(self, config: dict[str, Any]) -> None:
        tensors = self.__dict__.pop("_saved_tensors")
        self.dimensions_ = tuple(config["dimensions"])
        self.network_ = ConditionalBackbone(self._layout(self.n_features_in_), self.backbone,
                                            width=self.width, map_size=self.map_size,
                                            embedding_dim=self.embedding_dim_)
        state = {k[len("network."):]: v for k, v in tensors.items() if k.startswith("network.")}
        self.network_.load_state_dict(state)
        self.network_.eval()
        masks = tensors["masks"].clone()
        self._mask_weights = nn.Parameter(masks) if self.masks == "learned" else masks


def _band_statistics(X: np.ndarray, layout: InputLayout) -> tuple[np.ndarray, np.ndarray]:
    """Mean and scale of every row of the feature matrices (over items and frames),
    repeated along the frames: standardisation per band keeps the inputs shift-invariant in
    time, where a column-wise one would give every frame its own offset."""
    m = X.reshape(len(X), sum(layout.rows), layout.n_frames)
    mean, scale = m.mean(axis=(0, 2)), m.std(axis=(0, 2))
    scale = np.where(scale > 1e-12, scale, 1.0)
    return (np.repeat(mean, layout.n_frames).astype(np.float32),
            np.repeat(scale, layout.n_frames).astype(np.float32))
