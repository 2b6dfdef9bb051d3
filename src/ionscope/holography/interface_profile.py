"""Profile across an interface of a map and its step fit: the chain of ``ionscope holo profile``.

:func:`profile_across_interface`: a (y, x) map (a
:func:`~ionscope.holography.potential_from_reconstruction` result, or any map) -> band profile
(between given end points, or normal to the detected interface, away from the vacuum) -> step
fit (:func:`~ionscope.profiles.fit_step`) with the resolution the reconstruction recorded
(:func:`resolution_blur`); a series of maps frame by frame along one line, lazily.
:func:`profile_summary` lists the result's numbers as plain floats (the command's summary).
"""

from __future__ import annotations

import json
import warnings
from typing import Any

import numpy as np
import xarray as xr

from ionscope.data import jsonable, provenance, with_provenance
from ionscope.errors import ConfigError, InputError, IonscopeWarning
from ionscope.holography.maps import _series_map, frame_by_frame, frame_like
from ionscope.holography.vacuum import _pixel_nm, vacuum_erosion_px
from ionscope.profiles import LowPass, band_profile, detect_interface, fit_step, normal_segment
from ionscope.validation import Interval, described, validate_params

__all__ = [
    "resolution_blur",
    "profile_across_interface",
    "profile_summary",
]


#: A plateau of the fitted step with fewer finite profile points than this draws a warning
#: (with none, :func:`profile_across_interface` refuses).
MIN_PLATEAU_SAMPLES = 5


@described("None, 'auto', 'fit', 'none', a Gaussian sigma >= 0 nm, 'lowpass:CUTOFF' or a LowPass")
def _blur_spec(value: Any) -> bool:
    if value is None or isinstance(value, LowPass):
        return True
    if isinstance(value, str):
        key = value.strip().lower()
        if key in ("auto", "fit", "none") or key.startswith("lowpass:"):
            return True
        try:
            value = float(key)
        except ValueError:
            return False
    return isinstance(value, int | float) and not isinstance(value, bool) and bool(np.isfinite(value)) and value >= 0


def resolution_blur(blur: Any, attrs: dict, variable: str) -> tuple[Any, str]:
    """The ``blur`` argument of :func:`ionscope.profiles.fit_step` for a map, and its description.

    ``"auto"`` takes the resolution recorded in ``attrs`` (:meth:`LowPass.from_attrs`): the
    wave is filtered at ``phase_per_volt_rad`` for a ``potential`` map, at 1 rad/rad for a
    ``phase`` map, linearly otherwise; none when nothing was recorded. ``"none"``/None: no
    blur; ``"fit"``: a fitted Gaussian; a number: a Gaussian sigma (nm); ``"lowpass:..."``
    (:meth:`LowPass.parse`) or a :class:`LowPass` as given.
    """
    if not _blur_spec(blur):
        raise ConfigError(f"blur {blur!r}: use {_blur_spec.description}")
    if isinstance(blur, LowPass):
        return blur, blur.describe()
    key = "none" if blur is None else str(blur).strip().lower()
    if key == "none":
        return None, "none"
    if key == "fit":
        return "fit", "fitted Gaussian"
    if key == "auto":
        kappa = {"potential": "recorded", "phase": 1.0}.get(variable)
        lowpass = LowPass.from_attrs(attrs, phase_per_unit=kappa)
        if lowpass is None:
            return None, "none (no aperture recorded)"
        return lowpass, lowpass.describe()
    if key.startswith("lowpass:"):
        lowpass = LowPass.parse(key)
        return lowpass, lowpass.describe()
    return float(blur), f"Gaussian sigma {float(blur):g} nm"


