r"""Leakage (stray) fields in holographic phase maps: vacuum flatness and a harmonic model.

A biased (or charged) lamella leaks electric field into the surrounding vacuum, which adds a
phase to every electron that passes it - in the vacuum beside the specimen and in the vacuum
above and below it. Where a beam path crosses no charge (the vacuum region of the map), the
projected potential is a solution of the two-dimensional Laplace equation: integrating
:math:`\nabla^2 V = 0` along the beam,

.. math:: (\partial_x^2 + \partial_y^2) \int V\,dz = -\big[\partial_z V\big]_{-\infty}^{\infty} = 0,

because the field vanishes far above and below the specimen. So the stray phase in vacuum is a
harmonic function of :math:`(x, y)`, and is modelled here as a linear combination of harmonic
functions of :math:`z = x + iy`:

- interior harmonics :math:`\mathrm{Re}\,\zeta^n, \mathrm{Im}\,\zeta^n` (:math:`\zeta` the
  centred, scaled position; :math:`n \le` ``degree``) for sources outside the field of view
  (the biasing electrodes, the holder); degree 1 is a plane (a uniform field, or a residual
  carrier tilt), degree 2 adds the saddle terms;
- optionally the fields of line charges :math:`\ln|z - z_k|` at known ``sources`` :math:`z_k`
  outside the vacuum (a biasing tip or electrode edge just beyond the map), as in the method of
  fundamental solutions.

What this removes is the field of charges *outside* the map (and the smooth, long-range
part of any field): the harmonic continuation into the specimen is only defined for sources
beyond the map. Fields of charges inside the map - the interface charges the measurement is
after, or charges on the specimen edge - have no such continuation; they are not leakage in
this sense, and a high-degree model would only fit them in the vacuum and extrapolate badly
(the cross-validated degree stays low for that reason). Hardware shielding (a grounded film on
the specimen, as in the seed work) remains the remedy for strong near fields.

The coefficients are fitted by linear least squares on vacuum pixels (eroded away from the
specimen edge, whose reconstructed phase the aperture smears into the vacuum - by about one
resolution length, the inverse aperture radius), the degree chosen by spatial (block)
cross-validation, and the model - a harmonic continuation of the vacuum field - is subtracted
everywhere. Its residual in vacuum, its value range over the specimen and a plane / curvature
check of the vacuum (:func:`vacuum_flatness`) are reported. Against a known (simulated) stray
phase, :func:`stray_removal_scores` gives the fraction removed in the vacuum and the change of
the specimen's phase compared with the noise.

The degree is the lowest whose cross-validation error is within one standard error (of the
fold-wise paired difference) of the best - the one-standard-error rule, which keeps finding
the field's degree under white noise as large as the field; pixels far off a preliminary fit
(e.g. 2 pi unwrapping jumps) are left out.

Accuracy (``benchmarks/holography_leakage.py``, seeds 0-7; twins of 256 x 256 px at 0.5 nm,
32 nm of vacuum, biased to 4 V: a leakage phase of 3.8 rad peak to valley, 0.9 rad rms over
the fitted vacuum):

- phase-shifting (16 frames with drift, uneven steps and biprism fringes; the reference
  matched to the drift, :func:`~ionscope.holography.phaseshift.drift_matched_reference`;
  vacuum eroded by 2 nm): 99.78-99.84 % of the stray phase removed at 2000 e/px per frame,
  99.06-99.45 % at 125 e/px per frame (the equal total dose of one 2000 e/px hologram); the
  specimen phase changes by 0.1-0.3x its noise within 15 nm of the edge;
- the model alone (the true phase plus an off-axis reconstruction's shot noise, vacuum eroded
  by the 6 nm resolution): 99.00-99.53 % at 2000 e/px (98.62-99.23 % at 1000), the error
  mostly the shot noise projected onto the 7-9 terms; the specimen changes by 0.6-1.0x its
  noise within 15 nm of the edge (median 0.8x), and more deeper: the continuation from a
  20 nm thick vacuum band amplifies the fit's error with depth. With the carrier towards the
  vacuum (as the biprism makes it) the edge's sideband content sits where the detector MTF is
  higher, so the edge is reconstructed with less noise than with the carrier into the lamella
  (``benchmarks/holography_leakage_geometry.py``);
- off-axis with one single-biprism hologram: 97.4-98.5 % at 1000-4000 e/px. The floor is the
  reconstruction's own smooth vacuum error, 0.015 rad at 4 V: the biprism's Fresnel fringes
  in the hologram's centre band (the intensities of the two waves) streak along the carrier
  direction through the sideband, and the part inside the aperture is not multiplied by the
  object wave, so the reference division cancels it only where the object phase vanishes -
  the error, Im[c (exp(-i phi) - 1)], grows with the leakage phase phi. One hologram and one
  reference cannot separate it (same frequencies); a stack of references at shifted fringes
  can (:func:`~ionscope.holography.offaxis.reference_stack_terms`): with 8 of them the chain
  removes 98.8-99.2 % at 2000 e/px (the specimen change near the edge 1.2-1.8x its noise). Without the fringes (a double biprism) it reaches
  98.8-99.4 % at 2000 e/px, and 99.3-99.6 % on the biased-minus-0 V difference at 4000 e/px. The aperture's ringing at the specimen edge projects to only
  ~0.004 rad once the mask is eroded by the resolution.

References
----------
G. Matteucci, G.F. Missiroli, G. Pozzi, Adv. Imaging Electron Phys. 122, 173 (2002) (projected
potential of fields outside specimens). M.R. McCartney, D.J. Smith, Annu. Rev. Mater. Res. 37,
729 (2007) (stray fields in biased holography). Y. Aizawa et al., Ultramicroscopy 178, 20
(2017) (phase shifts of leakage fields around a biased Li-ion battery specimen).
A. Karageorghis, G. Fairweather, Comput. Methods Appl. Mech. Eng. 140 (1997)
(method of fundamental solutions).
D.R. Roberts et al., Ecography 40, 913 (2017) (spatial block cross-validation).
T. Hastie, R. Tibshirani, J. Friedman, The Elements of Statistical Learning, 2nd ed. (2009),
sec. 7.10 (one-standard-error rule). K. Harada et al., Appl. Phys. Lett. 84, 3229 (2004)
(double-biprism holography without Fresnel fringes).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import xarray as xr

from ionscope.data import axis_calibration, provenance, require_dims, signal, units_of, with_provenance
from ionscope.errors import ConfigError, DimensionError, InputError
from ionscope.units import length_to_nm
from ionscope.holography.harmonic import fit_harmonic_kernel, harmonic_basis  # noqa: F401  (re-exported)
from ionscope.validation import Interval, Options, validate_params



# --------------------------------------------------------------------------- geometry helpers


def pixel_grid(shape: tuple[int, int], spacing: tuple[float, float] = (1.0, 1.0),
               origin: tuple[float, float] = (0.0, 0.0)) -> tuple[np.ndarray, np.ndarray]:
    """``(y, x)`` coordinate grids (nm) of a map."""
    ny, nx = shape
    y = origin[0] + spacing[0] * np.arange(ny)
    x = origin[1] + spacing[1] * np.arange(nx)
    return np.meshgrid(y, x, indexing="ij")


def _geometry(da: xr.DataArray) -> tuple[tuple[float, float], tuple[float, float], str]:
    offs, steps, unit = [], [], "nm"
    for dim in ("y", "x"):
        off, step, u = axis_calibration(da, dim)
        f = length_to_nm(u)
        if f is None:
            f, unit = 1.0, "px"
        offs.append(off * f)
        steps.append(step * f)
    return tuple(offs), tuple(steps), unit


def _as_map(obj: Any, what: str) -> xr.DataArray:
    if not isinstance(obj, xr.DataArray):
        raise InputError(f"{what} must be an xarray DataArray with dims (y, x), got {type(obj).__name__}")
    require_dims(obj, ("y", "x"), what=what)
    return obj.transpose("y", "x")


def _mask(mask: Any, shape: tuple[int, int], what: str = "vacuum mask") -> np.ndarray:
    m = np.asarray(mask.values if isinstance(mask, xr.DataArray) else mask)
    if m.shape != shape:
        raise DimensionError(f"{what} shape {m.shape} differs from the map's {shape}")
    return m.astype(bool)


# --------------------------------------------------------------------------- vacuum detection


def detect_vacuum(amplitude: xr.DataArray | np.ndarray, *, smooth_px: float = 3.0,
                  erode_px: int = 0, min_separation: float = 3.5,
                  border_px: int | None = None) -> np.ndarray | None:
    """Vacuum pixels from the amplitude: the brighter class of a two-class (Otsu) split.

    Computes: loads the amplitude map and returns a numpy mask (or None).

    The amplitude is clipped to its 1-99 % percentiles (isolated outliers, e.g. at the
    apodised borders), smoothed (Gaussian, ``smooth_px``) and split at Otsu's threshold
    (computed away from the borders); the bright class is vacuum if it is distinct - class
    medians more than ``min_separation`` pooled robust (MAD) standard deviations apart; a
    unimodal Gaussian gives 2.3, a uniform ramp 2.7, a lamella whose amplitude spreads with a
    thickness wedge next to 25 % of vacuum 3.8-4.1 (the 160 px holography twin) - and covers
    3-97 % of the map. Only
    connected parts of the bright class larger than 1 % of the map are kept.

    Parameters
    ----------
    amplitude : DataArray or ndarray (y, x)
        Reconstructed amplitude.
    smooth_px : float
        Smoothing before the split, px.
    erode_px : int
        Erode the mask by this many pixels (keep clear of the specimen edge).
    min_separation : float
        Least contrast between the classes, in pooled robust standard deviations.
    border_px : int, optional
        Border left out of the threshold (:func:`border_mask`).

    Returns
    -------
    ndarray of bool or None
        The mask, or None when no distinct vacuum region is found.
    """
    from scipy.ndimage import binary_erosion, gaussian_filter, label
    from skimage.filters import threshold_otsu

    a = np.asarray(amplitude.values if isinstance(amplitude, xr.DataArray) else amplitude, dtype=np.float64)
    if a.ndim != 2:
        raise DimensionError(f"detect_vacuum needs a 2-D amplitude map, got shape {a.shape}")
    finite = np.isfinite(a)
    if finite.sum() < 64:
        return None
    lo, hi = np.nanpercentile(a, [1.0, 99.0])
    a = np.clip(np.where(finite, a, np.nanmedian(a)), lo, hi)  # outliers (e.g. at the borders)
    sm = gaussian_filter(a, smooth_px) if smooth_px > 0 else a
    if np.ptp(sm) == 0:
        return None
    inner = border_mask(a.shape, border_px)
    vals = sm[inner] if inner.sum() >= 64 else sm.ravel()
    thr = threshold_otsu(vals)
    hi, lo = vals[vals > thr], vals[vals <= thr]
    frac = hi.size / vals.size
    if not (0.03 <= frac <= 0.97):
        return None

    def mad(v: np.ndarray) -> float:
        return float(1.4826 * np.median(np.abs(v - np.median(v))))

    pooled = np.sqrt(0.5 * (mad(hi) ** 2 + mad(lo) ** 2))
    if pooled > 0 and (np.median(hi) - np.median(lo)) / pooled < min_separation:
        return None
    bright = sm > thr
    lab, n = label(bright)
    sizes = np.bincount(lab.ravel())
    keep = np.zeros(n + 1, dtype=bool)
    keep[1:] = sizes[1:] >= 0.01 * a.size
    mask = keep[lab] & finite
    if erode_px > 0:
        mask = binary_erosion(mask, iterations=int(erode_px))
    return mask if mask.sum() >= 16 else None


# --------------------------------------------------------------------------- flatness


def _poly_design(yc: np.ndarray, xc: np.ndarray, order: int) -> np.ndarray:
    cols = [np.ones_like(yc)]
    if order >= 1:
        cols += [yc, xc]
    if order >= 2:
        cols += [yc * yc, yc * xc, xc * xc]
    return np.stack(cols, axis=-1)


def flatness_kernel(phase: np.ndarray, mask: np.ndarray, y_nm: np.ndarray, x_nm: np.ndarray) -> dict[str, float]:
    """Plane and quadratic fits of the phase over ``mask`` (see :func:`vacuum_flatness`)."""
    sel = mask & np.isfinite(phase)
    if sel.sum() < 6:
        raise InputError(f"the vacuum region holds {int(sel.sum())} valid pixels; at least 6 are needed")
    yc, xc = y_nm[sel] - y_nm[sel].mean(), x_nm[sel] - x_nm[sel].mean()
    v = phase[sel].astype(np.float64)
    out: dict[str, float] = {"vacuum_pixels": int(sel.sum())}
    a1, *_ = np.linalg.lstsq(_poly_design(yc, xc, 1), v, rcond=None)
    r1 = v - _poly_design(yc, xc, 1) @ a1
    out["offset_rad"] = float(a1[0])
    out["slope_y_rad_per_nm"] = float(a1[1])
    out["slope_x_rad_per_nm"] = float(a1[2])
    out["slope_rad_per_nm"] = float(np.hypot(a1[1], a1[2]))
    out["slope_direction_deg"] = float(np.degrees(np.arctan2(a1[1], a1[2])))
    out["rms_about_mean_rad"] = float(np.std(v))
    out["rms_about_plane_rad"] = float(np.sqrt(np.mean(r1**2)))
    out["peak_to_valley_rad"] = float(np.ptp(v))
    design2 = _poly_design(yc, xc, 2)
    if sel.sum() >= 12:
        a2, *_ = np.linalg.lstsq(design2, v, rcond=None)
        r2 = v - design2 @ a2
        hess = np.array([[2 * a2[3], a2[4]], [a2[4], 2 * a2[5]]])
        eig = np.linalg.eigvalsh(hess)
        out["curvature_min_rad_per_nm2"] = float(eig[0])
        out["curvature_max_rad_per_nm2"] = float(eig[1])
        out["laplacian_rad_per_nm2"] = float(np.trace(hess))
        out["rms_about_quadratic_rad"] = float(np.sqrt(np.mean(r2**2)))
        extent = float(max(np.ptp(yc), np.ptp(xc)))
        out["curvature_phase_over_extent_rad"] = float(np.max(np.abs(eig)) * extent**2 / 8)
    return out


def border_mask(shape: tuple[int, int], border_px: int | None = None) -> np.ndarray:
    """True away from the image borders (``border_px``; default 5 % of the smaller size, the
    order of a reconstruction's apodisation taper, where the phase is unreliable)."""
    ny, nx = shape
    b = int(round(0.05 * min(ny, nx))) if border_px is None else int(border_px)
    if b < 0:
        raise ConfigError(f"border_px must be non-negative, got {border_px!r}")
    keep = np.zeros(shape, dtype=bool)
    if 2 * b < ny and 2 * b < nx:
        keep[b : ny - b, b : nx - b] = True
    return keep


def vacuum_flatness(phase: xr.DataArray, vacuum: Any, *, border_px: int | None = None) -> dict[str, float]:
    """How flat the vacuum phase is: plane (slope) and quadratic (curvature) fits.

    Computes: loads the phase map and returns plain numbers.

    Parameters
    ----------
    phase : xarray.DataArray
        Unwrapped phase (rad), dims ``(y, x)``, coordinates in nm (pixels otherwise).
    vacuum : ndarray or DataArray of bool
        Vacuum pixels.
    border_px : int, optional
        Pixels at the image borders left out (:func:`border_mask`).

    Returns
    -------
    dict
        ``slope_rad_per_nm`` (magnitude of the fitted plane's gradient), ``slope_y/x``,
        ``slope_direction_deg`` (of the up-hill direction, from +x towards +y),
        ``curvature_min/max_rad_per_nm2`` (eigenvalues of the quadratic's Hessian),
        ``laplacian_rad_per_nm2`` (trace of the Hessian: zero for a harmonic stray field, so a
        non-zero value points to other causes such as reference distortions),
        ``curvature_phase_over_extent_rad`` (the phase the curvature adds over the vacuum's
        extent), ``rms_about_mean/plane/quadratic_rad``, ``peak_to_valley_rad``,
        ``vacuum_pixels``. Lengths are in nm (px for uncalibrated maps; keys keep their names).
    """
    phase = _as_map(phase, "phase")
    mask = _mask(vacuum, phase.shape) & border_mask(phase.shape, border_px)
    (oy, ox), (dy, dx), _ = _geometry(phase)
    yy, xx = pixel_grid(phase.shape, (dy, dx), (oy, ox))
    return flatness_kernel(np.asarray(phase.values, dtype=np.float64), mask, yy, xx)


# --------------------------------------------------------------------------- stray-field fit


@validate_params({
    "multipole_order": [Interval(int, 0, None)],
    "erode_px": [Interval(int, 0, None, unit="px")],
    "cv": [Options({"blocks", "sectors"})],
})
def fit_stray_field(
    phase: xr.DataArray,
    vacuum: Any,
    *,
    degree: int | str = "auto",
    max_degree: int = 8,
    sources: Sequence[tuple[float, float]] = (),
    multipole_order: int = 0,
    multipole_center: tuple[float, float] | None = None,
    erode_px: int = 4,
    border_px: int | None = None,
    ridge: float = 0.0,
    cv: str = "blocks",
    outlier_sigma: float | None = 5.0,
) -> xr.Dataset:
    """Fit a harmonic (Laplace) model of the stray-field phase in vacuum and subtract it.

    Computes: loads the phase map and returns numpy-backed maps.

    Parameters
    ----------
    phase : xarray.DataArray
        Unwrapped phase (rad), dims ``(y, x)`` (coordinates in nm, or pixels).
    vacuum : ndarray or DataArray of bool
        Vacuum pixels (e.g. :func:`detect_vacuum`); eroded by ``erode_px`` before the fit.
    degree : int or "auto"
        Degree of the interior harmonics (1 = plane); ``auto`` by spatial cross-validation.
    max_degree : int
        Highest degree tried by ``auto``.
    sources : sequence of (y, x) nm
        Positions of known localised sources outside the vacuum, e.g. a biasing tip or an
        electrode edge just beyond the map, modelled as line charges ``ln|z - z_k|`` (their
        strengths are fitted). The model is singular at a source, so place them outside the
        map or where the corrected phase is not needed.
    multipole_order : int
        Add an exterior multipole series (``ln|z - m|``, ``(z - m)^-n``, n up to this order)
        about ``multipole_center`` (default: the centroid of the non-vacuum pixels) for charges
        inside the specimen; 0 = none. It diverges at ``m``, so the corrected phase close to
        it is not meaningful.
    multipole_center : (y, x) nm, optional
        Centre of the multipole series.
    erode_px : int
        Erosion of the vacuum mask, px: keeps the fit clear of the specimen edge, which the
        reconstruction aperture smears over about one resolution length.
    border_px : int, optional
        Pixels at the image borders left out of the fit (:func:`border_mask`; default 5 % of
        the smaller size).
    ridge : float
        Relative Tikhonov regularisation (useful with many sources), e.g. 1e-6.
    cv : {"blocks", "sectors"}
        Spatial cross-validation of ``degree="auto"`` (:func:`fit_harmonic_kernel`): square
        blocks spread over the vacuum (default) or angular sectors around its centroid.
    outlier_sigma : float or None
        Vacuum pixels further than this many robust standard deviations from a preliminary
        fit are left out (unwrapping jumps); None keeps all (:func:`fit_harmonic_kernel`).

    Returns
    -------
    xarray.Dataset
        ``phase_corrected`` (rad; input minus model, vacuum mean zero), ``stray_phase`` (the
        model, rad), ``stray_phase_error`` (rad: the model's standard error relative to the
        vacuum - how much the correction may change the specimen's phase where it is
        extrapolated; it grows with the distance from the vacuum, see
        :func:`~ionscope.holography.harmonic.fit_harmonic_kernel`) and ``vacuum`` (the mask
        used); attrs ``degree``, ``terms``,
        ``residual_rms_rad`` (vacuum, after), ``vacuum_rms_before_rad``, ``removed_fraction``
        (1 - residual rms / rms before), ``model_range_specimen_rad``, ``cv_rms_rad``,
        ``flatness_before`` / ``flatness_after`` (:func:`vacuum_flatness` dicts), provenance.

    Examples
    --------
    >>> import numpy as np
    >>> from ionscope.data import signal
    >>> yy, xx = np.mgrid[0:64, 0:64] * 1.0
    >>> phi = 0.02 * (xx - 32) + 1e-4 * ((xx - 32) ** 2 - (yy - 32) ** 2)  # harmonic
    >>> da = signal(phi, ("y", "x"), name="phase", units="rad", coords={"y": 1.0, "x": 1.0})
    >>> res = fit_stray_field(da, yy < 30, degree=2)
    >>> bool(res.attrs["removed_fraction"] > 0.999)
    True
    """
    from scipy.ndimage import binary_erosion

    phase = _as_map(phase, "phase")
    if units_of(phase) != "rad":
        raise InputError(f"phase must be in rad, got {units_of(phase)!r}")
    mask = _mask(vacuum, phase.shape)
    fit_mask = binary_erosion(mask, iterations=int(erode_px)) if erode_px > 0 else mask
    fit_mask &= border_mask(phase.shape, border_px)
    if fit_mask.sum() < 20:
        raise InputError(
            f"the vacuum mask has {int(fit_mask.sum())} pixels after eroding by {erode_px} px; "
            "give a larger vacuum region or a smaller erode_px"
        )
    (oy, ox), (dy, dx), _ = _geometry(phase)
    yy, xx = pixel_grid(phase.shape, (dy, dx), (oy, ox))
    phi = np.asarray(phase.values, dtype=np.float64)
    try:
        src = [(float(a), float(b)) for a, b in sources]
    except (TypeError, ValueError):
        raise ConfigError(f"sources must be a list of (y, x) positions in nm, got {sources!r}") from None
    m_center = None
    if multipole_order > 0:
        if multipole_center is not None:
            m_center = (float(multipole_center[0]), float(multipole_center[1]))
        elif (~mask).any():
            m_center = (float(yy[~mask].mean()), float(xx[~mask].mean()))
        else:
            raise ConfigError("multipole_order > 0 needs a multipole_center (the map is all vacuum)")
    fit = fit_harmonic_kernel(phi, fit_mask, yy, xx, degree=degree, max_degree=max_degree,
                              sources=src, ridge=ridge, multipole_center=m_center,
                              multipole_order=int(multipole_order), cv=cv, outlier_sigma=outlier_sigma)
    model = fit["model"]
    corrected = phi - model  # least squares with a constant term: vacuum mean zero
    before = flatness_kernel(phi, fit_mask, yy, xx)
    after = flatness_kernel(corrected, fit_mask, yy, xx)
    specimen = ~mask
    rng = float(np.ptp(model[specimen])) if specimen.any() else 0.0
    coords = {d: phase[d] for d in ("y", "x")}
    base = {"provenance": phase.attrs.get("provenance", "[]")}
    ds = xr.Dataset({
        "phase_corrected": xr.DataArray(corrected, dims=("y", "x"), coords=coords,
                                        attrs={**base, "units": "rad", "long_name": "phase minus the stray-field model"}),
        "stray_phase": xr.DataArray(model, dims=("y", "x"), coords=coords,
                                    attrs={"units": "rad", "long_name": "harmonic stray-field model"}),
        "stray_phase_error": xr.DataArray(
            fit["model_error"], dims=("y", "x"), coords=coords,
            attrs={"units": "rad", "long_name": "standard error of the stray-field model relative to the vacuum "
                   "(block jackknife plus the change one more degree makes)"}),
        "vacuum": xr.DataArray(fit_mask, dims=("y", "x"), coords=coords,
                               attrs={"units": "1", "long_name": "vacuum pixels used for the fit"}),
    })
    before_rms = fit["vacuum_rms_before_rad"]
    ds.attrs = {
        "degree": fit["degree"], "terms": fit["names"], "sources_nm": fit["sources_nm"],
        "residual_rms_rad": fit["residual_rms_rad"], "vacuum_rms_before_rad": before_rms,
        "removed_fraction": float(1.0 - fit["residual_rms_rad"] / before_rms) if before_rms > 0 else 0.0,
        "model_range_specimen_rad": rng, "cv_rms_rad": fit["cv_rms_rad"],
        "outlier_pixels": fit["outlier_pixels"],
        "flatness_before": before, "flatness_after": after, "primary": "phase_corrected",
    }
    params = {"degree": degree, "max_degree": max_degree, "sources": fit["sources_nm"],
              "multipole_order": int(multipole_order), "multipole_center_nm": m_center,
              "erode_px": erode_px, "border_px": border_px, "ridge": ridge, "cv": cv,
              "outlier_sigma": outlier_sigma}
    return with_provenance(ds, "ionscope.holography.fit_stray_field", params, [phase],
                           history=provenance(phase))


# --------------------------------------------------------------------------- scores vs. truth


def _robust_std(v: np.ndarray) -> float:
    """1.4826 x median absolute deviation: the standard deviation of the Gaussian part,
    not inflated by rare outliers (e.g. unwrapping jumps of 2 pi)."""
    return float(1.4826 * np.median(np.abs(v - np.median(v)))) if v.size else float("nan")


def stray_removal_scores(
    model: Any,
    truth: Any,
    fit_mask: Any,
    vacuum: Any,
    *,
    regions: dict[str, Any] | None = None,
    noise: Any = None,
) -> dict[str, Any]:
    r"""How much of a known (simulated) stray phase a model removes, and how much it changes
    the specimen.

    With the model error :math:`e = \varphi_\mathrm{model} - \varphi_s` and the true stray
    phase :math:`\varphi_s`, over a mask M

    .. math:: f_M = 1 - \frac{\mathrm{rms}_M(e - \bar e_M)}{\mathrm{rms}_M(\varphi_s -
              \bar\varphi_{s,M})},

    the fraction of the stray phase removed (1 = all; constants are left out of both, a
    phase offset being no field). Subtracting the model changes the specimen's own phase by
    :math:`-(e - \bar e_\mathrm{fit})` (relative to the vacuum, which the subtraction sets to
    mean zero over the fit mask); its rms over each of ``regions`` is compared with the phase
    noise there.

    Parameters
    ----------
    model, truth : ndarray or DataArray (y, x)
        Fitted and true stray phase (rad).
    fit_mask : ndarray of bool
        Vacuum pixels the model was fitted on (``fit_stray_field(...)["vacuum"]``).
    vacuum : ndarray of bool
        The whole vacuum.
    regions : dict of str to ndarray of bool, optional
        Specimen regions for the phase change (e.g. the whole specimen, a profile band).
    noise : ndarray or DataArray (y, x), optional
        The map's phase noise (rad), e.g. a noisy minus a noise-free reconstruction; its
        robust standard deviation (1.4826 MAD, not inflated by rare 2 pi unwrapping jumps) is
        reported over the fit mask and each region.

    Returns
    -------
    dict
        ``removed_fraction_fit``, ``removed_fraction_vacuum``, ``model_error_rms_fit_rad``,
        ``model_error_rms_vacuum_rad``, ``stray_rms_fit_rad``, ``stray_rms_vacuum_rad``
        (about the mean), ``specimen_change_rms_rad`` (dict per region); with ``noise``:
        ``phase_noise_rad`` (dict: ``fit`` and each region) and ``change_over_noise``
        (dict per region).

    Examples
    --------
    >>> import numpy as np
    >>> yy, xx = np.mgrid[0:32, 0:32] * 1.0
    >>> truth = 0.1 * xx  # a uniform field
    >>> vac = yy < 12
    >>> s = stray_removal_scores(1.1 * truth, truth, vac, vac, regions={"specimen": ~vac})
    >>> round(s["removed_fraction_fit"], 3)  # the model overestimates the field by 10 %
    0.9
    """
    m = np.asarray(getattr(model, "values", model), dtype=np.float64)
    t = np.asarray(getattr(truth, "values", truth), dtype=np.float64)
    if m.ndim != 2 or m.shape != t.shape:
        raise DimensionError(f"model {m.shape} and truth {t.shape} must be 2-D maps of the same shape")
    fit = _mask(fit_mask, m.shape, "fit mask")
    vac = _mask(vacuum, m.shape, "vacuum mask")
    regions = dict(regions or {})
    masks = {name: _mask(r, m.shape, f"region {name!r}") for name, r in regions.items()}
    for name, mk in (("fit mask", fit), ("vacuum mask", vac), *masks.items()):
        if mk.sum() < 2:
            raise InputError(f"the {name} holds {int(mk.sum())} pixels; at least 2 are needed")
    e = m - t
    if not (np.isfinite(e[fit]).all() and np.isfinite(e[vac]).all()):
        raise InputError("model or truth holds NaN/inf values in the vacuum; give finite maps")

    def centred_rms(v: np.ndarray) -> float:
        return float(np.sqrt(np.mean((v - v.mean()) ** 2)))

    out: dict[str, Any] = {}
    for key, mk in (("fit", fit), ("vacuum", vac)):
        err, ref = centred_rms(e[mk]), centred_rms(t[mk])
        out[f"model_error_rms_{key}_rad"] = err
        out[f"stray_rms_{key}_rad"] = ref
        out[f"removed_fraction_{key}"] = float(1.0 - err / ref) if ref > 0 else float("nan")
    change = e - e[fit].mean()
    out["specimen_change_rms_rad"] = {name: float(np.sqrt(np.nanmean(change[mk] ** 2))) for name, mk in masks.items()}
    if noise is not None:
        n = np.asarray(getattr(noise, "values", noise), dtype=np.float64)
        if n.shape != m.shape:
            raise DimensionError(f"noise map {n.shape} differs from the model's {m.shape}")
        level = {"fit": _robust_std(n[fit & np.isfinite(n)])}
        level.update({name: _robust_std(n[mk & np.isfinite(n)]) for name, mk in masks.items()})
        out["phase_noise_rad"] = level
        out["change_over_noise"] = {name: out["specimen_change_rms_rad"][name] / level[name]
                                    if level[name] > 0 else float("inf") for name in masks}
    return out



def twin_leakage_scores(
    phase: Any,
    twin: xr.Dataset,
    *,
    erode_px: int,
    noise: Any = None,
    regions: dict[str, Any] | None = None,
    depths_nm: tuple[float, float] = (15.0, 30.0),
    **fit: Any,
) -> tuple[dict[str, Any], xr.Dataset]:
    """Fit the stray-field model to a phase map of a holography twin and score it against
    the twin's true stray phase.

    Computes: loads the maps and returns plain scores and numpy-backed maps.

    The vacuum is the twin's (``region == 0``), eroded by ``erode_px`` (e.g. the resolution
    of an off-axis reconstruction, the inverse aperture radius, whose ringing at the specimen
    edge reaches about that far into the vacuum); :func:`fit_stray_field` runs on it and
    :func:`stray_removal_scores` compares the model with ``phase_stray``.

    Parameters
    ----------
    phase : DataArray or ndarray (y, x)
        Phase (rad) on the twin's grid: a reconstruction, or the twin's ``phase_true`` plus
        noise (to isolate the model from the reconstruction).
    twin : xarray.Dataset
        A ``holography`` or ``holography_ps`` twin (``region``, ``phase_stray``, coordinates).
    erode_px : int
        Erosion of the vacuum before the fit, px.
    noise : ndarray (y, x), optional
        The map's phase noise (e.g. a noisy minus a noise-free reconstruction), for the
        change-over-noise scores.
    regions : dict of str to ndarray of bool, optional
        Extra specimen regions to score (e.g. a profile band).
    depths_nm : (float, float)
        Depth limits (nm below the vacuum) of the default regions ``edge_<a>nm`` (depth <= a)
        and ``band_<a>_<b>nm``; ``specimen`` is the whole specimen.
    **fit
        Passed to :func:`fit_stray_field` (e.g. ``degree``, ``cv``).

    Returns
    -------
    scores : dict
        :func:`stray_removal_scores` plus ``degree``, ``erosion_px`` and
        ``predicted_change_rms_rad`` (per region: the rms of the fit's ``stray_phase_error``,
        to compare with ``specimen_change_rms_rad``).
    fit : xarray.Dataset
        The :func:`fit_stray_field` result.
    """
    from scipy.ndimage import binary_erosion, distance_transform_edt

    if not isinstance(twin, xr.Dataset) or "region" not in twin or "phase_stray" not in twin:
        raise InputError("twin must be a holography twin Dataset with 'region' and 'phase_stray'")
    vac = np.asarray(twin["region"].values) == 0
    h = float(twin.attrs.get("pixel_size_nm", 1.0))
    depth = distance_transform_edt(~vac) * h
    a, b = depths_nm
    masks = {f"edge_{a:g}nm": ~vac & (depth <= a), f"band_{a:g}_{b:g}nm": ~vac & (depth > a) & (depth <= b),
             "specimen": ~vac, **(regions or {})}
    values = np.asarray(getattr(phase, "values", phase), dtype=np.float64)
    da = signal(values, ("y", "x"), name="phase", units="rad",
                coords={"y": twin["y"].values, "x": twin["x"].values})
    mask = binary_erosion(vac, iterations=int(erode_px)) if erode_px > 0 else vac
    res = fit_stray_field(da, mask, erode_px=0, **fit)
    scores = stray_removal_scores(res["stray_phase"].values, twin["phase_stray"].values, res["vacuum"].values,
                                  vac, regions=masks, noise=noise)
    predicted = res["stray_phase_error"].values
    scores["predicted_change_rms_rad"] = {name: float(np.sqrt(np.mean(predicted[mk] ** 2)))
                                          for name, mk in masks.items()}
    return {"degree": int(res.attrs["degree"]), "erosion_px": int(erode_px), **scores}, res


__all__ = [
    "detect_vacuum",
    "vacuum_flatness",
    "flatness_kernel",
    "harmonic_basis",
    "fit_harmonic_kernel",
    "fit_stray_field",
    "stray_removal_scores",
    "pixel_grid",
    "border_mask",
    "twin_leakage_scores",
]
