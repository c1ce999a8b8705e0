"""Resumable tables: a paper's table computed cell by cell into a run directory, saved after
every cell, and continued after an interruption (``mirsim reproduce ... --resume RUN_DIR``).

Every ``reproduce`` table (:mod:`~mirsim.experiments.table1`,
:mod:`~mirsim.experiments.metric_vs_classification`) is built the same way:

* a :class:`TableKind` names the command, the table's files and the configuration entries a
  run of that kind records; :meth:`TableKind.config` makes the checked configuration
  (``config.json``) and :meth:`TableKind.start` the run directory;
* :func:`fill_table` computes the cells that are not yet done, calling ``on_table`` after
  each one (to save the table: :meth:`TableKind.save`);
* :meth:`TableKind.load_unfinished` reads back the configuration and the finished cells of
  an interrupted run; the cells are seeded, so a continued table equals an uninterrupted one.

The table (its JSON file) lists its rows under ``"models"`` and its columns under
``"features"``, holds each cell under ``cells[row][column]`` (metrics as ``{"mean",
"std"}`` over folds, ``n_parameters``, ``train_seconds``...) and says ``"complete": false``
until the last cell is in; ``row_names`` holds the name each row has in the Markdown table.
``mirsim report`` reads any such table.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import mirsim
from mirsim.errors import MirsimError

#: How tables name the metrics (JSON keys -> column titles).
METRIC_NAMES = {"ii_p_at_5": "ii-P@5", "p_at_5": "P@5", "p_at_1": "P@1", "map_at_r": "MAP@R",
                "r_at_1": "R@1", "r_at_2": "R@2", "r_at_4": "R@4", "r_at_8": "R@8",
                "label_auc": "label AUC", "triplet_agreement": "triplet agreement",
                "triplet_agreement_high": "triplet agreement ≥90%"}

Cells = dict[str, dict[str, dict[str, Any]]]


@dataclass(frozen=True)
class TableKind:
    """One kind of resumable table.

    Attributes
    ----------
    command : str
        The command that writes it (``config.json``'s ``command``), e.g. ``reproduce table1``.
    stem : str
        Its files: ``<stem>.json`` and ``<stem>.md``.
    rows_key : str
        The configuration entry that lists the table's rows.
    required : tuple of str
        The configuration entries a run directory of this kind must have to be continued.

    Examples
    --------
    >>> kind = TableKind("reproduce toy", "toy", "models", ("data", "models"))
    >>> kind.config(data="x", models=["euclidean"])["table_file"]
    'toy.json'
    """

    command: str
    stem: str
    rows_key: str
    required: tuple[str, ...]

    @property
    def json_name(self) -> str:
        return f"{self.stem}.json"

    @property
    def markdown_name(self) -> str:
        return f"{self.stem}.md"

    def config(self, **entries: Any) -> dict[str, Any]:
        """The configuration saved as ``config.json``: the command, the table's file name,
        ``entries`` and mirsim's version."""
        return {"command": self.command, "table_file": self.json_name, **entries,
                "mirsim_version": mirsim.__version__}

    def start(self, config: dict[str, Any], name: str, runs: str | Path | None = None) -> Path:
        """A new run directory (``<runs>/<timestamp>-<name>``) holding ``config.json``."""
        from mirsim.artefacts.files import write_json
        from mirsim.artefacts.runs import create_run_dir

        run_dir = create_run_dir(name, runs)
        write_json(run_dir / "config.json", config)
        return run_dir

    def save(self, run_dir: Path, table: dict[str, Any]) -> None:
        """Write the table (as far as it goes) to ``<stem>.json``, atomically."""
        from mirsim.artefacts.files import write_json

        write_json(Path(run_dir) / self.json_name, table)

    def finish(self, run_dir: Path, table: dict[str, Any], markdown: str) -> None:
        """Write the finished table as JSON and Markdown."""
        from mirsim.artefacts.files import write_text_atomic

        self.save(run_dir, table)
        write_text_atomic(Path(run_dir) / self.markdown_name, markdown + "\n")

    def load_unfinished(self, run_dir: str | Path) -> tuple[dict[str, Any], Cells]:
        """The configuration and finished cells of a run directory of this kind.

        Returns
        -------
        config : dict
            The saved configuration.
        cells : dict
            ``cells[row][column]`` of the finished cells of the configuration's rows (empty
            if none); pass as ``done`` to :func:`fill_table`.

        Raises
        ------
        MirsimError
            Not a run directory of this kind, or files that cannot be read (one line, naming
            the file).

        Examples
        --------
        >>> import tempfile
        >>> d = Path(tempfile.mkdtemp())
        >>> _ = (d / "config.json").write_text('{"command": "reproduce toy", '
        ...     '"table_file": "toy.json", "data": "x", "models": ["euclidean"]}')
        >>> TableKind("reproduce toy", "toy", "models", ("data", "models")).load_unfinished(d)[1]
        {}
        >>> TableKind("reproduce other", "other", "models", ()).load_unfinished(d)
        Traceback (most recent call last):
        ...
        mirsim.errors.MirsimError: ...: not a `reproduce other` run directory (config.json says 'reproduce toy')
        """
        from mirsim.artefacts.runs import read_run

        run = read_run(run_dir)
        run_dir, config = run.path, run.config
        if config.get("command") != self.command:
            raise MirsimError(f"{run_dir}: not a `{self.command}` run directory "
                              f"(config.json says {config.get('command')!r})")
        missing = sorted(set(self.required) - set(config))
        if missing:
            raise MirsimError(f"{run_dir / 'config.json'}: missing {', '.join(missing)}")
        if run.problems:
            raise MirsimError(run.problems[0])
        cells = (run.table or {}).get("cells", {})
        return config, {r: dict(row) for r, row in cells.items() if r in config[self.rows_key]}


def fill_table(table: dict[str, Any], rows: Iterable[str], columns: Sequence[str],
               compute: Callable[[str, str], dict[str, Any]], *, done: Cells | None = None,
               on_table: Callable[[dict], None] | None = None,
               on_cell: Callable[[str, str, dict], None] | None = None) -> dict[str, Any]:
    """Fill ``table["cells"][row][column]`` with ``compute(row, column)``, row by row.

    Cells found in ``done`` (an earlier run's) are kept, not computed again. After each
    computed cell the table (``"complete": False`` until the last one) is passed to
    ``on_table``; ``on_cell(row, column, cell)`` is called for every cell. A cell that says
    how many folds it ran (``"folds"``: ``loo`` runs one per item) sets the table's.

    Examples
    --------
    >>> t = fill_table({"folds": 5}, ["a", "b"], ["x"], lambda r, c: {"v": r + c},
    ...                done={"a": {"x": {"v": "kept"}}})
    >>> t["cells"], t["complete"]
    ({'a': {'x': {'v': 'kept'}}, 'b': {'x': {'v': 'bx'}}}, True)
    """
    table["cells"], table["complete"] = {}, False
    for row in rows:
        table["cells"][row] = {}
        for column in columns:
            cell = (done or {}).get(row, {}).get(column)
            computed = cell is None
            if computed:
                cell = compute(row, column)
            table["cells"][row][column] = cell
            table["folds"] = cell.get("folds", table.get("folds"))
            if computed and on_table:
                on_table(table)
            if on_cell:
                on_cell(row, column, cell)
    table["complete"] = True
    return table


def row_overrides(params: Iterable[str] | None, rows: Sequence[str], what: str = "ROW"
                  ) -> dict[str, list[str]]:
    """``-p ROW:KEY=VALUE`` options of a table, grouped by row: ``{row: ["KEY=VALUE", ...]}``.

    Examples
    --------
    >>> row_overrides(["mlp:epochs=3", "mlp:lr=0.01"], ["mlp", "lmnn"], "MODEL")
    {'mlp': ['epochs=3', 'lr=0.01']}
    >>> row_overrides(["an-gnn:k=5"], ["mlp"], "MODEL")
    Traceback (most recent call last):
    ...
    mirsim.errors.MirsimError: --param for a row not in the table: an-gnn (rows: mlp)
    """
    overrides: dict[str, list[str]] = {}
    for p in params or []:
        row, sep, assignment = p.partition(":")
        if not sep:
            raise MirsimError(f"--param '{p}': use {what}:KEY=VALUE (rows: {', '.join(rows)})")
        overrides.setdefault(row, []).append(assignment)
    unknown = sorted(set(overrides) - set(rows))
    if unknown:
        raise MirsimError(f"--param for a row not in the table: {', '.join(unknown)} "
                          f"(rows: {', '.join(rows)})")
    return overrides


def row_name(model: str, params: dict[str, Any] | None = None) -> str:
    """A model's name in tables: its registered ``display_name`` (or its name); with
    ``params``, the name of that variant of the model (``display_name_for``).

    >>> row_name("lmnn"), row_name("linear")
    ('LMNN', 'Linear projection')
    >>> row_name("classifier", {"normalize": False})
    'Classification (not normalised)'
    """
    from mirsim.registries import MODELS

    if model not in MODELS:
        return model
    if params:
        return MODELS.get(model).display_name_for(params)
    return MODELS.entry(model).attributes.get("display_name") or model


def row_label(table: dict[str, Any], row: str) -> str:
    """The name a table gives its row: from its ``row_names`` (tables made before mirsim
    recorded them: the model's name).

    >>> row_label({"row_names": {"c": "Classification (normalised)"}}, "c"), row_label({}, "lmnn")
    ('Classification (normalised)', 'LMNN')
    """
    return (table.get("row_names") or {}).get(row) or row_name(row)


def percent(stat: dict[str, float]) -> str:
    """``mean ± std`` of a fraction, in %.

    >>> percent({"mean": 0.385, "std": 0.01})
    '38.5 ± 1.0'
    """
    return f"{100 * stat['mean']:.1f} ± {100 * stat['std']:.1f}"


def preamble(table: dict[str, Any]) -> list[str]:
    """The lines above a table: the data and the protocol.

    >>> preamble({"data": "d", "n_items": 9, "description": "toy", "protocol": "kfold",
    ...           "folds": 3})[1]
    'Protocol: kfold, 3 folds; cells: mean ± std over folds.'
    """
    loo = " (one query each)" if table["protocol"] == "loo" else ""
    return [f"Data: {table['data']} ({table['n_items']} items) — {table['description']}",
            f"Protocol: {table['protocol']}, {table['folds']} folds; cells: mean ± std over "
            f"folds{loo}.", ""]


def left_out_note(table: dict[str, Any]) -> list[str]:
    """The lines below a table saying how many queries had no relevant item (none if none).

    >>> left_out_note({"models": ["m"], "features": ["f"],
    ...                "cells": {"m": {"f": {"queries": {"without_relevant": 0}}}}})
    []
    """
    left_out = {(table["cells"][r][c].get("queries") or {}).get("without_relevant") or 0
                for r in table["models"] for c in table["features"]}
    if max(left_out, default=0) == 0:
        return []
    return ["", f"Queries without a relevant item (no other item of their label among the "
                f"candidates), left out of every metric: {max(left_out)} in all folds "
                f"together."]
