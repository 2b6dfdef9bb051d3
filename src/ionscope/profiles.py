r"""Interface profiles: band-averaged line profiles and step-model fits with uncertainties.

Technique-neutral (holography potential maps, KPFM, any calibrated ``(y, x)`` image):

- :func:`band_profile` samples an image along a line from ``start`` to ``end``, averages
  ``width`` parallel lines (1 px apart) and estimates each point's standard error from the
  spread across the band, corrected for the noise correlation between the lines (reconstructed
  holography phase is band-limited, so neighbouring pixels are not independent). The noise
  correlation along the line is kept too (:func:`profile_covariance`).
- :func:`fit_step` fits a step model (``erf``, ``tanh``, ``exp``, ``erfc``, ``depletion``,
  optionally with a sharp step at the interface, and blurred by the map's resolution: a
  Gaussian, or the low-pass of a Fourier-holography aperture, :class:`LowPass`) by weighted
  least squares (a grid scan of position and width for the starts) and returns the potential drop,
  the width ``w90``, the interface position, their standard errors and the covariance, and the
  field :math:`E = -dV/dx` and charge density :math:`\rho = -\varepsilon_0\varepsilon_r
  d^2V/dx^2` of the fitted (deblurred) model. With correlated noise the parameter covariance
  takes the correlation into account (sandwich estimator), so the errors stay honest.
- :func:`detect_interface` finds a straight interface in an image (the line of steepest
  change), and :func:`normal_segment` gives the ``start``/``end`` of a profile normal to it.

Step models
-----------
With :math:`u = x - x_0` along the profile (nm) every model is

.. math:: V(x) = V_\mathrm{end} + \Delta\,F(u), \qquad F: 1 \to 0,

so :math:`\Delta = V(\text{start side}) - V(\text{end side})` is the drop (positive when the
potential falls from ``start`` to ``end``):

- ``"erf"``: :math:`F = \Phi(-u/w)` (:math:`\Phi` the standard normal CDF), :math:`w` the
  Gaussian sigma of the transition.
- ``"tanh"``: :math:`F = (1 - \tanh(u/w))/2`.
- ``"exp"``: a one-sided space-charge-like decay, continuous at the interface :math:`x_0`:
  :math:`F = 1` on the start side and :math:`F = e^{-u/w}` (decay length :math:`w`) for
  :math:`u > 0` (``side="end"``: the layer lies on the end side); ``side="start"`` mirrors it,
  :math:`F = 1 - e^{u/w}` for :math:`u < 0` and 0 beyond.
- ``"erfc"``: one-sided like ``exp`` with a half-Gaussian decay :math:`F = 2\Phi(-u/w)`
  (:math:`\mathrm{erfc}(u / \sqrt{2} w)`) for :math:`u > 0`: steepest at the interface, then
  a faster-than-exponential tail - close to the lattice-gas space-charge profiles of
  METHODS.md section 6 (on noise-free lattice-gas layers with theta 0.5-0.99, depletion and
  accumulation, drop within 5 % and w90 within 0.4 nm of the model's; ``exp`` overestimates
  the drop by 8-12 % there). Next to a sharp step (``step=True``: a mean-inner-potential
  jump) the steep start of a depleted layer trades against the step and the blur: on the
  holography twin's layer (theta 0.99 beside a 5 V step, 0.25 nm roughness) the drop comes
  out 6 % low with a fitted blur, 0.6 % low without one
  (``benchmarks/holography_precision.py``).
- ``"depletion"``: the Mott-Schottky (full-depletion) parabola :math:`F = (1 - u/w)^2` for
  :math:`0 < u < w`, 0 beyond: uniform space charge over the depletion width :math:`w`.

``blur`` convolves :math:`F` with a Gaussian of that sigma (nm): the resolution of the map
(KPFM: the tip; phase-shifting holography: the pixel and the drift correction). It is exact for
``erf`` (:math:`\sqrt{w^2 + b^2}`) and ``exp`` (an exponentially modified Gaussian; Grushka
1972) and ``erfc`` (Owen's T function; Owen 1956), and uses Gauss-Legendre quadrature between
the kinks of ``depletion`` and 40-point Gauss-Hermite quadrature for ``tanh`` (all within 1e-5
of a numerical convolution).
``blur="fit"`` fits it (one-sided models only: a blurred symmetric step is again one). A
:class:`LowPass` models a Fourier (sideband) reconstruction instead: the aperture filters the
electron wave, which is what the phase of a large step needs (module :class:`LowPass`).

``step=True`` adds a sharp step ``jump`` at :math:`x_0` (blurred like the rest), e.g. the
mean-inner-potential difference of an unbiased electrode | electrolyte map, so that ``drop``
is the space-charge part alone.

``w90`` is the shortest distance that holds 90 % of the drop: :math:`2 \cdot 1.6449\,w` (erf,
the 5-95 % distance), :math:`2\,\mathrm{artanh}(0.9)\,w = 2.944\,w` (tanh),
:math:`\ln(10)\,w` (exp: from the interface to where 90 % of the drop has happened - the
definition of the space-charge literature, e.g. METHODS.md section 6), :math:`1.6449\,w`
(erfc), :math:`(1 - \sqrt{0.1})\,w` (depletion). ``position`` is
:math:`x_0`: the midpoint (erf, tanh) or the interface where the decay starts (exp). Field and
charge are those of the deblurred model; the exp model's kink carries an interface sheet charge
:math:`\varepsilon_0\varepsilon_r E(x_0^+)`, reported as ``areal_charge``.

References
----------
E. Grushka, Anal. Chem. 44 (1972) 1733 (exponentially modified Gaussian). D.B. Owen, Ann.
Math. Stat. 27 (1956) 1075 (Owen's T function, bivariate normal probabilities). H. Flyvbjerg,
H.G. Petersen, J. Chem. Phys. 91 (1989) 461; C.J. Geyer, Stat. Sci. 7 (1992) 473 (integrated
autocorrelation time of correlated samples). P.A. Midgley, Micron 32 (2001) 167 (holography
resolution set by the aperture). H. White, Econometrica 48 (1980) 817; W.K. Newey, K.D. West,
Econometrica 55 (1987) 703 (sandwich covariance under correlated noise).
"""

from __future__ import annotations

import dataclasses
import json
import warnings
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import xarray as xr
from scipy.optimize import OptimizeWarning, curve_fit
from scipy.special import erfcx, ndtr, ndtri, owens_t

from ionscope.constants import EPSILON_0
from ionscope.data import axis_calibration, provenance, units_of, with_provenance
from ionscope.errors import ConvergenceError, DimensionError, InputError

#: Length units understood on image and profile axes, and their size in nm.
LENGTH_TO_NM = {"nm": 1.0, "å": 0.1, "a": 0.1, "angstrom": 0.1, "pm": 1e-3, "um": 1e3,
                "µm": 1e3, "μm": 1e3, "micron": 1e3, "m": 1e9}
