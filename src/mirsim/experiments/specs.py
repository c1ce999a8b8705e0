"""From the words of a command line to the parameters of a model, a loss, a miner...

``-p KEY=VALUE`` assignments are typed by the default of the parameter they set and routed:

* ``loss.KEY``, ``miner.KEY``, ``sampler.KEY`` set a parameter of that component;
* a plain ``KEY`` sets the model's parameter of that name, or else the parameter of every
  component (loss, miner, sampler) that has it (``-p margin=0.2`` sets the triplet loss's
  margin and the semi-hard miner's together, as pytorch-metric-learning's examples do).

A key nobody has is a one-line error listing the valid keys.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from mirsim.errors import MirsimError
from mirsim.registry import Registry, class_params

#: Model parameters that hold a component, and the registry of each.
COMPONENT_PARAMS = ("loss", "miner", "sampler")


def _registries() -> dict[str, Registry]:
    from mirsim.registries import LOSSES, MINERS, SAMPLERS

    return {"loss": LOSSES, "miner": MINERS, "sampler": SAMPLERS}


def coerce(raw: str, default: Any, key: str) -> Any:
    """``raw`` read as the type of ``default`` (bool, int, float, tuple of ints, None: JSON).

    Examples
    --------
    >>> coerce("0.01", 0.05, "lr"), coerce("128,256", (256, 512), "hidden"), coerce("5", None, "width")
    (0.01, (128, 256), 5)
    >>> coerce("yes", False, "flag"), coerce("none", None, "width")
    (True, None)
    >>> coerce("0.5", "auto", "shrinkage"), coerce("none", "auto", "shrinkage"), coerce("eigen", "svd", "solver")
    (0.5, None, 'eigen')
    """
    try:
        if isinstance(default, bool):
            if raw.lower() not in {"true", "false", "1", "0", "yes", "no"}:
                raise ValueError
            return raw.lower() in {"true", "1", "yes"}
        if isinstance(default, int):
            return int(raw)
        if isinstance(default, float):
            return float(raw)
        if isinstance(default, tuple):
            return tuple(int(v) for v in raw.split(",") if v.strip())
        if default is None:
            return None if raw.lower() in {"none", "null"} else json.loads(raw)
        if isinstance(default, str):  # a word or, where the parameter allows it, a number
            return _word_or_number(raw)
    except ValueError:
        raise MirsimError(f"parameter {key}: cannot read '{raw}' as "
                          f"{type(default).__name__ if default is not None else 'a value'}"
                          ) from None
    return raw


def _word_or_number(raw: str) -> Any:
    """What a parameter whose default is a word reads ``raw`` as: ``None``, an int, a float,
    or the word itself (its constraint then says whether that is allowed)."""
    if raw.lower() in {"none", "null"}:
        return None
    for kind in (int, float):
        try:
            return kind(raw)
        except ValueError:
            pass
    return raw


def split_assignment(pair: str) -> tuple[str, str]:
    """``"KEY=VALUE"`` -> ``(key, value)`` (dashes in the key read as underscores).

    Examples
    --------
    >>> split_assignment("n-blocks=3")
    ('n_blocks', '3')
    """
    key, sep, raw = pair.partition("=")
    key = key.strip().replace("-", "_")
    if not sep or not key:
        raise MirsimError(f"parameter '{pair}' not understood (use KEY=VALUE)")
    return key, raw.strip()


def split_outside_brackets(text: str, separator: str = ",") -> list[str]:
    """``text`` split at ``separator`` where it is not inside brackets, so that a list of
    names may hold names with bracketed parameters (no library splits at a depth).

    Examples
    --------
    >>> split_outside_brackets("jtfs/lda,mfcc[n_mfcc=20,n_mels=64]/lda")
    ['jtfs/lda', 'mfcc[n_mfcc=20,n_mels=64]/lda']
    """
    pieces, depth, start = [], 0, 0
    for i, char in enumerate(text):
        depth += {"[": 1, "]": -1}.get(char, 0)
        if char == separator and depth == 0:
            pieces.append(text[start:i])
            start = i + 1
    return [*pieces, text[start:]]


def parse_params(pairs: Iterable[str] | None, cls: type, what: str) -> dict[str, Any]:
    """``["lr=0.01", "hidden=128,256"]`` -> typed keyword arguments of ``cls``.

    Examples
    --------
    >>> from mirsim.models import MLPModel
    >>> parse_params(["lr=0.01", "hidden=128,256", "epochs=3"], MLPModel, "model")
    {'lr': 0.01, 'hidden': (128, 256), 'epochs': 3}
    """
    defaults = class_params(cls)
    params: dict[str, Any] = {}
    for pair in pairs or []:
        key, raw = split_assignment(pair)
        if key not in defaults:
            raise MirsimError(f"{what} parameter '{pair}' not understood (use KEY=VALUE with KEY "
                              f"one of: {', '.join(sorted(defaults)) or 'none'})")
        params[key] = coerce(raw, defaults[key], key)
    return params


def model_params(model: str, pairs: Iterable[str] | None = None, *,
                 loss: str | None = None, miner: str | None = None,
                 distance: str | None = None, sampler: str | None = None) -> dict[str, Any]:
    """The keyword arguments of ``make_model(model, ...)`` that a command line asks for.

    Parameters
    ----------
    model : str
        A registered model.
    pairs : list of str
        ``-p`` assignments (see the module's description for how they are routed).
    loss, miner, distance, sampler : str, optional
        Names given with ``--loss`` etc.; ``None`` keeps the model's default.

    Returns
    -------
    dict
        Model parameters; components (loss, miner, sampler) as objects.

    Examples
    --------
    >>> p = model_params("mlp", ["margin=0.2", "epochs=5"], loss="triplet", miner="semihard")
    >>> p["epochs"], p["loss"].margin, p["miner"].margin
    (5, 0.2, 0.2)
    >>> model_params("lmnn", loss="triplet")
    Traceback (most recent call last):
    ...
    mirsim.errors.MirsimError: model 'lmnn' takes no --loss (it has no loss to choose)
    """
    from mirsim.registries import MODELS

    cls = MODELS.get(model)
    defaults = class_params(cls)
    chosen = {"loss": loss, "miner": miner, "sampler": sampler}
    for option, value in [*chosen.items(), ("distance", distance)]:
        if value is not None and option not in defaults:
            raise MirsimError(f"model '{model}' takes no --{option} (it has no {option} to "
                              f"choose)")
    registries = _registries()
    components: dict[str, tuple[str, dict[str, Any]]] = {}
    for part in COMPONENT_PARAMS:
        name = chosen[part] if chosen[part] is not None else defaults.get(part)
        if isinstance(name, str):
            components[part] = (name, class_params(registries[part].get(name)))
    params: dict[str, Any] = {}
    component_params: dict[str, dict[str, Any]] = {part: {} for part in components}
    for pair in pairs or []:
        key, raw = split_assignment(pair)
        part, _, sub = key.partition(".")
        if sub:
            if part not in components or sub not in components[part][1]:
                raise MirsimError(_unknown_key(pair, model, defaults, components))
            component_params[part][sub] = coerce(raw, components[part][1][sub], sub)
            continue
        if key in defaults and key not in COMPONENT_PARAMS:
            params[key] = coerce(raw, defaults[key], key)
            continue
        owners = [p for p, (_, keys) in components.items() if key in keys]
        if not owners:
            raise MirsimError(_unknown_key(pair, model, defaults, components))
        for p in owners:
            component_params[p][key] = coerce(raw, components[p][1][key], key)
    for part, (name, _) in components.items():
        if chosen[part] is not None or component_params[part]:
            params[part] = registries[part].make(name, **component_params[part])
    if distance is not None:
        params["distance"] = distance
    return params


def _unknown_key(pair: str, model: str, defaults: dict[str, Any],
                 components: dict[str, tuple[str, dict[str, Any]]]) -> str:
    valid = sorted(k for k in defaults if k not in COMPONENT_PARAMS)
    for part, (name, keys) in components.items():
        valid += [f"{part}.{k}" for k in sorted(keys)]
    return (f"parameter '{pair}' not understood for model '{model}' (use KEY=VALUE with KEY "
            f"one of: {', '.join(valid)})")


def params_config(params: dict[str, Any]) -> dict[str, Any]:
    """Model parameters as JSON (components as ``{"name", "params"}``), for ``config.json``."""
    from mirsim.training.components import component_config

    return {k: component_config(v) for k, v in params.items()}
