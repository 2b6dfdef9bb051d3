"""Fourier-domain kernels of off-axis holography: the sideband and its aperture.

Pure numpy on arrays (the wrappers are in :mod:`ionscope.holography.offaxis`; the hologram as a
calibrated array is read by :mod:`ionscope.holography.inputs`): its apodised half spectrum, the
spectrum of the hologram extended by an apodised, fringe-free margin (the field keeps its full
weight), sideband detection on the FFT amplitude with sub-pixel refinement, the soft circular
aperture and the Fresnel line filter, cutting and re-centring the sideband, and the
noise-corrected fringe visibility. Sideband positions are in pixels of the unshifted FFT, signed
(``-n/2 .. n/2``). See the :mod:`~ionscope.holography.offaxis` docstring for the method, the phase
sign convention (:data:`AUTO_SIDE`) and references.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
import scipy.fft

from ionscope.errors import ConfigError, InputError, IonscopeWarning
from ionscope.holography.detector import sideband_mtf_correction
from ionscope.holography.inputs import image_input  # noqa: F401  (re-exported)
from ionscope.holography.passes import apodised, power_minus_leak
from ionscope.validation import Interval, check_parameter

APERTURE_UNITS = ("px", "1/nm", "fraction")
SIDEBANDS = ("auto", "lower", "upper")
#: The sideband ``"auto"`` cuts out: ``"upper"`` (negative y frequency; on the ``ky = 0`` row the
#: one with negative x frequency) - the sideband HyperSpy/holospy's default reconstruction uses.
#: holospy's ``estimate_sideband_position`` (``sb="lower"``) returns the peak ``p`` in rows
#: ``0 .. ny/2 - 1`` of the unshifted FFT and ``reconstruct_phase`` rolls the FFT *by* ``p``,
#: which brings the conjugate sideband at ``-p`` to the origin; so ``"auto"`` gives holospy's
#: default phase, sign included.
AUTO_SIDE = "upper"
#: ``phase_sign_convention`` of a reconstruction with the sideband holospy's default uses, and
#: with its conjugate.
SIGN_CONVENTIONS = {
    "upper": "holospy/HyperSpy default: the sideband at -p, p = holospy's sb='lower' position "
             "(ky >= 0); the sign relative to the potential depends on the biprism geometry",
    "lower": "negative of the holospy/HyperSpy default: the sideband at p, p = holospy's "
             "sb='lower' position (ky >= 0)",
}
#: A given sideband position farther than this from the detected sideband peak (FFT px, or this
#: fraction of the carrier distance if larger) draws a warning.
NEAR_PEAK_PX = 3.0
NEAR_PEAK_FRACTION = 0.05
#: Default aperture radius as a fraction of the carrier frequency.
DEFAULT_APERTURE_FRACTION = 1.0 / 3.0
#: Default soft-edge width as a fraction of the aperture radius.
DEFAULT_EDGE_FRACTION = 0.05
#: Centre-band exclusion radius for sideband detection, as a fraction of the smaller size.
CENTRE_EXCLUSION = 0.025


# --------------------------------------------------------------------------- windows, FFT


def taper_profile(n: int, width: float, positions: np.ndarray | None = None) -> np.ndarray:
    """1-D Tukey (cosine-tapered) window of ``n`` samples with tapers ``width`` px wide.

    ``positions`` (input-pixel units) evaluates the same window elsewhere, e.g. at the centres
    of a coarser output grid. The first and last samples are small but non-zero.
    """
    pos = np.arange(n, dtype=np.float64) if positions is None else np.asarray(positions, float)
    if width <= 0:
        return np.ones_like(pos)
    edge = np.minimum(pos + 0.5, n - 0.5 - pos)
    ramp = np.clip(edge / width, 0.0, 1.0)
    return 0.5 * (1.0 - np.cos(np.pi * ramp))


def default_taper(shape: Sequence[int]) -> int:
    """Default apodisation taper width (px): 1/16 of the smaller image size, at least 4."""
    return max(4, min(shape) // 16)


def half_spectrum(image: np.ndarray, taper: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Real FFT of the Tukey-windowed image; returns ``(R, wy, wx)`` (R complex64)."""
    ny, nx = image.shape
    wy = taper_profile(ny, taper).astype(np.float32)
    wx = taper_profile(nx, taper).astype(np.float32)
    windowed = apodised(image, wy, wx) if taper > 0 else image
    return scipy.fft.rfft2(windowed, workers=-1), wy, wx


