"""Step-model fits to interface profiles, with uncertainties under correlated noise.

:func:`fit_step` (kernel :func:`fit_step_arrays`) fits a :class:`~ionscope.profiles.models.StepModel`
by weighted least squares from grid-scanned starts (:func:`_scan_starts`) and returns a
:class:`StepFit`; its parameter covariance uses the sandwich form
(:func:`_sandwich_covariance`) when the profile's noise is correlated. :func:`step_summary`
derives drop, w90, interface position, levels, peak field and areal charge.

References
----------
H. White, Econometrica 48 (1980) 817; W.K. Newey, K.D. West, Econometrica 55 (1987) 703
(sandwich covariance under correlated noise).
"""

from __future__ import annotations

import dataclasses
import json
import warnings
from collections.abc import Callable, Sequence

import numpy as np
import xarray as xr
from scipy.optimize import OptimizeWarning, curve_fit
from scipy.special import ndtr

from ionscope.constants import EPSILON_0
from ionscope.data import provenance, units_of, with_provenance
from ionscope.errors import ConfigError, ConvergenceError, DimensionError, InputError
from ionscope.profiles.band import _length_factor, profile_covariance
from ionscope.profiles.lowpass import LowPass, _step_curve
from ionscope.profiles.models import MODELS, SIDES, StepModel
from ionscope.validation import Interval, Options, described, validate_params


@dataclasses.dataclass
class StepFit:
    """Result of :func:`fit_step_arrays`.

    Attributes
    ----------
    model, side : str
        Model name and the side holding a one-sided layer ("n/a" for symmetric models).
    names : list of str
        Fitted parameters: ``level_end`` (profile units), ``drop`` (profile units),
        ``position`` (nm), ``width`` (nm) and ``blur`` (nm) when fitted.
    values, errors : ndarray
        Estimates and standard errors.
    cov : ndarray
        Parameter covariance.
    blur : float or LowPass
        The resolution used: Gaussian sigma (fitted or fixed, nm) or the low-pass filter.
    chi2_reduced : float
        ``sum((residual / sigma)**2) / dof``: about 1 when model and standard errors are right
        (somewhat below 1 for strongly correlated noise).
    dof : int
        Degrees of freedom.
    """

    model: str
    side: str
    names: list[str]
    values: np.ndarray
    errors: np.ndarray
    cov: np.ndarray
    blur: float | LowPass
    chi2_reduced: float
    dof: int

    def value(self, name: str) -> float:
        return float(self.values[self.names.index(name)])

    def curve(self, s: np.ndarray, *, blurred: bool = True, params: np.ndarray | None = None) -> np.ndarray:
        """The model at positions ``s`` (nm): as fitted to the data (``blurred``) or deblurred."""
        p = self.values if params is None else params
        return _step_curve(MODELS[self.model], self._side, self.names, p, np.asarray(s, float),
                           self.blur if "blur" not in self.names else None, blurred)

    @property
    def _side(self) -> str:
        return "end" if self.side == "n/a" else self.side

    def derivative(self, s: np.ndarray, order: int, params: np.ndarray | None = None) -> np.ndarray:
        """``d^order V / dx^order`` of the deblurred model (profile units per nm**order)."""
        q = dict(zip(self.names, self.values if params is None else params))
        return q["drop"] * MODELS[self.model].derivative(np.asarray(s, float) - q["position"], q["width"],
                                                        order, self._side)

    def derived(self, func: Callable[[np.ndarray], float]) -> tuple[float, float]:
        """``func(params)`` and its standard error by the delta method (numeric gradient)."""
        p = np.asarray(self.values, dtype=np.float64)
        value = float(func(p))
        grad = np.zeros(p.size)
        for k in range(p.size):
            h = 1e-6 * max(abs(p[k]), self.errors[k] if np.isfinite(self.errors[k]) else 0.0, 1e-9)
            up, dn = p.copy(), p.copy()
            up[k] += h
            dn[k] -= h
            grad[k] = (func(up) - func(dn)) / (2 * h)
        return value, float(np.sqrt(max(grad @ self.cov @ grad, 0.0)))


