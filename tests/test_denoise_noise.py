"""Noise models (ionscope.denoise.noise): Anscombe transforms and the MAD sigma estimate."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import poisson

from ionscope.denoise.noise import (
    anscombe,
    estimate_sigma,
    finest_detail_band,
    generalized_anscombe,
    inverse_anscombe,
    inverse_generalized_anscombe,
)
from ionscope.errors import ConfigError, DimensionError

MEANS = [1.0, 2.0, 3.0, 5.0, 10.0, 30.0, 100.0]


def _expected_anscombe(lam: float) -> float:
    """E[anscombe(z)] for z ~ Poisson(lam), by summing the distribution."""
    z = np.arange(0, int(lam + 40 * np.sqrt(lam) + 50))
    return float(np.sum(poisson.pmf(z, lam) * anscombe(z)))


@pytest.mark.parametrize("lam", MEANS)
def test_exact_unbiased_inverse_of_the_expected_transform(lam):
    """I(E[f(z)]) = lambda: the property that defines the exact unbiased inverse."""
    assert inverse_anscombe(_expected_anscombe(lam)) == pytest.approx(lam, rel=0.01)


def test_unbiased_inverse_on_samples_and_algebraic_inverse_is_biased():
    """With Poisson samples: inverse of the sample mean of the transformed counts is within
    1 % of the true mean for counts >= 1; the algebraic inverse misses by far more."""
    rng = np.random.default_rng(0)
    for lam in MEANS:
        mean_f = float(anscombe(rng.poisson(lam, size=400_000)).mean())
        assert inverse_anscombe(mean_f) == pytest.approx(lam, rel=0.01)
        if lam <= 3:
            assert abs(inverse_anscombe(mean_f, unbiased=False) - lam) > 0.05 * lam


def test_inverse_round_trips_at_high_counts_and_is_zero_below_the_transform_of_zero():
    y = anscombe(np.array([1e4, 1e6]))
    np.testing.assert_allclose(inverse_anscombe(y), [1e4 + 0.25, 1e6 + 0.25], rtol=1e-6)
    np.testing.assert_array_equal(inverse_anscombe(np.array([0.0, 0.5, 1.0])), 0.0)
    assert inverse_anscombe(anscombe(0.0)) == pytest.approx(0.0, abs=1e-6)
    assert inverse_anscombe(np.float32(5.0)).dtype == np.float32


def test_transform_stabilises_variance_to_one():
    rng = np.random.default_rng(1)
    for lam in (10.0, 50.0, 300.0):
        assert anscombe(rng.poisson(lam, 200_000)).std() == pytest.approx(1.0, abs=0.03)


@pytest.mark.parametrize("lam", [2.0, 10.0, 50.0])
def test_generalized_anscombe_stabilises_and_inverts_poisson_gaussian(lam):
    rng = np.random.default_rng(2)
    gain, read_noise, n = 2.5, 3.0, 400_000
    z = gain * rng.poisson(lam, n) + rng.normal(0.0, read_noise, n)
    f = generalized_anscombe(z, gain=gain, read_noise=read_noise)
    if lam >= 10:
        assert f.std() == pytest.approx(1.0, abs=0.05)
    back = inverse_generalized_anscombe(f.mean(), gain=gain, read_noise=read_noise)
    assert back == pytest.approx(gain * lam, rel=0.03)
    # gain 1, no read noise: the plain Anscombe pair
    c = rng.poisson(lam, 1000).astype(float)
    np.testing.assert_allclose(generalized_anscombe(c), anscombe(c))
    np.testing.assert_allclose(
        inverse_generalized_anscombe(anscombe(c)), inverse_anscombe(anscombe(c))
    )
    with pytest.raises(ConfigError, match="gain"):
        generalized_anscombe(c, gain=0.0)


@pytest.mark.parametrize("wavelet", ["db2", "haar"])
@pytest.mark.parametrize("sigma", [0.02, 0.1, 1.0])
def test_mad_sigma_within_5_percent_on_gaussian_noise_over_structure(wavelet, sigma):
    rng = np.random.default_rng(3)
    yy, xx = np.mgrid[0:192, 0:192] / 192.0
    image = np.sin(6 * xx) + np.cos(4 * yy) + 0.5 * (xx > 0.5)   # smooth + one edge
    estimate = estimate_sigma(image + rng.normal(0.0, sigma, image.shape), wavelet)
    assert estimate == pytest.approx(sigma, rel=0.05)


def test_detail_band_is_orthonormal_and_pools_frames():
    rng = np.random.default_rng(4)
    noise = rng.normal(0.0, 2.0, (3, 64, 64))
    band = finest_detail_band(noise, "db2")
    assert band.shape == (3, 31, 31)                   # 'valid' positions, decimated by 2
    assert band.std() == pytest.approx(2.0, rel=0.05)   # unit-norm filters keep the variance
    ramp = np.add.outer(np.arange(32.0), 2 * np.arange(32.0))
    # db2 has two vanishing moments: a linear ramp leaves no detail
    np.testing.assert_allclose(finest_detail_band(ramp, "db2"), 0.0, atol=1e-10)
    assert estimate_sigma(noise) == pytest.approx(2.0, rel=0.05)
    with pytest.raises(ConfigError, match="unknown wavelet"):
        finest_detail_band(noise, "db9")
    with pytest.raises(DimensionError):
        finest_detail_band(np.zeros(10))
