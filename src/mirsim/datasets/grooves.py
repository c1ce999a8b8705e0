"""The ``grooves`` data set: songs with known genre, instrumentation, tempo and key, made with
Debian's ``mma`` (Musical MIDI Accompaniment) and rendered from General MIDI soundfonts.

Every song is planned from ``seed`` and its number alone (:func:`plan_song`), so a larger
build keeps the songs of a smaller one:

* ``genre`` = the family of the mma groove that accompanies it (:data:`GENRES`: rock, swing,
  latin, country, waltz, funk, ballad, blues; several grooves per family);
* ``instrument`` = an instrumentation (:data:`INSTRUMENTATIONS`): the General MIDI programs of
  the comping (every chord and arpeggio track of the groove), of the bass and of a lead line
  that mirsim adds (chord tones, one or two notes a beat). The groove's own programs are
  replaced, so instrumentation varies independently of genre; the drums stay the groove's;
* ``tempo`` = BPM drawn uniformly from :data:`TEMPO_RANGE` for every genre (independent of it);
* ``key`` = a tonic and mode (``"F# minor"``); the chord progression (:data:`PROGRESSIONS`,
  one chord a bar, repeated) is transposed to it;
* ``soundfont`` = FluidR3 GM or MuseScore General (:data:`SOUNDFONTS`), drawn per song.

mma writes a MIDI file (``midi/<id>.mid``, kept); drums, bass, comping and lead are rendered
apart with ``tinysoundfont``, each scaled to a fixed RMS level (:data:`STEM_LEVELS`), summed
and scaled to a peak of :data:`PEAK`: mono 16-bit FLAC files ``songs/<id>.flac`` of
``duration`` seconds. An item is a song; ``group`` is its id.

``root/manifest.json`` records the parameters and the versions of mma, tinysoundfont and the
soundfonts (SHA-256). A later build with the same parameters reuses every song on disk and
renders only the missing ones (an interrupted build resumes; every file is written
atomically); one with other parameters renders again. Rendering is deterministic: the same
parameters give the same files.

Needs ``apt-get install mma fluid-soundfont-gm musescore-general-soundfont`` (Debian) and
``tinysoundfont``; without them a one-line error says so.
"""

from __future__ import annotations

import importlib.metadata
import math
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import soundfile as sf

from mirsim.artefacts.files import atomic_path, read_json_object, write_bytes_atomic, write_json
from mirsim.audio import FileSource, file_sha256
from mirsim.config import data_cache_dir
from mirsim.datasets.base import Dataset
from mirsim.datasets.collection import Collection
from mirsim.datasets.dimensions import Dimension
from mirsim.errors import DataError, MirsimError
from mirsim.params import Anything, Interval, estimator, param
from mirsim.registries import DATASETS

#: Bump when planning or rendering changes its output for the same parameters.
RENDER_VERSION = 1

INSTALL = "apt-get install mma fluid-soundfont-gm musescore-general-soundfont"

#: Genre (groove family) -> mma grooves of the standard library (all exist in mma 21.09).
GENRES: dict[str, tuple[str, ...]] = {
    "rock": ("50sRock", "Rock128", "8Beat", "SoftRock", "FolkRock", "BasicRock"),
    "swing": ("Swing", "EasySwing", "JazzCombo", "Bebop", "FastSwing"),
    "latin": ("BossaNova", "Samba", "Rhumba", "ChaCha", "Mambo", "Salsa"),
    "country": ("CountrySwing", "BlueGrass", "WesternSwing", "HillCountry", "CountryBlues"),
    "waltz": ("Waltz", "JazzWaltz", "CountryWaltz", "VieneseWaltz"),
    "funk": ("BVFunk", "DSoul", "Strut"),
    "ballad": ("PopBallad", "Ballad", "RockBallad", "PianoBallad"),
    "blues": ("Blues", "SlowBlues", "FastBlues", "ShuffleBoggie"),
}


@dataclass(frozen=True)
class Instrumentation:
    """General MIDI programs (0-based) of a song's comping, bass and lead."""

    name: str
    comping: int
    bass: int
    lead: int


