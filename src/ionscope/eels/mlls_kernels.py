r"""MLLS kernels: batched multiple linear least squares of spectra against one design (numpy).

The numpy side of :func:`ionscope.eels.mlls.mlls_fit`: spectra ``(N, E)`` already cut to the
fit window are fitted to a design matrix ``(E, K)`` whose columns are the reference spectra
(and, optionally, their energy derivatives). :func:`factor_design` factorises the design once
(:class:`DesignFactor`); :func:`mlls_unweighted` and :func:`mlls_weighted` fit every spectrum
(optionally with non-negative coefficients) and return an :class:`MLLSResult`;
:func:`li_fraction` turns two coefficients and their covariance into
:math:`x = a_\mathrm{rich} / (a_\mathrm{rich} + a_\mathrm{poor})` with its standard error.

Numerics
--------
All spectra share the design matrix :math:`R` (:math:`E_w \times K`), so it is factorised once
(thin QR, :math:`R = QT`, :class:`DesignFactor`) and the whole data set is fitted with one
matrix product per block of spectra:

* **unweighted** (:func:`mlls_unweighted`): coordinates :math:`c = Q^T S` and
  :math:`\lVert S\rVert^2`, accumulated in float64 in one pass over each spectrum
  (:func:`ionscope.eels.mlls_sums.project_rows`, compiled), then :math:`a = T^{-1} c` and
  :math:`\chi^2 = \lVert S\rVert^2 - \lVert c\rVert^2` (plus :math:`\lVert c - Ta\rVert^2` for a
  constrained solution). In float64 the subtraction keeps ~16 - log10(S/noise) digits; the
  rare spectra the model fits almost exactly (:math:`\chi^2 < 10^{-8} \lVert S\rVert^2`) get
  :math:`\chi^2` from their explicit residual instead. Standard errors
  :math:`\sigma_k = \sqrt{\hat\sigma^2 (R^T R)^{-1}_{kk}}` with
  :math:`\hat\sigma^2 = \chi^2 / (E_w - K)`.
* **Poisson-weighted** (:func:`mlls_weighted`, weights :math:`w = 1/\max(S, 1)`): the normal
  matrix differs per spectrum. In the orthonormal basis it is :math:`G^Q_n = Q^T W_n Q`, with
  right-hand side :math:`Q^T W_n S_n`; both, :math:`S^T W S`, the Cholesky solve and
  :math:`(G^Q_n)^{-1}` are formed per spectrum in one pass
  (:func:`ionscope.eels.mlls_sums.poisson_weighted_rows`). Working in the :math:`Q` basis keeps
  :math:`G^Q_n` as well conditioned as the weights' dynamic range (forming :math:`R^T W R`
  directly would square the references' condition number);
  :math:`(R^T W R)^{-1} = T^{-1} (G^Q)^{-1} T^{-T}` and
  :math:`\chi^2_w = S^T W S - a_Q^T Q^T W S`.
* **non-negativity** (``nonnegative``): pixels whose unconstrained solution is feasible keep
  it; for the others every active set of the constrained coefficients is solved in a
  vectorised way and the feasible one with the smallest :math:`\chi^2` is taken - the exact
  NNLS solution (Lawson & Hanson 1974), for up to 8 constrained terms; beyond that a per-pixel
  :func:`scipy.optimize.nnls` fallback runs on the violating pixels only.

Each spectrum is read from memory once whatever its dtype (float32 stays float32 in memory;
the sums are float64). Blocks of ~0.5 MB of spectra run, for data above ~12 MB, on a thread per
CPU (the compiled sums release the GIL); inside dask blocks (lazy data) the kernels run on one
thread (``workers=1``) and dask supplies the parallelism.

Reduced :math:`\chi^2` is reported per spectrum (:math:`\chi^2 / (E_w - K)`; for unweighted fits
this is the residual variance in the data's units squared). Standard errors scale the
covariance by the reduced :math:`\chi^2` (like ``absolute_sigma=False`` in
:func:`scipy.optimize.curve_fit`); with non-negativity they are those of the unconstrained
model at the constrained solution (approximate for coefficients on the bound).

References
----------
C. L. Lawson, R. J. Hanson, *Solving Least Squares Problems*, Prentice-Hall (1974), ch. 23.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np
import scipy.optimize

from ionscope.blocks import n_cpus, run_blocks
from ionscope.eels.energy import float_dtype
from ionscope.eels.mlls_sums import poisson_weighted_rows, project_rows, upper_products
from ionscope.errors import ConfigError, InputError

#: Spectra per block: about this many bytes of data. The compiled sums read each spectrum once,
#: so blocks only set the thread granularity and the per-block numpy overhead (~50 us): 2 MB
#: (measured: 10 % faster than 0.5 MB on a 157 x 64 x 64 x 1024 series, equal at 4 MB).
_BLOCK_BYTES = 2 << 20
#: Below about this much data, a single thread is as fast as several (thread hand-offs and a
#: shared memory bus); above it, blocks run on a thread per CPU (measured on 2 cores: equal at
#: 8 MB, 1.2x faster at 16 MB, 1.45x at 64 MB).
_THREADS_FROM_BYTES = 12 << 20
#: Largest number of non-negative terms solved by enumerating active sets.
_MAX_ENUMERATED = 8
#: Column-normalised condition number beyond which references count as linearly dependent.
_MAX_CONDITION = 1e10


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


def _constraint_mask(nonnegative: bool | Sequence[bool] | np.ndarray, k: int) -> np.ndarray:
    if np.ndim(nonnegative) == 0:
        return np.full(k, bool(nonnegative))
    mask = np.asarray(nonnegative, dtype=bool)
    if mask.shape != (k,):
        raise ConfigError(f"nonnegative must be a bool or {k} bools (one per term), got shape {mask.shape}")
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


#: Below this fraction of |S|^2 (unweighted) or S^T W S (weighted), chi^2 from the difference
#: of sums has lost more than ~8 of float64's 16 digits: it is recomputed from the residual.
_CANCELLATION = 1e-8


def _sum_ready(block: np.ndarray) -> np.ndarray:
    """A block as the compiled sums take it: C-contiguous float32 or float64 (other dtypes
    converted to float64). A fit window cut from longer spectra is copied block by block (a
    cache-resident copy): the compiled loops vectorise only over contiguous rows, 2x faster."""
    if block.dtype == np.float32 or block.dtype == np.float64:
        return np.ascontiguousarray(block)
    return np.ascontiguousarray(block, dtype=np.float64)


def _exact_where_cancelled(chi: np.ndarray, sq: np.ndarray | None, spectra: np.ndarray,
                           coef: np.ndarray, design: np.ndarray, weighted: bool | None) -> None:
    """Replace, in place, the chi^2 of spectra fitted almost exactly (where the difference of
    sums cancels) by the sum of their squared (weighted) residuals."""
    if sq is None:  # weighted: compare with S^T W S, recomputed only for the candidates
        cand = np.flatnonzero(chi <= _CANCELLATION * np.abs(spectra).sum(axis=1))
    else:
        cand = np.flatnonzero(chi <= _CANCELLATION * sq)
    if cand.size == 0:
        return
    s = spectra[cand].astype(np.float64)
    r = s - coef[cand] @ design.T
    if weighted:
        total = np.vecdot(s * s, 1.0 / np.maximum(s, 1.0))
        w_r2 = np.vecdot(r * r, 1.0 / np.maximum(s, 1.0))
        keep = chi[cand] <= _CANCELLATION * total
        chi[cand[keep]] = w_r2[keep]
    else:
        chi[cand] = np.vecdot(r, r)


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


def _best_feasible(n: int, k: int, constrained: np.ndarray,
                   candidates: Iterable[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]]) -> np.ndarray:
    """Exact NNLS by enumerating active sets, shared by both kernels: each candidate is
    ``(free, x_free, objective, feasible)`` for the ``n`` rows; per row the feasible free set
    with the smallest objective wins (its other coefficients are 0)."""
    best = np.full(n, np.inf)
    sol = np.zeros((n, k))
    for free, xf, obj, ok in candidates:
        take = ok & (obj < best)
        if take.any():
            best[take] = obj[take]
            sol[take] = 0.0
            sol[np.ix_(take, free)] = xf[take]
    sol[:, constrained] = np.maximum(sol[:, constrained], 0.0)
    return sol


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
        def candidates():
            for free, pinv_f, t_f in subsets:
                if free.any():
                    af = cb @ pinv_f.T
                    res = cb - af @ t_f.T
                    ok = _feasible(af, constrained[free])
                else:
                    af = np.zeros((bad.size, 0))
                    res = cb
                    ok = np.ones(bad.size, dtype=bool)
                yield free, af, np.einsum("ij,ij->i", res, res), ok

        sol = _best_feasible(bad.size, a.shape[1], constrained, candidates())
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


def mlls_unweighted(spectra: Any, design: Any, *, nonnegative: bool | Sequence[bool] = False,
                    return_covariance: bool = False, workers: int | None = None) -> MLLSResult:
    """Unweighted MLLS of many spectra against one design matrix.

    Parameters
    ----------
    spectra : array_like, shape (N, E)
        One spectrum per row, already cut to the fit window (counts). float32 and float64 rows
        are read as they are (other dtypes converted block by block) and summed in float64.
        Read block by block; never copied whole.
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
    return _fit(spectra, design, nonnegative, return_covariance, workers, _unweighted_block)


