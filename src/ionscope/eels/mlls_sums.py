r"""Single-pass per-spectrum sums for MLLS, compiled with numba.

Every MLLS fit needs, per spectrum :math:`S` (one row of the data), a few inner products with
the design's orthonormal basis :math:`Q` (:math:`E \times K`, :math:`K` terms):

* unweighted: :math:`c = Q^T S` and :math:`|S|^2` - then :math:`a = R^{-1} c` and
  :math:`\chi^2 = |S|^2 - |c|^2` (the residual is orthogonal to the column space);
* Poisson-weighted, :math:`w = 1 / \max(S, 1)`: :math:`b = Q^T W S`, the normal matrix
  :math:`G = Q^T W Q` and :math:`S^T W S` - then :math:`a_Q = G^{-1} b` (solved per spectrum
  through its Cholesky factor, which also gives :math:`G^{-1}` for the standard errors) and
  :math:`\chi^2_w = S^T W S - a_Q^T b`.

numpy can only form these in several passes over the data (GEMM, residual, row norms), each
re-reading the block; here one row at a time is read from memory once, converted to float64
and swept a few times while it sits in the L1 cache, so the fit runs at a small multiple of the
time it takes to read the data. Sums accumulate in float64 whatever the data's dtype, so
float32 spectra need no refinement step. The functions release the GIL (``nogil``): blocks of
rows run on several threads (:func:`ionscope.blocks.run_blocks`).

Compilation happens on first use and is cached on disk next to this module (``cache=True``).
"""

from __future__ import annotations

import numba
import numpy as np

#: Reassociation lets LLVM vectorise the float64 reductions; no other fast-math liberties.
_FASTMATH = {"reassoc", "contract"}


@numba.njit(nogil=True, fastmath=_FASTMATH, cache=True)
def project_rows(spectra, q_t, c, sq):  # pragma: no cover - compiled
    """``c[i] = q_t @ spectra[i]`` and ``sq[i] = spectra[i] @ spectra[i]`` in float64.

    Parameters
    ----------
    spectra : (n, E) float32 or float64
    q_t : (K, E) float64
        Transposed orthonormal basis.
    c : (n, K) float64, out
    sq : (n,) float64, out
    """
    n, e = spectra.shape
    k = q_t.shape[0]
    row = np.empty(e)
    for i in range(n):
        acc = 0.0
        for j in range(e):
            v = np.float64(spectra[i, j])
            row[j] = v
            acc += v * v
        sq[i] = acc
        for m in range(k):
            acc = 0.0
            for j in range(e):
                acc += row[j] * q_t[m, j]
            c[i, m] = acc


@numba.njit(nogil=True, fastmath=_FASTMATH, cache=True, inline="always")
def _cholesky_solve(low, y):  # pragma: no cover - compiled
    """Solve ``L L^T x = y`` in place (``y`` becomes ``x``) for a lower-triangular ``low``:
    forward then back substitution."""
    k = low.shape[0]
    for r in range(k):
        acc = y[r]
        for t in range(r):
            acc -= low[r, t] * y[t]
        y[r] = acc / low[r, r]
    for r in range(k - 1, -1, -1):
        acc = y[r]
        for t in range(r + 1, k):
            acc -= low[t, r] * y[t]
        y[r] = acc / low[r, r]


@numba.njit(nogil=True, fastmath=_FASTMATH, cache=True)
def poisson_weighted_rows(spectra, q_t, qprod_t, iu, ju, a_q, g_inv, wsq):  # pragma: no cover
    """Poisson-weighted normal equations of every row, built and solved in one pass.

    Parameters
    ----------
    spectra : (n, E) float32 or float64
        Counts; weights ``1 / max(S, 1)``.
    q_t : (K, E) float64
        Transposed orthonormal basis of the design.
    qprod_t : (P, E) float64
        Products ``q[:, iu[p]] * q[:, ju[p]]`` of basis columns (``P = K (K + 1) / 2``).
    iu, ju : (P,) int64
        Upper-triangle indices of the ``K x K`` normal matrix.
    a_q : (n, K) float64, out
        Solution in the basis ``Q``: ``G^-1 b`` (coefficients are ``R^-1 a_q``).
    g_inv : (n, K, K) float64, out
        ``G^-1 = (Q^T W Q)^-1``.
    wsq : (n,) float64, out
        ``chi^2_w = S^T W S - a_q . b`` (not yet divided by the degrees of freedom).
    """
    n, e = spectra.shape
    k = q_t.shape[0]
    p = qprod_t.shape[0]
    w = np.empty(e)
    ws = np.empty(e)
    b = np.empty(k)
    g = np.empty((k, k))
    low = np.empty((k, k))
    y = np.empty(k)
    for i in range(n):
        acc = 0.0
        for j in range(e):
            v = np.float64(spectra[i, j])
            wj = 1.0 / max(v, 1.0)
            w[j] = wj
            ws[j] = v * wj
            acc += v * v * wj
        total = acc
        for m in range(k):
            acc = 0.0
            for j in range(e):
                acc += ws[j] * q_t[m, j]
            b[m] = acc
        for m in range(p):
            acc = 0.0
            for j in range(e):
                acc += w[j] * qprod_t[m, j]
            g[iu[m], ju[m]] = acc
            g[ju[m], iu[m]] = acc
        # Cholesky G = L L^T (G is symmetric positive definite: w > 0, Q has full rank)
        for r in range(k):
            for s in range(r + 1):
                acc = g[r, s]
                for t in range(s):
                    acc -= low[r, t] * low[s, t]
                if r == s:
                    low[r, r] = np.sqrt(acc) if acc > 0.0 else np.nan
                else:
                    low[r, s] = acc / low[s, s]
            for s in range(r + 1, k):
                low[r, s] = 0.0
        # a_q = G^-1 b
        for r in range(k):
            y[r] = b[r]
        _cholesky_solve(low, y)
        for r in range(k):
            a_q[i, r] = y[r]
        # G^-1 column by column (unit vectors through the same two substitutions)
        for col in range(k):
            for r in range(k):
                y[r] = 1.0 if r == col else 0.0
            _cholesky_solve(low, y)
            for r in range(k):
                g_inv[i, r, col] = y[r]
        acc = 0.0
        for m in range(k):
            acc += a_q[i, m] * b[m]
        wsq[i] = total - acc


def upper_products(q: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(qprod_t, iu, ju)`` for :func:`poisson_weighted_rows` from the ``(E, K)`` basis ``q``."""
    k = q.shape[1]
    iu, ju = np.triu_indices(k)
    qprod_t = np.ascontiguousarray((q[:, iu] * q[:, ju]).T, dtype=np.float64)
    return qprod_t, iu.astype(np.int64), ju.astype(np.int64)


__all__ = ["poisson_weighted_rows", "project_rows", "upper_products"]
