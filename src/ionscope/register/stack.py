r"""Registration of an image stack onto one of its images: KPFM frames drifting between scans,
TOF-SIMS states between which the stage moved.

Between frames the stage and the piezo drift by a few pixels; every frame is registered onto the
first by a sub-pixel translation and resampled onto its grid, and the pixels a frame does not
cover become NaN.

The translation is measured on **edge maps** (:func:`edge_map_kernel`: the gradient magnitude of a
slightly smoothed image) with a Tukey window, by the cross-correlation's peak on the pixel grid
and its matrix-multiply DFT refinement (:func:`ionscope.register.dft_correlation`; Guizar-Sicairos
et al. 2008) on two nested sub-pixel grids, restricted to the frequencies the smoothed edge maps
hold (:func:`frame_shifts_kernel`):

- edges stay where the particles are when the potential changes between frames - an active
  particle can go from darker to brighter than its surroundings, which turns a correlation of the
  potential itself against the right shift;
- the window removes the field borders, where the periodic continuation of the FFT would put a
  fixed step (the collector on one side, the electrolyte on the other) that pulls towards zero.

The topography (static during operation) is the better image when the frames have one; the
potential works too.

The shift follows :mod:`ionscope.register`'s convention (as scikit-image's
``phase_cross_correlation``): it is the translation to apply to the frame,
``registered(r) = frame(r - shift)``; the specimen drifted by ``-shift``. It is applied by a
Fourier phase ramp on a reflect-padded frame (:func:`shift_frame_kernel`): exact for band-limited
data and noise-preserving (an interpolating spline would smooth the noise), without the wrap-
around of a periodic shift.

References
----------
M. Guizar-Sicairos, S.T. Thurman, J.R. Fienup, Opt. Lett. 33, 156 (2008).
"""

from __future__ import annotations

import math

import numpy as np
import scipy.fft
import scipy.ndimage as ndi

from ionscope.errors import DimensionError
from ionscope.register.translation import dft_correlation

__all__ = [
    "tukey_window",
    "edge_map_kernel",
    "frame_shifts_kernel",
    "shift_frame_kernel",
    "covered_kernel",
]


def tukey_window(n: int, fraction: float = 0.1) -> np.ndarray:
    """A Tukey (tapered cosine) window of ``n`` samples, ``fraction`` of them tapered at each end."""
    w = np.ones(int(n))
    m = int(round(fraction * n))
    if m > 0:
        ramp = 0.5 * (1 - np.cos(np.pi * (np.arange(m) + 0.5) / m))
        w[:m] = ramp
        w[n - m:] = ramp[::-1]
    return w


def edge_map_kernel(image: np.ndarray, sigma_px: float = 1.0) -> np.ndarray:
    """Gradient magnitude (float32) of a Gaussian-smoothed image (NaN pixels filled with the
    median of the others)."""
    v = np.asarray(image, dtype=np.float32)
    bad = ~np.isfinite(v)
    if bad.any():
        v = np.where(bad, np.float32(np.median(v[~bad])) if (~bad).any() else np.float32(0), v)
    sm = ndi.gaussian_filter(v, sigma_px, mode="nearest") if sigma_px > 0 else v
    gy, gx = np.gradient(sm)
    return np.hypot(gy, gx)


def _lowpass_rows_cols(shape: tuple[int, int], cutoff: float) -> tuple[np.ndarray, np.ndarray]:
    """FFT rows and columns whose frequency is below ``cutoff`` (cycles/px)."""
    ky = np.abs(scipy.fft.fftfreq(shape[0]))
    kx = np.abs(scipy.fft.fftfreq(shape[1]))
    return np.flatnonzero(ky <= cutoff), np.flatnonzero(kx <= cutoff)


