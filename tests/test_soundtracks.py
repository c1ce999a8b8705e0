"""The ``soundtracks`` data set: game music of Debian packages, with estimated tempo and key,
its licences, missing packages, and the multidim tables on it."""

from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from mirsim.cli import app
from mirsim.datasets import load_collection
from mirsim.datasets.dimensions import parse_key, similarity_matrices
from mirsim.datasets.soundtracks import (PACKAGES, package_files, package_licence,
                                         soundtrack_items)
from mirsim.errors import DataError


def _missing() -> str | None:
    try:
        for package in PACKAGES:
            package_files(package)
    except DataError as exc:
        return str(exc)
    return None


needs_packages = pytest.mark.skipif(_missing() is not None, reason=str(_missing()))


def test_a_package_that_is_not_installed_names_the_apt_command():
    with pytest.raises(DataError, match="apt-get install"):
        package_files("mirsim-no-such-package")
    with pytest.raises(DataError, match="unknown soundtrack package"):
        soundtrack_items(["mirsim-no-such-package"])


def test_the_licence_is_that_of_the_music_stanza_or_where_to_read_it(tmp_path):
    (tmp_path / "game-data").mkdir()
    (tmp_path / "game-data" / "copyright").write_text(
        "Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/\n\n"
        "Files: *\nCopyright: someone\nLicense: GPL-3+\n\n"
        "Files: data/images/*\n data/music/*\nLicense: CC-BY-SA-4.0\n\n"
        "License: GPL-3+\n the text\n")
    assert package_licence("game-data", tmp_path) == "CC-BY-SA-4.0"
    (tmp_path / "free-text").mkdir()
    (tmp_path / "free-text" / "copyright").write_text("This is free software: GPL 2 or later.")
    assert package_licence("free-text", tmp_path) == f"see {tmp_path / 'free-text' / 'copyright'}"
    assert package_licence("absent", tmp_path).startswith("unknown")


@pytest.fixture(scope="module")
def pieces(tmp_path_factory):
    if _missing():
        pytest.skip(_missing())
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MIRSIM_CACHE_DIR", str(tmp_path_factory.mktemp("cache")))
        yield load_collection("soundtracks", limit=2, analysed=12.0)


@needs_packages
def test_every_piece_is_a_package_file_with_its_soundtrack_licence_tempo_and_key(pieces):
    items = pieces.items
    assert len(items) == 2 * len(PACKAGES)
    assert sorted(items["label"].unique()) == sorted(PACKAGES.values())
    assert items["id"].is_unique and (items["group"] == items["id"]).all()
    assert all(licence for licence in items["licence"])
    assert [d.name for d in pieces.dimensions] == ["soundtrack", "tempo", "key"]
    tempi = items["tempo"].to_numpy(dtype=float)
    assert np.all((tempi > 30) & (tempi < 300)), tempi
    assert all(parse_key(k)[1] in ("major", "minor") for k in items["key"])
    sims = similarity_matrices(items, pieces.dimensions)
    assert sims["soundtrack"].sum() == len(PACKAGES) * 2 * 2  # two of each, self included
    assert all(np.array_equal(s, s.T) for s in sims.values())


@needs_packages
def test_clips_of_a_piece_stay_in_its_group(tmp_path, monkeypatch):
    monkeypatch.setenv("MIRSIM_CACHE_DIR", str(tmp_path))
    clips = load_collection("soundtracks", limit=1, estimate=False, segments=3)
    assert len(clips.items) == 3 * len(PACKAGES)
    assert clips.items.groupby("group").size().tolist() == [3] * len(PACKAGES)
    assert [d.name for d in clips.dimensions] == ["soundtrack"]


def test_out_of_range_options_are_refused_in_one_line():
    r = CliRunner().invoke(app, ["reproduce", "multidim", "--data", "soundtracks",
                                 "--songs", "1"])
    assert r.exit_code != 0 and "Traceback" not in r.output


@needs_packages
def test_reproduce_multidim_on_soundtracks(tmp_path, monkeypatch):
    """Clips of held-out pieces, triplets of the soundtrack and of the estimated tempo and key:
    the multidim tables on real recorded music."""
    monkeypatch.setenv("MIRSIM_CACHE_DIR", str(tmp_path / "cache"))
    r = CliRunner().invoke(app, ["reproduce", "multidim", "--data", "soundtracks", "--songs",
                                 "3", "--segments", "2", "--epochs", "1", "--folds", "2",
                                 "--rows", "baseline", "--runs", str(tmp_path / "runs"),
                                 "--json"])
    assert r.exit_code == 0, r.output
    table = json.loads(r.stdout.strip().splitlines()[-1])
    assert table["dimensions"] == ["soundtrack", "tempo", "key"]
    assert table["n_items"] == 3 * 2 * len(PACKAGES)
    cell = table["cells"]["baseline"]["soundtracks"]
    assert set(cell["single"]) == {"soundtrack", "tempo", "key"}
    assert 0.0 <= cell["single"]["soundtrack"]["mean"] <= 1.0
    # three pieces a soundtrack may have no two alike in tempo or key: no triplet, no score
    means = [s["mean"] for s in cell["single"].values()]
    assert all(m is None or np.isnan(m) or 0.0 <= m <= 1.0 for m in means), means


@needs_packages
def test_reproduce_per_instrument_on_soundtracks(tmp_path, monkeypatch):
    """Track identification of the mix and a separated stem on recorded pieces: the pieces
    of both games, the held-out ones drawn from the seed; no Table I (no reference stems)."""
    from mirsim.datasets.soundtracks import interleaved_pieces
    from mirsim.experiments.per_instrument import training_songs

    monkeypatch.setenv("MIRSIM_CACHE_DIR", str(tmp_path / "cache"))
    runs = str(tmp_path / "runs")
    r = CliRunner().invoke(app, [
        "reproduce", "per-instrument", "--data", "soundtracks", "--songs", "4",
        "--test-songs", "2", "--seconds", "6", "--trials", "1", "--epochs", "1",
        "-p", "channels=4", "-p", "n_mels=16", "--conditions", "mix,separated-bass",
        "--runs", runs, "--json"])
    assert r.exit_code == 0, r.output
    table = json.loads(r.stdout.strip().splitlines()[-1])
    assert table["complete"] and set(table["accuracy"]) == {"mix", "separated-bass"}
    assert not table["separation"]
    pieces = interleaved_pieces(soundtrack_items(), 4)["id"].tolist()
    assert {p.split("/")[0] for p in pieces} == set(PACKAGES.values())
    held_out = [p for p, train in zip(pieces, training_songs(4, 2, seed=0)) if not train]
    assert table["cells"]["mix"]["trial-0"]["songs"] == sorted(held_out)
    for condition, message in (("drums", "needs the original stems"),):
        bad = CliRunner().invoke(app, ["reproduce", "per-instrument", "--data", "soundtracks",
                                       "--conditions", f"mix,{condition}", "--runs", runs])
        assert bad.exit_code != 0 and message in bad.output and "Traceback" not in bad.output
    bad = CliRunner().invoke(app, ["reproduce", "per-instrument", "--data", "soundtracks",
                                   "--songs", "100000", "--conditions", "mix", "--runs", runs])
    assert bad.exit_code != 0 and "--songs 100000 asked for" in bad.output