SIDES = ("auto", "start", "end")
_Z95 = float(ndtri(0.95))
_GH_NODES, _GH_WEIGHTS = np.polynomial.hermite.hermgauss(40)


# --------------------------------------------------------------------------- step models


def _emg(u: np.ndarray, lam: float, sigma: float) -> np.ndarray:
    """``H(u) exp(-u/lam)`` convolved with a unit Gaussian of sigma ``sigma`` (stable form)."""
    z = u / sigma - sigma / lam
    with np.errstate(over="ignore", under="ignore", invalid="ignore"):
        direct = np.exp(np.minimum(sigma**2 / (2 * lam**2) - u / lam, 700.0)) * ndtr(z)
        scaled = 0.5 * np.exp(-(u**2) / (2 * sigma**2)) * erfcx(-np.minimum(z, 0.0) / np.sqrt(2))
    return np.where(z >= 0, direct, scaled)


def _gauss_blur(shape: Callable[[np.ndarray, float], np.ndarray], u: np.ndarray, w: float,
                blur: float) -> np.ndarray:
    """``shape(u, w)`` convolved with a Gaussian of sigma ``blur`` (Gauss-Hermite quadrature)."""
    shifted = u[..., None] - np.sqrt(2.0) * blur * _GH_NODES
    return (shape(shifted, w) @ _GH_WEIGHTS) / np.sqrt(np.pi)


_GL_NODES, _GL_WEIGHTS = np.polynomial.legendre.leggauss(48)


def _piecewise_blur(shape: Callable[[np.ndarray, float], np.ndarray], u: np.ndarray, w: float,
                    blur: float, kinks: Sequence[float]) -> np.ndarray:
    """``shape(u, w)`` convolved with a Gaussian of sigma ``blur`` for a shape that is smooth
    between ``kinks``: Gauss-Legendre quadrature on each smooth segment of ``[u - 8 blur, u + 8 blur]``, so the
    kinks sit on segment ends and the rule converges exponentially."""
    u = np.asarray(u, dtype=np.float64)
    lo, hi = u - 8.0 * blur, u + 8.0 * blur
    edges = [lo] + [np.clip(np.full_like(u, k), lo, hi) for k in sorted(kinks)] + [hi]
    out = np.zeros_like(u)
    for a, c in zip(edges[:-1], edges[1:]):
        half = 0.5 * (c - a)
        t = (0.5 * (a + c))[..., None] + half[..., None] * _GL_NODES
        g = np.exp(-0.5 * ((u[..., None] - t) / blur) ** 2) / (blur * np.sqrt(2 * np.pi))
        out += half * ((shape(t, w) * g) @ _GL_WEIGHTS)
    # the Gaussian mass beyond 8 sigma (6e-16) is dropped
    return out


@dataclasses.dataclass(frozen=True)
class StepModel:
    """A monotonic step shape ``F(u)`` from 1 (start side) to 0 (end side), ``u = x - x0``.

    Attributes
    ----------
    name : str
        Model name used by :func:`fit_step` (``model=``).
    shape : callable
        ``shape(u, w) -> F`` for the layer on the end side (nm, nm).
    slope, curvature : callable
        ``dF/du`` and ``d2F/du2`` (1/nm, 1/nm**2) of the deblurred shape.
    w90_factor : float
        ``w90 = w90_factor * w`` (shortest distance holding 90 % of the drop).
    peak_slope : callable
        ``max |dF/du|`` as a function of ``w`` (1/nm).
    blurred : callable, optional
        ``blurred(u, w, blur)``: exact Gaussian-blurred shape; otherwise quadrature
        (Gauss-Legendre between ``kinks``, Gauss-Hermite for smooth shapes).
    one_sided : bool
        The shape is not symmetric (``side`` matters).
    kinks : callable, optional
        ``kinks(w)``: positions ``u`` where the shape or its slope jumps (e.g. ``[0]``).
    """

    name: str
    shape: Callable[[np.ndarray, float], np.ndarray]
    slope: Callable[[np.ndarray, float], np.ndarray]
    curvature: Callable[[np.ndarray, float], np.ndarray]
    w90_factor: float
    peak_slope: Callable[[float], float]
    blurred: Callable[[np.ndarray, float, float], np.ndarray] | None = None
    one_sided: bool = False
    kinks: Callable[[float], Sequence[float]] | None = None

    def evaluate(self, u: np.ndarray, w: float, blur: float = 0.0, side: str = "end") -> np.ndarray:
        """``F`` at ``u`` (nm), optionally blurred; ``side="start"`` mirrors a one-sided shape."""
        u = np.asarray(u, dtype=np.float64)
        if self.one_sided and side == "start":
            return 1.0 - self.evaluate(-u, w, blur, "end")
        if blur > 0:
            if self.blurred is not None:
                return self.blurred(u, w, blur)
            if self.kinks is not None:
                return _piecewise_blur(self.shape, u, w, blur, self.kinks(w))
            return _gauss_blur(self.shape, u, w, blur)
        return self.shape(u, w)

    def derivative(self, u: np.ndarray, w: float, order: int, side: str = "end") -> np.ndarray:
        """``d^order F / du^order`` of the deblurred shape (order 1 or 2)."""
        u = np.asarray(u, dtype=np.float64)
        if self.one_sided and side == "start":  # F_start(u) = 1 - F(-u)
            sign = 1.0 if order == 1 else -1.0
            return sign * self.derivative(-u, w, order, "end")
        return self.slope(u, w) if order == 1 else self.curvature(u, w)


def _phi(z):
    return np.exp(-0.5 * z * z) / np.sqrt(2 * np.pi)


def _sech2(z):
    return 1.0 / np.cosh(np.clip(z, -350, 350)) ** 2


def _exp_shape(u, w):
    with np.errstate(over="ignore"):
        return np.where(u > 0, np.exp(-np.clip(u, 0, None) / w), 1.0)


def _exp_slope(u, w):
    return np.where(u > 0, -_exp_shape(u, w) / w, 0.0)


def _exp_curvature(u, w):
    return np.where(u > 0, _exp_shape(u, w) / w**2, 0.0)


def _half_gauss_shape(u, w):
    return np.where(u > 0, 2.0 * ndtr(-np.clip(u, 0, None) / w), 1.0)


def _half_gauss_slope(u, w):
    return np.where(u > 0, -2.0 * _phi(u / w) / w, 0.0)


def _half_gauss_curvature(u, w):
    return np.where(u > 0, 2.0 * (u / w**3) * _phi(u / w), 0.0)


def _half_gauss_blurred(u, w, b):
    r"""The erfc shape convolved with a Gaussian of sigma ``b``: with :math:`s = \sqrt{w^2 +
    b^2}`, :math:`\Phi(-u/s) + 2\,T(-u/s, w/b)` (Owen's T function; a bivariate-normal
    probability, Owen 1956)."""
    s = np.hypot(w, b)
    return ndtr(-u / s) + 2.0 * owens_t(-u / s, w / b)


def _depletion_shape(u, w):
    return np.where(u > 0, np.clip(1.0 - u / w, 0.0, None) ** 2, 1.0)


