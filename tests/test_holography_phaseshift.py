"""Phase-shifting reconstruction against the holography_ps twin: measured steps, drift, gains,
the per-pixel least squares, shot-noise precision and resolution beyond the Fourier aperture."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

from ionscope.data import provenance
from ionscope.errors import ConfigError, DimensionError, InputError
from ionscope.holography import reconstruct_offaxis, reconstruct_phase_shifting
from ionscope.holography.phaseshift import (
    algebraic_steps,
    design_matrix,
    drift_matched_reference,
    pixel_weights,
    refine_steps,
    solve_pixels,
)
from ionscope.holography.unwrap import wrap
from ionscope.simulate import simulate

SMALL = dict(ny=128, nx=128, vacuum_height_nm=16.0, interface_position_nm=24.0,
             edge_ramp_nm=6.0, frames=12)


@pytest.fixture(scope="module")
def clean():
    return simulate("holography_ps", seed=3, noise=False, **SMALL)


@pytest.fixture(scope="module")
def clean_rec(clean):
    return reconstruct_phase_shifting(clean["stack"], clean["reference_stack"],
                                      vacuum=clean.attrs["vacuum_box"])


def _carrier(ds):
    ky, kx = ds.attrs["sideband_true_px"]
    ny, nx = ds.sizes["y"], ds.sizes["x"]
    return (ky if ky < ny / 2 else ky - ny) / ny, (kx if kx < nx / 2 else kx - nx) / nx


def test_solve_pixels_equals_per_pixel_least_squares():
    rng = np.random.default_rng(0)
    steps = np.sort(rng.uniform(0, 2 * np.pi, 7))
    gains = rng.uniform(0.9, 1.1, 7)
    frames = rng.uniform(50, 150, (7, 5, 6)).astype(np.float32)
    a0, a1, r2 = solve_pixels(frames, steps, gains=gains)
    G = design_matrix(steps)
    for iy in range(5):
        for ix in range(6):
            y = frames[:, iy, ix] / gains
            coef, *_ = np.linalg.lstsq(G, y, rcond=None)
            assert a0[iy, ix] == pytest.approx(coef[0], rel=1e-4)
            assert a1[iy, ix] == pytest.approx(0.5 * (coef[1] - 1j * coef[2]), rel=1e-3, abs=1e-3)
            res = y - G @ coef
            assert r2[iy, ix] == pytest.approx(1 - res @ res / ((y - y.mean()) @ (y - y.mean())),
                                               abs=1e-4)


def test_refine_steps_recovers_uneven_steps():
    rng = np.random.default_rng(1)
    true = np.mod(np.array([0.0, 0.7, 1.1, 2.9, 3.3, 4.8, 5.5]), 2 * np.pi)
    gains = np.array([1.0, 1.03, 0.97, 1.01, 0.99, 1.02, 0.98])
    a0 = rng.uniform(80, 120, 400)
    a1 = rng.uniform(5, 20, 400) * np.exp(1j * rng.uniform(0, 2 * np.pi, 400))
    frames = gains[:, None] * (a0 + 2 * (a1[None, :] * np.exp(1j * true)[:, None]).real)
    start = np.mod(true + rng.normal(0, 0.3, true.size), 2 * np.pi)
    closed = algebraic_steps(frames, gains)
    assert np.abs(wrap(closed - true)).max() < 1e-6 or np.abs(wrap(-closed - true)).max() < 1e-6
    noisy = frames + rng.normal(0, 0.5, frames.shape)
    steps = refine_steps(noisy, np.mod(-closed, 2 * np.pi) if np.abs(wrap(-closed - true)).max()
                         < 1e-6 else closed, gains)
    assert np.abs(wrap(steps - true)).max() < 0.01
    assert np.abs(wrap(start - start[0] - true)).max() > 0.2
    assert algebraic_steps(frames[:5], gains[:5]) is None


def test_noiseless_stack_gives_the_true_phase(clean, clean_rec):
    valid = clean_rec["valid"].values
    rows = clean.y.values[:, None] > clean.attrs["vacuum_edge_nm"] + 8
    keep = valid & rows & np.ones_like(valid)
    diff = clean_rec["phase"].values - clean["phase_true"].values
    y0, y1, x0, x1 = clean.attrs["vacuum_box"]
    assert np.std(diff[y0:y1, x0:x1]) < 0.016  # measured 0.012 (0.025 before drift matching)
    diff = diff[keep] - np.median(diff[keep])
    # pixel resolution: no aperture blur; what is left is the sub-pixel drift residual and,
    # in the specimen, the centre band's Fresnel fringes scaled by the specimen's amplitude
    assert np.sqrt(np.mean(diff**2)) < 0.03  # measured 0.025 (0.033 before drift matching)
    assert clean_rec["phase"].dims == ("y", "x")
    amp = clean_rec["amplitude"].values / clean["amplitude_true"].values
    assert np.median(np.abs(amp[keep] - 1)) < 0.013  # measured 1.0 % (1.5 % before)


def test_pixel_weights_are_the_least_squares_operator():
    steps = np.array([0.0, 0.9, 1.7, 2.2, 3.9, 5.1])
    k = pixel_weights(steps)
    assert abs(k.sum()) < 1e-12
    assert abs((k * np.exp(1j * steps)).sum() - 1) < 1e-12
    assert abs((k * np.exp(-1j * steps)).sum()) < 1e-12
    rng = np.random.default_rng(2)
    frames = rng.uniform(50, 150, (6, 4, 5))
    _, a1, _ = solve_pixels(frames, steps, r2=False)
    np.testing.assert_allclose(a1, np.tensordot(k, frames, axes=1), rtol=1e-4)


def test_drift_matched_reference():
    """Without drift the divisor is the reference's own fringe term and the centre band leaks
    nothing; with drift it is the reference shifted frame by frame - for a reference whose
    patterns are uniform, exactly the unshifted one (no pattern moves)."""
    rng = np.random.default_rng(4)
    steps = np.array([0.0, 1.1, 2.0, 3.3, 4.4, 5.2])
    a0 = rng.uniform(90, 110, (32, 40))
    a1 = rng.normal(size=(32, 40)) + 1j * rng.normal(size=(32, 40))
    g, c, m = drift_matched_reference(a0, a1, steps, np.zeros((6, 2)), (0.2, 0.1))
    np.testing.assert_allclose(g, a1, atol=1e-10)
    np.testing.assert_allclose(c, 0, atol=1e-9)
    np.testing.assert_allclose(m, a0, rtol=1e-12)
    yy, xx = np.mgrid[0:32, 0:40]
    carrier = (3 / 32, 5 / 40)  # on the FFT grid: shifts move it exactly
    plane = 7.0 * np.exp(2j * np.pi * (carrier[0] * yy + carrier[1] * xx))
    shifts = rng.normal(0, 1.5, (6, 2))
    shifts[0] = 0
    # the object's effective steps include the carrier's shift 2 pi q.d, d = -shifts
    effective = steps + 2 * np.pi * (-shifts @ np.array(carrier))
    g, c, m = drift_matched_reference(np.full((32, 40), 100.0), plane, effective, shifts, carrier)
    np.testing.assert_allclose(g, plane, atol=1e-9)
    np.testing.assert_allclose(c, 0, atol=1e-9)


@pytest.mark.slow
def test_drift_matching_removes_the_moving_detector_patterns():
    """A biased twin (256 x 256, 16 frames, noise-free) drifting 1.2-3.6 nm: the vacuum phase
    error of the reconstruction, whose alignment moves the camera distortion and the biprism
    fringes against the reference, is 0.022-0.024 rad rms (0.004-0.010 rad of it smooth)
    without drift matching and 0.005-0.007 rad (smooth < 0.0003 rad) with it."""
    from scipy.ndimage import binary_erosion

    from ionscope.holography.leakage import border_mask, fit_harmonic_kernel, pixel_grid

    for drift in ({}, {"drift_y_nm": -0.1, "drift_x_nm": 0.2}):
        ds = simulate("holography_ps", seed=0, noise=False, bias_V=4.0, **drift)
        rec = reconstruct_phase_shifting(ds["stack"], ds["reference_stack"], vacuum=ds.attrs["vacuum_box"])
        err = rec["phase"].values.astype(float) - ds["phase_true"].values
        mask = binary_erosion(ds["region"].values == 0, iterations=4) & border_mask(err.shape)
        yy, xx = pixel_grid(err.shape, (0.5, 0.5))
        assert np.std(err[mask]) < 0.009
        assert np.std(fit_harmonic_kernel(err, mask, yy, xx, degree=3)["model"][mask]) < 0.001
        assert rec.attrs["drift_matched_reference"] is True
    unaligned = reconstruct_phase_shifting(ds["stack"][:4], ds["reference_stack"][:4], align=False)
    assert unaligned.attrs["drift_matched_reference"] is False


def test_drift_is_measured(clean, clean_rec):
    for axis in ("y", "x"):
        err = clean_rec[f"drift_{axis}"].values - clean[f"drift_{axis}_true"].values
        assert np.abs(err).max() < 0.05  # nm = 0.1 px
    assert clean_rec["drift_y"].attrs["units"] == "nm"
    assert float(np.abs(clean["drift_y_true"]).max()) > 1.0  # the test is not trivial


def test_steps_are_measured_not_nominal(clean, clean_rec):
    """After alignment by s_n the fringe phase of frame n is delta_n - 2 pi q.s_n: the
    measured steps equal that to 0.01 rad, while the nominal steps are off by the jitter."""
    qy, qx = _carrier(clean)
    s_y = -clean_rec["drift_y"].values / 0.5
    s_x = -clean_rec["drift_x"].values / 0.5
    expected = clean["steps_true"].values - 2 * np.pi * (qy * s_y + qx * s_x)
    expected -= expected[0]
    err = wrap(clean_rec["steps"].values - expected)
    assert np.abs(err).max() < 0.02
    nominal = clean["shift"].values
    assert np.abs(wrap(nominal - expected)).max() > 0.2
    # solving with the nominal steps instead gives a visibly wrong phase
    frames = clean["reference_stack"].values
    _, a1_true, _ = solve_pixels(frames, clean["reference_steps_true"].values)
    _, a1_nom, _ = solve_pixels(frames, nominal)
    err_nominal = wrap(np.angle(a1_nom) - np.angle(a1_true))
    assert np.abs(err_nominal).max() > 0.1


def test_gains_are_measured():
    ds = simulate("holography_ps", seed=4, noise=False, intensity_jitter=0.05, **SMALL)
    rec = reconstruct_phase_shifting(ds["stack"], vacuum=ds.attrs["vacuum_box"])
    true = ds["gain_true"].values / ds["gain_true"].values.mean()
    # the biprism Fresnel fringes are fixed to the detector, so alignment moves them across
    # the vacuum region: 1 % (exact without them)
    np.testing.assert_allclose(rec["gain"].values, true, rtol=0.01)
    assert np.ptp(true) > 0.05


def test_r2_and_contrast_maps(clean, clean_rec):
    y0, y1, x0, x1 = clean.attrs["vacuum_box"]
    r2 = clean_rec["r2"].values[y0:y1, x0:x1]
    assert np.median(r2) > 0.99
    contrast = clean_rec["contrast"].values[y0:y1, x0:x1]
    assert np.median(contrast) == pytest.approx(clean.attrs["effective_contrast"], rel=0.02)


def test_phase_noise_is_at_the_shot_noise_limit():
    """Per pixel, at equal total dose: sigma = sqrt(2 / (mu^2 N_total))."""
    dose, frames = 50.0, 16
    ds = simulate("holography_ps", seed=5, ny=128, nx=128, vacuum_height_nm=1e3, dose=dose,
                  frames=frames, reference_dose=50 * dose)
    rec = reconstruct_phase_shifting(ds["stack"], ds["reference_stack"], align=False)
    phase = rec["phase"].values[8:-8, 8:-8]
    limit = np.sqrt(2.0 / (ds.attrs["effective_contrast"] ** 2 * dose * frames))
    ratio = (phase - phase.mean()).std() / limit
    assert 0.85 < ratio < 1.5


def test_resolves_a_step_the_fourier_aperture_blurs():
    ds = simulate("holography_ps", seed=6, noise=False, psi0_V=0.0, mip_electrolyte_V=17.0,
                  **SMALL)
    xi = ds.attrs["interface_position_nm"]
    ps = reconstruct_phase_shifting(ds["stack"], ds["reference_stack"],
                                    vacuum=ds.attrs["vacuum_box"])
    holo = ds["stack"].isel(shift=0).drop_vars("shift")
    ref = ds["reference_stack"].isel(shift=0).drop_vars("shift")
    oa = reconstruct_offaxis(holo, ref)

    def width(prof, x):
        """10-90 % width (nm), crossings interpolated on the falling edge at xi."""
        left = prof[(x > xi - 16) & (x < xi - 10)].mean()
        right = prof[(x > xi + 10) & (x < xi + 16)].mean()
        f = (prof - right) / (left - right)
        start = np.flatnonzero((x < xi) & (f > 0.95)).max()
        stop = np.flatnonzero((x > xi) & (f < 0.05)).min()
        seg_f, seg_x = f[start:stop + 1][::-1], x[start:stop + 1][::-1]  # increasing f
        return np.interp(0.1, seg_f, seg_x) - np.interp(0.9, seg_f, seg_x)

    rows = slice(60, 110)
    truth = width(ds["phase_true"].isel(y=rows).mean("y").values, ds.x.values)
    w_ps = width(ps["phase"].isel(y=rows).mean("y").values, ps.x.values)
    w_oa = width(oa["phase"].isel(y=rows).mean("y").values, oa.x.values)
    assert truth < 1.0  # the interface: erf of sigma 0.25 nm, sampled every 0.5 nm
    assert w_ps < truth + 0.25  # pixel resolution
    assert w_oa > 2.5 and w_oa > 2.5 * w_ps


def test_vacuum_mask_equals_box(clean, clean_rec):
    y0, y1, x0, x1 = clean.attrs["vacuum_box"]
    mask = xr.zeros_like(clean["phase_true"], dtype=bool)
    mask[y0:y1, x0:x1] = True
    rec = reconstruct_phase_shifting(clean["stack"], clean["reference_stack"], vacuum=mask)
    np.testing.assert_allclose(rec["steps"].values, clean_rec["steps"].values, atol=0.01)
    # the vacuum's mean phase is zero by construction
    assert abs(np.mean(rec["phase"].values[y0:y1, x0:x1])) < 1e-3


def test_without_reference_the_carrier_is_removed():
    ds = simulate("holography_ps", seed=7, noise=False, vacuum_height_nm=1e3, distortion_rad=0.0,
                  biprism_fringe_amplitude=0.0, ny=96, nx=96, frames=6)
    rec = reconstruct_phase_shifting(ds["stack"], align=False)
    phase = rec["phase"].values[4:-4, 4:-4]
    assert phase.std() < 0.02
    assert rec["amplitude"].attrs["units"] == "counts"


def test_outputs_and_provenance(clean, clean_rec):
    rec = clean_rec
    assert rec["steps"].dims == ("shift",) and rec.sizes["shift"] == SMALL["frames"]
    assert rec["reference_steps"].dims == ("reference_shift",)
    for key in ("sideband_position_px", "fringe_spacing_nm", "fringe_sampling_px",
                "fringe_contrast", "carrier_frequency_per_nm", "frames", "vacuum"):
        assert key in rec.attrs
    assert rec.attrs["fringe_spacing_subpixel_nm"] == pytest.approx(2.0, rel=2e-3)
    assert provenance(rec)[-1]["step"] == "ionscope.holography.reconstruct_phase_shifting"
    assert provenance(rec)[0]["step"] == "ionscope.simulate.holography_ps"


def test_bad_inputs(clean):
    stack = clean["stack"]
    with pytest.raises(DimensionError):
        reconstruct_phase_shifting(stack.isel(shift=0))
    with pytest.raises(DimensionError):
        reconstruct_phase_shifting(stack.isel(shift=slice(0, 2)))
    with pytest.raises(DimensionError):
        reconstruct_phase_shifting(stack, clean["reference_stack"].isel(x=slice(0, 100)))
    with pytest.raises(ConfigError):
        reconstruct_phase_shifting(stack, vacuum=(0, 500, 0, 10))
    with pytest.raises(ConfigError):
        reconstruct_phase_shifting(stack, vacuum="top")
    with pytest.raises(ConfigError):
        reconstruct_phase_shifting(stack, iterations=-1)
    with pytest.raises(InputError):
        reconstruct_phase_shifting({"stack": 1})
    same = np.repeat(stack.values[:1], 4, axis=0)
    with pytest.raises(InputError):
        solve_pixels(same, np.zeros(4))
