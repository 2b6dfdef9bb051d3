"""KPFM workflows: the chains a user runs, as library functions.

``ionscope kpfm process``, ``ionscope kpfm particles`` and ``ionscope kpfm profile`` (and the demo)
call these and add nothing but argument parsing and printing (:doc:`/cli`,
:doc:`/guide/kpfm`).

- :func:`process_frames`: KPFM frames (one field of view, any order) -> the potential channel and
  its sign -> line offsets and frame offset removed on the grounded collector (never a plane fit)
  -> drift registration onto the first frame's grid -> optional PSF deconvolution -> a
  ``(time, y, x)`` potential series with per-row times, noise, resolution and, with a cycler log,
  the cell's voltage, current and charge for every frame and every row.
- :func:`~ionscope.kpfm.analysis.find_particles` and :func:`~ionscope.kpfm.analysis.profile_frames`
  (in :mod:`ionscope.kpfm.analysis`): the particles and the interface profiles of a processed
  series.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import math
import time as _time
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from ionscope.data import axis_calibration, jsonable, plain_json, provenance, with_provenance
from ionscope.errors import ConfigError, InputError, IonscopeWarning
from ionscope.kpfm.channels import (
    SAMPLE_POTENTIAL_SIGN, channel_table, choose_channel, choose_topography, sample_potential_kernel,
    sign_convention_text, trace_variables,
)
from ionscope.register.stack import frame_shifts_kernel, shift_frame_kernel
from ionscope.kpfm.level import (
    edge_profile_kernel, find_reference_kernel, flat_noise_kernel, level_topography_kernel, parse_box,
    reference_kernel, step_width_kernel, trace_noise_kernel,
)
from ionscope.kpfm.psf import PSF, fit_edge_kernel, wiener_deconvolve_kernel
from ionscope.kpfm.timeline import cycler_arrays, interpolate_kernel, parse_time, seconds_between
from ionscope.units import require_length_to_nm
from ionscope.validation import Interval, Options, described, validate_params

__all__ = [
    "read_frames",
    "order_frames",
    "reference_box",
    "estimate_psf",
    "process_frames",
    "difference_maps",
]


# --------------------------------------------------------------------------- frames in


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
        :func:`process_frames`), else keep their order and follow each other by their
        ``acquisition_time_s``.

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


# --------------------------------------------------------------------------- reference and PSF


def _box_edge(box: Sequence[int], shape: Sequence[int]) -> str | None:
    """The image edge a box lies along and crosses from end to end (None if none)."""
    y0, y1, x0, x1 = box
    ny, nx = shape
    if y0 == 0 and y1 == ny and x0 == 0 and x1 < nx:
        return "left"
    if y0 == 0 and y1 == ny and x1 == nx and x0 > 0:
        return "right"
    if x0 == 0 and x1 == nx and y0 == 0 and y1 < ny:
        return "top"
    if x0 == 0 and x1 == nx and y1 == ny and y0 > 0:
        return "bottom"
    return None


def reference_box(image: np.ndarray, reference: Any = "auto") -> tuple[tuple[int, int, int, int], dict[str, Any]]:
    """The equipotential reference box of a potential map: found (``"auto"``: the flattest band
    along an image edge, :func:`ionscope.kpfm.level.find_reference_kernel`) or given
    (``"Y0:Y1,X0:X1"`` or ``(y0, y1, x0, x1)``, half-open pixels).

    Returns
    -------
    box : (y0, y1, x0, x1)
    info : dict
        ``how`` (a description), ``edge`` (the image edge it lies along, or None).

    Raises
    ------
    ConfigError
        A box outside the image or unreadable.
    InputError
        ``auto`` found no flat band.
    """
    shape = np.shape(image)
    if isinstance(reference, str) and reference.strip().lower() == "auto":
        box, info = find_reference_kernel(image)
        return box, {"how": f"auto: the flattest band along the {info['edge']} edge ({info['width_px']} px wide)",
                     "edge": info["edge"]}
    box = parse_box(reference, shape)
    return box, {"how": f"given box {box[0]}:{box[1]},{box[2]}:{box[3]}", "edge": _box_edge(box, shape)}


def _moved_box(box: Sequence[int], shift: Sequence[float], shape: Sequence[int]) -> tuple[int, int, int, int] | None:
    """The box of the first frame's grid in a frame registered by ``shift`` (its content lies at
    ``r - shift`` there), clipped to the image; None when nothing is left."""
    y0, y1, x0, x1 = box
    sy, sx = int(round(shift[0])), int(round(shift[1]))
    ny, nx = shape
    out = (max(0, y0 - sy), min(ny, y1 - sy), max(0, x0 - sx), min(nx, x1 - sx))
    return out if out[1] > out[0] and out[3] > out[2] else None


def _edge_length(box: Sequence[int], edge: str, shape: Sequence[int]) -> int:
    width = (box[3] - box[2]) if edge in ("left", "right") else (box[1] - box[0])
    size = shape[1] if edge in ("left", "right") else shape[0]
    return int(min(max(3 * width, 32), size - width - 1))


@described("'none', 'auto', a Gaussian sigma > 0 nm, a PSF, or a dict of core_sigma_nm, tail_weight, tail_sigma_nm")
def _psf_spec(value: Any) -> bool:
    if value is None or isinstance(value, (PSF, dict)):
        return True
    if isinstance(value, str):
        key = value.strip().lower()
        if key in ("none", "auto"):
            return True
        try:
            value = float(key)
        except ValueError:
            return False
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) and value > 0


def estimate_psf(image: np.ndarray, box: Sequence[int], edge: str | None, pixel_nm: Sequence[float], *,
                 profile: tuple[Sequence[float], Sequence[float], int] | None = None) -> dict[str, Any]:
    """Estimate the PSF from a sharp edge of a referenced potential map.

    Parameters
    ----------
    image : numpy.ndarray (y, x)
        Referenced potential (V) of one frame.
    box : (y0, y1, x0, x1)
        The reference band (the grounded collector); the edge is its inner boundary.
    edge : {"left", "right", "top", "bottom"} or None
        The image edge the band lies along.
    pixel_nm : (float, float)
        Pixel size (dy, dx) in nm.
    profile : ((y, x), (y, x), width), optional
        A profile across another sharp step instead: start and end (px) and band width (px).

    Returns
    -------
    dict
        ``psf`` (:class:`~ionscope.kpfm.psf.PSF` in x pixels), ``psf_nm`` (its parameters in nm),
        ``errors_nm``, ``edge`` (what was fitted), ``chi2_reduced``, ``tail``.

    Raises
    ------
    ConfigError
        No edge to fit (a box not along an image edge and no ``profile``).

    Notes
    -----
    The tail's weight and width trade off against each other unless the profile sees the tail
    flatten out on both sides: the band and the clean strip beyond its edge should each be at
    least about two tail SDs wide. On the test frames (a 24 px collector, a 12 px tail) the tail
    comes out within about 25 % and deconvolution with it lowers the error by 40 %, against 43 %
    with the true PSF; with a 16 px collector an over-estimated tail can cost most of the gain.
    Static structure next to the edge (grains of the electrolyte, particles within reach of the
    tail) biases the tail more than noise does.
    """
    dy, dx = (float(v) for v in pixel_nm)
    if profile is not None:
        from ionscope.profiles import band_samples, band_statistics

        start, end, width = profile
        samples, step_nm = band_samples(np.asarray(image, dtype=np.float64), start, end, int(width), spacing=(dy, dx))
        stats = band_statistics(samples)
        distance = np.arange(samples.shape[1]) * step_nm / dx  # in x pixels
        values = stats["mean"]
        where = f"profile {tuple(start)} -> {tuple(end)}, {int(width)} lines"
    else:
        if edge is None:
            raise ConfigError("psf='auto' fits the edge of the reference band, but the reference box does not lie along "
                              "an image edge; give the reference as 'auto' or a band along an edge, a profile across "
                              "a sharp step (psf_edge), or the PSF sigma in nm")
        length = _edge_length(box, edge, np.shape(image))
        distance, values = edge_profile_kernel(image, box, edge, length)
        if edge in ("top", "bottom"):
            distance = distance * dy / dx
        where = f"inner side of the {edge} reference band ({len(values)} px profile)"
    fit = fit_edge_kernel(distance, values)
    psf = fit["psf"]
    errors = fit["errors"]
    return {"psf": psf, "psf_nm": psf.to_nm(dx),
            "errors_nm": {"core_sigma_nm": errors["core_sigma_px"] * dx, "tail_weight": errors["tail_weight"],
                          "tail_sigma_nm": errors["tail_sigma_px"] * dx},
            "edge": where, "chi2_reduced": fit["chi2_reduced"], "tail": fit["tail"]}


def _resolution(image: np.ndarray, box: Sequence[int], edge: str | None, pixel_nm: Sequence[float]) -> float:
    """10-90 % width (nm) of the reference band's edge (NaN without an edge or a step)."""
    if edge is None:
        return float("nan")
    d, prof = edge_profile_kernel(image, box, edge, _edge_length(box, edge, np.shape(image)))
    width = step_width_kernel(d, prof)["width"]
    return float(width * (pixel_nm[1] if edge in ("left", "right") else pixel_nm[0]))


