"""What every ``mirsim`` command shares: consoles, one-line errors, progress bars."""

from __future__ import annotations

import functools
from collections.abc import Callable

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from mirsim.errors import MirsimError

err = Console(stderr=True)
out = Console()


def fail_cleanly(fn: Callable) -> Callable:
    """Report mirsim's own errors (bad input, unknown names...) in one line, exit status 2."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except MirsimError as exc:
            err.print(f"[red]error:[/red] {exc}", highlight=False, soft_wrap=True)
            raise typer.Exit(2) from None

    return wrapper


def progress_bar() -> Progress:
    """A transient progress display on stderr."""
    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                    TimeElapsedColumn(), console=err, transient=True)


def set_threads(threads: int | None) -> None:
    """``--threads``: torch threads for training (unset: torch's default)."""
    if threads:
        import torch

        torch.set_num_threads(threads)


def data_options(sol_root) -> dict:
    """Options of the data set loader from the command line's options."""
    return {"sol_root": str(sol_root)} if sol_root else {}


def load_features_with_progress(data: str, feature: str, feature_params: dict, workers: int,
                                options: dict, model: str | None = None,
                                model_params: dict | None = None):
    """Load a data set's features (and the views ``model`` learns from, if any) with a progress
    bar; report skipped items in one line."""
    from mirsim.experiments import load_features

    with progress_bar() as progress:
        task = progress.add_task(f"features {feature}", total=None)

        def update(done: int, total: int) -> None:
            progress.update(task, completed=done, total=total)

        fs = load_features(data, feature, feature_params, options, n_jobs=workers,
                           progress=update, model=model, model_params=model_params)
    if fs.skipped:
        err.print(f"[yellow]skipped {len(fs.skipped)} item(s)[/yellow] (listed in the run's "
                  f"skipped.json); first: {fs.skipped[0]['source']}: {fs.skipped[0]['reason']}",
                  highlight=False, soft_wrap=True)
    return fs


#: Columns of :func:`metrics_table`: heading and metric of ``train --json``.
LABEL_COLUMNS = (("P@1", "p_at_1"), ("P@5", "p_at_5"), ("ii-P@5", "ii_p_at_5"),
                 ("MAP@R", "map_at_r"))
#: The columns of an experiment without labels (a view's own sound retrieved).
OWN_SOUND_COLUMNS = (("own top-1", "own_top_1"), ("own top-5", "own_top_5"),
                     ("own MAP", "own_map"))


def metrics_table(title: str, rows: list[tuple[str, dict]], columns=LABEL_COLUMNS):
    """A Rich table of ``train --json`` results: P@1, P@5, ii-P@5, MAP@R (mean ± std), or
    other ``columns``; a row without ``n_parameters`` (a reference) leaves the last two empty."""
    from rich.table import Table

    table = Table(title=title, title_justify="left")
    table.add_column("model")
    for heading, _ in columns:
        table.add_column(heading, justify="right")
    table.add_column("params", justify="right")
    table.add_column("train s", justify="right")
    for name, j in rows:
        m = j["metrics"]
        cells = [f"{m[k]['mean']:.3f} ± {m[k]['std']:.3f}" for _, k in columns]
        table.add_row(name, *cells, f"{j['n_parameters']:,}" if "n_parameters" in j else "",
                      f"{j['train_seconds']:.1f}" if "train_seconds" in j else "")
    return table


def queries_note(j: dict) -> str | None:
    """One line about the queries left out of the metrics, if any were."""
    left = (j.get("queries") or {}).get("without_relevant") or 0
    if not left:
        return None
    counted = (j.get("queries") or {}).get("counted") or 0
    return (f"{left} of {left + counted} queries had no item of their label among the "
            f"candidates and are left out of every metric")
