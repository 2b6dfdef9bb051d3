"""Baseline denoisers and the ``denoise`` dispatcher: contract, honesty, the LiCoO2 twin."""

from __future__ import annotations

import json
import sys
import types

import numpy as np
import pytest
from scipy import ndimage

from ionscope.data import provenance, signal
from ionscope.denoise import DENOISE_METHODS, denoise
from ionscope.denoise.baselines import (
    BASELINES,
    bm3d_available,
    gaussian_stack,
    gavish_donoho_threshold,
    pca_stack,
    sure_gaussian,
    tv_stack,
)
from ionscope.denoise.methods import OPTIONS
from ionscope.errors import ConfigError, DimensionError, InputError
from ionscope.simulate import simulate

#: Methods that run without optional packages.
AVAILABLE = [m for m in DENOISE_METHODS if m != "bm3d"]
#: Small, fast settings for the sparse methods.
SPARSE_FAST = dict(patch=6, atoms=64, iterations=3)


def _kw(method):
    return SPARSE_FAST if method.startswith("sparse") else {}


def _psnr(estimate, truth):
    return 10 * np.log10(1.0 / np.mean((np.asarray(estimate) - np.asarray(truth)) ** 2))


def _series(values, units="1", dims=("time", "y", "x"), **attrs):
    return signal(np.asarray(values), dims, name="li_fraction", units=units,
                  coords={d: (60.0 if d == "time" else 2.5) for d in dims},
                  long_name="Li fraction", attrs=attrs)


@pytest.fixture(scope="module")
def twin():
    """A small operando LiCoO2 series (24 frames of 32 x 32) at 20 counts per pixel at x = 1."""
    return simulate("licoo2", seed=3, ny=32, nx=32, dose=20.0, charge_frames=10,
                    rest1_frames=3, discharge_frames=8, rest2_frames=3)


# --------------------------------------------------------------------------- contract


@pytest.mark.parametrize("method", AVAILABLE)
def test_every_method_keeps_dims_coords_units_and_improves_on_raw(twin, method):
    da, truth = twin["li_fraction"], twin["li_fraction_true"]
    out, info = denoise(da, method, noise="poisson", dose=20.0, **_kw(method))
    assert out.name == "denoised"
    assert out.dims == da.dims and out.shape == da.shape and out.dtype == da.dtype
    for dim in da.dims:
        np.testing.assert_array_equal(out[dim].values, da[dim].values)
        assert out[dim].attrs == da[dim].attrs
    assert out.attrs["units"] == da.attrs["units"]
    assert method in out.attrs["long_name"] or "sparse" in out.attrs["long_name"]
    steps = provenance(out)
    assert len(steps) == len(provenance(da)) + 1
    json.dumps(steps)   # serialisable
    # the info contract the CLI relies on
    assert info["method"] == method and info["run_time_s"] > 0
    assert info["sigma"] == 1.0 and info["noise"] == "poisson" and info["dose"] == 20.0
    json.dumps(info["parameters"])
    # every method beats the raw maps against the twin's truth (by a margin)
    assert _psnr(out, truth) > _psnr(da, truth) + 6.0


@pytest.mark.parametrize("method", ["sparse", "pca", "gaussian", "nlmeans", "tv"])
def test_single_maps_and_transposed_series_keep_their_dims(twin, method):
    frame = twin["li_fraction"].isel(time=5)
    out, _ = denoise(frame, method, noise="poisson", dose=20.0, **_kw(method))
    assert out.dims == ("y", "x") and out.shape == frame.shape
    flipped = twin["li_fraction"].transpose("x", "time", "y")
    out, _ = denoise(flipped, method, noise="poisson", dose=20.0, **_kw(method))
    assert out.dims == ("x", "time", "y")
    ref, _ = denoise(twin["li_fraction"], method, noise="poisson", dose=20.0, **_kw(method))
    np.testing.assert_allclose(out.transpose("time", "y", "x").values, ref.values, atol=1e-6)


@pytest.mark.parametrize("method", ["gaussian", "tv", "nlmeans", "pca"])
def test_dose_from_attrs_gives_the_same_result(twin, method):
    da = twin["li_fraction"]
    assert da.attrs["dose"] == 20.0
    a, info = denoise(da, method, noise="poisson")
    b, _ = denoise(da, method, noise="poisson", dose=20.0)
    assert info["dose_source"] == "attrs"
    np.testing.assert_array_equal(a.values, b.values)


# --------------------------------------------------------------------------- honesty


