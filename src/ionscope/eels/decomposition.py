r"""Blind decomposition of EELS spectrum images: non-negative matrix factorisation and PCA.

NMF (phase mapping, :doc:`/guide/eels`): the spectra :math:`X` (pixels x channels) are written
as :math:`X \approx C S^T` with non-negative maps :math:`C` (N x k) and spectra :math:`S`
(E x k), minimising :math:`F = \tfrac12 \lVert X - C S^T \rVert_F^2` by hierarchical
alternating least squares (HALS; Cichocki & Phan 2009): each column of :math:`C`, then each
column of :math:`S`, is replaced by its exact non-negative minimiser with the others fixed, so
:math:`F` never increases. Entries are kept at a tiny positive floor instead of exactly 0 so that
a component emptied in one sweep can come back. Per sweep the work is two GEMMs with the data
(:math:`XS`, :math:`X^T C`); the component loops are vector operations on N- or E-long columns.

Soft orthogonality on the maps (NMF-SO, Shiga et al. 2016), for phases that should not overlap
in space: the maps are kept at unit norm and, after its HALS step, each map :math:`c_j` loses
the fraction :math:`w` of its projection on the sum of the other maps :math:`\bar c_j =
\sum_{l \ne j} c_l`,

.. math::

    c_j \leftarrow \Big[ c_j - w \frac{\bar c_j^T c_j}{\bar c_j^T \bar c_j}\, \bar c_j \Big]_+ ,
    \qquad c_j \leftarrow c_j / \lVert c_j \rVert ,

as in the authors' published code (weight ~0.1). This step is a heuristic, not the minimiser
of a stated penalty, so with :math:`w > 0` the data misfit :math:`F` may rise slightly from one
sweep to the next; with :math:`w = 0` it never does.

Data larger than memory (a dask-backed input, :func:`nmf_lazy`): HALS needs every spectrum at
every sweep, hundreds of passes over the data. Instead the components are learned in a few
passes over the data's chunks: (1) HALS as above on a random sample of spectra (``max_sample``,
one read of the chunks) gives starting spectra; (2) each pass solves, chunk by chunk and in
parallel, the exact non-negative least-squares maps of its spectra against the fixed
components and reduces the small sufficient statistics :math:`C^T C` (k x k) and :math:`X^T C`
(E x k) over all chunks, then solves the exact non-negative least-squares spectra from them
(alternating non-negative least squares, so :math:`F` never increases from pass to pass); (3)
the abundance maps are the exact non-negative least-squares maps against the final
components, computed lazily chunk by chunk (the result is dask-backed). A pass is one
map-reduce over the chunks - it parallelises over threads or a cluster's workers and holds one
chunk per worker - where an online (minibatch) update of the components after every chunk
would make a pass one sequential chain of tasks. Soft orthogonality needs the other maps'
global sums inside every map update, so it is not offered on lazy data.

PCA: singular value decomposition of the mean-centred data, full (LAPACK) or randomized
(Halko et al. 2011, with implicit centring so the data are never copied), with explained
variance and signs fixed so the largest loading of each component is positive. A dask-backed
input takes one pass instead: each chunk's count, mean and scatter matrix, merged exactly (Chan,
Golub & LeVeque 1979), whose leading eigenvectors are the loadings (``method="covariance"``);
the score maps are projected chunk by chunk, lazily.

References
----------
A. Cichocki, A.-H. Phan, "Fast local algorithms for large scale nonnegative matrix and tensor
factorizations", IEICE Trans. Fundamentals E92-A (2009) 708.
M. Shiga et al., "Sparse modeling of EELS and EDX spectral imaging data by nonnegative matrix
factorization", Ultramicroscopy 170 (2016) 43.
T. F. Chan, G. H. Golub, R. J. LeVeque, "Updating formulae and a pairwise algorithm for computing
sample variances", Stanford CS report STAN-CS-79-773 (1979).
C. Boutsidis, E. Gallopoulos, "SVD based initialization: A head start for nonnegative matrix
factorization", Pattern Recognition 41 (2008) 1350.
N. Halko, P.-G. Martinsson, J. A. Tropp, "Finding structure with randomness", SIAM Review 53
(2011) 217.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
import xarray as xr

from ionscope.data import is_lazy, provenance, require_finite, signal, units_of, with_provenance
from ionscope.eels.energy import energy_ev, window_slice
from ionscope.eels.wrapping import require_spectra
from ionscope.errors import ConfigError, EmptyDataError, InputError
from ionscope.validation import SEED, validate_params

_INITS = ("nndsvd", "nndsvda", "random")
#: HALS keeps every entry >= this fraction of the factor's maximum instead of exactly 0, so a
#: component that empties in one sweep can come back (Cichocki & Phan 2009; Gillis & Glineur 2012).
_FLOOR = 1e-12
_PCA_METHODS = ("auto", "full", "randomized", "covariance")


# =========================================================================== kernels


def _float(x: Any) -> np.ndarray:
    x = np.asarray(x)
    if x.dtype not in (np.float32, np.float64):
        x = x.astype(np.float64)
    return x


def _check_matrix(x: Any, n_components: int, what: str) -> np.ndarray:
    x = _float(x)
    if x.ndim != 2 or min(x.shape) < 1:
        raise InputError(f"{what} needs a non-empty 2-D array (pixels, channels), got shape {x.shape}")
    if not np.all(np.isfinite(x)):
        raise InputError(f"{what}: the data hold NaN/inf values; mask or interpolate them first")
    if int(n_components) != n_components or not 1 <= n_components <= min(x.shape):
        raise ConfigError(
            f"{what}: n_components must be an integer from 1 to min(pixels, channels) = "
            f"{min(x.shape)}, got {n_components}"
        )
    return x


def randomized_svd(
    x: np.ndarray,
    n_components: int,
    *,
    center: np.ndarray | None = None,
    oversample: int = 10,
    n_iter: int = 4,
    seed: int | None = 0,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Truncated SVD ``U diag(s) Vt`` of ``x - center`` by randomized subspace iteration.

    Parameters
    ----------
    x : ndarray, shape (N, E)
    n_components : int
    center : ndarray, shape (E,), optional
        Row vector subtracted from every row, implicitly (``x`` is not copied).
    oversample, n_iter : int
        Extra random directions and power iterations (Halko et al. 2011).
    seed : int, optional

    Returns
    -------
    u : (N, k), s : (k,), vt : (k, E)
    """
    rng = np.random.default_rng(seed)
    n, e = x.shape
    ell = min(n_components + oversample, n, e)
    mu = None if center is None else np.asarray(center, dtype=x.dtype)[None, :]

    def times(m: np.ndarray) -> np.ndarray:  # (x - mu) @ m
        y = x @ m
        return y if mu is None else y - (mu @ m)

    def rtimes(m: np.ndarray) -> np.ndarray:  # (x - mu).T @ m
        z = x.T @ m
        return z if mu is None else z - mu.T @ m.sum(axis=0, keepdims=True)

    y = times(rng.standard_normal((e, ell)).astype(x.dtype))
    for _ in range(n_iter):
        y, _ = np.linalg.qr(y)
        z, _ = np.linalg.qr(rtimes(y))
        y = times(z)
    qy, _ = np.linalg.qr(y)
    b = rtimes(qy).T  # (ell, E) = Q^T (x - mu)
    ub, s, vt = np.linalg.svd(b.astype(np.float64), full_matrices=False)
    u = qy.astype(np.float64) @ ub
    return u[:, :n_components], s[:n_components], vt[:n_components]


