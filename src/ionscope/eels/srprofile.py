r"""Position-resolved EELS (SR-EELS): a Li-K profile across an interface and its width.

An SR-EELS image records energy loss against position along the slit, across an interface
(e.g. Cu | Li-Al-Ge-Ti-P-O solid electrolyte). :func:`sr_profile` turns it into a 1-D profile
of the background-subtracted Li-K window integral; :func:`interface_and_width` fits a step or
decay model to locate the interface and measure the width of the Li-enriched (or depleted)
zone, with standard errors from the fit covariance.

Models (positions :math:`s` in nm, :math:`\Phi` the standard normal CDF)
--------------------------------------------------------------------------
``"erf"`` - a blurred step from level :math:`c` to level :math:`b`,

.. math:: I(s) = c + (b - c)\,\Phi\big((s - s_0)/w\big),

interface :math:`s_0`, width :math:`w` (Gaussian sigma); ``w90`` is the 10-90 % rise
distance :math:`2 \cdot 1.2816\,w`.

``"exponential"`` - enrichment (:math:`h > 0`) or depletion (:math:`h < 0`) that decays with
length :math:`\lambda` from the interface into the material on one ``side`` of it, on top of a
step between the two materials' levels, all blurred by a Gaussian of sigma :math:`\sigma`
(probe size, interface roughness). For ``side="right"`` (the layer at :math:`s > s_0`), with
:math:`u = s - s_0`,

.. math:: I(s) = c + (b - c)\,\Phi(u/\sigma) + h\,
          e^{\sigma^2/2\lambda^2 - u/\lambda}\,\Phi(u/\sigma - \sigma/\lambda),

the convolution of :math:`c + (b - c) H(u) + h H(u) e^{-u/\lambda}` with the Gaussian (an
exponentially modified Gaussian); ``side="left"`` mirrors it. The width is :math:`\lambda`;
``w90`` = :math:`\lambda \ln 10`, the distance holding 90 % of the excess Li.

References
----------
R.F. Egerton, *Electron Energy-Loss Spectroscopy in the Electron Microscope*, 3rd ed.,
Springer (2011), section 4.5 (window integrals). E. Grushka, Anal. Chem. 44 (1972) 1733
(exponentially modified Gaussian).
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
import xarray as xr
from scipy.optimize import OptimizeWarning, curve_fit
from scipy.special import erfcx, ndtr

from ionscope.data import provenance, units_of, with_provenance
from ionscope.eels.background import MASK_OK
from ionscope.eels.windows import window_map
from ionscope.errors import ConvergenceError, DimensionError, InputError

MODELS = ("exponential", "erf")
SIDES = ("auto", "left", "right")
_LENGTH_TO_NM = {"nm": 1.0, "å": 0.1, "a": 0.1, "angstrom": 0.1, "pm": 1e-3, "um": 1e3, "µm": 1e3,
                 "μm": 1e3, "micron": 1e3}
_W90_ERF = 2 * 1.2815515655446004


# --------------------------------------------------------------------------- profile


def sr_profile(
    da: xr.DataArray,
    window: Sequence[float],
    background: Sequence[float] | None = None,
    *,
    method: str = "fit",
    weighted: bool = True,
) -> xr.DataArray:
    """Li-K (or any edge) window integral along position from an SR-EELS image.

    Parameters
    ----------
    da : xarray.DataArray
        SR-EELS image in counts with dims ``(position, energy)``; a lone ``y`` or ``x`` dim
        (as files with a length axis load) is taken as ``position``. A ``time`` dim gives one
        profile per frame. numpy- or dask-backed (stays lazy).
    window : (float, float)
        Integration window, eV (e.g. Li-K ``(55, 65)``).
    background : (float, float), optional
        Pre-edge power-law window, eV (e.g. ``(45, 53)``); none subtracted if None.
    method : {"fit", "two-window"}
        Background estimator (:mod:`ionscope.eels.background`).
    weighted : bool
        Poisson weights for the ``"fit"`` method.

    Returns
    -------
    xarray.DataArray
        ``li_k_profile`` over ``position`` (counts, the position coordinate as given), with
        non-index coordinates ``std_error`` (Poisson standard error, counts) and ``mask``
        (int8 codes of :mod:`ionscope.eels.background`; NaN profile values where != 0).
    """
    dims = tuple(getattr(da, "dims", ()))
    spatial = [d for d in dims if d in ("position", "y", "x")]
    if len(spatial) != 1:
        raise DimensionError(
            f"an SR-EELS image needs one spatial dim ('position', or a lone 'y' or 'x') next to "
            f"'energy', got dims {dims}; rename the axis along the slit to 'position' (nm)"
        )
    if spatial[0] != "position":
        da = da.rename({spatial[0]: "position"})
    maps = window_map(da, window, background=background, method=method, weighted=weighted)
    prof = maps["integral"].rename("li_k_profile")
    prof = prof.assign_coords(std_error=maps["integral_error"].variable, mask=maps["mask"].variable)
    prof.attrs = {**maps["integral"].attrs, "long_name": "Li-K window integral along position",
                  "provenance": maps.attrs["provenance"]}
    return prof


# --------------------------------------------------------------------------- models


def _emg(u: np.ndarray, lam: float, sigma: float) -> np.ndarray:
    """Unit step-exponential ``H(u) exp(-u/lam)`` convolved with a Gaussian of sigma ``sigma``."""
    z = u / sigma - sigma / lam
    with np.errstate(over="ignore", under="ignore"):
        direct = np.exp(np.minimum(sigma**2 / (2 * lam**2) - u / lam, 700.0)) * ndtr(z)
        scaled = 0.5 * np.exp(-(u**2) / (2 * sigma**2)) * erfcx(-np.minimum(z, 0.0) / np.sqrt(2))
    return np.where(z >= 0, direct, scaled)


def _erf_model(s, c, b, s0, w):
    return c + (b - c) * ndtr((s - s0) / w)


def _exp_model(sign: float, blur: float | None):
    def model(s, c, b, h, s0, lam, *rest):
        sigma = rest[0] if blur is None else blur
        u = sign * (s - s0)
        step = ndtr(u / sigma)
        return c + (b - c) * step + h * _emg(u, lam, sigma)

    return model


def _smooth(y: np.ndarray, n: int) -> np.ndarray:
    k = max(1, n)
    kernel = np.ones(k) / k
    return np.convolve(np.pad(y, (k // 2, k - 1 - k // 2), mode="edge"), kernel, mode="valid")


def _start(s: np.ndarray, y: np.ndarray, model: str, side: str, blur: float | None):
    """Initial parameters and bounds from the profile's shape."""
    n = s.size
    ds = float(np.median(np.diff(s)))
    edge = max(2, n // 10)
    left, right = float(np.mean(y[:edge])), float(np.mean(y[-edge:]))
    ys = _smooth(y, max(3, n // 30))
    span = float(s[-1] - s[0])
    lo_s0, hi_s0 = float(s[0]), float(s[-1])
    if model == "erf":
        grad = np.gradient(ys, s) * np.sign(right - left or 1.0)
        s0 = float(s[np.argmax(grad)])
        p0 = [left, right, s0, 2 * ds]
        bounds = ([-np.inf, -np.inf, lo_s0, 1e-3 * ds], [np.inf, np.inf, hi_s0, span])
        return p0, bounds
    sign = 1.0 if side == "right" else -1.0
    inside, outside = (right, left) if side == "right" else (left, right)
    # interface: steepest change on the side facing the layer
    grad = np.abs(np.gradient(ys, s))
    s0 = float(s[np.argmax(grad)])
    u = sign * (s - s0)
    near = (u >= 0) & (u <= 0.2 * span)
    if np.any(near):
        peak = ys[near][np.argmax(np.abs(ys[near] - inside))]
    else:
        peak = ys[np.argmin(np.abs(u))]
    h = float(peak - inside)
    excess = np.clip((ys - inside) * np.sign(h or 1.0), 0, None)
    area = float(np.sum(excess[u >= 0]) * ds)
    lam = float(np.clip(area / abs(h) if h else 5 * ds, 2 * ds, span / 2))
    p0 = [outside, inside, h, s0, lam]
    lower = [-np.inf, -np.inf, -np.inf, lo_s0, 0.1 * ds]
    upper = [np.inf, np.inf, np.inf, hi_s0, 2 * span]
    if blur is None:
        p0.append(ds)
        lower.append(1e-2 * ds)
        upper.append(span / 4)
    return p0, (lower, upper)


def fit_interface(
    s: Any,
    y: Any,
    sigma: Any = None,
    *,
    model: str = "exponential",
    side: str = "auto",
    blur: float | None = None,
) -> dict[str, Any]:
    """Fit an interface model to a profile (kernel of :func:`interface_and_width`).

    Parameters
    ----------
    s : array_like, shape (n,)
        Positions, nm (increasing).
    y : array_like, shape (n,)
        Profile values.
    sigma : array_like, shape (n,), optional
        Standard errors of ``y``; used as absolute weights. Without them the residual scatter
        sets the error scale.
    model : {"exponential", "erf"}
        Interface model (module docstring).
    side : {"auto", "left", "right"}
        Side of the interface holding the decaying layer (``"exponential"`` only); ``"auto"``
        fits both and keeps the lower chi-squared.
    blur : float, optional
        Fixed Gaussian blur sigma, nm (``"exponential"`` only); fitted if None.

    Returns
    -------
    dict
        ``names`` (parameter names), ``values``, ``errors`` (standard errors), ``cov``,
        ``side``, ``chi2_reduced``, ``fitted`` (model at ``s``).

    Raises
    ------
    ConvergenceError
        If the least-squares fit fails or its covariance cannot be estimated.
    """
    s = np.asarray(s, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    weights = None if sigma is None else np.asarray(sigma, dtype=np.float64)
    if model not in MODELS:
        raise InputError(f"unknown interface model {model!r}; use one of {MODELS}")
    if side not in SIDES:
        raise InputError(f"unknown side {side!r}; use one of {SIDES}")
    if blur is not None and not (np.isfinite(blur) and blur > 0):
        raise InputError(f"blur must be a positive length in nm, got {blur!r}")
    n_par = 4 if model == "erf" else 5 + (blur is None)
    if s.ndim != 1 or s.shape != y.shape or s.size < n_par + 2:
        raise InputError(
            f"the profile needs at least {n_par + 2} points (got {y.size}) with matching positions"
        )
    if weights is not None and (weights.shape != y.shape or not np.all(weights > 0)):
        raise InputError("profile standard errors must be positive and match the profile")
    if not (np.all(np.isfinite(s)) and np.all(np.isfinite(y))):
        raise InputError("the profile holds NaN/inf (masked points?); drop them before fitting")
    if np.all(y == y[0]):
        raise InputError("the profile is constant; there is no interface to fit")
    if model == "erf":
        sides, names = ["right"], ["level_left", "level_right", "interface", "width"]
    else:
        sides = ["left", "right"] if side == "auto" else [side]
        names = ["level_outside", "level_inside", "amplitude", "interface", "width"]
        names += ["blur"] if blur is None else []
    best = None
    for sd in sides:
        func = _erf_model if model == "erf" else _exp_model(1.0 if sd == "right" else -1.0, blur)
        p0, bounds = _start(s, y, model, sd, blur)
        p0 = np.clip(p0, np.asarray(bounds[0]) + 1e-12, np.asarray(bounds[1]) - 1e-12)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", OptimizeWarning)
                popt, pcov = curve_fit(func, s, y, p0=p0, sigma=weights,
                                       absolute_sigma=weights is not None, bounds=bounds,
                                       max_nfev=20000)
        except (RuntimeError, ValueError) as exc:
            if len(sides) > 1:
                continue
            raise ConvergenceError(
                f"the {model} interface fit did not converge ({exc}); give a fixed blur or try "
                "the other model"
            ) from None
        fitted = func(s, *popt)
        res = (y - fitted) / (1.0 if weights is None else weights)
        chi2 = float(np.sum(res**2) / max(y.size - popt.size, 1))
        if best is None or chi2 < best["chi2_reduced"]:
            best = {"names": names, "values": popt, "cov": pcov, "side": sd, "chi2_reduced": chi2,
                    "fitted": fitted}
    if best is None:
        raise ConvergenceError(f"the {model} interface fit did not converge on either side")
    errors = np.sqrt(np.diag(best["cov"]))
    if not np.all(np.isfinite(errors)):
        raise ConvergenceError(
            f"the {model} interface fit cannot estimate its uncertainties (parameters not "
            "determined by the profile); fix the blur or use the erf model"
        )
    best["errors"] = errors
    if model == "erf":
        best["side"] = "n/a"
    return best


# --------------------------------------------------------------------------- wrapper


def interface_and_width(
    profile: xr.DataArray,
    *,
    model: str = "exponential",
    side: str = "auto",
    blur: float | None = None,
) -> xr.Dataset:
    """Interface position and enrichment/depletion width from a Li profile, with errors.

    Parameters
    ----------
    profile : xarray.DataArray
        1-D profile over ``position`` (nm, Å or µm), e.g. from :func:`sr_profile`; its
        ``std_error`` coordinate (if present) weights the fit, and points with a non-zero
        ``mask`` coordinate or NaN values are left out.
    model : {"exponential", "erf"}
        Decay of an enriched/depleted layer from the interface, or a plain step (see the
        module docstring).
    side : {"auto", "left", "right"}
        Side of the interface holding the layer (``"exponential"``); ``"auto"`` tries both.
    blur : float, optional
        Fixed Gaussian blur sigma, nm (``"exponential"``); fitted if None.

    Returns
    -------
    xarray.Dataset
        Scalars ``interface``, ``width``, ``w90`` (nm) and the model's other parameters, each
        with a ``<name>_error`` standard error; ``fit`` (the model along position); attrs
        ``model``, ``side``, ``chi2_reduced`` and provenance. ``width`` is the decay length
        (``"exponential"``) or the step's Gaussian sigma (``"erf"``); ``w90`` the distance
        holding 90 % of the excess / the 10-90 % rise.

    Raises
    ------
    InputError
        For a profile that is not 1-D over ``position``, has an uncalibrated position axis or
        too few valid points.
    ConvergenceError
        If the fit fails or its covariance is undetermined.
    """
    if not isinstance(profile, xr.DataArray) or profile.dims != ("position",):
        raise DimensionError(
            f"interface_and_width needs a 1-D profile over 'position', got dims "
            f"{getattr(profile, 'dims', None)}; select one profile first (e.g. .isel(time=0))"
        )
    unit = units_of(profile["position"]).strip()
    factor = _LENGTH_TO_NM.get(unit.lower(), _LENGTH_TO_NM.get(unit))
    if factor is None:
        raise InputError(
            f"the position axis is in {unit!r}, not a length; calibrate it in nm first"
        )
    s = np.asarray(profile["position"].values, dtype=np.float64) * factor
    y = np.asarray(profile.values, dtype=np.float64)
    keep = np.isfinite(y)
    if "mask" in profile.coords:
        keep &= np.asarray(profile["mask"].values) == MASK_OK
    err = None
    if "std_error" in profile.coords:
        err = np.asarray(profile["std_error"].values, dtype=np.float64)
        keep &= np.isfinite(err) & (err > 0)
    order = np.argsort(s[keep])
    fit = fit_interface(s[keep][order], y[keep][order], None if err is None else err[keep][order],
                        model=model, side=side, blur=blur)
    vals = dict(zip(fit["names"], fit["values"]))
    errs = dict(zip(fit["names"], fit["errors"]))
    w90 = _W90_ERF if model == "erf" else np.log(10.0)
    vals["w90"], errs["w90"] = vals["width"] * w90, errs["width"] * w90
    yunit = units_of(profile)
    lengths = {"interface", "width", "w90", "blur"}
    data: dict[str, xr.DataArray] = {}
    others = [n for n in fit["names"] if n not in ("interface", "width")]
    for name in ["interface", "width", "w90", *others]:
        u, label = ("nm" if name in lengths else yunit), name.replace("_", " ")
        data[name] = xr.DataArray(float(vals[name]), attrs={"units": u, "long_name": label})
        data[f"{name}_error"] = xr.DataArray(
            float(errs[name]), attrs={"units": u, "long_name": f"standard error of {label}"})
    full = np.full(y.shape, np.nan)
    full[np.flatnonzero(keep)[order]] = fit["fitted"]
    data["fit"] = xr.DataArray(full, dims=("position",),
                               coords={"position": profile["position"].variable},
                               attrs={"units": yunit, "long_name": f"{model} interface model"})
    ds = xr.Dataset(data, attrs={"model": model, "side": fit["side"],
                                 "chi2_reduced": fit["chi2_reduced"]})
    params = {"model": model, "side": side, "blur_nm": blur}
    return with_provenance(ds, "ionscope.eels.interface_and_width", params, [profile],
                           history=provenance(profile))


__all__ = ["MODELS", "sr_profile", "fit_interface", "interface_and_width"]
