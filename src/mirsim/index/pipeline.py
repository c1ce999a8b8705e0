"""The embedding pipeline of an index: a feature extractor and a metric model.

Two kinds of pipeline:

* **from a run** (``mirsim train`` run directory): the run's feature (name and parameters, from
  its ``config.json``) and its trained model (``model/``). Graph models (``an-gnn``,
  ``knn-gnn``) get the library as their reference set: the library's embeddings come from one
  transductive pass over the library graph, and a new sound is embedded inductively against
  it (see :mod:`mirsim.models.graph`). Other models embed every item on its own.
* **from a per-instrument run** (``mirsim reproduce per-instrument``): every song embedded once
  per instrument, the blocks the index's aspects (:mod:`mirsim.index.per_instrument`).
* **from a feature** alone: the raw features standardised with the library's own mean and
  standard deviation (a :class:`~mirsim.models.EuclideanModel` fitted on the library).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from mirsim.artefacts.runs import RunDirectoryError, read_run
from mirsim.features import make_extractor
from mirsim.index.errors import SoundIndexError
from mirsim.index.standardiser import Standardiser
from mirsim.models import load_model, make_model

#: ``model_id`` of the library-standardised pipeline (no trained model).
LIBRARY_STANDARDISED = "euclidean-library"
#: ``model`` of a per-instrument index (:mod:`mirsim.index.per_instrument`).
PER_INSTRUMENT_MODEL = "per-instrument"


@dataclass
class EmbeddingPipeline:
    """Feature extractor + metric model that turn a sound into an embedding.

    Attributes
    ----------
    feature, feature_params : str, dict
        Extractor name and parameters (``make_extractor(feature, **feature_params)``).
    extractor : FeatureExtractor
    model_name : str
        ``euclidean`` for the library-standardised pipeline, else the trained model's name.
    model_id : str
        Identity of the trained weights (``<model>-<sha256 prefix of the saved model>``), or
        ``"euclidean-library"``.
    run_dir : str or None
        The run directory the model came from.
    model : MetricModel or None
        ``None`` for the library-standardised pipeline until :meth:`embed_library` fits it.

    Examples
    --------
    >>> p = EmbeddingPipeline.from_feature("mfcc")
    >>> p.model_id, p.per_item, p.is_graph
    ('euclidean-library', False, False)
    >>> X = np.random.default_rng(0).standard_normal((5, 40)).astype(np.float32)
    >>> p.embed_library(X, np.zeros(5)).std(axis=0).round(3)[:3].tolist()
    [1.0, 1.0, 1.0]
    """

    feature: str
    feature_params: dict[str, Any]
    extractor: Any
    model_name: str
    model_id: str
    run_dir: str | None = None
    model: Any = field(default=None, repr=False)

    # -- construction -----------------------------------------------------------------------
    @classmethod
    def from_feature(cls, feature: str, feature_params: dict[str, Any] | None = None
                     ) -> EmbeddingPipeline:
        """Raw ``feature`` standardised with the library's statistics."""
        params = dict(feature_params or {})
        return cls(feature, params, _make_extractor(feature, params), "euclidean",
                   LIBRARY_STANDARDISED)

    @classmethod
    def from_run(cls, run_dir: str | Path) -> EmbeddingPipeline:
        """The feature and trained model of a ``mirsim train`` run directory."""
        from mirsim.index.per_instrument import is_per_instrument_run, per_instrument_pipeline

        run_dir = Path(run_dir)
        if is_per_instrument_run(run_dir):  # songs embedded once per instrument
            return per_instrument_pipeline(run_dir)
        config = _read_run_config(run_dir)
        feature, params = config["feature"], dict(config.get("feature_params") or {})
        extractor = _make_extractor(feature, params)
        stored = config.get("feature_identity")
        if stored and stored != extractor.identity:
            raise SoundIndexError(f"{run_dir}: the model was trained on features '{stored}' but "
                                  f"this mirsim computes '{extractor.identity}' for them; "
                                  f"retrain the model")
        model = load_model(run_dir / "model")
        return cls(feature, params, extractor, model.name, model_fingerprint(run_dir / "model"),
                   str(run_dir.resolve()), model)

    @classmethod
    def from_index(cls, index_dir: Path, config: dict[str, Any]) -> EmbeddingPipeline:
        """The pipeline stored in an index directory (``index.json`` + ``model/``)."""
        extractor = _make_extractor(config["feature"], dict(config["feature_params"]))
        if extractor.identity != config["feature_identity"]:
            raise SoundIndexError(f"{index_dir}: built with features '{config['feature_identity']}'"
                                  f" but this mirsim computes '{extractor.identity}'; rebuild "
                                  f"the index")
        model_dir = index_dir / "model"
        if config["model"] == PER_INSTRUMENT_MODEL:
            from mirsim.index.per_instrument import AspectBlocks

            return cls(config["feature"], dict(config["feature_params"]), extractor,
                       config["model"], config["model_id"], config.get("run_dir"),
                       AspectBlocks.load(model_dir))
        # the library-standardised pipeline's model needs NumPy alone (fast start-up)
        model = (Standardiser.load(model_dir) if config["model"] == "euclidean"
                 else load_model(model_dir))
        return cls(config["feature"], dict(config["feature_params"]), extractor,
                   config["model"], config["model_id"], config.get("run_dir"), model)

    # -- properties -------------------------------------------------------------------------
    @property
    def is_graph(self) -> bool:
        """A graph model: library embeddings depend on the whole library (its reference set)."""
        return bool(getattr(self.model, "needs_reference", False))

    @property
    def distance(self) -> str:
        """The distance the embeddings are compared with (the model's; ``euclidean`` for the
        library-standardised pipeline)."""
        return getattr(self.model, "distance_", "euclidean") if self.model is not None else (
            "euclidean")

    @property
    def per_item(self) -> bool:
        """An item's embedding depends on that item only (so unchanged items can be reused)."""
        return self.model_id != LIBRARY_STANDARDISED and not self.is_graph

    @property
    def feature_identity(self) -> str:
        return self.extractor.identity

    def describe(self) -> dict[str, Any]:
        """What ``index.json`` records about the pipeline."""
        extra = ({"per_instrument": self.extractor.describe()}
                 if self.model_name == PER_INSTRUMENT_MODEL else {})
        return {"feature": self.feature, "feature_params": self.feature_params,
                "feature_identity": self.feature_identity, "model": self.model_name,
                "model_id": self.model_id, "run_dir": self.run_dir,
                "graph_model": self.is_graph, "distance": self.distance, **extra}

    # -- embedding --------------------------------------------------------------------------
    def check_features(self, X: np.ndarray) -> None:
        """Raise a one-line error if the model expects another number of features."""
        expected = getattr(self.model, "n_features_in_", None)
        if self.model_id != LIBRARY_STANDARDISED and expected is not None and X.shape[1] != expected:
            raise SoundIndexError(f"the {self.model_name} model expects {expected} features but "
                                  f"{self.feature} gives {X.shape[1]}")

    def embed_library(self, X: np.ndarray, labels: np.ndarray) -> np.ndarray:
        """Embeddings of the whole library ``X`` (rows in library order).

        The library-standardised pipeline fits its statistics here; a graph model takes ``X``
        as its reference set and embeds it in one transductive pass.
        """
        self.check_features(X)
        if self.model_id == LIBRARY_STANDARDISED:
            self.model = make_model("euclidean").fit(X, labels)
            return self.model.transform(X)
        if self.is_graph:
            self.model.set_reference(X)
            return np.asarray(self.model.embed_reference(), dtype=np.float32)
        return self.model.transform(X)

    def embed(self, X: np.ndarray) -> np.ndarray:
        """Embeddings of new items (inductively against the reference, for graph models)."""
        if self.model is None:
            raise SoundIndexError("the pipeline has no fitted model yet (embed the library first)")
        self.check_features(X)
        return self.model.transform(X)


