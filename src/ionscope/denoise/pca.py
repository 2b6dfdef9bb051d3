r"""PCA truncation of a map series with a known noise level - the ``pca`` baseline's kernel
(:func:`ionscope.denoise.baselines.pca_denoise` is its labelled wrapper).

Two modes, both with the Gavish-Donoho optimal hard threshold for the singular values of a matrix
with white noise of known std (Gavish & Donoho 2014):

- ``mode="time"``: the ``(n_frames, ny * nx)`` matrix ``Y`` minus each pixel's mean over time is
  truncated to the singular values above the threshold: ``mean + U_r U_r^T (Y - mean)``.
- ``mode="patches"``: all ``p x p`` patches of every frame minus their own means are projected on
  the principal components whose covariance eigenvalue is above the threshold's; overlapping
  patches are averaged.

Both modes are a sum over the data (the ``n_frames x n_frames`` Gram matrix of the centred
pixels, or the patch covariance), one small eigen-decomposition, and a projection that is local
(a pixel's own time course, or one frame's patches). So a dask-backed series is done in two
passes, holding a few blocks at a time, never the series: the Gram matrix or the covariance is
summed over blocks (of rows with every frame, or of whole frames) in one computed pass, and the
result is a dask array that projects every block on the kept components as it is computed - the
in-memory values within floating-point rounding.

Why the first pass is computed, not left in the graph: a graph holding both passes keeps every
block of the first in memory until the projector (which needs them all) is known, i.e. the
whole series; reading the blocks again inside the same graph needs
:func:`dask.graph_manipulation.bind`, which in dask 2026.8 does not rewrite the keys inside
rechunk tasks (new-style ``Task`` objects), so the blocks were still shared (measured: 32 block
reads for 32 blocks instead of 64). In memory, ``mode="time"`` takes the SVD of ``Y`` itself.

References
----------
M. Gavish and D. L. Donoho, "The optimal hard threshold for singular values is 4/sqrt(3)",
IEEE Trans. Inf. Theory 60, 5040 (2014).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from ionscope.denoise.patches import PatchGrid
from ionscope.errors import ConfigError

__all__ = ["gavish_donoho_threshold", "pca_stack", "SPECTRUM_LENGTH", "BLOCK_BYTES"]

#: Leading singular values (``mode="time"``) or covariance eigenvalues (``"patches"``) reported.
SPECTRUM_LENGTH = 64
#: Bytes of float64 a block of the lazy path holds (rows with every frame, or whole frames).
BLOCK_BYTES = 64 * 2**20

_CRITERION = {"time": "Gavish-Donoho optimal hard threshold (known sigma)",
              "patches": "Gavish-Donoho optimal hard threshold of the patch matrix (known sigma)"}


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


def _descending_eigh(matrix: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    evals, evecs = np.linalg.eigh(matrix)
    return evals[::-1], evecs[:, ::-1]


def _kept(values: np.ndarray, edge: float, rank: int | None) -> int:
    """Components kept: those above ``edge``, or exactly ``rank`` (at most all)."""
    return int(np.count_nonzero(values > edge)) if rank is None else min(int(rank), values.size)


def _projector(kept: np.ndarray) -> np.ndarray:
    """``V V^T`` of the kept orthonormal components ``V`` (columns)."""
    return kept @ kept.T


# --------------------------------------------------------------------------- mode "time"


def _centred_gram(block: np.ndarray) -> np.ndarray:
    """``(Y - mean) (Y - mean)^T`` of a ``(n_frames, ...)`` block, the mean over time per pixel."""
    y = block.reshape(block.shape[0], -1)
    y = y - y.mean(axis=0)
    return y @ y.T


def _time_singular_values(gram: np.ndarray, n_pixels: int) -> tuple[np.ndarray, np.ndarray]:
    """Singular values of the centred ``(n_frames, n_pixels)`` matrix from its Gram matrix, largest
    first, and the left singular vectors."""
    evals, evecs = _descending_eigh(gram)
    n = min(gram.shape[0], int(n_pixels))
    return np.sqrt(np.clip(evals[:n], 0.0, None)), evecs[:, :n]


def _project_time(block: np.ndarray, projector: np.ndarray) -> np.ndarray:
    y = block.reshape(block.shape[0], -1)
    mean = y.mean(axis=0)
    return (mean + projector @ (y - mean)).reshape(block.shape)


def _pca_time(stack: np.ndarray, sigma: float, rank: int | None) -> tuple[np.ndarray, dict[str, Any]]:
    n_t = stack.shape[0]
    y = stack.reshape(n_t, -1)
    mean = y.mean(axis=0)
    u, s, vt = np.linalg.svd(y - mean, full_matrices=False)
    # centring removes one degree of freedom along time
    threshold = gavish_donoho_threshold((n_t - 1, y.shape[1]), sigma)
    r = _kept(s, threshold, rank)
    out = mean + (u[:, :r] * s[:r]) @ vt[:r]
    return out.reshape(stack.shape), {"rank": r, "threshold": threshold, "spectrum": s[:SPECTRUM_LENGTH].tolist()}


def _pca_time_lazy(stack, sigma: float, rank: int | None) -> tuple[Any, dict[str, Any]]:
    """Mode ``time`` of a dask stack: blocks of rows with every frame; their Gram matrices summed
    (one computed pass), then every block projected (lazy)."""
    import dask.array as dsa

    n_t, ny, nx = (int(n) for n in stack.shape)
    rows = max(1, min(ny, BLOCK_BYTES // (8 * n_t * nx)))
    blocks = stack.astype(np.float64).rechunk({0: -1, 1: rows, 2: -1})
    grams = dsa.blockwise(lambda b: _centred_gram(b)[None], "jab", blocks, "tjx", new_axes={"a": n_t, "b": n_t},
                          adjust_chunks={"j": 1}, concatenate=True, dtype=np.float64)
    gram = np.asarray(grams.sum(axis=0).compute())
    n_pixels = ny * nx
    threshold = gavish_donoho_threshold((n_t - 1, n_pixels), sigma)
    s, u = _time_singular_values(gram, n_pixels)
    r = _kept(s, threshold, rank)
    out = blocks.map_blocks(_project_time, _projector(u[:, :r]), dtype=np.float64)
    return out, {"rank": r, "threshold": threshold, "spectrum": s[:SPECTRUM_LENGTH].tolist()}


# --------------------------------------------------------------------------- mode "patches"


def _patch_covariance(stack: np.ndarray, patch: int, max_patches: int) -> np.ndarray:
    """``sum X^T X`` over the mean-removed ``patch x patch`` patches of every frame of ``stack``."""
    grid = PatchGrid.from_shape(stack.shape, (1, patch, patch))
    cov = np.zeros((grid.n_features, grid.n_features))
    for rows in grid.chunks(max_patches):
        x = grid.extract(stack, rows)
        x -= x.mean(axis=1, keepdims=True)
        cov += x.T @ x
    return cov


def _patch_edge(shape: Sequence[int], patch: int, sigma: float) -> tuple[int, float]:
    """Patches of a stack of ``shape`` and the eigenvalue edge of their covariance: singular values
    of the ``(n_patches, n_features)`` matrix are ``sqrt(n_patches * eigenvalue)``; centring each
    patch removes one feature dimension."""
    grid = PatchGrid.from_shape(tuple(shape), (1, patch, patch))
    threshold = gavish_donoho_threshold((grid.n_patches, grid.n_features - 1), sigma)
    return grid.n_patches, threshold**2 / grid.n_patches


def _project_patches(stack: np.ndarray, projector: np.ndarray, patch: int, max_patches: int) -> np.ndarray:
    """Every patch of every frame projected by ``projector`` (its mean kept), overlaps averaged."""
    grid = PatchGrid.from_shape(stack.shape, (1, patch, patch))
    num = np.zeros(stack.shape)
    for rows in grid.chunks(max_patches):
        x = grid.extract(stack, rows)
        means = x.mean(axis=1, keepdims=True)
        x -= means
        grid.accumulate(means + x @ projector, num, rows)
    return num / grid.coverage()


def _pca_patches_lazy(stack, sigma: float, patch: int, rank: int | None,
                      max_patches: int) -> tuple[Any, dict[str, Any]]:
    """Mode ``patches`` of a dask stack: blocks of whole frames; their patch covariances summed
    (one computed pass), then every block projected (lazy)."""
    import dask.array as dsa

    n_t, ny, nx = (int(n) for n in stack.shape)
    frames = max(1, min(n_t, BLOCK_BYTES // (8 * ny * nx)))
    blocks = stack.astype(np.float64).rechunk({0: frames, 1: -1, 2: -1})
    n_f = patch * patch
    covs = dsa.blockwise(lambda b: _patch_covariance(b, patch, max_patches)[None], "tab", blocks, "tyx",
                         new_axes={"a": n_f, "b": n_f}, adjust_chunks={"t": 1}, concatenate=True, dtype=np.float64)
    cov = np.asarray(covs.sum(axis=0).compute())
    n_patches, edge = _patch_edge(stack.shape, patch, sigma)
    evals, evecs = _descending_eigh(cov / n_patches)
    r = _kept(evals, edge, rank)
    out = blocks.map_blocks(_project_patches, _projector(evecs[:, :r]), patch, max_patches, dtype=np.float64)
    return out, {"rank": r, "threshold": float(edge), "spectrum": evals[:SPECTRUM_LENGTH].tolist()}


def pca_stack(
    stack: Any,
    sigma: float,
    *,
    mode: str = "time",
    patch: int = 8,
    rank: int | None = None,
    max_patches: int = 65536,
) -> tuple[Any, dict[str, Any]]:
    """PCA truncation of a map series with white Gaussian noise of std ``sigma`` (module docstring).

    Parameters
    ----------
    stack : ndarray or dask array, shape (n_frames, ny, nx)
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
    denoised : ndarray (float64), or a dask array for a dask ``stack``
    info : dict
        ``rank``, ``threshold``, ``spectrum`` (singular values, ``mode="time"``, or covariance
        eigenvalues, ``mode="patches"``; largest first, at most :data:`SPECTRUM_LENGTH`) and
        ``criterion``.

    Computes: of a dask ``stack``, one pass (the Gram matrix or the patch covariance; a few blocks
    in memory at a time); the result is dask-backed.

    Examples
    --------
    >>> import dask.array as dsa
    >>> rng = np.random.default_rng(0)
    >>> truth = np.outer(np.linspace(1, 2, 12), np.ones(64)).reshape(12, 8, 8)
    >>> noisy = truth + 0.1 * rng.normal(size=truth.shape)
    >>> out, info = pca_stack(noisy, 0.1)
    >>> lazy, lazy_info = pca_stack(dsa.from_array(noisy, chunks=(5, 8, 8)), 0.1)
    >>> info["rank"], lazy_info["rank"], bool(np.allclose(lazy.compute(), out))
    (1, 1, True)
    """
    lazy = hasattr(stack, "dask") and hasattr(stack, "chunks")
    if mode == "time":
        if stack.shape[0] < 2:
            raise ConfigError("PCA over time needs at least 2 frames; use mode='patches'")
        out, info = (_pca_time_lazy(stack, sigma, rank) if lazy
                     else _pca_time(np.asarray(stack, dtype=np.float64), sigma, rank))
    elif mode == "patches":
        if lazy:
            out, info = _pca_patches_lazy(stack, sigma, int(patch), rank, int(max_patches))
        else:
            stack = np.asarray(stack, dtype=np.float64)
            n_patches, edge = _patch_edge(stack.shape, int(patch), sigma)
            cov = _patch_covariance(stack, int(patch), int(max_patches))
            evals, evecs = _descending_eigh(cov / n_patches)
            r = _kept(evals, edge, rank)
            out = _project_patches(stack, _projector(evecs[:, :r]), int(patch), int(max_patches))
            info = {"rank": r, "threshold": float(edge), "spectrum": evals[:SPECTRUM_LENGTH].tolist()}
    else:
        raise ConfigError(f"PCA mode must be 'time' or 'patches', got {mode!r}")
    return out, {**info, "criterion": _CRITERION[mode] if rank is None else "fixed rank"}
