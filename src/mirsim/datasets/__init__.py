"""Data sets: named collections and user data (a folder of labelled sub-folders or a CSV).

>>> from mirsim.datasets import available_datasets
>>> available_datasets()
['cyberlioz', 'cyberlioz-extended', 'grooves', 'multitrack', 'soundtracks', 'synth']
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mirsim._lazy import lazy_exports
from mirsim.errors import DataError, UnknownNameError
from mirsim.registries import DATASETS

__getattr__, __dir__ = lazy_exports(__name__, {"Collection": ".collection"})

def available_datasets() -> list[str]:
    """Names accepted by :func:`load_collection` besides a folder or CSV path."""
    return DATASETS.names()


def load_collection(name: str, **options: Any):
    """Load a named data set, a folder (one sub-folder per label), a CSV manifest or a tagged
    library CSV (a header that declares dimensions, ``genre:same-label``; see
    :mod:`mirsim.datasets.tagged`).

    Parameters
    ----------
    name : str
        A registered data set (``cyberlioz``, ``cyberlioz-extended``, ``synth``...), or a path.
    **options
        The data set's parameters (e.g. ``sol_root`` for ``cyberlioz-extended``); for a CSV,
        ``dimensions`` (``["genre=same-label", ...]``) makes it a tagged library.

    Raises
    ------
    UnknownNameError
        Neither a known name nor an existing path.
    """
    if name in DATASETS:
        return DATASETS.make(name, **options).load()
    path = Path(name).expanduser()
    if path.is_dir():
        from mirsim.datasets.files import load_folder

        return load_folder(path)
    if path.is_file():
        if path.suffix.lower() != ".csv":
            raise DataError(f"{path}: a data file must be a CSV manifest (path,label[,group])")
        from mirsim.datasets.tagged import is_tagged_csv, load_tagged

        if options.get("dimensions") or is_tagged_csv(path):
            return load_tagged(path, options.get("dimensions"))
        from mirsim.datasets.files import load_manifest

        return load_manifest(path)
    raise UnknownNameError("data set", name, [*DATASETS.names(), "<folder>", "<manifest.csv>"])


__all__ = ["Collection", "available_datasets", "load_collection"]
