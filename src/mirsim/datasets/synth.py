"""The ``synth`` library: instrument notes rendered offline from a General MIDI soundfont.

The soundfont is ``TimGM6mb.sf2``, which the PyPI package ``pretty_midi`` ships; notes are
rendered with ``tinysoundfont``. So the library needs nothing but ``pip``: no download, no
audio device.

Structure (see :data:`CATALOGUE`):

* ``label`` = an articulation family (keyboard, mallets, organ, plucked strings, bowed strings,
  brass, reeds, flutes): how the sound is excited and sustained;
* ``group`` = a General MIDI program (e.g. ``Cello``): the instrument identity. Every family has
  several programs, so a model must recognise the family of an instrument it has not seen;
* each program plays ``n_pitches`` notes spread over its plausible range (one drawn at random,
  from ``seed``, in each of ``n_pitches`` equal slices of the range) at each of ``velocities``.
  Loudness follows velocity (no normalisation), as it does in a real sample library.

Each note is held ``note_duration`` seconds, then released, and recorded for ``release`` more
seconds, as mono 16-bit WAV files in one folder per label under ``root``. A note that renders
silent (some presets have no sample at some keys) is replaced by another key of its slice.
``root/manifest.json`` records the rendering parameters: a later call with the same parameters
reuses the files (and renders only missing ones, so an interrupted render resumes); a call with
other parameters renders the library again. Rendering is deterministic: the same parameters give
byte-identical files.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import importlib.util
import json
import os
import re
import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import soundfile as sf

from mirsim.audio import FileSource
from mirsim.config import data_cache_dir
from mirsim.datasets.base import Dataset
from mirsim.datasets.collection import Collection
from mirsim.errors import DataError, MirsimError
from mirsim.params import Anything, Interval, ListOf, estimator, param
from mirsim.registries import DATASETS

#: Bump when rendering changes its output for the same parameters.
RENDER_VERSION = 1

#: Peak amplitude under which a rendered note counts as silent (-60 dBFS).
SILENT_PEAK = 1e-3

#: Peak amplitude above which a note is scaled down so that 16-bit PCM does not clip.
MAX_PEAK = 0.99

MANIFEST = "manifest.json"
SOUNDFONT = "TimGM6mb.sf2"


@dataclass(frozen=True)
class Program:
    """A General MIDI program (0-based number, standard name) and its plausible MIDI key range."""

    number: int
    name: str
    low: int
    high: int


#: Articulation family -> General MIDI programs, in the order ``programs_per_family`` takes them.
CATALOGUE: dict[str, tuple[Program, ...]] = {
    "keyboard": (Program(0, "Acoustic Grand Piano", 36, 96), Program(4, "Electric Piano 1", 36, 96),
                 Program(6, "Harpsichord", 41, 89), Program(7, "Clavinet", 36, 84),
                 Program(2, "Electric Grand Piano", 36, 96)),
    "mallets": (Program(8, "Celesta", 60, 108), Program(11, "Vibraphone", 53, 89),
                Program(12, "Marimba", 45, 96), Program(13, "Xylophone", 65, 108),
                Program(9, "Glockenspiel", 79, 108)),
    "organ": (Program(16, "Drawbar Organ", 36, 96), Program(19, "Church Organ", 24, 96),
              Program(20, "Reed Organ", 48, 89), Program(21, "Accordion", 53, 89),
              Program(17, "Percussive Organ", 36, 96)),
    "plucked-strings": (Program(24, "Acoustic Guitar (nylon)", 40, 83),
                        Program(25, "Acoustic Guitar (steel)", 40, 83),
                        Program(46, "Orchestral Harp", 24, 103), Program(105, "Banjo", 48, 84),
                        Program(107, "Koto", 48, 91)),
    "bowed-strings": (Program(40, "Violin", 55, 103), Program(41, "Viola", 48, 88),
                      Program(42, "Cello", 36, 76), Program(43, "Contrabass", 28, 60),
                      Program(48, "String Ensemble 1", 28, 96)),
    "brass": (Program(56, "Trumpet", 54, 86), Program(57, "Trombone", 40, 72),
              Program(58, "Tuba", 28, 58), Program(60, "French Horn", 34, 77),
              Program(61, "Brass Section", 36, 84)),
    "reeds": (Program(65, "Alto Sax", 49, 80), Program(68, "Oboe", 58, 91),
              Program(70, "Bassoon", 34, 75), Program(71, "Clarinet", 50, 91),
              Program(66, "Tenor Sax", 44, 75)),
    "flutes": (Program(73, "Flute", 60, 96), Program(74, "Recorder", 60, 96),
               Program(75, "Pan Flute", 60, 96), Program(77, "Shakuhachi", 55, 84),
               Program(72, "Piccolo", 74, 108)),
}

_FILE_NAME = re.compile(r"^p\d{3}-[a-z0-9-]+_n\d{3}_v\d{3}\.wav$")


def soundfont_path() -> Path:
    """The General MIDI soundfont shipped inside the ``pretty_midi`` package.

    Raises
    ------
    MirsimError
        ``pretty_midi`` is not installed, or its package holds no soundfont.

    Examples
    --------
    >>> soundfont_path().name
    'TimGM6mb.sf2'
    """
    spec = importlib.util.find_spec("pretty_midi")
    if spec is None or not spec.submodule_search_locations:
        raise MirsimError("the synth library needs the soundfont of pretty_midi: "
                          "pip install pretty_midi")
    path = Path(next(iter(spec.submodule_search_locations))) / SOUNDFONT
    if not path.is_file():
        raise MirsimError(f"{path}: soundfont not found in the installed pretty_midi")
    return path


def render_note(soundfont: bytes, program: int, pitch: int, velocity: int,
                sample_rate: int = 22050, note_duration: float = 1.0,
                release: float = 0.5) -> np.ndarray:
    """One note of a General MIDI program, as a mono float32 waveform.

    The key is held ``note_duration`` seconds, then released and recorded ``release`` seconds
    more. A fresh synthesizer renders every note, so notes never influence each other and the
    output depends on the arguments only.

    Parameters
    ----------
    soundfont : bytes
        Content of an SF2 file (see :func:`soundfont_path`).
    program : int
        General MIDI program, 0-based (0 = Acoustic Grand Piano), bank 0.
    pitch, velocity : int
        MIDI key and velocity (0..127).

    Examples
    --------
    >>> sf2 = soundfont_path().read_bytes()
    >>> y = render_note(sf2, 40, 69, 100, sample_rate=8000, note_duration=0.25, release=0.25)
    >>> y.shape, y.dtype.name, bool(abs(y).max() > 0.01)
    ((4000,), 'float32', True)
    """
    tsf = _tinysoundfont()
    synth = tsf.Synth(samplerate=sample_rate)
    font = synth.sfload(soundfont)
    synth.program_select(0, font, 0, program)
    n_on = int(round(note_duration * sample_rate))
    n_total = int(round((note_duration + release) * sample_rate))
    if not synth.noteon(0, pitch, velocity):
        return np.zeros(n_total, dtype=np.float32)
    held = np.frombuffer(synth.generate(n_on), dtype=np.float32).copy()
    synth.noteoff(0, pitch)
    tail = np.frombuffer(synth.generate(n_total - n_on), dtype=np.float32).copy()
    stereo = np.concatenate([held, tail]).reshape(-1, 2)
    return stereo.mean(axis=1, dtype=np.float32)


def _tinysoundfont() -> Any:
    try:
        import tinysoundfont
    except ImportError as exc:
        raise MirsimError("the synth library needs tinysoundfont: "
                          "pip install --no-deps tinysoundfont") from exc
    return tinysoundfont


def _tinysoundfont_version() -> str:
    _tinysoundfont()  # a clear error if it is missing
    return importlib.metadata.version("tinysoundfont")


@dataclass(frozen=True)
class _Note:
    label: str
    program: Program
    slice_keys: tuple[int, ...]  # candidate keys, in the order they are tried
    velocities: tuple[int, ...]


def _slug(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")


def _file_name(program: Program, pitch: int, velocity: int) -> str:
    return f"p{program.number:03d}-{_slug(program.name)}_n{pitch:03d}_v{velocity:03d}.wav"


def _key_slices(program: Program, n_pitches: int) -> list[np.ndarray]:
    """``n_pitches`` consecutive, non-empty runs of keys covering the program's range."""
    keys = np.arange(program.low, program.high + 1)
    if n_pitches > len(keys):
        raise DataError(f"n_pitches={n_pitches} exceeds the {len(keys)} keys of "
                        f"{program.name} ({program.low}..{program.high})")
    return np.array_split(keys, n_pitches)


