"""Cycler logs (battery testers' files) into one model: :func:`load_cycler`.

Every reader gives an :class:`xarray.Dataset` on a record dim ``time`` (s from the log's first
record) with ``voltage`` (V), ``current`` (mA, charge positive), ``charge`` (mAh, net cumulative
from the first record), ``cycle``, ``half_cycle`` (int32, 1-based), ``state`` (int8: 0 rest,
1 charge, 2 discharge), optionally ``step``, and every other column of the file under a clean
version of its raw name (units and the raw name in attrs). Attrs: ``start_time`` (ISO 8601;
naive local time unless ``timezone=`` converts it to UTC), ``source_file``, ``source_format``,
``active_mass_mg`` / ``area_cm2`` / ``technique`` / ``settings`` where the file has them,
``primary = "voltage"`` and a provenance step ``ionscope.io.load`` with the file's sha256.

Conventions (:doc:`/guide/echem`)
----------------------------------
- charge = positive current; a half cycle is a run of charge or discharge records (rest records
  belong to the preceding half cycle, leading rest to the first); ``half_cycle`` increments each
  time the state changes between charge and discharge;
- a cycle is a charge half cycle followed by a discharge half cycle: ``cycle`` increments where a
  charge half cycle follows a discharge one (a log that starts with a discharge has that discharge
  as cycle 1), unless the file numbers its cycles itself (then its numbers, made 1-based);
- the state comes from the sign of the current with a threshold of 1e-3 of the largest |current|,
  overridden by the file's own step type / mode where it has one (rest steps).

Column names (:data:`COLUMNS`) are matched case-insensitively after splitting a unit off the name
(``Ewe/V``, ``Current(mA)``, ``Test_Time (s)``, ``current_A``); one table serves every text
format and the ``columns=`` map of CSV files.

Formats: CSV/TXT tables (here), BioLogic ``.mpr``/``.mpt``, Neware ``.nda``/``.ndax``, Arbin
``.res``/``.xlsx``, Maccor text (their own modules).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import os
import re
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from ionscope.errors import ConfigError, FileMissingError, FormatError, InputError, IonscopeWarning

__all__ = [
    "COLUMNS", "UNIT_FACTORS", "MODEL_UNITS", "CYCLER_EXTENSIONS", "STATE_REST", "STATE_CHARGE",
    "STATE_DISCHARGE", "RawLog", "load_cycler", "split_unit", "match_column", "clean_name", "derive_state",
    "derive_half_cycles", "derive_cycles", "integrate_charge", "net_from_step_capacity", "parse_timezone", "is_cycler_table",
]

STATE_REST, STATE_CHARGE, STATE_DISCHARGE = 0, 1, 2

#: The unit of each quantity in the model.
MODEL_UNITS = {"time": "s", "voltage": "V", "current": "mA", "charge": "mAh"}

#: Factors from a unit to the model unit of each quantity (units as :func:`split_unit` normalises them).
UNIT_FACTORS: dict[str, dict[str, float]] = {
    "time": {"s": 1.0, "ms": 1e-3, "min": 60.0, "h": 3600.0, "d": 86400.0},
    "voltage": {"V": 1.0, "mV": 1e-3, "uV": 1e-6},
    "current": {"A": 1e3, "mA": 1.0, "uA": 1e-3, "nA": 1e-6},
    "charge": {"C": 1 / 3.6, "mC": 1 / 3600.0, "uC": 1 / 3.6e6, "Ah": 1e3, "mAh": 1.0, "uAh": 1e-3},
}
#: Units assumed for a name without one (SI, as ionscope's twins write them).
DEFAULT_UNITS = {"time": "s", "voltage": "V", "current": "A", "charge": "C"}

#: Accepted base names of each column role (lower case, ``_`` read as a space), in priority order.
#: ``time`` is s from some zero; ``datetime`` an absolute date and time; ``charge`` a NET cumulative
#: charge (a per-half-cycle capacity column is not one: it is kept under its own name).
COLUMNS: dict[str, tuple[str, ...]] = {
    "time": ("time", "test time", "elapsed time", "total time", "testtime", "t", "record", "time since start",
             "cycler time", "test"),
    "datetime": ("date time", "datetime", "date", "timestamp", "dpt time", "real time", "realtime",
                 "absolute time", "system time"),
    "voltage": ("voltage", "ewe", "ecell", "cell voltage", "cycler voltage", "potential", "cell potential",
                "volts", "e", "v", "u", "<ewe>"),
    "current": ("current", "i", "<i>", "cycler current", "amps", "cell current"),
    "charge": ("charge", "cycler charge", "(q-qo)", "q-qo", "net charge", "q", "charge passed"),
    "cycle": ("cycle", "cycle number", "cycle index", "cycle no", "cyc#", "cycle id"),
    "step": ("step", "step index", "step number", "step no", "ns", "step id", "step#"),
}

#: Unit spellings -> the normalised unit.
_UNIT_ALIASES = {
    "s": "s", "sec": "s", "secs": "s", "second": "s", "seconds": "s", "ms": "ms", "min": "min", "mins": "min",
    "minute": "min", "minutes": "min", "h": "h", "hr": "h", "hrs": "h", "hour": "h", "hours": "h", "d": "d",
    "day": "d", "days": "d",
    "v": "V", "volt": "V", "volts": "V", "mv": "mV", "uv": "uV", "µv": "uV", "μv": "uV",
    "a": "A", "amp": "A", "amps": "A", "ma": "mA", "ua": "uA", "µa": "uA", "μa": "uA", "na": "nA",
    "c": "C", "mc": "mC", "uc": "uC", "µc": "uC", "ah": "Ah", "a.h": "Ah", "a h": "Ah", "mah": "mAh",
    "ma.h": "mAh", "ma h": "mAh", "uah": "uAh", "µah": "uAh", "μah": "uAh", "ua.h": "uAh", "µa.h": "uAh",
    # units of other columns (kept in attrs; not converted)
    "w": "W", "mw": "mW", "w.h": "Wh", "wh": "Wh", "mw.h": "mWh", "mwh": "mWh", "ohm": "Ohm", "v/s": "V/s",
}

#: Extensions :func:`load_cycler` reads, with the format each names (``.csv``/``.txt`` are sniffed).
CYCLER_EXTENSIONS = {".mpr": "BioLogic MPR", ".mpt": "BioLogic MPT", ".nda": "Neware NDA", ".ndax": "Neware NDAX",
                     ".res": "Arbin RES", ".xlsx": "Arbin XLSX", ".csv": "CSV", ".txt": "CSV", ".tsv": "CSV"}


# --------------------------------------------------------------------------- names and units


def split_unit(raw: str) -> tuple[str, str | None]:
    """``"Ewe/V"`` -> ``("ewe", "V")``; ``"Current(mA)"``, ``"Test_Time (s)"``, ``"current_A"``,
    ``"Cap. [Ah]"`` likewise; a name without a recognised unit -> ``(base, None)``.

    The base is lower case with ``_`` read as a space and spaces collapsed; the unit is
    normalised (``mA.h`` -> ``mAh``, ``sec`` -> ``s``, ``µA`` -> ``uA``).
    """
    text = str(raw).strip()
    base, unit = text, None
    m = re.fullmatch(r"(.*?)\s*[(\[]\s*([^()\[\]]+?)\s*[)\]]\s*", text)
    if m and m[2].strip().lower() in _UNIT_ALIASES:
        base, unit = m[1], _UNIT_ALIASES[m[2].strip().lower()]
    elif "/" in text:
        head, tail = text.rsplit("/", 1)
        if tail.strip().lower() in _UNIT_ALIASES:
            base, unit = head, _UNIT_ALIASES[tail.strip().lower()]
    else:
        m = re.fullmatch(r"(.+?)[_ ]([A-Za-zµμ.]+)", text)
        if m and m[2].lower() in _UNIT_ALIASES and len(m[2]) > 0 and m[2] not in ("e", "t", "i", "v", "u", "d"):
            base, unit = m[1], _UNIT_ALIASES[m[2].lower()]
    return _fold(base), unit


def _fold(name: str) -> str:
    return re.sub(r"\s+", " ", str(name).replace("_", " ")).strip().lower()


def match_column(names: list[str], role: str) -> str | None:
    """The first of ``names`` (raw column names) that :data:`COLUMNS` accepts for ``role``."""
    split = {n: split_unit(n) for n in names}
    for accepted in COLUMNS[role]:
        for n in names:
            base, unit = split[n]
            if role in ("cycle", "step") and unit is not None:
                continue  # "Step (Min)" is a step time, not a step number
            if base == accepted or _fold(n) == accepted:
                return n
    return None


def clean_name(raw: str) -> str:
    """A variable name for a raw column name: ``"Q charge/discharge/mA.h"`` -> ``"q_charge_discharge"``,
    ``"(Q-Qo)/mA.h"`` -> ``"q_qo"``, ``"control/V/mA"`` -> ``"control_v"``."""
    base = split_unit(raw)[0]
    name = re.sub(r"[^0-9a-z]+", "_", base.replace("<", "mean ").replace(">", "")).strip("_")
    if not name:
        name = "column"
    return name if not name[0].isdigit() else "c" + name


def unit_factor(role: str, unit: str | None, where: str) -> float:
    """Factor from ``unit`` to the model unit of ``role`` (None -> the default SI unit)."""
    unit = DEFAULT_UNITS[role] if unit is None else _UNIT_ALIASES.get(unit.lower(), unit)
    table = UNIT_FACTORS[role]
    if unit not in table:
        raise InputError(f"{where}: the {role} is in {unit!r}, which ionscope does not convert; use one of "
                         f"{', '.join(table)} (e.g. give the column as NAME:{MODEL_UNITS[role]})")
    return table[unit]


# --------------------------------------------------------------------------- states and cycles


def derive_state(current_mA: np.ndarray, hint: np.ndarray | None = None, *,
                 threshold_mA: float | None = None) -> np.ndarray:
    """Per record 0 (rest), 1 (charge) or 2 (discharge).

    Parameters
    ----------
    current_mA : ndarray
        Current, mA, charge positive.
    hint : ndarray of int8, optional
        The file's own state per record (its step type or mode): 0/1/2 where known, -1 where the
        sign of the current decides. A charge/discharge hint whose current has the opposite sign
        (or none) is taken from the current.
    threshold_mA : float, optional
        |current| at or below which a record rests; default 1e-3 of the largest |current| (no
        absolute floor: the twins' lamella cells run at fA).
    """
    i = np.asarray(current_mA, dtype=np.float64)
    finite = np.isfinite(i)
    if threshold_mA is None:
        peak = float(np.max(np.abs(i[finite]))) if finite.any() else 0.0
        threshold_mA = 1e-3 * peak
    state = np.zeros(i.shape, dtype=np.int8)
    state[finite & (i > threshold_mA)] = STATE_CHARGE
    state[finite & (i < -threshold_mA)] = STATE_DISCHARGE
    if hint is not None:
        hint = np.asarray(hint)
        state[hint == STATE_REST] = STATE_REST
    return state


def derive_half_cycles(state: np.ndarray) -> np.ndarray:
    """1-based half-cycle number per record: increments each time the state changes between
    charge and discharge; rest records belong to the preceding half cycle (leading rest to the
    first). int32."""
    state = np.asarray(state)
    n = state.size
    active = np.flatnonzero(state != STATE_REST)
    if active.size == 0:
        return np.ones(n, dtype=np.int32)
    s = state[active]
    number = 1 + np.concatenate([[0], np.cumsum(s[1:] != s[:-1])])
    idx = np.full(n, -1, dtype=np.int64)
    idx[active] = np.arange(active.size)
    idx = np.maximum.accumulate(idx)
    out = np.where(idx < 0, 1, number[np.maximum(idx, 0)])
    return out.astype(np.int32)


def half_cycle_states(state: np.ndarray, half_cycle: np.ndarray) -> np.ndarray:
    """The state (1 charge / 2 discharge; 0 for an all-rest log) of each half cycle 1..N."""
    n = int(half_cycle.max()) if half_cycle.size else 0
    out = np.zeros(n, dtype=np.int8)
    active = state != STATE_REST
    out[half_cycle[active] - 1] = state[active]
    return out


def derive_cycles(state: np.ndarray, half_cycle: np.ndarray) -> np.ndarray:
    """1-based cycle number per record: a cycle is a charge half cycle followed by a discharge
    half cycle, so the number increments where a charge half cycle follows a discharge one. int32."""
    hs = half_cycle_states(state, half_cycle)
    if hs.size == 0:
        return np.ones(np.asarray(state).shape, dtype=np.int32)
    starts = np.concatenate([[False], (hs[1:] == STATE_CHARGE) & (hs[:-1] == STATE_DISCHARGE)])
    cycle_of_half = 1 + np.cumsum(starts)
    return cycle_of_half[half_cycle - 1].astype(np.int32)


def integrate_charge(time_s: np.ndarray, current_mA: np.ndarray) -> np.ndarray:
    """Net cumulative charge, mAh, from the first record (trapezoidal integral of current dt;
    NaN currents count as 0)."""
    t = np.asarray(time_s, dtype=np.float64)
    i = np.nan_to_num(np.asarray(current_mA, dtype=np.float64))
    if t.size == 0:
        return np.zeros(0)
    return np.concatenate([[0.0], np.cumsum(0.5 * (i[1:] + i[:-1]) * np.diff(t))]) / 3600.0


def net_from_step_capacity(step_charge_mAh: np.ndarray, step: np.ndarray) -> np.ndarray:
    """Net cumulative charge, mAh, from an instrument's signed per-step capacity (restarting at 0
    in every step, as Neware and Maccor write it): each step adds to where the previous ended."""
    q = np.nan_to_num(np.asarray(step_charge_mAh, dtype=np.float64))
    step = np.asarray(step)
    new = np.r_[True, step[1:] != step[:-1]]
    starts = np.flatnonzero(new)
    ends = np.r_[starts[1:] - 1, q.size - 1]
    offsets = np.r_[0.0, np.cumsum(q[ends[:-1]])]
    return offsets[np.cumsum(new) - 1] + q


# --------------------------------------------------------------------------- time zones


def parse_timezone(tz: str | dt.tzinfo) -> dt.tzinfo:
    """An IANA name (``"Europe/Berlin"``), ``"UTC"``/``"Z"`` or an offset (``"+09:00"``) as a tzinfo.

    Raises
    ------
    ConfigError
        A name that is none of these.
    """
    if isinstance(tz, dt.tzinfo):
        return tz
    text = str(tz).strip()
    if text.upper() in ("UTC", "Z", "GMT"):
        return dt.UTC
    m = re.fullmatch(r"(?:UTC|GMT)?([+-])(\d{1,2}):?(\d{2})?", text)
    if m:
        delta = dt.timedelta(hours=int(m[2]), minutes=int(m[3] or 0))
        return dt.timezone(delta if m[1] == "+" else -delta)
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        return ZoneInfo(text)
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError(f"time zone {tz!r} is not known; give an IANA name such as Europe/Berlin or Asia/Tokyo, "
                          "or an offset such as +09:00") from None


def _start_time(start: dt.datetime | str | None, timezone: str | dt.tzinfo | None, where: str) -> str | None:
    if start is None:
        if timezone is not None:
            warnings.warn(f"{where} records no start time; the time zone {timezone!r} is not used",
                          IonscopeWarning, stacklevel=4)
        return None
    if isinstance(start, str):
        start = dt.datetime.fromisoformat(start.replace("Z", "+00:00"))
    if timezone is not None:
        tz = parse_timezone(timezone)
        start = (start.replace(tzinfo=tz) if start.tzinfo is None else start).astimezone(dt.UTC)
    return start.isoformat()


# --------------------------------------------------------------------------- the model


@dataclasses.dataclass
class RawLog:
    """What a format reader hands to the model builder.

    ``time_s`` is s from any zero (made relative to the first record here); ``current_mA``
    charge positive; ``charge_mAh`` a NET cumulative charge the file records (None: integrate
    the current); ``cycle`` the file's own cycle numbers (any base; None: derived); ``hint`` the
    file's own state per record (see :func:`derive_state`); ``extras`` every other column as
    ``name -> (values, units, raw name)``; ``attrs`` header values (``start_time`` a datetime or
    ISO string, ``active_mass_mg``, ``area_cm2``, ``technique``, ``settings`` (a dict)).
    """

    time_s: np.ndarray
    voltage_V: np.ndarray
    current_mA: np.ndarray
    charge_mAh: np.ndarray | None = None
    cycle: np.ndarray | None = None
    step: np.ndarray | None = None
    hint: np.ndarray | None = None
    extras: dict[str, tuple[np.ndarray, str, str]] = dataclasses.field(default_factory=dict)
    attrs: dict[str, Any] = dataclasses.field(default_factory=dict)


_MODEL_NAMES = ("time", "voltage", "current", "charge", "cycle", "half_cycle", "state", "step")


def build_log(raw: RawLog, path: Path, fmt: str, *, timezone: str | dt.tzinfo | None = None,
              params: Mapping[str, Any] | None = None) -> xr.Dataset:
    """The model Dataset (see the module docstring) from a reader's :class:`RawLog`."""
    from ionscope.data import with_provenance

    where = f"cycler log {path}"
    t = np.asarray(raw.time_s, dtype=np.float64)
    v = np.asarray(raw.voltage_V, dtype=np.float64)
    i = np.asarray(raw.current_mA, dtype=np.float64)
    if t.size < 2:
        raise FormatError(f"{where}: {t.size} record(s); a cycler log needs at least two (is the file truncated?)")
    keep = np.isfinite(t)
    if not keep.all():
        warnings.warn(f"{where}: {int((~keep).sum())} record(s) without a time were dropped", IonscopeWarning,
                      stacklevel=3)
    sel = (lambda a: None if a is None else np.asarray(a)[keep])  # noqa: E731
    t, v, i = t[keep], v[keep], i[keep]
    if np.any(np.diff(t) < 0):
        warnings.warn(f"{where}: the time goes backwards at {int(np.sum(np.diff(t) < 0))} record(s) (a clock reset "
                      "or appended files); records are kept in file order", IonscopeWarning, stacklevel=3)
    t0 = float(t[0])
    t = t - t0
    state = derive_state(i, sel(raw.hint))
    half = derive_half_cycles(state)
    if raw.cycle is not None:
        cyc = np.asarray(sel(raw.cycle), dtype=np.float64)
        cyc = np.where(np.isfinite(cyc), cyc, np.nan)
        base = np.nanmin(cyc) if np.isfinite(cyc).any() else 0.0
        cycle = (np.nan_to_num(cyc, nan=base) - min(base, 1.0) + 1.0).astype(np.int32)
        cycle_source = "file"
    else:
        cycle = derive_cycles(state, half)
        cycle_source = "derived"
    if raw.charge_mAh is not None:
        q = np.asarray(sel(raw.charge_mAh), dtype=np.float64)
        charge = q - q[0]
        charge_source = "file"
    else:
        charge = integrate_charge(t, i)
        charge_source = "integrated"

    tattrs = {"units": "s", "long_name": "time since the log's first record"}
    coords = {"time": ("time", t, tattrs)}
    data: dict[str, Any] = {
        "voltage": ("time", v, {"units": "V", "long_name": "cell voltage"}),
        "current": ("time", i, {"units": "mA", "long_name": "current (charge positive)"}),
        "charge": ("time", charge, {"units": "mAh", "long_name": "net charge passed since the first record",
                                    "source": charge_source}),
        "cycle": ("time", cycle, {"units": "1", "long_name": "cycle number (1-based)", "source": cycle_source}),
        "half_cycle": ("time", half, {"units": "1", "long_name": "half-cycle number (1-based)"}),
        "state": ("time", state, {"units": "1", "long_name": "cell state", "flag_values": [0, 1, 2],
                                  "flag_meanings": "rest charge discharge"}),
    }
    if raw.step is not None:
        step = np.asarray(sel(raw.step), dtype=np.float64)
        data["step"] = ("time", np.nan_to_num(step, nan=-1).astype(np.int32),
                        {"units": "1", "long_name": "the file's step number"})
    for name, (values, units, rawname) in raw.extras.items():
        name = clean_name(name) if name not in ("charge_instrument",) else name
        if (name in data or name in _MODEL_NAMES) and units:
            name = f"{name}_{clean_name(units)}"  # "Step (Min)" -> step_min
        while name in data or name in _MODEL_NAMES:
            name = name + "_file"
        vals = np.asarray(values)[keep]
        if vals.dtype == object:
            vals = vals.astype(str)
        data[name] = ("time", vals, {"units": units or "", "raw_name": str(rawname)})
    ds = xr.Dataset(data, coords=coords)
    attrs: dict[str, Any] = {"source_file": os.fspath(path), "source_format": fmt, "primary": "voltage"}
    start = raw.attrs.get("start_time")
    if start is not None and t0 != 0.0:  # the file's clock starts before its first record (EC-Lab MB, OCV)
        start = (dt.datetime.fromisoformat(start.replace("Z", "+00:00")) if isinstance(start, str) else start)
        start = start + dt.timedelta(seconds=t0)
    start = _start_time(start, timezone, where)
    if start is not None:
        attrs["start_time"] = start
    if t0 != 0.0:
        attrs["time_offset_s"] = t0  # the file's own time of the first record (start_time is that record's)
    for key in ("active_mass_mg", "area_cm2"):
        value = raw.attrs.get(key)
        if value is not None and np.isfinite(value) and value > 0:
            attrs[key] = float(value)
    if raw.attrs.get("technique"):
        attrs["technique"] = str(raw.attrs["technique"])
    if raw.attrs.get("settings"):
        attrs["settings"] = json.dumps(raw.attrs["settings"], default=str)
    for key, value in raw.attrs.items():
        if key not in attrs and key not in ("start_time", "settings", "technique", "active_mass_mg", "area_cm2"):
            if isinstance(value, (str, int, float, bool)):
                attrs[key] = value
    ds.attrs = attrs
    p = {"path": os.fspath(path), "format": fmt, **({"timezone": str(timezone)} if timezone is not None else {}),
         **(params or {})}
    return with_provenance(ds, "ionscope.io.load", p, inputs=[path], history=[], variables=True)


