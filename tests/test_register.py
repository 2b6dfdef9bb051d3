"""One registration routine with one sign convention, against scikit-image and known shifts."""

import numpy as np
import pytest
from skimage.registration import phase_cross_correlation

from ionscope.errors import ConfigError, InputError
from ionscope.register import register_translation, shift_image, translation_1d


def _scene(seed=0, n=96):
    rng = np.random.default_rng(seed)
    spec = np.fft.fft2(rng.normal(size=(n, n)))
    k = np.hypot(*np.meshgrid(np.fft.fftfreq(n), np.fft.fftfreq(n), indexing="ij"))
    return np.fft.ifft2(spec * np.exp(-(k / 0.06) ** 2)).real  # band-limited: exact Fourier shifts


@pytest.mark.parametrize("true_shift", [(2.3, -4.6), (-0.35, 0.8), (7.0, 3.05)])
def test_shift_to_apply_registers_the_moving_image(true_shift):
    fixed = _scene()
    moving = shift_image(fixed, true_shift)  # the content moved by +true_shift
    got = register_translation(fixed, moving, upsample=50)
    np.testing.assert_allclose(got, [-s for s in true_shift], atol=0.03)
    # the convention: applying the returned shift puts the moving image back
    back = shift_image(moving, got)
    assert np.abs(back - fixed)[10:-10, 10:-10].max() < 0.05 * np.abs(fixed).max()
    # and it is scikit-image's convention
    ref, _, _ = phase_cross_correlation(fixed, moving, upsample_factor=50)
    np.testing.assert_allclose(got, ref, atol=0.021)


def test_polish_reaches_a_hundredth_of_a_pixel_with_gain_and_offset():
    fixed = _scene(1)
    moving = 1.7 * shift_image(fixed, (1.234, -0.567), method="spline") + 3.0
    got = register_translation(fixed, moving, polish=True)
    np.testing.assert_allclose(got, (-1.234, 0.567), atol=0.01)


def test_one_dimensional_signals_batch_with_the_same_convention():
    x = np.arange(200.0)
    fixed = np.exp(-((x - 90.0) / 6.0) ** 2)
    d = np.array([0.0, 1.25, -3.4, 10.5])
    moving = np.exp(-((x[None, :] - 90.0 - d[:, None]) / 6.0) ** 2)
    np.testing.assert_allclose(translation_1d(fixed, moving, upsample=40), -d, atol=0.02)
    assert register_translation(fixed, moving[2])[0] == pytest.approx(3.4, abs=0.02)


def test_bad_inputs_and_parameters():
    with pytest.raises(InputError, match="one shape"):
        register_translation(np.zeros((4, 4)), np.zeros((4, 5)))
    with pytest.raises(ConfigError, match="upsample"):
        register_translation(np.zeros(8), np.zeros(8), upsample=0)
    with pytest.raises(ConfigError, match="method"):
        shift_image(np.zeros((4, 4)), (1, 1), method="cubic")
