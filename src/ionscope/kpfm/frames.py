"""KPFM frames in: read, checked for one scan size, split from a series, put in time order.

The first steps of :func:`~ionscope.kpfm.workflow.process_frames`: the inputs (paths, Datasets,
or one ``(time, y, x)`` series such as a Zarr store) as frames in the readers' data model
(:mod:`ionscope.kpfm.channels`), checked to be of one scan size and range, put in time order by
their ``start_time``, with the time (s) of every scan row; and the traces of all frames stacked
as float64 ``(time, y, x)`` arrays - numpy, or dask (nothing read) for a dask-backed series.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from ionscope.data import axis_calibration
from ionscope.errors import InputError
from ionscope.kpfm.channels import channel_table, trace_from
from ionscope.kpfm.timeline import parse_time, seconds_between
from ionscope.units import require_length_to_nm

__all__ = [
    "read_frames",
    "order_frames",
]


def read_frames(frames: Any, *, lazy: bool = False) -> tuple[list[xr.Dataset], list[Any]]:
    """The frames as Datasets, and what identifies each input (a path, or the Dataset):
    :func:`ionscope.io.open_inputs`.

    Parameters
    ----------
    frames : sequence of xarray.Dataset or paths
        KPFM frames in the readers' data model (:mod:`ionscope.kpfm.channels`); paths are read
        with :func:`ionscope.io.open_dataset`.
    lazy : bool
        Open paths lazily (dask-backed; e.g. a Zarr series).

    Raises
    ------
    InputError
        No frames, or an item that is neither a Dataset nor a path.
    """
    from ionscope.io import open_inputs

    return open_inputs(frames, "KPFM frame", lazy=lazy)


def _name(frame: xr.Dataset, index: int) -> str:
    src = frame.attrs.get("source_file")
    return f"frame {index} ({Path(str(src)).name})" if src else f"frame {index}"


def _geometry(frame: xr.Dataset, index: int) -> tuple[tuple[int, int], tuple[float, float]]:
    """Shape (ny, nx) and pixel size (dy, dx) in nm of a frame."""
    table = channel_table(frame)
    if not table:
        raise InputError(f"{_name(frame, index)} holds no (y, x) image channel (variables: "
                         f"{list(frame.data_vars)})")
    var = frame[next(iter(next(iter(table.values())).values()))]
    shape = (int(var.sizes["y"]), int(var.sizes["x"]))
    if min(shape) < 8:
        raise InputError(f"{_name(frame, index)} is {shape[0]} x {shape[1]} px; KPFM processing needs at least 8 x 8")
    pixel = []
    for dim in ("y", "x"):
        if dim not in frame.coords:
            raise InputError(f"{_name(frame, index)} has no {dim} coordinate in nm; the readers give one")
        _, step, unit = axis_calibration(var, dim)
        pixel.append(abs(step) * require_length_to_nm(unit, f"the {dim} axis of {_name(frame, index)}"))
    return shape, (pixel[0], pixel[1])


def _scan_range(frame: xr.Dataset) -> np.ndarray | None:
    value = frame.attrs.get("scan_range_nm")
    if value is None:
        return None
    try:
        return np.atleast_1d(np.asarray(value, dtype=np.float64))
    except (TypeError, ValueError):
        return None


def _check_series(frames: list[xr.Dataset]) -> tuple[tuple[int, int], tuple[float, float]]:
    shape0, pixel0 = _geometry(frames[0], 0)
    range0 = _scan_range(frames[0])
    for i, frame in enumerate(frames[1:], start=1):
        shape, pixel = _geometry(frame, i)
        if shape != shape0:
            raise InputError(f"{_name(frame, i)} is {shape[0]} x {shape[1]} px but {_name(frames[0], 0)} is "
                             f"{shape0[0]} x {shape0[1]} px; a series must be scanned with one size")
        rng = _scan_range(frame)
        if not np.allclose(pixel, pixel0, rtol=1e-3) or (
                rng is not None and range0 is not None and (rng.shape != range0.shape or not np.allclose(rng, range0, rtol=1e-3))):
            what = (f"{rng.tolist()} nm vs {range0.tolist()} nm" if rng is not None and range0 is not None
                    else f"pixels {pixel[0]:.4g} x {pixel[1]:.4g} nm vs {pixel0[0]:.4g} x {pixel0[1]:.4g} nm")
            raise InputError(f"{_name(frame, i)} has another scan range than {_name(frames[0], 0)} ({what}); "
                             "a series must be scanned with one size")
    return shape0, pixel0


def _series_frames(frames: list[xr.Dataset], sources: list[Any]
                   ) -> tuple[list[xr.Dataset], list[Any], xr.Dataset | None]:
    """One series Dataset (channels (time, y, x), e.g. a Zarr store) as its frames, each a view
    of it (nothing read): ``start_time`` the series' start plus its ``time`` coordinate (s), else
    ``series_time_s``; ``row_time`` (y) s from the frame's start, from a ``row_time`` (time, y)
    coordinate in s from the series' start; ``scan_direction`` from a ``scan_directions`` list.
    Frames given one by one pass through (series None)."""
    timed = [f for f in frames if any(set(v.dims) == {"time", "y", "x"} for v in f.data_vars.values())]
    if not timed:
        return frames, sources, None
    if len(frames) > 1:
        raise InputError(f"{len(timed)} of the {len(frames)} inputs are series (a time dim); give one series, or "
                         "frames one by one")
    series = frames[0]
    from ionscope.units import time_to_s

    if "time" in series.coords and not np.issubdtype(series["time"].dtype, np.datetime64):
        t = np.asarray(series["time"].values, dtype=np.float64) * (time_to_s(series["time"].attrs.get("units", "s"))
                                                                   or 1.0)
    else:
        t = np.zeros(series.sizes["time"]) if series.sizes["time"] == 1 else None
    if t is None:
        raise InputError("the series has no time coordinate in s from its start; give its frames one by one")
    start = series.attrs.get("start_time")
    first = parse_time(start, "the series' start_time") if start not in (None, "") else None
    directions = series.attrs.get("scan_directions")
    source = str(series.attrs.get("source_file") or "the series")
    out = []
    for k in range(series.sizes["time"]):
        frame = series.isel(time=k).drop_vars("time", errors="ignore")
        attrs = {key: v for key, v in series.attrs.items() if key not in ("scan_directions", "provenance")}
        if first is not None:
            attrs["start_time"] = (first + dt.timedelta(seconds=float(t[k]))).isoformat()
        else:
            attrs.pop("start_time", None)
            attrs["series_time_s"] = float(t[k])
        if isinstance(directions, (list, tuple, np.ndarray)) and len(directions) == len(t):
            attrs["scan_direction"] = str(directions[k])
        attrs["source_file"] = f"{source}, frame {k}"
        if "row_time" in series.coords and series["row_time"].dims == ("time", "y"):
            factor = time_to_s(series["row_time"].attrs.get("units", "s")) or 1.0
            frame = frame.assign_coords(row_time=("y", frame["row_time"].data * factor - t[k], {"units": "s"}))
        frame.attrs = attrs
        out.append(frame)
    return out, sources, series


def order_frames(frames: list[xr.Dataset]) -> tuple[list[int], list[dt.datetime | None], np.ndarray]:
    """Time order of frames from their ``start_time`` attrs.

    Returns
    -------
    order : list of int
        Indices of the frames in time order.
    starts : list of datetime or None
        Their start times (in that order).
    times : numpy.ndarray
        Start of each (ordered) frame in s from the first one's start. Frames without any
        ``start_time`` are ordered by their ``series_time_s`` (frames of a series without a start,
        :func:`~ionscope.kpfm.workflow.process_frames`), else keep their order and follow each
        other by their ``acquisition_time_s``.

    Raises
    ------
    InputError
        Some frames have a start time and others do not, or a start time is not ISO 8601.
    """
    has = [f.attrs.get("start_time") not in (None, "") for f in frames]
    if any(has) and not all(has):
        missing = [_name(f, i) for i, f in enumerate(frames) if not has[i]]
        raise InputError(f"{', '.join(missing)} has no start_time while other frames do; the series cannot be put "
                         "in time order")
    if all(has):
        starts = [parse_time(f.attrs["start_time"], f"the start_time of {_name(f, i)}") for i, f in enumerate(frames)]
        for s in starts[1:]:
            seconds_between(starts[0], s, "frame start times")
        order = sorted(range(len(frames)), key=lambda i: seconds_between(starts[0], starts[i]))
        ordered = [starts[i] for i in order]
        times = np.array([seconds_between(ordered[0], s) for s in ordered])
        return order, ordered, times
    if all(f.attrs.get("series_time_s") is not None for f in frames):  # split from a series without a start
        times = np.array([float(f.attrs["series_time_s"]) for f in frames])
        order = sorted(range(len(frames)), key=lambda i: times[i])
        return order, [None] * len(frames), times[order] - times[order[0]]
    durations = [float(f.attrs.get("acquisition_time_s", np.nan)) for f in frames]
    times = np.concatenate([[0.0], np.cumsum(durations[:-1])]) if len(frames) > 1 else np.zeros(1)
    return list(range(len(frames))), [None] * len(frames), times


def _row_times(frame: xr.Dataset, ny: int, coord: xr.DataArray | None = None) -> np.ndarray:
    """Row times (s from the frame start): the ``row_time`` coordinate (``coord``: it, read
    already), else from ``acquisition_time_s`` and ``scan_direction``, else NaN."""
    if "row_time" in frame.coords and frame["row_time"].dims == ("y",):
        coord = frame["row_time"] if coord is None else coord
        values = np.asarray(coord.values, dtype=np.float64)
        from ionscope.units import time_to_s

        factor = time_to_s(coord.attrs.get("units", "s")) or 1.0
        return values * factor
    total = frame.attrs.get("acquisition_time_s")
    if total is None:
        return np.full(ny, np.nan)
    rows = (np.arange(ny) + 0.5) * float(total) / ny
    return rows[::-1] if str(frame.attrs.get("scan_direction", "down")).lower() == "up" else rows


def _trace_stack(frames: list[xr.Dataset], series: xr.Dataset | None, order: list[int],
                 specs: list[list[tuple[str, float]]], lazy: bool) -> Any:
    """The traces of every frame (``specs``: per frame the variables and their factors,
    :func:`~ionscope.kpfm.channels.trace_variables`) as a float64 stack (n, y, x), converted as
    :func:`~ionscope.kpfm.channels.trace` converts them: numpy, or dask (nothing read) when
    ``lazy`` - over the series' own time chunks when the frames were split from one."""
    if not lazy:
        return np.stack([trace_from(frame, spec) for frame, spec in zip(frames, specs)])
    import dask.array as da

    def lazy_trace(arrays: list[Any], factors: list[float]) -> Any:
        parts = [da.asarray(a).astype(np.float64) * f for a, f in zip(arrays, factors)]
        return parts[0] if len(parts) == 1 else 0.5 * (parts[0] + parts[1])

    if series is not None and all(spec == specs[0] for spec in specs):
        arrays = []
        for name, _ in specs[0]:
            a = da.asarray(series[name].transpose("time", "y", "x").data)
            arrays.append(a if order == list(range(len(order))) else a[np.asarray(order)])
        return lazy_trace(arrays, [f for _, f in specs[0]])
    return da.stack([lazy_trace([frame[name].transpose("y", "x").data for name, _ in spec], [f for _, f in spec])
                     for frame, spec in zip(frames, specs)])
