"""Where mirsim keeps things on disk. Every location can be moved with an environment variable.

``MIRSIM_CACHE_DIR``     feature cache and downloaded data (default: ``$XDG_CACHE_HOME/mirsim``
                         or ``~/.cache/mirsim``).
``MIRSIM_CYBERLIOZ_DIR`` a directory holding the Cyberlioz seed set (checked first).
``MIRSIM_RUNS_DIR``      where run directories are written (default: ``./runs``).
"""

from __future__ import annotations

import os
from pathlib import Path


def cache_dir() -> Path:
    """Root of mirsim's on-disk cache.

    Examples
    --------
    >>> cache_dir().name in {"mirsim"} or "MIRSIM_CACHE_DIR" in os.environ
    True
    """
    if os.environ.get("MIRSIM_CACHE_DIR"):
        return Path(os.environ["MIRSIM_CACHE_DIR"]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base).expanduser() / "mirsim"


def data_cache_dir(name: str) -> Path:
    """Directory where the data set ``name`` is downloaded by ``mirsim data fetch``."""
    return cache_dir() / "data" / name


def runs_dir() -> Path:
    """Directory under which run directories are created."""
    return Path(os.environ.get("MIRSIM_RUNS_DIR", "runs")).expanduser()
