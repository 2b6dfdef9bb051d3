r"""Collaborative Wiener filtering of space-time groups: the second stage of ``sparse3d``.

Sparse coding treats every space-time patch on its own. Where a front moves several pixels per
frame, patches that span a few frames hold a different picture in each frame and the
dictionary smooths it. Non-local methods (BM3D, BM4D, V-BM4D) instead stack patches that look
alike, wherever they lie in space and time, and filter each stack as one signal. This module
adds that step after the sparse-coding estimate (the *pilot*), as the Wiener stage of BM3D
(Dabov et al. 2007) on space-time cubes (Maggioni et al. 2012):

1. **Grouping.** For reference cubes of ``cube = (t, p, p)`` voxels on a grid of step
   ``stride``, the ``group_size`` cubes of the pilot closest in squared distance are found
   within ``window`` frames and pixels (a cube that follows a moving front matches its
   displaced copies in the neighbouring frames; one on a still plateau its own place in
   them).
2. **Collaborative Wiener filter.** Each group of the noisy data is transformed by an
   orthonormal separable 4-D transform (the group's axis and the cube's three), multiplied by
   the empirical Wiener gain :math:`W = P^2 / (P^2 + \sigma^2 v)` of the pilot's group
   :math:`P` in the same transform, and transformed back. The transform is a Haar transform along the
   group (as in BM3D) and along time, a DCT across the cube's pixels (``TRANSFORM``): a pixel
   that a front crosses steps from one phase to the other, and a step takes a few Haar
   coefficients where a DCT spreads it over all of them.
   The noise variance :math:`\sigma^2 v` of each coefficient is that of the group's
   overlapping cubes (:func:`group_noise_variance`, exact; :math:`v = 1` if none overlap).
3. **Aggregation.** Every filtered cube is added back where it came from with the weight
   :math:`1 / \sum W^2 v` (the inverse of its estimate's noise variance, :math:`v` the
   coefficients' noise variances), and the sums are divided by the weights.
4. **Refining pass.** :func:`collaborative_filter` runs the steps twice (``PASSES``): first with
   thin cubes (32 x 2 x 2, 64 per group) matched within 5 px, then with larger ones
   (32 x 4 x 4, 128 per group, references every 8 frames) matched within 12 px, both on the
   pilot; the second pass's Wiener gains come from the first pass's output, as BM3D's Wiener
   stage takes its gains from the basic estimate.

The data are in the stabilised domain (additive Gaussian noise of standard deviation
``sigma``: e.g. Anscombe-transformed counts, :mod:`ionscope.denoise.stabilise`).

Measured on the ``li_fronts`` twin (64 x 64 px, 50 frames, Poisson ~8 counts/px, seed 0; PSNR
in dB, data range 1; one-off scripts on the same sparse-coding pilot, 31.85 with fronts moving
2.5 px per frame, 33.09 with 0.25 px): the defaults give 35.23 and 36.19 (seed 1, fast: 35.13),
where a 4-D DCT of 16 x 3 x 3 cubes in groups of 32 gave 34.29 and 35.20. Haar along time
alone adds 0.44 dB on the fast scene; longer cubes, smaller in space, in larger groups 0.35
more ((32, 3, 3) 34.95, (16, 2, 2) 34.99, 128 per group 34.84); the exact noise variance of
the overlapping cubes (:func:`group_noise_variance`; white noise assumed: 35.07 and 35.73)
0.16 on the fast scene and 0.46 on the slow one, where a group's cubes overlap most. With the
groups matched on the noiseless truth the fast scene reaches 37.1 (white noise assumed), and
with the groups and gains from a sparse-coding pilot of an independent noise draw 35.7: the
pilot's errors follow the data's own noise, and that is what limits the stage. Not kept (fast
scene, seed 0): a temporal window in the aggregation (-0.01 to -0.09),
a Wiener gain per group chosen by SURE (34.38: the pilot's correlated errors look like signal
to it), thresholds on the match distance instead of a fixed group size (-0.02 to -0.6), a
hard-thresholding stage before the Wiener one (35.00-35.05), a global PCA basis of the cubes
(34.21), matching on a grown neighbourhood (-0.35), pilots from a binomial split of the counts
or from a parametric bootstrap of the estimate (33.3-34.4), and a leave-one-out correction of
the pilot (no gain). Earlier, with the DCT: matching on a smoothed pilot (-0.4 dB), a second
pass on its own output (-0.7), a penalty on the displacement (-0.4 to -1.3), averages over
several cube shapes or over groups matched on other denoisers' output (-0.1 to -0.3), and group
sizes chosen by front or plateau (+0.1).

The refining pass (same scripts and pilots) takes the fast scene from 35.23 to 35.67 (seed 1:
35.13 to 35.63), the slow one from 36.19 to 37.00, and the 157-frame licoo2 twin (dose 20) from
40.12 to 41.34. Its cubes of 4 x 4 px need the wider window: 64 per group within 5 px give
35.46 on the fast scene, within 8 px 35.57, within 12 px (references every 4 frames) 35.71
(seed 1: 35.57; licoo2: 40.60, so the larger groups add 0.74 there at the same cost); 16 x 4 x 4
cubes give 35.43. Not kept for it: matching on the first pass's output (+0.03 on the fast
scene, -0.24 on the licoo2 twin), a third pass (no gain), and boosting the gains with the first
pass's output (strengthen-operate-subtract, +0.03).

Every step is local to ``window[0] + cube[0] - 1`` frames on either side of a reference, so
:func:`collaborative_wiener_lazy` filters a dask series block by block with
:func:`dask.array.map_overlap` and gets the in-memory values: the reference grid is anchored to
the series' first frame and the distances are sums of the same terms in the same order.

References
----------
K. Dabov, A. Foi, V. Katkovnik and K. Egiazarian, IEEE Trans. Image Process. 16, 2080 (2007).
M. Maggioni, G. Boracchi, A. Foi and K. Egiazarian, IEEE Trans. Image Process. 21, 3952 (2012).
M. Maggioni, V. Katkovnik, K. Egiazarian and A. Foi, IEEE Trans. Image Process. 22, 119 (2013).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view
from scipy import fft

from ionscope.errors import ConfigError

__all__ = [
    "CUBE", "WINDOW", "STRIDE", "GROUP_SIZE", "TRANSFORM", "haar_matrix", "axis_transform", "fit_cube",
    "group_noise_variance", "reference_starts",
    "box_sums", "match_groups", "filter_groups", "collaborative_wiener", "collaborative_wiener_lazy",
    "PASSES", "PASS_KEYS", "collaborative_filter", "collaborative_filter_lazy", "BLOCK_FRAMES_PER_OVERLAP",
]

#: Default cube (frames, px, px), search half-window (frames, px, px), reference step and group
#: size; measured on the li_fronts twin (module docstring).
CUBE = (32, 2, 2)
WINDOW = (3, 5, 5)
STRIDE = (4, 2, 2)
GROUP_SIZE = 64
#: Transforms of the group axis and of the cube's time, y and x axes (:func:`axis_transform`).
TRANSFORM = ("haar", "haar", "dct", "dct")
#: Reference cubes filtered per batch (bounds memory: batch x group x cube voxels).
BATCH = 1024
#: Displacements whose distances are held at once while matching (bounds memory: references x
#: this many distances).
DISPLACEMENT_BLOCK = 64


def _triple(value: int | Sequence[int], name: str) -> tuple[int, int, int]:
    values = (int(value),) * 3 if np.isscalar(value) else tuple(int(v) for v in value)
    if len(values) != 3 or min(values) < (0 if name == "window" else 1):
        raise ConfigError(f"{name} must be 3 integers >= {0 if name == 'window' else 1}, got {value!r}")
    return values  # type: ignore[return-value]


def reference_starts(n_valid: int, step: int, first: int = 0) -> np.ndarray:
    """Start indices of the reference cubes along one axis: every ``step``-th of the
    ``n_valid`` starts, counted from the whole array's start; ``first`` is the absolute index of
    element 0 of a block (the grid stays anchored to the whole array). :func:`match_groups` adds
    the array's last valid start, so that every voxel is covered.

    Examples
    --------
    >>> reference_starts(10, 4).tolist(), reference_starts(10, 4, first=3).tolist()
    ([0, 4, 8], [1, 5, 9])
    """
    return np.arange(-(first % step) % step, n_valid, step)


def _window_sums(values: np.ndarray, axis: int, k: int) -> np.ndarray:
    """Sums of ``k`` consecutive elements along ``axis`` (length ``n - k + 1``), by doubling:
    sums of 1, 2, 4, ... elements, and ``k`` as the sum of its binary parts, so a window costs
    about log2(k) additions. Every window's sum is formed by the same additions in the same order
    wherever the array starts."""
    n = values.shape[axis] - k + 1

    def take(array: np.ndarray, start: int, length: int) -> np.ndarray:
        index = [slice(None)] * array.ndim
        index[axis] = slice(start, start + length)
        return array[tuple(index)]

    total = None
    power, width, offset = values, 1, 0
    while True:
        if k & width:
            part = take(power, offset, n)
            total = part.copy() if total is None else total + part
            offset += width
        if 2 * width > k:
            break
        length = power.shape[axis] - width
        power = take(power, 0, length) + take(power, width, length)
        width *= 2
    return total


def box_sums(values: np.ndarray, cube: Sequence[int]) -> np.ndarray:
    """Sums of ``values`` over every ``cube``-shaped box, shape ``values.shape - cube + 1``.

    Window sums one axis at a time (:func:`_window_sums`: no running sums), so each box's sum is
    formed from the same terms in the same order wherever the array starts: a block of a series
    gives bit for bit the whole series' values.
    """
    out = values
    for axis, k in enumerate(cube):
        out = _window_sums(out, axis, int(k))
    return out


def match_groups(pilot: np.ndarray, *, cube: Sequence[int] = CUBE, window: Sequence[int] = WINDOW,
                 stride: Sequence[int] = STRIDE, group_size: int = GROUP_SIZE, first: int = 0,
                 n_total: int | None = None, first_y: int = 0,
                 n_total_y: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Block matching on the pilot: the ``group_size`` closest cubes of every reference cube.

    Parameters
    ----------
    pilot : ndarray, shape (n_frames, ny, nx)
        The first estimate (same domain as the noisy data).
    cube, window, stride : 3 ints
        Cube shape, search half-window and reference step (frames, px, px).
    group_size : int
        Cubes per group (the reference itself is the first: distance 0).
    first, n_total : int
        Absolute index of the pilot's first frame and the whole series' length (a block of a
        series; default: the pilot is the series). The time grid of the references is anchored
        to frame 0 of the series and its last valid start.
    first_y, n_total_y : int
        The same along y (a block of rows of the series).

    Returns
    -------
    references : ndarray of int, shape (n_ref, 3)
        Start (t, y, x) of every reference cube.
    groups : ndarray of int, shape (n_ref, K, 3)
        Starts of the matched cubes, closest first; ``K = min(group_size, the fewest candidates
        any reference has)``.
    """
    # the distances only rank candidates: float32 halves the memory traffic of the differences
    # and box sums of every displacement (2.7x faster on the licoo2 twin's refining pass) and
    # keeps the members of 99.98 % of the groups of float64 (fast li_fronts scene; PSNR equal)
    pilot = np.asarray(pilot, dtype=np.float32)
    shape = pilot.shape
    valid = tuple(s - c + 1 for s, c in zip(shape, cube))
    if min(valid) < 1:
        raise ConfigError(f"cubes of {tuple(cube)} do not fit a series of {shape}")
    n_total = shape[0] if n_total is None else int(n_total)
    last_t = n_total - cube[0] - first          # the series' last valid start, in block frames
    rt = reference_starts(valid[0], stride[0], first)
    if 0 <= last_t < valid[0]:
        rt = np.union1d(rt, [last_t])
    n_total_y = shape[1] if n_total_y is None else int(n_total_y)
    last_y = n_total_y - cube[1] - first_y      # the series' last valid row start, in block rows
    ry = reference_starts(valid[1], stride[1], first_y)
    if 0 <= last_y < valid[1]:
        ry = np.union1d(ry, [last_y])
    rx = np.union1d(reference_starts(valid[2], stride[2]), [valid[2] - 1])
    disps = np.array([(a, b, c) for a in range(-window[0], window[0] + 1)
                      for b in range(-window[1], window[1] + 1) for c in range(-window[2], window[2] + 1)])
    # the fewest candidates a reference has (one at a corner of the valid starts)
    fewest = int(np.prod([min(w, v - 1) + 1 for w, v in zip(window, (min(valid[0], n_total - cube[0] + 1),
                                                                      valid[1], valid[2]))]))
    k = max(1, min(int(group_size), fewest))
    zero = int(np.flatnonzero(~disps.any(axis=1))[0])
    n_ref = rt.size * ry.size * rx.size
    # the k nearest so far of every reference, merged displacement block by displacement block
    # (memory: references x (k + DISPLACEMENT_BLOCK), not references x all displacements)
    best_d = np.zeros((n_ref, 0))
    best_i = np.zeros((n_ref, 0), dtype=np.int64)
    for first_disp in range(0, len(disps), DISPLACEMENT_BLOCK):
        block = range(first_disp, min(first_disp + DISPLACEMENT_BLOCK, len(disps)))
        dist = np.full((len(block), rt.size, ry.size, rx.size), np.inf)
        for j, i in enumerate(block):
            a, b, c = disps[i]
            # starts r whose cube and displaced cube both lie inside: r in [lo, hi) per axis
            lo = (max(0, -a), max(0, -b), max(0, -c))
            hi = (min(valid[0], valid[0] - a), min(valid[1], valid[1] - b), min(valid[2], valid[2] - c))
            if any(h <= low for low, h in zip(lo, hi)):
                continue
            ext = tuple(slice(low, h + cb - 1) for low, h, cb in zip(lo, hi, cube))
            moved = tuple(slice(low + d, h + cb - 1 + d) for low, h, cb, d in zip(lo, hi, cube, (a, b, c)))
            sel = [(r >= low) & (r < h) for r, low, h in zip((rt, ry, rx), lo, hi)]
            # the (y, x) boxes at the references' columns, then the time windows at their frames
            sums = box_sums((pilot[ext] - pilot[moved]) ** 2, (1, cube[1], cube[2]))
            sums = sums[:, ry[sel[1]] - lo[1]][:, :, rx[sel[2]] - lo[2]]
            sums = _window_sums(sums, 0, cube[0])[rt[sel[0]] - lo[0]]
            dist[j][np.ix_(*sel)] = sums
            if i == zero:
                dist[j] = -1.0   # the reference is its group's first member
        cand_d = np.concatenate([best_d, dist.reshape(len(block), -1).T], axis=1)
        cand_i = np.concatenate([best_i, np.broadcast_to(np.arange(block.start, block.stop), (n_ref, len(block)))],
                                axis=1)
        if cand_d.shape[1] > k:
            keep = np.argpartition(cand_d, k - 1, axis=1)[:, :k]
            cand_d, cand_i = np.take_along_axis(cand_d, keep, 1), np.take_along_axis(cand_i, keep, 1)
        best_d, best_i = cand_d, cand_i
    # closest first; ties broken by the displacement's index (deterministic)
    order = np.lexsort((best_i, best_d), axis=1)
    nearest = np.take_along_axis(best_i, order, 1)
    references = np.stack(np.meshgrid(rt, ry, rx, indexing="ij"), -1).reshape(-1, 3)
    groups = references[:, None, :] + disps[nearest]
    return references, groups


