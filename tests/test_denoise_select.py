"""Parameters chosen from the noisy data alone (ionscope.denoise.select; ``denoise(...,
temporal="auto")``): the noise split is unbiased and independent, its score ranks settings as
their error against the truth does, and the new baselines (3-D TV, BM4D) run."""

from __future__ import annotations

import json

import numpy as np
import pytest

from ionscope.denoise import denoise
from ionscope.denoise.metrics import psnr
from ionscope.denoise.select import select_parameters, split_noise
from ionscope.errors import ConfigError
from ionscope.simulate import simulate

SMALL = dict(ny=32, nx=32, charge_frames=8, rest_frames=0, discharge_frames=8)


def test_binomial_thinning_gives_two_independent_unbiased_halves():
    rng = np.random.default_rng(0)
    lam = rng.uniform(2, 30, 200_000)
    counts = rng.poisson(lam)
    train, target, info = split_noise(counts / 4.0, noise="poisson", dose=4.0, sigma=None, fraction=0.8, seed=1)
    assert info["train_dose"] == pytest.approx(3.2)
    truth = lam / 4.0
    assert np.mean(train - truth) == pytest.approx(0, abs=0.01) and np.mean(target - truth) == pytest.approx(0, abs=0.02)
    assert abs(np.corrcoef(train - truth, target - truth)[0, 1]) < 0.01  # independent
    # the target's noise variance, the score's constant
    assert np.var(target - truth) == pytest.approx(info["target_variance"], rel=0.03)
    with pytest.raises(ConfigError, match="not counts"):
        split_noise(counts / 4.0 + 0.1, noise="poisson", dose=4.0, sigma=None)


def test_the_coupled_bootstrap_splits_gaussian_noise():
    rng = np.random.default_rng(1)
    y = rng.normal(0.0, 0.5, 400_000)
    a, b, info = split_noise(y, noise="gaussian", dose=None, sigma=0.5, fraction=0.8, seed=2)
    assert np.std(a) == pytest.approx(info["train_sigma"], rel=0.01) == pytest.approx(0.5 / np.sqrt(0.8), rel=0.01)
    assert np.var(b) == pytest.approx(info["target_variance"], rel=0.02)
    assert abs(np.corrcoef(a, b)[0, 1]) < 0.01
    with pytest.raises(ConfigError, match="sigma"):
        split_noise(y, noise="gaussian", dose=None, sigma=None)


@pytest.fixture(scope="module")
def slow():
    return simulate("li_fronts", seed=1, front_speed_px=0.25, **SMALL)


def test_the_score_ranks_settings_as_their_error_against_the_truth(slow):
    """On a slow scene, longer space-time patches are better; the split-noise score (computed
    without the truth) picks the candidate whose error, measured against the truth, is least (or
    one within 0.2 dB of it)."""
    da, truth = slow["li_fraction"], slow["li_fraction_true"].values
    fast = dict(atoms=64, sparsity=4, iterations=3, wiener=False)  # the sparse coding's own choice
    measured = {t: psnr(denoise(da, "sparse3d", temporal=t, **fast)[0].values, truth, data_range=1.0)
                for t in (2, 3, 5, 7)}

    def run(train, params, noise_kw):
        return denoise(train, "sparse3d", **params, **noise_kw, **fast)[0]

    chosen, record = select_parameters(da, run, {"temporal": [2, 3, 5, 7]}, {"temporal": 3}, noise="poisson",
                                       dose=12.0)
    assert set(record["scores"]["temporal"]) == {"2", "3", "5", "7"} and record["frames"] == [0, 16]
    best = max(measured, key=measured.get)
    assert measured[chosen["temporal"]] >= measured[best] - 0.2, (chosen, measured)
    assert measured[best] - measured[2] > 0.5  # the choice mattered
    # the score's estimated RMS error orders the candidates as the score does
    rmse = record["rmse_estimate"]["temporal"]
    assert min(rmse, key=rmse.get) == str(chosen["temporal"])


def test_auto_is_the_default_and_reports_its_choice(slow):
    da, truth = slow["li_fraction"], slow["li_fraction_true"].values
    out, info = denoise(da, "sparse3d", iterations=3)
    crit = info["criterion"]
    assert set(crit["chosen"]) == {"temporal", "atoms", "sparsity"}
    assert info["parameters"]["temporal"] == crit["chosen"]["temporal"] >= 3
    assert "binomial thinning" in crit["split"]["split"]
    fixed, _ = denoise(da, "sparse3d", temporal=3, atoms=256, sparsity=4, iterations=3)
    assert psnr(out.values, truth, data_range=1.0) >= psnr(fixed.values, truth, data_range=1.0) - 0.1
    # given values are kept; only what is left at auto is searched
    _, info2 = denoise(da, "sparse3d", temporal=2, atoms=64, iterations=2)
    assert info2["parameters"]["temporal"] == 2 and set(info2["criterion"]["chosen"]) == {"sparsity"}
    # data that cannot be split keep the old defaults, and say so
    _, info3 = denoise(da + 0.001, "sparse3d", noise="poisson", dose=12.0, atoms=64, iterations=2)
    assert info3["criterion"]["criterion"].startswith("none") and info3["parameters"]["temporal"] == 3


def test_3d_tv_and_bm4d_baselines_denoise_the_volume(slow):
    da, truth = slow["li_fraction"], slow["li_fraction_true"].values
    raw = psnr(da.values, truth, data_range=1.0)
    out, info = denoise(da, "tv3d")
    assert info["parameters"]["space_time"] is True and psnr(out.values, truth, data_range=1.0) > raw + 10
    frame_tv, _ = denoise(da, "tv")
    assert psnr(out.values, truth, data_range=1.0) > psnr(frame_tv.values, truth, data_range=1.0)  # slow: time helps
    pytest.importorskip("bm4d")
    out, info = denoise(da, "bm4d")
    assert info["sigma_psd"] == 1.0 and psnr(out.values, truth, data_range=1.0) > raw + 15
    with pytest.raises(ConfigError, match="series"):
        denoise(da.isel(time=0), "bm4d")


def test_the_cli_reports_the_choice(slow, run_cli, tmp_path):
    from ionscope import io

    io.save(slow, tmp_path / "movie.zarr")
    res = run_cli("denoise", f"{tmp_path / 'movie.zarr'}:li_fraction", "--method", "sparse3d", "--atoms", "64",
                  "--out", tmp_path / "d")
    assert res.returncode == 0, res.stderr
    summary = json.loads((tmp_path / "d" / "summary.json").read_text())
    assert summary["parameters"]["temporal"] == "auto" and summary["chosen"]["atoms"] == 64
    assert summary["chosen"]["temporal"] in (2, 3, 5, 7) and "scores" in summary["criterion"]
    res = run_cli("denoise", f"{tmp_path / 'movie.zarr'}:li_fraction", "--temporal", "three", "--out", tmp_path / "e")
    assert res.returncode == 2 and "--temporal 'three'" in res.stderr and not (tmp_path / "e").exists()