def _depletion_slope(u, w):
    return np.where((u > 0) & (u < w), -2.0 * (1.0 - u / w) / w, 0.0)


def _depletion_curvature(u, w):
    return np.where((u > 0) & (u < w), 2.0 / w**2, 0.0)


MODELS: dict[str, StepModel] = {
    "erf": StepModel(
        "erf",
        shape=lambda u, w: ndtr(-u / w),
        slope=lambda u, w: -_phi(u / w) / w,
        curvature=lambda u, w: (u / w**3) * _phi(u / w),
        w90_factor=2 * _Z95,
        peak_slope=lambda w: 1.0 / (w * np.sqrt(2 * np.pi)),
        blurred=lambda u, w, b: ndtr(-u / np.sqrt(w * w + b * b)),
    ),
    "tanh": StepModel(
        "tanh",
        shape=lambda u, w: 0.5 * (1.0 - np.tanh(u / w)),
        slope=lambda u, w: -0.5 * _sech2(u / w) / w,
        curvature=lambda u, w: _sech2(u / w) * np.tanh(u / w) / w**2,
        w90_factor=2 * float(np.arctanh(0.9)),
        peak_slope=lambda w: 0.5 / w,
    ),
    "exp": StepModel(
        "exp",
        shape=_exp_shape,
        slope=_exp_slope,
        curvature=_exp_curvature,
        w90_factor=float(np.log(10.0)),
        peak_slope=lambda w: 1.0 / w,
        blurred=lambda u, w, b: ndtr(-u / b) + _emg(u, w, b),
        one_sided=True,
    ),
    "erfc": StepModel(
        "erfc",
        shape=_half_gauss_shape,
        slope=_half_gauss_slope,
        curvature=_half_gauss_curvature,
        w90_factor=_Z95,
        peak_slope=lambda w: 2.0 / (w * np.sqrt(2 * np.pi)),
        blurred=_half_gauss_blurred,
        one_sided=True,
        kinks=lambda w: (0.0,),
    ),
    "depletion": StepModel(
        "depletion",
        shape=_depletion_shape,
        slope=_depletion_slope,
        curvature=_depletion_curvature,
        w90_factor=1.0 - float(np.sqrt(0.1)),
        peak_slope=lambda w: 2.0 / w,
        one_sided=True,
        kinks=lambda w: (0.0, w),
    ),
}


def register_step_model(model: StepModel) -> StepModel:
    """Add a step model to :data:`MODELS` (e.g. a space-charge shape); returns it."""
    if not isinstance(model, StepModel):
        raise InputError(f"register_step_model needs a StepModel, got {type(model).__name__}")
    MODELS[model.name] = model
    return model


# --------------------------------------------------------------------------- band profile


def _length_factor(unit: str, what: str) -> float:
    factor = LENGTH_TO_NM.get(unit.strip().lower(), LENGTH_TO_NM.get(unit.strip()))
    if factor is None:
        raise InputError(
            f"the {what} axis is in {unit!r}, not a length; calibrate it in nm (set the "
            "coordinate's units attribute, or give pixel_size_nm)"
        )
    return factor


def _integrated_time(rho_hat: np.ndarray, n: int | None, n_pairs: int | None = None
                     ) -> tuple[np.ndarray, float]:
    """Correlation function and integrated autocorrelation time of correlated samples.

    ``rho_hat[k]`` is the empirical lag-k autocorrelation of samples from which their mean over
    ``n`` samples was subtracted (``n=None``: no mean subtracted). Centring lowers it by about
    ``tau / n``; this is undone by fixed-point iteration. The sum is truncated at the first lag
    whose correlation is not significantly positive (Geyer's initial positive sequence, with a
    threshold of two standard errors ``2 / sqrt(n_pairs)`` of an empirical correlation).

    Returns
    -------
    rho : ndarray
        ``rho[0] = 1`` and the positive lags kept.
    tau : float
        ``1 + 2 sum_k (1 - k/n) rho[k]`` (the variance of an ``n``-sample mean is
        ``sigma**2 tau / n``); ``1 + 2 sum rho`` when ``n`` is None.
    """
    tau = 1.0
    rho = np.ones(1)
    threshold = 0.0 if not n_pairs else 2.0 / np.sqrt(n_pairs)
    for _ in range(50):
        shift = 0.0 if n is None else min(tau / n, 0.95)
        corrected = rho_hat[1:] * (1.0 - shift) + shift
        stop = np.flatnonzero(~(corrected > threshold))
        kept = corrected[: stop[0]] if stop.size else corrected
        k = np.arange(1, kept.size + 1)
        weight = 1.0 if n is None else np.clip(1.0 - k / n, 0.0, None)
        new = float(1.0 + 2.0 * np.sum(weight * kept))
        rho = np.concatenate([[1.0], kept])
        if abs(new - tau) < 1e-6 * tau:
            tau = new
            break
        tau = new
    return rho, tau


def _lag_correlation(dev: np.ndarray, axis: int, max_lag: int) -> np.ndarray:
    """Empirical autocorrelation of ``dev`` along ``axis`` for lags 0..max_lag (pooled)."""
    dev = np.moveaxis(dev, axis, 0)
    c0 = float(np.mean(dev * dev))
    if c0 <= 0:
        return np.ones(1)
    out = [1.0]
    for k in range(1, min(max_lag, dev.shape[0] - 1) + 1):
        out.append(float(np.mean(dev[k:] * dev[:-k])) / c0)
    return np.asarray(out)


def _moving_mean(y: np.ndarray, k: int) -> np.ndarray:
    """Moving average of odd width ``k`` that ignores NaN and shrinks at the ends."""
    k = max(1, min(int(k), y.size - (1 - y.size % 2)) | 1)
    finite = np.isfinite(y)
    num = np.convolve(np.where(finite, y, 0.0), np.ones(k), mode="same")
    den = np.convolve(finite.astype(float), np.ones(k), mode="same")
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, num / np.maximum(den, 1), np.nan)


