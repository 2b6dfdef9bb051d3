"""Coupled-dictionary super-resolution (Yang et al. 2010) against the LiCoO2 twin's ground truth.

Training maps: ``li_fraction_true`` of the twin with seed 1 (frames 1, 3, 5 of 6 charge frames,
48 x 48 px of 2.5 nm); test maps: the twin with seed 2 (other domains and interfacial layer),
frames 2 and 5, block-averaged x2 / x3 by the degradation model. With 64 atoms, 5 K-SVD
iterations and 3000 training patches the measured PSNR gains over cubic-spline up-sampling were
5.8 dB (x2) and 2.9 dB (x3); over test-twin seeds 2-4 and training seeds 0-2 at least 4.1 dB
and 1.9 dB. The tests ask for 3 dB and 1.5 dB.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import scipy.ndimage as ndi
import xarray as xr

from ionscope.data import signal
from ionscope.denoise import psnr
from ionscope.denoise.superres import (
    STEP,
    back_project,
    bicubic_upsample,
    block_average,
    downsample,
    gradient_features,
    nearest_upsample,
    super_resolve,
    train_coupled_dictionaries,
)
from ionscope.errors import ConfigError, DimensionError, InputError, NonFiniteError
from ionscope.simulate import simulate

TWIN = {"ny": 48, "nx": 48, "charge_frames": 6, "rest1_frames": 0, "discharge_frames": 0,
        "rest2_frames": 0, "dose": None}
FAST = {"atoms": 64, "train_iterations": 5, "max_train": 3000}
MARGIN_DB = {2: 3.0, 3: 1.5}


@pytest.fixture(scope="module")
def twin():
    train = simulate("licoo2", seed=1, **TWIN).li_fraction_true.isel(time=[1, 3, 5])
    truth = simulate("licoo2", seed=2, **TWIN).li_fraction_true.isel(time=[2, 5])
    return train, truth


@pytest.fixture(scope="module")
def solved(twin):
    """Super-resolved test maps per factor: (low-res input, result, info)."""
    train, truth = twin
    runs = {}
    for factor in (2, 3):
        lr = downsample(truth, factor)
        out, info = super_resolve(lr, train, factor, **FAST)
        runs[factor] = (lr, out, info)
    return runs


# --------------------------------------------------------------------------- kernels


def test_block_average_is_the_detector_pixel_integral_and_replication_its_adjoint():
    rng = np.random.default_rng(0)
    x = rng.random((2, 6, 9))
    y = block_average(x, 3)
    assert y.shape == (2, 2, 3)
    assert y[1, 1, 2] == pytest.approx(x[1, 3:6, 6:9].mean(), abs=1e-15)
    assert y.sum() * 9 == pytest.approx(x.sum(), rel=1e-13)            # total counts conserved
    z = rng.random(y.shape)
    # <D x, z> = <x, D^T z> with D^T = nearest_upsample / F^2
    assert np.vdot(y, z) == pytest.approx(np.vdot(x, nearest_upsample(z, 3)) / 9, rel=1e-13)
    np.testing.assert_allclose(block_average(nearest_upsample(z, 3), 3), z, rtol=1e-15)
    with pytest.raises(DimensionError, match="multiples of 2"):
        block_average(x, 2)


def test_cubic_upsampling_keeps_the_low_res_samples_at_block_centres():
    # grid_mode aligns pixel edges: for F = 3 the fine pixel 3 i + 1 is the centre of block i
    y = np.random.default_rng(1).random((1, 7, 5))
    up = bicubic_upsample(y, 3)
    assert up.shape == (1, 21, 15)
    # (1e-5: scipy's spline prefilter starts the reflect boundary from a truncated series)
    np.testing.assert_allclose(up[:, 1::3, 1::3], y, atol=1e-5)
    np.testing.assert_allclose(up[:, 1::3, 1::3][..., 1:-1, 1:-1], y[..., 1:-1, 1:-1], atol=1e-12)
    np.testing.assert_allclose(up[0], ndi.zoom(y[0], 3, order=3, grid_mode=True, mode="reflect"))


def test_gradient_features_of_a_plane_are_its_slopes():
    yy, xx = np.mgrid[0:12, 0:10].astype(float)
    feats = gradient_features(0.3 * xx - 0.7 * yy)
    inner = (0, slice(None), slice(2, -2), slice(2, -2))
    np.testing.assert_allclose(feats[inner][0], 2 * 0.3)      # [-1, 0, 1] along x
    np.testing.assert_allclose(feats[inner][1], -2 * 0.7)     # along y
    np.testing.assert_allclose(feats[inner][2:], 0.0, atol=1e-12)   # second derivatives


def test_orthogonal_back_projection_is_exact_and_never_moves_away_from_a_consistent_map():
    rng = np.random.default_rng(2)
    truth = rng.random((2, 12, 12))
    y = block_average(truth, 2)
    guess = truth + 0.3 * rng.standard_normal(truth.shape)
    out = back_project(guess, y, 2, iterations=0)
    np.testing.assert_allclose(block_average(out, 2), y, atol=1e-14)
    assert np.linalg.norm(out - truth) < np.linalg.norm(guess - truth)
    # the correction is the LR residual replicated over each block (minimum-norm correction)
    np.testing.assert_allclose(out - guess, nearest_upsample(y - block_average(guess, 2), 2),
                               atol=1e-14)


@pytest.mark.parametrize("factor", [2, 3])
def test_conjugate_gradient_back_projection_reaches_the_irani_peleg_limit(factor):
    rng = np.random.default_rng(3)
    y = rng.random((1, 5, 6))
    x0 = bicubic_upsample(y, factor) + 0.1 * rng.standard_normal((1, 5 * factor, 6 * factor))
    sigma = 1.0
    x = x0.copy()
    for _ in range(3000):    # Irani & Peleg: x <- x + B (F^2 D^T)(y - D x), B Gaussian
        x += ndi.gaussian_filter(nearest_upsample(y - block_average(x, factor), factor),
                                 (0, sigma, sigma), mode="reflect")
    out = back_project(x0, y, factor, iterations=60, sigma=sigma)
    np.testing.assert_allclose(out, x, atol=1e-9)
    np.testing.assert_allclose(block_average(out, factor), y, atol=1e-13)


# --------------------------------------------------------------------------- against the twin


@pytest.mark.parametrize("factor", [2, 3])
def test_superres_beats_bicubic_and_nearest_against_the_true_map(twin, solved, factor):
    _, truth = twin
    lr, out, info = solved[factor]
    y = lr.values.astype(np.float64)
    score = psnr(out, truth, data_range=1.0)
    bicubic = psnr(bicubic_upsample(y, factor), truth.values, data_range=1.0)
    nearest = psnr(nearest_upsample(y, factor), truth.values, data_range=1.0)
    bicubic_bp = psnr(back_project(bicubic_upsample(y, factor), y, factor), truth.values,
                      data_range=1.0)
    assert nearest < bicubic
    assert score > bicubic + MARGIN_DB[factor]
    assert score > bicubic_bp + MARGIN_DB[factor] - 0.5
    assert info["method"] == "coupled-dictionary" and info["factor"] == factor
    assert info["training"]["n_train"] == 3000 and info["training"]["n_atoms"] <= 64


@pytest.mark.parametrize("factor", [2, 3])
def test_back_projection_makes_the_result_reproduce_the_input(solved, factor):
    lr, out, info = solved[factor]
    np.testing.assert_allclose(downsample(out, factor).values, lr.values, atol=2e-7)  # float32
    cons = info["consistency"]
    assert cons["result"]["max_abs"] < 1e-12
    assert cons["sparse_before_back_projection"]["rms"] > 100 * cons["result"]["rms"]
    assert cons["rms_change_from_bicubic"] > 0


def test_output_is_on_the_fine_grid_of_the_truth_with_units_and_provenance(twin, solved):
    _, truth = twin
    lr, out, info = solved[2]
    assert float(lr.y[1]) == 5.0 and float(lr.x[-1]) == 115.0    # coarse pixels of 5 nm
    assert out.name == "superres" and out.dims == truth.dims and out.shape == truth.shape
    for dim in ("y", "x"):
        np.testing.assert_allclose(out[dim].values, truth[dim].values, atol=1e-12)
        assert out[dim].attrs["units"] == "nm"
    np.testing.assert_array_equal(out.time.values, truth.time.values)
    assert out.attrs["units"] == "1" and out.dtype == truth.dtype
    steps = json.loads(out.attrs["provenance"])
    assert steps[-1]["step"] == STEP and steps[-1]["params"]["factor"] == 2
    assert steps[-2]["step"] == "ionscope.denoise.downsample"
    assert info["pixel_size"]["x"] == {"input": 5.0, "output": 2.5, "units": "nm"}


def test_single_map_reusing_dictionaries_is_deterministic(twin, solved):
    lr, out, info = solved[3]
    frame = lr.isel(time=1)
    again, info2 = super_resolve(frame, None, 3, dictionaries=info["dictionaries"])
    assert again.dims == ("y", "x") and again.shape == (48, 48)
    np.testing.assert_array_equal(again.values, out.isel(time=1).values)
    assert info2["parameters"]["dictionaries_given"] is True


def test_flat_field_stays_flat(solved):
    lr, _, info = solved[2]
    flat = xr.full_like(lr, 0.73)
    out, _ = super_resolve(flat, None, 2, dictionaries=info["dictionaries"])
    assert np.ptp(out.values) == 0.0
    assert float(out[0, 0, 0]) == pytest.approx(0.73, abs=1e-7)


# --------------------------------------------------------------------------- errors


@pytest.mark.parametrize("factor", [1, 4, 2.0, True])
def test_invalid_factor(twin, factor):
    train, truth = twin
    with pytest.raises(ConfigError, match="factor must be one of"):
        super_resolve(truth, train, factor)


def test_mismatched_dims_units_and_pixel_size(twin):
    train, truth = twin
    lr = downsample(truth, 2)
    spectra = signal(np.ones((4, 5)), ("y", "energy"), name="s", units="counts")
    with pytest.raises(DimensionError, match=r"\(time, y, x\) or \(y, x\)"):
        super_resolve(spectra, train, 2)
    with pytest.raises(DimensionError, match="training maps"):
        super_resolve(lr, spectra, 2)
    with pytest.raises(InputError, match="same quantity and units"):
        super_resolve(lr, train.assign_attrs(units="counts"), 2)
    with pytest.raises(ConfigError, match="pixels of 2.5 nm but x2 .* of 10 nm pixels needs 5 nm"):
        super_resolve(downsample(lr, 2), train, 2)     # training maps at the wrong pixel size
    with pytest.raises(NonFiniteError):
        super_resolve(lr.where(lr.x > 0), train, 2)


def test_too_small_or_flat_training_set(twin):
    train, truth = twin
    lr = downsample(truth, 2)
    with pytest.raises(InputError, match=r"only \d+ non-flat 5 x 5 patches .* for 100000 atoms"):
        super_resolve(lr, train, 2, atoms=100000)
    with pytest.raises(InputError, match="only 0 non-flat"):
        super_resolve(lr, xr.full_like(train, 0.5), 2, atoms=16)
    with pytest.raises(InputError, match="smaller than one 7 x 7 patch"):
        super_resolve(downsample(truth, 3), train.isel(y=slice(0, 8), x=slice(0, 8)), 3)
    with pytest.raises(ConfigError, match="trained for x2"):
        dicts = train_coupled_dictionaries(train.values, 2, atoms=16, iterations=0)
        super_resolve(downsample(truth, 3), None, 3, dictionaries=dicts)


def test_pixel_size_check_compares_lengths_across_units(twin):
    """Training maps in um against an input in nm are checked, not skipped (issue 12)."""
    train, truth = twin
    lr = downsample(truth, 2)
    in_um = train.assign_coords(y=train["y"] / 1000.0, x=train["x"] / 1000.0)
    for dim in ("y", "x"):
        in_um[dim].attrs = {**train[dim].attrs, "units": "µm"}
    wrong = downsample(lr, 2)  # input pixels twice too large for these training maps
    with pytest.raises(ConfigError, match=r"pixels of 0.0025 µm but x2 .* of 10 nm pixels needs 5 nm"):
        super_resolve(wrong, in_um, 2)
