"""Lazy attributes of a package: ``from mirsim.models import MLPModel`` imports only the
module that defines ``MLPModel``, so that a command imports what it uses and no more
(importing torch or scikit-learn costs seconds)."""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any


def lazy_exports(package: str, exports: Mapping[str, str]
                 ) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """``(__getattr__, __dir__)`` for a package whose attribute ``name`` lives in the module
    ``exports[name]`` (relative to the package when it starts with a dot).

    Examples
    --------
    >>> getattr_, dir_ = lazy_exports("mirsim", {"dumps": "json"})
    >>> getattr_("dumps")([1])
    '[1]'
    """

    def __getattr__(name: str) -> Any:
        module = exports.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        return getattr(importlib.import_module(module, package), name)

    def __dir__() -> list[str]:
        return sorted(exports)

    return __getattr__, __dir__