def _parse_blur(blur: float | str | LowPass | None) -> float | LowPass | None:
    """None for a fitted blur; the fixed value (nm, 0 = none) or a :class:`LowPass` otherwise."""
    if blur is None:
        return 0.0
    if isinstance(blur, LowPass):
        return blur
    if isinstance(blur, str) and blur.strip().lower().startswith("lowpass:"):
        return LowPass.parse(blur)
    if isinstance(blur, str):
        if blur.strip().lower() == "fit":
            return None
        try:
            blur = float(blur)
        except ValueError:
            raise ConfigError(f"blur must be a length in nm, 0, None or 'fit', got {blur!r}") from None
    blur = float(blur)
    if not (np.isfinite(blur) and blur >= 0):
        raise ConfigError(f"blur must be a non-negative length in nm, got {blur!r}")
    return blur


#: Points of the table a blurred closed-form shape is interpolated from in the start scan.
_SCAN_TABLE = 8193


def _scan_shape(model: StepModel, u: np.ndarray, w: float, blur: float, side: str) -> np.ndarray:
    """The model at the scan's (candidate, sample) offsets ``u``. A blurred closed-form shape (the
    erfc's needs Owen's T, ~0.1 us a value) is a smooth function of ``u`` alone: it is evaluated on
    :data:`_SCAN_TABLE` points spanning ``u`` and interpolated (error ~1e-4 of the step: starts
    only; the fit itself evaluates the model exactly)."""
    if model.blurred is None or blur <= 0 or u.size <= 4 * _SCAN_TABLE:
        return model.evaluate(u, w, blur, side)
    grid = np.linspace(float(u.min()), float(u.max()), _SCAN_TABLE)
    return np.interp(u, grid, model.evaluate(grid, w, blur, side))


def _scan_starts(s, y, wts, model: StepModel, side: str, blur: float, step: bool = False,
                 count: int = 3) -> list[list[float]]:
    """Grid starts for (position, width): for each pair the model is linear in (level_end, drop
    [, jump]), solved by weighted least squares. Returns up to ``count`` starts
    ``[level_end, drop, position, width (, jump)]``, the best pair for each of the widths with
    the lowest residuals (different widths, so the local fits explore distinct shapes)."""
    ds = float(np.median(np.diff(s)))
    span = float(s[-1] - s[0])
    idx = np.unique(np.linspace(0, s.size - 1, min(s.size, 200)).round().astype(int))
    x0 = s[idx]
    widths = np.geomspace(max(ds / 2, 1e-3 * span), span / 3, 14)
    # blur at least half a candidate spacing, so a sharp step between candidates still fits
    # (quadrature-blurred shapes are scanned as given: too slow for the whole grid)
    spacing = float(np.max(np.diff(x0))) if x0.size > 1 else ds
    smooth = max(blur, 0.5 * spacing)
    # sharp data with every sample a candidate: scan sharp (with the midpoints below), else
    # closed-form shapes are scanned smoothed
    sharp = blur == 0 and x0.size == s.size
    model_blur = smooth if model.blurred is not None and not sharp else blur
    if model_blur < 0.5 * spacing and x0.size > 1:
        # a shape scanned sharper than the candidates are spaced: add the midpoints, where a
        # sharp step between two samples sits (a sample exactly at x0 takes half the step)
        x0 = np.sort(np.concatenate([x0, 0.5 * (x0[1:] + x0[:-1])]))
    u = s[None, :] - x0[:, None]
    f = np.stack([_scan_shape(model, u, w, model_blur, side) for w in widths], axis=1)  # (x0, w, n)
    cols = [np.ones(f.shape[-1]), f]
    if step:
        # the jump blurred like the shape: a smoother jump column would let narrow shapes
        # stand in for a sharp jump and bias the starts to the wrong widths
        jump = ndtr(-u / model_blur) if model_blur > 0 else np.where(u < 0, 1.0, np.where(u == 0, 0.5, 0.0))
        cols.append(jump[:, None, :])
    k = len(cols)
    # weighted normal equations of y ~ sum_c coef_c col_c for every (x0, w), by matrix products
    gram = np.empty(f.shape[:2] + (k, k))
    rhs = np.empty(f.shape[:2] + (k,))
    for i, ci in enumerate(cols):
        cw = ci * wts
        rhs[..., i] = cw @ y
        for j in range(i, k):
            gram[..., i, j] = gram[..., j, i] = np.sum(cw * cols[j], axis=-1)
    gram = gram + 1e-12 * np.trace(gram, axis1=-2, axis2=-1)[..., None, None] * np.eye(k)
    coef = np.linalg.solve(gram, rhs[..., None])[..., 0]
    # weighted rss = y'Wy - coef . rhs (least-squares identity)
    rss = float(np.sum(wts * y * y)) - np.sum(coef * rhs, axis=-1)
    rss = np.where(np.isfinite(rss), rss, np.inf)
    best_x0 = np.argmin(rss, axis=0)  # per width
    order = np.argsort(rss[best_x0, np.arange(widths.size)])
    starts = []
    for j in order[:count]:
        i = best_x0[j]
        start = [float(coef[i, j, 0]), float(coef[i, j, 1]), float(x0[i]), float(widths[j])]
        if step:
            start.append(float(coef[i, j, 2]))
        starts.append(start)
    return starts


