"""Where data sets are on disk: found without loading anything heavy (``mirsim info`` asks).
"""

from __future__ import annotations

import csv
import os
from pathlib import Path

from mirsim.config import data_cache_dir

#: Tables of the Cyberlioz seed set.
CYBERLIOZ_FILES = ("seed_filelist.csv", "clusters.csv", "extended_filelist.csv")
#: Every listener's own grouping of the seed sounds (not required for a complete directory:
#: a mirror may lack it; see :mod:`mirsim.datasets.listeners`).
LISTENER_CLUSTERS = "listener_clusters.csv"


def is_complete(root: str | Path) -> bool:
    """True if ``root`` holds the Cyberlioz seed set (tables and the 78 sounds).

    Examples
    --------
    >>> import tempfile
    >>> is_complete(tempfile.mkdtemp())
    False
    """
    root = Path(root)
    if not all((root / f).is_file() for f in CYBERLIOZ_FILES):
        return False
    try:
        with open(root / "seed_filelist.csv", newline="", encoding="utf-8") as f:
            names = [row["fname"] for row in csv.DictReader(f)]
    except (OSError, KeyError, UnicodeDecodeError, csv.Error):
        return False
    return bool(names) and all((root / "audio" / f"{n}.mp3").is_file() for n in names)


def find_cyberlioz() -> Path | None:
    """Directory of the seed set: ``$MIRSIM_CYBERLIOZ_DIR``, then the user cache; or ``None``."""
    candidates = []
    if os.environ.get("MIRSIM_CYBERLIOZ_DIR"):
        candidates.append(Path(os.environ["MIRSIM_CYBERLIOZ_DIR"]).expanduser())
    candidates.append(data_cache_dir("cyberlioz"))
    return next((c for c in candidates if is_complete(c)), None)


def find_listener_clusters(root: str | Path | None = None) -> Path | None:
    """``listener_clusters.csv`` of the Cyberlioz directory ``root`` or, without it, of the one
    :func:`find_cyberlioz` finds; ``None`` if there is none.

    Examples
    --------
    >>> import tempfile
    >>> find_listener_clusters(tempfile.mkdtemp()) is None
    True
    """
    folder = Path(root) if root is not None else find_cyberlioz()
    if folder is None:
        return None
    path = folder / LISTENER_CLUSTERS
    return path if path.is_file() else None