#: Reference bands whose edge profile crosses the scan lines (the fast axis is x).
_ACROSS_LINES = ("top", "bottom")


def _line_offset_sd(image: np.ndarray, box: Sequence[int], noise: float) -> float:
    """RMS over all rows (V) of the line offsets that referencing leaves in a frame, for the
    Wiener filter's noise model: rows crossing the box keep the error of their median there
    (``noise sqrt(pi / 2 / columns)``); the other rows keep their whole offset, whose SD is
    estimated from the spread of the box rows' medians (less that error)."""
    y0, y1, x0, x1 = (int(b) for b in box)
    ny = np.shape(image)[0]
    residual2 = noise**2 * math.pi / 2 / max(x1 - x0, 1)
    inside = y1 - y0
    if inside >= ny:
        return math.sqrt(residual2)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        medians = np.nanmedian(np.asarray(image, dtype=np.float64)[y0:y1, x0:x1], axis=1)
    medians = medians[np.isfinite(medians)]
    if medians.size < 3:
        return math.sqrt(residual2)
    # robust SD of the offsets (a row crossing a blurred neighbour must not inflate it)
    spread = 1.4826 * float(np.median(np.abs(medians - np.median(medians))))
    offset2 = max(spread**2 - residual2, 0.0)
    return math.sqrt((inside * residual2 + (ny - inside) * offset2) / ny)


# --------------------------------------------------------------------------- every frame's steps


def _median(values: np.ndarray) -> float:
    """The median of the finite values (NaN when there are none)."""
    values = np.asarray(values, dtype=np.float64)
    return float(np.nanmedian(values)) if np.isfinite(values).any() else float("nan")


def _listed(values: Any) -> Any:
    """A per-frame array for the summary: a list, or the dask array (computed when it is written)."""
    return values.tolist() if isinstance(values, np.ndarray) else values


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


def trace_from(frame: xr.Dataset, spec: list[tuple[str, float]]) -> np.ndarray:
    """:func:`~ionscope.kpfm.channels.trace` of the variables ``spec`` names."""
    arrays = [np.asarray(frame[name].transpose("y", "x").values, dtype=np.float64) * factor for name, factor in spec]
    return arrays[0] if len(arrays) == 1 else 0.5 * (arrays[0] + arrays[1])


