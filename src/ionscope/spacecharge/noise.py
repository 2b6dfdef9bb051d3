r"""Noise models of a profile fit: independent points, or noise correlated between neighbours.

A band-averaged profile of a reconstructed (band-limited) map has noise that
is correlated between neighbouring points (``profile_sigma.attrs["noise_correlation"]`` of
:func:`ionscope.profiles.band_profile`: :math:`\rho_k` for lags :math:`k`); treating the points
as independent understates the errors (on the holography twin at its default dose by a factor
~2: the psi0 scatter over 16 seeds is 0.023 V, the independent-point error 0.011 V). With
``correlation`` given, the noise covariance :math:`C_{ij} = \sigma_i\sigma_j\rho_{|i-j|}`
(:func:`ionscope.profiles.profile_covariance`) enters in one of three ways (``noise_model`` of
:func:`ionscope.spacecharge.fit.fit_spacecharge`):

- ``"sandwich"`` (the default): weighted least squares - the estimates as for independent
  points - with the covariance :math:`A^{-1} J^T W C W J A^{-1}`, :math:`A = J^T W J`,
  :math:`W = \mathrm{diag}(\sigma^{-2})` (White 1980; Newey & West 1987), as
  :func:`ionscope.profiles.fit_step` does. It propagates the correlation into each parameter
  as that parameter's own sensitivity sees it. Its chi-squared is that of the weighted fit
  and falls below the number of degrees of freedom for strongly correlated noise.
- ``"ess"`` (effective sample size): weighted least squares with every standard error
  inflated by :math:`\sqrt\tau`, :math:`\tau = 1 + 2\sum_k (1 - k/n)\rho_k` the integrated
  autocorrelation time (:func:`integrated_time`): :math:`n/\tau` independent points. Cruder
  (one factor for every parameter) and more conservative.
- ``"gls"`` (generalised least squares; Aitken 1935): the residuals are whitened,
  :math:`L^{-1}(m - y)` with :math:`C = LL^T`, so the fit minimises :math:`r^T C^{-1} r` with
  covariance :math:`(J^T C^{-1} J)^{-1}` - efficient when :math:`C` is right. The noise of a
  holography profile is band-limited (sampled finer than the aperture resolves), so its
  correlation matrix is nearly singular and whitening it amplifies any small model error (on
  the holography twin GLS ran to psi0 of -900 V); it is refused when the correlation
  matrix's condition number may exceed
  :data:`GLS_MAX_CONDITION` (bounded by the extremes of
  :math:`1 + 2\sum_k\rho_k\cos k\omega`; Grenander & Szego 1958).

``"diagonal"`` ignores the correlation. On the holography twin (``ionscope holo
reconstruct``/``potential``/``profile`` of 16 seeds at the default dose, 160 x 160 px, MIP step
and theta fixed, aperture low-pass with the measured amplitude ratio) psi0 comes out
1.297 V (true 1.3 V) with a seed-to-seed scatter of 0.023 V; the median sandwich error is
0.048 V, the ESS error 0.057 V and the independent-point error 0.011 V (rms error/s.e. 0.44,
0.36 and 2.0). The first two are conservative because the band's standard errors and
correlation (estimated from the spread across the band) also hold deterministic structure
that varies across the band (the noise-free twin's profile has standard errors of 0.036 V).
With theta free too, 15 of 16 fits converge (one is refused as not identifiable): scatter
0.040 V, median error 0.063 V. With the MIP step free as well (theta fixed): scatter 0.099 V,
median error 0.102 V (rms error/s.e. 1.0) - fixing the step at known mean inner potentials
makes psi0 four times more precise.

References
----------
H. White, Econometrica 48 (1980) 817; W.K. Newey, K.D. West, Econometrica 55 (1987) 703
(sandwich covariance). A.C. Aitken, Proc. R. Soc. Edinb. 55 (1935) 42 (generalised least
squares). U. Grenander, G. Szego, *Toeplitz Forms and Their Applications* (1958) (eigenvalue
bounds of Toeplitz matrices).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
from scipy.linalg import LinAlgError, cholesky, solve_triangular

from ionscope.errors import ConfigError, InputError
from ionscope.profiles import profile_covariance

#: Ways to use a profile's noise correlation (module docstring of :mod:`ionscope.spacecharge.fit`).
NOISE_MODELS = ("auto", "sandwich", "ess", "gls", "diagonal")
#: Largest condition number of a noise correlation matrix that GLS whitens.
GLS_MAX_CONDITION = 1e4


def _noise_estimate(y: np.ndarray) -> float:
    """Robust noise sigma from second differences (MAD), for data without standard errors."""
    if y.size < 5:
        return float(np.std(y)) or 1.0
    d2 = y[2:] - 2 * y[1:-1] + y[:-2]
    mad = 1.4826 * np.median(np.abs(d2 - np.median(d2)))
    sigma = mad / np.sqrt(6.0)
    if not np.isfinite(sigma) or sigma <= 0:
        sigma = 1e-6 * max(float(np.ptp(y)), 1e-300)
    return float(sigma)


@dataclass
class _Noise:
    """How one profile's residuals are weighted: ``w`` (1 / sigma) or a whitening matrix
    ``white`` (:math:`L^{-1}`, GLS), and the noise correlation matrix for a sandwich covariance."""

    w: np.ndarray
    white: np.ndarray | None = None
    corr: np.ndarray | None = None

    def weigh(self, r: np.ndarray) -> np.ndarray:
        return self.white @ r if self.white is not None else r * self.w


def _lag_ok(x: np.ndarray, what: str) -> None:
    step = np.diff(x)
    if x.size > 1 and not (np.all(step > 0) and np.ptp(step) <= 1e-3 * float(np.median(step))):
        raise InputError(
            f"{what}: a noise correlation by lag needs evenly spaced, increasing positions; "
            "give the profile as sampled (or drop the correlation: noise_model='diagonal')"
        )


def _noise(x: np.ndarray, sigma: np.ndarray, correlation, mode: str, what: str) -> _Noise:
    """Weights of one profile under ``mode`` (``gls``, ``sandwich`` or ``diagonal``)."""
    w = 1.0 / sigma
    if correlation is None or mode == "diagonal":
        return _Noise(w)
    rho = np.asarray(correlation, dtype=np.float64).ravel()
    if rho.size == 0 or not np.all(np.isfinite(rho)) or rho[0] != 1 or np.any(np.abs(rho) > 1):
        raise InputError(
            f"{what}: the noise correlation must start with 1 and hold values in [-1, 1] "
            f"(rho[k] for lags k = 0, 1, ...), got {rho[:4].tolist()}..."
        )
    if mode == "ess":  # one factor for all points: gaps in the profile do not matter
        return _Noise(w / np.sqrt(integrated_time(rho, sigma.size)))
    _lag_ok(x, what)
    corr = _correlation_matrix(sigma.size, tuple(rho.tolist()))
    if mode == "sandwich":
        return _Noise(w, corr=corr)
    # the eigenvalues of a Toeplitz correlation matrix lie between the extremes of its symbol
    # S(w) = 1 + 2 sum_k rho_k cos(k w) (Grenander & Szego 1958): a cheap bound on the condition
    k = np.arange(1, min(rho.size, sigma.size))
    symbol = 1.0 + 2.0 * np.cos(np.outer(np.linspace(0, np.pi, 2049), k)) @ rho[1 : k.size + 1]
    if symbol.min() * GLS_MAX_CONDITION < symbol.max():
        bound = symbol.max() / symbol.min() if symbol.min() > 0 else np.inf
        raise ConfigError(
            f"{what}: the noise correlation matrix is nearly singular (condition number up to "
            f"{bound:.2g} > {GLS_MAX_CONDITION:g}; band-limited noise, e.g. of a holography "
            "reconstruction): whitening it (GLS) would amplify small model errors; use "
            "noise_model='sandwich' (--noise sandwich) or 'ess'"
        )
    try:
        chol = cholesky(corr * np.outer(sigma, sigma), lower=True)
    except LinAlgError:  # pragma: no cover - profile_covariance returns a positive-definite matrix
        raise InputError(f"{what}: the noise covariance is not positive definite") from None
    return _Noise(w, white=solve_triangular(chol, np.eye(sigma.size), lower=True))


@functools.lru_cache(maxsize=8)
def _correlation_matrix(n: int, rho: tuple[float, ...]) -> np.ndarray:
    """Positive-definite correlation matrix of ``n`` points with lag correlations ``rho``
    (cached: refits of one profile share it; read-only)."""
    corr = profile_covariance(np.ones(n), rho)
    corr.setflags(write=False)
    return corr


def integrated_time(correlation, n: int) -> float:
    """Integrated autocorrelation time ``1 + 2 sum_k (1 - k/n) rho_k`` of ``n`` correlated
    points (at least 1): ``n / tau`` points are worth as much as independent ones.

    Examples
    --------
    >>> integrated_time([1.0, 0.5, 0.25], 1000)
    2.498
    """
    rho = np.asarray(correlation, dtype=np.float64).ravel()[1:n]
    k = np.arange(1, rho.size + 1)
    return float(max(1.0, 1.0 + 2.0 * np.sum((1.0 - k / n) * rho)))


__all__ = ["NOISE_MODELS", "GLS_MAX_CONDITION", "integrated_time"]
