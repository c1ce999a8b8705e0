"""One way to choose a separator: :func:`make_separator` (by name) and :func:`load_separator`
(a fitted one saved in a folder).

Every separator has ``fit(mixes, stems, sr)`` (a no-op for those that learn nothing here),
``separate(mix, sr) -> {"drums", "bass", "piano": array of the mix's length}`` and a
``trainable`` flag; a trainable one also has ``save(folder)`` and ``load(folder)``.

=============  =========================================================================
name           separator
=============  =========================================================================
``hpss``       librosa's harmonic-percussive separation (:mod:`mirsim.separation.hpss`)
``openunmix``  Open-Unmix trained here on the training songs (:mod:`~.separation.unmix`)
``umxhq``      published Open-Unmix (MUSDB18-HQ) weights (:mod:`~.separation.pretrained`)
``umxl``       published Open-Unmix "large" weights
``htdemucs``   published Hybrid Transformer Demucs weights (needs ``demucs``)
=============  =========================================================================

>>> import numpy as np
>>> sep = make_separator("hpss")
>>> sorted(sep.fit([], [], 8000).separate(np.zeros(2048, np.float32), 8000))
['bass', 'drums', 'piano']
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from mirsim.errors import MirsimError, UnknownNameError
from mirsim.registry import class_params
from mirsim.separation.hpss import BASS_CUTOFF_HZ, hpss_separate

__all__ = ["SEPARATORS", "SEPARATOR_DIR", "HPSSSeparator", "separator_class", "make_separator",
           "run_separator",
           "load_separator"]

#: Separator name -> ``module:class`` (imported only when asked for).
#: Where a run directory keeps its fitted separator.
SEPARATOR_DIR = "separator"

SEPARATORS = {
    "hpss": "mirsim.separation.separators:HPSSSeparator",
    "openunmix": "mirsim.separation.unmix:OpenUnmixSeparator",
    "umxhq": "mirsim.separation.pretrained:UMXHQSeparator",
    "umxl": "mirsim.separation.pretrained:UMXLSeparator",
    "htdemucs": "mirsim.separation.pretrained:DemucsSeparator",
}


class HPSSSeparator:
    """The baseline: :func:`~mirsim.separation.hpss.hpss_separate` (learns nothing)."""

    name = "hpss"
    trainable = False

    def __init__(self, margin: float = 1.0, bass_cutoff_hz: float = BASS_CUTOFF_HZ):
        self.margin, self.bass_cutoff_hz = margin, bass_cutoff_hz

    def get_params(self) -> dict[str, Any]:
        return {"margin": self.margin, "bass_cutoff_hz": self.bass_cutoff_hz}

    def fit(self, mixes: Sequence[np.ndarray], stems: Sequence[Mapping[str, np.ndarray]],
            sr: int) -> HPSSSeparator:
        return self

    def separate(self, mix: np.ndarray, sr: int) -> dict[str, np.ndarray]:
        return hpss_separate(mix, sr, margin=self.margin, bass_cutoff_hz=self.bass_cutoff_hz)


def separator_class(name: str) -> type:
    """The class of separator ``name`` (its module imported only now)."""
    if name not in SEPARATORS:
        raise UnknownNameError("separator", name, SEPARATORS)
    module, cls = SEPARATORS[name].split(":")
    return getattr(importlib.import_module(module), cls)


def make_separator(name: str, **params: Any):
    """The separator ``name`` (see :data:`SEPARATORS`) with ``params``.

    Examples
    --------
    >>> make_separator("nope")
    Traceback (most recent call last):
    mirsim.errors.UnknownNameError: unknown separator 'nope' (valid: hpss, htdemucs, openunmix, umxhq, umxl)
    >>> make_separator("hpss", colour=1)
    Traceback (most recent call last):
    mirsim.errors.MirsimError: separator 'hpss' has no parameter 'colour' (valid: bass_cutoff_hz, margin)
    """
    cls = separator_class(name)
    valid = class_params(cls)
    wrong = [p for p in params if p not in valid]
    if wrong:
        raise MirsimError(f"separator {name!r} has no parameter {wrong[0]!r} "
                          f"(valid: {', '.join(sorted(valid))})")
    return cls(**params)


def load_separator(folder: str | Path, device: str | None = None):
    """A fitted separator saved in ``folder`` by its ``save`` method.

    Examples
    --------
    >>> load_separator("/nonexistent/separator")
    Traceback (most recent call last):
    mirsim.errors.MirsimError: /nonexistent/separator: no saved separator (config.json)
    """
    from mirsim.artefacts.files import read_json_object

    config_path = Path(folder) / "config.json"
    if not config_path.is_file():
        raise MirsimError(f"{folder}: no saved separator (config.json)")
    name = read_json_object(config_path).get("separator", "")
    return separator_class(name).load(folder, device=device)


def run_separator(run_dir: str | Path | None, name: str,
                  params: Mapping[str, Any] | None = None):
    """The separator of a ``reproduce per-instrument`` run: the one fitted and saved in
    ``run_dir/separator/`` when there is one, else a new ``name`` separator (``params``).
    A trainable separator the run did not save cannot be rebuilt: a one-line error.

    Examples
    --------
    >>> run_separator(None, "hpss").name
    'hpss'
    """
    saved = Path(run_dir) / SEPARATOR_DIR if run_dir is not None else None
    if saved is not None and (saved / "config.json").is_file():
        return load_separator(saved)
    separator = make_separator(name, **dict(params or {}))
    if run_dir is not None and getattr(separator, "trainable", False):
        raise MirsimError(f"{run_dir}: the run's {name} separator is not saved in "
                          f"{SEPARATOR_DIR}/ (it is written once fitted: resume the run)")
    return separator
