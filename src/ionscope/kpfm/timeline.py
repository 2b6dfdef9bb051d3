"""Per-row times of scanned frames and the cell's state at each row (a minimal cycler timeline).

A KPFM frame takes minutes, so every scan line has its own time (``row_time``, s from the
frame's start) and, with a cycler log, its own cell voltage, current and charge
(METHODS.md section 7). This module reads a cycler log into plain arrays
(:func:`cycler_arrays`) and interpolates it at any times (:func:`interpolate_kernel`); the
electrochemistry package will generalise it (cycles, states, vendor files).

Times: frames carry their absolute start (``start_time``, ISO 8601); a cycler log its times in s
from its own zero, whose absolute time is the ``start`` given by the user, else the log's
``start_time`` attribute, else - by assumption, recorded in the result - the first frame's start.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from ionscope.errors import FormatError, InputError

__all__ = [
    "COLUMNS",
    "UNIT_FACTORS",
    "parse_time",
    "seconds_between",
    "cycler_arrays",
    "interpolate_kernel",
]

#: Accepted names of each quantity in a cycler table (matched case-insensitively), with the
#: unit a name implies.
COLUMNS: dict[str, tuple[tuple[str, str], ...]] = {
    "time": (("time_s", "s"), ("time", ""), ("t", ""), ("time/s", "s"), ("record", ""), ("elapsed_time_s", "s")),
    "voltage": (("voltage_V", "V"), ("voltage", ""), ("cycler_voltage", ""), ("ewe/v", "V"), ("ecell/v", "V"),
                ("cell_voltage", ""), ("voltage_mV", "mV")),
    "current": (("current_A", "A"), ("current", ""), ("cycler_current", ""), ("current_mA", "mA"), ("i/ma", "mA"),
                ("current_uA", "µA")),
    "charge": (("charge_C", "C"), ("charge", ""), ("cycler_charge", ""), ("charge_mAh", "mAh"), ("q/mah", "mAh"),
               ("(q-qo)/ma.h", "mAh"), ("capacity_mAh", "mAh")),
}
#: Factors to the SI unit of each quantity.
UNIT_FACTORS: dict[str, dict[str, float]] = {
    "time": {"s": 1.0, "ms": 1e-3, "min": 60.0, "h": 3600.0},
    "voltage": {"V": 1.0, "mV": 1e-3},
    "current": {"A": 1.0, "mA": 1e-3, "µA": 1e-6, "uA": 1e-6, "nA": 1e-9},
    "charge": {"C": 1.0, "mC": 1e-3, "mAh": 3.6, "Ah": 3600.0, "mA.h": 3.6, "uAh": 3.6e-3, "µAh": 3.6e-3},
}


def parse_time(value: Any, what: str) -> dt.datetime:
    """An ISO 8601 time (``str`` or :class:`datetime.datetime`); InputError naming ``what``."""
    if isinstance(value, dt.datetime):
        return value
    if isinstance(value, np.datetime64):
        return dt.datetime.fromisoformat(str(value.astype("datetime64[us]")))
    try:
        return dt.datetime.fromisoformat(str(value).strip().replace("Z", "+00:00"))
    except ValueError:
        raise InputError(f"{what} {value!r} is not an ISO 8601 time (e.g. 2024-05-01T10:00:00)") from None


def seconds_between(a: dt.datetime, b: dt.datetime, what: str = "the times") -> float:
    """``b - a`` in s; both naive (same local clock) or both with a time zone."""
    if (a.tzinfo is None) != (b.tzinfo is None):
        raise InputError(f"{what}: one time has a time zone and the other does not ({a.isoformat()} vs "
                         f"{b.isoformat()}); give both with a zone (e.g. +02:00) or neither")
    return (b - a).total_seconds()


def _column(names: Mapping[str, Any], quantity: str) -> tuple[str | None, str]:
    folded = {str(k).strip().lower(): k for k in names}
    for name, unit in COLUMNS[quantity]:
        if name.lower() in folded:
            return folded[name.lower()], unit
    return None, ""


def _factor(quantity: str, unit: str, where: str) -> float:
    if not unit:
        return 1.0
    table = UNIT_FACTORS[quantity]
    if unit not in table:
        raise InputError(f"{where}: the {quantity} is in {unit!r}; use one of {', '.join(table)}")
    return table[unit]


def _read_csv(path: Path) -> dict[str, np.ndarray]:
    from ionscope.io import read_table

    rows = read_table(path, "cycler log")
    if len(rows) < 3:
        raise FormatError(f"cycler log {path}: fewer than two data rows")
    header = [h.strip() for h in rows[0]]
    try:
        data = np.array([[float(v) for v in r] for r in rows[1:]], dtype=np.float64)
    except ValueError:
        raise FormatError(f"cycler log {path}: a data row holds something that is not a number; expected a CSV "
                          "with a header such as time_s,voltage_V,current_A,charge_C") from None
    if data.ndim != 2 or data.shape[1] != len(header):
        raise FormatError(f"cycler log {path}: rows of different lengths")
    return {h: data[:, i] for i, h in enumerate(header)}


def cycler_arrays(cycler: Any) -> dict[str, Any]:
    """A cycler log as plain SI arrays.

    Parameters
    ----------
    cycler : xarray.Dataset, pandas.DataFrame, mapping of arrays, or path
        Time (s from the log's zero) and voltage, current and charge, under the names of
        :data:`COLUMNS` (``time_s, voltage_V, current_A, charge_C`` as ionscope's twins write
        them; ``cycler_voltage``... as the twins store them; ``Ewe/V``, ``I/mA``, ``Q/mAh``...).
        A Dataset's variables carry their unit in ``attrs["units"]`` and may run along a
        ``time`` or ``record`` dim; its ``start_time`` attr is the absolute time of its zero. A
        path is read as CSV. Without a charge, the current is integrated.

    Returns
    -------
    dict
        ``time_s``, ``voltage_V``, ``current_A``, ``charge_C`` (float64 arrays sorted by time) and
        ``start_time`` (str or None).

    Raises
    ------
    InputError
        No time or voltage, units not understood, fewer than two records.
    """
    import xarray as xr

    start = None
    where = "the cycler log"
    if isinstance(cycler, (str, os.PathLike)):
        path = Path(cycler)
        where = f"cycler log {path}"
        if path.suffix.lower() in (".zarr", ".nc"):
            from ionscope.io import open_dataset

            cycler = open_dataset(path)
        else:
            if not path.exists():
                from ionscope.errors import FileMissingError

                raise FileMissingError(f"{path}: no such cycler log")
            cycler = _read_csv(path)
    units: dict[str, str] = {}
    if isinstance(cycler, xr.Dataset):
        start = cycler.attrs.get("start_time")
        table: dict[str, Any] = {}
        for name in list(cycler.data_vars) + list(cycler.coords):
            var = cycler[name]
            if var.ndim == 1:
                table[str(name)] = var.values
                units[str(name)] = str(var.attrs.get("units", ""))
    elif hasattr(cycler, "columns") and hasattr(cycler, "__getitem__"):  # a DataFrame
        table = {str(c): np.asarray(cycler[c]) for c in cycler.columns}
        start = getattr(cycler, "attrs", {}).get("start_time")
    elif isinstance(cycler, Mapping):
        table = dict(cycler)
        start = table.pop("start_time", None)
    else:
        raise InputError(f"the cycler log must be a Dataset, a DataFrame, a mapping of arrays or a CSV path, got "
                         f"{type(cycler).__name__}")
    out: dict[str, Any] = {"start_time": None if start is None else str(start)}
    for quantity in ("time", "voltage", "current", "charge"):
        name, implied = _column(table, quantity)
        if name is None:
            if quantity in ("current", "charge"):
                out[quantity] = None
                continue
            raise InputError(f"{where} has no {quantity} column; it has {', '.join(map(str, table))} (expected e.g. "
                             f"{', '.join(n for n, _ in COLUMNS[quantity][:3])})")
        raw = np.asarray(table[name])
        if quantity == "time" and np.issubdtype(raw.dtype, np.datetime64):
            t0 = raw.min()
            values = (raw - t0) / np.timedelta64(1, "us") * 1e-6
            if out["start_time"] is None:
                out["start_time"] = str(t0.astype("datetime64[us]"))
        else:
            values = np.asarray(raw, dtype=np.float64) * _factor(quantity, units.get(name) or implied, where)
        out[quantity] = values
    t = out.pop("time")
    if t.size < 2:
        raise InputError(f"{where} has {t.size} record(s); at least two are needed to interpolate")
    for quantity, values in (("time", t), *out.items()):
        if isinstance(values, np.ndarray) and values.dtype.kind == "f" and not np.all(np.isfinite(values)):
            bad = int(np.count_nonzero(~np.isfinite(values)))
            raise InputError(f"{where}: {bad} record(s) hold NaN/inf in the {quantity}; remove or fix those rows "
                             "(a cycler log is never interpolated across a gap silently)")
    order = np.argsort(t, kind="stable")
    result = {"time_s": t[order], "voltage_V": out["voltage"][order],
              "current_A": None if out["current"] is None else out["current"][order],
              "charge_C": None if out["charge"] is None else out["charge"][order], "start_time": out["start_time"]}
    if result["charge_C"] is None and result["current_A"] is not None:
        i, tt = result["current_A"], result["time_s"]
        result["charge_C"] = np.concatenate([[0.0], np.cumsum(0.5 * (i[1:] + i[:-1]) * np.diff(tt))])
    return result


def interpolate_kernel(t_log: np.ndarray, values: np.ndarray | None, t: np.ndarray) -> np.ndarray:
    """Linear interpolation of a log at times ``t`` (same clock), NaN outside the log's span (and
    everywhere for a missing quantity)."""
    t = np.asarray(t, dtype=np.float64)
    if values is None:
        return np.full(t.shape, np.nan)
    tl = np.asarray(t_log, dtype=np.float64)
    v = np.asarray(values, dtype=np.float64)
    ok = np.isfinite(tl) & np.isfinite(v)
    if ok.sum() < 2:
        return np.full(t.shape, np.nan)
    out = np.interp(t, tl[ok], v[ok])
    out[(t < tl[ok][0]) | (t > tl[ok][-1]) | ~np.isfinite(t)] = np.nan
    return out

