r"""The tip-and-cantilever point-spread function of KPFM, and deconvolution that keeps volts.

The Kelvin force is felt by the tip apex and, more weakly, by the cone and the cantilever, so
the measured potential is the true one averaged by a PSF with a sharp core and a long-range tail
(Jacobs et al. 1998; Strassburg et al. 2005; Cohen et al. 2013). ionscope models it as a
normalised mixture of two Gaussians,

.. math:: h(r) = (1 - w)\, G_{\sigma_c}(r) + w\, G_{\sigma_t}(r),

a core of SD :math:`\sigma_c` and a tail of SD :math:`\sigma_t > \sigma_c` holding the fraction
:math:`w` of the weight; its transfer function is the same mixture of Gaussians in frequency
(:func:`otf_kernel`) and its edge response a mixture of normal CDFs (:func:`edge_response`).

- :func:`fit_edge_kernel` estimates the PSF from the profile across a sharp edge (the grounded
  collector's boundary): the edge response with a tail when the tail is significant, a single
  Gaussian otherwise.
- :func:`wiener_deconvolve_kernel` deconvolves by a Wiener filter
  :math:`G = H^* S / (|H|^2 S + N)` (Wiener 1949; Gonzalez & Woods ch. 5), with the white-noise
  power :math:`N` from the measured noise SD and the signal spectrum :math:`S` a power law fitted
  to the image's own radially averaged spectrum where it stands clear of the noise
  (:func:`signal_spectrum_kernel`). The frame is reflect-padded first (no step at the borders),
  the filter has unit gain at zero frequency and nothing is clipped: the result stays in volts
  (``skimage.restoration.wiener`` clips to [-1, 1] unless told not to: ``clip=False``).

References
----------
H.O. Jacobs, P. Leuchtmann, O.J. Homan, A. Stemmer, J. Appl. Phys. 84, 1168 (1998).
G. Cohen, E. Halpern, S.U. Nanayakkara, J.M. Luther, C. Held, R. Bennewitz, A. Boag,
Y. Rosenwaks, Nanotechnology 24, 295702 (2013) (KPFM PSF and deconvolution).
E. Strassburg, A. Boag, Y. Rosenwaks, Rev. Sci. Instrum. 76, 083705 (2005).
N. Wiener, Extrapolation, Interpolation and Smoothing of Stationary Time Series (MIT, 1949).
"""

from __future__ import annotations

import dataclasses
import math
import warnings
from typing import Any

import numpy as np
import scipy.fft
from scipy.optimize import OptimizeWarning, curve_fit
from scipy.special import ndtr

from ionscope.errors import ConfigError, ConvergenceError, InputError

__all__ = [
    "PSF",
    "otf_kernel",
    "edge_response",
    "fit_edge_kernel",
    "signal_spectrum_kernel",
    "wiener_deconvolve_kernel",
]


