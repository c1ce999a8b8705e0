"""Registries: every feature, model, loss, miner, distance, sampler, data set and protocol is a
class with a ``name``, registered where it is defined.

One idiom for every kind of thing::

    from mirsim.registries import MODELS

    @MODELS.register
    class MyModel(MetricModel):
        name = "my-model"
        ...

Adding a model, a loss or a feature is one new file in its package: the registry finds the
modules of its package itself. What tables, pipelines and ``mirsim info`` need to know of an
entry (its summary, parameters and defaults, and the class attributes its base class lists in
``catalogue_attributes``: a table row's display name, whether a model needs a reference set...)
is read from the registered class.

Importing every module of a package costs seconds (torch, scikit-learn), more than a command
like ``mirsim info`` or ``mirsim query`` may spend. So a registry keeps a *catalogue* of its
entries (name, module, summary, parameters, attributes) in mirsim's cache directory, valid as
long as the package's files are unchanged (their names, sizes and modification times): listing
entries reads the catalogue, and looking one up imports only the module that defines it.
"""

from __future__ import annotations

import dataclasses
import hashlib
import importlib
import importlib.util
import inspect
import json
import pkgutil
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mirsim.errors import MirsimError, UnknownNameError

_CATALOGUE_VERSION = 1


@dataclass(frozen=True)
class Entry:
    """What a registry knows of one entry without importing it.

    Attributes
    ----------
    name : str
    module : str
        The module that defines (and registers) the class.
    qualname : str
    summary : str
        The first paragraph of the class's docstring, on one line.
    params : dict
        ``{parameter: default}`` (JSON values; objects by their ``repr``).
    attributes : dict
        The class attributes listed in its base class's ``catalogue_attributes``.
    """

    name: str
    module: str
    qualname: str
    summary: str = ""
    params: dict[str, Any] = field(default_factory=dict)
    attributes: dict[str, Any] = field(default_factory=dict)


def _jsonable(value: Any) -> Any:
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, (tuple, list)):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    return repr(value)


def class_params(cls: type) -> dict[str, Any]:
    """``{name: default}`` of the keyword parameters of ``cls.__init__`` (over its MRO).

    Examples
    --------
    >>> class A:
    ...     def __init__(self, k: int = 3, *, width=None): ...
    >>> class_params(A)
    {'k': 3, 'width': None}
    """
    found: dict[str, Any] = {}
    for p in inspect.signature(cls.__init__).parameters.values():
        if p.name == "self" or p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
            continue
        default = p.default
        if default is p.empty or default is dataclasses.MISSING:
            default = None
        found[p.name] = default
    return found


def _summary(cls: type) -> str:
    """The first paragraph of the class's docstring, on one line."""
    doc = (inspect.getdoc(cls) or "").strip()
    return " ".join(doc.split("\n\n")[0].split()) if doc else ""


