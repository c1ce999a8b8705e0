"""Feature extractors (Φ), registered by name (:data:`mirsim.registries.FEATURES`).

>>> from mirsim.features import make_extractor, available_features
>>> "mfcc" in available_features()
True
>>> make_extractor("mfcc", n_mfcc=20).n_mfcc
20
"""

from __future__ import annotations

from typing import Any

from mirsim._lazy import lazy_exports
from mirsim.errors import MirsimError
from mirsim.registries import FEATURES

_EXPORTS = {
    "FeatureExtractor": ".base", "MFCC": ".mfcc", "JTFSFeature": ".jtfs",
    "MusicnnMSD": ".musicnn", "MusicnnMTT": ".musicnn", "OpenL3Feature": ".openl3",
    "RandomFeature": ".random", "Scattering1DFeature": ".scattering",
    "MultiInputFeature": ".multi_input",
}
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)


def available_features() -> list[str]:
    """Names accepted by :func:`make_extractor`."""
    return FEATURES.names()


def extractor_class(name: str) -> type:
    """The class of the extractor called ``name`` (raises :class:`UnknownNameError`)."""
    from mirsim.features.concatenation import ConcatenatedFeatures, is_concatenation

    if is_concatenation(name):
        for part in name.split("+"):
            FEATURES.get(part)
        return ConcatenatedFeatures
    return FEATURES.get(name)


def make_extractor(name: str, **params: Any):
    """Build the extractor called ``name`` with keyword parameters.

    Raises
    ------
    UnknownNameError
        ``name`` is not a known feature; the message lists the valid ones.
    MirsimError
        A parameter it does not have, or a value outside its range (one line).

    ``"a+b"`` names the concatenation of features ``a`` and ``b``
    (:class:`~mirsim.features.concatenation.ConcatenatedFeatures`), each at its defaults.
    """
    from mirsim.features.concatenation import ConcatenatedFeatures, is_concatenation

    if is_concatenation(name):
        if params:
            raise MirsimError(f"feature '{name}': a concatenation takes no feature parameters "
                              f"(its parts are used at their defaults)")
        return ConcatenatedFeatures(*(FEATURES.make(part.strip()) for part in name.split("+")))
    return FEATURES.make(name, **params)


__all__ = sorted([*_EXPORTS, "available_features", "extractor_class", "make_extractor"])
