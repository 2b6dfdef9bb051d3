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
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
import xarray as xr

from ionscope.constants import electron_interaction_constant
from ionscope.data import jsonable, provenance, with_provenance
from ionscope.errors import ConfigError, InputError, IonscopeWarning
from ionscope.holography.inputs import vacuum_region
from ionscope.holography.leakage import detect_vacuum, fit_stray_field, vacuum_flatness
from ionscope.holography.potential import (
    _THICKNESS_LONG_NAME,
    _route,
    _series_map,
    fixed_maps,
    frame_by_frame,
    frame_like,
    phase_difference,
    potential_map,
)
from ionscope.profiles import LowPass, band_profile, detect_interface, fit_step, normal_segment
from ionscope.validation import Interval, Options, described, validate_params

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


def _pixel_nm(image: xr.DataArray, dim: str) -> float:
    try:
        return float(abs(image[dim][1] - image[dim][0]))
    except (IndexError, KeyError, TypeError):
        return 0.0


def vacuum_erosion_px(attrs: dict, image: xr.DataArray) -> int:
    """Pixels to erode a detected vacuum mask by: one resolution length (1 / the recorded
    aperture radius, at least 4 px) when the reconstruction recorded its aperture, else 8 px.

    The amplitude hardly drops over the first nanometres of a wedge-shaped edge, whose phase
    already rises.
    """
    lowpass = LowPass.from_attrs(attrs, phase_per_unit=None)
    pixel = _pixel_nm(image, "x")
    if lowpass is not None and pixel > 0:
        return max(4, int(round(1.0 / (lowpass.cutoff_per_nm * pixel))))
    return 8


#: A detected vacuum loses the pixels whose smoothed phase gradient exceeds the median of the
#: mask's by this many robust (MAD) standard deviations (:func:`vacuum_mask`).
STEEP_PHASE_MADS = 8.0
#: ... unless that would remove more than this fraction of it (then the mask stays as detected).
STEEP_PHASE_MAX_FRACTION = 0.3


def _without_steep_phase(mask: np.ndarray, phase: Any, sigma_px: float = 3.0) -> tuple[np.ndarray, int]:
    """``mask`` without the pixels where the phase (Gaussian-smoothed over ``sigma_px``) rises
    far more steeply than in the rest of it (:data:`STEEP_PHASE_MADS`), and how many went."""
    from scipy.ndimage import gaussian_filter

    values = np.asarray(getattr(phase, "values", phase), dtype=np.float64)
    if values.shape != mask.shape or not np.isfinite(values[mask]).all():
        return mask, 0
    smooth = gaussian_filter(np.where(np.isfinite(values), values, np.nanmedian(values[mask])), sigma_px)
    grad = np.hypot(*np.gradient(smooth))
    g = grad[mask]
    med = float(np.median(g))
    mad = 1.4826 * float(np.median(np.abs(g - med)))
    steep = mask & (grad > med + STEEP_PHASE_MADS * mad)
    removed = int(steep.sum())
    if removed == 0 or removed > STEEP_PHASE_MAX_FRACTION * mask.sum():
        return mask, 0
    return mask & ~steep, removed


def vacuum_mask(vacuum: Any, amplitude: xr.DataArray | None, shape: Sequence[int], *,
                erode_px: int = 8, phase: Any = None) -> tuple[np.ndarray | None, str]:
    """The vacuum pixels of a map, and how they were found.

    Parameters
    ----------
    vacuum : "auto", "none", None, (y0, y1, x0, x1) or bool array / DataArray
        ``"auto"`` detects it on the amplitude (:func:`detect_vacuum`); a box (half-open pixel
        indices) or a mask as :func:`ionscope.holography.inputs.vacuum_region` reads them.
    amplitude : xarray.DataArray, optional
        Reconstructed amplitude (for ``"auto"``).
    shape : (int, int)
        Shape of the map.
    erode_px : int
        Erosion of a detected mask (px).
    phase : xarray.DataArray or ndarray, optional
        The unwrapped phase: a detected mask then also loses the pixels where the phase rises
        steeply (:data:`STEEP_PHASE_MADS`). The amplitude cannot tell vacuum from the first
        nanometres of a thin specimen edge - the detector MTF even lifts their amplitude above
        the vacuum's when the specimen's phase ramp moves its part of the sideband towards the
        centre band - but their phase rises by radians per nanometre.

    Returns
    -------
    mask : numpy.ndarray of bool or None
    description : str
    """
    if vacuum is None or (isinstance(vacuum, str) and vacuum.lower() == "none"):
        return None, "none"
    if isinstance(vacuum, str):
        if vacuum.lower() != "auto":
            raise ConfigError(f"vacuum {vacuum!r}: use 'auto', 'none', a (y0, y1, x0, x1) box or a mask")
        if amplitude is None:
            return None, "none found"
        mask = detect_vacuum(amplitude, erode_px=erode_px)
        if mask is None:
            return None, "none found"
        how = f"detected on the amplitude, eroded {erode_px} px"
        if phase is not None:
            mask, removed = _without_steep_phase(mask, phase)
            if removed:
                how += f", without {removed} px of steep phase (a specimen edge)"
        return mask, how
    box, mask = vacuum_region(vacuum, tuple(shape))
    if box is None:
        return mask, "given mask"
    y0, y1, x0, x1 = box
    mask = np.zeros(tuple(shape), dtype=bool)
    mask[y0:y1, x0:x1] = True
    return mask, f"box {y0}:{y1},{x0}:{x1}"


#: A vacuum whose phase varies smoothly by more than this (rad rms of the part a quadratic
#: explains) draws a warning from :func:`potential_from_reconstruction`: the map's zero is then
#: not flat (a leakage field, a wrong vacuum region or reference distortions).
VACUUM_FLATNESS_WARN_RAD = 0.25


def smooth_vacuum_variation(flatness: dict) -> float:
    """The smooth part of a vacuum's phase variation (rad rms): what a quadratic fit explains,
    ``sqrt(rms_about_mean**2 - rms_about_quadratic**2)`` of :func:`vacuum_flatness`'s numbers."""
    total = float(flatness["rms_about_mean_rad"])
    rest = float(flatness["rms_about_quadratic_rad"])
    return float(np.sqrt(max(total * total - rest * rest, 0.0)))


def _warn_if_not_flat(flatness: dict, *, after_leakage: bool, volts_per_rad: float | None) -> None:
    smooth = smooth_vacuum_variation(flatness)
    if smooth <= VACUUM_FLATNESS_WARN_RAD:
        return
    ptp = float(flatness["peak_to_valley_rad"])
    volts = f" (+-{0.5 * ptp * volts_per_rad:.3g} V in the potential map)" if volts_per_rad else ""
    if after_leakage:
        advice = ("the stray-field model does not describe it: try another degree (--leakage-degree), "
                  "or give the vacuum region (--vacuum Y0:Y1,X0:X1 or a mask)")
        what = "after the stray-field subtraction, the vacuum phase still varies"
    else:
        advice = ("fit and subtract the leakage (stray) field (--leakage; leakage=True), or give the "
                  "vacuum region (--vacuum Y0:Y1,X0:X1 or a mask; vacuum=...) if the detected one is wrong")
        what = "the vacuum phase is not flat: it varies"
    warnings.warn(f"{what} by {ptp:.3g} rad peak to valley, {smooth:.2g} rad rms smoothly{volts}, so the "
                  f"potential has no flat zero; {advice}", IonscopeWarning, stacklevel=4)


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
