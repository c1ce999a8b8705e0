"""The report's figures, drawn with matplotlib's Agg renderer (no display, no global state:
figures are :class:`matplotlib.figure.Figure` objects, never ``pyplot``).

* :func:`map_figure`: a 2-D map of embeddings, coloured by label, queries marked;
* :func:`distance_figure`: the matrix of Euclidean distances, items ordered by label;
* :func:`metrics_figure`: each metric's mean over folds, with the standard deviation as an
  error bar, one bar per model (and feature);
* :func:`listener_figure`: each listener's triplet agreement, one bar per model and the human
  reference beside them.
"""

from __future__ import annotations

import io
import re
from collections.abc import Sequence

import numpy as np
from matplotlib.figure import Figure

from mirsim.reports.metrics import ListenerSeries, MetricRow, metric_label, metric_names

#: Resolution of the PNGs (dots per inch).
DPI = 110
#: Labels named in a legend or on the heatmap's axes at most (more would be unreadable).
MAX_NAMED_LABELS = 30


def figure_png(fig: Figure) -> bytes:
    """The figure as PNG bytes (Agg renderer).

    Examples
    --------
    >>> fig = Figure(figsize=(1, 1)); _ = fig.add_subplot().plot([0, 1])
    >>> figure_png(fig)[:8] == b"\\x89PNG\\r\\n\\x1a\\n"
    True
    """
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=DPI, bbox_inches="tight",
                metadata={"Software": None})
    return buffer.getvalue()


def natural_key(name: object) -> tuple[list[str | int], str]:
    """A sort key that orders names as people read them: digit runs by their value, the rest
    ignoring case (the name itself breaks ties), so ``2`` comes before ``10``.

    Written here rather than with the ``natsort`` package: one key function is not worth a
    dependency.

    Examples
    --------
    >>> sorted(["10", "2", "1", "cluster 10", "Cluster 9"], key=natural_key)
    ['1', '2', '10', 'Cluster 9', 'cluster 10']
    """
    text = str(name)
    parts = re.split(r"(\d+)", text)  # text at even positions, digit runs at odd ones
    return [int(p) if i % 2 else p.casefold() for i, p in enumerate(parts)], text


def label_colours(labels: Sequence[str]) -> dict[str, tuple[float, float, float, float]]:
    """A colour per distinct label (in natural order, :func:`natural_key`): ``tab20`` up to 20
    labels, ``turbo`` above.

    Examples
    --------
    >>> c = label_colours(["b", "10", "a", "2", "b"])
    >>> list(c), c["a"] != c["b"]
    (['2', '10', 'a', 'b'], True)
    """
    from matplotlib import colormaps

    names = sorted(set(labels), key=natural_key)
    if len(names) <= 20:
        cmap = colormaps["tab20"]
        return {name: cmap(i % 20) for i, name in enumerate(names)}
    cmap = colormaps["turbo"]
    return {name: cmap(v) for name, v in zip(names, np.linspace(0.05, 0.95, len(names)))}


def label_order(labels: np.ndarray, groups: np.ndarray, ids: np.ndarray) -> np.ndarray:
    """Positions that sort the items by label, then group, then id, each in natural order
    (:func:`natural_key`: label ``2`` before ``10``).

    Examples
    --------
    >>> label_order(np.array(["10", "2", "2"]), np.array(["1", "2", "1"]), np.array(["x", "y", "z"]))
    array([2, 1, 0])
    """
    keys = list(zip(*(map(natural_key, np.asarray(v).tolist()) for v in (labels, groups, ids))))
    return np.array(sorted(range(len(keys)), key=keys.__getitem__), dtype=int)


def sample_items(n: int, max_items: int, keep: Sequence[int] = (), seed: int = 0) -> np.ndarray:
    """Sorted positions of at most ``max_items`` of ``n`` items, drawn at random (seeded),
    always including ``keep``; all of them when ``n <= max_items``.

    Examples
    --------
    >>> sample_items(5, 10).tolist()
    [0, 1, 2, 3, 4]
    >>> s = sample_items(100, 10, keep=[42])
    >>> len(s), 42 in s.tolist()
    (10, True)
    """
    if n <= max_items:
        return np.arange(n)
    keep = np.unique(np.asarray(keep, dtype=int))[:max_items]
    rest = np.setdiff1d(np.arange(n), keep)
    drawn = np.random.default_rng(seed).choice(rest, size=max_items - len(keep), replace=False)
    return np.sort(np.concatenate([keep, drawn]).astype(int))


def pairwise_distances(embeddings: np.ndarray) -> np.ndarray:
    """Euclidean distances between all rows.

    Examples
    --------
    >>> pairwise_distances(np.array([[0.0, 0.0], [3.0, 4.0]])).tolist()
    [[0.0, 5.0], [5.0, 0.0]]
    """
    from scipy.spatial.distance import cdist

    E = np.asarray(embeddings, dtype=np.float64)
    return cdist(E, E)