@dataclasses.dataclass
class _FrameSteps:
    """What :func:`process_frames` does to each frame once the first frame is known: the sign,
    the referencing (the box moved with the drift, or found again), the registration onto the
    first frame's guide, the noise, the Wiener deconvolution, the resampling onto the first
    frame's grid, the row times and the cell's state. Called on all frames at once (in memory)
    or on one time chunk at a time (dask): the same numbers either way."""

    bias_on: str
    channel: str
    box: tuple[int, int, int, int]
    auto: bool
    edge: str | None
    align: bool
    use_topo: bool
    guide0: np.ndarray | None
    mask: np.ndarray | None
    upsample: int
    max_shift_fraction: float
    least: float
    on: str
    names: list[str]
    psf: PSF | None
    balance: float
    aspect: float
    noise_fallback: float | None  # None: the median over the frames given (all of them, in memory)
    row_times: np.ndarray  # (n, y) s from each frame's start
    times: np.ndarray  # (n,) frame starts
    log: dict[str, Any] | None
    offset: float

    def __call__(self, stacks: dict[str, np.ndarray], k0: int) -> dict[str, np.ndarray]:
        traces = np.asarray(stacks["potential"])
        m, ny, nx = traces.shape
        frames = range(k0, k0 + m)
        raw = np.empty((m, ny, nx))
        for j, k in enumerate(frames):
            raw[j] = sample_potential_kernel(traces[j], self.bias_on)
            if not np.isfinite(raw[j]).any():
                raise InputError(f"{self.names[k]} holds no finite {self.channel} values (all NaN); leave it out of "
                                 "the series")
        referenced = np.stack([reference_kernel(raw[j], self.box)[0] for j in range(m)])
        shifts = np.zeros((m, 2))
        match = np.full(m, np.nan)
        if k0 == 0:
            match[0] = 1.0
        if self.align:
            if self.use_topo:
                topo = np.asarray(stacks["topography"])
                images = np.stack([level_topography_kernel(topo[j]) for j in range(m)])
            else:
                images = referenced
            lead = 0 if k0 == 0 else 1  # registered onto the first frame's guide, also in later chunks
            if lead:
                images = np.concatenate([self.guide0[None], images])
            found, matched = frame_shifts_kernel(images, upsample=self.upsample, mask=self.mask)
            shifts, match = found[lead:], matched[lead:]
            for j, k in enumerate(frames):
                if k == 0:
                    continue
                if abs(shifts[j, 0]) > self.max_shift_fraction * ny or abs(shifts[j, 1]) > self.max_shift_fraction * nx:
                    raise InputError(f"{self.names[k]} is shifted by ({shifts[j, 0]:.1f}, {shifts[j, 1]:.1f}) px from "
                                     f"{self.names[0]}, more than {self.max_shift_fraction:.0%} of the field: the "
                                     "frames are not of one field of view")
                if not (match[j] >= self.least):
                    raise InputError(f"{self.names[k]} does not match {self.names[0]} after registration (edge "
                                     f"correlation {match[j]:.2f} < {self.least:g} on the {self.on}): the frames are "
                                     "not of one field of view")
        boxes = []
        for j, k in enumerate(frames):
            if k == 0:
                boxes.append(self.box)
                continue
            moved = _moved_box(self.box, shifts[j], (ny, nx))
            if self.auto:  # the collector found again in this frame, along the same edge (as wide as it is here)
                try:
                    moved = find_reference_kernel(raw[j], edges=(self.edge,))[0]
                except InputError:
                    pass
            if moved is None:
                raise InputError(f"in {self.names[k]} the reference region has drifted out of the field; give a "
                                 "reference box further inside")
            boxes.append(moved)
            if moved != tuple(self.box):
                referenced[j] = reference_kernel(raw[j], moved)[0]
        # noise of the trace used: the reference region; the forward - backward difference
        noise = np.array([flat_noise_kernel(referenced[j], boxes[j]) for j in range(m)])
        trace_noise = np.full(m, np.nan)
        if "forward" in stacks:
            fwd, bwd = np.asarray(stacks["forward"]), np.asarray(stacks["backward"])
            trace_noise = np.array([trace_noise_kernel(fwd[j], bwd[j]) for j in range(m)])
        out = {"shifts": shifts, "match": match, "noise": noise, "trace_noise": trace_noise}
        out["potential_raw"] = self._onto_grid(referenced, shifts)
        if self.psf is not None:
            fallback = self.noise_fallback if self.noise_fallback is not None else _median(noise)
            if not np.isfinite(fallback) or fallback <= 0:
                raise InputError("the noise of the reference region could not be measured; deconvolution needs it "
                                 "(give a larger reference box)")
            deconvolved = np.empty_like(referenced)
            for j in range(m):
                nk = noise[j] if np.isfinite(noise[j]) and noise[j] > 0 else fallback
                y0, y1, x0, x1 = boxes[j]
                row_sd = _line_offset_sd(raw[j], boxes[j], nk)
                d = wiener_deconvolve_kernel(referenced[j], self.psf, nk, balance=self.balance, aspect=self.aspect,
                                             row_noise_sd=row_sd)
                deconvolved[j] = d - np.nanmedian(d[y0:y1, x0:x1])
            out["potential"] = self._onto_grid(deconvolved, shifts)
        # row times on the first frame's grid: row r of the grid was scanned in frame k at raw row r - shift_y
        rows = np.arange(ny, dtype=np.float64)
        row_time = np.empty((m, ny))
        covered = np.empty((m, ny), dtype=bool)  # grid rows the frame scanned (not extrapolated)
        for j, k in enumerate(frames):
            rt = self.row_times[k]
            at = rows - shifts[j, 0]
            covered[j] = (at >= -0.5) & (at <= ny - 0.5)
            inner = np.interp(at, rows, rt)
            slope_lo = rt[1] - rt[0] if ny > 1 else 0.0
            slope_hi = rt[-1] - rt[-2] if ny > 1 else 0.0
            inner = np.where(at < 0, rt[0] + at * slope_lo, inner)
            inner = np.where(at > ny - 1, rt[-1] + (at - (ny - 1)) * slope_hi, inner)
            row_time[j] = self.times[k] + inner
        out["row_time"], out["covered"] = row_time, covered
        if self.log is not None:  # the cell's state at every row, and its mean over the frame's rows
            t_log = row_time + self.offset
            # mA and mAh, as the shared timeline (ionscope.timeline) and the cycler logs (io.load_cycler)
            for key, name in (("v", "voltage_V"), ("i", "current_mA"), ("q", "charge_mAh")):
                out["row_" + key] = interpolate_kernel(self.log["time_s"], self.log[name], t_log)
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", RuntimeWarning)
                    out["cell_" + key] = np.nanmean(out["row_" + key], axis=1)
        return out

    def _onto_grid(self, stack: np.ndarray, shifts: np.ndarray) -> np.ndarray:
        """Resampled onto the first frame's grid (float32); the reference median is 0 there."""
        out = np.empty(stack.shape, dtype=np.float32)
        y0, y1, x0, x1 = self.box
        for j in range(stack.shape[0]):
            out[j] = shift_frame_kernel(stack[j].astype(np.float32), shifts[j]) if shifts[j].any() else stack[j]
            part = out[j, y0:y1, x0:x1]
            if np.isfinite(part).any():
                out[j] -= np.float32(np.nanmedian(part))
        return out