def margin_length(n: int, out: int, taper: float) -> int:
    """FFT length of an axis of ``n`` samples extended by apodised margins of at least ``taper``
    px on each side (:func:`extended_spectrum`): a fast FFT length, and a multiple of
    ``n / gcd(n, out)`` so that an output grid of ``out`` samples over the field tiles it."""
    need = n + 2 * int(math.ceil(taper))
    step = n // math.gcd(n, out)
    if step == 1:
        return scipy.fft.next_fast_len(need, real=True)
    return int(math.ceil(need / step)) * step


def _edge_window(length: int, n: int) -> np.ndarray:
    """Window over an extended axis: 1 on the field (samples ``0 .. n-1``), a raised cosine
    falling to ~0 over the trailing margin and rising again over the leading margin (the
    samples before the field, which the FFT's periodicity puts at the end)."""
    margin = length - n
    lead = margin // 2
    trail = margin - lead
    w = np.ones(length, dtype=np.float32)
    j = np.arange(trail)
    w[n : n + trail] = 0.5 * (1.0 + np.cos(np.pi * (j + 0.5) / trail))
    j = np.arange(lead)
    w[n + trail :] = 0.5 * (1.0 - np.cos(np.pi * (j + 0.5) / lead))
    return w


def _border_lines(image: np.ndarray, sigma: float) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The hologram's local mean along its four borders, fringe-free: the first / last rows and
    columns of the image smoothed by a Gaussian of ``sigma`` px (0.6 fringe periods take the
    fringes down by e^-7), computed on border strips only. Returns ``(top, bottom, left,
    right)`` (float32)."""
    from scipy.ndimage import gaussian_filter

    ny, nx = image.shape
    depth = min(int(math.ceil(4.0 * sigma)) + 2, ny, nx)

    def smooth(strip: np.ndarray) -> np.ndarray:
        return gaussian_filter(strip.astype(np.float32), sigma, mode="reflect")

    return (smooth(image[:depth])[0], smooth(image[ny - depth :])[-1],
            smooth(image[:, :depth])[:, 0], smooth(image[:, nx - depth :])[:, -1])


def _margin_halves(n: int, length: int) -> tuple[slice, slice]:
    """The trailing (after the field's last sample) and leading (before its first, placed at
    the end by the FFT's periodicity) margins of an extended axis (:func:`_edge_window`)."""
    lead = (length - n) // 2
    trail = length - n - lead
    return slice(n, n + trail), slice(n + trail, length)


def extended_spectrum(
    image: np.ndarray,
    taper: float,
    period_px: float,
    out_shape: Sequence[int] | None = None,
    columns: np.ndarray | None = None,
) -> tuple[np.ndarray, tuple[int, int]]:
    """Real FFT of the hologram extended by apodised, fringe-free margins outside the field.

    Apodising the hologram itself (:func:`half_spectrum`) brings the field's border to ~0; the
    sideband filter then averages, at the border, over a few pixels of window with the
    aperture's ringing weights, whose sum can vanish, and the object / reference division there
    becomes 0 / 0 (amplitudes of 100 and more at the border of the Fe-needle pair). Here the field
    keeps full weight: each axis is extended by margins of at least ``taper`` px
    (:func:`margin_length`) that continue the hologram's local mean at the nearest border
    (:func:`_border_lines`: the centre band continues, the fringes stop at the border) and fall
    to ~0 with a raised cosine, so that the periodic extension is smooth (no border streaks). The
    margins are placed after the field (the FFT is periodic), so the field starts at index 0.

    Parameters
    ----------
    image : numpy.ndarray
        Hologram (y, x).
    taper : float
        Least margin width (px) on each side, the width of the raised-cosine taper.
    period_px : float
        Fringe period (px), which sets the smoothing of the border lines.
    out_shape : (int, int), optional
        Output grid the wave is sampled on (:func:`box_to_wave`); default the image's shape.
    columns : array of int, optional
        The only columns of the half spectrum needed (e.g. a sideband's box): the y transform
        runs over them alone (the others are left zero), about halving the cost.

    Returns
    -------
    R : numpy.ndarray
        ``rfft2`` of the extended hologram (complex64).
    shape : (int, int)
        Its shape; sideband positions scale by ``shape / image.shape``.
    """
    ny, nx = image.shape
    oy, ox = tuple(out_shape) if out_shape is not None else (ny, nx)
    ly, lx = margin_length(ny, oy, taper), margin_length(nx, ox, taper)
    top, bottom, left, right = _border_lines(image, 0.6 * max(float(period_px), 2.0))
    wy, wx = _edge_window(ly, ny), _edge_window(lx, nx)
    (ty, ly_), (tx, lx_) = _margin_halves(ny, ly), _margin_halves(nx, lx)
    extended = np.empty((ly, lx), dtype=np.float32)
    extended[:ny, :nx] = image
    # the margins: the border's local mean, carried out and tapered (the field keeps weight 1)
    extended[ty, :nx] = wy[ty, None] * bottom[None, :]
    extended[ly_, :nx] = wy[ly_, None] * top[None, :]
    extended[:ny, tx] = right[:, None] * wx[None, tx]
    extended[:ny, lx_] = left[:, None] * wx[None, lx_]
    corners = ((ty, tx, bottom[-1], right[-1]), (ty, lx_, bottom[0], left[-1]),
               (ly_, tx, top[-1], right[0]), (ly_, lx_, top[0], left[0]))
    for rows, cols, a, b in corners:
        extended[rows, cols] = 0.5 * (a + b) * (wy[rows, None] * wx[None, cols])
    if columns is None:
        return scipy.fft.rfft2(extended, workers=-1), (ly, lx)
    half = scipy.fft.rfft(extended, axis=1, workers=-1)
    cols = np.unique(np.asarray(columns, dtype=np.int64))
    out = np.zeros(half.shape, dtype=np.complex64)
    out[:, cols] = scipy.fft.fft(half[:, cols], axis=0, workers=-1)
    return out, (ly, lx)


def box_columns(shape: tuple[int, int], centre: tuple[float, float], geom: dict[str, float]) -> np.ndarray:
    """The columns of a half spectrum (``rfft2``) that :func:`cut_sideband` reads for the box
    around ``centre`` (signed FFT px): for use with :func:`extended_spectrum`'s ``columns``."""
    nx = shape[1]
    cx = int(round(centre[1]))
    hx = int(math.ceil(geom["rx"] * (1 + 0.5 * DEFAULT_EDGE_FRACTION) + abs(centre[1] - cx))) + 1
    hx = min(hx, (nx - 1) // 2)
    ix = np.mod(cx + np.arange(-hx, hx + 1), nx)
    return np.where(ix <= nx // 2, ix, np.mod(-ix, nx))


def gather_full(R: np.ndarray, shape: tuple[int, int], iy: np.ndarray, ix: np.ndarray) -> np.ndarray:
    """Values of the full FFT at integer bins ``(iy, ix)`` (any integers, taken modulo the
    shape) from the half spectrum ``R = rfft2(image)`` using Hermitian symmetry."""
    ny, nx = shape
    iy = np.mod(iy, ny)
    ix = np.mod(ix, nx)
    direct = ix <= nx // 2
    out = np.empty(np.broadcast(iy, ix).shape, dtype=R.dtype)
    iyb, ixb = np.broadcast_arrays(iy, ix)
    d = np.broadcast_to(direct, out.shape)
    out[d] = R[iyb[d], ixb[d]]
    nd = ~d
    out[nd] = np.conj(R[np.mod(-iyb[nd], ny), np.mod(-ixb[nd], nx)])
    return out


def signed(pos: float, n: int) -> float:
    """Map an unshifted-FFT index to a signed frequency index in [-n/2, n/2)."""
    pos = float(pos) % n
    return pos - n if pos >= n / 2 else pos


def _lower(ky: float, kx: float) -> tuple[float, float]:
    """The member of the pair (k, -k) in the 'lower' half (ky > 0, or ky == 0 and kx > 0)."""
    if ky < 0 or (ky == 0 and kx < 0):
        return -ky, -kx
    return ky, kx


def sideband_half(ky: float, kx: float) -> str:
    """``"lower"`` or ``"upper"``: the half of the unshifted FFT a signed position lies in."""
    return "lower" if _lower(ky, kx) == (ky, kx) else "upper"


def sign_convention(position: Sequence[float]) -> str:
    """The ``phase_sign_convention`` text of a reconstruction that cut out the sideband at the
    signed position ``(ky, kx)`` (:data:`SIGN_CONVENTIONS`)."""
    return SIGN_CONVENTIONS[sideband_half(float(position[0]), float(position[1]))]


def find_sideband_peak(
    R: np.ndarray,
    shape: tuple[int, int],
    side: str = "lower",
    exclude: float | None = None,
    window: tuple[np.ndarray, np.ndarray] | None = None,
) -> tuple[int, int]:
    """Integer signed frequency ``(ky, kx)`` of the strongest sideband.

    Parameters
    ----------
    R : numpy.ndarray
        Half spectrum ``rfft2(image)``.
    shape : tuple of int
        Image shape.
    side : {"lower", "upper"}
        Which of the two conjugate sidebands to return.
    exclude : float, optional
        Radius (FFT px) around the origin to ignore (the centre band); default
        :data:`CENTRE_EXCLUSION` of the smaller size, at least 3 px.
    window : (wy, wx), optional
        The separable apodisation window the spectrum was computed with; its spectrum times
        the weighted mean is subtracted first, so the window's leakage of the mean intensity
        (side lobes around the origin) cannot pose as a sideband.
    """
    ny, nx = shape
    if exclude is None:
        exclude = max(3.0, CENTRE_EXCLUSION * min(ny, nx))
    if window is not None:
        wy, wx = window
        Wy = np.fft.fft(wy.astype(np.float64))
        Wx = np.fft.rfft(wx.astype(np.float64))
        mean = R[0, 0].real / (Wy[0].real * Wx[0].real)
        power = power_minus_leak(R, (mean * Wy).astype(np.complex64), Wx.astype(np.complex64))
    else:
        power = R.real * R.real + R.imag * R.imag
    e = int(math.ceil(exclude))
    ky = np.arange(-e, e + 1)
    kx = np.arange(0, e + 1)
    inside = (ky[:, None] ** 2 + kx[None, :] ** 2) <= exclude ** 2
    rows = np.mod(ky, ny)
    block = power[rows][:, : e + 1]
    block[inside] = 0.0
    power[rows[:, None], kx[None, :]] = block
    if nx % 2 == 0:
        power[:, nx // 2] = 0.0  # the Nyquist column has no sign
    if ny % 2 == 0:
        power[ny // 2, :] = 0.0
    flat = int(np.argmax(power))
    iy, ix = divmod(flat, power.shape[1])
    peak = float(power.flat[flat])
    dc = float(abs(R[0, 0]))
    background = float(np.median(power[:: max(1, ny // 128), :: max(1, nx // 128)]))
    if not (peak > 0 and 2 * math.sqrt(peak) > 1e-3 * dc and peak > 50 * background):
        raise InputError(
            "no sideband found: the hologram's FFT has no peak standing out of the noise "
            "outside the centre band (fringe contrast below 0.1 %?); check that the image is "
            "an off-axis hologram with resolved fringes"
        )
    k = _lower(signed(iy, ny), float(ix))
    if side == "upper":
        k = (-k[0], -k[1])
    return int(k[0]), int(k[1])


# --------------------------------------------------------------------------- aperture


def aperture_geometry(
    shape: tuple[int, int],
    cal: dict[str, Any],
    carrier_px: tuple[float, float],
    aperture: float | None,
    unit: str,
) -> dict[str, float]:
    """Aperture radius in physical frequency and in FFT pixels along y and x.

    Returns ``{"radius_per_nm", "ry", "rx", "radius_px", "edge_per_nm"}``; ``radius_px`` uses
    the mean Fourier pixel size (holospy's ``sb_size`` convention).
    """
    ny, nx = shape
    fy, fx = 1.0 / (ny * cal["dy"]), 1.0 / (nx * cal["dx"])
    fmean = 0.5 * (fy + fx)
    q = math.hypot(carrier_px[0] * fy, carrier_px[1] * fx)
    if aperture is None:
        radius = DEFAULT_APERTURE_FRACTION * q
    else:
        check_parameter("aperture", aperture, [Interval(float, 0, None, closed="neither")])
        a = float(aperture)
        if unit == "px":
            radius = a * fmean
        elif unit == "1/nm":
            radius = a
        elif unit == "fraction":
            radius = a * q
        else:
            raise ConfigError(f"aperture_unit must be one of {APERTURE_UNITS}, got {unit!r}")
    edge = DEFAULT_EDGE_FRACTION * radius
    if radius + 0.5 * edge >= q:
        raise ConfigError(
            f"the aperture (radius {radius / fmean:.1f} FFT px) reaches the centre band (carrier "
            f"at {q / fmean:.1f} FFT px); use a radius below half the carrier distance"
        )
    return {
        "radius_per_nm": radius,
        "ry": radius / fy,
        "rx": radius / fx,
        "radius_px": radius / fmean,
        "edge_per_nm": edge,
        "fy": fy,
        "fx": fx,
    }


def aperture_weights(
    offsets_y: np.ndarray,
    offsets_x: np.ndarray,
    geom: dict[str, float],
) -> np.ndarray:
    """Soft circular aperture on a box: ``offsets_*`` are distances (FFT px) from its centre.

    Raised-cosine edge: 1 inside ``R - e/2``, 0 beyond ``R + e/2`` (e = 5 % of R), 0.5 at R.
    """
    fy, fx = geom["fy"], geom["fx"]
    R, e = geom["radius_per_nm"], geom["edge_per_nm"]
    # distances in units of the edge width from the inner edge: 0 inside, 1 at the outer edge
    oy = (np.asarray(offsets_y, dtype=np.float64) * (fy / e)) ** 2
    ox = (np.asarray(offsets_x, dtype=np.float64) * (fx / e)) ** 2
    t = np.sqrt(oy[:, None] + ox[None, :]) - (R / e - 0.5)
    out = (t <= 0.0).astype(np.float32)
    ring = (t > 0.0) & (t < 1.0)
    out[ring] = 0.5 * (1.0 + np.cos(np.pi * t[ring]))
    return out


def line_filter_weights(
    ky: np.ndarray,
    kx: np.ndarray,
    carrier: tuple[float, float],
    geom: dict[str, float],
    width_px: float,
) -> np.ndarray:
    """Weights that suppress the biprism Fresnel streak on a box of bins ``(ky, kx)``.

    The streak is the line through the origin along the carrier direction; a strip of full
    width ``width_px`` (FFT px, plus a 1 px cosine roll-off on each side) along it is removed
    except inside a disc of radius ``max(width_px, 0.1 R)`` around the sideband centre (which
    holds the carrier itself).
    """
    fy, fx = geom["fy"], geom["fx"]
    fmean = 0.5 * (fy + fx)
    qy, qx = carrier[0] * fy, carrier[1] * fx
    qn = math.hypot(qy, qx)
    uy, ux = qy / qn, qx / qn
    Ky = ky[:, None] * fy
    Kx = kx[None, :] * fx
    dist = np.abs(Ky * ux - Kx * uy) / fmean  # distance from the line, FFT px
    half = 0.5 * width_px
    strip = 0.5 * (1.0 + np.cos(np.pi * np.clip(dist - half, 0.0, 1.0)))
    keep_r = max(width_px, 0.1 * geom["radius_px"])
    dc = np.hypot(Ky - qy, Kx - qx) / fmean
    disc = np.clip((keep_r + 0.5 - dc), 0.0, 1.0)
    return (1.0 - strip * (1.0 - disc)).astype(np.float32)


# --------------------------------------------------------------------------- sideband cut-out


def cut_sideband(
    R: np.ndarray,
    shape: tuple[int, int],
    centre: tuple[float, float],
    geom: dict[str, float],
    *,
    line_width_px: float | None = None,
    carrier: tuple[float, float] | None = None,
    mtf: Any = None,
) -> tuple[np.ndarray, tuple[int, int]]:
    """Aperture-weighted box of the spectrum around ``centre`` (signed, sub-pixel FFT px).

    Returns ``(box, (cy, cx))``: the box (complex64, odd sizes, its middle bin at the integer
    frequency ``(cy, cx)`` = ``round(centre)``) multiplied by the aperture centred at
    ``centre`` (and the line filter when ``line_width_px`` is given, and the detector-MTF
    correction :func:`~ionscope.holography.detector.sideband_mtf_correction` for an ``mtf``
    callable).
    """
    cy, cx = int(round(centre[0])), int(round(centre[1]))
    hy = int(math.ceil(geom["ry"] * (1 + 0.5 * DEFAULT_EDGE_FRACTION) + abs(centre[0] - cy))) + 1
    hx = int(math.ceil(geom["rx"] * (1 + 0.5 * DEFAULT_EDGE_FRACTION) + abs(centre[1] - cx))) + 1
    hy = min(hy, (shape[0] - 1) // 2)
    hx = min(hx, (shape[1] - 1) // 2)
    oy = np.arange(-hy, hy + 1)
    ox = np.arange(-hx, hx + 1)
    box = gather_full(R, shape, (cy + oy)[:, None], (cx + ox)[None, :])
    weights = aperture_weights(oy + (cy - centre[0]), ox + (cx - centre[1]), geom)
    if line_width_px:
        weights = weights * line_filter_weights(
            cy + oy, cx + ox, carrier if carrier is not None else centre, geom, line_width_px
        )
    if mtf is not None:
        weights = weights * sideband_mtf_correction(mtf, cy + oy, cx + ox, shape,
                                                    carrier if carrier is not None else centre,
                                                    support=weights > 0)
    return (box * weights).astype(np.complex64), (cy, cx)


def box_to_wave(box: np.ndarray, out_shape: tuple[int, int], n_in: int,
                crop: tuple[int, int] | None = None) -> np.ndarray:
    """Inverse FFT of a centred sideband box placed at the origin of an ``out_shape`` grid.

    Scaled so that the wave equals the sideband's real-space amplitude (hologram units)
    independently of the output size: ``ifft2(Z) * n_out / n_in``. ``crop`` returns only the
    first ``crop`` rows and columns (the field of an extended grid). Pruned: the x transform
    runs over the box's rows only, the y transform over the kept columns only.
    """
    ny, nx = out_shape
    by, bx = box.shape
    hy, hx = by // 2, bx // 2
    if by > ny or bx > nx:
        raise ConfigError(
            f"output_shape {tuple(out_shape)} is too small for the aperture (needs at least "
            f"{by} x {bx} pixels)"
        )
    cy, cx = crop if crop is not None else (ny, nx)
    rows = np.zeros((by, nx), dtype=np.complex64)
    rows[:, np.mod(np.arange(-hx, hx + 1), nx)] = box * np.float32(ny * nx / n_in)
    rows = scipy.fft.ifft(rows, axis=1, workers=-1, overwrite_x=True)[:, :cx]
    Z = np.zeros((ny, cx), dtype=np.complex64)
    Z[np.mod(np.arange(-hy, hy + 1), ny)] = rows
    out = scipy.fft.ifft(Z, axis=0, workers=-1, overwrite_x=True)
    return out if cy == ny else np.ascontiguousarray(out[:cy])


def lag_one_frequency(wave: np.ndarray) -> tuple[float, float]:
    """Mean frequency (cycles per sample, y and x) of a complex wave from the argument of its
    lag-one autocorrelation (Kay 1989); amplitude-squared weighted, NaN-free."""
    cy = np.vdot(wave[:-1, :], wave[1:, :])
    cx = np.vdot(wave[:, :-1], wave[:, 1:])
    return float(np.angle(cy)) / (2 * np.pi), float(np.angle(cx)) / (2 * np.pi)


def refine_sideband(
    R: np.ndarray, shape: tuple[int, int], centre: tuple[int, int], geom: dict[str, float]
) -> tuple[float, float]:
    """Sub-pixel sideband position (signed FFT px) from the cut-out sideband's mean phase
    gradient, iterated twice (the aperture is re-centred on the estimate)."""
    pos = (float(centre[0]), float(centre[1]))
    for _ in range(2):
        box, (cy, cx) = cut_sideband(R, shape, pos, geom)
        wave = scipy.fft.ifft2(scipy.fft.ifftshift(box))
        fy, fx = lag_one_frequency(wave)
        new = (cy + fy * box.shape[0], cx + fx * box.shape[1])
        if abs(new[0] - pos[0]) > 1.0 or abs(new[1] - pos[1]) > 1.0:
            new = (pos[0] + np.clip(new[0] - pos[0], -1, 1), pos[1] + np.clip(new[1] - pos[1], -1, 1))
        pos = (float(new[0]), float(new[1]))
    return pos


def noise_power(
    R: np.ndarray, shape: tuple[int, int], carrier: tuple[float, float], radius_px: float
) -> float:
    """Shot-noise power per Fourier pixel from bins far from the centre band (> 2 R) and from
    both sidebands (> 1.5 R): median / ln 2 of the power on a 1-in-4 subsample."""
    ny, nx = shape
    step = 4 if min(shape) >= 256 else 1
    ky = np.fft.fftfreq(ny, 1.0 / ny)[::step]
    kx = np.arange(R.shape[1])[::step].astype(float)
    sub = R[::step, ::step]
    r0 = np.hypot(ky[:, None], kx[None, :])
    r1 = np.hypot(ky[:, None] - carrier[0], kx[None, :] - carrier[1])
    r2 = np.hypot(ky[:, None] + carrier[0], kx[None, :] + carrier[1])
    far = (r0 > 2 * radius_px) & (r1 > 1.5 * radius_px) & (r2 > 1.5 * radius_px)
    if far.sum() < 32:
        return 0.0
    values = sub[far]
    power = values.real.astype(np.float64) ** 2 + values.imag.astype(np.float64) ** 2
    return float(np.median(power) / np.log(2.0))


def contrast_from_spectrum(
    R: np.ndarray,
    shape: tuple[int, int],
    centre: tuple[float, float],
    geom: dict[str, float],
    wy: np.ndarray,
    wx: np.ndarray,
) -> float:
    """Fringe contrast from the sideband energy (module docstring formula)."""
    box, _ = cut_sideband(R, shape, centre, geom)
    energy = float(np.sum(np.abs(box.astype(np.complex128)) ** 2))
    cy, cx = int(round(centre[0])), int(round(centre[1]))
    hy, hx = box.shape[0] // 2, box.shape[1] // 2
    weights = aperture_weights(np.arange(-hy, hy + 1) + (cy - centre[0]),
                               np.arange(-hx, hx + 1) + (cx - centre[1]), geom)
    n_eff = float(np.sum(weights.astype(np.float64) ** 2))
    energy -= noise_power(R, shape, centre, geom["radius_px"]) * n_eff
    sw = float(np.sum(wy, dtype=np.float64) * np.sum(wx, dtype=np.float64))
    sw2 = float(np.sum(wy.astype(np.float64) ** 2) * np.sum(wx.astype(np.float64) ** 2))
    mean = float(R[0, 0].real) / sw
    if mean <= 0:
        raise InputError("the hologram's mean intensity is not positive; is it a hologram?")
    return 2.0 * math.sqrt(max(energy, 0.0) / (shape[0] * shape[1] * sw2)) / mean


# --------------------------------------------------------------------------- sideband argument


def resolve_sideband(
    R: np.ndarray, shape: tuple[int, int], sideband: Any, window=None
) -> tuple[tuple[float, float], bool]:
    """Signed sideband position (FFT px) and whether it was detected (True) or given (False)
    from a ``sideband`` argument: ``"auto"``, ``"lower"``, ``"upper"`` or a (y, x) position."""
    if isinstance(sideband, str):
        if sideband not in SIDEBANDS:
            raise ConfigError(
                f"sideband must be one of {SIDEBANDS} or a (y, x) position, got {sideband!r}"
            )
        side = AUTO_SIDE if sideband == "auto" else sideband
        k = find_sideband_peak(R, shape, side, window=window)
        return (float(k[0]), float(k[1])), True
    try:
        y, x = (float(v) for v in sideband)
    except (TypeError, ValueError):
        raise ConfigError(
            f"sideband must be 'auto', 'lower', 'upper' or a (y, x) position in pixels of the "
            f"unshifted FFT, got {sideband!r}"
        ) from None
    if not (math.isfinite(y) and math.isfinite(x)):
        raise ConfigError(f"sideband position must be finite, got {sideband!r}")
    if not (-shape[0] < y < shape[0] and -shape[1] < x < shape[1]):
        # a position off the FFT grid would wrap onto another frequency silently
        raise ConfigError(
            f"sideband position {(y, x)} lies outside the FFT of the {shape[0]} x {shape[1]} hologram; "
            f"give Y,X in pixels of the unshifted FFT (0 <= Y < {shape[0]}, 0 <= X < {shape[1]})"
        )
    ky, kx = signed(y, shape[0]), signed(x, shape[1])
    if ky == 0 and kx == 0:
        raise ConfigError("the sideband position (0, 0) is the centre band; give the sideband")
    check_given_sideband(R, shape, (ky, kx), window)
    return (ky, kx), False


def check_given_sideband(R: np.ndarray, shape: tuple[int, int], position: tuple[float, float],
                         window=None) -> float | None:
    """Warn (:class:`~ionscope.errors.IonscopeWarning`) when a given sideband position lies far
    from the spectrum's strongest sideband peak and its conjugate: more than
    :data:`NEAR_PEAK_PX` FFT px, or :data:`NEAR_PEAK_FRACTION` of the carrier distance if that is
    larger (holospy's integer peak, within a pixel of the true one, passes). Returns the distance
    (FFT px), or None when the spectrum has no sideband peak to compare with.
    """
    try:
        peak = find_sideband_peak(R, shape, "lower", window=window)
    except InputError:
        return None  # no sideband stands out of the noise: nothing to compare with
    ky, kx = position
    distance = min(math.hypot(ky - peak[0], kx - peak[1]), math.hypot(ky + peak[0], kx + peak[1]))
    if distance <= max(NEAR_PEAK_PX, NEAR_PEAK_FRACTION * math.hypot(*peak)):
        return distance

    def amplitude(k: Sequence[float]) -> float:
        iy = int(round(k[0])) + np.arange(-1, 2)
        ix = int(round(k[1])) + np.arange(-1, 2)
        return float(np.abs(gather_full(R, shape, iy[:, None], ix[None, :])).max())

    ratio = amplitude(position) / max(amplitude(peak), 1e-30)
    ny, nx = shape
    warnings.warn(
        f"the sideband position ({ky % ny:g}, {kx % nx:g}) lies {distance:.1f} FFT px from the hologram's "
        f"strongest sideband peak at ({peak[0] % ny:g}, {peak[1] % nx:g}) and from its conjugate at "
        f"({-peak[0] % ny:g}, {-peak[1] % nx:g}) (unshifted FFT pixels), and the FFT amplitude there is "
        f"{ratio:.1%} of the peak's: the aperture cuts out something other than the sideband; use "
        "sideband 'auto', 'upper' or 'lower' (--sideband auto) or one of those positions",
        IonscopeWarning, stacklevel=2)
    return distance


__all__ = [
    "image_input",
    "taper_profile",
    "default_taper",
    "half_spectrum",
    "gather_full",
    "signed",
    "find_sideband_peak",
    "aperture_geometry",
    "aperture_weights",
    "line_filter_weights",
    "cut_sideband",
    "box_to_wave",
    "lag_one_frequency",
    "refine_sideband",
    "noise_power",
    "contrast_from_spectrum",
    "resolve_sideband",
    "check_given_sideband",
    "sideband_half",
    "sign_convention",
    "extended_spectrum",
    "box_columns",
    "margin_length",
    "APERTURE_UNITS",
    "AUTO_SIDE",
    "SIGN_CONVENTIONS",
    "SIDEBANDS",
    "DEFAULT_APERTURE_FRACTION",
    "DEFAULT_EDGE_FRACTION",
    "CENTRE_EXCLUSION",
]
