r"""Sub-pixel image registration for hologram stacks (drift between phase-shifting frames).

Hologram frames are registered through their complex sideband waves (:func:`register_waves`):
the magnitude of the cross-correlation of two sideband waves peaks at the specimen displacement
whatever the fringe shift between the frames, whereas the intensities' centre bands are not
safe - wherever the specimen has an abrupt edge the fringe term leaks into the centre band with
a pattern that changes with the fringe shift. The waves' gradients are correlated, not the
waves: a phase or amplitude step reaches the field borders, and the fixed border (where the
periodic continuation puts a second, unmoving step) would bias the estimate towards zero shift.
Plain images use :func:`register_spectra`.

The shift between two images is the peak of their cross-correlation, computed from the cross
power spectrum :math:`X = F_\mathrm{ref} \bar F_\mathrm{mov}` (optionally weighted, e.g. a
low-pass that keeps only the centre band of a hologram so the moving fringes cannot pull the
estimate), first on the pixel grid by an inverse FFT, then refined on a grid ``1/upsample`` px
fine within 1.5 px of the coarse peak by a matrix-multiply DFT restricted to the non-zero part
of ``X`` (Guizar-Sicairos, Thurman & Fienup 2008).

The cross-correlation, its sub-pixel refinement and the shift of an image are
:mod:`ionscope.register`'s, with its one sign convention (as scikit-image's
``phase_cross_correlation``): the returned ``shift`` is the translation to apply to the moving
image to register it onto the reference; if the specimen moved by ``d`` between the frames,
``shift = -d``. :func:`~ionscope.register.shift_image` applies a shift by multiplying the
spectrum with a phase ramp (periodic boundaries: the ``ceil(|shift|)`` pixels at the borders wrap
around).

References
----------
M. Guizar-Sicairos, S.T. Thurman, J.R. Fienup, Opt. Lett. 33, 156 (2008).
"""

from __future__ import annotations

import math

import numpy as np
import scipy.fft

from ionscope.errors import DimensionError
from ionscope.register.translation import dft_correlation, shift_image, translation_from_spectra


def register_spectra(ref_f: np.ndarray, mov_f: np.ndarray, *, weights: np.ndarray | None = None,
                     upsample: int = 20) -> tuple[float, float]:
    """Shift (dy, dx) in px registering ``mov`` onto ``ref`` from their full 2-D FFTs
    (:func:`ionscope.register.translation_from_spectra`, kept under its holography name)."""
    return translation_from_spectra(ref_f, mov_f, weights=weights, upsample=upsample)


def correlation_on_grid(X: np.ndarray, ky: np.ndarray, kx: np.ndarray, shape: tuple[int, int],
                        sy: np.ndarray, sx: np.ndarray) -> np.ndarray:
    """``|sum_k X(k) exp(2 pi i k.s / N)|``: the magnitude of the cross-correlation of two
    complex waves (:func:`ionscope.register.dft_correlation`)."""
    return np.abs(dft_correlation(X, ky, kx, shape, sy, sx))


