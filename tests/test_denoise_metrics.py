"""Quality metrics (ionscope.denoise.metrics) against hand-computed values and known cases."""

from __future__ import annotations

import json

import numpy as np
import pytest
from scipy import ndimage
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from ionscope.data import signal
from ionscope.denoise.metrics import (
    denoise_metrics,
    frame_metrics,
    li_conservation,
    mae,
    psnr,
    residual_whiteness,
    ssim,
    ssim_frames,
)
from ionscope.errors import ConfigError, DimensionError


def _maps(rng, shape=(3, 32, 32)):
    return rng.random(shape)


# --------------------------------------------------------------------------- PSNR


def test_psnr_of_a_known_mse():
    truth = np.zeros((2, 16, 16))
    assert psnr(truth + 0.1, truth, data_range=1.0) == pytest.approx(20.0)      # MSE 1e-2
    assert psnr(truth + 0.01, truth, data_range=1.0) == pytest.approx(40.0)     # MSE 1e-4
    assert psnr(truth + 0.1, truth, data_range=2.0) == pytest.approx(20 + 20 * np.log10(2))
    # half the pixels off by 0.2: MSE = 0.02
    est = truth.copy()
    est[:, :8] = 0.2
    assert psnr(est, truth, data_range=1.0) == pytest.approx(10 * np.log10(1 / 0.02))
    assert psnr(truth, truth, data_range=1.0) == float("inf")


def test_psnr_default_range_is_the_truths_peak_to_peak_like_scikit_image():
    rng = np.random.default_rng(0)
    truth = 0.2 + 0.5 * _maps(rng)
    est = truth + rng.normal(0, 0.05, truth.shape)
    r = truth.max() - truth.min()
    assert psnr(est, truth) == pytest.approx(psnr(est, truth, data_range=r))
    assert psnr(est, truth, data_range=1.0) == pytest.approx(
        peak_signal_noise_ratio(truth, est, data_range=1.0))
    with pytest.raises(ConfigError, match="data_range"):
        psnr(est, np.ones_like(truth))
    with pytest.raises(ConfigError, match="data_range"):
        psnr(est, truth, data_range=0.0)
    with pytest.raises(DimensionError, match="differ in shape"):
        psnr(est[:, :-1], truth)


def test_mae_hand_computed():
    assert mae(np.array([[1.0, 2.0], [3.0, 4.0]]), np.zeros((2, 2))) == pytest.approx(2.5)


# --------------------------------------------------------------------------- SSIM


def test_ssim_is_one_for_identical_maps_and_falls_with_noise():
    rng = np.random.default_rng(1)
    truth = ndimage.gaussian_filter(_maps(rng), (0, 2, 2))
    assert ssim(truth, truth, data_range=1.0) == pytest.approx(1.0)
    s = [ssim(truth + rng.normal(0, sd, truth.shape), truth, data_range=1.0)
         for sd in (0.01, 0.05, 0.2)]
    assert 1.0 > s[0] > s[1] > s[2]


def test_ssim_is_the_mean_of_scikit_images_per_frame_values():
    rng = np.random.default_rng(2)
    truth = _maps(rng)
    est = truth + rng.normal(0, 0.1, truth.shape)
    per = [structural_similarity(e, t, data_range=1.0) for e, t in zip(est, truth)]
    np.testing.assert_allclose(ssim_frames(est, truth, data_range=1.0), per)
    assert ssim(est, truth, data_range=1.0) == pytest.approx(np.mean(per))
    # a single map is one frame
    assert ssim(est[0], truth[0], data_range=1.0) == pytest.approx(per[0])


# --------------------------------------------------------------------------- Li conservation


def test_li_conservation_of_scaled_and_shifted_frames():
    ref = np.ones((3, 4, 4))
    den = ref * np.array([1.0, 1.02, 0.95])[:, None, None]
    out = li_conservation(ref, den)
    np.testing.assert_allclose(out["relative_change"], [0.0, 0.02, -0.05])
    assert out["mean"] == pytest.approx(-0.01)
    assert out["max_abs"] == pytest.approx(0.05)
    assert out["total"] == pytest.approx(-0.03 / 3)
    # moving Li around inside a frame conserves it
    moved = ref.copy()
    moved[:, 0, 0] += 1.0
    moved[:, 1, 1] -= 1.0
    assert li_conservation(ref, moved)["max_abs"] == pytest.approx(0.0, abs=1e-15)
    with pytest.raises(ConfigError, match="sums to 0"):
        li_conservation(np.zeros((1, 4, 4)), ref[:1])


