r"""Li flux from the continuity equation: kernels on numpy arrays.

A map series of the Li fraction :math:`x(t, y, x)` only sees the divergence of the flux:

.. math::

    \partial_t x = -\nabla \cdot \mathbf J .

Any divergence-free field can be added to :math:`\mathbf J` without changing a single map, so
a flux needs a regulariser. Here it is the minimum-norm flux: of all fluxes that satisfy the
continuity equation and the boundary conditions, the one of least :math:`\int |\mathbf J|^2`,
which is the gradient of a potential (Helmholtz),

.. math::

    \mathbf J = -\nabla \phi, \qquad \nabla^2 \phi = \partial_t x,

with no flux through the faces of the field of view except the electrolyte face, through which
Li leaves (charge) or enters (discharge): :math:`\phi = 0` there (Dirichlet), :math:`\partial_n
\phi = 0` on the other three (Neumann). On the pixel grid (cell-centred, 5-point Laplacian,
flux on the faces) the problem is diagonal in a product of Fourier bases: the DCT-II along the
no-flux axis and the DST-IV (DCT-IV) along the depth axis when the electrolyte face is the
first (last) face, so one forward transform, a division by the eigenvalues and one inverse
transform solve all frames at once (Press et al., Numerical Recipes, 3rd ed., section 20.4;
Strang, SIAM Rev. 41 (1999) 135 for the eight DCT/DST types and their boundary conditions).

The rate :math:`\partial_t x` comes from a local straight-line fit over a few frames inside
each run of one cell state (:func:`rate_of_change`), so a rate never mixes charge with rest.
"""

from __future__ import annotations

import numpy as np
import scipy.fft as sfft

__all__ = ["SIDES", "rate_of_change", "poisson_flux", "flux_noise_sd", "divergence", "divergence_free_part"]

#: Faces of a (y, x) field of view: the electrolyte side and (axis, first face?) of each.
SIDES: dict[str, tuple[int, bool]] = {"top": (0, True), "bottom": (0, False), "left": (1, True),
                                      "right": (1, False)}


def rate_of_change(x: np.ndarray, t: np.ndarray, runs: np.ndarray, window: int) -> np.ndarray:
    r"""Slope of a straight line fitted over ``window`` frames around each frame (per pixel).

    Parameters
    ----------
    x : ndarray, shape (T, ...)
        The series (time first).
    t : ndarray, shape (T,)
        Frame times (s), increasing.
    runs : ndarray of int, shape (T,)
        Run label of every frame (frames of one run are consecutive): the fit of a frame uses
        only frames of its run, so it is one-sided at a run's ends. A run of one frame uses its
        neighbours in the other runs.
    window : int
        Frames per fit (odd, >= 3): the frame and ``(window - 1) / 2`` on each side where the
        run has them.

    Returns
    -------
    ndarray, shape like ``x``
        :math:`\partial_t x` in units of ``x`` per second (float64).

    Examples
    --------
    >>> t = np.arange(6.0) * 10
    >>> r = rate_of_change(3.0 + 0.5 * t, t, np.zeros(6, int), 3)
    >>> bool(np.allclose(r, 0.5))
    True
    """
    x = np.asarray(x, dtype=np.float64)
    t = np.asarray(t, dtype=np.float64)
    n = t.size
    m = (int(window) - 1) // 2
    idx = np.arange(n)
    # run bounds of every frame
    starts = np.r_[0, np.flatnonzero(np.diff(runs) != 0) + 1]
    ends = np.r_[starts[1:], n]
    lo, hi = np.empty(n, int), np.empty(n, int)
    for a, b in zip(starts, ends):
        if b - a >= 2:
            lo[a:b], hi[a:b] = np.maximum(idx[a:b] - m, a), np.minimum(idx[a:b] + m, b - 1)
        else:  # a lone frame: its neighbours, whatever their state
            lo[a:b], hi[a:b] = max(a - 1, 0), min(b, n - 1)
    tc = t - t.mean()
    shape = (n,) + (1,) * (x.ndim - 1)
    cx = np.concatenate([np.zeros((1,) + x.shape[1:]), np.cumsum(x, axis=0)])
    ctx = np.concatenate([np.zeros((1,) + x.shape[1:]), np.cumsum(tc.reshape(shape) * x, axis=0)])
    ct, ctt = np.r_[0.0, np.cumsum(tc)], np.r_[0.0, np.cumsum(tc * tc)]
    cnt = (hi - lo + 1).astype(np.float64)
    s_t, s_tt = ct[hi + 1] - ct[lo], ctt[hi + 1] - ctt[lo]
    s_x, s_tx = cx[hi + 1] - cx[lo], ctx[hi + 1] - ctx[lo]
    denom = (s_tt - s_t * s_t / cnt).reshape(shape)
    return (s_tx - s_t.reshape(shape) * s_x / cnt.reshape(shape)) / denom


