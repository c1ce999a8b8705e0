"""Aspect search benchmark: approximate against exact aspect-weighted search
(:mod:`mirsim.index.aspects`), on random sub-space embeddings of growing size.

    python benchmarks/bench_aspects.py [--sizes 10000,100000] [--aspects 3] [--aspect-dim 64]
                                       [--queries 200] [--quick]

Each library has ``--aspects`` independent sub-spaces of ``--aspect-dim`` columns; in each,
the items lie near one of 50 cluster centres (unit vectors, noise of 0.5 per column before
normalising), drawn independently per aspect, as tempo and key are independent of each
other: neighbours in one aspect are strangers in another. Queries are fresh draws.

For each size, in one run on the same vectors:

* the build time of the approximate index (HNSW over the stored aspect rows, with the
  calibration that ``mirsim index build`` runs, :func:`~mirsim.index.faiss_backend.build_faiss_index`);
* for three weightings (all aspects equal; one aspect alone; 1, 0, 0.5), recall@10 of
  :func:`~mirsim.index.aspects.approximate_aspect_search` against
  :func:`~mirsim.index.aspects.exact_aspect_search` (the brute-force scan), and the p50 /
  p99 latency of single queries of both.

Writes ``benchmarks/results/aspects.json`` (``aspects-quick.json`` with ``--quick``: 2,000
and 10,000 items, 50 queries).
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np
from _common import write_result
from bench_index import latencies_ms, summary

from mirsim.index.aspects import AspectSpace, approximate_aspect_search, exact_aspect_search
from mirsim.index.faiss_backend import build_faiss_index

CLUSTERS = 50
NOISE = 0.5
K = 10


def make_space(n_aspects: int, dim: int) -> AspectSpace:
    """``n_aspects`` fixed-mask aspects of ``dim`` columns each."""
    names = tuple(f"aspect{j}" for j in range(n_aspects))
    return AspectSpace(names, tuple((j * dim, (j + 1) * dim) for j in range(n_aspects)),
                       (None,) * n_aspects)


def make_rows(n: int, space: AspectSpace, centres: list[np.ndarray],
              rng: np.random.Generator) -> np.ndarray:
    """Stored rows: per aspect, a random centre plus noise (normalised by ``space.embed``)."""
    parts = [c[rng.integers(0, len(c), n)] + NOISE * rng.standard_normal((n, c.shape[1]))
             for c in centres]
    return space.embed(np.concatenate(parts, axis=1).astype(np.float32))


def weightings(n_aspects: int) -> dict[str, np.ndarray]:
    """Equal weights, one aspect alone, and a mix (1, 0, 0.5, 0, ...)."""
    mix = np.zeros(n_aspects)
    mix[0], mix[min(2, n_aspects - 1)] = 1.0, 0.5
    one = np.zeros(n_aspects)
    one[0] = 1.0
    return {"equal": np.ones(n_aspects), "one aspect": one, "mixed": mix}


def bench_size(n: int, space: AspectSpace, centres, queries: np.ndarray, seed: int) -> dict:
    rng = np.random.default_rng(seed + n)
    rows = make_rows(n, space, centres, rng)
    t = time.perf_counter()
    index, params = build_faiss_index(rows, "hnsw", seed, distance="cosine")
    build_seconds = time.perf_counter() - t
    print(f"{n:,} items: HNSW built in {build_seconds:.1f} s ({params})", flush=True)
    out = {"n": n, "build_seconds": round(build_seconds, 2), "index": params, "weightings": {}}
    for name, w in weightings(len(space.names)).items():
        exact = [exact_aspect_search(q, rows, space, w, K) for q in queries]
        approx = [approximate_aspect_search(q, rows, space, w, K, index) for q in queries]
        recall = float(np.mean([len(set(a) & set(e)) / K for a, e in zip(approx, exact)]))
        exact_ms = latencies_ms(lambda q: exact_aspect_search(q, rows, space, w, K), queries,
                                warmup=5)
        approx_ms = latencies_ms(lambda q: approximate_aspect_search(q, rows, space, w, K,
                                                                     index), queries, warmup=5)
        row = {"weights": w.tolist(), "recall_at_10": round(recall, 4),
               "exact_ms": summary(exact_ms), "approximate_ms": summary(approx_ms),
               "speedup_p50": round(float(np.median(exact_ms) / np.median(approx_ms)), 1)}
        out["weightings"][name] = row
        print(f"  {name:10} recall@10 {recall:.3f}  exact p50 {row['exact_ms']['p50']:.2f} ms"
              f"  approximate p50 {row['approximate_ms']['p50']:.2f} ms", flush=True)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10000,100000", help="library sizes, comma-separated")
    parser.add_argument("--aspects", type=int, default=3)
    parser.add_argument("--aspect-dim", type=int, default=64)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true", help="2,000 and 10,000 items, 50 queries")
    args = parser.parse_args()
    sizes = [2000, 10000] if args.quick else [int(s) for s in args.sizes.split(",")]
    n_queries = 50 if args.quick else args.queries
    rng = np.random.default_rng(args.seed)
    space = make_space(args.aspects, args.aspect_dim)
    centres = [rng.standard_normal((CLUSTERS, args.aspect_dim)) for _ in range(args.aspects)]
    centres = [c / np.linalg.norm(c, axis=1, keepdims=True) * np.sqrt(args.aspect_dim)
               for c in centres]
    queries = make_rows(n_queries, space, centres, rng)
    result = {"aspects": args.aspects, "aspect_dim": args.aspect_dim, "clusters": CLUSTERS,
              "noise": NOISE, "k": K, "queries": n_queries, "seed": args.seed,
              "sizes": [bench_size(n, space, centres, queries, args.seed) for n in sizes],
              "load_average": list(os.getloadavg()) if hasattr(os, "getloadavg") else None}
    print(f"wrote {write_result('aspects-quick' if args.quick else 'aspects', result)}")


if __name__ == "__main__":
    main()
