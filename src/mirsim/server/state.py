"""What one running server holds: the loaded index and what it computes once (the map, the
search table). Every :func:`mirsim.server.create_app` has its own :class:`LiveLibrary`, which
holds the :class:`LibraryService` of the index now in its directory: when a build replaces the
index, the next request notices it (:func:`mirsim.index.storage.index_version`) and the server
switches to the new index in one step; requests already running finish on the old one."""

from __future__ import annotations

import gzip
import json
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np

from mirsim.features.extraction import FeatureCache
from mirsim.index import SoundIndex, SoundIndexError
from mirsim.index.storage import index_version
from mirsim.server.files import library_file
from mirsim.server.maps import MapSettings, cached_map

#: Most neighbours one request may ask for.
MAX_K = 200
#: Attempts at loading an index that a build keeps replacing while it is read.
_LOAD_ATTEMPTS = 3
#: Seconds before an index that could not be loaded is tried again.
_RETRY_SECONDS = 2.0

log = logging.getLogger(__name__)


class UnknownItem(LookupError):
    """No such manifest row, or its file is not there (the server answers 404)."""


@dataclass
class EncodedJSON:
    """A JSON document encoded once, plain and gzip-compressed."""

    plain: bytes
    gzipped: bytes

    @classmethod
    def of(cls, data: Any) -> EncodedJSON:
        plain = json.dumps(data, separators=(",", ":")).encode()
        return cls(plain, gzip.compress(plain, compresslevel=5))


