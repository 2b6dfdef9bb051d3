r"""Iso-lines of a map as depth profiles: where each column last crosses a level.

A delithiation front in a cross-section is an iso-line of the Li fraction: Li-poor between the
electrolyte and the front, Li-rich beyond it. Seen column by column (each column runs from the
electrolyte into the electrode), the front is where the profile, read from the far side towards
the electrolyte, first falls below the level; the crossing is placed by linear interpolation
between the two samples that straddle the level. Reading from the far side makes a Li-poor
interfacial layer next to the electrolyte (below the level at all times) part of the Li-poor
side instead of a second front.

Technique-neutral: used by the ``licoo2`` twin for its true front positions and by
:mod:`ionscope.transport` for the measured ones.
"""

from __future__ import annotations

import numpy as np

__all__ = ["iso_depth"]


def iso_depth(profiles: np.ndarray, level: float, depth: np.ndarray) -> np.ndarray:
    """Depth at which each profile last crosses ``level`` (linear interpolation).

    Parameters
    ----------
    profiles : ndarray, shape (..., n)
        Values along depth (the last axis), sample 0 next to the electrolyte.
    level : float
        The iso-value (same units as ``profiles``).
    depth : ndarray, shape (n,)
        Depth of each sample (nm), increasing.

    Returns
    -------
    ndarray, shape (...)
        The depth (nm) of the deepest crossing: between the deepest sample below ``level`` and
        the next sample (which is at or above it). NaN when no sample is below the level and
        when the deepest sample itself is below it (no crossing inside the field).

    Examples
    --------
    >>> float(iso_depth(np.array([0.2, 0.4, 0.6, 0.8]), 0.5, np.array([0.0, 1.0, 2.0, 3.0])))
    1.5
    """
    x = np.asarray(profiles, dtype=np.float64)
    d = np.asarray(depth, dtype=np.float64)
    n = x.shape[-1]
    below = x < level
    # index of the deepest sample below the level (-1: none)
    last = np.where(below.any(axis=-1), n - 1 - np.argmax(below[..., ::-1], axis=-1), -1)
    ok = (last >= 0) & (last < n - 1)
    j = np.clip(last, 0, n - 2)
    a = np.take_along_axis(x, j[..., None], axis=-1)[..., 0]
    b = np.take_along_axis(x, j[..., None] + 1, axis=-1)[..., 0]
    with np.errstate(invalid="ignore", divide="ignore"):
        frac = np.where(b > a, (level - a) / (b - a), 0.5)
    out = d[j] + np.clip(frac, 0.0, 1.0) * (d[j + 1] - d[j])
    return np.where(ok, out, np.nan)