#: The instrumentations a song is given (``instrument`` column = the name).
INSTRUMENTATIONS: tuple[Instrumentation, ...] = (
    Instrumentation("piano-trumpet", comping=0, bass=32, lead=56),         # grand, acoustic bass
    Instrumentation("epiano-flute", comping=4, bass=33, lead=73),          # e-piano, finger bass
    Instrumentation("organ-sax", comping=16, bass=34, lead=65),            # drawbar, pick bass
    Instrumentation("nylon-violin", comping=24, bass=32, lead=40),
    Instrumentation("jazzguitar-vibes", comping=26, bass=35, lead=11),     # fretless bass
    Instrumentation("cleanguitar-synthlead", comping=27, bass=38, lead=80),  # synth bass, square
    Instrumentation("strings-clarinet", comping=48, bass=43, lead=71),     # contrabass
    Instrumentation("brass-oboe", comping=61, bass=58, lead=68),           # tuba
)

#: Roman-numeral progressions (one chord a bar) by mode: (semitones above the tonic, chord).
PROGRESSIONS: dict[str, tuple[tuple[tuple[int, str], ...], ...]] = {
    "major": (((0, ""), (9, "m"), (5, ""), (7, "7")),        # I vi IV V7
              ((0, ""), (5, ""), (7, ""), (0, "")),          # I IV V I
              ((2, "m7"), (7, "7"), (0, "maj7"), (9, "m7")),  # ii7 V7 Imaj7 vi7
              ((0, ""), (7, ""), (9, "m"), (5, ""))),        # I V vi IV
    "minor": (((0, "m"), (5, "m"), (7, "m"), (0, "m")),       # i iv v i
              ((0, "m"), (8, ""), (3, ""), (10, "")),        # i VI III VII
              ((0, "m"), (5, "m"), (10, ""), (3, "")),       # i iv VII III
              ((0, "m"), (8, ""), (5, "m"), (7, "7"))),      # i VI iv V7
}