def band_samples(image: np.ndarray, start: Sequence[float], end: Sequence[float], width: int,
                 *, spacing: tuple[float, float] = (1.0, 1.0), step: float | None = None,
                 order: int = 1) -> tuple[np.ndarray, float]:
    """Sample ``width`` parallel lines of a 2-D array (kernel of :func:`band_profile`).

    Parameters
    ----------
    image : ndarray (ny, nx)
        The map.
    start, end : (float, float)
        Line end points as fractional pixel indices ``(row, column)``.
    width : int
        Number of lines, ``step`` apart, centred on the line.
    spacing : (float, float)
        Pixel size (dy, dx) in nm (geometry is done in nm, so non-square pixels are fine).
    step : float, optional
        Sample spacing along and across the line, nm; default the smaller pixel size.
    order : int
        Spline order of :func:`scipy.ndimage.map_coordinates` (1 = bilinear).

    Returns
    -------
    samples : ndarray (width, n)
        Values along each line (NaN where the image is NaN).
    step : float
        The sample spacing used, nm.
    """
    from scipy.ndimage import map_coordinates

    dy, dx = (abs(float(v)) for v in spacing)
    step = float(step) if step is not None else min(dy, dx)
    p0 = np.array([start[0] * dy, start[1] * dx], dtype=np.float64)
    p1 = np.array([end[0] * dy, end[1] * dx], dtype=np.float64)
    length = float(np.hypot(*(p1 - p0)))
    if length < 2 * step:
        raise InputError(
            f"the profile line from {tuple(start)} to {tuple(end)} px is {length:.3g} nm long, "
            f"shorter than two samples ({step:.3g} nm); choose points further apart"
        )
    along = (p1 - p0) / length
    normal = np.array([-along[1], along[0]])  # 90 degrees to the left of the line
    s = np.arange(int(np.floor(length / step + 1e-9)) + 1) * step
    o = (np.arange(width) - (width - 1) / 2.0) * step
    pts = p0[:, None, None] + along[:, None, None] * s[None, None, :] + normal[:, None, None] * o[None, :, None]
    rows, cols = pts[0] / dy, pts[1] / dx
    ny, nx = image.shape
    outside = (rows < -0.5) | (rows > ny - 0.5) | (cols < -0.5) | (cols > nx - 0.5)
    if np.any(outside):
        raise InputError(
            f"the profile band ({width} lines from {tuple(np.round(start, 2))} to "
            f"{tuple(np.round(end, 2))} px) leaves the {ny} x {nx} px image; move the end points "
            "inwards or narrow the band"
        )
    data = np.asarray(image, dtype=np.float64)
    nan = ~np.isfinite(data)
    filled = np.where(nan, 0.0, data)
    out = map_coordinates(filled, [rows.ravel(), cols.ravel()], order=order, mode="nearest")
    if nan.any():
        touched = map_coordinates(nan.astype(float), [rows.ravel(), cols.ravel()], order=1, mode="nearest")
        out[touched > 1e-9] = np.nan
    return out.reshape(rows.shape), step


def band_statistics(samples: np.ndarray) -> dict[str, Any]:
    """Mean, standard error and noise correlation of band samples (kernel of
    :func:`band_profile`).

    The noise correlation across the band (between lines) and along it is estimated from the
    deviations of each line from the band mean, pooled over the complete columns. The standard
    error of the band mean at a point is ``sqrt(c0 tau / (n - tau))`` with ``c0`` the mean
    squared deviation (smoothed along the line over the correlation length), ``n`` the number
    of lines and ``tau`` the integrated autocorrelation time across the band (``tau = 1`` for
    independent lines gives the usual ``s / sqrt(n)``).

    Returns
    -------
    dict
        ``mean``, ``sigma`` (standard error per point), ``count`` (finite lines per point),
        ``rho_along`` (noise correlation along the line, lag 0 first), ``tau_across``,
        ``independent_lines`` (``n / tau_across``), ``correlation_length_along`` (samples).
    """
    n_lines, n = samples.shape
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        mean = np.nanmean(samples, axis=0)
    count = np.sum(np.isfinite(samples), axis=0)
    dev = samples - mean
    complete = count == n_lines
    if n_lines < 2:
        return {"mean": mean, "sigma": np.full(n, np.nan), "count": count, "rho_along": np.ones(1),
                "tau_across": float("nan"), "independent_lines": float("nan"),
                "correlation_length_along": float("nan")}
    d = dev[:, complete]
    if d.shape[1] >= 2:
        rho_hat_across = _lag_correlation(d, 0, n_lines - 1)
        _, tau = _integrated_time(rho_hat_across, n_lines, d.size)
        # runs of complete columns, for the along-line correlation
        rho_hat_along = _lag_correlation(np.where(complete, dev, 0.0), 1, min(n - 1, 200)) if complete.all() \
            else _lag_correlation(d, 1, min(d.shape[1] - 1, 200))
        rho_along, tau_along = _integrated_time(rho_hat_along, None, d.size)
    else:
        tau, rho_along, tau_along = 1.0, np.ones(1), 1.0
    tau = float(min(tau, n_lines - 1.0)) if n_lines > 1 else 1.0
    with np.errstate(invalid="ignore", divide="ignore"):
        c0 = np.nansum(dev * dev, axis=0) / np.maximum(count, 1)
        smooth = _moving_mean(np.where(count >= 2, c0, np.nan), 2 * rho_along.size + 3)
        n_i = count.astype(np.float64)
        tau_i = np.minimum(tau, n_i - 1.0)
        var = smooth * tau_i / (n_i - tau_i)
    sigma = np.where(count >= 2, np.sqrt(var), np.nan)
    return {"mean": mean, "sigma": sigma, "count": count, "rho_along": rho_along,
            "tau_across": tau, "independent_lines": n_lines / tau,
            "correlation_length_along": 0.5 * (tau_along - 1.0) if np.isfinite(tau_along) else float("nan")}


def _image_geometry(image: xr.DataArray, pixel_size_nm: float | Sequence[float] | None):
    """(offset_y, offset_x) nm, (dy, dx) nm of a (y, x) image."""
    if pixel_size_nm is not None:
        size = np.broadcast_to(np.asarray(pixel_size_nm, dtype=np.float64), (2,))
        if not np.all(np.isfinite(size) & (size > 0)):
            raise InputError(f"pixel_size_nm must be positive, got {pixel_size_nm!r}")
        return (0.0, 0.0), (float(size[0]), float(size[1]))
    offsets, steps = [], []
    for dim in ("y", "x"):
        if image.sizes[dim] < 2:
            raise InputError(f"the image needs at least 2 pixels along {dim!r}")
        off, step, unit = axis_calibration(image, dim)
        factor = _length_factor(unit, dim)
        offsets.append(off * factor)
        steps.append(step * factor)
    return tuple(offsets), tuple(steps)


def _as_image(image: xr.DataArray | xr.Dataset, what: str) -> xr.DataArray:
    if isinstance(image, xr.Dataset):
        name = image.attrs.get("primary") or next(iter(image.data_vars), None)
        if name is None:
            raise InputError(f"{what}: the Dataset holds no variable")
        image = image[name]
    if not isinstance(image, xr.DataArray):
        raise InputError(f"{what} must be an xarray DataArray with dims (y, x), got {type(image).__name__}")
    if set(image.dims) != {"y", "x"}:
        raise DimensionError(
            f"{what} needs a 2-D map with dims (y, x), got {tuple(image.dims)}; select one frame first"
        )
    return image.transpose("y", "x")