@validate_params({
    "width": [Interval(int, 1, None, unit="px")],
    "half_length_px": [Interval(float, 0, None, closed="neither", unit="px")],
    "step": [bool],
    "blur": [_blur_spec],
    "eps_r": [Interval(float, 0, None, closed="neither"), None],
})
def profile_across_interface(
    result: xr.Dataset | xr.DataArray,
    *,
    start: tuple[float, float] | None = None,
    end: tuple[float, float] | None = None,
    width: int = 20,
    model: str = "erf",
    side: str = "auto",
    step: bool = False,
    blur: Any = "auto",
    eps_r: float | None = None,
    variable: str | None = None,
    half_length_px: float = 60.0,
) -> xr.Dataset:
    """Band-averaged profile across an interface of a map and its step fit: the chain of
    ``ionscope holo profile``.

    Parameters
    ----------
    result : xarray.Dataset or DataArray
        A :func:`potential_from_reconstruction` result (or any Dataset / DataArray with a
        (y, x) map); its attrs carry the resolution for ``blur="auto"``.
    start, end : (float, float), optional
        Profile end points (y, x) in pixels. Without them the interface is detected
        (:func:`~ionscope.profiles.detect_interface`, away from a ``vacuum`` variable by two
        resolution lengths plus 16 px) and the profile runs normal to it.
    width : int
        Band width (px): parallel lines averaged.
    model, side, step, eps_r :
        As in :func:`~ionscope.profiles.fit_step`.
    blur : "auto", "none", "fit", float, "lowpass:..." or LowPass
        Resolution (:func:`resolution_blur`).
    variable : str, optional
        Map to profile; default ``potential`` when present, else the Dataset's primary variable.
    half_length_px : float
        Half length (px) of a profile across the detected interface.

    Returns
    -------
    xarray.Dataset
        The band profile (``profile``, ``profile_sigma``...) merged with the step fit (``drop``,
        ``w90``, ``interface``... with ``*_error``); attrs ``primary``, ``model``, ``side``,
        ``resolution``, ``blur`` (description), ``start_px``, ``end_px``, ``width_px``,
        ``variable``, ``endpoints`` ("given"/"detected"), ``interface_px`` (y, x),
        ``interface_detected`` (JSON, when detected), ``chi2_reduced``, ``units``, ``step_nm``,
        ``independent_lines``, ``plateau_samples_start`` / ``_end`` (finite profile points on
        each plateau of the fitted step); :func:`profile_summary` lists its numbers.

    Raises
    ------
    InputError
        When a plateau of the fitted step holds no finite point (a profile that starts in a
        vacuum where the map is NaN: its level would come from no data).

    Warns
    -----
    IonscopeWarning
        When a plateau holds fewer than :data:`MIN_PLATEAU_SAMPLES` finite points.

    Computes: for one (y, x) map, loads it and returns a numpy-backed Dataset - a band profile
    is a small reduction of the map and the step fit needs all of it. For a series (the map
    with dims y, x and e.g. time), the first frame is computed once, while building: its
    profile fixes the line (detected on it when ``start`` / ``end`` are not given: one line for
    the whole series, so the profiles share their positions) and the variables; then each
    frame's profile and fit along that line - exactly the map's computation with those
    endpoints - run inside one dask task per chunk of frames (y, x in one chunk): a dask-backed
    series gives a dask-backed Dataset over (time, position) and the fitted numbers (``drop``,
    ``w90``... with errors) along time; the per-frame attrs become coordinates along time
    (``chi2_reduced``, ``interface_y_px``, ``interface_x_px``, ``plateau_samples_start``,
    ``plateau_samples_end``, ``independent_lines``), all computed with the result; the
    warnings and errors of a frame's fit come when it is computed.
    """
    if (start is None) != (end is None):
        raise ConfigError("give both start and end (--from and --to), or neither (then the interface is detected)")
    ds = result.to_dataset(name=result.name or "map") if isinstance(result, xr.DataArray) else result
    if not isinstance(ds, xr.Dataset):
        raise InputError(f"result must be an xarray Dataset or DataArray, got {type(result).__name__}")
    name = variable or ("potential" if "potential" in ds else ds.attrs.get("primary", next(iter(ds.data_vars), None)))
    if name is None or name not in ds:
        raise InputError(f"the result has no variable {name!r} (variables: {list(ds.data_vars)}); choose one")
    image = ds[name]
    if image.ndim > 2 and "y" in image.dims and "x" in image.dims:
        return _profile_series(ds, name, start=start, end=end, width=width, model=model, side=side, step=step,
                               blur=blur, eps_r=eps_r, half_length_px=half_length_px)
    if set(image.dims) != {"y", "x"}:
        raise InputError(f"{name!r} has dims {image.dims}; the profile needs a (y, x) map")
    found = None
    if start is None:
        allowed = None
        if "vacuum" in ds and ds["vacuum"].dims == image.dims:
            # the vacuum edge is the strongest step of a potential map: look in the specimen,
            # a few resolution lengths away from it
            from scipy.ndimage import binary_dilation

            allowed = ~binary_dilation(np.asarray(ds["vacuum"].values, bool),
                                       iterations=2 * vacuum_erosion_px(dict(ds.attrs), image) + 16)
        found = detect_interface(image, smooth_px=max(2.0, width / 10), mask=allowed)
        start, end = normal_segment(found, half_length_px, image.shape, margin_px=width / 2 + 1)
    p0, p1 = (float(start[0]), float(start[1])), (float(end[0]), float(end[1]))
    blur_arg, blur_text = resolution_blur(blur, dict(ds.attrs), name)
    prof = band_profile(image, p0, p1, width=width)
    fit = fit_step(prof, model, side=side, blur=blur_arg, eps_r=eps_r, step=step)
    plateaus = {"start": int(fit.attrs["plateau_samples_start"]), "end": int(fit.attrs["plateau_samples_end"])}
    empty = [k for k, n in plateaus.items() if n == 0]
    if empty:
        missing = int(np.count_nonzero(~np.isfinite(prof["profile"].values)))
        raise InputError(
            f"the fitted step's {' and '.join(empty)} plateau holds no finite point of {name!r} (its level "
            f"would be extrapolated from no data; {missing} of the profile's {prof.sizes['position']} points "
            "are NaN, e.g. vacuum, where a potential from the mean inner potential is undefined); place the "
            "profile (start/end, --from/--to) so that both sides of the interface lie where the map is finite"
        )
    few = {k: n for k, n in plateaus.items() if n < MIN_PLATEAU_SAMPLES}
    if few:
        warnings.warn("the fitted step's " + " and ".join(f"{k} plateau rests on {n} finite point{'s' * (n != 1)}"
                                                         for k, n in few.items())
                      + f" of {name!r}: its level is barely measured; lengthen the profile on that side",
                      IonscopeWarning, stacklevel=3)
    out = xr.merge([prof, fit], combine_attrs="drop_conflicts")
    # interface point in pixels: the profile runs in nm along the (pixel-space) direction
    dy = _pixel_nm(image, "y") or 1.0
    dx = _pixel_nm(image, "x") or 1.0
    length_nm = float(np.hypot((p1[0] - p0[0]) * dy, (p1[1] - p0[1]) * dx))
    frac = float(fit["interface"]) / length_nm if length_nm > 0 else 0.0
    at = np.array(p0) + frac * (np.array(p1) - np.array(p0))
    out.attrs = {"primary": "profile", "model": model, "provenance": fit.attrs["provenance"],
                 "chi2_reduced": fit.attrs["chi2_reduced"], "side": fit.attrs["side"],
                 "resolution": fit.attrs["resolution"], "blur": blur_text, "start_px": list(p0),
                 "end_px": list(p1), "width_px": width, "variable": name,
                 "endpoints": "detected" if found is not None else "given",
                 "interface_px": [float(at[0]), float(at[1])], "units": str(image.attrs.get("units", "")),
                 "step_nm": prof.attrs["step_nm"], "independent_lines": prof.attrs["independent_lines"],
                 "eps_r": eps_r, "fit_step": bool(step),
                 "plateau_samples_start": plateaus["start"], "plateau_samples_end": plateaus["end"]}
    if found is not None:
        out.attrs["interface_detected"] = json.dumps(jsonable(found))
    params = {"start": list(p0), "end": list(p1), "width": width, "model": model, "side": side, "step": step,
              "blur": blur_text, "eps_r": eps_r, "variable": name, "endpoints": out.attrs["endpoints"]}
    # the map's history, the band, the fit, this step
    return with_provenance(out, "ionscope.holography.profile_across_interface", params, [image],
                           history=provenance(prof) + provenance(fit)[-1:], variables=["profile"])


