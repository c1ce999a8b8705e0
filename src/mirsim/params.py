"""Declarative parameters: every model, loss, miner, feature... says once what its parameters
may be, and one function checks them (before any work, with a one-line message).

A parameter is declared where it is defined, as a dataclass field with a constraint::

    @estimator
    class MyModel(MetricModel):
        epochs: int = param(50, Interval(int, 1, None), "passes over the data")

:func:`estimator` makes the class a keyword-only dataclass (so ``__init__`` stores every
parameter unchanged under its own name, as scikit-learn requires, and ``clone`` works), and
:func:`check_params` validates an instance against the declared constraints.

scikit-learn has the same idea (``_parameter_constraints``), but in a private module whose
messages name Python types; ours must be one line a command-line user can act on, so the few
constraint kinds mirsim needs are written here.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Iterable
from typing import Any

from mirsim.errors import MirsimError


class ParameterError(MirsimError, ValueError):
    """A parameter value outside what its owner accepts."""


class Constraint:
    """Accepts or refuses one value; ``describe()`` says what is accepted."""

    def accepts(self, value: Any) -> bool:  # pragma: no cover - interface
        raise NotImplementedError

    def describe(self) -> str:  # pragma: no cover - interface
        raise NotImplementedError


def _is_int(value: Any) -> bool:
    import numbers

    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _is_real(value: Any) -> bool:
    import numbers

    return isinstance(value, numbers.Real) and not isinstance(value, bool)


class Interval(Constraint):
    """A number of a type (``int`` or ``float``) between bounds (``None``: unbounded).

    Examples
    --------
    >>> Interval(int, 1, None).accepts(3), Interval(int, 1, None).accepts(0)
    (True, False)
    >>> Interval(float, 0, 1, closed="right").describe()
    'a number in (0, 1]'
    >>> Interval(float, 0, None, closed="neither").accepts(float("nan"))
    False
    """

    def __init__(self, kind: type, low: float | None, high: float | None,
                 closed: str = "both"):
        if closed not in {"both", "left", "right", "neither"}:
            raise ValueError(f"closed must be both, left, right or neither, not {closed!r}")
        self.kind, self.low, self.high, self.closed = kind, low, high, closed

    def accepts(self, value: Any) -> bool:
        if self.kind is int and not _is_int(value):
            return False
        if not _is_real(value) or not math.isfinite(float(value)):
            return False
        if self.low is not None:
            if value < self.low or (value == self.low and self.closed in {"right", "neither"}):
                return False
        if self.high is not None:
            if value > self.high or (value == self.high and self.closed in {"left", "neither"}):
                return False
        return True

    def describe(self) -> str:
        what = "an integer" if self.kind is int else "a number"
        if self.low is not None and self.high is None:
            op = ">=" if self.closed in {"both", "left"} else ">"
            return f"{what} {op} {self.low:g}"
        if self.high is not None and self.low is None:
            op = "<=" if self.closed in {"both", "right"} else "<"
            return f"{what} {op} {self.high:g}"
        if self.low is None:
            return "a finite " + what.split(" ", 1)[1]
        left = "[" if self.closed in {"both", "left"} else "("
        right = "]" if self.closed in {"both", "right"} else ")"
        return f"{what} in {left}{self.low:g}, {self.high:g}{right}"


class Options(Constraint):
    """One of a set of values.

    Examples
    --------
    >>> Options({"adaptive", "knn"}).describe()
    'one of: adaptive, knn'
    """

    def __init__(self, values: Iterable[Any]):
        self.values = tuple(values)

    def accepts(self, value: Any) -> bool:
        return any(value == v and type(value) is type(v) for v in self.values)

    def describe(self) -> str:
        return "one of: " + ", ".join(str(v) for v in sorted(self.values, key=str))


class Anything(Constraint):
    """Any value (documented elsewhere)."""

    def accepts(self, value: Any) -> bool:
        return True

    def describe(self) -> str:
        return "any value"


class Nullable(Constraint):
    """``None`` or what ``inner`` accepts.

    Examples
    --------
    >>> Nullable(Interval(int, 1, None)).describe()
    'none or an integer >= 1'
    """

    def __init__(self, inner: Constraint):
        self.inner = inner

    def accepts(self, value: Any) -> bool:
        return value is None or self.inner.accepts(value)

    def describe(self) -> str:
        return f"none or {self.inner.describe()}"


class ListOf(Constraint):
    """A tuple or list whose items all satisfy ``item`` (lengths from ``min_len``).

    Examples
    --------
    >>> ListOf(Interval(int, 1, None)).accepts((256, 512)), ListOf(Interval(int, 1, None)).accepts((0,))
    (True, False)
    """

    def __init__(self, item: Constraint, min_len: int = 0):
        self.item, self.min_len = item, min_len

    def accepts(self, value: Any) -> bool:
        return (isinstance(value, (tuple, list)) and len(value) >= self.min_len
                and all(self.item.accepts(v) for v in value))

    def describe(self) -> str:
        return f"a comma-separated list of {self.item.describe().removeprefix('a ').removeprefix('an ')}"


class Satisfies(Constraint):
    """Whatever ``test`` accepts, described by ``text``."""

    def __init__(self, test: Callable[[Any], bool], text: str):
        self.test, self.text = test, text

    def accepts(self, value: Any) -> bool:
        try:
            return bool(self.test(value))
        except Exception:  # a test that cannot judge a value refuses it
            return False

    def describe(self) -> str:
        return self.text


def param(default: Any, constraint: Constraint | None = None, help: str = "") -> Any:
    """A declared parameter: its default, what it may be, and one line of help.

    Examples
    --------
    >>> f = param(50, Interval(int, 1, None), "passes over the data")
    >>> f.default, f.metadata["help"]
    (50, 'passes over the data')
    """
    return dataclasses.field(default=default,
                             metadata={"constraint": constraint or Anything(), "help": help})


def estimator(cls: type) -> type:
    """Make ``cls`` a keyword-only dataclass whose ``__init__`` stores its parameters as they
    are (scikit-learn's rule), keeping the base class's ``repr`` and equality.

    Examples
    --------
    >>> @estimator
    ... class Thing:
    ...     size: int = param(3, Interval(int, 1, None))
    >>> Thing(size=5).size
    5
    """
    return dataclasses.dataclass(kw_only=True, eq=False, repr=False)(cls)


def declared(cls_or_obj: Any) -> dict[str, dataclasses.Field]:
    """The declared parameters of a class or instance, by name (``{}`` if none).

    Examples
    --------
    >>> @estimator
    ... class Thing:
    ...     size: int = param(3)
    >>> list(declared(Thing))
    ['size']
    """
    cls = cls_or_obj if isinstance(cls_or_obj, type) else type(cls_or_obj)
    if not dataclasses.is_dataclass(cls):
        return {}
    return {f.name: f for f in dataclasses.fields(cls) if f.init}


def check_params(obj: Any, owner: str | None = None) -> None:
    """Raise :class:`ParameterError` (one line) for the first parameter of ``obj`` that its
    declaration refuses.

    Examples
    --------
    >>> @estimator
    ... class Thing:
    ...     name = "thing"
    ...     size: int = param(3, Interval(int, 1, None))
    >>> check_params(Thing(size=2))
    >>> check_params(Thing(size=0))
    Traceback (most recent call last):
    ...
    mirsim.params.ParameterError: thing: size must be an integer >= 1, got 0
    """
    owner = owner or getattr(obj, "name", type(obj).__name__)
    for name, f in declared(obj).items():
        constraint = f.metadata.get("constraint")
        value = getattr(obj, name)
        if constraint is not None and not constraint.accepts(value):
            raise ParameterError(f"{owner}: {name} must be {constraint.describe()}, got {value!r}")
        check_nested = getattr(value, "check_params", None)
        if callable(check_nested) and not isinstance(value, type):
            check_nested()


def describe_params(cls: type) -> dict[str, dict[str, Any]]:
    """``{name: {"default", "accepts", "help"}}`` of a class's declared parameters."""
    out = {}
    for name, f in declared(cls).items():
        default = f.default if f.default is not dataclasses.MISSING else None
        constraint = f.metadata.get("constraint")
        out[name] = {"default": default, "accepts": constraint.describe() if constraint else "",
                     "help": f.metadata.get("help", "")}
    return out
