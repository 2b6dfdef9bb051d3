r"""Particles in KPFM maps: segmentation, per-particle potential changes, active particles.

- :func:`segment_particles_kernel` labels the particles of one map (the first frame's topography
  or potential): a Gaussian-smoothed map split into two classes by Otsu's threshold (particles are
  the minority class, or the brighter / darker one, or - for a potential, where particles can lie
  above or below the matrix - the pixels far from the matrix's median), holes filled, touching
  particles split by a watershed on the distance to the background, small specks dropped.
- :func:`particle_series_kernel` averages a series of difference maps ``dV = V(t) - V(t0)`` over
  each particle's interior (its border pixels, blurred with the neighbours, left out) with the
  standard error of that mean.
- :func:`active_particles_kernel`: a particle is **active** when its ``|dV|`` exceeds
  ``threshold`` times the map's white-noise SD in some frame (:doc:`/guide/kpfm`: 3 sigma) and
  it follows the cell voltage: with three or more frames and a cell voltage its ``dV(t)``
  correlates with ``V_cell(t) - V_cell(t0)`` (Pearson r >= ``min_correlation``); with two frames
  the signs agree; without a cell voltage only the threshold applies.
- :func:`response_time_kernel`: how long after the cell's state starts to change a particle's
  ``dV`` reaches ``1 - 1/e`` of its last value (linear interpolation between its samples, each at
  the time its rows were scanned).

References
----------
N. Otsu, IEEE Trans. Syst. Man Cybern. 9, 62 (1979). L. Vincent, P. Soille, IEEE Trans. Pattern
Anal. Mach. Intell. 13, 583 (1991) (watershed). Nomura et al., Nat. Commun. 11, 2824 (2020)
(active particles in operando KPFM).
"""

from __future__ import annotations

import warnings

import numpy as np
import scipy.ndimage as ndi

from ionscope.errors import ConfigError, InputError

__all__ = [
    "POLARITIES",
    "segment_particles_kernel",
    "interior_kernel",
    "particle_series_kernel",
    "active_particles_kernel",
    "active_pixels_kernel",
    "edge_profile_kernel",
    "response_time_kernel",
]

#: How particles differ from the matrix in the segmented map.
POLARITIES = ("auto", "bright", "dark", "both")