def _plan_notes(seed: int, families: Sequence[str], programs_per_family: int, n_pitches: int,
                velocities: Sequence[int]) -> list[_Note]:
    """The notes of the library: one entry per (program, slice of its key range)."""
    notes = []
    for label in families:
        for program in CATALOGUE[label][:programs_per_family]:
            rng = np.random.default_rng([seed, program.number])
            for keys in _key_slices(program, n_pitches):
                order = rng.permutation(keys)
                notes.append(_Note(label, program, tuple(int(k) for k in order),
                                   tuple(int(v) for v in velocities)))
    return notes


def _check_options(families: Sequence[str], programs_per_family: int, n_pitches: int,
                   velocities: Sequence[int]) -> None:
    unknown = [f for f in families if f not in CATALOGUE]
    if unknown:
        raise DataError(f"unknown synth famil{'ies' if len(unknown) > 1 else 'y'} "
                        f"{', '.join(unknown)} (valid: {', '.join(CATALOGUE)})")
    if not families:
        raise DataError("the synth library needs at least one family")
    most = min(len(CATALOGUE[f]) for f in families)
    if not 1 <= programs_per_family <= most:
        raise DataError(f"programs_per_family must be between 1 and {most}")
    if n_pitches < 1 or not velocities:
        raise DataError("n_pitches and the number of velocities must be at least 1")
    if any(not 1 <= int(v) <= 127 for v in velocities) or len(set(velocities)) != len(velocities):
        raise DataError(f"velocities must be distinct MIDI velocities 1..127, got {list(velocities)}")


