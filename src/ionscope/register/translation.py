r"""Sub-pixel translation registration by cross-correlation: the one routine every package uses.

The shift between two signals is the peak of their cross-correlation, computed from the cross
power spectrum :math:`X = F_\mathrm{fixed}\,\overline{F_\mathrm{moving}}` (optionally weighted,
e.g. a low-pass), first on the sample grid by an inverse FFT, then refined on a grid
``1/upsample`` samples fine around the coarse peak by a matrix-multiply DFT restricted to the
non-zero part of ``X`` (Guizar-Sicairos, Thurman & Fienup 2008), optionally polished by
Gauss-Newton least squares on the signals themselves (with a gain and an offset between them).

Sign convention (one for all of ionscope; as scikit-image's ``phase_cross_correlation`` and
``scipy.ndimage.shift``): a **shift** is the translation to apply to the moving signal to
register it onto the fixed one, ``registered(r) = moving(r - shift)``
(:func:`shift_image`). If the moving signal's features lie displaced by ``d`` from the fixed
one's (``moving(r) = fixed(r - d)``: specimen drift, an energy drift of a spectrum), the shift is
``-d``. Packages that report a measured *drift* or *displacement* (EELS ``energy_shift``,
holography ``drift_y``/``drift_x``) report ``-shift`` and say so.

References
----------
M. Guizar-Sicairos, S.T. Thurman, J.R. Fienup, Opt. Lett. 33, 156 (2008).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import scipy.fft

from ionscope.errors import DimensionError, InputError
from ionscope.validation import Interval, Options, validate_params

__all__ = [
    "dft_correlation",
    "translation_from_spectra",
    "translation_1d",
    "polish_translation",
    "register_translation",
    "shift_image",
]


def _signed(index: np.ndarray | int, n: int) -> np.ndarray | float:
    """FFT index -> signed shift (``index - n`` above ``n // 2``)."""
    index = np.asarray(index, dtype=np.float64)
    return np.where(index > n // 2, index - n, index)


def dft_correlation(X: np.ndarray, ky: np.ndarray, kx: np.ndarray, shape: tuple[int, int],
                    sy: np.ndarray, sx: np.ndarray) -> np.ndarray:
    """Complex cross-correlation ``sum_k X(k) exp(2 pi i k.s / N)`` for the shifts
    ``s = (sy[i], sx[j])`` (px), where the cross-power values ``X`` sit at the integer
    frequencies ``ky`` (rows) x ``kx`` (columns) of an image of ``shape``: two matrix products."""
    Ey = np.exp(2j * np.pi * np.outer(sy, ky) / shape[0])
    Ex = np.exp(2j * np.pi * np.outer(kx, sx) / shape[1])
    return Ey @ X @ Ex


def translation_from_spectra(fixed_f: np.ndarray, moving_f: np.ndarray, *, weights: np.ndarray | None = None,
                             upsample: int = 20) -> tuple[float, float]:
    """Shift (dy, dx) in px registering an image onto another, from their full 2-D FFTs.

    Parameters
    ----------
    fixed_f, moving_f : numpy.ndarray
        ``fft2`` of the fixed and the moving image (same shape).
    weights : numpy.ndarray, optional
        Real weights on the FFT grid (e.g. a low-pass); zero entries are skipped.
    upsample : int
        Refinement factor: the result is exact to about ``1 / upsample`` px (1: whole pixels).

    Returns
    -------
    tuple of float
        The shift to apply to the moving image (module docstring).
    """
    if fixed_f.shape != moving_f.shape:
        raise DimensionError(f"images differ in shape: {fixed_f.shape} vs {moving_f.shape}")
    X = fixed_f * np.conj(moving_f)
    if weights is not None:
        X = X * weights
    cc = scipy.fft.ifft2(X, workers=-1).real
    iy, ix = np.unravel_index(int(np.argmax(cc)), cc.shape)
    ny, nx = cc.shape
    coarse = (float(_signed(iy, ny)), float(_signed(ix, nx)))
    if upsample <= 1:
        return coarse
    size = int(math.ceil(1.5 * upsample)) | 1  # odd, covers +/- 0.75 px
    rows = np.flatnonzero(np.any(X != 0, axis=1))
    cols = np.flatnonzero(np.any(X != 0, axis=0))
    if rows.size == 0 or cols.size == 0:
        return coarse
    offs = (np.arange(size) - size // 2) / upsample
    fine = dft_correlation(X[np.ix_(rows, cols)], np.fft.fftfreq(ny, 1.0 / ny)[rows],
                           np.fft.fftfreq(nx, 1.0 / nx)[cols], (ny, nx),
                           coarse[0] + offs, coarse[1] + offs).real
    jy, jx = np.unravel_index(int(np.argmax(fine)), fine.shape)
    return (float(coarse[0] + offs[jy]), float(coarse[1] + offs[jx]))


def translation_1d(fixed: np.ndarray, moving: np.ndarray, *, upsample: int = 20) -> np.ndarray:
    """Shifts (samples) registering each of many 1-D signals onto a fixed one, vectorised.

    The signals are zero-padded to twice their length (a linear, not circular, correlation);
    the peak is refined on a ``1/upsample`` grid over +-1 sample with one complex matrix
    product for all signals, then by a parabola through the best three grid points.

    Parameters
    ----------
    fixed : numpy.ndarray, shape (M,) or (N, M)
        The fixed signal (broadcast against ``moving``).
    moving : numpy.ndarray, shape (N, M)
        The moving signals.
    upsample : int
        Sub-sample grid of the peak search.

    Returns
    -------
    numpy.ndarray, shape (N,)
        The shift to apply to each moving signal (module docstring); NaN where the
        correlation has no peak (a signal that is all zero).
    """
    moving = np.atleast_2d(np.asarray(moving, dtype=np.float64))
    fixed = np.atleast_2d(np.asarray(fixed, dtype=np.float64))
    m = 2 * moving.shape[-1]
    X = scipy.fft.fft(fixed, n=m, axis=-1) * np.conj(scipy.fft.fft(moving, n=m, axis=-1))
    coarse = _signed(np.argmax(scipy.fft.ifft(X, axis=-1).real, axis=-1), m)
    k = np.rint(scipy.fft.fftfreq(m, 1.0 / m)).astype(np.int64)
    roots = np.exp(2j * np.pi * np.arange(m) / m)
    half = int(upsample) + 1
    offsets = np.arange(-half, half + 1) / int(upsample)
    centred = X * roots[np.outer(coarse.astype(np.int64), k) % m]
    corr = (centred @ np.exp(2j * np.pi * np.outer(k, offsets) / m)).real
    j = np.clip(np.argmax(corr, axis=-1), 1, offsets.size - 2)
    rows = np.arange(corr.shape[0])
    c0, c1, c2 = corr[rows, j - 1], corr[rows, j], corr[rows, j + 1]
    denom = c0 - 2 * c1 + c2
    with np.errstate(divide="ignore", invalid="ignore"):
        frac = np.where(denom < 0, 0.5 * (c0 - c2) / denom, 0.0)
    return coarse + (offsets[j] + np.clip(frac, -1, 1) / int(upsample))


def polish_translation(fixed: np.ndarray, moving: np.ndarray, shift: Sequence[float], *,
                       iterations: int = 30, tol: float = 1e-5) -> tuple[float, float]:
    """Gauss-Newton refinement of a 2-D shift: least squares of ``fixed - (g * moved + c)`` on
    the image gradients, with a gain ``g`` and an offset ``c`` between the images, over the
    pixels the shift does not expose (cubic-spline shifts, nearest-value borders)."""
    from scipy.ndimage import shift as nd_shift

    a = np.asarray(fixed, dtype=np.float64)
    b = np.asarray(moving, dtype=np.float64)
    d = np.asarray(shift, dtype=np.float64).copy()
    ny, nx = a.shape
    for _ in range(int(iterations)):
        m = nd_shift(b, d, order=3, mode="nearest")
        margin = int(np.ceil(np.max(np.abs(d)))) + 3
        inner = (slice(margin, ny - margin), slice(margin, nx - margin))
        gy, gx = np.gradient(m)
        cols = np.stack([-gy[inner].ravel(), -gx[inner].ravel(), m[inner].ravel(), np.ones(m[inner].size)], axis=1)
        step = np.linalg.lstsq(cols, (a - m)[inner].ravel(), rcond=None)[0]
        d = d + step[:2]
        if np.max(np.abs(step[:2])) < tol:
            break
    return float(d[0]), float(d[1])


@validate_params({"upsample": [Interval(int, 1, None)], "polish": [bool]})
def register_translation(fixed: np.ndarray, moving: np.ndarray, *, upsample: int = 20,
                         polish: bool = False) -> tuple[float, ...]:
    """Shift registering ``moving`` onto ``fixed`` (1-D signals or 2-D images, px).

    Parameters
    ----------
    fixed, moving : array_like
        Two signals of the same shape (1-D or 2-D); NaN counts as 0. Their means are removed.
    upsample : int
        Sub-pixel grid of the correlation peak (``1/upsample`` px).
    polish : bool
        2-D only: refine by Gauss-Newton least squares on the images with a gain and an offset
        (:func:`polish_translation`), starting from the whole-pixel peak; reaches a small
        fraction of a pixel on smooth images where the correlation peak is biased.

    Returns
    -------
    tuple of float
        The shift to apply to ``moving`` (module docstring: ``registered(r) = moving(r - shift)``).

    Examples
    --------
    >>> y, x = np.mgrid[:64, :64]
    >>> blob = lambda cy, cx: np.exp(-((y - cy) ** 2 + (x - cx) ** 2) / 50.0)
    >>> [round(v, 2) for v in register_translation(blob(30, 30), blob(32.5, 29))]
    [-2.5, 1.0]
    """
    a = np.nan_to_num(np.asarray(fixed, dtype=np.float64))
    b = np.nan_to_num(np.asarray(moving, dtype=np.float64))
    if a.shape != b.shape or a.ndim not in (1, 2) or a.size == 0:
        raise InputError(f"register_translation needs two non-empty 1-D or 2-D signals of one shape, "
                         f"got {a.shape} and {b.shape}")
    a, b = a - a.mean(), b - b.mean()
    if a.ndim == 1:
        if polish:
            raise InputError("polish is for 2-D images")
        return (float(translation_1d(a, b[None], upsample=upsample)[0]),)
    fa, fb = scipy.fft.fft2(a, workers=-1), scipy.fft.fft2(b, workers=-1)
    if polish:
        start = translation_from_spectra(fa, fb, upsample=1)
        return polish_translation(a, b, start)
    return translation_from_spectra(fa, fb, upsample=upsample)


@validate_params({"method": [Options({"fourier", "spline"})]})
def shift_image(image: np.ndarray, shift: Sequence[float], *, method: str = "fourier") -> np.ndarray:
    """Translate a real 2-D image by ``shift`` (px, sub-pixel): ``out(r) = image(r - shift)``.

    Parameters
    ----------
    image : numpy.ndarray
        The image (y, x).
    shift : (float, float)
        The shift (module docstring), e.g. from :func:`register_translation`.
    method : {"fourier", "spline"}
        A phase ramp on the spectrum (exact for band-limited images; periodic borders: the
        ``ceil(|shift|)`` pixels at the borders wrap around) or a cubic spline (nearest-value
        borders; ``scipy.ndimage.shift(order=3, mode="nearest")``).

    Returns
    -------
    numpy.ndarray
        The shifted image, float (the input's float dtype for the Fourier method).
    """
    image = np.asarray(image)
    if method == "spline":
        from scipy.ndimage import shift as nd_shift

        return nd_shift(image.astype(np.float64), tuple(float(s) for s in shift), order=3, mode="nearest")
    ny, nx = image.shape
    F = scipy.fft.rfft2(image, workers=-1)
    ey = np.exp(-2j * np.pi * np.fft.fftfreq(ny) * shift[0])
    ex = np.exp(-2j * np.pi * np.fft.rfftfreq(nx) * shift[1])
    F *= ey[:, None].astype(F.dtype)
    F *= ex[None, :].astype(F.dtype)
    return scipy.fft.irfft2(F, s=(ny, nx), workers=-1).astype(image.dtype if image.dtype.kind == "f" else np.float64,
                                                               copy=False)