def _unweighted_block(f: DesignFactor, constrained: np.ndarray, out: _Outputs) -> Callable[[slice], None]:
    """The block function of :func:`mlls_unweighted`: fills ``out.coef`` and ``out.chi``
    (not yet divided by the degrees of freedom) for the rows of a slice."""
    k = f.n_terms
    any_constrained = bool(constrained.any())
    subsets = _unweighted_subsets(f, constrained) if any_constrained else None
    q_t = np.ascontiguousarray(f.q.T)
    r_t = np.ascontiguousarray(f.r.T)
    r_inv_t = np.ascontiguousarray(f.r_inv.T)

    def block(sl: slice) -> None:
        sb = _sum_ready(out.spectra[sl])
        m = sb.shape[0]
        c, sq = np.empty((m, k)), np.empty(m)
        project_rows(sb, q_t, c, sq)
        a = c @ r_inv_t
        chi_b = sq - np.vecdot(c, c)
        if any_constrained:
            a = _nnls_unweighted(c, a, f, constrained, subsets)
            u = c - a @ r_t  # chi2(a) = chi2(a*) + |c - T a|^2
            chi_b += np.vecdot(u, u)
        _exact_where_cancelled(chi_b, sq, sb, a, f.design, None)
        out.chi[sl] = chi_b
        out.coef[sl] = a

    return block


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
        def candidates():
            for free in _subsets(constrained):
                if free.any():
                    gf = g[:, free][:, :, free]
                    bf = b[:, free]
                    xf = np.linalg.solve(gf, bf[..., None])[..., 0]
                    yield free, xf, -0.5 * np.einsum("ij,ij->i", bf, xf), _feasible(xf, constrained[free])
                else:
                    yield (free, np.zeros((bad.size, 0)), np.zeros(bad.size),
                           np.ones(bad.size, dtype=bool))

        sol = _best_feasible(bad.size, a.shape[1], constrained, candidates())
    a = a.copy()
    a[bad] = sol
    return a