def load_synth(
    root: str | Path | None = None,
    seed: int = 0,
    *,
    families: Sequence[str] | None = None,
    programs_per_family: int = 4,
    n_pitches: int = 6,
    velocities: Sequence[int] = (40, 80, 120),
    sample_rate: int = 22050,
    note_duration: float = 1.0,
    release: float = 0.5,
    progress: Callable[[int, int], None] | None = None,
) -> Collection:
    """The ``synth`` library (rendered on first use, then read from ``root``).

    With the defaults: 8 families x 4 programs x 6 pitches x 3 velocities = 576 notes of 1.5 s
    at 22.05 kHz (about 39 MB; about 10 s to render on one core).

    Parameters
    ----------
    root : path, optional
        Where the WAV files and ``manifest.json`` go (default
        ``mirsim.config.data_cache_dir("synth")``).
    seed : int
        Chooses the keys played in each slice of every program's range.
    families : sequence of str, optional
        Labels to include (default: all of :data:`CATALOGUE`).
    programs_per_family : int
        Programs (groups) per family, taken in :data:`CATALOGUE` order.
    n_pitches : int
        Notes per program and velocity, spread over the program's range.
    velocities : sequence of int
        MIDI velocities played at every pitch.
    sample_rate, note_duration, release :
        Rendering: sample rate (Hz), seconds the key is held, seconds recorded after release.
    progress : callable, optional
        Called as ``progress(done, total)`` (numbers of notes) while rendering.

    Returns
    -------
    Collection
        Items with ``id``, ``label`` (family), ``group`` (program name), ``program``, ``pitch``
        (MIDI), ``velocity`` and ``path``.

    Raises
    ------
    DataError
        Invalid sizes or family names, or a program whose whole key slice renders silent.
    MirsimError
        ``tinysoundfont`` or the soundfont of ``pretty_midi`` is not installed.

    Examples
    --------
    >>> import tempfile
    >>> c = load_synth(tempfile.mkdtemp(), families=["brass", "flutes"], programs_per_family=2,
    ...                n_pitches=2, velocities=(64,))
    >>> c.summary()
    'synth: 8 items, 2 labels, 4 groups'
    """
    root = Path(root) if root is not None else data_cache_dir("synth")
    families = list(families) if families is not None else list(CATALOGUE)
    velocities = tuple(int(v) for v in velocities)
    _check_options(families, programs_per_family, n_pitches, velocities)
    font_path = soundfont_path()
    soundfont = font_path.read_bytes()
    params = {
        "version": RENDER_VERSION, "seed": int(seed), "families": families,
        "programs_per_family": int(programs_per_family), "n_pitches": int(n_pitches),
        "velocities": list(velocities), "sample_rate": int(sample_rate),
        "note_duration": float(note_duration), "release": float(release),
        "soundfont": font_path.name, "soundfont_sha256": hashlib.sha256(soundfont).hexdigest(),
        "tinysoundfont": _tinysoundfont_version(),
    }
    manifest = _read_manifest(root)
    if manifest is not None and manifest.get("params") == params and manifest.get("complete"):
        items = pd.DataFrame(manifest["items"])
        if all((root / p).is_file() for p in items["path"]):
            return _collection(root, items)
    reuse = manifest is not None and manifest.get("params") == params
    if not reuse:
        _remove_renders(root)
    _write_json(root / MANIFEST, {"params": params, "complete": False, "items": []})
    notes = _plan_notes(seed, families, programs_per_family, n_pitches, velocities)
    render = _Renderer(soundfont, sample_rate, note_duration, release)
    rows: list[dict[str, Any]] = []
    for done, note in enumerate(notes, start=1):
        rows.extend(render.note(root, note))
        if progress is not None:
            progress(done, len(notes))
    _write_json(root / MANIFEST, {"params": params, "complete": True, "items": rows})
    return _collection(root, pd.DataFrame(rows))


