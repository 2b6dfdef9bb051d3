r"""The KPFM scan of the ``composite_cathode`` twin: its point-spread function and scan geometry.

The PSF (a Gaussian core plus a Gaussian long-range tail: :func:`psf_transfer`,
:func:`psf_kernel`, :func:`psf_edge_response`), the fine grid it is applied on
(``_supersample``), fine-grid fields blurred by it and sampled on drifted pixel grids by cubic
B-spline interpolation (``_Blurred``), and the scan geometry: every row's recording time
(:func:`row_times`), the alternating up/down frames (:func:`scan_directions`) and the per-frame
drift (``_drift``). The forward model is described in :mod:`ionscope.simulate.composite_cathode`
(which re-exports every public name here).
"""

from __future__ import annotations

import math

import numpy as np
import scipy.fft
from scipy import ndimage

from ionscope.simulate.composite_cathode_params import CompositeCathodeParams

_MAX_SUPERSAMPLE = 8


# --------------------------------------------------------------------------- the PSF


def psf_transfer(freq_y: np.ndarray, freq_x: np.ndarray, sigma_nm: float, tail_fraction: float,
                 tail_sigma_nm: float) -> np.ndarray:
    """Fourier transform of the KPFM PSF ``(1 - a) G(sigma) + a G(sigma_tail)`` at spatial
    frequencies (cycles/nm; broadcast), normalised to 1 at zero frequency."""
    f2 = np.asarray(freq_y) ** 2 + np.asarray(freq_x) ** 2
    return ((1.0 - tail_fraction) * np.exp(-2.0 * np.pi**2 * sigma_nm**2 * f2)
            + tail_fraction * np.exp(-2.0 * np.pi**2 * tail_sigma_nm**2 * f2))


def psf_kernel(pixel_nm: float, radius_px: int, sigma_nm: float, tail_fraction: float,
               tail_sigma_nm: float) -> np.ndarray:
    """The PSF sampled on a ``(2 radius_px + 1)``-square pixel grid, normalised to sum 1
    (each Gaussian normalised on the grid separately)."""
    r = np.arange(-radius_px, radius_px + 1) * pixel_nm
    r2 = r[:, None] ** 2 + r[None, :] ** 2
    core = np.exp(-0.5 * r2 / sigma_nm**2)
    tail = np.exp(-0.5 * r2 / tail_sigma_nm**2)
    return (1.0 - tail_fraction) * core / core.sum() + tail_fraction * tail / tail.sum()


def psf_edge_response(x_nm: np.ndarray, sigma_nm: float, tail_fraction: float, tail_sigma_nm: float) -> np.ndarray:
    """Response (0..1) of the PSF to a straight unit step at ``x = 0`` (edge spread function):
    ``(1 - a) Phi(x / sigma) + a Phi(x / sigma_tail)``."""
    from scipy.special import ndtr

    x = np.asarray(x_nm, dtype=np.float64)
    return (1.0 - tail_fraction) * ndtr(x / sigma_nm) + tail_fraction * ndtr(x / tail_sigma_nm)


def _supersample(p: CompositeCathodeParams) -> int:
    return int(min(max(math.ceil(1.2 * p.pixel_nm / p.psf_sigma_nm - 1e-9), 1), _MAX_SUPERSAMPLE))