#: Attrs of a :func:`profile_across_interface` result that differ frame by frame: coordinates
#: along a series (units, long name).
PROFILE_SERIES_NUMBERS = {
    "chi2_reduced": ("1", "reduced chi-squared of the frame's step fit"),
    "interface_y_px": ("px", "interface point of the frame, y"),
    "interface_x_px": ("px", "interface point of the frame, x"),
    "plateau_samples_start": ("1", "finite profile points on the start plateau"),
    "plateau_samples_end": ("1", "finite profile points on the end plateau"),
    "independent_lines": ("1", "independent lines of the frame's band"),
}


def _profile_series(ds: xr.Dataset, name: str, *, start: Any, end: Any, width: int, model: str, side: str,
                    step: bool, blur: Any, eps_r: float | None, half_length_px: float) -> xr.Dataset:
    """:func:`profile_across_interface` of each frame of a series along one line, lazily."""
    series = _series_map(ds[name], name)
    lead = series.dims[:-2]
    first_ds = ds.isel({d: 0 for d in lead if d in ds.dims}).compute()  # the first frame: one compute
    kwargs = {"width": width, "model": model, "side": side, "step": step, "blur": blur, "eps_r": eps_r,
              "variable": name, "half_length_px": half_length_px}
    first = profile_across_interface(first_ds, start=start, end=end, **kwargs)
    p0, p1 = tuple(first.attrs["start_px"]), tuple(first.attrs["end_px"])
    along = [k for k in first.data_vars if first[k].dims == ("position",)]
    numbers = [k for k in first.data_vars if first[k].ndim == 0]
    size = first.sizes["position"]
    attrs = dict(ds.attrs)

    def frame_fn(image: np.ndarray) -> dict[str, Any]:
        one = profile_across_interface(xr.Dataset({name: frame_like(series, image)}, attrs=attrs),
                                       start=p0, end=p1, **kwargs)
        got: dict[str, Any] = {k: one[k].values for k in (*along, *numbers)}
        got.update({k: one.attrs[k] for k in PROFILE_SERIES_NUMBERS if k in one.attrs})
        got["interface_y_px"], got["interface_x_px"] = one.attrs["interface_px"]
        return got

    res = frame_by_frame(frame_fn, {"image": series}, maps={}, scalars=[*numbers, *PROFILE_SERIES_NUMBERS],
                         vectors={k: ("position", size) for k in along})
    data = {k: res[k].transpose(*lead, "position").astype(first[k].dtype).assign_attrs(first[k].attrs)
            for k in along}
    data.update({k: res[k].astype(first[k].dtype).assign_attrs(first[k].attrs) for k in numbers})
    out = xr.Dataset(data, coords={"position": first["position"]})
    out = out.assign_coords({k: res[k].assign_attrs(units=u, long_name=ln) for k, (u, ln) in PROFILE_SERIES_NUMBERS.items()})
    out.attrs = dict(first.attrs)
    for k in (*PROFILE_SERIES_NUMBERS, "interface_px"):
        if k in out.attrs:
            out.attrs[k] = f"per frame: the {k if k != 'interface_px' else 'interface_y_px / interface_x_px'} coordinate"
    if first.attrs["endpoints"] == "detected":
        out.attrs["endpoints"] = "detected on the first frame"
    return out


