"""The registry of digital twins and the declarations their parameter dataclasses share.

A twin is a function registered under a short name with :func:`register_twin`; :func:`simulate`
runs it by name. Its parameters are a frozen dataclass whose fields are declared with
:func:`parameter` (a number in an inclusive range, with its unit; optionally an integer or None)
or :func:`flag` (True or False), and whose ``__post_init__`` calls :func:`check_parameters`:
the ranges are :class:`ionscope.validation.Interval` constraints, so a bad value raises the same
:class:`~ionscope.errors.ConfigError` message as a bad parameter of any public function. The
Dataset a twin returns carries :func:`twin_attrs` and :func:`twin_provenance`.

The twins import this module, never the package: ``ionscope.simulate`` imports the twins.
"""

from __future__ import annotations

import dataclasses
import io as _io
import json
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import numpy as np
import xarray as xr

from ionscope.data import with_provenance
from ionscope.errors import ConfigError, InputError
from ionscope.validation import SEED, Interval, check_parameter, described, validate_params

#: Progress callback: ``progress(done, total)`` with frames produced so far and in all.
ProgressCallback = Callable[[int, int], None]


@dataclasses.dataclass(frozen=True)
class _Twin:
    name: str
    description: str
    func: Callable[..., xr.Dataset]
    params: type | None


_REGISTRY: dict[str, _Twin] = {}

#: Registered twins: name -> one-line description.
TWINS: dict[str, str] = {}


def register_twin(name: str, description: str, *, params: type | None = None):
    """Register a twin function under ``name``.

    Parameters
    ----------
    name : str
        Short name used by :func:`simulate` and the CLI, e.g. ``"licoo2"``.
    description : str
        One line saying what the twin simulates.
    params : type, optional
        Frozen dataclass of the twin's parameters. When given, :func:`simulate` builds it
        from the keyword arguments (unknown names raise :class:`ConfigError`) and calls
        ``func(params_instance, seed=seed, progress=progress)``; otherwise it calls
        ``func(seed=seed, progress=progress, **params)``.

    Returns
    -------
    callable
        A decorator that returns the function unchanged.
    """

    def decorator(func: Callable[..., xr.Dataset]) -> Callable[..., xr.Dataset]:
        if name in _REGISTRY and _REGISTRY[name].func is not func:
            raise ConfigError(f"a twin named {name!r} is already registered")
        _REGISTRY[name] = _Twin(name, description, func, params)
        TWINS[name] = description
        return func

    return decorator


def parameter(default: Any, lo: float, hi: float, unit: str = "", *, integer: bool = False,
              allow_none: bool = False) -> Any:
    """A parameter-dataclass field with the ``metadata`` :func:`check_parameters` enforces:
    inclusive range ``[lo, hi]`` in ``unit``, optionally integer and/or allowed to be None."""
    meta = {"range": (lo, hi), "unit": unit, "integer": integer, "allow_none": allow_none}
    return dataclasses.field(default=default, metadata=meta)


def flag(default: bool) -> Any:
    """A True/False parameter-dataclass field (numpy bools are accepted and stored as bool)."""
    return dataclasses.field(default=default, metadata={"flag": True})


def field_constraints(field: dataclasses.Field) -> list[Any] | None:
    """The :mod:`ionscope.validation` constraints a :func:`parameter` or :func:`flag` field
    declares (None for a field without them)."""
    meta = field.metadata
    if meta.get("flag"):
        return [bool]
    if "range" not in meta:
        return None
    lo, hi = meta["range"]
    allowed: list[Any] = [Interval(int if meta.get("integer") else float, lo, hi, unit=meta.get("unit", ""))]
    if meta.get("allow_none"):
        allowed.append(None)
    return allowed


def check_parameters(obj: Any, twin: str) -> None:
    """Check every declared field of a parameter dataclass (:func:`parameter`, :func:`flag`)
    and normalise it in place: integers stored as ``int`` (an integral float such as ``32.0``
    counts as an integer), flags as ``bool``. Call it from the dataclass's ``__post_init__``.

    Raises
    ------
    ConfigError
        Naming the twin, the parameter, the valid range (with unit) and the value given.
    """
    for f in dataclasses.fields(obj):
        allowed = field_constraints(f)
        if allowed is None:
            continue
        value = getattr(obj, f.name)
        if f.metadata.get("integer") and isinstance(value, (float, np.floating)) and float(value).is_integer():
            value = int(value)
        check_parameter(f.name, value, allowed, where=f"twin {twin!r}")
        if value is not None and f.metadata.get("integer"):
            object.__setattr__(obj, f.name, int(value))
        elif f.metadata.get("flag"):
            object.__setattr__(obj, f.name, bool(value))


