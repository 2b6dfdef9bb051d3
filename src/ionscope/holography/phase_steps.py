r"""Phase-shifting holography: measuring the unknown phase steps of a stack.

The steps :math:`\delta_n` of the frames :math:`I_n = g_n [a_0 + a_1 e^{i\delta_n} + \bar a_1
e^{-i\delta_n}]` are never taken as nominal: a first estimate comes from the carrier Fourier
component of each frame (:func:`fourier_steps`), with six or more frames replaced by the closed
form from the rank-3 structure of the stack (:func:`algebraic_steps`), then refined by
alternating least squares (:func:`refine_steps`, after Wang & Han 2004); :func:`measure_steps`
chains them over a vacuum region. Pure numpy; the reconstruction is in
:mod:`ionscope.holography.phaseshift`.

References
----------
Z. Wang, B. Han, Opt. Lett. 29, 1671 (2004) (advanced iterative algorithm for unknown steps).
"""

from __future__ import annotations

import math

import numpy as np

from ionscope.holography.unwrap import wrap

#: Most pixels used to measure the steps (per-frame step noise ~ 1 / sqrt(pixels)).
MAX_STEP_SAMPLES = 32768


def design_matrix(steps: np.ndarray) -> np.ndarray:
    """Rows ``(1, cos delta_n, sin delta_n)`` (n x 3, float64)."""
    steps = np.asarray(steps, dtype=np.float64)
    return np.stack([np.ones_like(steps), np.cos(steps), np.sin(steps)], axis=1)


def fourier_steps(
    frames: np.ndarray, weights: np.ndarray, carrier: tuple[float, float], origin=(0, 0)
) -> np.ndarray:
    """First estimate of the steps from the carrier Fourier component of each frame.

    Parameters
    ----------
    frames : numpy.ndarray
        (n, h, w) region of the (aligned) frames.
    weights : numpy.ndarray
        (h, w) weights (Hann window of a box, or a 0/1 mask).
    carrier : tuple of float
        Carrier frequency (cycles per px, y and x) of the sideband used.
    origin : tuple of int
        Pixel position of the region's first row and column (for the carrier phase).

    Returns
    -------
    numpy.ndarray
        (n,) steps relative to frame 0, wrapped to [0, 2 pi).
    """
    n, h, w = frames.shape
    y = origin[0] + np.arange(h)
    x = origin[1] + np.arange(w)
    ramp = np.exp(-2j * np.pi * carrier[0] * y)[:, None] * np.exp(-2j * np.pi * carrier[1] * x)[None, :]
    kernel = (weights * ramp).ravel()
    data = frames.reshape(n, -1).astype(np.float64)
    data = data - data.mean(axis=0)
    c = data @ kernel
    return np.mod(np.angle(c * np.conj(c[0])), 2 * np.pi)


def _best_steps(r_u: np.ndarray, r_v: np.ndarray, uu: float, uv: float, vv: float) -> np.ndarray:
    """Per frame, the step d minimising ``|r_n - u cos d - v sin d|^2`` given the inner products
    ``r_u = <r_n, u>``, ``r_v = <r_n, v>`` (n,) and ``<u,u>, <u,v>, <v,v>``: a 0.5 degree grid,
    then two finer grids around the best, with a parabolic last step."""

    def score(d):  # larger is better (negative cost without the constant)
        c, s_ = np.cos(d), np.sin(d)
        return 2 * (c * r_u + s_ * r_v) - (c * c * uu + 2 * c * s_ * uv + s_ * s_ * vv)

    n = r_u.size
    cols = np.arange(n)
    grid = np.linspace(0, 2 * np.pi, 720, endpoint=False)[:, None] + np.zeros(n)
    best = grid[np.argmax(score(grid), axis=0), cols]
    for width in (2 * np.pi / 720, 2 * np.pi / 720 / 50):
        local = best + np.linspace(-width, width, 101)[:, None]
        sc = score(local)
        i = np.clip(np.argmax(sc, axis=0), 1, 99)
        y0, y1, y2 = sc[i - 1, cols], sc[i, cols], sc[i + 1, cols]
        denom = y0 - 2 * y1 + y2
        frac = np.where(denom != 0, 0.5 * (y0 - y2) / np.where(denom == 0, 1, denom), 0.0)
        best = local[i, cols] + np.clip(frac, -1, 1) * (local[1, 0] - local[0, 0])
    return best


