"""Holography workflows: the chains a user runs, as library functions.

``ionscope holo potential`` and ``ionscope holo profile`` (and the demo) call these and add
nothing but argument parsing and printing, so Python and CLI users get the same numbers.

- :func:`potential_from_reconstruction`: reconstruction (Dataset with ``phase``, ``amplitude``
  and the aperture attrs) -> vacuum region -> optional stray-field (leakage) fit on the phase or
  on the biased-minus-0 V difference -> potential map, carrying the resolution attributes
  (``resolution_*``, ``phase_per_volt_rad``) that later steps read
  (:meth:`ionscope.profiles.LowPass.from_attrs`, :func:`ionscope.spacecharge.recorded_lowpass`).
- :func:`profile_across_interface`: a (y, x) map -> band profile (given or normal to the
  detected interface, away from the vacuum) -> step fit with the recorded resolution.

The potential chain (with its series form) lives here; its vacuum region and flatness warning in
:mod:`ionscope.holography.vacuum`, the profile chain in
:mod:`ionscope.holography.interface_profile`. Their public names are re-exported here, and so is
every other name they took from this module.
"""

from __future__ import annotations

import json
import warnings
from typing import Any

import numpy as np
import xarray as xr

from ionscope.constants import electron_interaction_constant
from ionscope.data import provenance, with_provenance
from ionscope.errors import ConfigError, InputError, IonscopeWarning
from ionscope.holography.interface_profile import profile_across_interface, profile_summary, resolution_blur
from ionscope.holography.interface_profile import (  # noqa: F401  (re-exported: they were defined here)
    MIN_PLATEAU_SAMPLES,
    PROFILE_SERIES_NUMBERS,
    _blur_spec,
    _profile_series,
)
from ionscope.holography.leakage import fit_stray_field, vacuum_flatness
from ionscope.holography.maps import _series_map, fixed_maps, frame_by_frame, frame_like
from ionscope.holography.potential import _THICKNESS_LONG_NAME, _route, phase_difference, potential_map
from ionscope.holography.vacuum import (
    VACUUM_FLATNESS_WARN_RAD,
    _warn_if_not_flat,
    smooth_vacuum_variation,
    vacuum_erosion_px,
    vacuum_mask,
)
from ionscope.holography.vacuum import (  # noqa: F401  (re-exported: they were defined here)
    STEEP_PHASE_MADS,
    STEEP_PHASE_MAX_FRACTION,
    _pixel_nm,
    _without_steep_phase,
)
from ionscope.profiles import LowPass
from ionscope.validation import Interval, Options, validate_params

__all__ = [
    "VACUUM_FLATNESS_WARN_RAD",
    "smooth_vacuum_variation",
    "vacuum_erosion_px",
    "vacuum_mask",
    "resolution_blur",
    "potential_from_reconstruction",
    "profile_across_interface",
    "profile_summary",
]

#: Keys of the stray-field fit's attrs that the potential chain reports.
LEAKAGE_KEYS = ("degree", "removed_fraction", "residual_rms_rad", "vacuum_rms_before_rad",
                "model_range_specimen_rad", "cv_rms_rad", "outlier_pixels")


#: A specimen thicker than this transmits no electrons of any TEM, and the mean inner potential
#: of a solid is 5 - 40 V: values beyond these bounds are typing mistakes, not specimens.
MAX_THICKNESS_NM = 1e4
MAX_MIP_V = 100.0


