r"""PCA kernels: principal component analysis of spectra, and the input check shared with NMF.

The numpy side of :func:`ionscope.eels.pca`: :func:`~ionscope.eels.decomposition.pca_svd` decomposes
spectra ``(N, E)`` by the SVD of the mean-centred data, full (LAPACK) or randomized
(:func:`~ionscope.eels.decomposition.randomized_svd`, Halko et al. 2011, with implicit centring), or
from their scatter matrix (:func:`~ionscope.eels.decomposition.pca_covariance`). The covariance
route is what a dask-backed input takes: each block's count, mean and scatter
(:func:`~ionscope.eels.decomposition.spectra_moments`) are merged exactly
(:func:`~ionscope.eels.decomposition.merge_moments`, Chan, Golub & LeVeque 1979). The NMF kernels
(:mod:`ionscope.eels.nmf_kernels`) use :func:`~ionscope.eels.decomposition.randomized_svd` for their
NNDSVD start and the input check here. Everything is re-exported by
:mod:`ionscope.eels.decomposition`, whose docstring describes the methods.

References
----------
T. F. Chan, G. H. Golub, R. J. LeVeque, "Updating formulae and a pairwise algorithm for computing
sample variances", Stanford CS report STAN-CS-79-773 (1979).
N. Halko, P.-G. Martinsson, J. A. Tropp, "Finding structure with randomness", SIAM Review 53
(2011) 217.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from ionscope.errors import ConfigError, InputError

_PCA_METHODS = ("auto", "full", "randomized", "covariance")


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


__all__ = ["pca_svd", "randomized_svd", "spectra_moments", "merge_moments", "pca_covariance"]
