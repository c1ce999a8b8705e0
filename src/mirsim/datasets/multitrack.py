"""The ``multitrack`` songs: MIDI music of Debian packages (and songs of Debian's ``mma`` where
more are needed), every instrument group rendered on its own, in Slakh2100's layout.

The data of Hashizume et al.'s per-instrument similarity, made offline:

* the songs are the MIDI music of ``freedoom``, ``freedm``, ``simutrans-data`` and
  ``openttd-openmsx`` (:func:`~mirsim.datasets.midi_sources.midi_sources`), in that order,
  then songs made with mma (the plans of :func:`~mirsim.datasets.grooves.plan_song`) until
  ``songs`` songs have at least ``min_instruments`` of drums, bass, piano and guitar (4: every
  one, as the paper's 199 songs). A song without them, or whose MIDI cannot be read, is
  skipped with a reason (``manifest.json``), never stopping the build;
* a song's instruments are grouped as Slakh does (:func:`~mirsim.datasets.slakh.
  instrument_group`), and each group is rendered on its own with ``tinysoundfont`` (the
  renderer of the ``grooves`` set) from a General MIDI soundfont drawn per song, the first
  ``seconds`` of the song. An mma song's comping tracks become piano and guitar, its bass a
  bass and the lead line that mirsim adds an ``other`` part, with programs drawn per song;
* every stem is scaled by one gain per song (the mix's peak becomes :data:`PEAK`) and
  quantised to 16 bits; the mix is the sum of the quantised stems, so that ``mix.flac`` is
  exactly the sum of ``stems/*.flac``. A silent group (RMS under
  :data:`~mirsim.datasets.grooves.SILENT_RMS`) is not written and not mixed;
* tracks are written in Slakh2100's layout (:func:`~mirsim.datasets.slakh.write_track`),
  ``metadata.yaml`` with Slakh's per-stem fields plus mirsim's ``source`` and ``licence``.

``root/manifest.json`` records the parameters (versions of tinysoundfont, mma and the
soundfonts included) and every decision; a later build with the same parameters reuses every
track on disk (an interrupted build resumes; every file is written atomically) and a larger
one keeps the tracks of a smaller one. Rendering is deterministic.

Needs ``apt-get install freedoom freedm simutrans-data openttd-openmsx mma
fluid-soundfont-gm musescore-general-soundfont`` and ``tinysoundfont``.
"""

from __future__ import annotations

import copy
import io
import itertools
import shutil
import tempfile
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from mirsim.artefacts.files import read_json_object, write_json
from mirsim.audio import file_sha256
from mirsim.config import data_cache_dir
from mirsim.datasets import grooves
from mirsim.datasets.base import Dataset
from mirsim.datasets.collection import Collection
from mirsim.datasets.midi_sources import PACKAGES, MidiSong, Skipped, midi_sources, source_path
from mirsim.datasets.slakh import (DRUM_PROGRAM, GROUPS, INSTRUMENT_RANGES, METADATA,
                                   instrument_group, stem_metadata, write_track)
from mirsim.errors import DataError, MirsimError
from mirsim.params import Anything, Interval, estimator, param
from mirsim.registries import DATASETS

__all__ = ["INSTRUMENTS", "MultitrackDataset", "build_multitrack", "midi_parts", "mma_parts",
           "heard_groups", "quantised_stems", "read_midi", "soundfont_choice", "stem_program"]

#: Bump when choosing, grouping or rendering changes its output for the same parameters.
RENDER_VERSION = 2  # 2: an instrument counts when a 3 s segment of it is heard
#: The instruments a song is counted by (Slakh's classes of the paper).
INSTRUMENTS = tuple(g for g in GROUPS if g != "other")
#: Peak of every mix (the one gain of its stems makes it so).
PEAK = grooves.PEAK
#: Full scale of 16-bit samples.
FULL_SCALE = 32767
#: mma songs tried per song still needed before the build gives up.
MMA_TRIES = 4
MANIFEST = "manifest.json"
#: How the text event that mma adds to every MIDI file begins.
MMA_SIGNATURE = "Created by MMA"


