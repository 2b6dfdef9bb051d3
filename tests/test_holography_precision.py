"""Issue 5 precision targets on the holography twins, at fixed seeds and fast settings.

(1) phase noise within 1.5x of the shot-noise limit sqrt(2 / (mu^2 N)); (2) the 1.3 V /
7.2 nm space-charge drop through the full chain (hologram -> phase -> potential -> band profile
-> erfc + step fit) - where it holds, and the systematic floor of the chain where it does not;
(2b) the same chain with the lattice-gas space-charge model (ionscope.spacecharge.fit_profiles,
known mean-inner-potential step) in place of erfc + step, which holds at the realistic dose;
(3) phase-shifting resolves a step the default Fourier aperture blurs. The seed-averaged
numbers are in ``benchmarks/holography_precision.py``.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from ionscope.holography import phase_to_potential, reconstruct_offaxis, reconstruct_phase_shifting
from ionscope.profiles import LowPass, band_profile, fit_step
from ionscope.simulate import simulate
from ionscope.spacecharge import fit_profiles

TRUTH_DROP, TRUTH_W90 = 1.3, 7.1827  # the twin's lattice-gas layer (attrs psi0_V, w90_nm)

# Requirements: issue 5's targets. A method must meet them; never loosen these.
REQUIRED_NOISE_OVER_SHOT_LIMIT = 1.5  # phase noise within 1.5x of sqrt(2 / (mu^2 N))
REQUIRED_DROP_REL = 0.05  # the 1.3 V drop within 5 %
REQUIRED_W90_NM = 1.0  # w90 within 1 nm
# Physics, not a target: a phase noise well below the shot-noise limit is not a better method but
# a wrong one (smoothing, or a noise estimate that misses part of the noise).
NOISE_OVER_SHOT_LIMIT_FLOOR = 0.85

# Characterisation: what today's methods measure at these fixed seeds and settings (one seed
# each; the seed-averaged numbers are in benchmarks/holography_precision.py). They are asserted
# only in the direction that catches a regression (error bounds with a margin), never as a
# shortfall that a better method would break.
MEASURED_OFFAXIS_AVERAGED_REF_NOISE = 0.96  # x the shot-noise limit, 100x-dose reference
MEASURED_PS_AVERAGED_REF_NOISE = 1.02  # phase-shifting, 50x-dose reference stack
MEASURED_PS_EQUAL_DOSE_NOISE = 1.45  # at the edge of the target: the equal-dose stack adds its noise
MEASURED_DEMO_BAND_DROP_2SIGMA_REL = 0.16  # 1000 e/px, 30 px band: the fit's 2 sigma, of the drop
MEASURED_DEMO_APERTURE_BIAS_REL = +0.058  # noise-free, demo aperture model (no amplitude contrast)
MEASURED_ERFC_FLOOR_REL = -0.039  # noise-free, ideal detector: the erfc + step model's own floor
MEASURED_PS_ERFC_DROP_REL = -0.064  # noise-free phase-shifting chain read by erfc + step
MEASURED_ERFC_AT_REALISTIC_DOSE_REL = (+0.042, +0.048, -0.060, -0.070)  # Fourier s0, s1; PS s0, s1


# --------------------------------------------------------------------------- the chain


def _vacuum_zero(phase, region):
    from scipy.ndimage import binary_erosion

    vac = binary_erosion(region == 0, iterations=8)
    vac[:8], vac[:, :8], vac[:, -8:] = False, False, False
    out = phase - float(np.median(phase.values[vac]))
    out.attrs = dict(phase.attrs)
    return out


def _band(ds, band):
    """Rows from 4 nm below the edge ramp, profile +-42 nm about the interface (the demo's)."""
    pixel = float(ds.attrs["pixel_size_nm"])
    ramp = float(json.loads(ds.attrs["parameters"])["edge_ramp_nm"])
    y0 = int(np.ceil((float(ds.attrs["vacuum_edge_nm"]) + ramp + 4.0) / pixel))
    x_if = float(ds.attrs["interface_position_nm"]) / pixel
    half = min(x_if - 12, ds.sizes["x"] - 12 - x_if, 112)
    row = y0 + 0.5 * (band - 1)
    return y0, (row, x_if - half), (row, x_if + half), x_if


def _fit(ds, rec, band, blur):
    """Potential (thickness map) -> band profile -> erfc + step fit; returns (drop, w90, fit)."""
    phase = _vacuum_zero(rec["phase"], ds["region"].values)
    pot = phase_to_potential(phase, float(ds.attrs["kV"]), ds["thickness_nm"].where(ds["thickness_nm"] > 0))
    y0, start, end, _ = _band(ds, band)
    fit = fit_step(band_profile(pot, start, end, width=band), "erfc", side="end", step=True, blur=blur)
    return float(fit["drop"]), float(fit["w90"]), fit


def _aperture(ds, rec, band, amplitude=True):
    """The reconstruction aperture as a wave low-pass: C_E t at the band, the amplitude ratio
    across the interface (reconstructed amplitude, 8-40 nm either side) and the twin's
    interface width."""
    y0, _, _, x_if = _band(ds, band)
    t = float(np.mean(ds["thickness_nm"].values[y0:y0 + band, int(round(x_if))]))
    cut = float(rec.attrs["aperture_per_nm"])
    edge = cut * float(rec.attrs["aperture_edge_px"]) / float(rec.attrs["aperture_px"])
    ratio = None
    if amplitude:
        a = rec["amplitude"].values[y0:y0 + band].astype(float)
        x = ds["x"].values - x_if * float(ds.attrs["pixel_size_nm"])
        ratio = float(np.median(a[:, (x > -40) & (x < -8)]) / np.median(a[:, (x > 8) & (x < 40)]))
    width = float(json.loads(ds.attrs["parameters"])["interface_width_nm"])
    return LowPass(cut, edge, float(ds.attrs["interaction_constant_rad_per_V_nm"]) * t, ratio, width)


# --------------------------------------------------------------------------- (1) phase noise


def test_offaxis_phase_noise_is_within_1_5x_of_the_shot_noise_limit():
    """N = electrons per resolution element (dose / (pi rho^2)); with an averaged (100x)
    reference the object hologram's limit is met, with an equal-dose one the reference's own
    noise adds sqrt(2) - still within 1.5x."""
    ratios = {}
    for factor in (100.0, 1.0):
        ds = simulate("holography", seed=20, vacuum_height_nm=1e3, dose=1000.0, reference_dose=1000.0 * factor)
        rec = reconstruct_offaxis(ds["hologram"], ds["reference"])
        phase = rec["phase"].values[24:-24, 24:-24]
        rho = rec.attrs["aperture_px"] / ds.sizes["x"]
        limit = np.sqrt(2.0 / (ds.attrs["effective_contrast"] ** 2 * 1000.0 / (np.pi * rho**2)))
        ratios[factor] = phase.std() / limit
    assert NOISE_OVER_SHOT_LIMIT_FLOOR < ratios[100.0] < MEASURED_OFFAXIS_AVERAGED_REF_NOISE + 0.25
    assert NOISE_OVER_SHOT_LIMIT_FLOOR < ratios[1.0] < REQUIRED_NOISE_OVER_SHOT_LIMIT  # measured 1.35


@pytest.mark.slow
def test_phase_shifting_phase_noise_is_within_1_5x_of_the_shot_noise_limit():
    """Per pixel, N = dose x frames. An equal-dose reference stack adds its own noise
    (~sqrt(2) x the limit, at the edge of the target: the benchmark reports it)."""
    ratios = {}
    for factor in (50.0, 1.0):
        ds = simulate("holography_ps", seed=21, ny=128, nx=128, vacuum_height_nm=1e3, dose=100.0, frames=16,
                      reference_dose=100.0 * factor)
        rec = reconstruct_phase_shifting(ds["stack"], ds["reference_stack"], align=False)
        phase = rec["phase"].values[8:-8, 8:-8]
        limit = np.sqrt(2.0 / (ds.attrs["effective_contrast"] ** 2 * 100.0 * 16))
        ratios[factor] = (phase - phase.mean()).std() / limit
    assert NOISE_OVER_SHOT_LIMIT_FLOOR < ratios[50.0] < MEASURED_PS_AVERAGED_REF_NOISE + 0.25
    assert NOISE_OVER_SHOT_LIMIT_FLOOR < ratios[1.0] < MEASURED_PS_EQUAL_DOSE_NOISE + 0.2


# --------------------------------------------------------------------------- (2) the drop


@pytest.mark.parametrize("seed", [0, 1])
def test_fourier_chain_recovers_the_drop_at_high_dose_with_a_wide_band(seed):
    """8000 e/px (4x the realistic dose), a 120 px band and the aperture model with the
    amplitude contrast and the interface width: drop within 5 %, w90 within 1 nm."""
    ds = simulate("holography", seed=seed, dose=8000.0)
    rec = reconstruct_offaxis(ds["hologram"], ds["reference"])
    drop, w90, fit = _fit(ds, rec, 120, _aperture(ds, rec, 120))
    assert abs(drop / TRUTH_DROP - 1) < REQUIRED_DROP_REL
    assert abs(w90 - TRUTH_W90) < REQUIRED_W90_NM
    assert float(fit["jump"]) == pytest.approx(5.0, abs=0.15)  # the mean-inner-potential step


def test_at_the_default_dose_the_demo_band_fit_agrees_with_the_truth_within_its_error():
    """1000 e/px and the demo's 30 px band: the 5 % target is out of reach here (the fit's own
    2 sigma on the drop is ~16 %, MEASURED_DEMO_BAND_DROP_2SIGMA_REL); the drop agrees with the
    truth within its error, and the error does not grow."""
    ds = simulate("holography", seed=0)
    rec = reconstruct_offaxis(ds["hologram"], ds["reference"])
    drop, _, fit = _fit(ds, rec, 30, _aperture(ds, rec, 30, amplitude=False))
    assert 2 * float(fit["drop_error"]) < 1.25 * MEASURED_DEMO_BAND_DROP_2SIGMA_REL * TRUTH_DROP
    assert abs(drop - TRUTH_DROP) < 4 * float(fit["drop_error"])


def test_fourier_chain_bias_budget_without_noise():
    """Noise-free: the demo's aperture model (no amplitude contrast, 30 px band) reads the drop
    ~6 % high; modelling the amplitude brings it to ~+1 % - but only because the detector MTF
    (the sideband weighted by MTF(q_c + k) / MTF(q_c), not corrected) adds ~+5 % (measured
    +6.7 %) to the erfc model's ~-4 % floor (ideal detector). Each is bounded in the direction
    of a regression; none is required to stay as large as it is."""
    ds = simulate("holography", seed=0, noise=False)
    rec = reconstruct_offaxis(ds["hologram"], ds["reference"])
    demo, _, _ = _fit(ds, rec, 30, _aperture(ds, rec, 30, amplitude=False))
    full, w90, _ = _fit(ds, rec, 120, _aperture(ds, rec, 120))
    ideal = simulate("holography", seed=0, noise=False, mtf_cutoff=None)
    rec_i = reconstruct_offaxis(ideal["hologram"], ideal["reference"])
    floor, _, _ = _fit(ideal, rec_i, 120, _aperture(ideal, rec_i, 120))
    assert abs(demo / TRUTH_DROP - 1) < abs(MEASURED_DEMO_APERTURE_BIAS_REL) + 0.02
    assert abs(full / TRUTH_DROP - 1) < 0.03 and abs(w90 - TRUTH_W90) < REQUIRED_W90_NM
    assert abs(floor / TRUTH_DROP - 1) < abs(MEASURED_ERFC_FLOOR_REL) + 0.03


@pytest.mark.slow
def test_phase_shifting_chain_is_faithful_to_the_erfc_fit_of_the_true_potential():
    """Noise-free phase-shifting stack (pixel resolution, blur fitted): w90 within 1 nm, and the
    drop the same as fitting the twin's true potential map - the reconstruction adds nothing.
    Today that drop is ~6 % low (MEASURED_PS_ERFC_DROP_REL): the erfc + step model (not the
    reconstruction) cannot separate the layer's steep start from the 5 V step; a better model
    may close it, so only the size of the miss is bounded."""
    ds = simulate("holography_ps", seed=0, noise=False)
    rec = reconstruct_phase_shifting(ds["stack"], ds["reference_stack"], vacuum=ds.attrs["vacuum_box"])
    drop, w90, _ = _fit(ds, rec, 120, "fit")
    _, start, end, _ = _band(ds, 120)
    truth = fit_step(band_profile(ds["potential_true"], start, end, width=120), "erfc", side="end",
                     step=True, blur="fit")
    assert abs(w90 - TRUTH_W90) < REQUIRED_W90_NM
    assert abs(drop / TRUTH_DROP - 1) < abs(MEASURED_PS_ERFC_DROP_REL) + 0.025
    assert drop == pytest.approx(float(truth["drop"]), abs=0.02)


# --------------------------------------------------------------------------- (2b) lattice-gas


def _spacecharge_and_erfc(ds, rec, band, lowpass):
    """The band profile fitted by the lattice-gas model (electrolyte on the right; the mean
    inner potentials assumed known: step 19 - 14 = 5 V; eps_r 50 and c0 1e26 m^-3 at the twin's
    values; psi0, theta, x0, psf, offset free; the profile's correlated noise) and by erfc +
    step with the same resolution; returns (lattice-gas Dataset, erfc drop)."""
    phase = _vacuum_zero(rec["phase"], ds["region"].values)
    pot = phase_to_potential(phase, float(ds.attrs["kV"]), ds["thickness_nm"].where(ds["thickness_nm"] > 0))
    _, start, end, _ = _band(ds, band)
    prof = band_profile(pot, start, end, width=band)
    sc = fit_profiles(prof["profile"], potential_sigma=prof["profile_sigma"], lowpass=lowpass, side="right",
                      fixed={"step_V": 5.0, "eps_r": 50.0, "c0_m3": 1e26})
    erfc = fit_step(prof, "erfc", side="end", step=True, blur=lowpass if lowpass is not None else "fit")
    return sc, float(erfc["drop"])


@pytest.mark.slow
@pytest.mark.parametrize("seed", [0, 1])
def test_spacecharge_model_recovers_the_drop_at_the_realistic_dose(seed):
    """2000 e/px per hologram, 120 px band, theta free. Fourier (aperture low-pass with the
    amplitude ratio): psi0 1.333 / 1.325 V (seeds 0 / 1; +2.5 / +1.9 %), w90 6.71 / 6.77 nm
    (truth 7.18), theta 0.964 +- 0.062 / 0.971 +- 0.047 (theta and w90 are correlated; with
    the carrier pointing into the specimen, before the holospy sign convention, they read 0.994 /
    0.990 and 7.47 / 7.21 nm), where erfc + step on the same profile reads 1.355 / 1.362 V
    (+4.2 / +4.8 %). Phase-shifting (16 x 2000 e/px, fitted Gaussian PSF): psi0 1.301 / 1.303 V
    (+0.06 / +0.2 %), w90 7.20 / 7.33 nm, theta 0.990 / 0.992, where erfc + step reads 1.221 /
    1.209 V (-6 / -7 %: its model floor)."""
    ds = simulate("holography", seed=seed, dose=2000.0)
    rec = reconstruct_offaxis(ds["hologram"], ds["reference"])
    sc, erfc = _spacecharge_and_erfc(ds, rec, 120, _aperture(ds, rec, 120))
    assert "theta" in json.loads(sc.attrs["fit"])["free"]
    assert abs(float(sc["psi0_V"]) / TRUTH_DROP - 1) < 0.03
    assert abs(float(sc["w90_nm"]) - TRUTH_W90) < 1.0
    assert abs(float(sc["theta"]) - 0.99) < min(0.035, float(sc["theta_stderr"]))
    # erfc + step on the same profile misses 5 % today (MEASURED_ERFC_AT_REALISTIC_DOSE_REL)
    assert abs(erfc / TRUTH_DROP - 1) < max(map(abs, MEASURED_ERFC_AT_REALISTIC_DOSE_REL)) + 0.035
    ps = simulate("holography_ps", seed=seed, dose=2000.0)
    rec = reconstruct_phase_shifting(ps["stack"], ps["reference_stack"], vacuum=ps.attrs["vacuum_box"])
    sc, erfc = _spacecharge_and_erfc(ps, rec, 120, None)
    assert "theta" in json.loads(sc.attrs["fit"])["free"]
    assert abs(float(sc["psi0_V"]) / TRUTH_DROP - 1) < 0.02
    assert abs(float(sc["w90_nm"]) - TRUTH_W90) < 0.5
    assert abs(float(sc["theta"]) - 0.99) < 0.006
    assert abs(float(sc["psi0_V"]) - TRUTH_DROP) < 3 * float(sc["psi0_V_stderr"])
    assert abs(erfc / TRUTH_DROP - 1) < max(map(abs, MEASURED_ERFC_AT_REALISTIC_DOSE_REL)) + 0.035


# --------------------------------------------------------------------------- (3) resolution


def _step_width(phase, x, xi, rows):
    """10-90 % width (nm) of the falling step at xi, crossings interpolated."""
    prof = np.asarray(phase[rows], dtype=float).mean(axis=0)
    f = (prof - prof[(x > xi + 10) & (x < xi + 16)].mean())
    f /= prof[(x > xi - 16) & (x < xi - 10)].mean() - prof[(x > xi + 10) & (x < xi + 16)].mean()
    start = np.flatnonzero((x < xi) & (f > 0.95)).max()
    stop = np.flatnonzero((x > xi) & (f < 0.05)).min()
    seg_f, seg_x = f[start:stop + 1][::-1], x[start:stop + 1][::-1]
    order = np.argsort(seg_f, kind="stable")
    return np.interp(0.1, seg_f[order], seg_x[order]) - np.interp(0.9, seg_f[order], seg_x[order])


def test_phase_shifting_resolves_a_step_the_fourier_aperture_blurs():
    """A ~1 rad mean-inner-potential step at the realistic 2000 e/px per hologram: 16 frames
    give the true width within a pixel (0.5 nm), one hologram through the default aperture more
    than twice it."""
    small = dict(ny=128, nx=128, vacuum_height_nm=16.0, interface_position_nm=32.0, edge_ramp_nm=6.0,
                 psi0_V=0.0, mip_electrolyte_V=17.0, dose=2000.0)
    ps_ds = simulate("holography_ps", seed=3, frames=16, **small)
    oa_ds = simulate("holography", seed=3, **small)
    ps = reconstruct_phase_shifting(ps_ds["stack"], ps_ds["reference_stack"], vacuum=ps_ds.attrs["vacuum_box"])
    oa = reconstruct_offaxis(oa_ds["hologram"], oa_ds["reference"])
    x, xi, rows = ps_ds["x"].values, 32.0, slice(56, 116)
    truth = _step_width(ps_ds["phase_true"].values, x, xi, rows)
    w_ps = _step_width(ps["phase"].values, x, xi, rows)
    w_oa = _step_width(oa["phase"].values, x, xi, rows)
    assert truth < 1.0
    assert w_ps < truth + 0.5
    assert w_oa > 2.0 * w_ps and w_oa > 2.0
