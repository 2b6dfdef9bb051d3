"""Band-averaged line profiles of maps, their noise statistics, and interface geometry.

:func:`band_profile` (kernels :func:`band_samples`, :func:`band_statistics`) samples a
``(y, x)`` map along a line, averages parallel lines and estimates standard errors corrected
for the noise correlation between lines; :func:`profile_covariance` builds the covariance of
the profile's correlated noise. :func:`detect_interface` finds a straight interface in a map
and :func:`normal_segment` gives the end points of a profile normal to it.

References
----------
H. Flyvbjerg, H.G. Petersen, J. Chem. Phys. 91 (1989) 461; C.J. Geyer, Stat. Sci. 7 (1992)
473 (integrated autocorrelation time of correlated samples).
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import xarray as xr

from ionscope.data import axis_calibration, provenance, units_of, with_provenance
from ionscope import units
from ionscope.errors import ConfigError, DimensionError, InputError
from ionscope.validation import Interval, Options, validate_params

#: Length units and their size in nm (kept for compatibility; the table is :mod:`ionscope.units`).
LENGTH_TO_NM = units.LENGTH_TO_NM


def _length_factor(unit: str, what: str) -> float:
    return units.require_length_to_nm(unit, f"the {what} axis")


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


def _point(p: Sequence[float]) -> tuple[float, ...]:
    """A point as messages show it: plain rounded floats (no numpy reprs)."""
    return tuple(round(float(v), 2) for v in p)


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
            f"the profile line from {_point(start)} to {_point(end)} px is {length:.3g} nm long, "
            f"shorter than two samples ({step:.3g} nm); choose points further apart"
        )
    along = (p1 - p0) / length
    normal = np.array([-along[1], along[0]])  # 90 degrees to the left of the line
    ny, nx = np.shape(image)
    half = (width - 1) / 2.0 * step
    # the band is the rectangle of these corners: inside the image (a rectangle too) exactly
    # when they are - checked before any sample is made, so that a far-off point or a huge
    # width cannot ask for a huge grid
    corners = np.array([p + normal * o for p in (p0, p1) for o in (-half, half)])
    rows, cols = corners[:, 0] / dy, corners[:, 1] / dx
    if np.any((rows < -0.5) | (rows > ny - 0.5) | (cols < -0.5) | (cols > nx - 0.5)):
        raise InputError(
            f"the profile band ({width} lines from {_point(start)} to "
            f"{_point(end)} px) leaves the {ny} x {nx} px image; move the end points "
            "inwards or narrow the band"
        )
    s = np.arange(int(np.floor(length / step + 1e-9)) + 1) * step
    o = (np.arange(width) - (width - 1) / 2.0) * step
    pts = p0[:, None, None] + along[:, None, None] * s[None, None, :] + normal[:, None, None] * o[None, :, None]
    rows, cols = pts[0] / dy, pts[1] / dx  # a hair outside by rounding: mode="nearest" clamps it
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
        # points with fewer than 2 finite lines (e.g. in a NaN vacuum) have no spread
        sigma = np.where(count >= 2, np.sqrt(var), np.nan)
    return {"mean": mean, "sigma": sigma, "count": count, "rho_along": rho_along,
            "tau_across": tau, "independent_lines": n_lines / tau,
            "correlation_length_along": 0.5 * (tau_along - 1.0) if np.isfinite(tau_along) else float("nan")}


def _image_geometry(image: xr.DataArray, pixel_size_nm: float | Sequence[float] | None):
    """(offset_y, offset_x) nm, (dy, dx) nm of a (y, x) image."""
    if pixel_size_nm is not None:
        size = np.broadcast_to(np.asarray(pixel_size_nm, dtype=np.float64), (2,))
        if not np.all(np.isfinite(size) & (size > 0)):
            raise ConfigError(f"pixel_size_nm must be positive, got {pixel_size_nm!r}")
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


@validate_params({
    "width": [Interval(int, 1, None, unit="px (lines)")],
    "unit": [Options({"px", "nm"})],
    "step": [Interval(float, 0, None, closed="neither"), None],
    "order": [Interval(int, 0, 5)],
})
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

    Computes: loads the map (a dask-backed one is computed) and returns a numpy-backed Dataset.

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

    Computes: loads the map and returns plain numbers.
    """
    from scipy.ndimage import gaussian_filter

    image = _as_image(image, "detect_interface")
    if not (0 < fraction <= 0.5):
        raise ConfigError(f"fraction must lie in (0, 0.5], got {fraction!r}")
    if not (np.isfinite(smooth_px) and smooth_px >= 0):
        raise ConfigError(f"smooth_px must be a non-negative number of pixels, got {smooth_px!r}")
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
    "LENGTH_TO_NM",
    "band_samples",
    "band_statistics",
    "band_profile",
    "profile_covariance",
    "detect_interface",
    "normal_segment",
]
