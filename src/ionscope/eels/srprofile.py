r"""Position-resolved EELS (SR-EELS): a Li-K profile across an interface and its width.

An SR-EELS image records energy loss against position along the slit, across an interface
(e.g. Cu | Li-Al-Ge-Ti-P-O solid electrolyte). :func:`sr_profile` turns it into a 1-D profile
of the background-subtracted Li-K window integral; :func:`interface_and_width` fits a layer,
decay or step model to locate the interface and measure the width of the Li-enriched (or
depleted) zone, with standard errors from the fit covariance.

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

``"layer"`` - an enriched (:math:`f > 1`) or depleted (:math:`f < 1`) layer of width :math:`W`
on one ``side`` of the interface: a step blurred by :math:`\sigma_i` (probe size, interface
roughness) times a plateau of relative height :math:`f` that ends in an edge of Gaussian sigma
:math:`\sigma_e`. For ``side="right"``, with :math:`u = s - s_0`,

.. math:: I(s) = c + \Big(b - c + \sum_{j=1}^{k} g_j u^j\Big)\,\Phi(u/\sigma_i)
          \left[1 + (f - 1)\,\Phi\big((W - u)/\sigma_e\big)\right],

the window-signal counterpart of the SR-EELS twin's Li profile :math:`\ell(p)`
(:mod:`ionscope.simulate.eels`): :math:`c` is the level of the material without the layer,
:math:`b` the bulk level of the layer's material at the interface and the polynomial of degree
:math:`k` = ``baseline`` (default 3; ``baseline_j`` = :math:`g_j`, level per nm\ :sup:`j`) its
slow drift, e.g. from the specimen thickness, which scales the layer's signal too. A straight
line is not enough for the twin's smoothly varying thickness: with :math:`k = 1` the
enrichment is off by up to 13 % and the interface by up to 5 standard errors, with
:math:`k = 3` the standard errors are calibrated (Monte Carlo, 12-40 noise realisations of
seeds 0-4). The width is :math:`W`, the distance from the interface to where the excess
:math:`I - I_{f=1}` falls to half its plateau (for
:math:`W \gg \sigma_i, \sigma_e`); ``enrichment`` is :math:`f`, the layer's signal relative to
the bulk, both measured from the level :math:`c` (= the Li enrichment if the window holds only
Li-K above that level; other edges or background residue in the window shift it - 1.52 for
the twin's 1.5). ``w90`` is the
distance holding 90 % of the excess :math:`H(u)\,\Phi((W - u)/\sigma_e)` (0.9 :math:`W` for a
sharp far edge). ``side="left"`` mirrors it.

Which model? ``"layer"`` (the default of :func:`interface_and_width`) for a zone of roughly
constant enrichment with a defined far edge - the space-charge layer of the seed work, "Li-K
enriched within ~13 nm of the interface", as in the SR-EELS twin, where the exponential model's
decay length scatters over 6-13 nm (seeds 0-4) at three times the layer model's chi-squared;
``"exponential"`` for an excess that decays from the interface (the layer fit then stops with a
:class:`~ionscope.errors.ConvergenceError` naming it); ``"erf"`` for a plain step. A depleted
layer whose level lies between the two bulk levels is the same three-level profile as a layer
on the other side; ``side="auto"`` then puts it in the material with the larger signal (the
Li-bearing one) unless the fit on the other side is better by chi-squared > 25 - give ``side``
when that convention does not apply.

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
from ionscope.errors import ConfigError, ConvergenceError, DimensionError, InputError
from ionscope.units import require_length_to_nm

MODELS = ("exponential", "erf", "layer")
SIDES = ("auto", "left", "right")
_W90_ERF = 2 * 1.2815515655446004
#: Least chi2 drop from a smooth polynomial to the best step-and-layer shape for a profile to
#: count as having a step (``"layer"``); noise alone gives up to ~25 (40-1000 points).
_STEP_DCHI2 = 50.0


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

    Lazy: stays lazy on dask-backed input (computed block by block when the result is).

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


def _layer_model(sign: float, blur: float | None, scale: float):
    """Layer model of the module docstring; ``sign`` +1 for ``side="right"``, -1 for left.

    Parameters ``c, b, f, s0, width, [blur], edge_blur, a_1 .. a_k``; the drift of the bulk
    level is ``sum a_j (u / scale)**j`` (``scale`` in nm keeps the coefficients comparable).
    """

    def model(s, c, b, f, s0, width, *rest):
        if blur is None:
            sigma_i, sigma_e, poly = rest[0], rest[1], rest[2:]
        else:
            sigma_i, sigma_e, poly = blur, rest[0], rest[1:]
        u = sign * (s - s0)
        level = b - c + sum(a * (u / scale) ** (j + 1) for j, a in enumerate(poly))
        return c + level * ndtr(u / sigma_i) * (1.0 + (f - 1.0) * ndtr((width - u) / sigma_e))

    return model


def _layer_w90(width: float, edge: float) -> float:
    """Distance from the interface holding 90 % of the excess ``H(u) Phi((W - u)/edge)``, nm."""

    def h(t):  # integral of Phi from -inf to t
        return t * ndtr(t) + np.exp(-0.5 * t * t) / np.sqrt(2 * np.pi)

    t0 = width / edge
    target = 0.1 * h(t0)
    lo, hi = -40.0, t0  # h increases from ~0 at lo to h(t0) at hi
    for _ in range(200):  # bisection; h is monotonic, 200 halvings reach machine precision
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if h(mid) < target else (lo, mid)
    return float(width - edge * 0.5 * (lo + hi))


def _layer_scan(s: np.ndarray, y: np.ndarray, weights: np.ndarray | None, sign: float,
                sigma0: float, degree: int, scale: float, max_candidates: int = 96):
    """Least-squares scan of interface and far-edge positions for the layer model's start.

    For every pair of candidate interface and far-edge positions (on the sample grid, at most
    ``max_candidates`` each) the layer model with both blurs = ``sigma0`` is linear in
    ``(c, b - c, (b - c)(f - 1), a_1 .. a_degree)`` (the drift taken as additive, a fine start)
    and solved by weighted least squares.

    Returns
    -------
    p0 : list of float or None
        Start ``[c, b, f, s0, width, a_1 .. a_degree]`` of the best pair; None if no far-edge
        position lies on this side.
    delta_chi2 : float
        Drop in the weighted residual sum of squares from a polynomial of degree
        ``max(degree, 1)`` in position to the best pair, in units of the profile's variance
        (estimated from successive differences without ``weights``).
    """
    n = s.size
    sw = np.ones(n) if weights is None else 1.0 / weights
    idx = np.unique(np.linspace(0, n - 1, min(n, max_candidates)).round().astype(int))
    cand = s[idx]
    ds = float(np.median(np.diff(s)))
    best_rss, best = np.inf, None
    for s0 in cand:
        u = sign * (s - s0)
        widths = sign * (cand - s0)
        widths = widths[widths >= ds]
        if widths.size == 0:
            continue
        step = ndtr(u / sigma0)
        zone = ndtr((widths[:, None] - u[None, :]) / sigma0)
        cols = [np.ones(n), step, step * zone] + [step * (u / scale) ** j
                                                  for j in range(1, degree + 1)]
        a = np.stack(np.broadcast_arrays(*cols), axis=-1) * sw[None, :, None]
        coef = np.linalg.pinv(a) @ (sw * y)[None, :, None]
        rss = np.sum((sw * y - (a @ coef)[..., 0]) ** 2, axis=1)
        k = int(np.argmin(rss))
        if rss[k] < best_rss:
            best_rss, best = float(rss[k]), (float(s0), float(widths[k]), coef[k, :, 0])
    if best is None:
        return None, 0.0
    x = (s - s.mean()) / scale
    poly = np.stack([x**j for j in range(max(degree, 1) + 1)], axis=-1) * sw[:, None]
    coef_poly = np.linalg.lstsq(poly, sw * y, rcond=None)[0]
    rss_poly = float(np.sum((sw * y - poly @ coef_poly) ** 2))
    if weights is None:  # variance from successive differences (robust to a few steps)
        d = np.diff(y)
        var = max((1.4826 * np.median(np.abs(d - np.median(d)))) ** 2 / 2, np.finfo(float).tiny)
    else:
        var = 1.0
    s0, width, coef = best
    c, height, excess = coef[:3]
    f = 1.0 + excess / height if height != 0 else 1.0
    p0 = [c, c + height, float(np.clip(f, 0.05, 1e3)), s0, width, *map(float, coef[3:])]
    return p0, (rss_poly - best_rss) / var


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


def _layer_start(s: np.ndarray, y: np.ndarray, weights: np.ndarray | None, side: str,
                 blur: float | None, degree: int, scale: float):
    """Start, bounds and step significance (:func:`_layer_scan`) of the layer model."""
    ds = float(np.median(np.diff(s)))
    span = float(s[-1] - s[0])
    sigma0 = ds if blur is None else blur
    p0, dchi2 = _layer_scan(s, y, weights, 1.0 if side == "right" else -1.0, sigma0, degree,
                            scale)
    if p0 is None:  # no room for a layer on this side
        mid = float(np.median(y))
        p0 = [mid, mid, 1.0, float(s[s.size // 2]), span / 4] + [0.0] * degree
    n_blur = 1 + (blur is None)
    p0 = p0[:5] + [sigma0] * n_blur + p0[5:]
    lower = [-np.inf, -np.inf, 0.0, float(s[0]), 0.1 * ds] + [1e-2 * ds] * n_blur
    upper = [np.inf, np.inf, np.inf, float(s[-1]), span] + [span / 4] * n_blur
    lower += [-np.inf] * degree
    upper += [np.inf] * degree
    return p0, (lower, upper), dchi2


def fit_interface(
    s: Any,
    y: Any,
    sigma: Any = None,
    *,
    model: str = "exponential",
    side: str = "auto",
    blur: float | None = None,
    baseline: int = 3,
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
    model : {"exponential", "erf", "layer"}
        Interface model (module docstring).
    side : {"auto", "left", "right"}
        Side of the interface holding the decaying layer (``"exponential"``) or the enriched /
        depleted layer (``"layer"``); ``"auto"`` fits both and keeps the lower chi-squared.
        Unused by ``"erf"``.
    blur : float, optional
        Fixed Gaussian blur sigma of the interface step, nm (``"exponential"``, ``"layer"``;
        the layer's far-edge sigma stays fitted); fitted if None.
    baseline : int
        Degree (0-3) of the polynomial drift of the bulk level on the layer's side, e.g. from a
        thickness gradient (``"layer"`` only; 0 = constant). The default 3 follows the smooth
        thickness variation of the SR-EELS twin without biasing the enrichment; lower degrees
        give smaller errors on flat profiles.

    Returns
    -------
    dict
        ``names`` (parameter names), ``values``, ``errors`` (standard errors), ``cov``,
        ``side``, ``chi2_reduced``, ``fitted`` (model at ``s``). Layer drift coefficients
        ``baseline_j`` are in profile units per nm**j.

    Raises
    ------
    InputError
        For unusable input, or (``"layer"``) a profile without a significant step.
    ConvergenceError
        If the least-squares fit fails or its covariance cannot be estimated, or (``"layer"``)
        if it finds no layer: width at its lower bound or narrower than its far-edge blur, or
        an enrichment within 3 standard errors of 1.
    """
    s = np.asarray(s, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    weights = None if sigma is None else np.asarray(sigma, dtype=np.float64)
    if model not in MODELS:
        raise ConfigError(f"unknown interface model {model!r}; use one of {MODELS}")
    if side not in SIDES:
        raise ConfigError(f"unknown side {side!r}; use one of {SIDES}")
    if blur is not None and not (np.isfinite(blur) and blur > 0):
        raise ConfigError(f"blur must be a positive length in nm, got {blur!r}")
    if isinstance(baseline, bool) or baseline not in range(4):
        raise ConfigError(f"baseline must be a polynomial degree 0-3, got {baseline!r}")
    n_par = {"erf": 4, "exponential": 5, "layer": 6 + baseline}[model]
    n_par += model != "erf" and blur is None
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
    sides = ["right"] if model == "erf" else ["left", "right"] if side == "auto" else [side]
    scale = float(s[-1] - s[0])  # nm; drift coefficients are fitted per (u / scale)**j
    if model == "erf":
        names = ["level_left", "level_right", "interface", "width"]
    elif model == "exponential":
        names = ["level_outside", "level_inside", "amplitude", "interface", "width"]
        names += ["blur"] if blur is None else []
    else:
        names = ["level_outside", "level_inside", "enrichment", "interface", "width"]
        names += (["blur"] if blur is None else []) + ["edge_blur"]
        names += [f"baseline_{j}" for j in range(1, baseline + 1)]
        starts = {sd: _layer_start(s, y, weights, sd, blur, baseline, scale) for sd in sides}
        significance = max(st[2] for st in starts.values())
        if significance < _STEP_DCHI2:
            raise InputError(
                f"the profile shows no step: the best interface-and-layer shape improves on a "
                f"smooth polynomial by only chi2 {significance:.3g} (< {_STEP_DCHI2:g}), so "
                "there is no interface to fit; check the energy window and the position range"
            )
    fits = []
    for sd in sides:
        sign = 1.0 if sd == "right" else -1.0
        if model == "layer":
            func = _layer_model(sign, blur, scale)
            p0, bounds = starts[sd][:2]
        else:
            func = _erf_model if model == "erf" else _exp_model(sign, blur)
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
        fits.append({"names": names, "values": popt, "cov": pcov, "side": sd,
                     "chi2_reduced": chi2, "fitted": fitted})
    if not fits:
        raise ConvergenceError(f"the {model} interface fit did not converge on either side")
    best = min(fits, key=lambda fit: fit["chi2_reduced"])
    if model == "layer" and len(fits) == 2 and best["values"][2] < 1.0:
        # a depletion between the two bulk levels is the same profile as a layer on the other
        # side; unless the data decisively prefer one side (delta chi2 > 25), put it in the
        # material with the larger signal (the Li-bearing one for a Li-K profile)
        chi2 = sorted(fit["chi2_reduced"] for fit in fits)
        dof = max(y.size - best["values"].size, 1)
        if (chi2[1] - chi2[0]) * dof / (1.0 if weights is not None else chi2[0]) < 25.0:
            best = max(fits, key=lambda fit: abs(fit["values"][1]))
    if model == "layer":  # drift coefficients per (u/scale)**j -> per nm**j
        factor = np.ones(len(names))
        factor[len(names) - baseline:] = scale ** -np.arange(1.0, baseline + 1)
        best["values"] = best["values"] * factor
        best["cov"] = best["cov"] * np.outer(factor, factor)
    errors = np.sqrt(np.diag(best["cov"]))
    if model == "layer":
        _check_layer(best, errors, s)
    if model == "layer" and not np.all(np.isfinite(errors)):
        raise ConvergenceError(
            f"the layer fit cannot estimate its uncertainties: the profile does not determine a "
            f"layer (enrichment {best['values'][2]:.3g} on the {best['side']}; a plain step has "
            "f = 1 and no width); use model='erf' for a plain step, or give side, blur or a "
            "lower baseline degree"
        )
    if not np.all(np.isfinite(errors)):
        raise ConvergenceError(
            f"the {model} interface fit cannot estimate its uncertainties (parameters not "
            "determined by the profile); fix the blur or use the erf model"
        )
    best["errors"] = errors
    if model == "erf":
        best["side"] = "n/a"
    return best


def _check_layer(fit: dict[str, Any], errors: np.ndarray, s: np.ndarray) -> None:
    """Raise :class:`ConvergenceError` if a layer fit found no resolved, significant layer."""
    vals = dict(zip(fit["names"], fit["values"]))
    errs = dict(zip(fit["names"], errors))
    f, f_err, width, edge = vals["enrichment"], errs["enrichment"], vals["width"], vals["edge_blur"]
    ds = float(np.median(np.diff(s)))
    if width <= 0.11 * ds or edge >= width:
        raise ConvergenceError(
            f"the profile shows no layer with a far edge (width {width:.3g} nm, far-edge blur "
            f"{edge:.3g} nm); an excess that decays from the interface is described by "
            "model='exponential'"
        )
    if not abs(f - 1.0) >= 3.0 * f_err:  # also catches a NaN error
        raise ConvergenceError(
            f"the layer fit finds no significant enrichment or depletion (f = {f:.3g} +/- "
            f"{f_err:.2g}, within 3 standard errors of 1), so its width is undetermined; use "
            "model='erf' for a plain step or model='exponential' for a decaying excess"
        )


def _layer_w90_with_error(fit: dict[str, Any]) -> tuple[float, float]:
    """``w90`` of a layer fit and its standard error (delta method on width and edge blur)."""
    names = list(fit["names"])
    i, j = names.index("width"), names.index("edge_blur")
    width, edge = float(fit["values"][i]), float(fit["values"][j])
    value = _layer_w90(width, edge)
    grad = np.zeros(len(names))
    for k, x in ((i, width), (j, edge)):
        h = 1e-4 * max(abs(x), 1e-3)
        args = [width, edge]
        args[0 if k == i else 1] = x + h
        up = _layer_w90(*args)
        args[0 if k == i else 1] = x - h
        grad[k] = (up - _layer_w90(*args)) / (2 * h)
    return value, float(np.sqrt(max(grad @ fit["cov"] @ grad, 0.0)))


# --------------------------------------------------------------------------- wrapper


def interface_and_width(
    profile: xr.DataArray,
    *,
    model: str = "layer",
    side: str = "auto",
    blur: float | None = None,
    baseline: int = 3,
) -> xr.Dataset:
    """Interface position and enrichment/depletion width from a Li profile, with errors.

    Computes: loads the profile (a least-squares fit).

    Parameters
    ----------
    profile : xarray.DataArray
        1-D profile over ``position`` (nm, Å or µm), e.g. from :func:`sr_profile`; its
        ``std_error`` coordinate (if present) weights the fit, and points with a non-zero
        ``mask`` coordinate or NaN values are left out.
    model : {"layer", "exponential", "erf"}
        An enriched/depleted layer of width W with a far edge (default), an excess decaying
        from the interface, or a plain step (see the module docstring).
    side : {"auto", "left", "right"}
        Side of the interface holding the layer (``"exponential"``, ``"layer"``); ``"auto"``
        tries both. Give it for a depleted ``"layer"`` (module docstring).
    blur : float, optional
        Fixed Gaussian blur sigma of the interface step, nm (``"exponential"``, ``"layer"``);
        fitted if None.
    baseline : int
        Degree 0-3 of the polynomial drift of the bulk level on the layer's side
        (``"layer"`` only; see :func:`fit_interface`).

    Returns
    -------
    xarray.Dataset
        Scalars ``interface``, ``width``, ``w90`` (nm) and the model's other parameters, each
        with a ``<name>_error`` standard error; ``fit`` (the model along position); attrs
        ``model``, ``side``, ``chi2_reduced`` and provenance. ``width`` is the decay length
        (``"exponential"``), the step's Gaussian sigma (``"erf"``) or the layer width W from
        the interface to the half-way point of the excess (``"layer"``, which also gives the
        dimensionless ``enrichment`` f, ``edge_blur`` (nm) and drift coefficients
        ``baseline_j`` in profile units per nm**j); ``w90`` the distance holding 90 % of the
        excess / the 10-90 % rise.

    Raises
    ------
    InputError
        For a profile that is not 1-D over ``position``, has an uncalibrated position axis or
        too few valid points, or (``"layer"``) shows no step.
    ConvergenceError
        If the fit fails or its covariance is undetermined, or (``"layer"``) the profile holds
        no resolved, significant layer (the message names the model to use instead).

    Examples
    --------
    >>> from ionscope.simulate import simulate
    >>> ds = simulate("eels_sr", seed=0)
    >>> fit = interface_and_width(sr_profile(ds["spectra"], (55, 62), (48, 54)), model="layer")
    >>> round(fit["width"].item()), fit.attrs["side"]
    (13, 'right')
    """
    if not isinstance(profile, xr.DataArray) or profile.dims != ("position",):
        raise DimensionError(
            f"interface_and_width needs a 1-D profile over 'position', got dims "
            f"{getattr(profile, 'dims', None)}; select one profile first (e.g. .isel(time=0))"
        )
    factor = require_length_to_nm(units_of(profile["position"]), "the position axis")
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
                        model=model, side=side, blur=blur, baseline=baseline)
    vals = dict(zip(fit["names"], fit["values"]))
    errs = dict(zip(fit["names"], fit["errors"]))
    if model == "layer":
        vals["w90"], errs["w90"] = _layer_w90_with_error(fit)
    else:
        w90 = _W90_ERF if model == "erf" else np.log(10.0)
        vals["w90"], errs["w90"] = vals["width"] * w90, errs["width"] * w90
    yunit = units_of(profile)
    units = {"interface": "nm", "width": "nm", "w90": "nm", "blur": "nm", "edge_blur": "nm",
             "enrichment": "1"}
    units.update({f"baseline_{j}": f"{yunit or '1'}/nm" + (f"^{j}" if j > 1 else "")
                  for j in range(1, 4)})
    data: dict[str, xr.DataArray] = {}
    others = [n for n in fit["names"] if n not in ("interface", "width")]
    for name in ["interface", "width", "w90", *others]:
        u, label = units.get(name, yunit), name.replace("_", " ")
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
    params: dict[str, Any] = {"model": model, "side": side, "blur_nm": blur}
    if model == "layer":
        params["baseline"] = baseline
    return with_provenance(ds, "ionscope.eels.interface_and_width", params, [profile],
                           history=provenance(profile))


__all__ = ["MODELS", "sr_profile", "fit_interface", "interface_and_width"]
