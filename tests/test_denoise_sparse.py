"""sparse_denoise: honesty checks, the LiCoO2 twin, and the wrapper's contract."""

from __future__ import annotations

import json

import numpy as np
import pytest

from ionscope.data import input_digest, provenance, signal
from ionscope.denoise import denoise_stack, sparse_denoise
from ionscope.denoise.sparse import STEP, default_error_factor
from ionscope.errors import (
    ConfigError,
    DimensionError,
    EmptyDataError,
    InputError,
    NonFiniteError,
)
from ionscope.simulate import simulate

#: Small, fast settings for synthetic series (6 x 6 patches, 64 atoms, 3 K-SVD sweeps).
FAST = dict(patch=6, atoms=64, iterations=3)


def _series(values, name="li_fraction", units="1", dims=("time", "y", "x"), **attrs):
    return signal(np.asarray(values), dims, name=name, units=units,
                  coords={d: 2.5 for d in dims if d != "time"}, attrs=attrs)


def _psnr(estimate, truth, data_range=1.0):
    return 10 * np.log10(data_range**2 / np.mean((np.asarray(estimate) - truth) ** 2))


def _front_position(profile: np.ndarray, level: float) -> float:
    """Sub-pixel position where a decreasing profile first crosses ``level``."""
    below = np.flatnonzero(profile < level)[0]
    a, b = profile[below - 1], profile[below]
    return below - 1 + (a - level) / (a - b)


# --------------------------------------------------------------------------- honesty


def test_pure_noise_in_gives_no_invented_structure():
    rng = np.random.default_rng(0)
    noise = rng.normal(0.0, 1.0, (4, 48, 48))
    out, info = sparse_denoise(_series(noise, units="V"), noise="gaussian", **FAST)
    assert info["sigma"] == pytest.approx(1.0, rel=0.1)   # MAD estimate
    assert out.values.std() < 0.2 * noise.std()
    # no strong features: the largest excursion is far below the input's (about 4 sigma)
    assert np.abs(out.values - out.values.mean()).max() < 0.4 * np.abs(noise).max()
    # noise patches are rarely coded: OMP stops at ||y - mean||^2 <= n (1.15 sigma)^2, which
    # a chi^2 with 35 degrees of freedom exceeds in ~7 % of the patches
    assert info["mean_atoms"] < 0.1


def test_flat_field_stays_flat_noiseless_and_under_poisson_noise():
    flat = np.full((3, 32, 32), 0.7)
    out, _ = sparse_denoise(_series(flat), noise="gaussian", sigma=0.05, **FAST)
    np.testing.assert_allclose(out.values, 0.7, rtol=0, atol=1e-12)

    rng = np.random.default_rng(1)
    dose = 40.0
    noisy = rng.poisson(0.7 * dose, (6, 32, 32)) / dose
    out, info = sparse_denoise(_series(noisy), noise="poisson", dose=dose, **FAST)
    assert info["noise"] == "poisson" and info["sigma"] == 1.0
    assert out.values.std() < 0.2 * noisy.std()
    assert out.values.mean() == pytest.approx(0.7, rel=0.01)   # unbiased inverse: no Li lost


@pytest.mark.parametrize("temporal", [1, 3])
def test_sharp_li_front_keeps_its_position(temporal):
    """A step in Li fraction (0.9 -> 0.3) moving one pixel per frame, at 50 counts per unit."""
    rng = np.random.default_rng(2)
    n_t, ny, nx, dose = 8, 32, 40, 50.0
    x = np.arange(nx)
    fronts = 12.0 + np.arange(n_t)              # front between pixel f - 1 and f
    truth = np.where(x[None, None, :] < fronts[:, None, None], 0.9, 0.3) * np.ones((n_t, ny, nx))
    noisy = rng.poisson(truth * dose) / dose
    out, _ = sparse_denoise(_series(noisy), dose=dose, temporal=temporal, **FAST)
    level = 0.6
    for t in range(n_t):
        profile = out.values[t].mean(axis=0)
        found = _front_position(profile, level)
        assert abs(found - (fronts[t] - 0.5)) < 1.0
        # and it stays sharp: 10 %-90 % rise within 2 pixels (a Gaussian blur of 2 pixels,
        # which keeps the position, spreads it over 5-6)
        rise = np.flatnonzero(profile < 0.36)[0] - np.flatnonzero(profile < 0.84)[0]
        assert rise <= 2
        # and row by row, not only on average
        rows = [_front_position(r, level) for r in out.values[t]]
        assert np.max(np.abs(np.array(rows) - (fronts[t] - 0.5))) < 1.5


