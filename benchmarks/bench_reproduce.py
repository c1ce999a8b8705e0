"""What a ``mirsim reproduce`` command costs at a given size: wall time, peak memory, load.

    python benchmarks/bench_reproduce.py NAME -- multidim [OPTIONS...]
    python benchmarks/bench_reproduce.py multidim-default -- multidim
    python benchmarks/bench_reproduce.py per-instrument-default -- per-instrument

Runs ``mirsim reproduce OPTIONS... --json`` in a child process (its runs in a temporary
folder unless ``--runs`` is among the options), then writes ``benchmarks/results/NAME.json``:
the command, the wall-clock seconds, the child's peak resident memory, the 1-minute load
average before and after (other jobs sharing the cores make a run slower: say so when
quoting it), the machine, and the table the command printed, so that the time and the numbers come from
one run.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time

from _common import write_result


def _arguments() -> tuple[str, list[str]]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("name", help="results file name (benchmarks/results/NAME.json)")
    parser.add_argument("command", nargs=argparse.REMAINDER,
                        help="-- then the reproduce sub-command and its options")
    args = parser.parse_args()
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        parser.error("give the reproduce sub-command after --, e.g. -- multidim --quick")
    return args.name, command


def main() -> None:
    name, command = _arguments()
    with tempfile.TemporaryDirectory() as tmp:
        runs = [] if "--runs" in command else ["--runs", tmp]
        argv = [sys.executable, "-m", "mirsim.cli", "reproduce", *command, *runs, "--json"]
        load_before = os.getloadavg()[0]
        start = time.perf_counter()
        done = subprocess.run(argv, stdout=subprocess.PIPE, text=True)
        seconds = time.perf_counter() - start
        if done.returncode != 0:
            sys.exit(f"mirsim reproduce {' '.join(command)} failed (exit {done.returncode})")
        table = json.loads(done.stdout.strip().splitlines()[-1])  # --json: the table, one line
        table.pop("run_dir", None)  # a temporary folder: not a result
    peak_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss  # KiB on Linux
    shown = [a for i, a in enumerate(command)  # where the runs went is not a result
             if a != "--runs" and (i == 0 or command[i - 1] != "--runs")]
    result = {"command": "mirsim reproduce " + " ".join(shown), "seconds": round(seconds, 1),
              "peak_memory_mb": round(peak_kb / 1024), "load_before": round(load_before, 2),
              "load_after": round(os.getloadavg()[0], 2), "table": table}
    path = write_result(name, result)
    print(f"{result['command']}: {seconds / 60:.1f} min, peak {result['peak_memory_mb']} MB "
          f"-> {path.name}")


if __name__ == "__main__":
    main()