def haar_matrix(n: int) -> np.ndarray:
    """Orthonormal Haar transform of length ``n`` (a power of 2) as an ``(n, n)`` matrix: row 0
    the mean, then the differences of halves, coarsest first.

    Examples
    --------
    >>> h = haar_matrix(4)
    >>> bool(np.allclose(h @ h.T, np.eye(4))), (h @ [1.0, 1.0, 0.0, 0.0]).round(3).tolist()
    (True, [1.0, 1.0, 0.0, 0.0])
    """
    if n < 1 or n & (n - 1):
        raise ConfigError(f"a Haar transform needs a power-of-2 length, got {n}")
    out = np.ones((1, 1))
    while out.shape[0] < n:
        m = out.shape[0]
        out = np.vstack([np.kron(out, [1.0, 1.0]), np.kron(np.eye(m), [1.0, -1.0])]) / np.sqrt(2.0)
    return out


def axis_transform(n: int, kind: str) -> np.ndarray:
    """The orthonormal transform of one axis of a group: ``"haar"`` (:func:`haar_matrix`; a
    length that is not a power of 2 falls back to the DCT) or ``"dct"`` (DCT-II)."""
    if kind == "haar" and n & (n - 1) == 0:
        return haar_matrix(n)
    return fft.dct(np.eye(n), axis=0, norm="ortho")


