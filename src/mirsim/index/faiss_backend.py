"""FAISS indexes over embeddings: exact search by default, HNSW or IVF for large libraries.

The index's metric follows the pipeline's distance (:mod:`mirsim.training.distances`):

* ``euclidean``: L2 indexes; :func:`search` returns **Euclidean distances, not squared**
  (FAISS returns squared ones; they are square-rooted here);
* ``cosine``: the embeddings are L2-normalised and searched by inner product; :func:`search`
  returns the **cosine distance** ``1 - cos``.

* ``flat``: ``IndexFlatL2``, exact.
* ``hnsw``: ``IndexHNSWFlat`` (M = 32 links per node, efConstruction = 100). ``efSearch`` is
  calibrated at build time: the smallest value in 16, 24, 32, 48, ..., 4096 whose recall@10
  against exact search reaches ``target_recall`` (0.95) plus a margin of 0.03 on 256 of the
  library's own items used as queries (each query's own row left out). The margin is there
  because an item of the library is an easier query than a new sound: the search walks straight
  to its own node. Measured on 1,000,000 clustered 512-d vectors: efSearch 16 gave recall 0.965
  on library items but 0.940 on new vectors from the same distribution.
* ``ivf``: ``IndexIVFFlat`` with about 4·√n lists, k-means trained on a seeded sample; ``nprobe``
  calibrated the same way.

``approximate="auto"`` picks ``flat`` below ``threshold`` items (100,000) and ``hnsw`` from there.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from mirsim.index.errors import SoundIndexError

#: Values of the ``approximate`` option.
APPROXIMATE_CHOICES = ("auto", "never", "hnsw", "ivf")
#: Library size from which ``approximate="auto"`` uses HNSW.
DEFAULT_APPROXIMATE_THRESHOLD = 100_000
#: Recall@10 (against exact search) that the approximate indexes are tuned to reach.
DEFAULT_TARGET_RECALL = 0.95
HNSW_M = 32
HNSW_EF_CONSTRUCTION = 100
_HNSW_EF_SEARCH = (16, 24, 32, 48, 64, 96, 128, 192, 256, 384, 512, 768, 1024, 1536, 2048,
                   3072, 4096)
_CALIBRATION_QUERIES = 256
#: Added to the target recall when calibrating on the library's own items (see module docstring).
CALIBRATION_MARGIN = 0.03
_CALIBRATION_K = 10


def require_faiss():
    """The ``faiss`` module, or a one-line error saying how to install it."""
    try:
        import faiss
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise SoundIndexError("sound indexes need FAISS: pip install faiss-cpu") from exc
    return faiss


def choose_index_type(n_items: int, approximate: str = "auto",
                      threshold: int = DEFAULT_APPROXIMATE_THRESHOLD) -> str:
    """Index type for ``n_items`` vectors: ``flat``, ``hnsw`` or ``ivf``.

    Examples
    --------
    >>> choose_index_type(5_000), choose_index_type(250_000), choose_index_type(10, "ivf")
    ('flat', 'hnsw', 'ivf')
    >>> choose_index_type(10**7, "never")
    'flat'
    """
    if approximate not in APPROXIMATE_CHOICES:
        raise SoundIndexError(f"unknown approximate setting '{approximate}' "
                              f"(valid: {', '.join(APPROXIMATE_CHOICES)})")
    if approximate == "never":
        return "flat"
    if approximate == "auto":
        return "hnsw" if n_items >= threshold else "flat"
    return approximate


#: FAISS metric of each distance.
METRICS = {"euclidean": "l2", "cosine": "inner_product"}


def _faiss_metric(faiss, distance: str) -> int:
    if distance not in METRICS:
        raise SoundIndexError(f"unknown distance '{distance}' (valid: {', '.join(METRICS)})")
    return faiss.METRIC_INNER_PRODUCT if distance == "cosine" else faiss.METRIC_L2


def build_faiss_index(embeddings: np.ndarray, index_type: str = "flat", seed: int = 0,
                      target_recall: float = DEFAULT_TARGET_RECALL, distance: str = "euclidean"):
    """A FAISS index holding ``embeddings`` (row i gets id i), and its search parameters.

    Parameters
    ----------
    embeddings : numpy.ndarray
        ``(n, d)`` float32 array.
    index_type : {"flat", "hnsw", "ivf"}
    seed : int
        Seed of the calibration sample and of the IVF k-means.
    target_recall : float
        Recall@10 the approximate index's search parameter is calibrated to reach.
    distance : {"euclidean", "cosine"}
        ``cosine``: the embeddings must be L2-normalised; they are searched by inner product.

    Returns
    -------
    index : faiss.Index
    params : dict
        ``{"type", ...}`` plus ``ef_search`` / ``nlist`` / ``nprobe`` and the calibrated recall,
        to be stored with the index and passed to :func:`configure` after loading.

    Examples
    --------
    >>> x = np.random.default_rng(0).standard_normal((300, 8)).astype(np.float32)
    >>> index, params = build_faiss_index(x, "hnsw")
    >>> index.ntotal, params["type"], params["calibrated_recall_at_10"] >= 0.95
    (300, 'hnsw', True)
    """
    faiss = require_faiss()
    x = np.ascontiguousarray(embeddings, dtype=np.float32)
    if x.ndim != 2 or len(x) == 0:
        raise SoundIndexError(f"cannot index an embedding array of shape {x.shape}")
    n, d = x.shape
    metric = _faiss_metric(faiss, distance)
    if index_type == "flat":
        index = faiss.IndexFlat(d, metric)
        index.add(x)
        return index, {"type": "flat", "exact": True}
    if index_type == "hnsw":
        index = faiss.IndexHNSWFlat(d, HNSW_M, metric)
        index.hnsw.efConstruction = HNSW_EF_CONSTRUCTION
        index.add(x)
        params = {"type": "hnsw", "exact": False, "M": HNSW_M,
                  "ef_construction": HNSW_EF_CONSTRUCTION}
        return index, {**params, **_calibrate(index, x, "ef_search", _HNSW_EF_SEARCH, seed,
                                              target_recall)}
    if index_type == "ivf":
        nlist = int(max(1, min(round(4 * np.sqrt(n)), n // 39 or 1)))
        index = faiss.IndexIVFFlat(faiss.IndexFlat(d, metric), d, nlist, metric)
        index.cp.seed = seed
        rng = np.random.default_rng(seed)
        train = x[np.sort(rng.choice(n, min(n, 64 * nlist), replace=False))]
        index.train(train)
        index.add(x)
        probes = tuple(sorted({min(nlist, 2 ** i) for i in range(int(np.log2(nlist)) + 2)}))
        params = {"type": "ivf", "exact": False, "nlist": nlist}
        return index, {**params, **_calibrate(index, x, "nprobe", probes, seed, target_recall)}
    raise SoundIndexError(f"unknown index type '{index_type}' (valid: flat, hnsw, ivf)")


def write_faiss_index(index, path: str | Path) -> None:
    """Write a FAISS index to ``path`` through a Python file, so that a failed write (a full
    disk) raises the system's OSError rather than FAISS printing to stderr and raising a
    RuntimeError; streamed in 1 MB blocks, never held twice in memory.

    Examples
    --------
    >>> import tempfile
    >>> index, _ = build_faiss_index(np.eye(4, dtype=np.float32))
    >>> p = Path(tempfile.mkdtemp()) / "faiss.index"
    >>> write_faiss_index(index, p)
    >>> require_faiss().read_index(str(p)).ntotal
    4
    """
    faiss = require_faiss()
    with open(path, "wb") as f:
        writer = faiss.PyCallbackIOWriter(f.write, 1 << 20)
        faiss.write_index(index, writer)
        del writer  # flushes its last block into f


def configure(index, params: dict[str, Any]) -> None:
    """Apply the stored search parameters (``ef_search``, ``nprobe``) to a loaded index."""
    if "ef_search" in params:
        index.hnsw.efSearch = int(params["ef_search"])
    if "nprobe" in params:
        require_faiss().extract_index_ivf(index).nprobe = int(params["nprobe"])


def _set_search_parameter(index, name: str, value: int) -> None:
    configure(index, {name: value})


def _calibrate(index, x: np.ndarray, name: str, candidates: Sequence[int], seed: int,
               target_recall: float) -> dict[str, Any]:
    """Smallest candidate value of the search parameter whose recall on library items reaches
    ``target_recall + CALIBRATION_MARGIN`` (recall grows with the parameter, so the candidates
    are bisected); the largest if none does."""
    n = len(x)
    k = min(_CALIBRATION_K, n - 1)
    if k < 1:
        _set_search_parameter(index, name, candidates[0])
        return {name: candidates[0], "calibrated_recall_at_10": 1.0}
    rows = np.sort(np.random.default_rng(seed).choice(n, min(n, _CALIBRATION_QUERIES),
                                                      replace=False))
    faiss = require_faiss()
    _, exact = faiss.knn(x[rows], x, k + 1, metric=index.metric_type)
    truth = [set(_without(exact[i], r, k)) for i, r in enumerate(rows)]

    def recall_at(value: int) -> float:
        _set_search_parameter(index, name, value)
        _, found = index.search(x[rows], k + 1)
        return float(np.mean([len(t & set(_without(found[i], r, k))) / k
                              for i, (r, t) in enumerate(zip(rows, truth))]))

    goal = min(1.0, target_recall + CALIBRATION_MARGIN)
    lo, hi = 0, len(candidates) - 1
    recalls = {hi: recall_at(candidates[hi])}
    while lo < hi:
        mid = (lo + hi) // 2
        recalls[mid] = recall_at(candidates[mid])
        if recalls[mid] >= goal:
            hi = mid
        else:
            lo = mid + 1
    _set_search_parameter(index, name, candidates[hi])
    return {name: int(candidates[hi]), "calibrated_recall_at_10": round(recalls[hi], 4),
            "target_recall_at_10": target_recall}


def _without(ids: np.ndarray, row: int, k: int) -> list[int]:
    return [int(i) for i in ids if i != row and i >= 0][:k]


def search(index, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` nearest stored rows of each query: (distances, row ids).

    Distances are Euclidean (not squared) for an L2 index, cosine distances ``1 - cos`` for an
    inner-product index of normalised embeddings. Missing results (fewer than ``k`` found)
    have id -1 and distance ``inf``.

    Examples
    --------
    >>> x = np.array([[0.0, 0.0], [3.0, 4.0]], dtype=np.float32)
    >>> index, _ = build_faiss_index(x)
    >>> d, i = search(index, np.array([[0.0, 0.0]], dtype=np.float32), 3)
    >>> d[0, :2].tolist(), i[0].tolist()
    ([0.0, 5.0], [0, 1, -1])
    >>> unit = np.array([[1.0, 0.0], [0.0, 1.0]], dtype=np.float32)
    >>> index, _ = build_faiss_index(unit, distance="cosine")
    >>> d, i = search(index, unit[:1], 2)
    >>> d[0].tolist(), i[0].tolist()
    ([0.0, 1.0], [0, 1])
    """
    q = np.ascontiguousarray(queries, dtype=np.float32)
    if q.ndim == 1:
        q = q[None, :]
    raw, ids = index.search(q, int(k))
    if index.metric_type == require_faiss().METRIC_INNER_PRODUCT:
        dist = np.maximum(1.0 - raw, 0.0)
    else:
        dist = np.sqrt(np.maximum(raw, 0.0))
    dist[ids < 0] = np.inf
    return dist.astype(np.float32), ids.astype(np.int64)


def stored_vectors(index, start: int, stop: int) -> np.ndarray:
    """The vectors stored under ids ``start..stop-1`` (to check them against the embeddings)."""
    faiss = require_faiss()
    if "IVF" in type(index).__name__:
        ivf = faiss.extract_index_ivf(index)
        ivf.make_direct_map()
    # np.asarray: once `faiss.contrib.torch_utils` has been imported (pytorch-metric-learning
    # imports it), faiss returns torch tensors from calls that take no array
    return np.asarray(index.reconstruct_n(int(start), int(stop - start)), dtype=np.float32)