# -- grouping -------------------------------------------------------------------------------------
def midi_parts(midi: Any, seconds: float) -> dict[str, list[Any]]:
    """The instruments of a ``pretty_midi`` song by group (Slakh's rules), keeping those with
    a note that starts in the first ``seconds``; groups in :data:`GROUPS` order."""
    parts: dict[str, list[Any]] = {}
    for inst in midi.instruments:
        if any(note.start < seconds for note in inst.notes):
            parts.setdefault(instrument_group(inst.program, inst.is_drum), []).append(inst)
    return {g: parts[g] for g in GROUPS if g in parts}


def mma_parts(midi: Any, plan: grooves.SongPlan) -> dict[str, list[Any]]:
    """The parts of an mma song: the groove's drums; its bass tracks as one bass program;
    its comping tracks (by name) alternately piano and guitar — a lone one doubled, played by
    both; the lead line of :mod:`~mirsim.datasets.grooves` as ``other``. Programs drawn from
    the plan's seed within each group's range (:data:`INSTRUMENT_RANGES`)."""
    import pretty_midi

    rng = np.random.default_rng([plan.seed, 2])
    program = {g: int(rng.integers(lo, hi + 1)) for g, (lo, hi) in INSTRUMENT_RANGES.items()}
    drums = [i for i in midi.instruments if i.is_drum]
    bass = [i for i in midi.instruments if not i.is_drum and grooves.is_bass(i)]
    comping = sorted((i for i in midi.instruments if not i.is_drum and not grooves.is_bass(i)),
                     key=lambda i: i.name)
    if len(comping) == 1:
        comping.append(copy.deepcopy(comping[0]))
    for inst in bass:
        inst.program = program["bass"]
    for n, inst in enumerate(comping):
        inst.program = program["piano" if n % 2 == 0 else "guitar"]
    lead = pretty_midi.Instrument(plan.instrumentation.lead, name="lead")
    lead.notes = grooves.lead_notes(midi, plan)
    parts = {"drums": drums, "bass": bass, "piano": comping[0::2], "guitar": comping[1::2],
             "other": [lead]}
    return {g: parts[g] for g in GROUPS if parts[g]}


def stem_program(instruments: Sequence[Any]) -> int:
    """The program a stem is listed with: that of its instrument with the most notes (the
    lowest program on a tie); :data:`~mirsim.datasets.slakh.DRUM_PROGRAM` for drums."""
    if any(i.is_drum for i in instruments):
        return DRUM_PROGRAM
    return int(min(instruments, key=lambda i: (-len(i.notes), i.program)).program)


# -- mixing -----------------------------------------------------------------------------------
def quantised_stems(parts: Mapping[str, np.ndarray], peak: float = PEAK
                    ) -> tuple[dict[str, np.ndarray], np.ndarray, float]:
    """Stems scaled by one gain (the peak of their sum becomes ``peak``) and quantised to
    int16, their sum (the mix, int16: exactly the sum of the stems) and the gain.

    Examples
    --------
    >>> parts = {"bass": np.array([0.5, -0.25, 0.1]), "drums": np.array([0.5, 0.0, 0.3])}
    >>> stems, mix, gain = quantised_stems(parts)
    >>> mix.tolist() == (stems["bass"].astype(int) + stems["drums"]).tolist(), gain
    (True, 0.9)
    >>> int(mix.max()) <= 32767, mix.dtype.name
    (True, 'int16')
    """
    total = np.sum([np.asarray(y, dtype=np.float64) for y in parts.values()], axis=0)
    loudest = float(np.max(np.abs(total))) if total.size else 0.0
    gain = peak / loudest if loudest > 0 else 1.0
    stems = {name: np.clip(np.round(np.asarray(y, np.float64) * gain * FULL_SCALE),
                           -FULL_SCALE, FULL_SCALE).astype(np.int16)
             for name, y in parts.items()}
    mix = np.sum([s.astype(np.int32) for s in stems.values()], axis=0)
    if np.max(np.abs(mix)) > FULL_SCALE:  # cannot happen for peak < 1 and few stems
        raise DataError(f"the sum of {len(stems)} stems clips (peak {peak})")
    return stems, mix.astype(np.int16), gain


