"""ionscope.holography.passes: the single-pass numba loops equal their numpy expressions."""

from __future__ import annotations

import numpy as np
import pytest

from ionscope.holography.passes import apodised, mean_and_std, power_minus_leak, scale_outer

RNG = np.random.default_rng(11)


def test_apodised_is_the_separable_window_product():
    image = RNG.poisson(800, (37, 52)).astype(np.float32)
    wy, wx = RNG.random(37).astype(np.float32), RNG.random(52).astype(np.float32)
    out = apodised(image, wy, wx)
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, image * wy[:, None] * wx[None, :], rtol=1e-6)


@pytest.mark.parametrize("offset", [0.0, 1e4, -3.0])
def test_mean_and_std_in_float64_without_cancellation(offset):
    image = (RNG.normal(offset, 2.0, (64, 81))).astype(np.float32)
    image[0] += 5.0  # the first row's mean is not the mean
    mean, std = mean_and_std(image)
    ref = image.astype(np.float64)
    assert mean == pytest.approx(ref.mean(), rel=1e-12, abs=1e-12)
    assert std == pytest.approx(ref.std(), rel=1e-9)


def test_power_minus_leak_and_scale_outer():
    R = (RNG.normal(size=(20, 11)) + 1j * RNG.normal(size=(20, 11))).astype(np.complex64)
    ly = (RNG.normal(size=20) + 1j * RNG.normal(size=20)).astype(np.complex64)
    lx = (RNG.normal(size=11) + 1j * RNG.normal(size=11)).astype(np.complex64)
    np.testing.assert_allclose(power_minus_leak(R, ly, lx), np.abs(R - np.outer(ly, lx)) ** 2, rtol=1e-5)
    wave = R.copy()
    scale_outer(wave, ly, lx)
    np.testing.assert_allclose(wave, R * np.outer(ly, lx), rtol=1e-5)
