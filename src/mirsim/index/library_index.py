"""A searchable index of a sound library: load, search, query by audio file, describe, verify.

Distances are those of the index's pipeline (``distance`` in ``index.json``): Euclidean (not
squared), or cosine distances ``1 - cos`` for a model trained on cosine similarity.
A query sound outside the index is embedded on the fly with the index's own pipeline (same
extractor and parameters, same model or standardisation statistics; graph models embed it
inductively against the library, see :mod:`mirsim.models.graph`). A query sound that the index
holds (same content hash, wherever the file lives) uses its stored embedding and is never
returned as its own neighbour.

Instead of a sound, a query can be a prototype (:meth:`SoundIndex.prototype`): the embedding
that stands for a label ("sounds like this class"), either a training class of a prototypical
model (its ``prototypes_``) or a label of the library (the centroid of its sounds).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from mirsim.audio import FileSource, file_sha256
from mirsim.datasets.files import list_audio_files
from mirsim.features.extraction import FeatureCache, extract_features
from mirsim.index import manifest as mf
from mirsim.index.aspects import (ASPECTS_FAISS_FILE, ASPECTS_FILE, MIN_EFFECTIVE_ASPECTS,
                                  AspectSpace, approximate_aspect_search, aspect_distances,
                                  check_aspect_weights, effective_aspects,
                                  exact_aspect_search, parse_aspect_weights)
from mirsim.index.errors import SoundIndexError
from mirsim.index.faiss_backend import configure, require_faiss, search, stored_vectors
from mirsim.index.pipeline import EmbeddingPipeline
from mirsim.index.scan import group_of
from mirsim.index.storage import index_version

if TYPE_CHECKING:
    import pandas as pd

#: Graph libraries up to this size are fully re-embedded by :meth:`SoundIndex.verify`.
VERIFY_GRAPH_LIMIT = 20_000


@dataclass
class Neighbour:
    """One search result."""

    rank: int
    path: str
    relpath: str
    distance: float
    label: str
    group: str
    #: for an aspect query: the cosine distance of each aspect (unweighted)
    aspect_distances: dict[str, float] | None = None


@dataclass
class QueryResult:
    """Neighbours of one query sound.

    ``in_index`` tells whether the sound itself is in the index (then its stored embedding was
    used and it was left out of the results).
    """

    query: str
    in_index: bool
    sha256: str
    group: str | None
    results: list[Neighbour] = field(default_factory=list)
    distance: str = "euclidean"
    #: for a prototype query: ``{"label", "source", "n_items"}`` (see :meth:`SoundIndex.prototype`)
    prototype: dict[str, Any] | None = None
    #: for an aspect query: ``{"weights": {aspect: weight}, "search": "exact" | "approximate"}``
    aspects: dict[str, Any] | None = None

    def to_json(self) -> dict[str, Any]:
        """``{"query", "distance", "results": [{"path", "distance", "label", ...}], ...}``
        (and ``"prototype"`` for a prototype query; ``"aspects"`` and each result's
        ``"aspect_distances"`` for an aspect query)."""
        extra = {key: value for key, value in (("prototype", self.prototype),
                                               ("aspects", self.aspects)) if value is not None}
        return {"query": self.query, "distance": self.distance,
                "in_index": self.in_index, **extra,
                "results": [{"path": n.path, "distance": n.distance, "label": n.label,
                             "relpath": n.relpath, "group": n.group, "rank": n.rank,
                             **({"aspect_distances": n.aspect_distances}
                                if n.aspect_distances is not None else {})}
                            for n in self.results]}


@dataclass
class VerifyReport:
    """Outcome of :meth:`SoundIndex.verify`: problems make the index untrustworthy; notes
    do not (e.g. audio files added to the folder since the build)."""

    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    checked: dict[str, int] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.problems

    def to_json(self) -> dict[str, Any]:
        return {"ok": self.ok, **asdict(self)}


class SoundIndex:
    """A sound index directory loaded for searching (see :mod:`mirsim.index.manifest`).

    Use :meth:`build` to create or update one and :meth:`load` to open one.

    Examples
    --------
    >>> import tempfile, soundfile as sf
    >>> lib = Path(tempfile.mkdtemp()); cache = FeatureCache(tempfile.mkdtemp())
    >>> for label, f in (("low", 200), ("low", 210), ("high", 3000), ("high", 3100)):
    ...     (lib / label).mkdir(exist_ok=True)
    ...     sf.write(lib / label / f"{f}.wav", np.sin(2 * np.pi * f * np.arange(8000) / 8000), 8000)
    >>> index = SoundIndex.build(lib, lib.parent / (lib.name + ".index"), feature="mfcc",
    ...                          cache=cache)
    >>> hit = index.query_audio(lib / "low" / "200.wav", k=1, cache=cache).results[0]
    >>> hit.relpath, hit.label
    ('low/210.wav', 'low')
    >>> [n.label for n in index.query_prototype("high", k=2).results]  # the "high" sounds' mean
    ['high', 'high']
    >>> distances, rows = index.search(index.embeddings[:1], k=2, exclude=[[0]])
    >>> rows.shape, index.info()["n_items"], index.verify().ok
    ((1, 2), 4, True)
    """

    def __init__(self, directory: Path, config: dict[str, Any],
                 manifest: dict[str, np.ndarray], faiss_index, build_report: dict[str, Any] | None = None, root: Path | None = None,
                 version: str | None = None):
        self.directory = directory
        #: Which build of ``directory`` this is (:func:`mirsim.index.storage.index_version`).
        self.version = version
        self.config = config
        #: The manifest's columns (:func:`~mirsim.index.manifest.read_manifest` with
        #: ``as_frame=False``; :attr:`manifest` is the same as a DataFrame).
        self.columns = manifest
        self._manifest: pd.DataFrame | None = None
        self.faiss_index = faiss_index
        self.build_report = build_report or {}
        self.root = Path(root) if root is not None else Path(config["root"])
        self._pipeline: EmbeddingPipeline | None = None
        self._embeddings: np.ndarray | None = None
        self._rows_by_hash: dict[str, list[int]] | None = None
        self._aspect_rows: np.ndarray | None = None
        self._aspect_faiss: Any = None

    # -- construction -----------------------------------------------------------------------
    @classmethod
    def build(cls, root: str | Path, out: str | Path, **options: Any) -> SoundIndex:
        """Build (or update) the index of ``root`` into ``out`` and load it; ``options`` are
        those of :func:`mirsim.index.build.build_index`."""
        from mirsim.index.build import build_index

        build_index(root, out, **options)
        return cls.load(out)

    @classmethod
    def load(cls, directory: str | Path, root: str | Path | None = None) -> SoundIndex:
        """Open an index directory; ``root`` overrides where the library files now live."""
        directory = Path(directory)
        if not directory.is_dir():
            raise SoundIndexError(f"{directory}: no such index directory")
        missing = [n for n in (*mf.REQUIRED_FILES, mf.MODEL_DIR) if not (directory / n).exists()]
        if mf.CONFIG_FILE in missing:
            raise SoundIndexError(f"{directory}: not a mirsim sound index ({mf.CONFIG_FILE} missing)")
        if missing:
            raise SoundIndexError(f"{directory}: incomplete index ({', '.join(missing)} missing)")
        version = index_version(directory)  # before reading: a newer build is then noticed
        config = _read_json(directory / mf.CONFIG_FILE)
        if config.get("format") != mf.FORMAT:
            raise SoundIndexError(f"{directory}: not a mirsim sound index")
        if int(config.get("format_version", 0)) > mf.FORMAT_VERSION:
            raise SoundIndexError(f"{directory}: index format {config['format_version']} is "
                                  f"newer than this mirsim reads ({mf.FORMAT_VERSION}); upgrade")
        manifest = mf.read_manifest(directory / mf.MANIFEST_FILE, as_frame=False)
        faiss = require_faiss()
        try:
            index = faiss.read_index(str(directory / mf.FAISS_FILE))
        except RuntimeError as exc:
            raise SoundIndexError(f"{directory / mf.FAISS_FILE}: not a readable FAISS index "
                                  f"({str(exc).strip().splitlines()[0][:120]})") from None
        configure(index, config.get("index_params", {}))
        report_path = directory / mf.REPORT_FILE
        report = _read_json(report_path) if report_path.is_file() else {}
        return cls(directory, config, manifest, index, report, root, version)

    # -- basic properties -------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.columns["path"])

    @property
    def manifest(self) -> pd.DataFrame:
        """The manifest as a pandas DataFrame (made on first use: searching does not need
        pandas, see :attr:`columns`)."""
        if self._manifest is None:
            self._manifest = mf.manifest_frame(self.columns)
        return self._manifest

    def __repr__(self) -> str:
        return (f"SoundIndex({str(self.directory)!r}, n={len(self)}, "
                f"model={self.config['model_id']!r}, type={self.config['index_type']!r})")

    @property
    def dim(self) -> int:
        """Embedding dimension."""
        return int(self.config["embedding_dim"])

    @property
    def distance(self) -> str:
        """``euclidean`` or ``cosine`` (indexes built before mirsim recorded it: Euclidean)."""
        recorded = self.config.get("distance", "euclidean")
        return recorded if recorded in ("euclidean", "cosine") else "euclidean"

    @property
    def pipeline(self) -> EmbeddingPipeline:
        """Extractor and model that embed query sounds (loaded on first use)."""
        if self._pipeline is None:
            self._pipeline = EmbeddingPipeline.from_index(self.directory, self.config)
        return self._pipeline

    @property
    def embeddings(self) -> np.ndarray:
        """Stored embeddings, ``(len(self), dim)``, memory-mapped."""
        if self._embeddings is None:
            self._embeddings = np.load(self.directory / mf.EMBEDDINGS_FILE, mmap_mode="r")
        return self._embeddings

    @property
    def aspect_space(self) -> AspectSpace | None:
        """The aspects of the index's model (:mod:`mirsim.index.aspects`), ``None`` for an
        index without."""
        entry = self.config.get("aspects")
        return AspectSpace.from_config(entry) if entry else None

    @property
    def aspect_rows(self) -> np.ndarray:
        """Stored aspects, ``(len(self), width)``, memory-mapped (see :attr:`aspect_space`)."""
        self._require_aspects()
        if self._aspect_rows is None:
            try:
                self._aspect_rows = np.load(self.directory / ASPECTS_FILE, mmap_mode="r")
            except (OSError, ValueError) as exc:
                raise SoundIndexError(f"{self.directory / ASPECTS_FILE}: unreadable "
                                      f"({exc})") from None
        return self._aspect_rows

    def _require_aspects(self) -> AspectSpace:
        space = self.aspect_space
        if space is None:
            raise SoundIndexError(f"{self.directory}: this index has no aspects (its model, "
                                  f"{self.config.get('model')}, has no sub-spaces; build it "
                                  f"with --run of a conditional model's run, e.g. csn, or "
                                  f"of a `reproduce per-instrument` run)")
        return space

    def rows_of_hash(self, sha256: str) -> list[int]:
        """Rows whose sound has this content hash (copies of one sound share it)."""
        if self._rows_by_hash is None:
            self._rows_by_hash = {}
            for i, h in enumerate(self.columns["sha256"]):
                self._rows_by_hash.setdefault(h, []).append(i)
        return self._rows_by_hash.get(sha256, [])

    # -- searching --------------------------------------------------------------------------
    def search(self, embeddings: np.ndarray, k: int = 10,
               exclude: Sequence[Sequence[int]] | None = None) -> tuple[np.ndarray, np.ndarray]:
        """The ``k`` nearest indexed sounds of each embedding.

        Parameters
        ----------
        embeddings : numpy.ndarray
            ``(n_queries, dim)`` (or one ``(dim,)`` vector).
        k : int
            Neighbours per query.
        exclude : sequence of sequences of int, optional
            Rows never returned for each query (e.g. the query itself).

        Returns
        -------
        distances : numpy.ndarray
            ``(n_queries, k)`` Euclidean (not squared) distances, ``inf`` where fewer than
            ``k`` sounds are available.
        rows : numpy.ndarray
            ``(n_queries, k)`` manifest rows, -1 where missing.
        """
        q = np.atleast_2d(np.asarray(embeddings, dtype=np.float32))
        if q.shape[1] != self.dim:
            raise SoundIndexError(f"query embeddings have {q.shape[1]} dimensions, the index "
                                  f"{self.dim}")
        if k < 1:
            raise SoundIndexError(f"k must be at least 1 (got {k})")
        exclude = [set(map(int, e)) for e in exclude] if exclude is not None else [set()] * len(q)
        if len(exclude) != len(q):
            raise SoundIndexError("exclude needs one entry per query")
        extra = max((len(e) for e in exclude), default=0)
        dist, rows = search(self.faiss_index, q, min(k + extra, len(self)))
        out_d = np.full((len(q), k), np.inf, dtype=np.float32)
        out_r = np.full((len(q), k), -1, dtype=np.int64)
        for i in range(len(q)):
            keep = [j for j, r in enumerate(rows[i]) if r >= 0 and r not in exclude[i]][:k]
            out_d[i, :len(keep)], out_r[i, :len(keep)] = dist[i, keep], rows[i, keep]
        return out_d, out_r

    def search_aspects(self, query: np.ndarray, weights: str | dict[str, float], k: int = 10,
                       exclude: Sequence[int] = ()) -> tuple[np.ndarray, np.ndarray,
                                                             np.ndarray, dict[str, Any]]:
        """The ``k`` indexed sounds nearest to one query by the weighted sum of its aspects'
        cosine distances (:func:`~mirsim.index.aspects.aspect_distances`).

        Parameters
        ----------
        query : numpy.ndarray
            ``(width,)`` the query's aspects (a stored row, or
            ``aspect_space.embed(embedding)``).
        weights : str or dict
            ``"tempo=1,key=0.5"`` or ``{"tempo": 1, "key": 0.5}`` (aspects not named weigh 0).
        k : int
        exclude : sequence of int
            Rows never returned.

        Returns
        -------
        distances, rows, per_aspect, about
            ``(n,)`` weighted distances, ``(n,)`` rows (nearest first; ``n <= k``),
            ``(n, K)`` each aspect's cosine distance, and ``{"weights", "search"}``.

        Raises
        ------
        SoundIndexError
            No aspects in the index, bad weights (one line listing the aspects), bad ``k``.
        """
        space = self._require_aspects()
        w = (check_aspect_weights(parse_aspect_weights(weights, space.names), space.names)
             if isinstance(weights, str) else check_aspect_weights(weights, space.names))
        if k < 1:
            raise SoundIndexError(f"k must be at least 1 (got {k})")
        rows, excluded = self.aspect_rows, set(map(int, exclude))
        approximate = (self.config["aspects"].get("index_type", "flat") != "flat"
                       and effective_aspects(w) >= MIN_EFFECTIVE_ASPECTS)
        if approximate:
            found = approximate_aspect_search(query, rows, space, w, k, self._aspect_index(),
                                              excluded)
        else:
            found = exact_aspect_search(query, rows, space, w, k, excluded)
        total, per = aspect_distances(query, np.asarray(rows[found]), space, w)
        about = {"weights": dict(zip(space.names, w.tolist())),
                 "search": "approximate" if approximate else "exact"}
        return total, found, per, about

    def _aspect_index(self):
        if self._aspect_faiss is None:
            path = self.directory / ASPECTS_FAISS_FILE
            try:
                self._aspect_faiss = require_faiss().read_index(str(path))
            except RuntimeError as exc:
                raise SoundIndexError(f"{path}: not a readable FAISS index "
                                      f"({str(exc).strip().splitlines()[0][:120]})") from None
            configure(self._aspect_faiss, self.config["aspects"].get("index_params", {}))
        return self._aspect_faiss

    def query_aspects(self, path: str | Path, weights: str | dict[str, float], k: int = 10,
                      exclude_same_group: bool = False,
                      cache: FeatureCache | None = None) -> QueryResult:
        """Like :meth:`query_audio`, ranked by the weighted sum of the aspects' distances
        (:meth:`search_aspects`); a sound of the index uses its stored aspects."""
        space = self._require_aspects()
        vector, sha, rows = self.embed_audio(path, cache)
        query = (np.asarray(self.aspect_rows[rows[0]]) if rows else space.embed(vector)[0])
        group = self._group_of_query(Path(path), rows)
        excluded = self._excluded(rows, group if exclude_same_group else None)
        dist, found, per, about = self.search_aspects(query, weights, k, excluded)
        return QueryResult(str(path), bool(rows), sha, group,
                           self.neighbours(dist, found, per), "cosine", aspects=about)

    def neighbours(self, distances: np.ndarray, rows: np.ndarray,
                   per_aspect: np.ndarray | None = None) -> list[Neighbour]:
        """Manifest records of one query's result rows (missing results dropped), with
        each aspect's distance when ``per_aspect`` (``(n, K)``) is given."""
        paths, labels, groups = (self.columns[c] for c in ("path", "label", "group"))
        names = self.aspect_space.names if per_aspect is not None else ()
        return [Neighbour(rank + 1, str(self.root / paths[r]), str(paths[r]),
                          round(float(d), 6), str(labels[r]), str(groups[r]),
                          None if per_aspect is None else
                          {n: round(float(v), 6) for n, v in zip(names, per_aspect[rank])})
                for rank, (d, r) in enumerate(zip(distances, rows)) if r >= 0]

    def _excluded(self, rows: list[int], group: str | None) -> set[int]:
        """Rows a query leaves out: its own copies, and its ``group`` when given."""
        excluded = set(rows)
        if group is not None:
            excluded |= set(np.flatnonzero(self.columns["group"] == group).tolist())
        return excluded

    def embed_audio(self, path: str | Path, cache: FeatureCache | None = None
                    ) -> tuple[np.ndarray, str, list[int]]:
        """Embedding of a sound file, its content hash and the index rows holding it.

        A sound already in the index gets its stored embedding; another is analysed with the
        index's extractor and embedded with its model.

        Raises
        ------
        AudioError
            The file is missing or cannot be used as audio (the message names it).
        """
        source = FileSource(path)
        sha = source.key
        rows = self.rows_of_hash(sha)
        if rows:
            return np.array(self.embeddings[rows[0]], dtype=np.float32), sha, rows
        pipeline = self.pipeline
        result = extract_features([source], pipeline.extractor, cache=cache, on_error="raise")
        return pipeline.embed(result.features)[0], sha, []

    def query_audio(self, path: str | Path, k: int = 10, exclude_same_group: bool = False,
                    cache: FeatureCache | None = None) -> QueryResult:
        """The ``k`` indexed sounds nearest to the sound file ``path``.

        Parameters
        ----------
        path : str or Path
            A sound file, in the library or not.
        k : int
            Number of neighbours.
        exclude_same_group : bool
            Also leave out sounds of the query's group (its folder with the default
            ``group_by``; known when the sound is in the index or lies inside the library
            folder).
        cache : FeatureCache, optional
            Feature cache for sounds outside the index.
        """
        vector, sha, rows = self.embed_audio(path, cache)
        group = self._group_of_query(Path(path), rows)
        excluded = self._excluded(rows, group if exclude_same_group else None)
        dist, found = self.search(vector[None, :], k, [excluded])
        return QueryResult(str(path), bool(rows), sha, group, self.neighbours(dist[0], found[0]),
                           self.distance)

    def prototype(self, label: str) -> tuple[np.ndarray, dict[str, Any]]:
        """The embedding that stands for ``label``, and what it is.

        ``label`` is one of the training classes of the index's model, when that model keeps
        prototypes (a ``prototypical`` model's ``prototypes_``: the mean training embedding of
        each class); otherwise a label of the library: the centroid of the library's
        embeddings with that label, in the index's distance (for cosine, the normalised mean
        of the normalised embeddings; :func:`mirsim.evaluation.metrics.class_centroids`).
        A label that is both is the model's.

        Returns
        -------
        vector : numpy.ndarray
            ``(dim,)`` float32, comparable with the indexed embeddings.
        about : dict
            ``{"label", "source": "model" | "library", "n_items"}`` (``n_items``: the library
            sounds averaged; ``None`` for a model's prototype).

        Raises
        ------
        UnknownNameError
            ``label`` is neither (one line listing the valid labels).
        """
        from mirsim.errors import UnknownNameError
        from mirsim.evaluation.metrics import class_centroids

        model = self.pipeline.model
        classes = ([str(c) for c in model.classes_] if hasattr(model, "prototypes_") else [])
        if label in classes:
            vector = np.asarray(model.prototypes_[classes.index(label)], dtype=np.float32)
            if vector.shape != (self.dim,):
                raise SoundIndexError(f"the model's prototypes have {vector.shape[-1]} "
                                      f"dimensions, the index {self.dim}")
            return vector, {"label": label, "source": "model", "n_items": None}
        labels = self.columns["label"].astype(str)
        rows = np.flatnonzero(labels == label)
        if len(rows) == 0:
            raise UnknownNameError("prototype label", label, set(labels) | set(classes))
        _, centroid = class_centroids(np.asarray(self.embeddings[rows]), labels[rows],
                                      self.distance)
        return (centroid[0].astype(np.float32),
                {"label": label, "source": "library", "n_items": int(len(rows))})

    def query_prototype(self, label: str, k: int = 10) -> QueryResult:
        """The ``k`` indexed sounds nearest to the prototype of ``label`` (:meth:`prototype`);
        the result's ``prototype`` says what the prototype is."""
        vector, about = self.prototype(label)
        dist, found = self.search(vector[None, :], k)
        return QueryResult(f"prototype of '{label}'", False, "", None,
                           self.neighbours(dist[0], found[0]), self.distance, about)

    def _group_of_query(self, path: Path, rows: list[int]) -> str | None:
        if rows:
            return str(self.columns["group"][rows[0]])
        try:
            rel = path.resolve().relative_to(self.root).as_posix()
        except ValueError:
            return None
        return group_of(rel, self.config.get("group_by", "folder"))

    # -- description and checks -------------------------------------------------------------
    def info(self) -> dict[str, Any]:
        """Counts, labels, pipeline, index type, size on disk and build date (a dict)."""
        labels = self.manifest["label"].value_counts().sort_index()
        size = sum(p.stat().st_size for p in self.directory.rglob("*") if p.is_file())
        c = self.config
        return {"index": str(self.directory), "root": str(self.root), "n_items": len(self),
                "n_labels": int(len(labels)), "n_groups": int(self.manifest["group"].nunique()),
                "labels": {str(k): int(v) for k, v in labels.items()},
                "total_duration_seconds": round(float(np.nansum(self.manifest["duration"])), 3),
                "feature": c["feature"], "feature_params": c["feature_params"],
                "feature_identity": c["feature_identity"], "model": c["model"],
                "model_id": c["model_id"], "run_dir": c.get("run_dir"),
                "embedding_dim": self.dim, "distance": self.distance,
                "index_type": c["index_type"], "index_params": c["index_params"],
                "aspects": list(c.get("aspects", {}).get("names", [])),
                "instruments": list((c.get("per_instrument") or {}).get("aspects", [])),
                "size_bytes": int(size), "built_at": c["built_at"],
                "mirsim_version": c["mirsim_version"],
                "n_skipped_at_build": int(self.build_report.get("n_skipped", 0))}

    def verify(self, check_files: bool = True,
               progress: Callable[[str, int, int], None] | None = None) -> VerifyReport:
        """Check that manifest, files on disk, stored features and embeddings, model and FAISS
        index agree.

        Parameters
        ----------
        check_files : bool
            Also hash the library files still on disk and compare with the manifest
            (missing or changed files are problems; audio files not in the index are notes).
        progress : callable, optional
            ``progress(stage, done, total)``.
        """
        report = VerifyReport()
        arrays = self._verify_arrays(report)
        if arrays is not None:
            self._verify_faiss(arrays[1], report)
            self._verify_model(*arrays, report)
            self._verify_aspects(arrays[1], report)
        if check_files:
            self._verify_files(report, progress)
        return report

    def _verify_arrays(self, report: VerifyReport):
        n, c = len(self), self.config
        try:
            X = np.load(self.directory / mf.FEATURES_FILE, mmap_mode="r")
            E = np.load(self.directory / mf.EMBEDDINGS_FILE, mmap_mode="r")
        except (OSError, ValueError) as exc:
            report.problems.append(f"stored arrays unreadable ({exc})")
            return None
        expect = {"manifest rows": n, "index.json n_items": c.get("n_items"),
                  "features rows": len(X), "embeddings rows": len(E),
                  "FAISS vectors": int(self.faiss_index.ntotal)}
        if len(set(expect.values())) != 1:
            counts = ", ".join(f"{k} {v}" for k, v in expect.items())
            report.problems.append(f"row counts disagree: {counts}")
        if E.ndim != 2 or E.shape[1] != self.dim or self.faiss_index.d != self.dim:
            report.problems.append(f"embedding dimension disagrees: index.json {self.dim}, "
                                   f"embeddings {E.shape[1:]}, FAISS {self.faiss_index.d}")
        if X.ndim != 2 or X.shape[1] != c.get("feature_dim"):
            report.problems.append(f"feature dimension disagrees: index.json "
                                   f"{c.get('feature_dim')}, features {X.shape[1:]}")
        dup = self.manifest["path"][self.manifest["path"].duplicated()]
        if len(dup):
            report.problems.append(f"manifest lists {len(dup)} path(s) twice, e.g. {dup.iloc[0]}")
        for name, A in (("features", X), ("embeddings", E)):
            if not all(np.isfinite(A[s:s + 65536]).all() for s in range(0, len(A), 65536)):
                report.problems.append(f"stored {name} contain NaN or infinity")
        report.checked["rows"] = n
        return (X, E) if not report.problems else None

    def _verify_aspects(self, E: np.ndarray, report: VerifyReport) -> None:
        """The stored aspects are those the recorded sub-spaces give of the embeddings."""
        space = self.aspect_space
        if space is None:
            return
        try:
            A = self.aspect_rows
        except SoundIndexError as exc:
            report.problems.append(str(exc))
            return
        if A.shape != (len(E), space.width):
            report.problems.append(f"stored aspects have shape {A.shape}, expected "
                                   f"{(len(E), space.width)}")
            return
        for s in range(0, len(E), 65536):
            gap = np.abs(space.embed(E[s:s + 65536]) - A[s:s + 65536]).max(initial=0.0)
            if gap > 1e-5:
                report.problems.append(f"stored aspects differ from the sub-spaces of the "
                                       f"stored embeddings (gap {gap:.2g} from row {s})")
                return
        report.checked["aspect_rows"] = len(E)

    def _verify_faiss(self, E: np.ndarray, report: VerifyReport) -> None:
        for s in range(0, len(E), 65536):
            stop = min(len(E), s + 65536)
            diff = np.abs(stored_vectors(self.faiss_index, s, stop) - E[s:stop]).max(axis=1)
            bad = np.flatnonzero(diff > 1e-6)
            if len(bad):
                report.problems.append(f"FAISS index differs from the stored embeddings "
                                       f"({len(bad)}+ rows, first: row {s + bad[0]}, "
                                       f"{self.manifest.at[s + bad[0], 'path']})")
                return
        report.checked["faiss_vectors"] = len(E)

    def _verify_model(self, X: np.ndarray, E: np.ndarray, report: VerifyReport) -> None:
        try:
            pipeline = self.pipeline
        except Exception as exc:  # noqa: BLE001 - reported, not raised
            report.problems.append(f"model unusable ({exc})")
            return
        model = pipeline.model
        if pipeline.is_graph:
            ref = model.reference_.numpy()
            standardised = (np.asarray(X) - model.mean_) / model.scale_
            if ref.shape != X.shape or not np.allclose(ref, standardised, atol=1e-5):
                report.problems.append("the graph model's reference set is not the indexed library")
                return
            if len(X) > VERIFY_GRAPH_LIMIT:
                report.notes.append(f"graph embeddings not recomputed (more than "
                                    f"{VERIFY_GRAPH_LIMIT} items)")
                return
            again, rows = model.embed_reference(), np.arange(len(X))
        else:
            rows = np.sort(np.random.default_rng(0).choice(len(X), min(len(X), 256), replace=False))
            again = model.transform(np.asarray(X[rows]))
        scale = float(np.abs(E[rows]).max()) or 1.0
        gap = float(np.abs(again - E[rows]).max()) / scale
        if gap > 1e-4:
            report.problems.append(f"stored embeddings do not match the model applied to the "
                                   f"stored features (relative gap {gap:.2g})")
        report.checked["embeddings_recomputed"] = len(rows)

    def _verify_files(self, report: VerifyReport, progress) -> None:
        m, n = self.manifest, len(self)
        missing, changed = [], []
        for i, (rel, sha) in enumerate(zip(m["path"], m["sha256"])):
            path = self.root / rel
            if not path.is_file():
                missing.append(rel)
            else:
                try:
                    if file_sha256(path) != sha:
                        changed.append(rel)
                except OSError as exc:
                    missing.append(f"{rel} (cannot read: {exc.strerror or exc})")
            if progress and (i + 1 == n or (i + 1) % 64 == 0):
                progress("verify", i + 1, n)
        for what, items in (("missing from the library folder", missing),
                            ("changed since the build", changed)):
            report.problems += [f"{what}: {rel}" for rel in items]
        report.checked["files_hashed"] = n - len(missing)
        if self.root.is_dir():
            indexed = set(m["path"]) | {s["path"] for s in self.build_report.get("skipped", [])}
            songs = list_audio_files(self.root)
            if self.config.get("model") == "per-instrument":  # a track's stems: its mix
                from mirsim.features.per_instrument import is_slakh_stem

                songs = [p for p in songs if not is_slakh_stem(p)]
            new = [p.relative_to(self.root).as_posix() for p in songs]
            new = [p for p in new if p not in indexed]
            if new:
                report.notes.append(f"{len(new)} audio file(s) in the folder are not in the "
                                    f"index (added since the build; rebuild to include them), "
                                    f"e.g. {new[0]}")


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise SoundIndexError(f"{path}: unreadable ({exc})") from None
    if not isinstance(data, dict):
        raise SoundIndexError(f"{path}: not a JSON object")
    return data

