"""Phase unwrapping: round trips, NaN and masked pixels (never hangs), quality guidance."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

from ionscope.data import provenance, signal
from ionscope.errors import ConfigError, DimensionError, InputError
from ionscope.holography import unwrap_phase
from ionscope.holography.unwrap import (
    residues,
    unwrap_lsq_kernel,
    unwrap_quality_kernel,
    wrap,
)


def _surface(ny=96, nx=120):
    y, x = np.mgrid[0:ny, 0:nx].astype(float)
    return 0.45 * x + 0.004 * (y - 30) ** 2 + 2.5 * np.sin(x / 13.0) * np.cos(y / 17.0)


def _same_up_to_cycles(out, truth, valid=None):
    """True when ``out - truth`` is one constant multiple of 2 pi on ``valid`` pixels."""
    valid = np.isfinite(out) if valid is None else valid
    d = (out - truth)[valid]
    k = d / (2 * np.pi)
    return np.allclose(d, d[0], atol=1e-9) and abs(k[0] - round(k[0])) < 1e-9


@pytest.mark.parametrize("method", ["quality", "fft"])
def test_round_trip_recovers_the_phase(method):
    truth = _surface()
    assert np.abs(np.diff(truth, axis=1)).max() < np.pi  # sampled well enough to unwrap
    out = unwrap_phase(wrap(truth), method=method)
    assert _same_up_to_cycles(out, truth)


@pytest.mark.parametrize("method", ["quality", "fft"])
def test_nan_and_masked_pixels_are_skipped(method):
    truth = _surface()
    psi = wrap(truth)
    psi[10, 10] = np.nan
    psi[50, 3:9] = np.inf
    mask = np.zeros(truth.shape, dtype=bool)
    mask[40:44, :] = True  # cuts the image into two regions
    mask[:, 60] = True
    out = unwrap_phase(psi, mask=mask, method=method)
    invalid = mask | ~np.isfinite(psi)
    assert np.isnan(out[invalid]).all()
    assert np.isfinite(out[~invalid]).all()
    # each separate region is exact up to its own whole number of cycles
    for rows in (slice(0, 40), slice(44, None)):
        for cols in (slice(0, 60), slice(61, None)):
            region = np.zeros(truth.shape, dtype=bool)
            region[rows, cols] = True
            region &= ~invalid
            assert _same_up_to_cycles(out, truth, region)


def test_all_invalid_input_returns_nan_without_hanging():
    psi = np.full((20, 20), np.nan)
    out = unwrap_phase(psi)
    assert np.isnan(out).all()
    out = unwrap_phase(np.zeros((20, 20)), mask=np.ones((20, 20), bool), method="fft")
    assert np.isnan(out).all()


def test_isolated_pixels_keep_their_value():
    psi = wrap(_surface(30, 30))
    mask = np.ones_like(psi, dtype=bool)
    mask[::3, ::3] = False  # every valid pixel is isolated
    out = unwrap_phase(psi, mask=mask)
    np.testing.assert_allclose(out[~mask], psi[~mask])


def test_quality_guidance_routes_around_bad_pixels():
    """A band of random phase cuts through the image except for a clean bridge: integration
    paths must go around it. The amplitude as quality and the default (Herraez reliability)
    do; a uniform or inverted quality integrates through the noise and fails."""
    rng = np.random.default_rng(0)
    truth = _surface(80, 80)
    psi = wrap(truth)
    noisy = np.zeros(truth.shape, dtype=bool)
    noisy[38:42, 10:] = True  # the bridge at columns 0..9 stays clean
    psi[noisy] = rng.uniform(-np.pi, np.pi, noisy.sum())
    amplitude = np.where(noisy, 0.01, 1.0)
    good = ~noisy
    assert _same_up_to_cycles(unwrap_phase(psi, quality=amplitude), truth, good)
    assert _same_up_to_cycles(unwrap_phase(psi), truth, good)
    assert not _same_up_to_cycles(unwrap_phase(psi, quality=np.ones(psi.shape)), truth, good)
    assert not _same_up_to_cycles(unwrap_phase(psi, quality=-amplitude), truth, good)
    assert not _same_up_to_cycles(unwrap_phase(psi, method="fft"), truth, good)


def test_continuous_input_is_returned_unchanged():
    psi = np.linspace(-1, 1, 64 * 64).reshape(64, 64).astype(np.float32)
    out = unwrap_phase(psi)
    assert out.dtype == np.float32
    np.testing.assert_array_equal(out, psi)


def test_one_dimensional_with_nan():
    truth = np.linspace(0, 30, 200)
    psi = wrap(truth)
    psi[50] = np.nan
    out = unwrap_phase(psi)
    assert np.isnan(out[50])
    good = np.isfinite(out)
    assert _same_up_to_cycles(out, truth, good)


def test_fft_method_non_congruent_is_smooth_least_squares():
    truth = _surface(64, 64)
    out = unwrap_phase(wrap(truth), method="fft", congruent=False)
    d = out - truth
    assert np.abs(d - d.mean()).max() < 1e-6  # residue-free input: exact up to a constant


def test_dataarray_in_dataarray_out():
    truth = _surface(40, 50)
    da = signal(wrap(truth), ("y", "x"), name="phase", units="rad", coords={"y": 0.5, "x": 0.5})
    out = unwrap_phase(da)
    assert isinstance(out, xr.DataArray)
    assert out.dims == ("y", "x") and out.attrs["units"] == "rad"
    assert provenance(out)[-1]["step"] == "ionscope.holography.unwrap_phase"
    assert _same_up_to_cycles(out.values, truth)


def test_bad_arguments():
    with pytest.raises(ConfigError):
        unwrap_phase(np.zeros((4, 4)), method="magic")
    with pytest.raises(DimensionError):
        unwrap_phase(np.zeros((2, 3, 4)))
    with pytest.raises(DimensionError):
        unwrap_phase(np.zeros((4, 4)), mask=np.zeros((3, 3), bool))
    with pytest.raises(InputError):
        unwrap_phase({"a": 1})


def test_residues_mark_a_phase_vortex():
    y, x = np.mgrid[0:32, 0:32]
    vortex = np.arctan2(y - 15.5, x - 15.5)
    res = residues(vortex)
    assert np.abs(res).sum() == 1 and abs(int(res[15, 15])) == 1
    assert not residues(wrap(_surface(32, 32))).any()


@pytest.mark.parametrize("kernel", ["quality", "lsq"])
def test_kernels_agree_with_the_residue_free_fast_path(kernel):
    """The two algorithms themselves (bypassing the fast path) reproduce the truth."""
    truth = _surface(64, 80)
    psi = wrap(truth)
    valid = np.ones(psi.shape, dtype=bool)
    if kernel == "quality":
        out = unwrap_quality_kernel(psi, valid)
    else:
        out = unwrap_lsq_kernel(psi, valid)
    assert _same_up_to_cycles(out, truth)
    np.testing.assert_allclose(out - out[0, 0], unwrap_phase(psi) - unwrap_phase(psi)[0, 0],
                               atol=1e-9)


def test_vortex_is_unwrapped_congruently_without_hanging():
    y, x = np.mgrid[0:48, 0:48]
    psi = wrap(np.arctan2(y - 20.5, x - 30.5) + 0.3 * x)
    for method in ("quality", "fft"):
        out = unwrap_phase(psi, method=method)
        k = (out - psi) / (2 * np.pi)
        assert np.allclose(k, np.round(k), atol=1e-9)  # congruent: psi + 2 pi k


def _mst_reference(psi, valid, quality):
    """The textbook construction (the previous implementation, scipy only): maximum-quality
    spanning tree by scipy's minimum_spanning_tree on costs decreasing with the mean quality,
    cycles summed from each region's best pixel along the tree."""
    import scipy.sparse
    import scipy.sparse.csgraph as csgraph
    from scipy import ndimage

    ny, nx = psi.shape
    idx = np.arange(ny * nx).reshape(ny, nx)
    ei, ej = [], []
    for a, b in ((idx[:, :-1], idx[:, 1:]), (idx[:-1, :], idx[1:, :])):
        keep = valid.ravel()[a.ravel()] & valid.ravel()[b.ravel()]
        ei.append(a.ravel()[keep])
        ej.append(b.ravel()[keep])
    ei, ej = np.concatenate(ei), np.concatenate(ej)
    q = quality.ravel()
    mean = 0.5 * (q[ei] + q[ej])
    cost = 1.0 + (mean.max() - mean) / (mean.max() - mean.min())
    tree = csgraph.minimum_spanning_tree(scipy.sparse.coo_matrix((cost, (ei, ej)), shape=(ny * nx,) * 2))
    out = np.full(psi.shape, np.nan)
    labels, n = ndimage.label(valid)
    flat = psi.ravel()
    for region in range(1, n + 1):
        members = np.flatnonzero(labels.ravel() == region)
        root = members[np.argmax(q[members])]
        order, pred = csgraph.breadth_first_order(tree, root, directed=False, return_predecessors=True)
        k = np.zeros(ny * nx, dtype=np.int64)
        for node in order[1:]:
            p = pred[node]
            k[node] = k[p] + int(np.rint((flat[p] - flat[node]) / (2 * np.pi)))
        out.ravel()[order] = flat[order] + 2 * np.pi * k[order]
    return out


