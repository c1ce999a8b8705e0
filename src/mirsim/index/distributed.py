"""Feature extraction (and per-item embedding) of a library on a Dask distributed cluster.

:func:`extract_distributed` is the cluster counterpart of
:func:`mirsim.features.extraction.extract_features`, used by ``build_index(scheduler=...)``
(``mirsim index build --scheduler local|ADDRESS``):

* the **client** (the process that builds the index) looks every sound up in its own
  :class:`~mirsim.features.extraction.FeatureCache` and sends only the missing ones to the
  cluster, in chunks of files;
* a **worker** reads the files of a chunk, checks that their content is the one the client
  hashed, extracts their features with the same extractor code as the serial path and, for a
  per-item model (linear, LMNN, MLP), embeds them; it writes nothing;
* the client receives the chunks as they complete and writes each sound's features into its
  cache at once (atomically, as the serial path does), so a build that dies half-way, or loses
  a worker, keeps every chunk that came back and the next build resumes from there.

Graph models (``an-gnn``, ``knn-gnn``) and the library-standardised pipeline embed on the
client: a graph model needs the whole library as its reference graph, and library
standardisation needs the statistics of every sound.

Workers must read the library at the same path as the client (one machine, or a shared or
network file system mounted at the same place) and run the same mirsim; a worker with another
feature implementation is refused rather than allowed to fill the cache. A file that cannot be
analysed is skipped with the same reason as in the serial path; a file that kills the worker
process (for instance a decoder crash) is isolated and skipped once Dask gives up on it.
"""

from __future__ import annotations

import contextlib
import logging
import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from mirsim.audio import file_sha256
from mirsim.features.base import FeatureExtractor
from mirsim.features.extraction import (
    AudioSource,
    ExtractionResult,
    FeatureCache,
    _extract_chunk,
    assemble_extraction,
    cache_key,
    split_cached,
)
from mirsim.index.errors import SoundIndexError

#: ``scheduler`` value that starts a local cluster of worker processes for one build.
LOCAL = "local"
#: Largest number of files in one task.
MAX_CHUNK_SIZE = 32
#: Seconds to wait for a remote scheduler and for its first worker.
CONNECT_TIMEOUT = 30
#: Reason given for a file whose analysis kept killing the worker process.
WORKER_DIED = "the worker process died while analysing this file"
#: Reason given for a file whose content differs from the one the client hashed.
CONTENT_CHANGED = "changed during the build (the worker read other content than was hashed)"

#: ``progress(n)``: n more sounds are finished.
Progress = Callable[[int], None]


@dataclass
class DistributedResult:
    """What a cluster run returns to the client.

    Attributes
    ----------
    extraction : ExtractionResult
        Features and skipped sounds, exactly as :func:`extract_features` reports them.
    embeddings : dict
        Content key -> embedding, for the sounds a worker embedded (per-item models only).
    scheduler : str
        Address of the scheduler (``""`` when nothing had to be computed: no cluster used).
    n_workers : int
        Workers of the cluster when the run started.
    n_tasks : int
        Tasks submitted, re-submissions of chunks that lost their worker included.
    """

    extraction: ExtractionResult
    embeddings: dict[str, np.ndarray] = field(default_factory=dict)
    scheduler: str = ""
    n_workers: int = 0
    n_tasks: int = 0


def require_distributed() -> Any:
    """Import and return the ``distributed`` package, or raise a one-line install hint."""
    try:
        import distributed
    except ImportError:
        raise SoundIndexError("the distributed build needs Dask distributed: pip install "
                              "'mirsim[distributed]'") from None
    return distributed


@contextlib.contextmanager
def dask_client(scheduler: Any, n_workers: int | None = None) -> Iterator[Any]:
    """A ``distributed.Client`` for ``scheduler``, closed (with its cluster) on exit.

    Parameters
    ----------
    scheduler : str or distributed.Client
        ``"local"``: start a ``LocalCluster`` of ``n_workers`` processes (one thread each) for
        the duration of the block; an address (``tcp://host:8786``): connect to that
        scheduler; a ``Client``: use it as it is (it is not closed).
    n_workers : int, optional
        Size of the local cluster (default: the number of cores, at most 2).

    Yields
    ------
    distributed.Client

    Examples
    --------
    >>> default_workers() >= 1
    True
    >>> with dask_client("local", n_workers=1) as client:  # doctest: +SKIP
    ...     client.submit(sum, [1, 2]).result()
    3
    """
    distributed = require_distributed()
    if isinstance(scheduler, distributed.Client):
        yield scheduler
    elif scheduler == LOCAL:
        n = default_workers() if n_workers is None else int(n_workers)
        if n < 1:
            raise SoundIndexError(f"--workers must be at least 1 (got {n})")
        with distributed.LocalCluster(n_workers=n, threads_per_worker=1, processes=True,
                                      dashboard_address=":0", silence_logs=logging.ERROR
                                      ) as cluster, \
                distributed.Client(cluster, set_as_default=False) as client:
            yield client
    else:
        with _remote_client(distributed, str(scheduler)) as client:
            yield client