#: The outputs of :class:`_FrameSteps`: (trailing shape as a function of (y, x), dtype).
_OUTPUTS = {
    "potential_raw": (lambda ny, nx: (ny, nx), np.float32), "potential": (lambda ny, nx: (ny, nx), np.float32),
    "shifts": (lambda ny, nx: (2,), np.float64), "match": (lambda ny, nx: (), np.float64),
    "noise": (lambda ny, nx: (), np.float64), "trace_noise": (lambda ny, nx: (), np.float64),
    "row_time": (lambda ny, nx: (ny,), np.float64), "covered": (lambda ny, nx: (ny,), bool),
    **{f"row_{k}": (lambda ny, nx: (ny,), np.float64) for k in "viq"},
    **{f"cell_{k}": (lambda ny, nx: (), np.float64) for k in "viq"},
}


def _lazy_steps(steps: _FrameSteps, stacks: dict[str, Any], shape: tuple[int, int]) -> dict[str, Any]:
    """:class:`_FrameSteps` mapped over the time chunks of dask stacks: every output a dask array
    (time, ...), one task per chunk, nothing computed."""
    import dask
    import dask.array as da

    ny, nx = shape
    chunks = stacks["potential"].chunks[0]
    blocks = {k: v.rechunk({0: chunks, 1: -1, 2: -1}).to_delayed().ravel() for k, v in stacks.items()}
    call = dask.delayed(steps, pure=True)
    keys = [k for k in _OUTPUTS if (k != "potential" or steps.psf is not None)
            and (not k.startswith(("row_v", "row_i", "row_q", "cell_")) or steps.log is not None)]
    parts: dict[str, list[Any]] = {k: [] for k in keys}
    k0 = 0
    for i, m in enumerate(chunks):
        result = call({k: b[i] for k, b in blocks.items()}, k0)
        for k in keys:
            tail, dtype = _OUTPUTS[k]
            parts[k].append(da.from_delayed(result[k], (m, *tail(ny, nx)), dtype=dtype))
        k0 += m
    return {k: da.concatenate(v) if len(v) > 1 else v[0] for k, v in parts.items()}


# --------------------------------------------------------------------------- process