# -- candidates -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Candidate:
    key: str
    source: dict[str, Any]
    licence: str
    soundfont: str
    song: MidiSong | None = None
    plan: grooves.SongPlan | None = None


def _candidates(songs: Sequence[MidiSong], seed: int, soundfonts: Sequence[str]
                ) -> Iterator[_Candidate]:
    for song in songs:
        rng = np.random.default_rng([seed, int(song.sha256[:8], 16)])
        yield _Candidate(source_path(song), {"package": song.package, "name": song.name,
                                             "sha256": song.sha256}, song.licence,
                         list(soundfonts)[int(rng.integers(len(soundfonts)))], song=song)
    from mirsim.datasets.soundtracks import package_licence

    licence = f"made by mirsim with mma's grooves (mma: {package_licence('mma')})"
    for number in itertools.count():
        plan = grooves.plan_song(seed, number, list(soundfonts))
        yield _Candidate(f"mma:{plan.id}", {"generator": "mma", "plan": plan.id,
                                            "groove": plan.groove, "tempo": plan.tempo,
                                            "key": plan.key}, licence, plan.soundfont,
                         plan=plan)


def read_midi(data: bytes) -> Any:
    """A MIDI file's bytes as a ``pretty_midi`` song (its warnings silenced)."""
    import pretty_midi

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pretty_midi warns of meta events on other tracks
        return pretty_midi.PrettyMIDI(io.BytesIO(data))


def _midi_of(candidate: _Candidate, seconds: float) -> tuple[Any, dict[str, list[Any]]]:
    """The candidate's MIDI and parts; raises on a MIDI file that cannot be read."""
    if candidate.song is not None:
        midi = read_midi(candidate.song.data)
        return midi, midi_parts(midi, seconds)
    assert candidate.plan is not None
    with tempfile.TemporaryDirectory(prefix="mirsim-multitrack-") as tmp:
        path = grooves.write_midi(candidate.plan, seconds, Path(tmp) / "song.mid")
        midi = read_midi(path.read_bytes())
    # mma's text events name its temporary input file: a machine path, new on every run
    midi.text_events = [t for t in midi.text_events if not t.text.startswith(MMA_SIGNATURE)]
    return midi, mma_parts(midi, candidate.plan)


def _midi_bytes(midi: Any, instruments: Sequence[Any]) -> bytes:
    """A MIDI file of some instruments of a song (its tempo map kept)."""
    part = copy.copy(midi)
    part.instruments = list(instruments)
    buffer = io.BytesIO()
    part.write(buffer)
    return buffer.getvalue()


def _too_few(instruments: Sequence[str], needed: int) -> str | None:
    have = [i for i in INSTRUMENTS if i in instruments]
    if len(have) >= needed:
        return None
    return (f"{len(have)} of the {len(INSTRUMENTS)} instruments "
            f"({', '.join(have) or 'none'}; {needed} needed)")


# -- one song ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Settings:
    seconds: float
    sample_rate: int
    min_instruments: int
    files: dict[str, Path]


