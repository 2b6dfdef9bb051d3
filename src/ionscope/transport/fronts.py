r"""Delithiation / lithiation fronts: iso-lines of the Li fraction, tracked frame by frame.

A front is the iso-line :math:`x = x_f` of the Li fraction. Each column across the interface
(a line from the electrolyte into the electrode) crosses it at a depth :math:`d(t, s)` (nm from
the first pixel row or column on the electrolyte side; ``s`` runs along the interface):
:func:`ionscope.profiles.iso_depth`, the deepest crossing, so that a Li-poor interfacial layer
next to the electrolyte belongs to the Li-poor side. From it:

* the front velocity normal to itself,
  :math:`v_n = \partial_t d / \sqrt{1 + (\partial_s d)^2}` (nm/s, positive away from the
  electrolyte: delithiation advancing into the electrode), with :math:`\partial_t d` the slope of
  a straight line over a few frames inside each run of one cell state
  (:func:`~ionscope.transport.continuity.rate_of_change`);
* the roughness, the standard deviation of :math:`d` along the interface (nm).
"""

from __future__ import annotations

import numpy as np

from ionscope.profiles.isoline import iso_depth
from ionscope.transport.continuity import rate_of_change

__all__ = ["LEVEL_FRACTION", "orient", "front_depth", "front_velocity", "front_roughness", "default_level"]


def orient(x: np.ndarray, side: str) -> np.ndarray:
    """View of a (..., ny, nx) array with the electrolyte side first along the last axis: the
    result is (..., along, depth)."""
    if side == "top":
        return np.swapaxes(x, -1, -2)
    if side == "bottom":
        return np.swapaxes(x, -1, -2)[..., ::-1]
    if side == "left":
        return x
    return x[..., ::-1]


def front_depth(x: np.ndarray, level: float, side: str, pixel_nm: float) -> np.ndarray:
    """Front depth (nm) per frame and column: (T, along), NaN where a column has no crossing.

    Parameters
    ----------
    x : ndarray, shape (T, ny, nx)
        Li fraction series.
    level : float
        The iso-value :math:`x_f`.
    side : {'top', 'bottom', 'left', 'right'}
        The electrolyte side.
    pixel_nm : float
        Pixel size along the depth axis (nm).

    Examples
    --------
    >>> x = np.tile(np.linspace(0.0, 1.0, 11)[:, None], (1, 3))[None]  # rises with depth
    >>> front_depth(x, 0.55, "top", 2.0).round(3).tolist()
    [[11.0, 11.0, 11.0]]
    """
    columns = orient(np.asarray(x, dtype=np.float64), side)
    n = columns.shape[-1]
    return iso_depth(columns, level, np.arange(n) * float(pixel_nm))


def front_velocity(depth: np.ndarray, t: np.ndarray, runs: np.ndarray, window: int, pixel_nm: float
                   ) -> np.ndarray:
    r"""Normal velocity of the front (nm/s) per frame and column, NaN where the front is missing
    in the frame or in a frame of the fit.

    Parameters
    ----------
    depth : ndarray, shape (T, along)
        :func:`front_depth` (nm).
    t, runs, window
        As :func:`~ionscope.transport.continuity.rate_of_change`.
    pixel_nm : float
        Pixel size along the interface (nm), for the front's slope.
    """
    d = np.asarray(depth, dtype=np.float64)
    rate = rate_of_change(d, t, runs, window)  # NaN propagates through the sums of a window
    slope = np.gradient(d, float(pixel_nm), axis=-1) if d.shape[-1] > 1 else np.zeros_like(d)
    return rate / np.sqrt(1.0 + slope**2)


def front_roughness(depth: np.ndarray) -> np.ndarray:
    """Standard deviation of the front depth along the interface (nm) per frame (NaN with fewer
    than two columns crossing)."""
    d = np.asarray(depth, dtype=np.float64)
    ok = np.isfinite(d)
    n = ok.sum(axis=-1)
    mean = np.where(ok, d, 0.0).sum(axis=-1) / np.maximum(n, 1)
    var = np.where(ok, (d - mean[..., None]) ** 2, 0.0).sum(axis=-1) / np.maximum(n - 1, 1)
    return np.where(n >= 2, np.sqrt(var), np.nan)


#: The default front level as a fraction of the Li-rich level of the first frame.
LEVEL_FRACTION = 0.7


def default_level(first: np.ndarray) -> float:
    """The default front level: :data:`LEVEL_FRACTION` (0.7) of the first frame's Li-rich level,
    the median of its pixels above its median (robust to noise and to a Li-poor interfacial
    layer); the ``licoo2`` twin records its true front at the same fraction of its initial
    occupancy.

    Examples
    --------
    >>> default_level(np.r_[np.full(10, 0.4), np.full(30, 1.0)])
    0.7
    """
    x = np.asarray(first, dtype=np.float64).ravel()
    upper = x[x > np.median(x)]
    return round(LEVEL_FRACTION * float(np.median(upper if upper.size else x)), 12)
