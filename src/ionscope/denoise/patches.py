r"""Patch extraction and weighted overlap aggregation for images and image series.

A :class:`PatchGrid` describes where the patches of an N-D array lie: per axis the patch
length and the start positions (every ``stride``-th position plus the last one, so the patches
cover every pixel). One class serves every case: 2-D ``(p, p)`` patches of a map, 2-D patches of
every frame of a ``(time, y, x)`` series (patch shape ``(1, p, p)``) and space-time patches
``(t, p, p)`` that span ``t`` neighbouring frames.

Extraction reads through :func:`numpy.lib.stride_tricks.sliding_window_view` (a view) and makes
one copy, the ``(n_patches, n_features)`` matrix that the coding GEMM needs. Aggregation is
the closed-form solution of Elad & Aharon (2006),

.. math::

    \hat X = \Big(\lambda Y + \sum_{ij} R_{ij}^T \hat x_{ij}\Big) \Big/
             \Big(\lambda + \sum_{ij} R_{ij}^T R_{ij}\Big),

implemented as a scatter-add that loops over the ``prod(patch_shape)`` offsets inside a patch
(each offset adds one strided slab of all patches at once; positions within one offset never
collide, so no :func:`numpy.add.at` is needed). Both extraction and aggregation take a range
of positions along the first axis, so a long series is processed in chunks of frames with
memory bounded by the chunk.

References
----------
M. Elad and M. Aharon, "Image denoising via sparse and redundant representations over learned
dictionaries", IEEE Trans. Image Process. 15, 3736 (2006).
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Sequence

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from ionscope.errors import ConfigError, DimensionError


def patch_positions(size: int, length: int, stride: int = 1) -> np.ndarray:
    """Start positions of patches of ``length`` along an axis of ``size`` pixels.

    Every ``stride``-th position from 0, plus the last position ``size - length`` so the last
    pixels are covered.

    Examples
    --------
    >>> patch_positions(10, 4, 3).tolist()
    [0, 3, 6]
    >>> patch_positions(10, 4, 4).tolist()
    [0, 4, 6]
    """
    size, length, stride = int(size), int(length), int(stride)
    if length < 1 or stride < 1:
        raise ConfigError(f"patch length and stride must be >= 1, got {length} and {stride}")
    if length > size:
        raise ConfigError(f"a patch of length {length} does not fit an axis of {size} pixels")
    pos = np.arange(0, size - length + 1, stride)
    if pos[-1] != size - length:
        pos = np.append(pos, size - length)
    return pos


def _as_tuple(value: int | Sequence[int], ndim: int, name: str) -> tuple[int, ...]:
    if np.ndim(value) == 0:
        return (int(value),) * ndim
    out = tuple(int(v) for v in value)
    if len(out) != ndim:
        raise DimensionError(f"{name} {tuple(value)} must have {ndim} entries, one per axis")
    return out


@dataclasses.dataclass(frozen=True)
class PatchGrid:
    """Positions of overlapping patches on an N-D array.

    Attributes
    ----------
    image_shape : tuple of int
        Shape of the arrays the grid applies to.
    patch_shape : tuple of int
        Patch length per axis.
    positions : tuple of ndarray
        Start positions per axis (see :func:`patch_positions`).
    """

    image_shape: tuple[int, ...]
    patch_shape: tuple[int, ...]
    positions: tuple[np.ndarray, ...]

    @classmethod
    def from_shape(
        cls,
        image_shape: Sequence[int],
        patch_shape: int | Sequence[int],
        stride: int | Sequence[int] = 1,
    ) -> PatchGrid:
        """Grid of ``patch_shape`` patches every ``stride`` pixels over ``image_shape``."""
        image_shape = tuple(int(s) for s in image_shape)
        ndim = len(image_shape)
        patch_shape = _as_tuple(patch_shape, ndim, "patch_shape")
        stride = _as_tuple(stride, ndim, "stride")
        for axis, (size, length) in enumerate(zip(image_shape, patch_shape)):
            if length > size:
                raise ConfigError(
                    f"patch length {length} exceeds the array size {size} along axis {axis}; "
                    f"use a smaller patch (array shape {image_shape})"
                )
        positions = tuple(
            patch_positions(n, p, s) for n, p, s in zip(image_shape, patch_shape, stride)
        )
        return cls(image_shape, patch_shape, positions)

    @property
    def grid_shape(self) -> tuple[int, ...]:
        """Number of patch positions per axis."""
        return tuple(p.size for p in self.positions)

    @property
    def n_patches(self) -> int:
        return int(np.prod(self.grid_shape))

    @property
    def n_features(self) -> int:
        return int(np.prod(self.patch_shape))

    def chunks(self, max_patches: int) -> list[slice]:
        """Slices of positions along the first axis with at most ``max_patches`` patches each
        (at least one position per chunk)."""
        per = max(1, int(np.prod(self.grid_shape[1:])))
        step = max(1, int(max_patches) // per)
        n0 = self.grid_shape[0]
        return [slice(i, min(i + step, n0)) for i in range(0, n0, step)]

    def _check(self, images: np.ndarray) -> None:
        if tuple(images.shape) != self.image_shape:
            raise DimensionError(
                f"array of shape {tuple(images.shape)} does not match the patch grid's "
                f"{self.image_shape}"
            )

    def extract(self, images: np.ndarray, rows: slice = slice(None)) -> np.ndarray:
        """Patches at the positions ``rows`` of the first axis, as ``(n, n_features)``.

        One copy: the strided window view is indexed straight into the output matrix.
        """
        images = np.asarray(images)
        self._check(images)
        windows = sliding_window_view(images, self.patch_shape)
        pos = (self.positions[0][rows],) + self.positions[1:]
        picked = windows[np.ix_(*pos)]
        return picked.reshape(-1, self.n_features)

    def extract_at(self, images: np.ndarray, flat_index: np.ndarray) -> np.ndarray:
        """Patches at flat grid indices (C order over :attr:`grid_shape`), ``(n, n_features)``."""
        images = np.asarray(images)
        self._check(images)
        windows = sliding_window_view(images, self.patch_shape)
        where = np.unravel_index(np.asarray(flat_index), self.grid_shape)
        starts = tuple(p[w] for p, w in zip(self.positions, where))
        return windows[starts].reshape(-1, self.n_features)

    def _targets(self, rows: slice) -> tuple[list, bool]:
        """Per axis, the positions of ``rows``, and whether all are arithmetic progressions."""
        pos = [self.positions[0][rows], *self.positions[1:]]
        regular = []
        for p in pos:
            if p.size == 1:
                regular.append(slice(int(p[0]), int(p[0]) + 1, 1))
                continue
            step = int(p[1] - p[0])
            if step > 0 and np.all(np.diff(p) == step):
                regular.append(slice(int(p[0]), int(p[-1]) + 1, step))
            else:
                return pos, False
        return regular, True

    def accumulate(
        self,
        values: np.ndarray | float,
        out: np.ndarray,
        rows: slice = slice(None),
    ) -> np.ndarray:
        """Add patches into ``out`` in place: ``out += sum_ij R_ij^T values_ij``.

        Parameters
        ----------
        values : ndarray of shape (n, n_features), or a scalar
            Patch values for the positions ``rows`` (as from :meth:`extract`); a scalar adds
            that value under every patch (``1`` gives the coverage ``sum R^T R``).
        out : ndarray
            Array of :attr:`image_shape` to add into.
        rows : slice
            Positions along the first axis that ``values`` belongs to.
        """
        if tuple(out.shape) != self.image_shape:
            raise DimensionError(
                f"output of shape {out.shape} does not match the patch grid's {self.image_shape}"
            )
        targets, regular = self._targets(rows)
        sub_grid = tuple(
            (t.stop - t.start + t.step - 1) // t.step if isinstance(t, slice) else t.size
            for t in targets
        )
        scalar = np.ndim(values) == 0
        if not scalar:
            values = np.asarray(values).reshape(sub_grid + self.patch_shape)
        for offset in itertools.product(*(range(p) for p in self.patch_shape)):
            if regular:
                index = tuple(
                    slice(t.start + o, t.stop + o, t.step) for t, o in zip(targets, offset)
                )
            else:
                index = np.ix_(*(t + o for t, o in zip(targets, offset)))
            if scalar:
                out[index] += values
            else:
                out[index] += values[(Ellipsis,) + offset]
        return out

    def coverage(self, dtype=np.float64) -> np.ndarray:
        """``sum R^T R``: how many patches cover each pixel."""
        return self.accumulate(1.0, np.zeros(self.image_shape, dtype=dtype))


def extract_patches(
    images: np.ndarray,
    patch_shape: int | Sequence[int],
    stride: int | Sequence[int] = 1,
) -> tuple[np.ndarray, PatchGrid]:
    """All patches of an array, ``(n_patches, n_features)``, and their :class:`PatchGrid`.

    Examples
    --------
    >>> import numpy as np
    >>> img = np.arange(20.0).reshape(4, 5)
    >>> patches, grid = extract_patches(img, 2, stride=2)
    >>> patches.shape, grid.grid_shape
    ((6, 4), (2, 3))
    >>> bool(np.array_equal(aggregate_patches(patches, grid), img))
    True
    """
    images = np.asarray(images)
    grid = PatchGrid.from_shape(images.shape, patch_shape, stride)
    return grid.extract(images), grid


def aggregate_patches(
    patches: np.ndarray,
    grid: PatchGrid,
    *,
    image: np.ndarray | None = None,
    lam: float = 0.0,
) -> np.ndarray:
    """Closed-form weighted average of overlapping patches (Elad & Aharon 2006).

    ``X = (lam * image + sum R^T patch) / (lam + sum R^T R)``; with ``lam = 0`` the plain
    average of the patches covering each pixel.

    Parameters
    ----------
    patches : ndarray, shape (grid.n_patches, grid.n_features)
    grid : PatchGrid
    image : ndarray, optional
        The noisy observation ``Y`` (required when ``lam > 0``).
    lam : float
        Weight of the observation relative to one patch.
    """
    if lam < 0 or not np.isfinite(lam):
        raise ConfigError(f"lam must be a finite number >= 0, got {lam!r}")
    num = np.zeros(grid.image_shape, dtype=np.float64)
    grid.accumulate(patches, num)
    den = grid.coverage()
    if lam > 0:
        if image is None:
            raise ConfigError("lam > 0 needs the observed image to blend in")
        num += lam * np.asarray(image, dtype=np.float64)
        den += lam
    return num / den


def remove_patch_mean(patches: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Patches minus their means (the DC part) and the means, ``(n, n_features)`` and ``(n,)``."""
    means = patches.mean(axis=1)
    return patches - means[:, None], means


__all__ = [
    "PatchGrid",
    "patch_positions",
    "extract_patches",
    "aggregate_patches",
    "remove_patch_mean",
]