@dataclass
class LibraryService:
    """The server's view of one sound index.

    Parameters
    ----------
    index : SoundIndex
    map_settings : MapSettings
    max_upload_bytes : int
    cache : FeatureCache, optional
        Feature cache for uploaded sounds (default: the user cache).

    Examples
    --------
    >>> from mirsim.server.synthetic import write_synthetic_index
    >>> import tempfile
    >>> d = write_synthetic_index(Path(tempfile.mkdtemp()) / "s.index", 50, n_labels=3)
    >>> service = LibraryService(SoundIndex.load(d), MapSettings(method="pca"), 1000)
    >>> service.item(3)["id"], service.search("SOUND-000004", 2)["total"]
    (3, 1)
    >>> [n["id"] != 3 for n in service.neighbors(3, 2)["neighbors"]]
    [True, True]
    """

    index: SoundIndex
    map_settings: MapSettings
    max_upload_bytes: int
    cache: FeatureCache | None = None
    query_lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _map_lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _maps: dict[str | None, EncodedJSON] = field(default_factory=dict, repr=False)
    _rows_by_path: dict[str, int] | None = field(default=None, repr=False)
    _lower_paths: np.ndarray | None = field(default=None, repr=False)
    _separator: Any = field(default=None, repr=False)  # a per-instrument run's, once loaded

    # -- items ------------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.index)

    def check_item(self, i: int) -> int:
        """``i`` if it is a manifest row, else :class:`UnknownItem`."""
        if not 0 <= i < len(self):
            raise UnknownItem(f"no item {i} (the index holds {len(self)} sounds, ids 0 to "
                              f"{len(self) - 1})")
        return i

    def item(self, i: int) -> dict[str, Any]:
        """Manifest record of row ``i`` as an API item."""
        m = self.index.manifest
        self.check_item(i)
        path = str(m.at[i, "path"])
        duration = float(m.at[i, "duration"])
        return {"id": int(i), "path": path, "name": PurePosixPath(path).name,
                "label": str(m.at[i, "label"]), "group": str(m.at[i, "group"]),
                "duration": duration if np.isfinite(duration) else None}

    def row_of_path(self, relpath: str) -> int:
        """Manifest row of a library-relative path."""
        if self._rows_by_path is None:
            self._rows_by_path = {p: i for i, p in enumerate(self.index.manifest["path"])}
        return self._rows_by_path[relpath]

    def audio_file(self, i: int) -> Path:
        """The file of row ``i`` (see :func:`mirsim.server.files.library_file`)."""
        self.check_item(i)
        path = library_file(self.index.root, str(self.index.manifest.at[i, "path"]))
        if path is None:
            raise UnknownItem(f"item {i}: its manifest path is not inside the library folder")
        if not path.is_file():
            raise UnknownItem(f"item {i}: file missing from the library folder "
                              f"({self.index.manifest.at[i, 'path']})")
        return path

    def stem_file(self, i: int, aspect: str) -> Path:
        """The sound of one instrument of song ``i`` of a per-instrument index
        (:func:`mirsim.index.per_instrument.stem_file`: the original stem of a Slakh-layout
        track, else the separated one, computed once and cached).

        Raises
        ------
        SoundIndexError
            Not a per-instrument index, or ``aspect`` not one of its instruments.
        UnknownItem
            No such item, its file is missing, or its track has no such stem.
        """
        from mirsim.index.per_instrument import stem_file

        about = self.index.config.get("per_instrument")
        if not about:
            raise SoundIndexError("this index has no instruments (build it with --run of a "
                                  "`reproduce per-instrument` run)")
        if aspect not in about["aspects"]:
            raise SoundIndexError(f"unknown instrument (instruments: "
                                  f"{', '.join(about['aspects'])})")
        song = self.audio_file(i)
        sha = str(self.index.columns["sha256"][i])
        with self.query_lock:  # one separation at a time (CPU-bound)
            try:
                return stem_file(song, sha, aspect, self._run_separator(about))
            except SoundIndexError as exc:
                raise UnknownItem(f"item {i}: {exc}") from None

    def _run_separator(self, about: dict[str, Any]) -> Any:
        """The separator of the index's per-instrument run (its fitted one when it has one),
        loaded once."""
        from mirsim.separation.separators import run_separator

        if self._separator is None:
            run = about.get("run")
            self._separator = run_separator(run if run and Path(run).is_dir() else None,
                                            about["separator"])
        return self._separator

    # -- neighbours, search -----------------------------------------------------------------
    def neighbors(self, i: int, k: int = 10, exclude_same_group: bool = False) -> dict[str, Any]:
        """The ``k`` nearest sounds of item ``i``; the item and its copies (same content) are
        left out, and its whole group with ``exclude_same_group``."""
        item = self.item(i)
        excluded = self._excluded(i, item, exclude_same_group)
        what = "the sound itself (and copies of it)"
        if exclude_same_group:
            what += f", its group '{item['group']}'"
        vector = np.asarray(self.index.embeddings[i], dtype=np.float32)
        distances, rows = self.index.search(vector[None, :], k, [excluded])
        return {"item": item, "k": k, "excluded": what,
                "neighbors": self._neighbor_items(distances[0], rows[0])}

    def aspect_neighbors(self, i: int, weights: str, k: int = 10,
                         exclude_same_group: bool = False) -> dict[str, Any]:
        """Like :meth:`neighbors`, ranked by the weighted sum of the aspects' cosine
        distances (``weights``: ``"tempo=1,key=0.5"``; see
        :meth:`mirsim.index.SoundIndex.search_aspects`), each neighbour with its aspects'
        distances.

        Raises
        ------
        SoundIndexError
            The index has no aspects, or the weights are bad.
        """
        item = self.item(i)
        excluded = self._excluded(i, item, exclude_same_group)
        query = np.asarray(self.index.aspect_rows[i])
        total, rows, per, about = self.index.search_aspects(query, weights, k, excluded)
        names = self.index.aspect_space.names
        neighbors = [{**n, "aspect_distances": {a: round(float(v), 6)
                                                for a, v in zip(names, per[j])}}
                     for j, n in enumerate(self._neighbor_items(total, rows))]
        return {"item": item, "k": k, **about, "neighbors": neighbors}

    def _excluded(self, i: int, item: dict[str, Any], exclude_same_group: bool) -> set[int]:
        """Rows the neighbours of item ``i`` leave out: itself, copies of it, and its group
        with ``exclude_same_group``."""
        excluded = set(self.index.rows_of_hash(str(self.index.manifest.at[i, "sha256"]))) | {i}
        if exclude_same_group:
            groups = self.index.manifest["group"].to_numpy()
            excluded |= set(np.flatnonzero(groups == item["group"]).tolist())
        return excluded

    def _neighbor_items(self, distances: np.ndarray, rows: np.ndarray) -> list[dict[str, Any]]:
        return [{**self.item(int(r)), "rank": rank + 1, "distance": round(float(d), 6)}
                for rank, (d, r) in enumerate(zip(distances, rows)) if r >= 0]

    def search(self, q: str, limit: int = 50) -> dict[str, Any]:
        """Sounds whose library path contains ``q`` (case-insensitive), in manifest order."""
        if self._lower_paths is None:
            self._lower_paths = self.index.manifest["path"].str.lower().to_numpy()
        needle = q.strip().lower()
        hits = [i for i, p in enumerate(self._lower_paths) if needle in p] if needle else []
        return {"query": q, "total": len(hits), "items": [self.item(i) for i in hits[:limit]]}

    # -- query by example -------------------------------------------------------------------
    def query_file(self, path: Path, name: str, k: int = 10,
                   exclude_same_group: bool = False) -> dict[str, Any]:
        """Neighbours of an uploaded sound file, as ``mirsim query`` finds them.

        Raises
        ------
        mirsim.audio.AudioError
            The file cannot be used as audio.
        """
        with self.query_lock:  # one embedding at a time: CPU-bound, and keeps memory flat
            result = self.index.query_audio(path, k=k, exclude_same_group=exclude_same_group,
                                            cache=self.cache)
        rows = [self.row_of_path(n.relpath) for n in result.results]
        neighbors = [{**self.item(r), "rank": n.rank, "distance": n.distance}
                     for r, n in zip(rows, result.results)]
        return {"query": name, "in_index": result.in_index, "k": k,
                "item_ids": self.index.rows_of_hash(result.sha256), "neighbors": neighbors}

    # -- map --------------------------------------------------------------------------------
    def map_json(self, aspect: str | None = None) -> EncodedJSON:
        """The map document of the whole embedding, or of one aspect's sub-space (computed,
        or read from the index's cache, on first use).

        Raises
        ------
        SoundIndexError
            ``aspect`` is not an aspect of the index (or the index has none).
        """
        embeddings, prefix = self._map_input(aspect)
        with self._map_lock:
            if aspect not in self._maps:
                self._maps[aspect] = EncodedJSON.of(self._map_document(embeddings, prefix,
                                                                       aspect))
            return self._maps[aspect]

    def _map_input(self, aspect: str | None) -> tuple[np.ndarray, str]:
        """What a map is drawn from, and the prefix of its cache file."""
        if aspect is None:
            return self.index.embeddings, "map"
        space = self.index.aspect_space
        if space is None or aspect not in space.names:
            listed = ", ".join(space.names) if space is not None else "none: no csn model"
            raise SoundIndexError(f"unknown aspect (aspects: {listed})")
        j = space.names.index(aspect)
        return self.index.aspect_rows[:, space.slices[aspect]], f"aspect-{j}-map"

    def _map_document(self, embeddings: np.ndarray, prefix: str,
                      aspect: str | None) -> dict[str, Any]:
        t = time.perf_counter()
        xy, from_cache = cached_map(self.index.directory, embeddings, self.map_settings, prefix)
        labels = self.index.manifest["label"].astype(str)
        names = sorted(labels.unique())
        codes = labels.map({name: j for j, name in enumerate(names)}).to_numpy()
        return {"method": self.map_settings.method, "aspect": aspect, "n": len(self),
                "from_cache": from_cache,
                "seconds": round(time.perf_counter() - t, 3), "labels": names,
                "ids": list(range(len(self))),
                "x": np.round(xy[:, 0].astype(np.float64), 5).tolist(),
                "y": np.round(xy[:, 1].astype(np.float64), 5).tolist(),
                "label": codes.astype(int).tolist(),
                "paths": self.index.manifest["path"].astype(str).tolist()}

    # -- description ------------------------------------------------------------------------
    @property
    def version(self) -> str:
        """Which build of the index this service holds (see :class:`LiveLibrary`)."""
        return self.index.version or ""

    def info(self) -> dict[str, Any]:
        """``SoundIndex.info()`` plus the server's settings."""
        return {**self.index.info(), "index_version": self.version,
                "server": {"map_method": self.map_settings.method,
                           "map_landmarks": self.map_settings.landmarks,
                           "max_upload_bytes": self.max_upload_bytes, "max_k": MAX_K}}


