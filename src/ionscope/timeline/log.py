"""A cycler log in the array model, and the kernels that read it at given times.

The model (``ionscope.io.load_cycler``; the spec of issue 15): record dim ``time`` with the
coordinate ``time`` (s from the log's first record), ``voltage`` (V), ``current`` (mA, charge
positive), ``charge`` (mAh, net cumulative), ``state`` (int8: 0 rest, 1 charge, 2 discharge) and
the attribute ``start_time`` (ISO 8601) when the file gives one. :func:`cycler_log` takes a file
(read by :func:`ionscope.io.load_cycler`) or a log already in memory in another layout - the
twins' ``cycler_*`` variables on a ``record`` dim, a table with ``time_s, voltage_V, current_A,
charge_C`` or ``Ewe/V, I/mA``... columns, a mapping or a DataFrame - and returns the model.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from ionscope.errors import InputError

__all__ = [
    "STATE_FLAGS",
    "cycler_log",
    "interpolate_kernel",
    "state_at_kernel",
    "clock_jumps_kernel",
]

#: CF flags of the ``state`` code (``-1``: not known, e.g. outside the log).
STATE_FLAGS = {"flag_values": [-1, 0, 1, 2], "flag_meanings": "unknown rest charge discharge"}


def _column(names: Mapping[str, Any], quantity: str) -> tuple[str | None, str]:
    """The column of ``quantity`` among ``names`` and the unit its name implies ("" for none),
    by :mod:`ionscope.io`'s one table of cycler column names (``ionscope.io._cycler.COLUMNS``)."""
    from ionscope.io._cycler import match_column, split_unit

    name = match_column([str(n) for n in names], quantity)
    if name is None:
        return None, ""
    key = next(k for k in names if str(k) == name)
    return key, split_unit(name)[1] or ""


def _factor(quantity: str, unit: str, where: str) -> float:
    """Factor to the model's unit (V, mA, mAh, s); a quantity without a unit is in SI (V, A, C, s),
    as ionscope's twins write their logs (``ionscope.io._cycler.DEFAULT_UNITS``)."""
    from ionscope.io._cycler import unit_factor

    return unit_factor(quantity, unit or None, where)


def _is_model(ds: xr.Dataset) -> bool:
    return "time" in ds.dims and "voltage" in ds and ds["voltage"].dims == ("time",)


def cycler_log(log: Any, *, timezone: Any = None) -> xr.Dataset:
    """A cycler log in the array model (see the module docstring).

    Parameters
    ----------
    log : path, xarray.Dataset, pandas.DataFrame or mapping of arrays
        A file any reader of :func:`ionscope.io.load_cycler` takes (a ``.zarr``/``.nc`` is
        opened as a Dataset), or a log in memory: variables or columns named as in
        :mod:`ionscope.io`'s table of cycler column names, units from their ``units`` attribute or their names; a Dataset's
        ``start_time`` attribute (a mapping's ``start_time`` key) is the absolute time of its
        zero.
    timezone : str, optional
        For a file: the zone its naive local times are in (:func:`ionscope.io.load_cycler`).

    Returns
    -------
    xarray.Dataset
        ``voltage`` (V), ``current`` (mA; absent when the log has none), ``charge`` (mAh;
        integrated from the current when absent), ``state`` (int8, :data:`STATE_FLAGS`; from the
        sign of the current when absent) on the record dim ``time`` (s on the log's own clock,
        whose zero is ``start_time``: :func:`~ionscope.io.load_cycler`'s ``time_offset_s``, the
        file's time of the first record, is added back; in the log's record order: a clock that
        jumps back is kept as it is), attrs of the input (``start_time``...).

    Raises
    ------
    InputError
        No time or voltage, units not understood, fewer than two records, NaN times or voltages.
    """
    where = "the cycler log"
    if timezone is not None:
        from ionscope.timeline.clock import parse_timezone

        parse_timezone(timezone)  # a bad zone is refused here, with the same message everywhere
    if isinstance(log, (str, os.PathLike)):
        path = Path(log)
        where = f"cycler log {path}"
        if path.suffix.lower() in (".zarr", ".nc"):
            from ionscope.io import open_dataset

            log = open_dataset(path)
        else:
            from ionscope.io import load_cycler

            log = load_cycler(path, timezone=timezone)
    attrs: dict[str, Any] = {}
    units: dict[str, str] = {}
    if isinstance(log, xr.Dataset):
        attrs = dict(log.attrs)
        if _is_model(log):
            offset = attrs.pop("time_offset_s", None)
            if offset:  # load_cycler's time runs from the first record; the log's clock from its zero
                log = log.assign_coords(time=log["time"] + float(offset))
            table: dict[str, Any] = {}
            for name in list(log.data_vars) + ["time"]:
                if log[name].dims == ("time",):
                    table[str(name)] = log[name].values
                    units[str(name)] = str(log[name].attrs.get("units", ""))
            return _model(table, units, attrs, where, keep=log)
        table = {}
        for name in list(log.data_vars) + list(log.coords):
            var = log[name]
            if var.ndim == 1:
                table[str(name)] = var.values
                units[str(name)] = str(var.attrs.get("units", ""))
    elif hasattr(log, "columns") and hasattr(log, "__getitem__"):  # a DataFrame
        table = {str(c): np.asarray(log[c]) for c in log.columns}
        attrs = dict(getattr(log, "attrs", {}) or {})
    elif isinstance(log, Mapping):
        table = dict(log)
        if "start_time" in table:
            attrs["start_time"] = table.pop("start_time")
    else:
        raise InputError(f"the cycler log must be a file, a Dataset, a DataFrame or a mapping of arrays, got "
                         f"{type(log).__name__}")
    return _model(table, units, attrs, where)


