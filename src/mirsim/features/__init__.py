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
    "PerInstrumentFeature": ".per_instrument",
    "RandomFeature": ".random", "Scattering1DFeature": ".scattering",
    "MultiInputFeature": ".multi_input", "TempoKeyFeature": ".tempo_key",
}
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)


def available_features() -> list[str]:
    """Names accepted by :func:`make_extractor`."""
    return FEATURES.names()


def feature_parts(name: str) -> list[tuple[str, dict[str, Any]]]:
    """The features a name names and the parameters written in it.

    A part may carry parameters in brackets, ``name[key=value,...]``, read as the types of
    that feature's defaults: ``"musicnn-msd[layer=pooled]"`` is ``musicnn-msd`` with
    ``layer="pooled"``, and ``"jtfs+musicnn-msd[layer=pooled]"`` the concatenation of
    ``jtfs`` at its defaults and that. A malformed name is a one-line error.

    Examples
    --------
    >>> feature_parts("jtfs+musicnn-msd[layer=pooled]")
    [('jtfs', {}), ('musicnn-msd', {'layer': 'pooled'})]
    >>> feature_parts("mfcc[n_mfcc=20]")
    [('mfcc', {'n_mfcc': 20})]
    """
    from mirsim.experiments.specs import parse_params, split_outside_brackets
    from mirsim.features.concatenation import SEPARATOR

    parts = []
    for text in split_outside_brackets(name, SEPARATOR):
        base, bracket, rest = text.strip().partition("[")
        if bracket and not rest.endswith("]") or not base.strip() or "]" in base:
            raise MirsimError(f"feature '{name}': write NAME or NAME[KEY=VALUE,...] for each "
                              f"part, joined by '+'")
        pairs = [p for p in split_outside_brackets(rest[:-1], ",") if p.strip()] if bracket else []
        cls = FEATURES.get(base.strip())
        parts.append((base.strip(), parse_params(pairs, cls, f"feature '{base.strip()}'")))
    return parts


def extractor_class(name: str) -> type:
    """The class of the extractor called ``name`` (raises :class:`UnknownNameError`)."""
    from mirsim.features.concatenation import ConcatenatedFeatures

    parts = feature_parts(name)
    return ConcatenatedFeatures if len(parts) > 1 else FEATURES.get(parts[0][0])


def make_extractor(name: str, **params: Any):
    """Build the extractor called ``name`` with keyword parameters.

    Raises
    ------
    UnknownNameError
        ``name`` is not a known feature; the message lists the valid ones.
    MirsimError
        A parameter it does not have, or a value outside its range (one line).

    ``"a+b"`` names the concatenation of features ``a`` and ``b``
    (:class:`~mirsim.features.concatenation.ConcatenatedFeatures`); each part takes its
    parameters in brackets (:func:`feature_parts`), e.g. ``"jtfs+musicnn-msd[layer=pooled]"``.

    Examples
    --------
    >>> make_extractor("musicnn-msd[layer=pooled]").layer
    'pooled'
    >>> make_extractor("mfcc[n_mfcc=20]", n_mfcc=13).n_mfcc  # a keyword wins
    13
    """
    from mirsim.features.concatenation import ConcatenatedFeatures

    parts = feature_parts(name)
    if len(parts) == 1:
        base, written = parts[0]
        return FEATURES.make(base, **{**written, **params})
    if params:
        raise MirsimError(f"feature '{name}': a concatenation takes its parts' parameters in "
                          f"brackets, e.g. jtfs+musicnn-msd[layer=pooled]")
    return ConcatenatedFeatures(*(FEATURES.make(base, **written) for base, written in parts))


__all__ = sorted([*_EXPORTS, "available_features", "extractor_class", "feature_parts",
                  "make_extractor"])
