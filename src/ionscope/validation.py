"""Declared parameter constraints: one validation idiom for every public function.

In the spirit of scikit-learn's ``validate_params``: a public function declares, next to its
signature, what each scalar parameter may be, and :func:`validate_params` checks the call
before the body runs. A bad parameter raises :class:`~ionscope.errors.ConfigError` (also a
``ValueError``) that names the function, the parameter, what is allowed (with its unit) and
what was given. Data arguments (arrays, DataArrays, files) are checked by the ``require_*``
helpers of :mod:`ionscope.data` and raise :class:`~ionscope.errors.InputError`.

A constraint list allows a value when any of its entries does:

- :class:`Interval` - a real or integer number in a range, with its unit;
- :class:`Options` - one of a fixed set of values (strings are matched exactly);
- a type (``bool``, ``str``, ``tuple``...) - an instance of it (``bool`` admits numpy bools and
  is never a number);
- ``None`` - the value None;
- a callable taking the value and returning True when it is allowed, with a ``description``
  attribute (see :func:`described`).

Examples
--------
>>> @validate_params({"kv": [Interval(float, 0, None, closed="neither", unit="kV")],
...                   "method": [Options({"mlls", "sasb"})]})
... def f(kv, method="mlls"):
...     return kv
>>> f(300)
300
>>> f(-1)
Traceback (most recent call last):
...
ionscope.errors.ConfigError: f: parameter 'kv' must be a number in (0, inf) kV, got -1
"""

from __future__ import annotations

import functools
import inspect
import math
import numbers
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from ionscope.errors import ConfigError

__all__ = ["Interval", "Options", "SEED", "described", "check_parameter", "validate_params"]


def _is_number(value: Any, integer: bool) -> bool:
    if isinstance(value, bool) or type(value).__name__ == "bool_":
        return False
    return isinstance(value, numbers.Integral if integer else numbers.Real)


def _bound(value: float) -> str:
    return str(value) if isinstance(value, int) else f"{value:g}"


@dataclass(frozen=True)
class Interval:
    """A number in ``[lo, hi]`` (or open at either end), in ``unit``.

    Parameters
    ----------
    kind : type
        ``int`` (integers, numpy integers included) or ``float`` (any real number).
    lo, hi : float or None
        Bounds; None means unbounded on that side.
    closed : {"both", "left", "right", "neither"}
        Which bounds belong to the interval.
    unit : str
        The parameter's unit, shown in messages.
    """

    kind: type
    lo: float | None
    hi: float | None
    closed: str = "both"
    unit: str = ""

    def __post_init__(self):
        if self.kind not in (int, float):
            raise TypeError("Interval kind must be int or float")
        if self.closed not in ("both", "left", "right", "neither"):
            raise TypeError("Interval closed must be 'both', 'left', 'right' or 'neither'")

    def __call__(self, value: Any) -> bool:
        if not _is_number(value, self.kind is int):
            return False
        v = float(value)
        if not math.isfinite(v):
            return False
        if self.lo is not None:
            if v < self.lo or (v == self.lo and self.closed in ("right", "neither")):
                return False
        if self.hi is not None:
            if v > self.hi or (v == self.hi and self.closed in ("left", "neither")):
                return False
        return True

    @property
    def description(self) -> str:
        kind = "an integer" if self.kind is int else "a number"
        if self.lo is None and self.hi is None:
            text = kind
        else:
            left = "[" if self.closed in ("both", "left") and self.lo is not None else "("
            right = "]" if self.closed in ("both", "right") and self.hi is not None else ")"
            lo = "-inf" if self.lo is None else _bound(self.lo)
            hi = "inf" if self.hi is None else _bound(self.hi)
            text = f"{kind} in {left}{lo}, {hi}{right}"
        return f"{text} {self.unit}" if self.unit else text


@dataclass(frozen=True)
class Options:
    """One of a fixed set of values."""

    values: frozenset

    def __init__(self, values: Iterable[Any]):
        object.__setattr__(self, "values", frozenset(values))

    def __call__(self, value: Any) -> bool:
        try:
            return value in self.values
        except TypeError:
            return False

    @property
    def description(self) -> str:
        return "one of " + ", ".join(repr(v) for v in sorted(self.values, key=str))


def described(description: str) -> Callable[[Callable[[Any], bool]], Callable[[Any], bool]]:
    """Give a predicate constraint the description its messages show."""

    def decorate(func: Callable[[Any], bool]) -> Callable[[Any], bool]:
        func.description = description  # type: ignore[attr-defined]
        return func

    return decorate


def _allows(constraint: Any, value: Any) -> bool:
    if constraint is None:
        return value is None
    if isinstance(constraint, type):
        if constraint is bool:  # numpy's bools too, never 0 or 1
            return isinstance(value, bool) or type(value).__name__ == "bool_"
        if constraint in (int, float) and isinstance(value, bool):
            return False
        return isinstance(value, constraint)
    return bool(constraint(value))


def _describe(constraint: Any) -> str:
    if constraint is None:
        return "None"
    if isinstance(constraint, type):
        return {bool: "True or False", str: "a string"}.get(constraint, f"a {constraint.__name__}")
    return getattr(constraint, "description", getattr(constraint, "__name__", repr(constraint)))


def check_parameter(name: str, value: Any, constraints: list[Any], *, where: str = "") -> None:
    """Raise :class:`~ionscope.errors.ConfigError` unless ``value`` meets one of ``constraints``."""
    if any(_allows(c, value) for c in constraints):
        return
    allowed = " or ".join(_describe(c) for c in constraints)
    prefix = f"{where}: " if where else ""
    exc = ConfigError(f"{prefix}parameter {name!r} must be {allowed}, got {value!r}")
    # what the command line needs to name its option instead (ionscope.cli._app.options_named)
    exc.parameter, exc.allowed, exc.value = name, allowed, value
    raise exc


def validate_params(constraints: Mapping[str, list[Any]]) -> Callable[[Callable], Callable]:
    """Decorate a function so that its parameters are checked against ``constraints`` on each call.

    The declared constraints stay readable as ``func.parameter_constraints``.
    """

    def decorate(func: Callable) -> Callable:
        signature = inspect.signature(func)
        unknown = set(constraints) - set(signature.parameters)
        if unknown:
            raise TypeError(f"constraints for unknown parameters of {func.__name__}: {sorted(unknown)}")

        @functools.wraps(func)
        def wrapper(*args, **kwargs):
            bound = signature.bind(*args, **kwargs)
            bound.apply_defaults()
            for name, allowed in constraints.items():
                check_parameter(name, bound.arguments[name], allowed, where=func.__name__)
            return func(*args, **kwargs)

        wrapper.parameter_constraints = dict(constraints)  # type: ignore[attr-defined]
        return wrapper

    return decorate


#: A random seed: numpy takes any non-negative integer, but results are reproducible and
#: storable (JSON, int64 attributes) only up to 2**63 - 1.
SEED = Interval(int, 0, 2**63 - 1)
