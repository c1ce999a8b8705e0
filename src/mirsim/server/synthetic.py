"""A synthetic sound index without audio: to try the web page or time it at scale.

:func:`write_synthetic_index` writes a complete index directory (the layout of
:mod:`mirsim.index.manifest`, published atomically with :mod:`mirsim.index.storage`) whose
"features" are random clusters, one per label, embedded by the library-standardised MFCC
pipeline. Its manifest names files that do not exist: the map, neighbours and search work;
playing a sound answers 404.
"""

from __future__ import annotations

import hashlib
import shutil
import time
from pathlib import Path

import numpy as np
import pandas as pd

import mirsim
from mirsim.index import manifest as mf
from mirsim.index.faiss_backend import build_faiss_index, require_faiss, write_faiss_index
from mirsim.index.pipeline import EmbeddingPipeline
from mirsim.index.storage import check_target, publish, staging_dir, write_json_file


def write_synthetic_index(out: str | Path, n_items: int, *, n_labels: int = 12,
                          subclusters: int = 4, seed: int = 0,
                          root: str | Path = "/nonexistent/synthetic-library") -> Path:
    """Write an index of ``n_items`` random sounds in ``n_labels`` labels to ``out``.

    Parameters
    ----------
    out : str or Path
        Index directory (created, or an existing index replaced).
    n_items : int
    n_labels : int
    subclusters : int
        Clusters per label (so that the map has some structure inside each label).
    seed : int
    root : str or Path
        Library root recorded in the index (its files do not exist).

    Returns
    -------
    Path
        ``out``.

    Examples
    --------
    >>> import tempfile
    >>> from mirsim.index import SoundIndex
    >>> d = write_synthetic_index(Path(tempfile.mkdtemp()) / "syn.index", 30, n_labels=3)
    >>> index = SoundIndex.load(d)
    >>> len(index), index.info()["n_labels"], index.manifest.at[0, "path"].split("/")[1]
    (30, 3, 'sound-000000.wav')
    """
    out = Path(out)
    check_target(out)
    pipeline = EmbeddingPipeline.from_feature("mfcc")
    X, labels = _clustered_features(n_items, n_labels, subclusters, seed)
    E = np.ascontiguousarray(pipeline.embed_library(X, labels), dtype=np.float32)
    faiss_index, params = build_faiss_index(E, "flat")
    staging = staging_dir(out)
    try:
        write_json_file(staging / mf.CONFIG_FILE, _config(root, pipeline, X, E, params))
        mf.write_manifest(_manifest(labels, pipeline), staging / mf.MANIFEST_FILE)
        np.save(staging / mf.FEATURES_FILE, X)
        np.save(staging / mf.EMBEDDINGS_FILE, E)
        write_faiss_index(faiss_index, staging / mf.FAISS_FILE)
        pipeline.model.save(staging / mf.MODEL_DIR)
        publish(staging, out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return out


def _clustered_features(n: int, n_labels: int, subclusters: int, seed: int
                        ) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    dim = 40  # what the mfcc extractor gives
    label = rng.integers(0, n_labels, n)
    sub = rng.integers(0, subclusters, n)
    centres = rng.normal(0, 6, (n_labels, dim))
    offsets = rng.normal(0, 2.5, (n_labels, subclusters, dim))
    X = centres[label] + offsets[label, sub] + rng.normal(0, 1, (n, dim))
    return X.astype(np.float32), np.array([f"label-{j:02d}" for j in label])


def _manifest(labels: np.ndarray, pipeline: EmbeddingPipeline) -> pd.DataFrame:
    paths = [f"{label}/sound-{i:06d}.wav" for i, label in enumerate(labels)]
    return pd.DataFrame({
        "path": paths,
        "sha256": [hashlib.sha256(p.encode()).hexdigest() for p in paths],
        "duration": 1.0, "size": 0, "mtime_ns": 0, "label": labels, "group": labels,
        "feature_identity": pipeline.feature_identity, "model_id": pipeline.model_id,
        "mirsim_version": mirsim.__version__,
    })


def _config(root, pipeline: EmbeddingPipeline, X: np.ndarray, E: np.ndarray,
            params: dict) -> dict:
    return {"format": mf.FORMAT, "format_version": mf.PLAIN_FORMAT_VERSION,
            "mirsim_version": mirsim.__version__, "faiss_version": require_faiss().__version__,
            "built_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "root": str(root),
            "group_by": "folder", **pipeline.describe(), "n_items": len(E),
            "feature_dim": int(X.shape[1]), "embedding_dim": int(E.shape[1]),
            "metric": "l2", "distance": "euclidean",
            "index_type": params["type"], "index_params": params, "approximate": "never",
            "approximate_threshold": 0, "seed": 0, "synthetic": True}
