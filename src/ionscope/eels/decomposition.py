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

PCA: singular value decomposition of the mean-centred data, full (LAPACK) or randomized
(Halko et al. 2011, with implicit centring so the data are never copied), with explained
variance and signs fixed so the largest loading of each component is positive.

References
----------
A. Cichocki, A.-H. Phan, "Fast local algorithms for large scale nonnegative matrix and tensor
factorizations", IEICE Trans. Fundamentals E92-A (2009) 708.
M. Shiga et al., "Sparse modeling of EELS and EDX spectral imaging data by nonnegative matrix
factorization", Ultramicroscopy 170 (2016) 43.
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
_PCA_METHODS = ("auto", "full", "randomized")


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
    method : {"auto", "full", "randomized"}
        ``"auto"``: full SVD when ``min(N, E) <= 500`` or more than 80 % of the rank is asked
        for, randomized otherwise.
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


# =========================================================================== wrappers


def _spectra_matrix(da: xr.DataArray, window: Sequence[float] | None, what: str):
    """Validate, cut the window, load, and flatten to (N, E); returns the pieces to rebuild."""
    require_spectra(da, f"{what} input")
    energy, disp = energy_ev(da, "the spectra")
    win = window_slice(energy, disp, window, what="fit_window")
    if win.stop - win.start < 2:
        raise ConfigError(f"{what}: the window holds {win.stop - win.start} channel(s); widen it")
    cut = da.transpose(..., "energy").isel(energy=win)
    if is_lazy(cut):
        cut = cut.compute()  # the decomposition needs every spectrum at every iteration
    cut = require_finite(cut, "the spectra")
    lead_dims = tuple(d for d in cut.dims if d != "energy")
    x = np.asarray(cut.values)
    x = _float(x.reshape(-1, x.shape[-1]))
    return cut, x, lead_dims, energy[win]


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
) -> xr.Dataset:
    """NMF phase mapping of a spectrum image: non-negative maps and spectra (:func:`nmf_hals`).

    Computes: loads the spectra in the window (the factorisation needs them all).

    Parameters
    ----------
    da : xarray.DataArray
        Non-negative spectra with dim ``energy`` (eV) and any of ``time``, ``y``, ``x``,
        ``position``. A dask-backed array is loaded (the window only): every HALS sweep needs
        every spectrum.
    n_components : int
    window : (float, float), optional
        Energy-loss range (eV, inclusive) to decompose; default all channels.
    orthogonality, max_iter, tol, init, seed
        As :func:`nmf_hals`.

    Returns
    -------
    xarray.Dataset
        ``maps`` (component, then the leading dims; data units), ``spectra`` (component, energy; each
        with maximum 1), ``reconstruction_error`` (scalar, ``||X - C S^T||_F`` in data units);
        ``attrs`` hold ``n_iter``, ``converged`` and the provenance.

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
    cut, x, lead_dims, energy = _spectra_matrix(da, window, "nmf")
    c, s, info = nmf_hals(x, n_components, orthogonality=orthogonality, max_iter=max_iter, tol=tol,
                          init=init, seed=seed)
    k = int(n_components)
    lead_shape = tuple(cut.sizes[d] for d in lead_dims)
    units = units_of(da)
    maps = _output(np.moveaxis(c.reshape(lead_shape + (k,)), -1, 0), ("component", *lead_dims), "maps",
                   units, "NMF abundance map", cut, lead_dims, k)
    spectra = _output(s.T, ("component", "energy"), "spectra", "1",
                      "NMF component spectrum (maximum 1)", cut, lead_dims, k, energy)
    err = xr.DataArray(info["reconstruction_error"], name="reconstruction_error",
                       attrs={"units": units, "long_name": "||X - C S^T||_F"})
    ds = xr.Dataset({"maps": maps, "spectra": spectra, "reconstruction_error": err})
    ds.attrs = {"n_iter": int(info["n_iter"]), "converged": int(info["converged"]), "primary": "maps"}
    params = {"n_components": k, "window_eV": [float(energy[0]), float(energy[-1])],
              "orthogonality": float(orthogonality), "max_iter": int(max_iter), "tol": float(tol),
              "init": init, "seed": seed}
    ds = with_provenance(ds, "ionscope.eels.nmf", params, inputs=[da], history=provenance(da))
    for name in ds.data_vars:
        ds[name].attrs["provenance"] = ds.attrs["provenance"]
    return ds


def pca(
    da: xr.DataArray,
    n_components: int,
    *,
    window: tuple[float, float] | None = None,
    method: str = "auto",
    seed: int | None = 0,
) -> xr.Dataset:
    """PCA of a spectrum image (:func:`pca_svd`): score maps, loadings and explained variance.

    Computes: loads the spectra in the window (the SVD needs them all).

    Parameters
    ----------
    da : xarray.DataArray
        Spectra with dim ``energy`` (eV) and any of ``time``, ``y``, ``x``, ``position``
        (a dask-backed array is loaded, window only).
    n_components : int
    window : (float, float), optional
        Energy-loss range (eV, inclusive); default all channels.
    method, seed
        As :func:`pca_svd`.

    Returns
    -------
    xarray.Dataset
        ``maps`` (component, then the leading dims; scores in data units), ``spectra`` (component,
        energy; orthonormal loadings), ``explained_variance`` and ``explained_variance_ratio``
        (component), ``mean_spectrum`` (energy).
    """
    cut, x, lead_dims, energy = _spectra_matrix(da, window, "pca")
    scores, comps, info = pca_svd(x, n_components, method=method, seed=seed)
    k = int(n_components)
    lead_shape = tuple(cut.sizes[d] for d in lead_dims)
    units = units_of(da)
    dtype = x.dtype
    maps = _output(np.moveaxis(scores.astype(dtype).reshape(lead_shape + (k,)), -1, 0),
                   ("component", *lead_dims), "maps", units, "PCA score map", cut, lead_dims, k)
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


__all__ = ["nmf_hals", "pca_svd", "randomized_svd", "nmf", "pca"]
