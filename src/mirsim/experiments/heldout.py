"""Held-out embeddings of a run: ``test_embeddings.npz`` in the run directory.

``mirsim train`` and ``mirsim demo`` keep the test part of the cross-validation's last fold,
embedded by the model trained without it (:class:`mirsim.evaluation.protocols.HeldOutEmbeddings`;
for ``demo``, those of the model the run saves). ``mirsim report`` draws its map, heatmap and
neighbours from them. A ``loo`` run keeps none (its last fold holds one item), and neither does
``reproduce table1``.

The file is a NumPy ``.npz`` archive readable without pickle (``allow_pickle=False``):

==============  ==============================================================================
``ids``         ``(m,)`` item ids (strings), as in the run's data
``labels``      ``(m,)`` labels (strings)
``groups``      ``(m,)`` groups (strings)
``embeddings``  ``(m, d)`` float32
``rows``        ``(m,)`` positions of the items among the run's usable items (the features)
``fold``        which fold, counted from 1; ``n_folds``: folds of the run
``protocol``    ``kfold`` or ``group-kfold``
``model``       name of the model that embedded them; ``data``: name of the collection
==============  ==============================================================================

It is written atomically (into memory, then a temporary file renamed into place).
"""

from __future__ import annotations

import io
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from mirsim.errors import DataError
from mirsim.artefacts.files import write_bytes_atomic

#: File name of the held-out embeddings in a run directory.
TEST_EMBEDDINGS = "test_embeddings.npz"

_ARRAYS = ("ids", "labels", "groups", "embeddings", "rows")
_SCALARS = ("fold", "n_folds", "protocol", "model", "data")


@dataclass
class TestEmbeddings:
    """The contents of ``test_embeddings.npz`` (see the module's description).

    Examples
    --------
    >>> t = TestEmbeddings(np.array(["a", "b"]), np.array(["x", "y"]), np.array(["1", "2"]),
    ...                    np.zeros((2, 4), np.float32), np.array([0, 5]), 3, 3, "kfold",
    ...                    "mlp", "toy")
    >>> len(t), t.describe()
    (2, 'the 2 test items of fold 3 of 3')
    """

    __test__ = False  # not a pytest test class, despite its name

    ids: np.ndarray
    labels: np.ndarray
    groups: np.ndarray
    embeddings: np.ndarray
    rows: np.ndarray
    fold: int
    n_folds: int
    protocol: str
    model: str
    data: str

    def __len__(self) -> int:
        return len(self.ids)

    def describe(self) -> str:
        """Which items these are, in words."""
        return f"the {len(self)} test items of fold {self.fold} of {self.n_folds}"


def held_out_embeddings(result: Any, features: Any) -> TestEmbeddings | None:
    """The held-out embeddings of an experiment, with the ids, labels and groups of the items.

    Parameters
    ----------
    result : ExperimentResult
        Of :func:`mirsim.experiments.run_experiment`.
    features : FeatureSet
        The features it was run on.

    Returns
    -------
    TestEmbeddings or None
        ``None`` when the protocol kept none (``loo``).

    Examples
    --------
    >>> import pandas as pd
    >>> from mirsim.datasets import Collection
    >>> from mirsim.experiments import FeatureSet, run_experiment
    >>> y = np.repeat(np.arange(3), 4)
    >>> c = Collection("toy", pd.DataFrame({"id": [f"i{n}" for n in range(12)], "label": y,
    ...                                     "group": range(12)}), [None] * 12)
    >>> fs = FeatureSet(c, "toy", np.eye(12, 4) + y[:, None], y, np.arange(12).astype(str),
    ...                 np.arange(12))
    >>> t = held_out_embeddings(run_experiment(fs, "euclidean", "kfold", folds=3), fs)
    >>> t.describe(), t.ids.dtype.kind, t.embeddings.shape
    ('the 4 test items of fold 3 of 3', 'U', (4, 4))
    """
    held = result.protocol_result.held_out
    if held is None:
        return None
    positions = np.asarray(features.kept)[held.indices]
    items = features.collection.items.iloc[positions]
    return TestEmbeddings(items["id"].astype(str).to_numpy(dtype=str),
                          np.asarray(features.labels)[held.indices].astype(str),
                          np.asarray(features.groups)[held.indices].astype(str),
                          np.asarray(held.embeddings, dtype=np.float32),
                          np.asarray(held.indices, dtype=np.int64), held.fold, held.n_folds,
                          result.protocol, result.model, features.collection.name)


def save_test_embeddings(run_dir: str | Path, embeddings: TestEmbeddings) -> Path:
    """Write ``run_dir/test_embeddings.npz`` atomically and return its path.

    Examples
    --------
    >>> import tempfile
    >>> t = TestEmbeddings(np.array(["a"]), np.array(["x"]), np.array(["g"]),
    ...                    np.ones((1, 2), np.float32), np.array([3]), 2, 5, "kfold", "mlp", "toy")
    >>> path = save_test_embeddings(tempfile.mkdtemp(), t)
    >>> back = load_test_embeddings(path)
    >>> back.ids.tolist(), back.fold, back.model, back.embeddings.dtype
    (['a'], 2, 'mlp', dtype('float32'))
    """
    buffer = io.BytesIO()
    np.savez(buffer, **{name: getattr(embeddings, name) for name in _ARRAYS},
             **{name: np.asarray(getattr(embeddings, name)) for name in _SCALARS})
    return write_bytes_atomic(Path(run_dir) / TEST_EMBEDDINGS, buffer.getvalue())


def load_test_embeddings(path: str | Path) -> TestEmbeddings:
    """Read a ``test_embeddings.npz`` file.

    Raises
    ------
    DataError
        The file cannot be read or lacks an entry (the message names the file).
    """
    try:
        with np.load(path, allow_pickle=False) as archive:
            arrays = {name: archive[name] for name in _ARRAYS}
            scalars = {name: archive[name].item() for name in _SCALARS}
    except (OSError, ValueError, KeyError, zipfile.BadZipFile, EOFError) as exc:
        raise DataError(f"{path}: not a readable held-out embeddings file "
                        f"({type(exc).__name__}: {exc})") from None
    return TestEmbeddings(
        arrays["ids"].astype(str), arrays["labels"].astype(str), arrays["groups"].astype(str),
        np.asarray(arrays["embeddings"], dtype=np.float32), arrays["rows"].astype(np.int64),
        int(scalars["fold"]), int(scalars["n_folds"]), str(scalars["protocol"]),
        str(scalars["model"]), str(scalars["data"]))
