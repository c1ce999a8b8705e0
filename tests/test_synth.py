"""The offline ``synth`` library: structure, determinism, caching, and that it holds learnable timbre."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from sklearn.model_selection import LeaveOneGroupOut, cross_val_predict
from sklearn.neighbors import KNeighborsClassifier, NearestNeighbors

from mirsim.audio import load_audio
from mirsim.datasets import load_collection
from mirsim.datasets.synth import CATALOGUE, SILENT_PEAK, load_synth, render_note, soundfont_path
from mirsim.errors import DataError
from mirsim.features import make_extractor
from mirsim.features.extraction import extract_features

SMALL = dict(families=["brass", "reeds", "mallets"], programs_per_family=3, n_pitches=2,
             velocities=(40, 110))
MEDIUM = dict(programs_per_family=3, n_pitches=3, velocities=(40, 120))


@pytest.fixture(scope="module")
def library(tmp_path_factory):
    """Every family, 3 programs each: 144 notes, rendered once for the module (about 3 s)."""
    return load_synth(tmp_path_factory.mktemp("synth"), **MEDIUM)


def wav_files(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*.wav"))}


def mtimes(root: Path) -> dict[str, int]:
    return {p.relative_to(root).as_posix(): p.stat().st_mtime_ns for p in root.rglob("*.wav")}


def test_library_structure(library):
    items = library.items
    assert library.name == "synth" and len(library) == 8 * 3 * 3 * 2
    assert "pretty_midi" in library.description
    assert items["id"].is_unique
    assert set(items["label"]) == set(CATALOGUE)
    groups_per_label = items.groupby("label")["group"].nunique()
    assert (groups_per_label == 3).all()
    assert items.groupby("group")["label"].nunique().max() == 1  # a program is in one family
    per_group = items.groupby("group").agg(n=("id", "size"), pitches=("pitch", "nunique"),
                                           velocities=("velocity", "nunique"))
    assert (per_group["n"] == 6).all() and (per_group["pitches"] == 3).all()
    assert (per_group["velocities"] == 2).all()
    for label, group in items[["label", "group"]].drop_duplicates().itertuples(index=False):
        program = next(p for p in CATALOGUE[label] if p.name == group)
        pitches = items.loc[items["group"] == group, "pitch"]
        assert pitches.between(program.low, program.high).all()
        assert (items.loc[items["group"] == group, "program"] == program.number).all()
    for path, label in zip(items["path"], items["label"]):
        assert Path(path).parent.name == label and Path(path).is_file()


def test_every_note_is_audible_unclipped_and_readable(library):
    peaks = []
    for path in library.items["path"]:
        info = sf.info(path)
        assert (info.samplerate, info.channels, info.subtype) == (22050, 1, "PCM_16")
        assert info.frames == int(1.5 * 22050)
        y = load_audio(path, sr=22050)
        peaks.append(float(np.max(np.abs(y))))
    peaks = np.array(peaks)
    assert peaks.min() > SILENT_PEAK
    assert peaks.max() < 1.0
    # velocity is kept: louder velocities are louder, program by program and pitch by pitch
    items = library.items.assign(peak=peaks)
    loud = items.pivot_table(index=["group", "pitch"], columns="velocity", values="peak")
    assert (loud[120] > loud[40]).mean() > 0.95


def test_silent_keys_are_replaced(tmp_path):
    # This soundfont's Alto Sax is silent at key 64. With 16 notes over its range 49..80, one
    # slice of the range is {63, 64}: whichever key a seed tries first, the library plays 63.
    sf2 = soundfont_path().read_bytes()
    assert np.max(np.abs(render_note(sf2, 65, 64, 100))) < SILENT_PEAK
    options = dict(families=["reeds"], programs_per_family=1, n_pitches=16, velocities=(100,))
    for seed in (1, 2):  # seed 1 tries key 63 first, seed 2 tries key 64 first
        c = load_synth(tmp_path / str(seed), seed=seed, **options)
        assert c.items["group"].eq("Alto Sax").all() and len(c) == 16
        assert 63 in set(c.items["pitch"]) and 64 not in set(c.items["pitch"])
    with pytest.raises(DataError, match="Alto Sax: every key of 64..64 renders silent"):
        load_synth(tmp_path / "every-key", **{**options, "n_pitches": 32})


def test_same_seed_gives_identical_files_and_other_seed_differs(tmp_path):
    a = load_synth(tmp_path / "a", seed=3, **SMALL)
    b = load_synth(tmp_path / "b", seed=3, **SMALL)
    c = load_synth(tmp_path / "c", seed=4, **SMALL)
    assert len(a) == 3 * 3 * 2 * 2
    files_a = wav_files(tmp_path / "a")
    assert files_a == wav_files(tmp_path / "b") and len(files_a) == len(a)
    assert a.items.drop(columns="path").equals(b.items.drop(columns="path"))
    assert not c.items["pitch"].equals(a.items["pitch"])


def test_second_call_reuses_files_and_resumes(tmp_path):
    first = load_synth(tmp_path, **SMALL)
    before = mtimes(tmp_path)
    again = load_synth(tmp_path, **SMALL)
    assert mtimes(tmp_path) == before
    assert again.items.equals(first.items)
    # an interrupted render (a file missing) resumes: only that file is written again
    gone = Path(first.items["path"][5])
    gone.unlink()
    load_synth(tmp_path, **SMALL)
    after = mtimes(tmp_path)
    changed = {k for k in after if after[k] != before.get(k)}
    assert changed == {gone.relative_to(tmp_path).as_posix()}
    assert not list(tmp_path.rglob("*.part"))


def test_other_parameters_render_again(tmp_path):
    load_synth(tmp_path, **SMALL)
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    assert manifest["complete"] and manifest["params"]["velocities"] == [40, 110]
    changed = load_synth(tmp_path, **{**SMALL, "velocities": (90,)})
    assert set(changed.items["velocity"]) == {90}
    on_disk = {p.stem for p in tmp_path.rglob("*.wav")}
    assert on_disk == set(changed.items["id"])  # the old renders were removed


def test_load_collection_dispatches_to_synth(tmp_path):
    c = load_collection("synth", root=tmp_path, **SMALL)
    assert c.summary() == "synth: 36 items, 3 labels, 9 groups"


@pytest.mark.parametrize("bad, message", [
    ({"families": ["kazoo"]}, "unknown synth family kazoo"),
    ({"programs_per_family": 9}, "programs_per_family"),
    ({"n_pitches": 40, "families": ["brass"]}, "n_pitches=40 exceeds"),
    ({"velocities": (0, 200)}, "velocities"),
])
def test_invalid_options_are_clear_errors(tmp_path, bad, message):
    with pytest.raises(DataError, match=message):
        load_synth(tmp_path, **{**SMALL, **bad})


def test_instruments_are_recognisable(library, feature_cache):
    """The nearest other note (MFCCs) is mostly a note of the same program.

    Measured on this 144-note library: 0.62 (seeds 1-3: 0.65, 0.66, 0.76); chance is 1/24.
    """
    result = extract_features(library.sources, make_extractor("mfcc"), cache=feature_cache)
    assert not result.skipped
    index = NearestNeighbors(n_neighbors=2).fit(result.features)
    nearest = index.kneighbors(result.features, return_distance=False)[:, 1]
    groups = library.group_codes()
    assert float(np.mean(groups[nearest] == groups)) > 0.45


@pytest.mark.slow
def test_family_is_learnable_across_instruments(tmp_path, feature_cache):
    """1-NN on MFCCs, leave-one-program-out: the family of an unseen instrument, above chance.

    On the default library (576 notes, about 20 s to render and analyse) this measured 0.285
    for seed 0 (seeds 1-3: 0.250, 0.326, 0.304); chance is 1/8 = 0.125. Within instruments
    (random 5-fold) the same 1-NN scores 0.92: telling families apart across instruments is
    the hard part of this data.
    """
    library = load_synth(tmp_path)
    assert len(library) == 8 * 4 * 6 * 3
    assert (library.items.groupby("label")["group"].nunique() == 4).all()
    result = extract_features(library.sources, make_extractor("mfcc"), cache=feature_cache)
    assert not result.skipped
    y, groups = library.label_codes(), library.group_codes()
    predicted = cross_val_predict(KNeighborsClassifier(n_neighbors=1), result.features, y,
                                  groups=groups, cv=LeaveOneGroupOut())
    accuracy = float(np.mean(predicted == y))
    assert accuracy > 0.2, accuracy  # chance 0.125