def algebraic_steps(samples: np.ndarray, gains: np.ndarray | None = None) -> np.ndarray | None:
    """Closed-form steps from the rank-3 structure of the frames (needs 6 or more frames).

    With gains divided out, the (n, P) data is ``F P`` with frame rows ``F_n = (1, cos d_n,
    sin d_n)``. The leading three left singular vectors ``U`` span the columns of F, so
    ``F = U T``; the unknown T obeys ``|u_n^T t_2|^2 + |u_n^T t_3|^2 = 1`` for every frame,
    and, with ``t_1`` from ``U t_1 = 1``, ``u_n^T (Q - t_1 t_1^T) u_n = 0``: homogeneous and
    linear in the 6 entries of the symmetric ``R = Q - t_1 t_1^T``, so R is the null vector of
    that system (5 or more frames; least squares with noise); its scale is fixed by
    ``Q = kappa R + t_1 t_1^T`` having rank 2 (``kappa = -t_1^T R^{-1} t_1``). The two leading
    eigenpairs of Q give ``t_2, t_3`` up to a rotation (the global step offset) and a
    reflection (resolved by the caller), and ``d_n = atan2(u_n.t_3, u_n.t_2)``.

    Returns
    -------
    numpy.ndarray or None
        Steps relative to frame 0 in [0, 2 pi), or None with fewer than 6 frames or a
        degenerate system.
    """
    data = np.asarray(samples, dtype=np.float64)
    n = data.shape[0]
    if n < 6:
        return None
    if gains is not None:
        data = data / np.asarray(gains, dtype=np.float64)[:, None]
    gram = data @ data.T
    w, vecs = np.linalg.eigh(gram)
    U = vecs[:, ::-1][:, :3]
    if w[-3] <= 1e-12 * w[-1]:
        return None
    t1, *_ = np.linalg.lstsq(U, np.ones(n), rcond=None)  # U t1 = 1 (the constant column)
    i, j = np.triu_indices(3)
    A = U[:, i] * U[:, j] * np.where(i == j, 1.0, 2.0)
    # u^T R u = 0 for R = Q - t1 t1^T: R is the null vector of A (up to scale) ...
    r = np.linalg.svd(A)[2][-1]
    R = np.zeros((3, 3))
    R[i, j] = r
    R[j, i] = r
    try:
        kappa = -float(t1 @ np.linalg.solve(R, t1))
    except np.linalg.LinAlgError:
        return None
    # ... and the scale is the one that makes Q = kappa R + t1 t1^T rank 2 (det = 0)
    Q = kappa * R + np.outer(t1, t1)
    lam, vec = np.linalg.eigh(Q)
    if lam[-2] <= 0:
        return None
    t2 = np.sqrt(lam[-1]) * vec[:, -1]
    t3 = np.sqrt(lam[-2]) * vec[:, -2]
    d = np.arctan2(U @ t3, U @ t2)
    return np.mod(d - d[0], 2 * np.pi)


def refine_steps(
    samples: np.ndarray,
    steps: np.ndarray,
    gains: np.ndarray | None = None,
    iterations: int = 20,
    tol: float = 1e-7,
) -> np.ndarray:
    """Alternating least squares for the steps (module docstring, step 3).

    Per pixel, ``(a0, u, v)`` from ``I_n / g_n = a0 + u cos d_n + v sin d_n``; per frame,
    the step minimising ``|I_n / g_n - a0 - u cos d_n - v sin d_n|^2`` (a one-dimensional
    search, so the step stays on the unit circle). The gains are inputs (measured from the
    frames' mean intensities): with free per-pixel ``a0`` and ``a1`` a gain variation along
    ``(cos d_n, sin d_n)`` cannot be told from a change of the fringe term, so they are not
    fitted here.

    Parameters
    ----------
    samples : numpy.ndarray
        (n, P) intensities of the pixels used (vacuum or a subsample of the field).
    steps : numpy.ndarray
        (n,) starting steps (rad).
    gains : numpy.ndarray, optional
        (n,) relative frame doses (default 1).
    iterations : int
        Maximum number of alternations.
    tol : float
        Stop when no step changes by more than ``tol`` rad.

    Returns
    -------
    numpy.ndarray
        Refined steps, ``steps[0] = 0``, wrapped to [0, 2 pi).
    """
    samples = np.asarray(samples, dtype=np.float64)
    n = samples.shape[0]
    steps = np.asarray(steps, dtype=np.float64).copy()
    gains = np.ones(n) if gains is None else np.asarray(gains, dtype=np.float64)
    data = samples / gains[:, None]
    for _ in range(int(iterations)):
        G = design_matrix(steps)
        a0, u, v = np.linalg.solve(G.T @ G, G.T @ data)  # per-pixel fit, normal equations
        r_u = data @ u - a0 @ u  # <I_n - a0, u> per frame
        r_v = data @ v - a0 @ v
        new = _best_steps(r_u, r_v, float(u @ u), float(u @ v), float(v @ v))
        new = np.mod(new - new[0], 2 * np.pi)
        change = np.abs(np.angle(np.exp(1j * (new - steps)))).max()
        steps = new
        if change < tol:
            break
    return steps


