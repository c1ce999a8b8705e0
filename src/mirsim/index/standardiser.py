"""The library-standardised pipeline's model without scikit-learn or torch: a query on a
feature index needs only ``(x - mean) / scale``, and importing a model class costs seconds."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from mirsim.index.errors import SoundIndexError


class Standardiser:
    """A saved ``euclidean`` model read with NumPy alone: ``transform(X) = (X - mean) / scale``.

    Gives exactly what :class:`mirsim.models.EuclideanModel` gives for the same saved model.

    Examples
    --------
    >>> import tempfile
    >>> from mirsim.models import make_model
    >>> X = np.array([[0.0, 10.0], [2.0, 30.0]], dtype=np.float32)
    >>> d = make_model("euclidean").fit(X, [0, 1]).save(Path(tempfile.mkdtemp()))
    >>> Standardiser.load(d).transform(X).tolist()
    [[-1.0, -1.0], [1.0, 1.0]]
    """

    name = "euclidean"
    needs_reference = False
    distance_ = "euclidean"

    def __init__(self, mean: np.ndarray, scale: np.ndarray):
        self.mean_ = np.asarray(mean, dtype=np.float32)
        self.scale_ = np.asarray(scale, dtype=np.float32)
        self.n_features_in_ = len(self.mean_)

    @classmethod
    def load(cls, directory: str | Path) -> Standardiser:
        from safetensors.numpy import load_file

        directory = Path(directory)
        try:
            config = json.loads((directory / "config.json").read_text(encoding="utf-8"))
            tensors = load_file(str(directory / "weights.safetensors"))
        except (OSError, ValueError) as exc:
            raise SoundIndexError(f"{directory}: not a saved model ({exc})") from None
        if config.get("model") != "euclidean":
            raise SoundIndexError(f"{directory}: a '{config.get('model')}' model, not euclidean")
        return cls(tensors["scaler.mean"], tensors["scaler.scale"])

    def transform(self, X: np.ndarray) -> np.ndarray:
        X = np.asarray(X, dtype=np.float32)
        if X.ndim != 2 or X.shape[1] != self.n_features_in_:
            raise SoundIndexError(f"expected features of shape (n, {self.n_features_in_}), got "
                                  f"{X.shape}")
        return ((X - self.mean_) / self.scale_).astype(np.float32)
