"""Listener judgments as data: groupings and triplet files, their errors, and matching them to
a collection's items."""

from __future__ import annotations

import numpy as np
import pytest

from mirsim.datasets.listeners import (JudgedTriplets, JudgmentsError, ListenerGroupings,
                                       find_listener_clusters, listener_groupings_csv,
                                       read_judgments, read_listener_groupings, read_triplets)
from mirsim.datasets.locations import find_cyberlioz
from mirsim.errors import DataError


def write(tmp_path, text: str, name: str = "j.csv"):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_the_shared_listener_groupings(cyberlioz_dir):
    import pandas as pd

    g = read_listener_groupings(cyberlioz_dir / "listener_clusters.csv")
    fnames = pd.read_csv(cyberlioz_dir / "seed_filelist.csv")["fname"].tolist()
    assert g.listeners == tuple(f"L{i:02d}" for i in range(1, 17))
    assert list(g.fnames) == fnames and g.groups.shape == (16, 78)
    assert (g.groups >= 0).all()
    # each listener sorted the 78 sounds into 5 to 19 groups
    n_groups = [len(set(row)) for row in g.groups.tolist()]
    assert min(n_groups) >= 5 and max(n_groups) <= 19


def test_found_beside_the_seed_set(cyberlioz_dir, monkeypatch, tmp_path):
    monkeypatch.setenv("MIRSIM_CYBERLIOZ_DIR", str(cyberlioz_dir))
    monkeypatch.setenv("MIRSIM_CACHE_DIR", str(tmp_path / "cache"))
    assert find_cyberlioz() == cyberlioz_dir
    assert find_listener_clusters() == cyberlioz_dir / "listener_clusters.csv"
    monkeypatch.setenv("MIRSIM_CYBERLIOZ_DIR", str(tmp_path))
    assert find_listener_clusters() is None


def test_groupings_codes_are_per_listener(tmp_path):
    p = write(tmp_path, "Listener, fname ,cluster\nA,x,g2\nA,y,g1\nB,y,g1\nB,z,g1\n\n")
    g = read_listener_groupings(p)
    assert g.listeners == ("A", "B") and g.fnames == ("x", "y", "z")
    assert g.groups.tolist() == [[0, 1, -1], [-1, 0, 0]]  # B did not group x, A not z


def test_writing_and_reading_groupings_round_trips(tmp_path):
    groups = np.array([[3, 3, 1, 2], [1, 2, 2, -1]])
    data = listener_groupings_csv(groups, ["a", "b", "c", "d"])
    assert data.startswith(b"listener,fname,cluster\r\nL01,a,3\r\n")
    p = tmp_path / "g.csv"
    p.write_bytes(data)
    g = read_listener_groupings(p)
    assert g.listeners == ("L01", "L02")
    assert g.groups.tolist() == [[0, 0, 1, 2], [0, 1, 1, -1]]
    names = listener_groupings_csv(np.zeros((100, 1), int), ["a"]).decode().splitlines()
    assert names[1] == "L001,a,0" and names[-1] == "L100,a,0"


G, T = read_listener_groupings, read_triplets


@pytest.mark.parametrize("read, text, message", [
    (G, "", "empty file"),
    (G, "\n  \n", "empty file"),
    (G, "listener,fname,cluster\n", "no rows below the header"),
    (G, "listener,fname\nA,x\n", "needs columns listener,fname,cluster; missing cluster"),
    (G, "listener,fname,cluster\nA,x,1\nA,y,2\nA,x,3\n",
     "line 4: listener A groups 'x' twice (also on line 2)"),
    (G, "listener,fname,cluster\nA,,1\n", "line 2: empty 'fname'"),
    (G, "listener,fname,cluster\nA,x\n", "line 2: 2 fields, the header has 3"),
    (G, "listener,fname,cluster\nA,x,\n", "line 2: empty 'cluster'"),
    (T, "anchor,positive\na,b\n", "needs columns anchor,positive,negative; missing negative"),
    (T, "anchor,positive,negative,weight\na,b,c,heavy\n", "line 2: weight 'heavy' is not a number"),
    (T, "anchor,positive,negative,weight\na,b,c,-1\n", "line 2: weight -1 is not a finite number"),
    (T, "anchor,positive,negative,weight\na,b,c,nan\n", "weight nan is not a finite number"),
    (T, "anchor,positive,negative,weight\na,b,c,\n", "weight '' is not a number"),
    (T, "anchor,positive,negative\na,b,a\n", "line 2: a triplet names three different sounds"),
    (T, "anchor,positive,negative\n", "no rows below the header"),
])
def test_malformed_files_are_one_line_errors(tmp_path, read, text, message):
    with pytest.raises(JudgmentsError) as info:
        read(write(tmp_path, text))
    assert message in str(info.value) and "\n" not in str(info.value)
    assert str(info.value).startswith(str(tmp_path / "j.csv"))
    assert isinstance(info.value, DataError)