@dataclass(frozen=True)
class _Renderer:
    soundfont: bytes
    sample_rate: int
    note_duration: float
    release: float

    def note(self, root: Path, note: _Note) -> list[dict[str, Any]]:
        """Write the files of one planned note (all velocities), trying keys until none is silent."""
        for pitch in note.slice_keys:
            rel = {v: Path(note.label) / _file_name(note.program, pitch, v) for v in note.velocities}
            missing = [v for v in note.velocities if not (root / rel[v]).is_file()]
            # a file of this key from an earlier run (same parameters) means the key was audible
            accepted = len(missing) < len(note.velocities)
            waves = {v: render_note(self.soundfont, note.program.number, pitch, v,
                                    self.sample_rate, self.note_duration, self.release)
                     for v in missing}
            if not accepted and min(float(np.max(np.abs(y))) for y in waves.values()) < SILENT_PEAK:
                continue
            for v, y in waves.items():
                _write_wav(root / rel[v], _unclipped(y), self.sample_rate)
            return [_row(note, pitch, v, rel[v]) for v in note.velocities]
        raise DataError(f"{note.program.name}: every key of {min(note.slice_keys)}.."
                        f"{max(note.slice_keys)} renders silent")


def _row(note: _Note, pitch: int, velocity: int, rel: Path) -> dict[str, Any]:
    return {"id": rel.stem, "label": note.label, "group": note.program.name,
            "program": note.program.number, "pitch": pitch, "velocity": velocity,
            "path": rel.as_posix()}


def _unclipped(y: np.ndarray) -> np.ndarray:
    peak = float(np.max(np.abs(y)))
    return y * np.float32(MAX_PEAK / peak) if peak > MAX_PEAK else y


def _collection(root: Path, items: pd.DataFrame) -> Collection:
    items = items[["id", "label", "group", "program", "pitch", "velocity", "path"]].copy()
    items["path"] = [str(root / p) for p in items["path"]]
    return Collection("synth", items, [FileSource(p) for p in items["path"]],
                      "synth: notes rendered from the General MIDI soundfont shipped with "
                      "pretty_midi (label = articulation family, group = GM program)")


def _read_manifest(root: Path) -> dict[str, Any] | None:
    try:
        return json.loads((root / MANIFEST).read_text("utf-8"))
    except (FileNotFoundError, json.JSONDecodeError, UnicodeDecodeError):
        return None


def _remove_renders(root: Path) -> None:
    """Delete WAV files a render with other parameters left in the label folders."""
    for label in CATALOGUE:
        folder = root / label
        if folder.is_dir():
            for p in folder.iterdir():
                if _FILE_NAME.match(p.name) or p.name.endswith(".part"):
                    p.unlink(missing_ok=True)


def _temp_for(path: Path) -> Path:
    return path.with_name(f".{path.name}.{secrets.token_hex(4)}.part")


def _write_wav(path: Path, y: np.ndarray, sample_rate: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _temp_for(path)
    try:
        sf.write(str(tmp), y, sample_rate, subtype="PCM_16", format="WAV")
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _write_json(path: Path, doc: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _temp_for(path)
    try:
        tmp.write_text(json.dumps(doc, indent=1) + "\n", encoding="utf-8")
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


__all__ = ["CATALOGUE", "Program", "load_synth", "render_note", "soundfont_path"]


@DATASETS.register
@estimator
class SynthDataset(Dataset):
    """The offline instrument library rendered from pretty_midi's General MIDI soundfont."""

    name = "synth"
    root: str | None = param(None, Anything(), "where the rendered files go")
    seed: int = param(0, Interval(int, 0, None), "chooses the keys played")
    families: tuple | None = param(None, Anything(), "articulation families (default: all)")
    programs_per_family: int = param(4, Interval(int, 1, None), "programs of each family")
    n_pitches: int = param(6, Interval(int, 1, None), "notes per program and velocity")
    velocities: tuple = param((40, 80, 120), ListOf(Interval(int, 1, 127), min_len=1),
                              "MIDI velocities")
    sample_rate: int = param(22050, Interval(int, 8000, None), "rate of the files (Hz)")
    note_duration: float = param(1.0, Interval(float, 0, None, closed="neither"),
                                 "seconds each note is held")
    release: float = param(0.5, Interval(float, 0, None), "seconds recorded after release")

    def load(self) -> Collection:
        return load_synth(self.root, self.seed, families=self.families,
                          programs_per_family=self.programs_per_family,
                          n_pitches=self.n_pitches, velocities=tuple(self.velocities),
                          sample_rate=self.sample_rate, note_duration=self.note_duration,
                          release=self.release)