def _build_params(spec: _Twin, params: Mapping[str, Any]) -> Any:
    names = [f.name for f in dataclasses.fields(spec.params)]
    unknown = sorted(set(params) - set(names))
    if unknown:
        raise ConfigError(
            f"unknown parameter(s) {unknown} for twin {spec.name!r}; valid parameters: "
            + ", ".join(names)
        )
    return spec.params(**params)


@described("callable as progress(done, total)")
def _callable(value: Any) -> bool:
    return callable(value)


@validate_params({"seed": [SEED], "progress": [_callable, None]})
def simulate(
    name: str,
    *,
    seed: int = 0,
    progress: ProgressCallback | None = None,
    **params: Any,
) -> xr.Dataset:
    """Run the twin ``name`` and return its Dataset.

    Computes: the twin renders its data in memory (numpy-backed).

    Parameters
    ----------
    name : str
        A key of :data:`TWINS`.
    seed : int, optional
        Non-negative seed of :func:`numpy.random.default_rng`; sets every random choice of
        the twin (structure and noise).
    progress : callable, optional
        ``progress(done, total)``, called as frames are produced.
    **params
        The twin's parameters (see its parameter dataclass, e.g.
        :class:`ionscope.simulate.licoo2.LiCoO2Params`).

    Returns
    -------
    xarray.Dataset
        With ``attrs`` ``primary``, ``twin``, ``seed``, ``parameters`` (JSON), ``model`` and
        ``provenance``.

    Raises
    ------
    InputError
        If ``name`` is not a registered twin (the message lists the known names).
    ConfigError
        If a parameter is unknown or outside its valid range, or ``seed`` is not a
        non-negative integer.
    """
    spec = _REGISTRY.get(name)
    if spec is None:
        known = ", ".join(sorted(_REGISTRY)) or "(none)"
        raise InputError(f"unknown twin {name!r}; known twins: {known}")
    if spec.params is not None:
        return spec.func(_build_params(spec, params), seed=int(seed), progress=progress)
    return spec.func(seed=int(seed), progress=progress, **params)


def twin_attrs(twin: str, seed: int, params: Any, *, primary: str, model: str, **extra: Any) -> dict[str, Any]:
    """The ``attrs`` every twin's Dataset starts with: ``primary`` (the observed variable),
    ``twin``, ``seed``, ``parameters`` (the dataclass as JSON) and ``model`` (one paragraph),
    followed by ``extra``."""
    return {
        "primary": primary,
        "twin": twin,
        "seed": int(seed),
        "parameters": json.dumps(dataclasses.asdict(params)),
        "model": model,
        **extra,
    }


def twin_provenance(
    ds: xr.Dataset,
    step: str,
    params: Any,
    seed: int,
    *,
    variables: Iterable[str] = (),
    history: Iterable[dict[str, Any]] | None = None,
) -> xr.Dataset:
    """``ds`` with the twin's provenance step (its parameters and seed) on the Dataset and on
    ``variables`` (:func:`ionscope.data.with_provenance`)."""
    step_params = {**dataclasses.asdict(params), "seed": int(seed)}
    return with_provenance(ds, step, step_params, history=history, variables=tuple(variables))


def cycler_table(ds: xr.Dataset, *, start_time: str | None = None) -> str:
    """The cycler log as CSV text: ``time_s,voltage_V,current_A,charge_C``, one row per record;
    with ``start_time`` (ISO 8601, the absolute time of t = 0) a ``# start_time: ...`` line
    first, which :func:`ionscope.io.load_cycler` reads as the log's start."""
    needed = ("cycler_voltage", "cycler_current", "cycler_charge")
    missing = [v for v in needed if v not in ds]
    if missing:
        raise InputError(f"dataset has no cycler log (missing {missing})")
    columns = [np.asarray(ds["record"].values, dtype=np.float64)]
    columns += [np.asarray(ds[v].values, dtype=np.float64) for v in needed]
    out = _io.StringIO()
    if start_time:
        out.write(f"# start_time: {start_time}\n")
    out.write("time_s,voltage_V,current_A,charge_C\n")
    for row in zip(*columns):
        out.write(",".join(format(float(v), ".10g") for v in row) + "\n")
    return out.getvalue()


__all__ = [
    "ProgressCallback",
    "TWINS",
    "register_twin",
    "parameter",
    "flag",
    "field_constraints",
    "check_parameters",
    "simulate",
    "twin_attrs",
    "twin_provenance",
    "cycler_table",
]

