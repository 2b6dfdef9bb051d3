"""One entry point for every denoiser: :func:`denoise` (the CLI's ``ionscope denoise``).

==========  =================================================================================
method      what runs
==========  =================================================================================
sparse      :func:`~ionscope.denoise.sparse_denoise` with 2-D ``patch x patch`` patches
sparse3d    :func:`~ionscope.denoise.sparse_denoise` with space-time ``temporal x patch x patch``
            patches (an extension of the 2-D method: it exploits slow dynamics)
pca         :func:`~ionscope.denoise.baselines.pca_denoise` (SVD over time, or patch PCA)
gaussian    :func:`~ionscope.denoise.baselines.gaussian_denoise` in (y, x)
gaussian3d  :func:`~ionscope.denoise.baselines.gaussian_denoise` in (time, y, x)
nlmeans     :func:`~ionscope.denoise.baselines.nlmeans_denoise` (per frame)
tv          :func:`~ionscope.denoise.baselines.tv_denoise` (per frame)
bm3d        :func:`~ionscope.denoise.baselines.bm3d_denoise` (per frame; optional ``bm3d``)
==========  =================================================================================

All share the noise model (Poisson data through the Anscombe transform and its exact unbiased
inverse, sigma 1 there; Gaussian data with the MAD sigma) and return the input's dims, coords,
units and attrs with one provenance step appended.
"""

from __future__ import annotations

import time
from typing import Any

import xarray as xr

from ionscope.denoise import baselines
from ionscope.denoise.sparse import SPARSE_CONSTRAINTS, sparse_denoise
from ionscope.denoise.stabilise import NOISE_CONSTRAINTS
from ionscope.errors import ConfigError
from ionscope.validation import SEED, Options, validate_params

#: Methods accepted by :func:`denoise`.
METHODS = ("sparse", "sparse3d", "pca", "gaussian", "gaussian3d", "nlmeans", "tv", "bm3d")

_NOISE_OPTIONS = ("sigma", "gain", "read_noise")
_SPARSE_OPTIONS = _NOISE_OPTIONS + (
    "iterations", "lam", "train", "dictionary", "learner", "stride", "error_factor", "max_train",
)
#: Extra keyword options each method accepts (``bm3d`` also passes unknown ones to ``bm3d.bm3d``).
OPTIONS: dict[str, tuple[str, ...]] = {
    "sparse": _SPARSE_OPTIONS,
    "sparse3d": _SPARSE_OPTIONS,
    "pca": _NOISE_OPTIONS + ("mode", "rank"),
    "gaussian": _NOISE_OPTIONS + ("width",),
    "gaussian3d": _NOISE_OPTIONS + ("width", "time_width"),
    "nlmeans": _NOISE_OPTIONS + ("h_factor", "patch_size", "patch_distance", "fast_mode"),
    "tv": _NOISE_OPTIONS + ("weight", "discrepancy", "max_num_iter"),
    "bm3d": _NOISE_OPTIONS,
}


def _check_options(method: str, options: dict[str, Any]) -> None:
    if method == "bm3d":
        return
    unknown = sorted(set(options) - set(OPTIONS[method]))
    if unknown:
        raise ConfigError(
            f"unknown option(s) {unknown} for method {method!r}; valid options: "
            + ", ".join(OPTIONS[method])
        )


