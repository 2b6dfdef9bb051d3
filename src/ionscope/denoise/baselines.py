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

A dask-backed series gives a dask-backed result (issue 19) for ``pca``, ``gaussian``,
``gaussian3d``, ``nlmeans``, ``tv`` and ``bm3d``: the per-frame methods run block by block in time
(``map_blocks``), ``gaussian3d`` with the filter's truncation radius of overlap in time (the
``map_overlap`` pattern), all with the in-memory values for the same strength. What is chosen
from the data is decided as in memory, on a stated sample where memory uses the whole series:
the SURE widths on the middle :data:`~ionscope.denoise.stabilise.SAMPLE_FRAMES` frames
(``info["sample_frames"]``), the TV weight on the same evenly spaced frames as in memory, the
MAD sigma (hence the nlmeans ``h``) on the middle frames
(:func:`~ionscope.denoise.stabilise.run_stabilised`). ``pca`` sums its Gram matrix (or patch
covariance) in one computed pass over blocks and projects block by block, lazily
(:mod:`ionscope.denoise.pca`). ``tv3d`` and
``bm4d`` are global over the series (an iterative 3-D ROF problem, an external library taking
the whole volume): their dask result is one task that holds the whole series.

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

from typing import Any

import numpy as np
import xarray as xr
from scipy import ndimage

from ionscope.denoise.pca import gavish_donoho_threshold, pca_stack  # noqa: F401 - re-exported
from ionscope.denoise.stabilise import NOISE_CONSTRAINTS, middle_frames, run_stabilised
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
        ``width_px``, ``time_width_frames``, ``rule`` and ``sure_per_pixel`` (of the choice).

    Notes
    -----
    A dask ``stack`` gives a dask result: widths left to SURE are chosen on the middle
    :data:`~ionscope.denoise.stabilise.SAMPLE_FRAMES` frames (one compute;
    ``info["sample_frames"]``, ``info["sample_sure_per_pixel"]``), and the filter runs block by
    block in time with its truncation radius (:func:`gaussian_radius` of the time width) of
    overlap - the in-memory values for the same widths. ``sure_per_pixel`` is then a dask scalar
    of the whole series, summed by the tasks that filter it.
    """
    if _is_dask(stack):
        return _gaussian_lazy(stack, sigma, space_time=space_time, width=width, time_width=time_width,
                              n_widths=n_widths)
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
    recommendation for ``fast_mode=True`` with a known sigma (0.6 for the slow mode). A dask
    ``stack`` gives a dask result, frame by frame (nothing is chosen from the data).
    """
    h = float(h_factor) * sigma
    options = {"h": h, "sigma": sigma, "patch_size": int(patch_size),
               "patch_distance": int(patch_distance), "fast_mode": bool(fast_mode)}
    if _is_dask(stack):
        out = _frame_blocks(stack).map_blocks(_nlmeans_frames, options, dtype=np.float64)
    else:
        out = _nlmeans_frames(stack, options)
    return out, {"h": h, "h_factor": float(h_factor), "patch_size": int(patch_size),
                 "patch_distance": int(patch_distance), "fast_mode": bool(fast_mode),
                 "rule": f"h = {h_factor:g} sigma (scikit-image's fast-mode recommendation)"}


def _nlmeans_frames(stack: np.ndarray, options: dict[str, Any]) -> np.ndarray:
    """:func:`skimage.restoration.denoise_nl_means` of every frame of a ``(n, ny, nx)`` block."""
    from skimage.restoration import denoise_nl_means

    stack = np.asarray(stack, dtype=np.float64)
    out = np.empty_like(stack)
    for i, frame in enumerate(stack):
        out[i] = denoise_nl_means(frame, **options)
    return out


def _tv_frames(stack: np.ndarray, weight: float, max_num_iter: int, space_time: bool = False) -> np.ndarray:
    """ROF of every frame (``channel_axis=0``), or of the whole (time, y, x) volume."""
    from skimage.restoration import denoise_tv_chambolle

    return denoise_tv_chambolle(stack, weight=weight, max_num_iter=max_num_iter,
                                channel_axis=None if space_time else 0)