def segment_particles_kernel(image: np.ndarray, *, exclude: np.ndarray | None = None, smooth_px: float = 0.5,
                             polarity: str = "auto", min_area_px: int = 9, split: bool = True,
                             min_level: float = 0.5) -> np.ndarray:
    """Label the particles of a map.

    Parameters
    ----------
    image : numpy.ndarray (y, x)
        Levelled topography or referenced potential (NaN allowed: never a particle).
    exclude : numpy.ndarray of bool, optional
        Pixels that are not particles whatever their value (the current collector).
    smooth_px : float
        Gaussian smoothing before the threshold (px).
    polarity : {"auto", "bright", "dark", "both"}
        Particles are the minority class of Otsu's split (``auto``), the brighter or the darker
        class, or (``both``) the pixels whose distance from the median exceeds Otsu's threshold
        of that distance.
    min_area_px : int
        Smaller labels are dropped.
    split : bool
        Split touching particles by a watershed on the distance transform (markers: the distance
        maxima more than 1.5 px above their surroundings).
    min_level : float
        A label is kept when its median lies at least this fraction of the way from the threshold
        to the particles' level (the 90th percentile of all pixels above the threshold, in the
        thresholded quantity): a third phase of intermediate height - the Pd grains and strands
        of the composite twin, half as high as its LiCoPO4 - crosses Otsu's threshold in
        fragments, which this leaves out. 0 keeps every label.

    Returns
    -------
    numpy.ndarray of int32
        Labels 1..n in raster order of their first pixel, 0 elsewhere.
    """
    from skimage.filters import threshold_otsu

    if polarity not in POLARITIES:
        raise ConfigError(f"polarity must be one of {', '.join(POLARITIES)}, got {polarity!r}")
    v = np.asarray(image, dtype=np.float64)
    valid = np.isfinite(v)
    if exclude is not None:
        valid &= ~np.asarray(exclude, dtype=bool)
    if valid.sum() < 16:
        raise InputError("too few valid pixels to segment particles")
    fill = np.where(np.isfinite(v), v, float(np.median(v[valid])))
    sm = ndi.gaussian_filter(fill, smooth_px) if smooth_px > 0 else fill
    if polarity == "both":
        dev = np.abs(sm - float(np.median(sm[valid])))
        t = threshold_otsu(dev[valid])
        mask = dev > t
        level, t_level = dev, t
    else:
        t = threshold_otsu(sm[valid])
        bright = sm > t
        if polarity == "auto":
            polarity = "bright" if np.count_nonzero(bright & valid) <= 0.5 * valid.sum() else "dark"
        mask = bright if polarity == "bright" else ~bright
        level, t_level = (sm, t) if polarity == "bright" else (-sm, -t)
    mask &= valid
    mask = ndi.binary_opening(mask, iterations=1)
    mask = ndi.binary_fill_holes(mask) & valid
    labels, n = ndi.label(mask)
    if split and n:
        from skimage.morphology import h_maxima
        from skimage.segmentation import watershed

        dist = ndi.distance_transform_edt(mask)
        markers, _ = ndi.label(h_maxima(dist, 1.5) & mask)
        if markers.max() > n:  # some component holds more than one particle
            labels = watershed(-dist, markers, mask=mask)
    # drop specks and labels of an intermediate level, renumber 1..n
    area = np.bincount(labels.ravel())
    keep = area >= int(min_area_px)
    keep[0] = False
    if min_level > 0 and labels.max() > 0:
        inside = labels > 0
        # the particles' level: the 90th percentile of the class (its median falls on the
        # intermediate phase when that covers more area than the particles)
        cut = t_level + float(min_level) * (float(np.percentile(level[inside], 90)) - t_level)
        medians = ndi.median(level, labels, np.arange(area.size))
        keep &= np.asarray(medians, dtype=np.float64) >= cut
        keep[0] = False
    lut = np.zeros(area.size, dtype=np.int32)
    lut[keep] = np.arange(1, keep.sum() + 1, dtype=np.int32)
    return lut[labels]


def interior_kernel(labels: np.ndarray, erode_px: int = 1) -> np.ndarray:
    """Labels with ``erode_px`` border pixels of every particle set to 0 (pixels whose
    ``(2 erode_px + 1)``-square neighbourhood holds other labels or the matrix)."""
    if erode_px <= 0:
        return labels.copy()
    size = 2 * int(erode_px) + 1
    lo = ndi.grey_erosion(labels, size=size, mode="nearest")
    hi = ndi.grey_dilation(labels, size=size, mode="nearest")
    return np.where((lo == labels) & (hi == labels), labels, 0).astype(labels.dtype)