def test_union_find_tree_equals_the_scipy_spanning_tree():
    """The numba union-find (Kruskal with weighted offsets) integrates along the same
    maximum-quality spanning tree as scipy's minimum_spanning_tree: identical unwrapping of a
    noisy map with phase vortices, invalid pixels and two separate regions."""
    from ionscope.holography.unwrap import unwrap_quality_kernel
    from ionscope.holography.unwrap_tree import reliability

    rng = np.random.default_rng(3)
    yy, xx = np.mgrid[0:96, 0:120]
    truth = 0.02 * (xx - 60) ** 2 / 10 + 0.15 * yy + np.angle((xx - 40) + 1j * (yy - 30))  # a vortex
    psi = wrap(truth + rng.normal(0, 0.6, truth.shape))
    valid = rng.random(truth.shape) > 0.03
    valid[:, 70:72] = False  # a cut: two regions
    quality = reliability(np.where(valid, psi, 0.0), valid)
    ours = unwrap_quality_kernel(psi, valid)
    ref = _mst_reference(np.where(valid, psi, 0.0), valid, np.where(valid, quality, -np.inf))
    assert np.isnan(ours[~valid]).all()
    np.testing.assert_allclose(ours[valid], ref[valid], atol=1e-9)
    assert len(np.unique(np.rint((ours[valid] - psi[valid]) / (2 * np.pi)))) > 5  # not trivial