def _model(table: dict[str, Any], units: dict[str, str], attrs: dict[str, Any], where: str,
           keep: xr.Dataset | None = None) -> xr.Dataset:
    values: dict[str, np.ndarray | None] = {}
    for quantity in ("time", "voltage", "current", "charge"):
        name, implied = _column(table, quantity)
        if name is None:
            if quantity in ("current", "charge"):
                values[quantity] = None
                continue
            from ionscope.io._cycler import COLUMNS

            raise InputError(f"{where} has no {quantity} column; it has {', '.join(map(str, table))} (expected e.g. "
                             f"{', '.join(COLUMNS[quantity][:3])})")
        raw = np.asarray(table[name])
        if quantity == "time" and np.issubdtype(raw.dtype, np.datetime64):
            t0 = raw[0]
            values["time"] = (raw - t0) / np.timedelta64(1, "us") * 1e-6
            attrs.setdefault("start_time", str(t0.astype("datetime64[us]")))
            continue
        unit = units.get(name) or implied
        try:
            values[quantity] = np.asarray(raw, dtype=np.float64) * _factor(quantity, unit, where)
        except (TypeError, ValueError):
            raise InputError(f"{where}: the {quantity} column {name!r} holds something that is not a number") from None
    t = values["time"]
    if t.size < 2:
        raise InputError(f"{where} has {t.size} record(s); at least two are needed to interpolate")
    for quantity in ("time", "voltage"):
        bad = ~np.isfinite(values[quantity])
        if bad.any():
            raise InputError(f"{where}: {int(bad.sum())} record(s) hold NaN/inf in the {quantity}; remove or fix those "
                             "rows (a cycler log is never interpolated across a gap silently)")
    current, charge = values["current"], values["charge"]
    if current is not None and not np.isfinite(current).any():
        current = None
    if charge is None and current is not None:
        ok = np.isfinite(current)
        c = np.where(ok, current, 0.0)
        charge = np.concatenate([[0.0], np.cumsum(0.5 * (c[1:] + c[:-1]) * np.diff(t))]) / 3600.0
    data: dict[str, Any] = {"voltage": ("time", values["voltage"], {"units": "V", "long_name": "cell voltage"})}
    if current is not None:
        data["current"] = ("time", current, {"units": "mA", "long_name": "current (positive on charge)"})
    if charge is not None:
        data["charge"] = ("time", charge, {"units": "mAh", "long_name": "charge passed (net, cumulative)"})
    state_name = next((n for n in table if str(n).lower() in ("state", "cycler_state")), None)
    if state_name is not None:
        state = np.asarray(table[state_name]).astype(np.int8)
        flags = {k: keep[state_name].attrs[k] for k in ("flag_values", "flag_meanings")
                 if keep is not None and k in keep[state_name].attrs}
        data["state"] = ("time", state, {"units": "1", **(flags or STATE_FLAGS)})
    elif current is not None:
        from ionscope.io._cycler import derive_state

        state = derive_state(current)  # the readers' rule: rest at or below 1e-3 of the largest |current|
        state[~np.isfinite(current)] = -1
        data["state"] = ("time", state, {"units": "1", **STATE_FLAGS,
                                         "long_name": "state from the sign of the current (io.load_cycler's rule)"})
    ds = xr.Dataset(data, coords={"time": ("time", t, {"units": "s", "long_name": "time from the log's first record"})},
                    attrs=attrs)
    if keep is not None:  # a model log: its other variables stay
        for name in keep.data_vars:
            if name not in ds and keep[name].dims == ("time",):
                ds[name] = keep[name].variable
    return ds


