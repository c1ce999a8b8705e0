"""Metric models, registered by name (:data:`mirsim.registries.MODELS`).

>>> from mirsim.models import available_models, make_model
>>> {"an-gnn", "euclidean", "lmnn", "mlp"} <= set(available_models())
True
>>> make_model("mlp", epochs=3).epochs
3
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mirsim._lazy import lazy_exports
from mirsim.errors import MirsimError
from mirsim.registries import MODELS

_EXPORTS = {
    "MetricModel": ".base", "TorchMetricModel": ".base", "NotFittedError": ".base",
    "EuclideanModel": ".baselines", "LinearModel": ".baselines", "MLPModel": ".baselines",
    "GraphModel": ".graph", "ANGNNModel": ".graph", "KNNGNNModel": ".graph",
    "LMNNModel": ".lmnn", "CSNModel": ".csn",
    "PairRegressionModel": ".pairwise", "SoftLDAModel": ".pairwise",
}
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)


def available_models() -> list[str]:
    """Names accepted by :func:`make_model`."""
    return MODELS.names()


def model_class(name: str) -> type:
    """The class of the model called ``name`` (one-line error listing the valid names)."""
    return MODELS.get(name)


def make_model(name: str, **params: Any):
    """Build the model called ``name``; unknown parameters and values outside their declared
    range raise a one-line error."""
    return MODELS.make(name, **params)


def table1_models() -> tuple[str, ...]:
    """The rows of the AN-GNN paper's Table 1, in the paper's order.

    >>> table1_models()
    ('euclidean', 'linear', 'lmnn', 'mlp', 'knn-gnn', 'an-gnn')
    """
    rows = [(e.attributes.get("table1_row"), name) for name, e in MODELS.catalogue().items()]
    return tuple(name for row, name in sorted((r, n) for r, n in rows if r is not None))


def load_model(directory: str | Path, device: str | None = None):
    """Load a model written by ``MetricModel.save``; its weights are read onto the CPU, and a
    model with a network embeds on ``device`` (default: the one :func:`mirsim.training.
    devices.embedding_device` sets, else the CPU), whatever device it was trained on."""
    from safetensors.torch import load_file

    from mirsim.artefacts.files import read_json_object
    from mirsim.registry import class_params

    directory = Path(directory)
    config = read_json_object(directory / "config.json", MirsimError) if (
        directory / "config.json").is_file() else None
    if config is None or not (directory / "weights.safetensors").is_file():
        missing = "config.json" if config is None else "weights.safetensors"
        raise MirsimError(f"{directory}: not a saved mirsim model ({missing} missing)")
    tensors = load_file(str(directory / "weights.safetensors"), device="cpu")
    cls = model_class(config["model"])
    if "device" in class_params(cls):
        from mirsim.training.devices import current_embedding_device

        chosen = device or current_embedding_device()
        config = {**config, "params": {**config.get("params", {}), "device": chosen}}
    return cls._from_config(config, tensors)


__all__ = sorted([*_EXPORTS, "available_models", "load_model", "make_model", "model_class",
                  "table1_models"])