def mlls_weighted(spectra: Any, design: Any, *, nonnegative: bool | Sequence[bool] = False,
                  return_covariance: bool = False, workers: int | None = None) -> MLLSResult:
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
    return _fit(spectra, design, nonnegative, return_covariance, workers, _weighted_block)


def _weighted_block(f: DesignFactor, constrained: np.ndarray, out: _Outputs) -> Callable[[slice], None]:
    """The block function of :func:`mlls_weighted`: fills ``out.coef``, ``out.chi`` (not yet
    divided by the degrees of freedom), ``out.var`` and ``out.cov`` (unscaled) for a slice."""
    k = f.n_terms
    any_constrained = bool(constrained.any())
    q_t = np.ascontiguousarray(f.q.T)
    qprod_t, iu, ju = upper_products(f.q)
    r_mat, r_t = f.r, np.ascontiguousarray(f.r.T)
    r_inv, r_inv_t = f.r_inv, np.ascontiguousarray(f.r_inv.T)

    def block(sl: slice) -> None:
        sb = _sum_ready(out.spectra[sl])
        m = sb.shape[0]
        a_q, g_q_inv, chi_b = np.empty((m, k)), np.empty((m, k, k)), np.empty(m)
        poisson_weighted_rows(sb, q_t, qprod_t, iu, ju, a_q, g_q_inv, chi_b)
        a = a_q @ r_inv_t
        if any_constrained:
            bad = np.flatnonzero(np.any(a[:, constrained] < 0, axis=1))
            if bad.size:
                g_q = np.linalg.inv(g_q_inv[bad])
                b_q = np.einsum("nij,nj->ni", g_q, a_q[bad])
                a[bad] = _nnls_weighted(r_mat.T @ g_q @ r_mat, b_q @ r_mat, a[bad], constrained)
                d = a[bad] @ r_t - a_q[bad]  # chi2_w(a) = chi2_w(a*) + d^T G d
                chi_b[bad] += np.einsum("ni,nij,nj->n", d, g_q, d)
        _exact_where_cancelled(chi_b, None, sb, a, f.design, True)
        out.chi[sl] = chi_b
        out.coef[sl] = a
        right = g_q_inv @ r_inv_t  # (R^T W R)^-1 = T^-1 G_q^-1 T^-T
        if out.cov is not None:
            out.cov[sl] = r_inv @ right
            out.var[sl] = np.diagonal(out.cov[sl], axis1=1, axis2=2)
        else:
            out.var[sl] = np.einsum("ki,nik->nk", r_inv, right)

    return block


