"""Hashizume, Li & Toda's experiment: a metric per condition, its track identification over
trials (Table II) and how distinct the conditions' song distances are (Table III).

The input is, per condition, the segments of the training and the test songs
(:class:`ConditionSegments`, e.g. from :func:`condition_segments`). For every condition and
trial a :class:`~mirsim.models.segment_cnn.SegmentCNNModel` (seed = ``seed + trial``) is
fitted on the training segments, labels the songs; the cell keeps its kNN track
identification of the test segments (5 nearest other test segments) and the distances between
the test songs' centroids. The table is a :class:`~mirsim.experiments.tables.TableKind` table
(rows: conditions; columns: trials), saved after every cell and resumable like ``table1``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from mirsim.datasets.segments import TRAIN_SEGMENTS, segment_table
from mirsim.evaluation.per_instrument import (condition_correlations, song_distance_matrix,
                                              track_identification, trial_summary, tsne_map)
from mirsim.experiments.tables import TableKind, fill_table
from mirsim.features.log_mel import log_mel_segments
from mirsim.models.segment_cnn import SegmentCNNModel

__all__ = ["PER_INSTRUMENT", "PAPER_ACCURACY", "PAPER_SECONDS", "ConditionSegments", "condition_segments",
           "separate_songs", "condition_audio", "separation_table", "summarise", "listening_design",
           "common_song_distances",
           "run_per_instrument", "per_instrument_markdown", "training_songs"]

PER_INSTRUMENT = TableKind("reproduce per-instrument", "per_instrument", "conditions",
                           ("data", "conditions", "trials", "seed", "model_params"))

#: Seconds of a song that give a training song the paper's 40 segments (3 s, 1.5 s apart).
PAPER_SECONDS = 61.5

#: The paper's Table II: track identification accuracy (%), mean over 5 trials.
PAPER_ACCURACY = {"mix": 90.5, "drums": 93.7, "bass": 84.6, "piano": 92.2, "guitar": 87.6,
                  "separated-drums": 76.9, "separated-bass": 41.4, "separated-piano": 65.7}


@dataclass
class ConditionSegments:
    """Features and songs of one condition's training and test segments."""

    X_train: np.ndarray
    songs_train: np.ndarray
    X_test: np.ndarray
    songs_test: np.ndarray


def condition_segments(songs: Sequence[str], audio: Sequence[np.ndarray], sr: int,
                       train: Sequence[bool], *, train_segments: int = TRAIN_SEGMENTS,
                       n_mels: int = 128) -> ConditionSegments:
    """Log-mel segments of one condition's songs (one signal per song), split by ``train``.

    Examples
    --------
    >>> x = [np.ones(8000 * 6, np.float32) * 0.1] * 2
    >>> c = condition_segments(["a", "b"], x, 8000, [True, False], train_segments=1, n_mels=8)
    >>> c.songs_train.tolist(), c.songs_test.tolist()
    (['a'], ['b', 'b', 'b'])
    """
    table, samples = segment_table(songs, audio, sr, train, train_segments=train_segments)
    if not table["train"].any() or table["train"].all():
        raise ValueError("the training songs and the test songs each need a segment that is "
                         "not silent")
    X = log_mel_segments(samples, sr, n_mels=n_mels)
    is_train = table["train"].to_numpy(bool)
    song = table["song"].to_numpy()
    return ConditionSegments(X[is_train], song[is_train], X[~is_train], song[~is_train])


def training_songs(n_songs: int, n_test: int, seed: int) -> list[bool]:
    """Which of ``n_songs`` songs train (``True``) and which ``n_test`` are held out, drawn
    from ``seed`` — not the last ones: songs built from several sources (Debian MIDI music,
    then mma songs) are listed by source, and a test set of the last ones would be one
    source's.

    Examples
    --------
    >>> split = training_songs(10, 3, seed=0)
    >>> len(split), split.count(False), split == training_songs(10, 3, seed=0)
    (10, 3, True)
    """
    if not 0 < n_test < n_songs:
        raise ValueError(f"test songs must be at least 1 and fewer than the {n_songs} songs "
                         f"(got {n_test})")
    held_out = set(np.random.default_rng(seed).permutation(n_songs)[:n_test].tolist())
    return [i not in held_out for i in range(n_songs)]