def _refine(X: np.ndarray, rows: np.ndarray, cols: np.ndarray, shape: tuple[int, int], coarse: tuple[float, float],
            upsample: int) -> tuple[tuple[float, float], float]:
    """Sub-pixel peak of the cross-correlation ``X`` (restricted to ``rows`` x ``cols`` of the
    FFT grid) near ``coarse``: matrix-multiply DFTs on two nested grids (1/8 px over +-1 px,
    then 1/upsample px over +-1/8 px). Returns the shift and the correlation's value there."""
    ny, nx = shape
    ky = scipy.fft.fftfreq(ny, 1.0 / ny)[rows]
    kx = scipy.fft.fftfreq(nx, 1.0 / nx)[cols]
    Xs = X[np.ix_(rows, cols)]
    centre = np.asarray(coarse, dtype=np.float64)
    value = np.nan
    for step, half in ((1.0 / 8, 1.0), (1.0 / max(int(upsample), 8), 1.0 / 8)):
        offs = np.arange(-half, half + 0.5 * step, step)
        cc = dft_correlation(Xs, ky, kx, shape, centre[0] + offs, centre[1] + offs).real
        jy, jx = np.unravel_index(int(np.argmax(cc)), cc.shape)
        centre = centre + np.array([offs[jy], offs[jx]])
        value = float(cc[jy, jx])
    return (float(centre[0]), float(centre[1])), value


