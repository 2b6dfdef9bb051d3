r"""Sparse-coding (K-SVD) denoising of maps and operando map series.

:func:`denoise_stack` is the numpy kernel; :func:`sparse_denoise` is the wrapper for labelled
arrays (noise model, validation, provenance).

Method (Elad & Aharon 2006, :doc:`/guide/denoising`), on data whose noise is (made) additive white
Gaussian with standard deviation ``sigma``:

1. cut the series into overlapping patches - 2-D ``(p, p)`` patches of every frame, or
   space-time ``(t, p, p)`` patches spanning ``t`` neighbouring frames (an extension of the
   2-D method: it exploits slow dynamics) - and remove each patch's mean;
2. learn a dictionary: overcomplete-DCT start, ``iterations`` K-SVD sweeps on (a random subset
   of) the patches of the noisy data itself or of a separate training series;
3. code every patch with Batch-OMP until ``||y - D a||^2 <= n (C sigma)^2`` (``C = 1.15``,
   ``n`` pixels per patch) or ``sparsity`` atoms; patches that are within the noise get no
   atom (only their mean);
4. average the overlapping reconstructions with the noisy data,
   ``X = (lambda Y + sum R^T (D a + mean)) / (lambda + sum R^T R)``.

Poisson counts are first variance-stabilised with the Anscombe transform (sigma = 1) and
brought back with the exact unbiased inverse (Makitalo & Foi 2011); Poisson-Gaussian data use
the generalised Anscombe transform. The series is coded in chunks of frames, so memory is
bounded by the chunk (``max_patches`` patches), not by the length of the series.

References
----------
M. Elad and M. Aharon, IEEE Trans. Image Process. 15, 3736 (2006).
R. Rubinstein, M. Zibulevsky and M. Elad, Technion CS-2008-08 (2008).
M. Makitalo and A. Foi, IEEE Trans. Image Process. 20, 99 and 2697 (2011); 22, 91 (2013).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import numpy as np
import xarray as xr

from ionscope.denoise.collaborative import collaborative_filter, collaborative_filter_lazy
from ionscope.denoise.dictionary import METHODS, learn_dictionary, overcomplete_dct
from ionscope.denoise.omp import sparse_code
from ionscope.denoise.patches import PatchGrid, remove_patch_mean
from ionscope.denoise.stabilise import NOISE_CONSTRAINTS, NOISE_MODELS, run_stabilised
from ionscope.errors import ConfigError, DimensionError
from ionscope.validation import SEED, Interval, Options, validate_params

STEP = "ionscope.denoise.sparse_denoise"

#: Margin of the OMP stopping rule above the expected noise energy of a patch, in standard
#: deviations of that energy (chi-square with n degrees of freedom: mean n sigma^2, std
#: sqrt(2 n) sigma^2). 1.824 reproduces Elad & Aharon's C = 1.15 for 8 x 8 patches.
NOISE_MARGIN = 1.824


def default_error_factor(n_features: int) -> float:
    """Error gain C of the OMP tolerance ``n (C sigma)^2`` for patches of ``n_features`` pixels.

    ``C^2 = 1 + NOISE_MARGIN sqrt(2 / n)``: the residual may exceed the noise energy by the same
    number of standard deviations whatever the patch size. A fixed C = 1.15 (Elad & Aharon
    2006, tuned on 8 x 8 patches) sits ever more standard deviations above the noise for larger
    (e.g. space-time) patches and stops coding before the signal is captured: on 3 x 8 x 8
    patches C = 1.10, on 5 x 8 x 8 C = 1.07.
    """
    return float(np.sqrt(1.0 + NOISE_MARGIN * np.sqrt(2.0 / max(int(n_features), 1))))


#: Elad & Aharon's error gain C in the OMP tolerance ``n (C sigma)^2`` (8 x 8 patches).
ERROR_FACTOR = round(default_error_factor(64), 3)


#: Default weight lambda of the noisy data in the aggregation, relative to one patch.
#: Elad & Aharon's ``30 / sigma`` is tied to 0-255 grey levels (it is not scale-free); a
#: dimensionless constant is. With ``p^2`` (or ``t p^2``) patches over a pixel, 0.5 leaves the
#: measured value 1-3 % of the weight: a little fidelity to what was measured (features the
#: dictionary cannot represent are not erased entirely) at a small cost in PSNR on smooth
#: maps. On the LiCoO2 twin (64 x 64 x 50 frames, doses 5, 20, 200) lambda = 0 was best;
#: 0.5 cost 0.05-0.25 dB, 2 cost 0.5-1.6 dB and 4 cost 1.5-3.3 dB.
DEFAULT_LAMBDA = 0.5


# --------------------------------------------------------------------------- kernel


def denoise_stack(
    stack: np.ndarray,
    *,
    sigma: float,
    patch_shape: Sequence[int],
    atoms: int = 256,
    sparsity: int = 4,
    iterations: int = 10,
    lam: float | None = None,
    stride: int | Sequence[int] = 1,
    error_factor: float | None = None,
    method: str = "ksvd",
    seed: int = 0,
    train: np.ndarray | None = None,
    dictionary: np.ndarray | None = None,
    max_train: int = 20000,
    max_patches: int = 16384,
    dtype=np.float32,
) -> tuple[np.ndarray, dict[str, Any]]:
    """K-SVD denoising of an array with additive white Gaussian noise of std ``sigma``.

    Parameters
    ----------
    stack : ndarray, shape (n_frames, ny, nx) (or any N-D shape matching ``patch_shape``)
        Noisy data in the coding domain (e.g. after the Anscombe transform).
    sigma : float
        Noise standard deviation in the same units (> 0).
    patch_shape : sequence of int
        Patch shape, e.g. ``(1, 8, 8)`` for 2-D patches of each frame or ``(3, 8, 8)`` for
        space-time patches.
    atoms, sparsity, iterations :
        Dictionary size, largest number of atoms per patch, K-SVD iterations (0: use the
        initial dictionary as it is).
    lam : float, optional
        Weight of the noisy data in the aggregation, relative to one patch
        (:data:`DEFAULT_LAMBDA` when None).
    stride : int or sequence of int
        Patch step per axis.
    error_factor : float, optional
        C in the OMP tolerance ``n (C sigma)^2``; default :func:`default_error_factor` of the
        patch size (1.15 for 8 x 8 patches).
    method : {"ksvd", "approximate-ksvd", "online"}
        Dictionary learner.
    seed : int
        Seed of the training subset and of the learner.
    train : ndarray, optional
        Training data (same domain and noise level) instead of ``stack``.
    dictionary : ndarray, optional
        A ready dictionary ``(atoms, prod(patch_shape))``; skips learning.
    max_train : int
        Largest number of training patches (drawn with ``seed``).
    max_patches : int
        Patches coded per chunk (bounds memory).
    dtype : numpy dtype
        Precision of the mean-removed patches, dictionary and codes (float32 by default);
        patch means and the aggregation stay float64.

    Returns
    -------
    denoised : ndarray
        Same shape as ``stack`` (float64).
    info : dict
        ``dictionary``, ``lambda``, ``tol``, ``n_patches``, ``mean_atoms``, training
        ``training_errors`` and ``n_replaced``, and ``timings_s``.
    """
    t0 = time.perf_counter()
    lazy = _is_dask(stack)
    stack = stack.astype(np.float64) if lazy else np.asarray(stack, dtype=np.float64)
    grid = PatchGrid.from_shape(stack.shape, patch_shape, stride)
    n_features = grid.n_features
    if not (np.isfinite(sigma) and sigma > 0):
        raise ConfigError(f"sigma must be a finite number > 0, got {sigma!r}")
    if error_factor is None:
        error_factor = default_error_factor(n_features)
    tol = n_features * (error_factor * sigma) ** 2
    lam = DEFAULT_LAMBDA if lam is None else float(lam)
    if not (np.isfinite(lam) and lam >= 0):
        raise ConfigError(f"lam must be a finite number >= 0, got {lam!r}")
    info: dict[str, Any] = {"lambda": lam, "tol": tol, "error_factor": float(error_factor),
                            "n_patches": grid.n_patches}

    # 1-2. dictionary
    t1 = time.perf_counter()
    if dictionary is not None:
        D = np.asarray(dictionary, dtype=dtype)
        if D.ndim != 2 or D.shape[1] != n_features:
            raise DimensionError(
                f"dictionary of shape {D.shape} does not fit patches of {tuple(grid.patch_shape)} "
                f"({n_features} pixels); expected (n_atoms, {n_features})"
            )
        info.update(training_errors=[], n_replaced=[])
    else:
        source = stack if train is None else (train.astype(np.float64) if _is_dask(train)
                                               else np.asarray(train, dtype=np.float64))
        tgrid = grid if train is None else PatchGrid.from_shape(source.shape, patch_shape, stride)
        rng = np.random.default_rng(seed)
        n_train = min(int(max_train), tgrid.n_patches)
        pick = np.sort(rng.choice(tgrid.n_patches, size=n_train, replace=False))
        patches, _ = remove_patch_mean(sample_patches(source, tgrid, pick))
        patches = patches.astype(dtype, copy=False)
        initial = overcomplete_dct(grid.patch_shape, atoms, dtype=dtype)
        if iterations > 0:
            result = learn_dictionary(
                patches, initial=initial, method=method, n_nonzero=sparsity, tol=tol,
                iterations=iterations, max_signals=None, seed=int(rng.integers(2**31)),
            )
            D = result.dictionary.astype(dtype, copy=False)
            info.update(training_errors=result.errors, n_replaced=result.n_replaced)
        else:
            D = initial
            info.update(training_errors=[], n_replaced=[])
    info["dictionary"] = D

    # 3-4. code all patches block by block and aggregate
    t2 = time.perf_counter()
    code = {"dictionary": D, "patch_shape": grid.patch_shape, "stride": stride, "sparsity": sparsity,
            "tol": tol, "lam": lam, "max_patches": max_patches, "dtype": dtype}
    if lazy:
        # a dask scalar summed from the very tasks that code the blocks: computed with the result
        # (io.write_result(compute_with=...)), never by a pass of its own
        out, n_atoms_used = code_aggregate_lazy(stack, with_atoms=True, **code)
    else:
        out, atoms = code_aggregate(stack, **code)
        n_atoms_used = int(atoms.sum())
    info["mean_atoms"] = n_atoms_used / max(grid.n_patches, 1)
    t3 = time.perf_counter()
    info["timings_s"] = {"learn": t2 - t1, "code_aggregate": t3 - t2, "total": t3 - t0}
    return out, info


def _is_dask(array: Any) -> bool:
    return hasattr(array, "dask") and hasattr(array, "chunks")


def sample_patches(stack, grid: PatchGrid, pick: np.ndarray) -> np.ndarray:
    """The patches at the flat grid indices ``pick`` (sorted), ``(len(pick), n_features)``.

    A numpy ``stack`` is indexed directly; a dask one is read once, block of frames by block of
    frames (one compute; each block extracts the picked patches that start in it), so memory
    holds one block and the sample, never the series. Both give the same patches in the same
    order.
    """
    if not _is_dask(stack):
        return grid.extract_at(stack, pick)
    import dask

    depth = grid.patch_shape[0] - 1
    per_start = int(np.prod(grid.grid_shape[1:]))
    starts = grid.positions[0]
    parts, offset = [], 0
    for n in stack.chunks[0]:
        lo, hi = offset, offset + n       # patches whose first frame lies in [lo, hi)
        offset = hi
        first = np.searchsorted(starts, lo)
        last = np.searchsorted(starts, hi)
        if last <= first:
            continue
        sel = pick[(pick >= first * per_start) & (pick < last * per_start)]
        if sel.size == 0:
            continue
        stop = min(stack.shape[0], int(starts[last - 1]) + depth + 1)
        sub_grid = PatchGrid(( stop - lo, *grid.image_shape[1:]), grid.patch_shape,
                             (starts[first:last] - lo, *grid.positions[1:]))
        parts.append(dask.delayed(sub_grid.extract_at)(stack[lo:stop], sel - first * per_start))
    values = dask.compute(*parts)
    return np.concatenate(values, axis=0) if values else np.zeros((0, grid.n_features))


def code_aggregate(stack: np.ndarray, *, dictionary: np.ndarray, patch_shape: Sequence[int],
                   stride: int | Sequence[int], sparsity: int, tol: float, lam: float,
                   max_patches: int = 16384, dtype=np.float32) -> tuple[np.ndarray, np.ndarray]:
    """Steps 3-4 of the method on a numpy stack: code every patch over ``dictionary`` with
    Batch-OMP and blend the overlapping reconstructions with the data (weight ``lam``).

    Returns the blended stack (float64) and the number of atoms used by the patches that start
    at each position along the first axis (int64, one per start frame; ``.sum()`` is the total).
    Every patch is coded on its own, so a block of frames with ``patch_shape[0] - 1`` frames of
    its neighbours on each side gives the same values for its own frames as the whole series
    (:func:`code_aggregate_lazy`).
    """
    D = np.asarray(dictionary)
    gram = D @ D.T
    grid = PatchGrid.from_shape(stack.shape, patch_shape, stride)
    num = np.zeros(stack.shape, dtype=np.float64)
    atoms = np.zeros(grid.grid_shape[0], dtype=np.int64)
    for rows in grid.chunks(max_patches):
        # means in float64 (the DC part keeps full precision), the rest in ``dtype``
        patches = grid.extract(stack, rows)          # a fresh copy: centre it in place
        means = patches.mean(axis=1)
        patches -= means[:, None]
        patches = patches.astype(dtype, copy=False)
        codes = sparse_code(patches, D, n_nonzero=sparsity, tol=tol, gram=gram)
        atoms[rows] += np.asarray(codes.counts, dtype=np.int64).reshape(atoms[rows].size, -1).sum(axis=1)
        recon = means[:, None] + codes.reconstruct(D)   # float64
        grid.accumulate(recon, num, rows)
    den = grid.coverage()
    if lam > 0:
        num += lam * stack
        den += lam
    return num / den, atoms


#: Frames of a block of the lazy coding per frame of overlap (``patch_shape[0] - 1``): a block
#: also codes the patches that start in its left neighbour's overlap, so the extra work is about
#: 1 / BLOCK_FRAMES_PER_OVERLAP (12 %); at least :data:`MIN_BLOCK_FRAMES` frames per block.
BLOCK_FRAMES_PER_OVERLAP = 8
MIN_BLOCK_FRAMES = 8


def block_frames(n_frames: int, depth: int, chunks: Sequence[int]) -> tuple[int, ...]:
    """Time chunks of the lazy coding: the input's, unless they are too short for the overlap
    (merged to at least ``depth`` frames) or so long that the series would be coded in one or a few
    tasks (cut into blocks of about ``max(BLOCK_FRAMES_PER_OVERLAP * depth, MIN_BLOCK_FRAMES)``
    frames, so the blocks run in parallel on threads or a cluster's workers).

    Examples
    --------
    >>> block_frames(157, 6, (157,))  # one 10 MB chunk of Li maps, 7-frame patches
    (40, 40, 40, 37)
    >>> block_frames(9, 2, (3, 3, 3))
    (3, 3, 3)
    """
    from ionscope.blocks import overlap_blocks

    return overlap_blocks(n_frames, depth, chunks, target=max(BLOCK_FRAMES_PER_OVERLAP * int(depth), MIN_BLOCK_FRAMES))


def code_aggregate_lazy(stack, *, with_atoms: bool = False, **code: Any):
    """:func:`code_aggregate` over a dask stack, block of frames by block of frames.

    Each block is coded with ``patch_shape[0] - 1`` frames of each neighbour (an overlap, no
    padding at the series' ends): every space-time patch that covers one of the block's own
    frames lies inside the extended block, so the block's frames get the very sums of the
    in-memory path (the overlaps are blended exactly, not approximately). Blocks are the
    input's time chunks when they suit (:func:`block_frames`: at least that many frames long,
    and not so long that a few tasks carry the series); y and x are one chunk.

    With ``with_atoms`` also returns the number of atoms used by all patches, a dask scalar
    summed from the same tasks (each block counts the patches that start in its own frames, so
    every patch once): computed together with the result it costs no extra pass.
    """
    import dask.array

    from ionscope.blocks import map_blocks_with_total

    depth = int(code["patch_shape"][0]) - 1
    if len(stack.chunks[1]) > 1 or len(stack.chunks[2]) > 1:
        stack = stack.rechunk({1: -1, 2: -1})
    frames = block_frames(stack.shape[0], depth, stack.chunks[0])
    if frames != stack.chunks[0]:
        stack = stack.rechunk({0: frames})
    extended = stack if depth == 0 else dask.array.overlap.overlap(stack, depth={0: depth, 1: 0, 2: 0},
                                                                   boundary="none")

    def block(values: np.ndarray, info: dict) -> tuple[np.ndarray, float]:
        where, count = info["chunk-location"][0], info["num-chunks"][0]
        lo = depth if where > 0 else 0
        hi = values.shape[0] - (depth if where < count - 1 else 0)
        out, atoms = code_aggregate(values, **code)
        return out[lo:hi], float(atoms[lo:hi].sum())  # patches starting in the block's own frames

    out, total = map_blocks_with_total(block, extended, chunks=stack.chunks, dtype=np.float64)
    return (out, total) if with_atoms else out


# --------------------------------------------------------------------------- wrapper

#: Largest patch side, dictionary size, frames per patch and K-SVD iterations: beyond them the
#: dictionary (atoms x patch pixels), its Gram matrix (atoms^2) or the learning outgrow any map
#: and any memory - a typing mistake, not a setting (typical: 8 px, 256 atoms, 3 frames, 10).
MAX_PATCH_PX = 64
MAX_ATOMS = 4096
MAX_TEMPORAL = 64
MAX_ITERATIONS = 1000

#: Declared constraints of :func:`sparse_denoise`'s scalar parameters.
SPARSE_CONSTRAINTS: dict[str, list[Any]] = {
    "patch": [Interval(int, 1, MAX_PATCH_PX, unit="px")],
    "atoms": [Interval(int, 1, MAX_ATOMS)],
    "sparsity": [Interval(int, 1, MAX_ATOMS)],
    "temporal": [Interval(int, 1, MAX_TEMPORAL, unit="frames")],
    "iterations": [Interval(int, 0, MAX_ITERATIONS)],
    "lam": [Interval(float, 0, None), None],
    "seed": [SEED],
    "method": [Options(METHODS)],
    "stride": [Interval(int, 1, None, unit="px")],
    "error_factor": [Interval(float, 0, None, closed="neither"), None],
    "max_train": [Interval(int, 1, None, unit="patches")],
    "wiener": [bool],
    **NOISE_CONSTRAINTS,
}


@validate_params(SPARSE_CONSTRAINTS)
def sparse_denoise(
    da: xr.DataArray,
    *,
    patch: int = 8,
    atoms: int = 256,
    sparsity: int = 4,
    temporal: int = 1,
    noise: str = "auto",
    dose: float | None = None,
    sigma: float | None = None,
    iterations: int = 10,
    lam: float | None = None,
    seed: int = 0,
    train: xr.DataArray | np.ndarray | None = None,
    dictionary: np.ndarray | None = None,
    method: str = "ksvd",
    stride: int = 1,
    gain: float = 1.0,
    read_noise: float = 0.0,
    error_factor: float | None = None,
    max_train: int = 20000,
    wiener: bool = False,
) -> tuple[xr.DataArray, dict[str, Any]]:
    """Denoise a map or a map series by sparse coding over a learned dictionary (K-SVD).

    Lazy: a dask-backed input gives a dask-backed result. The dictionary is learned once, on
    the training sample (``max_train`` patches drawn over the whole series, read block by block:
    one compute), and the series is coded in overlapping blocks of frames (its time chunks)
    that give the in-memory path's values (:func:`code_aggregate_lazy`); ``info["mean_atoms"]``
    is then a dask scalar summed from the same tasks, to compute together with the result (as
    ``ionscope denoise`` does: ``io.write_result(compute_with=...)``), so it costs no pass of its
    own. Gaussian noise without ``sigma`` is estimated on the middle frames.

    Parameters
    ----------
    da : xarray.DataArray
        Dims ``(time, y, x)`` or ``(y, x)``, finite values.
    patch : int
        Patch side p in pixels (p x p patches).
    atoms : int
        Dictionary size.
    sparsity : int
        Largest number of atoms per patch (<= ``atoms``).
    temporal : int
        Frames per patch; ``> 1`` gives space-time (t x p x p) patches (needs a ``time`` dim
        with at least that many frames).
    noise : {"poisson", "poisson-gaussian", "gaussian", "auto"}
        ``"poisson"``: counts ``= value * dose`` are Poisson (Anscombe transform, sigma = 1).
        ``"poisson-gaussian"``: ``value * dose = gain * Poisson + N(0, read_noise^2)``
        (generalised Anscombe). ``"gaussian"``: additive Gaussian noise, processed as is, sigma
        from ``sigma`` or the robust MAD estimate. ``"auto"``: Poisson when a dose is known
        (argument or ``da.attrs["dose"]``) or the data are non-negative integers, else
        Gaussian.
    dose : float, optional
        Counts per unit of the data (maps given as fractions: counts = value * dose; e.g. the
        twin's counts per pixel at x = 1). Defaults to ``da.attrs["dose"]``, else 1.
    sigma : float, optional
        Noise standard deviation in the coding domain (data units for Gaussian noise, about
        1 after the Anscombe transform). Default: 1 for Poisson models, the MAD estimate for
        Gaussian noise.
    iterations : int
        K-SVD iterations (0: the overcomplete DCT without learning).
    lam : float, optional
        Weight of the noisy data in the aggregation relative to one patch (dimensionless;
        :data:`DEFAULT_LAMBDA` = 0.5 when None).
    seed : int
        Seed of the training subset and of the learner; the result is deterministic.
    train : DataArray or ndarray, optional
        Separate training maps (same units, dims and noise model; e.g. slow high-dose maps of
        the same sample) to learn the dictionary from, instead of the noisy data itself.
    dictionary : ndarray, optional
        A ready dictionary ``(n_atoms, temporal * patch**2)`` (e.g. ``info["dictionary"]`` of
        an earlier run); skips learning.
    method : {"ksvd", "approximate-ksvd", "online"}
        Dictionary learner.
    stride : int
        Patch step in y and x (1 in time).
    gain, read_noise : float
        Poisson-Gaussian model: detector units per count and Gaussian std (detector units).
    error_factor : float, optional
        C in the OMP error target ``n (C sigma)^2``; default :func:`default_error_factor` of the
        patch size (1.15 for 8 x 8, 1.10 for 3 x 8 x 8 patches).
    max_train : int
        Largest number of training patches.
    wiener : bool
        Follow the sparse coding with the collaborative Wiener filter of space-time groups
        matched on its estimate (:mod:`ionscope.denoise.collaborative`; BM3D's second stage on
        space-time cubes). It recovers most of what sparse coding blurs where fronts move
        several pixels per frame (+2 dB on the li_fronts twin). Default for ``sparse3d`` in
        :func:`~ionscope.denoise.denoise`.

    Returns
    -------
    denoised : xarray.DataArray
        Same dims, coords, units and attrs as ``da``, name ``"denoised"``, one provenance step
        appended.
    info : dict
        ``method`` (``"sparse"``), ``noise``, ``dose``, ``dose_source``, ``sigma``,
        ``sigma_source``, ``sigma_mad``, ``lambda``, ``tol``, ``error_factor``, ``patch_shape``,
        ``parameters``, ``n_patches``, ``mean_atoms`` (per patch), ``training_errors``,
        ``n_replaced``, ``dictionary``, ``wiener`` (``passes``: each Wiener pass's cube, window,
        stride, transform, group size and number of groups; or None) and ``timings_s``
        (``transform``, ``learn``, ``code_aggregate``, ``wiener``, ``kernel``, ``total``), as
        every denoiser through
        :func:`~ionscope.denoise.stabilise.run_stabilised`.

    Raises
    ------
    DimensionError, NonFiniteError, EmptyDataError
        Wrong dims, NaN/inf, or empty input.
    ConfigError
        Invalid parameters (patch larger than the image, sparsity > atoms, temporal patches
        on a single map, ...).
    InputError
        Negative values under a Poisson model.

    Examples
    --------
    >>> import numpy as np
    >>> from ionscope.data import signal
    >>> rng = np.random.default_rng(0)
    >>> truth = np.tile(np.linspace(5, 40, 32), (4, 32, 1))
    >>> da = signal(rng.poisson(truth).astype(float), ("time", "y", "x"), name="counts",
    ...             units="counts")
    >>> out, info = sparse_denoise(da, patch=6, atoms=64, iterations=2)
    >>> out.dims == da.dims and out.name == "denoised"
    True
    >>> bool(np.abs(out.values - truth).mean() < np.abs(da.values - truth).mean())
    True
    """
    if sparsity > atoms:
        raise ConfigError(
            f"sparsity ({sparsity}) cannot exceed the number of atoms ({atoms}); lower sparsity "
            "or use more atoms"
        )
    patch_shape = (int(temporal), int(patch), int(patch))
    # the defaults resolved here, so that the provenance records the values used
    lam = DEFAULT_LAMBDA if lam is None else float(lam)
    if error_factor is None:
        error_factor = default_error_factor(int(np.prod(patch_shape)))

    def check(da_c: xr.DataArray) -> None:
        ny, nx = da_c.sizes["y"], da_c.sizes["x"]
        if patch > min(ny, nx):
            raise ConfigError(
                f"patch size {patch} is larger than the image ({ny} x {nx} pixels); use patch <= "
                f"{min(ny, nx)}"
            )
        if temporal > 1 and "time" not in da_c.dims:
            raise ConfigError(
                f"temporal={temporal} needs a (time, y, x) series; this is a single (y, x) map"
            )
        if "time" in da_c.dims and temporal > da_c.sizes["time"]:
            raise ConfigError(
                f"temporal={temporal} frames per patch but the series has only "
                f"{da_c.sizes['time']} frame(s)"
            )

    def kernel(coded: np.ndarray, sigma_value: float, train: np.ndarray | None = None):
        if train is not None and (train.shape[0] < temporal or min(train.shape[1:]) < patch):
            raise ConfigError(
                f"training maps of shape {train.shape} are smaller than one patch "
                f"({temporal} x {patch} x {patch})"
            )
        out, kinfo = denoise_stack(
            coded, sigma=sigma_value, patch_shape=patch_shape, atoms=atoms, sparsity=sparsity,
            iterations=iterations, lam=lam, stride=(1, stride, stride), error_factor=error_factor,
            method=method, seed=int(seed), train=train, dictionary=dictionary,
            max_train=max_train,
        )
        kinfo["wiener"] = None
        if wiener:
            t = time.perf_counter()
            stage = collaborative_filter_lazy if _is_dask(coded) else collaborative_filter
            out, kinfo["wiener"] = stage(coded, out, sigma=sigma_value)
            kinfo["timings_s"] = {**kinfo["timings_s"], "wiener": time.perf_counter() - t}
        return out, {**kinfo, "patch_shape": patch_shape}

    record = {
        "patch": int(patch), "atoms": int(atoms), "sparsity": int(sparsity),
        "temporal": int(temporal), "iterations": int(iterations), "lam": lam, "seed": int(seed),
        "method": method, "stride": int(stride), "error_factor": float(error_factor),
        "max_train": int(max_train), "train": train is not None,
        "dictionary_given": dictionary is not None, "wiener": bool(wiener),
    }
    return run_stabilised(
        da, "sparse", kernel, {}, noise=noise, dose=dose, sigma=sigma, gain=gain,
        read_noise=read_noise, min_size=1, check=check, train=train, record=record,
        inputs=[] if dictionary is None else [np.asarray(dictionary)], step=STEP,
        label="denoised (sparse coding)", what="sparse_denoise (input)", lazy=True,
    )


__all__ = [
    "NOISE_MODELS", "NOISE_MARGIN", "ERROR_FACTOR", "DEFAULT_LAMBDA", "default_error_factor", "denoise_stack",
    "sample_patches", "code_aggregate", "code_aggregate_lazy", "block_frames", "BLOCK_FRAMES_PER_OVERLAP",
    "MIN_BLOCK_FRAMES",
    "SPARSE_CONSTRAINTS", "sparse_denoise",
]
