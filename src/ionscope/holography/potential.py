r"""Holographic phase to electrostatic potential, thickness and biased-minus-0 V differences.

The phase of a fast electron crossing a specimen is (:doc:`/guide/holography`)

.. math:: \varphi(x, y) = C_E \int V(x, y, z)\,dz,

with the relativistic interaction constant :math:`C_E` of
:func:`ionscope.constants.electron_interaction_constant` (7.29e-3 rad/(V nm) at 200 kV,
6.53e-3 at 300 kV, 1.009e-2 at 80 kV). For a uniform thickness :math:`t` the projected-mean
potential is :math:`V = \varphi / (C_E t)`.

- :func:`phase_to_potential`: :math:`V = \varphi / (C_E t)` for a thickness in nm (a number or a
  map).
- :func:`thickness_from_amplitude`: :math:`t / \lambda_\mathrm{in} = -2 \ln(A / A_\mathrm{vac})`
  (the amplitude of the elastically filtered wave falls as :math:`e^{-t / 2\lambda_\mathrm{in}}`,
  :math:`\lambda_\mathrm{in}` the inelastic mean free path); in nm when
  :math:`\lambda_\mathrm{in}` is given.
- :func:`thickness_from_phase`: :math:`t = \varphi_0 / (C_E V_0)` from the phase of the
  unbiased specimen and its known mean inner potential :math:`V_0`.
- :func:`phase_difference`: biased minus 0 V phase; the mean inner potential and the thickness
  contrast cancel, leaving the potential the bias (or the charge it moved) adds. Both images
  can be aligned first (sub-pixel, on the amplitude).
- :func:`potential_map`: the three routes of ``ionscope holo potential`` in one call.

Vacuum (where the specimen is absent) is the phase reference: its phase is set to zero when a
vacuum mask is known (:func:`ionscope.holography.leakage.detect_vacuum`).

The checks of the maps and series these take, and the frame-by-frame machinery of a series, live
in :mod:`ionscope.holography.maps`.

References
----------
H. Lichte, M. Lehmann, Rep. Prog. Phys. 71, 016102 (2008) (phase, thickness from amplitude).
M.R. McCartney, M. Gajdardziska-Josifovska, Ultramicroscopy 53, 283 (1994) (t / lambda_in from
the amplitude, mean inner potential from phase / thickness). Y. Aizawa, K. Yamamoto et al.,
Ultramicroscopy 178, 20 (2017) and K. Yamamoto et al., Angew. Chem. Int. Ed. 49, 4414 (2010)
(biased-minus-0 V differences for Li-ion battery interfaces).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import scipy.fft
import xarray as xr

from ionscope.constants import electron_interaction_constant
from ionscope.data import provenance, units_of, with_provenance
from ionscope.errors import ConfigError, DimensionError, InputError
from ionscope.holography.maps import (
    _check_kv, _like, _map, _per_pixel, _series_map, _vacuum_values, frame_by_frame, frame_like, series_inputs,
)
from ionscope.holography.maps import fixed_maps  # noqa: F401  (re-exported: it was defined here)
from ionscope.register.translation import polish_translation, shift_image, translation_from_spectra

#: Thickness (t / lambda_in) below which a pixel counts as vacuum for the potential (NaN there).
MIN_RELATIVE_THICKNESS = 0.02


# --------------------------------------------------------------------------- kernels


def potential_from_phase(phase: np.ndarray, c_e: float, thickness_nm: np.ndarray | float) -> np.ndarray:
    """``V = phase / (c_e * t)`` in V (NaN where the thickness is not positive).

    Parameters
    ----------
    phase : ndarray
        Phase, rad.
    c_e : float
        Interaction constant, rad / (V nm).
    thickness_nm : float or ndarray
        Specimen thickness, nm (broadcast against ``phase``).
    """
    t = np.asarray(thickness_nm, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(t > 0, np.asarray(phase, dtype=np.float64) / (c_e * t), np.nan)


def _thickness_above(phase: np.ndarray, c_e: float, mip_v: float, min_thickness_nm: float) -> np.ndarray:
    t = thickness_kernel(phase, c_e, mip_v)
    return np.where(t > min_thickness_nm, t, np.nan)


def _relative_thickness_masked(amplitude: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Relative thickness of each (y, x) frame of ``amplitude`` (..., y, x) against the median
    of its own vacuum pixels; returns it and those medians."""
    a_vac = np.nanmedian(amplitude[..., mask], axis=-1)
    return relative_thickness(amplitude, a_vac[..., None, None]), a_vac


