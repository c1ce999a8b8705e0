"""A user's tagged library CSV: header-declared rules, NAME=RULE options, one-line errors."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from mirsim.cli import app
from mirsim.datasets import load_collection
from mirsim.datasets.dimensions import Dimension, similarity_matrices
from mirsim.datasets.tagged import load_tagged
from mirsim.errors import MirsimError

LIBRARY = """path,genre:same-label,tags:shared-tag,bpm:tempo,key:key,artist
songs/a.flac,rock,rock|live,121,E minor,The Xs
songs/b.flac,jazz,,96,Bb major,Ys
/music/c.flac,rock,live,60,e major,Zs
"""


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def test_header_declares_the_dimensions(tmp_path):
    c = load_tagged(write(tmp_path / "lib.csv", LIBRARY))
    assert c.name == "lib" and len(c) == 3
    assert [(d.name, d.rule) for d in c.dimensions] == [
        ("genre", "same-label"), ("tags", "shared-tag"), ("bpm", "tempo"), ("key", "key")]
    items = c.items
    assert items["id"].tolist() == ["songs/a.flac", "songs/b.flac", "/music/c.flac"]
    assert items["path"].tolist() == [str(tmp_path / "songs/a.flac"), str(tmp_path / "songs/b.flac"),
                                      "/music/c.flac"]
    assert items["label"].tolist() == ["rock", "jazz", "rock"]   # the first dimension
    assert items["group"].tolist() == items["id"].tolist()
    assert items["artist"].tolist() == ["The Xs", "Ys", "Zs"]    # metadata, not a dimension
    S = similarity_matrices(c.items, c.dimensions)
    assert S["genre"].astype(int).tolist() == [[1, 0, 1], [0, 1, 0], [1, 0, 1]]
    assert S["tags"].astype(int).tolist() == [[1, 0, 1], [0, 0, 0], [1, 0, 1]]  # b: no tags
    assert S["bpm"].astype(int).tolist() == [[1, 0, 1], [0, 1, 0], [1, 0, 1]]   # 121 ~ 2 x 60
    assert S["key"].astype(int).tolist() == [[1, 0, 1], [0, 1, 0], [1, 0, 1]]   # parallel keys
    assert load_collection(str(tmp_path / "lib.csv")).items.equals(items)


def test_label_and_group_columns_keep_their_meaning(tmp_path):
    c = load_tagged(write(tmp_path / "lib.csv",
                          "path,label,group,mood:same-label\na.wav,x,g,happy\nb.wav,y,g,sad\n"))
    assert c.items[["label", "group", "mood"]].values.tolist() == [["x", "g", "happy"],
                                                                   ["y", "g", "sad"]]


def test_rules_given_as_options(tmp_path):
    plain = write(tmp_path / "plain.csv", "path,genre,era\na.wav,rock,1970s\nb.wav,pop,1970s\n")
    c = load_tagged(plain, ["genre=shared-tag", Dimension("era")])
    assert [(d.name, d.rule) for d in c.dimensions] == [("genre", "shared-tag"),
                                                       ("era", "same-label")]
    assert load_collection(str(plain), dimensions=["era=same-label"]).dimensions == [
        Dimension("era")]
    # an option replaces the rule the header declares
    declared = write(tmp_path / "d.csv", "path,genre:same-label\na.wav,rock|pop\n")
    assert load_tagged(declared, ["genre=shared-tag"]).dimensions == [
        Dimension("genre", "shared-tag")]
    # without rules, a CSV is still a manifest
    assert load_collection(str(write(tmp_path / "m.csv", "path,label\na.wav,x\n"))).dimensions == []


@pytest.mark.parametrize("text, message", [
    ("path,genre:same-lable\na.wav,x\n", "unknown similarity rule 'same-lable'"),
    ("file,genre:same-label\na.wav,x\n", "needs a column path"),
    ("path,genre\na.wav,x\n", "no dimension"),
    ("path,genre:same-label\n", "has no rows"),
    ("path,bpm:tempo\na.wav,120\nb.wav,fast\n", "line 3, column 'bpm': cannot read tempo 'fast'"),
    ("path,key:key\na.wav,H minor\n", "line 2, column 'key': cannot read key 'H minor'"),
    ("path,genre:same-label\na.wav,x\n ,y\n", "empty 'path' on line 3"),
    ("path,genre:same-label,genre:shared-tag\na.wav,x,y\n", "column genre appears twice"),
    ("path,label:same-label\na.wav,x\n", "column 'label' cannot be a dimension"),
    ('path,genre:same-label\n"a.wav,x\n', "not a readable CSV tagged library"),
])
def test_malformed_csv_is_a_one_line_error_naming_the_file(tmp_path, text, message):
    csv = write(tmp_path / "bad.csv", text)
    with pytest.raises(MirsimError) as info:
        load_tagged(csv)
    assert message in str(info.value) and str(csv) in str(info.value)
    assert "\n" not in str(info.value)


def test_cli_info_lists_the_dimensions_and_reports_errors_in_one_line(tmp_path):
    csv = write(tmp_path / "lib.csv", LIBRARY)
    r = CliRunner().invoke(app, ["data", "info", str(csv)])
    assert r.exit_code == 0, r.output
    assert "lib: 3 items, 2 labels, 3 groups" in r.stdout
    assert "dimensions: genre (same-label), tags (shared-tag), bpm (tempo), key (key)" in r.stdout
    plain = write(tmp_path / "plain.csv", "path,genre\na.wav,rock\n")
    r = CliRunner().invoke(app, ["data", "info", str(plain), "--dimension", "genre=shared-tag"])
    assert r.exit_code == 0 and "dimensions: genre (shared-tag)" in r.stdout
    r = CliRunner().invoke(app, ["data", "info", str(plain), "--dimension", "genre"])
    assert r.exit_code == 2 and len(r.output.strip().splitlines()) == 1
    assert "NAME=RULE" in r.output