@validate_params({
    "direction": [Options({"forward", "backward", "mean"})],
    "align": [bool],
    "align_on": [Options({"auto", "topography", "potential"})],
    "psf": [_psf_spec],
    "bias_on": [Options({"sample", "tip"}), None],
    "upsample": [Interval(int, 1, 1000)],
    "balance": [Interval(float, 0, None, closed="neither")],
    "max_shift_fraction": [Interval(float, 0, 0.9, closed="neither")],
    "min_match": [Interval(float, -1, 1), None],
})
def process_frames(
    frames: Any,
    *,
    channel: str | None = None,
    direction: str = "forward",
    reference: Any = "auto",
    align: bool = True,
    align_on: str = "auto",
    psf: Any = "none",
    psf_edge: tuple | None = None,
    bias_on: str | None = None,
    cycler: Any = None,
    start: Any = None,
    timezone: Any = None,
    upsample: int = 50,
    balance: float = 1.0,
    max_shift_fraction: float = 0.25,
    min_match: float | None = None,
    lazy: bool = False,
) -> tuple[xr.Dataset, dict[str, Any]]:
    """A KPFM frame series -> referenced, registered (optionally deconvolved) potential maps: the
    chain of ``ionscope kpfm process``.

    Parameters
    ----------
    frames : sequence of xarray.Dataset or paths, or one series
        Frames of one field of view in the readers' data model (:mod:`ionscope.kpfm.channels`),
        in any order: they are put in time order by their ``start_time``. Or one series
        Dataset (a path or a Dataset, e.g. a Zarr store) whose channels are (time, y, x), with a
        ``time`` coordinate in s from its ``start_time`` and optionally ``row_time`` (time, y)
        in s from its start and a ``scan_directions`` list. A dask-backed potential channel
        (``lazy``, or chunked Datasets) is processed lazily, time chunk by time chunk.
    channel : str, optional
        The potential channel (``--channel``); default the one channel in V named like the
        Kelvin output (:func:`~ionscope.kpfm.channels.choose_channel`).
    direction : {"forward", "backward", "mean"}
        Trace used (``mean``: the average of both).
    reference : "auto", "Y0:Y1,X0:X1" or (y0, y1, x0, x1)
        The grounded, equipotential region (:func:`reference_box`), in the first frame's
        pixels; its median is 0 V in every frame, and it removes the line offsets of the rows it
        crosses. In later frames it moves with the drift.
    align : bool
        Register every frame onto the first (sub-pixel); else the shifts are 0.
    align_on : {"auto", "topography", "potential"}
        Image the drift is measured on; ``auto``: the topography when the frames have a height
        channel.
    psf : "none", "auto", float, PSF or dict
        Deconvolution: none; a PSF estimated from the reference band's edge (or ``psf_edge``);
        a Gaussian of this sigma (nm); or given (:class:`~ionscope.kpfm.psf.PSF` in x pixels,
        or a dict ``core_sigma_nm``, ``tail_weight``, ``tail_sigma_nm``).
    psf_edge : ((y, x), (y, x), width), optional
        For ``psf="auto"``: a profile (px) across a sharp step to fit instead of the band's edge.
    bias_on : {"sample", "tip"}, optional
        Where the Kelvin bias is applied (the sign convention,
        :data:`~ionscope.kpfm.channels.SAMPLE_POTENTIAL_SIGN`); default the frames' ``bias_on``
        attr, else ``"sample"`` (the recorded value is the sample's potential; the summary says
        it was assumed).
    cycler : Dataset, DataFrame, mapping or path, optional
        Cycler log (:func:`ionscope.timeline.cycler_log`: a file any cycler reader takes, or a
        log in memory): adds the cell voltage,
        current and charge of every row and every frame (the mean over its rows).
    start : str or datetime, optional
        Absolute time (ISO 8601) of the cycler log's zero; default the log's ``start_time``,
        else the first frame's start (recorded as an assumption).
    timezone : str, optional
        Zone (IANA name or offset) of naive times, needed when the frames' start and the log's
        zero are one naive and one with a zone (:func:`ionscope.timeline.seconds_between`); also
        the zone of a cycler file's local start time (:func:`ionscope.io.load_cycler`).
    upsample : int
        Sub-pixel grid of the registration (``1 / upsample`` px).
    balance : float
        Noise weight of the Wiener filter (> 1 smoother).
    max_shift_fraction : float
        A frame shifted by more than this fraction of the field is not of the same field of view.
    min_match : float, optional
        Least edge correlation of a registered frame with the first, away from the reference
        band (:func:`~ionscope.register.stack.frame_shifts_kernel`); below it the frame is not of the
        same field of view. Default 0.5 on the topography (static: the same field gives about
        0.99, another one about 0.3 on the test frames), 0.3 on the potential (which changes
        between frames: 0.55-0.95 against 0.1-0.2).
    lazy : bool
        Open paths lazily (:func:`ionscope.io.open_dataset`): a Zarr series stays on disk and is
        processed chunk by chunk when the result is computed or written.

    Returns
    -------
    result : xarray.Dataset
        ``potential`` (time, y, x) V on the first frame's grid (NaN where a frame does not
        cover), ``potential_raw`` (before deconvolution, when ``psf`` is not none),
        ``topography`` (y, x) nm (the first frame's, levelled, when there is one), ``shift_y_nm``,
        ``shift_x_nm`` (time; the shift applied to each frame, ``registered(r) = frame(r -
        shift)``: the drift is its negative), ``registration_match`` (time); coords ``time`` (s
        from the first frame's start) and ``row_time`` (time, y; s from the first frame's start,
        when each row of the grid was scanned in that frame); with a cycler ``cell_voltage``,
        ``cell_current``, ``charge`` (time) and ``row_cell_voltage``, ``row_cell_current``,
        ``row_charge`` (time, y). Attrs: ``start_time``, ``channel``, ``direction``, ``bias_on``,
        ``sign_convention``, ``reference_box`` [y0, y1, x0, x1], ``reference``,
        ``reference_edge``, ``noise_V``, ``noise_trace_V``, ``psf`` (JSON), ``resolution_nm``,
        ``resolution_raw_nm``, ``scan_directions``, ``cell_change_start_s`` (with a cycler) and
        provenance.
    summary : dict
        Plain JSON (NaN given as None): ``frames``, ``scan_directions``, ``noise_mV`` (white-noise SD of one frame of the trace
        used, before deconvolution, from the reference region), ``noise_trace_mV`` (from the
        forward - backward difference, scaled to the trace used; when both traces exist),
        ``psf_sigma_nm`` (the core, when deconvolving), ``psf``, ``reference_box``,
        ``reference``, ``resolution_nm``, ``resolution_raw_nm``, ``shift_y_nm``, ``shift_x_nm``,
        ``time_s``, ``channel``, ``direction``, ``bias_on``, ``run_time_s``...; and
        ``resolution_note`` (also an attr) when the reference band lies along the top or bottom
        edge: its edge profile then crosses the scan lines and carries their offsets, and
        :func:`find_particles`' ``edge_width_nm`` is the resolution to read.

    Raises
    ------
    InputError
        A missing channel (the message lists the channels), frames of different size or scan
        range, an all-NaN frame, frames not of one field of view, no flat band for ``auto``.
    ConfigError
        A reference box outside the image, a bad option.

    Lazy series: with a dask-backed potential the result's maps and per-frame variables
    (``potential``, ``potential_raw``, ``shift_*``, ``registration_match``, the ``row_time``
    coordinate and the cell's state) are dask arrays, one task per time chunk of the input,
    equal to the in-memory result; the attrs ``noise_V`` and ``noise_trace_V`` (medians over
    all frames) and the summary's per-frame entries are dask objects, computed with the result
    by :func:`ionscope.io.write_result` (or ``dask.compute``). Errors found in a later frame (not
    of one field of view, the reference drifted out) are raised when it is computed. Without a
    measurable noise in a frame's reference region, its deconvolution uses the first frame's
    noise (in memory: the median over the frames). The warning about rows outside the cycler
    log counts the rows on their own times, before registration.

    Computes: in memory, every frame. Lazy: one compute, the stated sample - the first
    frame's traces (potential, height, both traces for the noise) and the ``row_time``
    coordinates (the reference box, the registration guide, the PSF fit and the resolution come
    from it); nothing else until the result is computed.
    """
    t_run = _time.perf_counter()
    frames, sources = read_frames(frames, lazy=lazy)
    frames, sources, series = _series_frames(frames, sources)
    shape, pixel = _check_series(frames)
    order, starts, times = order_frames(frames)
    frames = [frames[i] for i in order]
    if series is None:
        sources = [sources[i] for i in order]
    n = len(frames)
    ny, nx = shape
    dy, dx = pixel

    # the potential channel, its sign, every frame's trace (checked from the metadata only)
    chosen = choose_channel(frames[0], channel)
    for i, frame in enumerate(frames[1:], start=1):
        choose_channel(frame, chosen)
    recorded_bias = {str(f.attrs.get("bias_on")).lower() for f in frames if f.attrs.get("bias_on") is not None}
    if bias_on is None:
        if len(recorded_bias) > 1:
            raise InputError(f"the frames record different bias_on ({', '.join(sorted(recorded_bias))}); give bias_on")
        found = recorded_bias.pop() if recorded_bias else None
        if found is not None and found not in SAMPLE_POTENTIAL_SIGN:
            raise InputError(f"the frames' bias_on attr is {found!r}; expected 'sample' or 'tip' (or give bias_on)")
        bias_used, bias_how = (found, "recorded in the files") if found else ("sample", "assumed (not recorded)")
    else:
        bias_used, bias_how = bias_on, "given"
    potential_vars = [trace_variables(f, chosen, direction) for f in frames]
    topo_name = choose_topography(frames[0])
    if topo_name is not None and not all(topo_name in channel_table(f) for f in frames):
        topo_name = None
    topo_vars = None
    if topo_name is not None:
        topo_vars = []
        for frame in frames:
            traces = channel_table(frame)[topo_name]
            d = direction if direction in traces else ("forward" if "forward" in traces else next(iter(traces)))
            topo_vars.append(trace_variables(frame, topo_name, d))
    traces0 = channel_table(frames[0])[chosen]
    pair_vars = None
    if "forward" in traces0 and "backward" in traces0:  # the forward - backward noise
        pair_vars = [(trace_variables(f, chosen, "forward"), trace_variables(f, chosen, "backward")) for f in frames]
    # a dask-backed potential is processed lazily (the other traces follow it)
    is_lazy = any(frame[name].chunks is not None for frame, spec in zip(frames, potential_vars) for name, _ in spec)
    use_topo = False
    on = "none"
    if align and n > 1:
        use_topo = align_on == "topography" or (align_on == "auto" and topo_vars is not None)
        if align_on == "topography" and topo_vars is None:
            raise InputError(f"align_on='topography' but the frames have no height channel (channels: "
                             f"{', '.join(channel_table(frames[0]))}); use 'potential'")
        on = "topography" if use_topo else "potential"

    # the traces: numpy stacks, or dask stacks of which only the first frame is computed now
    stacks = {"potential": _trace_stack(frames, series, order, potential_vars, is_lazy)}
    if topo_vars is not None:
        stacks["topography"] = _trace_stack(frames, series, order, topo_vars, is_lazy)
    if pair_vars is not None:
        stacks["forward"] = _trace_stack(frames, series, order, [p[0] for p in pair_vars], is_lazy)
        stacks["backward"] = _trace_stack(frames, series, order, [p[1] for p in pair_vars], is_lazy)
    row_coords = [f["row_time"] if "row_time" in f.coords and f["row_time"].dims == ("y",) else None for f in frames]
    if is_lazy:  # the one compute: the first frame's traces and the (small) row-time coordinates
        from ionscope.compat import compute

        first, rows_read = compute({k: v[0] for k, v in stacks.items()},
                                   [None if c is None else c.data for c in row_coords])
        row_coords = [None if c is None else c.copy(data=np.asarray(r)) for c, r in zip(row_coords, rows_read)]
    else:
        first = {k: v[0] for k, v in stacks.items()}
    row_times_s = np.stack([_row_times(frame, ny, coord) for frame, coord in zip(frames, row_coords)])

    raw0 = sample_potential_kernel(first["potential"], bias_used)
    if not np.isfinite(raw0).any():
        raise InputError(f"{_name(frames[0], 0)} holds no finite {chosen} values (all NaN); leave it out of the series")
    topo0 = level_topography_kernel(first["topography"]) if topo_vars is not None else None

    # reference (first frame's grid): the first frame's referencing, its noise, the PSF
    box, ref_info = reference_box(raw0, reference)
    referenced0 = reference_kernel(raw0, box)[0]
    noise0 = flat_noise_kernel(referenced0, box)
    away = None
    if align and n > 1:
        # the match is judged away from the reference band's edge, which every field of view
        # along the same collector shares
        away = np.ones(shape, dtype=bool)
        m = max(8, int(0.1 * min(shape)))
        away[max(0, box[0] - m):box[1] + m, max(0, box[2] - m):box[3] + m] = False
        away = away if away.mean() > 0.3 else None
    psf_info: dict[str, Any] | None = None
    the_psf = None
    spec = psf.strip().lower() if isinstance(psf, str) else psf
    if spec is not None and spec != "none":
        if spec == "auto":
            if psf_edge is None and ref_info["edge"] in _ACROSS_LINES:
                warnings.warn(f"psf='auto' fits the edge of the reference band along the {ref_info['edge']} edge of "
                              "the image: that profile crosses the scan lines, and the offsets of the lines outside "
                              "the band stay in it (only an equipotential region removes them), so the PSF estimate "
                              "carries them; give the PSF (a calibration) or a profile along the scan lines across "
                              "a sharp step (psf_edge)", IonscopeWarning, stacklevel=2)
            est = estimate_psf(referenced0, box, ref_info["edge"], pixel, profile=psf_edge)
            the_psf, psf_info = est["psf"], {"source": f"estimated from the {est['edge']}", **est["psf_nm"],
                                             "errors": est["errors_nm"], "chi2_reduced": est["chi2_reduced"]}
        elif isinstance(spec, PSF):
            the_psf, psf_info = spec, {"source": "given", **spec.to_nm(dx)}
        elif isinstance(spec, dict):
            the_psf = PSF.from_nm(spec, dx)
            psf_info = {"source": "given", **the_psf.to_nm(dx)}
        else:
            the_psf = PSF(float(spec) / dx)
            psf_info = {"source": "given Gaussian", **the_psf.to_nm(dx)}
        if is_lazy and not (np.isfinite(noise0) and noise0 > 0):
            raise InputError("the noise of the first frame's reference region could not be measured; deconvolution "
                             "needs it (give a larger reference box)")

    # the cycler log on the frames' clock
    log = None
    offset = 0.0
    if cycler is not None:
        log = cycler_arrays(cycler, timezone=timezone)
        if start is not None:
            zero, how = parse_time(start, "start"), "start given"
        elif log["start_time"]:
            zero, how = parse_time(log["start_time"], "the cycler log's start_time"), "the log's start_time"
        else:
            zero, how = starts[0], "assumed: the log's zero is the first frame's start"
        offset = (seconds_between(zero, starts[0], "the cycler log and the frames", timezone=timezone)
                  if zero is not None and starts[0] is not None else 0.0)

    # every frame: referenced, registered, deconvolved, on the first frame's grid
    steps = _FrameSteps(
        bias_on=bias_used, channel=chosen, box=tuple(box), auto=isinstance(reference, str) and reference.strip().lower() == "auto",
        edge=ref_info["edge"], align=bool(align and n > 1), use_topo=use_topo,
        guide0=(topo0 if use_topo else referenced0) if align and n > 1 else None, mask=away, upsample=upsample,
        max_shift_fraction=max_shift_fraction, least=min_match if min_match is not None else (0.5 if use_topo else 0.3),
        on=on, names=[_name(f, k) for k, f in enumerate(frames)], psf=the_psf, balance=balance, aspect=dy / dx,
        noise_fallback=noise0 if is_lazy else None, row_times=row_times_s, times=times, log=log, offset=offset)
    if is_lazy:
        out = _lazy_steps(steps, stacks, shape)
        first_out = steps({k: v[None] for k, v in first.items()}, 0)  # the first frame again: its resolution
        p_raw0, p0 = first_out["potential_raw"][0], first_out["potential"][0] if the_psf is not None else None
    else:
        out = steps(stacks, 0)
        p_raw0, p0 = out["potential_raw"][0], out["potential"][0] if the_psf is not None else None
    potential_raw = out["potential_raw"]
    potential = out["potential"] if the_psf is not None else potential_raw
    shifts, match = out["shifts"], out["match"]
    noise_frames, trace_noise = out["noise"], out["trace_noise"]
    row_time = out["row_time"]
    deconvolved = the_psf is not None
    if is_lazy:  # 0-d dask arrays (not Delayed: dask 2026.8 mixes up the results of one compute of both kinds)
        def median(values: Any) -> Any:
            return values.rechunk(-1).map_blocks(lambda a: np.asarray(_median(a)), drop_axis=0, dtype=np.float64)

        noise_V = median(noise_frames)
        noise_trace = (median(trace_noise) / (math.sqrt(2.0) if direction == "mean" else 1.0)
                       if pair_vars is not None else float("nan"))
    else:
        noise_V = _median(noise_frames)
        noise_trace = (_median(trace_noise) / (math.sqrt(2.0) if direction == "mean" else 1.0)
                       if pair_vars is not None else float("nan"))
    resolution_raw = _resolution(p_raw0, box, ref_info["edge"], pixel)
    resolution = _resolution(p0, box, ref_info["edge"], pixel) if deconvolved else resolution_raw


    # the dataset
    y_coord = np.asarray(frames[0]["y"].values, dtype=np.float64) * require_length_to_nm(
        frames[0]["y"].attrs.get("units", "nm"), "the y axis")
    x_coord = np.asarray(frames[0]["x"].values, dtype=np.float64) * require_length_to_nm(
        frames[0]["x"].attrs.get("units", "nm"), "the x axis")
    coords = {
        "time": ("time", times, {"units": "s", "long_name": "frame start from the first frame's start"}),
        "y": ("y", y_coord, {"units": "nm"}),
        "x": ("x", x_coord, {"units": "nm"}),
        "row_time": (("time", "y"), row_time, {"units": "s", "long_name": "when each row of the grid was scanned, "
                                                "from the first frame's start"}),
    }
    data = {
        "potential": (("time", "y", "x"), potential, {
            "units": "V", "long_name": "sample potential" + (", deconvolved" if deconvolved else "")
            + ", referenced to the reference region, on the first frame's grid"}),
        "shift_y_nm": ("time", shifts[:, 0] * dy, {"units": "nm", "long_name": "shift applied along y (-drift)"}),
        "shift_x_nm": ("time", shifts[:, 1] * dx, {"units": "nm", "long_name": "shift applied along x (-drift)"}),
        "registration_match": ("time", match, {"units": "1", "long_name": "edge correlation with the first frame"}),
    }
    if deconvolved:
        data["potential_raw"] = (("time", "y", "x"), potential_raw, {
            "units": "V", "long_name": "sample potential before deconvolution, referenced, on the first frame's grid"})
    if topo0 is not None:
        data["topography"] = (("y", "x"), topo0.astype(np.float32), {"units": "nm",
                                                                        "long_name": "height of the first frame, levelled"})
    directions = [str(f.attrs.get("scan_direction", "unknown")) for f in frames]
    attrs: dict[str, Any] = {
        "primary": "potential",
        "start_time": starts[0].isoformat() if starts[0] is not None else "",
        "channel": chosen, "direction": direction, "bias_on": bias_used, "bias_on_source": bias_how,
        "sign_convention": sign_convention_text(bias_used),
        "reference_box": [int(v) for v in box], "reference": ref_info["how"], "reference_edge": ref_info["edge"] or "",
        "noise_V": noise_V, "noise_trace_V": noise_trace,
        "psf": json.dumps(jsonable(psf_info)) if psf_info is not None else "none",
        "resolution_nm": resolution, "resolution_raw_nm": resolution_raw,
        "pixel_size_nm": [dy, dx], "scan_directions": directions, "align_on": on,
        "source_files": [str(f.attrs.get("source_file", "")) for f in frames],
    }

    summary: dict[str, Any] = {
        "frames": n, "scan_directions": directions, "channel": chosen, "direction": direction,
        "bias_on": bias_used, "bias_on_source": bias_how, "sign_convention": attrs["sign_convention"],
        "noise_mV": noise_V * 1e3, "reference_box": [int(v) for v in box], "reference": ref_info["how"],
        "align": bool(align), "align_on": on,
        "shift_y_nm": _listed(shifts[:, 0] * dy), "shift_x_nm": _listed(shifts[:, 1] * dx),
        "time_s": times.tolist(), "start_time": attrs["start_time"],
        "resolution_nm": resolution, "resolution_raw_nm": resolution_raw, "pixel_size_nm": [dy, dx],
    }
    if ref_info["edge"] in _ACROSS_LINES:
        attrs["resolution_note"] = summary["resolution_note"] = (
            f"measured across the scan lines (the reference band lies along the {ref_info['edge']} edge): every "
            "point of the edge profile carries the offset of its line, which only an equipotential region removes; "
            "the width along the scan lines at the particles' edges (find_particles: edge_width_nm) is not disturbed")
    if pair_vars is not None and (is_lazy or np.isfinite(noise_trace)):
        summary["noise_trace_mV"] = noise_trace * 1e3
    if psf_info is not None:
        summary["psf_sigma_nm"] = psf_info["core_sigma_nm"]
        summary["psf"] = psf_info

    # the cell's state at every row
    if log is not None:
        row_v, row_i, row_q = out["row_v"], out["row_i"], out["row_q"]
        if is_lazy:  # counted on the rows' own times (before registration), which the log needs no data for
            nominal = interpolate_kernel(log["time_s"], log["voltage_V"], times[:, None] + row_times_s + offset)
            outside = ~np.isfinite(nominal)
        else:
            outside = ~np.isfinite(row_v) & out["covered"]  # rows off the frame are NaN maps anyway
        if outside.any():
            warnings.warn(f"{int(outside.sum())} of {outside.size} scan rows lie outside the cycler log's time span; their "
                          "cell state is NaN (check start / the log's start time)", IonscopeWarning, stacklevel=2)
        per_frame = {"v": out["cell_v"], "i": out["cell_i"], "q": out["cell_q"]}
        data["cell_voltage"] = ("time", per_frame["v"], {"units": "V", "long_name": "cell voltage, mean over the frame's rows"})
        data["cell_current"] = ("time", per_frame["i"], {"units": "mA", "long_name": "cell current, mean over the frame's rows"})
        data["charge"] = ("time", per_frame["q"], {"units": "mAh", "long_name": "charge passed, mean over the frame's rows"})
        data["row_cell_voltage"] = (("time", "y"), row_v, {"units": "V", "long_name": "cell voltage when the row was scanned"})
        data["row_cell_current"] = (("time", "y"), row_i, {"units": "mA", "long_name": "cell current when the row was scanned"})
        data["row_charge"] = (("time", "y"), row_q, {"units": "mAh", "long_name": "charge passed when the row was scanned"})
        change = _change_start(log)
        attrs["cell_change_start_s"] = change - offset if np.isfinite(change) else float("nan")
        attrs["cycler_alignment"] = how
        attrs["cycler_offset_s"] = offset
        summary.update({"cycler_alignment": how, "cycler_offset_s": offset,
                        "cell_voltage_V": _listed(per_frame["v"]), "cell_current_mA": _listed(per_frame["i"]),
                        "charge_mAh": _listed(per_frame["q"]), "cell_change_start_s": attrs["cell_change_start_s"]})

    ds = xr.Dataset(data, coords=coords, attrs=attrs)
    params = {"channel": chosen, "direction": direction, "reference": ref_info["how"], "align": align,
              "align_on": on, "psf": psf_info if psf_info is not None else "none", "bias_on": bias_used,
              "upsample": upsample, "balance": balance, "cycler": cycler is not None,
              "start": None if start is None else str(start)}
    if timezone is not None:
        params["timezone"] = str(timezone)
    inputs = [s if isinstance(s, Path) else s[traces0[direction] if direction in traces0 else next(iter(traces0.values()))]
              for s in sources]
    history = []
    for s in sources:
        if isinstance(s, xr.Dataset):
            history.extend(provenance(s))
    ds = with_provenance(ds, "ionscope.kpfm.process_frames", params, inputs, history=history, variables=True)
    summary["run_time_s"] = _time.perf_counter() - t_run
    return ds, summary if is_lazy else plain_json(summary)


