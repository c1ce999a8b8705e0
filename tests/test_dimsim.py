"""The papers' data in their published formats (small fixtures): Dim-sim triplets, MSD audio
with Last.fm tags."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from mirsim.datasets.dimensions import similarity_matrices
from mirsim.datasets.dimsim import (DIMSIM_COLUMNS, clean_triplets, dimsim_triplets, load_dimsim,
                                    load_msd_tags)
from mirsim.errors import DataError

FIXTURES = Path(__file__).parent / "fixtures" / "dimsim"
TRIPLETS = FIXTURES / "dimsim_triplets.csv"
TAGS = FIXTURES / "msd_lastfm_tags.csv"
TRACKS = ("TRAAAGR128F425B14B", "TRAAABD128F429CF47", "TRAAAEF128F4273421", "TRAAAMO128F1481E7F")


@pytest.fixture
def msd_audio(tmp_path):
    """Four 5-second WAV files named by MSD track id (one in a sub-folder), each a tone of its
    own frequency."""
    root = tmp_path / "msd"
    for n, track in enumerate(TRACKS):
        folder = root / track[2] / track[3] if n == 3 else root
        folder.mkdir(parents=True, exist_ok=True)
        t = np.arange(5 * 22050) / 22050
        sf.write(folder / f"{track}.wav", 0.3 * np.sin(2 * np.pi * 220 * (n + 1) * t), 22050)
    return root


def test_the_fixture_has_exactly_the_published_columns():
    assert TRIPLETS.read_text().splitlines()[0].split(",") == list(DIMSIM_COLUMNS)


def test_triplets_from_votes():
    clips, triplets = dimsim_triplets(TRIPLETS)
    assert clips["id"].tolist() == ["TRAAAGR128F425B14B@22050", "TRAAABD128F429CF47@11025",
                                    "TRAAAEF128F4273421@44100", "TRAAAGR128F425B14B@66150",
                                    "TRAAAMO128F1481E7F@0"]
    assert clips.loc[3, ["track_id", "start_seconds", "length_samples"]].tolist() == [
        "TRAAAGR128F425B14B", 3.0, 22050]
    # triplet 3 is a tie (5 votes each): dropped; the positive is the clip with more votes
    assert triplets.values.tolist() == [
        [0, "TRAAAGR128F425B14B@22050", "TRAAABD128F429CF47@11025", "TRAAAEF128F4273421@44100", 1.0],
        [1, "TRAAAGR128F425B14B@22050", "TRAAABD128F429CF47@11025", "TRAAAEF128F4273421@44100", 0.8],
        [2, "TRAAABD128F429CF47@11025", "TRAAAGR128F425B14B@66150", "TRAAAMO128F1481E7F@0", 0.6],
        [4, "TRAAAEF128F4273421@44100", "TRAAAMO128F1481E7F@0", "TRAAAGR128F425B14B@66150", 0.9]]
    assert clean_triplets(triplets)["triplet_id"].tolist() == [0, 4]   # >= 90 % agreement
    assert clean_triplets(triplets, 0.8)["triplet_id"].tolist() == [0, 1, 4]


def test_dimsim_collection_with_and_without_audio(msd_audio):
    bare = load_dimsim(TRIPLETS)
    assert len(bare) == 5 and not bare.labelled and all(s is None for s in bare.sources)
    assert len(bare.triplets) == 4
    assert bare.items["group"].nunique() == 4
    clean = load_dimsim(TRIPLETS, msd_audio, min_agreement=0.9)
    assert clean.triplets["triplet_id"].tolist() == [0, 4]
    anchor = clean.sources[clean.items["id"].tolist().index("TRAAAGR128F425B14B@66150")]
    y = anchor.load(22050)
    assert y.shape == (22050,)   # 1 s from 3.0 s
    expected = 0.3 * np.sin(2 * np.pi * 220 * np.arange(3 * 22050, 4 * 22050) / 22050)
    assert np.allclose(y, expected, atol=1e-3)
    # a track without audio: its clips are skipped and its triplets dropped
    (msd_audio / "TRAAAEF128F4273421.wav").unlink()
    partial = load_dimsim(TRIPLETS, msd_audio)
    assert [s["id"] for s in partial.skipped] == ["TRAAAEF128F4273421@44100"]
    assert partial.triplets["triplet_id"].tolist() == [2]


@pytest.mark.parametrize("edit, message", [
    (lambda t: t.replace("song2_vote", "votes2"), "missing song2_vote"),
    (lambda t: t.replace(",10,0\n", ",ten,0\n"), "line 2: 'song1_vote' is not a number ('ten')"),
    (lambda t: t.splitlines()[0] + "\n", "has no rows"),
])
def test_malformed_dimsim_file_is_one_line(tmp_path, edit, message):
    bad = tmp_path / "bad.csv"
    bad.write_text(edit(TRIPLETS.read_text()))
    with pytest.raises(DataError) as info:
        dimsim_triplets(bad)
    assert message in str(info.value) and "\n" not in str(info.value)


def test_msd_tags_grouped_into_dimensions(msd_audio):
    c = load_msd_tags(msd_audio, TAGS)
    assert c.items["id"].tolist() == sorted(TRACKS)
    assert [d.name for d in c.dimensions] == ["genre", "mood", "instrument", "era"]
    assert all(d.rule == "shared-tag" for d in c.dimensions)
    by_track = c.items.set_index("id")
    # counts below 50 and tags of no dimension ("awesome") are left out; tags in lower case
    assert by_track.loc["TRAAABD128F429CF47", ["genre", "mood", "instrument", "era"]].tolist() == [
        "jazz", "mellow", "piano", ""]
    assert by_track.loc["TRAAAEF128F4273421", "genre"] == "pop|rock"
    assert by_track.loc["TRAAAGR128F425B14B", "era"] == "80s"
    S = similarity_matrices(c.items, c.dimensions)
    order = c.items["id"].tolist()
    gr, ef = order.index("TRAAAGR128F425B14B"), order.index("TRAAAEF128F4273421")
    assert S["genre"][gr, ef] and not S["mood"][gr, ef]   # both rock; GR has no mood tag
    assert S["era"].sum() == 1   # only GR has an era: similar to itself alone
    assert c.sources[0].load(22050).shape == (5 * 22050,)
    assert len(load_msd_tags(msd_audio, TAGS, min_count=10).items.loc[
        lambda i: i["id"] == "TRAAABD128F429CF47", "genre"].item().split("|")) == 2


def test_malformed_tag_file_and_empty_folder(tmp_path, msd_audio):
    bad = tmp_path / "tags.csv"
    bad.write_text("track_id,tag\nTRA,rock\n")
    with pytest.raises(DataError, match="needs columns track_id,tag,count; missing count"):
        load_msd_tags(msd_audio, bad)
    bad.write_text("track_id,tag,count\nTRA,rock,many\n")
    with pytest.raises(DataError, match="line 2: count 'many' is not a number"):
        load_msd_tags(msd_audio, bad)
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="no audio files"):
        load_msd_tags(tmp_path / "empty", TAGS)