def _eigen(n: int, h: float, dirichlet: bool) -> np.ndarray:
    """Eigenvalues of minus the 3-point second difference on n cells (1/nm^2): Neumann at both
    faces (DCT-II), or Dirichlet at one face and Neumann at the other (DST-IV / DCT-IV)."""
    k = np.arange(n, dtype=np.float64) + (0.5 if dirichlet else 0.0)
    return (2.0 * np.sin(np.pi * k / (2 * n)) / h) ** 2


def _transform(a: np.ndarray, axis: int, kind: str, inverse: bool) -> np.ndarray:
    if kind == "neumann":
        f = sfft.idct if inverse else sfft.dct
        return f(a, type=2, axis=axis, norm="ortho", workers=-1)
    f = sfft.dst if kind == "dirichlet_first" else sfft.dct  # type 4 is its own inverse
    return f(a, type=4, axis=axis, norm="ortho", workers=-1)


def _kinds(side: str | None) -> tuple[str, str]:
    kinds = ["neumann", "neumann"]
    if side is not None:
        axis, first = SIDES[side]
        kinds[axis] = "dirichlet_first" if first else "dirichlet_last"
    return kinds[0], kinds[1]


def _face_to_centre(f: np.ndarray, axis: int) -> np.ndarray:
    a = np.moveaxis(f, axis, -1)
    return np.moveaxis(0.5 * (a[..., 1:] + a[..., :-1]), -1, axis)


def poisson_flux(rate: np.ndarray, pixel_nm: tuple[float, float], side: str | None
                 ) -> tuple[np.ndarray, np.ndarray]:
    r"""The minimum-norm flux :math:`\mathbf J = -\nabla\phi`, :math:`\nabla^2\phi` = ``rate``.

    Parameters
    ----------
    rate : ndarray, shape (..., ny, nx)
        :math:`\partial_t x` (x per s) of one or more frames.
    pixel_nm : (float, float)
        Pixel size along y and x (nm).
    side : {'top', 'bottom', 'left', 'right'} or None
        The electrolyte face (:math:`\phi = 0`); the other faces carry no flux. None: no flux
        through any face (the rate's mean must then be zero; its mean is ignored), which makes
        this the curl-free part of a Helmholtz decomposition.

    Returns
    -------
    (ndarray, ndarray)
        ``J_y``, ``J_x`` at the pixel centres (the mean of the two faces of each pixel; x nm/s,
        positive towards +y and +x). On the faces, ``rate == -div J`` holds to rounding.

    Examples
    --------
    A uniform loss of Li leaves through the top face; the flux grows linearly towards it:

    >>> jy, jx = poisson_flux(np.full((4, 3), -0.01), (1.0, 1.0), "top")
    >>> np.round(jy[:, 0], 4).tolist(), float(abs(jx).max()) < 1e-12
    ([-0.035, -0.025, -0.015, -0.005], True)
    """
    r = np.asarray(rate, dtype=np.float64)
    hy, hx = float(pixel_nm[0]), float(pixel_nm[1])
    ny, nx = r.shape[-2:]
    ky, kx = _kinds(side)
    lam = _eigen(ny, hy, ky != "neumann")[:, None] + _eigen(nx, hx, kx != "neumann")[None, :]
    spec = _transform(_transform(r, -2, ky, False), -1, kx, False)
    with np.errstate(divide="ignore", invalid="ignore"):
        spec = np.where(lam > 0, -spec / np.where(lam > 0, lam, 1.0), 0.0)
    phi = _transform(_transform(spec, -2, ky, True), -1, kx, True)
    fy = _faces(phi, -2, hy, ky)
    fx = _faces(phi, -1, hx, kx)
    return _face_to_centre(fy, -2), _face_to_centre(fx, -1)


