"""KPFM workflows: the chains a user runs, as library functions.

``ionscope kpfm process``, ``ionscope kpfm particles`` and ``ionscope kpfm profile`` (and the demo)
call these and add nothing but argument parsing and printing (:doc:`/cli`,
:doc:`/guide/kpfm`).

- :func:`process_frames`: KPFM frames (one field of view, any order) -> the potential channel and
  its sign -> line offsets and frame offset removed on the grounded collector (never a plane fit)
  -> drift registration onto the first frame's grid -> optional PSF deconvolution -> a
  ``(time, y, x)`` potential series with per-row times, noise, resolution and, with a cycler log,
  the cell's voltage, current and charge for every frame and every row. Its steps live in
  :mod:`ionscope.kpfm.frames` (the frames read, checked and put in time order:
  :func:`read_frames`, :func:`order_frames`), :mod:`ionscope.kpfm.reference` (the reference
  region, the PSF from its edge, the resolution: :func:`reference_box`, :func:`estimate_psf`) and
  ``ionscope.kpfm.frame_steps`` (every frame's steps, in memory or per dask time chunk); the
  public ones are re-exported here.
- :func:`difference_maps`: every frame of a processed series minus the first.
- :func:`~ionscope.kpfm.analysis.find_particles` and :func:`~ionscope.kpfm.analysis.profile_frames`
  (in :mod:`ionscope.kpfm.analysis`): the particles and the interface profiles of a processed
  series.
"""

from __future__ import annotations

import json
import math
import time as _time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from ionscope.data import jsonable, plain_json, provenance, with_provenance
from ionscope.errors import InputError, IonscopeWarning
from ionscope.kpfm.channels import (
    SAMPLE_POTENTIAL_SIGN, channel_table, choose_channel, choose_topography, sample_potential_kernel,
    sign_convention_text, trace_variables,
)
from ionscope.kpfm.frame_steps import _FrameSteps, _lazy_steps, _median
from ionscope.kpfm.frames import (
    _check_series, _name, _row_times, _series_frames, _trace_stack, order_frames, read_frames,
)
from ionscope.kpfm.channels import trace_from  # noqa: F401  (re-exported: it was defined here)
from ionscope.kpfm.level import flat_noise_kernel, level_topography_kernel, reference_kernel
from ionscope.kpfm.psf import PSF
from ionscope.kpfm.reference import _ACROSS_LINES, _resolution, estimate_psf, reference_box
from ionscope.kpfm.reference import _line_offset_sd  # noqa: F401  (re-exported: it was defined here)
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


def _listed(values: Any) -> Any:
    """A per-frame array for the summary: a list, or the dask array (computed when it is written)."""
    return values.tolist() if isinstance(values, np.ndarray) else values


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
