"""Building (and incrementally rebuilding) a sound index from a folder of audio files.

A build walks the folder, hashes the files, extracts features of the sounds the previous index
(if any) does not already hold, embeds the library, builds the FAISS index and publishes the
new index directory in one atomic step (:mod:`mirsim.index.storage`).

What a rebuild reuses from the previous index at the same place (same feature and model):

* content hashes of files whose path, size and modification time are unchanged;
* features of every sound whose content hash it already holds (renamed files included); the
  other sounds go through :func:`mirsim.features.extraction.extract_features`, whose on-disk
  cache makes sounds seen before free;
* embeddings of unchanged sounds, for models that embed each sound on its own (linear, MLP,
  LMNN). A **graph model re-embeds the whole library** whenever its content changes, since the
  library is the graph; the library-standardised pipeline recomputes its statistics;
* the FAISS index itself when the embeddings and the index type are unchanged.

Deleted files are dropped; files that cannot be used are listed with their reason in
``build_report.json`` and tried again by the next build.

One build writes a given index at a time (:func:`mirsim.index.storage.index_lock`): a second
build of the same ``out`` fails at once naming the first one's pid, or waits for it with
``wait=True``. A build that cannot write (full disk, permissions) fails with one line saying so
and leaves the previous index as it was.

Feature extraction runs in this process (``n_jobs`` joblib processes) or, with ``scheduler``, on
a Dask distributed cluster (:mod:`mirsim.index.distributed`): a local one of ``n_jobs`` worker
processes, or an existing one. Workers also embed the sounds for per-item models; graph models
and the library-standardised pipeline embed on the client. Either way the index is the same.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

import mirsim
from mirsim.datasets.files import label_of
from mirsim.errors import DataError
from mirsim.features.extraction import ExtractionResult, FeatureCache, extract_features
from mirsim.index import manifest as mf
from mirsim.index.aspects import ASPECTS_FAISS_FILE, ASPECTS_FILE, AspectSpace
from mirsim.index.errors import SoundIndexError
from mirsim.index.faiss_backend import (DEFAULT_APPROXIMATE_THRESHOLD, DEFAULT_TARGET_RECALL,
                                        METRICS, build_faiss_index, choose_index_type,
                                        require_faiss, write_faiss_index)
from mirsim.index.per_instrument import song_files
from mirsim.index.pipeline import EmbeddingPipeline
from mirsim.index.scan import LibraryFile, audio_duration, group_of, scan_library
from mirsim.index.storage import (check_target, clean_stale, index_lock, is_index_dir, publish,
                                  staging_dir, write_json_file)

#: ``progress(stage, done, total)``; stages: hash, cluster, features, embed, index, write.
Progress = Callable[[str, int, int], None]
#: Free space below which a failed write is put down to a full disk.
_FULL_DISK_BYTES = 1 << 20
#: Errors of a failed write that writers may name only in their message.
_WRITE_ERRNOS = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EIO, errno.EROFS, errno.EACCES)


@dataclass
class _Previous:
    """What a rebuild may reuse from the index already at the target."""

    config: dict[str, Any]
    manifest: pd.DataFrame
    directory: Path
    same_pipeline: bool


def build_index(root: str | Path, out: str | Path, *, run_dir: str | Path | None = None,
                feature: str | None = None, feature_params: dict[str, Any] | None = None,
                approximate: str = "auto",
                approximate_threshold: int = DEFAULT_APPROXIMATE_THRESHOLD,
                group_by: str = "folder", n_jobs: int = 1, cache: FeatureCache | None = None,
                rehash: bool = False, seed: int = 0, scheduler: Any = None,
                progress: Progress | None = None, wait: bool = False,
                on_wait: Callable[[int | None], None] | None = None) -> dict[str, Any]:
    """Build the index of the audio files below ``root`` into the directory ``out``.

    Parameters
    ----------
    root : str or Path
        Library folder, walked recursively (wav, flac, ogg, mp3, aiff).
    out : str or Path
        Index directory; an existing index there is reused where possible and replaced
        atomically.
    run_dir : str or Path, optional
        A ``mirsim train`` run directory: its feature and trained model embed the sounds.
    feature : str, optional
        Without ``run_dir``: this feature (default ``mfcc``), standardised with the library's
        own statistics.
    feature_params : dict, optional
        Parameters of ``feature``.
    approximate : {"auto", "never", "hnsw", "ivf"}
        FAISS index: exact below ``approximate_threshold`` items with ``auto``.
    group_by : {"folder", "file"}
        What counts as "the same sound" for queries that exclude their own group.
    n_jobs : int
        Worker processes for feature extraction: joblib processes, or the size of the local
        Dask cluster with ``scheduler="local"``.
    cache : FeatureCache, optional
        Feature cache (default: the user cache).
    rehash : bool
        Hash every file again instead of trusting unchanged size and modification time.
    seed : int
        Seed of the approximate index's calibration and training.
    scheduler : str or distributed.Client, optional
        Extract features (and embed, for per-item models) on a Dask cluster: ``"local"``
        starts one of ``n_jobs`` worker processes for this build, an address
        (``tcp://host:8786``) or a ``distributed.Client`` uses an existing one, whose workers
        must see ``root`` at the same path. Only this process writes the cache and the index.
        No cluster is started when every sound's features are already known.
    progress : callable, optional
        ``progress(stage, done, total)``; stage ``cluster`` while a cluster starts.
    wait : bool
        If another process is building ``out``, wait for it to finish (default: fail at once).
    on_wait : callable, optional
        ``on_wait(pid)``, called before waiting with the other build's pid (None if unknown).

    Returns
    -------
    dict
        The build report, also written to ``out/build_report.json``: ``n_files_found``,
        ``n_indexed``, ``n_skipped`` and ``skipped`` (``[{"path", "reason"}]``, paths relative
        to ``root``), ``n_added`` / ``n_changed`` / ``n_unchanged`` / ``n_removed`` (indexed
        sounds compared with the previous index) and ``removed``, ``n_features_reused`` (from
        the previous index), ``n_features_computed``, ``n_features_from_cache``, how the
        ``embeddings`` and the ``faiss`` index were obtained, ``index_type``,
        ``full_rebuild_reason``, ``stale_builds_cleaned``, ``extraction`` (``engine``: joblib
        or dask, ``n_jobs`` or ``scheduler`` and ``n_workers``) and ``timings_seconds``.

    Raises
    ------
    SoundIndexError, DataError
        Bad folder, target, run directory or option; no usable audio file; another build
        writing ``out``; a file that cannot be written (full disk...): the previous index is
        then left as it was.

    Examples
    --------
    >>> import tempfile, soundfile as sf
    >>> lib = Path(tempfile.mkdtemp()); (lib / "hum").mkdir()
    >>> for i in range(3):
    ...     sf.write(lib / "hum" / f"{i}.wav", np.sin(np.arange(8000) * (0.1 + i / 50)), 8000)
    >>> report = build_index(lib, lib.parent / (lib.name + ".index"), feature="mfcc",
    ...                      cache=FeatureCache(tempfile.mkdtemp()))
    >>> report["n_indexed"], report["n_skipped"], report["index_type"]
    (3, 0, 'flat')
    """
    t_start = time.perf_counter()
    root, out = _check_paths(root, out)
    group_of("x", group_by)  # validates group_by
    choose_index_type(0, approximate, approximate_threshold)  # validates approximate
    require_faiss()
    with index_lock(out, wait, on_wait):
        try:
            return _build(root, out, run_dir, feature, feature_params, approximate,
                          approximate_threshold, group_by, n_jobs, cache, rehash, seed,
                          scheduler, progress, t_start)
        except OSError as exc:  # a full disk, a folder that cannot be written...
            raise _write_error(out, is_index_dir(out), exc) from None


def _build(root: Path, out: Path, run_dir, feature, feature_params, approximate,
           approximate_threshold, group_by, n_jobs, cache, rehash, seed, scheduler, progress,
           t_start: float) -> dict[str, Any]:
    """:func:`build_index` once its arguments are checked and the index is locked."""
    timings: dict[str, float] = {}
    stale = clean_stale(out)
    check_target(out)
    pipeline = _make_pipeline(run_dir, feature, feature_params)
    previous, rebuild_reason = _load_previous(out, root, pipeline)

    t = time.perf_counter()
    files, skipped = scan_library(root, previous.manifest if previous else None, rehash, progress)
    files = song_files(files, pipeline.extractor)  # a Slakh track's stems: through its mix
    n_found = len(files) + len(skipped)
    timings["hash"] = time.perf_counter() - t

    t = time.perf_counter()
    features, extracted = _library_features(files, previous, pipeline, cache, n_jobs,
                                            scheduler, progress)
    skipped += [{"path": rel, "reason": why} for rel, why in extracted["failed"].items()]
    kept = [f for f in files if f.key in features and f.relpath not in extracted["failed"]]
    if not kept:
        raise DataError(f"{root}: no usable audio files ({n_found} found, {len(skipped)} "
                        f"skipped; looked for .wav .flac .ogg .mp3 .aiff)")
    X = np.stack([features[f.key] for f in kept]).astype(np.float32)
    del features
    timings["features"] = time.perf_counter() - t

    manifest = _manifest(kept, root, group_by, previous, pipeline)
    t = time.perf_counter()
    if progress:
        progress("embed", 0, 1)
    E, embeddings_how = _embeddings(X, manifest, previous, pipeline, extracted["embeddings"])
    if progress:
        progress("embed", 1, 1)
    timings["embed"] = time.perf_counter() - t

    t = time.perf_counter()
    index_type = choose_index_type(len(E), approximate, approximate_threshold)
    reuse_faiss = _faiss_reusable(previous, E, index_type)
    if progress:
        progress("index", 0, 1)
    faiss_index, index_params = ((None, previous.config["index_params"]) if reuse_faiss else
                                 build_faiss_index(E, index_type, seed, DEFAULT_TARGET_RECALL,
                                                   pipeline.distance))
    if progress:
        progress("index", 1, 1)
    timings["index"] = time.perf_counter() - t

    t = time.perf_counter()
    aspects = _aspects(pipeline, E, index_type, previous if reuse_faiss else None, seed)
    timings["aspects"] = time.perf_counter() - t

    report = _report(root, manifest, previous, skipped, n_found, extracted, rebuild_reason,
                     embeddings_how, reuse_faiss, index_type, stale, out)
    config = _config(root, group_by, pipeline, X, E, index_params, approximate,
                     approximate_threshold, seed, aspects)
    _write(out, config, manifest, X, E, faiss_index, previous if reuse_faiss else None,
           pipeline, report, timings, t_start, progress, aspects)
    return report


# -- steps ---------------------------------------------------------------------------------
def _check_paths(root: str | Path, out: str | Path) -> tuple[Path, Path]:
    root, out = Path(root).expanduser(), Path(out).expanduser()
    if not root.is_dir():
        raise DataError(f"{root}: not a folder")
    root = root.resolve()
    out = out.parent.resolve() / out.name if out.name else out.resolve()
    if out == root or root.is_relative_to(out):
        raise SoundIndexError(f"{out}: the index cannot be the library folder or contain it")
    return root, out


def _make_pipeline(run_dir, feature, feature_params) -> EmbeddingPipeline:
    if run_dir is None:
        return EmbeddingPipeline.from_feature(feature or "mfcc", feature_params)
    if feature is not None or feature_params:
        raise SoundIndexError("give either a run directory or a feature, not both (the run "
                              "fixes the feature)")
    return EmbeddingPipeline.from_run(run_dir)


def _load_previous(out: Path, root: Path, pipeline: EmbeddingPipeline
                   ) -> tuple[_Previous | None, str | None]:
    if not is_index_dir(out):
        return None, "no previous index"
    try:
        config = json.loads((out / mf.CONFIG_FILE).read_text(encoding="utf-8"))
        manifest = mf.read_manifest(out / mf.MANIFEST_FILE)
        n = len(np.load(out / mf.FEATURES_FILE, mmap_mode="r"))
        if n != len(manifest) or len(np.load(out / mf.EMBEDDINGS_FILE, mmap_mode="r")) != n:
            raise SoundIndexError("manifest and stored arrays disagree")
    except Exception as exc:  # a damaged index is rebuilt, not fatal
        return None, f"previous index unreadable ({type(exc).__name__}: {exc}); rebuilt from scratch"
    if config.get("root") != str(root):
        return None, f"previous index was of another folder ({config.get('root')})"
    same = (config.get("feature_identity") == pipeline.feature_identity
            and config.get("model_id") == pipeline.model_id)
    reason = None if same else ("previous index used another feature or model; features and "
                                "embeddings recomputed")
    return _Previous(config, manifest, out, same), reason


def _library_features(files: list[LibraryFile], previous: _Previous | None,
                      pipeline: EmbeddingPipeline, cache: FeatureCache | None, n_jobs: int,
                      scheduler: Any, progress: Progress | None
                      ) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Features by content hash: reused from the previous index, else extracted (here or on a
    cluster). The second value holds the failed files, the counts, the embeddings the cluster
    computed (by content hash) and how extraction ran."""
    features = _reused_features(files, previous)
    n_reused = sum(f.key in features for f in files)
    todo = [f for f in files if f.key not in features]  # copies of one sound each tried:
    done = [0]                                           # a name may be unreadable, not the content

    def step(n: int) -> None:
        done[0] += n
        if progress:
            progress("features", done[0], len(todo))

    if progress:
        progress("features", 0, len(todo))
    engine: dict[str, Any] = {"engine": "joblib", "n_jobs": n_jobs}
    embedded: dict[str, np.ndarray] = {}
    result = None
    if todo and scheduler is not None:
        result, embedded, engine = _extract_on_cluster(todo, pipeline, cache, n_jobs, scheduler,
                                                       step, progress)
    elif todo:
        result = extract_features(todo, pipeline.extractor, cache=cache, n_jobs=n_jobs,
                                  progress=step)
    failed: dict[str, str] = {}
    if result is not None:
        for j, i in enumerate(result.ok):
            features[todo[i].key] = result.features[j]
        failed = {todo[i].relpath: reason for i, _, reason in result.skipped}
    return features, {"failed": failed, "n_reused": n_reused,
                      "n_computed": result.n_computed if result else 0,
                      "n_from_cache": result.n_cached if result else 0,
                      "embeddings": embedded, "engine": engine}


def _reused_features(files: list[LibraryFile], previous: _Previous | None
                     ) -> dict[str, np.ndarray]:
    """Features the previous index (same pipeline) holds for the content of ``files``."""
    if previous is None or not previous.same_pipeline:
        return {}
    wanted = {f.key for f in files}
    rows = {h: i for i, h in enumerate(previous.manifest["sha256"]) if h in wanted}
    if not rows:
        return {}
    stored = np.load(previous.directory / mf.FEATURES_FILE, mmap_mode="r")
    order = np.fromiter(rows.values(), dtype=np.int64, count=len(rows))
    return dict(zip(rows, np.asarray(stored[order])))


def _extract_on_cluster(todo: list[LibraryFile], pipeline: EmbeddingPipeline,
                        cache: FeatureCache | None, n_jobs: int, scheduler: Any,
                        step: Callable[[int], None], progress: Progress | None
                        ) -> tuple[ExtractionResult, dict[str, np.ndarray], dict[str, Any]]:
    """Features (and per-item embeddings) of ``todo`` on a Dask cluster."""
    from mirsim.index.distributed import extract_distributed

    def on_cluster(ready: bool) -> None:
        if progress:
            progress("cluster", int(ready), 1)

    run = extract_distributed(todo, pipeline.extractor, scheduler=scheduler, n_workers=n_jobs,
                              cache=cache, model=pipeline.model if pipeline.per_item else None,
                              progress=step, on_cluster=on_cluster)
    where = scheduler if isinstance(scheduler, str) else run.scheduler  # a Client: its address
    engine = {"engine": "dask", "scheduler": where, "n_workers": run.n_workers,
              "n_tasks": run.n_tasks}
    return run.extraction, run.embeddings, engine


def _manifest(kept: list[LibraryFile], root: Path, group_by: str, previous: _Previous | None,
              pipeline: EmbeddingPipeline) -> pd.DataFrame:
    known = {}
    if previous is not None:
        known = dict(zip(previous.manifest["sha256"], previous.manifest["duration"]))
    durations = [known[f.key] if f.key in known and np.isfinite(known[f.key])
                 else audio_duration(f.path) for f in kept]
    return pd.DataFrame({
        "path": [f.relpath for f in kept],
        "sha256": [f.key for f in kept],
        "duration": np.round(np.asarray(durations, dtype=np.float64), 6),
        "size": [f.size for f in kept],
        "mtime_ns": [f.mtime_ns for f in kept],
        "label": [label_of(f.relpath, root.name) for f in kept],
        "group": [group_of(f.relpath, group_by) for f in kept],
        "feature_identity": pipeline.feature_identity,
        "model_id": pipeline.model_id,
        "mirsim_version": mirsim.__version__,
    })


def _embeddings(X: np.ndarray, manifest: pd.DataFrame, previous: _Previous | None,
                pipeline: EmbeddingPipeline, from_cluster: dict[str, np.ndarray] | None = None
                ) -> tuple[np.ndarray, str]:
    """Library embeddings, and how they were obtained (for the report).

    ``from_cluster`` holds per-item embeddings the cluster's workers computed, by content hash.
    """
    keys = manifest["sha256"].tolist()
    same = previous is not None and previous.same_pipeline
    if same and pipeline.is_graph and keys == previous.manifest["sha256"].tolist():
        pipeline.model.set_reference(X)  # the saved model keeps the library as reference
        return _stored_embeddings(previous, np.arange(len(keys))), "reused (library unchanged)"
    if pipeline.per_item and (same or from_cluster):
        return _per_item_embeddings(X, keys, previous if same else None, pipeline,
                                    from_cluster or {})
    how = "graph: whole library re-embedded" if pipeline.is_graph else "computed"
    return np.ascontiguousarray(pipeline.embed_library(X, manifest["label"].to_numpy()),
                                dtype=np.float32), how


def _per_item_embeddings(X: np.ndarray, keys: list[str], previous: _Previous | None,
                         pipeline: EmbeddingPipeline, from_cluster: dict[str, np.ndarray]
                         ) -> tuple[np.ndarray, str]:
    """Rows from the previous index, else from the cluster's workers, else embedded here."""
    pipeline.check_features(X)
    rows = ({h: i for i, h in enumerate(previous.manifest["sha256"])} if previous is not None
            else {})
    reuse = np.array([h in rows for h in keys], dtype=bool)
    remote = np.array([not r and h in from_cluster for h, r in zip(keys, reuse)], dtype=bool)
    here = ~(reuse | remote)
    E = np.empty((len(keys), _embedding_dim(previous, from_cluster, pipeline, X)), np.float32)
    if reuse.any():
        E[reuse] = _stored_embeddings(previous, [rows[h] for h in np.array(keys)[reuse]])
    if remote.any():
        E[remote] = np.stack([from_cluster[h] for h in np.array(keys)[remote]])
    if here.any():
        E[here] = pipeline.embed(X[here])
    computed = int(remote.sum() + here.sum())
    how = f"{int(reuse.sum())} reused, {computed} computed" if previous is not None else "computed"
    return E, how + (f" ({int(remote.sum())} by the cluster's workers)" if remote.any() else "")


def _embedding_dim(previous: _Previous | None, from_cluster: dict[str, np.ndarray],
                   pipeline: EmbeddingPipeline, X: np.ndarray) -> int:
    if previous is not None:
        return int(previous.config["embedding_dim"])
    if from_cluster:
        return int(next(iter(from_cluster.values())).shape[-1])
    return int(pipeline.embed(X[:1]).shape[1])


def _stored_embeddings(previous: _Previous, rows) -> np.ndarray:
    stored = np.load(previous.directory / mf.EMBEDDINGS_FILE, mmap_mode="r")
    return np.array(stored[np.asarray(rows, dtype=np.int64)], dtype=np.float32)


def _faiss_reusable(previous: _Previous | None, E: np.ndarray, index_type: str) -> bool:
    if previous is None or previous.config.get("index_params", {}).get("type") != index_type:
        return False
    stored = np.load(previous.directory / mf.EMBEDDINGS_FILE, mmap_mode="r")
    return stored.shape == E.shape and bool(np.array_equal(stored, E))


@dataclass
class _Aspects:
    """The sub-space embeddings of a conditional model's library (:mod:`mirsim.index.aspects`)."""

    rows: np.ndarray
    config: dict[str, Any]
    faiss_index: Any = None  # above the approximate threshold: an index of ``rows``
    reuse_from: _Previous | None = None  # ... or the previous build's, when unchanged


def _aspects(pipeline: EmbeddingPipeline, E: np.ndarray, index_type: str,
             unchanged: _Previous | None, seed: int) -> _Aspects | None:
    """The library's aspects, if the model has sub-spaces: rows always recomputed from the
    embeddings (cheap); their approximate FAISS index (of the same type as the main index's)
    reused when the embeddings and the aspects are unchanged, else built."""
    space = AspectSpace.from_model(pipeline.model)
    if space is None:
        return None
    rows = space.embed(E)
    config = {**space.to_config(), "index_type": index_type}
    if index_type == "flat":  # exact search scans aspects.npy: no FAISS index
        return _Aspects(rows, {**config, "index_params": {"type": "flat", "exact": True}})
    old = unchanged.config.get("aspects") if unchanged is not None else None
    if old is not None and {k: v for k, v in old.items() if k != "index_params"} == config:
        return _Aspects(rows, old, reuse_from=unchanged)
    index, params = build_faiss_index(rows, index_type, seed, DEFAULT_TARGET_RECALL, "cosine")
    return _Aspects(rows, {**config, "index_params": params}, index)


def _report(root, manifest, previous, skipped, n_found, extracted, rebuild_reason,
            embeddings_how, reuse_faiss, index_type, stale, out) -> dict[str, Any]:
    old = dict(zip(previous.manifest["path"], previous.manifest["sha256"])) if previous else {}
    now = dict(zip(manifest["path"], manifest["sha256"]))  # indexed sounds, old and new
    return {
        "root": str(root), "index": str(out),
        "built_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "n_files_found": n_found, "n_indexed": len(manifest), "n_skipped": len(skipped),
        "n_added": sum(p not in old for p in now),
        "n_changed": sum(p in old and old[p] != h for p, h in now.items()),
        "n_unchanged": sum(old.get(p) == h for p, h in now.items()),
        "n_removed": sum(p not in now for p in old),
        "n_features_reused": extracted["n_reused"],
        "n_features_computed": extracted["n_computed"],
        "n_features_from_cache": extracted["n_from_cache"],
        "embeddings": embeddings_how,
        "faiss": "reused (embeddings unchanged)" if reuse_faiss else "built",
        "index_type": index_type,
        "full_rebuild_reason": rebuild_reason,
        "skipped": sorted(skipped, key=lambda s: s["path"]),
        "removed": sorted(p for p in old if p not in now),
        "stale_builds_cleaned": [p.name for p in stale],
        "extraction": extracted["engine"],
    }


def _config(root, group_by, pipeline, X, E, index_params, approximate, threshold, seed,
            aspects: _Aspects | None) -> dict[str, Any]:
    faiss = require_faiss()
    # an index without aspects stays version 1, which an older mirsim reads
    version = mf.FORMAT_VERSION if aspects is not None else mf.PLAIN_FORMAT_VERSION
    extra = {"aspects": aspects.config} if aspects is not None else {}
    return {"format": mf.FORMAT, "format_version": version, **extra,
            "mirsim_version": mirsim.__version__, "faiss_version": faiss.__version__,
            "built_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "root": str(root),
            "group_by": group_by, **pipeline.describe(), "n_items": int(len(E)),
            "feature_dim": int(X.shape[1]), "embedding_dim": int(E.shape[1]),
            "metric": METRICS[pipeline.distance],
            "index_type": index_params["type"], "index_params": index_params,
            "approximate": approximate, "approximate_threshold": threshold, "seed": seed}


def _write(out: Path, config, manifest, X, E, faiss_index, reuse_from: _Previous | None,
           pipeline: EmbeddingPipeline, report, timings, t_start, progress,
           aspects: _Aspects | None = None) -> None:
    """Write everything into a staging directory, then publish it atomically."""
    t = time.perf_counter()

    def write_report(path: Path) -> None:
        timings["write"] = time.perf_counter() - t
        timings["total"] = time.perf_counter() - t_start
        report["timings_seconds"] = {k: round(v, 3) for k, v in timings.items()}
        write_json_file(path, report)

    def write_faiss(path: Path) -> None:
        if reuse_from is not None:
            _link_or_copy(reuse_from.directory / mf.FAISS_FILE, path)
        else:
            write_faiss_index(faiss_index, path)

    steps = [(mf.CONFIG_FILE, lambda path: write_json_file(path, config)),
             (mf.MANIFEST_FILE, lambda path: mf.write_manifest(manifest, path)),
             (mf.FEATURES_FILE, lambda path: np.save(path, X)),
             (mf.EMBEDDINGS_FILE, lambda path: np.save(path, E)),
             (mf.FAISS_FILE, write_faiss),
             (mf.MODEL_DIR, pipeline.model.save),
             *_aspect_steps(aspects),
             (mf.REPORT_FILE, write_report)]
    staging = staging_dir(out)
    path = staging
    try:
        for i, (name, write) in enumerate(steps):
            if progress:
                progress("write", i, len(steps))
            path = staging / name
            write(path)
        if progress:
            progress("write", len(steps), len(steps))
        path = staging
        publish(staging, out)
    except Exception as exc:
        error = exc if getattr(exc, "errno", None) else _writer_error(exc, staging)
        shutil.rmtree(staging, ignore_errors=True)
        if error is None:
            raise
        if error.filename is None:  # numpy and the others do not say which file failed
            error = OSError(error.errno, error.strerror, str(path))
        if error is exc:
            raise
        raise error from exc
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def _aspect_steps(aspects: _Aspects | None) -> list[tuple[str, Callable[[Path], None]]]:
    """The files of the aspects (none without): their rows, and their FAISS index above
    the approximate threshold."""
    if aspects is None:
        return []
    steps = [(ASPECTS_FILE, lambda path: np.save(path, aspects.rows))]
    if aspects.reuse_from is not None:
        steps.append((ASPECTS_FAISS_FILE, lambda path: _link_or_copy(
            aspects.reuse_from.directory / ASPECTS_FAISS_FILE, path)))
    elif aspects.faiss_index is not None:
        steps.append((ASPECTS_FAISS_FILE,
                      lambda path: write_faiss_index(aspects.faiss_index, path)))
    return steps


def _writer_error(exc: Exception, staging: Path) -> OSError | None:
    """The OSError behind a failed write that does not carry its errno, or None if ``exc``
    is no failed write. Writers report them each their own way: FAISS a RuntimeError naming the
    system's message, safetensors a SafetensorError doing the same, numpy an OSError "N
    requested and M written" and torch a RuntimeError "unexpected pos", so a full disk is also
    recognised by its free space (measured before the partial files are removed)."""
    text = str(exc)
    for code in _WRITE_ERRNOS:
        if os.strerror(code) in text:
            return OSError(code, os.strerror(code))
    if shutil.disk_usage(staging).free < _FULL_DISK_BYTES:
        return OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
    return None


def _write_error(out: Path, had_index: bool, exc: OSError) -> SoundIndexError:
    """The one-line error of a build stopped by an OSError (full disk, permissions...)."""
    where = f" ({_shown_path(out, exc.filename)})" if exc.filename else ""
    kept = f"the previous index at {out} is intact" if had_index else "no index was written"
    return SoundIndexError(f"{out}: build failed: {exc.strerror or exc}{where}; {kept}")


def _shown_path(out: Path, filename: Any) -> str:
    """A path as the user knows it: a file of the staging directory as "writing NAME" (it
    would have become ``out/NAME``), the staging directory itself as "publishing"."""
    path = Path(os.fsdecode(filename))
    for staging in (path, *path.parents):
        if staging.parent == out.parent and staging.name.startswith(f".{out.name}.tmp-"):
            rel = path.relative_to(staging).as_posix()
            return "publishing the new index" if rel == "." else f"writing {rel}"
    return str(path)


def _link_or_copy(src: Path, dst: Path) -> None:
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)
