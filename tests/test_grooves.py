"""The ``grooves`` data set: plans, structure, determinism, caching and resuming, missing tools,
and that its labels are heard (key in the chroma, tempo in the beats)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from mirsim.datasets import load_collection
from mirsim.datasets import grooves
from mirsim.datasets.dimensions import similarity_matrices
from mirsim.datasets.grooves import GENRES, INSTRUMENTATIONS, load_grooves, plan_song
from mirsim.errors import MirsimError


def _installed() -> str | None:
    try:
        grooves.mma_version()
        grooves.soundfont_files()
    except MirsimError as exc:
        return str(exc)
    return None


needs_mma = pytest.mark.skipif(_installed() is not None, reason=str(_installed()))

#: A handful of short songs from the fast soundfont (the MuseScore one takes 5 s to load).
SMALL = dict(songs=4, duration=3.0, sample_rate=16000, soundfonts=["fluidr3"])


def flac_files(root: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted((root / "songs").glob("*.flac"))}


def mtimes(root: Path) -> dict[str, int]:
    return {p.name: p.stat().st_mtime_ns for p in (root / "songs").glob("*.flac")}


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    if _installed():
        pytest.skip(_installed())
    root = tmp_path_factory.mktemp("grooves")
    return root, load_grooves(root, **SMALL)


def test_plans_are_deterministic_and_cover_every_choice():
    plans = [plan_song(3, n) for n in range(400)]
    assert plans == [plan_song(3, n) for n in range(400)]
    assert plans[:5] != [plan_song(4, n) for n in range(5)]
    assert {p.genre for p in plans} == set(GENRES)
    assert {p.instrumentation for p in plans} == set(INSTRUMENTATIONS)
    assert {p.soundfont for p in plans} == {"fluidr3", "musescore"}
    assert {p.mode for p in plans} == {"major", "minor"} and len({p.tonic for p in plans}) == 12
    assert all(p.groove in GENRES[p.genre] for p in plans)
    assert all(grooves.TEMPO_RANGE[0] <= p.tempo <= grooves.TEMPO_RANGE[1] for p in plans)


def test_chords_are_transposed_to_the_key():
    plan = plan_song(0, 0)
    f_sharp_minor = plan.__class__(**{**plan.__dict__, "tonic": 6, "mode": "minor",
                                      "progression": grooves.PROGRESSIONS["minor"][3]})
    assert f_sharp_minor.key == "F# minor"
    assert f_sharp_minor.chords() == ["F#m", "D", "Bm", "C#7"]
    text = f_sharp_minor.mma_text(5)
    assert text.splitlines()[1:] == [f"Tempo {plan.tempo}", f"Groove {plan.groove}", "1 F#m",
                                     "2 D", "3 Bm", "4 C#7", "5 F#m"]
    assert grooves._chord_tones("C#7") == {1, 5, 8, 11}


def test_mix_levels_parts_and_leaves_silent_ones_out():
    loud, quiet = np.sin(np.arange(1000) / 5), 1e-3 * np.sin(np.arange(1000) / 7)
    y = grooves.mix({"bass": loud.astype(np.float32), "lead": quiet.astype(np.float32),
                     "drums": np.zeros(1000, dtype=np.float32)})
    assert np.isclose(np.max(np.abs(y)), grooves.PEAK)
    # both parts at their RMS levels: the quiet lead is now as loud as the bass
    lead_only = grooves.mix({"lead": quiet.astype(np.float32)})
    assert np.isclose(np.max(np.abs(lead_only)), grooves.PEAK)


def test_missing_mma_is_one_line_with_the_install_command(monkeypatch, tmp_path):
    monkeypatch.setattr(grooves.shutil, "which", lambda name: None)
    with pytest.raises(MirsimError) as info:
        load_grooves(tmp_path, **SMALL)
    assert "apt-get install mma fluid-soundfont-gm musescore-general-soundfont" in str(info.value)
    assert "\n" not in str(info.value)


def test_missing_soundfont_is_one_line_with_the_install_command(monkeypatch, tmp_path):
    monkeypatch.setitem(grooves.SOUNDFONTS, "fluidr3", (str(tmp_path / "none.sf2"),))
    with pytest.raises(MirsimError, match="apt-get install mma fluid-soundfont-gm"):
        load_grooves(tmp_path, **SMALL)


@needs_mma
def test_structure_labels_and_dimensions(small):
    root, c = small
    items = c.items
    assert c.summary().startswith("grooves: 4 items") and items["group"].equals(items["id"])
    assert items["label"].equals(items["genre"])
    assert {"genre", "groove", "instrument", "tempo", "key", "soundfont", "path", "midi"} <= \
        set(items.columns)
    assert [(d.name, d.rule) for d in c.dimensions] == [
        ("genre", "same-label"), ("instrument", "same-label"), ("tempo", "tempo"), ("key", "key")]
    S = similarity_matrices(c.items, c.dimensions)
    assert set(S) == {"genre", "instrument", "tempo", "key"}
    assert all(m.shape == (4, 4) and m.dtype == bool for m in S.values())
    for n, row in items.iterrows():
        plan = plan_song(0, n)
        assert (row["genre"], row["tempo"], row["key"], row["instrument"]) == (
            plan.genre, plan.tempo, plan.key, plan.instrumentation.name)
        info = sf.info(row["path"])
        assert (info.samplerate, info.channels, info.format) == (16000, 1, "FLAC")
        assert info.frames == 3 * 16000
        y, _ = sf.read(row["path"])
        assert 0.5 < np.max(np.abs(y)) <= grooves.PEAK + 1e-3
        assert Path(row["midi"]).is_file()
    manifest = json.loads((root / "manifest.json").read_text())
    assert manifest["complete"] and manifest["params"]["mma"]
    assert manifest["params"]["soundfonts"]["fluidr3"]["file"] == "FluidR3_GM.sf2"
    assert len(manifest["params"]["soundfonts"]["fluidr3"]["sha256"]) == 64


@needs_mma
def test_second_build_does_nothing_and_an_interrupted_one_resumes(small, tmp_path):
    root, first = small
    before, contents = mtimes(root), flac_files(root)
    again = load_grooves(root, **SMALL)
    assert mtimes(root) == before and again.items.equals(first.items)
    # killed half-way: a song missing, the manifest incomplete, a temporary file left behind
    copy = tmp_path / "copy"
    shutil.copytree(root, copy)
    (copy / "songs" / "song-0001.flac").unlink()
    (copy / "songs" / ".song-0002.flac.abcd.tmp").write_bytes(b"torn")
    manifest = json.loads((copy / "manifest.json").read_text())
    (copy / "manifest.json").write_text(json.dumps({**manifest, "complete": False}))
    kept = mtimes(copy)
    resumed = load_grooves(copy, **SMALL)
    after = mtimes(copy)
    assert {k for k in after if after[k] != kept.get(k)} == {"song-0001.flac"}
    # rendered after other songs or first, a song is the same file (no state carried over)
    assert flac_files(copy) == contents
    assert len(resumed) == 4 and not list(copy.rglob("*.tmp"))
    # fewer songs are read from the cache, the others kept: asking for all again does nothing
    fewer = load_grooves(copy, **{**SMALL, "songs": 2})
    assert fewer.items.equals(resumed.items.iloc[:2]) and mtimes(copy) == after
    assert load_grooves(copy, **SMALL).items.equals(resumed.items) and mtimes(copy) == after


@needs_mma
def test_same_seed_same_files_other_seed_and_size(small, tmp_path):
    root, first = small
    other = load_grooves(tmp_path / "b", **{**SMALL, "songs": 2})
    assert flac_files(tmp_path / "b") == {k: v for k, v in flac_files(root).items()
                                          if k in {"song-0000.flac", "song-0001.flac"}}
    assert other.items.drop(columns=["path", "midi"]).equals(
        first.items.drop(columns=["path", "midi"]).iloc[:2])
    reseeded = load_grooves(tmp_path / "b", **{**SMALL, "songs": 2, "seed": 1})
    assert not reseeded.items[["genre", "tempo", "key"]].equals(other.items[["genre", "tempo", "key"]])
    assert sorted(flac_files(tmp_path / "b")) == ["song-0000.flac", "song-0001.flac"]


@needs_mma
def test_labels_are_heard(small):
    """The key's tonic triad dominates the chroma, and the beat tracker finds the tempo (up to
    tempo octaves; the first 3 seconds only)."""
    import librosa

    _, c = small
    for row in c.items.itertuples():
        y, sr = sf.read(row.path, dtype="float32")
        chroma = librosa.feature.chroma_stft(y=y, sr=sr).mean(axis=1)
        tonic = grooves.NOTE_NAMES.index(row.key.split()[0])
        third = 3 if row.key.endswith("minor") else 4
        triad = chroma[[tonic, (tonic + third) % 12, (tonic + 7) % 12]].mean()
        assert triad > np.median(chroma), row


@needs_mma
def test_load_collection_and_the_musescore_soundfont(tmp_path):
    c = load_collection("grooves", root=str(tmp_path), songs=1, duration=1.0, seed=1)
    assert c.items.loc[0, "soundfont"] == plan_song(1, 0).soundfont == "musescore"
    assert sf.info(c.items.loc[0, "path"]).frames == 22050


@needs_mma
def test_cli_build_and_its_errors(tmp_path):
    from typer.testing import CliRunner

    from mirsim.cli import app

    r = CliRunner().invoke(app, ["data", "build", "grooves", "--songs", "1", "--root",
                                 str(tmp_path)])
    assert r.exit_code == 0, r.output
    assert "grooves: 1 items, 1 labels, 1 groups" in r.stdout
    assert sf.info(tmp_path / "songs" / "song-0000.flac").duration == 30.0
    r = CliRunner().invoke(app, ["data", "build", "kazoo"])
    assert r.exit_code == 2
    assert "unknown buildable data set 'kazoo' (valid: grooves, multitrack)" in r.output


def test_cli_build_without_mma_says_what_to_install(monkeypatch, tmp_path):
    from typer.testing import CliRunner

    from mirsim.cli import app

    monkeypatch.setattr(grooves.shutil, "which", lambda name: None)
    r = CliRunner().invoke(app, ["data", "build", "grooves", "--root", str(tmp_path)])
    assert r.exit_code == 2
    assert r.output.strip().splitlines() == [
        "error: the grooves data set needs mma and General MIDI soundfonts: apt-get install "
        "mma fluid-soundfont-gm musescore-general-soundfont"]


@needs_mma
def test_segments_are_clips_of_each_song_in_its_group(tmp_path):
    songs = load_collection("grooves", root=str(tmp_path), songs=2, duration=4.5,
                            sample_rate=16000)
    c = load_collection("grooves", root=str(tmp_path), songs=2, duration=4.5,
                        sample_rate=16000, segments=3)
    assert len(c.items) == 6
    assert c.items["group"].tolist() == [g for g in songs.items["group"] for _ in range(3)]
    assert c.items["offset"].tolist()[:3] == [0.0, 1.5, 3.0]
    assert [d.name for d in c.dimensions] == [d.name for d in songs.dimensions]
    a, b = (s.load(16000) for s in c.sources[:2])
    np.testing.assert_allclose(a[24000:], b[:24000], atol=1e-4)  # 50 % overlap
