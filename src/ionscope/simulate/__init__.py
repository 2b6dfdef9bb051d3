"""Digital twins: forward models that make realistic data with known ground truth.

Each twin is a function registered under a short name with :func:`register_twin`; users call
:func:`simulate` with the name, a seed and the twin's parameters and get an
:class:`xarray.Dataset` whose ``attrs["primary"]`` names the observed variable. Noise is drawn
from :func:`numpy.random.default_rng` seeded with ``seed``, so a run is reproducible from its
name, seed and parameters (all three are recorded in ``attrs``).

A twin declares its parameters as a frozen dataclass; each field's ``metadata`` may hold
``range=(lo, hi)`` (inclusive), ``integer=True``, ``allow_none=True`` and ``unit=...``, and
:func:`check_parameters` (called from the dataclass's ``__post_init__``) enforces them.

Examples
--------
>>> from ionscope.simulate import simulate, TWINS
>>> "licoo2" in TWINS
True
>>> ds = simulate("licoo2", seed=1, ny=32, nx=32, charge_frames=2, rest1_frames=1,
...               discharge_frames=2, rest2_frames=1)
>>> ds[ds.attrs["primary"]].dims
('time', 'y', 'x')
"""

from __future__ import annotations

import dataclasses
import io
import math
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import xarray as xr

from ionscope.errors import ConfigError, InputError

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


def check_parameters(obj: Any, twin: str) -> None:
    """Check every field of a parameter dataclass against its declared ``metadata``.

    Raises
    ------
    ConfigError
        Naming the parameter, the valid range (with unit) and the value given.
    """
    for f in dataclasses.fields(obj):
        meta = f.metadata
        value = getattr(obj, f.name)
        unit = f" {meta['unit']}" if meta.get("unit") else ""
        if value is None:
            if meta.get("allow_none"):
                continue
            raise ConfigError(f"parameter {f.name!r} of twin {twin!r} must not be None")
        if "range" not in meta:
            continue
        lo, hi = meta["range"]
        kind = "an integer" if meta.get("integer") else "a number"
        bounds = f"{kind} in [{lo:g}, {hi:g}]{unit}"
        if meta.get("allow_none"):
            bounds += " or None"
        ok = isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(
            value, (bool, np.bool_)
        )
        if ok and meta.get("integer"):
            ok = float(value).is_integer()
        if ok:
            ok = math.isfinite(float(value)) and lo <= float(value) <= hi
        if not ok:
            raise ConfigError(
                f"parameter {f.name!r} of twin {twin!r} must be {bounds}, got {value!r}"
            )


def _build_params(spec: _Twin, params: Mapping[str, Any]) -> Any:
    names = [f.name for f in dataclasses.fields(spec.params)]
    unknown = sorted(set(params) - set(names))
    if unknown:
        raise ConfigError(
            f"unknown parameter(s) {unknown} for twin {spec.name!r}; valid parameters: "
            + ", ".join(names)
        )
    return spec.params(**params)


def simulate(
    name: str,
    *,
    seed: int = 0,
    progress: ProgressCallback | None = None,
    **params: Any,
) -> xr.Dataset:
    """Run the twin ``name`` and return its Dataset.

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
    if isinstance(seed, (bool, np.bool_)) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ConfigError(f"seed must be a non-negative integer, got {seed!r}")
    if progress is not None and not callable(progress):
        raise ConfigError(f"progress must be callable as progress(done, total), got {progress!r}")
    if spec.params is not None:
        return spec.func(_build_params(spec, params), seed=int(seed), progress=progress)
    return spec.func(seed=int(seed), progress=progress, **params)


def state_names(ds: xr.Dataset) -> list[str]:
    """The electrochemical state of every frame as strings (e.g. ``"charge"``).

    Uses the ``flag_values`` / ``flag_meanings`` attributes of ``ds["state"]``.
    """
    if "state" not in ds:
        raise InputError("dataset has no 'state' variable; expected a simulated operando series")
    state = ds["state"]
    values = [int(v) for v in np.atleast_1d(state.attrs.get("flag_values", []))]
    meanings = str(state.attrs.get("flag_meanings", "")).split()
    if len(values) != len(meanings):
        raise InputError(
            "the 'state' variable's flag_values and flag_meanings differ in length "
            f"({len(values)} vs {len(meanings)})"
        )
    lookup = dict(zip(values, meanings))
    return [lookup.get(int(v), f"unknown({int(v)})") for v in np.asarray(state.values)]


def cycler_table(ds: xr.Dataset) -> str:
    """The cycler log as CSV text: ``time_s,voltage_V,current_A,charge_C``, one row per record."""
    needed = ("cycler_voltage", "cycler_current", "cycler_charge")
    missing = [v for v in needed if v not in ds]
    if missing:
        raise InputError(f"dataset has no cycler log (missing {missing})")
    columns = [np.asarray(ds["record"].values, dtype=np.float64)]
    columns += [np.asarray(ds[v].values, dtype=np.float64) for v in needed]
    out = io.StringIO()
    out.write("time_s,voltage_V,current_A,charge_C\n")
    for row in zip(*columns):
        out.write(",".join(format(float(v), ".10g") for v in row) + "\n")
    return out.getvalue()


__all__ = [
    "parameter",
    "TWINS",
    "ProgressCallback",
    "register_twin",
    "check_parameters",
    "simulate",
    "state_names",
    "cycler_table",
]

# Twins register themselves on import; each new twin module adds one line here.
from ionscope.simulate import licoo2 as _licoo2  # noqa: E402,F401
from ionscope.simulate import eels as _eels  # noqa: E402,F401
from ionscope.simulate import holography as _holography  # noqa: E402,F401