def register_waves(
    ref_boxes: list[np.ndarray],
    mov_boxes: list[np.ndarray],
    ky: np.ndarray,
    kx: np.ndarray,
    shape: tuple[int, int],
    *,
    max_shift: float,
    upsample: int = 20,
) -> tuple[float, float]:
    """Shift registering two complex waves given by spectra on a box of frequencies.

    ``ref_boxes`` / ``mov_boxes`` are lists of components (e.g. the two gradient components
    of :func:`wave_gradient_spectra`) whose cross powers are summed; ``ky, kx`` are their
    integer frequencies. The magnitude of the cross-correlation ignores the global phase, so a
    fringe shift between hologram frames does not matter, only the specimen's displacement.
    Searched on the integer grid within ``max_shift`` px, then refined on a ``1/upsample``
    grid.
    """
    X = sum(r * np.conj(m) for r, m in zip(ref_boxes, mov_boxes))
    m = int(math.ceil(max_shift))
    grid = np.arange(-m, m + 1, dtype=float)
    coarse = correlation_on_grid(X, ky, kx, shape, grid, grid)
    iy, ix = np.unravel_index(int(np.argmax(coarse)), coarse.shape)
    centre = (grid[iy], grid[ix])
    size = int(math.ceil(2.0 * upsample)) | 1  # +/- 1 px
    offs = (np.arange(size) - size // 2) / upsample
    fine = correlation_on_grid(X, ky, kx, shape, centre[0] + offs, centre[1] + offs)
    jy, jx = np.unravel_index(int(np.argmax(fine)), fine.shape)
    return centre[0] + offs[jy], centre[1] + offs[jx]


def wave_gradient_spectra(box: np.ndarray, taper_fraction: float = 0.125) -> list[np.ndarray]:
    """Spectra of the tapered gradient components of the wave whose centred spectrum is
    ``box`` (odd sizes, zero frequency in the middle).

    The wave is formed on the box's own coarse grid, differentiated there without periodic
    wrap (``numpy.gradient``), tapered (Tukey, ``taper_fraction`` of the size per side) and
    transformed back. Edges and phase steps become localised ridges and the plateaus drop out,
    so the fixed field borders (where the periodic continuation of a step would sit) do not pull
    the registration towards zero shift.
    """
    from ionscope.holography.sideband import taper_profile

    wave = scipy.fft.ifft2(scipy.fft.ifftshift(box))
    my, mx = wave.shape
    window = np.outer(taper_profile(my, taper_fraction * my), taper_profile(mx, taper_fraction * mx))
    return [scipy.fft.fftshift(scipy.fft.fft2(g * window)) for g in np.gradient(wave)]


def lowpass_disc(shape: tuple[int, int], radius_px: float) -> np.ndarray:
    """Weights 1 inside a disc of ``radius_px`` FFT pixels around the origin (cosine edge of
    2 px), on the unshifted FFT grid; the zero frequency is removed."""
    ky = np.fft.fftfreq(shape[0], 1.0 / shape[0])[:, None]
    kx = np.fft.fftfreq(shape[1], 1.0 / shape[1])[None, :]
    r = np.hypot(ky, kx)
    w = 0.5 * (1 + np.cos(np.pi * np.clip((r - radius_px + 1.0) / 2.0, 0, 1)))
    w[0, 0] = 0.0
    return w


def align_frames(
    frames: np.ndarray,
    *,
    reference: int = 0,
    sideband: tuple[float, float] | None = None,
    radius_px: float | None = None,
    lowpass_px: float | None = None,
    upsample: int = 20,
    taper: float = 0.0,
    max_shift: float | None = None,
    refine: int = 2,
) -> tuple[np.ndarray, np.ndarray]:
    """Register every frame of a stack onto one frame and shift it there.

    Parameters
    ----------
    frames : numpy.ndarray
        Stack (n, y, x).
    reference : int
        Index of the frame the others are registered to.
    sideband : (ky, kx), optional
        Signed sideband position (FFT px) of hologram frames: registration then uses the
        gradients of the complex sideband waves (:func:`wave_gradient_spectra`,
        :func:`register_waves`, aperture ``radius_px``), which carry the specimen's phase and
        amplitude and are blind to the fringe shift between frames.
        Without it the intensities are registered (:func:`register_spectra`, with the
        low-pass ``lowpass_px``) - for images without fringes.
    radius_px : float, optional
        Sideband aperture radius (FFT px); default a third of the carrier distance.
    lowpass_px : float, optional
        Low-pass radius (FFT px) for intensity registration.
    upsample : int
        Sub-pixel refinement factor.
    taper : float
        Tukey taper width (px) applied before the FFT used for registration (not to the
        shifted output).
    max_shift : float, optional
        Largest shift searched in sideband mode (px); default 1/16 of the smaller size.
    refine : int
        Sideband mode: re-register each frame against the reference frame shifted onto it
        (up to ``refine`` times). The field borders and the taper window are fixed while the
        specimen moves, which biases a single registration towards zero shift by a few per
        cent of the drift; against the shifted reference only the residual is biased.

    Returns
    -------
    aligned : numpy.ndarray
        The shifted stack (same dtype).
    shifts : numpy.ndarray
        (n, 2) shifts applied (px); the specimen displacement is ``-shifts``.
    """
    from ionscope.holography.sideband import gather_full, taper_profile

    frames = np.asarray(frames)
    if frames.ndim != 3:
        raise DimensionError(f"frames must be a 3-D stack (n, y, x), got shape {frames.shape}")
    n, ny, nx = frames.shape
    wy = taper_profile(ny, taper).astype(np.float32)
    wx = taper_profile(nx, taper).astype(np.float32)
    shifts = np.zeros((n, 2))
    if sideband is not None:
        cy, cx = int(round(sideband[0])), int(round(sideband[1]))
        radius = radius_px if radius_px is not None else math.hypot(*sideband) / 3.0
        h = int(math.ceil(radius))
        off = np.arange(-h, h + 1)
        disc = (off[:, None] ** 2 + off[None, :] ** 2) <= radius**2
        limit = max_shift if max_shift is not None else min(ny, nx) / 16.0

        def box(img):
            R = scipy.fft.rfft2(img.astype(np.float32) * wy[:, None] * wx[None, :], workers=-1)
            sb = gather_full(R, (ny, nx), (cy + off)[:, None], (cx + off)[None, :]) * disc
            return wave_gradient_spectra(sb)

        ref_box = box(frames[reference])
        for i in range(n):
            if i == reference:
                continue
            mov_box = box(frames[i])
            shifts[i] = register_waves(ref_box, mov_box, off, off, (ny, nx),
                                       max_shift=limit, upsample=upsample)
            for _ in range(refine):
                # the reference moved onto frame i: both share the fixed field borders and
                # window, so what the borders pull on is only the (small) residual
                template = box(shift_image(frames[reference], tuple(-shifts[i])))
                residual = register_waves(template, mov_box, off, off, (ny, nx),
                                          max_shift=2.0, upsample=upsample)
                shifts[i] += residual
                if max(abs(residual[0]), abs(residual[1])) < 1.0 / upsample:
                    break
    else:
        window = wy[:, None] * wx[None, :]
        weights = None if lowpass_px is None else lowpass_disc((ny, nx), lowpass_px)

        def spectrum(img):
            img = img.astype(np.float32) * window
            return scipy.fft.fft2(img - img.mean(), workers=-1)

        ref_f = spectrum(frames[reference])
        for i in range(n):
            if i != reference:
                shifts[i] = register_spectra(ref_f, spectrum(frames[i]), weights=weights,
                                             upsample=upsample)
    aligned = np.empty_like(frames)
    for i in range(n):
        aligned[i] = frames[i] if not shifts[i].any() else shift_image(frames[i], tuple(shifts[i]))
    return aligned, shifts


__all__ = [
    "register_spectra",
    "register_waves",
    "wave_gradient_spectra",
    "correlation_on_grid",
    "shift_image",
    "lowpass_disc",
    "align_frames",
]
