r"""Power-law background of core-loss edges, :math:`B(E) = A E^{-r}`, fitted before the edge.

Model and units
---------------
The spectra hold counts per channel; the background of channel ``i`` (centre :math:`E_i`, eV)
is :math:`B_i = A E_i^{-r}`, so :math:`A` is in counts per channel at 1 eV and :math:`r` is
dimensionless (typically 2-6). Two estimators, both closed-form or vectorised over all spectra:

* :func:`powerlaw_fit` - weighted least squares of :math:`\ln y_i = \ln A - r \ln E_i` over the
  channels of the pre-edge window, Poisson weights (Egerton 2011, section 4.4.2);
* :func:`powerlaw_two_window` - Egerton's two-area method: the window is split into two
  halves with counts :math:`I_1` (lower) and :math:`I_2` (upper) and :math:`A, r` are chosen
  so that the model reproduces both sums exactly.

Mask codes (``int8``, the same table for every EELS wrapper; ``mask != 0`` exactly where the
returned values are NaN):

==== =========================================================================================
code meaning
==== =========================================================================================
0    ok
1    the background window holds zero or negative counts (fit: any channel <= 0; two-window:
     a half-window sum <= 0) - no background; bin the data or move the window
2    the fit failed: degenerate or non-finite result (e.g. iteration did not converge)
3    ratio undefined: the denominator window integral S_B <= 0 after background subtraction
     (:mod:`ionscope.eels.windows`)
==== =========================================================================================

References
----------
R.F. Egerton, *Electron Energy-Loss Spectroscopy in the Electron Microscope*, 3rd ed.,
Springer (2011), sections 4.4.2-4.4.3 (power-law fit, two-area method).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

import numpy as np
import xarray as xr

from ionscope.data import provenance, units_of, with_provenance
from ionscope.eels.energy import energy_vector, float_dtype, window_channels
from ionscope.eels.wrapping import finish, lift, spectra_array, spectrum_image
from ionscope.errors import ConfigError
from ionscope.validation import Options, validate_params

MASK_OK = 0
MASK_NONPOSITIVE = 1
MASK_FIT_FAILED = 2
MASK_RATIO_UNDEFINED = 3
#: Meaning of each mask code (CF ``flag_values`` / ``flag_meanings``).
MASK_CODES: dict[int, str] = {
    MASK_OK: "ok",
    MASK_NONPOSITIVE: "nonpositive_counts_in_background_window",
    MASK_FIT_FAILED: "background_fit_failed",
    MASK_RATIO_UNDEFINED: "denominator_window_nonpositive",
}
METHODS = ("fit", "two-window")


class PowerLaw(NamedTuple):
    """Power-law background parameters of a batch of spectra (arrays of shape ``(...)``).

    Attributes
    ----------
    A : numpy.ndarray
        Amplitude, counts per channel at E = 1 eV (float64).
    r : numpy.ndarray
        Exponent (float64).
    quality : numpy.ndarray
        Reduced chi-squared of the model in counts space over the window channels,
        :math:`\\sum_i (y_i - B_i)^2 / \\max(B_i, 1) / \\max(n - 2, 1)`; ~1 for a good fit
        of Poisson data, 0 for noiseless data.
    mask : numpy.ndarray
        int8 reason codes (see the module docstring); A, r, quality and cov are NaN where
        ``mask != 0``.
    cov : numpy.ndarray, shape (..., 2, 2)
        Covariance of :math:`(\\ln A, r)` from Poisson statistics of the window counts.
    """

    A: np.ndarray
    r: np.ndarray
    quality: np.ndarray
    mask: np.ndarray
    cov: np.ndarray


# --------------------------------------------------------------------------- kernels


def _window_block(energy: Any, spectra: Any, window: Sequence[float], min_channels: int):
    e, _ = energy_vector(energy)
    x = spectra_array(spectra, e.size)
    sel = window_channels(e, window, what="background window")
    n = sel.stop - sel.start
    if n < min_channels:
        raise ConfigError(
            f"background window {window[0]:g}-{window[1]:g} eV holds {n} channels; this method "
            f"needs at least {min_channels} - widen it"
        )
    if e[sel.start] <= 0:
        raise ConfigError(
            f"background window starts at {e[sel.start]:g} eV; a power law needs energies > 0 eV"
        )
    return e[sel], x.reshape(-1, e.size)[:, sel].astype(np.float64), x.shape[:-1]


def _quality(y: np.ndarray, model: np.ndarray) -> np.ndarray:
    dof = max(y.shape[-1] - 2, 1)
    return np.sum((y - model) ** 2 / np.maximum(model, 1.0), axis=-1) / dof


def _finalise(A, r, quality, cov, mask, lead) -> PowerLaw:
    finite_cov = np.all(np.isfinite(cov), axis=(-2, -1))
    bad = ~(np.isfinite(A) & np.isfinite(r) & np.isfinite(quality) & finite_cov)
    mask = np.where((mask == MASK_OK) & bad, MASK_FIT_FAILED, mask).astype(np.int8)
    failed = mask != MASK_OK
    A, r, quality = (np.where(failed, np.nan, v) for v in (A, r, quality))
    cov = np.where(failed[:, None, None], np.nan, cov)
    return PowerLaw(A.reshape(lead), r.reshape(lead), quality.reshape(lead), mask.reshape(lead),
                    cov.reshape(*lead, 2, 2))


def powerlaw_fit(
    energy: Any, spectra: Any, window: Sequence[float], weighted: bool = True
) -> PowerLaw:
    r"""Fit :math:`A E^{-r}` to every spectrum by (weighted) log-log least squares.

    Parameters
    ----------
    energy : array_like, shape (E,)
        Channel centres, eV (uniform, > 0 in the window).
    spectra : array_like, shape (..., E)
        Counts per channel.
    window : (float, float)
        Pre-edge fitting window, eV; uses the channels whose centres lie inside (>= 3).
    weighted : bool
        Poisson weights (default): :math:`\mathrm{Var}(\ln y_i) \approx 1/\mu_i`, so
        :math:`w_i = \mu_i`. A first pass uses the observed counts as weights, a second pass
        the first pass's model (removes the bias of weights correlated with the noise).
        ``False`` gives ordinary least squares in log space.

    Returns
    -------
    PowerLaw
        ``A``, ``r``, ``quality`` (reduced chi^2), ``mask`` (codes 0/1/2), ``cov`` of
        :math:`(\ln A, r)` (Poisson, sandwich estimator for unweighted fits).

    Notes
    -----
    With :math:`x_i = \ln E_i`, :math:`z_i = \ln y_i` and weights :math:`w_i`, the normal
    equations of :math:`z = \ln A + b x` (:math:`b = -r`) are the 2x2 system
    :math:`M (\ln A, b)^T = (\sum w z, \sum w x z)^T`,
    :math:`M = [[\sum w, \sum w x], [\sum w x, \sum w x^2]]`, solved in closed form for all
    spectra at once. Any channel with <= 0 counts makes the logarithm undefined: the spectrum
    is masked (code 1), not silently fitted on the remaining channels.

    Examples
    --------
    >>> e = np.linspace(40, 52, 49)
    >>> fit = powerlaw_fit(e, 3e7 * e**-3.2, (40, 52))
    >>> round(float(fit.r), 6), round(float(fit.A) / 3e7, 6), int(fit.mask)
    (3.2, 1.0, 0)
    """
    ew, y, lead = _window_block(energy, spectra, window, 3)
    x = np.log(ew)
    positive = np.all(y > 0, axis=-1)
    z = np.log(np.where(y > 0, y, 1.0))
    ones = np.ones_like(z)

    def solve(w: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        s0, s1, s2 = w.sum(-1), w @ x, w @ (x * x)
        t0, t1 = (w * z).sum(-1), (w * z) @ x
        det = s0 * s2 - s1 * s1
        with np.errstate(divide="ignore", invalid="ignore"):
            ln_a = (s2 * t0 - s1 * t1) / det
            b = (s0 * t1 - s1 * t0) / det
        return ln_a, b, det

    with np.errstate(over="ignore", invalid="ignore"):
        if weighted:
            ln_a, b, _ = solve(np.where(positive[:, None], y, 1.0))
            mu = np.exp(ln_a[:, None] + b[:, None] * x[None, :])
            w = np.where(np.isfinite(mu) & (mu > 0), mu, ones)
        else:
            w = ones
        ln_a, b, det = solve(w)
        mu = np.exp(ln_a[:, None] + b[:, None] * x[None, :])
        # sandwich covariance with Var(ln y_i) = 1 / mu_i (reduces to M^-1 when w = mu)
        sx = w @ x
        inv = np.stack([np.stack([w @ (x * x), -sx], -1), np.stack([-sx, w.sum(-1)], -1)], -2)
        inv = inv / det[:, None, None]
        v = w * w / mu
        meat = np.stack([np.stack([v.sum(-1), v @ x], -1), np.stack([v @ x, v @ (x * x)], -1)], -2)
        cov = inv @ meat @ inv
    cov[:, 0, 1] *= -1  # (ln A, b) -> (ln A, r)
    cov[:, 1, 0] *= -1
    quality = _quality(y, mu)
    mask = np.where(positive, MASK_OK, MASK_NONPOSITIVE)
    return _finalise(np.exp(ln_a), -b, quality, cov, mask, lead)


def _two_window_sums(ew: np.ndarray, y: np.ndarray):
    n1 = ew.size // 2
    lo, hi = slice(0, n1), slice(ew.size - n1, ew.size)
    return lo, hi, y[:, lo].sum(-1), y[:, hi].sum(-1)


def powerlaw_two_window(
    energy: Any, spectra: Any, window: Sequence[float], *, exact: bool = True
) -> PowerLaw:
    r"""Egerton's two-area estimate of :math:`A E^{-r}` for every spectrum.

    Parameters
    ----------
    energy, spectra : array_like
        As for :func:`powerlaw_fit`.
    window : (float, float)
        Pre-edge window, eV. Its ``n`` channels are split into a lower and an upper half of
        ``n // 2`` channels each (the middle channel of an odd window is left out) with
        counts :math:`I_1` (edges :math:`E_1, E_2`) and :math:`I_2` (:math:`E_3, E_4`).
    exact : bool
        ``True`` (default): solve :math:`\sum_{W_1} E_i^{-r} / \sum_{W_2} E_i^{-r} = I_1/I_2`
        for :math:`r` by Newton iteration (exact for a noiseless power law on the channel
        grid). ``False``: Egerton's closed form, which approximates each half's integral by its
        width times the power law at the geometric-mean energy,

        .. math:: r = \frac{2 \ln[(I_1/I_2)(E_4 - E_3)/(E_2 - E_1)]}{\ln[E_3 E_4/(E_1 E_2)]}

        (it follows from :math:`I_k \approx A (E_{2k} - E_{2k-1}) (E_{2k-1} E_{2k})^{-r/2}`).

    Returns
    -------
    PowerLaw
        With :math:`A = I_1 / \sum_{W_1} E_i^{-r}` (exact) or
        :math:`A = I_1 (E_1 E_2)^{r/2} / (E_2 - E_1)` (closed form, per channel width of the
        data); ``cov`` from :math:`\mathrm{Var}(I_k) = I_k` by the delta method.

    Notes
    -----
    The exact equation :math:`g(r) = \ln \Sigma_1(r) - \ln \Sigma_2(r) - \ln(I_1/I_2) = 0`,
    :math:`\Sigma_k(r) = \sum_{W_k} E_i^{-r}`, has
    :math:`g'(r) = \langle \ln E \rangle_2 - \langle \ln E \rangle_1 > 0` (averages weighted
    by :math:`E_i^{-r}`), so it has exactly one root; Newton's method starts from the
    closed form and converges in a few steps.

    Examples
    --------
    >>> e = np.linspace(40, 52, 49)
    >>> est = powerlaw_two_window(e, 3e7 * e**-3.2, (40, 52))
    >>> round(float(est.r), 6)
    3.2
    """
    ew, y, lead = _window_block(energy, spectra, window, 2)
    d = ew[1] - ew[0]
    lo, hi, i1, i2 = _two_window_sums(ew, y)
    e1, e2 = ew[lo][0] - d / 2, ew[lo][-1] + d / 2
    e3, e4 = ew[hi][0] - d / 2, ew[hi][-1] + d / 2
    positive = (i1 > 0) & (i2 > 0)
    j1, j2 = np.where(positive, i1, 1.0), np.where(positive, i2, 1.0)
    ratio = np.log(j1 / j2)
    r = 2 * (ratio + np.log((e4 - e3) / (e2 - e1))) / np.log(e3 * e4 / (e1 * e2))
    mask = np.where(positive, MASK_OK, MASK_NONPOSITIVE)
    l1, l2 = np.log(ew[lo] / ew[0]), np.log(ew[hi] / ew[0])  # energies scaled by E_0
    # delta-method Jacobian inputs
    if exact:
        converged = np.zeros(r.shape, bool)
        for _ in range(60):
            p1, p2 = np.exp(-np.outer(r, l1)), np.exp(-np.outer(r, l2))
            s1, s2 = p1.sum(-1), p2.sum(-1)
            g = np.log(s1) - np.log(s2) - ratio
            slope = (p2 @ l2) / s2 - (p1 @ l1) / s1
            step = g / slope
            r = r - np.clip(step, -5.0, 5.0)
            converged = np.abs(step) <= 1e-13 * (1 + np.abs(r))
            if np.all(converged | ~positive):
                break
        mask = np.where(positive & ~converged, MASK_FIT_FAILED, mask)
        p1, p2 = np.exp(-np.outer(r, l1)), np.exp(-np.outer(r, l2))
        s1, s2 = p1.sum(-1), p2.sum(-1)
        mean1 = (p1 @ l1) / s1 + np.log(ew[0])
        slope = (p2 @ l2) / s2 - (p1 @ l1) / s1
        ln_a = np.log(j1) - np.log(s1) + r * np.log(ew[0])
    else:
        mean1 = 0.5 * np.log(e1 * e2)
        slope = np.full_like(r, 0.5 * np.log(e3 * e4 / (e1 * e2)))
        ln_a = np.log(j1) + r * mean1 - np.log((e2 - e1) / d)
    # d r / d I1 = 1 / (I1 g'), d r / d I2 = -1 / (I2 g'); ln A = ln I1 + r <ln E>_1 - const
    dr1, dr2 = 1 / (j1 * slope), -1 / (j2 * slope)
    da1, da2 = 1 / j1 + mean1 * dr1, mean1 * dr2
    jac = np.stack([np.stack([da1, da2], -1), np.stack([dr1, dr2], -1)], -2)
    cov = jac @ (np.stack([j1, j2], -1)[:, :, None] * np.swapaxes(jac, -1, -2))
    with np.errstate(over="ignore", invalid="ignore"):
        A = np.exp(ln_a)
        quality = _quality(y, A[:, None] * ew[None, :] ** -r[:, None])
    return _finalise(A, r, quality, cov, mask, lead)


def powerlaw_model(energy: Any, A: Any, r: Any) -> np.ndarray:
    """Evaluate :math:`A E^{-r}` (counts per channel) for parameters of shape ``(...)``.

    Returns an array of shape ``(..., E)`` (float64); channels with ``E <= 0`` get 0.
    """
    e = np.asarray(energy, dtype=np.float64)
    A, r = np.asarray(A, dtype=np.float64)[..., None], np.asarray(r, dtype=np.float64)[..., None]
    positive = e > 0
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        out = A * np.where(positive, e, 1.0) ** -r
    return np.where(positive, out, 0.0)


def estimate_powerlaw(
    energy: Any,
    spectra: Any,
    window: Sequence[float],
    method: str = "fit",
    *,
    weighted: bool = True,
) -> PowerLaw:
    """:func:`powerlaw_fit` (``method="fit"``) or :func:`powerlaw_two_window` (``"two-window"``)."""
    if method == "fit":
        return powerlaw_fit(energy, spectra, window, weighted=weighted)
    if method == "two-window":
        return powerlaw_two_window(energy, spectra, window)
    raise ConfigError(f"unknown background method {method!r}; use one of {METHODS}")


def subtract_background(
    energy: Any, spectra: Any, law: PowerLaw, *, start: float | None = None
) -> np.ndarray:
    """``spectra - A E^-r`` in the spectra's float dtype; channels below ``start`` (eV) are set
    to 0 (the extrapolated background is meaningless there) and masked spectra become NaN."""
    x = np.asarray(spectra)
    dtype = float_dtype(x.dtype)
    e = np.asarray(energy, dtype=np.float64)
    out = (x - powerlaw_model(e, law.A, law.r)).astype(dtype, copy=False)
    if start is not None:
        out[..., e < start] = 0
    out[np.asarray(law.mask) != MASK_OK] = np.nan
    return out


# --------------------------------------------------------------------------- references

#: How a reference spectrum's background is handled (:func:`reference_background_decision`).
REFERENCE_BACKGROUND = ("auto", "fit", "none")
#: A pre-edge whose mean is below this fraction of the largest signal above the window is
#: taken as flat around zero (background-subtracted already).
FLAT_PRE_EDGE_FRACTION = 0.02


class BackgroundDecision(NamedTuple):
    """What :func:`reference_background_decision` decided for one spectrum.

    Attributes
    ----------
    decision : str
        ``"fit"`` (fit and subtract a power law in the window) or ``"none"`` (use as given).
    why : str
        One sentence saying why, with the numbers it rests on.
    pre_edge_fraction : float
        Mean of the pre-edge window over the largest absolute value above it (1); NaN when the
        spectrum does not cover the window.
    r : float
        Power-law exponent fitted in the window (NaN when not fitted or the fit failed).
    """

    decision: str
    why: str
    pre_edge_fraction: float
    r: float


def reference_background_decision(
    energy: Any,
    values: Any,
    window: Sequence[float] | None,
    mode: str = "auto",
    method: str = "fit",
) -> BackgroundDecision:
    r"""Decide whether a (reference) spectrum needs its power-law background subtracted.

    Spectra from a database or a reference sample are often background-subtracted already
    and recorded on their own energy range; fitting :math:`A E^{-r}` to such a pre-edge fits
    noise around zero (non-positive channels, a non-decaying or undefined law). With
    ``mode="auto"`` the spectrum is taken as already background-free (``"none"``) when, in
    this order,

    1. no ``window`` is given, or the spectrum does not record the window (its channel
       centres cover less than the window, or fewer than 3 channels lie inside);
    2. the pre-edge is flat around zero: its mean is below :data:`FLAT_PRE_EDGE_FRACTION` of
       the largest absolute value above the window (raw low-loss spectra have pre-edges of the
       order of the edge or larger);
    3. the pre-edge holds channels <= 0 (a raw spectrum's background is positive);
    4. the power-law fit in the window fails or does not decay (:math:`r \le 0`);

    otherwise (a positive pre-edge that decays as a power law) it gets the fit (``"fit"``).
    ``mode="fit"`` and ``mode="none"`` return that decision without looking (the caller
    checks that a fit is possible).

    Parameters
    ----------
    energy : array_like, shape (E,)
        Channel centres, eV (uniform, increasing).
    values : array_like, shape (E,)
        The spectrum, counts per channel.
    window : (float, float) or None
        Pre-edge background window, eV.
    mode : {"auto", "fit", "none"}
        How to decide.
    method : {"fit", "two-window"}
        Background estimator used for rule 4.

    Returns
    -------
    BackgroundDecision

    Examples
    --------
    >>> e = np.arange(35.0, 95.0, 0.25)
    >>> edge = 1e4 * (e > 55)
    >>> reference_background_decision(e, 3e9 * e**-3.5 + edge, (40, 52)).decision
    'fit'
    >>> reference_background_decision(e, edge, (40, 52)).decision
    'none'
    """
    if mode not in REFERENCE_BACKGROUND:
        raise ConfigError(f"reference background mode must be one of {REFERENCE_BACKGROUND}, got {mode!r}")
    nan = float("nan")
    if mode == "none":
        return BackgroundDecision("none", "used as given (reference background 'none')", nan, nan)
    if mode == "fit":
        return BackgroundDecision("fit", "power law fitted in its pre-edge (reference background 'fit')", nan, nan)
    if window is None:
        return BackgroundDecision("none", "no background window given: used as given", nan, nan)
    e, d = energy_vector(energy)
    y = np.asarray(values, dtype=np.float64)
    lo, hi = (float(v) for v in window)
    tol = 1e-6 * d
    inside = (e >= lo - tol) & (e <= hi + tol)
    if e[0] - d / 2 > lo + tol or e[-1] + d / 2 < hi - tol or inside.sum() < 3:
        return BackgroundDecision(
            "none", f"it covers {e[0]:g}-{e[-1]:g} eV, not the background window {lo:g}-{hi:g} eV: "
            "taken as background-subtracted already", nan, nan)
    pre = y[inside]
    above = y[e > hi + tol]
    scale = float(np.max(np.abs(above))) if above.size else float(np.max(np.abs(y)))
    fraction = float(pre.mean() / scale) if scale > 0 else 0.0
    if fraction < FLAT_PRE_EDGE_FRACTION:
        return BackgroundDecision(
            "none", f"its pre-edge {lo:g}-{hi:g} eV is flat around zero (mean {100 * fraction:.2g} % of "
            "the largest signal above it): taken as background-subtracted already", fraction, nan)
    nonpositive = int((pre <= 0).sum())
    if nonpositive:
        return BackgroundDecision(
            "none", f"its pre-edge {lo:g}-{hi:g} eV holds {nonpositive} channel(s) <= 0 (a raw "
            "spectrum's background is positive): taken as background-subtracted already", fraction, nan)
    law = estimate_powerlaw(e, y, (lo, hi), method)
    r = float(law.r)
    if int(law.mask) != MASK_OK or not np.isfinite(r):
        return BackgroundDecision(
            "none", f"no power law fits its pre-edge {lo:g}-{hi:g} eV "
            f"({MASK_CODES[int(law.mask)].replace('_', ' ')}): taken as background-subtracted already",
            fraction, nan)
    if r <= 0:
        return BackgroundDecision(
            "none", f"its pre-edge {lo:g}-{hi:g} eV does not decay (power-law exponent r = {r:.3g} <= 0): "
            "taken as background-subtracted already", fraction, r)
    return BackgroundDecision(
        "fit", f"its pre-edge {lo:g}-{hi:g} eV is positive and decays as a power law (r = {r:.3g}, "
        f"mean {100 * fraction:.3g} % of the largest signal above it): background fitted and subtracted",
        fraction, r)


# --------------------------------------------------------------------------- wrapper


def mask_flags() -> dict[str, Any]:
    """CF-style ``flag_values`` / ``flag_meanings`` attributes describing the mask codes."""
    return {"flag_values": list(MASK_CODES), "flag_meanings": " ".join(MASK_CODES.values())}


@validate_params({"method": [Options(METHODS)], "weighted": [bool], "zero_fill": [bool]})
def subtract_powerlaw(
    da: xr.DataArray,
    window: Sequence[float],
    method: str = "fit",
    *,
    weighted: bool = True,
    zero_fill: bool = True,
) -> xr.Dataset:
    """Fit and subtract a power-law background from every spectrum of a spectrum image.

    Lazy: stays lazy on dask-backed input (computed block by block when the result is).

    Parameters
    ----------
    da : xarray.DataArray
        Spectrum image in counts, dims ``(..., energy)`` (see :mod:`ionscope.eels.wrapping`).
    window : (float, float)
        Pre-edge background window, eV (e.g. ``(40, 52)`` before Li-K).
    method : {"fit", "two-window"}
        Weighted log-log least squares (:func:`powerlaw_fit`) or the exact two-area method
        (:func:`powerlaw_two_window`).
    weighted : bool
        Poisson weights for ``method="fit"``.
    zero_fill : bool
        Set the channels below the window's lower edge to 0 (default); otherwise subtract the
        extrapolated background there too (channels at E <= 0 eV are left unchanged).

    Returns
    -------
    xarray.Dataset
        ``signal`` (background-subtracted spectra, same dims and units as ``da``; NaN for
        masked spectra), ``A`` (same units as ``da``: the background per channel at 1 eV),
        ``r``, ``A_error``, ``r_error``
        (standard errors from Poisson statistics), ``quality`` (reduced chi^2) and ``mask``
        (int8 codes: 0 ok, 1 non-positive counts in the window, 2 fit failed; see
        ``mask.attrs["flag_meanings"]``) over the leading dims.

    References
    ----------
    R.F. Egerton, *Electron Energy-Loss Spectroscopy in the Electron Microscope*, 3rd ed.,
    Springer (2011), section 4.4.

    Examples
    --------
    >>> from ionscope.data import signal
    >>> e = 40 + 0.25 * np.arange(80)
    >>> da = signal(np.stack([2e7 * e**-3.0, 0 * e]), ("x", "energy"), name="s", units="counts",
    ...             coords={"energy": e})
    >>> out = subtract_powerlaw(da, (40, 52))
    >>> out["r"].values.round(6).tolist(), out["mask"].values.tolist()
    ([3.0, nan], [0, 1])
    """
    history = provenance(da)
    src = da
    da, energy = spectrum_image(da, "spectrum image")
    win = tuple(float(v) for v in window)
    window_channels(energy, win, what="background window")
    start = win[0] if zero_fill else None
    dtype = float_dtype(da.dtype)

    def kernel(x: np.ndarray):
        law = estimate_powerlaw(energy, x, win, method, weighted=weighted)
        sig = subtract_background(energy, x, law, start=start)
        with np.errstate(invalid="ignore"):
            a_err = law.A * np.sqrt(law.cov[..., 0, 0])
            r_err = np.sqrt(law.cov[..., 1, 1])
        return sig, law.A, law.r, a_err, r_err, law.quality, law.mask

    outs = lift(kernel, [da.drop_vars("energy")], [["energy"]],
                [["energy"], [], [], [], [], [], []],
                [dtype, np.float64, np.float64, np.float64, np.float64, np.float64, np.int8])
    unit = units_of(da)
    sig, A, r, a_err, r_err, quality, mask = outs
    ds = xr.Dataset({
        "signal": finish(sig, da, name="signal", units=unit,
                         long_name="background-subtracted spectra"),
        "A": finish(A, da, name="A", units=unit,
                    long_name="power-law amplitude A of B(E) = A (E/eV)^-r per channel"),
        "r": finish(r, da, name="r", units="1", long_name="power-law exponent r"),
        "A_error": finish(a_err, da, name="A_error", units=unit, long_name="standard error of A"),
        "r_error": finish(r_err, da, name="r_error", units="1", long_name="standard error of r"),
        "quality": finish(quality, da, name="quality", units="1",
                          long_name="reduced chi-squared of the background in its window"),
        "mask": finish(mask, da, name="mask", units="1", long_name="reason code (0 = ok)",
                       attrs=mask_flags()),
    })
    params = {"window_eV": list(win), "method": method, "weighted": bool(weighted),
              "zero_fill": bool(zero_fill)}
    return with_provenance(ds, "ionscope.eels.subtract_powerlaw", params, [src], history=history)


__all__ = [
    "MASK_OK",
    "MASK_NONPOSITIVE",
    "MASK_FIT_FAILED",
    "MASK_RATIO_UNDEFINED",
    "MASK_CODES",
    "METHODS",
    "REFERENCE_BACKGROUND",
    "FLAT_PRE_EDGE_FRACTION",
    "BackgroundDecision",
    "reference_background_decision",
    "mask_flags",
    "PowerLaw",
    "powerlaw_fit",
    "powerlaw_two_window",
    "powerlaw_model",
    "estimate_powerlaw",
    "subtract_background",
    "subtract_powerlaw",
]
