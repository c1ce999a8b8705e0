"""``mirsim report RUN_DIR``: one self-contained HTML page about a run, and its plots as PNGs.

The page holds, in order:

1. what the run was (command, data, feature, model, protocol, folds, seed);
2. the metrics table, mean ± std over folds (and a bar chart of it); for a run scored with
   ``--judgments``, each listener's triplet agreement as a bar chart, the human reference
   beside it;
3. a 2-D map (t-SNE, :func:`mirsim.server.maps.compute_map`) of the embeddings;
4. the matrix of Euclidean distances between them, ordered by label;
5. for a few queries, their 5 nearest neighbours, each playable.

A ``reproduce linear-methods`` run gets a page of its own (:mod:`mirsim.reports.linear_methods`:
accuracy table, classification reports, confusion matrices, UMAP maps, projection matrices),
and so does a listening test directory (:mod:`mirsim.reports.listening`: agreement between
listeners, the human reference, true rates per condition).

Sections 3-5 draw the run's *held-out* embeddings when it kept them (``test_embeddings.npz``:
the test items of the last fold, embedded by the model trained without them; neighbours are
searched among them), and need the run's data only for the sounds. Otherwise (``loo`` runs,
runs made before mirsim kept them) they need the run's saved model and its data, and show
*every* usable item of the data embedded by the saved model, which was fitted on all of them.
The page says which of the two it shows (see :mod:`mirsim.reports.embeddings` for why). Where
a run lacks something (a ``reproduce table1`` run keeps no model; a data folder moved), the
page says what and why instead of failing. Map and heatmap draw at most ``max_items`` items (a
seeded random sample that keeps the queries); neighbours are searched among all the items shown
in the embeddings section.

The PNGs are written beside the page as ``<page name>-metrics.png``, ``-listeners.png``,
``-map.png`` and ``-distances.png``, the same images the page embeds. Every file is written atomically
(a temporary file renamed into place).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from mirsim.errors import MirsimError
from mirsim.artefacts.files import write_bytes_atomic, write_text_atomic
from mirsim.reports import html
from mirsim.reports.audio_clips import CLIP_SAMPLE_RATE, CLIP_SECONDS, wav_clip
from mirsim.reports.embeddings import RunEmbeddings, run_embeddings
from mirsim.reports.errors import ReportError
from mirsim.listening.design import is_test_directory
from mirsim.reports.metrics import ListenerSeries, MetricRow, listener_series, metric_rows
from mirsim.reports.neighbours import nearest_neighbours, pick_queries
from mirsim.reports.plots import (
    distance_figure,
    figure_png,
    label_order,
    listener_figure,
    map_figure,
    metrics_figure,
    pairwise_distances,
    sample_items,
)
from mirsim.artefacts.runs import RunDirectory, read_run
from mirsim.experiments.linear_methods import COMMAND as LINEAR_METHODS

#: Neighbours listed per query.
NEIGHBOURS = 5
#: The plots, in page order; each is written as ``<page name>-<plot>.png``.
PLOTS = ("metrics", "listeners", "map", "distances")


@dataclass
class ReportResult:
    """What :func:`build_report` wrote.

    Attributes
    ----------
    html : Path
        The page.
    images : list of Path
        The PNGs beside it.
    notes : list of str
        Sections left out, and why (also said in the page).
    """

    html: Path
    images: list[Path] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def build_report(run_dir: str | Path, out: str | Path | None = None, *, n_queries: int = 3,
                 max_items: int = 2000, data: str | None = None,
                 data_options: dict[str, Any] | None = None, n_jobs: int = 1,
                 progress: Callable[[int, int], None] | None = None) -> ReportResult:
    """Write the HTML report of a run directory and its PNGs.

    Parameters
    ----------
    run_dir : str or Path
        A directory written by ``mirsim train``, ``mirsim demo``, ``mirsim reproduce table1``
        or ``mirsim reproduce linear-methods``, or a listening test (``mirsim listen
        design``).
    out : str or Path, optional
        The page to write; default ``run_dir/report.html``. The PNGs go beside it.
    n_queries : int
        Queries whose nearest neighbours are listed (one per label drawn at random).
    max_items : int
        Most items drawn in the map and the heatmap.
    data : str, optional
        The run's data set, if it is no longer where the run's ``config.json`` says.
    data_options : dict, optional
        Options of the data set's loader (e.g. ``{"sol_root": ...}``).
    n_jobs : int
        Processes for feature extraction (features are normally cached).
    progress : callable, optional
        Called with ``(items done, total)`` while features are loaded.

    Returns
    -------
    ReportResult

    Raises
    ------
    ReportError
        Not a run directory, or bad options.

    Examples
    --------
    >>> import json, tempfile
    >>> run = Path(tempfile.mkdtemp())
    >>> _ = (run / "config.json").write_text(json.dumps({"command": "reproduce table1"}))
    >>> _ = (run / "table1.json").write_text(json.dumps({"features": ["mfcc"], "folds": 3,
    ...     "models": ["euclidean"], "cells": {"euclidean": {"mfcc": {
    ...     "p_at_1": {"mean": 0.75, "std": 0.125}, "n_parameters": 0}}}}))
    >>> result = build_report(run)
    >>> result.html.name, [p.name for p in result.images]
    ('report.html', ['report-metrics.png'])
    >>> "0.750 ± 0.125" in result.html.read_text()
    True
    """
    if n_queries < 0:
        raise ReportError(f"the number of queries must be 0 or more (got {n_queries})")
    if max_items < 10:
        raise ReportError(f"max_items must be at least 10 (got {max_items})")
    if is_test_directory(run_dir):  # a listening test has its own page
        from mirsim.reports.listening import build_listening_page

        out = _page_path(Path(run_dir), out)
        return ReportResult(out, *build_listening_page(run_dir, out))
    run = read_run(run_dir)
    out = _page_path(run.path, out)
    if run.command == LINEAR_METHODS:  # the tutorial's demo has its own page
        from mirsim.reports.linear_methods import build_linear_methods_page

        return ReportResult(out, *build_linear_methods_page(run, out))
    images: dict[str, bytes] = {}
    notes: list[str] = list(run.problems)
    seed = int(run.config.get("seed") or 0)

    try:
        rows, problem = metric_rows(run), ""
    except ReportError as exc:
        rows, problem = [], str(exc)
        notes.append(f"metrics left out: {exc}")
    body = [f"<h1>mirsim report · {html.esc(run.path.name)}</h1>", _run_facts(run, rows),
            _metrics_section(run, rows, problem, images)]
    listeners = listener_series(run)
    if listeners is not None:
        body.append(_listeners_section(listeners, images))
    try:
        items = run_embeddings(run, data, data_options, n_jobs=n_jobs, progress=progress)
    except MirsimError as exc:
        notes.append(f"map, heatmap and neighbours left out: {exc}")
        body.append(html.section("Embeddings", "embeddings", [html.note(
            f"No map, heatmap or neighbours: {exc}.")]))
    else:
        queries = pick_queries(items.labels, n_queries, seed)
        shown = sample_items(len(items), max_items, keep=queries, seed=seed)
        evaluated = next((r.n_items for r in rows if r.n_items is not None), None)
        body.append(_embeddings_intro(items, shown, seed, evaluated))
        body.append(_map_section(items, shown, queries, seed, images))
        body.append(_distance_section(items, shown, images))
        if len(queries):
            body.append(_neighbours_section(items, queries, seed))
    saved = " The plots are also saved as PNG files beside this page." if images else ""
    body.append(html.paragraph(f"Written by mirsim {_mirsim_version()} from run "
                               f"{run.path.name}.{saved}", "muted"))

    written = []
    for name in PLOTS:  # a plot this run cannot have must not linger from an earlier report
        path = out.parent / f"{out.stem}-{name}.png"
        if name in images:
            written.append(write_bytes_atomic(path, images[name]))
        else:
            path.unlink(missing_ok=True)
    write_text_atomic(out, html.page(f"mirsim report · {run.path.name}", body))
    return ReportResult(out, written, notes)


def _page_path(directory: Path, out: str | Path | None) -> Path:
    """The page to write: ``out``, or ``directory/report.html``; a directory is refused."""
    out = Path(out) if out is not None else directory / "report.html"
    if out.is_dir():
        raise ReportError(f"{out}: is a directory (give the path of the HTML file to write)")
    return out


# -- sections --------------------------------------------------------------------------------
def _mirsim_version() -> str:
    import mirsim

    return mirsim.__version__


def _run_facts(run: RunDirectory, rows: list[MetricRow]) -> str:
    c = run.config
    model = c.get("model") or ", ".join(c.get("models") or []) or None
    feature = c.get("feature") or ", ".join(c.get("features") or []) or None
    return html.facts([("command", f"mirsim {run.command}"), ("data", c.get("data")),
                       ("feature", feature), ("model", model),
                       ("saved model", c.get("saved_model")), ("protocol", c.get("protocol")),
                       ("folds", _folds(c.get("protocol"), c.get("folds"), rows)),
                       ("seed", c.get("seed")),
                       ("run directory", run.path.name),
                       ("written by", f"mirsim {c['mirsim_version']}"
                        if c.get("mirsim_version") else None)])


def _metrics_section(run: RunDirectory, rows: list[MetricRow], problem: str,
                     images: dict[str, bytes]) -> str:
    if not rows:
        return html.section("Metrics", "metrics", [html.note(
            f"No metrics: {problem or 'the metrics file lists no result'}.")])
    protocol = run.config.get("protocol") or (run.table or {}).get("protocol", "")
    listeners = (" Triplet agreement: mean ± standard deviation over listeners (see below)."
                 if any("triplet_agreement" in r.metrics for r in rows) else "")
    parts = [html.paragraph(f"Retrieval metrics of the cross-validation ({protocol}): mean ± "
                            f"standard deviation over the test folds. The query itself is "
                            f"never retrieved; ii-P@5 also drops retrieved items of the "
                            f"query's own group.{listeners}"),
             html.metrics_table(rows, run.saved_model if run.model_dir else None)]
    description = _description(run)
    if description:
        parts.append(html.paragraph(f"Data: {description}", "muted"))
    images["metrics"] = figure_png(metrics_figure(rows, _title(rows)))
    parts.append(html.figure(images["metrics"], "bar chart of the metrics",
                             "Each metric's mean over folds; error bars: ± one standard "
                             "deviation."))
    return html.section("Metrics", "metrics", parts)


def _listeners_section(data: ListenerSeries, images: dict[str, bytes]) -> str:
    images["listeners"] = figure_png(listener_figure(data, Path(data.file).name))
    human = (" Grey: the human reference, the listener predicted from the other listeners "
             "(distance 1 − share of the others who grouped the pair)." if data.human else "")
    return html.section("Agreement with listeners", "listeners", [
        html.paragraph(f"Triplet agreement with each of the {len(data.listeners)} listeners of "
                       f"{Path(data.file).name}: the share of the listener's triplets (a, p, "
                       f"n: a and p grouped together, n elsewhere) that the learned distance "
                       f"orders as they do, d(a, p) < d(a, n), ties counting half; each "
                       f"triplet scored by the model of the fold where its anchor was held "
                       f"out. The metrics table gives the mean ± std over listeners."),
        html.figure(images["listeners"], "bar chart of the triplet agreement per listener",
                    f"One group of bars per listener; dotted line: chance (0.5).{human}")])


def _folds(protocol: str | None, asked: Any, rows: list[MetricRow]) -> str | None:
    """The folds the run had, as its metrics recorded them (the configuration keeps the
    ``--folds`` asked for, which ``loo`` ignores: it has one fold per item).

    Examples
    --------
    >>> _folds("loo", 5, [MetricRow("m", "f", {}, folds=78, n_items=78)])
    'leave-one-out, 78 folds'
    >>> _folds("kfold", 5, []), _folds("loo", 5, [])
    ('5', 'leave-one-out')
    """
    ran = next((row.folds for row in rows if row.folds is not None), None)
    if protocol == "loo":
        ran = ran or next((row.n_items for row in rows if row.n_items is not None), None)
        return f"leave-one-out, {ran} folds" if ran else "leave-one-out"
    ran = ran if ran is not None else asked
    return None if ran is None else str(ran)


def _embeddings_intro(items: RunEmbeddings, shown: np.ndarray, seed: int,
                      evaluated: int | None) -> str:
    parts = [html.paragraph(_held_out_text(items) if items.held_out else _final_model_text(items))]
    if items.n_skipped:
        parts.append(html.paragraph(f"{items.n_skipped} entries of the data are left out "
                                    f"(unreadable files, duplicates, broken links; listed with "
                                    f"their reasons in skipped.json).", "muted"))
    if items.n_missing:
        parts.append(html.note(f"{items.n_missing} of the held-out items are no longer in the "
                               f"data (no sound for them): the data changed since the run."))
    if not items.held_out and evaluated is not None and evaluated != len(items):
        parts.append(html.note(f"The run was evaluated on {evaluated} items but its data now "
                               f"gives {len(items)}: the data changed since the run."))
    if len(shown) < len(items):
        parts.append(html.paragraph(f"Map and heatmap: {len(shown)} of the {len(items)} items, "
                                    f"drawn at random (seed {seed}) with the queries kept.",
                                    "muted"))
    return html.section("Embeddings", "embeddings", parts)


def _held_out_text(items: RunEmbeddings) -> str:
    library = (" (the fold's metrics also searched the training items; only the test items "
               "are shown here)" if items.protocol == "group-kfold" else "")
    return (f"The embeddings below are the {len(items)} test items of fold {items.fold} of "
            f"{items.n_folds}, embedded by the model trained without them (the {items.model} "
            f"model of that fold of the {items.protocol} cross-validation on {items.data}, kept "
            f"in test_embeddings.npz). So the "
            f"map, the heatmap and the neighbours show how the learned metric places sounds it "
            f"did not see, with the distances that fold's metrics were measured with; "
            f"neighbours are searched among these held-out items only{library}. Items of other "
            f"folds are left out: other models embedded them, and distances across models "
            f"mean nothing.")


def _final_model_text(items: RunEmbeddings) -> str:
    return (f"The embeddings below are those of all {len(items)} usable items of "
            f"{items.data}, embedded by the run's saved {items.model} model. That model was "
            f"fitted on all of these items after the cross-validation, so the map, the heatmap "
            f"and the neighbours show the metric it learned on its own training data, not how "
            f"it does on sounds it has not seen: that is what the metrics table measures. This "
            f"run keeps no held-out embeddings (test_embeddings.npz): leave-one-out runs and "
            f"runs made before mirsim kept them do not.")


def _subtitle(items: RunEmbeddings) -> str:
    held = f" · fold {items.fold} test items" if items.held_out else ""
    return f"{items.data} · {items.model}{held}"


def _map_section(items: RunEmbeddings, shown: np.ndarray, queries: np.ndarray, seed: int,
                 images: dict[str, bytes]) -> str:
    from mirsim.server.maps import MapSettings, compute_map

    method = "t-SNE" if len(shown) >= 4 else "PCA"
    xy = compute_map(items.embeddings[shown], MapSettings(method="tsne", seed=seed))
    marked = np.searchsorted(shown, queries)
    images["map"] = figure_png(map_figure(xy, items.labels[shown], marked,
                                          f"{_subtitle(items)} · {method}"))
    return html.section("Map", "map", [html.figure(
        images["map"], f"{method} map of the embeddings",
        f"2-D {method} map of {len(shown)} embeddings (seed {seed}), coloured by label; stars: "
        f"the queries of the neighbours section. Near on the map means near in the learned "
        f"metric, but distances between far-apart clusters mean little in t-SNE.")])


def _distance_section(items: RunEmbeddings, shown: np.ndarray, images: dict[str, bytes]) -> str:
    order = shown[label_order(items.labels[shown], items.groups[shown], items.ids[shown])]
    distances = pairwise_distances(items.embeddings[order])
    images["distances"] = figure_png(distance_figure(distances, items.labels[order],
                                                     _subtitle(items)))
    return html.section("Distances", "distances", [html.figure(
        images["distances"], "heatmap of the distance matrix ordered by label",
        f"Euclidean distances between {len(order)} embeddings, ordered by label (then group); "
        f"white lines separate labels. A good metric shows dark blocks on the diagonal.")])


def _neighbours_section(items: RunEmbeddings, queries: np.ndarray, seed: int) -> str:
    parts = [html.paragraph(
        f"For {len(queries)} queries (one item of each of {len(queries)} labels drawn at "
        f"random, seed {seed}): the {NEIGHBOURS} nearest of {items.population()}, the query "
        f"itself excluded, by Euclidean distance between embeddings; ✓ marks a neighbour with "
        f"the query's label. Audio: the first {CLIP_SECONDS:g} s of each sound, mono, "
        f"{CLIP_SAMPLE_RATE // 1000} kHz.")]
    for number, q in enumerate(queries, start=1):
        rows, distances = nearest_neighbours(items.embeddings, int(q), NEIGHBOURS)
        neighbours = [_sound_row(items, int(r), float(d), items.labels[r] == items.labels[q])
                      for r, d in zip(rows, distances)]
        parts.append(html.neighbours_table(number, _sound_row(items, int(q)), neighbours))
    return html.section("Nearest neighbours", "neighbours", parts)


def _sound_row(items: RunEmbeddings, row: int, distance: float | None = None,
               same_label: bool | None = None) -> html.SoundRow:
    try:
        wav, problem = wav_clip(items.sources[row]), ""
    except MirsimError as exc:
        wav, problem = None, getattr(exc, "reason", str(exc))
    except Exception as exc:  # noqa: BLE001 - one bad sound must not lose the page
        wav, problem = None, f"{type(exc).__name__}: {exc}"
    return html.SoundRow(str(items.ids[row]), str(items.labels[row]), str(items.groups[row]),
                         wav, problem, distance, None if same_label is None else bool(same_label))


def _description(run: RunDirectory) -> str:
    """The data's one-line description, as the metrics files recorded it."""
    if run.table is not None:
        return str(run.table.get("description") or "")
    metrics = run.metrics or {}
    results = [metrics] if "metrics" in metrics else list(metrics.values())
    first = results[0] if results and isinstance(results[0], dict) else {}
    return str(first.get("description") or "")


def _title(rows: list[MetricRow]) -> str:
    features = sorted({row.feature for row in rows if row.feature})
    return " · ".join(features)