def _transform(values: np.ndarray, matrices: Sequence[np.ndarray]) -> np.ndarray:
    """Apply the group, time and (y, x) transforms ``matrices`` (the last one the Kronecker
    product of y's and x's) along axes 1, 2 and (3, 4) of a batch of groups
    ``(n, K, t, y, x)``: three matrix products on contiguous views, no axis moved."""
    n, k, t, ny, nx = values.shape
    out = np.matmul(matrices[0], values.reshape(n, k, t * ny * nx))
    out = np.matmul(matrices[1], out.reshape(n * k, t, ny * nx))
    return np.matmul(out.reshape(-1, ny * nx), matrices[2].T).reshape(n, k, t, ny, nx)


def _lag_products(matrix: np.ndarray) -> np.ndarray:
    """``R[a, d + n - 1] = sum_i M[a, i] M[a, i + d]`` for every lag ``-n < d < n`` of the
    rows of an ``(n, n)`` transform: the covariance, under white noise, of basis function
    ``a`` on two windows ``d`` apart."""
    n = matrix.shape[1]
    out = np.zeros((matrix.shape[0], 2 * n - 1))
    for d in range(n):
        out[:, n - 1 + d] = out[:, n - 1 - d] = (matrix[:, :n - d] * matrix[:, d:]).sum(axis=1)
    return out


