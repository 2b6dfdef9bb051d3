r"""Off-axis electron holography: Fourier (sideband) reconstruction and hologram statistics.

A hologram :math:`I(\mathbf r) = A_r^2 + A^2 + 2\mu A_r A \cos(2\pi\mathbf q_c\cdot\mathbf r +
\varphi)` has, in its Fourier transform, a centre band at the origin and two sidebands at
:math:`\pm\mathbf q_c`; the one at :math:`+\mathbf q_c` is :math:`(\mu A_r A/2)
e^{i\varphi}` shifted by the carrier. Reconstruction (METHODS section 1):

1. apodise the hologram with a separable Tukey (cosine-tapered) window, real FFT;
2. find the sideband: the largest FFT amplitude outside the centre band in the requested half
   plane, refined to sub-pixel precision from the mean phase gradient of the cut-out sideband
   (the lag-one phase estimator, exact for a pure carrier and unbiased by the window);
3. cut it out with a soft circular aperture (radius in FFT pixels, 1/nm or as a fraction of the
   carrier frequency; default a third of the centre-to-sideband distance; raised-cosine edge of
   5 % of the radius; circular in physical frequency, so elliptical in pixels for non-square
   images), optionally with a line filter that removes the biprism Fresnel-fringe streak (a
   strip through the origin along the carrier direction, keeping a small disc at the sideband
   centre), re-centre it and inverse-FFT onto the output grid;
4. divide by the vacuum reference hologram reconstructed the same way (removes the carrier,
   camera distortions and the apodisation window); without one, remove the sub-pixel carrier
   ramp and divide the amplitude by the window instead;
5. phase = argument, unwrapped (:mod:`ionscope.holography.unwrap`); amplitude = modulus.

Sideband positions are in pixels of the **unshifted** FFT, ``(y, x)`` with ``0 <= y < ny``
(negative values are accepted as negative frequencies). ``"lower"`` is the sideband with a
positive y frequency (rows ``1 .. ny/2 - 1`` of the unshifted FFT, as in holospy; on the
``ky = 0`` row the one with positive x frequency), ``"upper"`` its conjugate, ``"auto"`` =
``"lower"``. The wave is cut out **at** the given position. (holospy's ``reconstruct_phase``
centres the sideband by rolling the FFT *by* ``sb_position``, which brings the conjugate
sideband at ``-sb_position`` to the origin: its phase for ``sb_position=p`` equals ours for
``sideband=-p`` and the negative of ours for ``sideband=p``.)

Statistics (:func:`hologram_statistics`) follow the conventions of Gatan HoloWorks and
holospy, so the numbers compare one to one: the carrier frequency (1/nm and 1/px) of the FFT
pixel at the sideband peak, the fringe sampling (px) and spacing (nm) its inverse, and the fringe
contrast as the standard deviation over the mean of the (vacuum) hologram. On holospy's Fe-needle
reference these give 3.4860 nm, 3.7902 px and 0.0752, against 3.48604 nm, 3.7902 px and 0.0736
from HoloWorks. Two more precise quantities sit beside them:

* ``*_subpixel`` keys: the carrier from the sub-pixel sideband position (refined on the FFT
  amplitude), accurate to ~0.02 % on the twin; the FFT-pixel value can be off by half a pixel
  (0.35 % on the Fe-needle reference, whose true peak is 0.3-0.4 px from the grid);
* ``fringe_visibility``: the :math:`\mu` of the formula above (the contrast that sets the phase
  noise :math:`\sqrt{2 / (\mu^2 N)}`) from the sideband energy,

  .. math::

      \mu = \frac{2}{\bar I_w} \sqrt{\frac{\sum_{k \in \mathrm{ap}} a_k^2 |F_k|^2
            - P_\mathrm{noise} \sum a_k^2}{N_\mathrm{pix} \sum_r w_r^2}},
      \qquad \bar I_w = F_0 / \textstyle\sum_r w_r,

  the root-mean-square of the local contrast over the (window-weighted) field, with the
  shot-noise power per Fourier pixel :math:`P_\mathrm{noise}` estimated from bins far from the
  centre band and the sidebands (median / ln 2). For noise-free cosine fringes std / mean is
  :math:`\mu/\sqrt2`; on the Fe-needle reference :math:`\mu` = 0.095 (a least-squares cosine fit
  in the centre agrees within 3 %).

References
----------
H. Lichte, M. Lehmann, Rep. Prog. Phys. 71, 016102 (2008) (Fourier reconstruction, phase
noise). E. Voelkl, L.F. Allard, D.C. Joy (eds.), *Introduction to Electron Holography*
(Kluwer, 1999), chapter 7. S.M. Kay, IEEE Trans. ASSP 37, 1987 (1989) (lag-one frequency
estimator). HoloWorks (Gatan) and holospy conventions as described above.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import scipy.fft
import xarray as xr

from ionscope.data import (
    axis_calibration,
    jsonable,
    provenance,
    require_dims,
    require_finite,
    signal,
    with_provenance,
)
from ionscope.errors import ConfigError, DimensionError, InputError
from ionscope.holography.unwrap import unwrap_kernel

STEP = "ionscope.holography.reconstruct_offaxis"
STEP_STATS = "ionscope.holography.hologram_statistics"
APERTURE_UNITS = ("px", "1/nm", "fraction")
SIDEBANDS = ("auto", "lower", "upper")
#: Default aperture radius as a fraction of the carrier frequency.
DEFAULT_APERTURE_FRACTION = 1.0 / 3.0
#: Default soft-edge width as a fraction of the aperture radius.
DEFAULT_EDGE_FRACTION = 0.05
#: Centre-band exclusion radius for sideband detection, as a fraction of the smaller size.
CENTRE_EXCLUSION = 0.025
_LENGTH_UNITS = {"nm": 1.0, "um": 1e3, "µm": 1e3, "μm": 1e3, "micron": 1e3, "Å": 0.1,
                 "A": 0.1, "angstrom": 0.1, "pm": 1e-3, "mm": 1e6}


# --------------------------------------------------------------------------- input helpers


def image_input(obj: Any, what: str = "hologram") -> tuple[np.ndarray, dict[str, Any]]:
    """Validate a 2-D hologram (DataArray with dims y, x, or a numpy array) and return its
    values (float32) and calibration ``{"dy", "dx", "y0", "x0", "calibrated"}`` in nm (px when
    the axes are uncalibrated)."""
    if isinstance(obj, xr.DataArray):
        require_dims(obj, ("y", "x"), what=what)
        da = obj.transpose("y", "x")
        require_finite(da, what)
        cal = {}
        calibrated = True
        for dim in ("y", "x"):
            offset, step, unit = axis_calibration(da, dim)
            factor = _LENGTH_UNITS.get(unit)
            if factor is None:
                calibrated = False
                factor = 1.0
            cal["d" + dim] = abs(step) * factor
            cal[dim + "0"] = offset * factor
        if not calibrated:
            cal.update(dy=1.0, dx=1.0, y0=0.0, x0=0.0)
        cal["calibrated"] = calibrated
        values = np.asarray(da.values)
    elif isinstance(obj, np.ndarray):
        if obj.ndim != 2:
            raise DimensionError(f"{what} must be 2-D (y, x), got shape {obj.shape}")
        values = obj
        if values.size and not np.isfinite(values).all():
            raise InputError(f"{what} holds NaN/inf values; mask or interpolate them first")
        cal = {"dy": 1.0, "dx": 1.0, "y0": 0.0, "x0": 0.0, "calibrated": False}
    else:
        raise InputError(
            f"{what} must be an xarray.DataArray with dims (y, x) or a 2-D numpy array, got "
            f"{type(obj).__name__}"
        )
    if min(values.shape) < 16:
        raise DimensionError(f"{what} is too small ({values.shape}); need at least 16 x 16 pixels")
    return np.ascontiguousarray(values, dtype=np.float32), cal


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
    windowed = image * wy[:, None] if taper > 0 else image
    if taper > 0:
        windowed = windowed * wx[None, :]
    return scipy.fft.rfft2(windowed, workers=-1), wy, wx


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
        leak = (mean * Wy)[:, None].astype(np.complex64) * Wx[None, :].astype(np.complex64)
        S = R - leak
    else:
        S = R
    power = S.real * S.real + S.imag * S.imag
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
        try:
            a = float(aperture)
        except (TypeError, ValueError):
            raise ConfigError(f"aperture must be a positive number, got {aperture!r}") from None
        if not (math.isfinite(a) and a > 0):
            raise ConfigError(f"aperture must be a positive number, got {aperture!r}")
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
    r = np.hypot(offsets_y[:, None] * fy, offsets_x[None, :] * fx)
    R, e = geom["radius_per_nm"], geom["edge_per_nm"]
    t = np.clip((r - (R - 0.5 * e)) / e, 0.0, 1.0)
    return (0.5 * (1.0 + np.cos(np.pi * t))).astype(np.float32)


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
) -> tuple[np.ndarray, tuple[int, int]]:
    """Aperture-weighted box of the spectrum around ``centre`` (signed, sub-pixel FFT px).

    Returns ``(box, (cy, cx))``: the box (complex64, odd sizes, its middle bin at the integer
    frequency ``(cy, cx)`` = ``round(centre)``) multiplied by the aperture centred at
    ``centre`` (and the line filter when ``line_width_px`` is given).
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
    return (box * weights).astype(np.complex64), (cy, cx)


