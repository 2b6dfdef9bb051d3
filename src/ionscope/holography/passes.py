r"""Single-pass loops for the memory-bound steps of the Fourier (sideband) reconstruction.

A 2048 x 2048 hologram reconstructs in about two FFTs; everything else the reconstruction does
to whole images - apodising, the spectrum's power for the sideband search, the hologram's mean
and variance, the carrier ramp on the output wave - is a streaming pass that numpy would split
into several passes with temporaries. Each loop here reads (and writes) its arrays once,
accumulating in float64. Compiled with numba on first use and cached on disk (``cache=True``);
the functions release the GIL.
"""

from __future__ import annotations

import numba
import numpy as np

#: Reassociation lets LLVM vectorise the float64 reductions; no other fast-math liberties.
_FASTMATH = {"reassoc", "contract"}


@numba.njit(nogil=True, cache=True)
def apodised(image, wy, wx):  # pragma: no cover - compiled
    """``image * wy[:, None] * wx[None, :]`` as float32 (a separable window), one pass."""
    ny, nx = image.shape
    out = np.empty((ny, nx), dtype=np.float32)
    for i in range(ny):
        a = wy[i]
        for j in range(nx):
            out[i, j] = image[i, j] * a * wx[j]
    return out


@numba.njit(nogil=True, fastmath=_FASTMATH, cache=True)
def mean_and_std(image):  # pragma: no cover - compiled
    """Mean and (population) standard deviation of a 2-D array in one pass: float64 sums of
    ``x - c`` and ``(x - c)**2`` about the first row's mean ``c`` (no cancellation when the
    mean is far from zero)."""
    ny, nx = image.shape
    c = 0.0
    for j in range(nx):
        c += image[0, j]
    c /= nx
    s = 0.0
    q = 0.0
    for i in range(ny):
        rs = 0.0
        rq = 0.0
        for j in range(nx):
            d = image[i, j] - c
            rs += d
            rq += d * d
        s += rs
        q += rq
    n = ny * nx
    m = s / n
    return c + m, np.sqrt(max(q / n - m * m, 0.0))


@numba.njit(nogil=True, cache=True)
def power_minus_leak(R, ly, lx):  # pragma: no cover - compiled
    """``|R - ly[:, None] * lx[None, :]|**2`` as float32: the spectrum's power without the
    window's leakage of the mean intensity (an outer product), one pass."""
    ny, nx = R.shape
    out = np.empty((ny, nx), dtype=np.float32)
    for i in range(ny):
        a = ly[i]
        for j in range(nx):
            z = R[i, j] - a * lx[j]
            out[i, j] = z.real * z.real + z.imag * z.imag
    return out


@numba.njit(nogil=True, cache=True)
def scale_outer(wave, ey, ex):  # pragma: no cover - compiled
    """``wave *= ey[:, None] * ex[None, :]`` in place (complex), one pass."""
    ny, nx = wave.shape
    for i in range(ny):
        a = ey[i]
        for j in range(nx):
            wave[i, j] *= a * ex[j]


__all__ = ["apodised", "mean_and_std", "power_minus_leak", "scale_outer"]
