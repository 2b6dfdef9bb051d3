r"""NMF kernels: non-negative matrix factorisation of spectra by HALS, in memory or in passes.

The numpy side of :func:`ionscope.eels.nmf`: :func:`~ionscope.eels.decomposition.nmf_hals`
factorises spectra ``(N, E)`` in memory by hierarchical alternating least squares, with optional
soft orthogonality (NMF-SO), from an NNDSVD or random start;
:func:`~ionscope.eels.decomposition.nnls_rows` solves the non-negative least-squares problems with
one factor fixed, which :func:`~ionscope.eels.decomposition.nmf_maps` (maps against fixed spectra)
and :func:`~ionscope.eels.decomposition.nmf_pass_statistics` (one chunk's share of a pass) build on;
:func:`~ionscope.eels.decomposition.nmf_lazy` learns the components of a dask array larger than
memory in a few passes over its chunks (:data:`~ionscope.eels.decomposition.MAX_SAMPLE`,
:data:`~ionscope.eels.decomposition.PASSES`). Everything is re-exported by
:mod:`ionscope.eels.decomposition`, whose docstring describes the algorithms.

References
----------
A. Cichocki, A.-H. Phan, "Fast local algorithms for large scale nonnegative matrix and tensor
factorizations", IEICE Trans. Fundamentals E92-A (2009) 708.
M. Shiga et al., "Sparse modeling of EELS and EDX spectral imaging data by nonnegative matrix
factorization", Ultramicroscopy 170 (2016) 43.
C. Boutsidis, E. Gallopoulos, "SVD based initialization: A head start for nonnegative matrix
factorization", Pattern Recognition 41 (2008) 1350.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np

from ionscope.eels.pca_kernels import _check_matrix, _float, randomized_svd
from ionscope.errors import ConfigError, EmptyDataError, InputError
from ionscope.validation import SEED, validate_params

_INITS = ("nndsvd", "nndsvda", "random")
#: HALS keeps every entry >= this fraction of the factor's maximum instead of exactly 0, so a
#: component that empties in one sweep can come back (Cichocki & Phan 2009; Gillis & Glineur 2012).
_FLOOR = 1e-12


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
    chunk (see :mod:`ionscope.eels.decomposition`). Reads the data ``1 + passes`` times (one
    dask compute each) before it returns; the maps and the reconstruction error are computed
    when they are (together: one more read).

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


__all__ = ["nmf_hals", "nmf_lazy", "nmf_maps", "nmf_pass_statistics", "nnls_rows", "MAX_SAMPLE", "PASSES"]