def box_to_wave(box: np.ndarray, out_shape: tuple[int, int], n_in: int) -> np.ndarray:
    """Inverse FFT of a centred sideband box placed at the origin of an ``out_shape`` grid.

    Scaled so that the wave equals the sideband's real-space amplitude (hologram units)
    independently of the output size: ``ifft2(Z) * n_out / n_in``.
    """
    ny, nx = out_shape
    by, bx = box.shape
    hy, hx = by // 2, bx // 2
    if by > ny or bx > nx:
        raise ConfigError(
            f"output_shape {tuple(out_shape)} is too small for the aperture (needs at least "
            f"{by} x {bx} pixels)"
        )
    Z = np.zeros(out_shape, dtype=np.complex64)
    iy = np.mod(np.arange(-hy, hy + 1), ny)
    ix = np.mod(np.arange(-hx, hx + 1), nx)
    Z[np.ix_(iy, ix)] = box
    wave = scipy.fft.ifft2(Z, workers=-1, overwrite_x=True)
    wave *= np.float32(ny * nx / n_in)
    return wave


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


# --------------------------------------------------------------------------- statistics


def _resolve_sideband(
    R: np.ndarray, shape: tuple[int, int], sideband: Any, window=None
) -> tuple[tuple[float, float], bool]:
    """Signed sideband position and whether it was detected (True) or given (False)."""
    if isinstance(sideband, str):
        if sideband not in SIDEBANDS:
            raise ConfigError(
                f"sideband must be one of {SIDEBANDS} or a (y, x) position, got {sideband!r}"
            )
        side = "lower" if sideband == "auto" else sideband
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
    ky, kx = signed(y, shape[0]), signed(x, shape[1])
    if ky == 0 and kx == 0:
        raise ConfigError("the sideband position (0, 0) is the centre band; give the sideband")
    return (ky, kx), False


