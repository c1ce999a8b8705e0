"""One metric per condition of a song: its mix, each instrument's stem, each separated stem.

Hashizume, Li & Toda learn a metric per condition from track-based weak supervision (the
segments of one song are alike); :class:`PerInstrumentModel` holds one
:class:`~mirsim.models.segment_cnn.SegmentCNNModel` (or any metric model) per condition,
all built from one template, and saves them side by side (``DIR/<condition>/``, each a
model directory of safetensors and JSON, plus ``DIR/conditions.json``).

>>> CONDITIONS[:3]
('mix', 'drums', 'bass')
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.base import clone

from mirsim.artefacts.files import read_json_object, write_json
from mirsim.errors import MirsimError
from mirsim.models.segment_cnn import SegmentCNNModel

__all__ = ["CONDITIONS", "INSTRUMENTS", "SEPARATED", "PerInstrumentModel"]

#: The instruments of the paper (Slakh's classes).
INSTRUMENTS = ("drums", "bass", "piano", "guitar")
#: The separated stems of the paper.
SEPARATED = ("separated-drums", "separated-bass", "separated-piano")
#: Every condition, in the paper's order.
CONDITIONS = ("mix", *INSTRUMENTS, *SEPARATED)
CONDITIONS_FILE = "conditions.json"


class PerInstrumentModel:
    """A metric per condition, each a clone of ``template`` fitted on that condition's
    segments.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> X = {"mix": rng.standard_normal((16, 96)), "drums": rng.standard_normal((16, 96))}
    >>> songs = np.arange(16) % 4
    >>> m = PerInstrumentModel(SegmentCNNModel(n_mels=8, channels=(4,), epochs=1, batch_size=8))
    >>> m.fit(X, {c: songs for c in X}).transform(X["drums"], "drums").shape
    (16, 128)
    """

    def __init__(self, template: Any = None):
        self.template = template if template is not None else SegmentCNNModel()
        self.models_: dict[str, Any] = {}

    @property
    def conditions(self) -> list[str]:
        """The fitted conditions, in the order they were fitted."""
        return list(self.models_)

    def fit_condition(self, condition: str, X: np.ndarray, songs: np.ndarray,
                      **params: Any) -> Any:
        """Fit the metric of one condition (``params`` override the template's, e.g. a seed)."""
        if len(X) != len(songs):
            raise ValueError(f"{condition}: {len(X)} segments but {len(songs)} songs")
        model = clone(self.template).set_params(**params)
        self.models_[condition] = model.fit(X, np.asarray(songs))
        return self.models_[condition]

    def fit(self, X: Mapping[str, np.ndarray], songs: Mapping[str, np.ndarray]
            ) -> PerInstrumentModel:
        """Fit a metric per condition of ``X`` (``{condition: features}``), labels the songs."""
        for condition in X:
            if condition not in songs:
                raise ValueError(f"no songs given for condition {condition!r}")
            self.fit_condition(condition, X[condition], songs[condition])
        return self

    def transform(self, X: np.ndarray, condition: str) -> np.ndarray:
        """Embeddings of ``X`` by the metric of ``condition``."""
        if condition not in self.models_:
            raise MirsimError(f"no metric for condition {condition!r} (fitted: "
                              f"{', '.join(self.models_) or 'none'})")
        return self.models_[condition].transform(X)

    def save(self, directory: str | Path) -> Path:
        """Write every condition's model into ``directory/<condition>/``."""
        directory = Path(directory)
        for condition, model in self.models_.items():
            model.save(directory / condition)
        write_json(directory / CONDITIONS_FILE, {"conditions": self.conditions})
        return directory

    @staticmethod
    def save_condition(directory: str | Path, condition: str, model: Any) -> Path:
        """Add (or replace) one condition's fitted model in a directory of :meth:`save`'s
        layout, the others kept: a run that fits its conditions one after another keeps
        each as soon as it is fitted.

        Examples
        --------
        >>> import tempfile
        >>> X, songs = np.random.default_rng(0).standard_normal((8, 64)), np.arange(8) % 2
        >>> small = SegmentCNNModel(n_mels=8, channels=(4,), epochs=1, batch_size=8)
        >>> d = Path(tempfile.mkdtemp())
        >>> for c in ("mix", "drums"):
        ...     _ = PerInstrumentModel.save_condition(d, c, clone(small).fit(X, songs))
        >>> PerInstrumentModel.load(d).conditions
        ['mix', 'drums']
        """
        directory = Path(directory)
        model.save(directory / condition)
        path = directory / CONDITIONS_FILE
        known = (read_json_object(path, MirsimError)["conditions"] if path.is_file() else [])
        write_json(path, {"conditions": [*(c for c in known if c != condition), condition]})
        return directory

    @classmethod
    def load(cls, directory: str | Path) -> PerInstrumentModel:
        """Read a directory written by :meth:`save`."""
        from mirsim.models import load_model

        directory = Path(directory)
        if not (directory / CONDITIONS_FILE).is_file():
            raise MirsimError(f"{directory}: not a per-instrument model (no {CONDITIONS_FILE})")
        conditions = read_json_object(directory / CONDITIONS_FILE, MirsimError)["conditions"]
        out = cls()
        out.models_ = {c: load_model(directory / c) for c in conditions}
        return out