@validate_params({
    "method": [Options(METHODS)],
    "patch": SPARSE_CONSTRAINTS["patch"],
    "atoms": SPARSE_CONSTRAINTS["atoms"],
    "sparsity": SPARSE_CONSTRAINTS["sparsity"],
    "temporal": SPARSE_CONSTRAINTS["temporal"],
    "noise": NOISE_CONSTRAINTS["noise"],
    "dose": NOISE_CONSTRAINTS["dose"],
    "seed": [SEED],
})
def denoise(
    da: xr.DataArray,
    method: str = "sparse",
    *,
    patch: int = 8,
    atoms: int = 256,
    sparsity: int = 4,
    temporal: int = 3,
    noise: str = "auto",
    dose: float | None = None,
    seed: int = 0,
    **options: Any,
) -> tuple[xr.DataArray, dict[str, Any]]:
    """Denoise a map or map series with the named method.

    Computes: loads the input.

    Parameters
    ----------
    da : xarray.DataArray
        Dims ``(time, y, x)`` or ``(y, x)`` (``sparse3d``, ``gaussian3d`` and ``pca`` over
        time need a series).
    method : str
        One of :data:`METHODS`.
    patch : int
        Patch side in pixels (sparse methods; ``pca`` with ``mode="patches"``).
    atoms, sparsity : int
        Dictionary size and largest number of atoms per patch (sparse methods).
    temporal : int
        Frames per space-time patch (``sparse3d`` only; ``sparse`` uses 2-D patches).
    noise : {"poisson", "gaussian", "poisson-gaussian", "auto"}
        Noise model, as in :func:`~ionscope.denoise.sparse_denoise`.
    dose : float, optional
        Counts per unit of the data (Poisson models); default ``da.attrs["dose"]``, else 1.
    seed : int
        Seed of the sparse methods' dictionary learning (the other methods are deterministic).
    **options
        Method-specific options (see :data:`OPTIONS`), e.g. ``sigma``, ``iterations``, ``lam``,
        ``learner`` (the sparse methods' dictionary learner, ``"ksvd"``...), ``mode`` and
        ``rank`` (pca), ``width`` (gaussian), ``weight`` (tv), ``h_factor`` (nlmeans).

    Returns
    -------
    denoised : xarray.DataArray
        Name ``"denoised"``, the input's dims, coords, units and attrs, one provenance step
        appended.
    info : dict
        ``method``, ``parameters`` (what determined the result), ``noise``, ``dose``,
        ``sigma`` (noise std in the denoising domain), ``sigma_source``, ``run_time_s``, and
        the method's own diagnostics (sparse: ``mean_atoms``, ``dictionary`` (ndarray), ...;
        pca: ``rank``; gaussian: ``width_px``; tv: ``weight``; nlmeans: ``h``).

    Raises
    ------
    ConfigError
        Unknown method (the message lists :data:`METHODS`), unknown option, invalid
        parameters, or ``bm3d`` without the ``bm3d`` package.

    Examples
    --------
    >>> import numpy as np
    >>> from ionscope.data import signal
    >>> rng = np.random.default_rng(0)
    >>> truth = np.tile(np.linspace(0.2, 0.9, 24), (3, 24, 1))
    >>> da = signal(rng.poisson(30 * truth) / 30, ("time", "y", "x"), name="x", units="1")
    >>> out, info = denoise(da, "gaussian", noise="poisson", dose=30)
    >>> out.dims == da.dims, info["method"]
    (True, 'gaussian')
    >>> bool(np.abs(out - truth).mean() < np.abs(da - truth).mean())
    True
    """
    t0 = time.perf_counter()
    _check_options(method, options)
    noise_kw = {"noise": noise, "dose": dose}

    if method in ("sparse", "sparse3d"):
        if method == "sparse3d" and temporal < 2:
            raise ConfigError(
                f"method 'sparse3d' needs temporal >= 2 frames per patch, got {temporal!r}; "
                "use method 'sparse' for 2-D patches"
            )
        opts = dict(options)
        if "learner" in opts:
            opts["method"] = opts.pop("learner")
        out, info = sparse_denoise(
            da, patch=patch, atoms=atoms, sparsity=sparsity,
            temporal=temporal if method == "sparse3d" else 1, seed=seed, **noise_kw, **opts,
        )
        parameters = dict(info["parameters"])
        parameters["learner"] = parameters.pop("method", None)
        info = dict(info, parameters={"method": method, **parameters})
    elif method == "pca":
        out, info = baselines.pca_denoise(da, patch=patch, **noise_kw, **options)
    elif method in ("gaussian", "gaussian3d"):
        out, info = baselines.gaussian_denoise(da, space_time=(method == "gaussian3d"),
                                               **noise_kw, **options)
    elif method == "nlmeans":
        out, info = baselines.nlmeans_denoise(da, **noise_kw, **options)
    elif method == "tv":
        out, info = baselines.tv_denoise(da, **noise_kw, **options)
    else:
        out, info = baselines.bm3d_denoise(da, **noise_kw, **options)
    info["method"] = method
    info["run_time_s"] = time.perf_counter() - t0
    return out, info


__all__ = ["METHODS", "OPTIONS", "denoise"]
