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

from ionscope.data import plain_json, provenance, with_provenance
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
        centroid_x_nm, dV_last_mV, dV_err_mV, active, response_time_s``.

    Computes: loads the result.
    """
    ds = _result_potential(result, "find_particles")
    pot = np.asarray(ds["potential"].values, dtype=np.float64)
    n, ny, nx = pot.shape
    dy, dx = (float(v) for v in ds.attrs.get("pixel_size_nm", [abs(float(ds["y"][1] - ds["y"][0])),
                                                                abs(float(ds["x"][1] - ds["x"][0]))]))
    noise = float(ds.attrs.get("noise_V", np.nan))
    if not np.isfinite(noise) or noise <= 0:
        raise InputError("the result records no noise (noise_V); process the frames with ionscope.kpfm.process_frames")
    if segment_on == "topography" and "topography" not in ds:
        raise InputError("segment_on='topography' but the result has no topography (the frames had no height channel); "
                         "use 'potential'")
    on = "topography" if segment_on == "topography" or (segment_on == "auto" and "topography" in ds) else "potential"
    image = np.asarray(ds["topography"].values if on == "topography" else pot[0], dtype=np.float64)
    pol = polarity or ("auto" if on == "topography" else "both")
    exclude = np.zeros((ny, nx), dtype=bool)
    if "reference_box" in ds.attrs:
        # the collector and its blurred border (the band stops a few pixels short of its edge)
        y0, y1, x0, x1 = (int(v) for v in np.asarray(ds.attrs["reference_box"]).ravel()[:4])
        m = exclude_px
        exclude[max(0, y0 - m):y1 + m, max(0, x0 - m):x1 + m] = True
    exclude |= ~np.isfinite(pot[0])
    if min_area_nm2 is not None and min_area_nm2 > image.size * dy * dx:
        raise ConfigError(f"min_area_nm2 = {min_area_nm2:g} nm^2 is larger than the whole field "
                          f"({image.size * dy * dx:g} nm^2); give the smallest particle's area")
    min_px = max(1, int(math.ceil((min_area_nm2 if min_area_nm2 is not None else 9 * dy * dx) / (dy * dx))))
    labels = segment_particles_kernel(image, exclude=exclude, polarity=pol, min_area_px=min_px,
                                      smooth_px=0.5 if on == "topography" else 1.0)
    p = int(labels.max())
    dv = pot - pot[0]
    mean, _, count = particle_series_kernel(dv, labels, erode_px=erode_px)
    # errors from the white-noise maps (the deconvolved ones are correlated)
    raw = np.asarray(ds["potential_raw"].values, dtype=np.float64) if "potential_raw" in ds else pot
    _, err, _ = particle_series_kernel(raw - raw[0], labels, erode_px=erode_px)
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
    if "row_cell_voltage" in ds:
        rv = np.asarray(ds["row_cell_voltage"].values, dtype=np.float64)  # (time, y)
        cell = (rv[:, rows_idx] - rv[0, rows_idx]).T  # (p, time)
    active, corr = active_particles_kernel(mean, noise, threshold=threshold, cell=cell, min_correlation=min_correlation)
    row_time = np.asarray(ds["row_time"].values, dtype=np.float64) if "row_time" in ds.coords else \
        np.broadcast_to(np.asarray(ds["time"].values, dtype=np.float64)[:, None], (n, ny))
    sample_t = row_time[:, rows_idx].T  # (p, time)
    t_on = float(ds.attrs.get("cell_change_start_s", np.nan))
    start_t = np.full(p, t_on) if np.isfinite(t_on) else (sample_t[:, 0] if p else np.zeros(0))
    response = response_time_kernel(sample_t, mean, start_t) if p else np.zeros(0)
    response = np.where(active, response, np.nan)
    active_map = (active_pixels_kernel(dv, labels, mean, active, fraction=trim) if p
                  else np.zeros((ny, nx), bool))
    # resolution at the particles' edges along the scan lines, in the first frame
    if edge_px is None:
        edge_px = _edge_window_px(ds.attrs.get("psf"), dx)
    edges = {}
    for key, image in (("", pot[0]), ("_raw", raw[0])):
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
        attrs={"primary": "labels", "particles": p, "active_particles": int(active.sum()),
               "threshold": float(threshold), "noise_V": noise, "segment_on": on, "polarity": pol,
               "response_from": "the cell's change (cycler)" if np.isfinite(t_on) else "the first frame",
               "edge_width_nm": edges[""][2], "edge_width_raw_nm": edges["_raw"][2],
               "edge_profiles": edges[""][1], "edge_half_width_px": int(edge_px)})
    params = {"threshold": threshold, "min_area_nm2": min_area_nm2, "segment_on": on, "polarity": pol,
              "erode_px": erode_px, "min_correlation": min_correlation, "exclude_px": exclude_px, "trim": trim,
              "edge_px": edge_px}
    out = with_provenance(out, "ionscope.kpfm.find_particles", params, [ds["potential"]],
                          history=provenance(ds), variables=["labels", "active"])
    rows = []
    for j in range(p):
        rows.append({"label": int(idx[j]), "area_nm2": float(area[j]), "centroid_y_nm": float(y_nm[j]),
                     "centroid_x_nm": float(x_nm[j]), "dV_last_mV": float(mean[j, -1] * 1e3),
                     "dV_err_mV": float(err[j, -1] * 1e3), "active": bool(active[j]),
                     "response_time_s": float(response[j])})
    return out, rows


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
    from ionscope.profiles import band_profile

    ds = _result_potential(result, "profile_frames")
    if variable not in ds or ds[variable].dims != ("time", "y", "x"):
        raise InputError(f"the result has no (time, y, x) variable {variable!r} (variables: {list(ds.data_vars)})")
    maps = ds[variable]
    profiles, sigmas, fits, per_frame = [], [], [], []
    position = None
    for k in range(maps.sizes["time"]):
        frame = maps.isel(time=k)
        frame.attrs = dict(maps.attrs)
        with np.errstate(invalid="ignore"):  # lines cut short by uncovered (NaN) pixels: no SE there
            prof = band_profile(frame, start, end, width=width)
        s = prof["position"].values
        y = prof["profile"].values
        sig = prof["profile_sigma"].values
        fit = fit_step_linear_kernel(s, y, sig if np.isfinite(sig).sum() >= 8 else None,
                                     correlation=prof["profile_sigma"].attrs.get("noise_correlation"),
                                     width=step_width_nm)
        position = s if position is None else position
        profiles.append(y)
        sigmas.append(sig)
        fits.append(fit)
        v, e = fit["values"], fit["errors"]
        per_frame.append({"time_s": float(ds["time"].values[k]), "drop_V": v["drop"], "drop_V_error": e["drop"],
                          "slope_V_per_nm": v["slope"], "slope_V_per_nm_error": e["slope"],
                          "interface_nm": v["position"], "interface_nm_error": e["position"],
                          "step_width_nm": v["width"], "chi2_reduced": fit["chi2_reduced"]})
    coords = {"time": ds["time"], "position": ("position", position, {"units": "nm", "long_name": "distance from start"})}

    def per(name: str) -> np.ndarray:
        return np.array([f[name] for f in per_frame])

    out = xr.Dataset({
        "profile": (("time", "position"), np.stack(profiles), {"units": "V", "long_name": "band mean"}),
        "profile_sigma": (("time", "position"), np.stack(sigmas), {"units": "V", "long_name": "standard error"}),
        "profile_fit": (("time", "position"), np.stack([f["curve"] for f in fits]), {"units": "V",
                                                                                       "long_name": "step plus linear fit"}),
        "drop": ("time", per("drop_V"), {"units": "V", "long_name": "interface drop (start side minus end side)"}),
        "drop_error": ("time", per("drop_V_error"), {"units": "V"}),
        "slope": ("time", per("slope_V_per_nm"), {"units": "V/nm", "long_name": "bulk slope (IR drop per nm)"}),
        "slope_error": ("time", per("slope_V_per_nm_error"), {"units": "V/nm"}),
        "interface_nm": ("time", per("interface_nm"), {"units": "nm"}),
        "interface_nm_error": ("time", per("interface_nm_error"), {"units": "nm"}),
        "step_width_nm": ("time", per("step_width_nm"), {"units": "nm"}),
        "chi2_reduced": ("time", per("chi2_reduced"), {"units": "1"}),
    }, coords=coords, attrs={"primary": "profile", "start_px": [float(v) for v in start],
                             "end_px": [float(v) for v in end], "width_px": int(width), "variable": variable})
    params = {"start": list(map(float, start)), "end": list(map(float, end)), "width": width, "variable": variable,
              "step_width_nm": step_width_nm}
    out = with_provenance(out, "ionscope.kpfm.profile_frames", params, [maps], history=provenance(ds),
                          variables=["profile"])
    summary = {"frames": per_frame, "from_px": [float(v) for v in start], "to_px": [float(v) for v in end],
               "width_px": int(width), "variable": variable}
    for key in ("drop_V", "drop_V_error", "slope_V_per_nm", "slope_V_per_nm_error", "interface_nm"):
        summary[key] = [f[key] for f in per_frame]
    return out, plain_json(summary)