class Registry:
    """Named classes of one kind, registered by :meth:`register`, found by name.

    Parameters
    ----------
    kind : str
        What the entries are, for messages ("model", "loss"...).
    packages : iterable of str
        Modules or packages whose modules define the entries (all of them are imported when
        the catalogue is made).

    Examples
    --------
    >>> reg = Registry("widget", ())
    >>> @reg.register
    ... class Round:
    ...     '''A round widget.'''
    ...     name = "round"
    ...     def __init__(self, size: int = 3):
    ...         self.size = size
    >>> reg.names(), reg.make("round", size=5).size
    (['round'], 5)
    >>> reg.make("square")
    Traceback (most recent call last):
    ...
    mirsim.errors.UnknownNameError: unknown widget 'square' (valid: round)
    """

    def __init__(self, kind: str, packages: Iterable[str]):
        self.kind = kind
        self.packages = tuple(packages)
        self._classes: dict[str, type] = {}
        self._catalogue: dict[str, Entry] | None = None
        self._complete = False  # every module of the packages imported

    # -- registering ----------------------------------------------------------------------
    def register(self, cls: type) -> type:
        """Class decorator: register ``cls`` under ``cls.name``."""
        name = getattr(cls, "name", None)
        if not isinstance(name, str) or not name:
            raise TypeError(f"{cls.__qualname__} needs a class attribute 'name' to be a {self.kind}")
        known = self._classes.get(name)
        if known is not None and (known.__module__, known.__qualname__) != (cls.__module__,
                                                                           cls.__qualname__):
            raise TypeError(f"two {self.kind}s named '{name}': {known.__module__}."
                            f"{known.__qualname__} and {cls.__module__}.{cls.__qualname__}")
        self._classes[name] = cls
        if self._catalogue is not None:
            self._catalogue[name] = self._entry(cls)
        return cls

    # -- looking up -----------------------------------------------------------------------
    def names(self) -> list[str]:
        """Every registered name, sorted."""
        return sorted(self.catalogue())

    def __contains__(self, name: str) -> bool:
        return name in self.catalogue()

    def get(self, name: str) -> type:
        """The class registered as ``name`` (imports only its module when it can)."""
        if name in self._classes:
            return self._classes[name]
        entry = self.catalogue().get(name)
        if entry is not None:
            try:
                importlib.import_module(entry.module)
            except ImportError:
                pass
            if name in self._classes:
                return self._classes[name]
            self._load_all()  # the catalogue was out of date
            if name in self._classes:
                return self._classes[name]
        raise UnknownNameError(self.kind, name, self.names())

    def make(self, name: str, **params: Any) -> Any:
        """An instance of ``name`` with ``params``; unknown keys and values its declared
        constraints refuse raise a one-line :class:`~mirsim.errors.MirsimError`."""
        cls = self.get(name)
        valid = class_params(cls)
        unknown = sorted(set(params) - set(valid))
        if unknown:
            raise MirsimError(f"{self.kind} '{name}' has no parameter {', '.join(unknown)} "
                              f"(valid: {', '.join(sorted(valid)) or 'none'})")
        obj = cls(**params)
        from mirsim.params import check_params

        check_params(obj, f"{self.kind} '{name}'")
        return obj

    def entry(self, name: str) -> Entry:
        """The catalogue entry of ``name`` (no import needed)."""
        found = self.catalogue().get(name)
        if found is None:
            raise UnknownNameError(self.kind, name, self.names())
        return found

    def catalogue(self) -> dict[str, Entry]:
        """Every entry by name, from the cached catalogue when it is up to date."""
        if self._catalogue is None:
            self._catalogue = self._read_cached() or self._load_all()
            for cls in self._classes.values():  # registered at run time (tests, plugins)
                self._catalogue.setdefault(cls.name, self._entry(cls))
        return self._catalogue

    # -- the catalogue --------------------------------------------------------------------
    def _entry(self, cls: type) -> Entry:
        attributes = {a: _jsonable(getattr(cls, a, None))
                      for a in getattr(cls, "catalogue_attributes", ())}
        params = {k: _jsonable(v) for k, v in class_params(cls).items()}
        return Entry(cls.name, cls.__module__, cls.__qualname__, _summary(cls), params,
                     attributes)

    def _load_all(self) -> dict[str, Entry]:
        if not self._complete:
            for module in self._modules():
                importlib.import_module(module)
            self._complete = True
        catalogue = {name: self._entry(cls) for name, cls in self._classes.items()}
        self._catalogue = catalogue
        self._write_cached(catalogue)
        return catalogue

    def _modules(self) -> list[str]:
        names: list[str] = []
        for package in self.packages:
            module = importlib.import_module(package)
            names.append(package)
            if hasattr(module, "__path__"):
                names += [m.name for m in pkgutil.walk_packages(module.__path__, package + ".")]
        return names

    def _fingerprint(self) -> str | None:
        """Changes whenever a file of the registry's packages changes (or mirsim's version)."""
        import mirsim

        h = hashlib.sha256(f"{_CATALOGUE_VERSION}:{mirsim.__version__}:{self.kind}".encode())
        for package in self.packages:
            try:
                spec = importlib.util.find_spec(package)
            except (ImportError, ValueError):
                return None
            if spec is None or spec.origin is None:
                return None
            roots = list(spec.submodule_search_locations or [])
            files = [Path(spec.origin)] if not roots else sorted(
                p for root in roots for p in Path(root).rglob("*.py"))
            for path in files:
                try:
                    st = path.stat()
                except OSError:
                    return None
                h.update(f"{path}:{st.st_size}:{st.st_mtime_ns};".encode())
        return h.hexdigest()

    def _cache_path(self) -> Path:
        from mirsim.config import cache_dir

        slug = "".join(c if c.isalnum() else "-" for c in self.kind)
        return cache_dir() / "catalogue" / f"{slug}.json"

    def _read_cached(self) -> dict[str, Entry] | None:
        if not self.packages:
            return None
        fingerprint = self._fingerprint()
        if fingerprint is None:
            return None
        try:
            data = json.loads(self._cache_path().read_text(encoding="utf-8"))
            if data.get("fingerprint") != fingerprint:
                return None
            return {e["name"]: Entry(**e) for e in data["entries"]}
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def _write_cached(self, catalogue: dict[str, Entry]) -> None:
        if not self.packages:
            return
        fingerprint = self._fingerprint()
        if fingerprint is None:
            return
        from mirsim.artefacts.files import write_json

        payload = {"fingerprint": fingerprint,
                   "entries": [dataclasses.asdict(e) for e in catalogue.values()]}
        try:
            write_json(self._cache_path(), payload)
        except OSError:  # a read-only cache only costs speed
            pass