@contextlib.contextmanager
def _remote_client(distributed: Any, address: str) -> Iterator[Any]:
    try:
        client = distributed.Client(address, timeout=CONNECT_TIMEOUT, set_as_default=False)
    except (OSError, TimeoutError, ValueError) as exc:
        raise SoundIndexError(f"cannot reach the Dask scheduler at '{address}' ({exc}); give "
                              f"--scheduler local, or a scheduler address such as "
                              f"tcp://host:8786") from None
    with client:
        try:
            client.wait_for_workers(1, timeout=CONNECT_TIMEOUT)
        except TimeoutError:
            raise SoundIndexError(f"the Dask cluster at {address} has no worker (none joined "
                                  f"within {CONNECT_TIMEOUT} s)") from None
        yield client


def default_workers() -> int:
    """Workers of a local cluster when not told: the number of cores, at most 2."""
    import os

    return min(2, os.cpu_count() or 1)


def extract_distributed(sources: Sequence[AudioSource], extractor: FeatureExtractor, *,
                        scheduler: Any = LOCAL, n_workers: int | None = None,
                        cache: FeatureCache | None = None, model: Any = None,
                        chunk_size: int | None = None,
                        progress: Progress | None = None,
                        on_cluster: Callable[[bool], None] | None = None) -> DistributedResult:
    """Features (and per-item embeddings) of ``sources``, computed on a Dask cluster.

    Parameters
    ----------
    sources : sequence of AudioSource
        Sounds with a content ``key``; a source with a ``path`` (a library file) is checked on
        the worker against that key.
    extractor : FeatureExtractor
    scheduler : str or distributed.Client
        See :func:`dask_client`. No cluster is started or contacted when every sound is
        already in the cache.
    n_workers : int, optional
        Size of a local cluster.
    cache : FeatureCache, optional
        The client's cache (default: the user cache); only the client writes it.
    model : MetricModel, optional
        A fitted per-item model: the workers also embed the sounds they analyse. Never a graph
        model (its embeddings depend on the whole library).
    chunk_size : int, optional
        Files per task (default: about four tasks per worker, at most 32 files each).
    progress : callable, optional
        Called with the number of sounds finished since the last call.
    on_cluster : callable, optional
        Called with ``False`` before the cluster is started or contacted, and with ``True``
        once it is ready (to show what a wait is for).

    Returns
    -------
    DistributedResult

    Raises
    ------
    SoundIndexError
        No ``distributed``, an unreachable scheduler, workers running another feature
        implementation, or a task failing for another reason than a bad file.

    Examples
    --------
    >>> import tempfile, os, soundfile as sf
    >>> from mirsim.audio import FileSource
    >>> from mirsim.features import make_extractor
    >>> d = tempfile.mkdtemp(); p = os.path.join(d, "a.wav")
    >>> sf.write(p, np.sin(np.arange(22050) / 3.0), 22050)
    >>> r = extract_distributed([FileSource(p)], make_extractor("mfcc"), scheduler="local",
    ...                         n_workers=1, cache=FeatureCache(d))  # doctest: +SKIP
    >>> r.extraction.features.shape, r.n_workers  # doctest: +SKIP
    ((1, 40), 1)
    """
    cache = cache if cache is not None else FeatureCache()
    values, reasons, todo = split_cached(sources, extractor, cache)
    if progress and len(sources) - len(todo):
        progress(len(sources) - len(todo))
    result = DistributedResult(ExtractionResult(np.zeros((0, 0), np.float32), np.zeros(0, int)))
    if todo:
        if on_cluster:
            on_cluster(False)
        with dask_client(scheduler, n_workers) as client:
            if on_cluster:
                on_cluster(True)
            run = _ClusterRun(client, extractor, sources, cache, model, progress)
            result.scheduler = str(client.scheduler_info().get("address", ""))
            result.n_workers = len(client.nthreads()) or 1
            size = chunk_size or _auto_chunk_size(len(todo), result.n_workers)
            run.run([todo[s:s + size] for s in range(0, len(todo), size)])
            values.update(run.values)
            reasons.update(run.reasons)
            result.embeddings, result.n_tasks = run.embeddings, run.n_tasks
    result.extraction = assemble_extraction(sources, extractor, values, reasons, todo)
    return result


def _auto_chunk_size(n_todo: int, n_workers: int) -> int:
    """About four tasks per worker (balance at the end), at most ``MAX_CHUNK_SIZE`` files."""
    return max(1, min(MAX_CHUNK_SIZE, math.ceil(n_todo / (4 * max(1, n_workers)))))


