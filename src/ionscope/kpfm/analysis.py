"""KPFM analysis of a processed series: the particles and their potential change
(:func:`find_particles`, ``ionscope kpfm particles``) and band profiles across an interface in
every frame (:func:`profile_frames`, ``ionscope kpfm profile``). Both take a
:func:`~ionscope.kpfm.workflow.process_frames` result (a Dataset or its folder).
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Sequence
from typing import Any

import numpy as np
import xarray as xr

from ionscope.compat import compute
from ionscope.data import is_lazy, plain_json, provenance, with_provenance
from ionscope.errors import ConfigError, InputError
from ionscope.kpfm.interface import fit_step_linear_kernel
from ionscope.kpfm.level import (
    step_width_kernel,
)
from ionscope.kpfm.particles import (
    POLARITIES, active_particles_kernel, active_pixels_kernel, edge_profile_kernel as particle_edge_kernel,
    particle_series_kernel, response_time_kernel, segment_particles_kernel,
)
from ionscope.validation import Interval, Options, validate_params


__all__ = ["find_particles", "profile_frames"]


# --------------------------------------------------------------------------- particles


def _edge_window_px(psf_attr: Any, dx: float) -> int:
    """Half window (px) of the particle edge profile: two SDs of the PSF's widest component (from
    a result's ``psf`` attr, JSON in nm), 8 to 32 px; 8 px without a PSF."""
    try:
        info = json.loads(psf_attr) if isinstance(psf_attr, str) and psf_attr != "none" else None
    except ValueError:
        info = None
    if not isinstance(info, dict):
        return 8
    widest = max(float(info.get("core_sigma_nm") or 0.0),
                 float(info.get("tail_sigma_nm") or 0.0) if float(info.get("tail_weight") or 0.0) > 0 else 0.0)
    return int(min(max(math.ceil(2.0 * widest / dx), 8), 32))


def _result_potential(result: Any, what: str) -> xr.Dataset:
    if isinstance(result, (str, os.PathLike)):
        from ionscope.io import open_dataset

        result = open_dataset(result)
    if not isinstance(result, xr.Dataset) or "potential" not in result:
        raise InputError(f"{what} needs a kpfm process result (a Dataset with 'potential'), got "
                         f"{type(result).__name__} {list(getattr(result, 'data_vars', []))}")
    if result["potential"].dims != ("time", "y", "x"):
        raise InputError(f"the result's potential has dims {result['potential'].dims}; expected (time, y, x)")
    return result


