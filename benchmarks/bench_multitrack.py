"""The ``multitrack`` songs: what each Debian package yields, and how long a song takes.

    python benchmarks/bench_multitrack.py [--seconds 30] [--window 60]

Per package (:data:`mirsim.datasets.midi_sources.PACKAGES`): the MIDI songs found, those left
out (the same bytes as an earlier song, MUS lumps, unreadable MIDI), and how many of the
readable ones have at least three and all four of drums, bass, piano and guitar (Slakh's
grouping), over the whole song and in its first ``--window`` seconds (what the build renders).
Then three songs of ``--seconds`` are built with each soundfont; the seconds between two songs
(the first to the third, halved) are the time one song takes to render and write. Writes
``benchmarks/results/multitrack.json``.
"""

from __future__ import annotations

import argparse
import math
import tempfile
import time
from collections import Counter

from _common import write_result

from mirsim.datasets.grooves import SOUNDFONTS
from mirsim.datasets.midi_sources import PACKAGES, midi_sources
from mirsim.datasets.multitrack import INSTRUMENTS, build_multitrack, midi_parts, read_midi


def package_counts(window: float) -> tuple[dict, list]:
    """Songs per package, and the songs with every instrument in the window (in order)."""
    songs, skipped = midi_sources()
    counts = {p: Counter() for p in PACKAGES}
    complete = []
    for s in skipped:
        counts[s.package]["left_out"] += 1
    for song in songs:
        c = counts[song.package]
        c["songs"] += 1
        try:
            midi = read_midi(song.data)
        except Exception:  # noqa: BLE001 - counted, as the build skips it
            c["unreadable"] += 1
            continue
        for name, seconds in (("whole", math.inf), ("window", window)):
            have = sum(g in midi_parts(midi, seconds) for g in INSTRUMENTS)
            c[f"{name}_at_least_3"] += have >= 3
            c[f"{name}_all_4"] += have == len(INSTRUMENTS)
            if name == "window" and have == len(INSTRUMENTS):
                complete.append(song)
    table = {p: dict(c) for p, c in counts.items()}
    table["total"] = dict(sum((Counter(c) for c in counts.values()), Counter()))
    return table, complete


def render_seconds(songs: list, seconds: float, sample_rate: int, soundfont: str) -> dict:
    """Build three songs; the time from the first song's end to the third's, halved."""
    stamps = []
    with tempfile.TemporaryDirectory() as out:
        start = time.perf_counter()
        build_multitrack(out, songs=3, seconds=seconds, sample_rate=sample_rate,
                         soundfonts=[soundfont],
                         sources=(songs[:3], []),
                         progress=lambda d, t: stamps.append(time.perf_counter()))
    return {"first_song_with_soundfont_load": stamps[0] - start,
            "per_song": (stamps[2] - stamps[0]) / 2}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--window", type=float, default=60.0)
    parser.add_argument("--sample-rate", type=int, default=22050)
    args = parser.parse_args()
    start = time.perf_counter()
    table, complete = package_counts(args.window)
    counting = time.perf_counter() - start
    timing = {sf: render_seconds(complete, args.seconds, args.sample_rate, sf)
              for sf in SOUNDFONTS}
    result = {"window_seconds": args.window, "songs_by_package": table,
              "seconds_to_read_and_count_every_song": counting,
              "render": {"song_seconds": args.seconds, "sample_rate": args.sample_rate,
                         "seconds": timing}}
    print(write_result("multitrack", result))
    for package, c in table.items():
        print(package, c)
    print(timing)


if __name__ == "__main__":
    main()