def _stats_dict(
    shape: tuple[int, int],
    cal: dict[str, Any],
    position: tuple[float, float],
    visibility: float,
    geom: dict[str, float] | None,
    image: np.ndarray | None,
) -> dict[str, Any]:
    """The statistics keys (see :func:`hologram_statistics`) for a sideband at ``position``
    (signed, sub-pixel, FFT pixels), its noise-corrected visibility and the image whose
    std / mean is the conventional contrast (None: not computed)."""
    ny, nx = shape

    def carrier(py: float, px: float) -> tuple[float, float, float, float]:
        fy_px, fx_px = py / ny, px / nx  # cycles per pixel
        fy_nm, fx_nm = fy_px / cal["dy"], fx_px / cal["dx"]
        return math.hypot(fy_px, fx_px), math.hypot(fy_nm, fx_nm), fy_nm, fx_nm

    # HoloWorks and holospy quote the carrier of the FFT pixel at the sideband peak
    c_px, c_nm, _, _ = carrier(float(round(position[0])), float(round(position[1])))
    s_px, s_nm, fy_nm, fx_nm = carrier(position[0], position[1])
    out = {
        "sideband_position_px": [float(position[0] % ny), float(position[1] % nx)],
        "sideband_offset_px": [float(position[0]), float(position[1])],
        "fringe_sampling_px": 1.0 / c_px,
        "fringe_spacing_nm": (1.0 / c_nm) if cal["calibrated"] else None,
        "carrier_frequency_per_nm": c_nm if cal["calibrated"] else None,
        "carrier_frequency_per_px": c_px,
        "fringe_sampling_subpixel_px": 1.0 / s_px,
        "fringe_spacing_subpixel_nm": (1.0 / s_nm) if cal["calibrated"] else None,
        "carrier_frequency_subpixel_per_nm": s_nm if cal["calibrated"] else None,
        "fringe_contrast": None if image is None else
        float(image.std(dtype=np.float64) / image.mean(dtype=np.float64)),
        "fringe_visibility": float(visibility),
        "carrier_angle_deg": math.degrees(math.atan2(fy_nm, fx_nm)),
        "pixel_size_nm": [cal["dy"], cal["dx"]] if cal["calibrated"] else None,
        "shape": [int(ny), int(nx)],
    }
    if geom is not None:
        out["aperture_px"] = float(geom["radius_px"])
        out["aperture_per_nm"] = float(geom["radius_per_nm"]) if cal["calibrated"] else None
    return out


