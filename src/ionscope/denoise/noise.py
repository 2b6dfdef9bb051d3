r"""Noise models: variance-stabilising transforms and a robust noise estimate.

* :func:`anscombe` maps Poisson counts ``z`` to ``2 sqrt(z + 3/8)``, whose noise is close to
  Gaussian with unit variance (for means above about 4 counts; below, the variance is
  smaller). :func:`inverse_anscombe` is the closed-form approximation (Makitalo & Foi 2011b)
  of the *exact unbiased inverse* (Makitalo & Foi 2011a): the map ``I`` with
  ``I(E[anscombe(z) | lambda]) = lambda``. A denoiser estimates ``E[anscombe(z)]``; applying
  ``I`` to that estimate is unbiased, whereas the algebraic inverse ``(y/2)^2 - 3/8`` is
  biased by up to -0.2 counts at low counts.
* :func:`generalized_anscombe` stabilises Poisson-Gaussian data ``z = gain * p + n``,
  ``p ~ Poisson``, ``n ~ N(offset, read_noise^2)``; :func:`inverse_generalized_anscombe` is the
  closed-form approximation of its exact unbiased inverse (Makitalo & Foi 2013).
* :func:`estimate_sigma` is Donoho's robust noise estimate: the median absolute value of the
  finest diagonal wavelet detail band divided by 0.6745 (the median of ``|N(0, 1)|``), with
  orthonormal Haar or Daubechies-4 (``"db2"``) filters implemented in numpy.

References
----------
F. J. Anscombe, Biometrika 35, 246 (1948).
M. Makitalo and A. Foi, "Optimal inversion of the Anscombe transformation in low-count
Poisson image denoising", IEEE Trans. Image Process. 20, 99 (2011).
M. Makitalo and A. Foi, "A closed-form approximation of the exact unbiased inverse of the
Anscombe variance-stabilizing transformation", IEEE Trans. Image Process. 20, 2697 (2011).
M. Makitalo and A. Foi, "Optimal inversion of the generalized Anscombe transformation for
Poisson-Gaussian noise", IEEE Trans. Image Process. 22, 91 (2013).
D. L. Donoho and I. M. Johnstone, "Ideal spatial adaptation by wavelet shrinkage",
Biometrika 81, 425 (1994).
"""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from ionscope.errors import ConfigError, DimensionError, EmptyDataError

#: Median of ``|N(0, 1)|``: MAD / 0.6745 estimates the standard deviation of Gaussian noise.
MAD_TO_SIGMA = 0.6745

_SQRT3 = np.sqrt(3.0)
#: Orthonormal low-pass analysis filters (sum sqrt(2), unit norm).
_LOWPASS = {
    "haar": np.array([1.0, 1.0]) / np.sqrt(2.0),
    "db2": np.array([1 + _SQRT3, 3 + _SQRT3, 3 - _SQRT3, 1 - _SQRT3]) / (4 * np.sqrt(2.0)),
}


def _float(x) -> np.ndarray:
    x = np.asarray(x)
    return x if np.issubdtype(x.dtype, np.floating) else x.astype(np.float64)


# --------------------------------------------------------------------------- Anscombe


def anscombe(counts):
    """Anscombe transform ``2 sqrt(counts + 3/8)`` of Poisson counts (negative input -> 0).

    Examples
    --------
    >>> float(anscombe(0.0)) == 2 * (3 / 8) ** 0.5
    True
    """
    z = _float(counts)
    return 2.0 * np.sqrt(np.maximum(z + 0.375, 0.0))


def inverse_anscombe(values, *, unbiased: bool = True):
    """Inverse Anscombe transform.

    Parameters
    ----------
    values : array_like
        Anscombe-domain values, typically a denoised estimate of ``E[anscombe(z)]``.
    unbiased : bool
        ``True`` (default): the closed-form approximation of the exact unbiased inverse
        (Makitalo & Foi 2011),
        ``y^2/4 + sqrt(3/2)/(4 y) - 11/(8 y^2) + 5 sqrt(3/2)/(8 y^3) - 1/8``, clipped at 0.
        ``False``: the algebraic inverse ``y^2/4 - 3/8``, clipped at 0.

    Examples
    --------
    >>> round(float(inverse_anscombe(anscombe(100.0), unbiased=False)), 10)
    100.0
    """
    y = _float(values)
    if not unbiased:
        return np.maximum(0.25 * y * y - 0.375, 0.0)
    s = np.sqrt(1.5)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        inv = 1.0 / np.maximum(y, np.finfo(y.dtype).tiny)
        out = 0.25 * y * y + 0.25 * s * inv - 1.375 * inv**2 + 0.625 * s * inv**3 - 0.125
    # below anscombe(0) = 2 sqrt(3/8) the formula turns up again; the estimate there is 0
    out = np.where(y < 2.0 * np.sqrt(0.375), 0.0, out)
    return np.maximum(out, 0.0).astype(y.dtype, copy=False)


def _check_gat(gain: float, read_noise: float) -> None:
    if not (np.isfinite(gain) and gain > 0):
        raise ConfigError(f"gain (data units per count) must be a finite number > 0, got {gain!r}")
    if not (np.isfinite(read_noise) and read_noise >= 0):
        raise ConfigError(f"read_noise must be a finite number >= 0, got {read_noise!r}")