#: Note names of the 12 pitch classes, as keys and chords are written.
NOTE_NAMES = ("C", "C#", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B")

#: Tempo range (BPM, inclusive) of every genre.
TEMPO_RANGE = (72, 168)

#: Soundfont name -> candidate files (Debian's paths), first existing one used.
SOUNDFONTS: dict[str, tuple[str, ...]] = {
    "fluidr3": ("/usr/share/sounds/sf2/FluidR3_GM.sf2",),
    "musescore": ("/usr/share/sounds/sf3/MuseScore_General_Full.sf3",
                  "/usr/share/sounds/sf3/MuseScore_General.sf3"),
}

#: RMS level (linear) each rendered part is scaled to before the mix.
STEM_LEVELS = {"drums": 0.10, "bass": 0.08, "comping": 0.08, "lead": 0.09}
#: RMS under which a part counts as silent (left out of the mix).
SILENT_RMS = 1e-4
#: Seconds rendered (and discarded) after stopping every voice, between two parts.
SILENCE_SECONDS = 0.5
#: Peak of every song after mixing.
PEAK = 0.9
#: The 14-bit MIDI pitch-bend value of no bend (``pretty_midi`` counts bends from it).
PITCH_BEND_CENTRE = 8192
#: Lowest and highest MIDI key of the lead line.
LEAD_RANGE = (60, 84)

MANIFEST = "manifest.json"


# -- the plan of a song -----------------------------------------------------------------------
@dataclass(frozen=True)
class SongPlan:
    """Everything a song is made from (see :func:`plan_song`)."""

    id: str
    genre: str
    groove: str
    instrumentation: Instrumentation
    tempo: int
    tonic: int
    mode: str
    progression: tuple[tuple[int, str], ...]
    soundfont: str
    seed: int

    @property
    def key(self) -> str:
        return f"{NOTE_NAMES[self.tonic]} {self.mode}"

    def chords(self) -> list[str]:
        """The chord of each bar of the progression, transposed to the key (``["Am", ...]``)."""
        return [NOTE_NAMES[(self.tonic + step) % 12] + kind for step, kind in self.progression]

    def mma_text(self, bars: int) -> str:
        """The mma source of the song: ``bars`` bars of the progression over its groove."""
        chords = self.chords()
        lines = [f"RndSeed {self.seed}", f"Tempo {self.tempo}", f"Groove {self.groove}"]
        lines += [f"{bar} {chords[(bar - 1) % len(chords)]}" for bar in range(1, bars + 1)]
        return "\n".join(lines) + "\n"


def plan_song(seed: int, number: int, soundfonts: Sequence[str] = tuple(SOUNDFONTS)) -> SongPlan:
    """The plan of song ``number`` of the data set of ``seed`` (depends on nothing else).

    Examples
    --------
    >>> a, b = plan_song(0, 7), plan_song(0, 7)
    >>> a == b, a.id, a.genre in GENRES, a.groove in GENRES[a.genre]
    (True, 'song-0007', True, True)
    >>> plan_song(0, 7, soundfonts=["fluidr3"]).soundfont
    'fluidr3'
    """
    rng = np.random.default_rng([seed, number])
    genre = list(GENRES)[int(rng.integers(len(GENRES)))]
    groove = GENRES[genre][int(rng.integers(len(GENRES[genre])))]
    instrumentation = INSTRUMENTATIONS[int(rng.integers(len(INSTRUMENTATIONS)))]
    tempo = int(rng.integers(TEMPO_RANGE[0], TEMPO_RANGE[1] + 1))
    tonic = int(rng.integers(12))
    mode = ("major", "minor")[int(rng.integers(2))]
    progression = PROGRESSIONS[mode][int(rng.integers(len(PROGRESSIONS[mode])))]
    soundfont = list(soundfonts)[int(rng.integers(len(soundfonts)))]
    return SongPlan(f"song-{number:04d}", genre, groove, instrumentation, tempo, tonic, mode,
                    progression, soundfont, int(rng.integers(2**31 - 1)))


# -- tools ------------------------------------------------------------------------------------
def mma_version() -> str:
    """The version ``mma -v`` prints.

    Raises
    ------
    MirsimError
        ``mma`` is not installed (the message gives the ``apt-get`` command).
    """
    exe = shutil.which("mma")
    if exe is None:
        raise MirsimError(f"the grooves data set needs mma and General MIDI soundfonts: {INSTALL}")
    done = subprocess.run([exe, "-v"], capture_output=True, text=True, check=False)
    lines = [ln for ln in (done.stdout + done.stderr).splitlines()
             if ln.strip() and "warning" not in ln.lower()]
    return lines[-1].strip() if lines else "unknown"


def soundfont_files(names: Sequence[str] = tuple(SOUNDFONTS)) -> dict[str, Path]:
    """The soundfont file of each name in :data:`SOUNDFONTS`.

    Raises
    ------
    MirsimError
        A soundfont is not installed (the message gives the ``apt-get`` command), or an
        unknown name.
    """
    found = {}
    for name in names:
        if name not in SOUNDFONTS:
            raise DataError(f"unknown soundfont '{name}' (valid: {', '.join(SOUNDFONTS)})")
        path = next((Path(p) for p in SOUNDFONTS[name] if Path(p).is_file()), None)
        if path is None:
            raise MirsimError(f"the grooves data set needs the soundfont {SOUNDFONTS[name][0]}: "
                              f"{INSTALL}")
        found[name] = path
    return found


def write_midi(plan: SongPlan, duration: float, path: Path) -> Path:
    """Run mma on the song's source, writing its MIDI file to ``path`` (atomically).

    Raises
    ------
    DataError
        mma failed (its message, one line).
    """
    bars = math.ceil(duration * plan.tempo / 60 / 3) + 2  # enough even for 3 beats a bar
    with tempfile.TemporaryDirectory(prefix="mirsim-mma-") as tmp:
        source, midi = Path(tmp) / "song.mma", Path(tmp) / "song.mid"
        source.write_text(plan.mma_text(bars), encoding="utf-8")
        done = subprocess.run([shutil.which("mma") or "mma", str(source), "-f", str(midi)],
                              capture_output=True, text=True, cwd=tmp, check=False)
        if done.returncode != 0 or not midi.is_file():
            said = [ln.strip() for ln in (done.stdout + done.stderr).splitlines()
                    if "error" in ln.lower()]
            raise DataError(f"mma failed on {plan.id} ({plan.groove}): "
                            f"{said[0] if said else 'no MIDI written'}")
        return write_bytes_atomic(path, midi.read_bytes())


# -- rendering --------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Event:
    time: float
    order: int  # at one time: programs and controllers, then note-offs, then note-ons
    channel: int
    kind: str  # "cc", "bend", "off", "on"
    a: int
    b: int


def _stems(midi: Any, plan: SongPlan) -> dict[str, list[Any]]:
    """The instruments of the MIDI file by part, their programs replaced by the song's."""
    import pretty_midi

    stems: dict[str, list[Any]] = {"drums": [], "bass": [], "comping": [], "lead": []}
    for inst in midi.instruments:
        if inst.is_drum:
            stems["drums"].append(inst)
        elif is_bass(inst):
            inst.program = plan.instrumentation.bass
            stems["bass"].append(inst)
        else:
            inst.program = plan.instrumentation.comping
            stems["comping"].append(inst)
    lead = pretty_midi.Instrument(plan.instrumentation.lead, name="lead")
    lead.notes = lead_notes(midi, plan)
    stems["lead"].append(lead)
    return stems


def is_bass(inst: Any) -> bool:
    """A bass track: mma names them ``Bass...`` and ``Walk...``; or a General MIDI bass."""
    name = inst.name.strip().lower()
    return name.startswith(("bass", "walk")) or 32 <= inst.program <= 39


def lead_notes(midi: Any, plan: SongPlan) -> list[Any]:
    """A lead line over the chords: on every beat one chord tone, or two eighth notes, moving
    to a near tone of the bar's chord (deterministic from the plan's seed)."""
    import pretty_midi

    rng = np.random.default_rng([plan.seed, 1])
    beats = midi.get_beats()
    downbeats = list(midi.get_downbeats())
    chords = plan.chords()
    pitch = (LEAD_RANGE[0] + LEAD_RANGE[1]) // 2
    notes = []
    for i, start in enumerate(beats[:-1]):
        bar = max(0, np.searchsorted(downbeats, start, side="right") - 1)
        tones = _chord_tones(chords[bar % len(chords)])
        length = beats[i + 1] - start
        splits = (start, start + length / 2) if rng.random() < 0.35 else (start,)
        for j, onset in enumerate(splits):
            candidates = [p for p in range(LEAD_RANGE[0], LEAD_RANGE[1] + 1)
                          if p % 12 in tones and 0 < abs(p - pitch) <= 7]
            pitch = int(candidates[int(rng.integers(len(candidates)))])
            end = onset + length / len(splits)
            notes.append(pretty_midi.Note(int(rng.integers(80, 105)), pitch, onset,
                                          end - 0.02 * length))
    return notes


def _chord_tones(chord: str) -> set[int]:
    """Pitch classes of a chord written as :meth:`SongPlan.chords` writes it."""
    root = chord[:2] if chord[:2] in NOTE_NAMES else chord[:1]
    kind = chord[len(root):]
    intervals = {"": (0, 4, 7), "m": (0, 3, 7), "7": (0, 4, 7, 10), "m7": (0, 3, 7, 10),
                 "maj7": (0, 4, 7, 11)}[kind]
    return {(NOTE_NAMES.index(root) + i) % 12 for i in intervals}


def _events(instruments: Sequence[Any]) -> tuple[list[_Event], dict[int, Any]]:
    """Events of some instruments, one channel each (drums on 9), and the channel's instrument."""
    melodic = [c for c in range(16) if c != 9]
    channels: dict[int, Any] = {}
    events = []
    for n, inst in enumerate(instruments):
        channel = 9 if inst.is_drum else melodic[n % len(melodic)]
        channels[channel] = inst
        for cc in inst.control_changes:
            events.append(_Event(cc.time, 0, channel, "cc", cc.number, cc.value))
        for bend in inst.pitch_bends:
            events.append(_Event(bend.time, 0, channel, "bend", bend.pitch, 0))
        for note in inst.notes:
            events.append(_Event(note.end, 1, channel, "off", note.pitch, 0))
            events.append(_Event(note.start, 2, channel, "on", note.pitch, note.velocity))
    events.sort(key=lambda e: (e.time, e.order, e.channel, e.a))
    return events, channels


def render_part(synth: Any, font: int, instruments: Sequence[Any], n_samples: int,
                sample_rate: int) -> np.ndarray:
    """Render some MIDI instruments (``pretty_midi``) on a loaded ``tinysoundfont`` synth:
    ``n_samples`` mono float32 samples. The synth is silenced and its channels reset first,
    so the output depends on the arguments only."""
    events, channels = _events(instruments)
    _silence(synth, sample_rate)
    for channel, inst in channels.items():
        bank = 128 if inst.is_drum else 0
        synth.program_select(channel, font, bank, inst.program if not inst.is_drum else 0,
                             is_drums=inst.is_drum)
    blocks, position = [], 0
    for event in events:
        at = min(n_samples, int(round(event.time * sample_rate)))
        if at > position:
            blocks.append(synth.generate(at - position))
            position = at
        if position >= n_samples:
            break
        if event.kind == "on":
            synth.noteon(event.channel, event.a, event.b)
        elif event.kind == "off":
            synth.noteoff(event.channel, event.a)
        elif event.kind == "bend":
            synth.pitchbend(event.channel, event.a + PITCH_BEND_CENTRE)
        else:
            synth.control_change(event.channel, event.a, event.b)
    if position < n_samples:
        blocks.append(synth.generate(n_samples - position))
    _silence(synth, sample_rate)
    stereo = np.frombuffer(b"".join(bytes(b) for b in blocks), dtype=np.float32).reshape(-1, 2)
    return stereo.mean(axis=1, dtype=np.float32)


def _silence(synth: Any, sample_rate: int) -> None:
    """Stop every voice, let the releases die out (discarded) and reset every channel."""
    synth.sounds_off()
    synth.generate(int(sample_rate * SILENCE_SECONDS))
    for channel in range(16):
        synth.control_change(channel, 121, 0)  # reset all controllers
        synth.pitchbend(channel, PITCH_BEND_CENTRE)


def mix(parts: dict[str, np.ndarray]) -> np.ndarray:
    """Scale every part to its RMS level (:data:`STEM_LEVELS`; silent parts left out), sum,
    and scale the sum to a peak of :data:`PEAK`.

    Examples
    --------
    >>> y = mix({"bass": np.ones(4, dtype=np.float32), "lead": np.zeros(4, dtype=np.float32)})
    >>> y.dtype.name, round(float(y.max()), 6)
    ('float32', 0.9)
    """
    total = np.zeros(len(next(iter(parts.values()))), dtype=np.float64)
    for name, y in parts.items():
        rms = float(np.sqrt(np.mean(np.square(y, dtype=np.float64))))
        if rms > SILENT_RMS:
            total += y * (STEM_LEVELS[name] / rms)
    peak = float(np.max(np.abs(total)))
    return (total * (PEAK / peak) if peak > 0 else total).astype(np.float32)


class SoundfontRenderer:
    """Loads each soundfont (a name of ``files``) once and renders parts of songs with it."""

    def __init__(self, files: dict[str, Path], sample_rate: int):
        self.files, self.sample_rate = files, sample_rate
        self._synths: dict[str, tuple[Any, int]] = {}

    def _synth(self, name: str) -> tuple[Any, int]:
        if name not in self._synths:
            from mirsim.datasets.synth import _tinysoundfont

            synth = _tinysoundfont().Synth(samplerate=self.sample_rate)
            self._synths[name] = (synth, synth.sfload(str(self.files[name])))
        return self._synths[name]

    def parts(self, soundfont: str, parts: Mapping[str, Sequence[Any]], n_samples: int
              ) -> dict[str, np.ndarray]:
        """Each part (name -> ``pretty_midi`` instruments) rendered on its own with
        :func:`render_part`: ``n_samples`` mono float32 samples each."""
        synth, font = self._synth(soundfont)
        return {name: render_part(synth, font, insts, n_samples, self.sample_rate)
                for name, insts in parts.items()}


def _render_song(renderer: SoundfontRenderer, plan: SongPlan, midi_path: Path,
                 duration: float) -> np.ndarray:
    import pretty_midi

    midi = pretty_midi.PrettyMIDI(str(midi_path))
    n = int(round(duration * renderer.sample_rate))
    return mix(renderer.parts(plan.soundfont, _stems(midi, plan), n))


# -- the data set -----------------------------------------------------------------------------
DIMENSIONS = (Dimension("genre", "same-label"), Dimension("instrument", "same-label"),
              Dimension("tempo", "tempo"), Dimension("key", "key"))


def _row(plan: SongPlan) -> dict[str, Any]:
    return {"id": plan.id, "label": plan.genre, "group": plan.id, "genre": plan.genre,
            "groove": plan.groove, "instrument": plan.instrumentation.name,
            "tempo": plan.tempo, "key": plan.key, "soundfont": plan.soundfont,
            "path": f"songs/{plan.id}.flac", "midi": f"midi/{plan.id}.mid"}


def _params(seed: int, sample_rate: int, duration: float,
            files: dict[str, Path]) -> dict[str, Any]:
    from mirsim.datasets.synth import _tinysoundfont_version

    return {"version": RENDER_VERSION, "seed": int(seed), "sample_rate": int(sample_rate),
            "duration": float(duration), "mma": mma_version(),
            "tinysoundfont": _tinysoundfont_version(),
            "soundfonts": {name: {"file": path.name, "sha256": file_sha256(path)}
                           for name, path in files.items()}}


def load_grooves(root: str | Path | None = None, songs: int = 200, seed: int = 0, *,
                 duration: float = 30.0, sample_rate: int = 22050,
                 soundfonts: Sequence[str] = tuple(SOUNDFONTS),
                 progress: Callable[[int, int], None] | None = None) -> Collection:
    """The ``grooves`` songs (made on first use, then read from ``root``).

    Parameters
    ----------
    root : path, optional
        Where ``songs/``, ``midi/`` and ``manifest.json`` go (default
        ``mirsim.config.data_cache_dir("grooves")``).
    songs : int
        Number of songs (songs ``0 .. songs-1`` of the seed's plan).
    seed : int
        Chooses every song's genre, groove, instrumentation, tempo, key and soundfont.
    duration, sample_rate :
        Seconds and sample rate (Hz) of every song.
    soundfonts : sequence of str
        Names of :data:`SOUNDFONTS` the songs are drawn from.
    progress : callable, optional
        Called as ``progress(done, total)`` (songs) while building.

    Returns
    -------
    Collection
        One item per song: ``id``, ``label`` (= genre), ``group`` (= id), ``genre``,
        ``groove``, ``instrument``, ``tempo``, ``key``, ``soundfont``, ``path``, ``midi``;
        dimensions genre and instrument (same-label), tempo (tempo) and key (key).

    Raises
    ------
    MirsimError
        mma, a soundfont or tinysoundfont is missing (one line with the install command).

    Examples
    --------
    >>> import tempfile
    >>> c = load_grooves(tempfile.mkdtemp(), songs=2, duration=2.0,
    ...                  soundfonts=["fluidr3"])  # doctest: +SKIP
    >>> c.summary(), [d.name for d in c.dimensions]  # doctest: +SKIP
    ('grooves: 2 items, 2 labels, 2 groups', ['genre', 'instrument', 'tempo', 'key'])
    """
    if songs < 1 or duration <= 0:
        raise DataError("the grooves data set needs at least one song of positive duration")
    root = Path(root) if root is not None else data_cache_dir("grooves")
    files = soundfont_files(soundfonts)
    params = _params(seed, sample_rate, duration, files)
    plans = [plan_song(seed, n, list(soundfonts)) for n in range(songs)]
    rows = [_row(p) for p in plans]
    manifest = _read_manifest(root)
    same = manifest is not None and manifest.get("params") == params
    # song n is the same whatever the number asked for (each written atomically), so fewer
    # songs than were built are read from the cache, and the others are kept for later
    if same and all((root / r["path"]).is_file() for r in rows):
        return _collection(root, pd.DataFrame(rows))
    if not same:
        _remove_songs(root)
    _remove_temporaries(root)
    built = max(songs, int(manifest.get("songs", 0))) if same else songs
    write_json(root / MANIFEST, {"params": params, "songs": built, "complete": False})
    renderer = SoundfontRenderer(files, sample_rate)
    for done, (plan, row) in enumerate(zip(plans, rows), start=1):
        if not (root / row["path"]).is_file():
            _build_song(renderer, plan, root / row["midi"], root / row["path"], duration)
        if progress is not None:
            progress(done, len(plans))
    write_json(root / MANIFEST, {"params": params, "songs": built,
                                 "complete": built == songs, "items": rows})
    return _collection(root, pd.DataFrame(rows))


def _build_song(renderer: SoundfontRenderer, plan: SongPlan, midi_path: Path, audio_path: Path,
                duration: float) -> None:
    write_midi(plan, duration, midi_path)
    y = _render_song(renderer, plan, midi_path, duration)
    with atomic_path(audio_path) as tmp:
        sf.write(str(tmp), y, renderer.sample_rate, subtype="PCM_16", format="FLAC")


def _read_manifest(root: Path) -> dict[str, Any] | None:
    try:
        return read_json_object(root / MANIFEST)
    except MirsimError:
        return None


def _remove_songs(root: Path) -> None:
    """Delete every song and its MIDI file (songs of other parameters)."""
    for folder, suffix in _SONG_FILES:
        for p in (root / folder).glob(f"song-*{suffix}") if (root / folder).is_dir() else []:
            p.unlink(missing_ok=True)


def _remove_temporaries(root: Path) -> None:
    """Delete the temporary files of writes that were interrupted."""
    for folder, suffix in _SONG_FILES:
        for p in (root / folder).glob(f".song-*{suffix}.*.tmp") if (root / folder).is_dir() else []:
            p.unlink(missing_ok=True)


#: The folders of a song's files and their suffixes.
_SONG_FILES = (("songs", ".flac"), ("midi", ".mid"))


def _collection(root: Path, items: pd.DataFrame) -> Collection:
    items = items.copy()
    items["path"] = [str(root / p) for p in items["path"]]
    items["midi"] = [str(root / p) for p in items["midi"]]
    return Collection("grooves", items, [FileSource(p) for p in items["path"]],
                      "grooves: songs made with mma and rendered from General MIDI soundfonts "
                      "(label = genre; dimensions genre, instrument, tempo, key)",
                      dimensions=list(DIMENSIONS))


__all__ = ["DIMENSIONS", "GENRES", "INSTRUMENTATIONS", "Instrumentation", "PROGRESSIONS",
           "SOUNDFONTS", "SongPlan", "SoundfontRenderer", "is_bass", "lead_notes", "load_grooves",
           "mix", "mma_version", "plan_song", "render_part", "soundfont_files", "write_midi"]


@DATASETS.register
@estimator
class GroovesDataset(Dataset):
    """Songs made with mma and rendered from General MIDI soundfonts: genre, instrument,
    tempo and key known (the multi-dimensional similarity data)."""

    name = "grooves"
    root: str | None = param(None, Anything(), "where the songs go")
    songs: int = param(200, Interval(int, 1, None), "number of songs")
    seed: int = param(0, Interval(int, 0, None), "chooses every song's plan")
    duration: float = param(30.0, Interval(float, 0, None, closed="neither"),
                            "seconds of every song")
    sample_rate: int = param(22050, Interval(int, 8000, None), "rate of the files (Hz)")
    segments: int = param(1, Interval(int, 1, None),
                          "3 s clips per song (50 % overlap); 1: the song is one item")

    def load(self) -> Collection:
        from mirsim.datasets.clips import clip_collection

        songs = load_grooves(self.root, self.songs, self.seed, duration=self.duration,
                             sample_rate=self.sample_rate)
        return songs if self.segments == 1 else clip_collection(songs, self.segments)