def test_unknown_sounds_are_refused_when_the_sounds_are_known(tmp_path):
    p = write(tmp_path, "listener,fname,cluster\nA,x,1\nA,nope,1\n")
    assert read_listener_groupings(p).fnames == ("x", "nope")
    with pytest.raises(JudgmentsError, match="line 3: unknown sound 'nope' in 'fname'"):
        read_listener_groupings(p, fnames=["x", "y"])
    t = write(tmp_path, "anchor,positive,negative\nx,y,nope\n", "t.csv")
    with pytest.raises(JudgmentsError, match="unknown sound 'nope' in 'negative'"):
        read_triplets(t, fnames=["x", "y"])


def test_triplets_with_and_without_weights(tmp_path):
    t = read_triplets(write(tmp_path, "anchor,positive,negative\nb,a,c\na,b,c\n"))
    assert t.fnames == ("b", "a", "c") and t.triplets.tolist() == [[0, 1, 2], [1, 0, 2]]
    assert t.weights is None
    w = read_triplets(write(tmp_path, "anchor,positive,negative,weight\nb,a,c,1e-1\n"))
    assert w.weights.tolist() == [0.1]


def test_the_kind_of_file_is_told_by_its_columns(tmp_path):
    assert isinstance(read_judgments(write(tmp_path, "listener,fname,cluster\nA,x,1\n")),
                      ListenerGroupings)
    assert isinstance(read_judgments(write(tmp_path, "anchor,positive,negative\na,b,c\n")),
                      JudgedTriplets)
    with pytest.raises(JudgmentsError, match="not a judgments file: expected columns"):
        read_judgments(write(tmp_path, "path,label\na.wav,x\n"))


@pytest.mark.parametrize("make, message", [
    (lambda d: d / "none.csv", "none.csv: no such file"),
    (lambda d: d, "is a directory"),
    (lambda d: (d / "b.csv", (d / "b.csv").write_bytes(b"\xff\xfe\x00bad"))[0],
     r"not a text \(UTF-8\) CSV file"),
])
def test_unreadable_files_are_one_line_errors(tmp_path, make, message):
    with pytest.raises(JudgmentsError, match=message):
        read_judgments(make(tmp_path))


def test_aligning_to_items_drops_missing_sounds():
    g = ListenerGroupings(("A", "B"), ("x", "y", "z"), np.array([[0, 0, 1], [0, 1, 1]]))
    aligned, dropped = g.align(["z", "w", "x"])
    assert dropped == ["y"] and aligned.fnames == ("z", "w", "x")
    assert aligned.groups.tolist() == [[1, -1, 0], [1, -1, 0]]
    t = JudgedTriplets(("x", "y", "z"), np.array([[0, 1, 2], [2, 0, 1], [0, 2, 1]]),
                       np.array([1.0, 2.0, 3.0]))
    at, dropped = t.align(["z", "x", "y"])
    assert dropped == [] and at.triplets.tolist() == [[1, 2, 0], [0, 1, 2], [1, 0, 2]]
    at, dropped = t.align(["x", "z"])
    assert dropped == ["y"] and at.triplets.tolist() == [] and at.weights.tolist() == []
