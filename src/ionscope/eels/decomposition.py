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

This module holds the xarray wrappers :func:`~ionscope.eels.nmf` and :func:`~ionscope.eels.pca`:
they check the spectra and their energy axis, cut the window, decompose numpy- or dask-backed data
and assemble the labelled result with provenance. The kernels live in
:mod:`ionscope.eels.nmf_kernels` (:func:`nmf_hals`, :func:`nmf_lazy`, :func:`nnls_rows`,
:func:`nmf_maps`, :func:`nmf_pass_statistics`) and :mod:`ionscope.eels.pca_kernels`
(:func:`pca_svd`, :func:`randomized_svd`, :func:`spectra_moments`, :func:`merge_moments`,
:func:`pca_covariance`), and are re-exported here.

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

from collections.abc import Sequence
from typing import Any

import numpy as np
import xarray as xr

from ionscope.data import is_lazy, provenance, require_finite, signal, units_of, with_provenance
from ionscope.eels.energy import energy_ev, window_slice
from ionscope.eels.nmf_kernels import (
    MAX_SAMPLE,
    PASSES,
    nmf_hals,
    nmf_lazy,
    nmf_maps,
    nmf_pass_statistics,
    nnls_rows,
)
from ionscope.eels.pca_kernels import (
    _float,
    merge_moments,
    pca_covariance,
    pca_svd,
    randomized_svd,
    spectra_moments,
)
from ionscope.eels.wrapping import require_spectra
from ionscope.errors import ConfigError, InputError
from ionscope.validation import SEED, validate_params


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