def statistics_kernel(
    image: np.ndarray,
    cal: dict[str, Any],
    *,
    sideband: Any = "auto",
    aperture: float | None = None,
    aperture_unit: str = "px",
    taper: float | None = None,
    refine: bool = True,
) -> dict[str, Any]:
    """Hologram statistics on a numpy array (see :func:`hologram_statistics`)."""
    shape = image.shape
    R, wy, wx = half_spectrum(image, default_taper(shape) if taper is None else taper)
    pos, detected = _resolve_sideband(R, shape, sideband, (wy, wx))
    geom = aperture_geometry(shape, cal, pos, aperture, aperture_unit)
    refined = pos
    if refine or detected:
        refined = refine_sideband(R, shape, (int(round(pos[0])), int(round(pos[1]))), geom)
        geom = aperture_geometry(shape, cal, refined, aperture, aperture_unit)
    contrast = contrast_from_spectrum(R, shape, refined, geom, wy, wx)
    return _stats_dict(shape, cal, refined, contrast, geom, image)


def hologram_statistics(
    hologram: Any,
    sideband: Any = "auto",
    *,
    aperture: float | None = None,
    aperture_unit: str = "px",
    apodize: bool | int = True,
    refine: bool = True,
) -> dict[str, Any]:
    """Fringe spacing, sampling, contrast and carrier frequency of an off-axis hologram.

    Parameters
    ----------
    hologram : xarray.DataArray or numpy.ndarray
        Hologram (y, x), coordinates in nm (uncalibrated arrays give pixel units).
    sideband : {"auto", "lower", "upper"} or (y, x)
        Sideband to measure: detected (refined to sub-pixel precision from the sideband
        itself) or a position in unshifted-FFT pixels.
    aperture, aperture_unit : float, str
        Aperture used for the contrast integral (default: a third of the carrier distance).
    apodize : bool or int
        Tukey taper (default width: 1/16 of the image) or its width in px; False for none.
    refine : bool
        Refine a given position to sub-pixel precision for the ``*_subpixel`` keys and the
        visibility (default); a detected sideband is always refined.

    Returns
    -------
    dict
        ``sideband_position_px`` ([y, x], unshifted FFT, sub-pixel), ``sideband_offset_px``
        (signed), ``aperture_px``, ``aperture_per_nm``; at the FFT pixel of the peak (the
        HoloWorks / holospy convention) ``fringe_spacing_nm``, ``fringe_sampling_px``,
        ``carrier_frequency_per_nm``, ``carrier_frequency_per_px``; from the sub-pixel peak
        ``fringe_spacing_subpixel_nm``, ``fringe_sampling_subpixel_px``,
        ``carrier_frequency_subpixel_per_nm``; ``fringe_contrast`` (std / mean) and
        ``fringe_visibility`` (mu, from the sideband energy, noise-corrected);
        ``carrier_angle_deg``, ``pixel_size_nm``, ``shape``.
        Calibration-dependent values are None for uncalibrated input. JSON-able.

    Examples
    --------
    >>> from ionscope.simulate import simulate
    >>> ds = simulate("holography", seed=0, noise=False)
    >>> stats = hologram_statistics(ds["reference"])
    >>> abs(stats["fringe_spacing_subpixel_nm"] / ds.attrs["fringe_spacing_nm"] - 1) < 5e-4
    True
    """
    image, cal = image_input(hologram, "hologram")
    taper = _taper_arg(apodize, image.shape)
    if aperture_unit not in APERTURE_UNITS:
        raise ConfigError(f"aperture_unit must be one of {APERTURE_UNITS}, got {aperture_unit!r}")
    return jsonable(statistics_kernel(image, cal, sideband=sideband, aperture=aperture,
                                      aperture_unit=aperture_unit, taper=taper,
                                      refine=bool(refine)))


