"""The ``multitrack`` songs: WAD parsing, Slakh's grouping, the Slakh2100 layout written and
read (mirsim's and a real Slakh fixture), the mix as the exact sum of the stems, determinism,
resuming, bad MIDI files skipped, and the command line."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import yaml

from mirsim.datasets import grooves, load_collection
from mirsim.datasets.midi_sources import (INSTALL, MidiSong, build_wad, midi_sources,
                                          package_songs, wad_lumps, wad_music)
from mirsim.datasets.multitrack import build_multitrack, quantised_stems
from mirsim.datasets.slakh import (GROUPS, group_audio, instrument_group, read_track,
                                   slakh_songs, track_dirs)
from mirsim.errors import DataError, MirsimError

FOUR = ("drums", "bass", "piano", "guitar")


def _missing() -> str | None:
    try:
        grooves.mma_version()
        grooves.soundfont_files(["fluidr3"])
        package_songs("simutrans-data")
    except MirsimError as exc:
        return f"{exc} (apt: {INSTALL} mma fluid-soundfont-gm)"
    return None


needs_packages = pytest.mark.skipif(_missing() is not None, reason=str(_missing()))

#: A Simutrans song with all four instruments in its first seconds.
SIMUTRANS_SONG = "16-Midnight-Express2.mid"
#: Small builds: a few seconds from the fast soundfont.
SMALL = dict(seconds=3.0, sample_rate=16000, soundfonts=["fluidr3"])


def _midi_bytes(programs: dict[int, bool]) -> bytes:
    """A short MIDI file: one instrument per (program, is_drum), a note a beat."""
    import pretty_midi

    midi = pretty_midi.PrettyMIDI()
    for program, is_drum in programs.items():
        inst = pretty_midi.Instrument(program, is_drum=is_drum)
        inst.notes = [pretty_midi.Note(100, 40 if is_drum else 60, t / 2, t / 2 + 0.4)
                      for t in range(8)]
        midi.instruments.append(inst)
    buffer = io.BytesIO()
    midi.write(buffer)
    return buffer.getvalue()


def _sources() -> tuple[list[MidiSong], list]:
    """A real Simutrans song, a corrupt MIDI file and a drums-only song (then mma tops up)."""
    songs, _ = package_songs("simutrans-data")
    real = next(s for s in songs if s.name == SIMUTRANS_SONG)
    corrupt = MidiSong("test", "corrupt.mid", "CC0-1.0", b"MThd\x00\x00\x00\x06" + bytes(7))
    drums = MidiSong("test", "drums.mid", "CC0-1.0", _midi_bytes({0: True}))
    return [real, corrupt, drums], []


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file()}


def _mtimes(root: Path) -> dict[str, int]:
    return {str(p.relative_to(root)): p.stat().st_mtime_ns for p in root.rglob("*")
            if p.is_file() and p.name != "manifest.json"}


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    if _missing():
        pytest.skip(_missing())
    root = tmp_path_factory.mktemp("multitrack")
    return root, build_multitrack(root, songs=3, sources=_sources(), **SMALL)


# -- WAD files ------------------------------------------------------------------------------------
def test_wad_lumps_and_music_of_a_wad_built_here():
    midi = _midi_bytes({33: False})
    wad = build_wad({"MAP01": b"\x01\x02", "D_RUNNIN": midi, "D_E1M1": b"MUS\x1a" + bytes(12),
                     "D_ODD": b"RIFF" + bytes(4), "DEMO1": b""}, magic=b"IWAD")
    assert [name for name, _ in wad_lumps(wad)] == ["MAP01", "D_RUNNIN", "D_E1M1", "D_ODD",
                                                    "DEMO1"]
    music, skipped = wad_music(wad, "pkg", "x.wad")
    assert music == [("D_RUNNIN", midi)]
    assert [(s.name, s.reason.split(" ")[0]) for s in skipped] == [
        ("x.wad:D_E1M1", "MUS-format"), ("x.wad:D_ODD", "music")]
    truncated = wad[:len(wad) - 8]  # the directory's last entry cut
    with pytest.raises(DataError, match="corrupt WAD file"):
        wad_lumps(truncated)


@pytest.mark.skipif(not Path("/usr/share/games/doom/freedoom1.wad").is_file(),
                    reason="apt-get install freedoom")
def test_the_real_freedoom_wad_has_standard_midi_music():
    import pretty_midi

    music, skipped = wad_music(Path("/usr/share/games/doom/freedoom1.wad").read_bytes())
    assert len(music) >= 30 and not skipped
    assert music[0][0] == "D_E1M1" and all(m.startswith(b"MThd") for _, m in music)
    assert pretty_midi.PrettyMIDI(io.BytesIO(music[0][1])).instruments


def test_a_missing_package_names_the_apt_command():
    with pytest.raises(DataError, match="multitrack data set needs the Debian package "
                                        "mirsim-no-such-package: apt-get install freedoom"):
        package_songs("mirsim-no-such-package")


@pytest.mark.skipif(not all(Path(f"/usr/share/doc/{p}").is_dir() for p in ("freedoom", "freedm")),
                    reason="apt-get install freedoom freedm")
def test_songs_are_distinct_and_keep_their_package_and_licence():
    songs, skipped = midi_sources(("freedoom", "freedm"))
    assert len({s.sha256 for s in songs}) == len(songs)
    assert songs[0].name == "freedoom1.wad:D_E1M1" and songs[0].licence == "freedoom-license"
    repeats = [s for s in skipped if s.package == "freedm"]
    assert repeats and all(s.reason.startswith("the same MIDI as ") for s in repeats)
    assert {s.package for s in songs} == {"freedoom", "freedm"}


# -- Slakh's rules --------------------------------------------------------------------------------
def test_slakh_grouping_rules():
    groups = [instrument_group(p, False) for p in range(128)]
    assert groups[:8] == ["piano"] * 8 and groups[8] == "other"
    assert groups[24:32] == ["guitar"] * 8 and groups[32:40] == ["bass"] * 8
    assert groups.count("other") == 128 - 24
    assert {instrument_group(p, True) for p in (0, 33, 128)} == {"drums"}


def test_quantised_stems_sum_exactly_and_never_clip():
    rng = np.random.default_rng(0)
    parts = {g: rng.uniform(-1, 1, 5000) * rng.uniform(0.1, 3) for g in GROUPS}
    stems, mix, gain = quantised_stems(parts, peak=0.99)
    assert mix.dtype == np.int16 and all(s.dtype == np.int16 for s in stems.values())
    assert np.array_equal(mix.astype(np.int32), np.sum([s.astype(np.int32)
                                                        for s in stems.values()], axis=0))
    assert abs(np.max(np.abs(mix)) - 0.99 * 32767) <= len(GROUPS)
    assert gain == pytest.approx(0.99 / np.max(np.abs(np.sum(list(parts.values()), axis=0))))


# -- rendered songs -------------------------------------------------------------------------------
@needs_packages
def test_tracks_are_in_slakh_layout_and_the_mix_is_the_sum_of_the_stems(built):
    root, manifest = built
    assert manifest["complete"] and [t["track"] for t in manifest["tracks"]] == [
        "Track00001", "Track00002", "Track00003"]
    assert [t["key"] for t in manifest["tracks"]] == [f"simutrans-data:{SIMUTRANS_SONG}",
                                                      "mma:song-0000", "mma:song-0001"]
    for entry in manifest["tracks"]:
        track = root / entry["track"]
        meta = yaml.safe_load((track / "metadata.yaml").read_text())
        assert (track / "all_src.mid").is_file()
        mix, sr = sf.read(track / "mix.flac", dtype="int16")
        assert sr == 16000 and len(mix) == 3 * 16000
        total = np.zeros(len(mix), dtype=np.int32)
        for name, stem in meta["stems"].items():
            assert {"inst_class", "program_num", "is_drum", "midi_program_name"} <= set(stem)
            assert instrument_group(stem["program_num"], stem["is_drum"]) == stem["group"]
            assert (track / "MIDI" / f"{name}.mid").is_file()
            y, _ = sf.read(track / "stems" / f"{name}.flac", dtype="int16")
            total += y
        assert np.array_equal(mix, total)  # exactly, sample by sample
        assert set(FOUR) <= {s["group"] for s in meta["stems"].values()}
    first = yaml.safe_load((root / "Track00001" / "metadata.yaml").read_text())
    assert first["licence"] == "Artistic-1.0"
    assert first["source"]["package"] == "simutrans-data"
    assert {"inst_class": "Drums", "is_drum": True, "program_num": 128}.items() <= \
        first["stems"]["S00"].items()
    mma = yaml.safe_load((root / "Track00002" / "metadata.yaml").read_text())
    assert mma["source"]["generator"] == "mma" and "GPL" in mma["licence"]


@needs_packages
def test_bad_midi_and_songs_without_the_instruments_are_skipped_with_a_reason(built):
    _, manifest = built
    reasons = {s["key"]: s["reason"] for s in manifest["skipped"]}
    assert reasons["test:corrupt.mid"].startswith("unreadable MIDI")
    assert reasons["test:drums.mid"] == "1 of the 4 instruments (drums; 4 needed)"


@needs_packages
def test_the_reader_gives_what_the_per_instrument_experiment_reads(built):
    from mirsim.experiments.per_instrument import condition_audio

    root, _ = built
    tracks, songs = slakh_songs(root, FOUR, 16000)
    assert [t.id for t in tracks] == ["Track00001", "Track00002", "Track00003"]
    mix, _ = sf.read(root / "Track00001" / "mix.flac", dtype="float32")
    assert np.array_equal(songs[0]["mix"], mix)
    groups = sum(v for k, v in songs[0].items() if k != "mix")
    assert np.array_equal(groups, songs[0]["mix"])  # float32 sums of 16-bit samples are exact
    assert all(len(x) == len(mix) for x in condition_audio(songs[:1], "bass"))


@needs_packages
def test_builds_are_deterministic_and_an_interrupted_one_resumes(built, tmp_path):
    root, _ = built

    class Stop(Exception):
        pass

    def stop_after_one(done: int, total: int) -> None:
        if done == 1:
            raise Stop

    with pytest.raises(Stop):
        build_multitrack(tmp_path, songs=3, sources=_sources(), progress=stop_after_one, **SMALL)
    assert json.loads((tmp_path / "manifest.json").read_text())["complete"] is False
    before = _mtimes(tmp_path)
    assert before and all(k.startswith("Track00001/") for k in before)
    build_multitrack(tmp_path, songs=3, sources=_sources(), **SMALL)
    after = _mtimes(tmp_path)
    assert {k: after[k] for k in before} == before  # the first track not rendered again
    assert _files(tmp_path) == _files(root)  # the same bytes as the uninterrupted build
    again = _mtimes(tmp_path)
    build_multitrack(tmp_path, songs=2, sources=_sources(), **SMALL)
    assert _mtimes(tmp_path) == again  # fewer songs: read from the cache
    # a track cut off while it was written (no metadata.yaml yet) is rendered again
    (tmp_path / "Track00003" / "metadata.yaml").unlink()
    (tmp_path / "Track00003" / "mix.flac").unlink()
    (tmp_path / "Track00003" / "stems" / ".S00.flac.x.tmp").write_bytes(b"torn")
    build_multitrack(tmp_path, songs=3, sources=_sources(), **SMALL)
    assert _files(tmp_path) == _files(root)
    now = _mtimes(tmp_path)
    assert all(now[k] == v for k, v in again.items() if not k.startswith("Track00003/"))
    assert all(now[k] != v for k, v in again.items() if k.startswith("Track00003/"))


@needs_packages
def test_other_parameters_render_every_track_again(tmp_path):
    sources = ([_sources()[0][0]], [])
    build_multitrack(tmp_path, songs=2, sources=sources, **SMALL)
    longer = build_multitrack(tmp_path, songs=1, sources=sources, **{**SMALL, "seconds": 4.0})
    assert [t["track"] for t in longer["tracks"]] == ["Track00001"]
    assert sorted(p.name for p in tmp_path.glob("Track*")) == ["Track00001"]
    assert sf.info(tmp_path / "Track00001" / "mix.flac").duration == 4.0


def test_a_folder_of_tracks_without_a_manifest_is_refused(tmp_path):
    if _missing():
        pytest.skip(_missing())
    (tmp_path / "Track00001").mkdir()
    (tmp_path / "Track00001" / "metadata.yaml").write_text("stems: {}\n")
    with pytest.raises(DataError, match="not a folder mirsim built"):
        build_multitrack(tmp_path, songs=1, sources=([], []), **SMALL)
    assert (tmp_path / "Track00001" / "metadata.yaml").is_file()


# -- a real Slakh2100 folder ------------------------------------------------------------------
def _slakh_fixture(root: Path, complete: int = 1, seconds: float = 1.0) -> Path:
    """A babyslakh-like folder: Slakh's metadata fields, 16 kHz WAV, a stem not rendered;
    ``complete`` tracks with every instrument, then one without guitar."""
    sr = 16000
    t = np.arange(int(seconds * sr)) / sr
    stems = {"S00": (128, True, "Drums", "Drums"),
             "S01": (33, False, "Bass", "Electric Bass (finger)"),
             "S02": (0, False, "Piano", "Acoustic Grand Piano"),
             "S03": (29, False, "Guitar", "Overdriven Guitar"),
             "S04": (1, False, "Piano", "Bright Acoustic Piano"),
             "S05": (48, False, "Strings (continued)", "String Ensemble 1")}
    tracks = [list(stems)] * complete + [["S00", "S01", "S02"]]
    for number, names in enumerate(tracks, start=1):
        folder = root / "train" / f"Track{number:05d}"
        (folder / "stems").mkdir(parents=True)
        meta = {"UUID": "f1c5d7a0e4", "audio_dir": "stems", "lmd_midi_dir": "lmd_matched/x.mid",
                "midi_dir": "MIDI", "normalization_factor": -13.0, "normalized": True,
                "overall_gain": 0.18, "target_peak": -1.0, "stems": {}}
        mix = np.zeros(len(t))
        for n, name in enumerate(names):
            program, is_drum, inst_class, program_name = stems[name]
            rendered = name != "S05"
            meta["stems"][name] = {"audio_rendered": rendered, "inst_class": inst_class,
                                   "integrated_loudness": -20.5, "is_drum": is_drum,
                                   "midi_program_name": program_name, "midi_saved": True,
                                   "plugin_name": "elektrik_guitar.nkm",
                                   "program_num": program}
            if rendered:
                y = 0.1 * np.sin(2 * np.pi * (100 + 10 * number) * (n + 1) * t)
                sf.write(folder / "stems" / f"{name}.wav", y, sr, subtype="PCM_16")
                mix += y
        sf.write(folder / "mix.wav", mix, sr, subtype="PCM_16")
        (folder / "metadata.yaml").write_text(yaml.safe_dump(meta))
    return root


def test_a_real_slakh_layout_is_read_and_grouped(tmp_path):
    root = _slakh_fixture(tmp_path / "babyslakh", seconds=4.0)
    assert [p.name for p in track_dirs(root)] == ["Track00001", "Track00002"]
    track = read_track(root / "train" / "Track00001", root)
    assert track.split == "train" and track.metadata["UUID"] == "f1c5d7a0e4"
    assert {g: [s.name for s in stems] for g, stems in track.groups().items()} == {
        "drums": ["S00"], "bass": ["S01"], "piano": ["S02", "S04"], "guitar": ["S03"]}
    audio = group_audio(track, 8000)  # resampled from 16 kHz
    assert set(audio) == {"mix", *FOUR} and len(audio["mix"]) == 4 * 8000
    piano = [sf.read(root / "train" / "Track00001" / "stems" / f"{s}.wav")[0] for s in
             ("S02", "S04")]
    assert np.allclose(group_audio(track, 16000)["piano"], piano[0] + piano[1], atol=1e-4)
    tracks, songs = slakh_songs(root, FOUR, 8000)  # Track00002 has no guitar
    assert [t.id for t in tracks] == ["Track00001"] and set(songs[0]) == set(audio)
    c = load_collection("multitrack", slakh_root=str(root))  # the registered data set
    assert c.items[["id", "label", "instruments", "split"]].values.tolist() == [
        ["Track00001", "Track00001", "drums,bass,piano,guitar", "train"],
        ["Track00002", "Track00002", "drums,bass,piano", "train"]]
    with pytest.raises(DataError, match="no track folders"):
        track_dirs(tmp_path)


def test_songs_where_an_instrument_is_not_heard_are_left_out(tmp_path):
    root = _slakh_fixture(tmp_path / "slakh", complete=2, seconds=4.0)
    quiet = root / "train" / "Track00001" / "stems" / "S03.wav"  # the guitar: -60 dB
    y, sr = sf.read(quiet)
    sf.write(quiet, y * 1e-2, sr, subtype="PCM_16")
    tracks, _ = slakh_songs(root, FOUR, 8000)
    assert [t.id for t in tracks] == ["Track00002"]
    assert [t.id for t in slakh_songs(root, ("drums", "bass"), 8000)[0]] == [
        "Track00001", "Track00002", "Track00003"]  # the third has no guitar
    with pytest.raises(DataError, match="no track where every one of drums, guitar is heard"):
        slakh_songs(root, ("drums", "guitar"), 8000, seconds=2.0)  # shorter than a segment


# -- command line ---------------------------------------------------------------------------------
@needs_packages
@pytest.mark.slow
def test_cli_builds_multitrack_and_reproduce_reads_it(tmp_path):
    from typer.testing import CliRunner

    from mirsim.cli import app

    out = tmp_path / "multitrack"
    r = CliRunner().invoke(app, ["data", "build", "multitrack", "--songs", "1", "--seconds",
                                 "4", "--out", str(out)])
    assert r.exit_code == 0, r.output
    assert "multitrack: 1 songs" in r.stdout and "Slakh2100's layout" in r.stdout
    assert [p.name for p in track_dirs(out)] == ["Track00001"]
    bad = CliRunner().invoke(app, ["reproduce", "per-instrument", "--data", "multitrack",
                                   "--slakh-root", str(out), "--songs", "3", "--test-songs", "1",
                                   "--runs", str(tmp_path / "runs")])
    assert bad.exit_code != 0 and "1 songs with every instrument, --songs 3" in bad.output


@pytest.mark.slow
def test_reproduce_per_instrument_runs_on_a_slakh_folder(tmp_path):
    from typer.testing import CliRunner

    from mirsim.cli import app

    root = _slakh_fixture(tmp_path / "slakh", complete=4, seconds=6.0)
    r = CliRunner().invoke(app, [
        "reproduce", "per-instrument", "--data", "multitrack", "--slakh-root", str(root),
        "--songs", "4", "--test-songs", "2", "--seconds", "6", "--trials", "1", "--epochs", "1",
        "-p", "channels=4", "-p", "n_mels=16", "--conditions", "mix,guitar",
        "--runs", str(tmp_path / "runs"), "--json"])
    assert r.exit_code == 0, r.output
    table = json.loads(r.output.strip().splitlines()[-1])
    assert table["complete"] and set(table["accuracy"]) == {"mix", "guitar"}
    songs = next(iter(table["cells"]["mix"].values()))["songs"]
    from mirsim.experiments.per_instrument import training_songs

    tracks = ["Track00001", "Track00002", "Track00003", "Track00004"]
    held_out = [t for t, train in zip(tracks, training_songs(4, 2, seed=0)) if not train]
    assert songs == held_out  # the test songs drawn from the seed


# -- build options: soundfont and instruments needed ---------------------------------------------
@needs_packages
def test_soundfont_choice_names_and_files(tmp_path):
    from mirsim.datasets.multitrack import soundfont_choice

    fluid = grooves.soundfont_files(["fluidr3"])["fluidr3"]
    assert soundfont_choice("fluid") == {"fluidr3": fluid}
    assert soundfont_choice(str(fluid)) == {fluid.stem: fluid}
    try:
        both = soundfont_choice("both")
    except MirsimError:  # MuseScore General not installed
        both = None
    assert both is None or set(both) == {"fluidr3", "musescore"}
    (tmp_path / "notes.txt").write_text("x")
    for bad in ("fluidsynth", str(tmp_path / "notes.txt"), str(tmp_path / "none.sf2")):
        with pytest.raises(DataError, match="not fluid, musescore or both"):
            soundfont_choice(bad)


@needs_packages
def test_a_soundfont_file_and_fewer_instruments_needed(tmp_path):
    """A soundfont given as a file renders every song; with one instrument needed the
    drums-only song is kept, where four needed skip it."""
    from mirsim.datasets.multitrack import soundfont_choice

    fluid = grooves.soundfont_files(["fluidr3"])["fluidr3"]
    small = {**SMALL, "soundfonts": soundfont_choice(str(fluid))}
    m = build_multitrack(tmp_path, songs=2, sources=_sources(), min_instruments=1, **small)
    assert [t["key"] for t in m["tracks"]] == [f"simutrans-data:{SIMUTRANS_SONG}",
                                               "test:drums.mid"]
    assert m["params"]["min_instruments"] == 1 and list(m["params"]["soundfonts"]) == [
        fluid.stem]
    drums = yaml.safe_load((tmp_path / "Track00002" / "metadata.yaml").read_text())
    assert {s["group"] for s in drums["stems"].values()} == {"drums"}
    assert all(s["plugin_name"] == fluid.name for s in drums["stems"].values())


def test_build_options_are_refused_in_one_line(tmp_path):
    from typer.testing import CliRunner

    from mirsim.cli import app

    for args, message in ((["multitrack", "--soundfont", "nonesuch"], "--soundfont nonesuch"),
                          (["grooves", "--min-instruments", "2"],
                           "--min-instruments is an option of `data build multitrack`"),
                          (["multitrack", "--min-instruments", "5"], "5")):
        r = CliRunner().invoke(app, ["data", "build", *args, "--out", str(tmp_path / "x")])
        assert r.exit_code != 0 and message in r.output and "Traceback" not in r.output, r.output


@needs_packages
@pytest.mark.slow
def test_cli_build_options_reach_the_manifest(tmp_path):
    from typer.testing import CliRunner

    from mirsim.cli import app

    out = tmp_path / "multitrack"
    r = CliRunner().invoke(app, ["data", "build", "multitrack", "--songs", "1", "--seconds",
                                 "2", "--soundfont", "fluid", "--min-instruments", "2",
                                 "--out", str(out)])
    assert r.exit_code == 0, r.output
    params = json.loads((out / "manifest.json").read_text())["params"]
    assert params["min_instruments"] == 2 and list(params["soundfonts"]) == ["fluidr3"]
