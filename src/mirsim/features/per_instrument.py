"""Per-instrument song embeddings: a song embedded once per instrument by the metrics of a
``reproduce per-instrument`` run (Hashizume, Li & Toda).

The feature ``per-instrument`` holds the models a ``mirsim reproduce per-instrument`` run
keeps in ``RUN/model/`` (the first trial's metric of each condition,
:class:`~mirsim.models.per_instrument.PerInstrumentModel`), as ``openl3`` holds a pretrained
network. Its vector of a song is the concatenation of one block per **aspect**: ``mix``, then
each instrument the run has a metric for among ``drums``, ``bass``, ``piano`` (the stems a
separator gives; ``guitar`` is no aspect, since no separator gives a guitar stem). A block is
the paper's song centroid: the song's signal for that aspect cut into 3 s segments (50 %
overlap, silent ones dropped: :mod:`mirsim.datasets.segments`), log-mel
(:mod:`mirsim.features.log_mel`), embedded by that aspect's metric, averaged and
L2-normalised.

Where an aspect's signal comes from (:meth:`PerInstrumentFeature.aspect_signals`):

* a **Slakh-layout mix** (``TrackX/mix.flac`` beside ``metadata.yaml`` and ``stems/``): the
  sum of the track's original stems of that instrument (:func:`mirsim.datasets.slakh.group_audio`)
  with the original-stem metric (``drums``);
* **any other file**: its mix separated by the run's separator
  (:func:`mirsim.experiments.per_instrument.separate_songs`) with the separated-stem metric
  (``separated-drums``), or the original-stem metric when the run has none.

A song where an aspect is silent (no drums) gets that block from its silent segments anyway,
so every song has every block. The feature's identity holds the fingerprint of every model
and the separator, so an index built with it is rebuilt when the run's models change. A
Slakh-layout song's cached vector is keyed by its mix and its stems
(:meth:`PerInstrumentFeature.cache_key`), so a copy of the mix alone is separated, not given
the stems' vector. Within one index, a song is its content, though: two files of the same mix
(one with stems, one without) share one row's vector, the first one's.
"""

from __future__ import annotations

import functools
import hashlib
import json
from pathlib import Path
from typing import Any

import numpy as np

from mirsim.errors import MirsimError
from mirsim.features.base import FeatureExtractor
from mirsim.params import Anything, estimator, param
from mirsim.registries import FEATURES

__all__ = ["PerInstrumentFeature", "slakh_track_of", "ASPECT_INSTRUMENTS"]

#: Instruments that can be aspects (those a separator gives), in order.
ASPECT_INSTRUMENTS = ("drums", "bass", "piano")
#: Sample rate of the run's segments (``reproduce per-instrument`` reads songs at 22.05 kHz).
SAMPLE_RATE = 22050
#: The command of the runs this feature reads.
RUN_COMMAND = "reproduce per-instrument"


def slakh_track_of(path: str | Path):
    """The :class:`~mirsim.datasets.slakh.SlakhTrack` of a Slakh-layout mix (a ``mix.flac`` or
    ``mix.wav`` beside a ``metadata.yaml``), or ``None`` for any other file.

    Examples
    --------
    >>> import tempfile
    >>> slakh_track_of(Path(tempfile.mkdtemp()) / "song.wav") is None
    True
    """
    from mirsim.datasets.slakh import METADATA, MIX, read_track

    path = Path(path)
    if path.stem != MIX or not (path.parent / METADATA).is_file():
        return None
    try:
        return read_track(path.parent)
    except MirsimError:
        return None


def is_slakh_stem(path: str | Path) -> bool:
    """Whether ``path`` is a stem of a Slakh-layout track (``TrackX/stems/S00.flac``): a part
    of a song, indexed through its mix.

    Examples
    --------
    >>> is_slakh_stem("/nowhere/Track1/stems/S00.flac")
    False
    """
    from mirsim.datasets.slakh import METADATA

    path = Path(path)
    return path.parent.name == "stems" and (path.parent.parent / METADATA).is_file()