def _cell(data: ConditionSegments, trial: int, seed: int, params: Mapping[str, Any],
          on_model: Callable[[Any], None] | None = None) -> dict[str, Any]:
    params = SegmentCNNModel._params_from_config(dict(params))  # components saved as JSON
    model = SegmentCNNModel(**{**params, "seed": seed + trial}).fit(data.X_train,
                                                                      data.songs_train)
    if on_model is not None:
        on_model(model)
    E = model.transform(data.X_test)
    names, D = song_distance_matrix(E, data.songs_test)
    cell = {"accuracy": track_identification(E, data.songs_test, k=5),
            "songs": names.tolist(), "song_distances": D.round(6).tolist(),
            "n_train": int(len(data.X_train)), "n_test": int(len(data.X_test))}
    if trial == 0 and len(E) >= 3:  # Fig. 3: the test segments of the first trial, mapped
        cell["tsne"] = tsne_map(E, seed).round(3).tolist()
        cell["segment_songs"] = [str(s) for s in data.songs_test]
    return cell


def run_per_instrument(segments: Mapping[str, ConditionSegments], trials: int = 5,
                       seed: int = 0, model_params: Mapping[str, Any] | None = None, *,
                       data: str = "", done: dict | None = None,
                       on_table: Callable[[dict], None] | None = None,
                       on_cell: Callable[[str, str, dict], None] | None = None,
                       on_model: Callable[[str, Any], None] | None = None
                       ) -> dict[str, Any]:
    """Fill the table: a cell per condition and trial, then the summaries (Table II:
    ``accuracy`` per condition, mean and variance over trials; Table III: ``correlations``
    between conditions of the trial-mean song-distance matrices).

    ``on_model(condition, model)`` receives each condition's first-trial model once it is
    fitted (before its cell is saved): what ``reproduce per-instrument`` keeps in the run
    directory for ``mirsim index build --run``.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> c = ConditionSegments(rng.random((12, 64)), np.arange(12) % 3,
    ...                       rng.random((12, 64)), np.arange(12) % 3)
    >>> t = run_per_instrument({"mix": c, "drums": c}, trials=1, model_params=dict(
    ...     n_mels=8, channels=(4,), epochs=1, batch_size=12))
    >>> t["complete"], sorted(t["accuracy"]), list(t["correlations"][0])[:2]
    (True, ['drums', 'mix'], ['a', 'b'])
    """
    if trials < 1:
        raise ValueError(f"trials must be positive, got {trials}")
    params = dict(model_params or {})
    columns = [f"trial-{i}" for i in range(trials)]
    table: dict[str, Any] = {"data": data, "conditions": list(segments), "trials": trials,
                             "seed": seed, "model_params": params}
    def cell(c: str, t: str) -> dict[str, Any]:
        keep = (lambda m: on_model(c, m)) if on_model is not None and t == "trial-0" else None
        return _cell(segments[c], int(t.split("-")[1]), seed, params, keep)

    fill_table(table, list(segments), columns, cell,
               done=done, on_table=on_table, on_cell=on_cell)
    return summarise(table)


def summarise(table: dict[str, Any]) -> dict[str, Any]:
    """Add Tables II and III to a complete table of cells."""
    cells = table["cells"]
    table["accuracy"] = {c: trial_summary([cell["accuracy"] for cell in row.values()])
                         for c, row in cells.items()}
    songs, matrices = common_song_distances(cells)
    table["correlations"] = (condition_correlations(matrices).to_dict("records")
                             if len(matrices) > 1 and len(songs) > 2 else [])
    if any(len(next(iter(row.values()))["songs"]) != len(songs) for row in cells.values()):
        table["correlation_songs"] = songs  # a stem silent in some test song: the others'
    return table


