"""The distributed build (``build_index(scheduler=...)``, ``mirsim index build --scheduler``) on
a real Dask ``LocalCluster`` of 2 worker processes: it gives the serial build's index, skips the
same bad files with the same reasons, embeds per-item models on the workers, keeps completed
chunks when a worker dies, and works from the command line.

One cluster serves the whole module (starting one, and importing mirsim in its workers, takes
seconds); only the ``--scheduler local`` command-line test starts a cluster of its own.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from run_dirs import fitted_run_dir
from synthetic_audio import SR, harmonic_tone, write_timbre_library
from typer.testing import CliRunner

from mirsim.cli.index import standalone_app
from mirsim.features import make_extractor
from mirsim.features.extraction import FeatureCache
from mirsim.index import SoundIndex, build_index
from mirsim.index import distributed as dist
from mirsim.index.scan import scan_library
from mirsim.models import ANGNNModel, MLPModel

distributed = pytest.importorskip("distributed", reason="the distributed build needs "
                                                        "`pip install mirsim[distributed]`")

app = standalone_app()
#: bad files and the reason the serial build gives for each
BAD = {"bright/broken.wav": "empty file (0 bytes)", "mellow/notes.wav": "not a readable sound file"}
#: manifest columns that must be equal (all of them)
COLUMNS = ["path", "sha256", "duration", "size", "mtime_ns", "label", "group",
           "feature_identity", "model_id", "mirsim_version"]


@pytest.fixture(scope="module")
def library(tmp_path_factory) -> Path:
    """3 timbres x 6 pitches (names with spaces), an empty file and a text file."""
    root = write_timbre_library(tmp_path_factory.mktemp("dist") / "samples", 6)
    (root / "bright" / "broken.wav").write_bytes(b"")
    (root / "mellow" / "notes.wav").write_text("not audio\n" * 20)
    return root


@pytest.fixture(scope="module")
def cluster():
    """A real local cluster: 2 worker processes of one thread. A task whose worker dies is not
    retried (``allowed-failures: 0``), to keep the worker-death test short."""
    import dask

    with dask.config.set({"distributed.scheduler.allowed-failures": 0}):
        local = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                         dashboard_address=":0")
    with local:
        yield local


@pytest.fixture(scope="module")
def serial(library, tmp_path_factory) -> tuple[Path, dict]:
    """The serial (in-process) build of ``library``, with a fresh cache."""
    base = tmp_path_factory.mktemp("serial")
    out = base / "serial.index"
    report = build_index(library, out, feature="mfcc", n_jobs=1, cache=FeatureCache(base / "c"))
    return out, report


def _assert_same_index(a: Path, b: Path) -> None:
    """Same manifest (same order), features, embeddings and FAISS answers."""
    ia, ib = SoundIndex.load(a), SoundIndex.load(b)
    assert ia.manifest[COLUMNS].equals(ib.manifest[COLUMNS])
    assert np.allclose(np.load(a / "features.npy"), np.load(b / "features.npy"), atol=1e-5)
    E = np.asarray(ia.embeddings)
    scale = float(np.abs(E).max())
    assert np.allclose(E, ib.embeddings, rtol=1e-5, atol=1e-6 * scale)
    da, ra = ia.search(E[:5], k=4)
    db, rb = ib.search(E[:5], k=4)
    assert (ra == rb).all() and np.allclose(da, db, rtol=1e-4, atol=1e-5 * scale)
    assert ib.verify().ok


# -- library API ----------------------------------------------------------------------------------
@pytest.mark.slow
def test_cluster_build_equals_serial_build(library, cluster, serial, tmp_path):
    out, cache = tmp_path / "dask.index", FeatureCache(tmp_path / "cache")
    stages: dict[str, tuple[int, int]] = {}
    report = build_index(library, out, feature="mfcc", cache=cache,
                         scheduler=cluster.scheduler_address,
                         progress=lambda s, done, total: stages.__setitem__(s, (done, total)))
    _assert_same_index(serial[0], out)
    assert report["skipped"] == serial[1]["skipped"]
    assert {s["path"]: s["reason"] for s in report["skipped"]}.keys() == BAD.keys()
    for s in report["skipped"]:
        assert BAD[s["path"]] in s["reason"]
    assert report["n_features_computed"] == serial[1]["n_features_computed"] == 18
    engine = report["extraction"]
    assert engine["engine"] == "dask" and engine["n_workers"] == 2
    assert engine["scheduler"] == cluster.scheduler_address and engine["n_tasks"] >= 2
    assert stages["features"] == (20, 20) and stages["cluster"] == (1, 1)
    # the client filled its cache as the chunks came back: a new build computes nothing
    identity = make_extractor("mfcc").identity
    files, _ = scan_library(library)
    assert all(cache.get(identity, f.key) is not None for f in files if f.relpath not in BAD)
    again = build_index(library, tmp_path / "again.index", feature="mfcc", cache=cache,
                        scheduler=cluster.scheduler_address)
    assert (again["n_features_computed"], again["n_features_from_cache"]) == (0, 18)
    assert again["skipped"] == report["skipped"]  # bad files are tried again, same reasons


@pytest.mark.slow
def test_incremental_cluster_build_only_sends_new_sounds(library, cluster, tmp_path):
    lib = tmp_path / "lib"
    shutil.copytree(library, lib)
    out, cache = tmp_path / "lib.index", FeatureCache(tmp_path / "cache")
    build_index(lib, out, feature="mfcc", cache=cache, scheduler=cluster.scheduler_address)
    for i in range(3):
        sf.write(lib / "dull" / f"new {i}.wav", harmonic_tone(300 + 10 * i, 1, 100 + i), SR)
    report = build_index(lib, out, feature="mfcc", cache=FeatureCache(tmp_path / "other"),
                         scheduler=cluster.scheduler_address)
    assert report["n_added"] == 3 and report["n_features_reused"] == 18
    assert report["n_features_computed"] == 3  # the new sounds (the bad files fail again)
    fresh = build_index(lib, tmp_path / "fresh.index", feature="mfcc", n_jobs=1,
                        cache=FeatureCache(tmp_path / "fresh"))
    assert fresh["n_indexed"] == 21
    _assert_same_index(tmp_path / "fresh.index", out)


@pytest.mark.slow
@pytest.mark.parametrize("model", ["mlp", "an-gnn"])
def test_trained_models_give_the_serial_embeddings(library, cluster, tmp_path, model):
    """Per-item models embed on the workers; graph models on the client (they need the whole
    library as their reference graph)."""
    cache = FeatureCache(tmp_path / "cache")
    estimator = (MLPModel(epochs=2, batch_size=16) if model == "mlp"
                 else ANGNNModel(epochs=2, batch_size=16, embedding_dim=32))
    run = fitted_run_dir(tmp_path / "run", estimator, library, cache)
    serial_report = build_index(library, tmp_path / "serial.index", run_dir=run, n_jobs=1,
                                cache=cache)
    report = build_index(library, tmp_path / "dask.index", run_dir=run,
                         cache=FeatureCache(tmp_path / "fresh"),
                         scheduler=cluster.scheduler_address)
    _assert_same_index(tmp_path / "serial.index", tmp_path / "dask.index")
    assert report["skipped"] == serial_report["skipped"]
    if model == "mlp":
        assert report["embeddings"] == "computed (18 by the cluster's workers)"
    else:
        assert report["embeddings"] == serial_report["embeddings"] == \
            "graph: whole library re-embedded"


@pytest.mark.slow
def test_a_file_whose_content_differs_on_the_worker_is_skipped(library, cluster, tmp_path):
    files, _ = scan_library(library)
    good = next(f for f in files if f.relpath == "dull/dull 1.wav")
    wrong = type(good)(good.path, good.relpath, good.size, good.mtime_ns, "0" * 64)
    cache = FeatureCache(tmp_path / "cache")
    r = dist.extract_distributed([good, wrong], make_extractor("mfcc"), cache=cache,
                                 scheduler=cluster.scheduler_address)
    assert r.extraction.ok.tolist() == [0]
    assert r.extraction.skipped == [(1, wrong.name, dist.CONTENT_CHANGED)]
    assert cache.get(make_extractor("mfcc").identity, "0" * 64) is None


# -- command line -----------------------------------------------------------------------------
def _run(args: list):
    return CliRunner().invoke(app, [str(a) for a in args])


@pytest.mark.slow
def test_cli_scheduler_address(library, cluster, serial, tmp_path, monkeypatch):
    monkeypatch.setenv("MIRSIM_CACHE_DIR", str(tmp_path / "cache"))  # really extract
    idx = tmp_path / "cli.index"
    r = _run(["index", "build", library, "--out", idx, "--scheduler", cluster.scheduler_address,
              "--json"])
    assert r.exit_code == 0, r.output
    report = json.loads(r.stdout.strip().splitlines()[-1])
    assert report["extraction"]["engine"] == "dask" and report["n_features_computed"] == 18
    assert "Dask cluster" in r.stderr and "2 worker(s)" in r.stderr
    assert report["skipped"] == serial[1]["skipped"]
    _assert_same_index(serial[0], idx)


@pytest.mark.slow
def test_cli_local_cluster_of_two_workers(library, serial, tmp_path, monkeypatch):
    monkeypatch.setenv("MIRSIM_CACHE_DIR", str(tmp_path / "cache"))
    idx = tmp_path / "local.index"
    r = _run(["index", "build", library, "--out", idx, "--scheduler", "local", "--workers", 2,
              "--json"])
    assert r.exit_code == 0, r.output
    engine = json.loads(r.stdout.strip().splitlines()[-1])["extraction"]
    assert engine == {"engine": "dask", "scheduler": "local", "n_workers": 2,
                      "n_tasks": engine["n_tasks"]}
    _assert_same_index(serial[0], idx)


def test_cli_refuses_workers_with_a_running_cluster(library, tmp_path):
    r = _run(["index", "build", library, "--out", tmp_path / "i", "--scheduler",
              "tcp://127.0.0.1:8786", "--workers", 2])
    assert r.exit_code == 2 and "a running cluster" in r.stderr
    assert not (tmp_path / "i").exists()
    r = _run(["index", "build", library, "--out", tmp_path / "i", "--scheduler", "local",
              "--workers", 0])
    assert r.exit_code == 2 and "at least 1" in r.stderr


@pytest.mark.slow
def test_cli_unreachable_scheduler_is_one_line_error(library, tmp_path, monkeypatch):
    monkeypatch.setattr(dist, "CONNECT_TIMEOUT", 1)
    monkeypatch.setenv("MIRSIM_CACHE_DIR", str(tmp_path / "cache"))
    r = _run(["index", "build", library, "--out", tmp_path / "i", "--scheduler",
              "tcp://127.0.0.1:9"])
    assert r.exit_code == 2, r.output
    assert "cannot reach the Dask scheduler at 'tcp://127.0.0.1:9'" in r.stderr
    assert not (tmp_path / "i").exists()


def test_chunk_sizes():
    assert dist._auto_chunk_size(20, 2) == 3 and dist._auto_chunk_size(10_000, 2) == 32
    assert dist._auto_chunk_size(1, 8) == 1


# -- a worker dies --------------------------------------------------------------------------------
@dataclass
class _FatalSource:
    """A sound whose reading kills the process reading it, as a decoder crash would."""

    name: str
    key: str

    def load(self, sr: int, duration: float | None = None) -> np.ndarray:
        os._exit(13)


@pytest.mark.slow
def test_a_dying_worker_loses_no_completed_chunk(library, cluster, tmp_path):
    """The file that kills its worker is isolated and skipped; every other sound's features
    reach the client's cache (so a rerun would resume); the cluster lives on."""
    import cloudpickle

    cloudpickle.register_pickle_by_value(sys.modules[__name__])  # workers cannot import tests
    files, _ = scan_library(library)
    good = [f for f in files if f.relpath not in BAD]
    sources = [*good[:7], _FatalSource("fatal.wav", "f" * 64), *good[7:]]
    cache, extractor = FeatureCache(tmp_path / "cache"), make_extractor("mfcc")
    done = []
    r = dist.extract_distributed(sources, extractor, cache=cache, chunk_size=4,
                                 scheduler=cluster.scheduler_address, progress=done.append)
    assert r.extraction.skipped == [(7, "fatal.wav", dist.WORKER_DIED)]
    assert len(r.extraction.ok) == len(good) and sum(done) == len(sources)
    assert r.n_tasks > 5  # 5 chunks, then the chunk(s) that lost a worker file by file
    assert all(cache.get(extractor.identity, f.key) is not None for f in good)
    with distributed.Client(cluster) as client:  # the nanny restarted the worker
        client.wait_for_workers(2, timeout=60)
