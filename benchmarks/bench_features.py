"""Feature extraction throughput (audio-seconds analysed per wall-clock second) of each
feature, with 1 and 2 worker processes, on the same sounds, cache disabled (fresh directory).

    MIRSIM_CYBERLIOZ_DIR=... python benchmarks/bench_features.py [--n 400] [--features mfcc,scat1d,random]
    python benchmarks/bench_features.py --n 300 --features jtfs,scat1d   # -> features-jtfs-scat1d.json

One worker is the main process (torch may use both cores inside it, e.g. for scattering);
two workers are two processes of one torch thread each, started before the clock.
Sounds: a fixed random subset of the simulated Cyberlioz extended set (rendering included, as
it is part of reading those sounds). Every feature analyses the first second of each sound,
except musicnn (``musicnn-msd``, ``musicnn-mtt``: the first 3 s, its input patch).
Writes ``benchmarks/results/features.json`` for the default feature set, else
``features-<names>.json`` (or ``--out NAME``), so a partial run never overwrites the full one.
"""

from __future__ import annotations

import argparse
import tempfile
import time

import numpy as np
from _common import write_result

from mirsim.datasets import load_collection
from mirsim.features import make_extractor
from mirsim.features.extraction import FeatureCache, extract_features

DEFAULT_FEATURES = "mfcc,scat1d,random"


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


def measure(sources, feature: str, n_jobs: int) -> float:
    extractor = make_extractor(feature)
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
    args = parser.parse_args()
    c = load_collection("cyberlioz-extended")
    pick = np.sort(np.random.default_rng(0).choice(len(c), args.n, replace=False))
    sources = [c.sources[i] for i in pick]
    for s in sources[:4]:  # warm up imports and file caches outside the clock
        s.load(22050, 1.0)
    rows = []
    for feature in args.features.split(","):
        extractor = make_extractor(feature)
        extractor(np.zeros(22050, np.float32) + 1e-3, 22050)
        audio_seconds = analysed_seconds(sources, extractor)
        walls = {n_jobs: measure(sources, feature, n_jobs) for n_jobs in (1, 2)}
        row = {"feature": feature, "n_sounds": args.n, "audio_seconds": audio_seconds,
               **{f"wall_seconds_{k}_workers": round(v, 2) for k, v in walls.items()},
               **{f"audio_seconds_per_second_{k}_workers": round(audio_seconds / v, 1)
                  for k, v in walls.items()},
               "speedup_2_workers": round(walls[1] / walls[2], 2)}
        rows.append(row)
        print(row, flush=True)
    print(f"wrote {write_result(result_name(args.features, args.out), {'rows': rows})}")


if __name__ == "__main__":
    main()