@functools.lru_cache(maxsize=4)
def _run_models(run: str, stamp: tuple) -> tuple[dict[str, Any], dict[str, str], Any]:
    """The models, their fingerprints and the separator of a run (cached while the files of
    its ``model/`` are unchanged: ``stamp``)."""
    from mirsim.artefacts.files import read_json_object
    from mirsim.index.pipeline import model_fingerprint
    from mirsim.models import load_model
    from mirsim.models.per_instrument import CONDITIONS_FILE

    run_dir = Path(run)
    config = read_json_object(run_dir / "config.json", MirsimError)
    if config.get("command") != RUN_COMMAND:
        raise MirsimError(f"{run_dir}: not a `{RUN_COMMAND}` run (its command is "
                          f"{config.get('command')!r})")
    model_dir = run_dir / "model"
    saved = (read_json_object(model_dir / CONDITIONS_FILE, MirsimError)["conditions"]
             if (model_dir / CONDITIONS_FILE).is_file() else [])
    missing = [c for c in config.get("conditions", []) if c not in saved]
    if missing:
        raise MirsimError(
            f"{run_dir}: no saved model of {', '.join(missing)} (model/ keeps a condition's "
            f"first-trial model once it is fitted; a run made by an older mirsim, or one "
            f"whose first trial of these conditions has not run yet, has none: finish it with "
            f"`mirsim reproduce per-instrument --resume` or start a new run)")
    if "mix" not in saved:
        raise MirsimError(f"{run_dir}: the run has no 'mix' condition, which every "
                          f"per-instrument index needs")
    models = {c: load_model(model_dir / c) for c in saved}
    prints = {c: model_fingerprint(model_dir / c) for c in saved}
    from mirsim.separation.separators import run_separator

    separator = run_separator(run_dir, str(config.get("separator") or "hpss"),
                              config.get("separator_params"))
    return models, prints, separator


def _stamp(run: str) -> tuple:
    files = sorted([*(Path(run) / "model").glob("**/*"), *(Path(run) / "separator").glob("*")])
    return tuple((str(p), p.stat().st_mtime_ns, p.stat().st_size) for p in files if p.is_file())