# --------------------------------------------------------------------------- the twin


@pytest.fixture(scope="module")
def twin():
    return simulate("licoo2", seed=3, ny=32, nx=32, charge_frames=12, rest1_frames=4,
                    discharge_frames=12, rest2_frames=4, dose=10.0)


@pytest.fixture(scope="module")
def twin_results(twin):
    noisy = twin["li_fraction"]
    flat, info2 = sparse_denoise(noisy, patch=6, atoms=128, iterations=5)
    space_time, info3 = sparse_denoise(noisy, patch=6, atoms=128, iterations=5, temporal=3)
    return flat, info2, space_time, info3


def test_twin_psnr_improves_and_space_time_beats_2d(twin, twin_results):
    truth = twin["li_fraction_true"].values.astype(np.float64)
    flat, info2, space_time, info3 = twin_results
    raw = _psnr(twin["li_fraction"].values, truth)
    p2, p3 = _psnr(flat.values, truth), _psnr(space_time.values, truth)
    assert info2["dose"] == 10.0 and info2["dose_source"] == "attrs"
    assert p2 > raw + 5.0
    assert p3 > p2 + 1.0
    # Li is conserved: 2-D denoising keeps each frame's measured total within 1 %; the
    # space-time variant moves Li between neighbouring frames (towards the truth, whose frame
    # totals the Poisson noise scatters by ~1 %) but keeps the series total
    measured = twin["li_fraction"].values.sum(axis=(1, 2))
    np.testing.assert_allclose(flat.values.sum(axis=(1, 2)), measured, rtol=0.01)
    assert space_time.values.sum() == pytest.approx(measured.sum(), rel=0.005)
    true_totals = truth.sum(axis=(1, 2))
    assert (np.abs(space_time.values.sum(axis=(1, 2)) - true_totals).max()
            < np.abs(measured - true_totals).max())


def test_twin_output_follows_the_array_model(twin, twin_results):
    noisy = twin["li_fraction"]
    flat, info2, space_time, info3 = twin_results
    for out in (flat, space_time):
        assert out.name == "denoised"
        assert out.dims == noisy.dims and out.shape == noisy.shape
        assert out.dtype == noisy.dtype
        for dim in noisy.dims:
            np.testing.assert_array_equal(out[dim].values, noisy[dim].values)
            assert out[dim].attrs == noisy[dim].attrs
        assert out.attrs["units"] == "1"
        steps = provenance(out)
        assert steps[:-1] == provenance(noisy)
        assert steps[-1]["step"] == STEP
        assert steps[-1]["inputs"] == [input_digest(noisy)] and steps[-1]["inputs"][0].startswith("lineage-sha256:")
    assert provenance(space_time)[-1]["params"]["temporal"] == 3
    json.dumps(provenance(flat))
    assert info3["patch_shape"] == (3, 6, 6)
    assert info3["dictionary"].shape == (128, 108)
    assert set(info3["timings_s"]) >= {"transform", "learn", "code_aggregate", "total"}
    # the noisy input is untouched
    assert not np.shares_memory(flat.values, noisy.values)


# --------------------------------------------------------------------------- contract


def test_deterministic_and_a_learned_dictionary_can_be_reused():
    rng = np.random.default_rng(4)
    da = _series(rng.poisson(20.0, (3, 24, 24)).astype(float), units="counts")
    a, info = sparse_denoise(da, **FAST, seed=7)
    b, _ = sparse_denoise(da, **FAST, seed=7)
    np.testing.assert_array_equal(a.values, b.values)
    assert info["noise"] == "poisson" and info["dose_source"] == "integer counts"
    again, info_again = sparse_denoise(da, patch=6, atoms=64, dictionary=info["dictionary"])
    np.testing.assert_allclose(again.values, a.values, rtol=1e-6)
    assert info_again["training_errors"] == []


