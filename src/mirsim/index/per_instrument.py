"""Indexes of songs by instrument: ``mirsim index build DIR --run PER_INSTRUMENT_RUN``.

The feature ``per-instrument`` (:mod:`mirsim.features.per_instrument`) gives every song one
L2-normalised centroid per aspect (``mix``, ``drums``, ``bass``, ``piano``), side by side.
The index's model is :class:`AspectBlocks`: the identity (up to scale), which names those blocks as the
aspects of the index (:mod:`mirsim.index.aspects`). So ``mirsim query INDEX song.wav
--aspect drums`` ranks the songs by the cosine distance of their drums centroids,
``--aspects drums=1,bass=0.5`` by a weighted mix, and the web page's aspect controls work as
for a conditional model; without aspects the whole vector is compared by the cosine, i.e.
every aspect counts equally. In a Slakh-layout library only the mixes are songs: the stems
below ``TrackX/stems/`` are read through their track, not indexed.

>>> blocks = AspectBlocks(("mix", "drums"), (2, 2))
>>> blocks.subspaces_["drums"], blocks.transform(np.ones((1, 4))).shape
(slice(2, 4, None), (1, 4))
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from mirsim.artefacts.files import read_json_object, write_json
from mirsim.index.errors import SoundIndexError

__all__ = ["AspectBlocks", "is_per_instrument_run", "per_instrument_pipeline"]

#: ``model`` of a per-instrument index in ``index.json``.
MODEL_NAME = "per-instrument"


class AspectBlocks:
    """The identity (up to scale) on vectors made of named blocks, each block an aspect (the model of a
    per-instrument index: the feature already holds the embeddings).

    Parameters
    ----------
    names : sequence of str
        The aspects, in the order of their blocks.
    widths : sequence of int
        Columns of each block.

    Examples
    --------
    >>> import tempfile
    >>> m = AspectBlocks(("mix", "bass"), (3, 1))
    >>> m.n_features_in_, m.distance_, m.masks_["bass"].tolist()
    (4, 'cosine', [1.0, 1.0, 1.0, 1.0])
    >>> AspectBlocks.load(m.save(tempfile.mkdtemp())).dimensions_
    ['mix', 'bass']
    """

    name = MODEL_NAME
    distance_ = "cosine"

    def __init__(self, names: Sequence[str], widths: Sequence[int]):
        if len(names) != len(widths) or not names:
            raise SoundIndexError("aspect blocks need one width per name")
        self.dimensions_ = list(names)
        self.widths = [int(w) for w in widths]
        ends = np.cumsum([0, *self.widths])
        self.subspaces_ = {n: slice(int(a), int(b))
                           for n, a, b in zip(names, ends[:-1], ends[1:])}
        self.n_features_in_ = int(ends[-1])
        self.masks_ = {n: np.ones(self.n_features_in_, dtype=np.float32) for n in names}

    def transform(self, X: np.ndarray) -> np.ndarray:
        """``X`` scaled to unit length (float32; the cosine search of the whole vector
        expects unit rows), checked for width. Each block keeps its direction, so the
        aspects are unchanged."""
        from mirsim.evaluation.metrics import prepare_embeddings

        X = np.atleast_2d(np.asarray(X, dtype=np.float32))
        if X.shape[1] != self.n_features_in_:
            raise SoundIndexError(f"per-instrument vectors have {self.n_features_in_} "
                                  f"columns, got {X.shape[1]}")
        return prepare_embeddings(X, "cosine").astype(np.float32)

    def save(self, directory: str | Path) -> Path:
        """Write ``config.json`` (names and widths) into ``directory``."""
        directory = Path(directory)
        write_json(directory / "config.json", {"model": self.name, "aspects": self.dimensions_,
                                               "widths": self.widths})
        return directory

    @classmethod
    def load(cls, directory: str | Path) -> AspectBlocks:
        """Read a directory written by :meth:`save`."""
        config = read_json_object(Path(directory) / "config.json", SoundIndexError)
        try:
            return cls(config["aspects"], config["widths"])
        except (KeyError, TypeError) as exc:
            raise SoundIndexError(f"{directory}: unreadable aspect blocks ({exc})") from None


def is_per_instrument_run(run_dir: str | Path) -> bool:
    """Whether ``run_dir`` was written by ``mirsim reproduce per-instrument``.

    Examples
    --------
    >>> is_per_instrument_run("/no/such/run")
    False
    """
    from mirsim.features.per_instrument import RUN_COMMAND

    path = Path(run_dir) / "config.json"
    if not path.is_file():
        return False
    try:
        return read_json_object(path, SoundIndexError).get("command") == RUN_COMMAND
    except SoundIndexError:
        return False


def per_instrument_pipeline(run_dir: str | Path):
    """The :class:`~mirsim.index.pipeline.EmbeddingPipeline` of a per-instrument run: the
    ``per-instrument`` feature of its models and :class:`AspectBlocks`."""
    from mirsim.errors import MirsimError
    from mirsim.features.per_instrument import PerInstrumentFeature
    from mirsim.index.pipeline import EmbeddingPipeline

    try:
        feature = PerInstrumentFeature(run=str(run_dir))
    except MirsimError as exc:
        raise SoundIndexError(str(exc)) from None
    model = AspectBlocks(feature.aspects, feature.widths)
    digest = hashlib.sha256(feature.identity.encode()).hexdigest()[:12]
    return EmbeddingPipeline(feature.name, feature.get_params(), feature, MODEL_NAME,
                             f"{MODEL_NAME}-{digest}", feature.run, model)


def song_files(files: list, extractor: Any) -> list:
    """The library files that are songs: for the ``per-instrument`` feature, all but the
    stems of Slakh-layout tracks (read through their mix); for any other, all."""
    from mirsim.features.per_instrument import PerInstrumentFeature, is_slakh_stem

    if not isinstance(extractor, PerInstrumentFeature):
        return files
    return [f for f in files if not is_slakh_stem(f.path)]


#: Folder of the cache (below mirsim's cache) holding the stems computed for listening.
STEMS_CACHE = "stems"


def stem_file(song: Path, sha256: str, aspect: str, separator: Any,
              cache_root: Path | None = None) -> Path:
    """A sound file of one aspect of a song, to listen to: the mix itself for ``mix``; for a
    Slakh-layout mix, the track's stem of that instrument (its file when the instrument has
    one stem, else their sum, computed once); for any other song, the mix separated by
    ``separator``, computed once. Computed stems are 16-bit WAV files kept in
    ``cache_root`` (default: ``<mirsim cache>/stems``) under the song's content hash.

    Raises
    ------
    SoundIndexError
        A Slakh-layout track without a stem of ``aspect``, or an aspect that is no
        instrument.

    Examples
    --------
    >>> stem_file(Path("/lib/a.wav"), "ab" * 32, "mix", "hpss")
    PosixPath('/lib/a.wav')
    """
    from mirsim.config import cache_dir
    from mirsim.features.per_instrument import ASPECT_INSTRUMENTS, SAMPLE_RATE, slakh_track_of

    if aspect == "mix":
        return song
    if aspect not in ASPECT_INSTRUMENTS:
        raise SoundIndexError(f"no stem of '{aspect}' (instruments: "
                              f"{', '.join(ASPECT_INSTRUMENTS)})")
    track = slakh_track_of(song)
    if track is not None:
        stems = track.groups().get(aspect, [])
        if not stems:
            raise SoundIndexError(f"{track.id}: the track has no {aspect} stem")
        if len(stems) == 1:
            return stems[0].audio
    folder = Path(cache_root) if cache_root is not None else cache_dir() / STEMS_CACHE
    how = "stems" if track is not None else getattr(separator, "name", separator)
    target = folder / sha256[:2] / f"{sha256}-{how}-{aspect}.wav"
    if not target.is_file():
        _write_stem(target, _stem_signal(song, track, aspect, separator), SAMPLE_RATE)
    return target


def _stem_signal(song: Path, track: Any, aspect: str, separator: Any) -> np.ndarray:
    """The signal of ``aspect``: the sum of a track's stems of it, or the separated mix."""
    from mirsim.audio import load_audio
    from mirsim.datasets.slakh import group_audio
    from mirsim.experiments.per_instrument import separate_songs
    from mirsim.features.per_instrument import SAMPLE_RATE

    if track is not None:
        return group_audio(track, SAMPLE_RATE)[aspect]
    mix = load_audio(song, sr=SAMPLE_RATE, allow_silent=True)
    return separate_songs([{"mix": mix}], SAMPLE_RATE, separator)[0][f"separated-{aspect}"]


def _write_stem(target: Path, signal: np.ndarray, sample_rate: int) -> None:
    import soundfile as sf

    from mirsim.artefacts.files import atomic_path

    peak = float(np.abs(signal).max(initial=0.0))
    y = signal / peak if peak > 1 else signal  # a sum of stems may clip
    with atomic_path(target) as tmp:
        sf.write(str(tmp), np.asarray(y, dtype=np.float32), sample_rate, subtype="PCM_16",
                 format="WAV")