def common_song_distances(cells: Mapping[str, Mapping[str, Any]],
                          conditions: Sequence[str] | None = None
                          ) -> tuple[list[str], dict[str, np.ndarray]]:
    """The test songs every one of ``conditions`` (default: all) has, and each condition's
    trial-mean song distances between them: a song whose stem is silent (a separated bass of
    a piece without low notes) has no segment, and so no row, in that condition.

    Examples
    --------
    >>> cell = lambda songs, d: {"trial-0": {"songs": songs, "song_distances": d}}
    >>> cells = {"mix": cell(["a", "b", "c"], [[0, 1, 2], [1, 0, 3], [2, 3, 0]]),
    ...          "bass": cell(["a", "c"], [[0, 5], [5, 0]])}
    >>> songs, D = common_song_distances(cells)
    >>> songs, D["mix"].tolist()
    (['a', 'c'], [[0.0, 2.0], [2.0, 0.0]])
    """
    chosen = list(conditions) if conditions is not None else list(cells)
    names = {c: next(iter(cells[c].values()))["songs"] for c in chosen}
    common = [s for s in names[chosen[0]] if all(s in names[c] for c in chosen)]
    matrices = {}
    for c in chosen:
        D = np.mean([cell["song_distances"] for cell in cells[c].values()], axis=0)
        rows = [names[c].index(s) for s in common]
        matrices[c] = D[np.ix_(rows, rows)]
    return common, matrices


def per_instrument_markdown(table: dict[str, Any]) -> str:
    """Tables II, I (when there are separated stems) and III as Markdown, the paper's
    accuracy beside the measured one.

    Examples
    --------
    >>> t = {"accuracy": {"mix": {"mean": 0.5, "variance": 0.01, "trials": 2}},
    ...      "correlations": []}
    >>> print(per_instrument_markdown(t).splitlines()[2])
    | mix | 50.0 | 0.0100 | 2 | 90.5 |
    """
    lines = ["| condition | accuracy (%) | variance | trials | paper (%) |",
             "|---|---:|---:|---:|---:|"]
    for c, s in table["accuracy"].items():
        paper = PAPER_ACCURACY.get(c)
        lines.append(f"| {c} | {100 * s['mean']:.1f} | {s['variance']:.4f} | {s['trials']} | "
                     f"{'—' if paper is None else paper} |")
    if table.get("separation"):
        by = f" ({table['separator']})" if table.get("separator") else ""
        lines += ["", f"| separated stem{by} | SDR (dB) | SIR (dB) | SAR (dB) |",
                  "|---|---:|---:|---:|"]
        lines += [f"| {n} | {v['sdr']:.2f} | {v['sir']:.2f} | {v['sar']:.2f} |"
                  for n, v in table["separation"].items()]
    if table.get("correlations"):
        lines += ["", "| conditions | Pearson (upper triangles) | mean Spearman (columns) |",
                  "|---|---:|---:|"]
        lines += [f"| {r['a']} / {r['b']} | {r['pearson']:.3f} | {r['spearman']:.3f} |"
                  for r in table["correlations"]]
    return "\n".join(lines)


def separate_songs(stems: Sequence[Mapping[str, np.ndarray]], sr: int,
                   separator: Any = "hpss", train: Sequence[bool] | None = None
                   ) -> list[dict[str, np.ndarray]]:
    """Each song with its separated stems added as ``separated-X`` (X: drums, bass, piano),
    separated from its mix by ``separator``: a name of
    :func:`mirsim.separation.separators.make_separator` (``hpss``, ``openunmix``, ``umxhq``,
    ``umxl``, ``htdemucs``) or a separator object. A trainable separator that is not fitted
    yet is fitted first on the songs where ``train`` is true, and only on them (their mixes
    and stems); then every song is separated, once.

    Examples
    --------
    >>> s = separate_songs([{"mix": np.zeros(4096, np.float32)}], 8000)
    >>> sorted(s[0])
    ['mix', 'separated-bass', 'separated-drums', 'separated-piano']
    """
    from mirsim.separation.separators import make_separator

    sep = make_separator(separator) if isinstance(separator, str) else separator
    if getattr(sep, "trainable", False) and not getattr(sep, "is_fitted", False):
        if train is None:
            raise ValueError(f"separator {sep.name!r} is trained on the training songs: "
                             "give train=")
        if len(train) != len(stems):
            raise ValueError(f"train has {len(train)} entries for {len(stems)} songs")
        songs = [song for song, is_train in zip(stems, train) if is_train]
        sep.fit([song["mix"] for song in songs], songs, sr)
    return [{**song, **{f"separated-{k}": v for k, v in sep.separate(song["mix"], sr).items()}}
            for song in stems]


