"""The embeddings a report draws: the run's held-out test items when it kept them, else every
usable item of the run's data embedded by the run's saved model.

Which items, and why
--------------------
*Held-out embeddings* (:func:`held_out_items`). ``mirsim train`` and ``mirsim demo`` keep the
test part of the cross-validation's last fold, embedded by the model trained without it
(``test_embeddings.npz``, :mod:`mirsim.experiments.heldout`). The report draws those: one model,
so distances between them are coherent and are those the fold's metrics were measured with, on
sounds that model never saw. Neighbours are searched among these items only. Their audio comes
from the run's data, matched by item id.

*Fallback* (:func:`embed_run_items`). Runs without that file (``loo``, whose last fold holds one
item; runs made before mirsim kept it) keep only the model fitted on *every* usable item after
cross-validation. The report then embeds all those items with it, reading their features from
the feature cache (or computing them, if the cache lacks them), as
``mirsim index build --run`` does (:class:`mirsim.index.pipeline.EmbeddingPipeline`: graph
models embed the items in one pass over their graph). The map, the heatmap and the neighbours
then show the metric the model learned *on its own training data*; the page says so.

:func:`run_embeddings` chooses between the two.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from mirsim.errors import DataError
from mirsim.reports.errors import ReportError
from mirsim.artefacts.runs import RunDirectory

#: The label shown for every item of an unlabelled collection (a folder without sub-folders).
NO_LABEL = "(no label)"


@dataclass
class RunEmbeddings:
    """Embedded items of a run, with what the page shows about each.

    Attributes
    ----------
    embeddings : numpy.ndarray
        ``(n, d)`` float32.
    ids, labels, groups : numpy.ndarray
        ``(n,)`` strings.
    sources : list
        Audio sources of the items (``source.load(sr, duration)``).
    model : str
        Name of the model that embedded them.
    data : str
        Name of the collection; ``description`` says what it is.
    n_skipped : int
        Items of the collection that could not be read (not embedded).
    fold, n_folds : int or None
        For held-out embeddings, the fold (counted from 1) whose test items these are and the
        number of folds; ``None`` for the final model's embeddings of every item.
    protocol : str
        The run's protocol (held-out embeddings).
    n_missing : int
        Held-out items whose id the data no longer has (they have no audio).

    Examples
    --------
    >>> e = RunEmbeddings(np.zeros((8, 2), np.float32), *[np.array(["a"] * 8)] * 3, [None] * 8,
    ...                   "mlp", "toy", fold=3, n_folds=3)
    >>> e.held_out, e.population()
    (True, 'the 8 held-out test items')
    """

    embeddings: np.ndarray
    ids: np.ndarray
    labels: np.ndarray
    groups: np.ndarray
    sources: Sequence[Any]
    model: str
    data: str
    description: str = ""
    n_skipped: int = 0
    fold: int | None = None
    n_folds: int | None = None
    protocol: str = ""
    n_missing: int = 0

    def __len__(self) -> int:
        return len(self.embeddings)

    @property
    def held_out(self) -> bool:
        """Whether these are a fold's test items embedded by the model trained without them."""
        return self.fold is not None

    def population(self) -> str:
        """The items neighbours are searched among, in words."""
        if self.held_out:
            return f"the {len(self)} held-out test items"
        return f"all {len(self)} items"


class MissingSource:
    """The audio of a held-out item whose id the run's data no longer has.

    Examples
    --------
    >>> MissingSource("x").load(16000)
    Traceback (most recent call last):
    ...
    mirsim.errors.DataError: item x is no longer in the run's data
    """

    def __init__(self, item_id: str):
        self.item_id = item_id

    def load(self, sr: int, duration: float | None = None) -> np.ndarray:
        """Raise :class:`mirsim.errors.DataError`: there is nothing to load."""
        raise DataError(f"item {self.item_id} is no longer in the run's data")


def resolve_data(run: RunDirectory, data: str | None = None) -> str:
    """The data set to embed: ``data`` if given, else the run's; checked to exist from here.

    Raises
    ------
    ReportError
        Neither a named data set nor an existing path (e.g. a relative folder of a run made
        elsewhere).

    Examples
    --------
    >>> resolve_data(RunDirectory(Path("r"), {"command": "train", "data": "synth"}))
    'synth'
    >>> resolve_data(RunDirectory(Path("r"), {"command": "train", "data": "gone/lib"}))
    Traceback (most recent call last):
    ...
    mirsim.reports.errors.ReportError: the run's data 'gone/lib' is not a data set name and no such path exists from here (a relative path is relative to where the run was made; pass --data)
    """
    from mirsim.datasets import available_datasets

    name = data or run.config.get("data")
    if not name:
        raise ReportError(f"{run.path / 'config.json'}: no 'data' entry (pass --data)")
    name = str(name)
    if name in available_datasets() or Path(name).expanduser().exists():
        return name
    whose = "the given" if data else "the run's"
    raise ReportError(f"{whose} data '{name}' is not a data set name and no such path exists "
                      f"from here (a relative path is relative to where the run was made; "
                      f"pass --data)")


