"""What one running server holds: the loaded index and what it computes once (the map, the
search table). Every :func:`mirsim.server.create_app` has its own :class:`LibraryService`."""

from __future__ import annotations

import gzip
import json
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np

from mirsim.features.extraction import FeatureCache
from mirsim.index import SoundIndex
from mirsim.server.files import library_file
from mirsim.server.maps import MapSettings, cached_map

#: Most neighbours one request may ask for.
MAX_K = 200


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
    _map: EncodedJSON | None = field(default=None, repr=False)
    _rows_by_path: dict[str, int] | None = field(default=None, repr=False)
    _lower_paths: np.ndarray | None = field(default=None, repr=False)

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

    # -- neighbours, search -----------------------------------------------------------------
    def neighbors(self, i: int, k: int = 10, exclude_same_group: bool = False) -> dict[str, Any]:
        """The ``k`` nearest sounds of item ``i``; the item and its copies (same content) are
        left out, and its whole group with ``exclude_same_group``."""
        item = self.item(i)
        excluded = set(self.index.rows_of_hash(str(self.index.manifest.at[i, "sha256"])))
        excluded.add(i)
        what = "the sound itself (and copies of it)"
        if exclude_same_group:
            groups = self.index.manifest["group"].to_numpy()
            excluded |= set(np.flatnonzero(groups == item["group"]).tolist())
            what += f", its group '{item['group']}'"
        vector = np.asarray(self.index.embeddings[i], dtype=np.float32)
        distances, rows = self.index.search(vector[None, :], k, [excluded])
        return {"item": item, "k": k, "excluded": what,
                "neighbors": self._neighbor_items(distances[0], rows[0])}

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
    def map_json(self) -> EncodedJSON:
        """The map document (computed, or read from the index's cache, on first use)."""
        with self._map_lock:
            if self._map is None:
                self._map = EncodedJSON.of(self._map_document())
            return self._map

    def _map_document(self) -> dict[str, Any]:
        t = time.perf_counter()
        xy, from_cache = cached_map(self.index.directory, self.index.embeddings,
                                    self.map_settings)
        labels = self.index.manifest["label"].astype(str)
        names = sorted(labels.unique())
        codes = labels.map({name: j for j, name in enumerate(names)}).to_numpy()
        return {"method": self.map_settings.method, "n": len(self), "from_cache": from_cache,
                "seconds": round(time.perf_counter() - t, 3), "labels": names,
                "ids": list(range(len(self))),
                "x": np.round(xy[:, 0].astype(np.float64), 5).tolist(),
                "y": np.round(xy[:, 1].astype(np.float64), 5).tolist(),
                "label": codes.astype(int).tolist(),
                "paths": self.index.manifest["path"].astype(str).tolist()}

    # -- description ------------------------------------------------------------------------
    def info(self) -> dict[str, Any]:
        """``SoundIndex.info()`` plus the server's settings."""
        return {**self.index.info(),
                "server": {"map_method": self.map_settings.method,
                           "map_landmarks": self.map_settings.landmarks,
                           "max_upload_bytes": self.max_upload_bytes, "max_k": MAX_K}}
