"""Tempo and key estimation (:mod:`mirsim.features.tempo_key`) against the ground truth of the
``grooves`` songs, and what it finds on the real soundtracks.

    python benchmarks/bench_tempo_key.py [--songs 200] [--quick]

On ``grooves`` every song's tempo and key are known (they planned the song). Per song, the
estimate is scored by the rules the ``tempo`` and ``key`` dimensions use to call two songs
alike (:mod:`mirsim.datasets.dimensions`): tempo within 5 BPM of the truth or a whole number
of tempo octaves from it, and the exact tempo (within 5 BPM, no octave); key exactly right,
and right up to the mode (same tonic: the ``key`` rule). With the Debian soundtrack packages
installed (``soundtracks`` data set), the estimates of each real piece are listed (no truth
there). Writes ``benchmarks/results/tempo-key.json`` (``tempo-key-quick.json``: 8 songs).
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from _common import write_result

from mirsim.datasets import load_collection
from mirsim.datasets.dimensions import parse_key, similarity_matrix
from mirsim.errors import MirsimError
from mirsim.features.tempo_key import estimated_tempo_key


def alike(truth: list, estimate: list, rule: str) -> np.ndarray:
    """Per item, whether the estimate and the truth are alike by ``rule``."""
    n = len(truth)
    both = similarity_matrix([*truth, *estimate], rule)
    return both[np.arange(n), n + np.arange(n)]


def grooves_scores(songs: int, quick: bool) -> dict:
    params = {"songs": songs, **({"duration": 10.0} if quick else {})}
    c = load_collection("grooves", **params)
    start = time.perf_counter()
    tempi, keys, skipped = estimated_tempo_key(c.sources)
    seconds = time.perf_counter() - start
    ok = [i for i, k in enumerate(keys) if k is not None]
    truth_t = [float(c.items["tempo"].iloc[i]) for i in ok]
    truth_k = [str(c.items["key"].iloc[i]) for i in ok]
    est_t, est_k = [tempi[i] for i in ok], [keys[i] for i in ok]
    exact_t = np.abs(np.array(truth_t) - np.array(est_t)) <= 5.0
    exact_k = np.array([parse_key(a) == parse_key(b) for a, b in zip(truth_k, est_k)])
    return {"songs": len(c.items), "scored": len(ok), "skipped": len(skipped),
            "seconds_per_song": seconds / max(len(c.items), 1),
            "song_seconds": float(params.get("duration", 30.0)),
            "tempo_within_5_bpm": float(exact_t.mean()),
            "tempo_alike_rule": float(alike(truth_t, est_t, "tempo").mean()),
            "key_exact": float(exact_k.mean()),
            "key_alike_rule": float(alike(truth_k, est_k, "key").mean())}


def soundtrack_estimates() -> dict:
    try:
        c = load_collection("soundtracks")
    except MirsimError as exc:
        return {"skipped": str(exc).splitlines()[0]}
    tempi, keys, skipped = estimated_tempo_key(c.sources)
    return {"pieces": len(c.items), "skipped": len(skipped),
            "estimates": [{"id": str(i), "tempo": t, "key": k}
                          for i, t, k in zip(c.items["id"], tempi, keys)]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--songs", type=int, default=200)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    songs = 8 if args.quick else args.songs
    result = {"grooves": grooves_scores(songs, args.quick),
              "soundtracks": soundtrack_estimates()}
    path = write_result("tempo-key-quick" if args.quick else "tempo-key", result)
    print(path)
    print({k: v for k, v in result["grooves"].items()})


if __name__ == "__main__":
    main()
