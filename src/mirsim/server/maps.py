"""A 2-D map of a sound library: t-SNE (or PCA) of its embeddings, cached in the index.

Which method, and why
---------------------
``tsne`` (the default) is scikit-learn's Barnes-Hut t-SNE (PCA initialisation, perplexity
30, a fixed seed), which mirsim already depends on: no new package, the same map for the same
seed on CPU. Its cost grows a little faster than linearly; on a 2-core machine shared with
other jobs, 3,000 sounds take about 20 s and 5,000 about 40 s (one thread, see *Threads*),
so a 20,000-sound library would take several minutes. Hence, above ``landmarks`` sounds
(5,000 by default) the map is made in two steps:

1. t-SNE of ``landmarks`` sounds drawn at random (seeded);
2. every other sound is placed at the inverse-distance-weighted mean position of its 8 nearest
   landmarks in the embedding space (exact FAISS search).

Sounds that are near in the embedding space stay near on the map, and the cost is the fixed
t-SNE of the landmarks plus one nearest-neighbour search: 100,000 sounds took about 40 s here,
almost all of it the landmarks' t-SNE. UMAP (``umap-learn``) was not chosen: it adds a
dependency and its numba compilation alone costs tens of seconds at first use. ``pca`` is the
instant alternative (a linear projection, which separates clusters less well).

Threads
-------
The map is computed on one thread (OpenMP and BLAS limited with ``threadpoolctl``).
scikit-learn's t-SNE synchronises its OpenMP threads at every iteration; on cores shared with
other busy processes each of those waits can cost a scheduler time slice. Measured here with
the two cores busy: 19 sounds took 0.09 s on one thread and 37 s on two; 3,000 sounds 20 s on
one thread and 46 s on two.

Embeddings wider than 50 dimensions are first reduced to 50 by PCA (the usual t-SNE practice).
Coordinates are centred and scaled so that the largest absolute coordinate is 1.

The cache
---------
The map is stored in the index directory as ``map-<method>-<key>.npy``, where ``key`` hashes
the embeddings' bytes together with the map settings: a rebuilt index (new embeddings) or other
settings get a new map, and a second start reads the file instead of recomputing it. The file
is written to a temporary name and renamed into place (atomic); older maps of the same method
are removed. An index directory that cannot be written to keeps its map in memory only.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

#: Map methods understood by :func:`compute_map`.
MAP_METHODS = ("tsne", "pca")
#: Version of the map algorithm (part of the cache key).
MAP_ALGORITHM_VERSION = 1
#: Landmarks each non-landmark sound is placed from.
PLACEMENT_NEIGHBOURS = 8
#: Embeddings wider than this are reduced by PCA before t-SNE.
TSNE_INPUT_DIM = 50


@dataclass(frozen=True)
class MapSettings:
    """How the map is made.

    Attributes
    ----------
    method : {"tsne", "pca"}
    landmarks : int
        Above this many sounds, t-SNE runs on this many of them and places the others.
    perplexity : float
        t-SNE perplexity (lowered automatically for tiny libraries).
    seed : int

    Examples
    --------
    >>> MapSettings().method, MapSettings(method="pca").landmarks
    ('tsne', 5000)
    """

    method: str = "tsne"
    landmarks: int = 5000
    perplexity: float = 30.0
    seed: int = 0

    def __post_init__(self) -> None:
        if self.method not in MAP_METHODS:
            raise ValueError(f"unknown map method '{self.method}' "
                             f"(valid: {', '.join(MAP_METHODS)})")
        if self.landmarks < 10:
            raise ValueError(f"landmarks must be at least 10 (got {self.landmarks})")


def compute_map(embeddings: np.ndarray, settings: MapSettings = MapSettings()) -> np.ndarray:
    """2-D coordinates of every embedding, in ``[-1, 1]``.

    Parameters
    ----------
    embeddings : numpy.ndarray
        ``(n, d)`` embeddings.
    settings : MapSettings

    Returns
    -------
    numpy.ndarray
        ``(n, 2)`` float32 coordinates.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> E = np.concatenate([rng.normal(0, 1, (20, 8)), rng.normal(9, 1, (20, 8))])
    >>> xy = compute_map(E, MapSettings(method="pca"))
    >>> xy.shape, float(np.abs(xy).max())
    ((40, 2), 1.0)
    >>> bool(np.sign(xy[:20, 0]).std() == 0 and xy[0, 0] * xy[20, 0] < 0)  # two sides
    True
    """
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1):  # see "Threads" in the module's description
        return _compute_map(np.ascontiguousarray(embeddings, dtype=np.float32), settings)


def _compute_map(X: np.ndarray, settings: MapSettings) -> np.ndarray:
    n = len(X)
    if n < 4 or settings.method == "pca":
        return _normalise(_pca(X, 2))
    if n <= settings.landmarks:
        return _normalise(_tsne(X, settings))
    rows = np.sort(np.random.default_rng(settings.seed).choice(n, settings.landmarks,
                                                               replace=False))
    xy = np.empty((n, 2), dtype=np.float32)
    xy[rows] = _tsne(X[rows], settings)
    others = np.setdiff1d(np.arange(n), rows)
    xy[others] = _place(X[others], X[rows], xy[rows])
    return _normalise(xy)


def map_key(embeddings: np.ndarray, settings: MapSettings) -> str:
    """Hash of the embeddings' bytes and the map settings (names the cache file).

    Examples
    --------
    >>> E = np.zeros((3, 2), dtype=np.float32)
    >>> a, b = map_key(E, MapSettings()), map_key(E, MapSettings(seed=1))
    >>> len(a), a == map_key(E.copy(), MapSettings()), a == b
    (16, True, False)
    """
    h = hashlib.sha256()
    h.update(json.dumps({**asdict(settings), "version": MAP_ALGORITHM_VERSION,
                         "shape": list(embeddings.shape)}, sort_keys=True).encode())
    for start in range(0, len(embeddings), 65536):
        h.update(np.ascontiguousarray(embeddings[start:start + 65536], dtype=np.float32).tobytes())
    return h.hexdigest()[:16]


def cached_map(index_dir: str | Path, embeddings: np.ndarray,
               settings: MapSettings = MapSettings(), prefix: str = "map"
               ) -> tuple[np.ndarray, bool]:
    """The map of ``embeddings``: read from ``index_dir`` if cached there, else computed and
    cached (see the module's description) as ``<prefix>-<method>-<key>.npy``: maps of other
    embeddings of one index (e.g. each aspect's, ``prefix="aspect-0-map"``) are cached beside
    the whole embedding's, each replacing only its own older files.

    Returns
    -------
    coordinates : numpy.ndarray
        ``(n, 2)`` float32.
    from_cache : bool
        Whether the map was read from the cache.

    Examples
    --------
    >>> import tempfile
    >>> d = Path(tempfile.mkdtemp())
    >>> E = np.random.default_rng(0).standard_normal((30, 4)).astype(np.float32)
    >>> first, hit1 = cached_map(d, E, MapSettings(method="pca"))
    >>> again, hit2 = cached_map(d, E, MapSettings(method="pca"))
    >>> hit1, hit2, bool(np.array_equal(first, again)), len(list(d.glob("map-pca-*.npy")))
    (False, True, True, 1)
    """
    index_dir = Path(index_dir)
    path = index_dir / f"{prefix}-{settings.method}-{map_key(embeddings, settings)}.npy"
    stored = _read_map(path, len(embeddings))
    if stored is not None:
        return stored, True
    xy = compute_map(embeddings, settings)
    try:
        _write_atomic(path, xy)
        _remove_older_maps(index_dir, f"{prefix}-{settings.method}", keep=path)
    except OSError:  # a read-only index: the map lives in memory only
        pass
    return xy, False


# -- steps ---------------------------------------------------------------------------------
def _pca(X: np.ndarray, n_components: int) -> np.ndarray:
    """Projection on the first principal axes (zeros where the data has fewer)."""
    centred = X - X.mean(axis=0)
    out = np.zeros((len(X), n_components), dtype=np.float32)
    if len(X) < 2:
        return out
    _, s, vt = np.linalg.svd(centred, full_matrices=False)
    m = min(n_components, int(np.sum(s > 1e-12 * max(s[0], 1e-30))))
    out[:, :m] = centred @ vt[:m].T
    return out


def _tsne(X: np.ndarray, settings: MapSettings) -> np.ndarray:
    from sklearn.manifold import TSNE

    if X.shape[1] > TSNE_INPUT_DIM:
        X = _pca(X, TSNE_INPUT_DIM)
    perplexity = min(settings.perplexity, max(1.0, (len(X) - 1) / 3))
    tsne = TSNE(n_components=2, perplexity=perplexity, init="pca", learning_rate="auto",
                random_state=settings.seed)
    return tsne.fit_transform(X).astype(np.float32)


def _place(X: np.ndarray, landmarks: np.ndarray, landmark_xy: np.ndarray) -> np.ndarray:
    """Inverse-distance-weighted mean map position of each row's nearest landmarks."""
    from mirsim.index.faiss_backend import require_faiss

    faiss = require_faiss()
    index = faiss.IndexFlatL2(landmarks.shape[1])
    index.add(np.ascontiguousarray(landmarks))
    k = min(PLACEMENT_NEIGHBOURS, len(landmarks))
    out = np.empty((len(X), 2), dtype=np.float32)
    for start in range(0, len(X), 16384):
        d2, rows = index.search(np.ascontiguousarray(X[start:start + 16384]), k)
        w = 1.0 / (np.sqrt(np.maximum(d2, 0.0)) + 1e-6)
        w /= w.sum(axis=1, keepdims=True)
        out[start:start + len(rows)] = np.einsum("ik,ikj->ij", w, landmark_xy[rows])
    return out


def _normalise(xy: np.ndarray) -> np.ndarray:
    xy = np.asarray(xy, dtype=np.float32)
    if len(xy) == 0:
        return xy.reshape(0, 2)
    centre = (xy.max(axis=0) + xy.min(axis=0)) / 2
    xy = xy - centre
    scale = float(np.abs(xy).max())
    return (xy / scale if scale > 0 else xy).astype(np.float32)


def _read_map(path: Path, n: int) -> np.ndarray | None:
    try:
        xy = np.load(path, allow_pickle=False)
    except (OSError, ValueError):
        return None
    ok = xy.shape == (n, 2) and xy.dtype == np.float32 and bool(np.isfinite(xy).all())
    return xy if ok else None


def _write_atomic(path: Path, xy: np.ndarray) -> None:
    tmp = path.parent / f".{path.name}.tmp-{os.getpid()}-{secrets.token_hex(4)}"
    try:
        with open(tmp, "wb") as f:
            np.save(f, np.ascontiguousarray(xy, dtype=np.float32))
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def _remove_older_maps(index_dir: Path, stem: str, keep: Path) -> None:
    for old in index_dir.glob(f"{stem}-*.npy"):
        if old != keep:
            old.unlink(missing_ok=True)