def generalized_anscombe(values, *, gain: float = 1.0, read_noise: float = 0.0,
                         offset: float = 0.0):
    """Generalised Anscombe transform of Poisson-Gaussian data (Makitalo & Foi 2013).

    For ``z = gain * p + n`` with ``p ~ Poisson(lambda)`` and ``n ~ N(offset, read_noise^2)``:
    ``f(z) = (2 / gain) sqrt(max(gain z + 3/8 gain^2 + read_noise^2 - gain offset, 0))``,
    approximately Gaussian with unit variance. ``gain=1, read_noise=0, offset=0`` is
    :func:`anscombe`.

    Parameters
    ----------
    values : array_like
        Data in detector units.
    gain : float
        Detector units per Poisson count (alpha).
    read_noise : float
        Standard deviation of the Gaussian part, in detector units (sigma).
    offset : float
        Mean of the Gaussian part, in detector units (g).
    """
    _check_gat(gain, read_noise)
    z = _float(values)
    arg = gain * z + 0.375 * gain * gain + read_noise * read_noise - gain * offset
    return (2.0 / gain) * np.sqrt(np.maximum(arg, 0.0))


def inverse_generalized_anscombe(values, *, gain: float = 1.0, read_noise: float = 0.0,
                                 offset: float = 0.0):
    """Closed-form approximation of the exact unbiased inverse of
    :func:`generalized_anscombe` (Makitalo & Foi 2013).

    With ``s = read_noise / gain``: ``z = gain * max(I_P(y) - s^2, 0) + offset``, where
    ``I_P`` is the unbiased Poisson inverse of :func:`inverse_anscombe` (before clipping).
    """
    _check_gat(gain, read_noise)
    y = _float(values)
    s = np.sqrt(1.5)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        inv = 1.0 / np.maximum(y, np.finfo(y.dtype).tiny)
        base = 0.25 * y * y + 0.25 * s * inv - 1.375 * inv**2 + 0.625 * s * inv**3 - 0.125
    base = np.where(y < 2.0 * np.sqrt(0.375), 0.0, base)
    out = np.maximum(base - (read_noise / gain) ** 2, 0.0) * gain + offset
    return out.astype(y.dtype, copy=False)


# --------------------------------------------------------------------------- sigma


def _highpass(lowpass: np.ndarray) -> np.ndarray:
    """Quadrature-mirror high-pass filter ``g[k] = (-1)^k h[L-1-k]``."""
    n = lowpass.size
    return lowpass[::-1] * (-1.0) ** np.arange(n)


def finest_detail_band(image: np.ndarray, wavelet: str = "db2") -> np.ndarray:
    """Diagonal (HH) detail coefficients of the finest level of a 2-D wavelet transform.

    Separable analysis with the orthonormal high-pass filter along both of the last two axes,
    decimated by 2, without boundary extension ('valid' positions only, so image borders
    add no spurious detail). Leading axes (e.g. ``time``) are kept. For white Gaussian noise
    of standard deviation sigma the coefficients are N(0, sigma^2).

    Parameters
    ----------
    image : ndarray, shape (..., ny, nx)
    wavelet : {"db2", "haar"}
        Daubechies-4 (two vanishing moments, the default, as scikit-image's ``estimate_sigma``)
        or Haar.
    """
    if wavelet not in _LOWPASS:
        raise ConfigError(f"unknown wavelet {wavelet!r}; use one of {sorted(_LOWPASS)}")
    img = _float(image)
    if img.ndim < 2:
        raise DimensionError(f"need at least a 2-D image, got shape {img.shape}")
    g = _highpass(_LOWPASS[wavelet])
    n = g.size
    if img.shape[-1] < n or img.shape[-2] < n:
        raise DimensionError(
            f"image of shape {img.shape[-2:]} is smaller than the {wavelet} filter ({n} taps)"
        )
    # convolution y[i] = sum_k g[k] x[2i + n - 1 - k]: correlate the windows with g reversed
    rows = sliding_window_view(img, n, axis=-1)[..., ::2, :] @ g[::-1]
    return sliding_window_view(rows, n, axis=-2)[..., ::2, :, :] @ g[::-1]


def estimate_sigma(image: np.ndarray, wavelet: str = "db2") -> float:
    """Robust standard deviation of additive white Gaussian noise (Donoho & Johnstone 1994).

    ``sigma = median(|HH|) / 0.6745`` over the finest diagonal detail band of every 2-D
    frame (pooled over leading axes). Smooth structure barely reaches this band, so the
    estimate is insensitive to the image content; edges bias it upwards slightly.

    Examples
    --------
    >>> import numpy as np
    >>> noise = np.random.default_rng(0).normal(0.0, 2.0, size=(256, 256))
    >>> abs(estimate_sigma(noise) - 2.0) < 0.1
    True
    """
    band = finest_detail_band(image, wavelet)
    if band.size == 0:
        raise EmptyDataError("no wavelet detail coefficients: the image is too small")
    return float(np.median(np.abs(band))) / MAD_TO_SIGMA


__all__ = [
    "MAD_TO_SIGMA",
    "anscombe",
    "inverse_anscombe",
    "generalized_anscombe",
    "inverse_generalized_anscombe",
    "finest_detail_band",
    "estimate_sigma",
]