def condition_audio(stems: Sequence[Mapping[str, np.ndarray]], condition: str
                    ) -> list[np.ndarray]:
    """Each song's signal for ``condition`` (a stem, the mix or a separated stem).

    Examples
    --------
    >>> s = [{"mix": np.ones(8, np.float32), "drums": np.zeros(8, np.float32)}]
    >>> condition_audio(s, "drums")[0].tolist() == [0.0] * 8
    True
    """
    missing = [i for i, song in enumerate(stems) if condition not in song]
    if missing:
        raise ValueError(f"song {missing[0]} has no {condition!r} stem")
    return [song[condition] for song in stems]


def separation_table(songs: Sequence[Mapping[str, np.ndarray]], test: Sequence[bool]
                     ) -> dict[str, dict[str, float]]:
    """Table I: SDR, SIR and SAR (dB) of the separated stems of the test songs (songs from
    :func:`separate_songs`), the median over songs; a song where a reference stem is silent
    is left out (BSS Eval cannot score it)."""
    from mirsim.separation.scores import separation_scores

    names = ("drums", "bass", "piano")
    per_song = [separation_scores({n: song[n] for n in names},
                                  {n: song[f"separated-{n}"] for n in names})
                for song, is_test in zip(songs, test)
                if is_test and all(np.any(song[n]) for n in names)]
    return {n: {m: float(np.median([s[n][m] for s in per_song])) if per_song else float("nan")
                for m in ("sdr", "sir", "sar")} for n in names}


#: Length of a listening clip, in seconds (the paper's).
CLIP_SECONDS = 10.0


def listening_design(table: dict[str, Any], instrument: str, paths: Mapping[str, str], *,
                     n_sets: int = 8, top: int = 2, seed: int = 0, listeners: Sequence[str] = (
                         "listener1",)):
    """The paper's listening sets of one instrument as a triplet test of
    :mod:`mirsim.listening.design` (``mirsim listen serve`` serves it): items are the test
    songs (``paths``: song -> audio file, e.g. the mix), trials ``{"a", "b", "c", "positive"}``
    with the positive from ``instrument``'s metric and the negative from the mix metric
    (:func:`mirsim.evaluation.per_instrument.listening_sets`, on the trial-mean song
    distances), the positive in slot B or C at random (drawn from ``seed``; ``positive``
    names it), so that a listener who favours one slot does not raise the true rate;
    ``clip_seconds`` (10) and the instrument are recorded in the test.

    Examples
    --------
    >>> D = [[0, 1, 5, 5], [1, 0, 5, 5], [5, 5, 0, 1], [5, 5, 1, 0]]
    >>> M = [[0, 5, 1, 5], [5, 0, 5, 1], [1, 5, 0, 5], [5, 1, 5, 0]]
    >>> songs = ["w", "x", "y", "z"]
    >>> cell = lambda d: {"trial-0": {"songs": songs, "song_distances": d}}
    >>> t = listening_design({"cells": {"mix": cell(M), "drums": cell(D)}}, "drums",
    ...                      {s: f"/{s}.flac" for s in songs}, n_sets=2, top=1)
    >>> t.kind, len(t.trials), t.extra["instrument"]
    ('triplets', 2, 'drums')
    >>> sorted((x["a"], x[x["positive"]]) for x in t.trials)  # anchor, positive
    [(0, 1), (2, 3)]
    """
    from mirsim.evaluation.per_instrument import listening_sets
    from mirsim.listening.design import ListeningTest, shuffle_slots

    cells = table["cells"]
    for condition in (instrument, "mix"):
        if condition not in cells:
            raise ValueError(f"the table has no {condition!r} condition")
    songs, distances = common_song_distances(cells, [instrument, "mix"])
    missing = [s for s in songs if s not in paths]
    if missing:
        raise ValueError(f"no audio path for song {missing[0]!r}")
    sets = listening_sets(distances[instrument], distances["mix"], n_sets, top, seed)
    trials = shuffle_slots(sets, np.random.default_rng(np.random.SeedSequence(seed).spawn(1)[0]))
    items = [{"id": i, "name": s, "path": str(paths[s])} for i, s in enumerate(songs)]
    return ListeningTest("triplets", items, trials, list(listeners), seed=seed,
                         source=f"reproduce per-instrument ({instrument})",
                         selection="per-instrument",
                         extra={"instrument": instrument, "clip_seconds": CLIP_SECONDS})