def profile_summary(result: xr.Dataset) -> dict[str, Any]:
    """The numbers of a :func:`profile_across_interface` result as plain floats (the summary of
    ``ionscope holo profile``): ``drop``, ``w90_nm``, ``position_nm``, ``width_nm``, levels, peak
    field, each with its standard error; ``drop_V`` ... for a map in V; ``jump`` and
    ``total_drop`` with a sharp step; ``areal_charge_C_per_m2`` with a permittivity;
    ``plateau_samples`` ({"start", "end"}: finite profile points on each plateau)."""
    attrs = result.attrs
    value = {name: float(result[name]) for name in result.data_vars if result[name].ndim == 0}
    out: dict[str, Any] = {
        "variable": attrs["variable"], "units": attrs["units"], "from_px": attrs["start_px"],
        "to_px": attrs["end_px"], "endpoints": attrs["endpoints"], "width_px": attrs["width_px"],
        "model": attrs["model"], "side": attrs["side"], "step": attrs["fit_step"], "blur": attrs["blur"],
        "drop": value["drop"], "drop_error": value["drop_error"],
        "w90_nm": value["w90"], "w90_nm_error": value["w90_error"],
        "position_nm": value["interface"], "position_nm_error": value["interface_error"],
        "interface_px": attrs["interface_px"],
        "width_nm": value["width"], "width_nm_error": value["width_error"],
        "level_start": value["level_start"], "level_end": value["level_end"],
        "field_peak": value["field_peak"], "field_peak_error": value["field_peak_error"],
        "field_peak_units": result["field_peak"].attrs["units"],
        "chi2_reduced": float(attrs["chi2_reduced"]), "points": int(result.sizes["position"]),
        "step_nm": attrs["step_nm"], "independent_lines": attrs["independent_lines"],
    }
    if "plateau_samples_start" in attrs:
        out["plateau_samples"] = {"start": int(attrs["plateau_samples_start"]),
                                  "end": int(attrs["plateau_samples_end"])}
    if attrs["units"] == "V":
        out.update(drop_V=out["drop"], drop_V_error=out["drop_error"], field_peak_V_per_m=out["field_peak"])
    if attrs["fit_step"]:
        for name in ("jump", "total_drop"):
            out[name], out[f"{name}_error"] = value[name], value[f"{name}_error"]
    if attrs.get("eps_r") is not None:
        out["eps_r"] = attrs["eps_r"]
        out["areal_charge_C_per_m2"] = value["areal_charge"]
        out["areal_charge_C_per_m2_error"] = value["areal_charge_error"]
    if "interface_detected" in attrs:
        out["interface_detected"] = json.loads(attrs["interface_detected"])
    return out