# --------------------------------------------------------------------------- whiteness


def test_white_noise_is_white():
    white = np.random.default_rng(3).normal(size=(6, 64, 64))
    w = residual_whiteness(white)
    n = 6 * 63 * 64
    assert abs(w["lag1_y"]) < 4 / np.sqrt(n) and abs(w["lag1_x"]) < 4 / np.sqrt(n)
    assert w["dof"] == 6 and w["p_value"] > 1e-3
    assert w["q_per_dof"] < 4
    json.dumps(w)


def test_blurred_noise_is_clearly_not_white():
    white = np.random.default_rng(4).normal(size=(6, 64, 64))
    blurred = ndimage.gaussian_filter(white, (0, 1.0, 1.0))
    w = residual_whiteness(blurred)
    # a Gaussian of std s correlates neighbours by about exp(-1 / (4 s^2)) = 0.78
    assert w["lag1_y"] > 0.6 and w["lag1_x"] > 0.6
    assert w["rho_x"][0] > w["rho_x"][1] > w["rho_x"][2] > 0
    assert w["p_value"] < 1e-12 and w["q_per_dof"] > 1000


def test_whiteness_hand_computed_on_small_patterns():
    # columns alternate +1 / -1: perfectly anti-correlated along x, constant along y
    stripes = np.tile([1.0, -1.0], (1, 4, 2))
    w = residual_whiteness(stripes, max_lag=2)
    assert w["rho_x"] == pytest.approx([-1.0, 1.0])
    assert w["rho_y"] == pytest.approx([1.0, 1.0])
    n_x1, n_x2, n_y1, n_y2 = 4 * 3, 4 * 2, 3 * 4, 2 * 4
    assert w["q"] == pytest.approx(n_x1 + n_x2 + n_y1 + n_y2)
    # the frame mean is removed first
    assert residual_whiteness(stripes + 5.0, max_lag=2)["q"] == pytest.approx(w["q"])
    with pytest.raises(ConfigError, match="zero"):
        residual_whiteness(np.full((2, 8, 8), 3.0))
    with pytest.raises(ConfigError, match="max_lag"):
        residual_whiteness(stripes, max_lag=0)


# --------------------------------------------------------------------------- bundles


def test_denoise_metrics_on_labelled_arrays_in_any_dim_order():
    rng = np.random.default_rng(5)
    truth_v = ndimage.gaussian_filter(rng.random((4, 24, 20)), (0, 3, 3))
    raw_v = truth_v + rng.normal(0, 0.1, truth_v.shape)
    den_v = ndimage.gaussian_filter(raw_v, (0, 1, 1))
    mk = lambda v: signal(v, ("time", "y", "x"), name="li_fraction", units="1")  # noqa: E731
    truth, raw, den = mk(truth_v), mk(raw_v), mk(den_v)
    m = denoise_metrics(den, truth=truth.transpose("x", "y", "time"), raw=raw, data_range=1.0)
    assert m["data_range"] == 1.0
    assert m["psnr"] == pytest.approx(psnr(den_v, truth_v, data_range=1.0))
    assert m["raw_psnr"] == pytest.approx(psnr(raw_v, truth_v, data_range=1.0))
    assert m["psnr"] > m["raw_psnr"] and m["ssim"] > m["raw_ssim"]
    assert m["mae"] < m["raw_mae"]
    assert abs(m["li_conservation"]["total"]) < 1e-3       # Gaussian filtering conserves sums
    assert m["whiteness"]["lag1_x"] < 0                    # y - Hy: neighbours anti-correlated
    json.dumps(m)
    with pytest.raises(ConfigError, match="truth and/or raw"):
        denoise_metrics(den)


def test_frame_metrics_dataset():
    rng = np.random.default_rng(6)
    truth = rng.random((5, 16, 16))
    raw = truth + rng.normal(0, 0.1, truth.shape)
    da = signal(raw, ("time", "y", "x"), name="li_fraction", units="1", coords={"time": 60.0})
    ds = frame_metrics(da, truth=truth, raw=raw, data_range=1.0)
    assert set(ds.data_vars) == {"psnr", "ssim", "mae", "li_change"}
    assert ds.sizes["time"] == 5 and ds["time"].attrs["units"] == "s"
    np.testing.assert_allclose(ds["time"].values, 60.0 * np.arange(5))
    np.testing.assert_allclose(ds["psnr"][2], psnr(raw[2], truth[2], data_range=1.0))
    np.testing.assert_allclose(ds["li_change"], 0.0, atol=1e-15)
    assert ds["psnr"].attrs["units"] == "dB"
