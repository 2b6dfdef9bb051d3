r"""Classical denoisers behind the sparse engine's API: the baselines it is measured against.

Every baseline works like :func:`~ionscope.denoise.sparse_denoise`: Poisson data (counts
``= value * dose``) are variance-stabilised with the same Anscombe transform and brought back
with the same exact unbiased inverse (:mod:`ionscope.denoise.noise`); Gaussian data are
processed as they are. The noise level ``sigma`` in that domain comes from the same rule as the
sparse engine (1 after the Anscombe transform, else the robust MAD estimate of the finest
wavelet band; an explicit ``sigma`` overrides it), and each baseline's smoothing strength
follows from ``sigma`` by a stated rule - never from the ground truth:

========== ============================================================ ==========================
method     kernel                                                       strength from sigma
========== ============================================================ ==========================
pca        truncated SVD of the mean-centred ``(time, pixels)`` matrix  Gavish-Donoho optimal hard
           (``mode="time"``) or PCA of ``p x p`` patches                threshold (known sigma),
           (``mode="patches"``)                                         in both modes
gaussian   Gaussian filter in (y, x) per frame                          width minimising SURE
gaussian3d Gaussian filter in (time, y, x)                              widths minimising SURE
nlmeans    :func:`skimage.restoration.denoise_nl_means` per frame       ``h = 0.8 sigma`` (fast
                                                                        mode; scikit-image's rule)
tv         :func:`skimage.restoration.denoise_tv_chambolle` per frame   weight from the
                                                                        discrepancy principle
                                                                        ``mean (y - u)^2 = sigma^2``
                                                                        (the constrained ROF model)
bm3d       ``bm3d.bm3d`` per frame (optional ``bm3d`` package)          ``sigma_psd = sigma``
========== ============================================================ ==========================

SURE (Stein's unbiased risk estimate) of a linear filter ``H`` on data with white noise of
std sigma is ``||y - H y||^2 - N sigma^2 + 2 sigma^2 tr(H)``; it estimates the squared error
against the (unknown) truth without seeing it, and the width on a fixed grid that minimises it
is used. On a flat field SURE keeps falling with the width, so flat data stay flat.

The numpy kernels (``*_stack``, the kernel naming of :mod:`ionscope.denoise`) take an array
``(n_frames, ny, nx)`` in the stabilised domain and ``sigma``; the wrappers (``*_denoise``) take
labelled arrays, run the kernel through :func:`~ionscope.denoise.stabilise.run_stabilised` (the
path :func:`~ionscope.denoise.sparse_denoise` takes too) and return
``(DataArray "denoised", info)`` with the input's dims, coords, units and attrs and one
provenance step appended.

References
----------
M. Gavish and D. L. Donoho, "The optimal hard threshold for singular values is 4/sqrt(3)",
IEEE Trans. Inf. Theory 60, 5040 (2014).
C. M. Stein, Ann. Stat. 9, 1135 (1981) (SURE).
A. Buades, B. Coll and J.-M. Morel, "A non-local algorithm for image denoising", CVPR (2005);
J. Darbon et al., ISBI (2008) (the fast blockwise variant in scikit-image).
L. I. Rudin, S. Osher and E. Fatemi, Physica D 60, 259 (1992); A. Chambolle, J. Math. Imaging
Vis. 20, 89 (2004).
K. Dabov, A. Foi, V. Katkovnik and K. Egiazarian, IEEE Trans. Image Process. 16, 2080 (2007)
(BM3D); M. Makitalo and A. Foi, IEEE Trans. Image Process. 20, 99 (2011) (Anscombe + BM3D).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import xarray as xr
from scipy import ndimage

from ionscope.denoise.patches import PatchGrid
from ionscope.denoise.stabilise import NOISE_CONSTRAINTS, run_stabilised
from ionscope.errors import ConfigError
from ionscope.validation import Interval, Options, validate_params

#: Baselines provided by this module (``gaussian3d`` is the space-time Gaussian filter).
BASELINES = ("pca", "gaussian", "gaussian3d", "nlmeans", "tv", "tv3d", "bm3d", "bm4d")

STEP_PREFIX = "ionscope.denoise.baselines."

#: scikit-image's rule for non-local means with a known sigma in fast mode: h = 0.8 sigma.
NLMEANS_H_FACTOR = 0.8

_BM3D_MISSING = (
    "method 'bm3d' needs the optional 'bm3d' package (pip install bm3d), which is not "
    "installed; use another method (sparse, sparse3d, pca, gaussian, gaussian3d, nlmeans, tv)"
)
_BM4D_MISSING = (
    "method 'bm4d' needs the optional 'bm4d' package (pip install 'ionscope[bm4d]'), which is not "
    "installed; use another method (sparse3d, gaussian3d, tv3d, ...)"
)


# --------------------------------------------------------------------------- kernels: PCA


def gavish_donoho_threshold(shape: Sequence[int], sigma: float) -> float:
    """Optimal hard threshold for the singular values of a matrix with white noise of known std.

    ``tau = lambda(beta) sqrt(n) sigma`` for an ``m x n`` matrix (``m <= n``, ``beta = m/n``),
    ``lambda(beta) = sqrt(2 (beta + 1) + 8 beta / (beta + 1 + sqrt(beta^2 + 14 beta + 1)))``
    (Gavish & Donoho 2014); ``lambda(1) = 4/sqrt(3)``.

    Examples
    --------
    >>> round(gavish_donoho_threshold((100, 100), 1.0) / 10, 4) == round(4 / 3 ** 0.5, 4)
    True
    """
    m, n = sorted(int(s) for s in shape)
    beta = m / n
    lam = np.sqrt(2 * (beta + 1) + 8 * beta / (beta + 1 + np.sqrt(beta * beta + 14 * beta + 1)))
    return float(lam * np.sqrt(n) * sigma)


def pca_stack(
    stack: np.ndarray,
    sigma: float,
    *,
    mode: str = "time",
    patch: int = 8,
    rank: int | None = None,
    max_patches: int = 65536,
) -> tuple[np.ndarray, dict[str, Any]]:
    """PCA truncation of a map series with white Gaussian noise of std ``sigma``.

    Parameters
    ----------
    stack : ndarray, shape (n_frames, ny, nx)
    sigma : float
        Noise std (> 0).
    mode : {"time", "patches"}
        ``"time"``: the ``(n_frames, ny * nx)`` matrix minus its mean map, truncated SVD with
        the Gavish-Donoho threshold (needs >= 2 frames). ``"patches"``: all ``patch x patch``
        patches of every frame minus their means, projected on the principal components whose
        singular value in the ``(n_patches, n_features)`` matrix exceeds the same threshold
        (for many patches: covariance eigenvalue > ``2 sigma^2``); overlapping patches are
        averaged.
    patch : int
        Patch side for ``mode="patches"``.
    rank : int, optional
        Keep exactly this many components instead of the noise criterion.
    max_patches : int
        Patches per chunk (``mode="patches"``; bounds memory).

    Returns
    -------
    denoised : ndarray (float64), info : dict
        ``rank``, ``threshold`` and ``spectrum`` (singular values, ``mode="time"``, or
        covariance eigenvalues, ``mode="patches"``; largest first, at most 64).
    """
    stack = np.asarray(stack, dtype=np.float64)
    if mode == "time":
        n_t = stack.shape[0]
        if n_t < 2:
            raise ConfigError("PCA over time needs at least 2 frames; use mode='patches'")
        Y = stack.reshape(n_t, -1)
        mean = Y.mean(axis=0)
        U, s, Vt = np.linalg.svd(Y - mean, full_matrices=False)
        # centring removes one degree of freedom along time
        threshold = gavish_donoho_threshold((n_t - 1, Y.shape[1]), sigma)
        r = int(np.count_nonzero(s > threshold)) if rank is None else min(int(rank), s.size)
        out = mean + (U[:, :r] * s[:r]) @ Vt[:r]
        return out.reshape(stack.shape), {
            "rank": r, "threshold": threshold, "spectrum": s[:64].tolist(),
            "criterion": "Gavish-Donoho optimal hard threshold (known sigma)"
            if rank is None else "fixed rank",
        }
    if mode != "patches":
        raise ConfigError(f"PCA mode must be 'time' or 'patches', got {mode!r}")
    grid = PatchGrid.from_shape(stack.shape, (1, patch, patch))
    n_f = grid.n_features
    chunks = grid.chunks(max_patches)
    cov = np.zeros((n_f, n_f))
    for rows in chunks:
        X = grid.extract(stack, rows)
        X -= X.mean(axis=1, keepdims=True)
        cov += X.T @ X
    cov /= grid.n_patches
    evals, evecs = np.linalg.eigh(cov)
    evals, evecs = evals[::-1], evecs[:, ::-1]
    # singular values of the (n_patches, n_features) matrix are sqrt(n_patches * eigenvalue);
    # centring each patch removes one feature dimension
    threshold = gavish_donoho_threshold((grid.n_patches, n_f - 1), sigma)
    edge = threshold**2 / grid.n_patches
    r = int(np.count_nonzero(evals > edge)) if rank is None else min(int(rank), n_f)
    V = evecs[:, :r]
    num = np.zeros(stack.shape)
    for rows in chunks:
        X = grid.extract(stack, rows)
        means = X.mean(axis=1, keepdims=True)
        X -= means
        grid.accumulate(means + (X @ V) @ V.T, num, rows)
    out = num / grid.coverage()
    return out, {
        "rank": r, "threshold": float(edge), "spectrum": evals[:64].tolist(),
        "criterion": "Gavish-Donoho optimal hard threshold of the patch matrix (known sigma)"
        if rank is None else "fixed rank",
    }


# --------------------------------------------------------------------------- kernels: Gaussian


def _filter_trace(size: int, width: float) -> float:
    """Trace of the 1-D Gaussian filter matrix (reflecting borders) on ``size`` samples."""
    if width <= 0:
        return float(size)
    eye = np.eye(size)
    return float(np.trace(ndimage.gaussian_filter1d(eye, width, axis=0, mode="reflect")))


def _gaussian(stack: np.ndarray, widths: tuple[float, float, float]) -> np.ndarray:
    if not any(widths):
        return stack.copy()
    return ndimage.gaussian_filter(stack, widths, mode="reflect")


def sure_gaussian(stack: np.ndarray, sigma: float, widths: tuple[float, float, float]) -> float:
    """SURE of the Gaussian filter with std ``widths`` (frames, px, px): an unbiased estimate of
    ``sum (H y - truth)^2`` for white noise of std ``sigma``."""
    filt = _gaussian(stack, widths)
    trace = np.prod([_filter_trace(n, w) for n, w in zip(stack.shape, widths)])
    return float(np.sum((stack - filt) ** 2) - stack.size * sigma**2 + 2 * sigma**2 * trace)


def _width_grid(size: int, lo: float, n: int) -> np.ndarray:
    hi = max(size / 4.0, lo)
    return np.concatenate([[0.0], np.geomspace(lo, hi, n)])


def gaussian_stack(
    stack: np.ndarray,
    sigma: float,
    *,
    space_time: bool = False,
    width: float | None = None,
    time_width: float | None = None,
    n_widths: int = 16,
) -> tuple[np.ndarray, dict[str, Any]]:
    """Gaussian smoothing with SURE-chosen widths.

    Parameters
    ----------
    stack : ndarray, shape (n_frames, ny, nx)
    sigma : float
        Noise std (> 0).
    space_time : bool
        Also smooth along time (frames); the two widths are chosen by coordinate descent of
        SURE on the grid (space, then time, repeated until the time width settles).
    width, time_width : float, optional
        Fixed Gaussian std in pixels / frames instead of the SURE choice.
    n_widths : int
        Candidate widths per axis: 0 and ``n_widths`` geometric steps from 0.3 to a quarter
        of the axis length (the time grid has half as many).

    Returns
    -------
    denoised : ndarray (float64), info : dict
        ``width_px``, ``time_width_frames``, ``rule`` and ``sure`` (per pixel, of the choice).
    """
    stack = np.asarray(stack, dtype=np.float64)
    n_t, ny, nx = stack.shape
    spaces = _width_grid(min(ny, nx), 0.3, n_widths) if width is None else [float(width)]
    if space_time:
        times = (_width_grid(n_t, 0.3, max(n_widths // 2, 1)) if time_width is None
                 else [float(time_width)])
    else:
        times = [0.0]
    cache: dict[tuple[float, float], float] = {}

    def risk_of(sw: float, tw: float) -> float:
        if (sw, tw) not in cache:
            cache[(sw, tw)] = sure_gaussian(stack, sigma, (tw, sw, sw))
        return cache[(sw, tw)]

    # coordinate descent on the grid: space with time fixed, then time with space fixed, ...
    sw, tw = spaces[0], times[0]
    for _ in range(4):
        sw = min(spaces, key=lambda w: risk_of(w, tw))
        new_tw = min(times, key=lambda w: risk_of(sw, w))
        if new_tw == tw:
            break
        tw = new_tw
    risk = risk_of(sw, tw)
    chosen_by_sure = (width is None) or (space_time and time_width is None)
    return _gaussian(stack, (tw, sw, sw)), {
        "width_px": float(sw), "time_width_frames": float(tw),
        "rule": "minimum SURE over a width grid" if chosen_by_sure else "fixed width",
        "sure_per_pixel": risk / stack.size,
    }


# --------------------------------------------------------------------------- kernels: NLM, TV, BM3D


def nlmeans_stack(
    stack: np.ndarray,
    sigma: float,
    *,
    h_factor: float = NLMEANS_H_FACTOR,
    patch_size: int = 5,
    patch_distance: int = 6,
    fast_mode: bool = True,
) -> tuple[np.ndarray, dict[str, Any]]:
    """Non-local means of every frame (:func:`skimage.restoration.denoise_nl_means`).

    ``h = h_factor * sigma`` with ``sigma`` passed to scikit-image (which then subtracts the
    expected noise distance between patches); ``h_factor = 0.8`` is scikit-image's
    recommendation for ``fast_mode=True`` with a known sigma (0.6 for the slow mode).
    """
    from skimage.restoration import denoise_nl_means

    stack = np.asarray(stack, dtype=np.float64)
    h = float(h_factor) * sigma
    out = np.empty_like(stack)
    for i, frame in enumerate(stack):
        out[i] = denoise_nl_means(frame, h=h, sigma=sigma, patch_size=int(patch_size),
                                  patch_distance=int(patch_distance), fast_mode=bool(fast_mode))
    return out, {"h": h, "h_factor": float(h_factor), "patch_size": int(patch_size),
                 "patch_distance": int(patch_distance), "fast_mode": bool(fast_mode),
                 "rule": f"h = {h_factor:g} sigma (scikit-image's fast-mode recommendation)"}


def _tv_frames(stack: np.ndarray, weight: float, max_num_iter: int, space_time: bool = False) -> np.ndarray:
    """ROF of every frame (``channel_axis=0``), or of the whole (time, y, x) volume."""
    from skimage.restoration import denoise_tv_chambolle

    return denoise_tv_chambolle(stack, weight=weight, max_num_iter=max_num_iter,
                                channel_axis=None if space_time else 0)


def tv_stack(
    stack: np.ndarray,
    sigma: float,
    *,
    weight: float | None = None,
    discrepancy: float = 1.0,
    max_num_iter: int = 200,
    bisection_steps: int = 10,
    max_fit_frames: int = 32,
    space_time: bool = False,
) -> tuple[np.ndarray, dict[str, Any]]:
    """Total-variation (ROF) denoising of every frame (2-D), or of the whole (time, y, x) volume
    (``space_time``, 3-D), one weight for the whole series.

    The weight of :func:`skimage.restoration.denoise_tv_chambolle` is chosen by the
    discrepancy principle - the constrained form of the ROF model - so that the mean squared
    residual equals ``discrepancy * sigma^2`` (log-bisection on ``[0.01, 100] sigma``, on at
    most ``max_fit_frames`` frames: evenly spaced for 2-D, the middle block for 3-D; then one
    run on all frames). When even the largest weight leaves less residual (flat data), the
    largest weight is used.
    """
    stack = np.asarray(stack, dtype=np.float64)
    target = float(discrepancy) * sigma**2
    if weight is not None:
        out = _tv_frames(stack, float(weight), max_num_iter, space_time)
        return out, {"weight": float(weight), "rule": "fixed weight",
                     "residual_var": float(np.mean((stack - out) ** 2))}
    n_t = stack.shape[0]
    n_fit = min(n_t, int(max_fit_frames))
    if space_time:
        fit = stack[(n_t - n_fit) // 2:(n_t - n_fit) // 2 + n_fit]
    else:
        fit = stack[np.unique(np.linspace(0, n_t - 1, n_fit).round().astype(int))]

    def residual(w: float) -> float:
        return float(np.mean((fit - _tv_frames(fit, w, max_num_iter, space_time)) ** 2))

    lo, hi = np.log(0.01 * sigma), np.log(100.0 * sigma)
    if residual(float(np.exp(hi))) <= target:
        w = float(np.exp(hi))
    else:
        for _ in range(int(bisection_steps)):
            mid = 0.5 * (lo + hi)
            if residual(float(np.exp(mid))) > target:
                hi = mid
            else:
                lo = mid
        w = float(np.exp(lo))
    out = _tv_frames(stack, w, max_num_iter, space_time)
    return out, {"weight": w, "rule": f"discrepancy principle: mean residual^2 = "
                 f"{discrepancy:g} sigma^2", "residual_var": float(np.mean((stack - out) ** 2))}


def _import_optional(name: str):
    """The optional package ``name`` (``bm3d``, ``bm4d``), or the ConfigError saying how to get it."""
    import importlib

    try:
        return importlib.import_module(name)
    except ImportError as exc:
        raise ConfigError({"bm3d": _BM3D_MISSING, "bm4d": _BM4D_MISSING}[name]) from exc


def _available(name: str) -> bool:
    try:
        _import_optional(name)
    except ConfigError:
        return False
    return True


def bm3d_stack(stack: np.ndarray, sigma: float, **options: Any) -> tuple[np.ndarray, dict[str, Any]]:
    """BM3D of every frame with ``sigma_psd = sigma`` (needs the optional ``bm3d`` package)."""
    bm3d = _import_optional("bm3d")
    stack = np.asarray(stack, dtype=np.float64)
    out = np.stack([np.asarray(bm3d.bm3d(frame, sigma_psd=sigma, **options), dtype=np.float64)
                    for frame in stack])
    return out, {"sigma_psd": sigma, "rule": "sigma_psd = sigma",
                 "bm3d_version": getattr(bm3d, "__version__", "unknown")}



def bm4d_stack(stack: np.ndarray, sigma: float, **options: Any) -> tuple[np.ndarray, dict[str, Any]]:
    """BM4D of the (time, y, x) volume with ``sigma_psd = sigma`` (Maggioni et al. 2013; the
    optional ``bm4d`` package): blocks grouped non-locally in space and time, collaborative
    hard thresholding, then Wiener filtering."""
    bm4d = _import_optional("bm4d")
    stack = np.asarray(stack, dtype=np.float64)
    if stack.shape[0] < 4 or min(stack.shape[1:]) < 8:
        raise ConfigError(f"method 'bm4d' needs at least 4 frames of 8 x 8 pixels (its blocks), got "
                          f"{stack.shape[0]} of {stack.shape[1]} x {stack.shape[2]}")
    out = np.asarray(bm4d.bm4d(stack.astype(np.float32), sigma_psd=sigma, **options), dtype=np.float64)
    from importlib.metadata import version

    return out, {"sigma_psd": sigma, "rule": "sigma_psd = sigma", "bm4d_version": version("bm4d")}


# --------------------------------------------------------------------------- wrappers


@validate_params({
    "mode": [Options(("time", "patches")), None],
    "patch": [Interval(int, 1, None, unit="px")],
    "rank": [Interval(int, 0, None), None],
    **NOISE_CONSTRAINTS,
})
def pca_denoise(
    da: xr.DataArray,
    *,
    mode: str | None = None,
    patch: int = 8,
    rank: int | None = None,
    noise: str = "auto",
    dose: float | None = None,
    sigma: float | None = None,
    gain: float = 1.0,
    read_noise: float = 0.0,
) -> tuple[xr.DataArray, dict[str, Any]]:
    """PCA truncation of a map series (see :func:`pca_stack`).

    Computes: loads the input.

    ``mode`` defaults to ``"time"`` for a series with >= 2 frames and ``"patches"`` for a
    single map. The noise arguments are those of :func:`~ionscope.denoise.sparse_denoise`.

    Examples
    --------
    >>> import numpy as np
    >>> from ionscope.data import signal
    >>> rng = np.random.default_rng(0)
    >>> truth = np.outer(np.linspace(0.2, 1.0, 20), np.ones(16 * 16)).reshape(20, 16, 16)
    >>> da = signal(rng.poisson(50 * truth) / 50, ("time", "y", "x"), name="x", units="1")
    >>> out, info = pca_denoise(da, noise="poisson", dose=50)
    >>> info["rank"], bool(np.abs(out - truth).mean() < np.abs(da - truth).mean())
    (1, True)
    """
    if mode is None:
        mode = "time" if ("time" in da.dims and da.sizes.get("time", 0) >= 2) else "patches"
    params = {"mode": mode, "rank": rank}
    if mode == "patches":
        params["patch"] = int(patch)
    return run_stabilised(da, "pca", pca_stack, params, noise=noise, dose=dose, sigma=sigma,
                          gain=gain, read_noise=read_noise, needs_series=(mode == "time"),
                          min_size=max(4, int(patch) if mode == "patches" else 4))


@validate_params({
    "space_time": [bool],
    "width": [Interval(float, 0, None, unit="px"), None],
    "time_width": [Interval(float, 0, None, unit="frames"), None],
    **NOISE_CONSTRAINTS,
})
def gaussian_denoise(
    da: xr.DataArray,
    *,
    space_time: bool = False,
    width: float | None = None,
    time_width: float | None = None,
    noise: str = "auto",
    dose: float | None = None,
    sigma: float | None = None,
    gain: float = 1.0,
    read_noise: float = 0.0,
) -> tuple[xr.DataArray, dict[str, Any]]:
    """Gaussian smoothing in space (or space-time) with SURE-chosen widths (see
    :func:`gaussian_stack`); ``width`` in pixels, ``time_width`` in frames.

    Computes: loads the input.
    """
    method = "gaussian3d" if space_time else "gaussian"
    params = {"space_time": bool(space_time), "width": width, "time_width": time_width}
    return run_stabilised(da, method, gaussian_stack, params, noise=noise, dose=dose,
                          sigma=sigma, gain=gain, read_noise=read_noise,
                          needs_series=bool(space_time))


@validate_params({
    "h_factor": [Interval(float, 0, None, closed="neither")],
    "patch_size": [Interval(int, 1, None, unit="px")],
    "patch_distance": [Interval(int, 1, None, unit="px")],
    "fast_mode": [bool],
    **NOISE_CONSTRAINTS,
})
def nlmeans_denoise(
    da: xr.DataArray,
    *,
    h_factor: float = NLMEANS_H_FACTOR,
    patch_size: int = 5,
    patch_distance: int = 6,
    fast_mode: bool = True,
    noise: str = "auto",
    dose: float | None = None,
    sigma: float | None = None,
    gain: float = 1.0,
    read_noise: float = 0.0,
) -> tuple[xr.DataArray, dict[str, Any]]:
    """Non-local means of every frame with ``h = h_factor * sigma`` (see :func:`nlmeans_stack`).

    Computes: loads the input.
    """
    params = {"h_factor": float(h_factor), "patch_size": int(patch_size),
              "patch_distance": int(patch_distance), "fast_mode": bool(fast_mode)}
    return run_stabilised(da, "nlmeans", nlmeans_stack, params, noise=noise, dose=dose,
                          sigma=sigma, gain=gain, read_noise=read_noise,
                          min_size=max(4, int(patch_size)))


@validate_params({
    "weight": [Interval(float, 0, None, closed="neither"), None],
    "discrepancy": [Interval(float, 0, None, closed="neither")],
    "max_num_iter": [Interval(int, 1, None)],
    **NOISE_CONSTRAINTS,
})
def tv_denoise(
    da: xr.DataArray,
    *,
    space_time: bool = False,
    weight: float | None = None,
    discrepancy: float = 1.0,
    max_num_iter: int = 200,
    noise: str = "auto",
    dose: float | None = None,
    sigma: float | None = None,
    gain: float = 1.0,
    read_noise: float = 0.0,
) -> tuple[xr.DataArray, dict[str, Any]]:
    """Total-variation (ROF, Chambolle) denoising of every frame, or of the (time, y, x) volume
    with ``space_time`` (method ``tv3d``); weight from the discrepancy principle unless given
    (see :func:`tv_stack`).

    Computes: loads the input.
    """
    params = {"weight": weight, "discrepancy": float(discrepancy),
              "max_num_iter": int(max_num_iter), "space_time": bool(space_time)}
    return run_stabilised(da, "tv3d" if space_time else "tv", tv_stack, params, noise=noise, dose=dose,
                          sigma=sigma, gain=gain, read_noise=read_noise, needs_series=bool(space_time))


@validate_params(NOISE_CONSTRAINTS)
def bm3d_denoise(
    da: xr.DataArray,
    *,
    noise: str = "auto",
    dose: float | None = None,
    sigma: float | None = None,
    gain: float = 1.0,
    read_noise: float = 0.0,
    **options: Any,
) -> tuple[xr.DataArray, dict[str, Any]]:
    """BM3D of every frame (optional ``bm3d`` package; :class:`ConfigError` when missing).

    Extra keyword ``options`` go to ``bm3d.bm3d`` (e.g. ``profile``).

    Computes: loads the input.
    """
    _import_optional("bm3d")
    return run_stabilised(da, "bm3d", bm3d_stack, dict(options), noise=noise, dose=dose,
                          sigma=sigma, gain=gain, read_noise=read_noise)


@validate_params(NOISE_CONSTRAINTS)
def bm4d_denoise(
    da: xr.DataArray,
    *,
    noise: str = "auto",
    dose: float | None = None,
    sigma: float | None = None,
    gain: float = 1.0,
    read_noise: float = 0.0,
    **options: Any,
) -> tuple[xr.DataArray, dict[str, Any]]:
    """BM4D of the (time, y, x) series (optional ``bm4d`` package; :class:`ConfigError` when
    missing). Extra keyword ``options`` go to ``bm4d.bm4d`` (e.g. ``profile``).

    Computes: loads the input.
    """
    _import_optional("bm4d")
    return run_stabilised(da, "bm4d", bm4d_stack, dict(options), noise=noise, dose=dose,
                          sigma=sigma, gain=gain, read_noise=read_noise, needs_series=True)


def bm4d_available() -> bool:
    """True when the optional ``bm4d`` package can be imported."""
    return _available("bm4d")


def bm3d_available() -> bool:
    """True when the optional ``bm3d`` package can be imported."""
    return _available("bm3d")


__all__ = [
    "BASELINES",
    "NLMEANS_H_FACTOR",
    "gavish_donoho_threshold",
    "pca_stack",
    "sure_gaussian",
    "gaussian_stack",
    "nlmeans_stack",
    "tv_stack",
    "bm3d_stack",
    "run_stabilised",  # defined in ionscope.denoise.stabilise
    "pca_denoise",
    "gaussian_denoise",
    "nlmeans_denoise",
    "tv_denoise",
    "bm3d_denoise",
    "bm3d_available",
    "bm4d_stack",
    "bm4d_denoise",
    "bm4d_available",
]
