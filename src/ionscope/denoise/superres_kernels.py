r"""Numpy kernels of coupled-dictionary super-resolution (Yang, Wright, Huang & Ma 2010).

The degradation model (:func:`block_average`) and its adjoint, the cubic-spline up-sampling and
gradient features, coupled-dictionary training (:func:`train_coupled_dictionaries`), the sparse
reconstruction (:func:`coupled_reconstruct`), back-projection (:func:`back_project`) and the
whole chain on a stack (:func:`superres_stack`). The method, its parameters and where it
differs from the paper are described in :mod:`ionscope.denoise.superres`, the wrapper for
labelled arrays.
"""

from __future__ import annotations

import dataclasses
import numbers
import time
from typing import Any

import numpy as np
import scipy.ndimage as ndi

from ionscope.blocks import single_threaded_blas
from ionscope.denoise.dictionary import learn_dictionary
from ionscope.denoise.omp import sparse_code
from ionscope.denoise.patches import PatchGrid, remove_patch_mean
from ionscope.denoise.sparse import MAX_ITERATIONS
from ionscope.errors import ConfigError, DimensionError, InputError
from ionscope.validation import SEED, Interval, validate_params

#: Up-sampling factors :func:`super_resolve` accepts.
FACTORS = (2, 3)

#: Default HR patch side per factor (pixels of the fine grid). Measured on the LiCoO2 twin of
#: benchmarks/superres.py (72 x 72 px, 10 training maps, 256 atoms, sparsity 3): x2 with 4 / 5 /
#: 6 px gave 43.3 / 43.6 / 41.6 dB, x3 with 6 / 7 / 9 px 37.9 / 38.2 / 38.0 dB.
DEFAULT_PATCH = {2: 5, 3: 7}

#: Derivative filters of the features (Yang et al.): first and second derivative.
FIRST_DERIVATIVE = np.array([-1.0, 0.0, 1.0])
SECOND_DERIVATIVE = np.array([1.0, 0.0, -2.0, 0.0, 1.0])
N_FEATURE_MAPS = 4

#: Patches whose HR or feature norm is below this fraction of the largest are "flat".
FLAT_TOLERANCE = 1e-6

#: Smallest norm of an atom's LR part (of a unit joint atom) kept for coding.
MIN_LR_NORM = 0.1


def check_factor(factor: Any) -> int:
    """The up-sampling factor as an int; :class:`~ionscope.errors.ConfigError` unless it is one
    of :data:`FACTORS` (an integer: ``2.0`` and ``True`` are refused). Its message is the one the
    CLI shows (``super-resolution factor must be one of [2, 3]``), so it stays hand-written."""
    if isinstance(factor, (bool, np.bool_)) or not isinstance(factor, numbers.Integral) or (
        int(factor) not in FACTORS
    ):
        raise ConfigError(
            f"super-resolution factor must be one of {list(FACTORS)}, got {factor!r}"
        )
    return int(factor)


# --------------------------------------------------------------------------- degradation


def _as_stack(images: np.ndarray, what: str) -> np.ndarray:
    """``images`` as float64 ``(n_frames, ny, nx)``."""
    arr = np.asarray(images, dtype=np.float64)
    if arr.ndim == 2:
        arr = arr[None]
    if arr.ndim != 3:
        raise DimensionError(f"{what} must be a (y, x) map or a (time, y, x) series, got shape "
                             f"{arr.shape}")
    if arr.size == 0:
        raise InputError(f"{what} is empty (shape {arr.shape})")
    return arr


