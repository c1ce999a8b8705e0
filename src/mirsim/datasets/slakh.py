"""Songs in Slakh2100's layout: write them, and read them (mirsim's or a real Slakh2100 or
babyslakh folder) grouped into the instruments of Hashizume et al.

A track is a folder::

    TrackNNNNN/
        mix.flac            the mix
        stems/Snn.flac      one rendered stem each
        MIDI/Snn.mid        the MIDI of each stem
        all_src.mid         the source MIDI file
        metadata.yaml       per stem: inst_class, program_num, is_drum, midi_program_name...

Slakh2100 itself keeps its tracks in ``train/``, ``validation/``, ``test/`` (and ``omitted/``)
below its root, babyslakh directly below it, with ``.wav`` instead of ``.flac`` in the 16 kHz
edition; :func:`track_dirs` finds them either way. A stem without audio (Slakh's
``audio_rendered: false``) is left out.

Stems are grouped as Slakh's instrument classes are (:func:`instrument_group`): ``drums`` =
drum tracks (``is_drum``: MIDI channel 10), ``bass`` = General MIDI programs 32-39, ``piano`` =
0-7, ``guitar`` = 24-31, every other program ``other``.

>>> instrument_group(33, False), instrument_group(0, True), instrument_group(40, False)
('bass', 'drums', 'other')
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from mirsim.artefacts.files import atomic_path, write_bytes_atomic, write_text_atomic
from mirsim.errors import DataError

__all__ = ["GROUPS", "INSTRUMENT_RANGES", "METADATA", "SlakhStem", "SlakhTrack", "group_audio",
           "instrument_group", "read_track", "slakh_collection", "slakh_songs", "stem_metadata",
           "track_dirs",
           "write_track"]

#: Program ranges (General MIDI, 0-based, inclusive) of the melodic instrument groups.
INSTRUMENT_RANGES = {"bass": (32, 39), "piano": (0, 7), "guitar": (24, 31)}
#: Every group, in the order stems are written.
GROUPS = ("drums", "bass", "piano", "guitar", "other")
#: Slakh's ``program_num`` of a drum stem.
DRUM_PROGRAM = 128
METADATA = "metadata.yaml"
MIX = "mix"
AUDIO_SUFFIXES = (".flac", ".wav")


def instrument_group(program: int, is_drum: bool) -> str:
    """The group of a stem: ``drums`` if it is a drum track, else the group whose program
    range (:data:`INSTRUMENT_RANGES`) holds ``program``, else ``other``.

    Examples
    --------
    >>> [instrument_group(p, False) for p in (7, 8, 24, 31, 32, 39, 128)]
    ['piano', 'other', 'guitar', 'guitar', 'bass', 'bass', 'other']
    """
    if is_drum:
        return "drums"
    return next((g for g, (lo, hi) in INSTRUMENT_RANGES.items() if lo <= program <= hi), "other")


@dataclass(frozen=True)
class SlakhStem:
    """One stem of a track, as its metadata describes it."""

    name: str
    program_num: int
    is_drum: bool
    audio: Path
    inst_class: str = ""
    midi_program_name: str = ""

    @property
    def group(self) -> str:
        return instrument_group(self.program_num, self.is_drum)


@dataclass(frozen=True)
class SlakhTrack:
    """A track folder: its stems with audio, its mix and the rest of its metadata."""

    id: str
    path: Path
    mix: Path
    stems: tuple[SlakhStem, ...]
    metadata: dict[str, Any] = field(default_factory=dict)
    split: str | None = None

    def groups(self) -> dict[str, list[SlakhStem]]:
        """The stems with audio of each group that has any."""
        found: dict[str, list[SlakhStem]] = {}
        for stem in self.stems:
            found.setdefault(stem.group, []).append(stem)
        return {g: found[g] for g in GROUPS if g in found}


def stem_metadata(program: int, is_drum: bool, **extra: Any) -> dict[str, Any]:
    """A stem's entry of ``metadata.yaml`` in Slakh's fields (``inst_class`` = the General MIDI
    family, ``program_num`` = 128 for drums), then ``extra`` (mirsim's own fields).

    Examples
    --------
    >>> stem_metadata(33, False)["inst_class"], stem_metadata(0, True)["program_num"]
    ('Bass', 128)
    """
    import pretty_midi

    return {"audio_rendered": True, "midi_saved": True,
            "inst_class": "Drums" if is_drum else pretty_midi.program_to_instrument_class(program),
            "is_drum": bool(is_drum), "program_num": DRUM_PROGRAM if is_drum else int(program),
            "midi_program_name": ("Drums" if is_drum
                                  else pretty_midi.program_to_instrument_name(program)),
            **extra}


def _audio_file(folder: Path, stem: str) -> Path | None:
    found = (folder / f"{stem}{suffix}" for suffix in AUDIO_SUFFIXES)
    return next((p for p in found if p.is_file()), None)


# -- writing ------------------------------------------------------------------------------------
def write_track(path: str | Path, stems: Mapping[str, tuple[dict[str, Any], np.ndarray, bytes]],
                mix: np.ndarray, sample_rate: int, all_src: bytes,
                metadata: Mapping[str, Any]) -> Path:
    """Write a track folder: every stem (``name -> (metadata entry, int16 samples, MIDI
    bytes)``), the mix (int16), ``all_src.mid`` and, last, ``metadata.yaml`` (``metadata``
    plus Slakh's ``audio_dir``, ``midi_dir`` and ``stems``), each file atomically — a folder
    with ``metadata.yaml`` is complete.

    Raises
    ------
    DataError
        Samples that are not int16 (the files hold exactly what is given).
    """
    import soundfile as sf
    import yaml

    path = Path(path)
    for samples in [mix, *(s for _, s, _ in stems.values())]:
        if samples.dtype != np.int16:
            raise DataError(f"a Slakh track is written from int16 samples, got {samples.dtype}")

    def flac(target: Path, samples: np.ndarray) -> None:
        with atomic_path(target) as tmp:
            sf.write(str(tmp), samples, sample_rate, subtype="PCM_16", format="FLAC")

    for name, (_, samples, midi) in stems.items():
        flac(path / "stems" / f"{name}.flac", samples)
        write_bytes_atomic(path / "MIDI" / f"{name}.mid", midi)
    write_bytes_atomic(path / "all_src.mid", all_src)
    flac(path / f"{MIX}.flac", mix)
    doc = {**metadata, "audio_dir": "stems", "midi_dir": "MIDI",
           "stems": {name: entry for name, (entry, _, _) in stems.items()}}
    write_text_atomic(path / METADATA, yaml.safe_dump(doc, sort_keys=False, allow_unicode=True))
    return path


# -- reading ------------------------------------------------------------------------------------
def track_dirs(root: str | Path) -> list[Path]:
    """The track folders (with a ``metadata.yaml``) directly below ``root`` or one level
    further (Slakh2100's ``train/``, ``validation/``...), sorted by path.

    Raises
    ------
    DataError
        ``root`` is not a folder, or holds no track.
    """
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"{root}: no such folder (a Slakh2100-layout folder is needed)")
    found = sorted({p.parent for pattern in (f"*/{METADATA}", f"*/*/{METADATA}")
                    for p in root.glob(pattern)})
    if not found:
        raise DataError(f"{root}: no track folders (TrackNNNNN/{METADATA}) found")
    return found


def read_track(path: str | Path, root: str | Path | None = None) -> SlakhTrack:
    """A track folder's metadata and audio files (stems without audio left out).

    ``split`` is the folder between ``root`` and the track (``train``...), if any.

    Raises
    ------
    DataError
        No readable ``metadata.yaml``, no mix, or a stem entry without ``program_num`` or
        ``is_drum``.
    """
    import yaml

    path = Path(path)
    try:
        doc = yaml.safe_load((path / METADATA).read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise DataError(f"{path / METADATA}: unreadable ({exc})") from None
    if not isinstance(doc, dict):
        raise DataError(f"{path / METADATA}: not a mapping")
    mix = _audio_file(path, MIX)
    if mix is None:
        raise DataError(f"{path}: no mix ({MIX}.flac or {MIX}.wav)")
    audio_dir = path / str(doc.get("audio_dir") or "stems")
    stems = []
    for name, entry in sorted((doc.get("stems") or {}).items()):
        if not isinstance(entry, dict) or "program_num" not in entry or "is_drum" not in entry:
            raise DataError(f"{path / METADATA}: stem {name} needs program_num and is_drum")
        audio = _audio_file(audio_dir, str(name))
        if audio is None or entry.get("audio_rendered") is False:
            continue
        stems.append(SlakhStem(str(name), int(entry["program_num"]), bool(entry["is_drum"]),
                               audio, str(entry.get("inst_class", "")),
                               str(entry.get("midi_program_name", ""))))
    split = None
    if root is not None and path.parent.resolve() != Path(root).resolve():
        split = path.parent.name
    return SlakhTrack(path.name, path, mix, tuple(stems),
                      {k: v for k, v in doc.items() if k != "stems"}, split)


def _read_mono(path: Path, sample_rate: int, seconds: float | None) -> np.ndarray:
    import soundfile as sf

    with sf.SoundFile(str(path)) as f:
        frames = -1 if seconds is None else int(round(seconds * f.samplerate))
        y = f.read(frames, dtype="float32", always_2d=True).mean(axis=1)
        rate = f.samplerate
    if rate != sample_rate:
        import librosa

        y = librosa.resample(y, orig_sr=rate, target_sr=sample_rate)
    return y.astype(np.float32)


def group_audio(track: SlakhTrack, sample_rate: int, seconds: float | None = None
                ) -> dict[str, np.ndarray]:
    """The mix and the sum of each group's stems (mono float32 at ``sample_rate``, the first
    ``seconds`` or all), as ``{"mix", "drums", "bass", ...}`` (groups without stems left
    out)."""
    mix = _read_mono(track.mix, sample_rate, seconds)
    audio = {MIX: mix}
    for group, stems in track.groups().items():
        total = np.zeros(len(mix), dtype=np.float32)
        for stem in stems:
            y = _read_mono(stem.audio, sample_rate, seconds)[:len(mix)]
            total[:len(y)] += y
        audio[group] = total
    return audio


def slakh_songs(root: str | Path, instruments: Sequence[str], sample_rate: int,
                seconds: float | None = None, limit: int | None = None
                ) -> tuple[list[SlakhTrack], list[dict[str, np.ndarray]]]:
    """The tracks below ``root`` where every one of ``instruments`` is heard (at most
    ``limit``, in path order), and their :func:`group_audio`: what
    :mod:`mirsim.experiments.per_instrument` reads (``{"mix", "drums", "bass", ...}`` per
    song).

    An instrument is heard when its stems give at least one segment that is not silent in the
    first ``seconds`` (:func:`~mirsim.datasets.segments.song_segments`: 3 s above -50 dB).

    Raises
    ------
    DataError
        Not a Slakh-layout folder, or no track has every instrument.
    """
    from mirsim.datasets.segments import song_segments

    wrong = [i for i in instruments if i not in GROUPS]
    if wrong:
        raise DataError(f"unknown instrument {wrong[0]!r} (valid: {', '.join(GROUPS)})")
    tracks, songs = [], []
    for path in track_dirs(root):
        if limit is not None and len(tracks) == limit:
            break
        track = read_track(path, root)
        if not set(instruments) <= set(track.groups()):
            continue
        audio = group_audio(track, sample_rate, seconds)
        if all(song_segments(audio[i], sample_rate, max_segments=1) for i in instruments):
            tracks.append(track)
            songs.append(audio)
    if not tracks:
        raise DataError(f"{root}: no track where every one of {', '.join(instruments)} is heard")
    return tracks, songs


def slakh_collection(root: str | Path, track_names: Sequence[str] | None = None,
                     name: str = "multitrack"):
    """The mixes of the tracks below ``root`` (or of ``track_names`` there) as a
    :class:`~mirsim.datasets.collection.Collection`: an item per track, ``label`` and
    ``group`` = the track, ``instruments`` (the groups with stems, comma-separated),
    ``split``, and mirsim's ``source`` (a package, or ``mma``) and ``licence`` where the
    metadata has them."""
    import pandas as pd

    from mirsim.audio import FileSource
    from mirsim.datasets.collection import Collection

    root = Path(root)
    paths = track_dirs(root) if track_names is None else [root / t for t in track_names]
    tracks = [read_track(p, root) for p in paths]
    rows = [{"id": t.id, "label": t.id, "group": t.id, "path": str(t.mix),
             "instruments": ",".join(t.groups()), "split": t.split or "",
             "source": _source_name(t.metadata.get("source")),
             "licence": str(t.metadata.get("licence", ""))} for t in tracks]
    return Collection(name, pd.DataFrame(rows), [FileSource(r["path"]) for r in rows],
                      f"{name}: mixes of {len(rows)} Slakh2100-layout tracks (label = track)")


def _source_name(source: Any) -> str:
    if not isinstance(source, dict):
        return ""
    return str(source.get("package") or source.get("generator") or "")
