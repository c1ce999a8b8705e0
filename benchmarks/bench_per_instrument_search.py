"""Per-instrument search on the rendered multitrack songs: build time, query time, and how
often an instrument's nearest song differs from the mix's.

    python benchmarks/bench_per_instrument_search.py RUN_DIR [--songs 40] [--slakh-root DIR]

``RUN_DIR`` is a ``mirsim reproduce per-instrument --data multitrack`` run (with its models).
The library is the run's ``--songs`` songs (the first tracks with all four instruments, as
the run chose them), indexed twice: as Slakh-layout tracks (original stems) and as their
mixes alone, copied elsewhere (separated by the run's separator). For each of the run's
held-out test songs: its nearest other song by the mix and by each instrument aspect. Reports
the share of test songs whose nearest song by an instrument is not their nearest by the mix,
and the share whose nearest song by an instrument is the same with separated stems as with
the original ones. Writes ``benchmarks/results/per-instrument-search.json``.
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
from _common import write_result

from mirsim.config import data_cache_dir
from mirsim.datasets.slakh import slakh_songs
from mirsim.index import SoundIndex, build_index
from mirsim.models.per_instrument import INSTRUMENTS


def nearest(index: SoundIndex, aspect: str, song: str) -> str:
    """The nearest other song (by track id) of ``song`` by one aspect alone."""
    names = [Path(p).parent.name if Path(p).name.startswith("mix.") else Path(p).stem
             for p in index.manifest["path"]]
    row = names.index(song)
    _, found, _, _ = index.search_aspects(np.asarray(index.aspect_rows[row]), {aspect: 1.0},
                                          k=1, exclude=[row])
    return names[int(found[0])]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", type=Path)
    parser.add_argument("--songs", type=int, default=40)
    parser.add_argument("--slakh-root", type=Path, default=None)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    config = json.loads((args.run / "config.json").read_text())
    table = json.loads((args.run / "per_instrument.json").read_text())
    root = args.slakh_root or Path(config.get("slakh_root") or data_cache_dir("multitrack"))
    seconds = config["data_params"]["seconds"]
    tracks, _ = slakh_songs(root, INSTRUMENTS, 22050, seconds, limit=args.songs)
    test = table["cells"]["mix"]["trial-0"]["songs"]

    work = Path(tempfile.mkdtemp(prefix="per-instrument-search-"))
    stems_lib, mixes_lib = work / "tracks", work / "mixes"
    stems_lib.mkdir(), mixes_lib.mkdir()
    for t in tracks:
        (stems_lib / t.id).symlink_to(t.path.resolve(), target_is_directory=True)
        shutil.copy(t.mix, mixes_lib / f"{t.id}{t.mix.suffix}")

    result = {"run": args.run.name, "songs": len(tracks), "test_songs": len(test),
              "song_seconds": None, "indexes": {}}
    indexes = {}
    for name, lib in (("original_stems", stems_lib), ("separated", mixes_lib)):
        t0 = time.perf_counter()
        report = build_index(lib, work / f"{name}.index", run_dir=args.run, n_jobs=args.workers)
        build = time.perf_counter() - t0
        index = SoundIndex.load(work / f"{name}.index")
        indexes[name] = index
        t0 = time.perf_counter()
        for song in test:
            nearest(index, "drums", song)
        query_ms = 1000 * (time.perf_counter() - t0) / len(test)
        result["indexes"][name] = {"n_indexed": report["n_indexed"],
                                   "build_seconds": round(build, 1),
                                   "query_in_index_ms": round(query_ms, 2),
                                   "aspects": list(index.aspect_space.names)}
        result["song_seconds"] = round(float(np.nanmean(index.manifest["duration"])), 1)

    # a new song (not in the index): separated, embedded, searched
    new = work / "new.flac"
    shutil.copy(tracks[0].mix, new)
    import soundfile as sf

    y, sr = sf.read(new, dtype="float32")
    sf.write(work / "new.wav", 0.9 * y, sr)
    t0 = time.perf_counter()
    indexes["original_stems"].query_aspects(work / "new.wav", "drums=1", k=10)
    result["query_new_song_seconds"] = round(time.perf_counter() - t0, 2)

    aspects = [a for a in indexes["original_stems"].aspect_space.names if a != "mix"]
    shares = {}
    for aspect in aspects:
        by_mix = {s: nearest(indexes["original_stems"], "mix", s) for s in test}
        by_stem = {s: nearest(indexes["original_stems"], aspect, s) for s in test}
        by_sep = {s: nearest(indexes["separated"], aspect, s) for s in test}
        shares[aspect] = {
            "nearest_differs_from_mix": float(np.mean([by_stem[s] != by_mix[s] for s in test])),
            "separated_agrees_with_original": float(np.mean([by_sep[s] == by_stem[s]
                                                             for s in test])),
            "separated_differs_from_mix": float(np.mean(
                [by_sep[s] != nearest(indexes["separated"], "mix", s) for s in test]))}
    result["shares"] = shares
    # chance level of the agreement: 1 / (songs - 1) for a random nearest song
    result["chance_agreement"] = round(1 / (len(tracks) - 1), 4)
    print(json.dumps(result, indent=1))
    write_result("per-instrument-search", result)
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