def _svd_flip(u: np.ndarray, vt: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Signs such that the largest-magnitude entry of each row of ``vt`` is positive."""
    idx = np.argmax(np.abs(vt), axis=1)
    signs = np.sign(vt[np.arange(vt.shape[0]), idx])
    signs[signs == 0] = 1.0
    return u * signs[None, :], vt * signs[:, None]


def pca_svd(
    x: Any,
    n_components: int,
    *,
    method: str = "auto",
    seed: int | None = 0,
) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
    """Principal component analysis of spectra by SVD of the mean-centred data.

    Parameters
    ----------
    x : array_like, shape (N, E)
        One spectrum per row.
    n_components : int
    method : {"auto", "full", "randomized", "covariance"}
        ``"auto"``: full SVD when ``min(N, E) <= 500`` or more than 80 % of the rank is asked
        for, randomized otherwise. ``"covariance"``: the eigenvectors of the spectra's scatter
        matrix (:func:`pca_covariance`; what a dask-backed input takes, in one pass).
    seed : int, optional
        Seed of the randomized method.

    Returns
    -------
    scores : ndarray, shape (N, k)
        Projections of the centred spectra on the components (``U * s``), float64.
    components : ndarray, shape (E, k)
        Orthonormal loadings; the largest entry of each is positive.
    info : dict
        ``explained_variance`` (k,) (variance along each component, ``s^2 / (N - 1)``),
        ``explained_variance_ratio`` (k,), ``singular_values`` (k,), ``mean`` (E,),
        ``method`` used.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> x = rng.standard_normal((200, 3)) @ rng.standard_normal((3, 40))
    >>> scores, comps, info = pca_svd(x, 3)
    >>> bool(np.allclose(scores @ comps.T + info["mean"], x)), round(float(info["explained_variance_ratio"].sum()), 6)
    (True, 1.0)
    """
    x = _check_matrix(x, n_components, "pca_svd")
    if method not in _PCA_METHODS:
        raise ConfigError(f"method must be one of {_PCA_METHODS}, got {method!r}")
    n, e = x.shape
    k = int(n_components)
    if method == "covariance":
        comps, info = pca_covariance(*spectra_moments(x), k)
        return (x.astype(np.float64) - info["mean"]) @ comps, comps, info
    mean = x.mean(axis=0, dtype=np.float64)
    if method == "auto":
        method = "full" if min(n, e) <= 500 or k > 0.8 * min(n, e) else "randomized"
    if method == "full":
        xc = x.astype(np.float64) - mean
        u, s, vt = np.linalg.svd(xc, full_matrices=False)
        total = float(np.sum(s**2))
        u, s, vt = u[:, :k], s[:k], vt[:k]
    else:
        u, s, vt = randomized_svd(x, k, center=mean, seed=seed)
        total = 0.0
        step = max(1, (8 << 20) // max(1, e * 8))
        for i in range(0, n, step):
            total += float(np.sum((x[i:i + step] - mean) ** 2, dtype=np.float64))
    u, vt = _svd_flip(u, vt)
    var = s**2 / max(n - 1, 1)
    info = {
        "explained_variance": var,
        "explained_variance_ratio": s**2 / total if total > 0 else np.zeros_like(s),
        "singular_values": s,
        "mean": mean,
        "method": method,
    }
    return u * s[None, :], vt.T, info


def spectra_moments(x: np.ndarray) -> tuple[int, np.ndarray, np.ndarray]:
    """One block's share of the covariance pass: its number of spectra, their mean (E,) and the
    scatter about that mean ``sum (x - m)^T (x - m)`` (E, E), float64 (merged over blocks by
    :func:`merge_moments`)."""
    x = np.asarray(x).reshape(-1, np.shape(x)[-1])
    mean = x.mean(axis=0, dtype=np.float64)
    xc = x.astype(np.float64) - mean
    return x.shape[0], mean, xc.T @ xc


def merge_moments(parts: Sequence[tuple[int, np.ndarray, np.ndarray]]) -> tuple[int, np.ndarray, np.ndarray]:
    """Count, mean and scatter of the union of blocks from theirs (Chan, Golub & LeVeque 1979:
    ``M = sum_b M_b + sum_b n_b (m_b - m)(m_b - m)^T``; no cancellation of large means).

    Examples
    --------
    >>> x = np.random.default_rng(0).normal(5.0, 1.0, (30, 4))
    >>> n, m, scatter = merge_moments([spectra_moments(x[:7]), spectra_moments(x[7:])])
    >>> n, bool(np.allclose(scatter, (x - x.mean(0)).T @ (x - x.mean(0))))
    (30, True)
    """
    n = sum(int(p[0]) for p in parts)
    mean = sum(p[0] * p[1] for p in parts) / n
    scatter = sum(p[2] + p[0] * np.outer(p[1] - mean, p[1] - mean) for p in parts)
    return n, mean, scatter


def pca_covariance(n: int, mean: np.ndarray, scatter: np.ndarray, n_components: int) -> tuple[np.ndarray, dict[str, Any]]:
    """PCA from the spectra's count, mean and scatter matrix (:func:`spectra_moments`): the
    loadings are the scatter's leading eigenvectors - the SVD's right singular vectors, with
    ``s^2`` its eigenvalues (precise to ~eps of the largest).

    Returns
    -------
    components : ndarray, shape (E, k)
        Orthonormal loadings; the largest entry of each is positive.
    info : dict
        As :func:`pca_svd` (``method`` ``"covariance"``).
    """
    evals, evecs = np.linalg.eigh(scatter)
    evals, evecs = np.clip(evals[::-1], 0.0, None), evecs[:, ::-1]
    k = int(n_components)
    _, vt = _svd_flip(np.zeros((1, k)), evecs[:, :k].T)
    total = float(np.trace(scatter))
    s = np.sqrt(evals[:k])
    return vt.T, {"explained_variance": evals[:k] / max(n - 1, 1),
                  "explained_variance_ratio": evals[:k] / total if total > 0 else np.zeros(k),
                  "singular_values": s, "mean": mean, "method": "covariance"}


def _nndsvd(x: np.ndarray, k: int, fill: bool, seed: int | None) -> tuple[np.ndarray, np.ndarray]:
    """NNDSVD initialisation (Boutsidis & Gallopoulos 2008); ``fill`` = NNDSVDa (zeros -> mean)."""
    n, e = x.shape
    if k + 10 >= min(n, e):
        u, s, vt = np.linalg.svd(x.astype(np.float64), full_matrices=False)
        u, s, vt = u[:, :k], s[:k], vt[:k]
    else:
        u, s, vt = randomized_svd(x, k, seed=seed)
    c = np.zeros((n, k))
    sp = np.zeros((e, k))
    c[:, 0] = np.sqrt(s[0]) * np.abs(u[:, 0])
    sp[:, 0] = np.sqrt(s[0]) * np.abs(vt[0])
    for j in range(1, k):
        a, b = u[:, j], vt[j]
        ap, an = np.maximum(a, 0), np.maximum(-a, 0)
        bp, bn = np.maximum(b, 0), np.maximum(-b, 0)
        nap, nan_, nbp, nbn = (np.linalg.norm(v) for v in (ap, an, bp, bn))
        mp, mn = nap * nbp, nan_ * nbn
        if mp >= mn and mp > 0:
            uu, vv, sigma = ap / nap, bp / nbp, mp
        elif mn > 0:
            uu, vv, sigma = an / nan_, bn / nbn, mn
        else:
            continue
        scale = np.sqrt(s[j] * sigma)
        c[:, j] = scale * uu
        sp[:, j] = scale * vv
    if fill:
        avg = float(x.mean())
        c[c == 0] = avg
        sp[sp == 0] = avg
    return c, sp


def _misfit(xx: float, xtc: np.ndarray, s: np.ndarray, ctc: np.ndarray, sts: np.ndarray) -> float:
    """F = 0.5 ||X - C S^T||^2 from small products: 0.5 (|X|^2 - 2 tr(S^T X^T C) + tr(C^T C S^T S))."""
    return 0.5 * (xx - 2.0 * float(np.sum(s * xtc)) + float(np.sum(ctc * sts)))


@validate_params({"seed": [SEED, None]})
def nmf_hals(
    x: Any,
    n_components: int,
    *,
    orthogonality: float = 0.0,
    max_iter: int = 500,
    tol: float = 1e-6,
    init: str = "nndsvd",
    seed: int | None = 0,
) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
    """Non-negative matrix factorisation ``X ~ C S^T`` by HALS, with optional soft orthogonality.

    Parameters
    ----------
    x : array_like, shape (N, E)
        Non-negative data, one spectrum per row. float32 stays float32 in the GEMMs.
    n_components : int
        Number of components ``k``.
    orthogonality : float
        Weight ``w`` in [0, 1] of the soft orthogonality step on the maps (NMF-SO of Shiga et
        al. 2016, who use ~0.1); 0 gives plain NMF.
    max_iter : int
        Maximum number of HALS sweeps (each updates all of ``C`` then all of ``S``).
    tol : float
        Stop when the misfit's relative change over one sweep falls below ``tol``. float32
        misfits are only good to ~1e-6 relative, so smaller values mean "until float32 noise".
    init : {"nndsvd", "nndsvda", "random"}
        Initialisation: NNDSVD (Boutsidis & Gallopoulos 2008), NNDSVD with zeros filled by the
        data mean, or random with ``seed``.
    seed : int, optional
        Seed for ``"random"`` and the randomized SVD used by NNDSVD.

    Returns
    -------
    maps : ndarray, shape (N, k)
        Non-negative abundances ``C``, in the data's units (dtype of the data).
    spectra : ndarray, shape (E, k)
        Non-negative component spectra ``S``, each scaled to a maximum of 1.
    info : dict
        ``objective`` (list of ``0.5 ||X - C S^T||^2`` after each sweep; non-increasing when
        ``orthogonality == 0``), ``n_iter``, ``converged``, ``reconstruction_error``
        (``||X - C S^T||_F``, computed exactly at the end, like scikit-learn's
        ``reconstruction_err_``).

    Warns
    -----
    RuntimeWarning
        If ``max_iter`` sweeps end before the tolerance is met.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> x = rng.random((100, 2)) @ rng.random((2, 30))
    >>> c, s, info = nmf_hals(x, 2, max_iter=2000, tol=1e-12)
    >>> bool(info["reconstruction_error"] < 1e-3 * np.linalg.norm(x)), bool((c >= 0).all() and (s >= 0).all())
    (True, True)
    """
    x = _check_matrix(x, n_components, "nmf")
    if np.any(x < 0):
        raise InputError(
            f"NMF needs non-negative data, but the minimum is {float(x.min()):g}; clip small "
            "negative noise (da.clip(min=0)) or decompose the spectra before background subtraction"
        )
    if not np.any(x):
        raise EmptyDataError("the data are all zero; there is nothing to factorise")
    if not 0 <= orthogonality <= 1:
        raise ConfigError(f"orthogonality must be a weight in [0, 1] (typically 0.1), got {orthogonality}")
    if init not in _INITS:
        raise ConfigError(f"init must be one of {_INITS}, got {init!r}")
    if int(max_iter) < 1:
        raise ConfigError(f"max_iter must be >= 1, got {max_iter}")
    k = int(n_components)
    n, e = x.shape
    dtype = x.dtype
    if init == "random":
        rng = np.random.default_rng(seed)
        scale = np.sqrt(float(x.mean()) / k)
        c64 = scale * np.abs(rng.standard_normal((n, k)))
        s64 = scale * np.abs(rng.standard_normal((e, k)))
    else:
        c64, s64 = _nndsvd(x, k, init == "nndsvda", seed)
    w = float(orthogonality)
    if w:  # NMF-SO keeps unit-norm maps; the spectra carry the scale
        norms = np.linalg.norm(c64, axis=0)
        norms[norms == 0] = 1.0
        c64, s64 = c64 / norms, s64 * norms
    c, s = c64.astype(dtype), s64.astype(dtype)
    xx = 0.0
    for i in range(0, n, 4096):
        xx += float(np.einsum("ij,ij->", x[i:i + 4096], x[i:i + 4096], dtype=np.float64))
    tiny = np.finfo(np.float64).tiny
    objective: list[float] = []
    converged = False
    it = 0
    for it in range(1, int(max_iter) + 1):
        # ---- maps: exact non-negative minimiser of each column with the others fixed
        xs = (x @ s).astype(np.float64)
        sts = s64.T @ s64
        floor = _FLOOR * float(c64.max())
        csum = c64.sum(axis=1) if w else None
        for j in range(k):
            if sts[j, j] <= tiny:
                new = np.full(n, floor)
            else:
                new = (xs[:, j] - c64 @ sts[:, j]) / sts[j, j] + c64[:, j]
            if w:  # Shiga's soft-orthogonality step, then back to unit norm
                others = csum - c64[:, j]
                oo = float(others @ others)
                if oo > 0:
                    new -= (w * float(others @ new) / oo) * others
                new = np.maximum(new, floor)
                new /= np.linalg.norm(new)
                csum += new - c64[:, j]
                c64[:, j] = new
            else:
                c64[:, j] = np.maximum(new, floor)
        c = c64.astype(dtype)
        # ---- spectra: exact non-negative minimiser of each column with the others fixed
        xtc = (x.T @ c).astype(np.float64)
        ctc = c64.T @ c64
        floor = _FLOOR * float(s64.max())
        for j in range(k):
            if ctc[j, j] <= tiny:
                s64[:, j] = floor
            else:
                s64[:, j] = np.maximum((xtc[:, j] - s64 @ ctc[:, j]) / ctc[j, j] + s64[:, j], floor)
        sts = s64.T @ s64
        objective.append(_misfit(xx, xtc, s64, ctc, sts))
        if not w:  # balance the scale of each pair (F is invariant); keeps the numbers tame
            nc, ns = np.sqrt(np.diag(ctc)), np.sqrt(np.diag(sts))
            t = np.sqrt(ns / np.where(nc > 0, nc, 1.0))
            t[(nc <= 0) | (ns <= 0)] = 1.0
            c64 *= t[None, :]
            s64 /= t[None, :]
            c = c64.astype(dtype)
        s = s64.astype(dtype)
        if len(objective) > 1:
            prev = objective[-2]
            if abs(prev - objective[-1]) <= tol * max(abs(prev), tiny):
                converged = True
                break
    if not converged:
        warnings.warn(
            f"NMF stopped after max_iter={max_iter} sweeps before the relative change of the "
            f"misfit fell below tol={tol:g}; raise max_iter or tol",
            RuntimeWarning,
            stacklevel=2,
        )
    peak = s64.max(axis=0)
    peak[peak == 0] = 1.0
    s = (s64 / peak[None, :]).astype(dtype)
    c = (c64 * peak[None, :]).astype(dtype)
    err2 = 0.0
    for i in range(0, n, 4096):
        r = x[i:i + 4096] - c[i:i + 4096] @ s.T
        err2 += float(np.einsum("ij,ij->", r, r, dtype=np.float64))
    info = {
        "objective": objective,
        "n_iter": it,
        "converged": converged,
        "reconstruction_error": float(np.sqrt(err2)),
    }
    return c, s, info


#: Largest number of components whose non-negative least-squares problems are solved exactly by
#: enumerating the supports (2^k - 1 linear solves per block); beyond, projected HALS sweeps.
_EXACT_NNLS_MAX = 6
#: HALS sweeps of :func:`nnls_rows` beyond :data:`_EXACT_NNLS_MAX` components.
_NNLS_SWEEPS = 200


def nnls_rows(b: np.ndarray, gram: np.ndarray) -> np.ndarray:
    r"""Solve :math:`\min_{c \ge 0} \tfrac12 c^T G c - c^T b_i` for every row :math:`b_i` of ``b``.

    The maps of spectra ``X`` against fixed components ``S`` (``b = X S``, ``G = S^T S``), or
    the components from the statistics of the maps (``b = X^T C``, ``G = C^T C``): the
    non-negative least-squares problems of NMF with one factor fixed.

    Up to :data:`_EXACT_NNLS_MAX` components the solution is exact: for every support (subset
    of components) the unconstrained solution on it is computed for all rows at once, and each
    row keeps the feasible (non-negative) one with the lowest objective - the optimum is the
    unconstrained solution on its own support, so it is among them. With more components,
    :data:`_NNLS_SWEEPS` projected HALS sweeps from the clipped unconstrained solution.

    Parameters
    ----------
    b : ndarray, shape (n, k)
    gram : ndarray, shape (k, k)
        Symmetric positive semi-definite.

    Returns
    -------
    ndarray, shape (n, k), float64, non-negative.

    Examples
    --------
    >>> import scipy.optimize
    >>> rng = np.random.default_rng(0)
    >>> s = rng.random((30, 3)); x = rng.standard_normal((5, 30))
    >>> c = nnls_rows(x @ s, s.T @ s)
    >>> ref = np.array([scipy.optimize.nnls(s, row)[0] for row in x])
    >>> bool(np.allclose(c, ref, atol=1e-10))
    True
    """
    b = np.asarray(b, dtype=np.float64)
    g = np.asarray(gram, dtype=np.float64)
    n, k = b.shape
    if k > _EXACT_NNLS_MAX:
        return _nnls_hals(b, g)
    best = np.zeros((n, k))
    best_f = np.zeros(n)  # the empty support: c = 0, objective 0
    for mask in range(1, 2**k):
        support = [j for j in range(k) if mask >> j & 1]
        sub = g[np.ix_(support, support)]
        try:
            sol = np.linalg.solve(sub, b[:, support].T).T
        except np.linalg.LinAlgError:
            sol = np.linalg.lstsq(sub, b[:, support].T, rcond=None)[0].T
        feasible = np.all(sol >= 0, axis=1)
        # objective on the support: 0.5 c^T G c - c^T b = -0.5 c^T b at the unconstrained solution
        f = -0.5 * np.einsum("ij,ij->i", sol, b[:, support])
        better = feasible & (f < best_f)
        if better.any():
            rows = np.flatnonzero(better)
            best[rows] = 0.0
            best[np.ix_(rows, support)] = sol[rows]
            best_f[rows] = f[rows]
    return best


def _nnls_hals(b: np.ndarray, g: np.ndarray) -> np.ndarray:
    """:func:`nnls_rows` by projected HALS sweeps (many components)."""
    k = g.shape[0]
    c = np.maximum(np.linalg.lstsq(g, b.T, rcond=None)[0].T, 0.0)
    diag = np.diag(g)
    tiny = np.finfo(np.float64).tiny
    for _ in range(_NNLS_SWEEPS):
        for j in range(k):
            if diag[j] <= tiny:
                c[:, j] = 0.0
            else:
                c[:, j] = np.maximum(c[:, j] + (b[:, j] - c @ g[:, j]) / diag[j], 0.0)
    return c


def _check_block(x: np.ndarray) -> None:
    if x.size and float(x.min()) < 0:
        raise InputError(
            f"NMF needs non-negative data, but a block holds values down to {float(x.min()):g}; clip "
            "small negative noise (da.clip(min=0)) or decompose the spectra before background subtraction"
        )


def nmf_maps(x: np.ndarray, spectra: np.ndarray) -> tuple[np.ndarray, float]:
    """Non-negative maps of the spectra ``x`` (N, E) against fixed ``spectra`` (E, k).

    Returns the maps ``C`` (N, k) (exact non-negative least squares, :func:`nnls_rows`; the
    data's dtype) and the squared residual ``||X - C S^T||_F^2``.
    """
    x = _float(x)
    _check_block(x)
    s = np.asarray(spectra, dtype=x.dtype)
    s64 = s.astype(np.float64)
    c = nnls_rows((x @ s).astype(np.float64), s64.T @ s64)
    r = x - (c @ s64.T).astype(x.dtype)
    return c.astype(x.dtype), float(np.einsum("ij,ij->", r, r, dtype=np.float64))


def nmf_pass_statistics(x: np.ndarray, spectra: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
    """One chunk's share of an alternating-NNLS pass: its maps against ``spectra`` (E, k), then
    ``C^T C`` (k, k), ``X^T C`` (E, k) and ``||X||_F^2``, all float64 (summed over chunks)."""
    x = _float(x)
    _check_block(x)
    s = np.asarray(spectra, dtype=x.dtype)
    s64 = s.astype(np.float64)
    c64 = nnls_rows((x @ s).astype(np.float64), s64.T @ s64)
    xtc = (x.T @ c64.astype(x.dtype)).astype(np.float64)
    return c64.T @ c64, xtc, float(np.einsum("ij,ij->", x, x, dtype=np.float64))



#: Spectra in the sample the lazy NMF starts from (HALS in memory; ~E x 8 bytes each).
MAX_SAMPLE = 20000
#: Passes over the data that refine the sample's components (alternating NNLS).
PASSES = 2


def _block_offsets(chunks: tuple[tuple[int, ...], ...]) -> list[np.ndarray]:
    return [np.concatenate([[0], np.cumsum(c)[:-1]]).astype(np.int64) for c in chunks]


def _sample_spectra(x, pick: np.ndarray) -> np.ndarray:
    """The spectra at the flat pixel indices ``pick`` (sorted) of the dask array ``x`` (..., E),
    in that order; one compute, block by block (each block gives the picked spectra it holds)."""
    import itertools

    import dask

    lead_shape = x.shape[:-1]
    lead_chunks = x.chunks[:-1]
    offsets = _block_offsets(lead_chunks)
    blocks = x.to_delayed()
    parts, order = [], []
    for index in itertools.product(*(range(len(c)) for c in lead_chunks)):
        ranges = [np.arange(off[i], off[i] + c[i]) for off, c, i in zip(offsets, lead_chunks, index)]
        flat = np.ravel_multi_index(np.meshgrid(*ranges, indexing="ij"), lead_shape).ravel()
        rows = np.flatnonzero(np.isin(flat, pick, assume_unique=True))
        if rows.size == 0:
            continue
        parts.append(dask.delayed(_take_rows)(blocks[index + (0,)], rows))
        order.append(flat[rows])
    values = dask.compute(*parts)
    spectra = np.concatenate(values, axis=0)
    return spectra[np.argsort(np.concatenate(order), kind="stable")]


def _take_rows(block: np.ndarray, rows: np.ndarray) -> np.ndarray:
    return np.asarray(block).reshape(-1, block.shape[-1])[rows]


def _pass_block(block: np.ndarray, spectra: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
    return nmf_pass_statistics(np.asarray(block).reshape(-1, block.shape[-1]), spectra)


@validate_params({"seed": [SEED, None]})
def nmf_lazy(
    x: Any,
    n_components: int,
    *,
    passes: int = PASSES,
    max_sample: int = MAX_SAMPLE,
    max_iter: int = 500,
    tol: float = 1e-6,
    init: str = "nndsvd",
    seed: int | None = 0,
) -> tuple[Any, np.ndarray, dict[str, Any]]:
    """NMF ``X ~ C S^T`` of a dask array of spectra larger than memory, in passes over its chunks.

    Components from HALS (:func:`nmf_hals`) on a random sample of ``max_sample`` spectra, refined
    by ``passes`` passes of alternating non-negative least squares over all chunks; the maps are
    the exact non-negative least-squares maps against the final components, lazily, chunk by
    chunk (see the module docstring). Reads the data ``1 + passes`` times (one dask compute
    each) before it returns; the maps and the reconstruction error are computed when they are
    (together: one more read).

    Parameters
    ----------
    x : dask.array.Array, shape (..., E)
        Non-negative spectra, energy last (one chunk along it; rechunked otherwise).
    n_components : int
    passes : int
        Passes over the data after the sample (0: the sample's components).
    max_sample : int
        Spectra drawn (without replacement, with ``seed``) for the starting components.
    max_iter, tol, init, seed
        Of the sample's HALS, as :func:`nmf_hals`.

    Returns
    -------
    maps : dask.array.Array, shape (..., k)
        Non-negative abundances in the data's units (dtype of the data).
    spectra : ndarray, shape (E, k)
        Non-negative component spectra, each scaled to a maximum of 1.
    info : dict
        ``objective`` (``0.5 ||X - C S^T||^2`` after each pass; non-increasing), ``n_iter`` and
        ``converged`` (the sample's HALS), ``passes``, ``n_sample``, ``reconstruction_error``
        (a dask scalar, ``||X - C S^T||_F`` of the returned maps; computed with them).
    """
    import dask

    from ionscope.blocks import map_blocks_with_total

    if x.ndim < 2 or min(x.shape) < 1:
        raise InputError(f"nmf needs non-empty spectra (..., energy), got shape {x.shape}")
    if int(passes) != passes or passes < 0:
        raise ConfigError(f"passes must be a whole number >= 0, got {passes}")
    if int(max_sample) != max_sample or max_sample < 1:
        raise ConfigError(f"max_sample must be a whole number >= 1, got {max_sample}")
    if x.dtype not in (np.float32, np.float64):
        x = x.astype(np.float64)
    if len(x.chunks[-1]) > 1:
        x = x.rechunk({x.ndim - 1: -1})
    e = x.shape[-1]
    n = int(np.prod(x.shape[:-1]))
    k = int(n_components)
    if not 1 <= k <= min(n, e):
        raise ConfigError(f"nmf: n_components must be an integer from 1 to min(pixels, channels) = {min(n, e)}, got {k}")
    rng = np.random.default_rng(seed)
    pick = np.sort(rng.choice(n, size=min(int(max_sample), n), replace=False))
    sample = _sample_spectra(x, pick)
    _, s, sinfo = nmf_hals(sample, k, max_iter=max_iter, tol=tol, init=init, seed=seed)
    s64 = s.astype(np.float64)
    objective: list[float] = []
    blocks = x.to_delayed().ravel()
    for _ in range(int(passes)):
        stats = dask.compute(*(dask.delayed(_pass_block)(b, s64) for b in blocks))
        ctc = sum(st[0] for st in stats)
        xtc = sum(st[1] for st in stats)
        xx = float(sum(st[2] for st in stats))
        if xx == 0.0:
            raise EmptyDataError("the data are all zero; there is nothing to factorise")
        new = nnls_rows(xtc, ctc)
        peak = new.max(axis=0)
        if np.any(peak <= 0):  # a component no pixel uses: keep the previous spectrum
            new[:, peak <= 0] = s64[:, peak <= 0]
            peak[peak <= 0] = 1.0
        objective.append(_misfit(xx, xtc, new, ctc, new.T @ new))
        s64 = new / peak[None, :]
    spectra = s64.astype(x.dtype)

    def block(values: np.ndarray, _info: dict) -> tuple[np.ndarray, float]:
        c, err2 = nmf_maps(values.reshape(-1, e), spectra)
        return c.reshape(values.shape[:-1] + (k,)), err2

    maps, err2 = map_blocks_with_total(block, x, chunks=x.chunks[:-1] + ((k,),), dtype=x.dtype)
    info = {"objective": objective, "n_iter": sinfo["n_iter"], "converged": sinfo["converged"],
            "passes": int(passes), "n_sample": int(pick.size), "reconstruction_error": err2**0.5}
    return maps, spectra, info


# =========================================================================== wrappers


def _window_cut(da: xr.DataArray, window: Sequence[float] | None, what: str):
    """Validate and cut the window, energy last (lazy input stays lazy); the cut and its energies."""
    require_spectra(da, f"{what} input")
    energy, disp = energy_ev(da, "the spectra")
    win = window_slice(energy, disp, window, what="fit_window")
    if win.stop - win.start < 2:
        raise ConfigError(f"{what}: the window holds {win.stop - win.start} channel(s); widen it")
    cut = da.transpose(..., "energy").isel(energy=win)
    return require_finite(cut, "the spectra"), energy[win]


def _spectra_matrix(da: xr.DataArray, window: Sequence[float] | None, what: str):
    """Validate, cut the window, load, and flatten to (N, E); returns the pieces to rebuild."""
    cut, energy = _window_cut(da, window, what)
    if is_lazy(cut):
        cut = cut.compute()  # the decomposition needs every spectrum at every iteration
    lead_dims = tuple(d for d in cut.dims if d != "energy")
    x = np.asarray(cut.values)
    x = _float(x.reshape(-1, x.shape[-1]))
    return cut, x, lead_dims, energy


def _output(values, dims, name, units, long_name, cut, lead_dims, k, energy=None):
    coords: dict[str, Any] = {"component": np.arange(k)}
    coord_units = {"component": "1"}
    for d in lead_dims:
        if d in cut.coords:
            coords[d] = np.asarray(cut[d].values)
            coord_units[d] = units_of(cut[d])
    if energy is not None:
        coords["energy"] = energy
        coord_units["energy"] = "eV"
    return signal(values, dims, name=name, units=units, long_name=long_name,
                  coords={d: coords[d] for d in dims if d in coords},
                  coord_units={d: coord_units[d] for d in dims if d in coord_units})


@validate_params({"seed": [SEED, None]})
def nmf(
    da: xr.DataArray,
    n_components: int,
    *,
    window: tuple[float, float] | None = None,
    orthogonality: float = 0.0,
    max_iter: int = 500,
    tol: float = 1e-6,
    init: str = "nndsvd",
    seed: int | None = 0,
    passes: int = PASSES,
    max_sample: int = MAX_SAMPLE,
) -> xr.Dataset:
    """NMF phase mapping of a spectrum image: non-negative maps and spectra (:func:`nmf_hals`).

    Lazy: a dask-backed input gives dask-backed maps and reconstruction error
    (:func:`nmf_lazy`: components from a sample of ``max_sample`` spectra refined in ``passes``
    passes over the chunks; the data are read ``1 + passes`` times before it returns, and once
    more when the maps are computed). A numpy-backed input is factorised in memory by HALS.

    Parameters
    ----------
    da : xarray.DataArray
        Non-negative spectra with dim ``energy`` (eV) and any of ``time``, ``y``, ``x``,
        ``position``.
    n_components : int
    window : (float, float), optional
        Energy-loss range (eV, inclusive) to decompose; default all channels.
    orthogonality, max_iter, tol, init, seed
        As :func:`nmf_hals` (for a lazy input: of the sample's HALS). Soft orthogonality needs
        every map at every sweep: with a dask-backed input it raises ConfigError (load it first,
        ``da.load()``, if it fits in memory).
    passes, max_sample
        Lazy input only, as :func:`nmf_lazy`.

    Returns
    -------
    xarray.Dataset
        ``maps`` (component, then the leading dims; data units), ``spectra`` (component, energy; each
        with maximum 1), ``reconstruction_error`` (scalar, ``||X - C S^T||_F`` in data units);
        ``attrs`` hold ``n_iter``, ``converged`` and the provenance (lazy input: also ``passes``,
        ``n_sample`` and ``objective_passes``, the misfit after each pass).

    Examples
    --------
    >>> from ionscope.data import signal
    >>> rng = np.random.default_rng(0)
    >>> e = np.arange(50.0, 80.0, 0.5)
    >>> x = rng.random((64, 2)) @ np.stack([np.exp(-((e - 60) / 2) ** 2), np.exp(-((e - 70) / 2) ** 2)])
    >>> da = signal(x.reshape(8, 8, -1), ("y", "x", "energy"), name="eels", units="counts",
    ...             coords={"y": 1.0, "x": 1.0, "energy": e})
    >>> ds = nmf(da, 2, max_iter=1000)
    >>> ds.maps.dims, ds.spectra.dims
    (('component', 'y', 'x'), ('component', 'energy'))
    """
    k = int(n_components)
    if is_lazy(da):
        if orthogonality:
            raise ConfigError(
                f"orthogonality={orthogonality:g} needs every map at every sweep, which a dask-backed (larger than "
                "memory) input does not allow; use orthogonality=0, or load the spectra first (da.load()) if they fit"
            )
        cut, energy = _window_cut(da, window, "nmf")
        lead_dims = tuple(d for d in cut.dims if d != "energy")
        c, s, info = nmf_lazy(cut.data, k, passes=passes, max_sample=max_sample, max_iter=max_iter, tol=tol,
                              init=init, seed=seed)
        map_values = c.transpose((c.ndim - 1, *range(c.ndim - 1)))
    else:
        cut, x, lead_dims, energy = _spectra_matrix(da, window, "nmf")
        c, s, info = nmf_hals(x, n_components, orthogonality=orthogonality, max_iter=max_iter, tol=tol,
                              init=init, seed=seed)
        lead_shape = tuple(cut.sizes[d] for d in lead_dims)
        map_values = np.moveaxis(c.reshape(lead_shape + (k,)), -1, 0)
    units = units_of(da)
    maps = _output(map_values, ("component", *lead_dims), "maps", units, "NMF abundance map", cut, lead_dims, k)
    spectra = _output(s.T, ("component", "energy"), "spectra", "1",
                      "NMF component spectrum (maximum 1)", cut, lead_dims, k, energy)
    err = xr.DataArray(info["reconstruction_error"], name="reconstruction_error",
                       attrs={"units": units, "long_name": "||X - C S^T||_F"})
    ds = xr.Dataset({"maps": maps, "spectra": spectra, "reconstruction_error": err})
    ds.attrs = {"n_iter": int(info["n_iter"]), "converged": int(info["converged"]), "primary": "maps"}
    params = {"n_components": k, "window_eV": [float(energy[0]), float(energy[-1])],
              "orthogonality": float(orthogonality), "max_iter": int(max_iter), "tol": float(tol),
              "init": init, "seed": seed}
    if "passes" in info:
        ds.attrs.update(passes=info["passes"], n_sample=info["n_sample"], objective_passes=info["objective"])
        params.update(passes=info["passes"], max_sample=int(max_sample))
    ds = with_provenance(ds, "ionscope.eels.nmf", params, inputs=[da], history=provenance(da))
    for name in ds.data_vars:
        ds[name].attrs["provenance"] = ds.attrs["provenance"]
    return ds


def _pca_lazy(x, k: int) -> tuple[Any, np.ndarray, dict[str, Any]]:
    """:func:`pca_covariance` of a dask array of spectra (..., E): one computed pass for the
    moments, then the score maps (..., k) as a dask array (the data's dtype)."""
    import dask

    from ionscope.compat import compute

    parts = compute(*(dask.delayed(spectra_moments)(b) for b in x.to_delayed().ravel()))
    n, mean, scatter = merge_moments(parts)
    if not np.all(np.isfinite(scatter)):
        raise InputError("pca: the data hold NaN/inf values; mask or interpolate them first")
    comps, info = pca_covariance(n, mean, scatter, k)

    def project(block: np.ndarray) -> np.ndarray:
        return ((block.astype(np.float64) - mean) @ comps).astype(block.dtype)

    scores = x.map_blocks(project, chunks=x.chunks[:-1] + ((k,),), dtype=x.dtype)
    return scores, comps, info


def pca(
    da: xr.DataArray,
    n_components: int,
    *,
    window: tuple[float, float] | None = None,
    method: str = "auto",
    seed: int | None = 0,
) -> xr.Dataset:
    """PCA of a spectrum image (:func:`pca_svd`): score maps, loadings and explained variance.

    Computes: a numpy-backed input is decomposed in memory. Of a dask-backed input, one streamed
    pass (each chunk's count, mean and scatter matrix, merged: :func:`merge_moments`), a few
    chunks in memory at a time; the loadings follow from the scatter matrix
    (:func:`pca_covariance`) and the score maps are dask-backed, projected chunk by chunk as they
    are computed (the data are read once more then).

    Parameters
    ----------
    da : xarray.DataArray
        Spectra with dim ``energy`` (eV) and any of ``time``, ``y``, ``x``, ``position``.
    n_components : int
    window : (float, float), optional
        Energy-loss range (eV, inclusive); default all channels.
    method, seed
        As :func:`pca_svd`; a dask-backed input takes ``"auto"`` or ``"covariance"`` (both the
        covariance pass).

    Returns
    -------
    xarray.Dataset
        ``maps`` (component, then the leading dims; scores in data units), ``spectra`` (component,
        energy; orthonormal loadings), ``explained_variance`` and ``explained_variance_ratio``
        (component), ``mean_spectrum`` (energy).
    """
    k = int(n_components)
    if is_lazy(da):
        if method not in ("auto", "covariance"):
            raise ConfigError(f"pca: method {method!r} needs the spectra in memory; a dask-backed input is decomposed "
                              "from its covariance in one pass (method 'auto' or 'covariance'), or load it first "
                              "(da.load()) if it fits")
        cut, energy = _window_cut(da, window, "pca")
        lead_dims = tuple(d for d in cut.dims if d != "energy")
        x = cut.data
        if x.dtype not in (np.float32, np.float64):
            x = x.astype(np.float64)
        x = x.rechunk({x.ndim - 1: -1})
        n_spectra, n_channels = int(np.prod(x.shape[:-1])), int(x.shape[-1])
        if int(n_components) != n_components or not 1 <= k <= min(n_spectra, n_channels):
            raise ConfigError(f"pca: n_components must be an integer from 1 to min(pixels, channels) = "
                              f"{min(n_spectra, n_channels)}, got {n_components}")
        scores, comps, info = _pca_lazy(x, k)
        map_values = scores.transpose((scores.ndim - 1, *range(scores.ndim - 1)))
    else:
        cut, x, lead_dims, energy = _spectra_matrix(da, window, "pca")
        scores, comps, info = pca_svd(x, n_components, method=method, seed=seed)
        lead_shape = tuple(cut.sizes[d] for d in lead_dims)
        map_values = np.moveaxis(scores.astype(x.dtype).reshape(lead_shape + (k,)), -1, 0)
    units = units_of(da)
    dtype = x.dtype
    maps = _output(map_values, ("component", *lead_dims), "maps", units, "PCA score map", cut, lead_dims, k)
    spectra = _output(comps.T.astype(dtype), ("component", "energy"), "spectra", "1",
                      "PCA loading (unit norm)", cut, lead_dims, k, energy)
    var = _output(info["explained_variance"], ("component",), "explained_variance", f"({units})^2",
                  "variance along the component", cut, lead_dims, k)
    ratio = _output(info["explained_variance_ratio"], ("component",), "explained_variance_ratio", "1",
                    "fraction of the total variance", cut, lead_dims, k)
    mean = signal(info["mean"].astype(dtype), ("energy",), name="mean_spectrum", units=units,
                  coords={"energy": energy}, long_name="mean spectrum (subtracted before the SVD)")
    ds = xr.Dataset({"maps": maps, "spectra": spectra, "explained_variance": var,
                     "explained_variance_ratio": ratio, "mean_spectrum": mean})
    ds.attrs = {"method": info["method"]}
    params = {"n_components": k, "window_eV": [float(energy[0]), float(energy[-1])],
              "method": info["method"], "seed": seed}
    ds = with_provenance(ds, "ionscope.eels.pca", params, inputs=[da], history=provenance(da))
    for name in ds.data_vars:
        ds[name].attrs["provenance"] = ds.attrs["provenance"]
    return ds


__all__ = ["nmf_hals", "nmf_lazy", "nmf_maps", "nmf_pass_statistics", "nnls_rows", "pca_svd", "randomized_svd",
           "spectra_moments", "merge_moments", "pca_covariance", "nmf", "pca", "MAX_SAMPLE", "PASSES"]