@dataclasses.dataclass(frozen=True)
class PSF:
    """A KPFM point-spread function: Gaussian core plus Gaussian tail (module docstring).

    Attributes
    ----------
    core_sigma_px : float
        SD of the core (px).
    tail_weight : float
        Fraction of the weight in the tail (0 = a single Gaussian).
    tail_sigma_px : float
        SD of the tail (px; ignored when ``tail_weight`` is 0).
    """

    core_sigma_px: float
    tail_weight: float = 0.0
    tail_sigma_px: float = 0.0

    def __post_init__(self):
        if not (np.isfinite(self.core_sigma_px) and self.core_sigma_px >= 0):
            raise ConfigError(f"the PSF core sigma must be >= 0 px, got {self.core_sigma_px!r}")
        if not (0 <= self.tail_weight < 1):
            raise ConfigError(f"the PSF tail weight must lie in [0, 1), got {self.tail_weight!r}")
        if self.tail_weight > 0 and not (np.isfinite(self.tail_sigma_px) and self.tail_sigma_px > 0):
            raise ConfigError(f"a PSF tail needs a sigma > 0 px, got {self.tail_sigma_px!r}")

    @property
    def reach_px(self) -> float:
        """Three SDs of the widest component (px)."""
        return 3.0 * max(self.core_sigma_px, self.tail_sigma_px if self.tail_weight > 0 else 0.0)

    def to_nm(self, pixel_nm: float) -> dict[str, float]:
        """The parameters in nm (a JSON-able dict)."""
        return {"core_sigma_nm": self.core_sigma_px * pixel_nm, "tail_weight": self.tail_weight,
                "tail_sigma_nm": self.tail_sigma_px * pixel_nm if self.tail_weight > 0 else 0.0}

    @classmethod
    def from_nm(cls, params: dict[str, float], pixel_nm: float) -> PSF:
        """From :meth:`to_nm`'s dict (or ``{"core_sigma_nm": ...}`` alone)."""
        return cls(float(params["core_sigma_nm"]) / pixel_nm, float(params.get("tail_weight", 0.0)),
                   float(params.get("tail_sigma_nm", 0.0)) / pixel_nm)


def otf_kernel(psf: PSF, shape: tuple[int, int], *, real: bool = True,
               aspect: float = 1.0) -> np.ndarray:
    """Transfer function of ``psf`` on the FFT grid of an image of ``shape`` (``rfft2``'s half
    grid when ``real``): a mixture of Gaussians in frequency, 1 at zero frequency.

    The PSF's sigmas are in x pixels; ``aspect`` is the pixel height over its width (dy / dx),
    so that the PSF stays round on non-square pixels."""
    ny, nx = int(shape[0]), int(shape[1])
    ky = scipy.fft.fftfreq(ny, d=float(aspect))[:, None]
    kx = (scipy.fft.rfftfreq(nx) if real else scipy.fft.fftfreq(nx))[None, :]
    k2 = ky * ky + kx * kx
    h = (1 - psf.tail_weight) * np.exp(-2 * np.pi**2 * psf.core_sigma_px**2 * k2)
    if psf.tail_weight > 0:
        h = h + psf.tail_weight * np.exp(-2 * np.pi**2 * psf.tail_sigma_px**2 * k2)
    return h


def edge_response(u: np.ndarray, core_sigma: float, tail_weight: float = 0.0, tail_sigma: float = 1.0) -> np.ndarray:
    """Response to a unit step at ``u = 0`` (0 -> 1 with ``u``): ``(1-w) Phi(u/sc) + w Phi(u/st)``."""
    u = np.asarray(u, dtype=np.float64)
    out = (1 - tail_weight) * ndtr(u / max(core_sigma, 1e-9))
    if tail_weight > 0:
        out = out + tail_weight * ndtr(u / max(tail_sigma, 1e-9))
    return out


