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
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from mirsim.index.errors import SoundIndexError

CONFIG_FILE = "index.json"
MANIFEST_FILE = "manifest.csv"
FEATURES_FILE = "features.npy"
EMBEDDINGS_FILE = "embeddings.npy"
FAISS_FILE = "faiss.index"
MODEL_DIR = "model"
REPORT_FILE = "build_report.json"
REQUIRED_FILES = (CONFIG_FILE, MANIFEST_FILE, FEATURES_FILE, EMBEDDINGS_FILE, FAISS_FILE)

#: Format marker and version written to ``index.json``.
FORMAT = "mirsim-sound-index"
FORMAT_VERSION = 1

#: Columns of ``manifest.csv``: ``path`` is relative to the library root (``/``-separated),
#: ``sha256`` the content hash, ``duration`` in seconds, ``size`` in bytes, ``mtime_ns`` the
#: modification time seen at build time, ``label`` the folder name, ``group`` (see
#: :func:`mirsim.index.scan.group_of`), then the pipeline that embedded the row.
MANIFEST_COLUMNS = ("path", "sha256", "duration", "size", "mtime_ns", "label", "group",
                    "feature_identity", "model_id", "mirsim_version")
_TEXT = ("path", "sha256", "label", "group", "feature_identity", "model_id", "mirsim_version")


def write_manifest(table: pd.DataFrame, path: Path) -> None:
    """Write the manifest as UTF-8 CSV (undecodable file-name bytes kept as escapes).

    Examples
    --------
    >>> import tempfile
    >>> p = Path(tempfile.mkdtemp()) / "manifest.csv"
    >>> row = dict(path="a, b/ü.wav", sha256="00", duration=1.5, size=3, mtime_ns=7,
    ...            label="NA", group="a, b", feature_identity="f", model_id="m",
    ...            mirsim_version="0")
    >>> write_manifest(pd.DataFrame([row]), p)
    >>> m = read_manifest(p)
    >>> m.at[0, "path"], m.at[0, "label"], int(m.at[0, "size"])
    ('a, b/ü.wav', 'NA', 3)
    """
    missing = [c for c in MANIFEST_COLUMNS if c not in table.columns]
    if missing:
        raise ValueError(f"manifest lacks column(s) {', '.join(missing)}")
    table.loc[:, list(MANIFEST_COLUMNS)].to_csv(path, index=False, encoding="utf-8",
                                                errors="surrogateescape")


def read_manifest(path: Path) -> pd.DataFrame:
    """Read a manifest written by :func:`write_manifest` (labels such as ``NA`` stay text)."""
    try:
        table = pd.read_csv(path, dtype={c: str for c in _TEXT}, keep_default_na=False,
                            na_values={"duration": ["", "nan", "NaN"]}, encoding="utf-8",
                            encoding_errors="surrogateescape")
    except FileNotFoundError:
        raise SoundIndexError(f"{path}: missing") from None
    except (pd.errors.ParserError, pd.errors.EmptyDataError, ValueError) as exc:
        raise SoundIndexError(f"{path}: not a readable manifest ({str(exc).strip()[:160]})") from None
    missing = [c for c in MANIFEST_COLUMNS if c not in table.columns]
    if missing:
        raise SoundIndexError(f"{path}: manifest lacks column(s) {', '.join(missing)}")
    table["size"] = table["size"].astype("int64")
    table["mtime_ns"] = table["mtime_ns"].astype("int64")
    table["duration"] = table["duration"].astype("float64")
    return table
