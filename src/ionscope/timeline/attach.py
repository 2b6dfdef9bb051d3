"""Every frame (and every scan row) of a series tied to the cell's state at its time.

:func:`frame_times` finds when each frame was taken: the absolute start of the series
(:func:`~ionscope.timeline.metadata.metadata_start`) and per frame its mid-exposure time, per
row (scanned techniques, a ``row_time`` coordinate) its own time. :func:`attach_cycler` reads a
cycler log at those times and adds the coordinates ``cell_voltage`` (V), ``cell_current`` (mA,
charge positive), ``charge`` (mAh, net since the log's first record), ``state`` (0 rest, 1 charge,
2 discharge, -1 unknown) and ``cycler_time`` (s on the log's clock) on the series' ``time`` dim,
and ``row_cell_voltage``, ``row_cell_current``, ``row_charge``, ``row_state`` (time, y) for a
scanned series (:doc:`/guide/timeline`).

The two clocks: the series' start comes from its metadata, else ``start``; the log's zero from
its ``start_time``, else ``start``, else - an assumption, warned about - the series' start. When
both have a start and ``start`` is given too, ``start`` is the log's zero (as ``kpfm process``
has it). Naive and zone-aware times are compared only with a ``timezone`` for the naive one.
Frames outside the log, a log clock that jumps back, a log without current are reported (a
one-line warning, and in the ``timeline`` attribute), never filled in.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import warnings
from collections.abc import Sequence
from typing import Any, NamedTuple

import numpy as np
import xarray as xr

from ionscope.data import jsonable, plain_json, provenance, with_provenance
from ionscope.errors import DimensionError, InputError, IonscopeWarning
from ionscope.timeline.clock import iso, parse_time, seconds_between, with_zone
from ionscope.timeline.log import (
    STATE_FLAGS,
    clock_jumps_kernel,
    covering_segments_kernel,
    cycler_log,
    interpolate_kernel,
    state_at_kernel,
)
from ionscope.timeline.metadata import metadata_start

__all__ = ["FrameTimes", "frame_times", "attach_cycler", "attach_cycler_states", "cell_state_name", "timeline_summary",
           "append_step", "TIMELINE_COORDS"]

#: The coordinates :func:`attach_cycler` adds (per frame, then per row).
TIMELINE_COORDS = ("cell_voltage", "cell_current", "charge", "state", "cycler_time",
                   "row_cell_voltage", "row_cell_current", "row_charge", "row_state")
_NAMED_FRAMES = 12


class _Times(NamedTuple):
    start: dt.datetime | None
    mid: np.ndarray
    rows: np.ndarray | None


class FrameTimes(_Times):
    """When the frames of a series were taken: ``(start, mid, rows)``.

    ``start`` is the absolute start of the series (datetime, None when its metadata has none),
    ``mid`` every frame's mid-exposure time (s from ``start``, shape (time,), (1,) for a single
    frame), ``rows`` every scan row's time (s from ``start``, (time, y)) or None. Also:
    ``start_source`` (where the start came from), ``notes`` (what was assumed) and ``dim``
    (``"time"``, or None for a single frame without a time dim).
    """

    start_source: str
    notes: list[str]
    dim: str | None

    def __new__(cls, start, mid, rows, *, start_source: str = "", notes=(), dim: str | None = "time"):
        self = super().__new__(cls, start, np.asarray(mid, dtype=np.float64), rows)
        self.start_source = start_source
        self.notes = list(notes)
        self.dim = dim
        return self


def _seconds(coord: xr.DataArray, what: str) -> np.ndarray:
    from ionscope.units import time_to_s

    unit = str(coord.attrs.get("units", "s") or "s")
    factor = time_to_s(unit)
    if factor is None:
        raise InputError(f"{what} is in {unit!r}, not a time unit (s, ms, min, h)")
    return np.asarray(coord.values, dtype=np.float64) * factor


def frame_times(series: xr.Dataset | xr.DataArray) -> FrameTimes:
    """When each frame (and scan row) of ``series`` was taken.

    Parameters
    ----------
    series : xarray.Dataset or xarray.DataArray
        A series with a ``time`` dim (its coordinate in s, or another time unit, from the
        series' start; or datetime64 values), or one frame without one. Optional: a
        ``row_time`` coordinate (time, y) s from the series' start, or (y,) s from each frame's
        start; an exposure attribute (``exposure_time_s``, ``exposure_s``, ``frame_time_s``,
        ``acquisition_time_s``, or the file's: DM ``Exposure Time (s)``, Velox ``FrameTime``);
        the ``time`` coordinate's ``frame_reference`` attribute ``"start"`` or ``"mid"``.

    Returns
    -------
    FrameTimes
        ``(start, mid, rows)``. Mid-exposure times: the middle of a frame's row times when it
        has them; else the time coordinate when it says ``frame_reference="mid"``; else the time
        coordinate (taken as the frame's start) + exposure / 2 when the exposure is known; else
        the time coordinate, assumed to be the mid-exposure time. ``notes`` say which.

    Raises
    ------
    InputError
        A time coordinate that is not in a time unit, a start_time that is not ISO 8601.

    Computes: a dask-backed ``row_time`` coordinate (the frames' times, one compute); never
    the data.

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> s = xr.DataArray(np.zeros((3, 2, 2)), dims=("time", "y", "x"),
    ...                  coords={"time": ("time", [0.0, 60.0, 120.0], {"units": "s"})},
    ...                  attrs={"start_time": "2024-05-01T10:00:00", "exposure_time_s": 60.0})
    >>> frame_times(s).mid.tolist()
    [30.0, 90.0, 150.0]
    """
    if not isinstance(series, (xr.Dataset, xr.DataArray)):
        raise InputError(f"a series must be an xarray Dataset or DataArray, got {type(series).__name__}")
    meta = metadata_start(series)
    start, source = meta["start"], meta["source"]
    exposure = meta["exposure_s"]
    notes: list[str] = []
    dim = "time" if "time" in series.dims else None
    if dim is not None:
        coord = series["time"]
        if np.issubdtype(coord.dtype, np.datetime64):
            values = coord.values
            first = parse_time(values[0], "the first frame's time")
            t = (values - values[0]) / np.timedelta64(1, "us") * 1e-6
            if start is None:
                start, source = first, "the time coordinate (datetime64, no time zone)"
            else:
                t = t + seconds_between(start, first, "the series' start and its first frame's time")
        else:
            t = _seconds(coord, "the time coordinate")
        reference = str(coord.attrs.get("frame_reference", "")).lower()
    else:
        t, reference = np.zeros(1), "start"
    rows = None
    if "row_time" in series.coords:
        rt = series["row_time"]
        values = _seconds(rt, "the row_time coordinate")
        if dim is not None and rt.dims == ("time", "y"):
            rows = values
            notes.append("per-row times: the row_time coordinate (s from the series' start)")
        elif rt.dims == ("y",):
            rows = t[:, None] + values[None, :]
            notes.append("per-row times: each frame's start + the row_time coordinate")
        else:
            raise InputError(f"the row_time coordinate has dims {rt.dims}; expected (time, y) or (y,)")
    if rows is not None and np.isfinite(rows).any(axis=1).all():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            mid = 0.5 * (np.nanmin(rows, axis=1) + np.nanmax(rows, axis=1))
        notes.append("mid-exposure time: the middle of each frame's row times")
    elif reference == "mid":
        mid = t
        notes.append("mid-exposure time: the time coordinate (frame_reference='mid')")
    elif exposure is not None and math.isfinite(exposure) and exposure >= 0:
        mid = t + 0.5 * exposure
        notes.append(f"mid-exposure time: the time coordinate taken as each frame's start + exposure / 2 "
                     f"(exposure {exposure:g} s from {meta['exposure_source']})")
    elif dim is None:
        mid = t
        notes.append("mid-exposure time: the start (a single frame, no exposure time recorded)")
    else:
        mid = t
        notes.append("mid-exposure time: assumed to be the time coordinate (no exposure time recorded)")
    return FrameTimes(start, mid, rows, start_source=source, notes=notes, dim=dim)


def _frame_list(index: np.ndarray, n: int) -> str:
    shown = ", ".join(str(int(i)) for i in index[:_NAMED_FRAMES])
    more = f", ... ({index.size} of {n})" if index.size > _NAMED_FRAMES else f" ({index.size} of {n})"
    return shown + more


def _at(start: dt.datetime, seconds: float) -> str:
    return (start + dt.timedelta(seconds=float(seconds))).isoformat(timespec="seconds")


def attach_cycler(
    series: xr.Dataset | xr.DataArray,
    log: Any,
    *,
    start: Any = None,
    timezone: Any = None,
    times: FrameTimes | None = None,
    noun: str = "frame",
) -> xr.Dataset | xr.DataArray:
    """The series with the cell's state at every frame (and scan row) from a cycler log.

    Parameters
    ----------
    series : xarray.Dataset or xarray.DataArray
        A series (:func:`frame_times`); a result whose frame times come from another series
        (e.g. a fit of it) takes ``times=frame_times(that_series)``.
    log : path, xarray.Dataset, DataFrame or mapping
        The cycler log (:func:`~ionscope.timeline.log.cycler_log`; a file is read by
        :func:`ionscope.io.load_cycler`).
    start : str or datetime, optional
        ISO 8601 time: the series' start when its metadata has none (then also the log's zero
        when the log has none), else the log's zero (overriding its ``start_time``).
    timezone : str, optional
        The zone (IANA name or offset) of naive times: needed when one of the two starts has a
        zone and the other not; also passed to the log's reader.
    times : FrameTimes, optional
        Frame times to use instead of ``frame_times(series)``.
    noun : str
        What the messages call one entry of the series (``"state"`` for states of charge).

    Returns
    -------
    xarray.Dataset or xarray.DataArray
        ``series`` with the coordinates ``cell_voltage`` (V), ``cell_current`` (mA),
        ``charge`` (mAh), ``state`` (int8, ``flag_values`` -1 unknown, 0 rest, 1 charge, 2
        discharge: the log's state at that time), ``cycler_time`` (s, the log's clock) on
        ``time`` (scalars for a single frame), the ``row_*`` versions (time, y) when it has row
        times, the attribute ``start_time`` (the series' start) and ``timeline`` (JSON: both
        starts and where they came from, the offset, what was assumed, frames outside the log,
        clock jumps), and a provenance step. Variables of those names already in ``series``
        are replaced (said in ``timeline``).

    Raises
    ------
    InputError
        No start for the series (give ``start``), a naive and an aware start without
        ``timezone``, no frame within the log, a log that cannot be read.

    Warns
    -----
    IonscopeWarning
        Some frames outside the log (named); the log's clock jumps back; the log has no current;
        the log's zero assumed to be the series' start.

    Computes: only the frames' times (:func:`frame_times`: a dask-backed ``row_time``
    coordinate); a dask-backed series comes back dask-backed, its data untouched.

    Examples
    --------
    >>> from ionscope.simulate import simulate
    >>> twin = simulate("licoo2", ny=16, nx=8, layer_thickness_nm=4, layer_roughness_nm=1,
    ...                 charge_frames=3, rest1_frames=0, discharge_frames=0, rest2_frames=0)
    >>> log = {"time": twin["record"].values, "voltage": twin["cycler_voltage"].values,
    ...        "current_A": twin["cycler_current"].values}
    >>> out = attach_cycler(twin["li_fraction"], log, start="2024-05-01T10:00:00")
    >>> bool(np.allclose(out["cell_voltage"], twin["voltage"]))
    True
    """
    ft = times if times is not None else frame_times(series)
    model = cycler_log(log, timezone=timezone)
    given = parse_time(start, "start") if start is not None else None
    raw_log_start = model.attrs.get("start_time")
    log_start = parse_time(raw_log_start, "the cycler log's start_time") if raw_log_start not in (None, "") else None
    notes = list(ft.notes)
    warn: list[str] = []
    series_start, series_how = ft.start, ft.start_source
    if series_start is None:
        if given is None:
            raise InputError(
                f"the series has no start time ({series_how}); give the absolute time of its first frame (--start "
                "ISO, e.g. 2024-05-01T10:00:00+02:00)")
        series_start, series_how = given, f"start given (the series' metadata gives none: {ft.start_source})"
        if log_start is None:
            log_start, log_how = given, "start given (the log has no start_time either: it starts with the series)"
        else:
            log_how = "the log's start_time"
    elif log_start is None:
        if given is not None:
            log_start, log_how = given, "start given"
        else:
            log_start, log_how = series_start, "assumed: the log's zero is the series' start (the log has no start_time)"
            warn.append("the cycler log has no start time: assumed it starts with the series' first frame "
                        f"({iso(series_start)}); give --start (start=) if it does not")
    elif given is not None:
        log_start, log_how = given, f"start given (the log's own start_time {raw_log_start} not used)"
    else:
        log_how = "the log's start_time"
    offset = seconds_between(log_start, series_start, "the cycler log's start and the series' start", timezone=timezone)
    if timezone is not None:
        series_start, log_start = with_zone(series_start, timezone), with_zone(log_start, timezone)

    t_log = np.asarray(model["time"].values, dtype=np.float64)
    t_frames = ft.mid + offset
    n = t_frames.size
    segments, count = covering_segments_kernel(t_log, t_frames)
    inside = count > 0
    if not inside.any():
        end = max(float(t_log[s][-1]) for s in segments)
        raise InputError(
            f"none of the {n} {noun}s lies within the cycler log: the {noun}s run {_at(log_start, t_frames.min())} .. "
            f"{_at(log_start, t_frames.max())}, the log {_at(log_start, float(t_log.min()))} .. {_at(log_start, end)} "
            f"(series start from {series_how}; log zero from {log_how}); check --start and the time zones")
    outside = np.flatnonzero(~inside)
    if outside.size:
        warn.append(f"{noun}s {_frame_list(outside, n)} lie outside the cycler log's time span "
                    f"({_at(log_start, float(t_log.min()))} .. {_at(log_start, float(t_log.max()))}): their cell state "
                    "is NaN (state unknown)")
    jumps = clock_jumps_kernel(t_log)
    ambiguous = np.flatnonzero(count > 1)
    if jumps.size:
        listed = ", ".join(f"record {int(k) + 1} ({t_log[k]:.6g} s -> {t_log[k + 1]:.6g} s)" for k in jumps[:5])
        more = f" and {jumps.size - 5} more" if jumps.size > 5 else ""
        warn.append(f"the cycler log's clock goes back at {listed}{more}: "
                    + (f"{noun}s {_frame_list(ambiguous, n)} fall where its runs overlap and get no cell state; "
                       if ambiguous.size else "")
                    + "the other frames are read from the run of records that spans them")

    def quantity(name: str) -> np.ndarray | None:
        return np.asarray(model[name].values, dtype=np.float64) if name in model else None

    v, i, q = quantity("voltage"), quantity("current"), quantity("charge")
    state = model["state"].values if "state" in model else None
    missing = [name for name, values in (("current", i), ("charge", q), ("state", state)) if values is None]
    if missing:
        warn.append(f"the cycler log has no {' or '.join(missing)}: " + ", ".join(
            {"current": "cell_current", "charge": "charge", "state": "state"}[m] for m in missing)
            + " NaN (state unknown) at every frame")

    def read(t: np.ndarray) -> dict[str, np.ndarray]:
        return {"cell_voltage": interpolate_kernel(t_log, v, t), "cell_current": interpolate_kernel(t_log, i, t),
                "charge": interpolate_kernel(t_log, q, t), "state": state_at_kernel(t_log, state, t)}

    meta = {"cell_voltage": {"units": "V", "long_name": "cell voltage at the frame's mid-exposure time"},
            "cell_current": {"units": "mA", "long_name": "cell current (positive on charge) at the frame's mid-exposure time"},
            "charge": {"units": "mAh", "long_name": "charge passed since the log's first record (net)"},
            "state": {"units": "1", "long_name": "cell state (the log's) at the frame's mid-exposure time", **STATE_FLAGS},
            "cycler_time": {"units": "s", "long_name": "the frame's mid-exposure time on the cycler log's clock"}}
    per_frame = read(t_frames)
    per_frame["cycler_time"] = t_frames
    coords: dict[str, Any] = {}
    for name, values in per_frame.items():
        coords[name] = (("time",), values, meta[name]) if ft.dim else ((), values[0], meta[name])
    if ft.rows is not None:
        t_rows = ft.rows + offset
        per_row = read(t_rows.ravel())
        dims = ("time", "y") if ft.dim else ("y",)
        for name, values in per_row.items():
            row_meta = dict(meta[name], long_name=meta[name]["long_name"].replace("frame's mid-exposure time",
                                                                                "time the row was scanned"))
            coords["row_" + name] = (dims, values.reshape(t_rows.shape if ft.dim else t_rows.shape[1:]), row_meta)

    replaced = [name for name in coords if name in series.coords or (hasattr(series, "data_vars") and name in series)]
    out = series.drop_vars(replaced) if replaced else series
    out = out.assign_coords(coords)
    if replaced:
        notes.append(f"replaced the series' own {', '.join(replaced)}")
    frames_outside = [int(k) for k in outside]
    record = {
        "series_start": iso(series_start), "series_start_source": series_how,
        "cycler_start": iso(log_start), "cycler_start_source": log_how, "cycler_offset_s": offset,
        "timezone": None if timezone is None else str(timezone),
        "cycler_source": str(model.attrs.get("source_file", "")), "cycler_format": str(model.attrs.get("source_format", "")),
        "cycler_records": int(t_log.size), "cycler_span_s": [float(t_log.min()), float(t_log.max())],
        "frames": int(n), "frames_outside_log": frames_outside, "frames_ambiguous": [int(k) for k in ambiguous],
        "clock_jumps": [{"record": int(k) + 1, "from_s": float(t_log[k]), "to_s": float(t_log[k + 1])} for k in jumps],
        "missing": missing, "per_row": ft.rows is not None, "notes": notes, "warnings": warn,
    }
    out.attrs = {**series.attrs, "start_time": iso(series_start), "timeline": json.dumps(jsonable(record))}
    source = model.attrs.get("source_file")
    inputs = [source] if source and not str(source).endswith((".zarr", ".nc")) else [model["voltage"]]
    params = {"start": None if start is None else str(start), "timezone": None if timezone is None else str(timezone)}
    out = append_step(out, "ionscope.timeline.attach_cycler", params, inputs)
    for message in warn:
        warnings.warn(message, IonscopeWarning, stacklevel=2)
    return out


def append_step(obj: xr.Dataset | xr.DataArray, step: str, params: dict[str, Any], inputs=()) -> Any:
    """``obj`` with one provenance step appended: to a DataArray's history; for a Dataset to
    that of every variable that has one, and to the Dataset's own (else its primary variable's)."""
    if isinstance(obj, xr.DataArray):
        return with_provenance(obj, step, params, inputs)
    out = obj.copy(deep=False)
    for name in list(out.data_vars):
        if out[name].attrs.get("provenance"):
            stepped = with_provenance(out[name], step, params, inputs)
            variable = out.variables[name].copy(deep=False)
            variable.attrs = {**variable.attrs, "provenance": stepped.attrs["provenance"]}
            out[name] = variable
    primary = out.attrs.get("primary")
    if out.attrs.get("provenance"):
        history = provenance(out)
    elif primary in out.data_vars:
        history = provenance(out[primary])[:-1]
    else:
        history = []
    return with_provenance(out, step, params, inputs, history=history)


def cell_state_name(result: xr.Dataset | xr.DataArray) -> str:
    """The name of the cell-state coordinate: ``cell_state`` on a result whose ``state`` is its
    own dim (states of charge, :func:`attach_cycler_states`), else ``state``."""
    return "cell_state" if "cell_state" in result.coords else "state"


def attach_cycler_states(
    result: xr.Dataset,
    start_times: Sequence[Any],
    log: Any,
    *,
    dim: str = "state",
    start: Any = None,
    timezone: Any = None,
) -> xr.Dataset:
    """A result over separate acquisitions (e.g. one TOF-SIMS map per state of charge) with the
    cell's state at each, from a cycler log: :func:`attach_cycler` on their acquisition times.

    Parameters
    ----------
    result : xarray.Dataset
        With the dim ``dim`` (one entry per acquisition).
    start_times : sequence of str or datetime
        Each acquisition's time (ISO 8601; e.g. an imzML file's ``startTimeStamp``), taken as the
        time the cell's state is read at (a state of charge is held while it is imaged).
    log, start, timezone
        As for :func:`attach_cycler` (``start``: the log's zero when it has none).

    Returns
    -------
    xarray.Dataset
        ``result`` with the coordinates ``cell_voltage`` (V), ``cell_current`` (mA), ``charge``
        (mAh), ``cell_state`` (int8 flags, as :func:`attach_cycler`'s ``state``) and
        ``cycler_time`` (s) on ``dim``, the attributes ``start_time`` (the first acquisition's)
        and ``timeline`` and a provenance step. Acquisitions outside the log get NaN (warned).

    Raises
    ------
    InputError
        A start time missing or not ISO 8601, fewer times than entries of ``dim``, no
        acquisition within the log.
    """
    n = result.sizes.get(dim)
    if n is None:
        raise DimensionError(f"the result has no {dim!r} dim to attach the cell's state to")
    times = list(start_times)
    if len(times) != n:
        raise InputError(f"{len(times)} acquisition time(s) for {n} {dim}s; give one per {dim}")
    parsed = []
    for k, value in enumerate(times):
        if value in (None, ""):
            raise InputError(f"{dim} {k} has no acquisition time (its file records none); the cell's state at each "
                             f"{dim} needs the time it was taken")
        parsed.append(parse_time(value, f"the acquisition time of {dim} {k}"))
    seconds = [seconds_between(parsed[0], t, f"the acquisition times of {dim} 0 and {k}", timezone=timezone)
               for k, t in enumerate(parsed)]
    series = xr.DataArray(np.zeros(n), dims="time", attrs={"start_time": iso(parsed[0])},
                          coords={"time": ("time", np.asarray(seconds), {"units": "s", "frame_reference": "mid"})})
    timed = attach_cycler(series, log, start=start, timezone=timezone, noun=dim)
    coords = {("cell_state" if name == "state" else name): ((dim,), np.atleast_1d(timed[name].values), timed[name].attrs)
              for name in ("cell_voltage", "cell_current", "charge", "state", "cycler_time")}
    out = result.drop_vars([c for c in coords if c in result.variables]).assign_coords(coords)
    out.attrs = {**result.attrs, "start_time": timed.attrs["start_time"], "timeline": timed.attrs["timeline"]}
    step = provenance(timed)[-1]
    return append_step(out, step["step"], step["params"], [])


def timeline_summary(result: xr.Dataset | xr.DataArray) -> dict[str, Any]:
    """Plain JSON of a result of :func:`attach_cycler`: its ``timeline`` record and per frame
    ``time_s`` (the time coordinate, when there is one), ``cycler_time_s``, ``cell_voltage_V``,
    ``cell_current_mA``, ``charge_mAh``, ``state`` (names); NaN as None."""
    if "timeline" not in result.attrs:
        raise InputError("the result has no cell timeline (attach_cycler was not run on it)")
    record = json.loads(result.attrs["timeline"])
    names = dict(zip(STATE_FLAGS["flag_values"], STATE_FLAGS["flag_meanings"].split()))
    per_frame = {
        "cycler_time_s": np.atleast_1d(result["cycler_time"].values).tolist(),
        "cell_voltage_V": np.atleast_1d(result["cell_voltage"].values).tolist(),
        "cell_current_mA": np.atleast_1d(result["cell_current"].values).tolist(),
        "charge_mAh": np.atleast_1d(result["charge"].values).tolist(),
        "state": [names.get(int(s), str(int(s))) for s in np.atleast_1d(result[cell_state_name(result)].values)],
    }
    if "time" in result.coords and result["time"].ndim == 1 and not np.issubdtype(result["time"].dtype, np.datetime64):
        per_frame = {"time_s": _seconds(result["time"], "the time coordinate").tolist(), **per_frame}
    return plain_json({**record, **per_frame})
