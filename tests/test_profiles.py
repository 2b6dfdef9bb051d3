"""ionscope.profiles: band profiles and step fits against analytic ground truth."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr
from scipy.ndimage import gaussian_filter
from scipy.signal import fftconvolve
from scipy.special import ndtr

from ionscope.constants import EPSILON_0
from ionscope.data import provenance, signal
from ionscope.errors import ConfigError, DimensionError, InputError
from ionscope.profiles import (
    MODELS,
    LowPass,
    StepFit,
    band_profile,
    detect_interface,
    fit_step,
    fit_step_arrays,
    normal_segment,
    profile_covariance,
    step_summary,
)

X = np.linspace(0.0, 60.0, 241)  # nm, 0.25 nm steps


def _profile(values, sigma=None, x=X, units="V"):
    da = xr.DataArray(np.asarray(values, float), dims="position",
                      coords={"position": ("position", x, {"units": "nm"})}, attrs={"units": units})
    if sigma is not None:
        da = da.assign_coords(profile_sigma=("position", np.broadcast_to(sigma, x.shape).astype(float)))
    return da


def _truth(model, drop=1.3, level=0.2, x0=28.0, w=3.0, side="end", blur=0.0, jump=0.0):
    u = X - x0
    y = level + drop * MODELS[model].evaluate(u, w, blur, side)
    if jump:
        y = y + jump * (ndtr(-u / blur) if blur else (u < 0))
    return y


# --------------------------------------------------------------------------- models


@pytest.mark.parametrize("model", sorted(MODELS))
def test_w90_factor_is_the_shortest_span_holding_90_percent_of_the_drop(model):
    u = np.linspace(-60, 60, 240001)
    f = MODELS[model].evaluate(u, 2.0)  # 1 -> 0
    done = 1.0 - f  # fraction of the drop reached
    # shortest interval [a, b] with done(b) - done(a) = 0.9: scan the start a
    lo = np.searchsorted(done, np.linspace(0, 0.1, 2001))
    hi = np.searchsorted(done, np.linspace(0, 0.1, 2001) + 0.9)
    ok = hi < u.size
    span = np.min(u[hi[ok]] - u[lo[ok]])
    assert span == pytest.approx(MODELS[model].w90_factor * 2.0, abs=2e-3)


@pytest.mark.parametrize("model", sorted(MODELS))
def test_model_slope_and_curvature_match_finite_differences(model):
    spec = MODELS[model]
    u = np.linspace(-9.7, 9.9, 397)  # avoids the kinks at 0 and w exactly
    h = 1e-4
    f = lambda v: spec.evaluate(v, 2.5)  # noqa: E731
    assert np.allclose(spec.derivative(u, 2.5, 1), (f(u + h) - f(u - h)) / (2 * h), atol=1e-6)
    assert np.allclose(spec.derivative(u, 2.5, 2), (f(u + h) - 2 * f(u) + f(u - h)) / h**2, atol=2e-3)
    assert np.max(np.abs(spec.derivative(u, 2.5, 1))) <= spec.peak_slope(2.5) * (1 + 1e-9)


@pytest.mark.parametrize("model", ["exp", "erfc", "tanh", "depletion"])
def test_gaussian_blur_matches_numerical_convolution(model):
    spec = MODELS[model]
    u = np.linspace(-15, 15, 601)
    grid = np.linspace(-40, 40, 16001)  # 0.005 nm
    kernel = np.exp(-0.5 * (np.linspace(-10, 10, 4001) / 1.5) ** 2)
    kernel /= kernel.sum()
    raw = spec.evaluate(grid, 3.0)
    conv = fftconvolve(np.pad(raw, 2000, mode="edge"), kernel, mode="same")[2000:-2000]
    assert np.allclose(spec.evaluate(u, 3.0, 1.5), np.interp(u, grid, conv), atol=1e-5)
    mirrored = spec.evaluate(u, 3.0, 1.5, "start")
    assert np.allclose(mirrored, 1 - spec.evaluate(-u, 3.0, 1.5, "end"))


# --------------------------------------------------------------------------- fits


@pytest.mark.parametrize("model", sorted(MODELS))
def test_noise_free_profiles_are_recovered_exactly(model):
    y = _truth(model)
    res = fit_step(_profile(y), model)
    assert float(res["drop"]) == pytest.approx(1.3, rel=1e-6)
    assert float(res["interface"]) == pytest.approx(28.0, abs=1e-5)
    assert float(res["width"]) == pytest.approx(3.0, rel=1e-5)
    assert float(res["w90"]) == pytest.approx(3.0 * MODELS[model].w90_factor, rel=1e-5)
    assert float(res["level_start"]) == pytest.approx(1.5, abs=1e-6)
    assert res.attrs["model"] == model
    assert np.allclose(res["fit"].values, y, atol=1e-6)


@pytest.mark.parametrize("model,side", [("exp", "start"), ("erfc", "end"), ("depletion", "start")])
def test_one_sided_layers_find_their_side(model, side):
    y = _truth(model, side=side, drop=-0.8)
    res = fit_step(_profile(y), model)
    assert res.attrs["side"] == side
    assert float(res["drop"]) == pytest.approx(-0.8, rel=1e-5)


@pytest.mark.slow
@pytest.mark.parametrize("model", ["erf", "tanh", "exp", "erfc"])
def test_noisy_fit_within_errors_and_errors_match_scatter_over_seeds(model):
    y0 = _truth(model)
    sigma = 0.05
    values, errors = [], []
    for seed in range(30):
        y = y0 + np.random.default_rng(seed).normal(0, sigma, X.size)
        fit = fit_step_arrays(X, y, np.full(X.size, sigma), model=model)
        sm = step_summary(fit)
        values.append([sm[k][0] for k in ("drop", "w90", "interface")])
        errors.append([sm[k][1] for k in ("drop", "w90", "interface")])
    values, errors = np.array(values), np.array(errors)
    truth = np.array([1.3, 3.0 * MODELS[model].w90_factor, 28.0])
    z = (values - truth) / errors
    assert np.all(np.abs(z) < 4.5)  # no outliers
    assert np.all(np.abs(values.mean(0) - truth) < 3 * values.std(0) / np.sqrt(len(values)) + 0.02 * errors.mean(0))
    ratio = values.std(0, ddof=1) / errors.mean(0)
    assert np.all((ratio > 0.7) & (ratio < 1.35)), ratio  # 30 seeds: +-13 % (1 sigma) on a std


def test_fixed_gaussian_blur_is_deconvolved():
    y = _truth("erf", w=2.0, blur=1.5)  # erf of sigma sqrt(2^2 + 1.5^2)
    res = fit_step(_profile(y), "erf", blur=1.5)
    assert float(res["width"]) == pytest.approx(2.0, rel=1e-5)
    y = _truth("exp", w=4.0, blur=1.2)
    res = fit_step(_profile(y), "exp", blur="fit")
    assert float(res["width"]) == pytest.approx(4.0, rel=1e-4)
    assert float(res["blur"]) == pytest.approx(1.2, rel=1e-3)
    assert res.attrs["blur_fitted"]


def test_blur_fit_refused_for_symmetric_models():
    with pytest.raises(ConfigError, match="one-sided"):
        fit_step(_profile(_truth("erf")), "erf", blur="fit")


def test_interface_step_separates_a_sharp_jump_from_the_smooth_drop():
    y = _truth("erfc", drop=1.3, w=4.0, jump=-5.0, blur=0.5)
    res = fit_step(_profile(y), "erfc", blur=0.5, step=True, side="end")
    assert float(res["drop"]) == pytest.approx(1.3, rel=1e-4)
    assert float(res["jump"]) == pytest.approx(-5.0, rel=1e-5)
    assert float(res["total_drop"]) == pytest.approx(-3.7, rel=1e-5)
    assert float(res["w90"]) == pytest.approx(4.0 * MODELS["erfc"].w90_factor, rel=1e-4)


def _sinc_lowpass(values, h, cutoff):
    """Ideal low-pass by direct convolution with the sinc kernel (independent of the FFT code)."""
    t = np.arange(-4000, 4001) * h
    kernel = 2 * cutoff * np.sinc(2 * cutoff * t) * h
    padded = np.pad(values, 4000, mode="edge")
    return np.convolve(padded, kernel, mode="same")[4000:-4000]


@pytest.mark.parametrize("kappa", [None, 0.6])
def test_lowpass_resolution_of_a_fourier_reconstruction_is_modelled(kappa):
    """A step seen through an ideal aperture: linear filter, or the wave exp(i kappa V)."""
    h = 0.025
    grid = np.arange(-40, 100, h)
    v = 0.2 + 4.0 * ndtr(-(grid - 28.0) / 1.0)
    cutoff = 0.12  # resolution ~ 4 nm, four times the step width
    if kappa is None:
        seen = _sinc_lowpass(v, h, cutoff)
    else:
        wave = _sinc_lowpass(np.cos(kappa * v), h, cutoff) + 1j * _sinc_lowpass(np.sin(kappa * v), h, cutoff)
        seen = np.unwrap(np.angle(wave)) / kappa
        seen += 0.2 - seen[0]
    y = np.interp(X, grid, seen)
    lp = LowPass(cutoff, 0.0, kappa)
    res = fit_step(_profile(y), "erf", blur=lp)
    assert float(res["drop"]) == pytest.approx(4.0, rel=5e-3)
    assert float(res["width"]) == pytest.approx(1.0, rel=0.03)
    assert float(res["interface"]) == pytest.approx(28.0, abs=0.02)
    # without the resolution model the width is the blurred one
    assert float(fit_step(_profile(y), "erf")["width"]) > 1.3


XH = np.arange(0.0, 84.01, 0.5)  # a holography profile: 0.5 nm pixels, interface at 42 nm
HOLO = dict(level=12.7, drop=1.3, x0=42.0, w=4.0, jump=5.0)  # erfc layer beside a 5 V MIP step
CUT, EDGE, KAPPA = 1 / 6.0, 1 / 120.0, 0.53  # the twin's aperture, C_E t (rad/V)


def _aperture_reference(width, ratio=1.0, kappa=KAPPA, h=0.01, half=400.0):
    """The erfc + step profile (interface Gaussian-graded by ``width`` nm, amplitude ``ratio``
    on the start side, mixing like the phase) seen through the aperture, on a fine and long
    grid by plain FFTs (independent of profiles' implementation)."""
    grid = np.arange(-half, half, h) + h / 2
    u = grid - HOLO["x0"]
    s = ndtr(-u / width) if width > 0 else (u < 0).astype(float)
    f = MODELS["erfc"].evaluate(u, HOLO["w"])
    near = np.abs(u) < 40.0
    if width > 0:
        f[near] = MODELS["erfc"].evaluate(u[near], HOLO["w"], width)
    v = HOLO["level"] + HOLO["drop"] * f + HOLO["jump"] * s
    ext = np.concatenate([v, v[::-1]])
    transfer = LowPass(CUT, EDGE).transfer(np.fft.fftfreq(ext.size, h))
    if kappa is None:
        seen = np.fft.ifft(np.fft.fft(ext) * transfer).real[: grid.size]
    else:
        amp = np.exp(np.log(ratio) * s)
        wave = np.fft.ifft(np.fft.fft(np.concatenate([amp, amp[::-1]]) * np.exp(1j * kappa * ext)) * transfer)
        phase = np.unwrap(np.angle(wave[: grid.size]))
        phase += 2 * np.pi * np.round((kappa * v[0] - phase[0]) / (2 * np.pi))
        seen = phase / kappa
    return np.interp(XH, grid, seen)


@pytest.mark.parametrize("width", [0.0, 0.1, 0.25, 0.6])
@pytest.mark.parametrize("kappa,ratio", [(KAPPA, 1.0), (KAPPA, 0.8), (None, 1.0)])
def test_lowpass_model_of_a_large_phase_step_matches_a_fine_reference(width, kappa, ratio):
    """A 2.65 rad step: the filtered wave depends on the step's sub-resolution grading (chord
    versus arc), up to 0.5 V here; the model follows it within 0.015 V at every width."""
    ref = _aperture_reference(width, ratio, kappa)
    lp = LowPass(CUT, EDGE, kappa, None if ratio == 1.0 else ratio, width)
    names = ["level_end", "drop", "position", "width", "jump"]
    truth = np.array([HOLO["level"], HOLO["drop"], HOLO["x0"], HOLO["w"], HOLO["jump"]])
    model = StepFit("erfc", "end", names, truth, np.zeros(5), np.zeros((5, 5)), lp, 1.0, 1).curve(XH)
    assert np.abs(model - ref).max() < 0.015


def test_lowpass_amplitude_contrast_and_interface_width_matter():
    ref = _aperture_reference(0.25, ratio=0.8)
    right = fit_step_arrays(XH, ref, model="erfc", side="end", step=True,
                            blur=LowPass(CUT, EDGE, KAPPA, 0.8, 0.25))
    no_amplitude = fit_step_arrays(XH, ref, model="erfc", side="end", step=True,
                                   blur=LowPass(CUT, EDGE, KAPPA, None, 0.25))
    sharp = fit_step_arrays(XH, ref, model="erfc", side="end", step=True,
                            blur=LowPass(CUT, EDGE, KAPPA, 0.8, 0.0))
    assert right.value("drop") == pytest.approx(1.3, rel=0.01)
    assert right.value("width") == pytest.approx(4.0, rel=0.01)
    assert right.value("jump") == pytest.approx(5.0, abs=0.01)
    assert no_amplitude.value("drop") - 1.3 > 0.03  # the amplitude step reads as extra drop
    assert sharp.value("drop") - 1.3 > 0.3  # a graded step fitted as a sharp one
    # None: half the sample spacing (0.25 nm here)
    default = LowPass(CUT, EDGE, KAPPA, 0.8)
    as_default = StepFit(right.model, right.side, right.names, right.values, right.errors, right.cov,
                         default, right.chi2_reduced, right.dof)
    assert np.allclose(right.curve(XH), as_default.curve(XH), atol=1e-9)
    for bad in (dict(amplitude_ratio=0.8), dict(phase_per_unit=KAPPA, amplitude_ratio=-1.0),
                dict(phase_per_unit=KAPPA, blur_nm=-0.1), dict(phase_per_unit=KAPPA, blur_nm=7.0)):
        with pytest.raises(ConfigError):
            LowPass(CUT, EDGE, **bad)


@pytest.mark.parametrize("model,x0,w", [("erfc", 28.0, 3.0), ("erfc", 28.1, 3.0), ("exp", 28.0, 3.0),
                                        ("depletion", 28.0, 6.0)])
def test_sharp_step_next_to_a_layer_is_fitted_exactly(model, x0, w):
    """Unblurred data: the jump moves in whole samples, which used to stall the fit (drop 4 V
    instead of 1.3 V for a layer beside a 5 V step)."""
    u = X - x0
    y = 0.2 + 1.3 * MODELS[model].evaluate(u, w) + 5.0 * np.where(u < 0, 1.0, np.where(u == 0, 0.5, 0.0))
    fit = fit_step_arrays(X, y, model=model, side="end", step=True)
    assert fit.value("drop") == pytest.approx(1.3, rel=1e-5)
    assert fit.value("jump") == pytest.approx(5.0, rel=1e-5)
    assert fit.value("width") == pytest.approx(w, rel=1e-5)
    assert fit.value("position") == pytest.approx(x0, abs=1e-4)


def test_field_and_charge_follow_from_the_fitted_model():
    y = _truth("erf", drop=1.3, w=2.0)
    res = fit_step(_profile(y), "erf", eps_r=50.0)
    peak = 1.3 / (2.0 * np.sqrt(2 * np.pi)) * 1e9  # V/m
    assert float(res["field_peak"]) == pytest.approx(peak, rel=1e-5)
    assert float(np.max(res["field"])) == pytest.approx(peak, rel=2e-3)
    rho = res["charge_density"].values  # C/m^3
    side = X >= 28.0
    # Gauss: the charge on one side of the field maximum is eps0 eps_r E_peak
    areal = abs(np.trapezoid(rho[side], X[side] * 1e-9))
    assert areal == pytest.approx(EPSILON_0 * 50 * peak, rel=2e-3)
    assert float(res["areal_charge"]) == pytest.approx(EPSILON_0 * 50 * peak, rel=1e-5)
    assert res["charge_density"].attrs["units"] == "C/m^3"


def test_fit_errors_for_unusable_profiles():
    with pytest.raises(ConfigError, match="'model' must be a step model registered"):
        fit_step(_profile(_truth("erf")), "sigmoid")
    with pytest.raises(InputError, match="constant"):
        fit_step(_profile(np.ones(X.size)), "erf")
    with pytest.raises(InputError, match="at least"):
        fit_step(_profile(np.arange(5.0), x=np.arange(5.0)), "erf")
    with pytest.raises(DimensionError):
        fit_step(xr.DataArray(np.ones((3, 4)), dims=("y", "x")), "erf")
    with pytest.raises(InputError, match="not a length"):
        fit_step(xr.DataArray(_truth("erf"), dims="position",
                              coords={"position": ("position", X, {"units": "eV"})}), "erf")


# --------------------------------------------------------------------------- band profiles


def _image(values, pixel=0.5, units="V"):
    return signal(values, ("y", "x"), name="potential", units=units, coords={"y": pixel, "x": pixel})


def test_band_profile_of_a_linear_ramp_is_exact_along_any_direction():
    yy, xx = np.mgrid[0:80, 0:100].astype(float)
    img = _image(0.3 * yy - 0.1 * xx + 2.0)
    prof = band_profile(img, (10.3, 12.0), (60.0, 81.7), width=7)
    s = prof["position"].values
    length = np.hypot(49.7, 69.7) * 0.5
    assert prof["position"].attrs["units"] == "nm" and s[-1] <= length < s[-1] + 0.5
    along = np.array([49.7, 69.7]) / np.hypot(49.7, 69.7)  # px direction
    expect = 0.3 * (10.3 + along[0] * s / 0.5) - 0.1 * (12.0 + along[1] * s / 0.5) + 2.0
    assert np.allclose(prof["profile"].values, expect, atol=1e-9)
    assert prof["profile"].attrs["units"] == "V"
    assert prof.attrs["width_px"] == 7 and provenance(prof)[-1]["step"] == "ionscope.profiles.band_profile"
    # in nm, the same line
    same = band_profile(img, (10.3 * 0.5, 6.0), (30.0, 81.7 * 0.5), width=7, unit="nm")
    assert np.allclose(same["profile"].values, prof["profile"].values)


def test_band_profile_standard_errors_white_noise():
    rng = np.random.default_rng(3)
    scatter, sigmas = [], []
    for _ in range(20):
        img = _image(rng.normal(0, 0.2, (64, 96)))
        prof = band_profile(img, (32, 5), (32, 90), width=9)  # integer lines: no interpolation
        scatter.append(prof["profile"].values)
        sigmas.append(prof["profile_sigma"].values)
    assert np.mean(sigmas) == pytest.approx(0.2 / 3, rel=0.06)
    assert np.std(scatter, axis=0, ddof=1).mean() == pytest.approx(np.mean(sigmas), rel=0.1)
    assert prof.attrs["tau_across"] < 1.3 and len(prof["profile_sigma"].attrs["noise_correlation"]) <= 2


@pytest.mark.slow
def test_correlated_noise_gives_honest_profile_and_fit_errors():
    """Band-limited noise (as in a reconstructed phase): lines are not independent."""
    yy, xx = np.mgrid[0:40, 0:112] * 0.5
    clean = 0.1 + 1.3 * ndtr(-(xx - 28.0) / 2.0)
    drops, errs, errs_diag, sig, scatter = [], [], [], [], []
    for seed in range(48):
        noise = gaussian_filter(np.random.default_rng(seed).normal(size=clean.shape), 2.0)
        img = _image(clean + 0.1 * noise / noise.std())
        prof = band_profile(img, (20, 6), (20, 106), width=21)
        sig.append(prof["profile_sigma"].values)
        scatter.append(prof["profile"].values)
        fit = fit_step(prof, "erf")
        drops.append(float(fit["drop"]))
        errs.append(float(fit["drop_error"]))
        errs_diag.append(float(fit_step(prof, "erf", covariance="diagonal")["drop_error"]))
    assert prof.attrs["independent_lines"] < 6  # 21 lines, correlated over ~5 px
    assert np.std(scatter, axis=0, ddof=1).mean() == pytest.approx(np.mean(sig), rel=0.15)
    assert 0.75 < np.std(drops, ddof=1) / np.mean(errs) < 1.35  # 48 seeds: +-10 % on a std
    assert np.mean(errs_diag) < 0.6 * np.std(drops, ddof=1)  # ignoring the correlation lies
    assert np.all(np.abs(np.array(drops) - 1.3) < 4 * np.array(errs))


def test_profile_covariance_is_positive_definite():
    cov = profile_covariance(np.full(50, 0.1), [1.0, 0.6, 0.2])
    assert cov[0, 1] == pytest.approx(0.6 * 0.01) and cov[0, 2] == pytest.approx(0.2 * 0.01)
    assert cov[0, 3] == 0.0
    # a truncated empirical correlation that is not positive definite is repaired
    bad = profile_covariance(np.full(50, 0.1), [1.0, 0.9, 0.7, 0.2])
    assert np.all(np.linalg.eigvalsh(bad) > 0) and np.allclose(np.diag(bad), 0.01)
    assert np.allclose(profile_covariance(np.full(4, 2.0)), 4 * np.eye(4))


def test_band_profile_errors():
    img = _image(np.zeros((20, 30)))
    with pytest.raises(InputError, match="leaves"):
        band_profile(img, (10, 2), (10, 28), width=25)
    with pytest.raises(ConfigError, match=r"'width' must be an integer in \[1, inf\) px"):
        band_profile(img, (10, 2), (10, 28), width=0)
    with pytest.raises(InputError, match="shorter"):
        band_profile(img, (10, 2), (10, 2.5))
    raw = signal(np.zeros((20, 30)), ("y", "x"), name="potential", units="V")
    with pytest.raises(InputError, match="not a length"):
        band_profile(raw, (10, 2), (10, 28))
    assert band_profile(raw, (10, 2), (10, 28), pixel_size_nm=0.5)["position"].values[-1] == 13.0
    with pytest.raises(DimensionError):
        band_profile(signal(np.zeros((2, 20, 30)), ("time", "y", "x"), name="p", units="V"), (1, 1), (5, 5))


def test_band_profile_skips_nan_pixels():
    values = np.tile(np.linspace(0, 1, 40), (20, 1))
    values[:3, :] = np.nan  # a masked strip inside the band
    prof = band_profile(_image(values), (5, 2), (5, 37), width=9)
    assert np.all(np.isfinite(prof["profile"].values))
    assert prof["count"].values.min() < 9


# --------------------------------------------------------------------------- interface detection


def test_detect_interface_finds_a_tilted_step_and_its_normal():
    yy, xx = np.mgrid[0:120, 0:160].astype(float)
    angle = np.deg2rad(25.0)  # interface direction from the y axis
    d = (xx - 80) * np.cos(angle) - (yy - 60) * np.sin(angle)
    img = _image(3.0 * ndtr(-d / 2.0) + np.random.default_rng(0).normal(0, 0.05, yy.shape))
    found = detect_interface(img, smooth_px=2.0)
    direction = np.array(found["direction"])
    truth = np.array([np.cos(angle), np.sin(angle)])  # (dy, dx) along the interface
    assert abs(abs(direction @ truth) - 1) < 1e-3
    py, px = found["point"]
    assert abs((px - 80) * np.cos(angle) - (py - 60) * np.sin(angle)) < 0.5
    start, end = normal_segment(found, 40, img.shape, margin_px=2)
    prof = band_profile(img, start, end, width=9)
    res = fit_step(prof, "erf")
    assert float(res["drop"]) == pytest.approx(3.0, rel=0.02)  # falls along the normal
    assert float(res["width"]) == pytest.approx(1.0, rel=0.1)  # 2 px = 1 nm


def test_detect_interface_refuses_noise():
    img = _image(np.random.default_rng(1).normal(size=(64, 64)))
    with pytest.raises(InputError, match="no straight interface"):
        detect_interface(img)