def test_single_map_transposed_dims_and_separate_training_set():
    rng = np.random.default_rng(5)
    yy, xx = np.mgrid[0:40, 0:36]
    clean = 0.5 + 0.3 * np.sin(xx / 5.0) * np.cos(yy / 7.0)
    dose = 30.0
    noisy = rng.poisson(clean * dose) / dose
    da = _series(noisy.T, dims=("x", "y"))
    out, info = sparse_denoise(da, dose=dose, train=_series(clean[None]), **FAST)
    assert out.dims == ("x", "y")
    assert np.mean((out.values.T - clean) ** 2) < 0.2 * np.mean((noisy - clean) ** 2)
    assert info["parameters"]["train"] is True
    assert len(provenance(out)[-1]["inputs"]) == 2


def test_denoise_stack_kernel_on_gaussian_noise():
    rng = np.random.default_rng(6)
    yy, xx = np.mgrid[0:32, 0:32]
    clean = np.broadcast_to(np.where(xx < 16, 1.0, -1.0) + 0.02 * yy, (2, 32, 32))
    noisy = clean + rng.normal(0.0, 0.3, clean.shape)
    out, info = denoise_stack(noisy, sigma=0.3, patch_shape=(1, 6, 6), atoms=64, iterations=2)
    assert np.mean((out - clean) ** 2) < 0.15 * np.mean((noisy - clean) ** 2)
    # the stopping rule sits NOISE_MARGIN standard deviations of the chi-square(36) noise
    # energy above its mean: 36 sigma^2 + 1.824 sqrt(72) sigma^2
    assert info["tol"] == pytest.approx((36 + 1.824 * np.sqrt(72)) * 0.3**2)
    assert info["error_factor"] == pytest.approx(default_error_factor(36))


def test_default_error_factor_is_elad_aharon_on_8x8_and_tends_to_one():
    assert default_error_factor(64) == pytest.approx(1.15, abs=5e-4)
    sizes = [16, 64, 192, 320, 4096]
    factors = [default_error_factor(n) for n in sizes]
    assert all(a > b for a, b in zip(factors, factors[1:]))
    assert factors[-1] == pytest.approx(1.0, abs=0.02)


def test_invalid_inputs_raise_clear_errors():
    good = _series(np.ones((2, 16, 16)))
    bad = np.ones((2, 16, 16))
    bad[1, 3, 4] = np.nan
    with pytest.raises(NonFiniteError, match="NaN"):
        sparse_denoise(_series(bad), **FAST)
    with pytest.raises(DimensionError, match="sparse_denoise"):
        sparse_denoise(signal(np.ones((4, 5)), ("energy", "x"), name="s", units="1"))
    with pytest.raises(EmptyDataError):
        sparse_denoise(_series(np.ones((0, 16, 16))))
    with pytest.raises(ConfigError, match="larger than the image"):
        sparse_denoise(good, patch=20)
    with pytest.raises(ConfigError, match="cannot exceed the number of atoms"):
        sparse_denoise(good, atoms=8, sparsity=9, patch=4)
    with pytest.raises(ConfigError, match="single"):
        sparse_denoise(_series(np.ones((16, 16)), dims=("y", "x")), temporal=3)
    with pytest.raises(ConfigError, match="only 2 frame"):
        sparse_denoise(good, temporal=3)
    with pytest.raises(ConfigError, match="parameter 'noise' must be one of"):
        sparse_denoise(good, noise="salt")
    with pytest.raises(InputError, match="negative"):
        sparse_denoise(_series(-np.ones((2, 16, 16))), noise="poisson", dose=10.0)
    with pytest.raises(ConfigError, match="dose"):
        sparse_denoise(good, noise="poisson", dose=-1.0)
    with pytest.raises(ConfigError, match="sparsity"):
        sparse_denoise(good, sparsity=0)
    with pytest.raises(InputError, match="DataArray"):
        sparse_denoise(np.ones((2, 16, 16)))
