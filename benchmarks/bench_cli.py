"""Wall time of short commands: ``mirsim info`` and ``mirsim query`` on a feature index of the
78 Cyberlioz sounds (median of repeated runs, warm disk cache: one untimed run first).

    MIRSIM_CYBERLIOZ_DIR=... python benchmarks/bench_cli.py [--runs 5]

Builds the index once (``mirsim index build AUDIO_DIR --feature mfcc``) in a temporary folder,
then times each command as a fresh process. Writes ``benchmarks/results/cli.json``. The
issue's targets: ``mirsim query`` on a feature index <= 1 s, ``mirsim info`` <= 0.5 s.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import write_result

from mirsim.datasets.locations import find_cyberlioz


def timed(args: list[str], runs: int, env: dict) -> dict:
    subprocess.run(args, env=env, capture_output=True, check=True)  # warm the disk cache
    seconds = []
    for _ in range(runs):
        t0 = time.perf_counter()
        subprocess.run(args, env=env, capture_output=True, check=True)
        seconds.append(time.perf_counter() - t0)
    return {"median_seconds": round(statistics.median(seconds), 3),
            "runs": [round(s, 3) for s in seconds]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    root = find_cyberlioz()
    if root is None:
        sys.exit("set MIRSIM_CYBERLIOZ_DIR to the Cyberlioz seed set")
    mirsim = [sys.executable, "-m", "mirsim.cli"]
    env = dict(os.environ)
    with tempfile.TemporaryDirectory() as tmp:
        index = Path(tmp) / "cyberlioz.index"
        subprocess.run([*mirsim, "index", "build", str(root / "audio"), "--out", str(index),
                        "--feature", "mfcc"], env=env, capture_output=True, check=True)
        query = str(sorted((root / "audio").glob("*.mp3"))[0])
        rows = {"info": timed([*mirsim, "info"], args.runs, env),
                "query (feature index, 78 sounds)": timed([*mirsim, "query", str(index), query],
                                                           args.runs, env),
                "help": timed([*mirsim, "--help"], args.runs, env)}
    for name, r in rows.items():
        print(f"{name:36s} {r['median_seconds']:.3f} s (median of {args.runs})")
    path = write_result("cli", {"what": "wall time of a fresh `python -m mirsim.cli ...` "
                                        "process, warm disk cache", "commands": rows})
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
