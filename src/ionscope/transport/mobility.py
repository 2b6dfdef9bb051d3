r"""The mobility-aware (Fickian) Li flux and the fit of a two-phase mobility: kernels on numpy arrays.

The maps fix only :math:`\nabla\cdot\mathbf J`; the minimum-norm flux of
:mod:`~ionscope.transport.continuity` adds the regulariser :math:`\min\int|\mathbf J|^2`, which
routes Li straight from the electrolyte. A real electrode (and the ``licoo2`` twin) obeys Fick's
law with a mobility map :math:`D(y, x)`, :math:`\mathbf J = -D\nabla\theta`. Given :math:`D`, the
flux that explains every map with the least dissipation :math:`\int |\mathbf J|^2 / D` is

.. math::

    \mathbf J = -D\,\nabla\phi, \qquad \nabla\cdot(D\,\nabla\phi) = \partial_t x,

with :math:`\phi = 0` on the electrolyte face and no flux through the other three (Dirichlet /
Neumann as in :func:`~ionscope.transport.continuity.poisson_flux`, which is the case
:math:`D = 1`). Along a fast domain boundary (large :math:`D`) the flux runs where the twin's
does, and enters the grains sideways. Only the shape of :math:`D` matters: scaling it scales
:math:`\phi` by the inverse and leaves :math:`\mathbf J` unchanged.

Discretisation: cell-centred finite volumes on the pixel grid with harmonic-mean face
mobilities :math:`D_{ik} = 2D_iD_k/(D_i + D_k)` (Patankar, *Numerical Heat Transfer and Fluid
Flow*, Hemisphere 1980, section 4.2-4; the ``licoo2`` twin's
:func:`~ionscope.simulate.licoo2.diffusion_operator`), the electrolyte face at half a pixel from
the first row's centre with the mobility of that row (ghost value :math:`-\phi_0`). The matrix
is symmetric positive definite; one sparse LU factorisation (``scipy.sparse.linalg.splu``)
solves all frames (:class:`MobilityFlux`).

Where :math:`D` comes from when only the structure is known (a domain-boundary mask from a
segmented HAADF image): :func:`fit_two_phase_mobility` fits :math:`D_{bulk}` and
:math:`D_{boundary}` by least squares of :math:`\partial_t x = \nabla\cdot(D\nabla x)` over the
pixels and frames given (Fick's second law on the maps themselves), with jackknife standard
errors over blocks of frames (Efron & Tibshirani, *An Introduction to the Bootstrap*, Chapman &
Hall 1993, chapter 11).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import scipy.linalg
import scipy.sparse as sp
import scipy.sparse.linalg as spla
from scipy.optimize import minimize_scalar

from ionscope.blocks import single_threaded_blas
from ionscope.transport.continuity import SIDES

__all__ = ["MobilityFlux", "fickian_rate", "fit_two_phase_mobility", "two_phase_mobility"]


def _solve_columns(lu: spla.SuperLU, b: np.ndarray) -> np.ndarray:
    """``lu.solve`` column by column: SuperLU's multi-right-hand-side solve goes through BLAS
    calls that are 10-100x slower than a loop of single solves on a loaded multi-core machine
    (measured: 157 columns of 3351 unknowns, 0.04 s looped vs 0.5-6 s at once)."""
    out = np.empty(b.shape)
    for k in range(b.shape[1]):
        out[:, k] = lu.solve(np.ascontiguousarray(b[:, k]))
    return out


def _harmonic(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return 2.0 * a * b / (a + b)


def two_phase_mobility(boundaries: np.ndarray, d_bulk: float, d_boundary: float) -> np.ndarray:
    """The mobility map (units of ``d_bulk``) of a domain-boundary mask: ``d_boundary`` where
    ``boundaries`` is true, ``d_bulk`` elsewhere (float64, shape of the mask)."""
    return np.where(np.asarray(boundaries, dtype=bool), float(d_boundary), float(d_bulk))


class MobilityFlux:
    r"""The Fickian flux :math:`\mathbf J = -D\nabla\phi`, :math:`\nabla\cdot(D\nabla\phi)` = rate,
    factorised once for a mobility map and reused for every frame.

    Parameters
    ----------
    mobility : ndarray, shape (ny, nx)
        Mobility :math:`D` (any positive unit, e.g. nm^2/s, or relative): finite and > 0.
    pixel_nm : (float, float)
        Pixel size along y and x (nm).
    side : {'top', 'bottom', 'left', 'right'}
        The electrolyte face (:math:`\phi = 0`); no flux through the other three.

    Examples
    --------
    Uniform mobility gives the minimum-norm flux of
    :func:`~ionscope.transport.continuity.poisson_flux`:

    >>> from ionscope.transport.continuity import poisson_flux
    >>> rate = np.random.default_rng(0).standard_normal((6, 5))
    >>> jy, jx = MobilityFlux(np.full((6, 5), 3.0), (1.0, 2.0), "top").flux(rate)
    >>> py, px = poisson_flux(rate, (1.0, 2.0), "top")
    >>> bool(np.allclose(jy, py) and np.allclose(jx, px))
    True
    """

    def __init__(self, mobility: np.ndarray, pixel_nm: tuple[float, float], side: str) -> None:
        d = np.asarray(mobility, dtype=np.float64)
        if d.ndim != 2 or not np.all(np.isfinite(d)) or not np.all(d > 0):
            raise ValueError("the mobility must be a 2-D map of finite, positive values")
        if side not in SIDES:
            raise ValueError(f"side must be one of {sorted(SIDES)}, got {side!r}")
        self.shape = d.shape
        self.pixel_nm = (float(pixel_nm[0]), float(pixel_nm[1]))
        self.side = side
        self.scale = float(np.median(d))
        self.d = d / self.scale  # relative: J does not depend on the scale of D
        hy, hx = self.pixel_nm
        ny, nx = d.shape
        # face mobilities: interior faces harmonic means; the electrolyte face the row's own
        self.dy = np.zeros((ny + 1, nx))
        self.dx = np.zeros((ny, nx + 1))
        self.dy[1:-1] = _harmonic(self.d[:-1], self.d[1:])
        self.dx[:, 1:-1] = _harmonic(self.d[:, :-1], self.d[:, 1:])
        axis, first = SIDES[side]
        # the electrolyte face sits h/2 from the pixel centre: conductance 2 D / h
        if axis == 0:
            self.dy[0 if first else -1] = 2.0 * self.d[0 if first else -1]
        else:
            self.dx[:, 0 if first else -1] = 2.0 * self.d[:, 0 if first else -1]
        edge = np.zeros((ny, nx))  # the Dirichlet face's conductance to the ghost
        if axis == 0:
            edge[0 if first else -1] = self.dy[0 if first else -1] / hy**2
        else:
            edge[:, 0 if first else -1] = self.dx[:, 0 if first else -1] / hx**2
        #: minus div(D grad .) with the electrolyte face's Dirichlet term: symmetric positive definite
        self.matrix = (sp.diags(edge.ravel()) - _no_flux_operator(self.d, self.pixel_nm)).tocsc()
        self._lu = spla.splu(self.matrix, permc_spec="MMD_AT_PLUS_A")  # symmetric: half the fill of COLAMD

    def potential(self, rate: np.ndarray) -> np.ndarray:
        r""":math:`\phi` (rate units x nm^2 / relative D) of one or more frames (..., ny, nx)."""
        r = np.asarray(rate, dtype=np.float64)
        if r.shape[-2:] != self.shape:
            raise ValueError(f"the rate has maps of {r.shape[-2:]}, the mobility {self.shape}")
        flat = r.reshape(-1, self.shape[0] * self.shape[1]).T
        phi = -_solve_columns(self._lu, flat)
        return phi.T.reshape(r.shape)

    def face_flux(self, phi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``-D_face dphi/dn`` on the faces: (..., ny + 1, nx) and (..., ny, nx + 1); the
        electrolyte face by the ghost ``-phi``, the others zero."""
        hy, hx = self.pixel_nm
        fy = np.zeros(phi.shape[:-2] + (self.shape[0] + 1, self.shape[1]))
        fx = np.zeros(phi.shape[:-2] + (self.shape[0], self.shape[1] + 1))
        fy[..., 1:-1, :] = -self.dy[1:-1] * np.diff(phi, axis=-2) / hy
        fx[..., 1:-1] = -self.dx[:, 1:-1] * np.diff(phi, axis=-1) / hx
        axis, first = SIDES[self.side]
        # the ghost at the electrolyte face is 0 there; dy, dx already hold 2 D (half a pixel)
        if axis == 0 and first:
            fy[..., 0, :] = -self.dy[0] * phi[..., 0, :] / hy
        elif axis == 0:
            fy[..., -1, :] = self.dy[-1] * phi[..., -1, :] / hy
        elif first:
            fx[..., 0] = -self.dx[:, 0] * phi[..., 0] / hx
        else:
            fx[..., -1] = self.dx[:, -1] * phi[..., -1] / hx
        return fy, fx

    def flux(self, rate: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``J_y``, ``J_x`` at the pixel centres (the mean of each pixel's two faces; rate units
        x nm/s, positive towards +y and +x), as :func:`~ionscope.transport.continuity.poisson_flux`."""
        fy, fx = self.face_flux(self.potential(rate))
        return 0.5 * (fy[..., 1:, :] + fy[..., :-1, :]), 0.5 * (fx[..., 1:] + fx[..., :-1])

    def noise_sd(self, rate_sd: float, probes: int = 48, seed: int = 0) -> tuple[float, float]:
        r"""Root-mean-square noise of the face flux along y and x (x nm/s) over the field from
        white noise of standard deviation ``rate_sd`` (x/s) in every pixel of the rate.

        The face flux is :math:`B r = G A^{-1} r` (:math:`A` this operator, :math:`G` the face
        gradient times the face mobility), so its mean variance per pixel is
        :math:`\sigma^2 \|B\|_F^2 / N`, the normalisation of
        :func:`~ionscope.transport.continuity.flux_noise_sd` (to which it reduces for uniform
        :math:`D`). :math:`\|B\|_F^2` is estimated by Hutch++ (Meyer, Musco, Musco & Woodruff,
        SOSA 2021, 142): the exact part on the dominant ``probes``-dimensional range of
        :math:`A^{-2}` (one power step) plus a Hutchinson estimate of the rest with ``probes``
        Rademacher vectors; about ``4 * probes`` solves instead of N, accurate to about 1 % on a
        64 x 64 map because :math:`A^{-1}` is dominated by its few smoothest modes. Maps of at most
        ``16 * probes`` pixels are done exactly.
        """
        n = self.shape[0] * self.shape[1]

        def squares(cols: np.ndarray) -> np.ndarray:
            phi = _solve_columns(self._lu, cols).T.reshape((-1,) + self.shape)  # A^-1 is symmetric
            fy, fx = self.face_flux(phi)
            return np.array([np.sum(fy**2), np.sum(fx**2)])

        if n <= 16 * probes:  # small maps: exactly, every column of A^-1
            total = squares(np.eye(n))
        else:
            rng = np.random.default_rng(seed)
            sketch = _solve_columns(self._lu, _solve_columns(self._lu, rng.choice([-1.0, 1.0], (n, probes))))
            with single_threaded_blas():  # a threaded Householder QR of a thin matrix is 10x slower
                q = scipy.linalg.qr(sketch, mode="economic")[0]
            g = rng.choice([-1.0, 1.0], (n, probes))
            g -= q @ (q.T @ g)
            total = squares(q) + squares(g) / probes
        return float(rate_sd) * float(np.sqrt(total[0] / n)), float(rate_sd) * float(np.sqrt(total[1] / n))


def fickian_rate(x: np.ndarray, mobility: np.ndarray, pixel_nm: tuple[float, float]) -> np.ndarray:
    r""":math:`\nabla\cdot(D\nabla x)` (x units per s for D in nm^2/s) of one or more maps
    (..., ny, nx): harmonic-mean face mobilities and no flux through any outer face.

    Examples
    --------
    >>> x = np.add.outer(np.arange(4.0), np.zeros(3)) ** 2  # y^2: laplacian 2 inside
    >>> fickian_rate(x, np.full((4, 3), 0.5), (1.0, 1.0))[1:-1, 1]
    array([1., 1.])
    """
    x = np.asarray(x, dtype=np.float64)
    d = np.asarray(mobility, dtype=np.float64)
    hy, hx = float(pixel_nm[0]), float(pixel_nm[1])
    fy = np.zeros(x.shape[:-2] + (x.shape[-2] + 1, x.shape[-1]))
    fx = np.zeros(x.shape[:-2] + (x.shape[-2], x.shape[-1] + 1))
    fy[..., 1:-1, :] = _harmonic(d[:-1], d[1:]) * np.diff(x, axis=-2) / hy
    fx[..., 1:-1] = _harmonic(d[:, :-1], d[:, 1:]) * np.diff(x, axis=-1) / hx
    return np.diff(fy, axis=-2) / hy + np.diff(fx, axis=-1) / hx


def _no_flux_operator(mobility: np.ndarray, pixel_nm: tuple[float, float]) -> sp.csr_matrix:
    """``div(D grad .)`` with harmonic-mean face mobilities and no flux through the outer faces
    (sparse, over the C-ordered pixels; 1/nm^2 times the unit of D)."""
    d = np.asarray(mobility, dtype=np.float64)
    ny, nx = d.shape
    idx = np.arange(ny * nx).reshape(ny, nx)
    g = np.concatenate([(_harmonic(d[:-1], d[1:]) / pixel_nm[0] ** 2).ravel(),
                        (_harmonic(d[:, :-1], d[:, 1:]) / pixel_nm[1] ** 2).ravel()])
    a = np.concatenate([idx[:-1].ravel(), idx[:, :-1].ravel()])
    b = np.concatenate([idx[1:].ravel(), idx[:, 1:].ravel()])
    off = sp.coo_matrix((np.concatenate([g, g]), (np.concatenate([a, b]), np.concatenate([b, a]))),
                        shape=(ny * nx, ny * nx)).tocsr()
    return (off - sp.diags(np.asarray(off.sum(axis=1)).ravel())).tocsr()


def _weak_statistics(x: np.ndarray, rate: np.ndarray, mask: np.ndarray, use: np.ndarray,
                     pixel_nm: tuple[float, float], ratio: float) -> np.ndarray:
    """Per frame, (sum z u, sum u u, sum z z) of the Dirichlet form of Fick's law on the pixels
    ``use`` for a boundary/bulk ratio: ``u = N_UU^-1 rate_U`` and ``z = x_U - h`` with ``h`` the
    D-harmonic extension of the other pixels' x, so that ``z = u / D_bulk`` (no derivative of x)."""
    n = _no_flux_operator(two_phase_mobility(mask, 1.0, ratio), pixel_nm)
    u_idx, c_idx = np.flatnonzero(use.ravel()), np.flatnonzero(~use.ravel())
    lu = spla.splu(n[u_idx][:, u_idx].tocsc(), permc_spec="MMD_AT_PLUS_A")
    xf = x.reshape(x.shape[0], -1)
    rf = rate.reshape(rate.shape[0], -1)
    u = _solve_columns(lu, rf[:, u_idx].T)
    z = xf[:, u_idx].T + _solve_columns(lu, n[u_idx][:, c_idx] @ xf[:, c_idx].T)
    return np.stack([np.sum(z * u, axis=0), np.sum(u * u, axis=0), np.sum(z * z, axis=0)], axis=1)


def _best_on_grid(log_r: np.ndarray, stats: np.ndarray, frames: np.ndarray) -> tuple[float, float, float]:
    """(d_bulk, log ratio, rss) minimising the residual of ``z = u / D_bulk`` summed over
    ``frames``: the grid point of least residual, refined between its neighbours by cubic splines
    of the three sums (smooth in log r), evaluated 64 times finer there."""
    from scipy.interpolate import CubicSpline

    s = stats[:, frames].sum(axis=1)  # (grid, 3)
    with np.errstate(invalid="ignore", divide="ignore"):
        rss_grid = np.where(s[:, 1] > 0, s[:, 2] - s[:, 0] ** 2 / s[:, 1], np.inf)
    k = int(np.argmin(rss_grid))
    lo, hi = max(k - 1, 0), min(k + 1, log_r.size - 1)
    fine = np.linspace(log_r[lo], log_r[hi], 64 * (hi - lo) + 1)
    sf = CubicSpline(log_r, s, axis=0)(fine)
    with np.errstate(invalid="ignore", divide="ignore"):
        rss = np.where(sf[:, 1] > 0, sf[:, 2] - sf[:, 0] ** 2 / sf[:, 1], np.inf)
    j = int(np.argmin(rss))
    inv_d = float(sf[j, 0] / sf[j, 1]) if sf[j, 1] > 0 else float("nan")
    return (1.0 / inv_d if inv_d > 0 else float("nan")), float(fine[j]), float(rss[j])


def fit_two_phase_mobility(x: np.ndarray, rate: np.ndarray, boundaries: np.ndarray, pixel_nm: tuple[float, float],
                           use: np.ndarray | None = None, blocks: int = 8, groups: np.ndarray | None = None,
                           ratio_bounds: tuple[float, float] = (1e-2, 1e4), min_r2: float = 0.5
                           ) -> dict[str, dict[str, Any]]:
    r"""Fit :math:`D_{bulk}`, :math:`D_{boundary}` of Fick's second law
    :math:`\partial_t x = \nabla\cdot(D\nabla x)` to a map series, given a boundary mask.

    The strong form (the rate against :math:`\nabla\cdot(D\nabla x)` pixel by pixel) fails on
    real maps: the second derivatives of the maps are mostly noise, and a regression on a noisy
    regressor shrinks :math:`D` towards zero. Instead the equation is inverted on the pixels
    ``use`` (a Dirichlet problem: the other pixels' maps are the boundary values),

    .. math::

        x_U - h_r = \frac{1}{D_{bulk}}\, N_{r,UU}^{-1}\, \partial_t x_U,

    with :math:`N_r` the no-flux operator :math:`\nabla\cdot(m_r\nabla\,\cdot)` of the relative
    mobility :math:`m_r` (1 in the bulk, :math:`r = D_{boundary}/D_{bulk}` on the boundaries) and
    :math:`h_r` the :math:`m_r`-harmonic extension of the other pixels' maps: the right side is a
    smoothing of the rate, the left the maps themselves, so the noise sits in the response (a
    weak / :math:`H^{-1}` form of the equation; cf. Messenger & Bortz, J. Comput. Phys. 443,
    110525 (2021) for weak-form identification of PDEs). For each ratio on a grid in
    :math:`\log r` the model is linear in :math:`1/D_{bulk}` (closed form); the ratio minimises
    the residual (the best grid point, polished by Brent's method on the exact residual between its
    neighbours; the jackknife replicates are refined by cubic splines of the sums instead).
    Standard errors: delete-one-block jackknife
    over ``blocks`` contiguous blocks of the frames of each group (neighbouring frames share
    noise and rate fits, so pixels and frames are not independent; Efron & Tibshirani, *An
    Introduction to the Bootstrap*, Chapman & Hall 1993, chapter 11).

    Parameters
    ----------
    x : ndarray, shape (T, ny, nx)
        The (denoised) maps, e.g. Li fraction.
    rate : ndarray, shape (T, ny, nx)
        :math:`\partial_t x` (x per s) of the same frames
        (:func:`~ionscope.transport.continuity.rate_of_change`).
    boundaries : ndarray of bool, shape (ny, nx)
        The domain-boundary mask (true: boundary).
    pixel_nm : (float, float)
        Pixel size along y and x (nm).
    use : ndarray of bool, shape (ny, nx), optional
        Pixels where Fick's law on the maps is fitted (e.g. away from the electrolyte face,
        where Li leaves or enters by a source, and from a phase of another site density); the
        others supply boundary values. Default: all but one pixel row/column at each face.
    blocks : int
        Jackknife blocks per group; no errors below 2 blocks or with fewer frames than blocks.
    groups : ndarray of int, shape (T,), optional
        A group label per frame (e.g. the cell state): each group is fitted on its own frames,
        and all frames together as ``"all"``. Default: one group.
    ratio_bounds : (float, float)
        Range of :math:`D_{boundary}/D_{bulk}` searched (a grid of 3 points per decade).
    min_r2 : float
        Groups whose fit explains less than this fraction (``r2``) are left out of ``"pooled"``:
        Fick's law without sources does not describe them (e.g. Li inserted inside the field).

    Returns
    -------
    dict
        Per group (by its label as a string) and ``"pooled"`` (the frames of the groups with
        ``r2 >= min_r2`` and a positive mobility, listed in its ``groups``; all frames when none):
        ``d_bulk_nm2_s``, ``d_boundary_nm2_s`` (nm^2/s), ``ratio`` and their ``_error`` (jackknife standard
        errors, NaN when not available), ``r2`` (the fraction of the sum of squares of the
        response :math:`x_U - h_r` explained), ``frames``, ``pixels``.

    Examples
    --------
    A series made by Fick's law with D = 1 in the bulk and 5 on a boundary row:

    >>> rng = np.random.default_rng(0)
    >>> mask = np.zeros((12, 10), bool); mask[6] = True
    >>> d = two_phase_mobility(mask, 1.0, 5.0)
    >>> x = rng.random((4, 12, 10))
    >>> fit = fit_two_phase_mobility(x, fickian_rate(x, d, (1.0, 1.0)), mask, (1.0, 1.0), blocks=2)["pooled"]
    >>> round(float(fit["d_bulk_nm2_s"]), 2), round(fit["ratio"], 1)
    (1.0, 5.0)
    """
    x = np.asarray(x, dtype=np.float64)
    rate = np.asarray(rate, dtype=np.float64)
    mask = np.asarray(boundaries, dtype=bool)
    if use is None:
        use = np.zeros(mask.shape, bool)
        use[1:-1, 1:-1] = True
    use = np.asarray(use, dtype=bool)
    n = x.shape[0]
    groups = np.zeros(n, int) if groups is None else np.asarray(groups)
    log_r = np.linspace(np.log(ratio_bounds[0]), np.log(ratio_bounds[1]),
                        int(round(3 * np.log10(ratio_bounds[1] / ratio_bounds[0]))) + 1)
    stats = np.stack([_weak_statistics(x, rate, mask, use, pixel_nm, float(np.exp(g))) for g in log_r])
    def fit_frames(frames: np.ndarray) -> dict[str, float]:
        d_bulk, best, rss = _best_on_grid(log_r, stats, frames)
        k = int(np.argmin(np.abs(log_r - best)))
        zz = stats[k, frames, 2].sum()
        fit = {"d_bulk_nm2_s": d_bulk, "d_boundary_nm2_s": d_bulk * float(np.exp(best)), "ratio": float(np.exp(best)),
               "r2": 1.0 - rss / zz if zz > 0 else float("nan"), "frames": int(frames.size), "pixels": int(use.sum()),
               "d_bulk_nm2_s_error": float("nan"), "d_boundary_nm2_s_error": float("nan"), "ratio_error": float("nan")}
        if blocks >= 2 and frames.size >= blocks:
            reps = []
            for part in np.array_split(frames, blocks):
                db, lr, _ = _best_on_grid(log_r, stats, np.setdiff1d(frames, part))
                reps.append((db, db * np.exp(lr), np.exp(lr)))
            reps = np.asarray(reps)
            se = np.sqrt((blocks - 1) / blocks * np.sum((reps - reps.mean(axis=0)) ** 2, axis=0))
            fit.update(d_bulk_nm2_s_error=float(se[0]), d_boundary_nm2_s_error=float(se[1]), ratio_error=float(se[2]))
        return fit

    def polish(frames: np.ndarray, fit: dict[str, Any]) -> dict[str, Any]:
        """The grid's best ratio polished by Brent's method on the exact residual of ``frames``."""
        k = int(np.argmin(np.abs(log_r - np.log(fit["ratio"]))))

        def sums(log_ratio: float) -> np.ndarray:
            return _weak_statistics(x[frames], rate[frames], mask, use, pixel_nm, float(np.exp(log_ratio))).sum(axis=0)

        def residual(log_ratio: float) -> float:
            zu, uu, zz = sums(log_ratio)
            return zz - zu**2 / uu if uu > 0 else np.inf

        best = minimize_scalar(residual, bounds=(log_r[max(k - 1, 0)], log_r[min(k + 1, log_r.size - 1)]),
                               method="bounded", options={"xatol": 0.02})
        zu, uu, zz = sums(float(best.x))
        ratio = float(np.exp(best.x))
        d_bulk = float(uu / zu) if uu > 0 and zu > 0 else float("nan")
        return {**fit, "d_bulk_nm2_s": d_bulk, "d_boundary_nm2_s": d_bulk * ratio, "ratio": ratio,
                "r2": float(1.0 - (zz - zu**2 / uu) / zz) if uu > 0 and zz > 0 else float("nan")}

    out = {}
    for g in np.unique(groups):
        frames = np.flatnonzero(groups == g)
        out[str(g)] = polish(frames, fit_frames(frames))
    good = [g for g in np.unique(groups) if out[str(g)]["r2"] >= min_r2 and np.isfinite(out[str(g)]["d_bulk_nm2_s"])]
    frames = np.flatnonzero(np.isin(groups, good)) if len(good) > 1 else None
    if frames is None:  # one group or none: the pooled fit is that group's (or all frames')
        frames = np.flatnonzero(groups == good[0]) if good else np.arange(n)
        pooled = dict(out[str(good[0])]) if good else polish(frames, fit_frames(frames))
    else:
        pooled = polish(frames, fit_frames(frames))
    out["pooled"] = {**pooled, "groups": [str(g) for g in good]}
    return out