def band_profile(
    image: xr.DataArray,
    start: Sequence[float],
    end: Sequence[float],
    width: int = 1,
    *,
    unit: str = "px",
    step: float | None = None,
    order: int = 1,
    pixel_size_nm: float | Sequence[float] | None = None,
) -> xr.Dataset:
    """Band-averaged profile of a map along a line, with standard errors from the band spread.

    Parameters
    ----------
    image : xarray.DataArray
        Map with dims ``(y, x)`` and length-calibrated coordinates (nm, Å, µm), e.g. a potential
        map in V. NaN pixels are left out of the band mean.
    start, end : (float, float)
        End points ``(y, x)`` of the centre line, in pixel indices (``unit="px"``, row and
        column, fractional allowed) or in the coordinates' length unit (``unit="nm"``).
    width : int
        Number of parallel lines averaged, 1 sample step apart (the band is ``width`` px wide).
        At least 2 for standard errors; wide enough to span several noise correlation lengths
        for reliable ones.
    unit : {"px", "nm"}
        Unit of ``start`` and ``end``.
    step : float, optional
        Sample spacing along the line, nm; default the smaller pixel size.
    order : int
        Interpolation order (1 bilinear, 3 cubic spline).
    pixel_size_nm : float or (float, float), optional
        Pixel size (dy, dx) for an uncalibrated image (then coordinates are ignored).

    Returns
    -------
    xarray.Dataset
        Over ``position`` (nm from ``start``): ``profile`` (band mean, units of the image) and
        ``profile_sigma`` (its standard error per point) whose attrs hold ``noise_correlation``
        (the correlation of the profile's noise between points k samples apart, k = 0, 1, ...)
        for :func:`profile_covariance`; ``count`` (lines averaged). Attrs: ``start_px``,
        ``end_px`` ((y, x) pixel indices), ``width_px``, ``step_nm``, ``tau_across``,
        ``independent_lines`` and provenance.

    Raises
    ------
    DimensionError
        Not a ``(y, x)`` map.
    InputError
        Uncalibrated axes without ``pixel_size_nm``, a band that leaves the image, a line
        shorter than two samples, a non-positive width.

    Examples
    --------
    >>> import numpy as np
    >>> from ionscope.data import signal
    >>> img = signal(np.tile(np.linspace(0, 1, 50), (20, 1)), ("y", "x"), name="potential",
    ...              units="V", coords={"y": 0.5, "x": 0.5})
    >>> prof = band_profile(img, (10, 5), (10, 45), width=5)
    >>> float(prof["position"][-1]), round(float(prof["profile"][-1] - prof["profile"][0]), 3)
    (20.0, 0.816)
    """
    image = _as_image(image, "band_profile")
    if isinstance(width, bool) or not isinstance(width, (int, np.integer)) or width < 1:
        raise InputError(f"width must be a positive number of pixels (lines), got {width!r}")
    if unit not in ("px", "nm"):
        raise InputError(f"unit must be 'px' or 'nm', got {unit!r}")
    if order not in (0, 1, 2, 3, 4, 5):
        raise InputError(f"order must be a spline order 0-5, got {order!r}")
    pts = []
    for name, p in (("start", start), ("end", end)):
        p = np.asarray(p, dtype=np.float64)
        if p.shape != (2,) or not np.all(np.isfinite(p)):
            raise InputError(f"{name} must be two finite numbers (y, x), got {p.tolist()!r}")
        pts.append(p)
    (oy, ox), (dy, dx) = _image_geometry(image, pixel_size_nm)
    if unit == "nm":
        pts = [np.array([(p[0] - oy) / dy, (p[1] - ox) / dx]) for p in pts]
    values = np.asarray(image.values, dtype=np.float64)
    samples, step = band_samples(values, pts[0], pts[1], int(width), spacing=(dy, dx), step=step,
                                 order=order)
    stats = band_statistics(samples)
    if np.all(~np.isfinite(stats["mean"])):
        raise InputError("the profile band holds only NaN pixels (masked region?); move it onto valid data")
    pos = np.arange(samples.shape[1]) * step
    units = units_of(image)
    coord = xr.Variable("position", pos, attrs={"units": "nm", "long_name": "distance from start"})
    long = image.attrs.get("long_name") or image.name or "value"
    prof = xr.DataArray(stats["mean"], dims=("position",), coords={"position": coord},
                        attrs={"units": units, "long_name": f"{long}, band mean"})
    sigma = xr.DataArray(
        stats["sigma"], dims=("position",), coords={"position": coord},
        attrs={"units": units, "long_name": "standard error of the band mean",
               "noise_correlation": [float(v) for v in stats["rho_along"]],
               "note": "points are correlated over len(noise_correlation) - 1 samples; "
                       "ionscope.profiles.profile_covariance builds the full covariance"})
    count = xr.DataArray(stats["count"].astype(np.int32), dims=("position",), coords={"position": coord},
                         attrs={"units": "1", "long_name": "lines averaged"})
    ds = xr.Dataset({"profile": prof, "profile_sigma": sigma, "count": count})
    ds.attrs = {
        "primary": "profile",
        "start_px": [float(v) for v in pts[0]], "end_px": [float(v) for v in pts[1]],
        "width_px": int(width), "step_nm": float(step),
        "tau_across": float(stats["tau_across"]), "independent_lines": float(stats["independent_lines"]),
        "source_variable": str(image.name),
    }
    params = {"start": list(map(float, start)), "end": list(map(float, end)), "unit": unit,
              "width": int(width), "step_nm": float(step), "order": int(order)}
    return with_provenance(ds, "ionscope.profiles.band_profile", params, [image],
                           history=provenance(image))


def profile_covariance(sigma: np.ndarray, correlation: Sequence[float] | None = None) -> np.ndarray:
    """Noise covariance ``sigma_i sigma_j rho(|i - j|)`` of a profile (positive definite).

    Parameters
    ----------
    sigma : ndarray (n,)
        Standard error per point.
    correlation : sequence of float, optional
        ``rho[k]`` for lags k = 0, 1, ... (``rho[0] = 1``); beyond its length the correlation is
        zero. None gives the diagonal matrix.
    """
    sigma = np.asarray(sigma, dtype=np.float64)
    n = sigma.size
    rho = np.zeros(n)
    rho[0] = 1.0
    if correlation is not None:
        c = np.asarray(correlation, dtype=np.float64)[:n]
        rho[1 : c.size] = c[1:]
    if not np.any(rho[1:]):
        return np.diag(sigma**2)
    idx = np.arange(n)
    corr = rho[np.abs(idx[:, None] - idx[None, :])]
    try:
        np.linalg.cholesky(corr)
    except np.linalg.LinAlgError:  # truncated empirical correlation: clip to the nearest PD
        vals, vecs = np.linalg.eigh(corr)
        vals = np.clip(vals, 1e-6 * vals.max(), None)
        corr = (vecs * vals) @ vecs.T
        d = np.sqrt(np.diag(corr))
        corr = corr / np.outer(d, d)
    return corr * np.outer(sigma, sigma)


# --------------------------------------------------------------------------- fitting


