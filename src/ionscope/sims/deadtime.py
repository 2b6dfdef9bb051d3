r"""Detector dead time: the Poisson correction, near-saturation warnings, the 7Li / 6Li check.

A TOF-SIMS detector counts at most one ion of a given mass per primary pulse (the dead time is
longer than a peak is wide). If ``n`` pulses hit a pixel and the true number of ions per pulse is
Poisson with mean ``lambda``, a pulse records an ion with probability ``1 - exp(-lambda)``, so the
observed count ``k`` is binomial and the true count ``N = n lambda`` is estimated by

.. math:: N = -n \ln(1 - k / n), \qquad \sigma_N = \sqrt{k n / (n - k)}

(the error from the binomial variance ``k (n - k) / n`` of ``k`` times ``(dN/dk)^2 = (n / (n -
k))^2``). ``n`` is the number of primary pulses per pixel: scans x shots per pixel, not the number
of scans alone. At ``k = n`` every pulse recorded an ion and the true count is unknown.

7Li+ saturates first: natural Li has 7Li / 6Li = 12.2 (:data:`~ionscope.sims.ions.LI7_LI6`), so
``12.2 x 6Li`` is a second, unsaturated estimate of 7Li (:func:`isotope_check`).

References
----------
T. Stephan, J. Zehnpfenning, A. Benninghoven, J. Vac. Sci. Technol. A 12, 405 (1994) (Poisson
dead-time correction in TOF-SIMS). J. L. S. Lee et al., Surf. Interface Anal. 43, 1256 (2011)
(saturation in TOF-SIMS imaging).
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass

import numpy as np

from ionscope.errors import ConfigError, InputError
from ionscope.sims.ions import LI7_LI6
from ionscope.validation import Interval, validate_params

__all__ = ["SATURATION_THRESHOLD", "check_pulses", "deadtime_correct", "near_saturation", "IsotopeCheck",
           "isotope_check"]

#: Observed counts per pulse above which a pixel is reported as near saturation: at k / n = 0.5
#: the correction is already 39 % and its error 1.4 x the Poisson error of the true count.
SATURATION_THRESHOLD = 0.5


def check_pulses(pulses) -> float:
    """The number of primary pulses per pixel as a float, or :class:`~ionscope.errors.ConfigError`
    unless it is a positive whole number (an integer, or a float with no fraction).

    Examples
    --------
    >>> check_pulses(40 * 64)
    2560.0
    """
    ok = isinstance(pulses, numbers.Real) and not isinstance(pulses, bool) and np.isfinite(pulses) \
        and pulses > 0 and float(pulses) == round(float(pulses))
    if not ok:
        raise ConfigError(f"pulses must be a positive whole number (scans x shots per pixel), got {pulses!r}")
    return float(pulses)


def _observed(observed) -> np.ndarray:
    k = np.asarray(observed, dtype=np.float64)
    if np.any(k < 0):
        raise InputError(f"observed counts must not be negative ({int(np.sum(k < 0))} pixels are)")
    return k


def deadtime_correct(observed, pulses) -> tuple[np.ndarray, np.ndarray]:
    """Poisson dead-time correction of observed counts (module docstring).

    Parameters
    ----------
    observed : array_like
        Observed counts ``k`` per pixel (any shape; NaN stays NaN).
    pulses : int
        Primary pulses per pixel ``n`` = scans x shots per pixel.

    Returns
    -------
    corrected, error : numpy.ndarray
        ``N = -n ln(1 - k / n)`` and its standard error ``sqrt(k n / (n - k))`` (counts).

    Raises
    ------
    ConfigError
        ``pulses`` not a positive whole number.
    InputError
        Negative counts, or counts at or above ``pulses`` (saturated: the true count is
        unknown); the message gives how many pixels and the largest count.

    Examples
    --------
    >>> n, err = deadtime_correct([0, 50, 500], 1000)
    >>> n.round(1).tolist(), err.round(2).tolist()
    ([0.0, 51.3, 693.1], [0.0, 7.25, 31.62])
    """
    n = check_pulses(pulses)
    k = _observed(observed)
    over = k >= n
    if np.any(over):
        raise InputError(f"{int(over.sum())} pixels have observed counts at or above the {n:g} pulses per pixel "
                         f"(largest {float(np.nanmax(k)):g}): they are saturated or the pulse count is wrong - "
                         "pulses are scans x shots per pixel")
    corrected = -n * np.log1p(-k / n)
    error = np.sqrt(k * n / (n - k))
    return corrected, error


@validate_params({"threshold": [Interval(float, 0, 1, closed="neither")]})
def near_saturation(observed, pulses, threshold: float = SATURATION_THRESHOLD) -> tuple[np.ndarray, int]:
    """Pixels whose observed counts per pulse exceed ``threshold``.

    Parameters
    ----------
    observed : array_like
        Observed counts per pixel.
    pulses : int
        Primary pulses per pixel.
    threshold : float
        Counts per pulse (0 < threshold < 1); :data:`SATURATION_THRESHOLD` by default.

    Returns
    -------
    mask : numpy.ndarray of bool
        Pixels near saturation (the corrected count there rests on the Poisson model).
    count : int
        How many.

    Examples
    --------
    >>> near_saturation([10, 600, 900], 1000)
    (array([False,  True,  True]), 2)
    """
    n = check_pulses(pulses)
    k = _observed(observed)
    mask = k > threshold * n
    return mask, int(mask.sum())


@dataclass(frozen=True)
class IsotopeCheck:
    """7Li against ``ratio x 6Li``.

    Attributes
    ----------
    ratio_map : numpy.ndarray
        ``li7 / (ratio x li6)`` per pixel, NaN where 6Li has fewer than ``min_counts``.
    summary, summary_err : float
        ``sum li7 / (ratio x sum li6)`` over the chosen pixels, with its counting error.
    pixels : int
        Pixels summed.
    """

    ratio_map: np.ndarray
    summary: float
    summary_err: float
    pixels: int


@validate_params({"ratio": [Interval(float, 0, None, closed="neither")],
                  "min_counts": [Interval(float, 0, None, closed="neither", unit="counts")]})
def isotope_check(li7, li6, ratio: float = LI7_LI6, *, min_counts: float = 10.0, mask=None,
                  li7_err=None) -> IsotopeCheck:
    """How well 7Li matches ``ratio x 6Li`` (1 when neither saturates).

    Parameters
    ----------
    li7, li6 : array_like
        7Li+ and 6Li+ counts per pixel (7Li dead-time corrected or not: an observed 7Li that
        saturates gives a ratio below 1).
    ratio : float
        The natural 7Li / 6Li ratio (:data:`~ionscope.sims.ions.LI7_LI6`).
    min_counts : float
        Least 6Li counts for a pixel of the map.
    mask : array_like of bool, optional
        Pixels of the summary (e.g. the 7Li pixels near saturation); all finite pixels by default.
        Summing over a mask chosen from the 6Li counts themselves would bias the summary low.
    li7_err : array_like, optional
        Standard error of ``li7`` per pixel (e.g. of the dead-time correction); Poisson
        (``sqrt(li7)``) by default. 6Li is taken as Poisson.

    Returns
    -------
    IsotopeCheck
        The map and the summary ``S7 / (ratio S6)`` with the error
        ``summary x sqrt(var(S7) / S7^2 + 1 / S6)`` (NaN when no 6Li count is summed).

    Examples
    --------
    >>> check = isotope_check([1220, 2440], [100, 200])
    >>> check.ratio_map.tolist(), round(check.summary, 3), round(check.summary_err, 3)
    ([1.0, 1.0], 1.0, 0.06)
    """
    a = np.asarray(li7, dtype=np.float64)
    b = np.asarray(li6, dtype=np.float64)
    if a.shape != b.shape:
        raise InputError(f"the 7Li {a.shape} and 6Li {b.shape} maps differ in shape")
    if np.any(a < 0) or np.any(b < 0):
        raise InputError("Li counts must not be negative")
    var7 = a if li7_err is None else np.broadcast_to(np.asarray(li7_err, dtype=np.float64), a.shape) ** 2
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio_map = np.where(b >= min_counts, a / (ratio * b), np.nan)
    use = np.isfinite(a) & np.isfinite(b) & np.isfinite(var7)
    if mask is not None:
        m = np.asarray(mask, dtype=bool)
        if m.shape != a.shape:
            raise InputError(f"the mask {m.shape} and the Li maps {a.shape} differ in shape")
        use &= m
    s7, s6, v7 = float(a[use].sum()), float(b[use].sum()), float(var7[use].sum())
    if s6 > 0:
        summary = s7 / (ratio * s6)
        err = summary * np.sqrt((v7 / s7**2 if s7 > 0 else 0.0) + 1.0 / s6)
    else:
        summary = err = float("nan")
    return IsotopeCheck(ratio_map, float(summary), float(err), int(use.sum()))
