r"""Multiple linear least-squares (MLLS) fitting of EELS spectra to reference spectra.

Every spectrum :math:`S(E)` of a spectrum image or an operando series is modelled, inside a fit
window, as a linear combination of :math:`K` reference spectra (Leapman & Swyt 1988),

.. math::

    S(E) \approx \sum_k a_k R_k(E) \;\left[ + \sum_k d_k \frac{dR_k}{dE}(E) \right],

where the optional first-derivative terms absorb small energy shifts :math:`\delta_k` of each
reference (first-order Taylor expansion :math:`a R(E - \delta) \approx a R(E) - a\delta R'(E)`,
so :math:`\delta_k = -d_k / a_k`). The Li fraction of a two-phase mixture is
:math:`x = a_\mathrm{rich} / (a_\mathrm{rich} + a_\mathrm{poor})` (METHODS section 2).

Numerics
--------
All spectra share the design matrix :math:`R` (:math:`E_w \times K`), so it is factorised once
(thin QR, :math:`R = QT`, :class:`DesignFactor`) and the whole data set is fitted with one
matrix product per block of spectra:

* **unweighted** (:func:`mlls_unweighted`): coordinates :math:`c = S Q` (a float32 GEMM for
  float32 data), :math:`a = c\,T^{-T}` in float64. :math:`\chi^2` is computed from the residual
  :math:`r = S - Ra` itself, block by block while the block is still in cache, not as
  :math:`\lVert S\rVert^2 - \lVert c\rVert^2`, which loses all digits in float32 when the fit is
  good. For float32 data the same residual also drives one step of iterative refinement:
  :math:`Q^T S = Q^T r + T a` exactly, and :math:`Q^T r` is small, so its float32 rounding is
  negligible - the coefficients come out as accurate as a float64 fit (~1e-7 instead of ~1e-5
  relative) for one more small GEMM. Standard errors
  :math:`\sigma_k = \sqrt{\hat\sigma^2 (R^T R)^{-1}_{kk}}` with
  :math:`\hat\sigma^2 = \chi^2 / (E_w - K)`.
* **Poisson-weighted** (:func:`mlls_weighted`, weights :math:`w = 1/\max(S, 1)`): the normal
  matrix differs per spectrum. In the orthonormal basis it is
  :math:`G^Q_n = Q^T W_n Q`, computed for all spectra at once as one GEMM of the weights
  (:math:`N \times E_w`) with the :math:`E_w \times K(K+1)/2` matrix of products
  :math:`Q_i Q_j`; the right-hand side is :math:`Q^T W_n S_n = Q^T \min(S_n, 1)`. Working in the
  :math:`Q` basis keeps :math:`G^Q_n` as well conditioned as the weights' dynamic range (forming
  :math:`R^T W R` directly would square the references' condition number). Batched
  :math:`K \times K` solves follow; :math:`(R^T W R)^{-1} = T^{-1} (G^Q)^{-1} T^{-T}`; float32
  data get the same refinement step with the weighted residual.
* **non-negativity** (``nonnegative``): pixels whose unconstrained solution is feasible keep
  it; for the others every active set of the constrained coefficients is solved in a
  vectorised way and the feasible one with the smallest :math:`\chi^2` is taken - the exact
  NNLS solution (Lawson & Hanson 1974), for up to 8 constrained terms; beyond that a per-pixel
  :func:`scipy.optimize.nnls` fallback runs on the violating pixels only.

Blocks of ~0.5 MB of spectra (block and residual stay in a core's L2 cache; 2 MB blocks cost
~1.6x the CPU time) run, for data above ~12 MB, on a thread per CPU with single-threaded BLAS
(numpy's GEMMs and ufuncs release the GIL); inside dask blocks (lazy data) the kernels run on one thread and dask supplies
the parallelism.

Reduced :math:`\chi^2` is reported per spectrum (:math:`\chi^2 / (E_w - K)`; for unweighted fits
this is the residual variance in the data's units squared). Standard errors scale the
covariance by the reduced :math:`\chi^2` (like ``absolute_sigma=False`` in
:func:`scipy.optimize.curve_fit`); with non-negativity they are those of the unconstrained
model at the constrained solution (approximate for coefficients on the bound).

References
----------
R. D. Leapman, C. R. Swyt, "Separation of overlapping core edges in electron energy loss
spectra by multiple-least-squares fitting", Ultramicroscopy 26 (1988) 393.
C. L. Lawson, R. J. Hanson, *Solving Least Squares Problems*, Prentice-Hall (1974), ch. 23.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np
import scipy.optimize
import xarray as xr

from ionscope.blocks import Scratch, n_cpus, run_blocks
from ionscope.data import (
    axis_calibration,
    is_lazy,
    provenance,
    require_nonempty,
    units_of,
    with_provenance,
)
from ionscope.errors import DimensionError, EmptyDataError, InputError, NonFiniteError

STEP = "ionscope.eels.mlls_fit"
#: Dims allowed in front of ``energy``.
LEADING_DIMS: tuple[str, ...] = ("time", "y", "x", "position")
_ENERGY_UNITS_TO_EV = {"ev": 1.0, "kev": 1e3, "mev": 1e-3}
#: Spectra per block: about this many bytes of data, so a block stays in cache between passes.
_BLOCK_BYTES = 512 << 10
#: Below about this much data, a single thread is as fast as several (thread hand-offs and a
#: shared memory bus); above it, blocks run on a thread per CPU (measured on 2 cores: equal at
#: 8 MB, 1.2x faster at 16 MB, 1.45x at 64 MB).
_THREADS_FROM_BYTES = 12 << 20
#: A reference's dispersion may differ from the data's by at most this factor.
_MAX_DISPERSION_RATIO = 2.0
#: Largest number of non-negative terms solved by enumerating active sets.
_MAX_ENUMERATED = 8
#: Column-normalised condition number beyond which references count as linearly dependent.
_MAX_CONDITION = 1e10


# =========================================================================== kernels


@dataclass(frozen=True, eq=False)
class DesignFactor:
    """Thin-QR factorisation of an MLLS design matrix, shared by every spectrum.

    Attributes
    ----------
    design : ndarray, shape (E, K)
        The design matrix (references, and derivative terms, as columns), float64.
    q : ndarray, shape (E, K)
        Orthonormal basis of the design's column space, ``design = q @ r``.
    r : ndarray, shape (K, K)
        Upper-triangular factor.
    r_inv : ndarray, shape (K, K)
        Inverse of ``r``.
    gram_inv : ndarray, shape (K, K)
        ``inv(design.T @ design) = r_inv @ r_inv.T``.
    pinv : ndarray, shape (K, E)
        Pseudo-inverse of the design, ``r_inv @ q.T``.
    condition : float
        Condition number of the column-normalised design.
    """

    design: np.ndarray
    q: np.ndarray
    r: np.ndarray
    r_inv: np.ndarray
    gram_inv: np.ndarray
    pinv: np.ndarray
    condition: float

    @property
    def n_channels(self) -> int:
        """Number of energy channels ``E`` (rows of the design)."""
        return int(self.design.shape[0])

    @property
    def n_terms(self) -> int:
        """Number of fitted terms ``K`` (columns of the design)."""
        return int(self.design.shape[1])


class MLLSResult(NamedTuple):
    """What the MLLS kernels return (all float64).

    Attributes
    ----------
    coefficients : ndarray, shape (N, K)
        Fitted coefficient of every design column, per spectrum.
    chi2 : ndarray, shape (N,)
        Reduced chi-square ``sum w r^2 / (E - K)`` (``w = 1`` unweighted).
    stderr : ndarray, shape (N, K)
        Standard error of each coefficient, ``sqrt(chi2 * inv(R^T W R)_kk)``.
    covariance : ndarray, shape (N, K, K), or None
        Full covariance ``chi2 * inv(R^T W R)`` when requested.
    """

    coefficients: np.ndarray
    chi2: np.ndarray
    stderr: np.ndarray
    covariance: np.ndarray | None


def factor_design(design: Any, names: Sequence[str] | None = None) -> DesignFactor:
    """Factorise an MLLS design matrix once (thin QR) for use by the kernels.

    Parameters
    ----------
    design : array_like, shape (E, K)
        One column per term (reference spectrum or derivative), one row per energy channel.
    names : sequence of str, optional
        Names of the columns, used in error messages.

    Returns
    -------
    DesignFactor

    Raises
    ------
    InputError
        If the design is not 2-D, holds NaN/inf, has no more rows than columns, has an all-zero
        column, or its columns are (nearly) linearly dependent.

    Examples
    --------
    >>> e = np.linspace(0.0, 1.0, 50)
    >>> f = factor_design(np.stack([np.ones_like(e), e], axis=1))
    >>> bool(np.allclose(f.q @ f.r, f.design)), f.n_terms
    (True, 2)
    """
    r_mat = np.array(design, dtype=np.float64)
    if r_mat.ndim != 2:
        raise InputError(f"the design matrix must be 2-D (channels, terms), got shape {r_mat.shape}")
    n_ch, k = r_mat.shape
    names = list(names) if names is not None else [f"column {i}" for i in range(k)]
    if k < 1:
        raise InputError("the design matrix has no columns; give at least one reference spectrum")
    if n_ch <= k:
        raise InputError(
            f"the fit window holds {n_ch} channel(s) for {k} fitted term(s); MLLS needs more "
            f"channels than terms (at least {k + 1}) - widen the fit window or use fewer references"
        )
    if not np.all(np.isfinite(r_mat)):
        bad = [names[j] for j in range(k) if not np.all(np.isfinite(r_mat[:, j]))]
        raise InputError(f"the design holds NaN/inf in {bad}; clean the reference spectra first")
    norms = np.linalg.norm(r_mat, axis=0)
    zero = [names[j] for j in range(k) if norms[j] == 0]
    if zero:
        raise InputError(
            f"{', '.join(map(repr, zero))} {'is' if len(zero) == 1 else 'are'} zero throughout the "
            "fit window and cannot be fitted; move the window onto the reference's signal or drop it"
        )
    q, r = np.linalg.qr(r_mat)
    sv = np.linalg.svd(r / norms[None, :], compute_uv=False)
    condition = float(sv[0] / sv[-1]) if sv[-1] > 0 else float("inf")
    if not condition < _MAX_CONDITION:
        unit = r_mat / norms
        cos = np.abs(unit.T @ unit) - np.eye(k)
        i, j = np.unravel_index(int(np.argmax(cos)), cos.shape)
        raise InputError(
            f"the fitted terms are (nearly) linearly dependent in the fit window (condition number "
            f"{condition:.3g}; most alike: {names[i]!r} and {names[j]!r}, cosine {cos[i, j]:.8f}); "
            "drop or merge one of them, or widen the fit window"
        )
    r_inv = np.linalg.solve(r, np.eye(k))  # K x K; (scipy's trtrs wrapper costs ms per call)
    return DesignFactor(
        design=r_mat, q=q, r=r, r_inv=r_inv, gram_inv=r_inv @ r_inv.T, pinv=r_inv @ q.T,
        condition=condition,
    )


def _as_factor(design: Any) -> DesignFactor:
    return design if isinstance(design, DesignFactor) else factor_design(design)


def _check_spectra(spectra: Any, n_channels: int) -> np.ndarray:
    s = np.asarray(spectra)
    if s.ndim != 2 or s.shape[1] != n_channels:
        raise InputError(
            f"spectra must have shape (N, {n_channels}) to match the design's {n_channels} "
            f"channels, got {s.shape}"
        )
    if not (np.issubdtype(s.dtype, np.floating) or np.issubdtype(s.dtype, np.integer)):
        raise InputError(f"spectra must be real numbers, got dtype {s.dtype}")
    return s


def _work_dtype(dtype: Any) -> np.dtype:
    """float32 data are fitted in float32 GEMMs; everything else in float64."""
    return np.dtype(np.float32) if np.dtype(dtype) == np.float32 else np.dtype(np.float64)


def _constraint_mask(nonnegative: bool | Sequence[bool] | np.ndarray, k: int) -> np.ndarray:
    if np.ndim(nonnegative) == 0:
        return np.full(k, bool(nonnegative))
    mask = np.asarray(nonnegative, dtype=bool)
    if mask.shape != (k,):
        raise InputError(f"nonnegative must be a bool or {k} bools (one per term), got shape {mask.shape}")
    return mask


def _block_rows(n_channels: int, dtype: np.dtype) -> int:
    return max(16, _BLOCK_BYTES // max(1, n_channels * dtype.itemsize))


def _run_blocks(func: Callable[[slice], None], n_rows: int, block_rows: int, workers: int | None) -> None:
    """:func:`ionscope.blocks.run_blocks`, by default on a thread per CPU for data above
    :data:`_THREADS_FROM_BYTES` and on one thread below."""
    if workers is None:
        n_blocks = -(-n_rows // block_rows)
        workers = n_cpus() if n_blocks * _BLOCK_BYTES >= _THREADS_FROM_BYTES else 1
    run_blocks(func, n_rows, block_rows, workers)


def _residual(spectra: np.ndarray, coef: np.ndarray, design_t: np.ndarray, out: np.ndarray) -> np.ndarray:
    """``out[:] = spectra - coef @ design.T`` (``design_t`` is the (K, E) transposed design in
    the spectra's dtype). numpy's matmul and subtract release the GIL, so blocks run in parallel."""
    np.matmul(coef.astype(out.dtype), design_t, out=out)
    np.subtract(spectra, out, out=out)
    return out


def _subsets(constrained: np.ndarray) -> list[np.ndarray]:
    """Every candidate free set: unconstrained terms always free, any subset of the constrained."""
    cidx = np.flatnonzero(constrained)
    out = []
    for bits in itertools.product((False, True), repeat=cidx.size):
        free = ~constrained.copy()
        free[cidx[np.array(bits, dtype=bool)]] = True
        out.append(free)
    return out


def _split_nnls(a_mat: np.ndarray, y: np.ndarray, constrained: np.ndarray) -> np.ndarray:
    """min ||A x - y|| with x >= 0 on ``constrained`` only (free terms split into +/- parts)."""
    free = np.flatnonzero(~constrained)
    big = np.concatenate([a_mat, -a_mat[:, free]], axis=1)
    x, _ = scipy.optimize.nnls(big, y)
    out = x[: a_mat.shape[1]].copy()
    out[free] -= x[a_mat.shape[1]:]
    return out


def _feasible(x: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """Rows of ``x`` whose constrained columns are >= 0 (up to rounding)."""
    if not cols.any():
        return np.ones(x.shape[0], dtype=bool)
    scale = np.max(np.abs(x), axis=1) if x.shape[1] else np.zeros(x.shape[0])
    return np.all(x[:, cols] >= -1e-12 * scale[:, None], axis=1)


def _nnls_unweighted(c: np.ndarray, a: np.ndarray, f: DesignFactor, constrained: np.ndarray,
                     subsets: list[tuple[np.ndarray, np.ndarray, np.ndarray]] | None) -> np.ndarray:
    """Exact NNLS in the Q basis: min ||T a - c|| per row with a >= 0 on ``constrained``."""
    bad = np.flatnonzero(np.any(a[:, constrained] < 0, axis=1))
    if bad.size == 0:
        return a
    cb = c[bad]
    if subsets is None:
        sol = np.array([_split_nnls(f.r, row, constrained) for row in cb])
    else:
        best = np.full(bad.size, np.inf)
        sol = np.zeros((bad.size, a.shape[1]))
        for free, pinv_f, t_f in subsets:
            if free.any():
                af = cb @ pinv_f.T
                res = cb - af @ t_f.T
                ok = _feasible(af, constrained[free])
            else:
                af = np.zeros((bad.size, 0))
                res = cb
                ok = np.ones(bad.size, dtype=bool)
            obj = np.einsum("ij,ij->i", res, res)
            take = ok & (obj < best)
            if take.any():
                best[take] = obj[take]
                sol[take] = 0.0
                sol[np.ix_(take, free)] = af[take]
        sol[:, constrained] = np.maximum(sol[:, constrained], 0.0)
    a = a.copy()
    a[bad] = sol
    return a


def _unweighted_subsets(f: DesignFactor, constrained: np.ndarray):
    if constrained.sum() > _MAX_ENUMERATED:
        return None
    out = []
    for free in _subsets(constrained):
        t_f = f.r[:, free]
        out.append((free, np.linalg.pinv(t_f) if free.any() else np.zeros((0, f.n_terms)), t_f))
    return out


def mlls_unweighted(
    spectra: Any,
    design: Any,
    *,
    nonnegative: bool | Sequence[bool] = False,
    return_covariance: bool = False,
    workers: int | None = None,
) -> MLLSResult:
    """Unweighted MLLS of many spectra against one design matrix.

    Parameters
    ----------
    spectra : array_like, shape (N, E)
        One spectrum per row, already cut to the fit window (counts). float32 data are fitted
        with float32 GEMMs (coefficients and chi-square finished in float64); any other dtype in
        float64. Read block by block; never copied whole.
    design : array_like, shape (E, K), or DesignFactor
        Reference spectra (and derivative terms) as columns, or their :func:`factor_design`
        (pass the factor to reuse it across calls).
    nonnegative : bool or sequence of K bools
        Constrain all (``True``) or the selected coefficients to be >= 0 (exact NNLS).
    return_covariance : bool
        Also return the (N, K, K) covariance of the coefficients.
    workers : int, optional
        Threads that process blocks of spectra (default: one per CPU for data above ~12 MB,
        else one). Use 1 inside an already parallel caller (e.g. dask blocks).

    Returns
    -------
    MLLSResult
        ``coefficients`` (N, K), reduced ``chi2`` (N,), ``stderr`` (N, K), ``covariance``.

    Examples
    --------
    >>> e = np.linspace(50.0, 80.0, 301)
    >>> refs = np.stack([np.exp(-((e - 60) / 3) ** 2), np.exp(-((e - 70) / 4) ** 2)], axis=1)
    >>> truth = np.array([[2.0, 1.0], [0.5, 3.0]])
    >>> fit = mlls_unweighted(truth @ refs.T, refs)
    >>> bool(np.allclose(fit.coefficients, truth))
    True
    """
    f = _as_factor(design)
    s = _check_spectra(spectra, f.n_channels)
    n, e = s.shape
    k = f.n_terms
    dtype = _work_dtype(s.dtype)
    constrained = _constraint_mask(nonnegative, k)
    q = np.ascontiguousarray(f.q, dtype=dtype)
    design_t = np.ascontiguousarray(f.design.T, dtype=dtype)
    r_inv_t = np.ascontiguousarray(f.r_inv.T)
    subsets = _unweighted_subsets(f, constrained) if constrained.any() else None
    coef = np.empty((n, k))
    chi = np.empty(n)
    rows = _block_rows(e, dtype)
    scratch = Scratch(rows, e, dtype)

    refine = dtype == np.float32
    r_t = np.ascontiguousarray(f.r.T)
    r_inv_t_w = r_inv_t.astype(dtype)
    any_constrained = bool(constrained.any())

    def block(sl: slice) -> None:
        sb = s[sl]
        if sb.dtype != dtype:
            sb = sb.astype(dtype)
        resid = scratch.get(0, sb.shape[0])
        if not refine:  # float64: the GEMM is accurate as it is
            c = np.matmul(sb, q)
            a = c @ r_inv_t
            if any_constrained:
                a = _nnls_unweighted(c, a, f, constrained, subsets)
            _residual(sb, a, design_t, resid)
            chi[sl] = np.vecdot(resid, resid)
            coef[sl] = a
            return
        # float32: a first solution a0 in float32, then one step of iterative refinement. The
        # float32 GEMM's rounding (~1e-5 in the coefficients) is undone with the accurately
        # computed residual r = S - R a0: Q^T S = Q^T r + T a0 exactly, and Q^T r is small, so
        # its own rounding is negligible.
        a0 = np.matmul(sb, q) @ r_inv_t_w
        _residual(sb, a0, design_t, resid)
        rr = np.vecdot(resid, resid)
        dc = np.matmul(resid, q).astype(np.float64)
        if not any_constrained:  # a = a0 + T^-1 dc; chi2 = |r|^2 - |dc|^2 (dc is small: no cancellation)
            coef[sl] = a0 + dc @ r_inv_t
            chi[sl] = rr - np.einsum("ij,ij->i", dc, dc)
            return
        a0 = a0.astype(np.float64)
        c = dc + a0 @ r_t
        a = _nnls_unweighted(c, c @ r_inv_t, f, constrained, subsets)
        u = (a - a0) @ r_t  # chi2(a) = |r - R (a - a0)|^2 = rr - 2 u.dc + u.u
        chi[sl] = rr - 2.0 * np.einsum("ij,ij->i", u, dc) + np.einsum("ij,ij->i", u, u)
        coef[sl] = a

    if n:
        _run_blocks(block, n, rows, workers)
    chi /= e - k
    stderr = np.sqrt(chi[:, None] * np.diag(f.gram_inv)[None, :])
    cov = chi[:, None, None] * f.gram_inv[None] if return_covariance else None
    return MLLSResult(coef, chi, stderr, cov)


def _nnls_weighted(g_a: np.ndarray, b_a: np.ndarray, a: np.ndarray, constrained: np.ndarray) -> np.ndarray:
    """Exact NNLS per row of min 1/2 x^T G x - b^T x, x >= 0 on ``constrained``."""
    bad = np.flatnonzero(np.any(a[:, constrained] < 0, axis=1))
    if bad.size == 0:
        return a
    g = g_a[bad]
    b = b_a[bad]
    if constrained.sum() > _MAX_ENUMERATED:
        sol = np.empty((bad.size, a.shape[1]))
        for i in range(bad.size):
            low = np.linalg.cholesky(g[i])
            sol[i] = _split_nnls(low.T, np.linalg.solve(low, b[i]), constrained)
    else:
        best = np.full(bad.size, np.inf)
        sol = np.zeros((bad.size, a.shape[1]))
        for free in _subsets(constrained):
            if free.any():
                gf = g[:, free][:, :, free]
                bf = b[:, free]
                xf = np.linalg.solve(gf, bf[..., None])[..., 0]
                obj = -0.5 * np.einsum("ij,ij->i", bf, xf)
                ok = _feasible(xf, constrained[free])
            else:
                xf = np.zeros((bad.size, 0))
                obj = np.zeros(bad.size)
                ok = np.ones(bad.size, dtype=bool)
            take = ok & (obj < best)
            if take.any():
                best[take] = obj[take]
                sol[take] = 0.0
                sol[np.ix_(take, free)] = xf[take]
        sol[:, constrained] = np.maximum(sol[:, constrained], 0.0)
    a = a.copy()
    a[bad] = sol
    return a


def mlls_weighted(
    spectra: Any,
    design: Any,
    *,
    nonnegative: bool | Sequence[bool] = False,
    return_covariance: bool = False,
    workers: int | None = None,
) -> MLLSResult:
    """Poisson-weighted MLLS (weights ``1 / max(S, 1)``) of many spectra against one design.

    Each spectrum has its own normal matrix :math:`R^T W_n R`; they are built for all spectra
    with one GEMM (weights times the products of the design's orthonormal basis) and solved as
    a batch of :math:`K \\times K` systems. Parameters and returns as :func:`mlls_unweighted`;
    ``chi2`` is the weighted reduced chi-square :math:`\\sum_E w r^2 / (E - K)`, close to 1 for
    Poisson data that the model describes.

    Examples
    --------
    >>> e = np.linspace(50.0, 80.0, 301)
    >>> refs = np.stack([np.exp(-((e - 60) / 3) ** 2), np.ones_like(e)], axis=1)
    >>> counts = np.random.default_rng(0).poisson(refs @ [500.0, 100.0], size=(200, e.size))
    >>> fit = mlls_weighted(counts, refs)
    >>> bool(abs(fit.coefficients[:, 0].mean() / 500 - 1) < 0.01), bool(abs(fit.chi2.mean() - 1) < 0.05)
    (True, True)
    """
    f = _as_factor(design)
    s = _check_spectra(spectra, f.n_channels)
    n, e = s.shape
    k = f.n_terms
    dtype = _work_dtype(s.dtype)
    constrained = _constraint_mask(nonnegative, k)
    iu, ju = np.triu_indices(k)
    q = np.ascontiguousarray(f.q, dtype=dtype)
    qprod = np.ascontiguousarray(f.q[:, iu] * f.q[:, ju], dtype=dtype)
    design_t = np.ascontiguousarray(f.design.T, dtype=dtype)
    r_inv, r_inv_t = f.r_inv, np.ascontiguousarray(f.r_inv.T)
    coef = np.empty((n, k))
    chi = np.empty(n)
    var = np.empty((n, k))
    cov = np.empty((n, k, k)) if return_covariance else None
    rows = _block_rows(e, dtype)
    scratch = Scratch(rows, e, dtype)

    refine = dtype == np.float32
    r_mat, r_t = f.r, np.ascontiguousarray(f.r.T)
    any_constrained = bool(constrained.any())

    def block(sl: slice) -> None:
        sb = s[sl]
        if sb.dtype != dtype:
            sb = sb.astype(dtype)
        m = sb.shape[0]
        w, resid = scratch.get(0, m), scratch.get(1, m)
        np.minimum(sb, 1, out=resid)
        b_q = np.matmul(resid, q).astype(np.float64)  # Q^T W S, as w * S = min(S, 1)
        np.maximum(sb, 1, out=w)
        np.reciprocal(w, out=w)
        g_flat = np.matmul(w, qprod).astype(np.float64)
        g_q = np.empty((m, k, k))
        g_q[:, iu, ju] = g_flat
        g_q[:, ju, iu] = g_flat
        g_q_inv = np.linalg.inv(g_q)
        a = np.einsum("nij,nj->ni", g_q_inv, b_q) @ r_inv_t
        if not refine:
            if any_constrained:
                a = _nnls_weighted(r_mat.T @ g_q @ r_mat, b_q @ r_mat, a, constrained)
            _residual(sb, a, design_t, resid)
            np.multiply(resid, resid, out=resid)
            chi[sl] = np.vecdot(resid, w)
        else:
            # float32: one step of iterative refinement with the weighted residual (see
            # mlls_unweighted); Q^T W S = Q^T W r + G_q T a0 exactly, and Q^T W r is small.
            _residual(sb, a, design_t, resid)
            np.multiply(w, resid, out=w)  # w * r
            rr = np.vecdot(w, resid)
            dq = np.matmul(w, q).astype(np.float64)
            y = np.einsum("nij,nj->ni", g_q_inv, dq)
            if not any_constrained:  # chi2_w = rr - dq^T G_q^-1 dq
                a = a + y @ r_inv_t
                chi[sl] = rr - np.einsum("ij,ij->i", y, dq)
            else:
                a0 = a
                b_ref = dq + np.einsum("nij,nj->ni", g_q, a0 @ r_t)
                a = _nnls_weighted(r_mat.T @ g_q @ r_mat, b_ref @ r_mat, a0 + y @ r_inv_t, constrained)
                v = (a - a0) @ r_t  # chi2_w(a) = rr - 2 v.dq + v^T G_q v
                chi[sl] = (rr - 2.0 * np.einsum("ij,ij->i", v, dq)
                           + np.einsum("ni,nij,nj->n", v, g_q, v))
        coef[sl] = a
        right = g_q_inv @ r_inv_t  # (R^T W R)^-1 = T^-1 G_q^-1 T^-T
        if cov is not None:
            cov[sl] = r_inv @ right
            var[sl] = np.diagonal(cov[sl], axis1=1, axis2=2)
        else:
            var[sl] = np.einsum("ki,nik->nk", r_inv, right)

    if n:
        _run_blocks(block, n, rows, workers)
    chi /= e - k
    stderr = np.sqrt(chi[:, None] * var)
    if cov is not None:
        cov *= chi[:, None, None]
    return MLLSResult(coef, chi, stderr, cov)


def li_fraction(
    coefficients: np.ndarray, covariance: np.ndarray, rich: int, poor: int
) -> tuple[np.ndarray, np.ndarray]:
    r"""Li fraction :math:`x = a_r / (a_r + a_p)` and its propagated standard error.

    .. math::

        \sigma_x^2 = \frac{a_p^2 \sigma_r^2 + a_r^2 \sigma_p^2 - 2 a_r a_p \sigma_{rp}}{(a_r + a_p)^4}

    Parameters
    ----------
    coefficients : ndarray, shape (N, K)
    covariance : ndarray, shape (N, K, K)
    rich, poor : int
        Columns of the Li-rich and the Li-poor reference.

    Returns
    -------
    x, sigma_x : ndarray, shape (N,)
        NaN where ``a_r + a_p == 0``.
    """
    ar, ap = coefficients[:, rich], coefficients[:, poor]
    vr, vp, crp = covariance[:, rich, rich], covariance[:, poor, poor], covariance[:, rich, poor]
    total = ar + ap
    with np.errstate(divide="ignore", invalid="ignore"):
        x = np.where(total != 0, ar / total, np.nan)
        var = (ap**2 * vr + ar**2 * vp - 2 * ar * ap * crp) / total**4
        err = np.where(total != 0, np.sqrt(np.maximum(var, 0.0)), np.nan)
    return x, err


# =========================================================================== wrapper


def _energy_ev(arr: xr.DataArray, what: str) -> tuple[np.ndarray, float]:
    """Channel energies (eV, float64) and dispersion of an evenly spaced, increasing axis."""
    _, step, unit = axis_calibration(arr, "energy")
    factor = _ENERGY_UNITS_TO_EV.get(unit.strip().lower())
    if factor is None:
        raise InputError(
            f"the energy axis of {what} is in {unit!r}, not an energy unit; calibrate it in eV "
            "(offset and dispersion) first"
        )
    if step <= 0:
        raise InputError(
            f"the energy axis of {what} decreases; reverse it with "
            "da.isel(energy=slice(None, None, -1)) first"
        )
    return np.asarray(arr["energy"].values, dtype=np.float64) * factor, step * factor


def _window(energy: np.ndarray, disp: float, fit_window: Sequence[float] | None) -> slice:
    if fit_window is None:
        return slice(0, energy.size)
    try:
        lo, hi = (float(v) for v in fit_window)
    except (TypeError, ValueError):
        raise InputError(f"fit_window must be a pair (lo, hi) in eV, got {fit_window!r}") from None
    if not (np.isfinite(lo) and np.isfinite(hi)) or hi <= lo:
        raise InputError(f"fit_window ({lo:g}, {hi:g}) eV must be finite with lo < hi")
    first, last = energy[0] - disp / 2, energy[-1] + disp / 2
    tol = 1e-6 * disp
    if lo < first - tol or hi > last + tol:
        raise InputError(
            f"fit_window {lo:g}-{hi:g} eV lies outside the data, which cover {first:g}-{last:g} eV; "
            "choose a window inside the recorded energy range"
        )
    i0 = int(np.searchsorted(energy, lo - tol, side="left"))
    i1 = int(np.searchsorted(energy, hi + tol, side="right"))
    return slice(i0, i1)


def _named_references(references: Any) -> list[tuple[str, xr.DataArray]]:
    if isinstance(references, xr.DataArray):
        raise InputError("references must be a dict name -> DataArray or a sequence of DataArrays, not one array")
    if isinstance(references, Mapping):
        items = [(str(k), v) for k, v in references.items()]
    elif isinstance(references, Sequence) and not isinstance(references, str):
        items = [(str(v.name) if getattr(v, "name", None) is not None else f"component_{i}", v)
                 for i, v in enumerate(references)]
    else:
        raise InputError(f"references must be a dict or a sequence of DataArrays, got {type(references).__name__}")
    if not items:
        raise InputError("no reference spectra given; pass at least one")
    names = [n for n, _ in items]
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise InputError(f"reference names must be unique, {dup} repeat; pass a dict to name them")
    return items


def _reference_column(name: str, ref: Any, e_win: np.ndarray, disp: float, derivative: bool):
    what = f"reference {name!r}"
    if not isinstance(ref, xr.DataArray):
        raise InputError(f"{what} must be an xarray.DataArray with dim 'energy', got {type(ref).__name__}")
    if ref.dims != ("energy",):
        raise DimensionError(f"{what} must be 1-D along 'energy', got dims {tuple(ref.dims)}")
    if ref.size < 2:
        raise InputError(f"{what} has {ref.size} channel(s); it needs at least 2")
    e_ref, d_ref = _energy_ev(ref, what)
    values = np.asarray(ref.values, dtype=np.float64)
    if not np.all(np.isfinite(values)):
        raise InputError(f"{what} holds NaN/inf values; clean or interpolate it first")
    tol = 1e-3 * disp
    if e_ref[0] > e_win[0] + tol or e_ref[-1] < e_win[-1] - tol:
        raise InputError(
            f"{what} covers {e_ref[0]:g}-{e_ref[-1]:g} eV but the fit window needs "
            f"{e_win[0]:g}-{e_win[-1]:g} eV; narrow fit_window or use a reference recorded over "
            "the whole window"
        )
    ratio = d_ref / disp
    if ratio > _MAX_DISPERSION_RATIO:
        raise InputError(
            f"{what} has a dispersion of {d_ref:g} eV/channel, {ratio:.3g}x coarser than the data's "
            f"{disp:g} eV/channel; interpolation cannot supply the missing fine structure - record "
            f"the reference at the data's dispersion or bin the data to match "
            f"(da.coarsen(energy={int(round(ratio))}, boundary='trim').sum())"
        )
    if ratio < 1 / _MAX_DISPERSION_RATIO:
        n = int(round(1 / ratio))
        raise InputError(
            f"{what} has a dispersion of {d_ref:g} eV/channel, {1 / ratio:.3g}x finer than the data's "
            f"{disp:g} eV/channel; sampling it would alias its fine structure - bin it to the data's "
            f"dispersion first (ref.coarsen(energy={n}, boundary='trim').mean())"
        )
    column = np.interp(e_win, e_ref, values)
    deriv = np.interp(e_win, e_ref, np.gradient(values, e_ref)) if derivative else None
    return column, deriv


def _block_fit(
    block: np.ndarray,
    *,
    factor: DesignFactor,
    weighted: bool,
    constrained: np.ndarray,
    n_ref: int,
    derivatives: bool,
    li_pair: tuple[int, int] | None,
    workers: int | None,
    lead_dims: tuple[str, ...],
    in_block: bool,
) -> np.ndarray:
    """Fit one (..., E) block; returns the wrapper's outputs packed along the last axis:
    coefficients, stderr (``n_ref`` each), chi2, [derivative coefficients, shifts], [x, sigma_x]."""
    lead = block.shape[:-1]
    spectra = block.reshape(-1, block.shape[-1])
    kernel = mlls_weighted if weighted else mlls_unweighted
    res = kernel(spectra, factor, nonnegative=constrained, return_covariance=li_pair is not None,
                 workers=workers)
    bad = ~np.isfinite(res.chi2)
    if bad.any():
        first = np.unravel_index(int(np.argmax(bad)), lead) if lead else ()
        where = ", ".join(f"{d}={i}" for d, i in zip(lead_dims, first))
        raise NonFiniteError(
            f"{int(bad.sum())} spectra hold NaN/inf values in the fit window (first at {where}"
            f"{' of a dask block' if in_block else ''}); mask or interpolate them before fitting"
        )
    a = res.coefficients
    cols = [a[:, :n_ref], res.stderr[:, :n_ref], res.chi2[:, None]]
    if derivatives:
        d = a[:, n_ref:]
        with np.errstate(divide="ignore", invalid="ignore"):
            shift = np.where(a[:, :n_ref] != 0, -d / a[:, :n_ref], np.nan)
        cols += [d, shift]
    if li_pair is not None:
        x, err = li_fraction(a, res.covariance, *li_pair)
        cols += [x[:, None], err[:, None]]
    packed = np.concatenate(cols, axis=1).astype(_work_dtype(block.dtype), copy=False)
    return packed.reshape(lead + packed.shape[1:])


def mlls_fit(
    da: xr.DataArray,
    references: Mapping[str, xr.DataArray] | Sequence[xr.DataArray],
    *,
    fit_window: tuple[float, float] | None = None,
    weighted: bool = False,
    nonnegative: bool = False,
    derivatives: bool = False,
    rich: str | None = None,
    poor: str | None = None,
) -> xr.Dataset:
    """Fit every spectrum of a spectrum image or series to reference spectra (MLLS).

    Parameters
    ----------
    da : xarray.DataArray
        Spectra (counts) with dim ``energy`` (energy loss, evenly spaced, in eV, keV or meV)
        and any of ``time``, ``y``, ``x``, ``position`` in front. May be dask-backed (chunked
        over the leading dims): the result is then lazy and computed block by block.
    references : dict of str to DataArray, or sequence of DataArray
        1-D reference spectra along ``energy``, linearly interpolated onto the data's channels.
        Their dispersion must be within a factor 2 of the data's, and they must cover the fit
        window. A sequence takes the names from ``DataArray.name``.
    fit_window : (float, float), optional
        Energy-loss range (eV, inclusive) of the channels that are fitted; default the whole
        recorded range. Must lie inside the data and hold more channels than fitted terms.
    weighted : bool
        Poisson weights ``1 / max(S, 1)`` (for raw counts); default unweighted.
    nonnegative : bool
        Constrain the reference coefficients to be >= 0 (exact NNLS; derivative terms stay free).
    derivatives : bool
        Add each reference's first derivative ``dR/dE`` as an extra term to absorb small energy
        shifts (well below the features' width).
    rich, poor : str, optional
        Names of the Li-rich and Li-poor references; both given, ``li_fraction`` is reported.

    Returns
    -------
    xarray.Dataset
        ``coefficients`` and ``stderr`` (component, *leading dims), reduced ``chi2`` (leading
        dims; unweighted: residual variance in the data's units squared); with ``derivatives``
        also ``derivative_coefficients`` (eV) and ``energy_shift`` (eV, ``-d_k / a_k``, positive =
        towards higher loss); with ``rich``/``poor`` also ``li_fraction`` and
        ``li_fraction_stderr``. float32 data give float32 results. ``attrs`` hold the
        provenance, ``fit_window_eV`` (the centres of the first and last fitted channel) and
        ``n_channels``.

    Raises
    ------
    InputError
        Bad dims or energy axis, a window outside the data or with too few channels,
        references that do not cover the window or whose dispersion does not match, all-zero or
        linearly dependent references, all-zero data, unknown ``rich``/``poor`` names.
    NonFiniteError
        Spectra with NaN/inf in the window (for lazy data: when the block is computed).

    Examples
    --------
    >>> from ionscope.data import signal
    >>> e = np.arange(50.0, 80.0, 0.1)
    >>> lco = signal(np.exp(-((e - 62) / 3) ** 2) + 0.2, ("energy",), name="LiCoO2", units="1",
    ...              coords={"energy": e})
    >>> co3o4 = signal(np.exp(-((e - 66) / 4) ** 2) + 0.1, ("energy",), name="Co3O4", units="1",
    ...                coords={"energy": e})
    >>> x_true = np.linspace(0.1, 0.9, 8)
    >>> spectra = 100 * (np.outer(x_true, lco.values) + np.outer(1 - x_true, co3o4.values))
    >>> da = signal(spectra, ("x", "energy"), name="eels", units="counts",
    ...             coords={"x": 2.0, "energy": e})
    >>> ds = mlls_fit(da, [lco, co3o4], fit_window=(52, 75), rich="LiCoO2", poor="Co3O4")
    >>> bool(np.allclose(ds.li_fraction, x_true))
    True
    """
    if not isinstance(da, xr.DataArray):
        raise InputError(f"mlls_fit needs an xarray.DataArray with an 'energy' dim, got {type(da).__name__}")
    if "energy" not in da.dims:
        raise DimensionError(
            f"the spectra have dims {tuple(da.dims)} but no 'energy' dim; name the spectral axis "
            "'energy' (eV)"
        )
    extra = [d for d in da.dims if d != "energy" and d not in LEADING_DIMS]
    if extra:
        raise DimensionError(
            f"the spectra have dim(s) {extra} that MLLS does not know; allowed in front of "
            f"'energy' are {LEADING_DIMS}"
        )
    require_nonempty(da, "the spectra")
    if not (np.issubdtype(da.dtype, np.floating) or np.issubdtype(da.dtype, np.integer)):
        raise InputError(f"the spectra must be real numbers, got dtype {da.dtype}")
    energy, disp = _energy_ev(da, "the spectra")
    win = _window(energy, disp, fit_window)
    e_win = energy[win]
    items = _named_references(references)
    names = [n for n, _ in items]
    n_ref = len(items)
    n_terms = n_ref * (2 if derivatives else 1)
    if e_win.size <= n_terms:
        raise InputError(
            f"the fit window {e_win[0] if e_win.size else fit_window[0]:g}-"
            f"{e_win[-1] if e_win.size else fit_window[1]:g} eV holds {e_win.size} channel(s) "
            f"but {n_terms} terms are fitted; it needs at least {n_terms + 1} - widen it"
        )
    if (rich is None) != (poor is None):
        raise InputError("give both rich= and poor= (reference names) to get the Li fraction, or neither")
    li_pair = None
    if rich is not None:
        missing = [n for n in (rich, poor) if n not in names]
        if missing:
            raise InputError(f"rich/poor name(s) {missing} are not among the references {names}")
        if rich == poor:
            raise InputError(f"rich and poor must be different references, both are {rich!r}")
        li_pair = (names.index(rich), names.index(poor))
    columns, derivs = [], []
    for name, ref in items:
        col, der = _reference_column(name, ref, e_win, disp, derivatives)
        columns.append(col)
        derivs.append(der)
    col_names = list(names)
    if derivatives:
        columns += derivs
        col_names += [f"d{n}/dE" for n in names]
    factor = factor_design(np.stack(columns, axis=1), col_names)
    constrained = np.zeros(n_terms, dtype=bool)
    constrained[:n_ref] = bool(nonnegative)

    lazy = is_lazy(da)
    data = da.transpose(..., "energy").isel(energy=win)
    lead_dims = tuple(d for d in data.dims if d != "energy")
    out_specs: list[tuple[str, int, str, str]] = [  # name, columns (0 = no component dim), ...
        ("coefficients", n_ref, "1", "MLLS coefficient of each reference"),
        ("stderr", n_ref, "1", "standard error of the MLLS coefficient"),
        ("chi2", 0, "1" if weighted else f"({units_of(da)})^2",
         "reduced chi-square (Poisson-weighted)" if weighted
         else "reduced chi-square (residual variance per channel)"),
    ]
    if derivatives:
        out_specs += [
            ("derivative_coefficients", n_ref, "eV", "coefficient of the reference's energy derivative"),
            ("energy_shift", n_ref, "eV", "energy shift of each reference, -d/a (positive = higher loss)"),
        ]
    if li_pair is not None:
        out_specs += [
            ("li_fraction", 0, "1", f"Li fraction a_{rich} / (a_{rich} + a_{poor})"),
            ("li_fraction_stderr", 0, "1", "standard error of the Li fraction (propagated)"),
        ]
    width = sum(max(ncol, 1) for _, ncol, _, _ in out_specs)
    dtype = _work_dtype(da.dtype)
    fit_kw = dict(
        factor=factor, weighted=bool(weighted), constrained=constrained, n_ref=n_ref,
        derivatives=bool(derivatives), li_pair=li_pair, lead_dims=lead_dims,
    )
    if lazy:
        # map_blocks, not apply_ufunc: a gufunc's core dim is "contracted", and dask would copy
        # every input block through concatenate3 even when the energy axis is one chunk
        arr = data.data.rechunk({data.ndim - 1: -1})
        packed = arr.map_blocks(
            _block_fit, chunks=arr.chunks[:-1] + ((width,),), dtype=dtype,
            meta=np.empty((0,) * arr.ndim, dtype), workers=1, in_block=True, **fit_kw,
        )
    else:
        packed = _block_fit(np.asarray(data.data), workers=None, in_block=False, **fit_kw)
    results, col = [], 0
    for _, ncol, _, _ in out_specs:
        if ncol:
            part = packed[..., col:col + ncol]
            part = (part.transpose((part.ndim - 1,) + tuple(range(part.ndim - 1))) if lazy
                    else np.ascontiguousarray(np.moveaxis(part, -1, 0)))
        else:
            part = packed[..., col]
            part = part if lazy else np.ascontiguousarray(part)
        results.append(part)
        col += max(ncol, 1)
    if not lazy and not np.any(results[0]) and not np.any(results[2]):
        raise EmptyDataError(
            f"all {int(np.prod([data.sizes[d] for d in lead_dims]))} spectra are zero in the fit "
            f"window {e_win[0]:g}-{e_win[-1]:g} eV; check the file, the selected region and the "
            "fit window"
        )

    # One Dataset from plain Variables: the coordinates (and their indexes) are built once,
    # not once per output variable - for a single spectrum image this is most of the wrapper.
    coords: dict[str, Any] = {
        d: xr.Variable((d,), np.asarray(da[d].values), {"units": units_of(da[d])})
        for d in lead_dims if d in da.coords
    }
    coords["component"] = xr.Variable(("component",), np.asarray(names), {"units": "1"})
    coords.update(
        (c, da.coords[c]) for c in da.coords
        if c not in da.dims and "energy" not in da.coords[c].dims
    )
    history = provenance(da)
    params = {
        "references": names,
        "fit_window_eV": [float(e_win[0]), float(e_win[-1])],
        "n_channels": int(e_win.size),
        "weighted": bool(weighted),
        "nonnegative": bool(nonnegative),
        "derivatives": bool(derivatives),
        "rich": rich,
        "poor": poor,
    }
    inputs = [da, *(ref for _, ref in items)]
    variables = {
        name: xr.Variable((("component",) if per_comp else ()) + lead_dims, res,
                          {"units": units, "long_name": long_name})
        for (name, per_comp, units, long_name), res in zip(out_specs, results)
    }
    ds = xr.Dataset(variables, coords=coords)
    ds.attrs = {"fit_window_eV": params["fit_window_eV"], "n_channels": params["n_channels"],
                "condition_number": factor.condition}
    ds = with_provenance(ds, STEP, params, inputs=inputs, history=history)
    prov = ds.attrs["provenance"]
    for name in ds.data_vars:
        ds[name].attrs["provenance"] = prov
    return ds


__all__ = [
    "DesignFactor",
    "MLLSResult",
    "factor_design",
    "mlls_unweighted",
    "mlls_weighted",
    "li_fraction",
    "mlls_fit",
]