@validate_params({
    "kv": [Interval(float, 0, None, closed="neither", unit="kV")],
    "thickness_nm": [Interval(float, 0, MAX_THICKNESS_NM, closed="right", unit="nm"), None],
    "mip_v": [Interval(float, 0, MAX_MIP_V, closed="right", unit="V"), None],
    "leakage": [bool],
    "leakage_degree": [Options({"auto"}), Interval(int, 1, None)],
    "leakage_erode_px": [Interval(int, 0, None, unit="px")],
    "align": [bool],
})
def potential_from_reconstruction(
    reconstruction: xr.Dataset,
    kv: float,
    *,
    thickness_nm: float | None = None,
    mip_v: float | None = None,
    zero: xr.Dataset | None = None,
    vacuum: Any = "auto",
    leakage: bool = False,
    leakage_degree: int | str = "auto",
    leakage_erode_px: int = 4,
    align: bool = False,
) -> xr.Dataset:
    """Potential map (V) from a holography reconstruction, with the vacuum reference and an
    optional stray-field (leakage) subtraction: the chain of ``ionscope holo potential``.

    Parameters
    ----------
    reconstruction : xarray.Dataset
        A :func:`~ionscope.holography.reconstruct_offaxis` /
        :func:`~ionscope.holography.reconstruct_phase_shifting` result: ``phase`` (rad, y, x, or
        a series with dims y, x and e.g. time), optionally ``amplitude``, and its attrs (the
        aperture, when Fourier).
    kv : float
        Accelerating voltage (kV).
    thickness_nm, mip_v : float
        Exactly one: a uniform thickness (nm) or the specimen's mean inner potential (V)
        (:func:`~ionscope.holography.potential_map`).
    zero : xarray.Dataset, optional
        Reconstruction of the same area at 0 V: the bias-induced potential of the difference.
    vacuum : "auto", "none", (y0, y1, x0, x1) or bool mask
        Vacuum region (:func:`vacuum_mask`); ``"auto"`` erodes the detected mask by one
        resolution length (:func:`vacuum_erosion_px`).
    leakage : bool
        Fit a harmonic stray-field model in the vacuum (:func:`~ionscope.holography.fit_stray_field`)
        and subtract it; fitted on the biased-minus-0 V difference when ``zero`` is given.
    leakage_degree : "auto" or int
        Degree of the stray-field model (``"auto"``: cross-validated).
    leakage_erode_px : int
        Extra erosion of the vacuum before the stray-field fit (px).
    align : bool
        Align the 0 V result onto this one by the amplitudes first.

    Returns
    -------
    xarray.Dataset
        :func:`~ionscope.holography.potential_map`'s variables plus ``vacuum`` (when found) and
        ``stray_phase``, ``stray_phase_error`` (rad, with ``leakage``). Attrs add
        ``vacuum_region`` (how it was found), ``vacuum_pixels``, the resolution attributes
        (``resolution_*`` of the aperture, ``phase_per_volt_rad`` = ``C_E t`` on the uniform
        thickness route), ``potential_median_V``, ``potential_percentiles_V`` (specimen pixels),
        and as JSON text ``vacuum_flatness`` [, ``vacuum_flatness_after_leakage``, ``leakage``].

    Warns
    -----
    IonscopeWarning
        When the vacuum's phase (after the stray-field subtraction, with ``leakage``) varies
        smoothly by more than :data:`VACUUM_FLATNESS_WARN_RAD` rad rms
        (:func:`smooth_vacuum_variation`): the map has no flat zero. And on the phase / uniform
        thickness route when the specimen's median potential is negative (its phase below the
        vacuum's: the sideband convention may be the opposite for this microscope).

    Computes: for one (y, x) map, loads the phase and amplitude and returns a numpy-backed
    Dataset - the vacuum is detected on the whole map, the leakage model is a least-squares fit
    over all of it (degree by cross-validation) and the flatness warnings read the values. For
    a series (``phase`` with dims y, x and e.g. time), nothing while building: each frame goes
    through exactly the map's chain (its own vacuum detection, stray-field fit and warnings)
    inside one dask task per chunk of frames (y, x in one chunk), so a dask-backed series gives
    a dask-backed Dataset equal to the maps' results frame by frame (numpy in, numpy out). The
    per-frame numbers become coordinates along the series, computed with the result
    (:data:`SERIES_NUMBERS`: ``vacuum_pixels``, ``potential_median_V``,
    ``potential_percentiles_V`` along ``percentile`` [, ``mean_free_path_nm``,
    ``leakage_degree``, ``leakage_residual_rms_rad``, ``vacuum_smooth_variation_rad``]); the
    warnings and errors of a frame's values come when the result is computed. ``zero`` is then
    one (y, x) reconstruction, the reference of every frame: a dask-backed one is computed
    once, while building.
    """
    if (thickness_nm is None) == (mip_v is None):
        raise ConfigError("give exactly one of thickness_nm (--thickness NM) and mip_v (--mip V)")
    if not isinstance(reconstruction, xr.Dataset) or "phase" not in reconstruction:
        raise InputError(
            "the reconstruction must be a Dataset with a 'phase' variable (a holo reconstruct / "
            f"phase-shifting result), got {type(reconstruction).__name__} "
            f"{list(getattr(reconstruction, 'data_vars', []))}"
        )
    if zero is not None and (not isinstance(zero, xr.Dataset) or "phase" not in zero):
        raise InputError("the 0 V reconstruction (zero) must be a Dataset with a 'phase' variable")
    if reconstruction["phase"].ndim > 2:
        return _potential_series(reconstruction, kv, thickness_nm=thickness_nm, mip_v=mip_v, zero=zero,
                                 vacuum=vacuum, leakage=leakage, leakage_degree=leakage_degree,
                                 leakage_erode_px=leakage_erode_px, align=align)
    phase = reconstruction["phase"]
    amplitude = reconstruction["amplitude"] if "amplitude" in reconstruction else None
    amplitude_zero = zero["amplitude"] if zero is not None and "amplitude" in zero else None
    mask, how = vacuum_mask(vacuum, amplitude, phase.shape,
                            erode_px=vacuum_erosion_px(dict(reconstruction.attrs), phase), phase=phase)
    attrs: dict[str, Any] = {"vacuum_region": how}
    if mask is not None:
        attrs["vacuum_pixels"] = int(mask.sum())
    work_phase, leak = phase, None
    if leakage:
        if mask is None:
            raise ConfigError("the leakage fit needs a vacuum region and none was found on the amplitude; give "
                              "one (vacuum=(y0, y1, x0, x1) or a mask; on the command line --vacuum Y0:Y1,X0:X1)")
        target = phase
        if zero is not None:  # the stray field is the bias-induced part: fit it on the difference
            pair = (amplitude, amplitude_zero) if align and amplitude is not None and amplitude_zero is not None else None
            target = phase_difference(phase, zero["phase"], vacuum=mask, align=pair)
            target.attrs["units"] = "rad"
        leak = fit_stray_field(target, mask, degree=leakage_degree, erode_px=leakage_erode_px)
        err = leak["stray_phase_error"].values[~mask]
        report = {"erode_px": leakage_erode_px, **{k: leak.attrs[k] for k in LEAKAGE_KEYS},
                  "specimen_error_rad": {"median": float(np.median(err)), "max": float(np.max(err))}}
        attrs["leakage"] = json.dumps(report)
        attrs["vacuum_flatness"] = json.dumps(leak.attrs["flatness_before"])
        attrs["vacuum_flatness_after_leakage"] = json.dumps(leak.attrs["flatness_after"])
        work_phase = phase - leak["stray_phase"].values
        work_phase.attrs = dict(phase.attrs)
        flatness_used = leak.attrs["flatness_after"]
    elif mask is not None:
        base = phase_difference(phase, zero["phase"], vacuum=mask) if zero is not None else phase
        flatness_used = vacuum_flatness(base, mask)
        attrs["vacuum_flatness"] = json.dumps(flatness_used)
    ds = potential_map(work_phase, kv, thickness_nm=thickness_nm, mip_v=mip_v,
                       phase_zero=zero["phase"] if zero is not None else None,
                       amplitude=amplitude, amplitude_zero=amplitude_zero, vacuum=mask, align=align)
    if mask is not None:
        ds["vacuum"] = xr.DataArray(mask, dims=("y", "x"), coords={d: phase[d] for d in ("y", "x")},
                                    attrs={"units": "1", "long_name": f"vacuum ({how})"})
    if leak is not None:
        ds["stray_phase"] = leak["stray_phase"]
        ds["stray_phase_error"] = leak["stray_phase_error"]
    aperture = LowPass.from_attrs(dict(reconstruction.attrs), phase_per_unit=None)
    if aperture is not None:
        attrs.update(aperture.to_attrs())
    if thickness_nm is not None and zero is None:
        attrs["phase_per_volt_rad"] = electron_interaction_constant(float(kv)) * float(thickness_nm)
    v = np.asarray(ds["potential"].values, dtype=np.float64)
    specimen = np.isfinite(v) & (~mask if mask is not None else True)
    if not specimen.any():
        raise InputError("the potential map holds no finite specimen pixels; check the thickness / "
                         "mean inner potential and the vacuum")
    attrs["potential_median_V"] = float(np.median(v[specimen]))
    if zero is None and mask is not None and thickness_nm is not None and attrs["potential_median_V"] < 0:
        warnings.warn(
            f"the specimen's median potential is {attrs['potential_median_V']:.3g} V: its phase lies below the "
            "vacuum's, where a positive mean inner potential raises it; the sideband convention of this "
            "reconstruction (holospy's default, phase_sign_convention) may give the opposite sign on this "
            "microscope - reconstruct with the other sideband (--sideband lower or upper) - or the vacuum "
            "region is wrong (--vacuum)", IonscopeWarning, stacklevel=3)
    if mask is not None:  # warned once the inputs proved usable
        per_rad = 1.0 / (electron_interaction_constant(float(kv)) * float(thickness_nm)) if thickness_nm else None
        _warn_if_not_flat(flatness_used, after_leakage=leak is not None, volts_per_rad=per_rad)
    attrs["potential_percentiles_V"] = json.dumps(
        {f"p{p}": float(np.percentile(v[specimen], p)) for p in (5, 25, 50, 75, 95)})
    ds.attrs.update(attrs)
    params = {"kv": kv, "thickness_nm": thickness_nm, "mip_V": mip_v, "zero": zero is not None,
              "vacuum": how, "leakage": leakage, "leakage_degree": leakage_degree,
              "leakage_erode_px": leakage_erode_px, "align": align}
    inputs = [phase] + ([zero["phase"]] if zero is not None else [])
    # the potential map itself says how it was made (saved or passed on alone)
    return with_provenance(ds, "ionscope.holography.potential_from_reconstruction", params, inputs,
                           history=provenance(ds), variables=["potential"])


