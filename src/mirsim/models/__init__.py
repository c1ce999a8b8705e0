"""Metric models and their registry.

>>> from mirsim.models import available_models, make_model
>>> available_models()
['an-gnn', 'euclidean', 'knn-gnn', 'linear', 'lmnn', 'mlp']
>>> make_model("mlp", epochs=3).epochs
3
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from safetensors.torch import load_file

from mirsim.errors import MirsimError, UnknownNameError
from mirsim.models.base import MetricModel, NotFittedError, TorchMetricModel
from mirsim.models.baselines import EuclideanModel, LinearModel, MLPModel
from mirsim.models.graph import ANGNNModel, GraphModel, KNNGNNModel
from mirsim.models.lmnn import LMNNModel

_REGISTRY: dict[str, type[MetricModel]] = {
    cls.name: cls
    for cls in (EuclideanModel, LinearModel, LMNNModel, MLPModel, KNNGNNModel, ANGNNModel)
}

#: The rows of the AN-GNN paper's Table 1, in order.
TABLE1_MODELS = ("euclidean", "linear", "lmnn", "mlp", "knn-gnn", "an-gnn")


def available_models() -> list[str]:
    """Names accepted by :func:`make_model`."""
    return sorted(_REGISTRY)


def model_class(name: str) -> type[MetricModel]:
    if name not in _REGISTRY:
        raise UnknownNameError("model", name, _REGISTRY)
    return _REGISTRY[name]


def make_model(name: str, **params: Any) -> MetricModel:
    """Build the model called ``name``; unknown parameters raise a one-line error."""
    cls = model_class(name)
    valid = cls._param_names()
    unknown = sorted(set(params) - set(valid))
    if unknown:
        raise MirsimError(f"model '{name}' has no parameter {', '.join(unknown)} "
                          f"(valid: {', '.join(sorted(valid))})")
    return cls(**params)


def load_model(directory: str | Path) -> MetricModel:
    """Load a model written by ``MetricModel.save``."""
    directory = Path(directory)
    try:
        config = json.loads((directory / "config.json").read_text())
        tensors = load_file(str(directory / "weights.safetensors"))
    except FileNotFoundError as exc:
        raise MirsimError(f"{directory}: not a saved mirsim model ({exc.filename} missing)") from exc
    return model_class(config["model"])._from_config(config, tensors)


__all__ = ["ANGNNModel", "EuclideanModel", "GraphModel", "KNNGNNModel", "LMNNModel", "LinearModel",
           "MLPModel", "MetricModel", "NotFittedError", "TABLE1_MODELS", "TorchMetricModel",
           "available_models", "load_model", "make_model", "model_class"]