def _render(candidate: _Candidate, track: Path, renderer: grooves.SoundfontRenderer,
            settings: _Settings) -> dict[str, Any]:
    """Render one candidate into ``track``: its manifest entry (``instruments``), or one with
    the ``reason`` it was skipped."""
    def skip(reason: str) -> dict[str, Any]:
        return {"key": candidate.key, "reason": reason, "source": candidate.source}

    try:
        midi, parts = _midi_of(candidate, settings.seconds)
    except Exception as exc:  # noqa: BLE001 - a MIDI file that cannot be read (or made) is skipped
        return skip(f"unreadable MIDI ({type(exc).__name__}: {exc})")
    reason = _too_few(list(parts), settings.min_instruments)
    if reason:
        return skip(reason)
    end = min(settings.seconds, midi.get_end_time())
    audio = renderer.parts(candidate.soundfont, parts, int(round(end * settings.sample_rate)))
    audio = {g: y for g, y in audio.items() if _rms(y) > grooves.SILENT_RMS}
    reason = _too_few(list(audio), settings.min_instruments)
    if reason:
        return skip(f"rendered: {reason}")
    stems, mix, gain = quantised_stems(audio)
    reason = _too_few(heard_groups(stems, settings.sample_rate), settings.min_instruments)
    if reason:  # the reader's rule (mirsim.datasets.slakh.slakh_songs), after the song's gain
        return skip(f"heard: {reason}")
    names = {g: f"S{n:02d}" for n, g in enumerate(stems)}
    entries = {names[g]: (stem_metadata(stem_program(parts[g]), g == "drums", group=g,
                                        programs=sorted({int(i.program) for i in parts[g]}),
                                        plugin_name=settings.files[candidate.soundfont].name),
                          stems[g], _midi_bytes(midi, parts[g]))
               for g in stems}
    all_src = _midi_bytes(midi, [i for g in stems for i in parts[g]])
    write_track(track, entries, mix, settings.sample_rate, all_src, {
        "source": candidate.source, "licence": candidate.licence,
        "soundfont": settings.files[candidate.soundfont].name,
        "sample_rate": settings.sample_rate, "seconds": round(end, 6),
        "overall_gain": round(gain, 9), "normalized": False, "render_version": RENDER_VERSION})
    return {"key": candidate.key, "track": track.name, "instruments": list(stems),
            "source": candidate.source}


def heard_groups(stems: Mapping[str, np.ndarray], sample_rate: int) -> list[str]:
    """The groups of int16 ``stems`` that are heard as the per-instrument reader hears them:
    at least one 3 s segment that is not silent (:func:`mirsim.datasets.segments.song_segments`).
    A part can have some sound (RMS over the whole song above the silence floor) and still no
    segment loud enough; such a song would pass the build but not the reader. A song shorter
    than a segment (which that reader cannot use) is judged on its whole signal.

    Examples
    --------
    >>> quiet = np.full(22050 * 4, 20, np.int16)  # -64 dB
    >>> loud = np.full(22050 * 4, 3000, np.int16)
    >>> heard_groups({"bass": quiet, "drums": loud}, 22050)
    ['drums']
    """
    from mirsim.datasets.segments import SEGMENT_SECONDS, is_silent, song_segments

    def heard(y: np.ndarray) -> bool:
        x = y.astype(np.float32) / 32768.0
        if len(x) < SEGMENT_SECONDS * sample_rate:  # no whole segment: the signal as one
            return not is_silent(x)
        return bool(song_segments(x, sample_rate, max_segments=1))

    return [g for g, y in stems.items() if heard(y)]


def _rms(y: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(y, dtype=np.float64)))) if len(y) else 0.0


# -- the build --------------------------------------------------------------------------------
def _params(seed: int, seconds: float, sample_rate: int, min_instruments: int,
            packages: Sequence[str], files: dict[str, Path]) -> dict[str, Any]:
    from mirsim.datasets.synth import _tinysoundfont_version

    return {"version": RENDER_VERSION, "seed": int(seed), "seconds": float(seconds),
            "sample_rate": int(sample_rate), "min_instruments": int(min_instruments),
            "packages": list(packages), "mma": grooves.mma_version(),
            "tinysoundfont": _tinysoundfont_version(),
            "soundfonts": {name: {"file": path.name, "sha256": file_sha256(path)}
                           for name, path in files.items()}}


