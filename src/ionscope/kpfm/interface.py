r"""Interface drops in KPFM profiles: a step between two linear fits (the bulk slope is the IR drop).

Across an electrode | electrolyte interface of a cell under current the potential falls
linearly in the bulk (the ohmic, IR, drop of the current) and steps at the interface (the
interface resistance or a space-charge layer narrower than the resolution). The profile is
modelled as

.. math:: V(s) = c + a\,(s - s_0) + \Delta\,\left[\Phi\!\left(-\frac{s - s_0}{w}\right) - \tfrac12\right],

one slope :math:`a` on both sides, a drop :math:`\Delta` (positive when the potential falls from
``start`` to ``end``, as :func:`ionscope.profiles.fit_step`) at :math:`s_0` of width :math:`w`
(a blurred step: the resolution plus any real width). The drop is the distance between the two
lines at the interface. Fitted by weighted least squares: a grid of :math:`(s_0, w)` on which
the model is linear in :math:`(c, a, \Delta)`, then all parameters together from the best grid
point; the covariance accounts for the correlation of the band-averaged profile's noise (the
sandwich form, as :mod:`ionscope.profiles.fit`).

References
----------
Nomura et al., Nat. Commun. 11, 2824 (2020) (interface drops and bulk IR slopes in operando KPFM).
H. White, Econometrica 48 (1980) 817 (sandwich covariance).
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
from scipy.optimize import OptimizeWarning, curve_fit
from scipy.special import ndtr

from ionscope.errors import ConvergenceError, InputError
from ionscope.profiles import profile_covariance

__all__ = ["PARAMETERS", "step_linear_model", "fit_step_linear_kernel"]

#: Parameters of :func:`step_linear_model`, in order.
PARAMETERS = ("level", "slope", "drop", "position", "width")


def step_linear_model(s: np.ndarray, level: float, slope: float, drop: float, position: float,
                      width: float) -> np.ndarray:
    """The step-plus-linear profile of the module docstring at positions ``s``."""
    u = np.asarray(s, dtype=np.float64) - position
    return level + slope * u + drop * (ndtr(-u / max(width, 1e-12)) - 0.5)


def fit_step_linear_kernel(s: np.ndarray, y: np.ndarray, sigma: np.ndarray | None = None, *,
                           correlation: Sequence[float] | None = None, width: float | None = None
                           ) -> dict[str, Any]:
    """Fit :func:`step_linear_model` to a profile.

    Parameters
    ----------
    s, y : numpy.ndarray (n,)
        Positions (nm, increasing) and values; NaN points are dropped.
    sigma : numpy.ndarray (n,), optional
        Standard error per point (default: equal weights, errors scaled by the residual).
    correlation : sequence of float, optional
        Noise correlation between points k apart (``rho[0] = 1``), e.g. the
        ``noise_correlation`` of :func:`ionscope.profiles.band_profile`.
    width : float, optional
        Fix the step width (nm; e.g. the PSF's), else it is fitted.

    Returns
    -------
    dict
        ``values`` and ``errors`` (dicts over :data:`PARAMETERS`; a fixed width has error 0),
        ``cov`` (covariance of the fitted ones), ``names``, ``chi2_reduced``, ``dof``, ``curve``
        (the model at ``s``).
    """
    s = np.asarray(s, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    keep = np.isfinite(s) & np.isfinite(y)
    if sigma is not None:
        sigma = np.asarray(sigma, dtype=np.float64)
        keep &= np.isfinite(sigma) & (sigma > 0)
    all_s = s
    s, y = s[keep], y[keep]
    sig = None if sigma is None else sigma[keep]
    n_par = 4 if width is not None else 5
    if s.size < n_par + 3:
        raise InputError(f"the profile has {s.size} valid points; at least {n_par + 3} are needed for a step-plus-linear fit")
    if np.any(np.diff(s) <= 0):
        raise InputError("profile positions must increase strictly")
    w8 = np.ones_like(y) if sig is None else 1.0 / sig**2
    ds = float(np.median(np.diff(s)))
    span = float(s[-1] - s[0])
    # grid of (position, width): linear least squares in (level, slope, drop) for each
    idx = np.unique(np.linspace(1, s.size - 2, min(s.size - 2, 150)).round().astype(int))
    x0 = 0.5 * (s[idx] + s[idx - 1])
    widths = np.array([float(width)]) if width is not None else np.geomspace(max(0.3 * ds, 1e-6), span / 6, 12)
    best = None
    for w in widths:
        u = s[None, :] - x0[:, None]
        cols = np.stack([np.ones_like(u), u, ndtr(-u / w) - 0.5], axis=-1)  # (x0, n, 3)
        cw = cols * w8[None, :, None]
        gram = np.einsum("kni,knj->kij", cw, cols) + 1e-12 * np.eye(3)
        rhs = np.einsum("kni,n->ki", cw, y)
        try:
            coef = np.linalg.solve(gram, rhs[..., None])[..., 0]
        except np.linalg.LinAlgError:
            continue
        rss = np.sum(w8 * y * y) - np.sum(coef * rhs, axis=1)
        k = int(np.argmin(rss))
        if best is None or rss[k] < best[0]:
            best = (float(rss[k]), coef[k], float(x0[k]), float(w))
    if best is None:
        raise ConvergenceError("the step-plus-linear fit found no start; check the profile")
    _, coef, pos0, w0 = best
    if width is None:
        def func(x, level, slope, drop, position, wd):
            return step_linear_model(x, level, slope, drop, position, wd)

        p0 = [coef[0], coef[1], coef[2], pos0, w0]
        lower = [-np.inf, -np.inf, -np.inf, s[0], 1e-3 * ds]
        upper = [np.inf, np.inf, np.inf, s[-1], span]
        names = list(PARAMETERS)
    else:
        def func(x, level, slope, drop, position):
            return step_linear_model(x, level, slope, drop, position, float(width))

        p0 = [coef[0], coef[1], coef[2], pos0]
        lower, upper = [-np.inf, -np.inf, -np.inf, s[0]], [np.inf, np.inf, np.inf, s[-1]]
        names = list(PARAMETERS[:4])
    p0 = np.clip(p0, np.asarray(lower) + 1e-12, np.asarray(upper) - 1e-12)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", OptimizeWarning)
            warnings.simplefilter("ignore", RuntimeWarning)
            popt, _ = curve_fit(func, s, y, p0=p0, sigma=sig, absolute_sigma=sig is not None,
                                bounds=(lower, upper), max_nfev=20000, x_scale="jac")
    except (RuntimeError, ValueError) as exc:
        raise ConvergenceError(f"the step-plus-linear fit did not converge ({exc})") from None
    resid = y - func(s, *popt)
    dof = max(s.size - popt.size, 1)
    chi2 = float(np.sum(w8 * resid * resid) / dof)
    # covariance: Jacobian by central differences; sandwich with the correlated noise
    jac = np.empty((s.size, popt.size))
    for k in range(popt.size):
        h = 1e-6 * max(abs(popt[k]), ds if names[k] in ("position", "width") else max(np.ptp(y), 1e-12))
        up, dn = popt.copy(), popt.copy()
        up[k] += h
        dn[k] -= h
        jac[:, k] = (func(s, *up) - func(s, *dn)) / (2 * h)
    wj = jac * w8[:, None]
    a_inv = np.linalg.pinv(jac.T @ wj)
    if sig is None:
        cov = a_inv * chi2
    elif correlation is not None:
        cov_y = profile_covariance(sig, correlation)
        cov = a_inv @ (wj.T @ cov_y @ wj) @ a_inv
    else:
        cov = a_inv
    err = np.sqrt(np.clip(np.diag(cov), 0, None))
    values = dict(zip(names, (float(v) for v in popt)))
    errors = dict(zip(names, (float(e) for e in err)))
    if width is not None:
        values["width"], errors["width"] = float(width), 0.0
    curve = np.full(all_s.shape, np.nan)
    curve[np.isfinite(all_s)] = func(all_s[np.isfinite(all_s)], *popt)
    return {"values": values, "errors": errors, "cov": cov, "names": names, "chi2_reduced": chi2, "dof": dof,
            "curve": curve}