def map_figure(xy: np.ndarray, labels: np.ndarray, queries: Sequence[int] = (),
               title: str = "") -> Figure:
    """Scatter plot of 2-D coordinates coloured by label; ``queries`` (positions in ``xy``)
    are drawn as numbered stars (Q1, Q2...).

    Examples
    --------
    >>> xy = np.array([[0.0, 0.0], [1.0, 1.0], [0.0, 1.0]])
    >>> fig = map_figure(xy, np.array(["a", "b", "a"]), queries=[1])
    >>> len(fig.axes[0].collections)  # one per label, one for the queries
    3
    """
    labels = np.asarray(labels).astype(str)
    colours = label_colours(labels.tolist())
    fig = Figure(figsize=(7.5, 6))
    ax = fig.add_subplot()
    size = float(np.clip(4000 / max(len(xy), 1), 4, 40))
    for name, colour in colours.items():
        rows = labels == name
        ax.scatter(xy[rows, 0], xy[rows, 1], s=size, color=colour, label=name,
                   linewidths=0, alpha=0.85)
    if len(queries):
        q = np.asarray(queries, dtype=int)
        ax.scatter(xy[q, 0], xy[q, 1], s=220, marker="*", c=[colours[lab] for lab in labels[q]],
                   edgecolors="black", linewidths=1.2, zorder=3)
        for number, row in enumerate(q, start=1):
            ax.annotate(f"Q{number}", xy[row], xytext=(7, 7), textcoords="offset points",
                        fontsize=9, fontweight="bold")
    if len(colours) <= MAX_NAMED_LABELS:
        ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8, frameon=False,
                  title="label", markerscale=max(1.0, 30 / size) ** 0.5)
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_title(title, fontsize=10)
    return fig


def distance_figure(distances: np.ndarray, labels: np.ndarray, title: str = "") -> Figure:
    """Heatmap of a distance matrix whose rows and columns are already ordered by label;
    white lines separate the labels, named on the axes when there are few enough.

    Examples
    --------
    >>> D = pairwise_distances(np.array([[0.0], [0.1], [5.0]]))
    >>> fig = distance_figure(D, np.array(["a", "a", "b"]))
    >>> [t.get_text() for t in fig.axes[0].get_yticklabels()]
    ['a', 'b']
    """
    labels = np.asarray(labels).astype(str)
    fig = Figure(figsize=(7.5, 6.5))
    ax = fig.add_subplot()
    image = ax.imshow(distances, cmap="viridis", interpolation="antialiased")
    fig.colorbar(image, ax=ax, label="Euclidean distance", shrink=0.8)
    starts = np.flatnonzero(np.r_[True, labels[1:] != labels[:-1]])
    ends = np.r_[starts[1:], len(labels)]
    for edge in starts[1:]:
        ax.axhline(edge - 0.5, color="white", linewidth=0.6)
        ax.axvline(edge - 0.5, color="white", linewidth=0.6)
    if len(starts) <= MAX_NAMED_LABELS:
        centres = (starts + ends - 1) / 2
        names = labels[starts].tolist()
        ax.set_yticks(centres, names, fontsize=7)
        ax.set_xticks(centres, names, fontsize=7, rotation=90)
    else:
        ax.set_xticks([])
        ax.set_yticks([])
    ax.set_title(title, fontsize=10)
    return fig


def metrics_figure(rows: Sequence[MetricRow], title: str = "") -> Figure:
    """Grouped bars: one group per metric, one bar per row (mean over folds, ± std).

    Examples
    --------
    >>> rows = [MetricRow("mlp", "mfcc", {"p_at_1": (0.8, 0.1), "map_at_r": (0.5, 0.05)}),
    ...         MetricRow("euclidean", "mfcc", {"p_at_1": (0.7, 0.1), "map_at_r": (None, None)})]
    >>> fig = metrics_figure(rows)
    >>> [t.get_text() for t in fig.axes[0].get_xticklabels()]
    ['P@1', 'MAP@R']
    """
    names = metric_names(list(rows))
    features = {row.feature for row in rows}
    fig = Figure(figsize=(max(5.0, 1.2 + 0.35 * len(rows) * len(names)), 4))
    ax = fig.add_subplot()
    width = 0.8 / max(len(rows), 1)
    x = np.arange(len(names))
    for i, row in enumerate(rows):
        stats = [row.metrics.get(name, (None, None)) for name in names]
        means = [np.nan if m is None else m for m, _ in stats]
        stds = [0.0 if s is None or m is None else s for m, s in stats]
        label = row.model if len(features) <= 1 else f"{row.model} · {row.feature}"
        ax.bar(x + (i - (len(rows) - 1) / 2) * width, means, width, yerr=stds, capsize=2,
               label=label)
    ax.set_xticks(x, [metric_label(n) for n in names])
    ax.set_ylim(0, 1.05)
    ax.set_ylabel("mean over folds (± std)")
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8, frameon=False)
    ax.set_title(title, fontsize=10)
    return fig


def listener_figure(data: ListenerSeries, title: str = "") -> Figure:
    """Grouped bars: one group per listener, one bar per model (and feature) and, last, in
    grey, the human reference (the listener predicted from the others).

    Examples
    --------
    >>> data = ListenerSeries("l.csv", ["L1", "L2"], [("mlp", [0.7, None])], [0.9, 0.95])
    >>> fig = listener_figure(data)
    >>> [t.get_text() for t in fig.axes[0].get_xticklabels()], len(fig.axes[0].containers)
    (['L1', 'L2'], 2)
    """
    series = list(data.series)
    if data.human is not None:
        series.append(("human reference", data.human))
    n = len(data.listeners)
    fig = Figure(figsize=(max(6.0, 1.5 + 0.12 * n * len(series) + 0.2 * n), 4))
    ax = fig.add_subplot()
    width = 0.8 / max(len(series), 1)
    x = np.arange(n)
    for i, (name, values) in enumerate(series):
        heights = [np.nan if v is None else v for v in values]
        human = data.human is not None and i == len(series) - 1
        ax.bar(x + (i - (len(series) - 1) / 2) * width, heights, width, label=name,
               **({"color": "0.55"} if human else {}))
    ax.set_xticks(x, data.listeners, fontsize=8, rotation=90 if n > 20 else 0)
    ax.set_ylim(0, 1.05)
    ax.axhline(0.5, color="0.3", linewidth=0.6, linestyle=":")
    ax.set_ylabel("triplet agreement")
    ax.set_xlabel("listener")
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8, frameon=False)
    ax.set_title(title, fontsize=10)
    return fig
