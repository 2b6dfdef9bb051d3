"""Patch extraction and overlap aggregation (ionscope.denoise.patches)."""

from __future__ import annotations

import numpy as np
import pytest

from ionscope.denoise.patches import (
    PatchGrid,
    aggregate_patches,
    extract_patches,
    patch_positions,
    remove_patch_mean,
)
from ionscope.errors import ConfigError, DimensionError


@pytest.fixture(scope="module")
def series():
    return np.random.default_rng(0).random((9, 23, 19))


def test_positions_cover_the_last_pixels():
    assert patch_positions(23, 8, 1).tolist() == list(range(16))
    assert patch_positions(23, 8, 4).tolist() == [0, 4, 8, 12, 15]
    assert patch_positions(8, 8, 3).tolist() == [0]
    with pytest.raises(ConfigError, match="does not fit"):
        patch_positions(5, 8)


@pytest.mark.parametrize(
    "patch_shape, stride",
    [((1, 8, 8), 1), ((3, 5, 5), 1), ((1, 6, 4), (1, 3, 2)), ((4, 7, 7), (2, 4, 5)),
     ((9, 23, 19), 1)],
)
def test_identity_coding_reproduces_the_series_exactly(series, patch_shape, stride):
    patches, grid = extract_patches(series, patch_shape, stride)
    assert patches.shape == (grid.n_patches, int(np.prod(patch_shape)))
    out = aggregate_patches(patches, grid)
    np.testing.assert_allclose(out, series, rtol=0, atol=1e-14)
    # also after mean removal and adding the means back, and when blending in the image
    centred, means = remove_patch_mean(patches)
    np.testing.assert_allclose(centred.mean(axis=1), 0.0, atol=1e-15)
    back = aggregate_patches(centred + means[:, None], grid, image=series, lam=3.0)
    np.testing.assert_allclose(back, series, rtol=0, atol=1e-14)


def test_patches_hold_the_right_pixels_and_coverage_counts(series):
    grid = PatchGrid.from_shape(series.shape, (2, 3, 3), (1, 2, 2))
    patches = grid.extract(series).reshape(grid.grid_shape + (2, 3, 3))
    t, y, x = 3, 2, 4
    ty, yy, xx = (grid.positions[0][t], grid.positions[1][y], grid.positions[2][x])
    np.testing.assert_array_equal(patches[t, y, x], series[ty:ty + 2, yy:yy + 3, xx:xx + 3])
    # coverage against a brute-force count
    count = np.zeros(series.shape)
    for a in grid.positions[0]:
        for b in grid.positions[1]:
            for c in grid.positions[2]:
                count[a:a + 2, b:b + 3, c:c + 3] += 1
    np.testing.assert_array_equal(grid.coverage(), count)
    flat = np.array([0, 17, grid.n_patches - 1])
    np.testing.assert_array_equal(grid.extract_at(series, flat), grid.extract(series)[flat])


def test_weighted_aggregation_formula(series):
    """X = (lam Y + sum R^T x) / (lam + sum R^T R) with patches of a different image."""
    other = series[::-1] * 2.0
    patches, grid = extract_patches(other, (1, 4, 4), 2)
    lam = 1.7
    out = aggregate_patches(patches, grid, image=series, lam=lam)
    cov = grid.coverage()
    np.testing.assert_allclose(out, (lam * series + cov * other) / (lam + cov), rtol=1e-13)
    with pytest.raises(ConfigError, match="observed image"):
        aggregate_patches(patches, grid, lam=1.0)


def test_chunked_processing_equals_one_pass(series):
    grid = PatchGrid.from_shape(series.shape, (3, 5, 5), (1, 2, 3))
    chunks = grid.chunks(max_patches=grid.n_patches // 4)
    assert len(chunks) > 2
    acc = np.zeros(series.shape)
    pieces = []
    for rows in chunks:
        block = grid.extract(series, rows)
        pieces.append(block)
        grid.accumulate(block * 2.0, acc, rows)
    np.testing.assert_array_equal(np.concatenate(pieces), grid.extract(series))
    np.testing.assert_allclose(acc / grid.coverage(), 2.0 * series, rtol=1e-14)


def test_extract_works_on_a_single_map_and_rejects_bad_shapes():
    img = np.arange(30.0).reshape(5, 6)
    patches, grid = extract_patches(img, 3)
    assert grid.grid_shape == (3, 4)
    np.testing.assert_array_equal(patches[0], img[:3, :3].ravel())
    with pytest.raises(ConfigError, match="exceeds the array size"):
        PatchGrid.from_shape((5, 6), 7)
    with pytest.raises(DimensionError):
        grid.extract(np.zeros((6, 6)))
    with pytest.raises(DimensionError):
        PatchGrid.from_shape((5, 6), (2, 2, 2))