def _jacobian(func: Callable[..., np.ndarray], s: np.ndarray, p: np.ndarray,
              scales: np.ndarray) -> np.ndarray:
    """Central-difference Jacobian ``d func(s, *p) / dp`` (n, k)."""
    cols = []
    for k in range(p.size):
        h = 1e-6 * max(abs(p[k]), scales[k], 1e-12)
        up, dn = p.copy(), p.copy()
        up[k] += h
        dn[k] -= h
        cols.append((func(s, *up) - func(s, *dn)) / (2 * h))
    return np.stack(cols, axis=1)


def _sandwich_covariance(jac: np.ndarray, sigma: np.ndarray,
                         correlation: Sequence[float] | None) -> np.ndarray:
    """Covariance of weighted least-squares estimates under correlated noise.

    The fit minimises ``sum(r_i**2 / sigma_i**2)``; with noise covariance ``C`` its estimates
    have covariance ``A^-1 J^T W C W J A^-1`` (``W = diag(1/sigma**2)``, ``A = J^T W J``), the
    sandwich (heteroscedasticity-and-autocorrelation-consistent) form. It equals ``A^-1`` for
    uncorrelated noise. Weighted least squares is used rather than generalised least squares
    because an estimated, truncated correlation is nearly singular, and whitening by it
    amplifies small model errors.
    """
    wj = jac / sigma[:, None] ** 2
    a_inv = np.linalg.pinv(jac.T @ wj)
    if correlation is None:
        return a_inv
    cov_y = profile_covariance(sigma, correlation)
    b = wj.T @ cov_y @ wj
    return a_inv @ b @ a_inv


