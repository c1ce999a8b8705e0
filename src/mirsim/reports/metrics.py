"""The metrics of a run as table rows: one row per (model, feature), mean ± std over folds."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from mirsim.experiments.experiment import REPORTED_METRICS
from mirsim.experiments.tables import METRIC_NAMES
from mirsim.reports.errors import ReportError
from mirsim.artefacts.runs import RunDirectory


@dataclass(frozen=True)
class MetricRow:
    """One model on one feature: ``{metric: (mean, std)}`` and what it cost.

    ``None`` stands for a value the run did not record (or recorded as NaN).
    """

    model: str
    feature: str
    metrics: dict[str, tuple[float | None, float | None]]
    n_parameters: int | None = None
    train_seconds: float | None = None
    folds: int | None = None
    n_items: int | None = None


def format_mean_std(mean: float | None, std: float | None) -> str:
    """``mean ± std`` with three decimals, as ``mirsim train`` prints them.

    Examples
    --------
    >>> format_mean_std(0.8333333, 0.1909406)
    '0.833 ± 0.191'
    >>> format_mean_std(None, None)
    'n/a'
    """
    if mean is None:
        return "n/a"
    return f"{mean:.3f} ± {std:.3f}" if std is not None else f"{mean:.3f}"


def metric_rows(run: RunDirectory) -> list[MetricRow]:
    """The rows of the run's metrics table (``metrics.json``, or the table of a ``reproduce`` run).

    Raises
    ------
    ReportError
        The run has no metrics file, or one laid out in a way this mirsim does not know.

    Examples
    --------
    >>> from pathlib import Path
    >>> m = {"model": "mlp", "feature": "mfcc", "folds": 3, "n_items": 24,
    ...      "metrics": {"p_at_1": {"mean": 0.75, "std": 0.1}}}
    >>> [row] = metric_rows(RunDirectory(Path("r"), {"command": "train"}, metrics=m))
    >>> row.model, row.metrics["p_at_1"]
    ('mlp', (0.75, 0.1))
    """
    try:
        if run.table is not None:
            return _table_rows(run.table)
        if run.metrics is not None:
            results = [run.metrics] if "metrics" in run.metrics else list(run.metrics.values())
            return [_result_row(r) for r in results]
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise ReportError(f"{run.path}: metrics file not understood ({type(exc).__name__}: "
                          f"{exc})") from None
    raise ReportError(f"{run.path}: no metrics.json or table file")


def metric_label(name: str) -> str:
    """The column title of a metric.

    Examples
    --------
    >>> metric_label("ii_p_at_5"), metric_label("knn_accuracy")
    ('ii-P@5', 'knn_accuracy')
    """
    return METRIC_NAMES.get(name, name)


def metric_names(rows: list[MetricRow]) -> list[str]:
    """The metrics present in any row: the reported ones first, in their usual order.

    Examples
    --------
    >>> metric_names([MetricRow("m", "f", {"map_at_r": (1, 0), "p_at_1": (1, 0), "x": (0, 0)})])
    ['p_at_1', 'map_at_r', 'x']
    """
    present = {name for row in rows for name in row.metrics}
    return ([m for m in REPORTED_METRICS if m in present]
            + sorted(present - set(REPORTED_METRICS)))


def _stat(value: Any) -> tuple[float | None, float | None]:
    if not isinstance(value, Mapping):
        raise TypeError(f"expected {{mean, std}}, got {value!r}")
    mean, std = value.get("mean"), value.get("std")
    return (None if mean is None else float(mean), None if std is None else float(std))


def _optional(value: Any, kind: type) -> Any:
    return None if value is None else kind(value)


def _result_row(result: Mapping[str, Any]) -> MetricRow:
    return MetricRow(str(result["model"]), str(result.get("feature", "")),
                     {name: _stat(v) for name, v in result["metrics"].items()},
                     _optional(result.get("n_parameters"), int),
                     _optional(result.get("train_seconds"), float),
                     _optional(result.get("folds"), int), _optional(result.get("n_items"), int))


def _table_rows(table: Mapping[str, Any]) -> list[MetricRow]:
    rows = []
    for model in table["models"]:
        for feature in table["features"]:
            cell = table["cells"].get(model, {}).get(feature)
            if cell is None:  # an unfinished run (``--resume`` completes it)
                continue
            stats = {name: _stat(v) for name, v in cell.items()  # not the query counts
                     if isinstance(v, Mapping) and "mean" in v}
            rows.append(MetricRow(str(model), str(feature), stats,
                                  _optional(cell.get("n_parameters"), int),
                                  _optional(cell.get("train_seconds"), float),
                                  _optional(table.get("folds"), int),
                                  _optional(cell.get("n_items", table.get("n_items")), int)))
    return rows


@dataclass(frozen=True)
class ListenerSeries:
    """Each listener's triplet agreement with the run's models, and the human reference.

    Attributes
    ----------
    file : str
        The judgments file the run was scored against.
    listeners : list of str
    series : list of (name, values)
        One per model (and feature): each listener's agreement (``None``: no triplet).
    human : list or None
        Each listener predicted from the others (``None``: not defined, a triplet file).
    """

    file: str
    listeners: list[str]
    series: list[tuple[str, list[float | None]]]
    human: list[float | None] | None = None


def _values(stat: Mapping[str, Any] | None) -> list[float | None] | None:
    if not isinstance(stat, Mapping) or "per_listener" not in stat:
        return None
    return [None if v is None or v != v else float(v) for v in stat["per_listener"]]


def listener_series(run: RunDirectory, metric: str = "triplet_agreement"
                    ) -> ListenerSeries | None:
    """Per-listener agreement of a run scored with ``--judgments``, or ``None`` without it.

    Examples
    --------
    >>> from pathlib import Path
    >>> stat = {"mean": 0.7, "std": 0.1, "per_listener": [0.6, 0.8]}
    >>> m = {"model": "mlp", "feature": "mfcc", "metrics": {}, "listeners": {
    ...      "file": "l.csv", "listeners": ["L1", "L2"], "model": {"triplet_agreement": stat},
    ...      "human_reference": {"triplet_agreement": stat}}}
    >>> s = listener_series(RunDirectory(Path("r"), {"command": "train"}, metrics=m))
    >>> s.listeners, s.series, s.human
    (['L1', 'L2'], [('mlp', [0.6, 0.8])], [0.6, 0.8])
    """
    if run.table is not None:
        table = run.table
        judgments = table.get("judgments")
        if not isinstance(judgments, Mapping):
            return None
        series = []
        for model in table.get("models", []):
            for feature in table.get("features", []):
                cell = (table.get("cells", {}).get(model) or {}).get(feature) or {}
                values = _values((cell.get("listeners") or {}).get(metric))
                if values is not None:
                    series.append((f"{model} · {feature}", values))
    else:
        metrics = run.metrics or {}
        results = [metrics] if "metrics" in metrics else list(metrics.values())
        results = [r for r in results if isinstance(r, Mapping)
                   and isinstance(r.get("listeners"), Mapping)]
        if not results:
            return None
        judgments = results[0]["listeners"]
        several = len({r.get("feature") for r in results}) > 1
        series = [(f"{r['model']} · {r.get('feature')}" if several else str(r["model"]), values)
                  for r in results
                  if (values := _values((r["listeners"].get("model") or {}).get(metric)))]
    if not series:
        return None
    human = _values((judgments.get("human_reference") or {}).get(metric))
    return ListenerSeries(str(judgments.get("file", "")), list(judgments["listeners"]), series,
                          human)