def _taper_arg(apodize: Any, shape: tuple[int, int]) -> float:
    if isinstance(apodize, (bool, np.bool_)):
        return float(default_taper(shape)) if apodize else 0.0
    try:
        width = float(apodize)
    except (TypeError, ValueError):
        raise ConfigError(f"apodize must be True, False or a taper width in px, got {apodize!r}") from None
    if not (0 <= width <= min(shape) / 2):
        raise ConfigError(
            f"apodize taper width must be between 0 and half the image ({min(shape) / 2:g} px), "
            f"got {apodize!r}"
        )
    return width


# --------------------------------------------------------------------------- reconstruction


def _output_shape(output_shape: Any, shape: tuple[int, int]) -> tuple[int, int]:
    if output_shape is None:
        return tuple(shape)
    if isinstance(output_shape, (int, np.integer)) and not isinstance(output_shape, bool):
        output_shape = (int(output_shape), int(output_shape))
    try:
        oy, ox = (int(v) for v in output_shape)
    except (TypeError, ValueError):
        raise ConfigError(f"output_shape must be None, an int or (ny, nx), got {output_shape!r}") from None
    if not (0 < oy <= shape[0] and 0 < ox <= shape[1]):
        raise ConfigError(
            f"output_shape {(oy, ox)} must be positive and not larger than the hologram {shape}"
        )
    return oy, ox