@FEATURES.register
@estimator
class PerInstrumentFeature(FeatureExtractor):
    """Song centroids of the mix and of each instrument, by a per-instrument run's metrics.

    Parameters
    ----------
    run : str
        A ``mirsim reproduce per-instrument`` run directory (with ``model/``).

    Attributes
    ----------
    aspects : tuple of str
        ``mix`` then the instruments (of :data:`ASPECT_INSTRUMENTS`) the run has a metric for.

    Raises
    ------
    MirsimError
        Not such a run, a condition of the run without its saved model, or no ``mix``.

    Examples
    --------
    >>> PerInstrumentFeature(run="/no/such/run")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    mirsim.errors.MirsimError: /no/such/run/config.json: ...
    """

    name = "per-instrument"

    run: str = param("", Anything(), "a `reproduce per-instrument` run directory")
    duration = None  # the whole song (class attributes, not parameters)
    sample_rate = SAMPLE_RATE

    def __post_init__(self) -> None:
        super().__post_init__()
        self.run = str(Path(self.run).expanduser().resolve())
        self._load()

    def _load(self) -> None:
        self.models_, self.fingerprints_, self.separator_ = _run_models(self.run,
                                                                        _stamp(self.run))
        self.separator = self.separator_.name  # what the identity and index.json record
        self.aspects = ("mix", *(x for x in ASPECT_INSTRUMENTS if x in self.models_
                                 or f"separated-{x}" in self.models_))

    def get_params(self) -> dict[str, Any]:
        return {"run": self.run}

    @property
    def identity(self) -> str:
        """Changes with the run's models (their fingerprints), its separator and the aspects."""
        blob = json.dumps({"name": self.name, "v": self.version, "models": self.fingerprints_,
                           "separator": self.separator, "aspects": self.aspects},
                          sort_keys=True)
        return f"{self.name}-{hashlib.sha256(blob.encode()).hexdigest()[:12]}"

    @property
    def widths(self) -> tuple[int, ...]:
        """Columns of each aspect's block."""
        return tuple(int(self.models_[self.model_of(a, True)].embedding_dim)
                     for a in self.aspects)

    def model_of(self, aspect: str, original_stems: bool) -> str:
        """The condition whose metric embeds ``aspect`` of a song with (``True``) or without
        its original stems: ``mix``; ``X`` for an original stem; ``separated-X`` for a
        separated one, or ``X`` when the run has no ``separated-X``."""
        if aspect == "mix":
            return "mix"
        if original_stems and aspect in self.models_:
            return aspect
        return f"separated-{aspect}" if f"separated-{aspect}" in self.models_ else aspect

    def describe(self) -> dict[str, Any]:
        """What an index records of the feature: the aspects, and which metric embeds each
        for a Slakh-layout song (original stems) and for any other (separated stems)."""
        return {"run": self.run, "separator": self.separator, "aspects": list(self.aspects),
                "models": {a: {"original_stems": self.model_of(a, True),
                               "separated": self.model_of(a, False)} for a in self.aspects},
                "fingerprints": self.fingerprints_}

    # -- audio ------------------------------------------------------------------------------
    def load_source(self, source: Any) -> dict[str, Any]:
        """The signals a song needs, read from its file (what feature extraction hands to
        :meth:`extract`): ``{"mix": ..., "stems": {instrument: signal} or None}``."""
        from mirsim.audio import load_audio
        from mirsim.datasets.slakh import group_audio

        path = Path(getattr(source, "path", source.name))
        track = slakh_track_of(path)
        if track is None:
            return {"mix": load_audio(path, sr=self.sample_rate, allow_silent=True),
                    "stems": None}
        audio = group_audio(track, self.sample_rate)
        return {"mix": audio.pop("mix"), "stems": audio}

    def cache_key(self, source: Any) -> str:
        """The key of a song's vector in the feature cache: the mix's content key for a
        plain file; for a Slakh-layout mix, a hash of it and of its stems' names, sizes and
        modification times (the same mix without its stems, or with edited stems, is
        another vector)."""
        track = slakh_track_of(Path(getattr(source, "path", source.name)))
        if track is None:
            return source.key
        h = hashlib.sha256(f"stems:{source.key}".encode())
        for stem in track.stems:
            st = stem.audio.stat()
            h.update(f"|{stem.name}:{stem.group}:{st.st_size}:{st.st_mtime_ns}".encode())
        return h.hexdigest()

    def prepare(self, waveform: Any, sr: int) -> Any:
        if isinstance(waveform, dict):
            return waveform
        return {"mix": super().prepare(waveform, sr), "stems": None}

    def aspect_signals(self, song: dict[str, Any]) -> dict[str, tuple[np.ndarray, str, str]]:
        """``{aspect: (signal, condition of its metric, where the signal came from)}`` of a
        song of :meth:`load_source`; where: ``mix``, ``stems`` or ``separated``."""
        from mirsim.experiments.per_instrument import separate_songs

        mix, stems = song["mix"], song.get("stems")
        out = {"mix": (mix, "mix", "mix")}
        separated = None
        for aspect in self.aspects[1:]:
            if stems is not None and aspect in self.models_:
                signal = stems.get(aspect, np.zeros_like(mix))
                out[aspect] = (signal, aspect, "stems")
                continue
            if separated is None:
                separated = separate_songs([{"mix": mix}], self.sample_rate,
                                           self.separator_)[0]
            out[aspect] = (separated[f"separated-{aspect}"], self.model_of(aspect, False),
                           "separated")
        return out

    def extract(self, y: dict[str, Any]) -> np.ndarray:
        blocks = [self._centroid(signal, condition)
                  for signal, condition, _ in self.aspect_signals(y).values()]
        return np.concatenate(blocks).astype(np.float32)

    def _centroid(self, signal: np.ndarray, condition: str) -> np.ndarray:
        """The L2-normalised mean embedding of the signal's 3 s segments."""
        from mirsim.datasets.segments import SEGMENT_SECONDS, segment_starts, song_segments
        from mirsim.features.log_mel import log_mel_segments

        model = self.models_[condition]
        signal = np.asarray(signal, dtype=np.float32)
        pieces = [p for _, p in song_segments(signal, self.sample_rate)]
        if not pieces:  # silent throughout (or shorter than a segment): every segment counts
            length = int(round(SEGMENT_SECONDS * self.sample_rate))
            padded = np.pad(signal, (0, max(0, length - len(signal))))
            pieces = [padded[s:s + length]
                      for s in segment_starts(len(padded), self.sample_rate)]
        X = log_mel_segments(np.stack(pieces), self.sample_rate, n_mels=int(model.n_mels))
        centroid = np.asarray(model.transform(X), dtype=np.float64).mean(axis=0)
        norm = np.linalg.norm(centroid)
        return (centroid / norm if norm > 0 else centroid).astype(np.float32)