@dataclass
class LiveLibrary:
    """The :class:`LibraryService` of whichever index is now in ``directory``.

    :meth:`current` compares the directory's :func:`~mirsim.index.storage.index_version` with
    the loaded one (one ``stat``) and, when a build has published a new index, loads it and
    switches to it in one assignment; while one request loads it, the others go on with the
    old index. An index that cannot be loaded (yet) leaves the old one in service.

    Parameters
    ----------
    directory : Path
    root : Path, optional
        Where the library files now live, if they moved since the build.
    map_settings : MapSettings
    max_upload_bytes : int
    cache : FeatureCache, optional
    on_load : callable, optional
        Called with every service loaded after the first (e.g. to start its map).

    Examples
    --------
    >>> from mirsim.server.synthetic import write_synthetic_index
    >>> import tempfile
    >>> d = write_synthetic_index(Path(tempfile.mkdtemp()) / "s.index", 30, n_labels=2)
    >>> live = LiveLibrary.open(d, None, MapSettings(method="pca"), 1000)
    >>> first = live.current(); len(first)
    30
    >>> _ = write_synthetic_index(d, 40, n_labels=2)  # rebuilt in place
    >>> second = live.current(); len(second), second.version != first.version
    (40, True)
    """

    directory: Path
    root: Path | None
    map_settings: MapSettings
    max_upload_bytes: int
    cache: FeatureCache | None = None
    on_load: Callable[[LibraryService], None] | None = None
    _service: LibraryService | None = field(default=None, repr=False)
    _loading: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _failed: tuple[str, float] | None = field(default=None, repr=False)

    @classmethod
    def open(cls, directory: str | Path, root: str | Path | None, map_settings: MapSettings,
             max_upload_bytes: int, cache: FeatureCache | None = None,
             on_load: Callable[[LibraryService], None] | None = None) -> LiveLibrary:
        """Load the index in ``directory`` (errors: :class:`SoundIndexError`)."""
        live = cls(Path(directory), Path(root) if root is not None else None, map_settings,
                   int(max_upload_bytes), cache, on_load)
        live._service = live._load()
        return live

    def current(self) -> LibraryService:
        """The service of the newest index that could be loaded."""
        service = self._service
        assert service is not None, "use LiveLibrary.open"
        version = index_version(self.directory)
        if version is None or version == service.version or self._failed_recently(version):
            return service
        if not self._loading.acquire(blocking=False):  # another request is loading it
            return service
        try:
            if self._service is service:
                self._switch(version)
        finally:
            self._loading.release()
        return self._service

    def _failed_recently(self, version: str) -> bool:
        return (self._failed is not None and self._failed[0] == version
                and time.monotonic() - self._failed[1] < _RETRY_SECONDS)

    def _switch(self, version: str) -> None:
        try:
            new = self._load()
        except (SoundIndexError, OSError) as exc:  # e.g. a half-written hand copy: keep the old
            self._failed = (version, time.monotonic())
            log.warning("mirsim: %s changed but cannot be loaded (%s); still serving the "
                        "previous index", self.directory, exc)
            return
        self._service, self._failed = new, None
        log.warning("mirsim: %s was rebuilt; now serving its %d sounds", self.directory,
                    len(new))
        if self.on_load is not None:
            self.on_load(new)

    def _load(self) -> LibraryService:
        """Load the index with everything a service reads later (embeddings, model), so that
        it never mixes files of two builds; again if a build replaced it meanwhile."""
        for _ in range(_LOAD_ATTEMPTS):
            index = SoundIndex.load(self.directory, self.root)
            _ = index.embeddings  # opened now, from this build (both are read lazily)
            _ = index.pipeline
            if index_version(self.directory) == index.version:
                break
        return LibraryService(index, self.map_settings, self.max_upload_bytes, self.cache)
