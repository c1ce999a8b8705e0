"""``mirsim index build|info|verify`` and ``mirsim query`` end to end, on small synthetic
libraries: with the library-standardised MFCC pipeline and with a model trained by
``mirsim train``; bad input; a build killed from outside while it extracts features."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from typer.testing import CliRunner

from mirsim.cli import app as mirsim_app
from mirsim.cli.index import standalone_app
from mirsim.index import SoundIndex
from synthetic_audio import SR, harmonic_tone, write_timbre_library

app = standalone_app()  # the same `index` sub-app and `query` command that `mirsim` mounts
app_module = standalone_app.__module__  # runnable with `python -m`


@pytest.fixture(scope="module")
def library(tmp_path_factory) -> Path:
    """Three labels (timbres) x 8 pitches with odd file names, and one empty file."""
    root = tmp_path_factory.mktemp("cli") / "my samples"
    write_timbre_library(root, 8, "{label} {i} ü.wav")
    (root / "bright" / "broken.wav").write_bytes(b"")
    return root


def _run(args: list, target=app):
    return CliRunner().invoke(target, [str(a) for a in args])


def _last_json(result) -> dict:
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_feature_index_build_query_info_verify(library, tmp_path):
    lib = tmp_path / "lib"
    shutil.copytree(library, lib)
    idx = tmp_path / "lib.index"
    r = _run(["index", "build", lib, "--out", idx, "--feature", "mfcc", "--workers", 1, "--json"])
    assert r.exit_code == 0, r.output
    report = _last_json(r)
    assert (report["n_indexed"], report["n_skipped"], report["index_type"]) == (24, 1, "flat")
    assert "skipped 1 file(s)" in r.stderr and "broken.wav: empty file" in r.stderr
    assert (idx / "build_report.json").is_file() and (idx / "faiss.index").is_file()

    query = lib / "dull" / "dull 2 ü.wav"
    r = _run(["query", idx, query, "-k", 5, "--json"])
    assert r.exit_code == 0, r.output
    j = _last_json(r)
    assert j["query"] == str(query) and len(j["results"]) == 5
    assert all({"path", "distance", "label"} <= set(hit) for hit in j["results"])
    assert str(query) not in [hit["path"] for hit in j["results"]]  # never its own neighbour
    assert [hit["label"] for hit in j["results"][:3]] == ["dull"] * 3
    distances = [hit["distance"] for hit in j["results"]]
    assert distances == sorted(distances) and distances[0] > 0

    r = _run(["query", idx, query, "--exclude-same-group", "--json"])
    assert r.exit_code == 0 and "dull" not in {hit["label"] for hit in _last_json(r)["results"]}

    r = _run(["query", idx, query, "-k", 3])
    assert r.exit_code == 0 and "Euclidean (not squared)" in r.stdout
    assert "itself left out" in r.stdout.replace("\n", " ")

    r = _run(["index", "info", idx, "--json"])
    info = _last_json(r)
    assert info["n_items"] == 24 and info["labels"] == {"bright": 8, "dull": 8, "mellow": 8}
    assert info["feature"] == "mfcc" and info["model_id"] == "euclidean-library"
    r = _run(["index", "info", idx])
    assert r.exit_code == 0 and "n_items" in r.stdout and "mellow" in r.stdout

    r = _run(["index", "verify", idx])
    assert r.exit_code == 0 and r.stdout.startswith("ok: 24 sounds")
    sf.write(lib / "mellow" / "mellow 5 ü.wav", harmonic_tone(500.0, 4, 1), SR)
    r = _run(["index", "verify", idx, "--json"])
    assert r.exit_code == 1
    assert _last_json(r)["problems"] == ["changed since the build: mellow/mellow 5 ü.wav"]

    r = _run(["index", "build", lib, "--out", idx, "--feature", "mfcc", "--workers", 1, "--json"])
    assert r.exit_code == 0, r.output
    assert _last_json(r)["n_changed"] == 1 and _last_json(r)["n_features_reused"] == 23
    assert _run(["index", "verify", idx]).exit_code == 0


@pytest.mark.slow
def test_index_built_with_a_mirsim_train_run(library, tmp_path):
    r = _run(["train", "--data", library, "--feature", "mfcc", "--model", "an-gnn", "--folds", 2,
              "-p", "epochs=3", "-p", "batch_size=16", "--workers", 1, "--runs", tmp_path,
              "--json"], target=mirsim_app)
    assert r.exit_code == 0, r.output
    run_dir = _last_json(r)["run_dir"]
    idx = tmp_path / "gnn.index"
    r = _run(["index", "build", library, "--out", idx, "--run", run_dir, "--workers", 1])
    assert r.exit_code == 0, r.output
    assert "indexed 24 sound(s)" in r.stdout
    config = json.loads((idx / "index.json").read_text())
    assert (config["model"], config["graph_model"], config["embedding_dim"]) == ("an-gnn", True, 512)
    assert config["run_dir"] == str(Path(run_dir).resolve())

    outside = tmp_path / "outside.wav"
    sf.write(outside, harmonic_tone(231.0, 4, 42), SR)
    r = _run(["query", idx, outside, "-k", 4, "--json"])
    assert r.exit_code == 0, r.output
    j = _last_json(r)
    expected = SoundIndex.load(idx).query_audio(outside, k=4)
    assert [hit["path"] for hit in j["results"]] == [n.path for n in expected.results]
    assert not j["in_index"]

    inside = library / "bright" / "bright 0 ü.wav"
    j = _last_json(_run(["query", idx, inside, "--json"]))
    assert j["in_index"] and str(inside) not in [hit["path"] for hit in j["results"]]
    assert _run(["index", "verify", idx]).exit_code == 0

    r = _run(["index", "build", library, "--out", idx, "--run", run_dir, "--feature", "mfcc"])
    assert r.exit_code == 2 and "either a run directory or a feature" in r.stderr


def test_query_by_the_prototype_of_a_library_label(library, tmp_path):
    idx = tmp_path / "lib.index"
    assert _run(["index", "build", library, "--out", idx, "--workers", 1]).exit_code == 0
    r = _run(["query", idx, "--prototype", "dull", "-k", 8, "--json"])
    assert r.exit_code == 0, r.output
    j = _last_json(r)
    assert j["prototype"] == {"label": "dull", "source": "library", "n_items": 8}
    assert [hit["label"] for hit in j["results"]] == ["dull"] * 8  # measured: all 8 first
    # the prototype is the mean of the 8 stored embeddings; distances are measured from it
    index = SoundIndex.load(idx)
    rows = np.flatnonzero(index.manifest["label"].to_numpy() == "dull")
    mean = np.asarray(index.embeddings[rows]).mean(axis=0)
    first = index.manifest.index[index.manifest["path"] == j["results"][0]["relpath"]][0]
    assert j["results"][0]["distance"] == pytest.approx(
        float(np.linalg.norm(index.embeddings[first] - mean)), rel=1e-4)
    r = _run(["query", idx, "--prototype", "mellow", "-k", 3])
    assert r.exit_code == 0 and "mean of the library's 8 sound(s) labelled 'mellow'" in \
        r.stdout.replace("\n", " ")


def test_query_by_the_prototype_of_a_prototypical_models_training_class(library, tmp_path,
                                                                        feature_cache):
    from mirsim.models import make_model
    from run_dirs import fitted_run_dir

    # trained on two of the three labels: 'mellow' is a label of the library only
    train_lib = tmp_path / "train"
    for label in ("dull", "bright"):
        shutil.copytree(library / label, train_lib / label)
    model = make_model("prototypical", epochs=5, hidden=(32,), embedding_dim=16,
                       batch_size=16, distance="cosine")
    run_dir = fitted_run_dir(tmp_path / "run", model, train_lib, feature_cache)
    idx = tmp_path / "proto.index"
    r = _run(["index", "build", library, "--out", idx, "--run", run_dir, "--workers", 1])
    assert r.exit_code == 0, r.output
    j = _last_json(_run(["query", idx, "--prototype", "bright", "-k", 24, "--json"]))
    assert j["prototype"] == {"label": "bright", "source": "model", "n_items": None}
    assert j["distance"] == "cosine" and len(j["results"]) == 24
    # the model's own prototype: its cosine distance to each sound is 1 - cos
    index = SoundIndex.load(idx)
    proto = index.pipeline.model.prototypes_[list(index.pipeline.model.classes_).index("bright")]
    for hit in j["results"][:3]:
        row = index.manifest.index[index.manifest["path"] == hit["relpath"]][0]
        assert hit["distance"] == pytest.approx(1 - float(index.embeddings[row] @ proto),
                                                abs=1e-5)
    assert [hit["label"] for hit in j["results"][:8]] == ["bright"] * 8
    j = _last_json(_run(["query", idx, "--prototype", "mellow", "--json"]))
    assert j["prototype"] == {"label": "mellow", "source": "library", "n_items": 8}


@pytest.mark.parametrize("args, message", [
    (["--prototype", "harp"], "unknown prototype label 'harp' (valid: bright, dull, mellow)"),
    ([], "give a sound file (AUDIO) or --prototype LABEL, not neither"),
    (["{lib}/dull/dull 0 ü.wav", "--prototype", "dull"], "not both"),
    (["--prototype", "dull", "--exclude-same-group"], "--exclude-same-group needs a query sound"),
])
def test_bad_prototype_queries_give_one_line_errors(library, tmp_path, args, message):
    idx = tmp_path / "i"
    assert _run(["index", "build", library, "--out", idx, "--workers", 1]).exit_code == 0
    r = _run(["query", idx, *[a.replace("{lib}", str(library)) for a in args]])
    assert r.exit_code == 2, r.output
    assert message in r.stderr.replace("\n", "") and len(r.stderr.strip().splitlines()) <= 2


@pytest.mark.parametrize("make, reason", [
    (lambda p: None, "no such file"),
    (lambda p: p.write_bytes(b""), "empty file (0 bytes)"),
    (lambda p: p.write_text("hello"), "not a readable sound file"),
    (lambda p: sf.write(p, np.zeros(SR, dtype=np.float32), SR), "silent"),
])
def test_bad_query_audio_is_a_one_line_error_naming_the_file(library, tmp_path, make, reason):
    idx = tmp_path / "i"
    assert _run(["index", "build", library, "--out", idx, "--workers", 1]).exit_code == 0
    audio = tmp_path / "bad query.wav"
    make(audio)
    r = _run(["query", idx, audio])
    assert r.exit_code == 2 and r.stdout == ""
    line = r.stderr.replace("\n", "")
    assert f"error: {audio}: {reason}" in line and len(r.stderr.strip().splitlines()) <= 2


@pytest.mark.parametrize("args, message", [
    (["index", "build", "{tmp}/nowhere", "--out", "{tmp}/x"], "nowhere: not a folder"),
    (["index", "build", "{lib}", "--out", "{tmp}/x", "--approximate", "lsh"],
     "unknown approximate setting 'lsh' (valid: auto, never, hnsw, ivf)"),
    (["index", "build", "{lib}", "--out", "{tmp}/x", "--group-by", "album"],
     "unknown group_by 'album' (valid: folder, file)"),
    (["index", "build", "{lib}", "--out", "{tmp}/x", "--run", "{tmp}"],
     "not a mirsim run directory (config.json missing)"),
    (["index", "build", "{lib}", "--out", "{tmp}/x", "--feature", "mel"],
     "unknown feature 'mel' (valid: "),
    (["index", "build", "{lib}", "--out", "{tmp}/x", "--feature-param", "n_mfcc"],
     "parameter 'n_mfcc' not understood"),
    (["index", "build", "{lib}", "--out", "{lib}/dull"], "refusing to replace it"),
    (["query", "{lib}", "{lib}/dull/dull 0 ü.wav"], "not a mirsim sound index"),
    (["query", "{tmp}/none", "{lib}/dull/dull 0 ü.wav"], "no such index directory"),
    (["query", "{tmp}", "{lib}/dull/dull 0 ü.wav", "-k", "0"], "-k must be at least 1"),
    (["index", "info", "{tmp}"], "not a mirsim sound index (index.json missing)"),
    (["index", "verify", "{tmp}/none"], "no such index directory"),
])
def test_bad_arguments_give_one_line_errors(library, tmp_path, args, message):
    r = _run([a.replace("{lib}", str(library)).replace("{tmp}", str(tmp_path)) for a in args])
    assert r.exit_code == 2, r.output
    assert message in r.stderr.replace("\n", "") and len(r.stderr.strip().splitlines()) <= 3


def test_feature_parameters_are_used(library, tmp_path):
    r = _run(["index", "build", library, "--out", tmp_path / "i", "--feature-param", "n_mfcc=13",
              "--workers", 1, "--json"])
    assert r.exit_code == 0, r.output
    info = _last_json(_run(["index", "info", tmp_path / "i", "--json"]))
    assert info["feature_params"] == {"n_mfcc": 13} and info["embedding_dim"] == 13


@pytest.mark.slow
def test_a_cli_build_killed_while_extracting_leaves_the_previous_index(library, tmp_path):
    """SIGKILL from outside, once the build has written its first features to the cache."""
    area = tmp_path / "area"
    lib, idx = area / "lib", area / "lib.index"
    shutil.copytree(library, lib)
    assert _run(["index", "build", lib, "--out", idx, "--workers", 1]).exit_code == 0
    manifest = (idx / "manifest.csv").read_bytes()
    for i in range(96):
        sf.write(lib / "mellow" / f"new {i}.wav", harmonic_tone(200 + i, 4, i), SR)
    cache = tmp_path / "fresh-cache"
    env = {**os.environ, "MIRSIM_CACHE_DIR": str(cache)}
    proc = subprocess.Popen([sys.executable, "-m", "mirsim.cli.index", "index", "build", str(lib),
                             "--out", str(idx), "--workers", "1"], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    while not list(cache.glob("features/*/*/*.npy")):
        assert proc.poll() is None, proc.communicate()[1].decode()[-2000:]
        assert time.monotonic() < deadline, "the build never started extracting"
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.communicate()
    assert proc.returncode == -signal.SIGKILL
    assert len(list(cache.glob("features/*/*/*.npy"))) < 96  # killed mid-extraction
    assert sorted(p.name for p in area.iterdir()) == [".lib.index.lock", "lib", "lib.index"]
    assert (idx / "manifest.csv").read_bytes() == manifest
    r = _run(["query", idx, lib / "dull" / "dull 0 ü.wav", "-k", 3, "--json"])
    assert r.exit_code == 0 and [h["label"] for h in _last_json(r)["results"]] == ["dull"] * 3
    assert _run(["index", "verify", idx, "--no-files"]).exit_code == 0
    r = _run(["index", "build", lib, "--out", idx, "--workers", 1, "--json"])
    assert r.exit_code == 0 and _last_json(r)["n_indexed"] == 24 + 96


# -- one writer per index; a full disk ---------------------------------------------------------
def _build_process(lib: Path, idx: Path, *extra: str, log: Path) -> subprocess.Popen:
    with open(log, "wb") as f:
        return subprocess.Popen([sys.executable, "-m", app_module, "index", "build",
                                 str(lib), "--out", str(idx), "--workers", "1", *extra],
                                stdout=f, stderr=f, env={**os.environ, "PYTHONUNBUFFERED": "1"})


def _wait_until(condition, proc: subprocess.Popen, log: Path, what: str, timeout: float = 120):
    deadline = time.monotonic() + timeout
    while not condition():
        assert proc.poll() is None, f"exited before {what}: {log.read_text()[-2000:]}"
        assert time.monotonic() < deadline, f"never {what}: {log.read_text()[-2000:]}"
        time.sleep(0.02)


def test_two_builds_of_one_index_at_once(library, tmp_path):
    """The second build fails at once naming the first one's pid; with --wait it waits, then
    builds; the first one (stopped meanwhile with SIGSTOP, to hold the lock) succeeds."""
    area = tmp_path / "area"
    lib, idx = area / "lib", area / "lib.index"
    shutil.copytree(library, lib)
    assert _run(["index", "build", lib, "--out", idx, "--workers", 1]).exit_code == 0
    for i in range(3):
        sf.write(lib / "dull" / f"added {i}.wav", harmonic_tone(180 + i, 1, i), SR)
    lock = area / ".lib.index.lock"
    first = _build_process(lib, idx, log=tmp_path / "first.log")
    _wait_until(lambda: lock.read_text().strip() == str(first.pid), first,
                tmp_path / "first.log", "took the lock")
    first.send_signal(signal.SIGSTOP)
    try:
        manifest = (idx / "manifest.csv").read_bytes()
        t = time.monotonic()
        second = subprocess.run([sys.executable, "-m", app_module, "index", "build",
                                 str(lib), "--out", str(idx), "--workers", "1"],
                                capture_output=True, text=True, timeout=120)
        assert second.returncode == 2, second.stderr
        lines = second.stderr.strip().splitlines()
        assert len(lines) == 1 and "Traceback" not in second.stderr
        assert f"another process (pid {first.pid}) is writing this index" in lines[0]
        assert "--wait" in lines[0] and time.monotonic() - t < 60  # at once (imports aside)
        assert (idx / "manifest.csv").read_bytes() == manifest  # untouched

        waiting_log = tmp_path / "waiting.log"
        waiting = _build_process(lib, idx, "--wait", "--json", log=waiting_log)
        _wait_until(lambda: f"by pid {first.pid} to finish" in waiting_log.read_text(),
                    waiting, waiting_log, "said it waits")
        time.sleep(0.5)
        assert waiting.poll() is None  # still waiting
    finally:
        first.send_signal(signal.SIGCONT)
    assert first.wait(timeout=300) == 0, (tmp_path / "first.log").read_text()
    assert waiting.wait(timeout=300) == 0, waiting_log.read_text()
    report = json.loads(waiting_log.read_text().strip().splitlines()[-1])
    assert report["n_indexed"] == 27 and report["n_added"] == 0  # after the first one's build
    assert sorted(p.name for p in area.iterdir()) == [".lib.index.lock", "lib", "lib.index"]
    assert _run(["index", "verify", idx, "--no-files"]).exit_code == 0


def test_a_killed_build_leaves_no_stale_lock(library, tmp_path):
    lib, idx = tmp_path / "lib", tmp_path / "lib.index"
    shutil.copytree(library, lib)
    log = tmp_path / "killed.log"
    killed = _build_process(lib, idx, log=log)
    lock = tmp_path / ".lib.index.lock"
    _wait_until(lambda: lock.is_file() and lock.read_text().strip() == str(killed.pid), killed,
                log, "took the lock")
    killed.send_signal(signal.SIGKILL)
    killed.wait()
    r = _run(["index", "build", lib, "--out", idx, "--workers", 1, "--json"])
    assert r.exit_code == 0, r.output
    assert _last_json(r)["n_indexed"] == 24


@pytest.fixture
def small_disk(tmp_path) -> Path:
    """A 1 MB tmpfs (needs root and a system that lets this process mount)."""
    if not hasattr(os, "geteuid") or os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs needs root")
    disk = tmp_path / "disk"
    disk.mkdir()
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1M", "tmpfs", str(disk)],
                       capture_output=True, text=True)
    if r.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {r.stderr.strip() or r.returncode}")
    yield disk
    subprocess.run(["umount", str(disk)], check=True)


def _fill(disk: Path) -> Path:
    """Fill ``disk`` with one file, page by page, until it is full."""
    filler = disk / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT)
    try:
        while True:
            os.write(fd, b"\0" * 4096)
    except OSError as exc:
        assert exc.errno == 28
    finally:
        os.close(fd)
    return filler


def test_a_full_disk_during_a_build_is_one_line_and_keeps_the_previous_index(
        library, tmp_path, small_disk, monkeypatch):
    """Rebuild an index on a full 1 MB disk, freeing one page more after every failure: each
    write of the build fails in turn, every time with one line, and the previous index stays
    as it was until the build fits."""
    monkeypatch.setenv("MIRSIM_CACHE_DIR", str(tmp_path / "cache"))  # off the small disk
    lib, idx = tmp_path / "lib", small_disk / "lib.index"
    shutil.copytree(library, lib)
    assert _run(["index", "build", lib, "--out", idx, "--workers", 1]).exit_code == 0
    before = {p.relative_to(idx): p.read_bytes() for p in sorted(idx.rglob("*")) if p.is_file()}
    for i in range(40):  # enough new sounds for every file of the index to grow
        sf.write(lib / "mellow" / f"more {i}.wav", harmonic_tone(300 + 3 * i, 4, i), SR)
    filler = _fill(small_disk)
    size, failures = filler.stat().st_size, []
    while True:
        r = _run(["index", "build", lib, "--out", idx, "--workers", 1, "--json"])
        if r.exit_code == 0:
            break
        assert r.exit_code == 2 and r.exception is not None and "Traceback" not in r.output
        line = r.stderr.strip()
        assert len(line.splitlines()) == 1, line
        assert f"{idx}: build failed: No space left on device (writing " in line
        assert line.endswith(f"; the previous index at {idx} is intact"), line
        after = {p.relative_to(idx): p.read_bytes() for p in sorted(idx.rglob("*"))
                 if p.is_file()}
        assert after == before
        assert sorted(p.name for p in small_disk.iterdir()) == [".lib.index.lock", "filler",
                                                                 "lib.index"]
        failures.append(line)
        assert size > 0, "the build never fitted"
        size = max(0, size - 4096)
        os.truncate(filler, size)
    written = {re.search(r"\(writing ([^)/]+)", line).group(1) for line in failures}
    assert written == {"index.json", "manifest.csv", "features.npy", "embeddings.npy",
                       "faiss.index", "model", "build_report.json"}  # each write failed once
    assert _last_json(r)["n_indexed"] == 24 + 40
    assert _run(["index", "verify", idx, "--no-files"]).exit_code == 0
    print(f"\n{len(failures)} failed builds, writing: {sorted(written)}")


#: Libraries that short commands must not import (each costs from a tenth of a second to
#: seconds at start-up; see benchmarks/bench_cli.py): pandas for `query`, more for `info`.
NOT_FOR_QUERY = ("pandas", "torch", "sklearn", "pytorch_metric_learning", "pydantic")
NOT_FOR_INFO = NOT_FOR_QUERY + ("librosa", "faiss", "numba", "scipy")


def _modules_after(args: list[str]) -> set[str]:
    """The top-level modules loaded by a fresh `mirsim ARGS` process (it must succeed)."""
    code = ("import runpy, sys\n"
            f"sys.argv = ['mirsim', *{args!r}]\n"
            "try:\n    runpy.run_module('mirsim.cli', run_name='__main__')\n"
            "except SystemExit as exc:\n    assert not exc.code, exc.code\n"
            "print('MODULES', ' '.join(sorted({m.split('.')[0] for m in sys.modules})))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    return set(out.split("MODULES", 1)[1].split())


def test_short_commands_import_only_what_they_need(library, tmp_path):
    idx = tmp_path / "lib.index"
    assert _run(["index", "build", library, "--out", idx, "--feature", "mfcc",
                 "--workers", 1]).exit_code == 0
    loaded = _modules_after(["query", str(idx), str(library / "dull" / "dull 2 ü.wav")])
    assert "faiss" in loaded and not loaded & set(NOT_FOR_QUERY), loaded & set(NOT_FOR_QUERY)
    _modules_after(["info"])  # the first run writes the registries' catalogue cache ...
    loaded = _modules_after(["info"])  # ... which the next ones read instead of importing
    assert not loaded & set(NOT_FOR_INFO), loaded & set(NOT_FOR_INFO)