def _potential_of_map(phase: np.ndarray, thickness_nm: np.ndarray, c_e: float) -> np.ndarray:
    return potential_from_phase(phase, c_e, thickness_nm)


def relative_thickness(amplitude: np.ndarray, amplitude_vacuum: float | np.ndarray) -> np.ndarray:
    """``t / lambda_in = -2 ln(A / A_vac)`` (dimensionless; NaN where ``A <= 0``)."""
    a = np.asarray(amplitude, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(a > 0, -2.0 * np.log(a / amplitude_vacuum), np.nan)


def thickness_kernel(phase: np.ndarray, c_e: float, mip_v: float) -> np.ndarray:
    """``t = phase / (c_e * V0)`` in nm."""
    return np.asarray(phase, dtype=np.float64) / (c_e * mip_v)


# --------------------------------------------------------------------------- wrappers


def phase_to_potential(phase: xr.DataArray, kv: float, thickness_nm: float | xr.DataArray) -> xr.DataArray:
    """Projected-mean potential ``V = phase / (C_E t)`` of a phase map.

    Parameters
    ----------
    phase : xarray.DataArray
        Unwrapped phase (rad), dims ``(y, x)`` (a phase difference works the same way), or a
        series of them (dims y, x and e.g. time; numpy- or dask-backed).
    kv : float
        Accelerating voltage, kV.
    thickness_nm : float or xarray.DataArray
        Specimen thickness in nm: one number, or a ``(y, x)`` map (or a series like ``phase``;
        NaN / non-positive pixels give NaN potential).

    Returns
    -------
    xarray.DataArray
        ``potential`` in V with attrs ``interaction_constant_rad_per_V_nm`` and ``beam_energy_kV``.

    Computes: nothing while building - per pixel, a dask-backed map or series (dims y, x and
    e.g. time) gives a dask-backed result, one task per chunk; numpy in, numpy out.

    Examples
    --------
    >>> from ionscope.data import signal
    >>> import numpy as np
    >>> phi = signal(np.full((4, 4), 7.29e-3 * 50 * 2.0), ("y", "x"), name="phase", units="rad")
    >>> round(float(phase_to_potential(phi, 200, 50.0).mean()), 3)
    2.0
    """
    phase = _series_map(phase, "phase")
    if units_of(phase) != "rad":
        raise InputError(f"phase must be in rad, got {units_of(phase)!r}")
    kv = _check_kv(kv)
    c_e = electron_interaction_constant(kv)
    if isinstance(thickness_nm, xr.DataArray):
        t_da = _series_map(thickness_nm, "thickness map")
        if (t_da.sizes["y"], t_da.sizes["x"]) != (phase.sizes["y"], phase.sizes["x"]):
            raise DimensionError(f"thickness map shape {t_da.shape} differs from the phase's {phase.shape}")
        if units_of(t_da) != "nm":
            raise InputError(f"the thickness map must be in nm, got {units_of(t_da)!r} (t/lambda_in needs a mean free path)")
        t: Any = t_da.astype(np.float64, copy=False)
        t_param: Any = "map"
    else:
        try:
            t = float(thickness_nm)
        except (TypeError, ValueError):
            raise ConfigError(f"thickness must be a number of nm or a map, got {thickness_nm!r}") from None
        if not (np.isfinite(t) and t > 0):
            raise ConfigError(f"thickness must be a positive number of nm, got {thickness_nm!r}")
        t_param = t
    if isinstance(t, xr.DataArray):
        values = _per_pixel(_potential_of_map, phase.astype(np.float64, copy=False), t, c_e=c_e)
        values = values.transpose(*phase.dims).data
    else:
        values = _per_pixel(potential_from_phase, phase.astype(np.float64, copy=False), c_e=c_e, thickness_nm=t).data
    out = _like(phase, values, "potential", "V", "projected mean electrostatic potential",
                interaction_constant_rad_per_V_nm=c_e, beam_energy_kV=kv)
    params = {"kv": kv, "thickness_nm": t_param, "interaction_constant": c_e}
    inputs = [phase] + ([thickness_nm] if isinstance(thickness_nm, xr.DataArray) else [])
    return with_provenance(out, "ionscope.holography.phase_to_potential", params, inputs,
                           history=provenance(phase))


def thickness_from_amplitude(
    amplitude: xr.DataArray,
    *,
    vacuum: Any = None,
    amplitude_vacuum: float | None = None,
    mean_free_path_nm: float | None = None,
) -> xr.DataArray:
    """Thickness map from the reconstructed amplitude: ``t / lambda_in = -2 ln(A / A_vac)``.

    Parameters
    ----------
    amplitude : xarray.DataArray
        Amplitude, dims ``(y, x)`` (relative to a vacuum reference or not), or a series of
        them (dims y, x and e.g. time).
    vacuum : ndarray or DataArray of bool, optional
        Vacuum pixels; ``A_vac`` is their median amplitude.
    amplitude_vacuum : float, optional
        ``A_vac`` directly (1 for an amplitude normalised by a vacuum reference). With neither
        ``vacuum`` nor ``amplitude_vacuum``, 1 is used if the amplitude is relative to a
        reference (units "1"), else an error is raised.
    mean_free_path_nm : float, optional
        Inelastic mean free path :math:`\\lambda_\\mathrm{in}` (nm); the map is then ``t`` in nm,
        otherwise the dimensionless ``t / lambda_in``.

    Returns
    -------
    xarray.DataArray
        ``thickness`` (nm) or ``relative_thickness`` (1), attrs ``amplitude_vacuum``.

    Computes: nothing while building - per pixel (with a vacuum mask, per frame: the median
    of each frame's vacuum, the ``amplitude_vacuum`` coordinate along the series); a dask-backed
    map or series gives a dask-backed result; numpy in, numpy out.
    """
    amplitude = _series_map(amplitude, "amplitude")
    series = amplitude.ndim > 2
    frame = amplitude.isel({d: 0 for d in amplitude.dims[:-2]}) if series else amplitude
    mask = _vacuum_values(frame, vacuum)
    per_frame = None
    if amplitude_vacuum is None:
        if mask is not None and series:  # the vacuum median of each frame, lazily
            block = amplitude.chunk({"y": -1, "x": -1}) if amplitude.chunks is not None else amplitude
            rel_da, per_frame = xr.apply_ufunc(
                _relative_thickness_masked, block.astype(np.float64, copy=False), kwargs={"mask": mask},
                input_core_dims=[["y", "x"]], output_core_dims=[["y", "x"], []],
                dask="parallelized" if block.chunks is not None else "forbidden",
                output_dtypes=[np.float64, np.float64])
            rel = rel_da.data
        elif mask is not None:
            amplitude_vacuum = float(np.nanmedian(np.asarray(amplitude.values, dtype=np.float64)[mask]))
        elif units_of(amplitude) == "1":
            amplitude_vacuum = 1.0
        else:
            raise InputError(
                "the vacuum amplitude is unknown: give a vacuum mask or amplitude_vacuum (the "
                "amplitude is not normalised by a reference hologram)"
            )
    if per_frame is None:
        if not (np.isfinite(amplitude_vacuum) and amplitude_vacuum > 0):
            raise InputError(f"the vacuum amplitude must be positive, got {amplitude_vacuum!r}")
        rel = _per_pixel(relative_thickness, amplitude.astype(np.float64, copy=False),
                         amplitude_vacuum=float(amplitude_vacuum)).data
        amplitude_vacuum = float(amplitude_vacuum)
    else:
        amplitude_vacuum = "per frame: the amplitude_vacuum coordinate (median over the vacuum mask)"
    if mean_free_path_nm is not None:
        if not (np.isfinite(mean_free_path_nm) and mean_free_path_nm > 0):
            raise ConfigError(f"mean_free_path_nm must be positive, got {mean_free_path_nm!r}")
        out = _like(amplitude, rel * mean_free_path_nm, "thickness", "nm",
                    "thickness from the amplitude", amplitude_vacuum=amplitude_vacuum,
                    mean_free_path_nm=float(mean_free_path_nm))
    else:
        out = _like(amplitude, rel, "relative_thickness", "1",
                    "thickness / inelastic mean free path, from the amplitude",
                    amplitude_vacuum=amplitude_vacuum)
    if per_frame is not None:
        out = out.assign_coords(amplitude_vacuum=(per_frame.dims, per_frame.data, {
            "units": "1", "long_name": "median amplitude over the vacuum mask, per frame"}))
    params = {"amplitude_vacuum": amplitude_vacuum, "mean_free_path_nm": mean_free_path_nm,
              "vacuum_mask": mask is not None}
    return with_provenance(out, "ionscope.holography.thickness_from_amplitude", params, [amplitude],
                           history=provenance(amplitude))


def thickness_from_phase(phase: xr.DataArray, kv: float, mip_v: float, *,
                         min_thickness_nm: float = 0.0) -> xr.DataArray:
    """Thickness map ``t = phase / (C_E V0)`` from an unbiased phase and the mean inner potential.

    Parameters
    ----------
    phase : xarray.DataArray
        Unwrapped phase (rad, vacuum at 0), dims ``(y, x)``: the 0 V image of the specimen (or
        a series of them, dims y, x and e.g. time).
    kv : float
        Accelerating voltage, kV.
    mip_v : float
        Mean inner potential of the specimen, V (e.g. ~15-20 V for oxides; positive).
    min_thickness_nm : float
        Pixels thinner than this are NaN (vacuum and noise).

    Returns
    -------
    xarray.DataArray
        ``thickness`` in nm.

    Computes: nothing while building - per pixel, a dask-backed map or series (dims y, x and
    e.g. time) gives a dask-backed result, one task per chunk; numpy in, numpy out.
    """
    phase = _series_map(phase, "phase")
    kv = _check_kv(kv)
    if not (np.isfinite(mip_v) and mip_v > 0):
        raise ConfigError(f"the mean inner potential must be a positive number of V, got {mip_v!r}")
    c_e = electron_interaction_constant(kv)
    t = _per_pixel(_thickness_above, phase.astype(np.float64, copy=False), c_e=c_e, mip_v=float(mip_v),
                   min_thickness_nm=float(min_thickness_nm)).data
    out = _like(phase, t, "thickness", "nm", "thickness from the phase and the mean inner potential",
                mip_V=float(mip_v), beam_energy_kV=kv)
    return with_provenance(out, "ionscope.holography.thickness_from_phase",
                           {"kv": kv, "mip_V": float(mip_v), "min_thickness_nm": min_thickness_nm},
                           [phase], history=provenance(phase))


def align_to(moving: np.ndarray, fixed: np.ndarray, *, iterations: int = 30) -> tuple[np.ndarray, tuple[float, float]]:
    """Shift ``moving`` onto ``fixed``: whole-pixel start from the cross-correlation peak, then
    Gauss-Newton least squares on the image gradients (sub-pixel, with a gain and an offset
    between the images; the borders the shift exposes are left out) -
    :func:`ionscope.register.register_translation` with ``polish=True``.

    Returns the shifted image (cubic spline) and the shift (dy, dx) px applied
    (:mod:`ionscope.register`'s convention, as ``scipy.ndimage.shift``: content moves by +shift).
    """
    a = np.nan_to_num(np.asarray(fixed, dtype=np.float64))
    b = np.nan_to_num(np.asarray(moving, dtype=np.float64))
    start = translation_from_spectra(scipy.fft.fft2(a - a.mean()), scipy.fft.fft2(b - b.mean()), upsample=1)
    d = polish_translation(a, b, start, iterations=iterations)
    return shift_image(b, d, method="spline"), d


def phase_difference(
    phase: xr.DataArray,
    phase_zero: xr.DataArray,
    *,
    vacuum: Any = None,
    align: xr.DataArray | tuple[xr.DataArray, xr.DataArray] | None = None,
) -> xr.DataArray:
    """Biased-minus-0 V phase difference, with the vacuum set to zero.

    Parameters
    ----------
    phase, phase_zero : xarray.DataArray
        Unwrapped phases (rad, dims ``(y, x)``, same shape) of the biased and the unbiased
        specimen.
    vacuum : ndarray or DataArray of bool, optional
        Vacuum pixels; the median difference there is subtracted (the phase reference). Without
        it the difference keeps the arbitrary offset of the two unwrappings, and only
        differences within the map are meaningful.
    align : (amplitude, amplitude_zero), optional
        Amplitudes of both images: ``phase_zero`` is shifted onto ``phase`` by the sub-pixel
        cross-correlation of the amplitudes (specimen drift between the recordings).

    Returns
    -------
    xarray.DataArray
        ``phase_difference`` (rad), attrs ``vacuum_offset_rad`` and ``alignment_shift_px``.

    Computes: loads both maps (a dask-backed one is computed) and returns a numpy-backed
    difference - eager on purpose: the alignment is a cross-correlation of two whole images
    and the vacuum offset a median over the map, both needed before the difference exists;
    for a series, map it over the frame pairs.
    """
    phase = _map(phase, "phase")
    phase_zero = _map(phase_zero, "0 V phase")
    if phase.shape != phase_zero.shape:
        raise DimensionError(
            f"the 0 V phase has shape {phase_zero.shape} but the biased phase {phase.shape}; "
            "reconstruct both from holograms of the same area and size"
        )
    for name, da in (("phase", phase), ("0 V phase", phase_zero)):
        if units_of(da) != "rad":
            raise InputError(f"{name} must be in rad, got {units_of(da)!r}")
    p0 = np.asarray(phase_zero.values, dtype=np.float64)
    shift = (0.0, 0.0)
    if align is not None:
        if not (isinstance(align, (tuple, list)) and len(align) == 2):
            raise ConfigError("align must be the pair (amplitude, amplitude_zero)")
        a1, a0 = (np.asarray(_map(a, "amplitude").values, dtype=np.float64) for a in align)
        if a1.shape != phase.shape or a0.shape != phase.shape:
            raise DimensionError("the amplitudes for alignment must have the phase maps' shape")
        _, shift = align_to(a0, a1)
        p0 = shift_image(p0, shift, method="spline")
    diff = np.asarray(phase.values, dtype=np.float64) - p0
    mask = _vacuum_values(phase, vacuum)
    offset = 0.0
    if mask is not None:
        offset = float(np.nanmedian(diff[mask]))
        diff = diff - offset
    out = _like(phase, diff, "phase_difference", "rad", "biased minus 0 V phase",
                vacuum_offset_rad=offset, alignment_shift_px=list(shift))
    params = {"vacuum_reference": mask is not None, "align": align is not None, "shift_px": list(shift)}
    return with_provenance(out, "ionscope.holography.phase_difference", params, [phase, phase_zero],
                           history=provenance(phase))


def _route(thickness_nm: Any, phase_zero: Any) -> str:
    if thickness_nm is not None:
        return "difference / uniform thickness" if phase_zero is not None else "phase / uniform thickness"
    if phase_zero is not None:
        return "difference / thickness from the 0 V phase and the mean inner potential"
    return "phase / thickness from the amplitude, scaled by the mean inner potential"


#: Long names of :func:`potential_map`'s thickness, by route.
_THICKNESS_LONG_NAME = {
    "difference / thickness from the 0 V phase and the mean inner potential":
        "thickness from the 0 V phase and the mean inner potential",
    "phase / thickness from the amplitude, scaled by the mean inner potential":
        "thickness from the amplitude (mean free path from the mean inner potential)",
}


def _potential_map_series(phase: xr.DataArray, kv: float, *, thickness_nm: float | None, mip_v: float | None,
                          phase_zero: Any, amplitude: Any, amplitude_zero: Any, vacuum: Any,
                          align: bool) -> xr.Dataset:
    """:func:`potential_map` of each frame of a series (dims y, x and e.g. time), lazily."""
    phase = _series_map(phase, "phase")
    lead = phase.dims[:-2]
    kv = _check_kv(kv)
    c_e = electron_interaction_constant(kv)
    template = phase.isel({d: 0 for d in lead}, drop=True)
    mask = _vacuum_values(template, vacuum)
    if thickness_nm is not None:
        if not (np.isfinite(thickness_nm) and thickness_nm > 0):
            raise ConfigError(f"thickness must be a positive number of nm, got {thickness_nm!r}")
    elif not (np.isfinite(mip_v) and mip_v > 0):
        raise ConfigError(f"the mean inner potential must be positive, got {mip_v!r}")
    elif phase_zero is None and (amplitude is None or mask is None):
        raise ConfigError(
            "--mip without --zero needs the amplitude and a vacuum region (to scale the "
            "amplitude thickness); give a 0 V result with --zero or a thickness"
        )
    if phase_zero is not None and align and (amplitude is None or amplitude_zero is None):
        raise ConfigError("align needs the amplitudes of both images")
    series, fixed = series_inputs(lead, {"phase_zero": (phase_zero, "0 V phase"), "amplitude": (amplitude, "amplitude"),
                                         "amplitude_zero": (amplitude_zero, "0 V amplitude")})
    series = {"phase": phase, **series}
    route = _route(thickness_nm, phase_zero)
    maps: dict[str, Any] = {"potential": np.float64}
    if mip_v is not None:
        maps["thickness"] = np.float64
    scalars: list[str] = []
    if phase_zero is not None:
        maps["phase_difference"] = np.float64
        scalars.append("vacuum_offset_rad")
        if align:
            scalars += ["alignment_shift_y_px", "alignment_shift_x_px"]
    elif mip_v is not None:
        scalars.append("mean_free_path_nm")

    def frame_fn(**frames: np.ndarray) -> dict[str, Any]:
        args: dict[str, Any] = {k: frame_like(series[k], v) for k, v in frames.items()}
        ds = potential_map(args.pop("phase"), kv, thickness_nm=thickness_nm, mip_v=mip_v, vacuum=mask,
                           align=align, **args, **fixed)
        got: dict[str, Any] = {k: ds[k].values for k in ds.data_vars}
        got["mean_free_path_nm"] = ds.attrs.get("mean_free_path_nm")
        if "phase_difference" in ds:
            got["vacuum_offset_rad"] = ds["phase_difference"].attrs["vacuum_offset_rad"]
            got["alignment_shift_y_px"], got["alignment_shift_x_px"] = ds.attrs["alignment_shift_px"]
        return got

    res = frame_by_frame(frame_fn, series, maps=maps, scalars=scalars)
    out = {"potential": _like(phase, res["potential"].transpose(*phase.dims).data, "potential", "V",
                              "bias-induced potential" if phase_zero is not None else "projected mean potential",
                              beam_energy_kV=kv)}
    if "thickness" in res:
        out["thickness"] = _like(phase, res["thickness"].transpose(*phase.dims).data, "thickness", "nm",
                                 _THICKNESS_LONG_NAME[route])
    if "phase_difference" in res:
        out["phase_difference"] = _like(
            phase, res["phase_difference"].transpose(*phase.dims).data, "phase_difference", "rad",
            "biased minus 0 V phase", vacuum_offset_rad="per frame: the vacuum_offset_rad coordinate",
            alignment_shift_px="per frame: the alignment_shift_*_px coordinates" if align else [0.0, 0.0])
    ds = xr.Dataset(out)
    units = {"vacuum_offset_rad": ("rad", "median biased minus 0 V phase over the vacuum, per frame"),
             "alignment_shift_y_px": ("px", "shift of the 0 V image onto the frame, y"),
             "alignment_shift_x_px": ("px", "shift of the 0 V image onto the frame, x"),
             "mean_free_path_nm": ("nm", "inelastic mean free path that makes the median potential V0, per frame")}
    ds = ds.assign_coords({k: (lead, res[k].transpose(*lead).data, {"units": units[k][0], "long_name": units[k][1]})
                           for k in scalars})
    attrs: dict[str, Any] = {"interaction_constant_rad_per_V_nm": c_e, "beam_energy_kV": kv}
    if phase_zero is not None:
        attrs["alignment_shift_px"] = "per frame: the alignment_shift_*_px coordinates" if align else [0.0, 0.0]
    if thickness_nm is not None:
        attrs["thickness_nm"] = float(thickness_nm)
    else:
        attrs["mip_V"] = float(mip_v)
        if phase_zero is None:
            attrs["mean_free_path_nm"] = "per frame: the mean_free_path_nm coordinate"
    attrs.update(route=route, vacuum_reference=mask is not None, primary="potential")
    ds.attrs = attrs
    params = {"kv": kv, "thickness_nm": thickness_nm, "mip_V": mip_v, "zero": phase_zero is not None,
              "align": bool(align), "vacuum": mask is not None}
    inputs = [phase] + ([phase_zero] if phase_zero is not None else [])
    return with_provenance(ds, "ionscope.holography.potential_map", params, inputs, history=provenance(phase))


def potential_map(
    phase: xr.DataArray,
    kv: float,
    *,
    thickness_nm: float | None = None,
    mip_v: float | None = None,
    phase_zero: xr.DataArray | None = None,
    amplitude: xr.DataArray | None = None,
    amplitude_zero: xr.DataArray | None = None,
    vacuum: Any = None,
    align: bool = False,
) -> xr.Dataset:
    """Potential map by one of the three routes of ``ionscope holo potential``.

    - ``thickness_nm`` given: ``V = dphi / (C_E t)``, ``dphi`` = ``phase - phase_zero`` if a 0 V
      phase is given, else ``phase`` (then ``V`` includes the mean inner potential).
    - ``mip_v`` and ``phase_zero``: the thickness map ``t = phase_zero / (C_E V0)`` (vacuum
      phase at zero), then ``V = (phase - phase_zero) / (C_E t)``: the bias-induced potential.
    - ``mip_v`` without ``phase_zero``: the relative thickness ``t / lambda_in`` from the
      amplitude, scaled by the mean free path that makes the median potential of the specimen
      equal ``V0`` (``lambda_in = median(phase / (C_E V0 t/lambda_in))``); ``V`` then shows
      where the potential departs from the mean inner potential. Needs the vacuum.

    Parameters
    ----------
    phase : xarray.DataArray
        Unwrapped phase (rad), dims ``(y, x)``, or a series of them (dims y, x and e.g. time).
    kv : float
        Accelerating voltage, kV.
    thickness_nm, mip_v : float
        Exactly one: a uniform thickness (nm) or the mean inner potential (V).
    phase_zero : xarray.DataArray, optional
        Phase of the same area at 0 V.
    amplitude, amplitude_zero : xarray.DataArray, optional
        Amplitudes (the first for the thickness route without ``phase_zero``; both for ``align``).
    vacuum : ndarray or DataArray of bool, optional
        Vacuum pixels: phase reference (set to zero) and thickness reference.
    align : bool
        Align the 0 V image onto the biased one by the amplitudes first.

    Returns
    -------
    xarray.Dataset
        ``potential`` (V, NaN where the thickness is not positive); ``thickness`` (nm) for the
        mean-inner-potential routes; ``phase_difference`` (rad) when ``phase_zero`` is given;
        attrs ``route``, ``interaction_constant_rad_per_V_nm`` [, ``mean_free_path_nm``].

    Computes: for one (y, x) map, loads it (a dask-backed one is computed) and returns
    numpy-backed results - the routes take medians over the whole map (the vacuum offset, and
    the mean free path that makes the specimen's median potential V0) and may align two images
    by cross-correlation, all before the per-pixel division. For a series (``phase`` with dims
    y, x and e.g. time), nothing while building: each frame goes through exactly the map's
    computation inside one dask task per chunk of frames (y, x rechunked to one chunk), so a
    dask-backed series gives a dask-backed Dataset equal to the maps' results frame by frame
    (numpy in, numpy out). ``phase_zero``, ``amplitude`` and ``amplitude_zero`` may be series
    like ``phase`` (paired frame by frame) or one (y, x) map for all frames - a dask-backed map
    is then computed once, while building. The per-frame numbers become coordinates along the
    series, computed with the result: ``vacuum_offset_rad`` [, ``alignment_shift_y_px``,
    ``alignment_shift_x_px``] with ``phase_zero``, ``mean_free_path_nm`` on the amplitude
    route; errors found in a frame's values (e.g. a negative mean free path) are raised when
    the result is computed.
    """
    if (thickness_nm is None) == (mip_v is None):
        raise ConfigError("give exactly one of thickness_nm (--thickness) and mip_v (--mip)")
    if isinstance(phase, xr.DataArray) and phase.ndim > 2:
        return _potential_map_series(phase, kv, thickness_nm=thickness_nm, mip_v=mip_v, phase_zero=phase_zero,
                                     amplitude=amplitude, amplitude_zero=amplitude_zero, vacuum=vacuum, align=align)
    phase = _map(phase, "phase")
    kv = _check_kv(kv)
    c_e = electron_interaction_constant(kv)
    mask = _vacuum_values(phase, vacuum)
    phi = np.asarray(phase.values, dtype=np.float64)
    out: dict[str, xr.DataArray] = {}
    attrs: dict[str, Any] = {"interaction_constant_rad_per_V_nm": c_e, "beam_energy_kV": kv}
    if phase_zero is not None:
        pair = (amplitude, amplitude_zero) if align else None
        if align and (amplitude is None or amplitude_zero is None):
            raise ConfigError("align needs the amplitudes of both images")
        diff = phase_difference(phase, phase_zero, vacuum=mask, align=pair)
        out["phase_difference"] = diff
        dphi = np.asarray(diff.values, dtype=np.float64)
        zero = np.asarray(phase_zero.transpose("y", "x").values, dtype=np.float64)
        if align:
            zero = shift_image(zero, diff.attrs["alignment_shift_px"], method="spline")
        if mask is not None:
            zero = zero - float(np.nanmedian(zero[mask]))
        attrs["alignment_shift_px"] = diff.attrs["alignment_shift_px"]
    else:
        dphi = phi - (float(np.nanmedian(phi[mask])) if mask is not None else 0.0)
        zero = None
    if thickness_nm is not None:
        route = _route(thickness_nm, phase_zero)
        t: Any = float(thickness_nm)
        if not (np.isfinite(t) and t > 0):
            raise ConfigError(f"thickness must be a positive number of nm, got {thickness_nm!r}")
        attrs["thickness_nm"] = t
    elif zero is not None:
        route = _route(thickness_nm, phase_zero)
        if not (np.isfinite(mip_v) and mip_v > 0):
            raise ConfigError(f"the mean inner potential must be positive, got {mip_v!r}")
        specimen0 = np.isfinite(zero) & (~mask if mask is not None else True)
        if mask is not None and specimen0.any() and float(np.median(zero[specimen0])) < 0:
            raise InputError(
                "the 0 V phase lies below the vacuum's in the specimen, where a positive mean inner "
                "potential raises it; check the vacuum region, or reconstruct both holograms with the "
                "other sideband (--sideband lower or upper): the sign convention (holospy's default) "
                "may be the opposite on this microscope"
            )
        t = thickness_kernel(zero, c_e, float(mip_v))
        t = np.where(t > 0.02 * np.nanmax(t), t, np.nan)
        if mask is not None:
            t[mask] = np.nan
        out["thickness"] = _like(phase, t, "thickness", "nm", "thickness from the 0 V phase and the mean inner potential")
        attrs["mip_V"] = float(mip_v)
    else:
        route = _route(thickness_nm, phase_zero)
        if amplitude is None or mask is None:
            raise ConfigError(
                "--mip without --zero needs the amplitude and a vacuum region (to scale the "
                "amplitude thickness); give a 0 V result with --zero or a thickness"
            )
        if not (np.isfinite(mip_v) and mip_v > 0):
            raise ConfigError(f"the mean inner potential must be positive, got {mip_v!r}")
        amp = _map(amplitude, "amplitude")
        rel = relative_thickness(np.asarray(amp.values, dtype=np.float64), float(np.nanmedian(np.asarray(amp.values)[mask])))
        specimen = (~mask) & np.isfinite(rel) & (rel > MIN_RELATIVE_THICKNESS * 5)
        if specimen.sum() < 16:
            raise InputError("no specimen pixels with a measurable amplitude thickness (t / lambda_in > 0.1)")
        mfp = float(np.nanmedian(dphi[specimen] / (c_e * float(mip_v) * rel[specimen])))
        if not (np.isfinite(mfp) and mfp > 0):
            raise InputError(
                f"the mean free path scaled by the mean inner potential is {mfp:.3g} nm: the "
                "phase is not positive in the specimen, where a positive mean inner potential "
                "raises it; check the vacuum region, or reconstruct with the other sideband "
                "(--sideband lower or upper): the sign convention (holospy's default) may be the "
                "opposite on this microscope"
            )
        t = np.where(rel > MIN_RELATIVE_THICKNESS, rel * mfp, np.nan)
        t[mask] = np.nan
        out["thickness"] = _like(phase, t, "thickness", "nm", "thickness from the amplitude (mean free path from the mean inner potential)")
        attrs["mip_V"] = float(mip_v)
        attrs["mean_free_path_nm"] = mfp
    v = potential_from_phase(dphi, c_e, t)
    out["potential"] = _like(phase, v, "potential", "V",
                             "bias-induced potential" if phase_zero is not None else "projected mean potential",
                             beam_energy_kV=kv)
    ds = xr.Dataset({k: out[k] for k in ("potential", *[k for k in out if k != "potential"])})
    attrs["route"] = route
    attrs["vacuum_reference"] = mask is not None
    attrs["primary"] = "potential"
    ds.attrs = attrs
    params = {"kv": kv, "thickness_nm": thickness_nm, "mip_V": mip_v, "zero": phase_zero is not None,
              "align": bool(align), "vacuum": mask is not None}
    inputs = [phase] + ([phase_zero] if phase_zero is not None else [])
    return with_provenance(ds, "ionscope.holography.potential_map", params, inputs, history=provenance(phase))


def interaction_constant_table(kvs: Mapping[str, float] | None = None) -> dict[str, float]:
    """``C_E`` (rad / (V nm)) at common voltages, for reports: {"80 kV": ..., ...}."""
    kvs = kvs or {"80 kV": 80.0, "200 kV": 200.0, "300 kV": 300.0}
    return {k: electron_interaction_constant(v) for k, v in kvs.items()}


__all__ = [
    "potential_from_phase",
    "relative_thickness",
    "thickness_kernel",
    "phase_to_potential",
    "thickness_from_amplitude",
    "thickness_from_phase",
    "phase_difference",
    "potential_map",
    "align_to",
    "interaction_constant_table",
]