@dataclasses.dataclass(frozen=True)
class LowPass:
    r"""Band-limited resolution: the transfer function of a reconstruction aperture.

    A Fourier (sideband) holography reconstruction keeps spatial frequencies inside a soft
    circular aperture of radius ``cutoff_per_nm`` (raised-cosine edge of full width
    ``edge_per_nm``). Across a straight interface its line-spread function is the 1-D
    transform of the aperture's central section: the transfer ``T(k) = 1`` for
    ``|k| < cutoff - edge/2``, 0 beyond ``cutoff + edge/2``, a raised cosine in between
    (independent of the profile's direction for a circular aperture).

    The aperture filters the electron wave :math:`e^{i\varphi}`, not the phase: for phase
    steps of order 1 rad and more the phase of the filtered wave rings much less than the
    filtered phase would (the Gibbs overshoot of a 3 rad step shrinks several-fold). With
    ``phase_per_unit`` :math:`\kappa` (rad per unit of the profile, e.g. :math:`C_E t` for a
    potential map in V, 1 for a phase map) the model :math:`V` is filtered as
    :math:`\arg(\mathcal F^{-1}[T\,\mathcal F e^{i\kappa V}])/\kappa`; without it,
    linearly (small phases, or differences of two maps).

    The wave's amplitude filters along with its phase: where the two materials absorb
    differently (``amplitude_ratio`` = amplitude on the start side over that on the end side,
    e.g. from the reconstructed amplitude map away from the interface) the model wave is
    :math:`a(x) e^{i\kappa V}` with the amplitude stepping at the interface like the ``jump``
    of :func:`fit_step` (:math:`\ln a` mixes across a rough interface like the phase). Needs
    ``phase_per_unit``.

    ``blur_nm`` is the Gaussian width (sigma, nm) of the potential *ahead of* the aperture:
    the interface's roughness or the projected width of an inclined interface. Far below the
    resolution, it still matters for a phase step of order 1 rad and more: across a sharp
    step the wave jumps along the chord between its two values, across a graded one along the
    unit circle, and the aperture sees the difference (a zeroth moment proportional to the
    width). For the twin's 2.65 rad mean-inner-potential step seen through a 6 nm aperture,
    0.25 nm of roughness moves the filtered profile by up to 0.5 V next to the interface and
    the fitted space-charge drop by about as much, so give the interface width when it is
    known (from a high-resolution image or a phase-shifting map). None takes half the profile's
    sample spacing (a step between two pixels; about what earlier versions did implicitly).
    Linear filtering (no ``phase_per_unit``) applies it as a Gaussian on the transfer.
    """

    cutoff_per_nm: float
    edge_per_nm: float = 0.0
    phase_per_unit: float | None = None
    amplitude_ratio: float | None = None
    blur_nm: float | None = None

    def __post_init__(self) -> None:
        if not (np.isfinite(self.cutoff_per_nm) and self.cutoff_per_nm > 0):
            raise InputError(f"the low-pass cutoff must be a positive frequency in 1/nm, got {self.cutoff_per_nm!r}")
        if not (np.isfinite(self.edge_per_nm) and 0 <= self.edge_per_nm < self.cutoff_per_nm):
            raise InputError(f"the low-pass edge must lie in [0, cutoff), got {self.edge_per_nm!r}")
        if self.phase_per_unit is not None and not (np.isfinite(self.phase_per_unit) and self.phase_per_unit != 0):
            raise InputError(f"phase_per_unit must be a non-zero number (rad per unit), got {self.phase_per_unit!r}")
        if self.amplitude_ratio is not None:
            if not (np.isfinite(self.amplitude_ratio) and self.amplitude_ratio > 0):
                raise InputError(f"amplitude_ratio must be a positive number, got {self.amplitude_ratio!r}")
            if not self.phase_per_unit:
                raise InputError("amplitude_ratio needs phase_per_unit: only the filtered wave carries an amplitude")
        if self.blur_nm is not None and not (
                np.isfinite(self.blur_nm) and 0 <= self.blur_nm < 1.0 / self.cutoff_per_nm):
            raise InputError(
                f"blur_nm must be a width in [0, 1/cutoff) nm (below the resolution), got {self.blur_nm!r}; "
                "a wider blur is a resolution of its own"
            )

    def transfer(self, k: np.ndarray) -> np.ndarray:
        """Transfer function at frequencies ``k`` (1/nm)."""
        k = np.abs(np.asarray(k, dtype=np.float64))
        if self.edge_per_nm == 0:
            return (k <= self.cutoff_per_nm).astype(np.float64)
        t = np.clip((k - (self.cutoff_per_nm - 0.5 * self.edge_per_nm)) / self.edge_per_nm, 0.0, 1.0)
        return 0.5 * (1.0 + np.cos(np.pi * t))

    def describe(self) -> str:
        wave = f", wave filtered at {self.phase_per_unit:.4g} rad/unit" if self.phase_per_unit else ", linear"
        if self.amplitude_ratio is not None:
            wave += f", amplitude ratio {self.amplitude_ratio:.4g}"
        if self.blur_nm is not None:
            wave += f", interface width {self.blur_nm:.3g} nm"
        return f"low-pass {self.cutoff_per_nm:.4g}/nm (edge {self.edge_per_nm:.3g}/nm{wave})"


_GL64_NODES, _GL64_WEIGHTS = np.polynomial.legendre.leggauss(64)


def _graded_jump_moment(z: complex) -> complex:
    r""":math:`\int [e^{z\Phi(-t)} - \mathrm{chord}(t)]\,dt` (t in units of the Gaussian
    sigma): the zeroth moment by which a Gaussian-graded step of the wave's log :math:`z`
    (``i kappa jump + ln ratio``) differs from a sharp one (1 for t > 0, :math:`e^z` for t < 0)."""
    t = 4.0 * (_GL64_NODES + 1.0)  # [0, 8]
    w = 4.0 * _GL64_WEIGHTS
    right = np.sum(w * (np.exp(z * ndtr(-t)) - 1.0))
    left = np.sum(w * (np.exp(z * ndtr(t)) - np.exp(z)))
    return complex(left + right)


def _lowpass_apply(lp: LowPass, func: Callable[[np.ndarray, float], np.ndarray], x: np.ndarray,
                   h: float, wave: Callable[[np.ndarray, float], np.ndarray] | None = None,
                   antialias: float = 0.0, gaussian: float = 0.0) -> np.ndarray:
    r"""``func`` (a model of position) low-pass filtered and sampled at ``x``.

    ``func(grid, h)`` returns values on a grid of step ``h``; the grid is evenly extended
    (mirror) so the filter sees no wrap-around jump. With ``lp.phase_per_unit`` the wave
    ``wave(grid, h)`` (default :math:`e^{i\kappa f}`) is filtered instead and its phase returned
    in units of ``func``, anchored to ``func`` at the first grid point. ``antialias`` is the
    sigma of a Gaussian the model was anti-aliased with (divided out of the transfer: it only
    makes the sampled model smooth in its parameters); ``gaussian`` multiplies the transfer by
    a Gaussian of that sigma.
    """
    pad = 10.0 / lp.cutoff_per_nm
    grid = np.arange(x.min() - pad, x.max() + pad + h, h)
    vals = func(grid[:1] if lp.phase_per_unit else grid, h)  # the wave needs only the anchor
    n_ext = 2 * grid.size

    def mirrored(a: np.ndarray) -> np.ndarray:
        return np.concatenate([a, a[..., ::-1]], axis=-1)

    def transfer(k: np.ndarray) -> np.ndarray:
        return lp.transfer(k) * np.exp(2.0 * (np.pi * k) ** 2 * (antialias**2 - gaussian**2))

    if lp.phase_per_unit:
        kappa = lp.phase_per_unit
        carrier = mirrored(wave(grid, h) if wave is not None else np.exp(1j * kappa * vals))
        filtered = np.fft.ifft(np.fft.fft(carrier, axis=-1) * transfer(np.fft.fftfreq(n_ext, h)),
                               axis=-1)[..., : grid.size]
        phase = np.unwrap(np.angle(filtered), axis=-1)
        turns = np.round((kappa * vals[..., :1] - phase[..., :1]) / (2 * np.pi))
        filt = (phase + 2 * np.pi * turns) / kappa
    else:
        spec = np.fft.rfft(mirrored(vals), axis=-1) * transfer(np.fft.rfftfreq(n_ext, h))
        filt = np.fft.irfft(spec, n=n_ext, axis=-1)[..., : grid.size]
    pos = (x - grid[0]) / h
    i0 = np.clip(np.floor(pos).astype(int), 0, grid.size - 2)
    f = pos - i0
    return filt[..., i0] * (1 - f) + filt[..., i0 + 1] * f