def run_embeddings(run: RunDirectory, data: str | None = None,
                   data_options: dict[str, Any] | None = None, n_jobs: int = 1,
                   progress: Callable[[int, int], None] | None = None) -> RunEmbeddings:
    """The embeddings the report draws: :func:`held_out_items` when the run kept
    ``test_embeddings.npz``, else :func:`embed_run_items` (parameters as there).

    Raises
    ------
    ReportError
        As :func:`held_out_items` or :func:`embed_run_items`.
    """
    if run.test_embeddings is not None:
        return held_out_items(run, data, data_options)
    return embed_run_items(run, data, data_options, n_jobs=n_jobs, progress=progress)


def held_out_items(run: RunDirectory, data: str | None = None,
                   data_options: dict[str, Any] | None = None) -> RunEmbeddings:
    """The run's held-out embeddings (``test_embeddings.npz``), with the items' audio sources
    from the run's data, matched by item id.

    Parameters
    ----------
    run : RunDirectory
        A run that has ``test_embeddings.npz``.
    data, data_options
        As in :func:`embed_run_items`.

    Raises
    ------
    ReportError
        The file cannot be read, or the data cannot be found.
    """
    from mirsim.datasets import load_collection
    from mirsim.experiments.heldout import load_test_embeddings

    try:
        kept = load_test_embeddings(run.test_embeddings)
    except DataError as exc:
        raise ReportError(str(exc)) from None
    collection = load_collection(resolve_data(run, data), **(data_options or {}))
    by_id = dict(zip(collection.items["id"].astype(str), collection.sources))
    sources = [by_id[i] if i in by_id else MissingSource(i) for i in kept.ids]
    return RunEmbeddings(kept.embeddings, kept.ids, kept.labels, kept.groups, sources,
                         kept.model, collection.name, collection.description, fold=kept.fold,
                         n_folds=kept.n_folds, protocol=kept.protocol,
                         n_missing=sum(i not in by_id for i in kept.ids))


def embed_run_items(run: RunDirectory, data: str | None = None,
                    data_options: dict[str, Any] | None = None, n_jobs: int = 1,
                    progress: Callable[[int, int], None] | None = None) -> RunEmbeddings:
    """Embed every usable item of the run's data with the run's saved model (the fallback for
    runs without held-out embeddings).

    Parameters
    ----------
    run : RunDirectory
    data : str, optional
        The data set, when it is no longer where the run's ``config.json`` says.
    data_options : dict, optional
        Passed to the data set's loader (e.g. ``{"sol_root": ...}``).
    n_jobs : int
        Processes for feature extraction (features are normally read from the cache).
    progress : callable, optional
        Called with ``(items done, total)`` while features are loaded.

    Raises
    ------
    ReportError
        The run keeps no model, or its data cannot be found. Errors of the model or the data
        (:class:`mirsim.errors.MirsimError`) pass through.

    Examples
    --------
    >>> import tempfile
    >>> run = RunDirectory(Path(tempfile.mkdtemp()), {"command": "reproduce table1"})
    >>> embed_run_items(run)
    Traceback (most recent call last):
    ...
    mirsim.reports.errors.ReportError: a `reproduce table1` run trains one model per table cell and keeps none
    """
    from mirsim.experiments import load_features
    from mirsim.index.pipeline import EmbeddingPipeline

    if run.model_dir is None:
        raise ReportError(run.missing_model_reason())
    name = resolve_data(run, data)
    pipeline = EmbeddingPipeline.from_run(run.path)
    features = load_features(name, pipeline.feature, pipeline.feature_params, data_options,
                             n_jobs=n_jobs, progress=progress)
    embeddings = np.asarray(pipeline.embed_library(features.X, features.labels), np.float32)
    items = features.collection.items.iloc[features.kept]
    labels = (items["label"].astype(str).to_numpy() if features.labelled
              else np.full(len(items), NO_LABEL))  # an unlabelled folder: one for all
    return RunEmbeddings(embeddings, items["id"].astype(str).to_numpy(), labels,
                         items["group"].astype(str).to_numpy(),
                         [features.collection.sources[i] for i in features.kept],
                         pipeline.model_name, features.collection.name,
                         features.collection.description, len(features.skipped))
