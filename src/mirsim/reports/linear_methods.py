"""The report page of a ``mirsim reproduce linear-methods`` run (the tutorial's first demo).

Sections, in order: what the run was; the accuracy table (1-NN accuracy, P@1, MAP@R, mean ±
std over folds) and its bar chart; each method's classification report; the confusion
matrices as heatmaps; the UMAP maps of the last fold's held-out embeddings, one per method,
coloured by label; the learned projection matrices (LDA, NCA, LMNN) as heatmaps. Every plot
is embedded in the page and written beside it as ``<page name>-<plot>-<method>.png``.

Everything is read from the run directory (:mod:`mirsim.experiments.linear_methods` says what
each file holds); nothing is recomputed, and a file that is missing or unreadable leaves its
section with a note saying so.
"""

from __future__ import annotations

import zipfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.figure import Figure

from mirsim.artefacts.files import read_json_object, write_bytes_atomic, write_text_atomic
from mirsim.artefacts.runs import RunDirectory
from mirsim.reports import html
from mirsim.reports.errors import ReportError
from mirsim.reports.metrics import MetricRow, metric_rows
from mirsim.reports.plots import MAX_NAMED_LABELS, figure_png, map_figure, metrics_figure

#: The kinds of plot, each written as ``<page name>-<kind>[-<method>].png``.
PLOT_KINDS = ("metrics", "confusion", "umap", "projection")
#: The page's sections after the run's facts, in order: anchor -> title.
SECTIONS = {"accuracy": "Accuracy", "classification": "Classification reports",
            "confusion": "Confusion matrices", "umap": "UMAP maps",
            "projections": "Projection matrices"}


def build_linear_methods_page(run: RunDirectory, out: Path) -> tuple[list[Path], list[str]]:
    """Write the page ``out`` of a linear-methods run and its PNGs beside it.

    Returns
    -------
    (list of Path, list of str)
        The PNGs written, and the sections left out with the reason.
    """
    images: dict[str, bytes] = {}
    notes: list[str] = list(run.problems)
    names = _display_names(run)
    body = [f"<h1>mirsim report · {html.esc(run.path.name)}</h1>", _facts(run)]
    try:
        rows = metric_rows(run)
    except ReportError as exc:
        rows = []
        notes.append(f"accuracy table left out: {exc}")
    body.append(_accuracy_section(run, rows, names, images))
    classification = _read_json(run.path / "classification.json", notes)
    body.append(_classification_section(classification, names))
    body.append(_confusion_section(classification, names, images))
    maps = _read_npz(run.path / "maps.npz", notes)
    body.append(_maps_section(run, maps, names, images))
    projections = _read_npz(run.path / "projections.npz", notes)
    body.append(_projection_section(projections, names, images))
    body.append(html.paragraph(f"Written by mirsim {_version()} from run {run.path.name}. "
                               f"The plots are also saved as PNG files beside this page.",
                               "muted"))
    written = _write_images(out, images)
    write_text_atomic(out, html.page(f"mirsim report · {run.path.name}", body))
    return written, notes


# -- reading ---------------------------------------------------------------------------------
def _read_json(path: Path, notes: list[str]) -> dict[str, Any]:
    try:
        return read_json_object(path, ReportError)
    except ReportError as exc:
        notes.append(str(exc))
        return {}


def _read_npz(path: Path, notes: list[str]) -> dict[str, np.ndarray]:
    try:
        with np.load(path, allow_pickle=False) as archive:
            return {name: archive[name] for name in archive.files}
    except FileNotFoundError:
        notes.append(f"{path}: no such file")
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as exc:
        notes.append(f"{path}: unreadable ({type(exc).__name__}: {exc})")
    return {}


def _display_names(run: RunDirectory) -> dict[str, str]:
    """``{model: display name}`` as the metrics recorded them (the name itself if not)."""
    metrics = run.metrics or {}
    return {str(m): str((v or {}).get("display_name") or m) for m, v in metrics.items()
            if isinstance(v, dict)}


def _methods(run: RunDirectory, names: dict[str, str]) -> list[str]:
    return [str(m) for m in run.config.get("models") or list(names)]


def _version() -> str:
    import mirsim

    return mirsim.__version__


# -- sections --------------------------------------------------------------------------------
def _section(anchor: str, parts: Sequence[str]) -> str:
    return html.section(SECTIONS[anchor], anchor, parts)


def _absent(anchor: str, why: str) -> str:
    """The section, holding only a note saying why it is empty."""
    return _section(anchor, [html.note(why)])


def _facts(run: RunDirectory) -> str:
    c = run.config
    return html.facts([("command", f"mirsim {run.command}"), ("data", c.get("data")),
                       ("feature", c.get("feature")), ("methods", ", ".join(c.get("models") or [])),
                       ("protocol", c.get("protocol")), ("folds", c.get("folds")),
                       ("items", c.get("n_items")), ("seed", c.get("seed")),
                       ("quick", "yes (a sample of the data, short training)"
                        if c.get("quick") else None),
                       ("run directory", run.path.name),
                       ("written by", f"mirsim {c['mirsim_version']}"
                        if c.get("mirsim_version") else None)])