def _lowpass_curve(spec: StepModel, side: str, names: Sequence[str], p: Sequence[float], x: np.ndarray,
                   lp: LowPass) -> np.ndarray:
    """The step model seen through the aperture ``lp`` (see :class:`LowPass`).

    The model is evaluated on a fine grid of step ``h = min(ds/4, 0.05/cutoff)``. Filtering the
    wave, an interface width ``b`` of at least ``h`` is sampled as it is (everything Gaussian
    blurred by ``b``, the grid refined to ``b/2``); a narrower one enters as the sharp step -
    the two sides' complex values mixed by a Gaussian of ``h`` (divided out of the transfer) -
    plus the zeroth moment ``b * c(z)`` by which the graded step differs from it
    (:func:`_graded_jump_moment`), exact to first order in ``b`` times the cutoff.
    """
    q = dict(zip(names, p))
    ds = float(np.median(np.diff(x))) if x.size > 1 else 1.0
    h0 = min(0.25 * ds, 0.05 / lp.cutoff_per_nm)
    width = 0.5 * ds if lp.blur_nm is None else float(lp.blur_nm)
    kappa = lp.phase_per_unit
    if not kappa:  # linear: anti-aliased by h0 (divided out), the interface width on the transfer
        def fine(grid: np.ndarray, h: float) -> np.ndarray:
            return _step_curve(spec, side, names, p, grid, h, True)

        return _lowpass_apply(lp, fine, x, h0, antialias=h0, gaussian=width)
    log_jump = 1j * kappa * float(q.get("jump", 0.0))
    if lp.amplitude_ratio is not None:
        log_jump += np.log(float(lp.amplitude_ratio))
    if width >= h0:
        def fine(grid: np.ndarray, h: float) -> np.ndarray:
            return _step_curve(spec, side, names, p, grid, width, True)

        def wave(grid: np.ndarray, h: float) -> np.ndarray:
            u = grid - q["position"]
            smooth = q["level_end"] + q["drop"] * spec.evaluate(u, q["width"], width, side)
            return np.exp(1j * kappa * smooth + log_jump * ndtr(-u / width))

        return _lowpass_apply(lp, fine, x, min(h0, 0.5 * width), wave)
    moment = width * _graded_jump_moment(log_jump) if width > 0 else 0.0

    def fine(grid: np.ndarray, h: float) -> np.ndarray:
        return _step_curve(spec, side, names, p, grid, h, True)

    def wave(grid: np.ndarray, h: float) -> np.ndarray:
        u = grid - q["position"]
        smooth = q["level_end"] + q["drop"] * spec.evaluate(u, q["width"], h, side)
        s = ndtr(-u / h)
        mix = (1.0 - s) + s * np.exp(log_jump) + moment * np.exp(-0.5 * (u / h) ** 2) / (h * np.sqrt(2 * np.pi))
        return np.exp(1j * kappa * smooth) * mix

    return _lowpass_apply(lp, fine, x, h0, wave, antialias=h0)