def group_noise_variance(groups: np.ndarray, matrices: Sequence[np.ndarray],
                         cube: Sequence[int]) -> np.ndarray:
    r"""Variance of every transform coefficient of every group under white noise of variance 1.

    The cubes of a group overlap (a cube matched a frame later shares all but one of its
    frames with the reference), so the noise of a group is not white: the coefficient
    :math:`c = \sum_k H_{jk} \sum_p B(p)\, e(s_k + p)` of group row :math:`j` and cube
    basis function :math:`B` has the variance
    :math:`\sum_{k,l} H_{jk} H_{jl} \prod_{\text{axes}} R(s_l - s_k)` with :math:`R` the
    lag products of the cube's 1-D transforms (:func:`_lag_products`), summed over the pairs
    of cubes that overlap. The Haar rows of the group transform are sparse, so the pairs
    cost about :math:`3 K^2` products per group.

    Parameters
    ----------
    groups : ndarray of int, shape (n_groups, K, 3)
        Starts of the cubes of every group.
    matrices : 4 ndarrays
        The transforms of the group axis (K x K) and of the cube's three axes.
    cube : 3 ints

    Returns
    -------
    ndarray, shape (n_groups, K, t, y, x) with (t, y, x) the cube, float32
        1 for every coefficient when no two cubes of a group overlap.
    """
    hg = np.asarray(matrices[0], dtype=np.float64)
    k = hg.shape[0]
    cube_a = np.asarray(cube)
    # the group rows j with H_jk H_jl != 0 of every pair (k, l), pair by pair (CSR)
    pair, rows = np.nonzero(np.abs(hg.T[:, None, :] * hg.T[None, :, :]).reshape(k * k, k) > 1e-12)
    weights = hg[rows, pair // k] * hg[rows, pair % k]
    starts = np.searchsorted(pair, np.arange(k * k + 1))
    n_groups = len(groups)
    # displacements s_l - s_k of every pair, axis by axis (int16: within twice the search window)
    diffs = [(groups[:, None, :, a] - groups[:, :, None, a]).astype(np.int16) for a in (1, 2, 0)]
    overlap = np.abs(diffs[0]) < cube_a[1]
    for diff, c in zip(diffs[1:], cube_a[[2, 0]]):
        overlap &= np.abs(diff) < c
    which, hit = np.nonzero(overlap.reshape(n_groups, k * k))          # group and pair of each overlap
    d = np.stack([diffs[i].reshape(n_groups, k * k)[which, hit] for i in (2, 0, 1)], axis=1).astype(np.int64)
    # only the lags that occur: cubes matched within a few frames of each other are at most
    # twice the search window apart, far fewer lags than the cube's length
    span = np.minimum(cube_a - 1, np.abs(d).max(axis=0)) if len(d) else np.zeros(3, int)
    n_lags = 2 * span + 1
    size = int(np.prod(n_lags))
    d = d + span
    lag = (d[:, 0] * n_lags[1] + d[:, 1]) * n_lags[2] + d[:, 2]
    counts = starts[hit + 1] - starts[hit]
    first = np.repeat(starts[hit] - np.cumsum(counts) + counts, counts) + np.arange(int(counts.sum()))
    index = (np.repeat(which, counts) * k + rows[first]) * size + np.repeat(lag, counts)
    sums = np.bincount(index, weights[first], minlength=n_groups * k * size)
    # contract the lags with the lag products: time, then (y, x) as one Kronecker product
    r = [_lag_products(np.asarray(m, dtype=np.float64))[:, c - 1 - h:c + h]
         for m, c, h in zip(matrices[1:], cube_a, span)]
    out = np.matmul(r[0].astype(np.float32), sums.astype(np.float32).reshape(n_groups * k, n_lags[0], -1))
    out = np.matmul(out, np.kron(r[1], r[2]).T.astype(np.float32))
    return out.reshape(n_groups, k, *cube)


#: Bound on the (group, row, lag) sums :func:`group_noise_variance` holds per batch.
NOISE_SUMS = 1 << 23


def filter_groups(noisy: np.ndarray, estimate: np.ndarray, groups: np.ndarray, *, sigma: float,
                  cube: Sequence[int] = CUBE, transform: Sequence[str] = TRANSFORM,
                  batch: int = BATCH) -> np.ndarray:
    """Collaborative Wiener filtering of the groups and aggregation (steps 2-3): the filtered
    series (the data where no group reaches, which cannot happen with a reference grid that
    covers the array). The Wiener gain comes from ``estimate``'s groups. ``transform`` names
    the transform of the group axis, then of the cube's three axes (:func:`axis_transform`).
    The noise variance of each coefficient is the exact one of its group's overlapping cubes
    (:func:`group_noise_variance`), in the gain and in the aggregation weights."""
    shape = noisy.shape
    # float32 groups and transforms (the noise is ~1e6 times the rounding); sums in float64
    view_n = sliding_window_view(noisy.astype(np.float32), tuple(cube))
    view_p = sliding_window_view(estimate.astype(np.float32), tuple(cube))
    exact = [axis_transform(n, kind) for n, kind in zip((groups.shape[1], *cube), transform)]
    forward = [m.astype(np.float32) for m in (*exact[:2], np.kron(exact[2], exact[3]))]
    inverse = [np.ascontiguousarray(m.T) for m in forward]
    # flat index of every voxel of a cube relative to its start
    deltas = np.ravel_multi_index(np.meshgrid(*[np.arange(c) for c in cube], indexing="ij"), shape).ravel()
    num = np.zeros(noisy.size)
    den = np.zeros(noisy.size)
    axes = (1, 2, 3, 4)
    batch = max(1, min(int(batch), NOISE_SUMS // (groups.shape[1] * int(np.prod([2 * c - 1 for c in cube])))))
    for start in range(0, len(groups), batch):
        g = groups[start:start + batch]
        at = (g[..., 0], g[..., 1], g[..., 2])
        spec_n = _transform(view_n[at], forward)
        spec_p = _transform(view_p[at], forward)
        var = group_noise_variance(g, exact, cube) * np.float32(sigma * sigma)
        power = spec_p * spec_p
        gain = power / (power + var)
        estimate = _transform(gain * spec_n, inverse).reshape(len(g), -1)
        weight = 1.0 / np.maximum((gain * gain * var).sum(axis=axes, dtype=np.float64), 1e-12 * sigma * sigma)
        flat = (np.ravel_multi_index(at, shape)[:, :, None] + deltas).reshape(len(g), -1)
        num += np.bincount(flat.ravel(), (estimate * weight[:, None]).ravel(), minlength=noisy.size)
        den += np.bincount(flat.ravel(), np.repeat(weight, flat.shape[1]), minlength=noisy.size)
    out = noisy.astype(np.float64).ravel().copy()
    hit = den > 0
    out[hit] = num[hit] / den[hit]
    return out.reshape(shape)


def _transforms(transform: Sequence[str]) -> tuple[str, str, str, str]:
    kinds = tuple(str(k) for k in transform)
    if len(kinds) != 4 or any(k not in ("haar", "dct") for k in kinds):
        raise ConfigError(f"transform must be 4 of 'haar' / 'dct' (group, time, y, x), got {transform!r}")
    return kinds  # type: ignore[return-value]


def used_transforms(lengths: Sequence[int], transform: Sequence[str] = TRANSFORM) -> tuple[str, ...]:
    """The transforms :func:`filter_groups` applies to axes of these lengths (a Haar transform of
    a length that is not a power of 2 is a DCT)."""
    return tuple("haar" if kind == "haar" and n & (n - 1) == 0 else "dct" for n, kind in zip(lengths, transform))


def fit_cube(shape: Sequence[int], cube: Sequence[int] = CUBE,
             transform: Sequence[str] = TRANSFORM) -> tuple[int, int, int]:
    """The cube cut to a series of ``shape``: each axis to the series' length, and an axis with
    a Haar transform further to the largest power of 2 that fits (it keeps its Haar transform,
    and a cube shorter than the series can still be matched a few frames earlier or later).

    Examples
    --------
    >>> fit_cube((20, 64, 64)), fit_cube((50, 64, 64)), fit_cube((20, 64, 64), transform=("haar",) + ("dct",) * 3)
    ((16, 2, 2), (32, 2, 2), (20, 2, 2))
    """
    out = []
    for c, s, kind in zip(cube, shape, tuple(transform)[1:]):
        c = max(1, min(int(c), int(s)))
        out.append(1 << (c.bit_length() - 1) if kind == "haar" else c)
    return tuple(out)  # type: ignore[return-value]


def collaborative_wiener(noisy: np.ndarray, pilot: np.ndarray, *, sigma: float,
                         cube: Sequence[int] = CUBE, window: Sequence[int] = WINDOW,
                         stride: Sequence[int] = STRIDE, group_size: int = GROUP_SIZE,
                         transform: Sequence[str] = TRANSFORM, estimate: np.ndarray | None = None,
                         first: int = 0, n_total: int | None = None, first_y: int = 0,
                         n_total_y: int | None = None) -> tuple[np.ndarray, dict[str, Any]]:
    """One collaborative Wiener pass (module docstring) on a numpy series.

    Parameters
    ----------
    noisy, pilot : ndarray, shape (n_frames, ny, nx)
        Noisy data with additive white Gaussian noise of standard deviation ``sigma``, and a
        first estimate of it (e.g. the sparse-coding result), in the same domain. The groups
        are matched on the pilot.
    sigma : float
        Noise standard deviation (> 0).
    cube, window, stride : 3 ints
        Cube shape (frames, px, px; cut to the series' shape), search half-window and reference
        step.
    group_size : int
        Cubes per group.
    transform : 4 str
        Transforms of the group axis and of the cube's (time, y, x) axes: ``"haar"`` or
        ``"dct"`` (:func:`axis_transform`; Haar needs a power-of-2 length, else the DCT is used).
    estimate : ndarray, optional
        The estimate whose groups set the Wiener gain (same shape; default: the pilot). The
        refining pass takes the first pass's output (:func:`collaborative_filter`).
    first, n_total, first_y, n_total_y : int
        For a block of a series: its first frame's index and the series' length, its first row's
        index and the series' number of rows.

    Returns
    -------
    estimate : ndarray
        Same shape, float64.
    info : dict
        ``cube``, ``window``, ``stride``, ``group_size``, ``transform`` (as used) and ``n_groups``.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> truth = np.zeros((8, 16, 16)); truth[:, :, 8:] = 4.0
    >>> noisy = truth + rng.normal(size=truth.shape)
    >>> out, info = collaborative_wiener(noisy, truth + 0.1, sigma=1.0)
    >>> bool(np.mean((out - truth) ** 2) < 0.2 * np.mean((noisy - truth) ** 2))
    True
    """
    noisy = np.asarray(noisy, dtype=np.float64)
    pilot = np.asarray(pilot, dtype=np.float64)
    estimate = pilot if estimate is None else np.asarray(estimate, dtype=np.float64)
    if noisy.ndim != 3 or noisy.shape != pilot.shape or estimate.shape != pilot.shape:
        raise ConfigError(f"noisy {noisy.shape}, pilot {pilot.shape} and estimate {estimate.shape} "
                          "must be (time, y, x) of one shape")
    if not (np.isfinite(sigma) and sigma > 0):
        raise ConfigError(f"sigma must be a finite number > 0, got {sigma!r}")
    window, stride = _triple(window, "window"), _triple(stride, "stride")
    transform = _transforms(transform)
    cube = fit_cube(noisy.shape, _triple(cube, "cube"), transform)
    _, groups = match_groups(pilot, cube=cube, window=window, stride=stride, group_size=group_size,
                             first=first, n_total=n_total, first_y=first_y, n_total_y=n_total_y)
    out = filter_groups(noisy, estimate, groups, sigma=float(sigma), cube=cube, transform=transform)
    return out, {"cube": cube, "window": window, "stride": stride, "group_size": int(groups.shape[1]),
                 "transform": used_transforms((int(groups.shape[1]), *cube), transform),
                 "n_groups": int(groups.shape[0])}


#: Frames of a block of the lazy filter per frame of its overlap on one side: a long series held
#: in one chunk is cut into blocks of about this many times the overlap, which run in parallel
#: (each block also filters its two overlaps: about 2 / 4 more work, and the wall time halves on
#: two workers).
BLOCK_FRAMES_PER_OVERLAP = 4
#: Fewest blocks the lazy filter makes when the rows can be split (2 * window[1] + cube[1] - 1
#: rows of overlap, 12 by default): a short series in one or two time blocks is cut along y too.
MIN_TASKS = 4


def collaborative_wiener_lazy(noisy, pilot, *, sigma: float, cube: Sequence[int] = CUBE,
                              window: Sequence[int] = WINDOW, stride: Sequence[int] = STRIDE,
                              group_size: int = GROUP_SIZE, transform: Sequence[str] = TRANSFORM,
                              estimate=None):
    """:func:`collaborative_wiener` over dask series, block of frames by block of frames.

    Each block gets ``2 window[0] + cube[0] - 1`` frames of its neighbours (``map_overlap``, no
    padding at the ends): every group that adds to one of its own frames, and every candidate
    of those groups, lies inside the extended block, and the reference grid is anchored to the
    series' first frame, so the values equal the in-memory path's. Returns a dask array; y and
    x are one chunk each. ``estimate`` (a dask series of the same shape, default: the pilot)
    sets the Wiener gains, as in :func:`collaborative_wiener`.
    """
    import dask.array as dsa

    from ionscope.blocks import overlap_blocks

    shape = noisy.shape
    transform = _transforms(transform)
    cube = fit_cube(shape, _triple(cube, "cube"), transform)
    window = _triple(window, "window")
    depth = 2 * window[0] + cube[0] - 1
    n_total = int(shape[0])

    noisy = noisy.astype(np.float64).rechunk({1: -1, 2: -1})
    noisy = noisy.rechunk({0: overlap_blocks(n_total, depth, noisy.chunks[0], split_above=1.5,
                                             target=BLOCK_FRAMES_PER_OVERLAP * depth)})
    # few time blocks (a short series): rows split too, so that the workers get a task each
    depth_y = 2 * window[1] + cube[1] - 1
    n_time = len(noisy.chunks[0])
    n_rows = max(1, min(MIN_TASKS // n_time if n_time < MIN_TASKS else 1, shape[1] // (2 * depth_y)))
    if n_rows > 1:
        size = -(-shape[1] // n_rows)
        noisy = noisy.rechunk({1: (size,) * (shape[1] // size) + ((shape[1] % size,) if shape[1] % size else ())})
    if pilot.shape != shape or (estimate is not None and estimate.shape != shape):
        raise ConfigError(f"noisy {shape}, pilot {pilot.shape} and estimate "
                          f"{None if estimate is None else estimate.shape} must be (time, y, x) of one shape")
    pilot = pilot.astype(np.float64).rechunk(noisy.chunks)
    estimate = pilot if estimate is None else estimate.astype(np.float64).rechunk(noisy.chunks)
    used = (depth if n_time > 1 else 0, depth_y if len(noisy.chunks[1]) > 1 else 0)
    starts = [np.r_[0, np.cumsum(noisy.chunks[axis])[:-1]] for axis in (0, 1)]

    def block(values: np.ndarray, matched: np.ndarray, gains: np.ndarray, block_info=None) -> np.ndarray:
        it, iy = block_info[0]["chunk-location"][:2]
        return collaborative_wiener(values, matched, sigma=sigma, cube=cube, window=window,
                                    stride=stride, group_size=group_size, transform=transform, estimate=gains,
                                    first=max(0, int(starts[0][it]) - used[0]), n_total=n_total,
                                    first_y=max(0, int(starts[1][iy]) - used[1]), n_total_y=int(shape[1]))[0]

    if noisy.numblocks[0] == 1 and noisy.numblocks[1] == 1:
        return dsa.map_blocks(block, noisy, pilot, estimate, dtype=np.float64)
    return dsa.map_overlap(block, noisy, pilot, estimate, depth={0: used[0], 1: used[1], 2: 0}, boundary="none",
                           trim=True, dtype=np.float64)


#: The passes of :func:`collaborative_filter`: the first as :func:`collaborative_wiener`'s
#: defaults, then a refining pass of larger cubes matched within a wider window, its gains from
#: the first pass's output (module docstring).
PASSES: tuple[dict[str, Any], ...] = (
    {"cube": CUBE, "window": WINDOW, "stride": STRIDE, "group_size": GROUP_SIZE},
    {"cube": (32, 4, 4), "window": (3, 12, 12), "stride": (8, 4, 4), "group_size": 128},
)


#: The settings a pass may give (:func:`collaborative_wiener`'s keywords).
PASS_KEYS = frozenset({"cube", "window", "stride", "group_size", "transform"})


def _checked(passes: Sequence[dict[str, Any]]) -> Sequence[dict[str, Any]]:
    if not passes:
        raise ConfigError("passes must name at least one pass, e.g. collaborative.PASSES")
    for kwargs in passes:
        unknown = sorted(set(kwargs) - PASS_KEYS) if isinstance(kwargs, dict) else None
        if unknown is None or unknown:
            raise ConfigError(f"a pass is a dict of {sorted(PASS_KEYS)}, got {kwargs!r}")
    return passes


def collaborative_filter(noisy: np.ndarray, pilot: np.ndarray, *, sigma: float,
                         passes: Sequence[dict[str, Any]] = PASSES) -> tuple[np.ndarray, dict[str, Any]]:
    """The collaborative Wiener stage of ``sparse3d``: :func:`collaborative_wiener` passes in turn.

    Every pass matches its groups on the pilot; the first takes its Wiener gains from the pilot
    too, every later one from the previous pass's output.

    Parameters
    ----------
    noisy, pilot : ndarray, shape (n_frames, ny, nx)
        Noisy data (white Gaussian noise of standard deviation ``sigma``) and its first
        estimate, in the same domain.
    sigma : float
        Noise standard deviation (> 0).
    passes : sequence of dict
        Keyword arguments of :func:`collaborative_wiener` for each pass (``PASSES``).

    Returns
    -------
    estimate : ndarray
        Same shape, float64.
    info : dict
        ``passes``: each pass's info (:func:`collaborative_wiener`).

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> truth = np.zeros((8, 16, 16)); truth[:, :, 8:] = 4.0
    >>> noisy = truth + rng.normal(size=truth.shape)
    >>> out, info = collaborative_filter(noisy, truth + 0.1, sigma=1.0)
    >>> [p["cube"] for p in info["passes"]]
    [(8, 2, 2), (8, 4, 4)]
    """
    out, infos = None, []
    for kwargs in _checked(passes):
        out, info = collaborative_wiener(noisy, pilot, sigma=sigma, estimate=out, **kwargs)
        infos.append(info)
    return out, {"passes": infos}


def collaborative_filter_lazy(noisy, pilot, *, sigma: float, passes: Sequence[dict[str, Any]] = PASSES):
    """:func:`collaborative_filter` over dask series (:func:`collaborative_wiener_lazy` per pass,
    the in-memory values). Returns a dask array and the info of :func:`collaborative_filter`
    without the number of groups."""
    out, infos = None, []
    for kwargs in _checked(passes):
        out = collaborative_wiener_lazy(noisy, pilot, sigma=sigma, estimate=out, **kwargs)
        cube = fit_cube(noisy.shape, kwargs.get("cube", CUBE), kwargs.get("transform", TRANSFORM))
        group_size = int(kwargs.get("group_size", GROUP_SIZE))
        infos.append({"cube": cube, "window": _triple(kwargs.get("window", WINDOW), "window"),
                      "stride": _triple(kwargs.get("stride", STRIDE), "stride"), "group_size": group_size,
                      "transform": used_transforms((group_size, *cube), kwargs.get("transform", TRANSFORM))})
    return out, {"passes": infos}
