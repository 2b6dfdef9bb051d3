r"""Mass calibration refined on known peaks.

A time-of-flight analyser measures flight times ``t = t0 + k sqrt(m)``; a calibration that is
slightly off in ``t0`` or ``k`` maps the true mass to a measured one with
``sqrt(m_true) = a + b sqrt(m_measured)``. Given the measured positions of a few known ions, the
two coefficients follow from a weighted linear fit in ``sqrt(m)``, and the whole mass axis (or
every centroid peak) is corrected with :func:`apply_calibration`.

- :func:`locate_peaks`: each known ion's measured peak position: the counts-weighted centroid of
  the spectrum points within ``tolerance_u`` of its nominal mass (a dense sum spectrum, or the
  pooled ``(mass, counts)`` centroid peaks of every pixel), recentred on the centroid with a
  halving window so that a flat background does not pull it towards the nominal mass.
- :func:`refine_calibration`: the weighted fit (weights: the peaks' counts, the inverse variance
  of a centroid up to a constant) -> :class:`Calibration` with residuals in mu (milli-u) and ppm.
- :func:`apply_calibration`: ``m_true = (a + b sqrt(m))**2``.

References
----------
W. C. Wiley, I. H. McLaren, Rev. Sci. Instrum. 26, 1150 (1955) (time-of-flight mass
spectrometry). J. C. Vickerman, D. Briggs (eds.), *TOF-SIMS: Materials Analysis by Mass
Spectrometry*, 2nd ed. (IM Publications, 2013), ch. 4 (mass calibration).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ionscope.errors import InputError
from ionscope.validation import Interval, validate_params

__all__ = ["Calibration", "locate_peaks", "refine_calibration", "apply_calibration"]


@dataclass(frozen=True)
class Calibration:
    """A refined mass calibration ``sqrt(m_true) = a + b sqrt(m_measured)``.

    Attributes
    ----------
    a : float
        Offset (u^0.5).
    b : float
        Scale (1).
    reference, measured : numpy.ndarray (peak,)
        The peaks used: their true and measured masses (u).
    weights : numpy.ndarray (peak,)
        Their fit weights (counts).
    residual_mu, residual_ppm : numpy.ndarray (peak,)
        Calibrated minus true mass, in milli-u and in parts per million.
    """

    a: float
    b: float
    reference: np.ndarray
    measured: np.ndarray
    weights: np.ndarray
    residual_mu: np.ndarray
    residual_ppm: np.ndarray

    def apply(self, mass):
        """The calibrated masses (u) of ``mass`` (:func:`apply_calibration`)."""
        return apply_calibration(mass, self.a, self.b)

    @property
    def rms_ppm(self) -> float:
        """Weighted RMS residual (ppm)."""
        w = self.weights / self.weights.sum()
        return float(np.sqrt(np.sum(w * self.residual_ppm**2)))


@validate_params({"tolerance_u": [Interval(float, 0, None, closed="neither", unit="u")],
                  "min_counts": [Interval(float, 0, None, unit="counts")]})
def locate_peaks(mass, counts, reference, *, tolerance_u: float = 0.3, min_counts: float = 1.0
                 ) -> tuple[np.ndarray, np.ndarray]:
    """Where each known ion's peak lies in a spectrum.

    Parameters
    ----------
    mass, counts : array_like
        A dense sum spectrum (the mass axis and its counts, both ``(mass,)``) or pooled centroid
        peaks (the ``peak_mass`` and ``counts`` of every pixel, any equal shapes; NaN masses
        are ignored).
    reference : array_like (ion,)
        The ions' nominal masses (u).
    tolerance_u : float
        Search half-width around each nominal mass (u): the most the calibration is off.
    min_counts : float
        A peak with fewer counts inside its final window is not found (NaN).

    Returns
    -------
    measured : numpy.ndarray (ion,)
        Counts-weighted centroid of each peak (u), NaN where not found. The centroid over
        ``+/- tolerance_u`` is recentred over ``+/- tolerance_u / 2, / 4, / 8`` around the
        previous centroid, each time after subtracting the window's lowest count (the local
        background of a dense spectrum).
    counts : numpy.ndarray (ion,)
        Counts in the final window (the fit weights of :func:`refine_calibration`).

    Examples
    --------
    >>> mass = np.linspace(5.5, 8.0, 2501)
    >>> spectrum = 2.0 + 1000 * np.exp(-0.5 * ((mass - 7.035) / 0.006) ** 2)
    >>> found, n = locate_peaks(mass, spectrum, [7.015455])
    >>> round(float(found[0]), 4)
    7.035
    """
    m = np.asarray(mass, dtype=np.float64)
    c = np.asarray(counts, dtype=np.float64)
    try:
        m, c = np.broadcast_arrays(m, c)
    except ValueError:
        raise InputError(f"mass {m.shape} and counts {c.shape} must have the same shape") from None
    ok = np.isfinite(m) & np.isfinite(c) & (c > 0)
    m, c = m[ok], c[ok]
    order = np.argsort(m, kind="stable")
    m, c = m[order], c[order]
    ref = np.atleast_1d(np.asarray(reference, dtype=np.float64))
    if ref.ndim != 1 or not np.all(np.isfinite(ref)):
        raise InputError("reference masses must be a 1-D array of finite masses (u)")
    found = np.full(ref.shape, np.nan)
    total = np.zeros(ref.shape)
    for k, centre in enumerate(ref):  # a loop over the few reference ions
        half = float(tolerance_u)
        centroid = float(centre)
        n_in = 0.0
        for _ in range(4):
            i0, i1 = np.searchsorted(m, [centroid - half, centroid + half], side="left")
            if i1 - i0 == 0:
                n_in = 0.0
                break
            cw = c[i0:i1]
            w = cw - cw.min() if i1 - i0 >= 3 else cw
            if w.sum() <= 0:
                w = cw
            centroid = float(np.sum(w * m[i0:i1]) / np.sum(w))
            n_in = float(cw.sum())
            half /= 2
        if n_in >= min_counts and n_in > 0 and abs(centroid - centre) <= tolerance_u:
            found[k], total[k] = centroid, n_in
    return found, total


def refine_calibration(measured, reference, weights=None) -> Calibration:
    """Fit ``sqrt(m_true) = a + b sqrt(m_measured)`` to known peaks.

    Parameters
    ----------
    measured : array_like (peak,)
        Measured peak positions (u), e.g. from :func:`locate_peaks` (NaN entries are dropped).
    reference : array_like (peak,)
        The true masses of the same ions (u).
    weights : array_like (peak,), optional
        Fit weights, e.g. the peaks' counts (a centroid's variance scales as 1 / counts); equal
        by default.

    Returns
    -------
    Calibration
        ``a``, ``b`` and the residuals in mu and ppm.

    Raises
    ------
    InputError
        Fewer than two usable peaks (found, positive mass, positive weight), or all at one mass.

    Examples
    --------
    >>> true = np.array([7.015455, 26.98099, 58.932646, 105.902932])
    >>> cal = refine_calibration(((np.sqrt(true) - 0.002) / 1.0005) ** 2, true, [100, 50, 80, 20])
    >>> round(cal.a, 6), round(cal.b, 6), bool(np.all(np.abs(cal.residual_ppm) < 1e-6))
    (0.002, 1.0005, True)
    """
    meas = np.atleast_1d(np.asarray(measured, dtype=np.float64))
    ref = np.atleast_1d(np.asarray(reference, dtype=np.float64))
    w = np.ones_like(meas) if weights is None else np.atleast_1d(np.asarray(weights, dtype=np.float64))
    if not (meas.ndim == 1 and meas.shape == ref.shape == w.shape):
        raise InputError(f"measured {meas.shape}, reference {ref.shape} and weights {w.shape} must be "
                         "1-D arrays of one entry per peak")
    ok = np.isfinite(meas) & np.isfinite(ref) & np.isfinite(w) & (meas > 0) & (ref > 0) & (w > 0)
    if ok.sum() < 2 or np.ptp(meas[ok]) == 0:
        raise InputError(f"a mass calibration needs at least two peaks at different masses; {int(ok.sum())} of "
                         f"{meas.size} were found - widen the search tolerance or name more known ions")
    meas, ref, w = meas[ok], ref[ok], w[ok]
    x, y = np.sqrt(meas), np.sqrt(ref)
    design = np.stack([np.ones_like(x), x], axis=1)
    sw = np.sqrt(w / w.max())
    (a, b), *_ = np.linalg.lstsq(design * sw[:, None], y * sw, rcond=None)
    calibrated = (a + b * x) ** 2
    diff = calibrated - ref
    return Calibration(float(a), float(b), ref, meas, w, 1e3 * diff, 1e6 * diff / ref)


def apply_calibration(mass, a: float, b: float):
    """Calibrated masses ``(a + b sqrt(m))**2`` (u).

    Parameters
    ----------
    mass : array_like or xarray.DataArray
        Measured masses (u), any shape; NaN (padding) stays NaN.
    a, b : float
        Coefficients of :func:`refine_calibration`.

    Returns
    -------
    Same type and shape as ``mass``.

    Raises
    ------
    InputError
        A negative mass, or coefficients that are not finite or ``b <= 0``.

    Examples
    --------
    >>> apply_calibration(np.array([4.0, np.nan]), 0.1, 1.0)
    array([4.41,  nan])
    """
    if not (np.isfinite(a) and np.isfinite(b) and b > 0):
        raise InputError(f"calibration coefficients must be finite with b > 0, got a={a!r}, b={b!r}")
    values = mass.values if hasattr(mass, "values") and hasattr(mass, "dims") else np.asarray(mass)
    if np.any(np.asarray(values) < 0):
        raise InputError("masses must not be negative (u)")
    out = (a + b * np.sqrt(mass)) ** 2
    if hasattr(out, "attrs") and hasattr(mass, "attrs"):
        out.attrs.update(mass.attrs)
    return out
