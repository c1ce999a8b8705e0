"""Throughput of ``mirsim index build`` (sounds indexed per second) on the same N files: the
serial path (one process), joblib with 2 processes, and a Dask ``LocalCluster`` of 1 and of 2
worker processes (one thread each), each build from a fresh feature cache.

    MIRSIM_CYBERLIOZ_DIR=... python benchmarks/bench_distributed.py [--n 200] [--feature mfcc]
                                     [--data cyberlioz-extended|synthetic|FOLDER] [--repeat 3]

Files: ``cyberlioz-extended`` (default when the Cyberlioz data is found) renders a fixed random
subset of the simulated extended set into a temporary library (the first 2 s of each sound,
44.1 kHz WAV, one folder per cluster), outside the clock; ``synthetic`` writes harmonic tones;
a FOLDER uses its first N audio files. Every build is timed whole (hashing, features, embedding,
FAISS, atomic write) into a new index directory with a new feature cache, so every feature is
really extracted. Worker processes (joblib's pool, the cluster and the imports in its workers)
are started and warmed up on a few other files outside the clock; the time that takes is
reported as ``startup_seconds``. The best of ``--repeat`` builds is kept (the machine is shared).

Writes ``benchmarks/results/distributed.json``.
"""

from __future__ import annotations

import argparse
import logging
import os
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import soundfile as sf
from _common import write_result

from mirsim.datasets.files import list_audio_files
from mirsim.features.extraction import FeatureCache
from mirsim.index import build_index

SR = 44100
#: configuration name -> (n_jobs, Dask workers or None)
CONFIGS = {"serial": (1, None), "joblib-2": (2, None), "dask-1": (1, 1), "dask-2": (2, 2)}


def render_cyberlioz(root: Path, n: int, seed: int = 0) -> Path:
    """``n`` sounds of the simulated Cyberlioz extended set, as WAV files below ``root``."""
    from mirsim.datasets import load_collection

    c = load_collection("cyberlioz-extended")
    pick = np.sort(np.random.default_rng(seed).choice(len(c), n, replace=False))
    for i in pick:
        item = c.items.iloc[i]
        path = root / f"cluster {item['label']}" / f"{item['id']}.wav"
        path.parent.mkdir(parents=True, exist_ok=True)
        sf.write(path, c.sources[i].load(SR, 2.0), SR)
    return root


def write_synthetic(root: Path, n: int, seed: int = 0) -> Path:
    """``n`` one-second harmonic tones (random pitch, 1-30 harmonics), 8 folders."""
    rng = np.random.default_rng(seed)
    t = np.arange(SR) / SR
    for i in range(n):
        f0, n_h = rng.uniform(100, 800), int(rng.integers(1, 31))
        y = sum(np.sin(2 * np.pi * f0 * h * t) / h for h in range(1, n_h + 1) if f0 * h < SR / 2)
        y = 0.3 * y / np.abs(y).max() + rng.standard_normal(SR) * 1e-3
        path = root / f"family {i % 8}" / f"tone {i:05d}.wav"
        path.parent.mkdir(parents=True, exist_ok=True)
        sf.write(path, y.astype(np.float32), SR)
    return root


def link_folder(src: Path, root: Path, n: int) -> Path:
    """The first ``n`` audio files of ``src``, linked below ``root`` at the same relative paths."""
    for path in list_audio_files(src)[:n]:
        dst = root / path.relative_to(src)
        dst.parent.mkdir(parents=True, exist_ok=True)
        os.symlink(path.resolve(), dst)
    return root


def make_library(data: str, root: Path, n: int) -> tuple[Path, str]:
    if data == "synthetic":
        return write_synthetic(root, n), "synthetic harmonic tones"
    if data == "cyberlioz-extended":
        return render_cyberlioz(root, n), "simulated Cyberlioz extended set (2 s, 44.1 kHz WAV)"
    return link_folder(Path(data), root, n), f"the first {n} files of a folder"


@contextmanager
def engine(n_workers: int | None) -> Iterator[object | None]:
    """``None`` (in-process paths) or a Client of a fresh LocalCluster of ``n_workers``."""
    if n_workers is None:
        yield None
        return
    import distributed

    with distributed.LocalCluster(n_workers=n_workers, threads_per_worker=1, processes=True,
                                  dashboard_address=":0", silence_logs=logging.ERROR
                                  ) as cluster, distributed.Client(cluster) as client:
        yield client


def timed_build(library: Path, work: Path, feature: str, n_jobs: int, client) -> tuple[float, dict]:
    """Wall seconds of one whole build from a fresh cache into a new index directory."""
    tag = f"{time.monotonic_ns()}"
    t0 = time.perf_counter()
    report = build_index(library, work / f"{tag}.index", feature=feature, n_jobs=n_jobs,
                         cache=FeatureCache(work / f"{tag}.cache"), scheduler=client)
    return time.perf_counter() - t0, report


def measure(name: str, library: Path, warmup: Path, work: Path, feature: str, repeat: int,
            log: Callable[[str], None]) -> dict:
    n_jobs, n_workers = CONFIGS[name]
    t0 = time.perf_counter()
    with engine(n_workers) as client:
        timed_build(warmup, work, feature, n_jobs, client)  # pools, imports, JIT: off the clock
        startup = time.perf_counter() - t0
        runs = [timed_build(library, work, feature, n_jobs, client) for _ in range(repeat)]
    walls = [w for w, _ in runs]
    best, report = min(runs, key=lambda r: r[0])
    n = report["n_indexed"]
    assert report["n_features_computed"] == n and not report["skipped"], report["skipped"][:3]
    row = {"config": name, "n_jobs": n_jobs, "dask_workers": n_workers, "n_sounds": n,
           "wall_seconds": round(best, 2), "wall_seconds_all": [round(w, 2) for w in walls],
           "sounds_per_second": round(n / best, 1),
           "feature_stage_seconds": report["timings_seconds"]["features"],
           "feature_stage_sounds_per_second":
               round(n / report["timings_seconds"]["features"], 1),
           "startup_seconds": round(startup, 1), "extraction": report["extraction"]}
    log(f"{name}: {row['sounds_per_second']} sounds/s (best of {walls}), startup {startup:.1f} s")
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=200)
    parser.add_argument("--feature", default="mfcc")
    parser.add_argument("--data", default=None, help="cyberlioz-extended (default when the "
                        "Cyberlioz data is found), synthetic, or a folder")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--configs", default=",".join(CONFIGS))
    args = parser.parse_args()
    data = args.data or _default_data()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        library, what = make_library(data, tmp / "library", args.n)
        warmup = write_synthetic(tmp / "warmup", 80, seed=1)  # several chunks: every worker
        rows = [measure(name, library, warmup, tmp / "work", args.feature, args.repeat,
                        lambda s: print(s, flush=True))
                for name in args.configs.split(",")]
    serial = next((r for r in rows if r["config"] == "serial"), None)
    for r in rows:
        r["speedup_vs_serial"] = (round(r["sounds_per_second"] / serial["sounds_per_second"], 2)
                                  if serial else None)
    result = {"data": data, "files": what, "feature": args.feature, "n": args.n,
              "repeat": args.repeat, "rows": rows}
    print(f"wrote {write_result('distributed', result)}")


def _default_data() -> str:
    from mirsim.datasets.cyberlioz import find_cyberlioz

    return "cyberlioz-extended" if find_cyberlioz() is not None else "synthetic"


if __name__ == "__main__":
    main()