def _change_start(log: dict[str, Any]) -> float:
    """When the cell's state starts to change (s, log clock): the first record whose current
    departs from the first one by 5 % of the largest departure (else the voltage, likewise)."""
    for key in ("current_mA", "voltage_V"):
        v = log.get(key)
        if v is None:
            continue
        dev = np.abs(np.asarray(v, dtype=np.float64) - float(v[0]))
        top = float(np.nanmax(dev)) if dev.size else 0.0
        if top > 0:
            return float(log["time_s"][int(np.argmax(dev > 0.05 * top))])
    return float("nan")


def difference_maps(result: xr.Dataset, variable: str = "potential") -> xr.DataArray:
    """``dV = V(t) - V(t0)``: every frame minus the first (the static work-function contrast
    cancels), as a DataArray (time, y, x) in V with a provenance step.

    Computes: nothing (a dask-backed variable gives a dask-backed result).
    """
    if not isinstance(result, xr.Dataset) or variable not in result:
        raise InputError(f"the result has no {variable!r} variable (variables: "
                         f"{list(getattr(result, 'data_vars', []))}); give a kpfm process result")
    v = result[variable]
    if v.dims != ("time", "y", "x"):
        raise InputError(f"{variable!r} has dims {v.dims}; expected (time, y, x)")
    # the per-frame coordinates (row_time...) are left out, not compared: a lazy one stays unread
    v = v.drop_vars([c for c in v.coords if c not in v.dims and "time" in v[c].dims])
    dv = (v - v.isel(time=0).reset_coords(drop=True)).astype(np.float32)
    dv.attrs = {"units": v.attrs.get("units", "V"), "long_name": f"{variable} change from the first frame"}
    dv.name = f"{variable}_change"
    return with_provenance(dv, "ionscope.kpfm.difference_maps", {"variable": variable}, [v],
                           history=provenance(v) or provenance(result))
