r"""Joint weighted fit of a measured potential profile and a Li profile to the lattice-gas model.

The forward model - the layer blurred by a Gaussian point-spread function or by a
Fourier-holography aperture, ``step_V``, ``bulk_slope_V_per_nm``, ``li_electrode_level`` - is
:func:`~ionscope.spacecharge.interface.interface_profile` (module
:mod:`~ionscope.spacecharge.interface`; :func:`interface_profile`, :data:`PARAMETERS` and
:func:`recorded_lowpass` are re-exported here). :math:`V(x)` is the potential model,
:math:`L(x) = L_\mathrm{off} + L_\mathrm{scale}\,[\ldots]` the Li model.

Li data come in one of three ``li_mode`` s: ``"relative"`` (any unit; :math:`L_\mathrm{off}`,
:math:`L_\mathrm{scale}` free), ``"absolute"`` (m^-3; :math:`L_\mathrm{off} = 0`,
:math:`L_\mathrm{scale} = c_0`) or ``"occupancy"`` (Li per site; :math:`L_\mathrm{off} = 0`,
:math:`L_\mathrm{scale} = \theta`).

Identifiability. The potential depends on :math:`\varepsilon_r` and :math:`c_0` only through
:math:`\ell^2 = \varepsilon_0\varepsilon_r V_T\theta/(e c_0)`, and a relative Li profile does
not change that - so :math:`\varepsilon_r` and :math:`c_0` can both be fitted only from an
absolute Li profile. In general the column-scaled Jacobian of the weighted residuals is checked
before and after the fit; a singular value below ``1e-4`` of the largest (a parameter
combination the data do not constrain) raises :class:`IdentifiabilityError`, which names the
combination and says what to fix or add. Two degeneracies are structural: :math:`\varepsilon_r`
with :math:`c_0` (above), and, in a strongly depleted (Mott-Schottky, parabolic) layer, a free
interface step :math:`s` with :math:`\psi_0` and :math:`x_0` - a larger drop is the same
parabola started earlier - so fix ``step_V`` (known mean inner potentials, or subtract a 0 V
reference) when fitting a holography profile. ``step_V`` is the electrode's mean inner
potential minus the electrolyte's, whichever side the electrolyte is on.

Parameters are fitted in transformed coordinates (:math:`\mathrm{logit}\,\theta`,
:math:`\ln\varepsilon_r`, :math:`\ln c_0`) by trust-region least squares; standard errors come
from :math:`(J^T W J)^{-1}` by the delta method, scaled by the reduced chi-squared when no
standard errors of the data were given (then each profile's noise is first estimated from its
second differences so both profiles are weighted sensibly).

Correlated noise. The noise of a band-averaged profile of a reconstructed map is correlated
between neighbouring points; ``noise_model`` chooses how the correlation enters the fit and
its errors (``"sandwich"``, the default; ``"ess"``; ``"gls"``; ``"diagonal"``) - see
:mod:`ionscope.spacecharge.noise`, which also compares them on the holography twin.

References
----------
P.R. Bevington, D.K. Robinson, *Data Reduction and Error Analysis for the Physical Sciences*,
3rd ed. (2003), ch. 8 (weighted least squares, covariance). A. Raue et al., Bioinformatics 25
(2009) 1923 (structural and practical identifiability). J.J. Bikerman, Phil. Mag. 33 (1942)
384 (the lattice-gas model). The noise models' references: :mod:`ionscope.spacecharge.noise`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy.optimize import brentq, least_squares
from scipy.special import expit, logit

from ionscope.compat import moved_names
from ionscope.errors import ConfigError, ConvergenceError, InputError
from ionscope.profiles import LowPass
from ionscope.spacecharge.interface import (
    PARAMETERS,
    _derivative,
    _to_internal,
    _to_natural,
    interface_profile,
    recorded_lowpass,
)
from ionscope.spacecharge.model import _check_scalar, debye_length_nm, surface_charge, w90_nm
from ionscope.spacecharge.noise import (  # noqa: F401  (NOISE_MODELS, integrated_time re-exported)
    NOISE_MODELS,
    _noise,
    _Noise,
    _noise_estimate,
    integrated_time,
)

__all__ = [
    "PARAMETERS",
    "IdentifiabilityError",
    "SpaceChargeFit",
    "interface_profile",
    "fit_spacecharge",
    "integrated_time",
    "recorded_lowpass",
    "DEFAULT_POTENTIAL_FREE",
    "DEFAULT_LI_FREE",
    "default_free",
    "NOISE_MODELS",
]


# fit_profiles moved to ionscope.spacecharge.wrappers (which imports this module)
__getattr__ = moved_names(__name__, {"fit_profiles": "ionscope.spacecharge.wrappers"})

#: Parameters fitted to a potential profile by default.
DEFAULT_POTENTIAL_FREE = ("psi0_V", "theta", "x0_nm", "psf_nm", "v_offset_V")
#: Parameters added with a Li profile (scale and offset only in ``li_mode="relative"``).
DEFAULT_LI_FREE = ("li_offset", "li_scale", "li_psf_nm")


def default_free(*, has_li: bool = False, li_mode: str = "relative", fixed=()) -> list[str]:
    """The parameters :func:`fit_spacecharge` fits when ``free`` is not given: ``psi0_V, theta,
    x0_nm, psf_nm, v_offset_V``, plus ``li_offset, li_scale`` (relative Li mode) and
    ``li_psf_nm`` with a Li profile; less any name in ``fixed``.

    >>> default_free(has_li=True, li_mode="absolute", fixed={"theta": 0.9})
    ['psi0_V', 'x0_nm', 'psf_nm', 'v_offset_V', 'li_psf_nm']
    """
    names = list(DEFAULT_POTENTIAL_FREE)
    if has_li:
        names += [n for n in DEFAULT_LI_FREE if li_mode == "relative" or n == "li_psf_nm"]
    return [n for n in names if n not in fixed]
_LI_MODES = ("relative", "absolute", "occupancy")
#: Smallest allowed singular value of the column-scaled Jacobian, relative to the largest.
SINGULAR_TOLERANCE = 1e-4
#: Reduced chi-squared above which the fit is restarted from other starts (theta; the drop shared
#: between the layer and a free step_V).
_RETRY_ABOVE = 1.5
_AT_BOUND_NM = 1e-3  # nm: a fitted PSF below this counts as at its bound 0
_EDGE = 1e-7  # a fitted occupancy closer than this to 0 or 1 ran to the edge of its range


class IdentifiabilityError(ConfigError):
    """The data do not determine a combination of the free parameters."""


# --------------------------------------------------------------------------- fit machinery


@dataclass
class _Problem:
    x: np.ndarray
    y: np.ndarray
    w: _Noise
    xl: np.ndarray | None
    yl: np.ndarray | None
    wl: _Noise | None
    li_mode: str
    li_level: float
    side: str
    temperature_K: float
    free: tuple[str, ...]
    fixed: dict[str, float]
    lowpass: LowPass | None = None

    def values(self, z: np.ndarray) -> dict[str, float]:
        out = dict(self.fixed)
        for name, zi in zip(self.free, z):
            out[name] = _to_natural(name, zi)
        return out

    _cache: dict = field(default_factory=dict)

    def _cached(self, key: tuple, compute) -> np.ndarray:
        # the finite-difference Jacobian changes one parameter at a time: a profile whose own
        # parameters did not change (offsets, the other profile's PSF) is reused
        value = self._cache.get(key)
        if value is None:
            if len(self._cache) > 32:
                self._cache.clear()
            value = self._cache[key] = compute()
        return value

    def models(self, p: dict[str, float]) -> tuple[np.ndarray, np.ndarray | None]:
        common = dict(psi0_V=p["psi0_V"], theta=p["theta"], eps_r=p["eps_r"],
                      c0_m3=p["c0_m3"], side=self.side, temperature_K=self.temperature_K)
        layer = (p["psi0_V"], p["theta"], p["eps_r"], p["c0_m3"])
        v = self._cached(
            ("v", *layer, p["x0_nm"], p["psf_nm"], p["step_V"], p["bulk_slope_V_per_nm"]),
            lambda: interface_profile(self.x, x0_nm=p["x0_nm"], psf_nm=max(p["psf_nm"], 0.0),
                                      step_V=p["step_V"], lowpass=self.lowpass,
                                      bulk_slope_V_per_nm=p["bulk_slope_V_per_nm"], **common),
        ) + p["v_offset_V"]
        if self.xl is None:
            return v, None
        if self.li_mode == "relative":
            scale, offset = p["li_scale"], p["li_offset"]
        elif self.li_mode == "absolute":
            scale, offset = p["c0_m3"], 0.0
        else:
            scale, offset = p["theta"], 0.0
        li = self._cached(
            ("li", *layer, p["x0_nm"] + p["li_shift_nm"], p["li_psf_nm"]),
            lambda: interface_profile(self.xl, x0_nm=p["x0_nm"] + p["li_shift_nm"],
                                      psf_nm=max(p["li_psf_nm"], 0.0), quantity="li",
                                      electrode_level=self.li_level, **common),
        )
        return v, offset + scale * li

    def residual(self, z: np.ndarray) -> np.ndarray:
        v, li = self.models(self.values(z))
        r = self.w.weigh(v - self.y)
        if li is None:
            return r
        return np.concatenate([r, self.wl.weigh(li - self.yl)])

    def correlation_matrix(self) -> np.ndarray | None:
        """Noise correlation of the weighted residuals (sandwich), None if independent."""
        blocks = [self.w] + ([self.wl] if self.wl is not None else [])
        if all(b.corr is None for b in blocks):
            return None
        mats = [b.corr if b.corr is not None else np.eye(b.w.size) for b in blocks]
        n = sum(m.shape[0] for m in mats)
        out = np.zeros((n, n))
        i = 0
        for m in mats:
            out[i : i + m.shape[0], i : i + m.shape[0]] = m
            i += m.shape[0]
        return out


def _jacobian(problem: _Problem, z: np.ndarray) -> np.ndarray:
    """Central-difference Jacobian of the weighted residuals in internal coordinates."""
    cols = []
    for i, name in enumerate(problem.free):
        h = 1e-5 * max(1.0, abs(z[i])) if PARAMETERS[name]["transform"] != "nonneg" else 1e-4
        if PARAMETERS[name]["transform"] == "nonneg" and z[i] < h:
            zp = z.copy()
            zp[i] += h
            zpp = z.copy()
            zpp[i] += 2 * h
            cols.append((-3 * problem.residual(z) + 4 * problem.residual(zp)
                         - problem.residual(zpp)) / (2 * h))
            continue
        zp, zm = z.copy(), z.copy()
        zp[i] += h
        zm[i] -= h
        cols.append((problem.residual(zp) - problem.residual(zm)) / (2 * h))
    return np.column_stack(cols)


def _check_identifiable(jac: np.ndarray, free: tuple[str, ...], has_li: bool, where: str,
                        values: dict[str, float] | None = None) -> None:
    norms = np.linalg.norm(jac, axis=0)
    dead = [free[i] for i in np.nonzero(norms <= 1e-12 * max(norms.max(), 1e-300))[0]]
    if values is not None:  # an occupancy at the very edge of (0, 1): its logit ran away
        dead += [n for n in free if n not in dead and PARAMETERS[n]["transform"] == "logit"
                 and not _EDGE < values[n] < 1 - _EDGE]
    if dead:
        ran = [f"{n} = {values[n]:.6g}" for n in dead
               if values is not None and PARAMETERS[n]["transform"] in ("logit", "log")]
        extra = ""
        if ran:
            extra = (f"; the fit ran to the edge of the range ({', '.join(ran)}), so the data "
                     "do not constrain it" + (" - in a depleted layer (psi0 > 0) only the Debye "
                                              "tail carries theta; fix theta (e.g. --fix "
                                              "theta=0.99) or add a Li profile (--li)"
                                              if "theta" in dead else ""))
        raise IdentifiabilityError(
            f"the data do not depend on {', '.join(dead)} ({where}){extra}; fix "
            f"{'it' if len(dead) == 1 else 'them'} or give data that constrain "
            f"{'it' if len(dead) == 1 else 'them'}"
        )
    scaled = jac / norms
    _, s, vt = np.linalg.svd(scaled, full_matrices=False)
    ratio = s[-1] / s[0]
    if ratio >= SINGULAR_TOLERANCE:
        return
    vec = vt[-1]
    order = np.argsort(-np.abs(vec))
    parts = [free[i] for i in order if abs(vec[i]) > 0.2]
    hint = ""
    if "step_V" in parts:
        hint = (" - a sharp interface step trades off against the layer's drop and position; "
                "fix step_V (the electrode's minus the electrolyte's mean inner potential, "
                "e.g. --step 5.0) or subtract a 0 V reference map")
    elif {"eps_r", "c0_m3"} <= set(parts):
        hint = (" - eps_r and c0 enter the potential (and a relative Li profile) only through "
                "the Debye length; fix one of them (e.g. c0 from the composition) or give an "
                "absolute Li profile (li_mode='absolute', m^-3)")
    elif not has_li and "theta" in parts:
        hint = (" - give a Li profile (--li) or fix one of them (theta, e.g. --fix theta=0.99, "
                "if the vacancy fraction is known)")
    elif not has_li:
        hint = " - give a Li profile (--li) or fix one of them"
    raise IdentifiabilityError(
        f"parameters {', '.join(parts)} are not identifiable from the data given ({where}: "
        f"singular value ratio {ratio:.2g} < {SINGULAR_TOLERANCE:g}){hint}"
    )


# --------------------------------------------------------------------------- starting values


def _ends(x: np.ndarray, y: np.ndarray, side: str) -> tuple[np.ndarray, np.ndarray]:
    n = max(3, x.size // 10)
    order = np.argsort(x)
    lo, hi = y[order[:n]], y[order[-n:]]
    return (lo, hi) if side == "right" else (hi, lo)


def _start(problem: _Problem, initial: dict[str, float]) -> dict[str, float]:
    x, y, side = problem.x, problem.y, problem.side
    electrode, bulk = _ends(x, y, side)
    p: dict[str, float] = {}
    for name, spec in PARAMETERS.items():
        if "default" in spec:
            p[name] = spec["default"]
    p["step_V"] = {**p, **initial, **problem.fixed}["step_V"]
    v_off = float(np.median(bulk))
    psi0 = float(np.median(electrode)) - v_off - p["step_V"]
    step = float(np.median(np.diff(np.sort(x)))) if x.size > 1 else 0.1
    p.update(v_offset_V=v_off, psi0_V=psi0 if psi0 != 0 else 1e-3,
             psf_nm=max(2 * step, 0.2), li_psf_nm=max(2 * step, 0.2))
    # interface: where the profile leaves the electrode plateau by 5 % of the whole drop
    # (layer + step), or by three standard errors of the data if that is more
    order = np.argsort(x) if side == "right" else np.argsort(-x)
    xs, ys = x[order], y[order]
    dev = np.abs(ys - (v_off + psi0 + p["step_V"]))
    noise = 3.0 / float(np.median(problem.w.w))
    # the first of three points in a row off the plateau: one noise point past the threshold
    # (two-sided 3.25 sigma: about one 100-point plateau in ten has one) put the start deep in
    # the electrode, and from there the fit's result hung on floating-point details (numpy version)
    off = dev > max(0.05 * abs(psi0 + p["step_V"]), noise)
    run = min(3, off.size)
    past = np.nonzero(np.lib.stride_tricks.sliding_window_view(off, run).all(axis=1))[0] if run else np.empty(0, int)
    p["x0_nm"] = float(xs[past[0]]) if past.size else float(np.median(x))
    p.update({k: v for k, v in initial.items() if k in PARAMETERS})
    p.update(problem.fixed)
    # width: adjust the first free width-setting parameter to the data's w90
    sgn = 1.0 if side == "right" else -1.0
    rel = (ys - v_off) / p["psi0_V"]
    d = (xs - p["x0_nm"]) * sgn
    beyond = np.nonzero((d > 0) & (rel < 0.1))[0]
    if beyond.size and "psi0_V" not in initial:
        w_data = max(float(d[beyond[0]]), 0.05)

        def w_model(theta=None, eps_r=None, c0=None):
            return w90_nm(p["psi0_V"], theta or p["theta"], eps_r or p["eps_r"],
                          c0 or p["c0_m3"], problem.temperature_K)

        try:
            if "theta" in problem.free and "theta" not in initial:
                f = lambda q: w_model(theta=expit(q)) - w_data  # noqa: E731
                lo, hi = logit(0.3), logit(0.9999)
                if f(lo) * f(hi) < 0:
                    p["theta"] = float(expit(brentq(f, lo, hi, xtol=1e-3)))
                else:
                    p["theta"] = 0.3 if abs(f(lo)) < abs(f(hi)) else 0.9999
            elif "eps_r" in problem.free and "eps_r" not in initial:
                p["eps_r"] = float(np.clip(p["eps_r"] * (w_data / w_model()) ** 2, 1, 1e4))
            elif "c0_m3" in problem.free and "c0_m3" not in initial:
                p["c0_m3"] = float(p["c0_m3"] * (w_model() / w_data) ** 2)
        except (InputError, ValueError):
            pass
    if problem.xl is not None:
        e_li, b_li = _ends(problem.xl, problem.yl, side)
        e_li, b_li = float(np.median(e_li)), float(np.median(b_li))
        level = problem.li_level
        scale = (b_li - e_li) / (1.0 - level) if level != 1.0 else b_li
        p.setdefault("li_scale", scale if scale != 0 else 1.0)
        p.setdefault("li_offset", b_li - p["li_scale"])
        p.update({k: v for k, v in initial.items() if k in ("li_scale", "li_offset")})
    p.setdefault("li_scale", 1.0)
    p.setdefault("li_offset", 0.0)
    p.update(problem.fixed)
    return p


# --------------------------------------------------------------------------- result


@dataclass
class SpaceChargeFit:
    """Result of :func:`fit_spacecharge`."""

    values: dict[str, float]  #: every parameter (fitted and fixed), natural units
    stderr: dict[str, float]  #: standard errors of the fitted parameters
    free: tuple[str, ...]  #: the fitted parameters, in the order of ``correlation``
    correlation: np.ndarray  #: correlation matrix of the fitted parameters
    chi2: float  #: weighted sum of squared residuals
    dof: int  #: degrees of freedom (points - free parameters)
    absolute_sigma: bool  #: True if the data's standard errors were given (not estimated)
    side: str  #: where the electrolyte is ("right": x > x0)
    potential_fit: np.ndarray  #: model at the potential profile's positions (V)
    li_fit: np.ndarray | None  #: model at the Li profile's positions
    derived: dict[str, float] = field(default_factory=dict)  #: w90, Debye length, ...
    nfev: int = 0  #: model evaluations of the final least-squares run
    noise_model: str = "diagonal"  #: how correlated noise was used ("gls", "sandwich", ...)
    resolution: str = "Gaussian PSF"  #: the resolution model of the potential profile
    at_bound: tuple[str, ...] = ()  #: fitted PSFs that ran to 0 (standard error 0)

    @property
    def reduced_chi2(self) -> float:
        return self.chi2 / max(self.dof, 1)

    def summary(self) -> dict[str, Any]:
        """JSON-ready dict: parameters, standard errors, correlations, chi2, derived values."""
        corr = {a: {b: float(self.correlation[i, j]) for j, b in enumerate(self.free)}
                for i, a in enumerate(self.free)}
        return {
            "parameters": {k: float(v) for k, v in self.values.items()},
            "standard_errors": {k: float(v) for k, v in self.stderr.items()},
            "free": list(self.free),
            "fixed": sorted(k for k in self.values if k not in self.free),
            "correlation": corr,
            "chi2": float(self.chi2), "dof": int(self.dof),
            "reduced_chi2": float(self.reduced_chi2),
            "absolute_sigma": bool(self.absolute_sigma), "side": self.side,
            "noise_model": self.noise_model, "resolution": self.resolution,
            "at_bound": list(self.at_bound),
            **{k: float(v) for k, v in self.derived.items()},
        }


def _as_profile(x, y, sigma, what: str):
    x = np.asarray(x, dtype=np.float64).ravel()
    y = np.asarray(y, dtype=np.float64).ravel()
    if x.shape != y.shape:
        raise InputError(f"{what}: {x.size} positions but {y.size} values")
    if x.size < 8:
        raise InputError(f"{what}: {x.size} points are too few to fit a layer (need >= 8)")
    if not (np.all(np.isfinite(x)) and np.all(np.isfinite(y))):
        raise InputError(f"{what} holds NaN/inf values; drop or interpolate them first")
    if sigma is None:
        return x, y, None
    s = np.broadcast_to(np.asarray(sigma, dtype=np.float64), y.shape).astype(np.float64)
    if not np.all(np.isfinite(s)) or np.any(s <= 0):
        raise InputError(f"{what}: standard errors must be positive and finite")
    return x, y, s


def fit_spacecharge(
    position_nm, potential_V, sigma_V=None, *, li_position_nm=None, li=None, li_sigma=None,
    li_mode: str = "relative", li_electrode_level: float = 0.0, free=None,
    fixed: dict[str, float] | None = None, initial: dict[str, float] | None = None,
    side: str = "auto", temperature_K: float = 298.15, max_nfev: int = 400,
    lowpass: LowPass | None = None, correlation=None, li_correlation=None,
    noise_model: str = "auto",
) -> SpaceChargeFit:
    r"""Fit the lattice-gas layer to a potential profile and, optionally, a Li profile.

    Parameters
    ----------
    position_nm, potential_V : array_like
        The potential profile (nm, V), e.g. from holography or KPFM.
    sigma_V : array_like or float, optional
        Standard errors of the potential (V); estimated from the data when omitted.
    li_position_nm, li, li_sigma : array_like, optional
        The Li profile (e.g. EELS) on its own positions, and its standard errors.
    li_mode : {"relative", "absolute", "occupancy"}
        How the Li values relate to the concentration (module docstring).
    li_electrode_level : float
        Li level of the electrode in units of the electrolyte's bulk (fixed; 0 for a Li-free
        current collector).
    free : iterable of str, optional
        Parameters to fit; default ``psi0_V, theta, x0_nm, psf_nm, v_offset_V`` plus
        ``li_offset, li_scale`` (relative mode) and ``li_psf_nm`` with a Li profile. A fitted
        PSF that runs to 0 is reported at 0 with standard error 0 (``at_bound``).
    fixed : dict, optional
        Values of parameters that are not fitted (default ``eps_r=50, c0_m3=6e27, step_V=0,
        li_shift_nm=0``, and ``psf_nm=0`` when not fitted); a name in both ``free`` and
        ``fixed`` is an error. ``step_V`` is the electrode's minus the electrolyte's mean
        inner potential (V) for a holography profile.
    initial : dict, optional
        Start values of fitted parameters (otherwise estimated from the data).
    side : {"auto", "right", "left"}
        Where the electrolyte lies; ``"auto"`` fits both and keeps the lower chi-squared.
    temperature_K : float
        Temperature (K).
    max_nfev : int
        Limit on model evaluations per least-squares run.
    lowpass : ionscope.profiles.LowPass, optional
        Resolution of a Fourier-holography potential profile: the reconstruction aperture as a
        low-pass on the electron wave (:mod:`~ionscope.spacecharge.interface`), in place of (or on top of) the
        Gaussian PSF.
    correlation, li_correlation : sequence of float, optional
        Noise correlation of the potential (Li) profile between points k samples apart
        (``rho[0] = 1``; e.g. ``profile_sigma.attrs["noise_correlation"]`` of an
        ``ionscope holo profile`` result). Needs the standard errors and evenly spaced,
        increasing positions.
    noise_model : {"auto", "sandwich", "ess", "gls", "diagonal"}
        How a correlation is used (module docstring): ``"auto"`` = ``"sandwich"`` (weighted
        least squares, covariance with the correlation); ``"ess"`` inflates the errors by the
        effective sample size; ``"gls"`` whitens (refused for a near-singular correlation);
        ``"diagonal"`` ignores it.

    Returns
    -------
    SpaceChargeFit

    Raises
    ------
    IdentifiabilityError
        If the free parameters are not identifiable from the data given (or one ran to the
        edge of its range).
    ConfigError
        For inconsistent parameter lists, or GLS with a near-singular noise correlation.
    InputError
        For unusable profiles or options.
    ConvergenceError
        If the least-squares fit fails.

    Examples
    --------
    A Fourier-holography profile: the known mean-inner-potential step, the aperture as a
    low-pass on the wave, and correlated noise (AR(1), rho = 0.6):

    >>> from ionscope.profiles import LowPass
    >>> lp = LowPass(0.17, 0.01, 0.53)
    >>> x = np.arange(0.0, 68.0, 0.5)
    >>> v = interface_profile(x, 1.3, 0.99, 50, 1e26, x0_nm=30, step_V=5, offset=12.7, lowpass=lp)
    >>> fit = fit_spacecharge(x, v, 0.02, lowpass=lp, correlation=0.6 ** np.arange(10),
    ...                       fixed={"step_V": 5.0, "c0_m3": 1e26, "theta": 0.99}, side="right")
    >>> round(fit.values["psi0_V"], 3), fit.noise_model
    (1.3, 'sandwich')
    """
    x, y, s = _as_profile(position_nm, potential_V, sigma_V, "potential profile")
    has_li = li is not None
    if has_li:
        if li_position_nm is None:
            li_position_nm = x
        xl, yl, sl = _as_profile(li_position_nm, li, li_sigma, "Li profile")
    else:
        xl = yl = sl = None
    if li_mode not in _LI_MODES:
        raise ConfigError(f"li_mode = {li_mode!r}: use one of {_LI_MODES}")
    if side not in ("auto", "right", "left"):
        raise ConfigError(f"side = {side!r}: use 'auto', 'right' or 'left'")
    li_electrode_level = _check_scalar(li_electrode_level, "li_electrode_level")
    if noise_model not in NOISE_MODELS:
        raise ConfigError(f"noise_model = {noise_model!r}: use one of {NOISE_MODELS}")
    if correlation is not None and s is None or li_correlation is not None and (not has_li or sl is None):
        raise InputError(
            "a noise correlation needs the profile's standard errors too (sigma_V / li_sigma); "
            "give them or drop the correlation"
        )
    if lowpass is not None and not isinstance(lowpass, LowPass):
        raise ConfigError(f"lowpass must be an ionscope.profiles.LowPass, got {type(lowpass).__name__}")
    mode = "sandwich" if noise_model == "auto" else noise_model
    fixed = dict(fixed or {})
    initial = dict(initial or {})
    if free is None:
        free_list = default_free(has_li=has_li, li_mode=li_mode, fixed=fixed)
    else:
        free_list = [str(f) for f in free]
    unknown = [n for n in list(free_list) + list(fixed) + list(initial) if n not in PARAMETERS]
    if unknown:
        raise ConfigError(f"unknown parameter(s) {unknown}; known: {sorted(PARAMETERS)}")
    both = sorted(set(free_list) & set(fixed))
    if both:
        raise ConfigError(f"parameter(s) {both} are both free and fixed; choose one")
    if len(set(free_list)) != len(free_list):
        raise ConfigError(f"repeated names in free = {free_list}")
    li_params = [n for n in free_list if n.startswith("li_")]
    if li_params and not has_li:
        raise ConfigError(f"{li_params} need a Li profile; give one or do not fit them")
    if li_mode != "relative" and {"li_offset", "li_scale"} & set(free_list):
        raise ConfigError(
            f"li_mode = {li_mode!r} ties the Li scale and offset to the model; do not fit "
            "li_offset / li_scale"
        )
    for name, value in list(fixed.items()) + list(initial.items()):
        value = _check_scalar(value, name)
        kind = PARAMETERS[name]["transform"]
        if kind == "logit" and not 0 < value < 1:
            raise ConfigError(f"{name} = {value} must lie strictly between 0 and 1")
        if kind == "log" and value <= 0:
            raise ConfigError(f"{name} = {value} must be positive")
        if kind == "nonneg" and value < 0:
            raise ConfigError(f"{name} = {value} must be >= 0")
    for name in PARAMETERS:
        if name not in free_list and name not in fixed and "default" in PARAMETERS[name]:
            fixed[name] = PARAMETERS[name]["default"]
    for name in ("psf_nm", "li_psf_nm"):  # a resolution not fitted and not given: none
        if name not in free_list and name not in fixed:
            fixed[name] = 0.0
    needed = ["psi0_V", "theta", "x0_nm", "v_offset_V"]
    if has_li and li_mode == "relative":
        needed += ["li_offset", "li_scale"]
    missing = [n for n in needed if n not in free_list and n not in fixed]
    if missing:
        raise ConfigError(f"parameter(s) {missing} are neither free nor fixed; fit them or give values")
    absolute = s is not None and (not has_li or sl is not None)
    w = _noise(x, s, correlation, mode, "potential profile") if s is not None else \
        _Noise(np.full_like(y, 1.0 / _noise_estimate(y[np.argsort(x)])))
    wl = None
    if has_li:
        wl = _noise(xl, sl, li_correlation, mode, "Li profile") if sl is not None else \
            _Noise(np.full_like(yl, 1.0 / _noise_estimate(yl[np.argsort(xl)])))
    has_corr = correlation is not None or li_correlation is not None
    noise_used = mode if has_corr else ("diagonal" if absolute else "estimated")
    resolution = lowpass.describe() if lowpass is not None else "Gaussian PSF"
    sides = ("right", "left") if side == "auto" else (side,)
    best = None
    errors = []
    for sd in sides:
        problem = _Problem(x, y, w, xl, yl, wl, li_mode, li_electrode_level, sd,
                           float(temperature_K), tuple(free_list), dict(fixed), lowpass)
        try:
            result = _fit_one(problem, initial, int(max_nfev), retry=False)
        except (ConvergenceError, InputError) as exc:
            errors.append(f"{sd}: {exc}")
            continue
        if best is None or result.cost < best[1].cost:
            best = (problem, result)
    if best is None:
        raise ConvergenceError("the space-charge fit failed: " + "; ".join(errors))
    problem, res = best
    dof = max(res.fun.size - len(problem.free), 1)
    if 2 * res.cost / dof > _RETRY_ABOVE and "theta" in problem.free and "theta" not in initial:
        # a poor fit may be a local minimum in theta: restart from both ends of its range
        retry = _fit_one(problem, initial, int(max_nfev), retry=True)
        if retry.cost < res.cost:
            res = retry
    if 2 * res.cost / dof > _RETRY_ABOVE and "step_V" in problem.free and "step_V" not in initial:
        # a poor fit may have taken the whole drop for the layer (or for the step): restart with
        # the drop shared between them
        electrode, bulk = _ends(problem.x, problem.y, problem.side)
        drop = float(np.median(electrode) - np.median(bulk))
        for share in (0.25, 0.5, 0.75):
            try:
                retry = _fit_one(problem, {**initial, "step_V": share * drop}, int(max_nfev), retry=False)
            except (ConvergenceError, InputError):
                continue
            if retry.cost < res.cost:
                res = retry
    out = _finish(problem, res, absolute)
    out.noise_model, out.resolution = noise_used, resolution
    return out


def _fit_one(problem: _Problem, initial: dict[str, float], max_nfev: int, retry: bool):
    start = _start(problem, initial)
    starts = [start]
    if retry:
        starts = [{**start, "theta": th} for th in (0.5, 0.99, 0.999)
                  if abs(logit(th) - logit(start["theta"])) > 1.0]
        if not starts:
            starts = [start]
    lower = np.array([0.0 if PARAMETERS[n]["transform"] == "nonneg" else -np.inf
                      for n in problem.free])
    best = None
    for p0 in starts:
        z0 = np.array([_to_internal(n, p0[n]) for n in problem.free])
        z0 = np.maximum(z0, lower)
        if best is None and not retry:  # structural check once, at the first start
            _check_identifiable(_jacobian(problem, z0), problem.free, problem.xl is not None,
                                "at the starting values")
        try:
            res = least_squares(problem.residual, z0, method="trf", x_scale="jac",
                                bounds=(lower, np.full_like(lower, np.inf)),
                                max_nfev=max_nfev, xtol=1e-10, ftol=1e-10)
        except (InputError, ValueError) as exc:
            raise ConvergenceError(f"the model failed during the fit ({exc})") from None
        if not np.all(np.isfinite(res.fun)):
            continue
        if best is None or res.cost < best.cost:
            best = res
    if best is None:
        raise ConvergenceError("no start value gave a finite model")
    return best


def _finish(problem: _Problem, res, absolute: bool) -> SpaceChargeFit:
    z = res.x
    jac = _jacobian(problem, z)
    # a resolution that ran to its bound 0 has no first-order effect (blur variances add):
    # it is reported at 0 with standard error 0 and the others' covariance is conditional on it
    at_bound = tuple(n for n, zi in zip(problem.free, z)
                     if PARAMETERS[n]["transform"] == "nonneg" and zi < _AT_BOUND_NM)
    keep = [i for i, n in enumerate(problem.free) if n not in at_bound]
    if not keep:
        raise IdentifiabilityError("every fitted parameter ran to its bound; fit others")
    jac_k = jac[:, keep]
    _check_identifiable(jac_k, tuple(problem.free[i] for i in keep), problem.xl is not None,
                        "at the best fit", values=problem.values(z))
    chi2 = float(np.sum(res.fun ** 2))
    n = res.fun.size
    dof = n - len(problem.free)
    try:
        cov_k = np.linalg.inv(jac_k.T @ jac_k)
    except np.linalg.LinAlgError:
        raise IdentifiabilityError("the fit's normal matrix is singular; fix some parameters") from None
    corr_noise = problem.correlation_matrix()
    if corr_noise is not None:  # sandwich: A^-1 J^T R J A^-1 (J already weighted by 1/sigma)
        cov_k = cov_k @ (jac_k.T @ corr_noise @ jac_k) @ cov_k
    if not absolute:
        cov_k = cov_k * (chi2 / max(dof, 1))
    cov_z = np.zeros((len(problem.free),) * 2)
    cov_z[np.ix_(keep, keep)] = cov_k
    values = problem.values(z)
    for name in at_bound:
        values[name] = 0.0
    deriv = np.array([_derivative(nm, values[nm]) for nm in problem.free])
    cov = cov_z * np.outer(deriv, deriv)
    err = np.sqrt(np.clip(np.diag(cov), 0, None))
    sd = np.sqrt(np.diag(cov_z))
    with np.errstate(invalid="ignore", divide="ignore"):
        corr = np.where(np.outer(sd, sd) > 0, cov_z / np.outer(sd, sd), 0.0)
    corr = np.clip(corr, -1.0, 1.0)
    np.fill_diagonal(corr, 1.0)
    v, li = problem.models(values)
    derived = _derived(values, problem.temperature_K)
    return SpaceChargeFit(
        values=values, stderr=dict(zip(problem.free, err.tolist())), free=problem.free,
        correlation=corr, chi2=chi2, dof=dof, absolute_sigma=absolute, side=problem.side,
        potential_fit=v, li_fit=li, derived=derived, nfev=int(res.nfev), at_bound=at_bound,
    )


def _derived(p: dict[str, float], temperature_K: float) -> dict[str, float]:
    args = (p["theta"], p["eps_r"], p["c0_m3"], temperature_K)
    out = {
        "debye_length_nm": debye_length_nm(*args),
        "vacancy_density_m3": p["c0_m3"] * (1 - p["theta"]) / p["theta"],
        "effective_carrier_density_m3": (p["c0_m3"] if p["psi0_V"] > 0
                                         else p["c0_m3"] * (1 - p["theta"]) / p["theta"]),
    }
    if p["psi0_V"] != 0:
        out["w90_nm"] = w90_nm(p["psi0_V"], *args)
        out["surface_charge_C_per_m2"] = surface_charge(p["psi0_V"], *args)
    return out
