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
    """Report mirsim's own errors (bad input, unknown names...) and failures of the file
    system (a folder that cannot be written, a full disk) in one line, exit status 2."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except MirsimError as exc:
            _print_error(str(exc))
            raise typer.Exit(2) from None
        except OSError as exc:  # the file system said no: where, and why
            _print_error(os_error_message(exc))
            raise typer.Exit(2) from None

    return wrapper


def _print_error(message: str) -> None:
    """``error: message`` on stderr, the message as it is (brackets in it are no markup)."""
    from rich.text import Text

    err.print(Text.assemble(("error:", "red"), " ", message), highlight=False, soft_wrap=True)


def os_error_message(exc: OSError) -> str:
    """``"<file>: <reason>"`` of a failed file operation, the temporary name of an atomic
    write replaced by the file it was for.

    Examples
    --------
    >>> os_error_message(FileNotFoundError(2, "No such file or directory", "/proc/.x.html.ab.tmp"))
    'cannot write /proc/x.html: No such file or directory'
    >>> os_error_message(PermissionError(13, "Permission denied", "/etc/shadow"))
    '/etc/shadow: Permission denied'
    """
    import re
    from pathlib import Path

    name = str(exc.filename) if exc.filename is not None else ""
    reason = exc.strerror or str(exc)
    temporary = re.fullmatch(r"\.(?P<name>.+)\.[^.]+\.tmp", Path(name).name) if name else None
    if temporary:
        return f"cannot write {Path(name).parent / temporary['name']}: {reason}"
    return f"{name}: {reason}" if name else reason


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
#: Columns shown when a run has them (``--judgments``).
JUDGMENT_COLUMNS = (("agree", "triplet_agreement"), ("agree ≥90%", "triplet_agreement_high"))


def _with_judgments(rows: list[tuple[str, dict]], columns) -> list[tuple[str, str]]:
    present = {k for _, j in rows for k in j["metrics"]}
    return [*columns, *((h, k) for h, k in JUDGMENT_COLUMNS if k in present)]


def _cells(j: dict, columns) -> list[str]:
    m = j["metrics"]
    return ([f"{m[k]['mean']:.3f} ± {m[k]['std']:.3f}" if k in m else "—" for _, k in columns]
            + [f"{j['n_parameters']:,}" if "n_parameters" in j else "—",
               f"{j['train_seconds']:.1f}" if "train_seconds" in j else "—"])


def human_reference_row(j: dict) -> list[tuple[str, dict]]:
    """The human reference of a run with ``--judgments`` as a row of :func:`metrics_table`
    (each listener predicted from the others), or no row.

    Examples
    --------
    >>> j = {"listeners": {"listeners": ["L1", "L2"], "human_reference": {
    ...      "triplet_agreement": {"mean": 0.9, "std": 0.01, "per_listener": [0.89, 0.91]}}}}
    >>> human_reference_row(j)
    [('human reference (2 listeners)', {'metrics': {'triplet_agreement': {'mean': 0.9, 'std': 0.01}}})]
    """
    listeners = j.get("listeners") or {}
    human = listeners.get("human_reference")
    if not human:
        return []
    metrics = {k: {"mean": v["mean"], "std": v["std"]} for k, v in human.items()}
    return [(f"human reference ({len(listeners['listeners'])} listeners)", {"metrics": metrics})]


def metrics_table(title: str, rows: list[tuple[str, dict]], columns=LABEL_COLUMNS,
                  reference: list[tuple[str, dict]] = ()):
    """``train --json`` results (P@1, P@5, ii-P@5, MAP@R as mean ± std, or other ``columns``;
    the triplet agreement when a row has it; parameters, training seconds) laid out for the
    terminal: one row per model when that fits its width, one row per metric when that does,
    else one line per model and metric (never a cell cut short). ``reference`` rows (e.g. the
    human reference) may have only some of them: the others show as ``—``.
    """
    from rich.console import Group
    from rich.table import Table
    from rich.text import Text

    rows = [*rows, *reference]
    columns = _with_judgments(rows, columns)
    heads = [h for h, _ in columns] + ["params", "train s"]
    wide = Table(title=title, title_justify="left")
    wide.add_column("model", no_wrap=True)
    for h in heads:
        wide.add_column(h, justify="right", no_wrap=True)
    for name, j in rows:
        wide.add_row(name, *_cells(j, columns))
    def fits(table) -> bool:  # its natural width, not the width it would be squeezed into
        return out.measure(table, options=out.options.update_width(10_000)).maximum <= out.width

    if fits(wide):
        return wide
    tall = Table(title=title, title_justify="left")
    tall.add_column("", no_wrap=True)
    for name, _ in rows:
        tall.add_column(name, justify="right", no_wrap=True)
    for i, h in enumerate(heads):
        tall.add_row(h, *(_cells(j, columns)[i] for _, j in rows))
    if fits(tall):
        return tall
    lines = [Text(title)] + [Text(f"{name}: {h} {cell}") for name, j in rows
                             for h, cell in zip(heads, _cells(j, columns))]
    return Group(*lines)


def queries_note(j: dict) -> str | None:
    """One line about the queries left out of the metrics, if any were."""
    left = (j.get("queries") or {}).get("without_relevant") or 0
    if not left:
        return None
    counted = (j.get("queries") or {}).get("counted") or 0
    return (f"{left} of {left + counted} queries had no item of their label among the "
            f"candidates and are left out of every metric")


def dimensions_table(title: str, dimensions: dict[str, dict[str, dict[str, float]]]):
    """The per-dimension triplet scores of a run (``metrics["dimensions"]`` of ``train
    --json``) for the terminal: one row per dimension; its triplets scored in the whole
    embedding and, for a conditional model, in that dimension's own sub-space (in %, mean ±
    std over folds)."""
    from rich.table import Table

    from mirsim.evaluation.dimensions import WHOLE
    from mirsim.experiments.tables import percent

    own = any(d in spaces for d, spaces in dimensions.items())
    table = Table(title=title, title_justify="left")
    for head in ["dimension", f"{WHOLE} embedding (%)"] + (["own sub-space (%)"] if own else []):
        table.add_column(head, justify="left" if head == "dimension" else "right", no_wrap=True)
    for d, spaces in dimensions.items():
        cells = [percent(spaces[WHOLE])] + ([percent(spaces[d]) if d in spaces else "—"]
                                            if own else [])
        table.add_row(d, *cells)
    return table


def device_params(model: str, device: str) -> dict:
    """``{"device": device}`` for a model with a network (``{}`` for the CPU, the default, and
    for models without one); a device this machine does not have is a one-line error before
    any work.

    >>> device_params("mlp", "auto"), device_params("lda", "auto"), device_params("mlp", "cpu")
    ({'device': 'auto'}, {}, {})
    """
    from mirsim.training.devices import resolve_device

    resolve_device(device)
    return {"device": device} if device != "cpu" and takes_device(model) else {}


def takes_device(model: str) -> bool:
    """Whether the model called ``model`` has a network (a ``device`` parameter).

    >>> takes_device("segment-cnn"), takes_device("csn"), takes_device("lmnn")
    (True, True, False)
    """
    from mirsim.registries import MODELS
    from mirsim.registry import class_params

    return "device" in class_params(MODELS.get(model))
