"""One entry point for every denoiser: :func:`denoise` (the CLI's ``ionscope denoise``).

==========  =================================================================================
method      what runs
==========  =================================================================================
sparse      :func:`~ionscope.denoise.sparse_denoise` with 2-D ``patch x patch`` patches
sparse3d    :func:`~ionscope.denoise.sparse_denoise` with space-time ``temporal x patch x patch``
            patches (an extension of the 2-D method: it exploits slow dynamics), followed by
            the collaborative Wiener filter of space-time groups matched on its estimate
            (:mod:`~ionscope.denoise.collaborative`: fast fronts)
pca         :func:`~ionscope.denoise.baselines.pca_denoise` (SVD over time, or patch PCA)
gaussian    :func:`~ionscope.denoise.baselines.gaussian_denoise` in (y, x)
gaussian3d  :func:`~ionscope.denoise.baselines.gaussian_denoise` in (time, y, x)
nlmeans     :func:`~ionscope.denoise.baselines.nlmeans_denoise` (per frame)
tv          :func:`~ionscope.denoise.baselines.tv_denoise` (per frame)
tv3d        :func:`~ionscope.denoise.baselines.tv_denoise` of the (time, y, x) volume
bm3d        :func:`~ionscope.denoise.baselines.bm3d_denoise` (per frame; optional ``bm3d``)
bm4d        :func:`~ionscope.denoise.baselines.bm4d_denoise` (the volume; optional ``bm4d``)
==========  =================================================================================

All share the noise model (Poisson data through the Anscombe transform and its exact unbiased
inverse, sigma 1 there; Gaussian data with the MAD sigma) and return the input's dims, coords,
units and attrs with one provenance step appended.

The sparse methods choose what is left at ``"auto"`` - the frames per space-time patch, the
dictionary size and the sparsity - from the data alone (:mod:`ionscope.denoise.select`: the
noise is split in two, the candidates run on one part and are scored against the other);
``info["criterion"]`` reports the scores and the choice.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import xarray as xr

from ionscope.denoise import baselines
from ionscope.denoise.sparse import SPARSE_CONSTRAINTS, sparse_denoise
from ionscope.denoise.stabilise import NOISE_CONSTRAINTS
from ionscope.errors import ConfigError
from ionscope.validation import SEED, Options, validate_params

#: Methods accepted by :func:`denoise`.
METHODS = ("sparse", "sparse3d", "pca", "gaussian", "gaussian3d", "nlmeans", "tv", "tv3d", "bm3d", "bm4d")

#: Candidates of the parameters left at ``"auto"`` (searched in this order, one at a time).
AUTO_CANDIDATES: dict[str, tuple[int, ...]] = {"temporal": (2, 3, 5, 7), "atoms": (128, 256, 512), "sparsity": (2, 4, 8)}
#: Starting values of the search (the fixed defaults before issue 17).
AUTO_START = {"temporal": 3, "atoms": 256, "sparsity": 4}
AUTO = "auto"

_NOISE_OPTIONS = ("sigma", "gain", "read_noise")
_SPARSE_OPTIONS = _NOISE_OPTIONS + (
    "iterations", "lam", "train", "dictionary", "learner", "stride", "error_factor", "max_train", "wiener",
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
    "tv3d": _NOISE_OPTIONS + ("weight", "discrepancy", "max_num_iter"),
    "bm3d": _NOISE_OPTIONS,
    "bm4d": _NOISE_OPTIONS,
}


def _check_options(method: str, options: dict[str, Any]) -> None:
    if method in ("bm3d", "bm4d"):
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
    "atoms": SPARSE_CONSTRAINTS["atoms"] + [Options((AUTO,))],
    "sparsity": SPARSE_CONSTRAINTS["sparsity"] + [Options((AUTO,))],
    "temporal": SPARSE_CONSTRAINTS["temporal"] + [Options((AUTO,))],
    "noise": NOISE_CONSTRAINTS["noise"],
    "dose": NOISE_CONSTRAINTS["dose"],
    "seed": [SEED],
})
def denoise(
    da: xr.DataArray,
    method: str = "sparse",
    *,
    patch: int = 8,
    atoms: int | str = AUTO,
    sparsity: int | str = AUTO,
    temporal: int | str = AUTO,
    noise: str = "auto",
    dose: float | None = None,
    seed: int = 0,
    **options: Any,
) -> tuple[xr.DataArray, dict[str, Any]]:
    """Denoise a map or map series with the named method.

    Computes: nothing of a dask-backed input but stated samples, for every method but ``pca``:
    the result is dask-backed (see each method's function for the sample it computes - the
    training patches, the frames a width or weight is chosen on, the noise estimate - and its
    dask statistics in ``info``, e.g. ``mean_atoms``, ``sure_per_pixel``, ``residual_var``, to
    compute with the result by :func:`ionscope.compat.compute`). ``pca`` computes one streamed
    pass (its Gram matrix over time, or patch covariance) and returns a dask-backed result.
    ``tv3d`` (a global iterative 3-D ROF problem) and ``bm4d`` (an external library that takes
    the whole volume) compute in one task that holds the whole series.

    Parameters
    ----------
    da : xarray.DataArray
        Dims ``(time, y, x)`` or ``(y, x)`` (``sparse3d``, ``gaussian3d`` and ``pca`` over
        time need a series).
    method : str
        One of :data:`METHODS`.
    patch : int
        Patch side in pixels (sparse methods; ``pca`` with ``mode="patches"``).
    atoms, sparsity : int or "auto"
        Dictionary size and largest number of atoms per patch (sparse methods). ``"auto"``
        (default): chosen from :data:`AUTO_CANDIDATES` by the split-noise score.
    temporal : int or "auto"
        Frames per space-time patch (``sparse3d`` only; ``sparse`` uses 2-D patches).
        ``"auto"`` (default): chosen from :data:`AUTO_CANDIDATES` (at most the series' frames)
        by the split-noise score.
    noise : {"poisson", "gaussian", "poisson-gaussian", "auto"}
        Noise model, as in :func:`~ionscope.denoise.sparse_denoise`.
    dose : float, optional
        Counts per unit of the data (Poisson models); default ``da.attrs["dose"]``, else 1.
    seed : int
        Seed of the sparse methods' dictionary learning (the other methods are deterministic).
    **options
        Method-specific options (see :data:`OPTIONS`), e.g. ``sigma``, ``iterations``, ``lam``,
        ``learner`` (the sparse methods' dictionary learner, ``"ksvd"``...), ``wiener``
        (the collaborative Wiener stage after the sparse coding: default True for
        ``sparse3d``, False for ``sparse``), ``mode`` and
        ``rank`` (pca), ``width`` (gaussian), ``weight`` (tv), ``h_factor`` (nlmeans).

    Returns
    -------
    denoised : xarray.DataArray
        Name ``"denoised"``, the input's dims, coords, units and attrs, one provenance step
        appended.
    info : dict
        ``method``, ``parameters`` (what determined the result), ``noise``, ``dose``,
        ``sigma`` (noise std in the denoising domain), ``sigma_source``, ``run_time_s``,
        ``criterion`` (sparse methods with parameters at ``"auto"``: how they were chosen, every
        candidate's score, :func:`~ionscope.denoise.select.select_parameters`), and
        the method's own diagnostics (sparse: ``mean_atoms`` - a dask scalar, computed with the
        result, for a dask-backed input - ``dictionary`` (ndarray), ...;
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
        if method == "sparse3d" and da.sizes.get("time", 1) < 2:
            raise ConfigError(f"method 'sparse3d' needs a (time, y, x) series of at least 2 frames for its space-time "
                              f"patches; got dims {tuple(da.dims)} of shape {tuple(da.shape)} - use method 'sparse'")
        if method == "sparse3d" and temporal != AUTO and temporal < 2:
            raise ConfigError(
                f"method 'sparse3d' needs temporal >= 2 frames per patch, got {temporal!r}; "
                "use method 'sparse' for 2-D patches"
            )
        opts = dict(options)
        # sparse3d: the collaborative Wiener stage follows the sparse coding unless switched off
        opts.setdefault("wiener", method == "sparse3d")
        if "learner" in opts:
            opts["method"] = opts.pop("learner")
        params = {"temporal": temporal if method == "sparse3d" else 1, "atoms": atoms, "sparsity": sparsity}
        criterion = None
        if AUTO in params.values():
            params, criterion = _choose(da, method, params, patch=patch, seed=seed, noise_kw=noise_kw, opts=opts)
        out, info = sparse_denoise(da, patch=patch, seed=seed, **params, **noise_kw, **opts)
        parameters = dict(info["parameters"])
        parameters["learner"] = parameters.pop("method", None)
        info = dict(info, parameters={"method": method, **parameters})
        if criterion is not None:
            info["criterion"] = criterion
    elif method == "pca":
        out, info = baselines.pca_denoise(da, patch=patch, **noise_kw, **options)
    elif method in ("gaussian", "gaussian3d"):
        out, info = baselines.gaussian_denoise(da, space_time=(method == "gaussian3d"),
                                               **noise_kw, **options)
    elif method == "nlmeans":
        out, info = baselines.nlmeans_denoise(da, **noise_kw, **options)
    elif method in ("tv", "tv3d"):
        out, info = baselines.tv_denoise(da, space_time=(method == "tv3d"), **noise_kw, **options)
    elif method == "bm4d":
        out, info = baselines.bm4d_denoise(da, **noise_kw, **options)
    else:
        out, info = baselines.bm3d_denoise(da, **noise_kw, **options)
    info["method"] = method
    info["run_time_s"] = time.perf_counter() - t0
    return out, info


def _choose(da: xr.DataArray, method: str, params: dict[str, Any], *, patch: int, seed: int,
            noise_kw: dict[str, Any], opts: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """The sparse parameters left at ``"auto"`` chosen by the split-noise score; the others as
    given. Data that cannot be split (not counts, no noise estimate) keep :data:`AUTO_START`,
    and the record says why."""
    from ionscope.denoise.select import select_parameters
    from ionscope.denoise.stabilise import resolve_noise
    from ionscope.errors import IonscopeError

    start = {k: (AUTO_START[k] if v == AUTO else v) for k, v in params.items()}
    n_frames = da.sizes.get("time", 1)
    candidates: dict[str, list[int]] = {}
    for name in ("temporal", "atoms", "sparsity"):
        if params[name] != AUTO:
            continue
        values = [v for v in AUTO_CANDIDATES[name] if name != "temporal" or v <= n_frames]
        if name == "temporal" and not values:
            values = [n_frames]
        if name == "sparsity":
            atoms = start["atoms"] if params["atoms"] == AUTO else params["atoms"]
            values = [v for v in values if v <= atoms] or [min(AUTO_START["sparsity"], atoms)]
        candidates[name] = values
        start[name] = values[0] if start[name] not in values else start[name]
    model, dose, _ = resolve_noise(da, noise_kw["noise"], noise_kw["dose"])
    sigma = opts.get("sigma")
    if model == "gaussian" and sigma is None:
        from ionscope.denoise.noise import estimate_sigma

        from ionscope.data import is_lazy
        from ionscope.denoise.stabilise import middle_frames

        sample = da.isel(time=middle_frames(da.sizes["time"])) if is_lazy(da) and "time" in da.dims else da
        values = np.asarray(sample.values, dtype=np.float64)
        sigma = estimate_sigma(values if values.ndim == 3 else values[None])
    # the candidates differ in the sparse coding; the Wiener stage that may follow is left out of
    # the search (it would multiply its cost and follows the best first estimate)
    passed = {k: v for k, v in opts.items() if k not in ("sigma", "wiener")}

    def run(train: xr.DataArray, candidate: dict[str, Any], split_kw: dict[str, Any]) -> xr.DataArray:
        out, _ = sparse_denoise(train, patch=patch, seed=seed, **candidate, **split_kw, **passed)
        return out

    try:
        chosen, record = select_parameters(da, run, candidates, start, noise=model, dose=dose, sigma=sigma,
                                           seed=seed)
    except IonscopeError as exc:
        return start, {"criterion": f"none: {exc}; the defaults {AUTO_START} were used", "chosen": start}
    return chosen, record


__all__ = ["METHODS", "OPTIONS", "AUTO_CANDIDATES", "AUTO_START", "denoise"]
