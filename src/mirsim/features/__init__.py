"""Feature extractors (Φ) and their registry.

>>> from mirsim.features import make_extractor, available_features
>>> "mfcc" in available_features()
True
>>> make_extractor("mfcc", n_mfcc=20).n_mfcc
20
"""

from __future__ import annotations

from typing import Any

from mirsim.errors import UnknownNameError
from mirsim.features.base import FeatureExtractor
from mirsim.features.jtfs import JTFSFeature
from mirsim.features.mfcc import MFCC
from mirsim.features.musicnn import MusicnnMSD, MusicnnMTT
from mirsim.features.openl3 import OpenL3Feature
from mirsim.features.random import RandomFeature
from mirsim.features.scattering import Scattering1DFeature

_REGISTRY: dict[str, type[FeatureExtractor]] = {
    cls.name: cls for cls in (MFCC, Scattering1DFeature, RandomFeature, MusicnnMSD, MusicnnMTT,
                              JTFSFeature, OpenL3Feature)
}


def available_features() -> list[str]:
    """Names accepted by :func:`make_extractor`."""
    return sorted(_REGISTRY)


def extractor_class(name: str) -> type[FeatureExtractor]:
    """The class of the extractor called ``name`` (raises :class:`UnknownNameError`)."""
    if name not in _REGISTRY:
        raise UnknownNameError("feature", name, _REGISTRY)
    return _REGISTRY[name]


def make_extractor(name: str, **params: Any) -> FeatureExtractor:
    """Build the extractor called ``name`` with keyword parameters.

    Raises
    ------
    UnknownNameError
        ``name`` is not a known feature; the message lists the valid ones.
    """
    return extractor_class(name)(**params)


__all__ = [
    "MFCC",
    "FeatureExtractor",
    "JTFSFeature",
    "MusicnnMSD",
    "MusicnnMTT",
    "OpenL3Feature",
    "RandomFeature",
    "Scattering1DFeature",
    "available_features",
    "extractor_class",
    "make_extractor",
]
