r"""Correlation of per-particle quantities across instruments, with bootstrap confidence intervals.

The cross-section study pairs a KPFM potential change with a TOF-SIMS Li change, particle by
particle (:doc:`/guide/correlate`): the Pearson coefficient of the pairs and how sure it is. With
the ~10-30 particles a field holds, an interval matters more than the coefficient: it comes from
the percentile bootstrap over particles (Efron & Tibshirani 1993), which makes no normality
assumption, and - as a check when the pairs are few - from Fisher's z transform.

References
----------
B. Efron, R.J. Tibshirani, *An Introduction to the Bootstrap* (Chapman & Hall, 1993), ch. 13;
R.A. Fisher, Biometrika 10, 507 (1915).
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from ionscope.errors import InputError
from ionscope.validation import SEED, Interval, validate_params

__all__ = ["Correlation", "pearson_kernel", "bootstrap_pearson"]


@dataclasses.dataclass(frozen=True)
class Correlation:
    """A Pearson correlation with its confidence intervals.

    Attributes
    ----------
    r : float
        Pearson coefficient of the finite pairs.
    n : int
        Pairs used.
    ci_low, ci_high : float
        Percentile-bootstrap interval at ``level`` (NaN with fewer than 4 pairs).
    fisher_low, fisher_high : float
        Fisher-z interval at ``level`` (NaN with fewer than 4 pairs).
    level : float
        Confidence level.
    resamples : int
        Bootstrap resamples (those with a defined coefficient).
    """

    r: float
    n: int
    ci_low: float
    ci_high: float
    fisher_low: float
    fisher_high: float
    level: float
    resamples: int

    def as_dict(self) -> dict:
        """Plain JSON (NaN as None)."""
        return {k: (None if isinstance(v, float) and not math.isfinite(v) else v)
                for k, v in dataclasses.asdict(self).items()}


def pearson_kernel(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Pearson coefficients of paired samples along the last axis (vectorised: ``x``, ``y`` of
    shape ``(..., n)``); NaN where either sample is constant.

    Examples
    --------
    >>> round(float(pearson_kernel(np.array([1.0, 2, 3, 4]), np.array([2.0, 4, 5, 9]))), 4)
    0.9648
    """
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    dx = x - x.mean(axis=-1, keepdims=True)
    dy = y - y.mean(axis=-1, keepdims=True)
    den = np.sqrt((dx * dx).sum(axis=-1) * (dy * dy).sum(axis=-1))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, (dx * dy).sum(axis=-1) / np.where(den > 0, den, 1.0), np.nan)


@validate_params({"resamples": [Interval(int, 100, 1_000_000)], "level": [Interval(float, 0, 1, closed="neither")],
                  "seed": [SEED]})
def bootstrap_pearson(x, y, *, resamples: int = 2000, level: float = 0.95, seed: int = 0) -> Correlation:
    """The Pearson coefficient of ``(x, y)`` pairs with a percentile-bootstrap interval (pairs
    resampled with replacement) and a Fisher-z interval.

    Parameters
    ----------
    x, y : array_like (n,)
        Paired values (e.g. a particle's potential change in mV and its relative Li change);
        pairs with a NaN in either are left out.
    resamples : int
        Bootstrap resamples.
    level : float
        Confidence level of both intervals.
    seed : int
        Seed of the resampling.

    Returns
    -------
    Correlation

    Raises
    ------
    InputError
        ``x`` and ``y`` of different lengths or not 1-D, fewer than 3 finite pairs, or a constant
        sample (no correlation is defined).

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> x = rng.normal(size=40); y = -0.8 * x + 0.5 * rng.normal(size=40)
    >>> c = bootstrap_pearson(x, y)
    >>> c.r < -0.7 and c.ci_low < c.r < c.ci_high < 0
    True
    """
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    if x.ndim != 1 or x.shape != y.shape:
        raise InputError(f"paired samples must be 1-D and of one length, got {x.shape} and {y.shape}")
    ok = np.isfinite(x) & np.isfinite(y)
    x, y = x[ok], y[ok]
    n = int(x.size)
    if n < 3:
        raise InputError(f"{n} finite pair(s): a correlation needs at least 3 (pairs with NaN are left out)")
    r = float(pearson_kernel(x, y))
    if not math.isfinite(r):
        raise InputError("one of the samples is constant: no correlation is defined")
    alpha = 0.5 * (1.0 - level)
    nan = float("nan")
    if n < 4:
        return Correlation(r, n, nan, nan, nan, nan, level, 0)
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, n, size=(resamples, n))
    boot = pearson_kernel(x[idx], y[idx])
    boot = boot[np.isfinite(boot)]
    lo, hi = (float(v) for v in np.quantile(boot, [alpha, 1.0 - alpha])) if boot.size else (nan, nan)
    from scipy.stats import norm

    z = math.atanh(max(min(r, 1 - 1e-15), -1 + 1e-15))
    half = float(norm.ppf(1.0 - alpha)) / math.sqrt(n - 3)
    return Correlation(r, n, lo, hi, math.tanh(z - half), math.tanh(z + half), level, int(boot.size))