def clock_jumps_kernel(t_log: np.ndarray) -> np.ndarray:
    """Indices ``k`` where the log's clock goes back (``t[k + 1] < t[k]``)."""
    return np.flatnonzero(np.diff(np.asarray(t_log, dtype=np.float64)) < 0)


def _segments(t_log: np.ndarray) -> list[slice]:
    cuts = clock_jumps_kernel(t_log) + 1
    bounds = np.concatenate([[0], cuts, [t_log.size]])
    return [slice(int(a), int(b)) for a, b in zip(bounds[:-1], bounds[1:]) if b > a]


def covering_segments_kernel(t_log: np.ndarray, t: np.ndarray) -> tuple[list[slice], np.ndarray]:
    """The runs of a log between clock jumps, and for every time how many of them span it."""
    t_log = np.asarray(t_log, dtype=np.float64)
    t = np.asarray(t, dtype=np.float64)
    segments = _segments(t_log)
    count = np.zeros(t.shape, dtype=np.int64)
    for s in segments:
        count += (t >= t_log[s][0]) & (t <= t_log[s][-1])
    return segments, count


def interpolate_kernel(t_log: np.ndarray, values: np.ndarray | None, t: np.ndarray) -> np.ndarray:
    """Linear interpolation of a log at times ``t`` (same clock), NaN outside the log's span (and
    everywhere for a missing quantity). Where the log's clock jumps back, each time is read from
    the run of records that spans it, and is NaN when more than one does (ambiguous).

    Examples
    --------
    >>> interpolate_kernel(np.array([0.0, 10.0]), np.array([3.0, 4.0]), np.array([-1.0, 5.0]))
    array([nan, 3.5])
    """
    t = np.asarray(t, dtype=np.float64)
    if values is None:
        return np.full(t.shape, np.nan)
    tl = np.asarray(t_log, dtype=np.float64)
    v = np.asarray(values, dtype=np.float64)
    segments, count = covering_segments_kernel(tl, t)
    out = np.full(t.shape, np.nan)
    for s in segments:
        ts, vs = tl[s], v[s]
        ok = np.isfinite(ts) & np.isfinite(vs)
        if ok.sum() < 1:
            continue
        ts, vs = ts[ok], vs[ok]
        inside = (count == 1) & (t >= tl[s][0]) & (t <= tl[s][-1])
        if inside.any():
            out[inside] = np.interp(t[inside], ts, vs) if ts.size > 1 else vs[0]
    return out


def state_at_kernel(t_log: np.ndarray, state: np.ndarray | None, t: np.ndarray) -> np.ndarray:
    """The log's state at times ``t``: that of the last record at or before each time (int8),
    -1 outside the log, where ambiguous (a clock that jumps back) or without a state."""
    t = np.asarray(t, dtype=np.float64)
    out = np.full(t.shape, -1, dtype=np.int8)
    if state is None:
        return out
    tl = np.asarray(t_log, dtype=np.float64)
    s_all = np.asarray(state).astype(np.int8)
    segments, count = covering_segments_kernel(tl, t)
    for s in segments:
        ts = tl[s]
        inside = (count == 1) & (t >= ts[0]) & (t <= ts[-1])
        if inside.any():
            k = np.clip(np.searchsorted(ts, t[inside], side="right") - 1, 0, ts.size - 1)
            out[inside] = s_all[s][k]
    return out