@validate_params({
    "threshold": [Interval(float, 0, None, closed="neither")],
    "min_area_nm2": [Interval(float, 0, None), None],
    "segment_on": [Options({"auto", "topography", "potential"})],
    "polarity": [Options(set(POLARITIES)), None],
    "erode_px": [Interval(int, 0, None)],
    "min_correlation": [Interval(float, -1, 1)],
    "exclude_px": [Interval(int, 0, None, unit="px")],
    "trim": [Interval(float, 0, 1)],
    "edge_px": [Interval(int, 2, None, unit="px"), None],
})
def find_particles(
    result: Any,
    threshold: float = 3.0,
    min_area_nm2: float | None = None,
    *,
    segment_on: str = "auto",
    polarity: str | None = None,
    erode_px: int = 1,
    min_correlation: float = 0.5,
    exclude_px: int = 4,
    trim: float = 0.5,
    edge_px: int | None = None,
) -> tuple[xr.Dataset, list[dict[str, Any]]]:
    """Particles of a processed series, their ``dV(t)``, which are active: the chain of
    ``ionscope kpfm particles``.

    Parameters
    ----------
    result : xarray.Dataset or path
        A :func:`process_frames` result.
    threshold : float
        A particle is active when its ``|dV|`` exceeds ``threshold`` times the result's noise
        (``noise_V``, one frame's white-noise SD) in some frame and it follows the cell voltage
        (:func:`~ionscope.kpfm.particles.active_particles_kernel`).
    min_area_nm2 : float, optional
        Smallest particle (nm^2); default 9 pixels.
    segment_on : {"auto", "topography", "potential"}
        Map segmented (the first frame's); ``auto``: the topography when the result has one.
    polarity : {"auto", "bright", "dark", "both"}, optional
        How particles differ from the matrix; default ``auto`` on the topography, ``both`` on
        the potential.
    erode_px : int
        Border pixels of each particle left out of its mean.
    min_correlation : float
        Least correlation of ``dV(t)`` with the cell voltage (three frames or more, with a cycler).
    exclude_px : int
        The reference region grown by this many pixels is never a particle (the collector's
        border beyond the reference band).
    trim : float
        The ``active`` map keeps the pixels of an active particle whose change reaches this
        fraction of the particle's mean change (in its frame of largest ``|dV|``): a grain of the
        conductor segmented with the particle does not follow the cell
        (:func:`~ionscope.kpfm.particles.active_pixels_kernel`); 0 keeps every pixel.
    edge_px : int, optional
        Samples either side of a particle's edge in the edge profile
        (:func:`~ionscope.kpfm.particles.edge_profile_kernel`); default two SDs of the widest
        component of the result's PSF (its long tail reaches that far), 8 to 32 px, or 8 px when
        the result was not deconvolved.

    Returns
    -------
    dataset : xarray.Dataset
        ``labels`` (y, x) int32 (0 = matrix), ``active`` (y, x) bool (the pixels of the active
        particles that follow them, ``trim``); over ``particle`` (the
        labels): ``particle_dV`` and ``particle_dV_error`` (particle, time) V, ``area_nm2``,
        ``centroid_y_nm``, ``centroid_x_nm``, ``is_active``, ``correlation``, ``response_time_s``;
        ``edge_profile``, ``edge_profile_raw`` (edge_position, nm from the edge) V: the first
        frame's mean profile across the particles' edges along the scan lines, after and before
        deconvolution. Attrs ``particles``, ``active_particles``, ``threshold``, ``noise_V``,
        ``segment_on``, ``polarity``, ``edge_width_nm`` and ``edge_width_raw_nm`` (10-90 % widths
        of those profiles: the resolution at the particles' edges, which line offsets do not
        disturb), ``edge_profiles`` (profiles averaged).
    rows : list of dict
        One per particle, the columns of ``particles.csv``: ``label, area_nm2, centroid_y_nm,
        centroid_x_nm, dV_last_mV, dV_err_mV, active, response_time_s``. For a dask-backed
        result: a :class:`dask.delayed.Delayed` of that list, computed with the Dataset (e.g. by
        ``io.write_result(compute_with=rows)``).

    Computes: a numpy-backed result is used as it is. A dask-backed ``potential`` is computed once,
    before returning, for a sample: its first frame (and ``potential_raw``'s), the topography when
    it is segmented, the (time, y) row coordinates (``row_time``, ``row_cell_voltage``) and
    ``noise_V``; the labels, the particles' geometry and the edge profiles come from that sample.
    Everything that needs the whole series (``particle_dV``, ``particle_dV_error``,
    ``particle_pixels``, ``is_active``, ``correlation``, ``response_time_s``, ``active`` and the
    attr ``active_particles``) is then dask-backed: one task per time chunk returns a few numbers
    per particle and frame (and one boolean map), merged in time order - the maps are never held
    whole - with the in-memory path's values.
    """
    ds = _result_potential(result, "find_particles")
    lazy = is_lazy(ds["potential"])
    n, ny, nx = ds["potential"].shape
    dy, dx = (float(v) for v in ds.attrs.get("pixel_size_nm", [abs(float(ds["y"][1] - ds["y"][0])),
                                                                abs(float(ds["x"][1] - ds["x"][0]))]))
    if segment_on == "topography" and "topography" not in ds:
        raise InputError("segment_on='topography' but the result has no topography (the frames had no height channel); "
                         "use 'potential'")
    on = "topography" if segment_on == "topography" or (segment_on == "auto" and "topography" in ds) else "potential"
    has_raw = "potential_raw" in ds
    # what the segmentation, the particles' geometry and the edge profiles need: the first frame, the
    # (time, y) row coordinates and the noise - one compute when the result is dask-backed
    wanted = {"pot0": ds["potential"].isel(time=0).data, "noise": ds.attrs.get("noise_V", np.nan)}
    if has_raw:
        wanted["raw0"] = ds["potential_raw"].isel(time=0).data
    if on == "topography":
        wanted["topo"] = ds["topography"].data
    if "row_cell_voltage" in ds:
        wanted["row_v"] = ds["row_cell_voltage"].data
    if "row_time" in ds.coords:
        wanted["row_time"] = ds["row_time"].data
    if lazy:
        sample = dict(zip(wanted, compute(*wanted.values())))
        pot = None
    else:
        pot = np.asarray(ds["potential"].values, dtype=np.float64)
        sample = {**{k: v for k, v in wanted.items() if k not in ("pot0", "raw0")}, "pot0": pot[0]}
    pot0 = np.asarray(sample["pot0"], dtype=np.float64)
    noise = float(np.asarray(sample["noise"]))
    if not np.isfinite(noise) or noise <= 0:
        raise InputError("the result records no noise (noise_V); process the frames with ionscope.kpfm.process_frames")
    image = np.asarray(sample["topo"] if on == "topography" else pot0, dtype=np.float64)
    pol = polarity or ("auto" if on == "topography" else "both")
    exclude = np.zeros((ny, nx), dtype=bool)
    if "reference_box" in ds.attrs:
        # the collector and its blurred border (the band stops a few pixels short of its edge)
        y0, y1, x0, x1 = (int(v) for v in np.asarray(ds.attrs["reference_box"]).ravel()[:4])
        m = exclude_px
        exclude[max(0, y0 - m):y1 + m, max(0, x0 - m):x1 + m] = True
    exclude |= ~np.isfinite(pot0)
    if min_area_nm2 is not None and min_area_nm2 > image.size * dy * dx:
        raise ConfigError(f"min_area_nm2 = {min_area_nm2:g} nm^2 is larger than the whole field "
                          f"({image.size * dy * dx:g} nm^2); give the smallest particle's area")
    min_px = max(1, int(math.ceil((min_area_nm2 if min_area_nm2 is not None else 9 * dy * dx) / (dy * dx))))
    labels = segment_particles_kernel(image, exclude=exclude, polarity=pol, min_area_px=min_px,
                                      smooth_px=0.5 if on == "topography" else 1.0)
    p = int(labels.max())
    idx = np.arange(1, p + 1)
    area = np.bincount(labels.ravel(), minlength=p + 1)[1:] * dy * dx
    yy, xx = np.mgrid[:ny, :nx]
    with np.errstate(invalid="ignore", divide="ignore"):
        cnt = np.bincount(labels.ravel(), minlength=p + 1)[1:]
        cy = np.bincount(labels.ravel(), yy.ravel(), minlength=p + 1)[1:] / cnt
        cx = np.bincount(labels.ravel(), xx.ravel(), minlength=p + 1)[1:] / cnt
    y_nm = np.interp(cy, np.arange(ny), ds["y"].values) if p else cy
    x_nm = np.interp(cx, np.arange(nx), ds["x"].values) if p else cx
    rows_idx = np.clip(np.rint(cy), 0, ny - 1).astype(int) if p else np.zeros(0, int)
    cell = None
    if "row_v" in sample:
        rv = np.asarray(sample["row_v"], dtype=np.float64)  # (time, y)
        cell = (rv[:, rows_idx] - rv[0, rows_idx]).T  # (p, time)
    row_time = np.asarray(sample["row_time"], dtype=np.float64) if "row_time" in sample else \
        np.broadcast_to(np.asarray(ds["time"].values, dtype=np.float64)[:, None], (n, ny))
    sample_t = row_time[:, rows_idx].T  # (p, time)
    t_on = float(ds.attrs.get("cell_change_start_s", np.nan))
    start_t = np.full(p, t_on) if np.isfinite(t_on) else (sample_t[:, 0] if p else np.zeros(0))
    judge = {"noise": noise, "threshold": threshold, "cell": cell, "min_correlation": min_correlation,
             "sample_t": sample_t, "start_t": start_t}
    if lazy:
        raw0 = np.asarray(sample["raw0"], dtype=np.float64) if has_raw else pot0
        found = _particles_lazy(ds["potential"].data, ds["potential_raw"].data if has_raw else None, pot0, raw0,
                                labels, erode_px=erode_px, trim=trim, judge=judge)
        mean, err, count = found["mean"], found["err"], found["count"]
        active, corr, response, active_map = (found[k] for k in ("active", "corr", "response", "active_map"))
        n_active = found["n_active"]
    else:
        dv = pot - pot[0]
        mean, _, count = particle_series_kernel(dv, labels, erode_px=erode_px)
        # errors from the white-noise maps (the deconvolved ones are correlated)
        raw = np.asarray(ds["potential_raw"].values, dtype=np.float64) if has_raw else pot
        raw0 = raw[0]
        _, err, _ = particle_series_kernel(raw - raw[0], labels, erode_px=erode_px)
        active, corr, response = _judge_particles(mean, **judge)
        active_map = (active_pixels_kernel(dv, labels, mean, active, fraction=trim) if p
                      else np.zeros((ny, nx), bool))
        n_active = int(active.sum())
    # resolution at the particles' edges along the scan lines, in the first frame
    if edge_px is None:
        edge_px = _edge_window_px(ds.attrs.get("psf"), dx)
    edges = {}
    for key, image in (("", pot0), ("_raw", raw0)):
        profile, used = particle_edge_kernel(image, labels, half_width_px=edge_px, exclude=exclude)
        width = step_width_kernel(np.arange(profile.size, dtype=np.float64), profile)["width"] if used else np.nan
        edges[key] = (profile, used, float(width) * dx)

    coords = {"y": ds["y"], "x": ds["x"], "time": ds["time"],
              "particle": ("particle", idx, {"units": "1", "long_name": "particle label"})}
    out = xr.Dataset({
        "labels": (("y", "x"), labels.astype(np.int32), {"units": "1", "long_name": f"particles (segmented on the {on})"}),
        "active": (("y", "x"), active_map, {"units": "1", "long_name": "pixels of active particles"}),
        "particle_dV": (("particle", "time"), mean, {"units": "V", "long_name": "mean potential change"}),
        "particle_dV_error": (("particle", "time"), err, {"units": "V", "long_name": "standard error of the mean change"}),
        "particle_pixels": (("particle", "time"), count, {"units": "1"}),
        "area_nm2": ("particle", area, {"units": "nm2"}),
        "centroid_y_nm": ("particle", y_nm, {"units": "nm"}),
        "centroid_x_nm": ("particle", x_nm, {"units": "nm"}),
        "is_active": ("particle", active, {"units": "1"}),
        "correlation": ("particle", corr, {"units": "1", "long_name": "Pearson r of dV(t) with the cell voltage"}),
        "response_time_s": ("particle", response, {"units": "s"}),
        "edge_profile": ("edge_position", edges[""][0], {
            "units": "V", "long_name": "mean profile across the particles' edges along the scan lines, first frame"}),
        "edge_profile_raw": ("edge_position", edges["_raw"][0], {
            "units": "V", "long_name": "the same before deconvolution"}),
    }, coords={**coords, "edge_position": ("edge_position", (np.arange(2 * edge_px) - edge_px + 0.5) * dx, {
        "units": "nm", "long_name": "distance from the particle's edge (inside < 0 < outside)"})},
        attrs={"primary": "labels", "particles": p, "active_particles": n_active,
               "threshold": float(threshold), "noise_V": noise, "segment_on": on, "polarity": pol,
               "response_from": "the cell's change (cycler)" if np.isfinite(t_on) else "the first frame",
               "edge_width_nm": edges[""][2], "edge_width_raw_nm": edges["_raw"][2],
               "edge_profiles": edges[""][1], "edge_half_width_px": int(edge_px)})
    params = {"threshold": threshold, "min_area_nm2": min_area_nm2, "segment_on": on, "polarity": pol,
              "erode_px": erode_px, "min_correlation": min_correlation, "exclude_px": exclude_px, "trim": trim,
              "edge_px": edge_px}
    out = with_provenance(out, "ionscope.kpfm.find_particles", params, [ds["potential"]],
                          history=provenance(ds), variables=["labels", "active"])
    table = {"label": idx, "area_nm2": area, "centroid_y_nm": y_nm, "centroid_x_nm": x_nm}
    if lazy:
        import dask

        # from the merged chunks' Delayed itself: a Delayed of the dask arrays would carry a copy of
        # their graph (dask 2026.8), and the series would be streamed once more for the rows
        rows = dask.delayed(_particle_rows_of, pure=True)(table, found["total"])
    else:
        rows = _particle_rows(table, mean[:, -1], err[:, -1], active, response)
    return out, rows


