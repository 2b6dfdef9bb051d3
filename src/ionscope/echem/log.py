"""The cycler log as plain arrays: checked, in the model's units, with states and half cycles.

A cycler log is the Dataset :func:`ionscope.io.load_cycler` returns (record dim ``time`` in s,
``voltage`` V, ``current`` mA with charge positive, ``charge`` mAh, ``cycle``, ``half_cycle``,
``state`` with flags 0 rest / 1 charge / 2 discharge). :func:`log_arrays` checks one and hands
its columns to the kernels as numpy arrays; a log built by hand without ``state``,
``half_cycle`` or ``cycle`` gets them from the sign of the current (:func:`classify_states`,
:func:`number_half_cycles`, :func:`number_cycles`), with the reader's conventions:

- ``state``: charge where ``I > threshold``, discharge where ``I < -threshold``, else rest;
- ``half_cycle`` (1-based): increments each time the state changes between charge and
  discharge; rest records belong to the preceding half cycle (leading rest to the first);
- ``cycle`` (1-based): a charge half cycle followed by a discharge half cycle; a new cycle starts
  at each charge half cycle that follows a discharge one.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import xarray as xr

from ionscope.errors import DimensionError, EmptyDataError, InputError, NonFiniteError

__all__ = [
    "REST",
    "CHARGE",
    "DISCHARGE",
    "STATE_NAMES",
    "LogArrays",
    "log_arrays",
    "classify_states",
    "number_half_cycles",
    "number_cycles",
]

#: The ``state`` flags of the cycler-log model.
REST, CHARGE, DISCHARGE = 0, 1, 2
STATE_NAMES = {REST: "rest", CHARGE: "charge", DISCHARGE: "discharge"}

#: Factors from a column's unit to the model's unit (mA, V, s).
_CURRENT_TO_MA = {"mA": 1.0, "A": 1e3, "µA": 1e-3, "uA": 1e-3, "μA": 1e-3, "nA": 1e-6}
_VOLTAGE_TO_V = {"V": 1.0, "mV": 1e-3}
_TIME_TO_S = {"s": 1.0, "ms": 1e-3, "min": 60.0, "h": 3600.0}


@dataclass
class LogArrays:
    """A cycler log's columns as numpy arrays in the model's units (one entry per record).

    Attributes
    ----------
    time_s, voltage_V, current_mA : ndarray of float64
        Time (s, as the log has it: from its first record), cell voltage (V), current (mA, charge positive).
    state : ndarray of int8
        0 rest, 1 charge, 2 discharge.
    half_cycle, cycle : ndarray of int64
        1-based numbers.
    attrs : dict
        The log's attributes (``start_time``, ``active_mass_mg``, ``area_cm2``...).
    derived : list of str
        Which of ``state``, ``half_cycle``, ``cycle`` were derived here (absent from the log).
    """

    time_s: np.ndarray
    voltage_V: np.ndarray
    current_mA: np.ndarray
    state: np.ndarray
    half_cycle: np.ndarray
    cycle: np.ndarray
    attrs: dict[str, Any] = field(default_factory=dict)
    derived: list[str] = field(default_factory=list)


# --------------------------------------------------------------------------- kernels


def classify_states(current_mA: np.ndarray, threshold_mA: float | None = None) -> np.ndarray:
    """Rest / charge / discharge from the sign of the current.

    Parameters
    ----------
    current_mA : ndarray
        Current (mA, charge positive).
    threshold_mA : float, optional
        ``|I|`` at or below which a record is rest. Default: 1e-3 of the largest ``|I|``
        (and at least 1e-12 mA).

    Returns
    -------
    ndarray of int8
        0 rest, 1 charge, 2 discharge.
    """
    current = np.asarray(current_mA, dtype=np.float64)
    if threshold_mA is None:
        peak = float(np.max(np.abs(current))) if current.size else 0.0
        threshold_mA = max(1e-3 * peak, 1e-12)
    state = np.full(current.shape, REST, dtype=np.int8)
    state[current > threshold_mA] = CHARGE
    state[current < -threshold_mA] = DISCHARGE
    return state


def number_half_cycles(state: np.ndarray) -> np.ndarray:
    """1-based half-cycle numbers: +1 at every change between charge and discharge; rest records
    belong to the preceding half cycle (a leading rest to the first)."""
    state = np.asarray(state)
    active = state != REST
    if not active.any():
        return np.ones(state.shape, dtype=np.int64)
    # the direction in force at every record: the last active state so far (leading rest: the first)
    idx = np.where(active, np.arange(state.size), -1)
    idx = np.maximum.accumulate(idx)
    idx[idx < 0] = np.flatnonzero(active)[0]
    direction = state[idx]
    changes = np.concatenate([[0], (direction[1:] != direction[:-1]).astype(np.int64)])
    return 1 + np.cumsum(changes)


def number_cycles(state: np.ndarray, half_cycle: np.ndarray) -> np.ndarray:
    """1-based cycle numbers: a new cycle starts at each charge half cycle that follows a
    discharge half cycle (a log that starts with a discharge has it in cycle 1)."""
    state = np.asarray(state)
    half_cycle = np.asarray(half_cycle)
    cycle = np.ones(state.shape, dtype=np.int64)
    if state.size == 0:
        return cycle
    numbers = np.unique(half_cycle)
    direction = {}
    for h in numbers:
        s = state[(half_cycle == h) & (state != REST)]
        direction[int(h)] = int(s[0]) if s.size else REST
    current, previous, mapping = 1, None, {}
    for h in numbers:
        d = direction[int(h)]
        if d == CHARGE and previous == DISCHARGE:
            current += 1
        if d != REST:
            previous = d
        mapping[int(h)] = current
    return np.array([mapping[int(h)] for h in half_cycle], dtype=np.int64)


# --------------------------------------------------------------------------- the wrapper


def _unit_factor(da: xr.DataArray, table: dict[str, float], default: str, what: str) -> float:
    unit = str(da.attrs.get("units", default)).strip() or default
    if unit not in table:
        raise InputError(f"the log's {what} is in {unit!r}; expected one of {', '.join(table)} "
                         f"(the cycler-log model has {default})")
    return table[unit]


def _column(log: xr.Dataset, name: str) -> np.ndarray:
    da = log[name]
    if da.dims != ("time",):
        raise DimensionError(f"the log's {name!r} has dims {da.dims}; a cycler log has one record dim 'time'")
    return np.asarray(da.values)


def _check_finite(values: np.ndarray, time_s: np.ndarray, what: str) -> None:
    bad = ~np.isfinite(values)
    if bad.any():
        k = int(np.flatnonzero(bad)[0])
        at = f" (t = {time_s[k]:g} s)" if np.isfinite(time_s[k]) else ""
        raise NonFiniteError(f"the log's {what} is not a number at record {k}{at} ({int(bad.sum())} record(s) in "
                             "all); remove or repair those records")


def log_arrays(log: Any, what: str = "the log") -> LogArrays:
    """Check a cycler log and return its columns as :class:`LogArrays`.

    Parameters
    ----------
    log : xarray.Dataset
        A cycler log (:func:`ionscope.io.load_cycler`): record dim ``time`` (s), ``voltage`` (V),
        ``current`` (mA, charge positive); ``state``, ``half_cycle`` and ``cycle`` are used when
        present and derived from the current otherwise.
    what : str
        How errors name the log (e.g. the file).

    Raises
    ------
    InputError
        Not a Dataset, no ``time`` dim, no ``voltage`` or no ``current`` column, fewer than two
        records, NaN in time, voltage or current, time that runs backwards, unknown units.
    """
    if not isinstance(log, xr.Dataset):
        raise InputError(f"{what}: a cycler log is an xarray.Dataset (ionscope.io.load_cycler), got "
                         f"{type(log).__name__}")
    if "time" not in log.dims:
        raise DimensionError(f"{what} has no record dim 'time' (dims {tuple(log.dims)}); read it with "
                             "ionscope.io.load_cycler")
    for name in ("current", "voltage"):
        if name not in log.variables:
            hint = ("; a capacity needs the current: name its column with --columns current=NAME"
                    if name == "current" else "; name its column with --columns voltage=NAME")
            raise InputError(f"{what} has no {name} column (variables: {', '.join(map(str, log.data_vars)) or 'none'})"
                             f"{hint}")
    n = log.sizes["time"]
    if n < 2:
        raise EmptyDataError(f"{what} has {n} record(s); a capacity needs at least two")
    if "time" in log.coords:
        time_s = np.asarray(log["time"].values, dtype=np.float64)
        time_s = time_s * _unit_factor(log["time"], _TIME_TO_S, "s", "time")
    else:
        raise InputError(f"{what} has no time coordinate; the record times (s) are needed to integrate the current")
    voltage = _column(log, "voltage").astype(np.float64) * _unit_factor(log["voltage"], _VOLTAGE_TO_V, "V", "voltage")
    current = _column(log, "current").astype(np.float64) * _unit_factor(log["current"], _CURRENT_TO_MA, "mA", "current")
    _check_finite(time_s, time_s, "time")
    _check_finite(current, time_s, "current")
    _check_finite(voltage, time_s, "voltage")
    back = np.flatnonzero(np.diff(time_s) < 0)
    if back.size:
        k = int(back[0]) + 1
        raise InputError(f"{what}: the time runs backwards at record {k} ({time_s[k - 1]:g} s -> {time_s[k]:g} s); "
                         "a log of several runs must be joined with increasing times")
    derived = []
    if "state" in log.variables:
        state = _column(log, "state").astype(np.int8)
        unknown = ~np.isin(state, (REST, CHARGE, DISCHARGE))
        if unknown.any():
            raise InputError(f"{what}: 'state' holds {sorted(set(np.unique(state[unknown]).tolist()))}; the flags are "
                             "0 rest, 1 charge, 2 discharge")
    else:
        state = classify_states(current)
        derived.append("state")
    if "half_cycle" in log.variables:
        half_cycle = _column(log, "half_cycle").astype(np.int64)
    else:
        half_cycle = number_half_cycles(state)
        derived.append("half_cycle")
    if "cycle" in log.variables:
        cycle = _column(log, "cycle").astype(np.int64)
    else:
        cycle = number_cycles(state, half_cycle)
        derived.append("cycle")
    return LogArrays(time_s, voltage, current, state, half_cycle, cycle, dict(log.attrs), derived)
