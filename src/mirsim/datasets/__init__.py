"""Data sets: named collections and user data (a folder of labelled sub-folders or a CSV).

>>> from mirsim.datasets import available_datasets
>>> available_datasets()
['cyberlioz', 'cyberlioz-extended', 'synth']
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mirsim.datasets.collection import Collection
from mirsim.errors import DataError, UnknownNameError

_NAMED = ("cyberlioz", "cyberlioz-extended", "synth")


def available_datasets() -> list[str]:
    """Names accepted by :func:`load_collection` besides a folder or CSV path."""
    return list(_NAMED)


def load_collection(name: str, **options: Any) -> Collection:
    """Load a named data set, a folder (one sub-folder per label) or a CSV manifest.

    Parameters
    ----------
    name : str
        ``cyberlioz``, ``cyberlioz-extended``, ``synth``, or a path.
    **options
        Passed to the loader (e.g. ``sol_root`` for ``cyberlioz-extended``, ``root``).

    Raises
    ------
    UnknownNameError
        Neither a known name nor an existing path.
    """
    if name == "cyberlioz":
        from mirsim.datasets.cyberlioz import load_cyberlioz

        return load_cyberlioz(**options)
    if name == "cyberlioz-extended":
        from mirsim.datasets.cyberlioz import load_cyberlioz_extended

        return load_cyberlioz_extended(**options)
    if name == "synth":
        from mirsim.datasets.synth import load_synth

        return load_synth(**options)
    path = Path(name).expanduser()
    if path.is_dir():
        from mirsim.datasets.files import load_folder

        return load_folder(path)
    if path.is_file():
        if path.suffix.lower() != ".csv":
            raise DataError(f"{path}: a data file must be a CSV manifest (path,label[,group])")
        from mirsim.datasets.files import load_manifest

        return load_manifest(path)
    raise UnknownNameError("data set", name, [*_NAMED, "<folder>", "<manifest.csv>"])


__all__ = ["Collection", "available_datasets", "load_collection"]
