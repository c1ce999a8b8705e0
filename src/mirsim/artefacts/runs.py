"""Run directories: where an experiment leaves its config, metrics, model and held-out
embeddings; creating one (:func:`create_run_dir`) and reading one (:func:`read_run`), the one
reader that the CLI, reports and the index use.

Four kinds of run directory are understood (``command`` in ``config.json``):

``train``             ``config.json``, ``metrics.json`` (one result), ``model/`` unless trained
                      with ``--no-save-model``, ``test_embeddings.npz`` (the last fold's
                      held-out embeddings; not for ``loo``);
``demo``              ``config.json``, ``metrics.json`` (one result per model), ``model/`` (the
                      learned model with the best MAP@R, named by ``saved_model``),
                      ``test_embeddings.npz`` (of that model's cross-validation);
``reproduce ...``     a paper's table (:mod:`mirsim.experiments.tables`): ``config.json`` and
                      the table as JSON and Markdown, named by ``table_file`` in
                      ``config.json`` (``reproduce table1``: ``table1.json``, ``table1.md``);
                      no model.
                      (``reproduce linear-methods`` also writes ``metrics.json``,
                      ``classification.json``, ``maps.npz``, ``projections.npz``:
                      :mod:`mirsim.experiments.linear_methods`.)

Runs made before mirsim kept held-out embeddings lack ``test_embeddings.npz``
(:mod:`mirsim.experiments.heldout`).
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mirsim.errors import MirsimError


class RunDirectoryError(MirsimError, ValueError):
    """A run directory that cannot be read (one line, naming the directory or file)."""


def runs_root(root: str | Path | None = None) -> Path:
    """The folder run directories go to (``root``, else ``MIRSIM_RUNS_DIR`` or ``./runs``),
    created and checked writable, so that a command can refuse it before it does any work.

    Examples
    --------
    >>> runs_root("/proc/no/such")
    Traceback (most recent call last):
    ...
    mirsim.artefacts.runs.RunDirectoryError: /proc/no/such: cannot create the runs directory (No such file or directory)
    """
    import tempfile

    from mirsim.config import runs_dir

    root = Path(root) if root is not None else runs_dir()
    try:
        root.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=root):
            pass
    except OSError as exc:
        raise RunDirectoryError(f"{root}: cannot create the runs directory "
                                f"({exc.strerror or exc})") from None
    return root


def create_run_dir(name: str, root: str | Path | None = None) -> Path:
    """Create a fresh directory ``<root>/<timestamp>-<name>`` (``root``: ``MIRSIM_RUNS_DIR``
    or ``./runs``) and return it.

    Examples
    --------
    >>> import tempfile
    >>> create_run_dir("demo", tempfile.mkdtemp()).name.endswith("-demo")
    True
    """
    root = runs_root(root)
    slug = re.sub(r"[^A-Za-z0-9_.-]+", "_", name).strip("_") or "run"
    stamp = time.strftime("%Y%m%d-%H%M%S")
    for i in range(1000):
        path = root / (f"{stamp}-{slug}" if i == 0 else f"{stamp}-{slug}-{i}")
        try:
            path.mkdir()
            return path
        except FileExistsError:
            continue
        except OSError as exc:
            raise RunDirectoryError(f"{path}: cannot create a run directory "
                                    f"({exc.strerror or exc})") from None
    raise RunDirectoryError(f"could not create a run directory under {root}")


@dataclass
class RunDirectory:
    """What a run directory holds.

    Attributes
    ----------
    path : Path
    config : dict
        ``config.json``.
    metrics : dict or None
        ``metrics.json`` (``train``, ``demo``), ``None`` when absent.
    table : dict or None
        The table of a ``reproduce`` run (:func:`table_file`), ``None`` when absent.
    problems : list of str
        Files that exist but could not be read (the report lists them).

    Examples
    --------
    >>> import tempfile
    >>> d = Path(tempfile.mkdtemp())
    >>> _ = (d / "config.json").write_text('{"command": "train", "model": "mlp"}')
    >>> run = read_run(d)
    >>> run.command, run.saved_model, run.model_dir is None, run.test_embeddings is None
    ('train', 'mlp', True, True)
    """

    path: Path
    config: dict[str, Any]
    metrics: dict[str, Any] | None = None
    table: dict[str, Any] | None = None
    problems: list[str] = field(default_factory=list)

    @property
    def command(self) -> str:
        """The command that wrote the run (``train``, ``demo``, ``reproduce table1``...)."""
        return str(self.config.get("command", "unknown"))

    @property
    def saved_model(self) -> str | None:
        """Name of the model the run saved (or would have saved), if it keeps one."""
        if self.command == "demo":
            return self.config.get("saved_model")
        if self.command == "train":
            return self.config.get("model")
        return None

    @property
    def model_dir(self) -> Path | None:
        """``model/`` when the run saved a model, else ``None``."""
        model = self.path / "model"
        return model if (model / "config.json").is_file() else None

    @property
    def test_embeddings(self) -> Path | None:
        """``test_embeddings.npz`` (held-out embeddings) when the run kept it, else ``None``."""
        from mirsim.experiments.heldout import TEST_EMBEDDINGS

        path = self.path / TEST_EMBEDDINGS
        return path if path.is_file() else None

    def missing_model_reason(self) -> str:
        """Why the run has no saved model, in a sentence.

        Examples
        --------
        >>> RunDirectory(Path("r"), {"command": "reproduce table1"}).missing_model_reason()
        'a `reproduce table1` run trains one model per table cell and keeps none'
        """
        if self.command == "reproduce linear-methods":
            return ("a `reproduce linear-methods` run trains one model per method and fold and "
                    "keeps none")
        if self.command.startswith("reproduce "):
            return f"a `{self.command}` run trains one model per table cell and keeps none"
        if self.command == "train":
            return "this run saved no model (it was trained with --no-save-model)"
        return f"this run ({self.command}) has no saved model (model/ missing)"


def read_run(path: str | Path) -> RunDirectory:
    """Read ``config.json`` and the metrics files of a run directory.

    Parameters
    ----------
    path : str or Path
        A directory written by ``mirsim train``, ``mirsim demo`` or ``mirsim reproduce ...``.

    Raises
    ------
    RunDirectoryError
        No such directory, no ``config.json``, or a ``config.json`` that is not a run
        configuration.

    Examples
    --------
    >>> read_run("no/such/run")
    Traceback (most recent call last):
    ...
    mirsim.artefacts.runs.RunDirectoryError: no/such/run: no such run directory
    """
    path = Path(path)
    if not path.exists():
        raise RunDirectoryError(f"{path}: no such run directory")
    if not path.is_dir():
        raise RunDirectoryError(f"{path}: not a directory (expected a mirsim run directory)")
    config = _read_json(path / "config.json")
    if config is None:
        raise RunDirectoryError(f"{path}: not a mirsim run directory (config.json missing)")
    if not isinstance(config, dict) or "command" not in config:
        raise RunDirectoryError(f"{path / 'config.json'}: not a mirsim run configuration "
                          f"(no 'command' entry)")
    run = RunDirectory(path, config)
    files = {"metrics": "metrics.json", "table": table_file(config)}
    for attribute, name in files.items():
        if name is None:
            continue
        try:
            value = _read_json(path / name)
        except RunDirectoryError as exc:
            run.problems.append(str(exc))
            continue
        if value is not None and not isinstance(value, dict):
            run.problems.append(f"{path / name}: not a JSON object")
            continue
        setattr(run, attribute, value)
    return run


def table_file(config: dict[str, Any]) -> str | None:
    """The name of the table file of a ``reproduce`` run (``None`` for other runs): the
    ``table_file`` its ``config.json`` records, ``table1.json`` for ``reproduce table1`` runs
    made before mirsim recorded it.

    Examples
    --------
    >>> table_file({"command": "reproduce table1"}), table_file({"command": "train"})
    ('table1.json', None)
    >>> table_file({"command": "reproduce x", "table_file": "../x.json"})
    Traceback (most recent call last):
    ...
    mirsim.artefacts.runs.RunDirectoryError: config.json: table_file must be a file name ending in .json, got '../x.json'
    """
    name = config.get("table_file")
    if name is None:
        return "table1.json" if config.get("command") == "reproduce table1" else None
    if not isinstance(name, str) or Path(name).name != name or not name.endswith(".json"):
        raise RunDirectoryError(f"config.json: table_file must be a file name ending in "
                                f".json, got {name!r}")
    return name


def _read_json(path: Path) -> Any:
    """The parsed file, ``None`` if it does not exist; unreadable JSON raises RunDirectoryError."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise RunDirectoryError(f"{path}: not valid JSON ({exc})") from None
    except OSError as exc:
        raise RunDirectoryError(f"{path}: cannot read ({exc.strerror or exc})") from None
