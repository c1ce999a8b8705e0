"""Data sets: user folders and CSV manifests, the named-collection dispatcher, and Cyberlioz."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import librosa
import numpy as np
import pandas as pd
import pytest
import soundfile as sf

from mirsim.audio import FileSource
from mirsim.datasets import available_datasets, load_collection
from mirsim.datasets.cyberlioz import (
    SimulatedSource,
    find_cyberlioz,
    is_complete,
    load_cyberlioz,
    load_cyberlioz_extended,
    simulation_parameters,
)
from mirsim.datasets.files import (
    label_of,
    list_audio_files,
    load_folder,
    load_manifest,
    walk_library,
)
from mirsim.errors import DataError, MirsimError, UnknownNameError

SR = 22050


def tone(path: Path, freq: float = 440.0, seconds: float = 0.2) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    t = np.arange(int(seconds * 8000)) / 8000
    sf.write(path, 0.5 * np.sin(2 * np.pi * freq * t), 8000)
    return path


# --- folders -----------------------------------------------------------------------------------

@pytest.fixture
def folder(tmp_path) -> Path:
    root = tmp_path / "lib"
    tone(root / "piano" / "a.wav")
    tone(root / "piano" / "soft" / "b.flac")          # deeper: still labelled "piano"
    tone(root / "guitar" / "c.WAV", 220)              # extension case does not matter
    tone(root / "top.wav")                            # directly in root: label = root's name
    tone(root / ".trash" / "d.wav")                   # hidden folder
    tone(root / "guitar" / ".e.wav")                  # hidden file
    (root / "guitar" / "notes.txt").write_text("not audio")
    return root


def test_folder_labels_come_from_subfolders(folder):
    c = load_folder(folder)
    rows = c.items.set_index("id")[["label", "group"]].to_dict("index")
    assert rows == {
        "guitar/c.WAV": {"label": "guitar", "group": "guitar/c.WAV"},
        "piano/a.wav": {"label": "piano", "group": "piano/a.wav"},
        "piano/soft/b.flac": {"label": "piano", "group": "piano/soft/b.flac"},
        "top.wav": {"label": "lib", "group": "top.wav"},
    }
    assert c.name == "lib" and len(c.sources) == 4
    assert all(isinstance(s, FileSource) for s in c.sources)
    assert [Path(p) for p in c.items["path"]] == [s.path for s in c.sources]
    assert c.sources[0].load(SR).shape == (int(0.2 * SR),)
    assert load_collection(str(folder)).items.equals(c.items)


def test_a_flat_folder_is_an_unlabelled_collection(tmp_path):
    root = tmp_path / "flat"
    for name in ("a.wav", "b.flac"):
        tone(root / name)
    c = load_folder(root)
    assert not c.labelled and c.items["label"].isna().all()
    assert c.items["group"].tolist() == ["a.wav", "b.flac"]
    assert c.summary() == "flat: 2 items, no labels, 2 groups"
    assert not c.subset([1]).labelled
    tone(root / "kick" / "c.wav")  # one sub-folder: labelled, as before
    assert load_folder(root).labelled


def test_listing_skips_hidden_and_non_audio(folder):
    names = [p.relative_to(folder).as_posix() for p in list_audio_files(folder)]
    assert names == ["guitar/c.WAV", "piano/a.wav", "piano/soft/b.flac", "top.wav"]


def test_folder_without_audio_is_a_data_error(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="no audio files found"):
        load_folder(tmp_path / "empty")
    tone(tmp_path / "hidden" / ".x" / "a.wav")
    (tmp_path / "hidden" / "readme.txt").write_text("hi")
    with pytest.raises(DataError, match="no audio files found"):
        load_folder(tmp_path / "hidden")
    with pytest.raises(DataError, match="not a folder"):
        load_folder(tmp_path / "missing")


# --- CSV manifests -----------------------------------------------------------------------------

def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def test_manifest_with_groups_and_extra_columns(tmp_path, monkeypatch):
    tone(tmp_path / "data" / "x.wav")
    absolute = tone(tmp_path / "elsewhere" / "y.wav")
    csv = write(tmp_path / "data" / "m.csv",
                f"Path, Label ,group,pitch\nx.wav, bright, g1, C4\n{absolute},dark,g1,D4\n")
    monkeypatch.chdir(tmp_path)  # relative paths are relative to the CSV, not the working dir
    c = load_manifest(csv)
    assert c.name == "m"
    assert c.items[["id", "label", "group", "pitch"]].values.tolist() == [
        ["x.wav", "bright", "g1", "C4"], [str(absolute), "dark", "g1", "D4"]]
    assert c.items["path"].tolist() == [str(tmp_path / "data" / "x.wav"), str(absolute)]
    assert all(len(s.load(8000)) == 1600 for s in c.sources)
    assert load_collection(str(csv)).items.equals(c.items)


def test_manifest_without_group_makes_each_row_its_own_group(tmp_path):
    c = load_manifest(write(tmp_path / "m.csv", "path,label\na.wav,x\nb.wav,x\n"))
    assert c.items["group"].tolist() == ["a.wav", "b.wav"]
    assert c.items["label"].tolist() == ["x", "x"]


def test_manifest_missing_columns(tmp_path):
    with pytest.raises(DataError, match=r"missing label \(found: path, group\)"):
        load_manifest(write(tmp_path / "m.csv", "path,group\na.wav,g\n"))
    with pytest.raises(DataError, match="missing path, label"):
        load_manifest(write(tmp_path / "m.csv", "path;label\na.wav;x\n"))  # not comma-separated


@pytest.mark.parametrize("text, line, column", [
    ("path,label\na.wav,x\nb.wav,\n", 3, "label"),
    ("path,label\na.wav,x\n  ,y\n", 3, "path"),
    ("path,label\nb.wav\n", 2, "label"),                       # a short row
    ("path,label,group\na.wav,x,g\nb.wav,y,   \n", 3, "group"),
    ("path,label\n\na.wav,x\n\n\nb.wav, \n", 6, "label"),      # blank lines are counted
])
def test_manifest_empty_value_names_the_line(tmp_path, text, line, column):
    csv = write(tmp_path / "m.csv", text)
    with pytest.raises(DataError) as info:
        load_manifest(csv)
    assert str(info.value) == f"{csv}: empty '{column}' on line {line}"


def test_manifest_blank_lines_are_ignored(tmp_path):
    c = load_manifest(write(tmp_path / "m.csv", "path,label\n\na.wav,x\n\n"))
    assert c.items["id"].tolist() == ["a.wav"]


def test_manifest_without_rows(tmp_path):
    with pytest.raises(DataError, match="no rows"):
        load_manifest(write(tmp_path / "m.csv", "path,label\n"))
    with pytest.raises(DataError, match="not a readable CSV"):
        load_manifest(write(tmp_path / "empty.csv", ""))


def test_manifest_that_is_not_a_csv(tmp_path):
    garbage = tmp_path / "garbage.csv"
    garbage.write_bytes(np.random.default_rng(0).integers(0, 256, 4000, dtype=np.uint8).tobytes())
    with pytest.raises(DataError, match="garbage.csv"):
        load_manifest(garbage)
    wav = tmp_path / "sound.csv"
    shutil.copyfile(tone(tmp_path / "s.wav"), wav)
    with pytest.raises(DataError, match="sound.csv"):
        load_manifest(wav)
    with pytest.raises(DataError, match="missing path, label"):
        load_manifest(write(tmp_path / "prose.csv", "Dear user,\nthis is a letter.\n"))
    with pytest.raises(DataError, match="no such file"):
        load_manifest(tmp_path / "missing.csv")
    with pytest.raises(DataError, match="cannot read"):
        load_manifest(tmp_path)  # a folder


def test_every_manifest_error_is_one_line(tmp_path):
    garbage = tmp_path / "g.csv"
    garbage.write_bytes(b"\x00\xff\xfe\x01" * 300)
    for csv in (garbage, write(tmp_path / "m.csv", "path\na.wav\n")):
        with pytest.raises(MirsimError) as info:
            load_manifest(csv)
        assert "\n" not in str(info.value)


# --- the dispatcher ----------------------------------------------------------------------------

def test_unknown_name_lists_the_valid_ones(tmp_path):
    assert available_datasets() == ["cyberlioz", "cyberlioz-extended", "grooves", "multitrack",
                                    "soundtracks", "synth"]
    with pytest.raises(UnknownNameError) as info:
        load_collection(str(tmp_path / "no-such-thing"))
    message = str(info.value)
    assert message.startswith("unknown data set")
    for name in ("cyberlioz", "cyberlioz-extended", "synth", "<folder>", "<manifest.csv>"):
        assert name in message
    assert isinstance(info.value, KeyError) and isinstance(info.value, MirsimError)


def test_a_file_that_is_not_csv_is_refused(tmp_path):
    with pytest.raises(DataError, match="must be a CSV manifest"):
        load_collection(str(write(tmp_path / "list.txt", "path,label\n")))


# --- Cyberlioz seed set ------------------------------------------------------------------------

@pytest.fixture(scope="module")
def seeds(cyberlioz_dir):
    return load_cyberlioz(cyberlioz_dir)


@pytest.fixture(scope="module")
def extended(cyberlioz_dir):
    return load_cyberlioz_extended(cyberlioz_dir)


def test_seed_set(seeds, cyberlioz_dir):
    assert seeds.summary() == "cyberlioz: 78 items, 19 labels, 78 groups"
    assert sorted(seeds.items["label"].unique()) == list(range(1, 20))
    sizes = seeds.items["label"].value_counts()
    assert sizes.min() == 2 and sizes.max() == 7
    clusters = pd.read_csv(cyberlioz_dir / "clusters.csv")
    assert dict(zip(seeds.items["id"], seeds.items["label"])) == dict(
        zip(clusters["fname"], clusters["cluster"]))
    table = pd.read_csv(cyberlioz_dir / "seed_filelist.csv")
    assert seeds.items["id"].tolist() == table["fname"].tolist()  # judgment order kept
    assert seeds.items["group"].tolist() == table["IMT"].tolist()
    assert all(Path(p).is_file() for p in seeds.items["path"])
    assert load_collection("cyberlioz", root=cyberlioz_dir).items.equals(seeds.items)


def test_incomplete_directory_is_refused(cyberlioz_dir, tmp_path):
    partial = partial_copy(cyberlioz_dir, tmp_path / "partial")
    assert is_complete(cyberlioz_dir) and not is_complete(partial)
    with pytest.raises(DataError, match="not a complete Cyberlioz directory"):
        load_cyberlioz(partial)


def test_cluster_table_must_cover_every_sound(cyberlioz_dir, tmp_path):
    root = partial_copy(cyberlioz_dir, tmp_path / "c", missing=0)
    clusters = pd.read_csv(root / "clusters.csv")
    clusters.iloc[1:].to_csv(root / "clusters.csv", index=False)
    with pytest.raises(DataError, match=f"clusters.csv: no cluster for {clusters['fname'][0]}"):
        load_cyberlioz(root)


def partial_copy(src: Path, dst: Path, missing: int = 1) -> Path:
    """Tables copied, sounds linked, the last ``missing`` sounds left out."""
    (dst / "audio").mkdir(parents=True)
    for name in ("seed_filelist.csv", "clusters.csv", "extended_filelist.csv"):
        shutil.copyfile(src / name, dst / name)
    fnames = pd.read_csv(src / "seed_filelist.csv")["fname"].tolist()
    for f in fnames[: len(fnames) - missing]:
        os.symlink(src / "audio" / f"{f}.mp3", dst / "audio" / f"{f}.mp3")
    return dst


# --- Cyberlioz extended set (simulated) --------------------------------------------------------

def test_extended_set(extended, seeds):
    assert extended.summary() == "cyberlioz-extended: 7241 items, 19 labels, 78 groups"
    assert "SIMULATED" in extended.description
    assert extended.items["id"].is_unique
    seed_label = dict(zip(seeds.items["id"], seeds.items["label"]))
    seed_group = dict(zip(seeds.items["id"], seeds.items["group"]))
    assert (extended.items["seed"].map(seed_label) == extended.items["label"]).all()
    assert (extended.items["seed"].map(seed_group) == extended.items["group"]).all()
    assert set(extended.items["group"]) == set(seeds.items["group"])
    assert all(isinstance(s, SimulatedSource) for s in extended.sources)


def test_extended_rows_carry_their_simulation_parameters(extended, seeds):
    seed_rows = seeds.items.set_index("id").loc[extended.items["seed"]]
    expected = [simulation_parameters(sp, sd, p, d) for sp, sd, p, d in zip(
        seed_rows["pitch"], seed_rows["dynamics"], extended.items["pitch"], extended.items["dynamics"])]
    assert list(zip(extended.items["n_steps"], extended.items["gain_db"])) == expected
    row = extended.items.index[extended.items["id"] == "Hn-ord-C3-mf"][0]
    assert (extended.items.at[row, "n_steps"], extended.items.at[row, "gain_db"]) == (-12.0, 0.0)
    assert extended.sources[row].name == "Horns/Horn/ordinario/Hn-ord-C3-mf.wav"


def test_extended_with_sol_audio_reads_files(cyberlioz_dir, tmp_path):
    c = load_cyberlioz_extended(cyberlioz_dir, sol_root=tmp_path)
    assert c.items["path"][0] == str(tmp_path / "Horns/Horn/ordinario/Hn-ord-B4-ff.wav")
    assert all(isinstance(s, FileSource) for s in c.sources[:10])
    assert "SIMULATED" not in c.description
    with pytest.raises(DataError, match="SOL root is not a folder"):
        load_cyberlioz_extended(cyberlioz_dir, sol_root=tmp_path / "nope")


@pytest.mark.parametrize("args, expected", [
    (("C4", "mf", "C5", "mf"), (12.0, 0.0)),
    (("C4", "mf", "C3", "ff"), (-12.0, 12.0)),
    (("C#1", "mf", "F1", "pp"), (4.0, -12.0)),
    (("A4", "fff", "A#4", "ppp"), (1.0, -36.0)),
    (("C4", "p", "C4", "p"), (0.0, 0.0)),
    (("C4", "sfz", "D4", "f"), (2.0, 0.0)),       # unknown dynamics: no gain
    ((float("nan"), "mf", "C3", "f"), (0.0, 6.0)),  # unknown pitch: no shift
    (("C4", "mf", "not-a-note", "mf"), (0.0, 0.0)),
])
def test_simulation_parameters(args, expected):
    assert simulation_parameters(*args) == expected


@pytest.fixture(scope="module")
def flute(cyberlioz_dir) -> FileSource:
    return FileSource(cyberlioz_dir / "audio" / "Fl-ord-C4-mf.mp3")


def f0(y: np.ndarray) -> float:
    return float(np.median(librosa.yin(y, fmin=80, fmax=2000, sr=SR)))


def test_octave_up_doubles_the_fundamental(flute):
    base = f0(flute.load(SR, 1.0))
    assert abs(base - 261.6) < 0.02 * 261.6  # C4
    up = SimulatedSource(flute, 12.0, 0.0, "up").load(SR, 1.0)
    down = SimulatedSource(flute, -12.0, 0.0, "down").load(SR, 1.0)
    fifth = SimulatedSource(flute, 7.0, 0.0, "fifth").load(SR, 1.0)
    assert len(up) == len(down) == len(fifth) == SR
    assert f0(up) / base == pytest.approx(2.0, rel=0.01)
    assert f0(down) / base == pytest.approx(0.5, rel=0.01)
    assert f0(fifth) / base == pytest.approx(2 ** (7 / 12), rel=0.01)


def test_gain_scaling_is_exact(flute):
    seed = flute.load(SR, 0.5)
    louder = SimulatedSource(flute, 0.0, 6.0, "g").load(SR, 0.5)
    assert np.array_equal(louder, seed * np.float32(10 ** (6 / 20)))
    shifted = SimulatedSource(flute, 5.0, 0.0, "s").load(SR, 0.5)
    softer = SimulatedSource(flute, 5.0, -12.0, "s").load(SR, 0.5)
    assert np.array_equal(softer, shifted * np.float32(10 ** (-12 / 20)))
    assert np.array_equal(SimulatedSource(flute, 0.0, 0.0, "id").load(SR, 0.5), seed)


def test_simulated_keys_are_deterministic(flute, cyberlioz_dir):
    same_file = FileSource(cyberlioz_dir / "audio" / "Fl-ord-C4-mf.mp3")
    a = SimulatedSource(flute, 3.0, 6.0, "a")
    assert a.key == SimulatedSource(same_file, 3.0, 6.0, "another name").key
    assert len(a.key) == 64 and int(a.key, 16) >= 0
    others = {SimulatedSource(flute, 4.0, 6.0, "x").key, SimulatedSource(flute, 3.0, 0.0, "x").key,
              SimulatedSource(FileSource(cyberlioz_dir / "audio" / "Ob-ord-C4-mf.mp3"),
                              3.0, 6.0, "x").key}
    assert a.key not in others and len(others) == 3
    assert SimulatedSource(flute, 0.0, 0.0, "seed").key == flute.key


# --- finding the data --------------------------------------------------------------------------

def test_find_cyberlioz_honours_the_environment(cyberlioz_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("MIRSIM_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("MIRSIM_CYBERLIOZ_DIR", str(cyberlioz_dir))
    assert find_cyberlioz() == cyberlioz_dir
    monkeypatch.setenv("MIRSIM_CYBERLIOZ_DIR", str(partial_copy(cyberlioz_dir, tmp_path / "p")))
    assert find_cyberlioz() is None
    with pytest.raises(DataError, match="MIRSIM_CYBERLIOZ_DIR"):
        load_cyberlioz()
    (tmp_path / "cache" / "data").mkdir(parents=True)
    os.symlink(cyberlioz_dir, tmp_path / "cache" / "data" / "cyberlioz")
    assert find_cyberlioz() == tmp_path / "cache" / "data" / "cyberlioz"  # then the user cache
    monkeypatch.delenv("MIRSIM_CYBERLIOZ_DIR")
    assert find_cyberlioz() == tmp_path / "cache" / "data" / "cyberlioz"
    assert len(load_collection("cyberlioz")) == 78


# --- symbolic links: followed, each real folder once, loops and dangling links listed ----------

@pytest.fixture
def linked(tmp_path) -> Path:
    """A library with every kind of link: to files, to folders (twice), dangling, looping."""
    root = tmp_path / "lib"
    tone(root / "piano" / "a.wav")
    tone(tmp_path / "outside" / "strings" / "v.wav", 220)
    tone(tmp_path / "outside" / "single.wav", 330)
    (root / "piano" / "linked.wav").symlink_to(tmp_path / "outside" / "single.wav")
    (root / "piano" / "gone.wav").symlink_to("../nowhere.wav")   # dangling
    (root / "piano" / "ping.wav").symlink_to("pong.wav")         # a loop of two links
    (root / "piano" / "pong.wav").symlink_to("ping.wav")
    (root / "piano" / "up").symlink_to("..")                     # a folder loop
    (root / "strings").symlink_to(tmp_path / "outside" / "strings")
    (root / "strings2").symlink_to(tmp_path / "outside" / "strings")  # the same folder again
    (root / "drums").symlink_to(tmp_path / "no-such-folder")      # dangling, once a folder
    (root / ".hidden").symlink_to("nowhere")                     # hidden: not listed
    return root


def test_walk_follows_links_once_and_lists_what_it_skips(linked):
    walk = walk_library(linked)
    assert [p.relative_to(linked).as_posix() for p in walk.files] == [
        "piano/a.wav", "piano/linked.wav", "strings/v.wav"]
    reasons = {s["path"]: s["reason"] for s in walk.skipped}
    assert list(reasons) == sorted(reasons)
    assert reasons == {
        "drums": f"dangling symlink (its target {linked.parent / 'no-such-folder'} does not "
                 f"exist)",
        "piano/gone.wav": "dangling symlink (its target ../nowhere.wav does not exist)",
        "piano/ping.wav": "symlink loop (a chain of links that never reaches a file)",
        "piano/pong.wav": "symlink loop (a chain of links that never reaches a file)",
        "piano/up": "symlink loop (leads back to the library folder, which contains it)",
        "strings2": "symlink to a folder already listed as strings",
    }
    assert list_audio_files(linked) == walk.files


def test_folder_collection_labels_linked_files_by_the_link_and_keeps_the_skipped(linked):
    c = load_folder(linked)
    assert dict(zip(c.items["id"], c.items["label"])) == {
        "piano/a.wav": "piano", "piano/linked.wav": "piano", "strings/v.wav": "strings"}
    assert c.sources[2].load(SR).shape == (int(0.2 * SR),)  # read through the link
    by_id = {s["id"]: s for s in c.skipped}
    assert set(by_id) == {s["path"] for s in walk_library(linked).skipped}
    assert by_id["piano/gone.wav"]["source"] == str(linked / "piano" / "gone.wav")
    assert by_id["piano/gone.wav"]["reason"].startswith("dangling symlink")


def test_a_folder_of_only_broken_links_says_what_it_skipped(tmp_path):
    (tmp_path / "lib").mkdir()
    (tmp_path / "lib" / "a.wav").symlink_to("missing.wav")
    with pytest.raises(DataError, match=r"no audio files found .*skipped 1, e\.g\. a\.wav: "
                                        r"dangling symlink"):
        load_folder(tmp_path / "lib")


def test_label_is_the_first_folder_below_the_root():
    assert label_of("bad/folder.wav/inside.mp3", "lib") == "bad"
    assert label_of("strings/violin/a4.wav", "lib") == "strings"
    assert label_of("a4.wav", "lib") == "lib"


def test_clips_of_a_song_share_its_group_labels_and_dimensions(tmp_path):
    import soundfile as sf

    from mirsim.datasets import Collection
    from mirsim.datasets.clips import clip_collection
    from mirsim.datasets.dimensions import Dimension
    from mirsim.errors import DataError

    paths = []
    for name, f in (("a", 220.0), ("b", 330.0)):
        paths.append(str(tmp_path / f"{name}.wav"))
        sf.write(paths[-1], np.sin(2 * np.pi * f * np.arange(8000 * 5) / 8000), 8000)
    songs = Collection("toy", pd.DataFrame({"id": ["a", "b"], "label": ["x", "y"],
                                            "group": ["a", "b"], "genre": ["x", "y"],
                                            "path": paths}), [None, None],
                       dimensions=[Dimension("genre")])
    c = clip_collection(songs, 3, length=2.0, hop=1.0)
    assert c.items["group"].tolist() == ["a"] * 3 + ["b"] * 3
    assert c.items["genre"].tolist() == ["x"] * 3 + ["y"] * 3
    assert [d.name for d in c.dimensions] == ["genre"]
    assert len(set(s.key for s in c.sources)) == 6  # each clip is cached on its own
    clip = c.sources[4].load(8000)
    assert clip.shape == (16000,)
    np.testing.assert_allclose(clip, np.sin(2 * np.pi * 330.0 * (np.arange(16000) + 8000)
                                            / 8000), atol=1e-3)
    with pytest.raises(DataError, match="at least 1"):
        clip_collection(songs, 0)