def offaxis_wave(
    image: np.ndarray,
    cal: dict[str, Any],
    *,
    sideband: Any = "auto",
    aperture: float | None = None,
    aperture_unit: str = "px",
    line_width_px: float | None = None,
    taper: float = 0.0,
    output_shape: tuple[int, int] | None = None,
    reference: np.ndarray | None = None,
) -> tuple[np.ndarray, dict[str, Any]]:
    """Complex image wave from an off-axis hologram (numpy kernel).

    Parameters
    ----------
    image : numpy.ndarray
        Hologram (float32).
    cal : dict
        Calibration from :func:`image_input`.
    sideband, aperture, aperture_unit
        As :func:`reconstruct_offaxis`. With a reference, ``"auto"`` detection runs on it.
    line_width_px : float, optional
        Width (FFT px) of the Fresnel-streak line filter; None for none.
    taper : float
        Apodisation taper width (px); 0 for none.
    output_shape : tuple of int, optional
        Output grid; default the hologram's shape.
    reference : numpy.ndarray, optional
        Vacuum reference hologram of the same shape.

    Returns
    -------
    wave : numpy.ndarray
        complex64 on the output grid: object / reference (relative amplitude), or without a
        reference the sideband wave in hologram units with the carrier removed and the
        apodisation window divided out.
    info : dict
        Sideband positions (integer centre used and sub-pixel refined), aperture geometry and
        the statistics of the hologram (and of the reference).
    """
    shape = image.shape
    out_shape = tuple(output_shape) if output_shape is not None else shape
    R, wy, wx = half_spectrum(image, taper)
    R_ref = None
    if reference is not None:
        R_ref, _, _ = half_spectrum(reference, taper)
    detect_on = R_ref if R_ref is not None else R
    pos, detected = _resolve_sideband(detect_on, shape, sideband, (wy, wx))
    geom = aperture_geometry(shape, cal, pos, aperture, aperture_unit)
    refined = refine_sideband(detect_on, shape, (int(round(pos[0])), int(round(pos[1]))), geom)
    if detected:
        pos = refined
        geom = aperture_geometry(shape, cal, pos, aperture, aperture_unit)
    box, (cy, cx) = cut_sideband(R, shape, pos, geom, line_width_px=line_width_px, carrier=pos)
    wave = box_to_wave(box, out_shape, shape[0] * shape[1])
    info: dict[str, Any] = {
        "sideband_used_px": [float(pos[0]) % shape[0], float(pos[1]) % shape[1]],
        "sideband_centre_px": [cy, cx],
        "geometry": geom,
    }
    contrast = contrast_from_spectrum(R, shape, refined, geom, wy, wx) if reference is None else \
        contrast_from_spectrum(R, shape, pos, geom, wy, wx)
    # the conventional contrast (std / mean) of the vacuum fringes when there is a reference
    info["statistics"] = _stats_dict(shape, cal, refined, contrast, geom,
                                     reference if reference is not None else image)
    oy = np.arange(out_shape[0]) * (shape[0] / out_shape[0])
    ox = np.arange(out_shape[1]) * (shape[1] / out_shape[1])
    if R_ref is not None:
        box_r, _ = cut_sideband(R_ref, shape, pos, geom, line_width_px=line_width_px, carrier=pos)
        wave_r = box_to_wave(box_r, out_shape, shape[0] * shape[1])
        info["reference_contrast"] = contrast_from_spectrum(R_ref, shape, refined, geom, wy, wx)
        # object / reference = o * conj(r) / |r|^2 (carrier, distortions and window cancel)
        mag2 = wave_r.real * wave_r.real + wave_r.imag * wave_r.imag
        tiny = np.float32(np.finfo(np.float32).tiny)
        wave *= np.conj(wave_r)
        wave /= np.maximum(mag2, tiny)
    else:
        # carrier ramp left by the integer re-centring (sub-pixel remainder)
        dy, dx = refined[0] - cy, refined[1] - cx
        ey = np.exp(-2j * np.pi * dy * oy / shape[0]).astype(np.complex64)
        ex = np.exp(-2j * np.pi * dx * ox / shape[1]).astype(np.complex64)
        if taper > 0:
            ey = ey / np.maximum(taper_profile(shape[0], taper, oy), 1e-3).astype(np.float32)
            ex = ex / np.maximum(taper_profile(shape[1], taper, ox), 1e-3).astype(np.float32)
        wave *= ey[:, None]
        wave *= ex[None, :]
    return wave, info


