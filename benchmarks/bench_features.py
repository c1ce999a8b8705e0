"""Feature extraction throughput (audio-seconds analysed per wall-clock second) of each
feature on 1 and 2 cores, on the same sounds, cache disabled (fresh directory).

    MIRSIM_CYBERLIOZ_DIR=... python benchmarks/bench_features.py --n 300   # -> features.json
    python benchmarks/bench_features.py --n 100 --features jtfs,scat1d  # -> features-jtfs-scat1d.json

Default features: mfcc, scat1d, jtfs, musicnn-msd, random.

Three configurations per feature:

- ``1_core``: the main process pinned to one CPU (``os.sched_setaffinity``), one torch thread;
- ``2_cores_threads``: the main process on both CPUs, two torch threads (``n_jobs=1``);
- ``2_cores_processes``: two worker processes of one torch thread each (``n_jobs=2``),
  started before the clock.

The 2-core figure quoted is the better of the last two.

``openl3`` needs torchopenl3 and its weights; ``--openl3-weights random`` times torchopenl3's
own network at random weights instead (the cost of a forward pass does not depend on the
weights' values; the vectors are meaningless), e.g.

    python benchmarks/bench_features.py --n 100 --features openl3 --openl3-weights random
Sounds: a fixed random subset of the simulated Cyberlioz extended set (rendering included, as
it is part of reading those sounds). Every feature analyses the first second of each sound,
except musicnn (``musicnn-msd``, ``musicnn-mtt``: the first 3 s, its input patch).
Writes ``benchmarks/results/features.json`` for the default feature set, else
``features-<names>.json`` (or ``--out NAME``), so a partial run never overwrites the full one.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import torch
from _common import write_result

from mirsim.datasets import load_collection
from mirsim.features import FeatureExtractor, make_extractor
from mirsim.features.extraction import FeatureCache, extract_features

DEFAULT_FEATURES = "mfcc,scat1d,jtfs,musicnn-msd,random"


def result_name(features: str, out: str | None = None) -> str:
    """``features`` for the default set, ``features-<names>`` for any other (or ``out``)."""
    if out:
        return out
    return "features" if features == DEFAULT_FEATURES else "features-" + features.replace(",", "-")


def analysed_seconds(sources, extractor) -> float:
    """Seconds of audio the extractor reads: each sound's length, up to its ``duration``
    (musicnn reads 3 s, and some sounds are shorter)."""
    sr = extractor.sample_rate
    return round(sum(len(s.load(sr, extractor.duration)) for s in sources) / sr, 2)


CONFIGURATIONS = {  # name -> (CPUs the main process may use, torch threads, worker processes)
    "1_core": (1, 1, 1),
    "2_cores_threads": (2, 2, 1),
    "2_cores_processes": (2, 1, 2),
}


@contextmanager
def cpu_budget(n_cpus: int, torch_threads: int):
    """Pin this process to its first ``n_cpus`` CPUs and set torch's thread count, restoring
    both afterwards (worker processes started inside inherit the affinity)."""
    cpus, threads = os.sched_getaffinity(0), torch.get_num_threads()
    if n_cpus > len(cpus):
        raise SystemExit(f"needs {n_cpus} CPUs, this process may use {len(cpus)}")
    os.sched_setaffinity(0, sorted(cpus)[:n_cpus])
    torch.set_num_threads(torch_threads)
    try:
        yield
    finally:
        os.sched_setaffinity(0, cpus)
        torch.set_num_threads(threads)


def random_openl3_weights(path: Path) -> Path:
    """Save torchopenl3's network (mel256, music, 512-d: mirsim's defaults) at random weights."""
    from mirsim.features.openl3 import _import_torchopenl3

    torch.manual_seed(0)
    net = _import_torchopenl3("models").PytorchOpenl3(
        input_repr="mel256", content_type="music", embedding_size=512)
    torch.save(net.state_dict(), path)
    return path


def measure(sources, extractor: FeatureExtractor, configuration: str) -> float:
    n_cpus, torch_threads, n_jobs = CONFIGURATIONS[configuration]
    with cpu_budget(n_cpus, torch_threads):
        return _timed_extraction(sources, extractor, n_jobs)


def _timed_extraction(sources, extractor: FeatureExtractor, n_jobs: int) -> float:
    if n_jobs > 1:  # start the worker processes outside the clock (joblib keeps them)
        with tempfile.TemporaryDirectory() as tmp:
            extract_features(sources[:2 * n_jobs], extractor, cache=FeatureCache(tmp),
                             n_jobs=n_jobs, chunk_size=1)
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        r = extract_features(sources, extractor, cache=FeatureCache(tmp), n_jobs=n_jobs)
        wall = time.perf_counter() - t0
    assert not r.skipped, r.skipped[:3]
    return wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=400)
    parser.add_argument("--features", default=DEFAULT_FEATURES)
    parser.add_argument("--out", default=None,
                        help="result name (default: features, or features-<names> for a subset)")
    parser.add_argument("--openl3-weights", default=None,
                        help="weights file for openl3, or 'random' (speed only)")
    args = parser.parse_args()
    params: dict[str, dict] = {}
    tmp_dir = tempfile.TemporaryDirectory()
    if args.openl3_weights == "random":
        params["openl3"] = {"weights": str(random_openl3_weights(Path(tmp_dir.name) / "w.pt"))}
    elif args.openl3_weights:
        params["openl3"] = {"weights": args.openl3_weights}
    c = load_collection("cyberlioz-extended")
    pick = np.sort(np.random.default_rng(0).choice(len(c), args.n, replace=False))
    sources = [c.sources[i] for i in pick]
    for s in sources[:4]:  # warm up imports and file caches outside the clock
        s.load(22050, 1.0)
    rows = []
    for feature in args.features.split(","):
        extractor = make_extractor(feature, **params.get(feature, {}))
        extractor(np.zeros(22050, np.float32) + 1e-3, 22050)
        audio_seconds = analysed_seconds(sources, extractor)
        walls = {name: measure(sources, extractor, name) for name in CONFIGURATIONS}
        best_2 = min(walls["2_cores_threads"], walls["2_cores_processes"])
        row = {"feature": feature, "n_sounds": args.n, "audio_seconds": audio_seconds,
               **{f"wall_seconds_{k}": round(v, 2) for k, v in walls.items()},
               **{f"audio_seconds_per_second_{k}": round(audio_seconds / v, 1)
                  for k, v in walls.items()},
               "audio_seconds_per_second_2_cores": round(audio_seconds / best_2, 1),
               "speedup_2_cores": round(walls["1_core"] / best_2, 2)}
        if feature == "openl3" and args.openl3_weights == "random":
            row["weights"] = "random (speed only)"
        rows.append(row)
        print(row, flush=True)
    print(f"wrote {write_result(result_name(args.features, args.out), {'rows': rows})}")


if __name__ == "__main__":
    main()