@pytest.mark.parametrize("method", ["pca", "gaussian", "gaussian3d", "nlmeans", "tv"])
def test_flat_field_stays_flat_noiseless_and_under_poisson_noise(method):
    flat = np.full((6, 24, 24), 0.7)
    out, _ = denoise(_series(flat), method, noise="gaussian", sigma=0.05)
    np.testing.assert_allclose(out.values, 0.7, rtol=0, atol=1e-9)

    rng = np.random.default_rng(1)
    dose = 40.0
    # 24 frames: PCA over time keeps the mean map, whose noise falls only as 1/sqrt(frames)
    noisy = rng.poisson(0.7 * dose, (24, 24, 24)) / dose
    out, _ = denoise(_series(noisy), method, noise="poisson", dose=dose)
    assert out.values.std() < 0.35 * noisy.std()
    assert out.values.mean() == pytest.approx(0.7, rel=0.01)   # unbiased inverse: no Li lost


@pytest.mark.parametrize("method", ["pca", "gaussian", "gaussian3d", "tv"])
def test_pure_gaussian_noise_gives_no_invented_structure(method):
    noise = np.random.default_rng(2).normal(0.0, 1.0, (24, 32, 32))
    out, info = denoise(_series(noise, units="V"), method, noise="gaussian")
    assert info["sigma"] == pytest.approx(1.0, rel=0.1)          # MAD estimate
    assert info["sigma_source"].startswith("MAD")
    assert out.values.std() < 0.25 * noise.std()
    if method == "pca":   # nothing above the noise: only the mean map (noise / sqrt(24)) stays
        assert info["rank"] == 0
        assert out.values.std() == pytest.approx(1 / np.sqrt(24), rel=0.1)


def test_gavish_donoho_threshold_known_values():
    assert gavish_donoho_threshold((50, 50), 2.0) == pytest.approx(4 / np.sqrt(3) * np.sqrt(50) * 2)
    # beta -> 0: lambda -> sqrt(2)
    assert gavish_donoho_threshold((1, 10**8), 1.0) / 1e4 == pytest.approx(np.sqrt(2), rel=1e-3)


def test_pca_over_time_recovers_the_rank_of_a_low_rank_series():
    rng = np.random.default_rng(3)
    t = np.linspace(0, 1, 40)
    maps = rng.normal(size=(2, 24 * 24))
    clean = (10 + np.outer(np.sin(3 * t), maps[0]) * 3 + np.outer(t, maps[1]) * 3).reshape(40, 24, 24)
    noisy = clean + rng.normal(0, 0.5, clean.shape)
    out, info = pca_stack(noisy, 0.5, mode="time")
    assert info["rank"] == 2
    assert np.mean((out - clean) ** 2) < 0.1 * np.mean((noisy - clean) ** 2)
    out_p, info_p = pca_stack(noisy, 0.5, mode="patches", patch=4)
    assert 0 < info_p["rank"] < 16


def test_sure_is_an_unbiased_estimate_of_the_squared_error():
    rng = np.random.default_rng(4)
    yy, xx = np.mgrid[0:32, 0:32]
    clean = np.broadcast_to(np.sin(xx / 4.0) + 0.5 * (yy > 16), (3, 32, 32))
    widths = (0.0, 1.2, 1.2)
    sure, err = [], []
    for _ in range(40):
        noisy = clean + rng.normal(0, 0.5, clean.shape)
        sure.append(sure_gaussian(noisy, 0.5, widths))
        err.append(np.sum((ndimage.gaussian_filter(noisy, widths, mode="reflect") - clean) ** 2))
    assert np.mean(sure) == pytest.approx(np.mean(err), rel=0.03)


def test_gaussian_width_grows_with_the_noise():
    rng = np.random.default_rng(5)
    xx = np.mgrid[0:32, 0:32][1]
    clean = np.broadcast_to(np.sin(xx / 5.0), (2, 32, 32))
    widths = [gaussian_stack(clean + rng.normal(0, s, clean.shape), s)[1]["width_px"]
              for s in (0.05, 0.3, 1.0)]
    assert widths[0] < widths[1] < widths[2]


def test_tv_weight_meets_the_discrepancy_principle():
    rng = np.random.default_rng(6)
    clean = np.zeros((4, 32, 32))
    clean[:, 8:24, 8:24] = 5.0
    noisy = clean + rng.normal(0, 1.0, clean.shape)
    out, info = tv_stack(noisy, 1.0)
    assert info["residual_var"] == pytest.approx(1.0, rel=0.05)
    assert np.mean((out - clean) ** 2) < 0.3


