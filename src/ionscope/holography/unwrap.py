r"""Two-dimensional phase unwrapping that always terminates, also on NaN and masked pixels.

Two methods, both without an open-ended loop (so a NaN can never make them hang, unlike the
reliability sorter of scikit-image issue #3831):

* ``"quality"`` (default) - quality-guided path following. A quality-guided flood fill that
  always adds the best-quality neighbour next is Prim's algorithm on the pixel grid, so the
  integration paths form the maximum-quality spanning tree; here that tree is built edge by
  edge in order of decreasing quality (Kruskal) in a weighted union-find that carries the
  integer number of cycles between joined groups (:mod:`ionscope.holography.unwrap_tree`,
  numba; linear in the pixels). The default quality is the reliability of Herraez et al.
  (2002), the inverse of the second-difference magnitude of the wrapped phase; any map
  (amplitude, fringe contrast, R^2) can be passed instead. Every separate region of valid
  pixels starts at its best pixel, which keeps its wrapped value.
* ``"fft"`` - least-squares unwrapping (Ghiglia & Romero 1994): the Poisson equation of the
  wrapped phase gradients solved with a discrete cosine transform; with invalid pixels, a
  weighted least-squares solution by preconditioned conjugate gradients (a fixed maximum number
  of iterations, the unweighted DCT solver as preconditioner). The result is made congruent with
  the input (``wrapped + 2 pi k``) unless ``congruent=False``.

Invalid pixels are NaN or infinite values and pixels where ``mask`` is True (numpy masked-array
semantics: True = excluded); they come back as NaN and never join an integration path. Two fast
paths: when no neighbour difference exceeds pi in magnitude the wrapped phase is already
continuous and is returned unchanged; when every pixel is valid and no 2x2 loop holds a residue
(:func:`residues`), integration is path-independent and runs as two cumulative sums (both
methods would return exactly this).

References
----------
M.A. Herraez, D.R. Burton, M.J. Lalor, M.A. Gdeisat, Appl. Opt. 41, 7437 (2002).
D.C. Ghiglia, L.A. Romero, J. Opt. Soc. Am. A 11, 107 (1994).
D.C. Ghiglia, M.D. Pritt, *Two-Dimensional Phase Unwrapping* (Wiley, 1998), chapters 4-5.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import scipy.fft
import xarray as xr

from ionscope.data import provenance, with_provenance
from ionscope.errors import ConfigError, DimensionError, InputError
from ionscope.holography.unwrap_tree import MAX_PIXELS, reliability, unwrap_tree
from ionscope.validation import Options, validate_params

TWO_PI = 2.0 * np.pi
METHODS = ("quality", "fft")
#: What the ``unwrap`` parameter of the reconstructions may be: True (quality-guided), False
#: (wrapped) or a method.
UNWRAP_OPTIONS = Options({True, False, *METHODS})


def wrap(phase: Any) -> np.ndarray:
    """Wrap a phase (rad) into [-pi, pi) (``x - 2 pi floor((x + pi) / 2 pi)``; a floor is
    several times faster than numpy's floating-point modulo)."""
    phase = np.asarray(phase)
    out = phase - TWO_PI * np.floor((phase + np.pi) * (1.0 / TWO_PI))
    if out.ndim:
        out[out >= np.pi] -= TWO_PI  # rounding can land exactly on +pi
    elif out >= np.pi:
        out = out - TWO_PI
    return out


# --------------------------------------------------------------------------- helpers


def _valid_mask(psi: np.ndarray, mask: np.ndarray | None) -> np.ndarray:
    valid = np.isfinite(psi)
    if mask is not None:
        valid &= ~mask
    return valid


def _is_continuous(psi: np.ndarray) -> bool:
    """True if every neighbour difference of a finite array is within (-pi, pi)."""
    for axis in range(psi.ndim):
        if psi.shape[axis] > 1 and np.abs(np.diff(psi, axis=axis)).max() >= np.pi:
            return False
    return True


def residues(psi: np.ndarray) -> np.ndarray:
    """Residue charge (-1, 0, +1) of every 2x2 loop of a wrapped 2-D phase: the sum of the
    wrapped differences around it over 2 pi. A residue-free map unwraps path-independently."""
    dx = wrap(np.diff(psi, axis=1))
    dy = wrap(np.diff(psi, axis=0))
    loop = dx[:-1, :] + dy[:, 1:] - dx[1:, :] - dy[:, :-1]
    return np.rint(loop / TWO_PI).astype(np.int8)


def _integrate_residue_free(psi: np.ndarray) -> np.ndarray:
    """Unwrap a residue-free, fully valid 2-D phase by integrating wrapped differences down the
    first column and then along every row (any path gives the same result)."""
    first = psi[0, 0] + np.concatenate([[0.0], np.cumsum(wrap(np.diff(psi[:, 0].astype(np.float64))))])
    rows = np.cumsum(wrap(np.diff(psi.astype(np.float64), axis=1)), axis=1)
    out = np.empty(psi.shape)
    out[:, 0] = first
    out[:, 1:] = first[:, None] + rows
    # snap to psi + 2 pi k (removes the rounding of the cumulative sums)
    return psi + TWO_PI * np.rint((out - psi) / TWO_PI)


def unwrap_quality_kernel(
    psi: np.ndarray, valid: np.ndarray, quality: np.ndarray | None = None
) -> np.ndarray:
    """Quality-guided unwrapping of a 2-D wrapped phase along its best spanning tree.

    Parameters
    ----------
    psi : numpy.ndarray
        Wrapped phase (rad), 2-D.
    valid : numpy.ndarray of bool
        Pixels to unwrap (others are returned as NaN).
    quality : numpy.ndarray, optional
        Per-pixel quality, larger is better (finite on valid pixels). Default: Herraez
        reliability of ``psi``.

    Returns
    -------
    numpy.ndarray
        float64 unwrapped phase, congruent with ``psi`` (``psi + 2 pi k``).
    """
    out = np.full(psi.shape, np.nan)
    if not valid.any():
        return out
    psi64 = np.where(valid, psi, 0.0).astype(np.float64)
    if quality is None:
        q_img = reliability(psi64, valid)
    else:
        q_img = np.where(valid, np.asarray(quality, dtype=np.float64), -np.inf)
    bad = valid & ~np.isfinite(q_img)
    if bad.any():  # NaN/inf quality on valid pixels: the worst finite quality there
        good = q_img[valid & ~bad]
        q_img = np.where(bad, good.min() if good.size else 0.0, q_img)
    if psi.size > MAX_PIXELS:
        raise DimensionError(f"quality-guided unwrapping takes at most {MAX_PIXELS} pixels, got {psi.size}; "
                             "unwrap tiles or use method='fft'")
    cycles = unwrap_tree(psi64, valid, q_img)
    out[valid] = psi64[valid] + TWO_PI * cycles[valid]
    return out


# --------------------------------------------------------------------------- least squares


def _dct_poisson(rho: np.ndarray) -> np.ndarray:
    """Solve the discrete Neumann Poisson equation ``lap(phi) = rho`` (mean-free solution)."""
    ny, nx = rho.shape
    r = scipy.fft.dctn(rho, type=2, norm="ortho", workers=-1)
    ky = np.cos(np.pi * np.arange(ny) / ny)[:, None]
    kx = np.cos(np.pi * np.arange(nx) / nx)[None, :]
    denom = 2.0 * (ky + kx - 2.0)
    denom[0, 0] = 1.0
    r = r / denom
    r[0, 0] = 0.0
    return scipy.fft.idctn(r, type=2, norm="ortho", workers=-1)


def _divergence(gy: np.ndarray, gx: np.ndarray) -> np.ndarray:
    """Backward-difference divergence of forward-difference gradients (Neumann ends): for
    ``g = grad(phi)`` it is the 5-point Laplacian of ``phi``."""
    div = np.zeros((gy.shape[0] + 1, gy.shape[1]))
    div[:-1, :] += gy
    div[1:, :] -= gy
    div[:, :-1] += gx
    div[:, 1:] -= gx
    return div


def _weighted_laplacian(phi: np.ndarray, wy: np.ndarray, wx: np.ndarray) -> np.ndarray:
    gy = wy * np.diff(phi, axis=0)
    gx = wx * np.diff(phi, axis=1)
    return _divergence(gy, gx)


def unwrap_lsq_kernel(
    psi: np.ndarray,
    valid: np.ndarray,
    *,
    congruent: bool = True,
    max_iter: int = 100,
    tol: float = 1e-8,
) -> np.ndarray:
    """Least-squares unwrapping (DCT; weighted PCG when pixels are invalid).

    Parameters
    ----------
    psi, valid : numpy.ndarray
        Wrapped 2-D phase (rad) and the pixels to use (bool); a gradient counts only when both
        of its pixels are valid.
    congruent : bool
        Return ``psi + 2 pi round((phi_ls - psi) / 2 pi)`` (exact on residue-free data) instead
        of the smooth least-squares solution.
    max_iter, tol : int, float
        Conjugate-gradient limit and relative residual tolerance (masked case only).

    Returns
    -------
    numpy.ndarray
        float64 unwrapped phase, NaN on invalid pixels.
    """
    p = np.where(valid, psi, 0.0).astype(np.float64)
    wy = (valid[1:, :] & valid[:-1, :]).astype(np.float64)
    wx = (valid[:, 1:] & valid[:, :-1]).astype(np.float64)
    gy = wy * wrap(np.diff(p, axis=0))
    gx = wx * wrap(np.diff(p, axis=1))
    rho = _divergence(gy, gx)
    if valid.all():
        phi = _dct_poisson(rho)
    else:
        # Solve Q phi = rho with Q = weighted Laplacian (symmetric negative semi-definite):
        # conjugate gradients on -Q, preconditioned with the unweighted Poisson solver.
        phi = np.zeros_like(p)
        r = rho - _weighted_laplacian(phi, wy, wx)
        norm0 = np.linalg.norm(rho) or 1.0
        z = _dct_poisson(r)
        d = z.copy()
        rz = float(np.vdot(r, z))
        for _ in range(int(max_iter)):
            qd = _weighted_laplacian(d, wy, wx)
            denom = float(np.vdot(d, qd))
            if denom == 0.0 or not np.isfinite(denom):
                break
            alpha = rz / denom
            phi += alpha * d
            r -= alpha * qd
            if np.linalg.norm(r) <= tol * norm0:
                break
            z = _dct_poisson(r)
            rz_new = float(np.vdot(r, z))
            d = z + (rz_new / rz) * d if rz != 0 else z
            rz = rz_new
    if congruent:
        phi = p + TWO_PI * np.rint((phi - p) / TWO_PI)
    return np.where(valid, phi, np.nan)


def unwrap_kernel(
    psi: np.ndarray,
    mask: np.ndarray | None = None,
    *,
    method: str = "quality",
    quality: np.ndarray | None = None,
    congruent: bool = True,
) -> np.ndarray:
    """Unwrap a 1-D or 2-D wrapped phase (numpy level); see :func:`unwrap_phase`."""
    psi = np.asarray(psi)
    if psi.ndim not in (1, 2):
        raise DimensionError(f"phase unwrapping needs a 1-D or 2-D array, got {psi.ndim}-D")
    if method not in METHODS:
        raise ConfigError(f"unknown unwrapping method {method!r}; use one of {METHODS}")
    if mask is not None:
        mask = np.asarray(mask, dtype=bool)
        if mask.shape != psi.shape:
            raise DimensionError(f"mask shape {mask.shape} differs from the phase shape {psi.shape}")
    if quality is not None:
        quality = np.asarray(quality, dtype=np.float64)
        if quality.shape != psi.shape:
            raise DimensionError(
                f"quality shape {quality.shape} differs from the phase shape {psi.shape}"
            )
    valid = _valid_mask(psi, mask)
    if quality is not None:
        valid &= np.isfinite(quality)
    dtype = psi.dtype if np.issubdtype(psi.dtype, np.floating) else np.float64
    if valid.all() and _is_continuous(psi):
        return psi.astype(dtype, copy=True)
    if psi.ndim == 1:
        out = np.full(psi.shape, np.nan)
        good = np.flatnonzero(valid)
        if good.size:
            out[good] = np.unwrap(psi[good].astype(np.float64))
        return out.astype(dtype)
    if valid.all() and not residues(psi).any():
        # path-independent: every method (and every quality) gives this result
        return _integrate_residue_free(psi).astype(dtype)
    if method == "quality":
        out = unwrap_quality_kernel(psi, valid, quality)
    else:
        out = unwrap_lsq_kernel(psi, valid, congruent=congruent)
    return out.astype(dtype)


@validate_params({"method": [Options(METHODS)], "congruent": [Options({True, False})]})
def unwrap_phase(
    phase: Any,
    mask: Any = None,
    *,
    method: str = "quality",
    quality: Any = None,
    congruent: bool = True,
):
    """Unwrap a wrapped phase map; never hangs on NaN, infinite or masked pixels.

    Computes: loads the phase (a dask-backed DataArray is computed) and returns it unwrapped -
    eager on purpose: unwrapping integrates phase differences along paths through the whole
    map (quality-guided order, or a global Poisson solve), so one map is one task. The
    reconstructions of a series (:func:`~ionscope.holography.reconstruct_offaxis`) unwrap
    each frame inside their lazy per-frame tasks.

    Parameters
    ----------
    phase : numpy.ndarray or xarray.DataArray
        Wrapped phase (rad), 1-D or 2-D (a DataArray keeps its dims, coords and attrs).
    mask : array_like of bool, optional
        True where the phase must be ignored (numpy masked-array semantics). NaN and infinite
        values are masked automatically. Masked pixels come back as NaN.
    method : {"quality", "fft"}
        Quality-guided path following (default) or least squares via the DCT (see the module
        docstring).
    quality : array_like, optional
        Per-pixel quality for ``method="quality"``, larger = more reliable (e.g. the amplitude
        or an R^2 map); default: the Herraez reliability of the wrapped phase.
    congruent : bool
        For ``method="fft"``: snap the least-squares solution to ``phase + 2 pi k``.

    Returns
    -------
    numpy.ndarray or xarray.DataArray
        Unwrapped phase (rad), same type and shape as ``phase``; congruent with it except for
        ``method="fft", congruent=False``.

    Raises
    ------
    DimensionError
        For arrays that are not 1-D or 2-D or a mask/quality of another shape.
    ConfigError
        For an unknown method.

    Examples
    --------
    >>> import numpy as np
    >>> y, x = np.mgrid[0:64, 0:64]
    >>> truth = 0.3 * x + 0.002 * (y - 20) ** 2
    >>> out = unwrap_phase(wrap(truth))
    >>> bool(np.allclose(out - out[0, 0], truth - truth[0, 0]))
    True
    """
    if isinstance(phase, xr.DataArray):
        m = mask.values if isinstance(mask, xr.DataArray) else mask
        q = quality.values if isinstance(quality, xr.DataArray) else quality
        values = unwrap_kernel(np.asarray(phase.values), m, method=method, quality=q,
                               congruent=congruent)
        out = phase.copy(data=values)
        out.attrs = dict(phase.attrs)
        out.attrs.setdefault("units", "rad")
        return with_provenance(out, "ionscope.holography.unwrap_phase",
                               {"method": method, "congruent": congruent,
                                "masked": int(np.count_nonzero(np.isnan(values)))},
                               history=provenance(phase))
    if isinstance(phase, (list, tuple, np.ndarray)) or np.isscalar(phase):
        return unwrap_kernel(np.asarray(phase), mask, method=method, quality=quality,
                             congruent=congruent)
    raise InputError(f"phase must be a numpy array or an xarray.DataArray, got {type(phase).__name__}")


__all__ = [
    "wrap",
    "residues",
    "unwrap_phase",
    "unwrap_kernel",
    "unwrap_quality_kernel",
    "unwrap_lsq_kernel",
    "METHODS",
    "UNWRAP_OPTIONS",
]