def _particle_rows(table: dict[str, np.ndarray], dv_last: np.ndarray, err_last: np.ndarray, active: np.ndarray,
                   response: np.ndarray) -> list[dict[str, Any]]:
    """The rows of ``particles.csv``, one per particle."""
    return [{"label": int(table["label"][j]), "area_nm2": float(table["area_nm2"][j]),
             "centroid_y_nm": float(table["centroid_y_nm"][j]), "centroid_x_nm": float(table["centroid_x_nm"][j]),
             "dV_last_mV": float(dv_last[j] * 1e3), "dV_err_mV": float(err_last[j] * 1e3),
             "active": bool(active[j]), "response_time_s": float(response[j])}
            for j in range(len(table["label"]))]


def _particle_rows_of(table: dict[str, np.ndarray], total: dict[str, Any]) -> list[dict[str, Any]]:
    """:func:`_particle_rows` of the whole series' :func:`_finish_particles` result."""
    return _particle_rows(table, total["mean"][:, -1], total["err"][:, -1], total["active"], total["response"])


def _judge_particles(mean: np.ndarray, *, noise: float, threshold: float, cell: np.ndarray | None,
                     min_correlation: float, sample_t: np.ndarray, start_t: np.ndarray
                     ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Which particles are active, their correlation with the cell voltage and their response
    time (NaN unless active), from their mean changes ``mean`` (p, time)."""
    p = mean.shape[0]
    active, corr = active_particles_kernel(mean, noise, threshold=threshold, cell=cell, min_correlation=min_correlation)
    response = response_time_kernel(sample_t, mean, start_t) if p else np.zeros(0)
    return active, corr, np.where(active, response, np.nan)


def _particle_block(values: np.ndarray, raw_values: np.ndarray | None, pot0: np.ndarray, raw0: np.ndarray,
                    labels: np.ndarray, first: int, *, erode_px: int, trim: float) -> dict[str, Any]:
    """One time chunk of :func:`find_particles`: the particles' mean change, its error and pixels in
    each frame (:func:`~ionscope.kpfm.particles.particle_series_kernel`), and for the ``active`` map
    each particle's frame of largest ``|dV|`` in the chunk with the pixels that reach ``trim`` of its
    mean change there (:func:`~ionscope.kpfm.particles.active_pixels_kernel`, frame by frame)."""
    dv = np.asarray(values, dtype=np.float64) - pot0
    mean, _, count = particle_series_kernel(dv, labels, erode_px=erode_px)
    if raw_values is None:  # errors from the white-noise maps (the deconvolved ones are correlated)
        _, err, _ = particle_series_kernel(dv, labels, erode_px=erode_px)
    else:
        _, err, _ = particle_series_kernel(np.asarray(raw_values, dtype=np.float64) - raw0, labels, erode_px=erode_px)
    p = mean.shape[0]
    best = np.full(p, np.nan)
    frame = np.full(p, -1, dtype=np.int64)
    keep = np.zeros(labels.shape, dtype=bool)
    inside = labels > 0
    which = np.where(inside, labels - 1, 0)
    for j in range(dv.shape[0]):
        size = np.abs(mean[:, j])
        take = np.isfinite(size) & ~(size <= best)  # a larger |dV| (the first of equal ones stays)
        if not take.any():
            continue
        best[take], frame[take] = size[take], first + j
        m = mean[which, j]
        v = dv[j] * np.sign(m)
        kept = ~np.isfinite(v) | (v >= trim * np.abs(m))
        pix = inside & take[which]
        keep[pix] = kept[pix]
    return {"mean": mean, "err": err, "count": count, "best": best, "frame": frame, "keep": keep}


def _merge_particle_blocks(a: dict[str, Any], b: dict[str, Any], labels: np.ndarray) -> dict[str, Any]:
    """Two consecutive chunks' :func:`_particle_block` results as one (``a`` before ``b``)."""
    take = np.isfinite(b["best"]) & ~(b["best"] <= a["best"])
    pix = (labels > 0) & take[np.where(labels > 0, labels - 1, 0)]
    return {**{k: np.concatenate([a[k], b[k]], axis=1) for k in ("mean", "err", "count")},
            "best": np.where(take, b["best"], a["best"]), "frame": np.where(take, b["frame"], a["frame"]),
            "keep": np.where(pix, b["keep"], a["keep"])}


def _finish_particles(total: dict[str, Any], labels: np.ndarray, judge: dict[str, Any]) -> dict[str, Any]:
    """The active particles and the ``active`` map from the whole series' :func:`_particle_block`."""
    mean = total["mean"]
    active, corr, response = _judge_particles(mean, **judge)
    chosen = active & (total["frame"] >= 0)  # an active particle never covered keeps no pixel
    ok = np.concatenate([[False], chosen])
    active_map = ok[labels] & total["keep"]
    return {**total, "active": active, "corr": corr, "response": response, "active_map": active_map,
            "n_active": np.asarray(int(active.sum()))}


def _particles_lazy(potential: Any, raw: Any, pot0: np.ndarray, raw0: np.ndarray, labels: np.ndarray, *,
                    erode_px: int, trim: float, judge: dict[str, Any]) -> dict[str, Any]:
    """:func:`find_particles`' series part over the time chunks of dask maps: one task per chunk
    (:func:`_particle_block`, a few numbers per particle and frame and one boolean map), merged
    pairwise in time order, then judged; every output a dask array, nothing computed."""
    import dask
    import dask.array as da

    chunks = potential.chunks[0]
    potential = potential.rechunk({1: -1, 2: -1})
    blocks = potential.to_delayed().ravel()
    raw_blocks = raw.rechunk({0: chunks, 1: -1, 2: -1}).to_delayed().ravel() if raw is not None else [None] * len(blocks)
    pot0_d, raw0_d, labels_d = (dask.delayed(a, pure=True) for a in (pot0, raw0, labels))
    block = dask.delayed(_particle_block, pure=True)
    parts = []
    first = 0
    for i, m in enumerate(chunks):
        parts.append(block(blocks[i], raw_blocks[i], pot0_d, raw0_d, labels_d, first, erode_px=erode_px, trim=trim))
        first += m
    merge = dask.delayed(_merge_particle_blocks, pure=True)
    while len(parts) > 1:
        parts = [merge(parts[i], parts[i + 1], labels_d) if i + 1 < len(parts) else parts[i]
                 for i in range(0, len(parts), 2)]
    done = dask.delayed(_finish_particles, pure=True)(parts[0], labels_d, judge)
    p, n = int(labels.max()), potential.shape[0]
    shapes = {"mean": ((p, n), np.float64), "err": ((p, n), np.float64), "count": ((p, n), np.int64),
              "active": ((p,), bool), "corr": ((p,), np.float64), "response": ((p,), np.float64),
              "active_map": (labels.shape, bool), "n_active": ((), np.int64)}
    return {**{k: da.from_delayed(done[k], shape, dtype=dtype) for k, (shape, dtype) in shapes.items()},
            "total": done}


# --------------------------------------------------------------------------- profiles


@validate_params({
    "width": [Interval(int, 1, None, unit="px")],
    "step_width_nm": [Interval(float, 0, None, closed="neither", unit="nm"), None],
})
def profile_frames(result: Any, start: Sequence[float], end: Sequence[float], width: int = 20, *,
                   variable: str = "potential", step_width_nm: float | None = None) -> tuple[xr.Dataset, dict[str, Any]]:
    """Band profile across an interface in every frame, and its step-plus-linear fit: the chain of
    ``ionscope kpfm profile``.

    Parameters
    ----------
    result : xarray.Dataset or path
        A :func:`process_frames` result.
    start, end : (float, float)
        Profile end points (y, x) in pixels of the result's grid.
    width : int
        Band width (px): parallel lines averaged.
    variable : str
        Map to profile (``potential`` or ``potential_raw``).
    step_width_nm : float, optional
        Fix the step's width (nm), else it is fitted.

    Returns
    -------
    dataset : xarray.Dataset
        ``profile``, ``profile_sigma``, ``profile_fit`` (time, position) in V; ``drop``,
        ``drop_error`` (V), ``slope``, ``slope_error`` (V/nm), ``interface_nm``,
        ``interface_nm_error``, ``step_width_nm``, ``chi2_reduced`` (time).
    summary : dict
        ``frames`` (one dict per frame: ``time_s``, ``drop_V``, ``drop_V_error``,
        ``slope_V_per_nm``, ``slope_V_per_nm_error``, ``interface_nm``, ``interface_nm_error``,
        ``step_width_nm``, ``chi2_reduced``), the same as lists (``drop_V``...), ``from_px``,
        ``to_px``, ``width_px``, ``variable``.

    Raises
    ------
    InputError
        A band that leaves the image or holds no valid pixels in a frame.

    Computes: loads the result.
    """
    ds = _result_potential(result, "profile_frames")
    if variable not in ds or ds[variable].dims != ("time", "y", "x"):
        raise InputError(f"the result has no (time, y, x) variable {variable!r} (variables: {list(ds.data_vars)})")
    maps = ds[variable]
    frame = {"y": maps["y"].variable, "x": maps["x"].variable, "attrs": dict(maps.attrs), "name": maps.name}
    band = {"start": start, "end": end, "width": width, "step_width_nm": step_width_nm}
    lazy = is_lazy(maps)
    if lazy:
        import dask
        import dask.array as da

        # the band's geometry (its samples, and whether it fits the image) needs no data
        template = _frame_profiles(np.zeros((1,) + maps.shape[1:]), frame, **band, geometry_only=True)
        position, size = template["position"], template["position"].size
        data = maps.data.rechunk({1: -1, 2: -1})
        block = dask.delayed(_frame_profiles, pure=True)
        parts: dict[str, list[Any]] = {k: [] for k in ("profile", "sigma", "fit", "table")}
        tables = []  # the blocks' Delayed (a Delayed of the dask arrays would copy their graph: a second pass)
        for values, m in zip(data.to_delayed().ravel(), data.chunks[0]):
            got = block(values, frame, **band)
            tables.append(got["table"])
            for k in parts:
                parts[k].append(da.from_delayed(got[k], (m, size if k != "table" else len(_PROFILE_COLUMNS)),
                                                 dtype=np.float64))
        got = {k: da.concatenate(v) if len(v) > 1 else v[0] for k, v in parts.items()}
    else:
        got = _frame_profiles(np.asarray(maps.values), frame, **band)
        position = got["position"]
    table = {name: got["table"][:, j] for j, name in enumerate(_PROFILE_COLUMNS)}
    times = np.asarray(ds["time"].values, dtype=np.float64)
    coords = {"time": ds["time"], "position": ("position", position, {"units": "nm", "long_name": "distance from start"})}
    out = xr.Dataset({
        "profile": (("time", "position"), got["profile"], {"units": "V", "long_name": "band mean"}),
        "profile_sigma": (("time", "position"), got["sigma"], {"units": "V", "long_name": "standard error"}),
        "profile_fit": (("time", "position"), got["fit"], {"units": "V", "long_name": "step plus linear fit"}),
        "drop": ("time", table["drop_V"], {"units": "V", "long_name": "interface drop (start side minus end side)"}),
        "drop_error": ("time", table["drop_V_error"], {"units": "V"}),
        "slope": ("time", table["slope_V_per_nm"], {"units": "V/nm", "long_name": "bulk slope (IR drop per nm)"}),
        "slope_error": ("time", table["slope_V_per_nm_error"], {"units": "V/nm"}),
        "interface_nm": ("time", table["interface_nm"], {"units": "nm"}),
        "interface_nm_error": ("time", table["interface_nm_error"], {"units": "nm"}),
        "step_width_nm": ("time", table["step_width_nm"], {"units": "nm"}),
        "chi2_reduced": ("time", table["chi2_reduced"], {"units": "1"}),
    }, coords=coords, attrs={"primary": "profile", "start_px": [float(v) for v in start],
                             "end_px": [float(v) for v in end], "width_px": int(width), "variable": variable})
    params = {"start": list(map(float, start)), "end": list(map(float, end)), "width": width, "variable": variable,
              "step_width_nm": step_width_nm}
    out = with_provenance(out, "ionscope.kpfm.profile_frames", params, [maps], history=provenance(ds),
                          variables=["profile"])
    summary = {"from_px": [float(v) for v in start], "to_px": [float(v) for v in end],
               "width_px": int(width), "variable": variable}
    if lazy:
        rows = dask.delayed(_profile_rows_of_blocks, pure=True)(times, tables)
        summary["frames"] = rows
        for key in ("drop_V", "drop_V_error", "slope_V_per_nm", "slope_V_per_nm_error", "interface_nm"):
            summary[key] = dask.delayed(_column, pure=True)(rows, key)
        return out, summary
    rows = _profile_rows(times, got["table"])
    summary["frames"] = rows
    for key in ("drop_V", "drop_V_error", "slope_V_per_nm", "slope_V_per_nm_error", "interface_nm"):
        summary[key] = _column(rows, key)
    return out, plain_json(summary)


#: The per-frame numbers of :func:`profile_frames`, the columns of its fit table.
_PROFILE_COLUMNS = ("drop_V", "drop_V_error", "slope_V_per_nm", "slope_V_per_nm_error", "interface_nm",
                    "interface_nm_error", "step_width_nm", "chi2_reduced")


def _frame_profiles(values: np.ndarray, frame: dict[str, Any], *, start: Sequence[float], end: Sequence[float],
                    width: int, step_width_nm: float | None, geometry_only: bool = False) -> dict[str, np.ndarray]:
    """Band profiles and step-plus-linear fits of maps (frames, y, x) on the grid ``frame`` (its
    ``y``, ``x`` coordinates, ``attrs`` and ``name``): ``position`` (nm), ``profile``, ``sigma``,
    ``fit`` (frames, position) and ``table`` (frames, :data:`_PROFILE_COLUMNS`). Each frame on its
    own: a time chunk gives the whole series' values."""
    from ionscope.profiles import band_profile

    profiles, sigmas, fits, table = [], [], [], []
    position = np.zeros(0)
    for k in range(values.shape[0]):
        image = xr.DataArray(values[k], dims=("y", "x"), coords={"y": frame["y"], "x": frame["x"]},
                             attrs=frame["attrs"], name=frame["name"])
        with np.errstate(invalid="ignore"):  # lines cut short by uncovered (NaN) pixels: no SE there
            prof = band_profile(image, start, end, width=width)
        position = prof["position"].values
        if geometry_only:
            break
        y = prof["profile"].values
        sig = prof["profile_sigma"].values
        fit = fit_step_linear_kernel(position, y, sig if np.isfinite(sig).sum() >= 8 else None,
                                     correlation=prof["profile_sigma"].attrs.get("noise_correlation"),
                                     width=step_width_nm)
        profiles.append(y)
        sigmas.append(sig)
        fits.append(fit["curve"])
        v, e = fit["values"], fit["errors"]
        table.append([v["drop"], e["drop"], v["slope"], e["slope"], v["position"], e["position"], v["width"],
                      fit["chi2_reduced"]])
    shape = (len(profiles), position.size)
    return {"position": position,
            "profile": np.stack(profiles) if profiles else np.zeros(shape),
            "sigma": np.stack(sigmas) if sigmas else np.zeros(shape),
            "fit": np.stack(fits) if fits else np.zeros(shape),
            "table": np.asarray(table, dtype=np.float64).reshape(len(table), len(_PROFILE_COLUMNS))}


def _profile_rows(times: np.ndarray, table: np.ndarray) -> list[dict[str, float]]:
    """One dict per frame: ``time_s`` and the fit table's columns."""
    return [{"time_s": float(t), **{name: float(v) for name, v in zip(_PROFILE_COLUMNS, row)}}
            for t, row in zip(times, np.asarray(table))]


def _profile_rows_of_blocks(times: np.ndarray, tables: list[np.ndarray]) -> list[dict[str, float]]:
    return _profile_rows(times, np.concatenate(tables))


def _column(rows: list[dict[str, float]], key: str) -> list[float]:
    return [r[key] for r in rows]