def test_chosen_strengths_are_recorded_in_the_provenance(twin):
    out, info = denoise(twin["li_fraction"], "gaussian", noise="poisson", dose=20.0)
    step = provenance(out)[-1]
    assert step["step"] == "ionscope.denoise.baselines.gaussian"
    assert step["params"]["chosen"]["width_px"] == pytest.approx(info["width_px"])
    replay, _ = denoise(twin["li_fraction"], "gaussian", noise="poisson", dose=20.0,
                        width=info["width_px"])
    np.testing.assert_array_equal(replay.values, out.values)


# --------------------------------------------------------------------------- dispatcher


def test_unknown_method_lists_the_methods(twin):
    with pytest.raises(ConfigError) as err:
        denoise(twin["li_fraction"], "wavelet")
    for name in DENOISE_METHODS:
        assert name in str(err.value)
    assert set(BASELINES) < set(DENOISE_METHODS)


def test_unknown_option_is_named_with_the_valid_ones(twin):
    with pytest.raises(ConfigError, match="bandwidth.*valid options: sigma"):
        denoise(twin["li_fraction"], "gaussian", bandwidth=3)
    assert "iterations" in OPTIONS["sparse"]


def test_bm3d_missing_gives_a_clear_error(twin, monkeypatch):
    monkeypatch.setitem(sys.modules, "bm3d", None)   # import bm3d -> ImportError
    assert not bm3d_available()
    with pytest.raises(ConfigError, match="pip install bm3d"):
        denoise(twin["li_fraction"], "bm3d", noise="poisson")


def test_bm3d_runs_per_frame_with_sigma_psd_when_the_package_is_there(twin, monkeypatch):
    calls = []

    def fake_bm3d(frame, sigma_psd, **kw):
        calls.append((frame.shape, sigma_psd, kw))
        return ndimage.uniform_filter(frame, 3)

    monkeypatch.setitem(sys.modules, "bm3d", types.SimpleNamespace(bm3d=fake_bm3d,
                                                                  __version__="fake"))
    da = twin["li_fraction"]
    out, info = denoise(da, "bm3d", noise="poisson", dose=20.0, profile="np")
    assert len(calls) == da.sizes["time"]
    assert calls[0] == ((32, 32), 1.0, {"profile": "np"})
    assert out.dims == da.dims and info["sigma_psd"] == 1.0


def test_dispatcher_rejects_invalid_combinations(twin):
    da = twin["li_fraction"]
    frame = da.isel(time=0)
    with pytest.raises(ConfigError, match="temporal >= 2"):
        denoise(da, "sparse3d", temporal=1)
    with pytest.raises(ConfigError, match="needs a .*series"):
        denoise(frame, "sparse3d", **SPARSE_FAST)
    with pytest.raises(ConfigError, match="series"):
        denoise(frame, "gaussian3d")
    with pytest.raises(ConfigError, match="parameter 'noise' must be one of"):
        denoise(da, "tv", noise="laplace")
    with pytest.raises(ConfigError, match="weight"):
        denoise(da, "tv", weight=-1.0)
    with pytest.raises(ConfigError, match="mode"):
        denoise(da, "pca", mode="space")
    with pytest.raises(InputError, match="negative"):
        denoise(_series(-np.ones((3, 16, 16))), "gaussian", noise="poisson")
    with pytest.raises(DimensionError):
        denoise(signal(np.ones((4, 16)), ("energy", "x"), name="s", units="1"), "tv")
    bad = da.copy(data=da.values.copy())
    bad.values[0, 0, 0] = np.nan
    with pytest.raises(InputError, match="NaN"):
        denoise(bad, "nlmeans")


def test_sparse_options_reach_the_engine(twin):
    da = twin["li_fraction"]
    out, info = denoise(da, "sparse", noise="poisson", patch=6, atoms=32, sparsity=2,
                        iterations=0, learner="online", lam=0.0)
    p = info["parameters"]
    assert p["method"] == "sparse" and p["learner"] == "online"
    assert (p["patch"], p["atoms"], p["sparsity"], p["temporal"], p["iterations"]) == (6, 32, 2, 1, 0)
    assert info["lambda"] == 0.0
    out3, info3 = denoise(da, "sparse3d", noise="poisson", temporal=2, **SPARSE_FAST)
    assert info3["patch_shape"] == (2, 6, 6) and info3["parameters"]["method"] == "sparse3d"
