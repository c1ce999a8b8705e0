"""What losses, miners, distances and samplers share: small parameter objects, registered by
name, that build the pytorch-metric-learning (or torch) object a training run uses.

A component holds only its hyper-parameters (a scikit-learn estimator: ``get_params``,
``set_params``, ``clone``; nested in a model, ``model.set_params(loss__margin=0.2)`` works); its
``build(...)`` makes the object to train with, once the data it depends on (number of
classes, embedding width, distance) is known.
"""

from __future__ import annotations

from typing import Any, ClassVar

from sklearn.base import BaseEstimator

from mirsim.errors import MirsimError
from mirsim.params import check_params
from mirsim.registry import Registry


class Component(BaseEstimator):
    """Base class of losses, miners, distances and samplers."""

    name: ClassVar[str]
    kind: ClassVar[str] = "component"
    catalogue_attributes: ClassVar[tuple[str, ...]] = ()

    def check_params(self) -> None:
        """Raise a one-line error for a parameter outside its declared range."""
        check_params(self, f"{self.kind} '{self.name}'")

    def to_config(self) -> dict[str, Any]:
        """``{"name", "params"}``: what a saved model records of the component.

        Examples
        --------
        >>> from mirsim.registries import LOSSES
        >>> LOSSES.make("triplet", margin=0.2).to_config()
        {'name': 'triplet', 'params': {'margin': 0.2, 'triplets_per_anchor': 'all'}}
        """
        return {"name": self.name, "params": dict(self.get_params(deep=False))}


def resolve(registry: Registry, value: Any) -> Any:
    """The component that ``value`` names: a registered name, a ``{"name", "params"}`` dict
    (as saved) or a component itself; ``None`` stays ``None``.

    Examples
    --------
    >>> from mirsim.registries import MINERS
    >>> resolve(MINERS, "semihard").type_of_triplets
    'semihard'
    >>> resolve(MINERS, {"name": "semihard", "params": {"margin": 0.1}}).margin
    0.1
    """
    if value is None or isinstance(value, Component):
        return value
    if isinstance(value, str):
        return registry.make(value)
    if isinstance(value, dict) and "name" in value:
        params = {k: tuple(v) if isinstance(v, list) else v
                  for k, v in (value.get("params") or {}).items()}
        return registry.make(value["name"], **params)
    raise MirsimError(f"a {registry.kind} must be one of {', '.join(registry.names())}, "
                      f"got {value!r}")


def component_config(value: Any) -> Any:
    """``value`` as JSON: a component (or a model given as a parameter) becomes
    ``{"name", "params"}``; lists and dicts are converted item by item.

    Examples
    --------
    >>> from mirsim.registries import MINERS
    >>> component_config({"miner": [MINERS.make("hard"), "semihard"]})
    {'miner': [{'name': 'hard', 'params': {'margin': 0.2}}, 'semihard']}
    """
    if isinstance(value, Component):
        return value.to_config()
    if isinstance(value, BaseEstimator) and isinstance(getattr(value, "name", None), str):
        return {"name": value.name, "params": {k: component_config(v) for k, v in
                                               value.get_params(deep=False).items()}}
    if isinstance(value, dict):
        return {k: component_config(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [component_config(v) for v in value]
    return value