# --------------------------------------------------------------------------- tables (CSV, TXT, XLSX sheets)


def _parse_column_map(columns: Mapping[str, str] | str) -> dict[str, tuple[str, str | None]]:
    """``{"time": "t", "current": "I:mA"}`` or ``"time=t,current=I:mA"`` -> role -> (name, unit)."""
    if isinstance(columns, str):
        items = {}
        for part in filter(None, (p.strip() for p in columns.split(","))):
            if "=" not in part:
                raise ConfigError(f"--columns: {part!r} is not ROLE=NAME (e.g. time=Time (s),current=I:mA)")
            key, value = part.split("=", 1)
            items[key.strip()] = value.strip()
        columns = items
    roles = ("time", "datetime", "voltage", "current", "charge", "cycle", "step")
    out = {}
    for role, spec in columns.items():
        if role not in roles:
            raise ConfigError(f"column map: unknown role {role!r}; the roles are {', '.join(roles)}")
        name, unit = str(spec), None
        if ":" in name:
            head, tail = name.rsplit(":", 1)
            if tail.strip().lower() in _UNIT_ALIASES:
                name, unit = head, _UNIT_ALIASES[tail.strip().lower()]
        out[role] = (name.strip(), unit)
    return out


def table_log(frame: Any, path: Path, *, columns: Mapping[str, str] | str | None = None,
              units: Mapping[str, str] | None = None, attrs: Mapping[str, Any] | None = None,
              net_charge: bool = True) -> RawLog:
    """A :class:`RawLog` from a pandas DataFrame whose columns are named as in :data:`COLUMNS`
    (or mapped by ``columns``). ``units`` overrides the unit of a raw column name; without
    ``net_charge`` a charge column is kept as ``charge_instrument`` and the current integrated.

    Raises
    ------
    InputError
        No time/date, voltage or current column (the message lists the columns the file has); a
        mapped column that is not in the file; values that are not numbers.
    """
    import pandas as pd

    where = f"cycler log {path}"
    names = [str(c) for c in frame.columns]
    frame.columns = names
    chosen: dict[str, tuple[str, str | None]] = {}
    if columns is not None:
        for role, (name, unit) in _parse_column_map(columns).items():
            if name not in names:
                folded = {n.strip().lower(): n for n in names}
                if name.strip().lower() not in folded:
                    raise InputError(f"{where}: the column map names {name!r} for the {role}, but the file has no "
                                     f"such column; it has {', '.join(names)}")
                name = folded[name.strip().lower()]
            chosen[role] = (name, unit if unit is not None else split_unit(name)[1])
    for role in ("time", "datetime", "voltage", "current", "charge", "cycle", "step"):
        if role not in chosen:
            name = match_column([n for n in names if n not in {c for c, _ in chosen.values()}], role)
            if name is not None:
                chosen[role] = (name, split_unit(name)[1])
    if units:
        for role, (name, unit) in list(chosen.items()):
            if name in units:
                chosen[role] = (name, units[name])
    missing = [r for r in ("voltage", "current") if r not in chosen]
    if "time" not in chosen and "datetime" not in chosen:
        missing.insert(0, "time")
    if missing:
        raise InputError(f"{where} has no {' or '.join(missing)} column; it has {', '.join(names)} (name them with "
                         "--columns time=NAME,voltage=NAME,current=NAME:UNIT, or columns={...})")

    def numeric(role: str) -> np.ndarray:
        name, unit = chosen[role]
        col = frame[name]
        values = pd.to_numeric(col, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
        bad = np.isnan(values) & col.notna().to_numpy()
        if bad.any():
            first = col[bad].iloc[0]
            raise InputError(f"{where}: the {role} column {name!r} holds {int(bad.sum())} value(s) that are not "
                             f"numbers (first: {first!r})")
        if role in UNIT_FACTORS:
            if unit is None and role in ("current", "charge"):
                warnings.warn(f"{where}: the {role} column {name!r} names no unit; read as "
                              f"{DEFAULT_UNITS[role]} (name it e.g. {name}:mA to say otherwise)", IonscopeWarning,
                              stacklevel=4)
            values = values * unit_factor(role, unit, where)
        return values

    start = (attrs or {}).get("start_time")
    if "datetime" in chosen:
        stamps = _datetimes(frame[chosen["datetime"][0]])
        if stamps is None:  # a clock time without a date (Maccor's DPt Time): kept as text, not a start
            del chosen["datetime"]
    if "time" not in chosen and "datetime" not in chosen:
        raise InputError(f"{where} has no time column (nor dates); it has {', '.join(names)} (name it with "
                         "--columns time=NAME)")
    if "time" in chosen:
        t = numeric("time")
    else:
        t = ((stamps - stamps.dropna().iloc[0]).dt.total_seconds()).to_numpy(dtype=np.float64, na_value=np.nan)
    if start is None and "datetime" in chosen:
        if stamps.notna().any():
            first = stamps.iloc[0] if not pd.isna(stamps.iloc[0]) else stamps.dropna().iloc[0]
            start = first.to_pydatetime()
            if "time" in chosen and np.isfinite(t[0]):  # the model's start is the clock's zero + t[0]
                start = start - dt.timedelta(seconds=float(t[0]))
    raw = RawLog(time_s=t, voltage_V=numeric("voltage"), current_mA=numeric("current"),
                 attrs={**(attrs or {}), "start_time": start})
    used = {name for name, _ in chosen.values()}
    if "charge" in chosen:
        if net_charge:
            raw.charge_mAh = numeric("charge")
        else:
            raw.extras["charge_instrument"] = (numeric("charge"), "mAh", chosen["charge"][0])
    if "cycle" in chosen:
        raw.cycle = numeric("cycle")
    if "step" in chosen:
        raw.step = numeric("step")
    for name in names:
        if name in used:
            continue
        col = frame[name]
        unit = split_unit(name)[1] or ""
        if col.dtype.kind in "biuf":
            raw.extras[name] = (col.to_numpy(dtype=np.float64, na_value=np.nan), unit, name)
        else:
            num = pd.to_numeric(col, errors="coerce")
            if num.notna().sum() == col.notna().sum() and col.notna().any():
                raw.extras[name] = (num.to_numpy(dtype=np.float64, na_value=np.nan), unit, name)
            else:
                raw.extras[name] = (col.astype(str).to_numpy(), unit, name)
    return raw


def _datetimes(col: Any) -> Any:
    """A column of dates and times as pandas datetimes; None when its values hold no date (a bare
    clock time, numbers) or do not parse."""
    import pandas as pd

    if pd.api.types.is_datetime64_any_dtype(col.dtype):
        return col
    text = col.dropna().astype(str)
    if text.empty or not text.iloc[0].strip() or not re.search(r"\d{1,4}[-/.]\d{1,2}[-/.]\d{1,4}", text.iloc[0]):
        return None
    for fmt in ("ISO8601", "mixed"):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", UserWarning)
                stamps = pd.to_datetime(col, format=fmt, errors="coerce")
        except (ValueError, TypeError):
            continue
        if stamps.notna().sum() >= max(1, int(0.9 * col.notna().sum())):
            return stamps
    return None


def _sniff(path: Path, lines: list[str]) -> tuple[int, str]:
    """The header line's index and the delimiter of a text table: the first line that splits
    into >= 2 fields with >= 2 names :data:`COLUMNS` knows."""
    for k, line in enumerate(lines):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        for sep in ("\t", ",", ";"):
            fields = [f.strip().strip('"') for f in line.rstrip("\r\n").split(sep)]
            if len(fields) < 2:
                continue
            known = sum(match_column([f], role) is not None
                        for f in fields for role in ("time", "datetime", "voltage", "current"))
            if known >= 2:
                return k, sep
    raise FormatError(f"cycler log {path}: no header row naming time, voltage and current columns in its first "
                      f"{len(lines)} lines (expected e.g. time_s,voltage_V,current_A); give a column map")


def _head(path: Path, n: int = 200) -> list[str]:
    try:
        with open(path, encoding="utf-8-sig", errors="replace", newline="") as fh:
            return [line for _, line in zip(range(n), fh)]
    except OSError as exc:
        raise FormatError(f"cycler log {path}: cannot be read ({exc.strerror})") from None


def is_cycler_table(path: str | os.PathLike) -> bool:
    """Whether a text file looks like a cycler log (a header row with time/date and voltage or
    current columns in its first 200 lines)."""
    path = Path(path)
    if "\x00" in "".join(_head(path, 5)):
        return False
    try:
        _sniff(path, _head(path))
    except FormatError:
        return False
    return True


def read_csv_log(path: Path, *, columns: Mapping[str, str] | str | None = None) -> RawLog:
    """A delimited text table (CSV, TSV, ``;``-separated; a preamble before the header is skipped)."""
    import pandas as pd

    lines = _head(path)
    if "\x00" in "".join(lines[:5]):
        raise FormatError(f"cycler log {path}: a binary file, not a text table")
    if columns is not None:
        header, sep = 0, ","
        mapped = [n for n, _ in _parse_column_map(columns).values()]
        for k, line in enumerate(lines):
            for s in ("\t", ",", ";"):
                fields = [f.strip().strip('"').lower() for f in line.rstrip("\r\n").split(s)]
                if len(fields) > 1 and any(m.strip().lower() in fields for m in mapped):
                    header, sep = k, s
                    break
            else:
                continue
            break
    else:
        header, sep = _sniff(path, lines)
    _check_last_line(path, sep)
    try:
        frame = pd.read_csv(path, sep=sep, skiprows=header, comment=None, skipinitialspace=True,
                            encoding="utf-8-sig", encoding_errors="replace", low_memory=False)
    except (pd.errors.ParserError, ValueError) as exc:
        raise FormatError(f"cycler log {path}: not a readable table ({exc})") from None
    frame.columns = [str(c).strip() for c in frame.columns]
    frame = frame.dropna(how="all")
    raw = table_log(frame, path, columns=columns)
    for key, value in _preamble(lines[:header]).items():
        if raw.attrs.get(key) is None:
            raw.attrs[key] = value
    return raw


def _check_last_line(path: Path, sep: str) -> None:
    """Refuse a table cut inside its last row: a last line without a line end that is shorter
    than the row before it, or has fewer fields (a file that simply ends without a final line
    break passes)."""
    size = path.stat().st_size
    with open(path, "rb") as fh:
        fh.seek(max(0, size - 4096))
        tail = fh.read()
    if not tail or tail.endswith((b"\n", b"\r")):
        return
    lines = tail.decode("utf-8", "replace").splitlines()
    if len(lines) < 2:
        return
    last, before = lines[-1], lines[-2]
    if last.count(sep) < before.count(sep) or len(last) < len(before):
        raise FormatError(f"cycler log {path}: its last line {last[:60]!r} ends without a line break and is shorter "
                          "than the rows before it - the file was cut while written or copied; copy it again")


#: ``# key: value`` lines before a table's header that set the log's attrs (as ionscope's twins
#: write them): start_time (ISO 8601), active_mass_mg, area_cm2.
_PREAMBLE_KEYS = {"start_time": str, "active_mass_mg": float, "area_cm2": float}


def _preamble(lines: list[str]) -> dict[str, Any]:
    """The attrs that ``# key: value`` comment lines before the header give (others ignored)."""
    out: dict[str, Any] = {}
    for line in lines:
        text = line.strip()
        if not text.startswith("#") or ":" not in text:
            continue
        key, value = (part.strip() for part in text[1:].split(":", 1))
        kind = _PREAMBLE_KEYS.get(key.lower())
        if kind is None or not value:
            continue
        try:
            out[key.lower()] = kind(value)
        except ValueError:
            continue
    return out


# --------------------------------------------------------------------------- entry point


def _format_of(path: Path) -> str:
    ext = path.suffix.lower()
    if ext in (".txt", ".csv") and ext == ".txt":
        from ionscope.io._maccor import is_maccor

        if is_maccor(path):
            return "Maccor"
    return CYCLER_EXTENSIONS.get(ext, "")


def load_cycler(path: str | os.PathLike, *, timezone: str | dt.tzinfo | None = None,
                columns: Mapping[str, str] | str | None = None) -> xr.Dataset:
    """Read a battery cycler's log into the ionscope cycler model.

    Parameters
    ----------
    path : str or path-like
        BioLogic EC-Lab ``.mpr`` / ``.mpt``, Neware ``.nda`` / ``.ndax``, Arbin ``.res`` (needs
        mdbtools' ``mdb-export``) / ``.xlsx``, Maccor text export, or any CSV/TXT table with time,
        voltage and current columns (e.g. ``time_s,voltage_V,current_A,charge_C`` as ionscope's
        twins write it).
    timezone : str or tzinfo, optional
        The zone of the instrument's clock (an IANA name like ``"Europe/Berlin"`` or an offset
        like ``"+09:00"``): the naive local ``start_time`` the file records becomes UTC with an
        offset. Without it the start time stays naive (as the file has it).
    columns : mapping or str, optional
        For text tables: ``{"time": NAME, "voltage": NAME, "current": NAME, "charge": NAME,
        "cycle": NAME, "step": NAME}`` (or ``"time=NAME,voltage=NAME,..."``); units come from
        the names (``time/s``, ``I/mA``, ``current_A``) or are given as ``NAME:UNIT``.

    Returns
    -------
    xarray.Dataset
        Record dim ``time`` (s from the first record): ``voltage`` (V), ``current`` (mA, charge
        positive), ``charge`` (mAh, net cumulative), ``cycle``, ``half_cycle`` (int32, 1-based),
        ``state`` (int8: 0 rest, 1 charge, 2 discharge), optional ``step``, the file's other
        columns; attrs ``start_time``, ``source_file``, ``source_format``, ``active_mass_mg``,
        ``area_cm2``, ``technique``, ``settings`` (JSON) where present, ``primary``.

    Raises
    ------
    FileMissingError, FormatError
        A missing, empty, truncated or unrecognised file.
    InputError
        A log without a time, voltage or current column (the message lists its columns), or a
        column map naming a column the file does not have.
    MissingReaderError
        The format's reader package (or mdbtools for ``.res``) is not installed.
    ConfigError
        An unknown time zone or column-map role.
    """
    path = Path(path)
    if not path.exists():
        raise FileMissingError(f"{path}: no such cycler log; check the path and spelling")
    if path.is_dir():
        raise InputError(f"{path} is a directory; give a cycler log file")
    if path.stat().st_size == 0:
        raise FormatError(f"{path}: the file is empty (0 bytes); was it copied or written completely?")
    ext = path.suffix.lower()
    if timezone is not None:
        parse_timezone(timezone)  # fail early on a bad name
    if columns is not None and ext not in (".csv", ".txt", ".tsv", ".xlsx"):
        raise ConfigError(f"{path}: a column map is for text tables (CSV/TXT/XLSX); {ext} files name their "
                          "columns themselves")
    fmt = _format_of(path)
    if fmt == "BioLogic MPR":
        from ionscope.io._biologic import read_mpr

        raw = read_mpr(path)
    elif fmt == "BioLogic MPT":
        from ionscope.io._biologic import read_mpt

        raw = read_mpt(path)
    elif fmt in ("Neware NDA", "Neware NDAX"):
        from ionscope.io._neware import read_neware

        raw = read_neware(path)
    elif fmt == "Arbin RES":
        from ionscope.io._arbin import read_res

        raw = read_res(path)
    elif fmt == "Arbin XLSX":
        from ionscope.io._arbin import read_xlsx

        raw, fmt = read_xlsx(path, columns=columns)
    elif fmt == "Maccor":
        from ionscope.io._maccor import read_maccor

        raw = read_maccor(path)
    elif fmt == "CSV":
        if ext == ".txt" and columns is None:
            from ionscope.io._biologic import is_mpt

            if is_mpt(path):
                fmt = "BioLogic MPT"
                from ionscope.io._biologic import read_mpt

                raw = read_mpt(path)
                return build_log(raw, path, fmt, timezone=timezone)
        raw = read_csv_log(path, columns=columns)
    else:
        raise FormatError(f"{path}: {ext or '(no extension)'} is not a cycler log ionscope reads; it reads "
                          f"{', '.join(sorted(set(CYCLER_EXTENSIONS)))} and Maccor .txt exports")
    params = {"columns": columns if isinstance(columns, str) or columns is None else dict(columns)}
    return build_log(raw, path, fmt, timezone=timezone, params=params if columns is not None else None)
