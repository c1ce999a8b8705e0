"""The per-instrument paper's listening sets, from a ``mirsim reproduce per-instrument`` run,
as a triplet test that ``mirsim listen serve`` serves.

:func:`export_per_instrument_test` reads the run (its ``config.json`` says where the songs
came from, its table the trial-mean song distances of each condition), draws the sets of one
instrument with :func:`mirsim.experiments.per_instrument.listening_design` (the positive from
the instrument metric's top two, the negative from the mix metric's top two) and writes the
test directory with a 10 s clip of each test song's mix (``clips/NNN.flac``: the first
10 s, which the metrics also heard), so that every listener hears the same clip the paper's
listeners would.

Where the mix of a song is (:func:`song_mix_paths`): the ``mix`` file of its track in the
Slakh-layout folder of the run (``--data multitrack``), or the soundtrack's file
(``--data soundtracks``). Synthetic songs are made in memory and have no file: a one-line
error says so.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from mirsim.errors import MirsimError

__all__ = ["CLIPS_DIR", "export_per_instrument_test", "instructions", "song_mix_paths",
           "write_clips"]

#: Folder of a test directory holding its clips.
CLIPS_DIR = "clips"


def song_mix_paths(config: dict) -> dict[str, Path]:
    """Song name -> its mix file, for the songs a per-instrument run's ``config`` read.

    Raises
    ------
    MirsimError
        The run's songs are synthetic (no files), or its data are no longer where the run
        found them.
    """
    data = config.get("data")
    if data == "multitrack":
        from mirsim.config import data_cache_dir
        from mirsim.datasets.slakh import read_track, track_dirs

        root = config.get("slakh_root") or data_cache_dir("multitrack")
        tracks = [read_track(p, root) for p in track_dirs(root)]
        return {t.id: t.mix for t in tracks}
    if data == "soundtracks":
        from mirsim.datasets.soundtracks import soundtrack_items

        items = soundtrack_items()
        return {i: Path(p) for i, p in zip(items["id"], items["path"])}
    raise MirsimError(f"the run's songs are {data!r}, made in memory: no audio file to "
                      f"listen to (export a run of --data multitrack or soundtracks)")


def write_clips(paths: Sequence[str | Path], out_dir: str | Path, seconds: float,
                sr: int = 44100) -> list[Path]:
    """The first ``seconds`` of each file, mono FLAC at ``sr``, as ``out_dir/NNN.flac``
    (``NNN``: the file's position); written atomically.

    Examples
    --------
    >>> import tempfile, numpy as np, soundfile as sf
    >>> d = Path(tempfile.mkdtemp())
    >>> sf.write(d / "song.wav", 0.1 * np.ones(8000 * 3), 8000)
    >>> [clip] = write_clips([d / "song.wav"], d / "clips", 1.0, sr=8000)
    >>> clip.name, sf.info(clip).duration
    ('000.flac', 1.0)
    """
    import soundfile as sf

    from mirsim.artefacts.files import atomic_path
    from mirsim.audio import load_audio

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    clips = []
    for i, path in enumerate(paths):
        target = out_dir / f"{i:03d}.flac"
        with atomic_path(target) as tmp:
            sf.write(str(tmp), load_audio(path, sr=sr, duration=seconds), sr, format="FLAC")
        clips.append(target)
    return clips


def instructions(instrument: str) -> str:
    """What the listeners of ``instrument``'s sets are asked: to listen to that instrument.

    Examples
    --------
    >>> instructions("separated-bass").split("?")[0]
    'Listen to A, then to B and C. In which of B and C does the bass sound more like the bass of A'
    """
    name = instrument.removeprefix("separated-")
    return (f"Listen to A, then to B and C. In which of B and C does the {name} sound more "
            f"like the {name} of A? Listen to the {name} only, not to the rest. Then say how "
            f"sure you are.")


def export_per_instrument_test(run_dir: str | Path, instrument: str, out_dir: str | Path, *,
                               n_sets: int = 8, seed: int = 0,
                               listeners: Sequence[str] = ("listener1",)):
    """Write the listening test of ``instrument`` (a condition of the run other than the
    mix, e.g. ``drums`` or ``separated-drums``) into ``out_dir``; returns the
    :class:`~mirsim.listening.design.ListeningTest`.

    Raises
    ------
    MirsimError
        Not a per-instrument run, no such condition in it, songs without files, no valid set
        (every anchor's two top lists overlap), or ``out_dir`` already holds a test.
    """
    from mirsim.experiments.per_instrument import CLIP_SECONDS, PER_INSTRUMENT, listening_design
    from mirsim.listening.design import ListeningTest, write_test

    config, cells = PER_INSTRUMENT.load_unfinished(run_dir)
    others = [c for c in cells if c != "mix"]
    if "mix" not in cells:
        raise MirsimError(f"{run_dir}: the negatives come from the mix metric, and the run "
                          f"has no finished mix condition")
    if instrument == "mix" or instrument not in cells:
        raise MirsimError(f"{run_dir}: no finished {instrument!r} condition to test (the "
                          f"run's: {', '.join(others) or 'none besides the mix'})")
    paths = song_mix_paths(config)
    songs = next(iter(cells["mix"].values()))["songs"]
    missing = [s for s in songs if s not in paths]
    if missing:
        raise MirsimError(f"song {missing[0]!r} of the run is no longer in its "
                          f"{config['data']} data")
    out_dir = Path(out_dir)
    try:
        test = listening_design({"cells": cells}, instrument, {s: paths[s] for s in songs},
                                n_sets=n_sets, seed=seed, listeners=listeners)
    except ValueError as exc:
        raise MirsimError(str(exc)) from None
    if not test.trials:
        raise MirsimError(f"no valid listening set of {instrument}: for every anchor the "
                          f"{instrument} and the mix metrics share a nearest song")
    if (out_dir / "test.json").exists():
        write_test(test, out_dir)  # refuses, in its own words, before clips are written
    clips = write_clips([item["path"] for item in test.items], out_dir / CLIPS_DIR,
                        CLIP_SECONDS)
    items = [{**item, "path": str(clip.resolve()), "source": str(item["path"])}
             for item, clip in zip(test.items, clips)]
    clipped = ListeningTest(test.kind, items, test.trials, test.listeners, seed=test.seed,
                            source=f"{test.source} of {Path(run_dir).name}",
                            selection=test.selection,
                            extra={**test.extra, "run": Path(run_dir).name,
                                   "data": config["data"], "sets_asked": n_sets,
                                   "instructions": instructions(instrument)})
    write_test(clipped, out_dir)
    return clipped