def _tv_weight(fit: np.ndarray, sigma: float, target: float, max_num_iter: int, bisection_steps: int,
               space_time: bool) -> float:
    """The ROF weight whose mean squared residual on the frames ``fit`` is ``target``
    (log-bisection on ``[0.01, 100] sigma``; the largest weight when even it leaves less)."""

    def residual(w: float) -> float:
        return float(np.mean((fit - _tv_frames(fit, w, max_num_iter, space_time)) ** 2))

    lo, hi = np.log(0.01 * sigma), np.log(100.0 * sigma)
    if residual(float(np.exp(hi))) <= target:
        return float(np.exp(hi))
    for _ in range(int(bisection_steps)):
        mid = 0.5 * (lo + hi)
        if residual(float(np.exp(mid))) > target:
            hi = mid
        else:
            lo = mid
    return float(np.exp(lo))


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

    A dask ``stack`` gives a dask result: the weight is fitted on the same frames as in memory
    (one compute of them), then every block of frames is denoised with it (2-D), or the whole
    volume in one task (3-D: the ROF model couples all frames, so that task holds the series) -
    the in-memory values - and ``residual_var`` is a dask scalar summed by the same tasks.
    """
    target = float(discrepancy) * sigma**2
    n_t = stack.shape[0]
    n_fit = min(n_t, int(max_fit_frames))
    if _is_dask(stack) and space_time:
        if weight is None:
            first = (n_t - n_fit) // 2
            fit = np.asarray(stack[first:first + n_fit].compute(), dtype=np.float64)
            w = _tv_weight(fit, sigma, target, max_num_iter, bisection_steps, True)
        else:
            w = float(weight)
        out, total = _whole_volume(stack, lambda volume: _tv_frames(volume, w, max_num_iter, True))
        return out, {"weight": w, "rule": "fixed weight" if weight is not None else
                     f"discrepancy principle: mean residual^2 = {discrepancy:g} sigma^2",
                     "residual_var": total / float(np.prod(stack.shape))}
    if _is_dask(stack):
        if weight is None:
            picks = np.unique(np.linspace(0, n_t - 1, n_fit).round().astype(int))
            fit = np.asarray(stack[picks].compute(), dtype=np.float64)
            w = _tv_weight(fit, sigma, target, max_num_iter, bisection_steps, False)
        else:
            w = float(weight)
        out, total = _filter_blocks(stack, lambda block: _tv_frames(block, w, max_num_iter), 0)
        return out, {"weight": w, "rule": "fixed weight" if weight is not None else
                     f"discrepancy principle: mean residual^2 = {discrepancy:g} sigma^2",
                     "residual_var": total / float(np.prod(stack.shape))}
    stack = np.asarray(stack, dtype=np.float64)
    if weight is not None:
        out = _tv_frames(stack, float(weight), max_num_iter, space_time)
        return out, {"weight": float(weight), "rule": "fixed weight",
                     "residual_var": float(np.mean((stack - out) ** 2))}
    if space_time:
        fit = stack[(n_t - n_fit) // 2:(n_t - n_fit) // 2 + n_fit]
    else:
        fit = stack[np.unique(np.linspace(0, n_t - 1, n_fit).round().astype(int))]
    w = _tv_weight(fit, sigma, target, max_num_iter, bisection_steps, space_time)
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
    """BM3D of every frame with ``sigma_psd = sigma`` (needs the optional ``bm3d`` package); a
    dask ``stack`` gives a dask result, frame by frame."""
    bm3d = _import_optional("bm3d")
    if _is_dask(stack):
        out = _frame_blocks(stack).map_blocks(_bm3d_frames, sigma, options, dtype=np.float64)
    else:
        out = _bm3d_frames(stack, sigma, options)
    return out, {"sigma_psd": sigma, "rule": "sigma_psd = sigma",
                 "bm3d_version": getattr(bm3d, "__version__", "unknown")}


def _bm3d_frames(stack: np.ndarray, sigma: float, options: dict[str, Any]) -> np.ndarray:
    """``bm3d.bm3d`` of every frame of a ``(n, ny, nx)`` block."""
    bm3d = _import_optional("bm3d")
    return np.stack([np.asarray(bm3d.bm3d(frame, sigma_psd=sigma, **options), dtype=np.float64)
                     for frame in np.asarray(stack, dtype=np.float64)])


def bm4d_stack(stack: np.ndarray, sigma: float, **options: Any) -> tuple[np.ndarray, dict[str, Any]]:
    """BM4D of the (time, y, x) volume with ``sigma_psd = sigma`` (Maggioni et al. 2013; the
    optional ``bm4d`` package): blocks grouped non-locally in space and time, collaborative
    hard thresholding, then Wiener filtering. A dask ``stack`` gives a dask result computed in
    one task (the library takes the whole volume)."""
    from importlib.metadata import version

    bm4d = _import_optional("bm4d")
    if stack.shape[0] < 4 or min(stack.shape[1:]) < 8:
        raise ConfigError(f"method 'bm4d' needs at least 4 frames of 8 x 8 pixels (its blocks), got "
                          f"{stack.shape[0]} of {stack.shape[1]} x {stack.shape[2]}")

    def run(volume: np.ndarray) -> np.ndarray:
        return np.asarray(bm4d.bm4d(volume.astype(np.float32), sigma_psd=sigma, **options), dtype=np.float64)

    info = {"sigma_psd": sigma, "rule": "sigma_psd = sigma", "bm4d_version": version("bm4d")}
    if _is_dask(stack):  # one task: the library takes the whole volume
        return _whole_volume(stack, run)[0], info
    return run(np.asarray(stack, dtype=np.float64)), info


# --------------------------------------------------------------------------- lazy (dask) paths

#: scipy's Gaussian truncation (``ndimage.gaussian_filter``'s default ``truncate``): the filter
#: of std ``s`` reaches ``int(TRUNCATE * s + 0.5)`` samples either side.
TRUNCATE = 4.0

#: Frames of a time block of the lazy filters per frame of overlap on one side, and at least
#: (a series held in one long chunk is cut into blocks of about this size, which run in parallel).
BLOCK_FRAMES_PER_OVERLAP = 4
MIN_BLOCK_FRAMES = 16


def _is_dask(array: Any) -> bool:
    return hasattr(array, "dask") and hasattr(array, "chunks")


def gaussian_radius(width: float) -> int:
    """Samples either side that the Gaussian filter of std ``width`` reaches (0 for no filter).

    Examples
    --------
    >>> gaussian_radius(0.0), gaussian_radius(1.0), gaussian_radius(1.2)
    (0, 4, 5)
    """
    return int(TRUNCATE * float(width) + 0.5) if width > 0 else 0


def _frame_blocks(stack, depth: int = 0):
    """A dask stack as float64 blocks of whole frames, cut in time for block-wise filters that need
    ``depth`` frames of each neighbour (:func:`ionscope.blocks.overlap_blocks`)."""
    from ionscope.blocks import overlap_blocks

    stack = stack.astype(np.float64).rechunk({1: -1, 2: -1})
    target = max(BLOCK_FRAMES_PER_OVERLAP * int(depth), MIN_BLOCK_FRAMES)
    return stack.rechunk({0: overlap_blocks(int(stack.shape[0]), int(depth), stack.chunks[0], target=target)})


def _whole_volume(stack, func):
    """``func`` (a filter of the whole ``(n, ny, nx)`` volume) over a dask stack as one task - the
    methods that couple every voxel (3-D ROF, BM4D) - and the sum of the squared residuals as a
    dask scalar of the same task; nothing is computed here."""
    from ionscope.blocks import map_blocks_with_total

    whole = stack.astype(np.float64).rechunk(-1)

    def run(volume: np.ndarray, where: dict) -> tuple[np.ndarray, float]:
        filtered = np.asarray(func(volume), dtype=np.float64)
        return filtered, float(np.sum((volume - filtered) ** 2))

    return map_blocks_with_total(run, whole, chunks=whole.chunks, dtype=np.float64)


def _filter_blocks(stack, func, depth: int):
    """``func`` (a filter of ``(n, ny, nx)`` blocks reaching ``depth`` frames along time) over a dask
    stack block by block, each block with ``depth`` frames of each neighbour (the ``map_overlap``
    pattern: no padding at the series' ends, so the filter's own boundary rule applies there as
    in memory; overlaps trimmed); the filtered stack and the sum of the squared residuals
    ``(stack - filtered)^2`` as a dask scalar, both from the same tasks
    (:func:`ionscope.blocks.map_blocks_with_total`)."""
    from dask.array.overlap import overlap

    from ionscope.blocks import map_blocks_with_total

    blocks = _frame_blocks(stack, depth)
    chunks = blocks.chunks
    if depth and blocks.numblocks[0] > 1:
        blocks = overlap(blocks, depth={0: depth, 1: 0, 2: 0}, boundary={0: "none", 1: "none", 2: "none"})
    else:
        depth = 0

    def run(block: np.ndarray, where: dict) -> tuple[np.ndarray, float]:
        index, count = where["chunk-location"][0], where["num-chunks"][0]
        lo = depth if index > 0 else 0
        hi = block.shape[0] - (depth if index < count - 1 else 0)
        filtered = np.asarray(func(block), dtype=np.float64)[lo:hi]
        return filtered, float(np.sum((block[lo:hi] - filtered) ** 2))

    return map_blocks_with_total(run, blocks, chunks=chunks, dtype=np.float64)


def _gaussian_lazy(stack, sigma: float, *, space_time: bool, width: float | None,
                   time_width: float | None, n_widths: int) -> tuple[Any, dict[str, Any]]:
    """:func:`gaussian_stack` of a dask stack: widths left to SURE chosen on the middle frames
    (one compute of the sample), then the filter block by block in time with its truncation
    radius of overlap; the dask result and the info (``sure_per_pixel`` a dask scalar of the
    whole series)."""
    n_t = int(stack.shape[0])
    info: dict[str, Any] = {}
    if width is None or (space_time and time_width is None):
        frames = middle_frames(n_t)
        sample = np.asarray(stack[frames].compute(), dtype=np.float64)
        _, chosen = gaussian_stack(sample, sigma, space_time=space_time, width=width,
                                   time_width=time_width, n_widths=n_widths)
        sw, tw = chosen["width_px"], chosen["time_width_frames"]
        n_sample = frames.stop - frames.start
        info["rule"] = (f"{chosen['rule']} on the middle {n_sample} frames (a sample of the lazy series: "
                        f"frames {frames.start} to {frames.stop - 1} of {n_t})")
        info["sample_frames"] = [frames.start, frames.stop]
        info["sample_sure_per_pixel"] = chosen["sure_per_pixel"]
    else:
        sw = float(width)
        tw = float(time_width) if space_time and time_width is not None else 0.0
        info["rule"] = "fixed width"
    widths = (tw, sw, sw)
    out, total = _filter_blocks(stack, lambda block: _gaussian(block, widths), gaussian_radius(tw))
    trace = np.prod([_filter_trace(n, w) for n, w in zip(stack.shape, widths)])
    size = float(np.prod(stack.shape))
    sure = (total - size * sigma**2 + 2 * sigma**2 * trace) / size
    return out, {"width_px": float(sw), "time_width_frames": float(tw), **info, "sure_per_pixel": sure}


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

    Computes: of a dask-backed input, one streamed pass for the Gram matrix over time (or the
    patch covariance), a few blocks in memory at a time; the result is dask-backed, projected
    block by block as it is computed - the in-memory values within rounding
    (:mod:`ionscope.denoise.pca`).

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
                          min_size=max(4, int(patch) if mode == "patches" else 4), lazy=True)


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

    Computes: nothing of a dask-backed input but a sample: widths left to SURE are chosen on its
    middle :data:`~ionscope.denoise.stabilise.SAMPLE_FRAMES` frames (one compute; in memory
    they are chosen on the whole series, so for longer series the lazy choice may differ;
    ``info["rule"]`` and ``info["sample_frames"]`` say which frames), plus the noise sample of
    :func:`~ionscope.denoise.stabilise.run_stabilised` (Gaussian data without ``sigma``). The
    result is dask-backed and equals the in-memory one for the same widths: frame by frame, or
    for ``space_time`` block by block in time with the filter's truncation radius
    (``int(4 time_width + 0.5)`` frames) of overlap. ``info["sure_per_pixel"]`` is then a dask
    scalar of the whole series computed by the same tasks
    (:func:`ionscope.compat.compute` it with the result).
    """
    method = "gaussian3d" if space_time else "gaussian"
    params = {"space_time": bool(space_time), "width": width, "time_width": time_width}
    return run_stabilised(da, method, gaussian_stack, params, noise=noise, dose=dose,
                          sigma=sigma, gain=gain, read_noise=read_noise,
                          needs_series=bool(space_time), lazy=True)


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

    Computes: nothing of a dask-backed input (a dask-backed result, frame by frame, equal to the
    in-memory one), but the noise sample of :func:`~ionscope.denoise.stabilise.run_stabilised`
    (Gaussian data without ``sigma``: the MAD sigma, hence ``h``, of the middle frames).
    """
    params = {"h_factor": float(h_factor), "patch_size": int(patch_size),
              "patch_distance": int(patch_distance), "fast_mode": bool(fast_mode)}
    return run_stabilised(da, "nlmeans", nlmeans_stack, params, noise=noise, dose=dose,
                          sigma=sigma, gain=gain, read_noise=read_noise,
                          min_size=max(4, int(patch_size)), lazy=True)


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

    Computes: nothing of a dask-backed input but the frames the weight is fitted on (as in
    memory: the evenly spaced frames, at most 32, for ``tv``; the middle 32 for ``tv3d``; one
    compute, none with ``weight``) and the noise sample of
    :func:`~ionscope.denoise.stabilise.run_stabilised` (Gaussian data without ``sigma``); the
    result is dask-backed and equal to the in-memory one - block by block in time for ``tv``,
    one task holding the whole series for ``tv3d`` (the 3-D ROF model is a global iterative
    problem: every Chambolle step couples all frames) - and ``info["residual_var"]`` a dask
    scalar computed by the same tasks.
    """
    params = {"weight": weight, "discrepancy": float(discrepancy),
              "max_num_iter": int(max_num_iter), "space_time": bool(space_time)}
    return run_stabilised(da, "tv3d" if space_time else "tv", tv_stack, params, noise=noise, dose=dose,
                          sigma=sigma, gain=gain, read_noise=read_noise, needs_series=bool(space_time),
                          lazy=True)


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

    Computes: nothing of a dask-backed input (a dask-backed result, frame by frame, equal to the
    in-memory one), but the noise sample of :func:`~ionscope.denoise.stabilise.run_stabilised`
    (Gaussian data without ``sigma``).
    """
    _import_optional("bm3d")
    return run_stabilised(da, "bm3d", bm3d_stack, dict(options), noise=noise, dose=dose,
                          sigma=sigma, gain=gain, read_noise=read_noise, lazy=True)


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

    Computes: nothing of a dask-backed input but the noise sample of
    :func:`~ionscope.denoise.stabilise.run_stabilised` (Gaussian data without ``sigma``); the
    result is dask-backed, computed in one task that holds the whole series: ``bm4d.bm4d`` is an
    external library that takes the whole (time, y, x) volume as one numpy array (its groups are
    matched across the whole volume).
    """
    _import_optional("bm4d")
    return run_stabilised(da, "bm4d", bm4d_stack, dict(options), noise=noise, dose=dose,
                          sigma=sigma, gain=gain, read_noise=read_noise, needs_series=True, lazy=True)


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
    "gaussian_radius",
    "TRUNCATE",
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