#: Percentiles (%) of the specimen's potential that :func:`potential_from_reconstruction` reports.
POTENTIAL_PERCENTILES = (5, 25, 50, 75, 95)

#: The per-frame numbers of :func:`potential_from_reconstruction` on a series: coordinates
#: along the series (units, long name).
SERIES_NUMBERS = {
    "vacuum_pixels": ("1", "vacuum pixels of the frame"),
    "potential_median_V": ("V", "median potential of the frame's specimen pixels"),
    "mean_free_path_nm": ("nm", "inelastic mean free path that makes the median potential V0"),
    "leakage_degree": ("1", "degree of the frame's stray-field model"),
    "leakage_residual_rms_rad": ("rad", "rms of the vacuum phase about the frame's stray-field model"),
    "vacuum_smooth_variation_rad": ("rad", "smooth variation of the vacuum phase (after the stray-field "
                                    "subtraction, with leakage): smooth_vacuum_variation"),
}


def _potential_series(reconstruction: xr.Dataset, kv: float, *, thickness_nm: float | None, mip_v: float | None,
                      zero: xr.Dataset | None, vacuum: Any, leakage: bool, leakage_degree: int | str,
                      leakage_erode_px: int, align: bool) -> xr.Dataset:
    """:func:`potential_from_reconstruction` of each frame of a series reconstruction, lazily."""
    phase = _series_map(reconstruction["phase"], "phase")
    lead = phase.dims[:-2]
    series = {"phase": phase}
    given: dict[str, tuple[Any, str]] = {}
    if "amplitude" in reconstruction:
        amp = reconstruction["amplitude"]
        if amp.ndim > 2:
            series["amplitude"] = _series_map(amp, "amplitude")
        else:
            given["amplitude"] = (amp, "amplitude")
    if zero is not None:
        if zero["phase"].ndim > 2:
            raise InputError("the 0 V reconstruction (zero) of a series must be one (y, x) map, the reference of "
                             f"every frame; got dims {zero['phase'].dims}")
        given.update({f"zero_{k}": (zero[k], f"0 V {k}") for k in ("phase", "amplitude") if k in zero})
    fixed = fixed_maps(given)  # the maps given once: computed here, once, when dask-backed
    zero_map = None
    if zero is not None:
        zero_map = xr.Dataset({k[5:]: fixed.pop(k) for k in list(fixed) if k.startswith("zero_")},
                              attrs=dict(zero.attrs))
    no_vacuum = vacuum is None or (isinstance(vacuum, str) and vacuum.lower() == "none")
    auto = isinstance(vacuum, str) and vacuum.lower() == "auto"
    if leakage and no_vacuum:
        raise ConfigError("the leakage fit needs a vacuum region; give one (vacuum=(y0, y1, x0, x1) or a mask; "
                          "on the command line --vacuum Y0:Y1,X0:X1)")
    rec_attrs = dict(reconstruction.attrs)
    shape = (phase.sizes["y"], phase.sizes["x"])
    if auto:
        template = phase.isel({d: 0 for d in lead}, drop=True)
        how = (f"detected on the amplitude of each frame, eroded {vacuum_erosion_px(rec_attrs, template)} px "
               "(the vacuum variable; vacuum_pixels per frame)")
    else:
        mask, how = vacuum_mask(vacuum, None, shape)  # a box or a mask: the same for every frame
        vacuum = mask if mask is not None else "none"
    maps: dict[str, Any] = {"potential": np.float64}
    if mip_v is not None:
        maps["thickness"] = np.float64
    if zero is not None:
        maps["phase_difference"] = np.float64
    if not no_vacuum:
        maps["vacuum"] = bool
    if leakage:
        maps.update(stray_phase=np.float64, stray_phase_error=np.float64)
    scalars = ["vacuum_pixels", "potential_median_V"]
    if mip_v is not None and zero is None:
        scalars.append("mean_free_path_nm")
    if leakage:
        scalars += ["leakage_degree", "leakage_residual_rms_rad"]
    if not no_vacuum:
        scalars.append("vacuum_smooth_variation_rad")
    vectors = {"potential_percentiles_V": ("percentile", len(POTENTIAL_PERCENTILES))}

    def frame_fn(**frames: np.ndarray) -> dict[str, Any]:
        ds = xr.Dataset({**{k: frame_like(series[k], v) for k, v in frames.items()}, **fixed}, attrs=rec_attrs)
        r = potential_from_reconstruction(ds, kv, thickness_nm=thickness_nm, mip_v=mip_v, zero=zero_map,
                                          vacuum=vacuum, leakage=leakage, leakage_degree=leakage_degree,
                                          leakage_erode_px=leakage_erode_px, align=align)
        got: dict[str, Any] = {k: r[k].values for k in r.data_vars if k in maps}
        got.update(vacuum_pixels=r.attrs.get("vacuum_pixels", 0), potential_median_V=r.attrs["potential_median_V"],
                   mean_free_path_nm=r.attrs.get("mean_free_path_nm"),
                   potential_percentiles_V=list(json.loads(r.attrs["potential_percentiles_V"]).values()))
        if "leakage" in r.attrs:
            report = json.loads(r.attrs["leakage"])
            got.update(leakage_degree=report["degree"], leakage_residual_rms_rad=report["residual_rms_rad"])
        flat = r.attrs.get("vacuum_flatness_after_leakage", r.attrs.get("vacuum_flatness"))
        if flat is not None:
            got["vacuum_smooth_variation_rad"] = smooth_vacuum_variation(json.loads(flat))
        return got

    res = frame_by_frame(frame_fn, series, maps=maps, scalars=scalars, vectors=vectors)
    route = _route(thickness_nm, zero)
    described = {
        "potential": ("V", "bias-induced potential" if zero is not None else "projected mean potential"),
        "thickness": ("nm", _THICKNESS_LONG_NAME.get(route, "thickness")),
        "phase_difference": ("rad", "biased minus 0 V phase"),
        "vacuum": ("1", f"vacuum ({how})"),
        "stray_phase": ("rad", "stray-field (leakage) phase model fitted in the vacuum"),
        "stray_phase_error": ("rad", "standard error of the stray-field phase model"),
    }
    keep = {k: v for k, v in phase.attrs.items() if k in ("beam_energy_kV",)}
    out = xr.Dataset({k: res[k].transpose(*phase.dims).assign_attrs(
        {**keep, "units": described[k][0], "long_name": described[k][1], "provenance": phase.attrs.get("provenance", "[]")})
        for k in maps})
    out = out.assign_coords({k: res[k].assign_attrs(units=SERIES_NUMBERS[k][0], long_name=SERIES_NUMBERS[k][1])
                             for k in scalars})
    out = out.assign_coords(potential_percentiles_V=res["potential_percentiles_V"].assign_attrs(
        units="V", long_name="percentiles of the frame's specimen potential"),
        percentile=("percentile", list(POTENTIAL_PERCENTILES), {"units": "%"}))
    c_e = electron_interaction_constant(float(kv))
    attrs: dict[str, Any] = {"interaction_constant_rad_per_V_nm": c_e, "beam_energy_kV": float(kv), "route": route,
                             "vacuum_reference": not no_vacuum, "primary": "potential", "vacuum_region": how}
    if thickness_nm is not None:
        attrs["thickness_nm"] = float(thickness_nm)
        if zero is None:
            attrs["phase_per_volt_rad"] = c_e * float(thickness_nm)
    else:
        attrs["mip_V"] = float(mip_v)
    aperture = LowPass.from_attrs(rec_attrs, phase_per_unit=None)
    if aperture is not None:
        attrs.update(aperture.to_attrs())
    for k in ("potential_median_V", "potential_percentiles_V", "mean_free_path_nm"):
        if k in out.coords:
            attrs[k] = f"per frame: the {k} coordinate"
    out.attrs = attrs
    params = {"kv": kv, "thickness_nm": thickness_nm, "mip_V": mip_v, "zero": zero is not None,
              "vacuum": how, "leakage": leakage, "leakage_degree": leakage_degree,
              "leakage_erode_px": leakage_erode_px, "align": align}
    inputs = [phase] + ([zero["phase"]] if zero is not None else [])
    return with_provenance(out, "ionscope.holography.potential_from_reconstruction", params, inputs,
                           history=provenance(phase), variables=["potential"])