def fit_edge_kernel(distance: np.ndarray, profile: np.ndarray, *, sigma: float | None = None,
                    tail: bool | None = None) -> dict[str, Any]:
    """Fit the PSF to the profile across a sharp edge.

    ``profile = level + height * edge_response(distance - position, ...)``, by least squares,
    with (``tail=True``), without (``False``) or - by default - with a tail only when it is
    significant (its weight more than three standard errors from 0 and the fit better by more
    than its two extra parameters: ``chi2`` lower by at least 10 in units of ``sigma``).

    Parameters
    ----------
    distance : numpy.ndarray
        Positions along the profile (px).
    profile : numpy.ndarray
        Values (NaN points are dropped).
    sigma : float, optional
        Standard error of a profile point (default: from the residual).
    tail : bool, optional
        Force or forbid the tail.

    Returns
    -------
    dict
        ``psf`` (:class:`PSF`), ``errors`` (core_sigma_px, tail_weight, tail_sigma_px standard
        errors), ``position_px``, ``height``, ``level``, ``chi2_reduced``, ``tail`` (bool).

    Raises
    ------
    InputError
        Too few points or no step.
    ConvergenceError
        The fit failed.
    """
    x = np.asarray(distance, dtype=np.float64)
    p = np.asarray(profile, dtype=np.float64)
    ok = np.isfinite(p) & np.isfinite(x)
    x, p = x[ok], p[ok]
    if p.size < 8:
        raise InputError(f"the edge profile has {p.size} valid points; at least 8 are needed to fit the PSF")
    k = max(2, p.size // 10)
    lo, hi = float(np.median(p[:k])), float(np.median(p[-k:]))
    height0 = hi - lo
    if sigma is None:  # second differences: robust to the step itself
        d2 = p[:-2] - 2 * p[1:-1] + p[2:]
        noise = float(1.4826 * np.median(np.abs(d2 - np.median(d2))) / np.sqrt(6.0))
    else:
        noise = float(sigma)
    if abs(height0) < 5 * max(noise, 1e-12):
        raise InputError(f"the edge profile has no clear step (rise {height0:.3g} against noise {noise:.3g}); "
                         "give the PSF sigma instead of estimating it")
    f = (p - lo) / height0
    x0 = float(np.interp(0.5, np.maximum.accumulate(f), x)) if np.all(np.diff(x) > 0) else float(x[p.size // 2])
    span = float(x[-1] - x[0])
    # the tail must fit well inside the profile, or its weight and width trade off freely
    reach = float(max(x0 - x[0], x[-1] - x0))

    def single(u, level, height, pos, sc):
        return level + height * edge_response(u - pos, sc)

    def double(u, level, height, pos, sc, w, ratio):
        return level + height * edge_response(u - pos, sc, w, sc * ratio)

    fits = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", OptimizeWarning)
        warnings.simplefilter("ignore", RuntimeWarning)
        try:
            p1, c1 = curve_fit(single, x, p, p0=[lo, height0, x0, 1.0],
                               bounds=([-np.inf, -np.inf, x[0], 0.05], [np.inf, np.inf, x[-1], span / 2]),
                               max_nfev=1000, x_scale="jac")
            r1 = float(np.sum((p - single(x, *p1)) ** 2))
            fits.append(("single", p1, c1, r1))
        except (RuntimeError, ValueError):
            pass
        if tail is not False:
            best = None
            core0 = max(0.3, fits[0][1][3] * 0.8) if fits else 1.0
            max_ratio = max(2.0, reach / core0)
            for w0, ratio0 in ((0.1, 5.0), (0.25, 8.0), (0.2, 3.0)):
                try:
                    start = [lo, height0, x0, core0, w0, min(ratio0, 0.9 * max_ratio)]
                    p2, c2 = curve_fit(double, x, p, p0=start,
                                       bounds=([-np.inf, -np.inf, x[0], 0.05, 0.0, 1.5],
                                               [np.inf, np.inf, x[-1], span / 2, 0.9, max_ratio]),
                                       max_nfev=1500, x_scale="jac")
                except (RuntimeError, ValueError):
                    continue
                r2 = float(np.sum((p - double(x, *p2)) ** 2))
                if best is None or r2 < best[3]:
                    best = ("double", p2, c2, r2)
            if best is not None:
                fits.append(best)
    if not fits:
        raise ConvergenceError("the PSF fit to the edge profile did not converge; give the PSF sigma instead")
    sig2 = noise**2 if noise > 0 else 1.0
    chosen = fits[0]
    if len(fits) == 2:
        single_fit, double_fit = fits if fits[0][0] == "single" else (None, fits[0])
        w, w_err = double_fit[1][4], float(np.sqrt(max(double_fit[2][4, 4], 0.0)))
        significant = w > 3 * w_err and (single_fit is None or (single_fit[3] - double_fit[3]) / sig2 > 10.0)
        if tail is True or significant or single_fit is None:
            chosen = double_fit
    elif tail is True and fits[0][0] == "single":
        raise ConvergenceError("the PSF fit with a tail did not converge; try tail=False or give the sigma")
    name, popt, pcov, rss = chosen
    dof = max(p.size - popt.size, 1)
    # curve_fit scales the covariance by the residual variance: right without sigma; with a
    # known sigma, take it as the standard error instead
    err = np.sqrt(np.clip(np.diag(pcov) * (sig2 / (rss / dof) if sigma is not None and rss > 0 else 1.0), 0, None))
    if name == "single":
        psf = PSF(float(popt[3]))
        errors = {"core_sigma_px": float(err[3]), "tail_weight": 0.0, "tail_sigma_px": 0.0}
    else:
        sc, w, ratio = float(popt[3]), float(popt[4]), float(popt[5])
        psf = PSF(sc, w, sc * ratio)
        d_ratio = float(err[5])
        errors = {"core_sigma_px": float(err[3]), "tail_weight": float(err[4]),
                  "tail_sigma_px": float(np.hypot(ratio * err[3], sc * d_ratio))}
    return {"psf": psf, "errors": errors, "position_px": float(popt[2]), "height": float(popt[1]),
            "level": float(popt[0]), "chi2_reduced": float(rss / dof / sig2), "tail": name == "double"}


def _radial_bins(shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """Radial frequency (cycles/px) on the rfft2 grid and its integer bin (width 1/max(shape))."""
    ny, nx = shape
    ky = scipy.fft.fftfreq(ny)[:, None]
    kx = scipy.fft.rfftfreq(nx)[None, :]
    k = np.sqrt(ky * ky + kx * kx)
    bins = np.rint(k * max(ny, nx)).astype(np.intp)
    return k, bins


def signal_spectrum_kernel(power: np.ndarray, otf: np.ndarray, noise_power: float, shape: tuple[int, int], *,
                           snr_min: float = 5.0, otf_min: float = 0.05) -> np.ndarray:
    """Power spectrum of the unblurred signal on the rfft2 grid: a power law ``A k^-beta`` fitted
    (least squares in log-log, equal weight per radial frequency bin) to ``(P(k) - N) / H(k)^2``,
    with ``P`` the radially averaged power of the observed image, over the frequencies where the
    signal stands clear of the noise (``P > snr_min N``) and the blur has not yet buried it
    (``H^2 > otf_min``).

    Beyond those frequencies ``(P - N) / H^2`` divides a small, noisy excess by a small ``H^2``
    and would claim signal where there is none; the power law extrapolates the signal's own
    decay instead (``beta`` about 3 for a scene of sharp-edged regions). Falls back to a flat
    spectrum at the mean signal power when fewer than three frequencies qualify; ``beta`` is kept
    within [1, 6].
    """
    k, bins = _radial_bins(shape)
    weights = np.ones_like(power)
    weights[:, 1:-1] = 2.0  # rfft: interior columns stand for two coefficients
    flat_bins, flat_w = bins.ravel(), weights.ravel()
    count = np.bincount(flat_bins, flat_w)
    mean_p = np.bincount(flat_bins, (power * weights).ravel()) / np.maximum(count, 1e-12)
    mean_h2 = np.bincount(flat_bins, (otf * otf * weights).ravel()) / np.maximum(count, 1e-12)
    r = np.arange(mean_p.size) / max(shape)
    use = (np.arange(mean_p.size) >= 1) & (count > 0) & (mean_p > snr_min * noise_power) & (mean_h2 > otf_min)
    if use.sum() < 3:
        level = max(float(np.mean(power)) - noise_power, noise_power)
        return np.full(power.shape, level)
    s = (mean_p[use] - noise_power) / mean_h2[use]
    lr, ls = np.log(r[use]), np.log(s)
    # equal weight per frequency bin, so the upper frequencies - where the filter turns from
    # restoring to smoothing and what it extrapolates from - count most (the spectrum flattens at
    # the lowest frequencies, the field's largest structures; a fit with equal weight per decade
    # came out too shallow there and claimed signal at high frequencies: on the composite_cathode
    # twin beta 1.6 against a true ~2.8, and a third of the deconvolution's gain lost)
    slope, _ = np.polyfit(lr, ls, 1)
    beta = float(np.clip(-slope, 1.0, 6.0))
    loga = float(np.mean(ls + beta * lr))
    kk = np.maximum(k, 0.5 / max(shape))
    return np.exp(loga - beta * np.log(kk))


def wiener_deconvolve_kernel(image: np.ndarray, psf: PSF, noise_sd: float, *, pad_px: int | None = None,
                             balance: float = 1.0, aspect: float = 1.0, row_noise_sd: float = 0.0) -> np.ndarray:
    """Wiener deconvolution of a potential map, in its own units (module docstring).

    Parameters
    ----------
    image : numpy.ndarray (y, x)
        The map (V); NaN pixels are filled with the median for the filter and NaN again after.
    psf : PSF
        The point-spread function (px).
    noise_sd : float
        White-noise SD of the map (its units), e.g. :func:`ionscope.kpfm.level.flat_noise_kernel`.
    pad_px : int, optional
        Reflect padding on every side (px); default three SDs of the widest PSF component plus
        8 px, at most the image size less one.
    balance : float
        Multiplies the noise power: > 1 smooths more, < 1 sharpens more.
    aspect : float
        Pixel height over width (the PSF's sigmas are in x pixels; :func:`otf_kernel`).
    row_noise_sd : float
        SD of what is left of the line offsets (a constant per scan line, e.g. the error of each
        line's median over the reference region). Its power sits on the frequencies constant
        along x, where it is added to the white noise, so that the filter does not sharpen the
        rows' stripes.

    Returns
    -------
    numpy.ndarray
        The deconvolved map (float64), same shape, same mean; nothing clipped.
    """
    v = np.asarray(image, dtype=np.float64)
    if v.ndim != 2:
        raise InputError(f"the map must be 2-D, got shape {v.shape}")
    if not (np.isfinite(noise_sd) and noise_sd > 0):
        raise ConfigError(f"the noise SD must be a positive number, got {noise_sd!r}")
    bad = ~np.isfinite(v)
    if bad.all():
        raise InputError("the map holds no finite pixels")
    if bad.any():
        v = np.where(bad, float(np.median(v[~bad])), v)
    ny, nx = v.shape
    pad = int(math.ceil(psf.reach_px)) + 8 if pad_px is None else int(pad_px)
    py, px = min(int(math.ceil(pad / aspect)), ny - 1), min(pad, nx - 1)
    # extra padding at the far ends up to lengths the FFT is fast at
    ey = min(ny - 1, scipy.fft.next_fast_len(ny + 2 * py, real=True) - ny - py)
    ex = min(nx - 1, scipy.fft.next_fast_len(nx + 2 * px, real=True) - nx - px)
    padded = np.pad(v.astype(np.float32), ((py, ey), (px, ex)), mode="reflect")
    shape = padded.shape
    F = scipy.fft.rfft2(padded, workers=-1)
    H = otf_kernel(psf, shape, aspect=aspect)
    N = float(balance) * noise_sd**2 * shape[0] * shape[1]
    power = (F.real * F.real + F.imag * F.imag).astype(np.float64)
    S = signal_spectrum_kernel(power, H, N, shape)
    noise = np.full(H.shape, N)
    if row_noise_sd > 0:  # rows' offsets: |F(ky, 0)|^2 = nx^2 ny sd^2 on average
        noise[:, 0] += float(balance) * row_noise_sd**2 * shape[0] * shape[1] ** 2
    G = (H * S / (H * H * S + noise)).astype(np.float32)
    G[0, 0] = 1.0
    F *= G
    out = scipy.fft.irfft2(F, s=shape, workers=-1)[py:py + ny, px:px + nx].astype(np.float64)
    if bad.any():
        out[bad] = np.nan
    return out
