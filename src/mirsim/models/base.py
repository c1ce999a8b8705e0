"""Metric models: scikit-learn style estimators over torch modules.

Every model standardises its input with statistics of the data it is fitted on (so a fold's
test items never leak into the preprocessing), then maps features to embeddings where the
Euclidean distance is the learned metric. ``save``/``load`` write a JSON config and a
safetensors file: no pickle.
"""

from __future__ import annotations

import inspect
import json
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
from safetensors.torch import save_file

import mirsim
from mirsim.errors import MirsimError
from mirsim.training import TrainingConfig, denormals_flushed, seeded, train_embedding


def _plain(value: Any) -> Any:
    """numpy scalars and tuples as plain Python values (so that JSON round-trips them)."""
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, (list, tuple)):
        return type(value)(_plain(v) for v in value)
    return value


class NotFittedError(MirsimError, RuntimeError):
    """A model used before ``fit``."""


class MetricModel:
    """Base class: ``fit(X, y, groups=None)``, ``transform(X)``, ``save(dir)``, ``load(dir)``.

    Parameters are keyword arguments of ``__init__`` stored under the same name; nothing is
    learned before ``fit``. Learned state ends with an underscore (``mean_``, ``scale_``...).
    """

    name: ClassVar[str]

    # -- parameters -----------------------------------------------------------------------
    @classmethod
    def _param_names(cls) -> list[str]:
        names: list[str] = []
        for klass in cls.__mro__:
            if "__init__" in vars(klass):
                for p in inspect.signature(klass.__init__).parameters.values():
                    keyword = p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD)
                    if p.name != "self" and keyword and p.name not in names:
                        names.append(p.name)
        return names

    def get_params(self) -> dict[str, Any]:
        """Constructor parameters (as scikit-learn's ``get_params``), as plain Python values."""
        return {n: _plain(getattr(self, n)) for n in self._param_names()}

    def set_params(self, **params: Any) -> MetricModel:
        """Set constructor parameters (as scikit-learn's ``set_params``)."""
        valid = set(self._param_names())
        for k, v in params.items():
            if k not in valid:
                raise ValueError(f"{self.name} has no parameter '{k}' (valid: "
                                 f"{', '.join(sorted(valid))})")
            setattr(self, k, v)
        return self

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
        return f"{type(self).__name__}({args})"

    # -- fitting ---------------------------------------------------------------------------
    def fit(self, X: np.ndarray, y: np.ndarray, groups: np.ndarray | None = None) -> MetricModel:
        """Learn the standardisation and the metric from features ``X`` and labels ``y``."""
        X = self._check_X(X, fitting=True)
        if len(X) != len(y):
            raise ValueError(f"X has {len(X)} rows but y has {len(y)}")
        if groups is not None and len(groups) != len(X):
            raise ValueError(f"X has {len(X)} rows but groups has {len(groups)}")
        for attr in [a for a in vars(self) if a.endswith("_")]:
            delattr(self, attr)  # a failed fit must not leave a half-fitted model behind
        classes, y_codes = np.unique(np.asarray(y), return_inverse=True)
        mean = X.mean(axis=0)
        std = X.std(axis=0)
        scale = np.where(std > 1e-12, std, 1.0).astype(np.float32)
        self.n_features_in_ = X.shape[1]
        self._fit_standardised(((X - mean) / scale).astype(np.float32), y_codes, groups)
        self.classes_, self.mean_, self.scale_ = classes, mean, scale  # fitted from here on
        return self

    def transform(self, X: np.ndarray) -> np.ndarray:
        """Embeddings of ``X`` (rows), as a float32 array."""
        self._require_fitted()
        return self._embed(self._standardise(self._check_X(X)))

    def fit_transform(self, X: np.ndarray, y: np.ndarray,
                      groups: np.ndarray | None = None) -> np.ndarray:
        """``fit(X, y, groups)`` then ``transform(X)``."""
        return self.fit(X, y, groups).transform(X)

    def _standardise(self, X: np.ndarray) -> np.ndarray:
        return ((X - self.mean_) / self.scale_).astype(np.float32)

    def _check_X(self, X: np.ndarray, fitting: bool = False) -> np.ndarray:
        X = np.asarray(X, dtype=np.float32)
        if X.ndim != 2 or X.shape[0] == 0:
            raise ValueError(f"expected a non-empty 2-D feature array, got shape {X.shape}")
        if not np.all(np.isfinite(X)):
            raise ValueError("features contain NaN or infinity")
        if not fitting and hasattr(self, "n_features_in_") and X.shape[1] != self.n_features_in_:
            raise ValueError(f"{self.name} was fitted on {self.n_features_in_} features, "
                             f"got {X.shape[1]}")
        return X

    def _require_fitted(self) -> None:
        if not hasattr(self, "mean_"):
            raise NotFittedError(f"{self.name} model is not fitted yet: call fit first")

    # -- to be provided by subclasses ----------------------------------------------------------
    def _fit_standardised(self, X: np.ndarray, y: np.ndarray, groups) -> None:
        """Learn from standardised features and integer labels."""

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

    def save(self, directory: str | Path) -> Path:
        """Write ``config.json`` and ``weights.safetensors`` into ``directory``."""
        self._require_fitted()
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        tensors = {"scaler.mean": torch.from_numpy(np.asarray(self.mean_, np.float32)),
                   "scaler.scale": torch.from_numpy(np.asarray(self.scale_, np.float32)),
                   **{k: v.detach().contiguous() for k, v in self._state_tensors().items()}}
        config = {"model": self.name, "params": self.get_params(),
                  "n_features_in": int(self.n_features_in_),
                  "classes": [c.item() if hasattr(c, "item") else c for c in self.classes_],
                  "mirsim_version": mirsim.__version__}
        tmp = directory / "weights.safetensors.tmp"
        save_file(tensors, str(tmp))
        tmp.replace(directory / "weights.safetensors")
        tmp = directory / "config.json.tmp"
        tmp.write_text(json.dumps(config, indent=2, default=str))
        tmp.replace(directory / "config.json")
        return directory

    @classmethod
    def _from_config(cls, config: dict, tensors: dict[str, torch.Tensor]) -> MetricModel:
        if config.get("model") != cls.name:
            raise MirsimError(f"saved model is '{config.get('model')}', not '{cls.name}'")
        params = {k: tuple(v) if isinstance(v, list) else v for k, v in config["params"].items()}
        model = cls(**params)
        model.n_features_in_ = config["n_features_in"]
        model.classes_ = np.asarray(config["classes"])
        model.mean_ = tensors["scaler.mean"].numpy()
        model.scale_ = tensors["scaler.scale"].numpy()
        model._load_state_tensors(tensors)
        return model