def frame_shifts_kernel(stack: np.ndarray, *, sigma_px: float = 1.0, upsample: int = 50, taper: float = 0.1,
                        reference: int = 0, cutoff: float = 0.35, mask: np.ndarray | None = None
                        ) -> tuple[np.ndarray, np.ndarray]:
    """Shifts (px) registering every image of a stack onto one of them, and how well they match.

    Parameters
    ----------
    stack : numpy.ndarray (n, y, x)
        Images (levelled topography or referenced potential).
    sigma_px : float
        Smoothing of the edge maps (px).
    upsample : int
        Sub-pixel grid of the correlation peak (``1 / upsample`` px).
    taper : float
        Fraction of each side tapered by the Tukey window.
    reference : int
        The image the others are registered onto (its shift is 0).
    cutoff : float
        Frequencies (cycles/px) above this are left out of the sub-pixel refinement (the
        smoothed edge maps hold almost nothing there).
    mask : numpy.ndarray of bool (y, x), optional
        Pixels of the reference's grid the match is computed over (e.g. away from an edge that
        every field of view of the specimen shares); default all.

    Returns
    -------
    shifts : numpy.ndarray (n, 2)
        The shift (dy, dx) to apply to each image (module docstring).
    match : numpy.ndarray (n,)
        Normalised cross-correlation (-1..1) of each windowed edge map, shifted, with the
        reference's, over ``mask`` and the pixels it covers: about 0 for a frame of another
        field of view (1 for the reference).
    """
    stack = np.asarray(stack)
    if stack.ndim != 3:
        raise DimensionError(f"the stack must be (n, y, x), got shape {stack.shape}")
    n, ny, nx = stack.shape
    window = (tukey_window(ny, taper)[:, None] * tukey_window(nx, taper)[None, :]).astype(np.float32)

    def spectrum(image):
        e = edge_map_kernel(image, sigma_px)
        e = (e - e.mean()) * window
        return scipy.fft.fft2(e, workers=-1), e  # complex64 for the float32 edge map

    fixed, fixed_edges = spectrum(stack[reference])
    region = np.ones((ny, nx), bool) if mask is None else np.asarray(mask, dtype=bool)
    m = int(math.ceil(3 * sigma_px)) + 1
    region[:m], region[-m:], region[:, :m], region[:, -m:] = False, False, False, False
    fy = scipy.fft.fftfreq(ny)
    fx = scipy.fft.fftfreq(nx)
    rows, cols = _lowpass_rows_cols((ny, nx), cutoff)
    shifts = np.zeros((n, 2))
    match = np.ones(n)
    for i in range(n):
        if i == reference:
            continue
        moving, _ = spectrum(stack[i])
        X = fixed * np.conj(moving)
        cc = scipy.fft.ifft2(X, workers=-1).real
        iy, ix = np.unravel_index(int(np.argmax(cc)), cc.shape)
        coarse = (float(iy - ny if iy > ny // 2 else iy), float(ix - nx if ix > nx // 2 else ix))
        shifts[i], _ = _refine(X, rows, cols, (ny, nx), coarse, upsample)
        # the moving edge map on the reference's grid (a periodic shift: the wrapped border is
        # not covered, and not counted)
        moving *= np.exp(-2j * np.pi * fy * shifts[i, 0]).astype(moving.dtype)[:, None]
        moving *= np.exp(-2j * np.pi * fx * shifts[i, 1]).astype(moving.dtype)[None, :]
        moved = scipy.fft.ifft2(moving, workers=-1).real
        ok = region & covered_kernel((ny, nx), shifts[i])
        a = fixed_edges[ok].astype(np.float64)
        b = moved[ok]
        a, b = a - a.mean(), b - b.mean()
        den = float(np.sqrt(np.sum(a * a) * np.sum(b * b)))
        match[i] = float(np.sum(a * b) / den) if den > 0 else np.nan
    return shifts, match


def covered_kernel(shape, shift) -> np.ndarray:
    """Pixels of the fixed grid that a frame shifted by ``shift`` covers (bool (y, x)):
    ``r - shift`` lies within the frame's samples."""
    ny, nx = int(shape[0]), int(shape[1])
    sy, sx = float(shift[0]), float(shift[1])
    ry = np.arange(ny) - sy
    rx = np.arange(nx) - sx
    eps = 1e-6
    oky = (ry >= -eps) & (ry <= ny - 1 + eps)
    okx = (rx >= -eps) & (rx <= nx - 1 + eps)
    return oky[:, None] & okx[None, :]


def shift_frame_kernel(image: np.ndarray, shift, *, fill: float = np.nan) -> np.ndarray:
    """Translate an image by ``shift`` (px): ``out(r) = image(r - shift)``, by a Fourier phase ramp
    on a reflect-padded copy; pixels not covered by the image get ``fill``.

    Parameters
    ----------
    image : numpy.ndarray (y, x)
        The frame (NaN pixels stay NaN, spread by the interpolation's reach of one pixel).
    shift : (float, float)
        The shift (dy, dx) in px.
    fill : float
        Value of the uncovered pixels.

    Returns
    -------
    numpy.ndarray
        The shifted image (float32 for float32 input, else float64).
    """
    v = np.asarray(image)
    dtype = np.float32 if v.dtype == np.float32 else np.float64
    sy, sx = float(shift[0]), float(shift[1])
    if sy == 0 and sx == 0:
        return v.astype(dtype, copy=True)
    ny, nx = v.shape
    bad = ~np.isfinite(v)
    work = v
    if bad.any():
        work = np.where(bad, float(np.median(v[~bad])) if (~bad).any() else 0.0, v)
    py = min(ny - 1, int(math.ceil(abs(sy))) + 8)
    px = min(nx - 1, int(math.ceil(abs(sx))) + 8)
    # pad further (at the end) to lengths the FFT is fast at
    ey_extra = min(ny - 1, scipy.fft.next_fast_len(ny + 2 * py, real=True) - ny - py) - py
    ex_extra = min(nx - 1, scipy.fft.next_fast_len(nx + 2 * px, real=True) - nx - px) - px
    padded = np.pad(work.astype(dtype, copy=False), ((py, py + max(ey_extra, 0)), (px, px + max(ex_extra, 0))),
                    mode="reflect")
    my, mx = padded.shape
    F = scipy.fft.rfft2(padded, workers=-1)
    ey = np.exp(-2j * np.pi * scipy.fft.fftfreq(my) * sy).astype(F.dtype)
    ex = np.exp(-2j * np.pi * scipy.fft.rfftfreq(mx) * sx).astype(F.dtype)
    F *= ey[:, None]
    F *= ex[None, :]
    out = scipy.fft.irfft2(F, s=(my, mx), workers=-1)[py:py + ny, px:px + nx].astype(dtype, copy=False)
    out[~covered_kernel((ny, nx), (sy, sx))] = fill
    if bad.any():
        moved = ndi.shift(bad.astype(np.float32), (sy, sx), order=1, mode="constant", cval=0.0) > 1e-3
        out[moved] = np.nan
    return out
