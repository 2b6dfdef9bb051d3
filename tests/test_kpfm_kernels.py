"""The KPFM kernels on numpy arrays: channels and sign, levelling and referencing, noise and
resolution, drift registration, the PSF and its deconvolution, particles, step-plus-linear fits,
the cycler timeline."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr
from scipy.special import ndtr

from ionscope.errors import ConfigError, InputError
from ionscope.kpfm.channels import (
    channel_table, check_sign_convention, choose_channel, choose_topography, sample_potential_kernel, trace,
)
from ionscope.register.stack import covered_kernel, frame_shifts_kernel, shift_frame_kernel
from ionscope.kpfm.interface import fit_step_linear_kernel, step_linear_model
from ionscope.kpfm.level import (
    find_reference_kernel, flat_noise_kernel, highpass_noise_kernel, level_topography_kernel, parse_box,
    reference_kernel, step_width_kernel, trace_noise_kernel,
)
from ionscope.kpfm.particles import (
    active_particles_kernel, active_pixels_kernel, edge_profile_kernel, particle_series_kernel, response_time_kernel,
    segment_particles_kernel,
)
from ionscope.kpfm.psf import (
    PSF, _radial_bins, edge_response, fit_edge_kernel, otf_kernel, signal_spectrum_kernel, wiener_deconvolve_kernel,
)
from ionscope.kpfm.timeline import cycler_arrays, interpolate_kernel
from kpfm_frames import make_frames, step_frame


def _frame(**variables):
    coords = {"y": ("y", np.arange(16) * 2.0, {"units": "nm"}), "x": ("x", np.arange(16) * 2.0, {"units": "nm"})}
    return xr.Dataset({name: (("y", "x"), np.full((16, 16), float(i)), {"units": unit})
                       for i, (name, unit) in enumerate(variables.items())}, coords=coords,
                      attrs={"source_file": "scan.sxm"})


# --------------------------------------------------------------------------- channels and sign


def test_the_potential_channel_is_found_by_its_name_and_unit_not_the_other_volt_channels():
    frame = _frame(Z_forward="nm", Amplitude_forward="V", Potential_forward="V", Potential_backward="V")
    assert channel_table(frame)["Potential"] == {"forward": "Potential_forward", "backward": "Potential_backward"}
    assert choose_channel(frame) == "Potential"
    assert choose_topography(frame) == "Z"
    assert choose_channel(_frame(Height_forward="m", Bias_forward="V")) == "Bias"  # the bias when nothing better
    assert choose_channel(_frame(KelvinPotential_forward="V", Bias_forward="V")) == "KelvinPotential"


@pytest.mark.parametrize("variables, match", [
    ({"Z_forward": "nm", "Amplitude_forward": "V"}, "no channel in V looks like"),
    ({"CPD_forward": "V", "Potential_forward": "V"}, "several channels"),
])
def test_no_or_two_candidate_channels_are_an_error_that_lists_the_channels(variables, match):
    with pytest.raises(InputError, match=match) as info:
        choose_channel(_frame(**variables))
    for name in variables:
        assert name.split("_")[0] in str(info.value)


def test_a_channel_that_does_not_exist_lists_those_that_do():
    frame = _frame(Z_forward="nm", Potential_forward="V")
    with pytest.raises(InputError, match=r"scan.sxm has no channel 'Kelvin'.*Z \[nm\].*Potential \[V\]"):
        choose_channel(frame, "Kelvin")
    with pytest.raises(InputError, match="not V"):
        choose_channel(frame, "Z")
    assert choose_channel(frame, "potential") == "Potential"  # case does not matter


def test_traces_forward_backward_mean_and_a_missing_trace():
    frame = _frame(Potential_forward="V", Potential_backward="V", Z_forward="µm", CPD_forward="mV")
    assert trace(frame, "Potential", "mean")[0, 0] == pytest.approx(0.5)
    assert trace(frame, "CPD", "forward")[0, 0] == pytest.approx(0.003)  # mV -> V
    assert choose_channel(frame, "CPD") == "CPD"
    assert trace(frame, "Z", "forward")[0, 0] == pytest.approx(2000.0)  # µm -> nm
    with pytest.raises(InputError, match="no backward trace"):
        trace(frame, "Z", "backward")
    with pytest.raises(ConfigError, match="direction"):
        trace(frame, "Potential", "up")


def test_the_sign_convention_is_checked_against_a_known_applied_bias():
    """A sample held at +0.5 V is nulled by a sample bias of -0.5 V (bias on the sample, tip
    grounded) or a tip bias of +0.5 V (bias on the tip): the check tells which wiring a
    recording follows."""
    rng = np.random.default_rng(0)
    zero = 0.3 + 0.01 * rng.standard_normal((32, 32))
    sample_biased = zero + 0.01 * rng.standard_normal((32, 32)) - 0.5  # the sample's bias nulls +0.5 V
    ok = check_sign_convention(sample_biased, zero, 0.5, bias_on="sample")
    assert ok["consistent"] and ok["measured_V"] == pytest.approx(0.5, abs=0.01)
    flipped = check_sign_convention(sample_biased, zero, 0.5, bias_on="tip")
    assert not flipped["consistent"] and flipped["suggested_bias_on"] == "sample"
    assert flipped["measured_V"] == pytest.approx(-0.5, abs=0.01)
    # a biased region against a grounded reference region
    part = zero.copy()
    part[:, 16:] -= 0.2
    res = check_sign_convention(part, zero, 0.2, bias_on="sample", region=(0, 32, 20, 32), reference=(0, 32, 0, 10))
    assert res["consistent"]
    assert sample_potential_kernel(np.ones(3), "tip").tolist() == [1.0, 1.0, 1.0]
    assert sample_potential_kernel(np.ones(3), "sample").tolist() == [-1.0, -1.0, -1.0]
    with pytest.raises(ConfigError):
        check_sign_convention(part, zero, 0.0, bias_on="sample")


# --------------------------------------------------------------------------- levelling and referencing


def test_topography_levelling_removes_plane_and_line_offsets_and_keeps_the_particles():
    rng = np.random.default_rng(1)
    yy, xx = np.mgrid[:96, :96]
    particles = 4.0 * ((yy - 40) ** 2 + (xx - 50) ** 2 < 15**2)
    z = particles + 0.03 * xx - 0.02 * yy + 7 + rng.normal(0, 0.5, (96, 1)) + rng.normal(0, 0.02, (96, 96))
    out = level_topography_kernel(z)
    matrix = particles == 0
    assert np.std(out[matrix]) < 0.05
    assert np.median(out[~matrix]) - np.median(out[matrix]) == pytest.approx(4.0, abs=0.1)


def test_the_potential_is_never_plane_fitted_its_gradient_survives_referencing():
    """An IR ramp across the map is the signal: removing the line offsets on the collector band
    keeps it exactly."""
    rng = np.random.default_rng(2)
    ny, nx = 64, 96
    x = np.arange(nx)
    truth = np.where(x < 12, 0.0, 0.2 + 0.004 * (x - 12))[None, :].repeat(ny, 0)
    v = truth + rng.normal(0, 0.05, (ny, 1)) + 0.3 + rng.normal(0, 0.005, (ny, nx))
    box, info = find_reference_kernel(v)
    assert info["edge"] == "left" and box[2] == 0 and 6 <= box[3] <= 12
    out, offsets = reference_kernel(v, box)
    assert np.median(out[:, box[2]:box[3]]) == pytest.approx(0.0, abs=1e-12)
    slope = np.polyfit(x[20:], out[:, 20:].mean(0), 1)[0]
    assert slope == pytest.approx(0.004, rel=0.01)
    assert np.sqrt(np.mean((out - truth) ** 2)) < 0.01
    assert offsets.shape == (ny,)


def test_a_box_outside_the_image_is_a_config_error_and_a_box_is_read_from_text():
    assert parse_box("0:64,0:10", (64, 96)) == (0, 64, 0, 10)
    assert parse_box((2, 5, 3, 9), (64, 96)) == (2, 5, 3, 9)
    for bad in ("0:65,0:10", "10:5,0:4", "-1:3,0:4", "0:64;0:10", (0, 64, 90, 100)):
        with pytest.raises(ConfigError):
            parse_box(bad, (64, 96))


def test_a_band_along_the_top_removes_only_its_own_rows_offsets():
    from scipy.ndimage import gaussian_filter

    rng = np.random.default_rng(3)
    v = np.zeros((48, 48))
    structure = gaussian_filter(rng.normal(0, 1, (48, 48)), 3.0)
    v[10:] = 0.3 + 0.1 * structure[10:] / structure.std()  # smooth structure everywhere below the top band
    v += rng.normal(0, 0.05, (48, 1)) + rng.normal(0, 0.003, (48, 48))
    box, info = find_reference_kernel(v)
    assert info["edge"] == "top" and box[0] == 0 and box[1] >= 6
    out, offsets = reference_kernel(v, box)
    assert np.all(offsets[box[1]:] == offsets[-1])  # the frame offset only, below the band


def test_a_band_along_the_bottom_removes_the_frame_offset_from_every_row():
    """The rows outside a band along the top or bottom edge keep their own line offsets, but
    lose the frame offset (the tip's contact potential) with the band's rows: before, they lost
    the band's median after its rows' offsets were gone - about 0 - and kept 0.3 V."""
    rng = np.random.default_rng(7)
    v = np.full((48, 48), 0.12)
    v[40:] = 0.0  # the grounded collector along the bottom
    lines = rng.normal(0, 0.005, (48, 1))
    recorded = v + 0.3 + lines + rng.normal(0, 0.002, (48, 48))
    out, offsets = reference_kernel(recorded, (40, 48, 0, 48))
    assert np.median(out[40:]) == pytest.approx(0.0, abs=1e-3)
    assert np.median(out[:40]) == pytest.approx(0.12, abs=0.004)  # was 0.42
    np.testing.assert_allclose(np.median(out[:40], axis=1) - 0.12, lines[:40, 0] - np.median(lines[40:]), atol=0.002)


def test_no_flat_band_asks_for_a_box():
    rng = np.random.default_rng(4)
    with pytest.raises(InputError, match="give the reference box"):
        find_reference_kernel(rng.normal(0, 1, (40, 40)), noise=0.01)


def test_noise_estimates_and_the_10_90_width():
    rng = np.random.default_rng(5)
    flat = rng.normal(0, 0.01, (64, 32)) + rng.normal(0, 0.1, (64, 1)) + np.linspace(0, 0.02, 32)
    assert flat_noise_kernel(flat, (0, 64, 0, 32)) == pytest.approx(0.01, rel=0.05)
    assert highpass_noise_kernel(flat) == pytest.approx(0.01, rel=0.1)
    fwd = rng.normal(0, 0.01, (64, 64)) + rng.normal(0, 0.1, (64, 1))
    bwd = rng.normal(0, 0.01, (64, 64)) + rng.normal(0, 0.1, (64, 1))
    assert trace_noise_kernel(fwd, bwd) == pytest.approx(0.01, rel=0.1)
    x = np.arange(200.0)
    erf_step = ndtr((x - 100) / 4.0)
    assert step_width_kernel(x, erf_step)["width"] == pytest.approx(2 * 1.2816 * 4.0, rel=0.01)
    assert step_width_kernel(x, -erf_step)["width"] == pytest.approx(2 * 1.2816 * 4.0, rel=0.01)
    assert np.isnan(step_width_kernel(x, np.zeros_like(x))["width"])


# --------------------------------------------------------------------------- registration


def test_shift_frame_follows_the_register_convention_and_leaves_uncovered_pixels_nan():
    yy, xx = np.mgrid[:64, :64]
    blob = lambda cy, cx: np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / 40.0)  # noqa: E731
    out = shift_frame_kernel(blob(30, 30), (2.5, -1.5))
    np.testing.assert_allclose(out[10:-10, 10:-10], blob(32.5, 28.5)[10:-10, 10:-10], atol=2e-3)
    assert np.isnan(out[:2]).all() and np.isnan(out[:, -1]).all() and np.isfinite(out[3:, :-2]).all()
    assert covered_kernel((64, 64), (2.5, -1.5)).sum() == np.isfinite(out).sum()
    assert shift_frame_kernel(blob(30, 30).astype(np.float32), (0.3, 0.2)).dtype == np.float32


def test_registration_is_sub_pixel_at_10_mV_noise_and_beats_skimage_on_the_same_input():
    from skimage.registration import phase_cross_correlation

    frames, truth = make_frames(4, seed=7, noise_V=0.01)
    z = np.stack([level_topography_kernel(f["Z_forward"].values) for f in frames])
    raw0 = frames[0]["Potential_forward"].values.astype(float)
    box, _ = find_reference_kernel(raw0)
    pot = np.stack([reference_kernel(f["Potential_forward"].values.astype(float), box)[0] for f in frames])
    ours, match = frame_shifts_kernel(z)
    err = np.abs(ours[1:] - truth.shifts_px[1:])
    sk = np.array([phase_cross_correlation(z[0], z[k], upsample_factor=100)[0] for k in range(1, 4)])
    sk_err = np.abs(sk - truth.shifts_px[1:])
    assert err.max() <= 0.1
    assert np.sqrt(np.mean(err**2)) <= np.sqrt(np.mean(sk_err**2))
    assert np.all(match[1:] > 0.8)
    # the potential alone (content changing between frames): sub-pixel too, where the phase
    # correlation of the potential fails
    ours_p, _ = frame_shifts_kernel(pot)
    sk_p = np.array([phase_cross_correlation(pot[0], pot[k], upsample_factor=100)[0] for k in range(1, 4)])
    assert np.sqrt(np.mean((ours_p[1:] - truth.shifts_px[1:]) ** 2)) <= 0.15
    assert np.sqrt(np.mean((ours_p[1:] - truth.shifts_px[1:]) ** 2)) < np.sqrt(np.mean((sk_p - truth.shifts_px[1:]) ** 2))


# --------------------------------------------------------------------------- PSF and deconvolution


def test_the_otf_is_one_at_zero_and_the_edge_response_a_mixture_of_normal_cdfs():
    psf = PSF(1.5, 0.3, 12.0)
    h = otf_kernel(psf, (64, 64))
    assert h[0, 0] == pytest.approx(1.0) and h.shape == (64, 33) and np.all(h > 0)
    u = np.linspace(-60, 60, 1201)
    e = edge_response(u, 1.5, 0.3, 12.0)
    assert e[0] == pytest.approx(0.0, abs=1e-6) and e[-1] == pytest.approx(1.0, abs=1e-6)
    assert np.interp(0.0, u, e) == pytest.approx(0.5)
    with pytest.raises(ConfigError):
        PSF(1.0, 1.2, 3.0)


def test_the_psf_is_estimated_from_a_sharp_edge():
    image, _ = step_frame(psf=(1.5, 0.3, 10.0), noise_V=0.01, slope_V_per_nm=0.0, shape=(128, 200), step_px=100.0)
    prof = image.values.mean(axis=0)
    fit = fit_edge_kernel(np.arange(prof.size, dtype=float), prof)
    assert fit["tail"]
    assert fit["psf"].core_sigma_px == pytest.approx(1.5, rel=0.1)
    assert fit["psf"].tail_weight == pytest.approx(0.3, abs=0.03)
    assert fit["psf"].tail_sigma_px == pytest.approx(10.0, rel=0.15)
    # no tail: a single Gaussian
    image, _ = step_frame(psf=(2.0, 0.0, 0.0), noise_V=0.01, slope_V_per_nm=0.0, shape=(64, 120), step_px=60.0)
    fit = fit_edge_kernel(np.arange(120.0), image.values.mean(axis=0))
    assert not fit["tail"] and fit["psf"].core_sigma_px == pytest.approx(2.0, rel=0.1)


def test_wiener_deconvolution_keeps_volts_and_sharpens_a_step():
    """A 3 V step (skimage's wiener would clip it to 1 V without clip=False): the levels stay,
    the 10-90 % width shrinks, the error against the sharp truth falls."""
    psf = (1.5, 0.3, 10.0)
    image, truth = step_frame(psf=psf, noise_V=0.01, drop_V=3.0, slope_V_per_nm=0.0, shape=(96, 160))
    out = wiener_deconvolve_kernel(image.values, PSF(*psf), 0.01)
    assert out.max() > 2.9 and np.median(out[:, :40]) == pytest.approx(3.0, abs=0.02)
    assert np.median(out[:, -40:]) == pytest.approx(0.0, abs=0.02)
    assert out.mean() == pytest.approx(image.values.mean(), abs=1e-3)  # unit gain at zero frequency
    x = np.arange(160.0)
    before = step_width_kernel(x, image.values.mean(0))["width"]
    after = step_width_kernel(x, out.mean(0))["width"]
    assert after <= 0.6 * before
    err_before = np.sqrt(np.mean((image.values - truth["sharp"]) ** 2))
    err_after = np.sqrt(np.mean((out - truth["sharp"]) ** 2))
    assert err_after <= 0.7 * err_before


def test_the_signal_spectrum_follows_its_decay_where_the_filter_works_not_its_flat_start():
    """A scene whose spectrum is flat at the lowest frequencies (its largest structures) and falls
    as k^-3 above: the power law is fitted with equal weight per frequency bin, so it follows the
    k^-3 where the Wiener filter turns from restoring to smoothing (equal weight per decade gave
    ~k^-1.6 on the composite_cathode twin and over-sharpened)."""
    shape = (256, 256)
    k, _ = _radial_bins(shape)
    kk = np.maximum(k, 1 / 256)
    signal = 1e6 * np.minimum(1.0, (kk / 0.03) ** -3.0)  # flat below 0.03 cycles/px
    otf = np.ones_like(k)
    noise = 1.0
    s = signal_spectrum_kernel(signal + noise, otf, noise, shape)
    band = (k > 0.1) & (k < 0.3)
    slope = np.polyfit(np.log(k[band]), np.log(s[band]), 1)[0]
    assert slope == pytest.approx(-3.0, abs=0.4)


def test_deconvolution_does_not_sharpen_line_offset_stripes():
    rng = np.random.default_rng(8)
    stripes = rng.normal(0, 0.005, (128, 1)) * np.ones((1, 128))
    psf = PSF(1.5, 0.3, 10.0)
    plain = wiener_deconvolve_kernel(stripes + rng.normal(0, 0.01, (128, 128)), psf, 0.01)
    aware = wiener_deconvolve_kernel(stripes + rng.normal(0, 0.01, (128, 128)), psf, 0.01, row_noise_sd=0.005)
    assert np.std(aware.mean(1)) < np.std(plain.mean(1))


# --------------------------------------------------------------------------- particles


def test_segmentation_splits_touching_particles_and_drops_specks():
    yy, xx = np.mgrid[:80, :80]
    img = (((yy - 40) ** 2 + (xx - 28) ** 2 < 12**2) | ((yy - 40) ** 2 + (xx - 51) ** 2 < 12**2)).astype(float)
    img[5, 5] = 1.0  # a speck
    img[60:70, 5:15] = 1.0  # a particle at the excluded edge
    exclude = np.zeros_like(img, bool)
    exclude[:, :16] = True
    labels = segment_particles_kernel(img + 0.01 * np.random.default_rng(0).standard_normal(img.shape),
                                      exclude=exclude, min_area_px=9)
    assert labels.max() == 2
    assert not labels[:, :16].any()
    # 'both': particles above and below the matrix
    pot = 0.3 + 0.1 * ((yy - 20) ** 2 + (xx - 40) ** 2 < 64) - 0.1 * ((yy - 60) ** 2 + (xx - 40) ** 2 < 64)
    assert segment_particles_kernel(pot, polarity="both").max() == 2


def test_a_phase_of_intermediate_height_is_not_segmented_as_particles():
    """Pd strands half as high as the LiCoPO4 particles (the composite twin) cross Otsu's
    threshold in fragments; labels whose median lies below halfway from the threshold to the
    particles' level are dropped (the twin's 256 px field: 37 labels for 18 particles before)."""
    rng = np.random.default_rng(5)
    yy, xx = np.mgrid[:96, :96]
    z = np.zeros((96, 96))
    z[(np.abs(xx - 20) < 3)] = 1.5  # a strand of the conductor
    z[(np.abs(xx - 70) < 3)] = 1.5
    z[(yy - 30) ** 2 + (xx - 45) ** 2 < 12**2] = 3.0
    z[(yy - 70) ** 2 + (xx - 45) ** 2 < 10**2] = 3.0
    noisy = z + rng.normal(0, 0.25, z.shape)
    assert segment_particles_kernel(noisy, min_level=0.0).max() > 2  # strand fragments
    labels = segment_particles_kernel(noisy)
    assert labels.max() == 2 and not labels[:, 15:26].any()


def test_the_line_offsets_left_after_referencing_feed_the_wiener_noise_model():
    """A band along the left edge leaves only the error of each line's median; a band along the
    bottom leaves the whole offset of every line above it (the Wiener filter was told 0 there)."""
    from ionscope.kpfm.workflow import _line_offset_sd

    rng = np.random.default_rng(9)
    v = rng.normal(0, 0.01, (256, 256)) + rng.normal(0, 0.005, (256, 1))
    left = _line_offset_sd(v, (0, 256, 0, 24), 0.01)
    assert left == pytest.approx(0.01 * np.sqrt(np.pi / 2 / 24), rel=1e-9)
    bottom = _line_offset_sd(v, (232, 256, 0, 256), 0.01)
    assert bottom == pytest.approx(0.005 * np.sqrt(232 / 256), rel=0.35)


def test_particle_means_errors_and_active_particles():
    labels = np.zeros((40, 40), int)
    labels[5:15, 5:15] = 1
    labels[25:35, 25:35] = 2
    rng = np.random.default_rng(9)
    cell = np.array([0.0, 0.1, 0.2, 0.3])
    series = np.stack([0.5 * c * (labels == 1) + rng.normal(0, 0.01, (40, 40)) for c in cell])
    series -= series[0]
    mean, err, count = particle_series_kernel(series, labels, erode_px=1)
    assert count[0, 0] == 64 and mean[0, -1] == pytest.approx(0.15, abs=0.005)
    assert err[0, -1] == pytest.approx(np.sqrt(2) * 0.01 / 8, rel=0.3)
    active, r = active_particles_kernel(mean, 0.01, threshold=3, cell=cell)
    assert active.tolist() == [True, False] and r[0] > 0.99
    # opposite to the cell: not following it
    active, _ = active_particles_kernel(-mean, 0.01, threshold=3, cell=cell)
    assert not active.any()
    # without a cell voltage only the threshold
    assert active_particles_kernel(mean, 0.01)[0].tolist() == [True, False]


def test_active_pixels_leave_out_a_grain_that_does_not_follow_its_particle():
    """A particle segmented with a conductor grain attached (about half its height on the twin):
    the grain's potential does not change, so its pixels are not active."""
    labels = np.zeros((40, 40), np.int32)
    labels[10:30, 10:30] = 1
    labels[14:20, 30:36] = 1  # the attached grain
    labels[2:8, 2:8] = 2  # an isolated particle
    dv = np.zeros((3, 40, 40))
    dv[1, 10:30, 10:30] = 0.1
    dv[2, 10:30, 10:30] = 0.2
    mean, _, _ = particle_series_kernel(dv, labels, erode_px=0)
    out = active_pixels_kernel(dv, labels, mean, np.array([True, False]))
    assert out[10:30, 10:30].all() and not out[14:20, 30:36].any() and not out[2:8, 2:8].any()
    assert active_pixels_kernel(dv, labels, mean, np.array([True, False]), fraction=0.0)[14:20, 30:36].all()


def test_the_particle_edge_profile_runs_along_the_scan_lines_and_ignores_line_offsets():
    from scipy.ndimage import gaussian_filter

    yy, xx = np.mgrid[:96, :96]
    labels = ((yy - 48) ** 2 + (xx - 48) ** 2 < 20**2).astype(np.int32)
    sharp = np.where(labels > 0, 0.2, -0.05)
    blurred = gaussian_filter(sharp, 2.0, mode="nearest")
    rng = np.random.default_rng(11)
    striped = blurred + rng.normal(0, 0.05, (96, 1))
    widths = []
    for image in (sharp, blurred, striped):
        profile, used = edge_profile_kernel(image, labels, half_width_px=8)
        assert used > 40 and profile[0] > profile[-1]  # particle side first, above the matrix
        widths.append(step_width_kernel(np.arange(16.0), profile)["width"])
    assert widths[0] <= 1.0
    assert widths[1] == pytest.approx(2.563 * 2.0, rel=0.15)  # 10-90 % of a Gaussian edge: 2.563 sigma
    assert widths[2] == pytest.approx(widths[1], rel=1e-6)  # offsets of whole lines change nothing
    profile, used = edge_profile_kernel(sharp, labels, half_width_px=8, exclude=np.ones((96, 96), bool))
    assert used == 0 and np.isnan(profile).all()


def test_response_time_is_the_1_over_e_crossing_after_the_change():
    t = np.array([0.0, 100.0, 200.0, 300.0])
    dv = np.array([[0.0, 0.5, 0.9, 1.0]])
    # 63.2 % of 1.0 between 100 s (0.5) and 200 s (0.9)
    expected = 100 + (0.632 - 0.5) / 0.4 * 100 - 50
    assert response_time_kernel(t, dv, 50.0)[0] == pytest.approx(expected, abs=0.2)
    assert np.isnan(response_time_kernel(t, np.zeros((1, 4)), 0.0)[0])


# --------------------------------------------------------------------------- interface fit


def test_step_plus_linear_fit_recovers_drop_and_slope_with_honest_errors():
    rng = np.random.default_rng(10)
    s = np.arange(0, 400, 2.0)
    truth = step_linear_model(s, 0.2, -4e-4, 0.3, 210.0, 6.0)
    pulls = []
    for _ in range(30):
        y = truth + rng.normal(0, 0.005, s.size)
        fit = fit_step_linear_kernel(s, y, np.full(s.size, 0.005))
        v, e = fit["values"], fit["errors"]
        pulls.append([(v["drop"] - 0.3) / e["drop"], (v["slope"] + 4e-4) / e["slope"]])
    pulls = np.array(pulls)
    assert np.abs(pulls.mean(0)).max() < 0.6 and 0.6 < pulls.std(0).min() and pulls.std(0).max() < 1.5
    fit = fit_step_linear_kernel(s, truth + rng.normal(0, 0.005, s.size), width=6.0)
    assert fit["values"]["drop"] == pytest.approx(0.3, abs=0.01) and fit["errors"]["width"] == 0.0
    with pytest.raises(InputError):
        fit_step_linear_kernel(s[:5], truth[:5])


# --------------------------------------------------------------------------- cycler


def test_cycler_logs_from_a_dataset_a_mapping_and_a_csv(tmp_path):
    t = np.arange(0.0, 100.0, 10.0)
    v = 3.0 + 0.01 * t
    csv = tmp_path / "cycler.csv"
    csv.write_text("time_s,voltage_V,current_A,charge_C\n" + "".join(f"{a},{b},1e-6,{a * 1e-6}\n" for a, b in zip(t, v)))
    a = cycler_arrays(csv)
    b = cycler_arrays({"time": t, "Ewe/V": v, "I/mA": np.full(t.size, 1e-3)})
    ds = xr.Dataset({"cycler_voltage": ("record", v * 1e3, {"units": "mV"}),
                     "cycler_current": ("record", np.full(t.size, 1.0), {"units": "µA"})},
                    coords={"record": ("record", t, {"units": "s"})}, attrs={"start_time": "2024-01-01T00:00:00"})
    c = cycler_arrays(ds)
    for log in (a, b, c):
        np.testing.assert_allclose(log["voltage_V"], v)
        np.testing.assert_allclose(log["current_mA"], 1e-3)
        np.testing.assert_allclose(log["charge_mAh"], t * 1e-3 / 3600, atol=1e-12)  # integrated when missing
    assert c["start_time"] == "2024-01-01T00:00:00"
    out = interpolate_kernel(t, v, np.array([-1.0, 15.0, 95.0]))
    assert np.isnan(out[0]) and out[1] == pytest.approx(3.15) and np.isnan(out[2])
    with pytest.raises(InputError, match="no voltage"):
        cycler_arrays({"time": t, "current": t})


# --------------------------------------------------------------------------- the package


@pytest.mark.parametrize("module", ["ionscope.kpfm", "ionscope.kpfm.channels"])
def test_the_docstring_examples_run(module):
    import doctest
    import importlib

    result = doctest.testmod(importlib.import_module(module), optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0 and result.failed == 0


def test_kpfm_imports_no_private_names_of_other_packages():
    import ast
    from pathlib import Path

    import ionscope.kpfm

    bad = []
    for path in Path(ionscope.kpfm.__file__).parent.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("ionscope") \
                    and not node.module.startswith("ionscope.kpfm"):
                bad += [f"{path.name}: {node.module}.{a.name}" for a in node.names if a.name.startswith("_")]
    assert bad == []
