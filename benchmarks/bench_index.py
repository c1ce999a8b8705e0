"""Sound-index search benchmark: the approximate FAISS index that ``mirsim index build`` uses
for large libraries, against exact search, on random 512-d vectors.

    python benchmarks/bench_index.py [--n 1000000] [--dim 512] [--queries 1000] [--index hnsw]
                                     [--data gaussian|clustered]

Measures, in one run on the same vectors:

* build time of the index (:func:`mirsim.index.faiss_backend.build_faiss_index`, including the
  calibration of its search parameter to recall@10 >= 0.95 on library items) and the resident
  memory it adds (RSS delta);
* p50 / p99 latency of single queries (one vector per call, ``--queries`` of them, after a
  warm-up), through mirsim's ``search`` wrapper (Euclidean distances);
* recall@10 of the approximate index against exact FAISS search (``faiss.knn``);
* the latency of an exact NumPy scan (squared distances from precomputed norms, then
  ``argpartition``), and the speed-up of the index over it (ratio of p50 latencies).

Data: ``gaussian`` (default) draws i.i.d. N(0, 1) vectors, the hardest case for approximate
search (no structure, nearest neighbours barely nearer than the rest); ``clustered`` draws
vectors near a 16-d mixture of 200 clusters mapped into 512-d, closer to what trained
embeddings look like. Queries are fresh draws from the same distribution.

Writes ``benchmarks/results/index.json`` (``index-clustered.json`` for ``--data clustered``).
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import faiss
import numpy as np
from _common import write_result

from mirsim.index.faiss_backend import build_faiss_index, configure, search

TARGETS = {"recall_at_10": 0.95, "p50_ms": 5.0, "speedup_vs_numpy": 100.0}


def make_data(kind: str, n: int, dim: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` vectors of the kind described in the module docstring (float32)."""
    if kind == "gaussian":
        return rng.standard_normal((n, dim), dtype=np.float32)
    centres = rng.standard_normal((200, 16)) * 3.0
    mixing = rng.standard_normal((16, dim)) / 4.0
    latent = centres[rng.integers(0, 200, n)] + rng.standard_normal((n, 16))
    noise = rng.standard_normal((n, dim), dtype=np.float32) * 0.1
    return (latent.astype(np.float32) @ mixing.astype(np.float32) + noise).astype(np.float32)