def _accuracy_section(run: RunDirectory, rows: list[MetricRow], names: dict[str, str],
                      images: dict[str, bytes]) -> str:
    if not rows:
        return _absent("accuracy", "No accuracy table: the run's metrics.json is missing or "
                                   "not understood.")
    protocol = run.config.get("protocol", "")
    search = ("among the other items of the test fold" if protocol == "kfold"
              else "among every other item")
    rows = [MetricRow(names.get(r.model, r.model), r.feature, r.metrics, r.n_parameters,
                      r.train_seconds, r.folds, r.n_items) for r in rows]
    return _section("accuracy", [
        html.paragraph(f"Cross-validation ({protocol}), mean ± standard deviation over the "
                       f"test folds. accuracy: 1-nearest-neighbour classification of each "
                       f"test item among the training items, by Euclidean distance between "
                       f"embeddings of the model fitted on the training items. P@1 and MAP@R: "
                       f"retrieval of each test item {search}, the query itself excluded."),
        html.metrics_table(rows),
        _figure(images, "metrics", metrics_figure(rows, run.config.get("feature", "")),
                "bar chart of the metrics",
                "Each metric's mean over folds; error bars: ± one standard deviation.")])


def _classification_section(classification: dict[str, Any], names: dict[str, str]) -> str:
    if not classification:
        return _absent("classification", "No classification reports: classification.json "
                                         "is missing or unreadable.")
    parts = [html.paragraph("scikit-learn's classification report of the 1-NN predictions of "
                            "the held-out items, pooled over the folds.")]
    for method, entry in classification.items():
        parts.append(f"<h3>{html.esc(names.get(method, method))}</h3>")
        parts.append(report_table(entry.get("report") or {}, entry.get("labels") or []))
    return _section("classification", parts)


def report_table(report: dict[str, Any], labels: Sequence[str]) -> str:
    """A classification report (scikit-learn's ``output_dict``) as an HTML table.

    Examples
    --------
    >>> r = {"a": {"precision": 1.0, "recall": 0.5, "f1-score": 2 / 3, "support": 2},
    ...      "accuracy": 0.5}
    >>> t = report_table(r, ["a"])
    >>> "<td class=\\"num\\">0.667</td>" in t and "accuracy" in t
    True
    """
    head = ("<tr><th>label</th>" + "".join(f"<th class=\"num\">{h}</th>" for h in
                                           ("precision", "recall", "f1-score", "support"))
            + "</tr>")
    lines = []
    for name in [*labels, "macro avg", "weighted avg"]:
        stats = report.get(name)
        if not isinstance(stats, dict):
            continue
        cells = "".join(f"<td class=\"num\">{float(stats.get(k, float('nan'))):.3f}</td>"
                        for k in ("precision", "recall", "f1-score"))
        lines.append(f"<tr><td>{html.esc(name)}</td>{cells}"
                     f"<td class=\"num\">{int(stats.get('support', 0))}</td></tr>")
    if isinstance(report.get("accuracy"), (int, float)):
        lines.append(f"<tr><td>accuracy</td><td></td><td></td><td class=\"num\">"
                     f"{float(report['accuracy']):.3f}</td><td></td></tr>")
    return f"<table>\n<thead>{head}</thead>\n<tbody>\n" + "\n".join(lines) + "\n</tbody>\n</table>"


def _figure(images: dict[str, bytes], key: str, fig: Figure, alt: str, caption: str) -> str:
    """Keep the figure's PNG as ``images[key]`` and return it embedded with its caption."""
    images[key] = figure_png(fig)
    return html.figure(images[key], alt, caption)


def _confusion_section(classification: dict[str, Any], names: dict[str, str],
                       images: dict[str, bytes]) -> str:
    if not classification:
        return _absent("confusion", "No confusion matrices: classification.json is missing "
                                    "or unreadable.")
    parts = [html.paragraph("Rows: true labels; columns: predicted labels (1-NN, held-out "
                            "items pooled over the folds). Each row is normalised to sum to "
                            "one (its recall per predicted label); the numbers are counts.")]
    for method, entry in classification.items():
        matrix = np.asarray(entry.get("confusion_matrix") or [], dtype=float)
        labels = [str(x) for x in entry.get("labels") or []]
        if matrix.ndim != 2 or matrix.shape != (len(labels), len(labels)) or not labels:
            parts.append(html.note(f"{method}: no confusion matrix in classification.json."))
            continue
        name = names.get(method, method)
        parts.append(_figure(images, f"confusion-{method}",
                             confusion_figure(matrix, labels, name), f"confusion matrix of {name}",
                             f"{name}: confusion matrix of the held-out predictions."))
    return _section("confusion", parts)