def measure_steps(
    frames: np.ndarray,
    carrier: tuple[float, float],
    box: tuple[int, int, int, int] | None,
    mask: np.ndarray | None,
    border: int,
    iterations: int,
) -> tuple[np.ndarray, np.ndarray]:
    """Steps and gains of (aligned) frames, measured over a vacuum box, a mask or, with neither,
    a Hann-weighted subsample of the whole frame inside ``border`` (module docstring of
    :mod:`~ionscope.holography.phaseshift`, step 3): the Fourier estimate, replaced by the
    closed form (:func:`algebraic_steps`, orientation from the Fourier estimate) with 6 or more
    frames, then ``iterations`` alternating least-squares refinements (:func:`refine_steps`).
    Gains are the window-weighted mean intensities relative to their mean."""
    n, ny, nx = frames.shape
    if box is not None:
        y0, y1, x0, x1 = box
        region = frames[:, y0:y1, x0:x1]
        weights = np.outer(np.hanning(y1 - y0 + 2)[1:-1], np.hanning(x1 - x0 + 2)[1:-1])
        steps = fourier_steps(region, weights, carrier, (y0, x0))
        samples = region.reshape(n, -1)
        mean_region, mean_weights = region, weights
    elif mask is not None:
        ys, xs = np.nonzero(mask)
        y0, y1, x0, x1 = ys.min(), ys.max() + 1, xs.min(), xs.max() + 1
        region = frames[:, y0:y1, x0:x1]
        steps = fourier_steps(region, mask[y0:y1, x0:x1].astype(float), carrier, (y0, x0))
        samples = frames[:, mask]
        mean_region, mean_weights = region, mask[y0:y1, x0:x1].astype(float)
    else:
        b = max(border, 1)
        region = frames[:, b:ny - b, b:nx - b]
        h, w = region.shape[1:]
        weights = np.outer(np.hanning(h + 2)[1:-1], np.hanning(w + 2)[1:-1])
        steps = fourier_steps(region, weights, carrier, (b, b))
        step = max(1, int(math.sqrt(h * w / 65536)))
        samples = region[:, ::step, ::step].reshape(n, -1)
        mean_region, mean_weights = region, weights
    gains = np.einsum("nhw,hw->n", mean_region.astype(np.float64), mean_weights)
    gains = gains / gains.mean()
    if samples.shape[1] > MAX_STEP_SAMPLES:  # a regular subsample is plenty for n steps
        samples = samples[:, :: int(math.ceil(samples.shape[1] / MAX_STEP_SAMPLES))]
    closed = algebraic_steps(samples, gains)
    if closed is not None:
        # the closed form is fixed up to a reflection: keep the sign of the Fourier estimate
        flipped = np.mod(-closed, 2 * np.pi)
        if np.abs(wrap(flipped - steps)).sum() < np.abs(wrap(closed - steps)).sum():
            closed = flipped
        steps = closed
    if iterations > 0:
        steps = refine_steps(samples, steps, gains, iterations)
    return steps, gains


__all__ = [
    "MAX_STEP_SAMPLES",
    "design_matrix",
    "fourier_steps",
    "algebraic_steps",
    "refine_steps",
    "measure_steps",
]