def fit_step_arrays(
    s: np.ndarray,
    y: np.ndarray,
    sigma: np.ndarray | None = None,
    *,
    model: str = "erf",
    side: str = "auto",
    blur: float | str | None = None,
    correlation: Sequence[float] | None = None,
    absolute_sigma: bool = True,
    step: bool = False,
) -> StepFit:
    """Fit a step model to a profile (kernel of :func:`fit_step`).

    Parameters
    ----------
    s, y : ndarray (n,)
        Positions (nm, increasing) and values (finite).
    sigma : ndarray (n,), optional
        Standard error per point; equal weights if None.
    model : {"erf", "tanh", "exp"} or a registered :class:`StepModel` name
    side : {"auto", "start", "end"}
        Side of the interface holding a one-sided (``exp``) layer; ``auto`` fits both and keeps
        the lower chi-squared.
    blur : float, "fit", LowPass or None
        Resolution of the map: a Gaussian sigma (nm; None or 0 for none, ``"fit"`` to fit it)
        or a :class:`LowPass` (a reconstruction aperture; also ``"lowpass:CUTOFF"`` in 1/nm).
    correlation : sequence of float, optional
        Noise correlation between points k apart (``rho[0] = 1``), e.g. the ``noise_correlation``
        of :func:`band_profile`; the parameter covariance then accounts for it (sandwich form,
        :func:`_sandwich_covariance`). The estimates themselves are weighted least squares.
    absolute_sigma : bool
        Take ``sigma`` as the true standard errors (default); else scale the covariance by the
        reduced chi-squared. Ignored (False) when ``sigma`` is None.
    step : bool
        Add a sharp step ``jump`` at the interface (blurred like the model) on top of the
        smooth drop: a mean-inner-potential or contact step between two materials, next to a
        space-charge layer. ``drop`` is then the smooth part only.

    Returns
    -------
    StepFit
    """
    if model not in MODELS:
        raise ConfigError(f"unknown step model {model!r}; use one of {sorted(MODELS)}")
    if side not in SIDES:
        raise ConfigError(f"unknown side {side!r}; use one of {SIDES}")
    spec = MODELS[model]
    fixed_blur = _parse_blur(blur)
    if fixed_blur is None and not spec.one_sided:
        raise ConfigError(
            f"blur='fit' needs a one-sided model such as 'exp': a blurred {model} step is again "
            f"(nearly) a {model} step, so its width and blur cannot be told apart; give the map's "
            "resolution as a fixed blur instead"
        )
    s = np.asarray(s, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    n_par = 4 + (fixed_blur is None) + bool(step)
    if s.ndim != 1 or s.shape != y.shape:
        raise InputError(f"positions and values must be 1-D of equal length, got {s.shape} and {y.shape}")
    if s.size < n_par + 3:
        raise InputError(f"the profile needs at least {n_par + 3} valid points to fit a step, got {s.size}")
    if not (np.all(np.isfinite(s)) and np.all(np.isfinite(y))):
        raise InputError("the profile holds NaN/inf; drop those points before fitting")
    if np.any(np.diff(s) <= 0):
        raise InputError("profile positions must increase strictly")
    if np.ptp(y) == 0:
        raise InputError("the profile is constant; there is no step to fit")
    if sigma is not None:
        sigma = np.asarray(sigma, dtype=np.float64)
        if sigma.shape != y.shape or not np.all(np.isfinite(sigma) & (sigma > 0)):
            raise InputError("profile standard errors must be finite, positive and match the profile")
    else:
        absolute_sigma = False
    sig = np.ones_like(y) * (np.std(np.diff(y)) / np.sqrt(2) or 1.0) if sigma is None else sigma
    sides = ["end"] if not spec.one_sided else (["start", "end"] if side == "auto" else [side])
    span = float(s[-1] - s[0])
    ds = float(np.median(np.diff(s)))
    results = []
    failures = []
    for sd in sides:
        scan_blur = fixed_blur if fixed_blur is not None else ds
        if isinstance(scan_blur, LowPass):  # a Gaussian of about the same edge width
            scan_blur = 0.17 / scan_blur.cutoff_per_nm
        if spec.blurred is None and scan_blur > 0:  # quadrature is slow: scan unblurred
            starts = _scan_starts(s, y, 1.0 / sig**2, spec, sd, 0.0, bool(step))
            for p0 in starts:
                p0[3] = float(np.sqrt(max(p0[3] ** 2 - scan_blur**2, (0.5 * ds) ** 2)))
        else:
            starts = _scan_starts(s, y, 1.0 / sig**2, spec, sd, scan_blur, bool(step))
        names = ["level_end", "drop", "position", "width"]
        lower = [-np.inf, -np.inf, s[0] - 0.25 * span, 1e-3 * ds]
        upper = [np.inf, np.inf, s[-1] + 0.25 * span, 4 * span]
        if step:
            names.append("jump")
            lower.append(-np.inf)
            upper.append(np.inf)
        if fixed_blur is None:
            names.append("blur")
            for p0 in starts:
                p0.append(ds)
            lower.append(1e-3 * ds)
            upper.append(span / 3)

        def func(x, *p, _sd=sd, _names=tuple(names)):
            return _step_curve(spec, _sd, _names, p, x, fixed_blur, True)

        lo, hi = np.asarray(lower, float), np.asarray(upper, float)
        pad = 1e-9 * np.where(np.isfinite(hi - lo), hi - lo, 0.0)
        # an unblurred jump moves in whole samples: the model is discontinuous in the position,
        # whose finite-difference derivative then stalls the local fit; fit the other
        # parameters at the start's position first
        sharp = bool(step) and not isinstance(fixed_blur, LowPass) and fixed_blur == 0.0
        ip = names.index("position")
        for p0 in starts:
            p0 = np.clip(p0, lo + pad, hi - pad)
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", OptimizeWarning)
                    warnings.simplefilter("ignore", RuntimeWarning)
                    if sharp:  # at the start and at the midpoints either side of it
                        k = int(np.clip(np.searchsorted(s, p0[ip]), 1, s.size - 1))
                        best = None
                        for x0 in {float(p0[ip]), 0.5 * (s[k - 1] + s[k]),
                                   0.5 * (s[max(k - 2, 0)] + s[k - 1]), 0.5 * (s[k] + s[min(k + 1, s.size - 1)])}:
                            def at_position(x, *q, _x0=x0, _func=func):
                                return _func(x, *np.insert(np.asarray(q), ip, _x0))

                            q, _ = curve_fit(at_position, s, y, p0=np.delete(p0, ip), sigma=sig,
                                             absolute_sigma=True, bounds=(np.delete(lo, ip), np.delete(hi, ip)),
                                             max_nfev=20000, x_scale="jac")
                            r = float(np.sum(((y - at_position(s, *q)) / sig) ** 2))
                            if best is None or r < best[0]:
                                best = (r, np.insert(q, ip, x0))
                        p0 = np.clip(best[1], lo + pad, hi - pad)
                    popt, _ = curve_fit(func, s, y, p0=p0, sigma=sig, absolute_sigma=True,
                                        bounds=(lower, upper), max_nfev=20000, x_scale="jac")
            except (RuntimeError, ValueError) as exc:
                failures.append(str(exc))
                continue
            dof = max(y.size - popt.size, 1)
            chi2 = float(np.sum(((y - func(s, *popt)) / sig) ** 2) / dof)
            if np.isfinite(chi2):
                results.append((chi2, sd, popt, func, names, dof))
    if not results:
        raise ConvergenceError(
            f"the {model} step fit did not converge ({'; '.join(sorted(set(failures)))[:200]}); "
            "fix the blur, choose the side or another model"
        )
    chi2, sd, popt, func, names, dof = min(results, key=lambda r: r[0])
    scales = np.array([{"level_end": np.ptp(y), "drop": np.ptp(y), "jump": np.ptp(y)}.get(n, ds) for n in names])
    jac = _jacobian(func, s, popt, scales)
    pcov = _sandwich_covariance(jac, sig, correlation)
    if not absolute_sigma:
        pcov = pcov * chi2
    errors = np.sqrt(np.clip(np.diag(pcov), 0, None))
    if not np.all(np.isfinite(errors)) or not np.all(np.isfinite(pcov)):
        raise ConvergenceError(
            f"the {model} step fit cannot estimate its uncertainties (the profile does not "
            "determine all parameters: no step, or width and blur degenerate); fix the blur or "
            "lengthen the profile"
        )
    used_blur = float(popt[names.index("blur")]) if fixed_blur is None else fixed_blur
    return StepFit(model, sd if spec.one_sided else "n/a", names, popt, errors, pcov, used_blur, chi2, dof)


def step_summary(fit: StepFit, *, eps_r: float | None = None) -> dict[str, tuple[float, float]]:
    """Derived quantities of a step fit, each ``(value, standard error)``.

    Keys: ``drop`` (profile units), ``interface`` (the position :math:`x_0`), ``width``,
    ``w90`` (nm), ``level_start``,
    ``level_end`` (profile units), ``blur`` (nm; error 0 when fixed), ``field_peak`` (V/m for a
    profile in V: ``drop * max|dF/du|``, positive when the potential falls along the profile) and,
    with ``eps_r``, ``areal_charge`` (C/m**2, ``eps0 eps_r |E_peak|``: the space charge on one
    side of the field maximum, or the interface sheet charge of the exp model).
    """
    spec = MODELS[fit.model]
    idx = {n: i for i, n in enumerate(fit.names)}
    out = {}
    for name in ("drop", "position", "width", "level_end"):
        out["interface" if name == "position" else name] = (fit.value(name), float(fit.errors[idx[name]]))
    if not isinstance(fit.blur, LowPass):
        out["blur"] = (float(fit.blur), float(fit.errors[idx["blur"]]) if "blur" in idx else 0.0)
    out["w90"] = (spec.w90_factor * out["width"][0], spec.w90_factor * out["width"][1])
    if "jump" in idx:
        out["jump"] = (fit.value("jump"), float(fit.errors[idx["jump"]]))
        out["total_drop"] = fit.derived(lambda p: p[1] + p[idx["jump"]])
    jump = (lambda p: p[idx["jump"]]) if "jump" in idx else (lambda p: 0.0)
    out["level_start"] = fit.derived(lambda p: p[0] + p[1] + jump(p))
    out["field_peak"] = fit.derived(lambda p: p[1] * spec.peak_slope(p[3]) * 1e9)
    if eps_r is not None:
        out["areal_charge"] = fit.derived(lambda p: EPSILON_0 * eps_r * abs(p[1] * spec.peak_slope(p[3])) * 1e9)
    return out


#: A sample belongs to a plateau of the fitted step where the (deblurred) model lies within
#: this fraction of the total step from that side's level.
PLATEAU_TOLERANCE = 0.05


def plateau_samples(model_values: np.ndarray, level_start: float, level_end: float) -> tuple[int, int]:
    """How many fitted samples lie on each plateau of a step: where the model as fitted (blur
    included) at the samples (``model_values``, finite data points only) is within
    :data:`PLATEAU_TOLERANCE` of the total step from ``level_start`` / ``level_end``. A plateau
    with none is a level the fit extrapolated from no data (e.g. a band that starts in a NaN
    vacuum)."""
    m = np.asarray(model_values, dtype=np.float64)
    tol = PLATEAU_TOLERANCE * abs(level_start - level_end)
    return (int(np.count_nonzero(np.abs(m - level_start) <= tol)),
            int(np.count_nonzero(np.abs(m - level_end) <= tol)))


def _profile_arrays(profile: xr.DataArray | xr.Dataset):
    """Positions (nm), values, sigma (or None), correlation (or None), the profile DataArray."""
    if isinstance(profile, xr.Dataset):
        if "profile" not in profile:
            raise InputError(
                f"the profile Dataset needs a 'profile' variable (has {list(profile.data_vars)})"
            )
        prof = profile["profile"]
        sig = profile.get("profile_sigma")
    elif isinstance(profile, xr.DataArray):
        prof = profile
        sig = None
        for name in ("profile_sigma", "std_error"):
            if name in profile.coords:
                sig = profile.coords[name]
                break
    else:
        raise InputError(f"fit_step needs a profile DataArray or Dataset, got {type(profile).__name__}")
    if prof.dims != ("position",):
        raise DimensionError(
            f"fit_step needs a 1-D profile over 'position', got dims {prof.dims}; select one profile first"
        )
    factor = _length_factor(units_of(prof["position"]), "position")
    s = np.asarray(prof["position"].values, dtype=np.float64) * factor
    y = np.asarray(prof.values, dtype=np.float64)
    sigma = None if sig is None else np.asarray(sig.values, dtype=np.float64)
    corr = None
    if sig is not None and "noise_correlation" in sig.attrs:
        raw = sig.attrs["noise_correlation"]
        corr = json.loads(raw) if isinstance(raw, str) else list(np.atleast_1d(raw))
    return s, y, sigma, corr, prof


@described("a step model registered in ionscope.profiles.MODELS (erf, tanh, exp, erfc, depletion, ...)")
def _registered_model(value) -> bool:
    return isinstance(value, str) and value in MODELS  # read at call time: models can be registered later


@validate_params({
    "model": [_registered_model],
    "side": [Options(SIDES)],
    "eps_r": [Interval(float, 0, None, closed="neither"), None],
    "covariance": [Options({"auto", "diagonal", "none"})],
    "step": [bool],
})
def fit_step(
    profile: xr.DataArray | xr.Dataset,
    model: str = "erf",
    *,
    side: str = "auto",
    blur: float | str | None = None,
    eps_r: float | None = None,
    covariance: str = "auto",
    step: bool = False,
) -> xr.Dataset:
    """Fit a step model to an interface profile: drop, width w90, position with standard errors.

    Parameters
    ----------
    profile : xarray.Dataset or DataArray
        A :func:`band_profile` result (``profile``, ``profile_sigma``), or a DataArray over
        ``position`` (nm) with an optional ``profile_sigma`` / ``std_error`` coordinate. NaN
        points are left out.
    model : {"erf", "tanh", "exp"}
        Step shape (:mod:`ionscope.profiles` docstring); ``exp`` is a one-sided space-charge-like decay.
    side : {"auto", "start", "end"}
        Side holding the ``exp`` layer; ``auto`` tries both.
    blur : float, "fit", LowPass or None
        Resolution of the map: a Gaussian sigma in nm (None: none; ``"fit"``: fitted, one-sided
        models only) or a :class:`LowPass` transfer function (the aperture of a Fourier
        holography reconstruction; ``"lowpass:CUTOFF"`` with the cutoff in 1/nm). Widths, w90,
        field and charge are then those of the deblurred profile.
    eps_r : float, optional
        Relative permittivity, for the charge density :math:`-\\varepsilon_0\\varepsilon_r
        V''` and the areal charge (skipped if None).
    covariance : {"auto", "diagonal", "none"}
        Noise model: ``auto`` weights by the standard errors and propagates the profile's
        ``noise_correlation`` (if present) into the parameter covariance; ``diagonal`` treats
        the points as independent; ``none`` ignores them (equal weights, covariance scaled
        by chi-squared).
    step : bool
        Add a sharp step ``jump`` at the interface (e.g. the mean-inner-potential difference of
        two materials in an unbiased potential map) on top of the smooth drop; ``drop``,
        ``w90``, field and charge then describe the smooth part, ``total_drop`` = drop + jump.

    Returns
    -------
    xarray.Dataset
        Scalars ``drop``, ``interface`` (position, nm from the profile start), ``width``, ``w90``,
        ``level_start``, ``level_end``,
        ``blur``, ``field_peak`` (V/m for a profile in V) [, ``areal_charge`` (C/m**2)], each
        with ``<name>_error``; over ``position``: ``fit`` (the model as fitted, blur included),
        ``model_deblurred``, ``field`` (:math:`-dV/dx`, V/m) [, ``charge_density`` (C/m**3)].
        Attrs: ``model``, ``side``, ``chi2_reduced``, ``dof``, ``parameter_names``,
        ``covariance`` (nested list), ``plateau_samples_start`` / ``_end`` (finite points on
        each plateau, :func:`plateau_samples`), provenance.

    Raises
    ------
    InputError
        For unusable profiles or options.
    ConvergenceError
        When the fit fails or its covariance is undetermined.

    Computes: loads the profile and returns a numpy-backed Dataset.

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> from scipy.special import erf
    >>> x = np.linspace(0, 40, 161)
    >>> v = 1.3 * 0.5 * (1 - erf((x - 20) / (2 * np.sqrt(2))))
    >>> prof = xr.DataArray(v, dims="position", coords={"position": ("position", x, {"units": "nm"})},
    ...                     attrs={"units": "V"})
    >>> res = fit_step(prof, "erf")
    >>> round(float(res["drop"]), 3), round(float(res["w90"]), 2), round(float(res["interface"]), 2)
    (1.3, 6.58, 20.0)
    """
    s, y, sigma, corr, prof = _profile_arrays(profile)
    if sigma is not None and not np.any(np.isfinite(sigma) & (sigma > 0)):
        sigma, corr = None, None  # e.g. a one-line band: no spread, no standard errors
    keep = np.isfinite(y) & np.isfinite(s)
    if sigma is not None:
        keep &= np.isfinite(sigma) & (sigma > 0)
    if covariance == "none":
        sigma, corr = None, None
    elif covariance == "diagonal":
        corr = None
    if corr is not None and not keep.all():
        # gaps break the lag structure; keep the correlation only for a contiguous run
        first, last = np.flatnonzero(keep)[[0, -1]]
        keep[:] = False
        run = np.isfinite(y) & (sigma > 0 if sigma is not None else True)
        keep[first : last + 1] = run[first : last + 1]
        if not keep[first : last + 1].all():
            corr = None
    fit = fit_step_arrays(s[keep], y[keep], None if sigma is None else sigma[keep], model=model, side=side,
                          blur=blur, correlation=corr, step=step)
    values = step_summary(fit, eps_r=eps_r)
    yunit = units_of(prof)
    is_volt = yunit == "V"
    units = {"drop": yunit, "level_start": yunit, "level_end": yunit, "interface": "nm", "width": "nm",
             "w90": "nm", "blur": "nm", "field_peak": "V/m" if is_volt else f"{yunit}/m",
             "areal_charge": "C/m^2", "jump": yunit, "total_drop": yunit}
    long = {"drop": "drop V(start side) - V(end side)", "w90": "shortest distance holding 90 % of the drop",
            "interface": "interface position from the profile start", "width": f"{model} width parameter",
            "blur": "Gaussian blur sigma of the map", "field_peak": "peak field -dV/dx of the deblurred model",
            "areal_charge": "space charge per area on one side (eps0 eps_r |E_peak|)",
            "level_start": "level on the start side", "level_end": "level on the end side",
            "jump": "sharp step at the interface", "total_drop": "drop + jump"}
    data: dict[str, xr.DataArray] = {}
    for name, (v, e) in values.items():
        data[name] = xr.DataArray(v, attrs={"units": units[name], "long_name": long[name]})
        data[f"{name}_error"] = xr.DataArray(e, attrs={"units": units[name], "long_name": f"standard error of {name}"})
    pos = prof["position"].variable
    full_s = s
    data["fit"] = xr.DataArray(fit.curve(full_s), dims=("position",), coords={"position": pos},
                               attrs={"units": yunit, "long_name": f"{model} step model (as fitted)"})
    data["model_deblurred"] = xr.DataArray(fit.curve(full_s, blurred=False), dims=("position",),
                                           coords={"position": pos},
                                           attrs={"units": yunit, "long_name": f"{model} step model without blur"})
    data["field"] = xr.DataArray(-fit.derivative(full_s, 1) * 1e9, dims=("position",), coords={"position": pos},
                                 attrs={"units": units["field_peak"], "long_name": "field -dV/dx of the model"})
    if eps_r is not None:
        data["charge_density"] = xr.DataArray(
            -EPSILON_0 * eps_r * fit.derivative(full_s, 2) * 1e18, dims=("position",), coords={"position": pos},
            attrs={"units": "C/m^3" if is_volt else f"F/m * {yunit}/m^2",
                   "long_name": "charge density -eps0 eps_r d2V/dx2 of the model", "eps_r": float(eps_r)})
    ds = xr.Dataset(data)
    plateaus = plateau_samples(fit.curve(s[keep]), values["level_start"][0], values["level_end"][0])
    ds.attrs = {"model": model, "side": fit.side, "chi2_reduced": fit.chi2_reduced, "dof": fit.dof,
                "plateau_samples_start": plateaus[0], "plateau_samples_end": plateaus[1],
                "parameter_names": list(fit.names), "covariance": [[float(v) for v in row] for row in fit.cov],
                "noise_model": "correlated" if corr is not None else ("diagonal" if sigma is not None else "equal weights"),
                "blur_fitted": "blur" in fit.names,
                "resolution": fit.blur.describe() if isinstance(fit.blur, LowPass)
                else (f"Gaussian sigma {fit.blur:.4g} nm" if fit.blur else "none")}
    blur_param = dataclasses.asdict(blur) if isinstance(blur, LowPass) else blur
    params = {"model": model, "side": side, "blur": blur_param, "eps_r": eps_r, "covariance": covariance,
              "step": bool(step)}
    return with_provenance(ds, "ionscope.profiles.fit_step", params, [prof], history=provenance(prof))


__all__ = ["StepFit", "fit_step_arrays", "step_summary", "fit_step", "plateau_samples", "PLATEAU_TOLERANCE"]
