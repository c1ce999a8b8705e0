"""The files of an index directory, and its manifest (one CSV row per indexed sound).

An index directory holds::

    index.json          configuration: feature, model, embedding size, metric, FAISS index type
    manifest.csv        one row per sound, in embedding order (columns: MANIFEST_COLUMNS)
    features.npy        the sounds' raw features (float32, one row per manifest row)
    embeddings.npy      their embeddings (float32, one row per manifest row)
    faiss.index         the FAISS index over the embeddings (row i has id i)
    model/              the metric model used for queries (a graph model's reference set is
                        the library)
    build_report.json   skipped files with reasons, counts, timings
    aspects.npy         only for a model with sub-spaces (format version 2): each sound's
                        L2-normalised sub-space embeddings side by side (float32, one row
                        per manifest row); index.json's "aspects" says which columns of the
                        embedding each one reads (:mod:`mirsim.index.aspects`)
    aspects.faiss       with aspects, above the approximate threshold: an HNSW (or IVF)
                        index of aspects.npy
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from mirsim.index.errors import SoundIndexError

if TYPE_CHECKING:
    import pandas as pd

CONFIG_FILE = "index.json"
MANIFEST_FILE = "manifest.csv"
FEATURES_FILE = "features.npy"
EMBEDDINGS_FILE = "embeddings.npy"
FAISS_FILE = "faiss.index"
MODEL_DIR = "model"
REPORT_FILE = "build_report.json"
REQUIRED_FILES = (CONFIG_FILE, MANIFEST_FILE, FEATURES_FILE, EMBEDDINGS_FILE, FAISS_FILE)

#: Format marker and the newest version this mirsim reads (``index.json``): 1, the original
#: layout; 2, an index with aspects (``aspects.npy``; an index without is still written as 1).
FORMAT = "mirsim-sound-index"
FORMAT_VERSION = 2
PLAIN_FORMAT_VERSION = 1

#: Columns of ``manifest.csv``: ``path`` is relative to the library root (``/``-separated),
#: ``sha256`` the content hash, ``duration`` in seconds, ``size`` in bytes, ``mtime_ns`` the
#: modification time seen at build time, ``label`` the folder name, ``group`` (see
#: :func:`mirsim.index.scan.group_of`), then the pipeline that embedded the row.
MANIFEST_COLUMNS = ("path", "sha256", "duration", "size", "mtime_ns", "label", "group",
                    "feature_identity", "model_id", "mirsim_version")
_TEXT = ("path", "sha256", "label", "group", "feature_identity", "model_id", "mirsim_version")
#: Numeric columns and their types (an empty ``duration`` is NaN: not known).
_NUMBERS = {"size": np.int64, "mtime_ns": np.int64, "duration": np.float64}


def write_manifest(table: pd.DataFrame, path: Path) -> None:
    """Write the manifest as UTF-8 CSV (undecodable file-name bytes kept as escapes).

    Examples
    --------
    >>> import tempfile
    >>> p = Path(tempfile.mkdtemp()) / "manifest.csv"
    >>> row = dict(path="a, b/ü.wav", sha256="00", duration=1.5, size=3, mtime_ns=7,
    ...            label="NA", group="a, b", feature_identity="f", model_id="m",
    ...            mirsim_version="0")
    >>> import pandas as pd
    >>> write_manifest(pd.DataFrame([row]), p)
    >>> m = read_manifest(p)
    >>> m.at[0, "path"], m.at[0, "label"], int(m.at[0, "size"])
    ('a, b/ü.wav', 'NA', 3)
    >>> read_manifest(p, as_frame=False)["duration"]
    array([1.5])
    """
    missing = [c for c in MANIFEST_COLUMNS if c not in table.columns]
    if missing:
        raise ValueError(f"manifest lacks column(s) {', '.join(missing)}")
    table.loc[:, list(MANIFEST_COLUMNS)].to_csv(path, index=False, encoding="utf-8",
                                                errors="surrogateescape")


def read_manifest(path: Path, *, as_frame: bool = True) -> pd.DataFrame | dict[str, np.ndarray]:
    """Read a manifest written by :func:`write_manifest` (labels such as ``NA`` stay text).

    Parameters
    ----------
    path : Path
    as_frame : bool
        A pandas DataFrame (the default), or a dict of one NumPy array per column (text
        columns as object arrays of ``str``): what a short command such as ``mirsim query``
        reads, without the half second that importing pandas costs.

    Raises
    ------
    SoundIndexError
        The file is missing, is not CSV, lacks a column or has a row that does not fit.
    """
    # The csv module, not pandas.read_csv: the query path must not import pandas.
    try:
        with open(path, newline="", encoding="utf-8", errors="surrogateescape") as f:
            rows = list(csv.reader(f))
    except FileNotFoundError:
        raise SoundIndexError(f"{path}: missing") from None
    except (OSError, csv.Error) as exc:
        raise SoundIndexError(f"{path}: not a readable manifest ({str(exc).strip()[:160]})") from None
    if not rows:
        raise SoundIndexError(f"{path}: not a readable manifest (empty file)")
    header, body = rows[0], [r for r in rows[1:] if r]
    missing = [c for c in MANIFEST_COLUMNS if c not in header]
    if missing:
        raise SoundIndexError(f"{path}: manifest lacks column(s) {', '.join(missing)}")
    bad = next((n for n, r in enumerate(body, start=2) if len(r) != len(header)), None)
    if bad is not None:
        raise SoundIndexError(f"{path}: not a readable manifest (row {bad} has "
                              f"{len(body[bad - 2])} fields, the header {len(header)})")
    columns = {}
    for j, name in enumerate(header):
        values = [r[j] for r in body]
        try:
            columns[name] = (_numbers(values, _NUMBERS[name]) if name in _NUMBERS
                             else np.array(values, dtype=object))
        except ValueError as exc:
            raise SoundIndexError(f"{path}: not a readable manifest (column {name}: "
                                  f"{str(exc)[:120]})") from None
    return manifest_frame(columns) if as_frame else columns


def manifest_frame(columns: dict[str, np.ndarray]) -> pd.DataFrame:
    """The columns read by :func:`read_manifest` as a DataFrame (text columns as strings)."""
    import pandas as pd

    table = pd.DataFrame(columns)
    for name in _TEXT:
        table[name] = table[name].astype(str)
    return table


def _numbers(values: list[str], dtype: type) -> np.ndarray:
    if dtype is np.float64:
        return np.array([float(v) if v.strip() else np.nan for v in values], dtype=dtype)
    return np.array([int(v) for v in values], dtype=dtype)