def _track_name(number: int) -> str:
    return f"Track{number:05d}"


def _start(root: Path, params: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The decisions of an earlier build of the same parameters (by key); a build of other
    parameters is removed first. A folder with tracks but no manifest is refused."""
    try:
        manifest = read_json_object(root / MANIFEST)
    except MirsimError:
        manifest = None
    if manifest is None:
        if any(root.glob(f"Track*/{METADATA}")):
            raise DataError(f"{root}: holds tracks but no {MANIFEST}: not a folder mirsim built "
                            f"(choose an empty one)")
        return {}
    if manifest.get("params") == params:
        return {d["key"]: d for d in [*manifest.get("tracks", []), *manifest.get("skipped", [])]}
    for entry in manifest.get("tracks", []):
        shutil.rmtree(root / entry["track"], ignore_errors=True)
    return {}


def soundfont_choice(choice: str) -> dict[str, Path]:
    """The soundfonts songs are drawn from, by name -> file: ``fluid`` (FluidR3 GM),
    ``musescore`` (MuseScore General), ``both`` (the default of a build), or the path of an
    ``.sf2``/``.sf3`` file (named after its file).

    Raises
    ------
    MirsimError
        An unknown name or a file that is not a soundfont, or a soundfont not installed (the
        ``apt-get`` command).

    Examples
    --------
    >>> soundfont_choice("nonesuch")
    Traceback (most recent call last):
    ...
    mirsim.errors.DataError: --soundfont nonesuch: not fluid, musescore or both, nor a .sf2/.sf3 file
    """
    names = {"fluid": ["fluidr3"], "fluidr3": ["fluidr3"], "musescore": ["musescore"],
             "both": list(grooves.SOUNDFONTS)}
    if choice in names:
        return grooves.soundfont_files(names[choice])
    path = Path(choice)
    if path.suffix.lower() not in (".sf2", ".sf3") or not path.is_file():
        raise DataError(f"--soundfont {choice}: not fluid, musescore or both, nor a .sf2/.sf3 "
                        f"file")
    return {path.stem: path}


def build_multitrack(out: str | Path | None = None, songs: int = 199, seed: int = 0, *,
                     seconds: float = 60.0, sample_rate: int = 22050, min_instruments: int = 4,
                     packages: Sequence[str] = PACKAGES,
                     soundfonts: Sequence[str] | Mapping[str, Path] = tuple(grooves.SOUNDFONTS),
                     sources: tuple[list[MidiSong], list[Skipped]] | None = None,
                     progress: Callable[[int, int], None] | None = None) -> dict[str, Any]:
    """Render ``songs`` multitrack songs into ``out`` in Slakh2100's layout (see the module).

    Parameters
    ----------
    out : path, optional
        Where ``TrackNNNNN/`` and ``manifest.json`` go (default
        ``mirsim.config.data_cache_dir("multitrack")``).
    songs : int
        Songs with at least ``min_instruments`` of drums, bass, piano and guitar.
    seed : int
        Chooses the soundfont of every song and the mma songs.
    seconds, sample_rate :
        The first seconds of every song that are rendered, and the rate (Hz).
    min_instruments : int
        1 to 4: how many of the four instruments a song needs.
    packages : sequence of str
        The Debian packages whose MIDI songs come first.
    soundfonts : sequence of str, or mapping of str to path
        Names of :data:`~mirsim.datasets.grooves.SOUNDFONTS` songs are drawn from, or
        name -> soundfont file (e.g. :func:`soundfont_choice`).
    sources : (songs, skipped), optional
        The MIDI songs instead of those of ``packages`` (as from
        :func:`~mirsim.datasets.midi_sources.midi_sources`).
    progress : callable, optional
        Called as ``progress(done, songs)`` after every song kept.

    Returns
    -------
    dict
        The manifest: ``params``, ``tracks`` (``track``, ``key``, ``instruments``,
        ``source``), ``skipped`` (``key``, ``reason``), ``complete``, and ``root``.

    Raises
    ------
    MirsimError
        A package, mma, a soundfont or tinysoundfont is missing (one line with the install
        command); no songs enough after every source and :data:`MMA_TRIES` mma songs a song.
    """
    if songs < 1 or seconds <= 0 or not 1 <= min_instruments <= len(INSTRUMENTS):
        raise DataError("the multitrack data set needs at least one song of positive length "
                        f"and 1 to {len(INSTRUMENTS)} instruments a song")
    root = Path(out) if out is not None else data_cache_dir("multitrack")
    files = (dict(soundfonts) if isinstance(soundfonts, Mapping)
             else grooves.soundfont_files(soundfonts))
    soundfonts = list(files)
    params = _params(seed, seconds, sample_rate, min_instruments, packages, files)
    found, left_out = sources if sources is not None else midi_sources(packages)
    settings = _Settings(seconds, sample_rate, min_instruments, files)
    known = _start(root, params)
    renderer = grooves.SoundfontRenderer(files, sample_rate)
    tracks: list[dict[str, Any]] = []
    skipped = [{"key": f"{s.package}:{s.name}", "reason": s.reason} for s in left_out]
    manifest = {"params": params, "songs": songs, "complete": False, "tracks": tracks,
                "skipped": skipped}
    limit = len(found) + MMA_TRIES * songs
    for candidate in itertools.islice(_candidates(found, seed, soundfonts), limit):
        if len(tracks) == songs:
            break
        track = root / _track_name(len(tracks) + 1)
        entry = known.get(candidate.key)
        reuse = entry is not None and entry.get("source") == candidate.source and (
            "reason" in entry or (entry["track"] == track.name and (track / METADATA).is_file()))
        if not reuse:
            shutil.rmtree(track, ignore_errors=True)  # an interrupted track, or another song's
            entry = _render(candidate, track, renderer, settings)
        (skipped if "reason" in entry else tracks).append(entry)
        write_json(root / MANIFEST, manifest)
        if "track" in entry and progress is not None:
            progress(len(tracks), songs)
    if len(tracks) < songs:
        raise DataError(f"only {len(tracks)} of {songs} songs have {min_instruments} of the "
                        f"instruments after {limit} candidates")
    manifest["complete"] = True
    write_json(root / MANIFEST, manifest)
    return {**manifest, "root": str(root)}


@DATASETS.register
@estimator
class MultitrackDataset(Dataset):
    """Multitrack songs in Slakh2100's layout, an item per song (its mix): rendered here from
    the MIDI music of Debian packages and mma (:func:`build_multitrack`), or read from a
    Slakh2100 or babyslakh folder (``slakh_root``)."""

    name = "multitrack"
    root: str | None = param(None, Anything(), "where the rendered songs go")
    slakh_root: str | None = param(None, Anything(),
                                   "a Slakh2100-layout folder to read instead of rendering")
    songs: int = param(199, Interval(int, 1, None), "songs with the instruments")
    seed: int = param(0, Interval(int, 0, None), "chooses soundfonts and the mma songs")
    seconds: float = param(60.0, Interval(float, 0, None, closed="neither"),
                           "seconds rendered of every song")
    sample_rate: int = param(22050, Interval(int, 8000, None), "rate of the files (Hz)")
    min_instruments: int = param(4, Interval(int, 1, len(INSTRUMENTS)),
                                 "of drums, bass, piano, guitar, how many a song needs")

    def load(self) -> Collection:
        from mirsim.datasets.slakh import slakh_collection

        if self.slakh_root is not None:
            return slakh_collection(self.slakh_root)
        built = build_multitrack(self.root, self.songs, self.seed, seconds=self.seconds,
                                 sample_rate=self.sample_rate,
                                 min_instruments=self.min_instruments)
        return slakh_collection(built["root"], [t["track"] for t in built["tracks"]])