class _ClusterRun:
    """Submits chunks, gathers them as they complete, caches each at once.

    A chunk whose worker kept dying (Dask raised ``KilledWorker``) may hold a file that kills
    the process reading it, or may only have been queued on a worker that another task killed.
    Once every chunk has come back, the files of such chunks are tried again one at a time:
    with nothing else running, a death is the file's own, and the file is skipped.
    """

    def __init__(self, client: Any, extractor: FeatureExtractor, sources: Sequence[AudioSource],
                 cache: FeatureCache, model: Any, progress: Progress | None):
        self.client, self.extractor, self.sources = client, extractor, sources
        self.cache, self.progress = cache, progress
        self.model = client.scatter(model, broadcast=True, hash=False) if model is not None else None
        self.values: dict[int, np.ndarray] = {}
        self.reasons: dict[int, str] = {}
        self.embeddings: dict[str, np.ndarray] = {}
        self.n_tasks = 0

    def run(self, chunks: list[list[int]]) -> None:
        """Process every chunk; the files of chunks that lost their worker, one by one."""
        suspects = [i for chunk in self._gather(chunks) for i in chunk]
        for i in suspects:
            if self._gather([[i]]):
                self.reasons[i] = WORKER_DIED
                if self.progress:
                    self.progress(1)

    def _gather(self, chunks: list[list[int]]) -> list[list[int]]:
        """Run ``chunks`` concurrently, accept each as it completes; return those whose worker
        died."""
        distributed = require_distributed()
        pending: dict[str, list[int]] = {}
        completed = distributed.as_completed(loop=self.client.loop)
        for chunk in chunks:
            future = self.client.submit(_analyse_chunk, self.extractor,
                                        [self.sources[i] for i in chunk], self.model, pure=False)
            pending[future.key] = chunk
            completed.add(future)
            self.n_tasks += 1
        died: list[list[int]] = []
        try:
            for future in completed:
                chunk = pending.pop(future.key)
                try:
                    answer = future.result()
                except distributed.KilledWorker:
                    died.append(chunk)
                    continue
                except Exception as exc:
                    raise SoundIndexError(f"distributed feature extraction failed "
                                          f"({type(exc).__name__}: {exc}); the sounds finished "
                                          f"so far are in the feature cache, a new build "
                                          f"resumes from there") from exc
                finally:
                    future.release()
                self._accept(chunk, answer)
        finally:
            for future in list(completed.futures):
                future.cancel()
        return died

    def _accept(self, chunk: list[int], answer: dict[str, Any]) -> None:
        if answer["identity"] != self.extractor.identity:
            raise SoundIndexError(f"a Dask worker computes features '{answer['identity']}' "
                                  f"where this mirsim computes '{self.extractor.identity}': "
                                  f"run the same mirsim version on the client and the workers")
        embedded = iter(answer["embeddings"] if answer["embeddings"] is not None else ())
        for i, value, reason in zip(chunk, answer["values"], answer["reasons"]):
            if value is None:
                self.reasons[i] = reason or "unknown error"
                continue
            key = cache_key(self.extractor, self.sources[i])
            self.cache.put(self.extractor.identity, key, value)  # at once: resumable
            self.values[i] = value
            if answer["embeddings"] is not None:
                self.embeddings[key] = next(embedded)
        if self.progress:
            self.progress(len(chunk))


# -- on the worker --------------------------------------------------------------------------
def _analyse_chunk(extractor: FeatureExtractor, sources: list[AudioSource], model: Any
                   ) -> dict[str, Any]:
    """Runs on a worker: features (and embeddings) of a chunk of files; writes nothing.

    Returns ``{"identity", "values", "reasons", "embeddings"}``: one value or reason per source
    (in order), and the embeddings of the sounds that have a value (or ``None``).
    """
    values: list[np.ndarray | None] = [None] * len(sources)
    reasons: list[str | None] = [None] * len(sources)
    readable = []
    for j, src in enumerate(sources):
        if _content_changed(src):
            reasons[j] = CONTENT_CHANGED
        else:
            readable.append(j)
    out = _extract_chunk(extractor, [sources[j] for j in readable], 1) if readable else []
    for j, (value, reason) in zip(readable, out):
        values[j], reasons[j] = value, reason
    return {"identity": extractor.identity, "values": values, "reasons": reasons,
            "embeddings": _embed(model, [v for v in values if v is not None])}


def _content_changed(src: AudioSource) -> bool:
    """Whether a library file's bytes on this worker differ from the client's content hash.

    Unreadable files are left to the extractor, which gives the serial path's reason.
    """
    path = getattr(src, "path", None)
    if path is None:
        return False
    try:
        return file_sha256(path) != src.key
    except OSError:
        return False


def _embed(model: Any, rows: list[np.ndarray]) -> np.ndarray | None:
    """Per-item embeddings of ``rows``; ``None`` without a model or on failure (the client then
    embeds them and reports any error itself)."""
    if model is None or not rows:
        return None
    try:
        return np.asarray(model.transform(np.stack(rows).astype(np.float32)), dtype=np.float32)
    except Exception:  # noqa: BLE001 - reported by the client, which embeds again
        return None