def rss_bytes() -> int:
    """Current resident set size of this process (Linux ``/proc``; 0 where unavailable)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def latencies_ms(fn, queries: np.ndarray, warmup: int = 20) -> np.ndarray:
    """Wall-clock milliseconds of ``fn(q)`` for each query, one at a time."""
    for q in queries[:warmup]:
        fn(q)
    out = np.empty(len(queries))
    for i, q in enumerate(queries):
        t = time.perf_counter()
        fn(q)
        out[i] = (time.perf_counter() - t) * 1e3
    return out


def numpy_scan(X: np.ndarray, norms: np.ndarray, q: np.ndarray, k: int) -> np.ndarray:
    """Exact k nearest rows of ``X`` by squared Euclidean distance (norms precomputed)."""
    d = norms - 2.0 * (X @ q)
    top = np.argpartition(d, k)[:k]
    return top[np.argsort(d[top])]


def recall_latency_curve(index, params: dict, Q: np.ndarray, truth: np.ndarray, k: int,
                         n_timed: int = 200) -> list[dict]:
    """Recall@k on the fresh queries and p50 latency for search settings around the
    calibrated one (``ef_search`` or ``nprobe``): what the calibration traded."""
    name = "ef_search" if "ef_search" in params else "nprobe" if "nprobe" in params else None
    if name is None:
        return []
    chosen = int(params[name])
    rows = []
    for value in sorted({max(1, chosen // 2), chosen, chosen * 3 // 2, chosen * 2, chosen * 4}):
        configure(index, {name: value})
        _, found = search(index, Q, k)
        recall = float(np.mean([len(set(a) & set(b)) / k for a, b in zip(truth, found)]))
        ms = latencies_ms(lambda q: search(index, q[None, :], k), Q[:n_timed], warmup=10)
        rows.append({name: value, "recall_at_10": round(recall, 4),
                     "p50_ms": round(float(np.median(ms)), 4)})
    return rows


def summary(ms: np.ndarray) -> dict:
    return {"p50": round(float(np.percentile(ms, 50)), 4),
            "p99": round(float(np.percentile(ms, 99)), 4),
            "mean": round(float(ms.mean()), 4), "n": int(len(ms))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1_000_000, help="indexed vectors")
    parser.add_argument("--dim", type=int, default=512)
    parser.add_argument("--queries", type=int, default=1000, help="single queries timed")
    parser.add_argument("--numpy-queries", type=int, default=100,
                        help="queries timed with the NumPy scan (slow)")
    parser.add_argument("--index", choices=("hnsw", "ivf"), default="hnsw")
    parser.add_argument("--data", choices=("gaussian", "clustered"), default="gaussian")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    k = 10
    rng = np.random.default_rng(args.seed)
    data = make_data(args.data, args.n + args.queries, args.dim, rng)
    X, Q = data[:args.n], data[args.n:]  # queries: fresh draws, not indexed
    print(f"{args.n:,} x {args.dim} {args.data} vectors, {args.queries} queries", flush=True)

    rss0 = rss_bytes()
    t = time.perf_counter()
    index, params = build_faiss_index(X, args.index, seed=args.seed)
    build_seconds = time.perf_counter() - t
    rss_delta = rss_bytes() - rss0
    print(f"built {params} in {build_seconds:.1f} s, +{rss_delta / 2**20:.0f} MiB", flush=True)

    _, truth = faiss.knn(Q, X, k)
    _, found = search(index, Q, k)
    recall = float(np.mean([len(set(a) & set(b)) / k for a, b in zip(truth, found)]))
    approx_ms = latencies_ms(lambda q: search(index, q[None, :], k), Q)

    curve = recall_latency_curve(index, params, Q, truth, k)
    configure(index, params)  # back to the calibrated setting

    norms = np.einsum("ij,ij->i", X, X)
    nq = min(args.numpy_queries, len(Q))
    numpy_ms = latencies_ms(lambda q: numpy_scan(X, norms, q, k), Q[:nq], warmup=3)
    agree = np.mean([len(set(numpy_scan(X, norms, q, k)) & set(t_)) / k
                     for q, t_ in zip(Q[:20], truth[:20])])
    flat, _ = build_faiss_index(X, "flat")
    exact_ms = latencies_ms(lambda q: search(flat, q[None, :], k), Q[:nq], warmup=3)
    del flat

    result = {
        "n": args.n, "dim": args.dim, "data": args.data, "k": k, "seed": args.seed,
        "index": params, "build_seconds": round(build_seconds, 2),
        "rss_delta_mib": round(rss_delta / 2**20, 1),
        "latency_ms": summary(approx_ms), "recall_at_10": round(recall, 4),
        "numpy_scan_ms": summary(numpy_ms), "numpy_scan_recall_vs_faiss_exact": float(agree),
        "exact_faiss_flat_ms": summary(exact_ms),
        "recall_latency_curve": curve,
        "speedup_vs_numpy_p50": round(float(np.median(numpy_ms) / np.median(approx_ms)), 1),
        "faiss_version": faiss.__version__, "faiss_omp_threads": faiss.omp_get_max_threads(),
        "load_average": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
        "targets": TARGETS,
    }
    result["targets_met"] = {
        "recall_at_10": result["recall_at_10"] >= TARGETS["recall_at_10"],
        "p50_ms": result["latency_ms"]["p50"] <= TARGETS["p50_ms"],
        "speedup_vs_numpy": result["speedup_vs_numpy_p50"] >= TARGETS["speedup_vs_numpy"]}
    for key in ("recall_at_10", "latency_ms", "numpy_scan_ms", "exact_faiss_flat_ms",
                "speedup_vs_numpy_p50", "recall_latency_curve", "targets_met"):
        print(f"{key}: {result[key]}", flush=True)
    name = "index" if args.data == "gaussian" else "index-clustered"
    print(f"wrote {write_result(name, result)}")


if __name__ == "__main__":
    main()