class _Blurred:
    """A fine-grid field (optionally only its ``window`` ``(y0, y1, x0, x1)`` of fine indices,
    zero outside) blurred by a transfer function and turned into cubic B-spline coefficients,
    sampled on drifted pixel grids."""

    def __init__(self, field: np.ndarray, transfer, pad: int, window: tuple[int, int, int, int] | None = None):
        ny, nx = field.shape
        y0, y1, x0, x1 = (0, ny, 0, nx) if window is None else window
        self.y0, self.y1 = max(y0 - pad, 0), min(y1 + pad, ny)
        self.x0, self.x1 = max(x0 - pad, 0), min(x1 + pad, nx)
        crop = field[self.y0:self.y1, self.x0:self.x1]
        pad_y, pad_x = min(pad, crop.shape[0] - 1), min(pad, crop.shape[1] - 1)
        padded = np.pad(crop, ((pad_y, pad_y), (pad_x, pad_x)), mode="reflect")
        spec = scipy.fft.rfft2(padded, workers=-1)
        blurred = scipy.fft.irfft2(spec * transfer(padded.shape), s=padded.shape, workers=-1)
        self.coeffs = ndimage.spline_filter(blurred, order=3, mode="mirror")
        self.off_y, self.off_x = self.y0 - pad_y, self.x0 - pad_x

    def sample(self, start_y: float, start_x: float, step: int, ny: int, nx: int):
        """Values at the fine positions ``(start_y + step j, start_x + step i)`` (fine-grid index
        units) that fall in the blurred window: ``(j0, j1, i0, i1, values)``; outside it the
        field is zero."""
        j0, j1 = _index_range(start_y, step, ny, self.y0, self.y1)
        i0, i1 = _index_range(start_x, step, nx, self.x0, self.x1)
        out = np.zeros((max(j1 - j0, 0), max(i1 - i0, 0)))
        if out.size == 0:
            return j0, j1, i0, i1, out
        wy, ty = _bspline_weights(start_y + step * j0 - self.off_y)
        wx, tx = _bspline_weights(start_x + step * i0 - self.off_x)
        c = self.coeffs
        n_j, n_i = j1 - j0, i1 - i0
        for a in range(4):
            rows = c[ty + a: ty + a + step * (n_j - 1) + 1: step]
            part = np.zeros((n_j, n_i))
            for b in range(4):
                part += wx[b] * rows[:, tx + b: tx + b + step * (n_i - 1) + 1: step]
            out += wy[a] * part
        return j0, j1, i0, i1, out

    def sample_full(self, start_y: float, start_x: float, step: int, ny: int, nx: int) -> np.ndarray:
        """:meth:`sample` as a full ``(ny, nx)`` array."""
        j0, j1, i0, i1, values = self.sample(start_y, start_x, step, ny, nx)
        out = np.zeros((ny, nx))
        out[j0:j1, i0:i1] = values
        return out


def _index_range(start: float, step: int, n: int, lo: int, hi: int) -> tuple[int, int]:
    """Indices j in [0, n) with lo <= start + step j <= hi - 1, as a half-open range."""
    j0 = max(int(math.ceil((lo - start) / step - 1e-9)), 0)
    j1 = min(int(math.floor((hi - 1 - start) / step + 1e-9)) + 1, n)
    return j0, max(j1, j0)


def _bspline_weights(position: float) -> tuple[np.ndarray, int]:
    """Cubic B-spline weights of the 4 taps ``floor(position) - 1 .. + 2`` and the first tap."""
    f = math.floor(position)
    u = position - f
    w = np.array([(1 - u) ** 3, 3 * u**3 - 6 * u**2 + 4, -3 * u**3 + 3 * u**2 + 3 * u + 1, u**3]) / 6.0
    return w, f - 1


def _transfer(hf: float, sigma: float, fraction: float, tail: float):
    def make(shape):
        fy = scipy.fft.fftfreq(shape[0], d=hf)[:, None]
        fx = scipy.fft.rfftfreq(shape[1], d=hf)[None, :]
        return psf_transfer(fy, fx, sigma, fraction, tail)

    return make


# --------------------------------------------------------------------------- scan geometry


def row_times(p: CompositeCathodeParams, up: bool) -> np.ndarray:
    """Time (s) from the frame's start at which every row (0 = top) is recorded."""
    order = np.arange(p.ny) if not up else (p.ny - 1 - np.arange(p.ny))
    return (order + 0.5) * p.line_time_s


def scan_directions(p: CompositeCathodeParams) -> list[str]:
    """``"up"`` / ``"down"`` for every frame (alternating, starting with ``first_scan_up``)."""
    first = 0 if p.first_scan_up else 1
    return ["up" if (k + first) % 2 == 0 else "down" for k in range(p.n_frames)]


def _drift(p: CompositeCathodeParams, rng: np.random.Generator) -> np.ndarray:
    n = p.n_frames
    steps = p.drift_jitter_nm * rng.standard_normal((n, 2))
    steps[0] = 0.0
    walk = np.cumsum(steps, axis=0)
    drift = np.arange(n)[:, None] * np.array([p.drift_y_nm, p.drift_x_nm]) + walk
    bound = p.margin_px * p.pixel_nm
    return np.clip(drift, -bound, bound)


__all__ = [
    "psf_transfer",
    "psf_kernel",
    "psf_edge_response",
    "row_times",
    "scan_directions",
]
