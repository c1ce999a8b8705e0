"""The Cyberlioz downloader, run for real against a loopback HTTP server."""

from __future__ import annotations

import hashlib
import shutil
import socket
import stat
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import scipy.io
from http_server import serve

from mirsim.datasets.cyberlioz import find_cyberlioz, is_complete
from mirsim.datasets.download import (
    ChecksumError,
    DownloadError,
    clusters_csv_from_judgments,
    cyberlioz_checksums,
    fetch_cyberlioz,
    listener_clusters_csv_from_judgments,
)
from mirsim.datasets.listeners import read_listener_groupings
from mirsim.errors import MirsimError

N_FILES = 3 + 78
#: Where the origin serves the judgments.
JUDGMENTS_PATH = "mathieulagrange/lostanlen2020jasmp/master/experiments/similarity/ticelJudgments.mat"


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def leftovers(root: Path) -> list[Path]:
    """Temporary files a download left behind."""
    return [p for p in root.rglob("*") if p.name.endswith(".part")]


def writable_copy(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    for p in [dst, *dst.rglob("*")]:
        p.chmod(p.stat().st_mode | stat.S_IWUSR)
    return dst


def origin_tree(cyberlioz_dir: Path, root: Path, ensemble: np.ndarray,
                ci: np.ndarray | None = None) -> Path:
    """A directory laid out like the raw-file server of the public origin; its judgments hold
    ``ci`` (default: the 16 shared listeners' groupings, :func:`shared_ci`)."""
    tables = root / "cyrusvahidi" / "ipt-similarity" / "main" / "jasmp"
    sounds = root / "mathieulagrange" / "lostanlen2020jasmp" / "master"
    tables.mkdir(parents=True)
    (sounds / "experiments" / "similarity").mkdir(parents=True)
    shutil.copyfile(cyberlioz_dir / "seed_filelist.csv", tables / "seed_filelist.csv")
    shutil.copyfile(cyberlioz_dir / "extended_filelist.csv", tables / "extended_pitch_F4.csv")
    shutil.copytree(cyberlioz_dir / "audio", sounds / "demo" / "sounds" / "mp3")
    ci = shared_ci(cyberlioz_dir) if ci is None else ci
    scipy.io.savemat(sounds / "experiments" / "similarity" / "ticelJudgments.mat",
                     {"ensemble": np.asarray(ensemble, dtype=np.int64)[None, :],
                      "ci": np.asarray(ci, dtype=np.float64)})  # MATLAB saves doubles
    return root


def true_ensemble(cyberlioz_dir: Path) -> np.ndarray:
    return pd.read_csv(cyberlioz_dir / "clusters.csv")["cluster"].to_numpy()


def shared_ci(cyberlioz_dir: Path) -> np.ndarray:
    """The 16 shared listeners' groupings laid out as ``ticelJudgments.mat``'s ``ci``: one row
    per subject, one column per seed sound in the order of ``seed_filelist.csv``, the
    listener's own group numbers."""
    table = pd.read_csv(cyberlioz_dir / "listener_clusters.csv")
    fnames = pd.read_csv(cyberlioz_dir / "seed_filelist.csv")["fname"]
    wide = table.pivot(index="listener", columns="fname", values="cluster")
    return wide.loc[sorted(wide.index), fnames].to_numpy()


def test_checksum_table_covers_every_seed_file(cyberlioz_dir):
    table = cyberlioz_checksums()
    fnames = pd.read_csv(cyberlioz_dir / "seed_filelist.csv")["fname"]
    expected = {"seed_filelist.csv", "clusters.csv", "extended_filelist.csv", "ticelJudgments.mat",
                *(f"audio/{f}.mp3" for f in fnames)}
    assert set(table) == expected
    assert all(len(h) == 64 and int(h, 16) >= 0 for h in table.values())
    table["clusters.csv"] = "0" * 64  # a copy: the next call is unaffected
    assert cyberlioz_checksums()["clusters.csv"].startswith("feb6682f")


def test_fetch_from_mirror(cyberlioz_dir, tmp_path):
    calls = []
    with serve(cyberlioz_dir) as (url, requests):
        root = fetch_cyberlioz(tmp_path / "cz", base_url=url, progress=lambda d, t: calls.append((d, t)))
    assert root == tmp_path / "cz" and is_complete(root)
    table = cyberlioz_checksums()
    for name, digest in table.items():
        if name != "ticelJudgments.mat":
            assert sha256(root / name) == digest, name
    assert (root / "clusters.csv").read_bytes() == (cyberlioz_dir / "clusters.csv").read_bytes()
    assert len(requests) == N_FILES
    assert calls[-1] == (N_FILES, N_FILES) and [d for d, _ in calls] == list(range(1, N_FILES + 1))
    assert not leftovers(root)


def test_second_fetch_downloads_nothing_and_resume_fetches_only_missing(cyberlioz_dir, tmp_path):
    dest = tmp_path / "cz"
    with serve(cyberlioz_dir) as (url, requests):
        fetch_cyberlioz(dest, base_url=url)
        assert len(requests) == N_FILES
        fetch_cyberlioz(dest, base_url=url)
        assert len(requests) == N_FILES  # nothing downloaded again
        (dest / "audio" / "Fl-ord-C4-mf.mp3").unlink()
        stale = dest / "audio" / ".Fl-ord-C4-mf.mp3.0badf00d.part"  # as a killed run leaves it
        stale.write_bytes(b"half a file")
        (dest / "extended_filelist.csv").write_text("damaged")
        del requests[:]
        fetch_cyberlioz(dest, base_url=url)
    assert sorted(requests) == ["/audio/Fl-ord-C4-mf.mp3", "/extended_filelist.csv"]
    assert not stale.exists() and not leftovers(dest)
    assert is_complete(dest)
    assert sha256(dest / "extended_filelist.csv") == sha256(cyberlioz_dir / "extended_filelist.csv")


def test_corrupted_mirror_raises_and_keeps_no_bad_file(cyberlioz_dir, tmp_path):
    mirror = writable_copy(cyberlioz_dir, tmp_path / "mirror")
    bad = mirror / "audio" / "Vn-ord-C4-mf-4c.mp3"
    data = bytearray(bad.read_bytes())
    data[len(data) // 2] ^= 0xFF
    bad.write_bytes(bytes(data))
    dest = tmp_path / "cz"
    with serve(mirror) as (url, _), pytest.raises(ChecksumError) as info:
        fetch_cyberlioz(dest, base_url=url)
    message = str(info.value)
    assert "audio/Vn-ord-C4-mf-4c.mp3" in message and "\n" not in message
    assert cyberlioz_checksums()["audio/Vn-ord-C4-mf-4c.mp3"] in message
    assert hashlib.sha256(bytes(data)).hexdigest() in message
    assert isinstance(info.value, MirsimError)
    assert not (dest / "audio" / "Vn-ord-C4-mf-4c.mp3").exists()
    assert not leftovers(dest)
    assert not is_complete(dest)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_server_down_gives_one_line_error_naming_the_url(tmp_path):
    url = f"http://127.0.0.1:{_free_port()}"
    with pytest.raises(DownloadError) as info:
        fetch_cyberlioz(tmp_path / "cz", base_url=url, timeout=5)
    message = str(info.value)
    assert message.startswith(f"cannot download {url}/seed_filelist.csv") and "\n" not in message
    assert not leftovers(tmp_path)


def test_missing_file_on_server_reports_http_status(cyberlioz_dir, tmp_path):
    mirror = writable_copy(cyberlioz_dir, tmp_path / "mirror")
    (mirror / "extended_filelist.csv").unlink()
    with serve(mirror) as (url, _), pytest.raises(DownloadError, match="HTTP 404") as info:
        fetch_cyberlioz(tmp_path / "cz", base_url=url)
    assert f"{url}/extended_filelist.csv" in str(info.value)


def test_origin_layout_derives_clusters_from_judgments(cyberlioz_dir, tmp_path):
    tree = origin_tree(cyberlioz_dir, tmp_path / "raw", true_ensemble(cyberlioz_dir))
    mat = tree / JUDGMENTS_PATH
    table = cyberlioz_checksums()
    table["ticelJudgments.mat"] = sha256(mat)  # a synthetic .mat: its bytes differ from the real one
    dest = tmp_path / "cz"
    with serve(tree) as (url, requests):
        fetch_cyberlioz(dest, origin=url, checksums=table)
        first = len(requests)
        fetch_cyberlioz(dest, origin=url, checksums=table)
    assert is_complete(dest)
    assert (dest / "clusters.csv").read_bytes() == (cyberlioz_dir / "clusters.csv").read_bytes()
    # every listener's groupings, extracted from the same file: here the 16 shared ones
    assert (dest / "listener_clusters.csv").read_bytes() == \
        (cyberlioz_dir / "listener_clusters.csv").read_bytes()
    assert not list(dest.rglob("*.mat")) and not leftovers(dest)
    assert first == N_FILES and len(requests) == N_FILES
    assert f"/{JUDGMENTS_PATH}" in requests
    assert "/cyrusvahidi/ipt-similarity/main/jasmp/extended_pitch_F4.csv" in requests
    # names with '+' and '#' are quoted and still reach the right file
    assert "/mathieulagrange/lostanlen2020jasmp/master/demo/sounds/mp3/BBTb-explo-slap-C%231-mf.mp3" in requests
    assert sha256(dest / "audio" / "TpC+H-ord-C4-mf.mp3") == table["audio/TpC+H-ord-C4-mf.mp3"]


def test_origin_rejects_judgments_with_unrecorded_checksum(cyberlioz_dir, tmp_path):
    tree = origin_tree(cyberlioz_dir, tmp_path / "raw", true_ensemble(cyberlioz_dir))
    dest = tmp_path / "cz"
    with serve(tree) as (url, _), pytest.raises(ChecksumError, match="ticelJudgments.mat"):
        fetch_cyberlioz(dest, origin=url)  # the real table: the synthetic .mat does not match
    assert not (dest / "clusters.csv").exists() and not leftovers(dest)


def test_origin_rejects_wrong_clusters(cyberlioz_dir, tmp_path):
    ensemble = true_ensemble(cyberlioz_dir).copy()
    ensemble[[0, 1]] = ensemble[[1, 0]]
    tree = origin_tree(cyberlioz_dir, tmp_path / "raw", ensemble)
    mat = tree / JUDGMENTS_PATH
    table = cyberlioz_checksums()
    table["ticelJudgments.mat"] = sha256(mat)
    dest = tmp_path / "cz"
    with serve(tree) as (url, _), pytest.raises(ChecksumError, match="^clusters.csv: checksum"):
        fetch_cyberlioz(dest, origin=url, checksums=table)
    assert not (dest / "clusters.csv").exists() and not list(dest.rglob("*.mat"))
    assert not (dest / "listener_clusters.csv").exists()


def test_clusters_from_judgments_checks_its_input(tmp_path):
    p = tmp_path / "j.mat"
    scipy.io.savemat(p, {"ensemble": np.array([[3, 1, 2]])})
    assert clusters_csv_from_judgments(p, ["a", "b", "c"]).decode().splitlines() == [
        "fname,cluster", "a,3", "b,1", "c,2"]
    with pytest.raises(DownloadError, match="3 entries for 2 sounds"):
        clusters_csv_from_judgments(p, ["a", "b"])
    scipy.io.savemat(p, {"other": np.array([[1]])})
    with pytest.raises(DownloadError, match="ensemble"):
        clusters_csv_from_judgments(p, ["a"])
    p.write_bytes(b"not a MATLAB file at all")
    with pytest.raises(DownloadError):
        clusters_csv_from_judgments(p, ["a"])


def test_default_destination_is_the_user_cache(cyberlioz_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("MIRSIM_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("MIRSIM_CYBERLIOZ_DIR", raising=False)
    assert find_cyberlioz() is None
    with serve(cyberlioz_dir) as (url, _):
        root = fetch_cyberlioz(base_url=url)
    assert root == tmp_path / "cache" / "data" / "cyberlioz"
    assert find_cyberlioz() == root


def test_listener_groupings_of_a_small_judgments_file(tmp_path):
    p = tmp_path / "j.mat"
    # 3 subjects x 4 sounds, as MATLAB writes them (doubles), plus the names of the sounds
    ci = np.array([[1, 1, 2, 2], [1, 2, 3, 4], [2, 2, 2, 1]], dtype=np.float64)
    scipy.io.savemat(p, {"ci": ci, "names": np.array(["A", "B", "C", "D"], dtype=object),
                         "ensemble": np.array([[1, 1, 2, 2]])})
    data = listener_clusters_csv_from_judgments(p, ["a", "b", "c", "d"])
    lines = data.decode().split("\r\n")
    assert lines[0] == "listener,fname,cluster" and lines[-1] == ""
    assert lines[1:5] == ["L01,a,1", "L01,b,1", "L01,c,2", "L01,d,2"]
    assert lines[5:9] == ["L02,a,1", "L02,b,2", "L02,c,3", "L02,d,4"]
    assert lines[9:13] == ["L03,a,2", "L03,b,2", "L03,c,2", "L03,d,1"] and len(lines) == 14
    (tmp_path / "l.csv").write_bytes(data)
    g = read_listener_groupings(tmp_path / "l.csv", ["a", "b", "c", "d"])
    assert g.listeners == ("L01", "L02", "L03")
    assert g.groups.tolist() == [[0, 0, 1, 1], [0, 1, 2, 3], [0, 0, 0, 1]]


def test_the_shared_listeners_layout_round_trips(cyberlioz_dir, tmp_path):
    p = tmp_path / "j.mat"
    scipy.io.savemat(p, {"ci": shared_ci(cyberlioz_dir).astype(np.float64)})
    fnames = pd.read_csv(cyberlioz_dir / "seed_filelist.csv")["fname"].tolist()
    assert listener_clusters_csv_from_judgments(p, fnames) == \
        (cyberlioz_dir / "listener_clusters.csv").read_bytes()


@pytest.mark.parametrize("contents, message", [
    ({"ensemble": np.array([[1, 2]])}, "no 'ci' variable"),
    ({"ci": np.array([[1, 2, 3]])}, r"'ci' has shape \(1, 3\), expected \(subjects, 2 sounds\)"),
    ({"ci": np.array([[1.5, 2.0]])}, "'ci' does not hold group numbers"),
    ({"ci": np.array([[np.nan, 2.0]])}, "'ci' does not hold group numbers"),
    ({"ci": np.array([[1, 2]]), "names": np.array(["x", "y", "z"], dtype=object)},
     "'names' has 3 entries for 2 sounds"),
])
def test_listener_groupings_check_the_judgments_file(tmp_path, contents, message):
    p = tmp_path / "j.mat"
    scipy.io.savemat(p, contents)
    with pytest.raises(DownloadError, match=message):
        listener_clusters_csv_from_judgments(p, ["a", "b"])


def test_a_missing_or_damaged_listener_table_is_derived_again(cyberlioz_dir, tmp_path):
    tree = origin_tree(cyberlioz_dir, tmp_path / "raw", true_ensemble(cyberlioz_dir))
    mat = tree / JUDGMENTS_PATH
    table = cyberlioz_checksums()
    table["ticelJudgments.mat"] = sha256(mat)
    dest = tmp_path / "cz"
    expected = (cyberlioz_dir / "listener_clusters.csv").read_bytes()
    with serve(tree) as (url, requests):
        fetch_cyberlioz(dest, origin=url, checksums=table)
        for damage in (lambda p: p.unlink(),
                       lambda p: p.write_bytes(expected.replace(b"L02,ASax", b"L01,ASax"))):
            damage(dest / "listener_clusters.csv")
            del requests[:]
            fetch_cyberlioz(dest, origin=url, checksums=table)
            assert requests == [f"/{JUDGMENTS_PATH}"]  # only the judgments, fetched again
            assert (dest / "listener_clusters.csv").read_bytes() == expected
    assert not list(dest.rglob("*.mat")) and not leftovers(dest)
