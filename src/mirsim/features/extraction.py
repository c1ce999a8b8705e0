"""Extract features for many sounds, with an on-disk cache and a skip report.

The cache key is (content hash of the sound, extractor identity), so a renamed file hits the
cache and an edited file does not. Every entry is written atomically (temporary file, then
rename): an interrupted job never leaves a half-written entry, and a rerun resumes.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import numpy as np

from mirsim.audio import AudioError
from mirsim.config import cache_dir
from mirsim.features.base import FeatureExtractor


class AudioSource(Protocol):
    """What feature extraction needs from a sound (see :class:`mirsim.audio.FileSource`)."""

    name: str
    key: str

    def load(self, sr: int, duration: float | None = None): ...


class FeatureCache:
    """Feature vectors on disk, one ``.npy`` per (extractor identity, content key).

    Examples
    --------
    >>> import tempfile
    >>> c = FeatureCache(tempfile.mkdtemp())
    >>> c.put("mfcc-abc", "f00d", np.arange(3, dtype=np.float32))
    >>> c.get("mfcc-abc", "f00d").tolist(), c.get("mfcc-abc", "beef") is None
    ([0.0, 1.0, 2.0], True)
    """

    def __init__(self, root: str | Path | None = None):
        self.root = Path(root) if root is not None else cache_dir() / "features"

    def _path(self, identity: str, key: str) -> Path:
        return self.root / identity / key[:2] / f"{key}.npy"

    def get(self, identity: str, key: str) -> np.ndarray | None:
        path = self._path(identity, key)
        try:
            return np.load(path)
        except (FileNotFoundError, ValueError, OSError):
            return None

    def put(self, identity: str, key: str, value: np.ndarray) -> None:
        path = self._path(identity, key)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as f:
                np.save(f, np.asarray(value, dtype=np.float32))
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise


@dataclass
class ExtractionResult:
    """Features of the sounds that could be read, and why the others were skipped.

    ``features[i]`` belongs to ``sources[ok[i]]``; ``skipped`` lists ``(index, name, reason)``.
    """

    features: np.ndarray
    ok: np.ndarray
    skipped: list[tuple[int, str, str]] = field(default_factory=list)
    n_computed: int = 0
    n_cached: int = 0


def _extract_chunk(extractor: FeatureExtractor, sources: Sequence[AudioSource],
                   torch_threads: int | None) -> list[tuple[np.ndarray | None, str | None]]:
    if torch_threads is not None:
        import torch

        torch.set_num_threads(torch_threads)
    waves: list[np.ndarray] = []
    out: list[tuple[np.ndarray | None, str | None]] = []
    slots: list[int] = []
    for src in sources:
        try:
            # an extractor that reads more than the sound's samples (the stems beside a
            # mix: ``per-instrument``) loads its source itself
            load = getattr(extractor, "load_source", None)
            y = load(src) if load else src.load(extractor.sample_rate, extractor.duration)
            waves.append(extractor.prepare(y, extractor.sample_rate))
            slots.append(len(out))
            out.append((None, None))
        except AudioError as exc:
            out.append((None, exc.reason))
        except Exception as exc:  # a bulk job never dies on one bad file
            out.append((None, f"{type(exc).__name__}: {exc}"))
    if waves:
        try:
            values = extractor.extract_batch(waves)
            for slot, v in zip(slots, values):
                out[slot] = (np.asarray(v, dtype=np.float32), None)
        except Exception:  # isolate the failing sound(s)
            for slot, y in zip(slots, waves):
                try:
                    out[slot] = (extractor.extract_batch([y])[0], None)
                except Exception as exc:
                    out[slot] = (None, f"feature extraction failed: {type(exc).__name__}: {exc}")
    return out


def extract_features(
    sources: Sequence[AudioSource],
    extractor: FeatureExtractor,
    cache: FeatureCache | None = None,
    n_jobs: int = 1,
    chunk_size: int = 32,
    on_error: str = "skip",
    progress: Callable[[int], None] | None = None,
) -> ExtractionResult:
    """Features of every source, read from the cache where possible.

    Parameters
    ----------
    sources : sequence of AudioSource
        Sounds (e.g. :class:`mirsim.audio.FileSource`).
    extractor : FeatureExtractor
    cache : FeatureCache, optional
        Defaults to the user cache; pass ``FeatureCache(dir)`` to isolate.
    n_jobs : int
        Worker processes for the sounds not yet cached (joblib).
    chunk_size : int
        Sounds per task (vectorised extractors process a chunk as one batch).
    on_error : {"skip", "raise"}
        What to do with a sound that cannot be read or analysed.
    progress : callable, optional
        Called with the number of sounds finished since the last call.

    Examples
    --------
    >>> import tempfile, os, soundfile as sf
    >>> from mirsim.audio import FileSource
    >>> from mirsim.features import make_extractor
    >>> d = tempfile.mkdtemp(); p = os.path.join(d, "a.wav")
    >>> sf.write(p, np.sin(np.arange(22050) / 3.0), 22050)
    >>> open(os.path.join(d, "bad.wav"), "wb").close()
    >>> r = extract_features([FileSource(p), FileSource(os.path.join(d, "bad.wav"))],
    ...                      make_extractor("mfcc"), cache=FeatureCache(d))
    >>> r.features.shape, r.ok.tolist(), r.skipped[0][2]
    ((1, 40), [0], 'empty file (0 bytes)')
    """
    if on_error not in {"skip", "raise"}:
        raise ValueError("on_error must be 'skip' or 'raise'")
    cache = cache if cache is not None else FeatureCache()
    identity = extractor.identity
    values, reasons, todo = split_cached(sources, extractor, cache)
    if progress and len(sources) - len(todo):
        progress(len(sources) - len(todo))
    chunks = [todo[s:s + chunk_size] for s in range(0, len(todo), chunk_size)]
    if n_jobs != 1 and chunks:
        from joblib import delayed  # worker processes only where there is work for them

        from mirsim.parallel import worker_processes

        
        results = worker_processes(n_jobs)(
            delayed(_extract_chunk)(extractor, [sources[i] for i in c], 1) for c in chunks)
    else:
        results = (_extract_chunk(extractor, [sources[i] for i in c], None) for c in chunks)
    for c, res in enumerate(results):  # exhaust the generator (joblib warns otherwise)
        chunk = chunks[c]
        for i, (value, reason) in zip(chunk, res):
            if value is None:
                reasons[i] = reason or "unknown error"
                if on_error == "raise":
                    raise AudioError(sources[i].name, reasons[i])
            else:
                cache.put(identity, cache_key(extractor, sources[i]), value)  # resumable
                values[i] = value
        if progress:
            progress(len(chunk))
    if on_error == "raise" and reasons:
        i = min(reasons)
        raise AudioError(sources[i].name, reasons[i])
    return assemble_extraction(sources, extractor, values, reasons, todo)


def cache_key(extractor: FeatureExtractor, source: AudioSource) -> str:
    """The key of a source's features in the cache: its content key, unless the extractor
    reads more than the sound's samples and says what else counts (``per-instrument``: the
    stems beside a Slakh-layout mix).

    Examples
    --------
    >>> from mirsim.features import make_extractor
    >>> class Sound:
    ...     key = "f00d"
    >>> cache_key(make_extractor("mfcc"), Sound())
    'f00d'
    """
    own = getattr(extractor, "cache_key", None)
    return own(source) if own is not None else source.key


def split_cached(sources: Sequence[AudioSource], extractor: FeatureExtractor, cache: FeatureCache
                 ) -> tuple[dict[int, np.ndarray], dict[int, str], list[int]]:
    """Cache hits, sounds that failed already (unreadable key), and the sounds to compute."""
    values: dict[int, np.ndarray] = {}
    reasons: dict[int, str] = {}
    todo: list[int] = []
    for i, src in enumerate(sources):
        try:
            cached = cache.get(extractor.identity, cache_key(extractor, src))
        except AudioError as exc:
            reasons[i] = exc.reason
            continue
        if cached is None:
            todo.append(i)
        else:
            values[i] = cached
    return values, reasons, todo


def assemble_extraction(sources: Sequence[AudioSource], extractor: FeatureExtractor,
                        values: dict[int, np.ndarray], reasons: dict[int, str], todo: list[int]
                        ) -> ExtractionResult:
    """An :class:`ExtractionResult` in source order from the vectors and reasons gathered."""
    ok = np.array(sorted(values), dtype=int)
    dims = {values[i].shape for i in ok}
    if len(dims) > 1:
        raise ValueError(f"extractor {extractor.name} returned vectors of different shapes {dims}")
    feats = (np.stack([values[i] for i in ok]).astype(np.float32) if len(ok)
             else np.zeros((0, 0), dtype=np.float32))
    skipped = [(i, sources[i].name, reasons[i]) for i in sorted(reasons)]
    n_computed = sum(i in values for i in todo)
    return ExtractionResult(feats, ok, skipped, n_computed=n_computed,
                            n_cached=len(values) - n_computed)