def block_average(images: np.ndarray, factor: int) -> np.ndarray:
    """The degradation model ``D``: mean of every ``factor x factor`` block of the last two axes.

    Parameters
    ----------
    images : ndarray, shape (..., ny, nx)
        High-resolution maps; ``ny`` and ``nx`` must be multiples of ``factor``.
    factor : int
        Block side (any integer >= 1 here).

    Returns
    -------
    ndarray, shape (..., ny // factor, nx // factor)

    Examples
    --------
    >>> block_average(np.arange(16.0).reshape(4, 4), 2).tolist()
    [[2.5, 4.5], [10.5, 12.5]]
    """
    images = np.asarray(images)
    factor = int(factor)
    if images.ndim < 2 or factor < 1:
        raise DimensionError(f"need (..., y, x) maps and a factor >= 1, got shape {images.shape} "
                             f"and factor {factor}")
    ny, nx = images.shape[-2:]
    if ny % factor or nx % factor:
        raise DimensionError(
            f"maps of {ny} x {nx} pixels cannot be block-averaged by {factor}: crop them to "
            f"multiples of {factor} first"
        )
    shape = images.shape[:-2] + (ny // factor, factor, nx // factor, factor)
    return images.reshape(shape).mean(axis=(-3, -1))


def nearest_upsample(images: np.ndarray, factor: int) -> np.ndarray:
    """Replicate every pixel into a ``factor x factor`` block (nearest neighbour).

    This is ``factor**2`` times the adjoint of :func:`block_average`, so
    ``block_average(nearest_upsample(y, F), F) == y``.
    """
    images = np.asarray(images)
    return np.repeat(np.repeat(images, factor, axis=-2), factor, axis=-1)


def bicubic_upsample(images: np.ndarray, factor: int) -> np.ndarray:
    """Cubic-spline interpolation of ``(n_frames, ny, nx)`` maps onto the ``factor``-times finer
    grid (:func:`scipy.ndimage.zoom`, ``order=3``, ``grid_mode=True``: pixel edges aligned,
    LR samples at the centres of their blocks; ``mode="reflect"`` at the borders)."""
    stack = _as_stack(images, "maps")
    return np.stack([
        ndi.zoom(frame, factor, order=3, grid_mode=True, mode="reflect") for frame in stack
    ])


def gradient_features(mid: np.ndarray) -> np.ndarray:
    """First and second derivatives of up-sampled maps, ``(n_frames, 4, ny, nx)``.

    Channels: ``[-1, 0, 1]`` along x, along y, then ``[1, 0, -2, 0, 1]`` along x, along y
    (correlation, ``mode="reflect"``), the LR features of Yang et al. (2010).
    """
    mid = _as_stack(mid, "maps")
    out = np.empty((mid.shape[0], N_FEATURE_MAPS) + mid.shape[1:], dtype=np.float64)
    for channel, (kernel, axis) in enumerate(
        ((FIRST_DERIVATIVE, 2), (FIRST_DERIVATIVE, 1), (SECOND_DERIVATIVE, 2),
         (SECOND_DERIVATIVE, 1))
    ):
        ndi.correlate1d(mid, kernel, axis=axis, mode="reflect", output=out[:, channel])
    return out


def _grids(shape: tuple[int, int, int], patch: int) -> tuple[PatchGrid, PatchGrid]:
    """Patch grids of the HR maps ``(T, ny, nx)`` and of their features ``(T, 4, ny, nx)``
    with the same positions (flat indices and chunks correspond)."""
    grid = PatchGrid.from_shape(shape, (1, patch, patch))
    fshape = (shape[0], N_FEATURE_MAPS) + tuple(shape[1:])
    fgrid = PatchGrid.from_shape(fshape, (1, N_FEATURE_MAPS, patch, patch))
    return grid, fgrid


# --------------------------------------------------------------------------- training


@dataclasses.dataclass(frozen=True)
class CoupledDictionaries:
    """A trained pair of dictionaries sharing one sparse code.

    Attributes
    ----------
    factor : int
        Up-sampling factor they were trained for.
    patch : int
        HR patch side (pixels of the fine grid).
    sparsity : int
        Atoms per patch in the coding.
    dict_h : ndarray, shape (n_atoms, patch**2)
        HR dictionary, scaled so that ``codes @ dict_h`` is the mean-free HR patch in data units.
    dict_l : ndarray, shape (n_atoms, 4 * patch**2)
        LR (feature) dictionary with unit-norm rows.
    feature_scale : float
        ``s_l``: features are divided by it before coding.
    n_train : int
        Training pairs the dictionaries were learned from.
    n_informative : int
        Non-flat training pairs available (before the ``max_train`` subsampling).
    n_candidates : int
        All patch positions of the training maps.
    n_dropped_atoms : int
        Atoms dropped for an almost empty LR part.
    training_errors : list of float
        K-SVD RMS representation error (joint, normalised) per iteration.
    cropped_px : tuple of int
        Rows and columns dropped from the training maps to make them multiples of ``factor``.
    """

    factor: int
    patch: int
    sparsity: int
    dict_h: np.ndarray
    dict_l: np.ndarray
    feature_scale: float
    n_train: int
    n_informative: int
    n_candidates: int
    n_dropped_atoms: int
    training_errors: list[float]
    cropped_px: tuple[int, int] = (0, 0)

    @property
    def n_atoms(self) -> int:
        return int(self.dict_l.shape[0])


def coupled_training_pairs(
    hr: np.ndarray,
    factor: int,
    patch: int,
    *,
    max_train: int | None = 20000,
    seed: int = 0,
    max_patches: int = 16384,
) -> tuple[np.ndarray, np.ndarray, dict[str, int]]:
    """Training pairs (HR patch minus mean, LR features) from HR maps.

    Parameters
    ----------
    hr : ndarray, shape (n_frames, ny, nx) or (ny, nx)
        High-resolution training maps; cropped to multiples of ``factor`` (the last rows and
        columns are dropped).
    factor, patch : int
        Up-sampling factor and HR patch side.
    max_train : int or None
        Keep at most this many non-flat pairs, drawn without replacement with ``seed``.
    max_patches : int
        Patches handled per chunk while screening for flat ones (bounds memory).

    Returns
    -------
    h : ndarray, shape (n, patch**2)
        Mean-free HR patches.
    l : ndarray, shape (n, 4 * patch**2)
        Their features.
    counts : dict
        ``n_candidates`` (all positions), ``n_informative`` (non-flat), ``n_train`` (kept),
        ``cropped_px`` (rows, columns dropped).
    """
    hr = _as_stack(hr, "training maps")
    ny, nx = hr.shape[1] // factor * factor, hr.shape[2] // factor * factor
    if min(ny, nx) < patch:
        raise InputError(
            f"training maps of {hr.shape[1]} x {hr.shape[2]} px (cropped to multiples of "
            f"{factor}: {ny} x {nx}) are smaller than one {patch} x {patch} patch; give larger "
            "high-resolution maps or a smaller patch"
        )
    cropped = (hr.shape[1] - ny, hr.shape[2] - nx)
    hr = hr[:, :ny, :nx]
    feats = gradient_features(bicubic_upsample(block_average(hr, factor), factor))
    grid, fgrid = _grids(hr.shape, patch)
    h_norm = np.empty(grid.n_patches)
    l_norm = np.empty(grid.n_patches)
    start = 0
    for rows in grid.chunks(max_patches):
        h, _ = remove_patch_mean(grid.extract(hr, rows))
        l_part = fgrid.extract(feats, rows)
        stop = start + h.shape[0]
        h_norm[start:stop] = np.linalg.norm(h, axis=1)
        l_norm[start:stop] = np.linalg.norm(l_part, axis=1)
        start = stop
    informative = np.flatnonzero(
        (h_norm > FLAT_TOLERANCE * h_norm.max()) & (l_norm > FLAT_TOLERANCE * l_norm.max())
    )
    n_informative = int(informative.size)
    if max_train is not None and informative.size > max_train:
        rng = np.random.default_rng(seed)
        informative = np.sort(rng.choice(informative, size=int(max_train), replace=False))
    h, _ = remove_patch_mean(grid.extract_at(hr, informative))
    l_pairs = fgrid.extract_at(feats, informative)
    counts = {"n_candidates": grid.n_patches, "n_informative": n_informative,
              "n_train": int(informative.size), "cropped_px": cropped}
    return h, l_pairs, counts


@validate_params({
    "patch": [Interval(int, 2, None, unit="px"), None],
    "atoms": [Interval(int, 2, None)],
    "sparsity": [Interval(int, 1, None)],
    "iterations": [Interval(int, 0, MAX_ITERATIONS)],
    "max_train": [Interval(int, 1, None), None],
    "seed": [SEED],
})
def train_coupled_dictionaries(
    hr: np.ndarray,
    factor: int,
    *,
    patch: int | None = None,
    atoms: int = 256,
    sparsity: int = 3,
    iterations: int = 10,
    max_train: int | None = 20000,
    seed: int = 0,
) -> CoupledDictionaries:
    """Learn coupled HR / LR dictionaries from HR maps (steps 2-3 of the module docstring).

    Parameters
    ----------
    hr : ndarray, shape (n_frames, ny, nx) or (ny, nx)
        High-resolution training maps (same units as the maps to super-resolve).
    factor : int
        Up-sampling factor (2 or 3).
    patch : int, optional
        HR patch side in fine-grid pixels (default :data:`DEFAULT_PATCH`).
    atoms : int
        Dictionary size; the training maps must give at least this many non-flat patches.
    sparsity : int
        Atoms per patch (K-SVD coding and reconstruction).
    iterations : int
        K-SVD iterations (0: the initial random training pairs as atoms).
    max_train : int or None
        Largest number of training pairs.
    seed : int
        Seed of the subsampling, the initial atoms and K-SVD.

    Returns
    -------
    CoupledDictionaries

    Raises
    ------
    ConfigError
        Invalid factor, patch, atoms or sparsity.
    InputError
        Training maps smaller than a patch, or too few non-flat patches for ``atoms``.
    """
    factor = check_factor(factor)
    patch = DEFAULT_PATCH[factor] if patch is None else int(patch)
    if sparsity > atoms:
        raise ConfigError(f"sparsity ({sparsity}) cannot exceed the number of atoms ({atoms})")
    h, l_pairs, counts = coupled_training_pairs(hr, factor, patch, max_train=max_train, seed=seed)
    if counts["n_train"] < atoms:
        raise InputError(
            f"the training maps give only {counts['n_train']} non-flat {patch} x {patch} patches "
            f"(of {counts['n_candidates']} positions) for {atoms} atoms; give more or larger "
            "high-resolution training maps with structure, or use fewer atoms"
        )
    s_h = float(np.sqrt(np.mean(np.einsum("ij,ij->i", h, h))))
    s_l = float(np.sqrt(np.mean(np.einsum("ij,ij->i", l_pairs, l_pairs))))
    joint = np.hstack([h / s_h, l_pairs / s_l])
    rng = np.random.default_rng(seed)
    initial = joint[rng.choice(joint.shape[0], size=atoms, replace=False)]
    initial = initial / np.linalg.norm(initial, axis=1, keepdims=True)
    if iterations > 0:
        result = learn_dictionary(
            joint, initial=initial, method="ksvd", n_nonzero=sparsity, iterations=iterations,
            max_signals=None, seed=int(rng.integers(2**31)),
        )
        joint_dict, errors = result.dictionary, [float(e) for e in result.errors]
    else:
        joint_dict, errors = initial, []
    n_h = h.shape[1]
    d_h, d_l = joint_dict[:, :n_h], joint_dict[:, n_h:]
    norm_l = np.linalg.norm(d_l, axis=1)
    keep = norm_l >= MIN_LR_NORM
    if int(keep.sum()) < sparsity:
        raise InputError(
            "the learned dictionary has almost no atoms with a low-resolution part; the training "
            "maps hold no detail the low-resolution features can see - use other training maps"
        )
    scale = norm_l[keep, None]
    return CoupledDictionaries(
        factor=factor, patch=patch, sparsity=sparsity,
        dict_h=s_h * d_h[keep] / scale, dict_l=d_l[keep] / scale, feature_scale=s_l,
        n_train=counts["n_train"], n_informative=counts["n_informative"],
        n_candidates=counts["n_candidates"], n_dropped_atoms=int((~keep).sum()),
        training_errors=errors, cropped_px=counts["cropped_px"],
    )


# --------------------------------------------------------------------------- reconstruction


def coupled_reconstruct(
    lr: np.ndarray,
    dictionaries: CoupledDictionaries,
    *,
    max_patches: int = 16384,
) -> tuple[np.ndarray, np.ndarray, float]:
    """HR estimate from LR maps by sparse coding of their features (step 4), before
    back-projection.

    Parameters
    ----------
    lr : ndarray, shape (n_frames, ny, nx) or (ny, nx)
        Low-resolution maps.
    dictionaries : CoupledDictionaries
    max_patches : int
        Patches coded per chunk (bounds memory).

    Returns
    -------
    estimate : ndarray, shape (n_frames, F ny, F nx)
    mid : ndarray, shape (n_frames, F ny, F nx)
        The cubic-spline up-sampled maps (the baseline the features come from).
    mean_atoms : float
        Atoms used per patch on average.
    """
    stack = _as_stack(lr, "low-resolution maps")
    factor, patch = dictionaries.factor, dictionaries.patch
    if min(stack.shape[1:]) * factor < patch:
        raise InputError(
            f"maps of {stack.shape[1]} x {stack.shape[2]} px up-sampled x{factor} are smaller "
            f"than one {patch} x {patch} patch; use a smaller patch"
        )
    mid = bicubic_upsample(stack, factor)
    feats = gradient_features(mid)
    grid, fgrid = _grids(mid.shape, patch)
    dict_l, dict_h = dictionaries.dict_l, dictionaries.dict_h
    gram = dict_l @ dict_l.T
    num = np.zeros(mid.shape)
    used = 0
    for rows in grid.chunks(max_patches):
        means = grid.extract(mid, rows).mean(axis=1)
        features = fgrid.extract(feats, rows) / dictionaries.feature_scale
        codes = sparse_code(features, dict_l, n_nonzero=dictionaries.sparsity, gram=gram)
        used += int(codes.counts.sum())
        grid.accumulate(means[:, None] + codes.reconstruct(dict_h), num, rows)
    return num / grid.coverage(), mid, used / max(grid.n_patches, 1)


def _frame_dot(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Inner product of every map (the last two axes) without BLAS (``np.vdot`` on a busy
    machine wakes BLAS threads for arrays this small, measured ~10 ms per call)."""
    return np.einsum("...ij,...ij->...", a, b)


def back_project(
    estimate: np.ndarray,
    lr: np.ndarray,
    factor: int,
    *,
    iterations: int = 20,
    sigma: float = 1.0,
) -> np.ndarray:
    """Make an HR estimate consistent with the LR maps: ``block_average(x, F) == lr``.

    Iterative back-projection with a Gaussian kernel ``B`` (std ``sigma`` fine-grid pixels),
    solved to its limit ``x_0 + B D^T (D B D^T)^{-1} (lr - D x_0)`` by ``iterations``
    conjugate-gradient steps, then the exact orthogonal projection
    ``x + F^2 D^T (lr - D x)`` of what is left (see the module docstring).

    Parameters
    ----------
    estimate : ndarray, shape (n_frames, F ny, F nx)
    lr : ndarray, shape (n_frames, ny, nx)
    factor : int
    iterations : int
        Conjugate-gradient steps (0: orthogonal projection only).
    sigma : float
        Std of the back-projection kernel in fine-grid pixels (0: orthogonal projection).

    Returns
    -------
    ndarray
        Same shape as ``estimate``; ``block_average(result, factor) == lr`` to round-off.
    """
    x = np.array(estimate, dtype=np.float64)
    y = np.asarray(lr, dtype=np.float64)
    if x.shape[:-2] != y.shape[:-2] or x.shape[-2:] != (y.shape[-2] * factor,
                                                         y.shape[-1] * factor):
        raise DimensionError(
            f"estimate {x.shape} is not the x{factor} grid of the low-resolution maps {y.shape}"
        )
    if not (np.isfinite(sigma) and sigma >= 0):
        raise ConfigError(f"back-projection sigma must be a number >= 0, got {sigma!r}")
    widths = (0.0,) * (x.ndim - 2) + (float(sigma), float(sigma))

    def smooth_adjoint(z: np.ndarray) -> np.ndarray:       # B D^T z (times F^2)
        up = nearest_upsample(z, factor)
        return ndi.gaussian_filter(up, widths, mode="reflect") if sigma > 0 else up

    residual = y - block_average(x, factor)
    if iterations > 0 and sigma > 0:
        # one conjugate-gradient solve per map (the maps' systems are independent), batched:
        # every map's step sizes come from its own inner products, so a map's result does not
        # depend on the other maps of the stack (a block of frames gives the frames' values)
        z = np.zeros_like(residual)
        r = residual.copy()
        direction = r.copy()
        rr = _frame_dot(r, r)
        floor = (1e-13 ** 2) * rr
        active = np.ones(rr.shape, dtype=bool)
        for _ in range(int(iterations)):
            active &= (rr > floor) & (rr != 0.0)
            if not active.any():
                break
            a_dir = block_average(smooth_adjoint(direction), factor)
            curvature = _frame_dot(direction, a_dir)
            active &= curvature > 0
            step = np.divide(rr, curvature, out=np.zeros_like(rr), where=active)[..., None, None]
            z += step * direction
            r -= step * a_dir
            rr_new = _frame_dot(r, r)
            beta = np.divide(rr_new, rr, out=np.zeros_like(rr), where=active)[..., None, None]
            direction = np.where(active[..., None, None], r + beta * direction, direction)
            rr = np.where(active, rr_new, rr)
        x += smooth_adjoint(z)
        residual = y - block_average(x, factor)
    return x + nearest_upsample(residual, factor)


@validate_params({
    "iterations": [Interval(int, 0, MAX_ITERATIONS)],
    "train_iterations": [Interval(int, 0, MAX_ITERATIONS)],
    "bp_sigma": [Interval(float, 0, None, unit="fine-grid px")],
})
@single_threaded_blas()
def superres_stack(
    lr: np.ndarray,
    factor: int,
    *,
    train: np.ndarray | None = None,
    dictionaries: CoupledDictionaries | None = None,
    patch: int | None = None,
    atoms: int = 256,
    sparsity: int = 3,
    iterations: int = 20,
    train_iterations: int = 10,
    bp_sigma: float = 1.0,
    max_train: int | None = 20000,
    seed: int = 0,
) -> tuple[np.ndarray, dict[str, Any]]:
    """Super-resolve LR maps by ``factor`` with coupled dictionaries and back-projection.

    Parameters
    ----------
    lr : ndarray, shape (n_frames, ny, nx) or (ny, nx)
        Low-resolution maps (noise-free or denoised), finite.
    factor : int
        2 or 3.
    train : ndarray, optional
        HR training maps ``(n_frames, NY, NX)`` or ``(NY, NX)``, at the target pixel size.
    dictionaries : CoupledDictionaries, optional
        Ready dictionaries (e.g. ``info["dictionaries"]`` of an earlier run) instead of
        ``train``; their factor must match.
    patch, atoms, sparsity, train_iterations, max_train, seed :
        Training, see :func:`train_coupled_dictionaries` (``train_iterations`` K-SVD sweeps).
    iterations : int
        Back-projection conjugate-gradient steps (see :func:`back_project`).
    bp_sigma : float
        Back-projection kernel std in fine-grid pixels.

    Returns
    -------
    hr : ndarray, shape (n_frames, F ny, F nx) (or (F ny, F nx) for one map)
    info : dict
        ``dictionaries``, ``mean_atoms``, ``consistency`` (RMS and largest ``|D x - lr|`` of the
        cubic-spline baseline, of the sparse estimate before back-projection and of the
        result; RMS change from the baseline) and ``timings_s``.
    """
    t0 = time.perf_counter()
    factor = check_factor(factor)
    one_map = np.ndim(lr) == 2
    stack = _as_stack(lr, "low-resolution maps")
    if not np.all(np.isfinite(stack)):
        raise InputError("the low-resolution maps hold NaN or infinite values")
    if dictionaries is None:
        if train is None:
            raise ConfigError("super-resolution needs training maps (train) or dictionaries")
        train_stack = _as_stack(train, "training maps")
        if not np.all(np.isfinite(train_stack)):
            raise InputError("the training maps hold NaN or infinite values")
        dictionaries = train_coupled_dictionaries(
            train_stack, factor, patch=patch, atoms=atoms, sparsity=sparsity,
            iterations=train_iterations, max_train=max_train, seed=seed,
        )
    elif dictionaries.factor != factor:
        raise ConfigError(
            f"the dictionaries were trained for x{dictionaries.factor}, not x{factor}"
        )
    t1 = time.perf_counter()
    estimate, mid, mean_atoms = coupled_reconstruct(stack, dictionaries)
    t2 = time.perf_counter()
    result = back_project(estimate, stack, factor, iterations=iterations, sigma=bp_sigma)
    t3 = time.perf_counter()

    def residual(x: np.ndarray) -> dict[str, float]:
        r = block_average(x, factor) - stack
        return {"rms": float(np.sqrt(np.mean(r * r))), "max_abs": float(np.max(np.abs(r)))}

    info = {
        "dictionaries": dictionaries,
        "mean_atoms": mean_atoms,
        "consistency": {
            "bicubic": residual(mid),
            "sparse_before_back_projection": residual(estimate),
            "result": residual(result),
            "rms_change_from_bicubic": float(np.sqrt(np.mean((result - mid) ** 2))),
        },
        "timings_s": {"train": t1 - t0, "reconstruct": t2 - t1, "back_project": t3 - t2,
                      "total": t3 - t0},
    }
    return (result[0] if one_map else result), info


__all__ = [
    "FACTORS",
    "DEFAULT_PATCH",
    "check_factor",
    "CoupledDictionaries",
    "block_average",
    "nearest_upsample",
    "bicubic_upsample",
    "gradient_features",
    "coupled_training_pairs",
    "train_coupled_dictionaries",
    "coupled_reconstruct",
    "back_project",
    "superres_stack",
]