def _faces(phi: np.ndarray, axis: int, h: float, kind: str) -> np.ndarray:
    """``-d phi / d axis`` on the n + 1 faces of ``axis`` (boundary faces by the condition)."""
    a = np.moveaxis(phi, axis, -1)
    f = np.zeros(a.shape[:-1] + (a.shape[-1] + 1,))
    f[..., 1:-1] = -(a[..., 1:] - a[..., :-1]) / h
    if kind == "dirichlet_first":  # ghost = -phi_0
        f[..., 0] = -2.0 * a[..., 0] / h
    elif kind == "dirichlet_last":
        f[..., -1] = 2.0 * a[..., -1] / h
    return np.moveaxis(f, -1, axis)


def divergence(jy_faces: np.ndarray, jx_faces: np.ndarray, pixel_nm: tuple[float, float]) -> np.ndarray:
    """Divergence (x per s) of a face flux: ``jy_faces`` (..., ny + 1, nx), ``jx_faces``
    (..., ny, nx + 1) in x nm/s."""
    return (np.diff(jy_faces, axis=-2) / pixel_nm[0] + np.diff(jx_faces, axis=-1) / pixel_nm[1])


def flux_noise_sd(rate_sd: float, shape: tuple[int, int], pixel_nm: tuple[float, float], side: str | None
                  ) -> tuple[float, float]:
    r"""Standard deviation of the flux components caused by white noise in the rate.

    With independent noise of standard deviation ``rate_sd`` in every pixel of the rate, the
    orthonormal transforms keep it white, so the noise in the potential has variance
    :math:`\sigma^2 / \lambda_k^2` per mode and the face flux along y has the mean variance
    :math:`\sigma^2 \sum_k \mu_{y,k} / \lambda_k^2 / N` (:math:`\mu_{y,k}` the y part of the
    eigenvalue :math:`\lambda_k`, N pixels), exactly; the pixel-centre flux averages two faces
    and has at most this variance.

    Returns
    -------
    (float, float)
        The root-mean-square noise of ``J_y`` and ``J_x`` (x nm/s) over the field.
    """
    ny, nx = shape
    ky, kx = _kinds(side)
    my = _eigen(ny, pixel_nm[0], ky != "neumann")[:, None] * np.ones((1, nx))
    mx = _eigen(nx, pixel_nm[1], kx != "neumann")[None, :] * np.ones((ny, 1))
    lam = my + mx
    ok = lam > 0
    var_y = float(np.sum(my[ok] / lam[ok] ** 2)) / (ny * nx)
    var_x = float(np.sum(mx[ok] / lam[ok] ** 2)) / (ny * nx)
    return rate_sd * np.sqrt(var_y), rate_sd * np.sqrt(var_x)


def divergence_free_part(fy: np.ndarray, fx: np.ndarray, pixel_nm: tuple[float, float]
                         ) -> tuple[np.ndarray, np.ndarray]:
    r"""The divergence-free part of a pixel-centre vector field (Helmholtz decomposition).

    The field is put on the faces (mean of the two pixels; no flux through the outer faces),
    its curl-free part :math:`-\nabla\psi` with :math:`\nabla^2\psi = -\nabla\cdot\mathbf F` and
    no flux through any face (:func:`poisson_flux` with ``side=None``) is removed, and what is
    left is returned at the pixel centres: ``F - (-grad psi)``.

    Examples
    --------
    A uniform flow along x into a wall has no divergence-free part but its boundary layers:

    >>> gy, gx = divergence_free_part(np.zeros((8, 8)), np.ones((8, 8)), (1.0, 1.0))
    >>> bool(abs(gx[:, 3:5]).max() < 0.2)
    True
    """
    fy = np.asarray(fy, dtype=np.float64)
    fx = np.asarray(fx, dtype=np.float64)
    faces_y = np.zeros(fy.shape[:-2] + (fy.shape[-2] + 1, fy.shape[-1]))
    faces_x = np.zeros(fx.shape[:-1] + (fx.shape[-1] + 1,))
    faces_y[..., 1:-1, :] = 0.5 * (fy[..., 1:, :] + fy[..., :-1, :])
    faces_x[..., 1:-1] = 0.5 * (fx[..., 1:] + fx[..., :-1])
    gy, gx = poisson_flux(-divergence(faces_y, faces_x, pixel_nm), pixel_nm, None)
    return fy - gy, fx - gx