def reconstruct_offaxis(
    hologram: Any,
    reference: Any = None,
    *,
    sideband: Any = "auto",
    aperture: float | None = None,
    aperture_unit: str = "px",
    line_filter: bool | float = False,
    apodize: bool | int = True,
    output_shape: Any = None,
    unwrap: bool | str = True,
) -> xr.Dataset:
    """Reconstruct phase and amplitude from an off-axis electron hologram.

    Parameters
    ----------
    hologram : xarray.DataArray
        Hologram with dims (y, x) and coordinates in nm (or a 2-D numpy array, uncalibrated).
    reference : xarray.DataArray, optional
        Vacuum reference hologram of the same shape; the object wave is divided by its wave
        (carrier, camera distortions and apodisation cancel; sideband detection runs on it).
    sideband : {"auto", "upper", "lower"} or (y, x)
        Sideband to cut out: detected (``"auto"`` = ``"lower"``, refined to sub-pixel) or a
        position in pixels of the unshifted FFT, used as given (holospy's ``sb_position=p``
        corresponds to ``sideband=-p``; see the module docstring).
    aperture : float, optional
        Aperture radius; default a third of the centre-to-sideband distance.
    aperture_unit : {"px", "1/nm", "fraction"}
        Unit of ``aperture``: FFT pixels (mean of the y and x Fourier pixel sizes, as holospy's
        ``sb_size``), physical frequency (1/nm) or fraction of the carrier frequency.
    line_filter : bool or float
        Remove the biprism Fresnel-fringe streak: True for a 3 FFT-px wide strip, or the strip
        width in FFT px.
    apodize : bool or int
        Tukey taper of the hologram before the FFT (default width 1/16 of the image, or the
        width in px); suppresses the streaks of the image borders.
    output_shape : int or (ny, nx), optional
        Output sampling (not larger than the hologram and large enough for the aperture);
        coordinates are scaled accordingly.
    unwrap : bool or {"quality", "fft"}
        Unwrap the phase (default quality-guided); False returns it wrapped to [-pi, pi).

    Returns
    -------
    xarray.Dataset
        ``phase`` (rad, y, x; unwrapped, float32), ``amplitude`` (relative to the reference, or
        hologram units without one). ``attrs`` hold the statistics (as
        :func:`hologram_statistics`; carrier measured on the reference when there is one,
        ``fringe_contrast`` of the reference's vacuum fringes, ``fringe_visibility`` of the
        hologram: ``sideband_position_px`` [y, x] unshifted FFT sub-pixel, ``aperture_px``,
        ``fringe_spacing_nm``, ``fringe_sampling_px``, ``fringe_contrast``,
        ``carrier_frequency_per_nm`` and more), the reconstruction parameters
        (``sideband_used_px``, ``aperture_per_nm``, ``aperture_edge_px``, ``apodization_px``,
        ``line_filter_px``, ``output_shape``, ``reference``) and ``provenance``.

    Raises
    ------
    DimensionError, NonFiniteError, InputError
        Wrong dims, NaN/inf values, shape mismatch with the reference, no sideband found.
    ConfigError
        Invalid sideband, aperture (including one that reaches the centre band), unit, taper or
        output shape.

    Examples
    --------
    >>> from ionscope.simulate import simulate
    >>> ds = simulate("holography", seed=0, noise=False)
    >>> rec = reconstruct_offaxis(ds["hologram"], ds["reference"])
    >>> rec["phase"].dims
    ('y', 'x')
    """
    image, cal = image_input(hologram, "hologram")
    ref_img = None
    if reference is not None:
        ref_img, ref_cal = image_input(reference, "reference hologram")
        if ref_img.shape != image.shape:
            raise DimensionError(
                f"reference hologram shape {ref_img.shape} differs from the hologram's "
                f"{image.shape}; record (or crop) both on the same area of the detector"
            )
        if cal["calibrated"] and ref_cal["calibrated"] and not np.allclose(
            [cal["dy"], cal["dx"]], [ref_cal["dy"], ref_cal["dx"]], rtol=1e-3
        ):
            raise DimensionError(
                f"reference pixel size {ref_cal['dy']:g} x {ref_cal['dx']:g} nm differs from the "
                f"hologram's {cal['dy']:g} x {cal['dx']:g} nm"
            )
    if aperture_unit not in APERTURE_UNITS:
        raise ConfigError(f"aperture_unit must be one of {APERTURE_UNITS}, got {aperture_unit!r}")
    if aperture_unit == "1/nm" and not cal["calibrated"]:
        raise ConfigError("aperture_unit '1/nm' needs a hologram with coordinates in nm")
    taper = _taper_arg(apodize, image.shape)
    if isinstance(line_filter, (bool, np.bool_)):
        line_width = 3.0 if line_filter else None
    else:
        try:
            line_width = float(line_filter)
        except (TypeError, ValueError):
            raise ConfigError(
                f"line_filter must be True, False or a width in FFT px, got {line_filter!r}"
            ) from None
        if not (math.isfinite(line_width) and line_width > 0):
            raise ConfigError(f"line_filter width must be positive, got {line_filter!r}")
    out_shape = _output_shape(output_shape, image.shape)
    if unwrap not in (True, False, "quality", "fft"):
        raise ConfigError(f"unwrap must be True, False, 'quality' or 'fft', got {unwrap!r}")

    wave, info = offaxis_wave(
        image, cal, sideband=sideband, aperture=aperture, aperture_unit=aperture_unit,
        line_width_px=line_width, taper=taper, output_shape=out_shape, reference=ref_img,
    )
    wrapped = np.angle(wave)
    amplitude = np.abs(wave)
    if unwrap:
        method = "quality" if unwrap is True else unwrap
        phase = unwrap_kernel(wrapped, method=method)
    else:
        phase = wrapped
    geom = info["geometry"]
    sy, sx = image.shape[0] / out_shape[0], image.shape[1] / out_shape[1]
    coords = {
        "y": cal["y0"] + np.arange(out_shape[0]) * cal["dy"] * sy,
        "x": cal["x0"] + np.arange(out_shape[1]) * cal["dx"] * sx,
    }
    units = {"y": "nm", "x": "nm"} if cal["calibrated"] else {"y": "px", "x": "px"}
    phase_da = signal(phase.astype(np.float32), ("y", "x"), name="phase", units="rad",
                      coords=coords, coord_units=units,
                      long_name="unwrapped phase" if unwrap else "wrapped phase")
    amp_da = signal(amplitude.astype(np.float32), ("y", "x"), name="amplitude",
                    units="1" if ref_img is not None else "counts", coords=coords,
                    coord_units=units,
                    long_name="amplitude relative to the reference" if ref_img is not None
                    else "sideband amplitude")
    ds = xr.Dataset({"phase": phase_da, "amplitude": amp_da})
    stats = info["statistics"]
    attrs = dict(stats)
    attrs.update(
        method="offaxis",
        resolution="aperture",
        sideband_used_px=info["sideband_used_px"],
        aperture_px=float(geom["radius_px"]),
        aperture_per_nm=float(geom["radius_per_nm"]) if cal["calibrated"] else None,
        aperture_edge_px=float(geom["edge_per_nm"] / (0.5 * (geom["fy"] + geom["fx"]))),
        apodization_px=float(taper),
        line_filter_px=line_width,
        output_shape=[int(out_shape[0]), int(out_shape[1])],
        reference=ref_img is not None,
        unwrap=unwrap if isinstance(unwrap, str) else bool(unwrap),
    )
    if "reference_contrast" in info:
        attrs["reference_fringe_visibility"] = float(info["reference_contrast"])
    if isinstance(hologram, xr.DataArray) and "beam_energy_kV" in hologram.attrs:
        attrs["beam_energy_kV"] = hologram.attrs["beam_energy_kV"]
    ds.attrs = jsonable(attrs)
    params = {
        "sideband": sideband if isinstance(sideband, str) else [float(v) for v in sideband],
        "aperture": aperture, "aperture_unit": aperture_unit, "line_filter": line_width,
        "apodize": taper, "output_shape": list(out_shape), "unwrap": ds.attrs["unwrap"],
    }
    inputs = [hologram] + ([reference] if reference is not None else [])
    history = provenance(hologram) if isinstance(hologram, xr.DataArray) else []
    return with_provenance(ds, STEP, params, inputs, history=history, variables=("phase", "amplitude"))


__all__ = [
    "reconstruct_offaxis",
    "hologram_statistics",
    "statistics_kernel",
    "offaxis_wave",
    "image_input",
    "find_sideband_peak",
    "refine_sideband",
    "aperture_geometry",
    "aperture_weights",
    "line_filter_weights",
    "cut_sideband",
    "box_to_wave",
    "half_spectrum",
    "taper_profile",
    "lag_one_frequency",
]
