r"""Optical flow of Li features between frames: kernels on numpy arrays.

The optical flow :math:`\mathbf u` between frames :math:`k` and :math:`k + 1` moves the features
of frame :math:`k` onto those of frame :math:`k + 1`, :math:`x_{k+1}(\mathbf r + \mathbf u)
\approx x_k(\mathbf r)`; divided by the time between the frames it is a velocity (nm/s) of
the Li features (a front, a Li-poor domain).

Method: the TV-L1 variational flow of Zach, Pock & Bischof (DAGM 2007; Wedel et al. 2009;
Pérez, Meinhardt-Llopis & Facciolo, IPOL 3 (2013) 137) as implemented by scikit-image
(:func:`skimage.registration.optical_flow_tvl1`). Chosen by measurement over the iterative
Lucas-Kanade flow (:func:`skimage.registration.optical_flow_ilk`): on a 64 x 64 px textured
front translating by 0.7 px per frame with white noise of 0.02 (a denoised Li map), TV-L1
recovers the displacement to 2 % (spurious cross-motion 0.07 px) where ILK (radius 7) is 3.7 %
short (0.18 px), at about twice the cost per frame pair (``benchmarks/transport.py``, flow
choice; benchmarks/RESULTS.md).

The flow only sees what the maps show: a feature that changes without moving (Li leaving a
domain uniformly) has no flow, and the brightness-constancy assumption does not conserve Li.
:mod:`ionscope.transport.continuity` gives the flux that does.
"""

from __future__ import annotations

import numpy as np

__all__ = ["frame_flow", "velocity_at_frames"]


def frame_flow(first: np.ndarray, second: np.ndarray) -> np.ndarray:
    """TV-L1 displacement (px) that carries ``first``'s features onto ``second``.

    Parameters
    ----------
    first, second : ndarray, shape (ny, nx)
        Two frames on the same grid.

    Returns
    -------
    ndarray, shape (2, ny, nx)
        Displacement along y and x (px, float64).

    Examples
    --------
    >>> yy = np.mgrid[:32, :32][0].astype(float)
    >>> u = frame_flow(np.tanh((yy - 12) / 3), np.tanh((yy - 13) / 3))
    >>> bool(abs(u[0][8:18].mean() - 1.0) < 0.1)
    True
    """
    from skimage.registration import optical_flow_tvl1

    a = np.asarray(first, dtype=np.float32)
    b = np.asarray(second, dtype=np.float32)
    return optical_flow_tvl1(a, b).astype(np.float64)


def velocity_at_frames(x: np.ndarray, t: np.ndarray, pixel_nm: tuple[float, float]) -> np.ndarray:
    """Feature velocity (nm/s) at every frame from the flow to its neighbours.

    The flow between consecutive frames is divided by their time difference; a frame gets the
    mean of the velocities of the two intervals it bounds (one at the series' ends).

    Parameters
    ----------
    x : ndarray, shape (T, ny, nx)
        The series, T >= 2.
    t : ndarray, shape (T,)
        Frame times (s), increasing.
    pixel_nm : (float, float)
        Pixel size along y and x (nm).

    Returns
    -------
    ndarray, shape (2, T, ny, nx)
        ``v_y``, ``v_x`` (nm/s).
    """
    x = np.asarray(x)
    n = x.shape[0]
    scale = np.array([pixel_nm[0], pixel_nm[1]])[:, None, None]
    between = np.stack([frame_flow(x[k], x[k + 1]) * scale / (t[k + 1] - t[k]) for k in range(n - 1)], axis=1)
    out = np.empty((2,) + x.shape)
    out[:, 0], out[:, -1] = between[:, 0], between[:, -1]
    if n > 2:
        out[:, 1:-1] = 0.5 * (between[:, :-1] + between[:, 1:])
    return out
