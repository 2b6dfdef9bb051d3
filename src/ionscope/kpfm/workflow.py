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
    sign_convention_text, trace, trace_pair,
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


def read_frames(frames: Any) -> tuple[list[xr.Dataset], list[Any]]:
    """The frames as Datasets, and what identifies each input (a path, or the Dataset):
    :func:`ionscope.io.open_inputs`.

    Parameters
    ----------
    frames : sequence of xarray.Dataset or paths
        KPFM frames in the readers' data model (:mod:`ionscope.kpfm.channels`); paths are read
        with :func:`ionscope.io.open_dataset`.

    Raises
    ------
    InputError
        No frames, or an item that is neither a Dataset nor a path.
    """
    from ionscope.io import open_inputs

    return open_inputs(frames, "KPFM frame")


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
        ``start_time`` keep their order and follow each other by their ``acquisition_time_s``.

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
    durations = [float(f.attrs.get("acquisition_time_s", np.nan)) for f in frames]
    times = np.concatenate([[0.0], np.cumsum(durations[:-1])]) if len(frames) > 1 else np.zeros(1)
    return list(range(len(frames))), [None] * len(frames), times


def _row_times(frame: xr.Dataset, ny: int) -> np.ndarray:
    """Row times (s from the frame start): the ``row_time`` coordinate, else from
    ``acquisition_time_s`` and ``scan_direction``, else NaN."""
    if "row_time" in frame.coords and frame["row_time"].dims == ("y",):
        values = np.asarray(frame["row_time"].values, dtype=np.float64)
        from ionscope.units import time_to_s

        factor = time_to_s(frame["row_time"].attrs.get("units", "s")) or 1.0
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
) -> tuple[xr.Dataset, dict[str, Any]]:
    """A KPFM frame series -> referenced, registered (optionally deconvolved) potential maps: the
    chain of ``ionscope kpfm process``.

    Parameters
    ----------
    frames : sequence of xarray.Dataset or paths
        Frames of one field of view in the readers' data model (:mod:`ionscope.kpfm.channels`),
        in any order: they are put in time order by their ``start_time``.
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

    Computes: reads every frame (dask-backed ones are computed) and returns numpy-backed data.
    """
    t_run = _time.perf_counter()
    frames, sources = read_frames(frames)
    shape, pixel = _check_series(frames)
    order, starts, times = order_frames(frames)
    frames = [frames[i] for i in order]
    sources = [sources[i] for i in order]
    n = len(frames)
    ny, nx = shape
    dy, dx = pixel

    # the potential channel, its sign, every frame's trace
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
    raw = np.empty((n, ny, nx))
    for k, frame in enumerate(frames):
        raw[k] = sample_potential_kernel(trace(frame, chosen, direction), bias_used)
        if not np.isfinite(raw[k]).any():
            raise InputError(f"{_name(frame, k)} holds no finite {chosen} values (all NaN); leave it out of the series")
    topo_name = choose_topography(frames[0])
    if topo_name is not None and not all(topo_name in channel_table(f) for f in frames):
        topo_name = None
    topo = None
    if topo_name is not None:
        topo = np.empty((n, ny, nx))
        for k, frame in enumerate(frames):
            traces = channel_table(frame)[topo_name]
            d = direction if direction in traces else ("forward" if "forward" in traces else next(iter(traces)))
            topo[k] = level_topography_kernel(trace(frame, topo_name, d))

    # reference (first frame's grid), a first referencing, registration, the final referencing
    box, ref_info = reference_box(raw[0], reference)
    referenced = np.stack([reference_kernel(raw[k], box)[0] for k in range(n)])
    shifts = np.zeros((n, 2))
    match = np.full(n, np.nan)
    match[0] = 1.0
    on = "none"
    if align and n > 1:
        use_topo = align_on == "topography" or (align_on == "auto" and topo is not None)
        if align_on == "topography" and topo is None:
            raise InputError(f"align_on='topography' but the frames have no height channel (channels: "
                             f"{', '.join(channel_table(frames[0]))}); use 'potential'")
        images = topo if use_topo else referenced
        on = "topography" if use_topo else "potential"
        least = min_match if min_match is not None else (0.5 if use_topo else 0.3)
        # the match is judged away from the reference band's edge, which every field of view
        # along the same collector shares
        away = np.ones(shape, dtype=bool)
        m = max(8, int(0.1 * min(shape)))
        away[max(0, box[0] - m):box[1] + m, max(0, box[2] - m):box[3] + m] = False
        shifts, match = frame_shifts_kernel(images, upsample=upsample, mask=away if away.mean() > 0.3 else None)
        for k in range(1, n):
            if abs(shifts[k, 0]) > max_shift_fraction * ny or abs(shifts[k, 1]) > max_shift_fraction * nx:
                raise InputError(f"{_name(frames[k], k)} is shifted by ({shifts[k, 0]:.1f}, {shifts[k, 1]:.1f}) px from "
                                 f"{_name(frames[0], 0)}, more than {max_shift_fraction:.0%} of the field: the frames "
                                 "are not of one field of view")
            if not (match[k] >= least):
                raise InputError(f"{_name(frames[k], k)} does not match {_name(frames[0], 0)} after registration (edge "
                                 f"correlation {match[k]:.2f} < {least:g} on the {on}): the frames are not of one "
                                 "field of view")
    boxes = [box]
    auto = isinstance(reference, str) and reference.strip().lower() == "auto"
    for k in range(1, n):
        moved = _moved_box(box, shifts[k], shape)
        if auto:  # the collector found again in this frame, along the same edge (as wide as it is here)
            try:
                moved = find_reference_kernel(raw[k], edges=(ref_info["edge"],))[0]
            except InputError:
                pass
        if moved is None:
            raise InputError(f"in {_name(frames[k], k)} the reference region has drifted out of the field; give a "
                             "reference box further inside")
        boxes.append(moved)
        if moved != tuple(box):
            referenced[k] = reference_kernel(raw[k], moved)[0]

    # noise of the trace used: the reference region; the forward - backward difference
    noise_frames = np.array([flat_noise_kernel(referenced[k], boxes[k]) for k in range(n)])
    noise_V = float(np.nanmedian(noise_frames)) if np.isfinite(noise_frames).any() else float("nan")
    noise_trace = float("nan")
    traces0 = channel_table(frames[0])[chosen]
    if "forward" in traces0 and "backward" in traces0:
        values = []
        for frame in frames:
            fwd, bwd = trace_pair(frame, chosen)
            values.append(trace_noise_kernel(fwd, bwd))
        noise_trace = float(np.nanmedian(values)) / (math.sqrt(2.0) if direction == "mean" else 1.0)

    # PSF and deconvolution
    psf_info: dict[str, Any] | None = None
    spec = psf.strip().lower() if isinstance(psf, str) else psf
    if spec is not None and spec != "none":
        if spec == "auto":
            if psf_edge is None and ref_info["edge"] in _ACROSS_LINES:
                warnings.warn(f"psf='auto' fits the edge of the reference band along the {ref_info['edge']} edge of "
                              "the image: that profile crosses the scan lines, and the offsets of the lines outside "
                              "the band stay in it (only an equipotential region removes them), so the PSF estimate "
                              "carries them; give the PSF (a calibration) or a profile along the scan lines across "
                              "a sharp step (psf_edge)", IonscopeWarning, stacklevel=2)
            est = estimate_psf(referenced[0], box, ref_info["edge"], pixel, profile=psf_edge)
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
        if not np.isfinite(noise_V) or noise_V <= 0:
            raise InputError("the noise of the reference region could not be measured; deconvolution needs it "
                             "(give a larger reference box)")
        deconvolved = np.empty_like(referenced)
        for k in range(n):
            nk = noise_frames[k] if np.isfinite(noise_frames[k]) and noise_frames[k] > 0 else noise_V
            y0, y1, x0, x1 = boxes[k]
            row_sd = _line_offset_sd(raw[k], boxes[k], nk)
            d = wiener_deconvolve_kernel(referenced[k], the_psf, nk, balance=balance, aspect=dy / dx,
                                         row_noise_sd=row_sd)
            deconvolved[k] = d - np.nanmedian(d[y0:y1, x0:x1])
    else:
        deconvolved = None

    # resample onto the first frame's grid; the reference median is 0 there
    def onto_grid(stack: np.ndarray) -> np.ndarray:
        out = np.empty((n, ny, nx), dtype=np.float32)
        y0, y1, x0, x1 = box
        for k in range(n):
            out[k] = shift_frame_kernel(stack[k].astype(np.float32), shifts[k]) if shifts[k].any() else stack[k]
            part = out[k, y0:y1, x0:x1]
            if np.isfinite(part).any():
                out[k] -= np.float32(np.nanmedian(part))
        return out

    potential_raw = onto_grid(referenced)
    potential = onto_grid(deconvolved) if deconvolved is not None else potential_raw
    resolution_raw = _resolution(potential_raw[0], box, ref_info["edge"], pixel)
    resolution = _resolution(potential[0], box, ref_info["edge"], pixel) if deconvolved is not None else resolution_raw

    # row times on the first frame's grid: row r of the grid was scanned in frame k at raw row r - shift_y
    rows = np.arange(ny, dtype=np.float64)
    row_time = np.empty((n, ny))
    row_covered = np.empty((n, ny), dtype=bool)  # grid rows the frame scanned (not extrapolated)
    for k, frame in enumerate(frames):
        rt = _row_times(frame, ny)
        at = rows - shifts[k, 0]
        row_covered[k] = (at >= -0.5) & (at <= ny - 0.5)
        inner = np.interp(at, rows, rt)
        slope_lo = rt[1] - rt[0] if ny > 1 else 0.0
        slope_hi = rt[-1] - rt[-2] if ny > 1 else 0.0
        inner = np.where(at < 0, rt[0] + at * slope_lo, inner)
        inner = np.where(at > ny - 1, rt[-1] + (at - (ny - 1)) * slope_hi, inner)
        row_time[k] = times[k] + inner

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
            "units": "V", "long_name": "sample potential" + (", deconvolved" if deconvolved is not None else "")
            + ", referenced to the reference region, on the first frame's grid"}),
        "shift_y_nm": ("time", shifts[:, 0] * dy, {"units": "nm", "long_name": "shift applied along y (-drift)"}),
        "shift_x_nm": ("time", shifts[:, 1] * dx, {"units": "nm", "long_name": "shift applied along x (-drift)"}),
        "registration_match": ("time", match, {"units": "1", "long_name": "edge correlation with the first frame"}),
    }
    if deconvolved is not None:
        data["potential_raw"] = (("time", "y", "x"), potential_raw, {
            "units": "V", "long_name": "sample potential before deconvolution, referenced, on the first frame's grid"})
    if topo is not None:
        data["topography"] = (("y", "x"), topo[0].astype(np.float32), {"units": "nm",
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
        "shift_y_nm": (shifts[:, 0] * dy).tolist(), "shift_x_nm": (shifts[:, 1] * dx).tolist(),
        "time_s": times.tolist(), "start_time": attrs["start_time"],
        "resolution_nm": resolution, "resolution_raw_nm": resolution_raw, "pixel_size_nm": [dy, dx],
    }
    if ref_info["edge"] in _ACROSS_LINES:
        attrs["resolution_note"] = summary["resolution_note"] = (
            f"measured across the scan lines (the reference band lies along the {ref_info['edge']} edge): every "
            "point of the edge profile carries the offset of its line, which only an equipotential region removes; "
            "the width along the scan lines at the particles' edges (find_particles: edge_width_nm) is not disturbed")
    if np.isfinite(noise_trace):
        summary["noise_trace_mV"] = noise_trace * 1e3
    if psf_info is not None:
        summary["psf_sigma_nm"] = psf_info["core_sigma_nm"]
        summary["psf"] = psf_info

    # the cell's state at every row
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
        t_log = row_time + offset
        row_v = interpolate_kernel(log["time_s"], log["voltage_V"], t_log)
        # mA and mAh, as the shared timeline (ionscope.timeline) and the cycler logs (io.load_cycler)
        row_i = interpolate_kernel(log["time_s"], log["current_mA"], t_log)
        row_q = interpolate_kernel(log["time_s"], log["charge_mAh"], t_log)
        outside = ~np.isfinite(row_v) & row_covered  # rows off the frame are NaN maps anyway
        if outside.any():
            warnings.warn(f"{int(outside.sum())} of {outside.size} scan rows lie outside the cycler log's time span; their "
                          "cell state is NaN (check start / the log's start time)", IonscopeWarning, stacklevel=2)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            per_frame = {name: np.nanmean(a, axis=1) for name, a in (("v", row_v), ("i", row_i), ("q", row_q))}
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
                        "cell_voltage_V": per_frame["v"].tolist(), "cell_current_mA": per_frame["i"].tolist(),
                        "charge_mAh": per_frame["q"].tolist(), "cell_change_start_s": attrs["cell_change_start_s"]})

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
    return ds, plain_json(summary)


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

    Computes: loads the variable.
    """
    if not isinstance(result, xr.Dataset) or variable not in result:
        raise InputError(f"the result has no {variable!r} variable (variables: "
                         f"{list(getattr(result, 'data_vars', []))}); give a kpfm process result")
    v = result[variable]
    if v.dims != ("time", "y", "x"):
        raise InputError(f"{variable!r} has dims {v.dims}; expected (time, y, x)")
    dv = (v - v.isel(time=0)).astype(np.float32)
    dv.attrs = {"units": v.attrs.get("units", "V"), "long_name": f"{variable} change from the first frame"}
    dv.name = f"{variable}_change"
    return with_provenance(dv, "ionscope.kpfm.difference_maps", {"variable": variable}, [v],
                           history=provenance(v) or provenance(result))