def model_fingerprint(model_dir: Path) -> str:
    """``<model name>-<12 hex digits>``: changes whenever the saved model changes.

    Examples
    --------
    >>> import tempfile
    >>> d = Path(tempfile.mkdtemp())
    >>> _ = make_model("euclidean").fit(np.eye(3), [0, 1, 2]).save(d)
    >>> model_fingerprint(d).startswith("euclidean-")
    True
    """
    h = hashlib.sha256()
    for name in ("config.json", "weights.safetensors"):
        with open(model_dir / name, "rb") as f:
            while block := f.read(1 << 20):
                h.update(block)
    name = json.loads((model_dir / "config.json").read_text())["model"]
    return f"{name}-{h.hexdigest()[:12]}"


def _make_extractor(feature: str, params: dict[str, Any]):
    try:
        return make_extractor(feature, **params)
    except TypeError as exc:
        raise SoundIndexError(f"feature '{feature}': bad parameters {params} ({exc})") from None


def _read_run_config(run_dir: Path) -> dict[str, Any]:
    try:
        run = read_run(run_dir)
    except RunDirectoryError as exc:
        raise SoundIndexError(str(exc)) from None
    if "feature" not in run.config:
        raise SoundIndexError(f"{run_dir / 'config.json'}: no 'feature' entry (is this a "
                              f"`mirsim train` run?)")
    if run.model_dir is None:
        raise SoundIndexError(f"{run_dir}: the run has no saved model (model/ missing; "
                              f"{run.missing_model_reason()})")
    return run.config