class TorchMetricModel(MetricModel):
    """A metric model whose embedding is a torch network trained with Proxy-Anchor.

    Subclasses implement ``_build_network(n_features)``. Training hyper-parameters are the
    AN-GNN paper's (see :class:`mirsim.training.TrainingConfig`) and are constructor parameters.
    """

    def __init__(self, embedding_dim: int = 512, epochs: int = 50, batch_size: int = 512,
                 lr: float = 0.05, weight_decay: float = 1e-5, lr_step: int = 10,
                 lr_gamma: float = 0.8, pa_alpha: float = 32.0, pa_margin: float = 0.1,
                 seed: int = 0):
        self.embedding_dim, self.epochs, self.batch_size = embedding_dim, epochs, batch_size
        self.lr, self.weight_decay, self.lr_step, self.lr_gamma = lr, weight_decay, lr_step, lr_gamma
        self.pa_alpha, self.pa_margin, self.seed = pa_alpha, pa_margin, seed

    def _build_network(self, n_features: int) -> torch.nn.Module:
        raise NotImplementedError

    def _training_config(self) -> TrainingConfig:
        return TrainingConfig(epochs=self.epochs, batch_size=self.batch_size, lr=self.lr,
                              weight_decay=self.weight_decay, lr_step=self.lr_step,
                              lr_gamma=self.lr_gamma, pa_alpha=self.pa_alpha,
                              pa_margin=self.pa_margin, seed=self.seed)

    def _fit_standardised(self, X, y, groups) -> None:
        with seeded(self.seed):
            self.network_ = self._build_network(X.shape[1])
        self.loss_history_ = train_embedding(self.network_, X, y, self.embedding_dim,
                                             self._training_config())

    def _embed(self, X: np.ndarray) -> np.ndarray:
        self.network_.eval()
        with torch.no_grad(), denormals_flushed():
            out = [self.network_(torch.from_numpy(X[s:s + 4096]))
                   for s in range(0, len(X), 4096)]
        return torch.cat(out).numpy().astype(np.float32)

    @property
    def n_parameters(self) -> int:
        self._require_fitted()
        return sum(p.numel() for p in self.network_.parameters())

    def _state_tensors(self):
        return {f"network.{k}": v for k, v in self.network_.state_dict().items()}

    def _load_state_tensors(self, tensors) -> None:
        self.network_ = self._build_network(self.n_features_in_)
        state = {k[len("network."):]: v for k, v in tensors.items() if k.startswith("network.")}
        self.network_.load_state_dict(state)
        self.network_.eval()
