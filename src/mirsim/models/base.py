"""Metric models: scikit-learn estimators over torch modules.

Every model standardises its input with statistics of the data it is fitted on (so a fold's
test items never leak into the preprocessing), then maps features to embeddings compared by
the model's distance (``distance_``: ``cosine`` embeddings are L2-normalised, ``euclidean``
ones are not; metrics and indexes use the same). ``save``/``load`` write a JSON config and a
safetensors file: no pickle.

A model is a scikit-learn estimator: parameters are keyword arguments of ``__init__`` stored
unchanged (declared once, with what they may be: :mod:`mirsim.params`), nothing is learned
before ``fit``, learned state ends with an underscore, ``sklearn.base.clone`` works. Besides
labels, ``fit`` takes judged triplets (``triplets=``), target similarities between the items
(``similarities=``, e.g. the listeners' co-association) or augmented views (``views=``) for
the models whose ``supervision`` lists them.

Adding a model is one new file in :mod:`mirsim.models`: a subclass registered with
``@MODELS.register``, whose class attributes say what tables and pipelines need to know
(``display_name``, ``table1_row``, ``needs_reference``, ``supervision``, ``needs_views``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.exceptions import NotFittedError as SklearnNotFittedError
from sklearn.utils.validation import validate_data

import mirsim
from mirsim.errors import MirsimError
from mirsim.evaluation.metrics import prepare_embeddings
from mirsim.params import Interval, Nullable, Options, Satisfies, check_params, estimator, param
from mirsim.registries import DISTANCES, LOSSES, MINERS, SAMPLERS
from mirsim.training import denormals_flushed, seeded, train_embedding
from mirsim.training.components import Component, component_config, resolve
from mirsim.training.devices import DEVICE_CHOICES, is_device_name, resolve_device
from mirsim.training.runtime import without_torch_reregistration_warning

#: The ways a model can be supervised (see :meth:`MetricModel.fit`).
SUPERVISIONS = ("labels", "triplets", "views", "similarities")


def _plain(value: Any) -> Any:
    """numpy scalars, tuples and components as plain JSON values."""
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, Component):
        return value.to_config()
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def _check_finite(X: Any) -> None:
    """One line for NaN or infinite features (scikit-learn's own message is a paragraph);
    anything that is not a plain numeric array is left to scikit-learn's validation."""
    if hasattr(X, "toarray") or hasattr(X, "tocsr"):  # sparse: scikit-learn refuses it
        return
    try:
        values = np.asarray(X, dtype=np.float64)
    except (TypeError, ValueError):
        return
    if values.size and not np.all(np.isfinite(values)):
        raise ValueError("features contain NaN or infinity")


class NotFittedError(MirsimError, SklearnNotFittedError):
    """A model used before ``fit``."""


class MetricModel(TransformerMixin, BaseEstimator):
    """Base class: ``fit(X, y, groups=None)``, ``transform(X)``, ``save(dir)``, ``load(dir)``."""

    name: ClassVar[str]
    #: the model's name in tables ("Linear projection")
    display_name: ClassVar[str] = ""
    #: position among the rows of the AN-GNN paper's Table 1 (None: not one of them)
    table1_row: ClassVar[int | None] = None
    #: embeddings depend on a reference set (a graph over the library), not on the item alone
    needs_reference: ClassVar[bool] = False
    #: what ``fit`` can learn from: "labels", "triplets", "views", "similarities"
    supervision: ClassVar[tuple[str, ...]] = ("labels",)
    #: ``fit`` needs augmented views of every item (self-supervised models)
    needs_views: ClassVar[bool] = False
    #: the distance the model compares embeddings with when it has no ``distance`` parameter
    default_distance: ClassVar[str] = "euclidean"
    catalogue_attributes = ("display_name", "table1_row", "needs_reference", "supervision",
                            "needs_views", "default_distance")
    #: parameters that hold a registered component (saved as ``{"name", "params"}``)
    _component_params: ClassVar[dict[str, Any]] = {}

    @classmethod
    def display_name_for(cls, params: dict[str, Any] | None = None) -> str:
        """The model's name in tables when built with ``params`` (a model whose parameters
        make variants worth telling apart names each one; others: ``display_name``).

        >>> from mirsim.models import model_class
        >>> model_class("linear").display_name_for({"epochs": 3})
        'Linear projection'
        """
        return cls.display_name or cls.name

    # -- fitting ---------------------------------------------------------------------------
    def fit(self, X: Any, y: Any = None, groups: Any = None, *, triplets: Any = None,
            triplet_weights: Any = None, views: Any = None, similarities: Any = None
            ) -> MetricModel:
        """Learn the standardisation and the metric.

        Parameters
        ----------
        X : array of shape (n, d)
            Features.
        y : array of shape (n,), optional
            Labels (e.g. perceptual clusters).
        groups : array of shape (n,), optional
            Unit of identity of each item (IMT, track), for models that use it.
        triplets : int array of shape (m, 3), optional
            Judged triplets (anchor, positive, negative) as row indices of ``X``, instead of
            ``y`` (models whose ``supervision`` has "triplets").
        triplet_weights : array of shape (m,), optional
            Non-negative weight of each triplet (e.g. how many listeners share it).
        views : array of shape (n, v, d), optional
            Features of ``v`` augmented versions of each item, instead of ``y``
            (self-supervised models).
        similarities : array of shape (n, n), optional
            Target similarity of every pair of rows of ``X`` in [0, 1] (e.g. the share of
            listeners who grouped the two sounds together: 1 the same, 0 unrelated), symmetric;
            NaN marks a pair without a target. Instead of ``y`` (models whose ``supervision``
            has "similarities").

        Returns
        -------
        self
        """
        mode = self._supervision_mode(y, triplets, views, similarities)
        for attr in [a for a in vars(self) if a.endswith("_") and not a.startswith("_")]:
            delattr(self, attr)  # a failed fit must not leave a half-fitted model behind
        self._check_own_params()
        dtypes = (np.float64, np.float32)
        _check_finite(X)
        if mode == "labels":
            X, y = validate_data(self, X, y, dtype=dtypes, ensure_min_samples=2)
        else:
            X = validate_data(self, X, dtype=dtypes, ensure_min_samples=2)
        X = np.asarray(X, dtype=np.float32)
        if groups is not None and len(groups) != len(X):
            raise ValueError(f"X has {len(X)} rows but groups has {len(groups)}")
        classes, y_codes = (np.unique(np.asarray(y), return_inverse=True) if mode == "labels"
                            else (np.zeros(0), None))
        trip, weights = self._check_triplets(triplets, triplet_weights, len(X))
        # passed only when given, so that subclasses written before it need not name it
        targets = ({} if similarities is None
                   else {"similarities": self._check_similarities(similarities, len(X))})
        mean, scale = X.mean(axis=0), X.std(axis=0)
        scale = np.where(scale > 1e-12, scale, 1.0).astype(np.float32)
        views_std = None
        if views is not None:
            views = np.asarray(views, dtype=np.float32)
            if views.ndim != 3 or views.shape[0] != len(X) or views.shape[2] != X.shape[1]:
                raise ValueError(f"views must have shape ({len(X)}, v, {X.shape[1]}), got "
                                 f"{views.shape}")
            views_std = ((views - mean) / scale).astype(np.float32)
        distance = self._resolve_distance()
        self._fit_standardised(((X - mean) / scale).astype(np.float32),
                               None if y_codes is None else y_codes.reshape(-1), groups,
                               distance=distance, triplets=trip, triplet_weights=weights,
                               views=views_std, **targets)
        self.classes_, self.mean_, self.scale_, self.distance_ = classes, mean, scale, distance
        return self

    def transform(self, X: Any) -> np.ndarray:
        """Embeddings of ``X`` (rows), float32, as the model's distance compares them."""
        self._require_fitted()
        _check_finite(X)
        X = np.asarray(validate_data(self, X, reset=False, dtype=(np.float64, np.float32)),
                       dtype=np.float32)
        return self._finish(self._embed(self._standardise(X)))

    def _finish(self, embeddings: np.ndarray) -> np.ndarray:
        out = prepare_embeddings(np.asarray(embeddings, dtype=np.float32), self.distance_)
        return np.ascontiguousarray(out, dtype=np.float32)

    def _standardise(self, X: np.ndarray) -> np.ndarray:
        return ((X - self.mean_) / self.scale_).astype(np.float32)

    def _supervision_mode(self, y: Any, triplets: Any, views: Any,
                          similarities: Any = None) -> str:
        given = [m for m, v in zip(SUPERVISIONS, (y, triplets, views, similarities))
                 if v is not None]
        if len(given) > 1:
            raise ValueError(f"{self.name}: give one of y, triplets, views or similarities, not "
                             f"{' and '.join(given)}")
        if not given:
            if "labels" in self.supervision:
                raise ValueError(f"{self.name} requires y to be passed, but the target y is None")
            raise ValueError(f"{self.name} learns from {' or '.join(self.supervision)}")
        if given[0] not in self.supervision:
            raise MirsimError(f"{self.name} cannot learn from {given[0]} (it learns from "
                              f"{' or '.join(self.supervision)})")
        return given[0]

    @staticmethod
    def _check_triplets(triplets: Any, weights: Any, n: int
                        ) -> tuple[np.ndarray | None, np.ndarray | None]:
        if triplets is None:
            return None, None
        trip = np.asarray(triplets)
        if trip.ndim != 2 or trip.shape[1] != 3 or len(trip) == 0 or not np.issubdtype(
                trip.dtype, np.integer):
            raise ValueError(f"triplets must be a non-empty integer array of shape (m, 3), got "
                             f"{trip.shape} {trip.dtype}")
        if trip.min() < 0 or trip.max() >= n:
            raise ValueError(f"triplet indices must lie in [0, {n})")
        if weights is None:
            return trip.astype(np.int64), None
        w = np.asarray(weights, dtype=np.float64)
        if w.shape != (len(trip),) or np.any(w < 0) or not np.all(np.isfinite(w)) or w.sum() <= 0:
            raise ValueError(f"triplet_weights must be {len(trip)} finite non-negative numbers "
                             f"with a positive sum")
        return trip.astype(np.int64), w

    @staticmethod
    def _check_similarities(similarities: Any, n: int) -> np.ndarray:
        """The target similarities as float64, checked: ``(n, n)``, symmetric, in [0, 1] or
        NaN (no target), at least one known pair off the diagonal."""
        S = np.asarray(similarities, dtype=np.float64)
        if S.shape != (n, n):
            raise ValueError(f"similarities must have shape ({n}, {n}), got {S.shape}")
        known = np.isfinite(S)
        if np.isinf(S).any() or np.any((S[known] < 0) | (S[known] > 1)):
            raise ValueError("similarities must lie in [0, 1] (NaN: no target)")
        if not np.array_equal(known, known.T) or not np.allclose(S[known], S.T[known]):
            raise ValueError("similarities must be symmetric")
        if not (known & ~np.eye(n, dtype=bool)).any():
            raise ValueError("similarities give no target for any pair of different items")
        return S

    def _check_own_params(self) -> None:
        check_params(self, f"model '{self.name}'")

    def _resolve_distance(self) -> str:
        return self.default_distance

    def _require_fitted(self) -> None:
        if not hasattr(self, "mean_"):
            raise NotFittedError(f"{self.name} model is not fitted yet: call fit first")

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.required = "labels" in self.supervision and not self.needs_views
        tags.transformer_tags.preserves_dtype = ["float32"]
        return tags

    # -- to be provided by subclasses ----------------------------------------------------------
    def _fit_standardised(self, X: np.ndarray, y: np.ndarray | None, groups: Any, *,
                          distance: str, triplets: np.ndarray | None,
                          triplet_weights: np.ndarray | None, views: np.ndarray | None) -> None:
        """Learn from standardised features and integer labels (or triplets, or views; or
        ``similarities=``, passed only when given)."""

    def _embed(self, X: np.ndarray) -> np.ndarray:
        return X

    @property
    def n_parameters(self) -> int:
        """Number of learned parameters of the metric (0 for the Euclidean baseline)."""
        return 0

    # -- persistence -----------------------------------------------------------------------
    def _state_tensors(self) -> dict[str, torch.Tensor]:
        return {}

    def _load_state_tensors(self, tensors: dict[str, torch.Tensor]) -> None:
        pass

    def _extra_config(self) -> dict[str, Any]:
        """What a subclass adds to the saved ``config.json`` (JSON values)."""
        return {}

    def _load_extra_config(self, config: dict[str, Any]) -> None:
        pass

    def _tensors_to_save(self) -> dict[str, torch.Tensor]:
        """The tensors :meth:`save` writes: the standardisation and the learned state."""
        return {"scaler.mean": torch.from_numpy(np.asarray(self.mean_, np.float32)),
                "scaler.scale": torch.from_numpy(np.asarray(self.scale_, np.float32)),
                **{k: v.detach().contiguous() for k, v in self._state_tensors().items()}}

    def _config_to_save(self) -> dict[str, Any]:
        """The ``config.json`` :meth:`save` writes (what :meth:`_from_config` reads back)."""
        return {"model": self.name,
                "params": {k: _plain(v) for k, v in self.get_params(deep=False).items()},
                "n_features_in": int(self.n_features_in_), "distance": self.distance_,
                "classes": [c.item() if hasattr(c, "item") else c for c in self.classes_],
                "mirsim_version": mirsim.__version__, **self._extra_config()}

    def save(self, directory: str | Path) -> Path:
        """Write ``config.json`` and ``weights.safetensors`` into ``directory``."""
        from safetensors.torch import save_file

        from mirsim.artefacts.files import atomic_path, write_json

        self._require_fitted()
        directory = Path(directory)
        tensors, config = self._tensors_to_save(), self._config_to_save()
        with atomic_path(directory / "weights.safetensors") as tmp:
            save_file(tensors, str(tmp))
        write_json(directory / "config.json", config)
        return directory

    @classmethod
    def _params_from_config(cls, params: dict[str, Any]) -> dict[str, Any]:
        out = {}
        for key, value in params.items():
            if key in cls._component_params and isinstance(value, dict):
                value = resolve(cls._component_params[key], value)
            elif isinstance(value, list):
                value = tuple(value)
            out[key] = value
        return out

    @classmethod
    def _from_config(cls, config: dict, tensors: dict[str, torch.Tensor]) -> MetricModel:
        if config.get("model") != cls.name:
            raise MirsimError(f"saved model is '{config.get('model')}', not '{cls.name}'")
        model = cls(**cls._params_from_config(_upgrade_params(config["params"])))
        model.n_features_in_ = config["n_features_in"]
        model.classes_ = np.asarray(config["classes"])
        model.mean_ = tensors["scaler.mean"].numpy()
        model.scale_ = tensors["scaler.scale"].numpy()
        # models saved before mirsim recorded a distance compared raw outputs (Euclidean)
        model.distance_ = config.get("distance", "euclidean")
        model._load_state_tensors(tensors)
        model._load_extra_config(config)
        return model


def _upgrade_params(params: dict[str, Any]) -> dict[str, Any]:
    """Parameters of a model saved by an earlier mirsim, in today's names."""
    params = dict(params)
    if "pa_alpha" in params or "pa_margin" in params:
        params["loss"] = {"name": "proxy-anchor",
                          "params": {"alpha": params.pop("pa_alpha", 32.0),
                                     "margin": params.pop("pa_margin", 0.1)}}
    return params


def _component(registry) -> Satisfies:
    return Satisfies(lambda v: isinstance(v, Component) or v in registry,
                     f"one of: {', '.join(registry.names())}")


@estimator
class TorchMetricModel(MetricModel):
    """A metric model whose embedding is a torch network trained with a loss, a miner, a
    distance and a sampler composed by name (or passed as objects).

    Subclasses implement ``_build_network(n_features)``. The training defaults are the AN-GNN
    paper's: Proxy-Anchor on cosine similarity, AdamW (lr 0.05, weight decay 1e-5), StepLR
    (10 epochs, gamma 0.8), 50 epochs, batches of 512. ``device`` says where the network
    trains and embeds (:mod:`mirsim.training.devices`); the saved weights are the CPU's.
    """

    supervision = ("labels", "triplets")
    default_distance = "cosine"
    _component_params = {"loss": LOSSES, "miner": MINERS, "sampler": SAMPLERS}

    embedding_dim: int = param(512, Interval(int, 1, None), "width of the embedding")
    loss: Any = param("proxy-anchor", _component(LOSSES), "training loss (name or object)")
    miner: Any = param(None, Nullable(_component(MINERS)), "tuple miner of a tuple loss")
    distance: str = param("auto", Options(("auto", "cosine", "euclidean")),
                          "distance of the embedding space (auto: the loss's)")
    sampler: Any = param(None, Nullable(_component(SAMPLERS)), "how batches are drawn")
    epochs: int = param(50, Interval(int, 1, None), "passes over the training data")
    batch_size: int = param(512, Interval(int, 2, None), "items per batch")
    lr: float = param(0.05, Interval(float, 0, None, closed="neither"), "AdamW learning rate")
    weight_decay: float = param(1e-5, Interval(float, 0, None), "AdamW weight decay")
    lr_step: int = param(10, Interval(int, 1, None), "epochs between learning-rate decays")
    lr_gamma: float = param(0.8, Interval(float, 0, 1, closed="right"),
                            "learning-rate decay factor")
    seed: int = param(0, Interval(int, 0, None), "seed of the initial weights and batches")
    device: str = param("cpu", Satisfies(is_device_name, DEVICE_CHOICES),
                        "where the network trains and embeds (auto: a CUDA GPU if there is "
                        "one)")

    def _build_network(self, n_features: int) -> torch.nn.Module:
        raise NotImplementedError

    def _device(self) -> torch.device:
        """The model's device, checked to exist here; the network moved there."""
        device = resolve_device(self.device)
        if hasattr(self, "network_"):
            self.network_.to(device)
        return device

    def _build_head(self) -> torch.nn.Module | None:
        """A projection head trained between the network and the loss, then dropped (SimCLR's);
        ``None`` (the default): the loss sees the embeddings themselves."""
        return None

    def _loss_spec(self):
        return resolve(LOSSES, self.loss)

    def _resolve_distance(self) -> str:
        loss = self._loss_spec()
        distance = loss.default_distance if self.distance == "auto" else self.distance
        if loss.needs_similarity and distance != "cosine":
            raise MirsimError(f"the {loss.name} loss trains on cosine similarity: use "
                              f"--distance cosine (or auto), not {distance}")
        return distance

    def _components(self, mode: str):
        loss, miner = self._loss_spec(), resolve(MINERS, self.miner)
        sampler = resolve(SAMPLERS, self.sampler)
        needed = {"labels": ("labels", "tuples"), "triplets": ("tuples",), "views": ("views",)}
        if loss.supervision not in needed[mode]:
            hint = {"labels": "a supervised loss", "triplets": "triplet, contrastive or "
                    "multi-similarity", "views": "ntxent"}[mode]
            raise MirsimError(f"the {loss.name} loss cannot learn from {mode}: use {hint}")
        if miner is not None and not loss.accepts_miner:
            raise MirsimError(f"the {loss.name} loss takes no miner (miners go with triplet, "
                              f"contrastive and multi-similarity)")
        if sampler is not None and mode != "labels":
            raise MirsimError("a sampler draws batches by class: it needs labels")
        return loss, miner, sampler

    def _fit_standardised(self, X, y, groups, *, distance, triplets, triplet_weights, views):
        mode = "views" if views is not None else "triplets" if triplets is not None else "labels"
        loss_spec, miner_spec, sampler = self._components(mode)
        geometry = DISTANCES.make(distance)
        n_classes = int(np.max(y)) + 1 if y is not None else 1
        device = resolve_device(self.device)  # a device not here: one line, before any work
        with seeded(self.seed):
            network = self._build_network(X.shape[1]).to(device)
            head = self._build_head()
            head = head.to(device) if head is not None else None
        with seeded(self.seed):
            loss = loss_spec.build(n_classes=n_classes, embedding_dim=self.embedding_dim,
                                   distance=geometry).to(device)
        miner = miner_spec.build(distance=geometry) if miner_spec is not None else None
        params = [*network.parameters(), *loss.parameters(),
                  *(head.parameters() if head is not None else ())]
        with without_torch_reregistration_warning():
            optimizer = torch.optim.AdamW(params, lr=self.lr, weight_decay=self.weight_decay,
                                          fused=True)
        scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=self.lr_step,
                                                    gamma=self.lr_gamma)
        self.loss_history_ = train_embedding(
            network, X, y, loss=loss, distance=geometry, optimizer=optimizer,
            scheduler=scheduler, miner=miner, sampler=sampler, epochs=self.epochs,
            batch_size=self.batch_size, seed=self.seed, triplets=triplets,
            triplet_weights=triplet_weights, views=views, head=head, device=device)
        self.network_ = network

    def _embed(self, X: np.ndarray) -> np.ndarray:
        device = self._device()
        self.network_.eval()
        with torch.no_grad(), denormals_flushed():
            out = [self.network_(torch.from_numpy(X[s:s + 4096]).to(device)).cpu()
                   for s in range(0, len(X), 4096)]
        return torch.cat(out).numpy().astype(np.float32)

    @property
    def n_parameters(self) -> int:
        self._require_fitted()
        return sum(p.numel() for p in self.network_.parameters())

    def _state_tensors(self):
        return {f"network.{k}": v.cpu() for k, v in self.network_.state_dict().items()}

    def _load_state_tensors(self, tensors) -> None:
        self.network_ = self._build_network(self.n_features_in_)  # on the CPU, as the weights
        state = {k[len("network."):]: v for k, v in tensors.items() if k.startswith("network.")}
        self.network_.load_state_dict(state)
        self.network_.eval()


__all__ = ["MetricModel", "NotFittedError", "SUPERVISIONS", "TorchMetricModel",
           "component_config"]