def _maps_section(run: RunDirectory, maps: dict[str, np.ndarray], names: dict[str, str],
                  images: dict[str, bytes]) -> str:
    methods = [m for m in _methods(run, names) if f"{m}.xy" in maps]
    if not methods or "labels" not in maps:
        return _absent("umap", "No UMAP maps: maps.npz is missing, unreadable or holds no "
                               "map (a held-out fold of fewer than 4 items has none).")
    labels = maps["labels"].astype(str)
    intro = html.paragraph(
        f"2-D UMAP maps (umap-learn, seed {run.config.get('seed', 0)}) of the {len(labels)} "
        f"test items of the last fold, embedded by each method's model of that fold (trained "
        f"without them), coloured by label. Near on a map means near in that metric; "
        f"distances between far-apart clusters mean little in UMAP.")
    return _section("umap", [intro] + [
        _figure(images, f"umap-{m}", map_figure(maps[f"{m}.xy"], labels,
                                                 title=f"{names.get(m, m)} · UMAP"),
                f"UMAP map of {names.get(m, m)}",
                f"{names.get(m, m)}: held-out embeddings of the last fold.")
        for m in methods])


def _projection_section(projections: dict[str, np.ndarray], names: dict[str, str],
                        images: dict[str, bytes]) -> str:
    if not projections:
        return _absent("projections", "No projection matrices: projections.npz is missing, "
                                      "unreadable or empty.")
    intro = html.paragraph("The linear map L of each learned metric (the model of the last "
                           "fold): the embedding of an item is L x, x its standardised "
                           "features. Rows: output dimensions; columns: input features. "
                           "Large weights on a feature mean it matters to the metric.")
    return _section("projections", [intro] + [
        _figure(images, f"projection-{m}", projection_figure(L, names.get(m, m)),
                f"heatmap of the projection matrix of {names.get(m, m)}",
                f"{names.get(m, m)}: L, {L.shape[0]} × {L.shape[1]}.")
        for m, L in projections.items()])


# -- figures ---------------------------------------------------------------------------------
def confusion_figure(matrix: np.ndarray, labels: Sequence[str], title: str = "") -> Figure:
    """Heatmap of a confusion matrix (rows: true, columns: predicted), each row normalised
    to sum to one; counts written in the cells when there are few labels.

    Examples
    --------
    >>> fig = confusion_figure(np.array([[2, 0], [1, 1]]), ["a", "b"])
    >>> [t.get_text() for t in fig.axes[0].get_yticklabels()]
    ['a', 'b']
    """
    counts = np.asarray(matrix, dtype=float)
    totals = counts.sum(axis=1, keepdims=True)
    shares = np.divide(counts, totals, out=np.zeros_like(counts), where=totals > 0)
    n = len(labels)
    side = float(np.clip(2.5 + 0.32 * n, 4, 11))
    fig = Figure(figsize=(side + 1.2, side))
    ax = fig.add_subplot()
    image = ax.imshow(shares, cmap="Blues", vmin=0, vmax=1)
    fig.colorbar(image, ax=ax, label="share of the true label's items", shrink=0.8)
    if n <= MAX_NAMED_LABELS:
        ax.set_xticks(range(n), labels, fontsize=7, rotation=90)
        ax.set_yticks(range(n), labels, fontsize=7)
    else:
        ax.set_xticks([])
        ax.set_yticks([])
    if n <= 20:
        for i in range(n):
            for j in range(n):
                if counts[i, j]:
                    ax.text(j, i, f"{int(counts[i, j])}", ha="center", va="center", fontsize=7,
                            color="white" if shares[i, j] > 0.5 else "black")
    ax.set_xlabel("predicted label")
    ax.set_ylabel("true label")
    ax.set_title(title, fontsize=10)
    return fig


def projection_figure(matrix: np.ndarray, title: str = "") -> Figure:
    """Heatmap of a linear map (rows: outputs, columns: input features), colours centred on
    zero.

    Examples
    --------
    >>> fig = projection_figure(np.array([[1.0, -2.0, 0.0]]))
    >>> fig.axes[0].get_images()[0].get_clim()
    (-2.0, 2.0)
    """
    L = np.asarray(matrix, dtype=float)
    limit = float(np.max(np.abs(L))) or 1.0
    rows, cols = L.shape
    width = float(np.clip(2 + 0.14 * cols, 5, 12))
    height = float(np.clip(1.5 + 0.14 * rows, 2.5, 10))
    fig = Figure(figsize=(width, height))
    ax = fig.add_subplot()
    image = ax.imshow(L, cmap="RdBu_r", vmin=-limit, vmax=limit, aspect="auto",
                      interpolation="nearest")
    fig.colorbar(image, ax=ax, label="weight", shrink=0.8)
    ax.set_xlabel("input feature (standardised)")
    ax.set_ylabel("output dimension")
    ax.set_title(title, fontsize=10)
    return fig


def _write_images(out: Path, images: dict[str, bytes]) -> list[Path]:
    """Write the PNGs beside ``out``; remove those an earlier report of this page left that
    this one does not have."""
    wanted = {out.parent / f"{out.stem}-{name}.png": png for name, png in images.items()}
    for kind in PLOT_KINDS:
        for old in out.parent.glob(f"{out.stem}-{kind}*.png"):
            if old not in wanted:
                old.unlink(missing_ok=True)
    return [write_bytes_atomic(path, png) for path, png in wanted.items()]