def particle_series_kernel(series: np.ndarray, labels: np.ndarray, *, erode_px: int = 1
                           ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mean of every particle in every frame, with its standard error.

    Parameters
    ----------
    series : numpy.ndarray (n, y, x)
        Maps, e.g. ``dV = V(t) - V(t0)`` (NaN pixels left out).
    labels : numpy.ndarray (y, x) of int
        Particle labels 1..p (0 = matrix).
    erode_px : int
        Border pixels of each particle left out (:func:`interior_kernel`); a particle too small
        to keep an interior keeps all its pixels.

    Returns
    -------
    mean, error : numpy.ndarray (p, n)
        Mean and standard error: the SD over its pixels / sqrt(pixels). The SD holds any real
        variation within the particle too (its potential changing while its rows are scanned),
        so the error is an upper bound of the mean's noise.
    count : numpy.ndarray (p, n)
        Pixels averaged.
    """
    s = np.asarray(series, dtype=np.float64)
    if s.ndim == 2:
        s = s[None]
    labels = np.asarray(labels)
    if s.shape[1:] != labels.shape:
        raise InputError(f"the maps {s.shape[1:]} and the labels {labels.shape} differ in shape")
    p = int(labels.max()) if labels.size else 0
    inner = interior_kernel(labels, erode_px)
    kept = np.bincount(inner.ravel(), minlength=p + 1)
    # particles without an interior keep their whole area
    use = np.where(np.isin(labels, np.flatnonzero(kept == 0)), labels, inner)
    flat = use.ravel()
    n = s.shape[0]
    mean = np.full((p, n), np.nan)
    err = np.full((p, n), np.nan)
    count = np.zeros((p, n), dtype=np.int64)
    for k in range(n):
        v = s[k].ravel()
        ok = np.isfinite(v) & (flat > 0)
        c = np.bincount(flat[ok], minlength=p + 1)[1:]
        s1 = np.bincount(flat[ok], v[ok], minlength=p + 1)[1:]
        s2 = np.bincount(flat[ok], v[ok] * v[ok], minlength=p + 1)[1:]
        with np.errstate(invalid="ignore", divide="ignore"):
            m = s1 / c
            var = np.clip(s2 / c - m * m, 0, None) * c / np.maximum(c - 1, 1)
            mean[:, k] = np.where(c > 0, m, np.nan)
            err[:, k] = np.where(c > 1, np.sqrt(var / c), np.nan)
        count[:, k] = c
    return mean, err, count


def active_particles_kernel(dv: np.ndarray, noise: float, *, threshold: float = 3.0,
                            cell: np.ndarray | None = None, min_correlation: float = 0.5
                            ) -> tuple[np.ndarray, np.ndarray]:
    """Which particles are active (module docstring).

    Parameters
    ----------
    dv : numpy.ndarray (p, n)
        Mean change of every particle in every frame (the first frame is the reference: 0).
    noise : float
        White-noise SD of one map (same units as ``dv``).
    threshold : float
        ``|dV|`` must exceed ``threshold * noise`` in at least one frame.
    cell : numpy.ndarray (n,) or (p, n), optional
        The cell voltage change ``V_cell(t) - V_cell(t0)`` at each frame (per particle: at the
        time its rows were scanned).
    min_correlation : float
        Least Pearson r between ``dV(t)`` and the cell voltage change (three frames or more).

    Returns
    -------
    active : numpy.ndarray of bool (p,)
    correlation : numpy.ndarray (p,)
        Pearson r with the cell voltage (NaN without it or with fewer than three frames).
    """
    dv = np.atleast_2d(np.asarray(dv, dtype=np.float64))
    p, n = dv.shape
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        big = np.nanmax(np.abs(dv), axis=1) > threshold * float(noise) if n else np.zeros(p, bool)
    big = np.where(np.isfinite(big), big, False).astype(bool)
    r = np.full(p, np.nan)
    if cell is None:
        return big, r
    c = np.broadcast_to(np.asarray(cell, dtype=np.float64), (p, n))
    follows = np.zeros(p, dtype=bool)
    for i in range(p):
        ok = np.isfinite(dv[i]) & np.isfinite(c[i])
        if ok.sum() >= 3:
            a, b = dv[i, ok] - dv[i, ok].mean(), c[i, ok] - c[i, ok].mean()
            den = np.sqrt(np.sum(a * a) * np.sum(b * b))
            r[i] = float(np.sum(a * b) / den) if den > 0 else np.nan
            follows[i] = bool(np.isfinite(r[i]) and r[i] >= min_correlation)
        elif ok.sum() >= 1:
            last = np.flatnonzero(ok)[-1]
            follows[i] = bool(np.sign(dv[i, last]) == np.sign(c[i, last]) and c[i, last] != 0)
    return big & follows, r


def active_pixels_kernel(series: np.ndarray, labels: np.ndarray, mean: np.ndarray, active: np.ndarray, *,
                         fraction: float = 0.5) -> np.ndarray:
    """Pixels of the active particles that changed with them.

    A particle segmented on the topography can take in a neighbour of about its height - a Pd
    grain of the conductor that connects it, half as high as the LiCoPO4 on the composite twin -
    whose potential does not follow the cell. Of every active particle the pixels are kept whose
    change in the frame of the particle's largest ``|dV|`` reaches ``fraction`` of that mean
    change (same sign); pixels not covered in that frame are kept.

    Parameters
    ----------
    series : numpy.ndarray (n, y, x)
        Difference maps ``dV``.
    labels : numpy.ndarray (y, x) of int
        Particle labels 1..p.
    mean : numpy.ndarray (p, n)
        Mean change of every particle (:func:`particle_series_kernel`).
    active : numpy.ndarray of bool (p,)
        Which particles are active (:func:`active_particles_kernel`).
    fraction : float
        Share of the particle's mean change a pixel must reach (0 keeps every pixel).

    Returns
    -------
    numpy.ndarray of bool (y, x)
    """
    s = np.asarray(series, dtype=np.float64)
    if s.ndim == 2:
        s = s[None]
    labels = np.asarray(labels)
    mean = np.atleast_2d(np.asarray(mean, dtype=np.float64))
    active = np.asarray(active, dtype=bool)
    p = int(labels.max()) if labels.size else 0
    out = np.zeros(labels.shape, dtype=bool)
    for i in np.flatnonzero(active[:p]):
        m = mean[i]
        if not np.isfinite(m).any():
            continue
        k = int(np.nanargmax(np.abs(m)))
        pix = labels == i + 1
        v = s[k][pix] * np.sign(m[k])
        keep = ~np.isfinite(v) | (v >= fraction * abs(m[k]))
        out[pix] = keep
    return out


def edge_profile_kernel(image: np.ndarray, labels: np.ndarray, *, half_width_px: int = 8,
                        exclude: np.ndarray | None = None) -> tuple[np.ndarray, int]:
    """Mean profile across the particles' edges along the scan lines: a measure of resolution
    that no line offset disturbs.

    Every row of every particle gives its left and its right edge when the particle's pixels in
    that row are contiguous, the edge is steep (the same edge in the rows above and below lies
    within 1 px), ``half_width_px`` pixels inside belong to the particle and as many outside to
    the matrix (label 0, not ``exclude``), and all are finite. Each such profile runs from inside
    to outside (the boundary between samples ``half_width_px - 1`` and ``half_width_px``); it is
    turned so that the particle side lies above the matrix side (the sign of the difference of
    their means) and the profiles are averaged. The 10-90 % width of the mean
    (:func:`ionscope.kpfm.level.step_width_kernel`) is the resolution at the particles' edges;
    a row offset only shifts a profile, which leaves the average's shape alone. The window
    decides how much of a long PSF tail the width sees: compare widths of one window only.

    Parameters
    ----------
    image : numpy.ndarray (y, x)
        A potential map.
    labels : numpy.ndarray (y, x) of int
        Particle labels (0 = matrix).
    half_width_px : int
        Samples on either side of the edge.
    exclude : numpy.ndarray of bool (y, x), optional
        Matrix pixels not to use (the collector and its border).

    Returns
    -------
    profile : numpy.ndarray (2 half_width_px,)
        The mean oriented profile (NaN when no edge qualifies).
    count : int
        Profiles averaged.
    """
    v = np.asarray(image, dtype=np.float64)
    lab = np.asarray(labels)
    m = int(half_width_px)
    if m < 2:
        raise ConfigError(f"half_width_px must be at least 2, got {half_width_px!r}")
    ny, nx = lab.shape
    matrix = lab == 0
    if exclude is not None:
        matrix &= ~np.asarray(exclude, dtype=bool)
    ok_pix = np.isfinite(v)
    p = int(lab.max()) if lab.size else 0
    # first and last column of every label in every row (-1 where absent), and whether contiguous
    first = np.full((ny, p + 1), -1, dtype=np.int64)
    last = np.full((ny, p + 1), -1, dtype=np.int64)
    count = np.zeros((ny, p + 1), dtype=np.int64)
    cols = np.arange(nx)
    for j in range(ny):
        row = lab[j]
        count[j] = np.bincount(row, minlength=p + 1)
        present = count[j] > 0
        lo = np.full(p + 1, nx, dtype=np.int64)
        hi = np.full(p + 1, -1, dtype=np.int64)
        np.minimum.at(lo, row, cols)
        np.maximum.at(hi, row, cols)
        first[j] = np.where(present, lo, -1)
        last[j] = np.where(present, hi, -1)
    offs = np.arange(-m + 1, m + 1)
    profiles = []
    for j in range(1, ny - 1):
        for label in range(1, p + 1):
            if count[j, label] == 0 or last[j, label] - first[j, label] + 1 != count[j, label]:
                continue
            for side, edges in ((-1, first), (1, last)):
                e = int(edges[j, label])
                if edges[j - 1, label] < 0 or edges[j + 1, label] < 0:
                    continue
                if abs(edges[j - 1, label] - e) > 1 or abs(edges[j + 1, label] - e) > 1:
                    continue
                idx = e + side * offs  # inside (m samples) -> outside (m samples)
                if idx.min() < 0 or idx.max() >= nx:
                    continue
                if not (np.all(lab[j, idx[:m]] == label) and np.all(matrix[j, idx[m:]]) and np.all(ok_pix[j, idx])):
                    continue
                profiles.append(v[j, idx])
    if not profiles:
        return np.full(2 * m, np.nan), 0
    prof = np.asarray(profiles)
    sign = np.sign(prof[:, :m].mean(axis=1) - prof[:, m:].mean(axis=1))
    sign[sign == 0] = 1.0
    return (prof * sign[:, None]).mean(axis=0), int(prof.shape[0])


def response_time_kernel(times: np.ndarray, dv: np.ndarray, t_on: float | np.ndarray, *,
                         fraction: float = 1 - np.exp(-1.0)) -> np.ndarray:
    """Time from ``t_on`` until each particle's ``dV`` first reaches ``fraction`` of its last
    value (s), by linear interpolation between its samples.

    Parameters
    ----------
    times : numpy.ndarray (p, n) or (n,)
        When each particle was sampled in each frame (s).
    dv : numpy.ndarray (p, n)
        Its change (first frame 0).
    t_on : float or numpy.ndarray (p,)
        When the cell's state started to change (s).
    fraction : float
        Level reached, as a fraction of the last value (default ``1 - 1/e``).

    Returns
    -------
    numpy.ndarray (p,)
        NaN when the last value is 0 or not finite, or never reached.
    """
    dv = np.atleast_2d(np.asarray(dv, dtype=np.float64))
    p, n = dv.shape
    t = np.broadcast_to(np.asarray(times, dtype=np.float64), (p, n))
    t_on = np.broadcast_to(np.asarray(t_on, dtype=np.float64), (p,))
    out = np.full(p, np.nan)
    for i in range(p):
        ok = np.isfinite(dv[i]) & np.isfinite(t[i])
        if ok.sum() < 2:
            continue
        ti, vi = t[i, ok], dv[i, ok]
        final = vi[-1]
        if final == 0:
            continue
        f = vi / final
        hit = np.flatnonzero(f >= fraction)
        if hit.size == 0:
            continue
        j = int(hit[0])
        if j == 0:
            crossing = ti[0]
        else:
            crossing = ti[j - 1] + (fraction - f[j - 1]) * (ti[j] - ti[j - 1]) / (f[j] - f[j - 1])
        out[i] = crossing - t_on[i]
    return out