def _step_curve(spec: StepModel, side: str, names: Sequence[str], p: Sequence[float], x: np.ndarray,
                fixed_blur: float | LowPass | None, blurred: bool) -> np.ndarray:
    """``level_end + drop F(u) [+ jump S(u)]`` for parameters ``p`` named ``names``.

    ``S`` is a sharp step at the interface (1 on the start side), blurred like ``F``. A
    :class:`LowPass` resolution is applied by :func:`_lowpass_curve`.
    """
    if blurred and isinstance(fixed_blur, LowPass):
        return _lowpass_curve(spec, side, names, p, np.asarray(x, dtype=np.float64), fixed_blur)
    q = dict(zip(names, p))
    blur = (q["blur"] if fixed_blur is None else fixed_blur) if blurred else 0.0
    u = x - q["position"]
    out = q["level_end"] + q["drop"] * spec.evaluate(u, q["width"], blur, side)
    if "jump" in q:
        out = out + q["jump"] * (ndtr(-u / blur) if blur > 0 else np.where(u < 0, 1.0, np.where(u == 0, 0.5, 0.0)))
    return out


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
        try:
            return LowPass(float(blur.split(":", 1)[1]))
        except ValueError:
            raise InputError(f"blur {blur!r}: give lowpass:CUTOFF with the cutoff in 1/nm") from None
    if isinstance(blur, str):
        if blur.strip().lower() == "fit":
            return None
        try:
            blur = float(blur)
        except ValueError:
            raise InputError(f"blur must be a length in nm, 0, None or 'fit', got {blur!r}") from None
    blur = float(blur)
    if not (np.isfinite(blur) and blur >= 0):
        raise InputError(f"blur must be a non-negative length in nm, got {blur!r}")
    return blur


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
    f = np.stack([model.evaluate(u, w, model_blur, side) for w in widths], axis=1)  # (x0, w, n)
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
        raise InputError(f"unknown step model {model!r}; use one of {sorted(MODELS)}")
    if side not in SIDES:
        raise InputError(f"unknown side {side!r}; use one of {SIDES}")
    spec = MODELS[model]
    fixed_blur = _parse_blur(blur)
    if fixed_blur is None and not spec.one_sided:
        raise InputError(
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
        Step shape (module docstring); ``exp`` is a one-sided space-charge-like decay.
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
        ``covariance`` (nested list), provenance.

    Raises
    ------
    InputError
        For unusable profiles or options.
    ConvergenceError
        When the fit fails or its covariance is undetermined.

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
    if covariance not in ("auto", "diagonal", "none"):
        raise InputError(f"covariance must be 'auto', 'diagonal' or 'none', got {covariance!r}")
    if eps_r is not None and not (np.isfinite(eps_r) and eps_r > 0):
        raise InputError(f"eps_r must be a positive relative permittivity, got {eps_r!r}")
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
    ds.attrs = {"model": model, "side": fit.side, "chi2_reduced": fit.chi2_reduced, "dof": fit.dof,
                "parameter_names": list(fit.names), "covariance": [[float(v) for v in row] for row in fit.cov],
                "noise_model": "correlated" if corr is not None else ("diagonal" if sigma is not None else "equal weights"),
                "blur_fitted": "blur" in fit.names,
                "resolution": fit.blur.describe() if isinstance(fit.blur, LowPass)
                else (f"Gaussian sigma {fit.blur:.4g} nm" if fit.blur else "none")}
    blur_param = dataclasses.asdict(blur) if isinstance(blur, LowPass) else blur
    params = {"model": model, "side": side, "blur": blur_param, "eps_r": eps_r, "covariance": covariance,
              "step": bool(step)}
    return with_provenance(ds, "ionscope.profiles.fit_step", params, [prof], history=provenance(prof))


# --------------------------------------------------------------------------- interface detection


def detect_interface(image: xr.DataArray, *, smooth_px: float = 2.0, fraction: float = 0.1,
                     mask: np.ndarray | None = None) -> dict[str, Any]:
    """Find a straight interface in a map: the line through its steepest pixels.

    The map is smoothed by a Gaussian (``smooth_px``), its gradient magnitude computed, and a
    line fitted (weighted total least squares) through the ``fraction`` of pixels with the
    largest gradient whose gradient direction lies within 15 degrees of the dominant one (so a
    second edge at another angle, e.g. the specimen edge, does not pull the line). The
    interface direction is the principal axis of those pixels; the normal points down the
    mean gradient.

    Parameters
    ----------
    image : xarray.DataArray (y, x)
        Map (NaN pixels are ignored).
    smooth_px : float
        Gaussian sigma (pixels) before the gradient; larger for noisy maps.
    fraction : float
        Fraction (0, 0.5] of pixels used for the line fit.
    mask : ndarray of bool (y, x), optional
        Pixels allowed to belong to the interface.

    Returns
    -------
    dict
        ``point`` (y, x) px on the interface (weighted centroid), ``normal`` (unit vector
        (dy, dx) in pixel steps, pointing to decreasing values), ``direction`` (unit vector
        along the interface), ``length_px`` (extent of the steep pixels along it).
    """
    from scipy.ndimage import gaussian_filter

    image = _as_image(image, "detect_interface")
    if not (0 < fraction <= 0.5):
        raise InputError(f"fraction must lie in (0, 0.5], got {fraction!r}")
    if not (np.isfinite(smooth_px) and smooth_px >= 0):
        raise InputError(f"smooth_px must be a non-negative number of pixels, got {smooth_px!r}")
    data = np.asarray(image.values, dtype=np.float64)
    valid = np.isfinite(data)
    if mask is not None:
        mask = np.asarray(mask, dtype=bool)
        if mask.shape != data.shape:
            raise InputError(f"mask shape {mask.shape} does not match the image {data.shape}")
    if valid.sum() < 16:
        raise InputError("the map has too few finite pixels to find an interface")
    fill = np.where(valid, data, np.nanmedian(data))
    sm = gaussian_filter(fill, smooth_px) if smooth_px > 0 else fill
    norm = gaussian_filter(valid.astype(float), smooth_px) if smooth_px > 0 else valid.astype(float)
    gy, gx = np.gradient(sm)
    mag = np.hypot(gy, gx)
    edge = int(np.ceil(2 * smooth_px)) + 1
    ok = valid & (norm > 0.99)
    ok[:edge], ok[-edge:], ok[:, :edge], ok[:, -edge:] = False, False, False, False
    if mask is not None:
        ok &= mask
    if ok.sum() < 16:
        raise InputError("too few valid pixels away from the edges to find an interface")
    thresh = np.quantile(mag[ok], 1.0 - fraction)
    sel = ok & (mag >= thresh)
    # keep the dominant gradient orientation (a second, crossing edge points elsewhere)
    theta = np.mod(np.arctan2(gy[sel], gx[sel]), np.pi)
    hist, _ = np.histogram(theta, bins=36, range=(0, np.pi), weights=mag[sel])
    peak = (np.argmax(np.convolve(np.r_[hist[-2:], hist, hist[:2]], np.ones(5), mode="valid")) + 0.5) * np.pi / 36
    near = np.abs(np.angle(np.exp(2j * (theta - peak)))) / 2 < np.deg2rad(15)
    sel[sel] = near
    rows, cols = np.nonzero(sel)
    wts = mag[sel]
    cy, cx = np.average(rows, weights=wts), np.average(cols, weights=wts)
    d = np.stack([rows - cy, cols - cx])
    cov = (d * wts) @ d.T / wts.sum()
    vals, vecs = np.linalg.eigh(cov)
    direction = vecs[:, 1]
    normal = np.array([-direction[1], direction[0]])
    mean_grad = np.array([np.sum(gy[sel] * wts), np.sum(gx[sel] * wts)])
    if np.dot(normal, mean_grad) > 0:  # point to decreasing values
        normal = -normal
    if vals[1] < 4 * vals[0]:
        raise InputError(
            "no straight interface found: the steepest pixels do not lie along a line; give "
            "the profile end points explicitly"
        )
    along = d.T @ direction
    return {"point": (float(cy), float(cx)), "normal": (float(normal[0]), float(normal[1])),
            "direction": (float(direction[0]), float(direction[1])),
            "length_px": float(np.ptp(along))}


def normal_segment(interface: Mapping[str, Any], half_length_px: float,
                   shape: tuple[int, int] | None = None, *, margin_px: float = 0.0
                   ) -> tuple[tuple[float, float], tuple[float, float]]:
    """``(start, end)`` pixel points of a profile through ``interface["point"]`` along its
    normal, ``half_length_px`` either side (shortened to stay ``margin_px`` inside ``shape``)."""
    p = np.asarray(interface["point"], dtype=np.float64)
    nrm = np.asarray(interface["normal"], dtype=np.float64)
    h = float(half_length_px)
    if shape is not None:
        lim = []
        for sgn in (-1.0, 1.0):
            t = h
            for k in range(2):
                if abs(nrm[k]) > 1e-12:
                    bound = (shape[k] - 1 - margin_px - p[k]) if sgn * nrm[k] > 0 else (p[k] - margin_px)
                    t = min(t, bound / abs(nrm[k]))
            lim.append(t)
        h = min(lim)
        if h <= 1:
            raise InputError("the interface lies too close to the image edge for a profile across it")
    start = p - h * nrm
    end = p + h * nrm
    return (float(start[0]), float(start[1])), (float(end[0]), float(end[1]))


__all__ = [
    "MODELS",
    "SIDES",
    "StepModel",
    "StepFit",
    "LowPass",
    "register_step_model",
    "band_samples",
    "band_statistics",
    "band_profile",
    "profile_covariance",
    "fit_step_arrays",
    "step_summary",
    "fit_step",
    "detect_interface",
    "normal_segment",
]