class _Outputs(NamedTuple):
    """The spectra and the arrays the block functions of one fit write into."""

    spectra: np.ndarray
    coef: np.ndarray
    chi: np.ndarray
    var: np.ndarray | None
    cov: np.ndarray | None


def _fit(spectra: Any, design: Any, nonnegative: bool | Sequence[bool] | np.ndarray,
         return_covariance: bool, workers: int | None,
         make_block: Callable[[DesignFactor, np.ndarray, _Outputs], Callable[[slice], None]]
         ) -> MLLSResult:
    """The driver both MLLS kernels share: checks, output arrays, blocks of spectra on threads,
    then the reduced chi^2 and the standard errors scaled by it. ``make_block`` fills the
    coefficients, the chi^2 and (weighted fits, whose covariance differs per spectrum) ``var``
    and ``cov``; the unweighted covariance is ``inv(R^T R)`` for every spectrum."""
    f = _as_factor(design)
    s = _check_spectra(spectra, f.n_channels)
    n, e = s.shape
    k = f.n_terms
    per_spectrum = make_block is _weighted_block
    out = _Outputs(
        s, np.empty((n, k)), np.empty(n), np.empty((n, k)) if per_spectrum else None,
        np.empty((n, k, k)) if per_spectrum and return_covariance else None,
    )
    constrained = _constraint_mask(nonnegative, k)
    if n:
        _run_blocks(make_block(f, constrained, out), n, _block_rows(e, float_dtype(s.dtype)), workers)
    chi = out.chi
    chi /= e - k
    if not per_spectrum:
        stderr = np.sqrt(chi[:, None] * np.diag(f.gram_inv)[None, :])
        cov = chi[:, None, None] * f.gram_inv[None] if return_covariance else None
        return MLLSResult(out.coef, chi, stderr, cov)
    cov = out.cov
    if cov is not None:
        cov *= chi[:, None, None]
    return MLLSResult(out.coef, chi, np.sqrt(chi[:, None] * out.var), cov)


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


__all__ = [
    "DesignFactor",
    "MLLSResult",
    "factor_design",
    "mlls_unweighted",
    "mlls_weighted",
    "li_fraction",
]
