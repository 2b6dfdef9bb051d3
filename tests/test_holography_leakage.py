"""ionscope.holography.leakage: vacuum flatness and the harmonic stray-field model."""

from __future__ import annotations

import json

import numpy as np
import pytest
from scipy.ndimage import binary_erosion, gaussian_filter

from ionscope.data import provenance, signal
from ionscope.errors import ConfigError, DimensionError, InputError
from ionscope.holography.leakage import detect_vacuum, fit_stray_field, pixel_grid, vacuum_flatness

N = 192  # px at 1 nm
YY, XX = pixel_grid((N, N))
EDGE = 100 + 5 * np.sin(XX[0] / 30.0)
SPECIMEN = YY > EDGE[None, :]
VACUUM = ~SPECIMEN


def _phase(values):
    return signal(values, ("y", "x"), name="phase", units="rad", coords={"y": 1.0, "x": 1.0})


def _projected_charges(charges, z_extent=3000.0):
    """Phase (arbitrary scale) of point charges (y, x, z, q) integrated along z over +-z_extent:
    q (asinh((Z - z)/rho) + asinh((Z + z)/rho)) - a 3-D Laplace solution projected, not built
    from the model's basis."""
    out = np.zeros((N, N))
    for qy, qx, qz, q in charges:
        rho = np.maximum(np.hypot(YY - qy, XX - qx), 0.5)
        out += q * (np.arcsinh((z_extent - qz) / rho) + np.arcsinh((z_extent + qz) / rho))
    return out


def _noise(seed, sigma, corr=1.5):
    n = gaussian_filter(np.random.default_rng(seed).normal(size=(N, N)), corr)
    return sigma * n / n.std()


def test_flatness_of_planes_and_quadratics():
    plane = 0.3 + 0.01 * YY - 0.02 * XX
    res = vacuum_flatness(_phase(plane), VACUUM, border_px=0)
    assert res["slope_y_rad_per_nm"] == pytest.approx(0.01, rel=1e-9)
    assert res["slope_x_rad_per_nm"] == pytest.approx(-0.02, rel=1e-9)
    assert res["slope_rad_per_nm"] == pytest.approx(np.hypot(0.01, 0.02), rel=1e-9)
    assert res["rms_about_plane_rad"] < 1e-12
    # harmonic saddle: curvature +-2q, zero Laplacian; a bowl: Laplacian 4q
    q = 1e-4
    saddle = vacuum_flatness(_phase(q * ((XX - 90) ** 2 - (YY - 50) ** 2)), VACUUM, border_px=0)
    assert saddle["curvature_max_rad_per_nm2"] == pytest.approx(2 * q, rel=1e-8)
    assert saddle["curvature_min_rad_per_nm2"] == pytest.approx(-2 * q, rel=1e-8)
    assert abs(saddle["laplacian_rad_per_nm2"]) < 1e-12
    bowl = vacuum_flatness(_phase(q * ((XX - 90) ** 2 + (YY - 50) ** 2)), VACUUM, border_px=0)
    assert bowl["laplacian_rad_per_nm2"] == pytest.approx(4 * q, rel=1e-8)


@pytest.mark.parametrize("charges", [
    [(400, -350, 0, 1.0), (400, 550, 0, -1.0)],  # biasing electrodes beyond the map
    [(260, -60, 10, 1.0), (260, 250, -10, -1.0)],  # closer, below the specimen's end
])
def test_stray_field_of_outside_charges_is_removed_without_touching_the_specimen(charges):
    stray = _projected_charges(charges)
    stray *= 3.0 / np.ptp(stray[VACUUM])  # 3 rad across the vacuum
    own = gaussian_filter(np.where(SPECIMEN, 2.0 + 0.8 * (XX > 96), 0.0), 2)  # MIP + a step
    sigma = 0.05
    phase = own + stray + _noise(1, sigma) + 1.7
    res = fit_stray_field(_phase(phase), VACUUM, erode_px=6)
    fit = res["vacuum"].values
    model = res["stray_phase"].values
    err = model - stray
    err -= err[fit].mean()
    truth = stray[fit] - stray[fit].mean()
    assert 1 - np.std(err[fit]) / np.std(truth) >= 0.99  # >= 99 % of the stray phase removed
    assert np.sqrt(np.mean(err[SPECIMEN] ** 2)) < sigma  # the specimen is changed by less than the noise
    near = SPECIMEN & (YY < EDGE[None, :] + 30)
    assert np.max(np.abs(err[near])) < 2 * sigma
    corrected = res["phase_corrected"].values
    step = np.median(corrected[SPECIMEN & (XX > 110) & (YY > 130)]) - np.median(corrected[SPECIMEN & (XX < 82) & (YY > 130)])
    assert step == pytest.approx(0.8, abs=0.05)  # the specimen's own step survives
    assert res.attrs["removed_fraction"] > 0.9 and res.attrs["degree"] >= 2  # of stray + noise
    assert provenance(res)[-1]["step"] == "ionscope.holography.fit_stray_field"
    assert res.attrs["flatness_after"]["slope_rad_per_nm"] < 0.1 * res.attrs["flatness_before"]["slope_rad_per_nm"]


def test_known_source_position_models_a_near_tip_exactly():
    tip = [(-60, 90, 0, 1.0)]  # a biasing tip 60 nm above the map
    stray = _projected_charges(tip)
    phase = stray + _noise(2, 0.02)
    plain = fit_stray_field(_phase(phase), VACUUM, degree=2)
    with_tip = fit_stray_field(_phase(phase), VACUUM, degree=1, sources=[(-60.0, 90.0)])
    errs = []
    for res in (plain, with_tip):
        e = res["stray_phase"].values - stray
        errs.append(np.std(e[SPECIMEN] - e[res["vacuum"].values].mean()))
    assert errs[1] < 0.02 < errs[0]


def test_multipole_series_option_adds_exterior_terms():
    stray = _projected_charges([(150, 60, 0, 1.0), (150, 130, 0, -1.0)])  # dipole in the specimen
    res = fit_stray_field(_phase(stray), VACUUM, degree=2, multipole_order=2)
    assert "ln|z - m|" in res.attrs["terms"] and len(res.attrs["terms"]) == 5 + 5
    plain = fit_stray_field(_phase(stray), VACUUM, degree=2)
    assert res.attrs["residual_rms_rad"] < 0.5 * plain.attrs["residual_rms_rad"]


def _offaxis_leakage(seed=0, fringes=True, reference_frames=1, **twin):
    """Leakage scores on the biased ``holography`` twin (4 V): the reconstruction and, isolating
    the model, the twin's true phase plus the reconstruction's shot noise (noisy minus
    noise-free reconstruction); vacuum eroded by the resolution (the inverse aperture radius).
    The seed-averaged numbers: ``benchmarks/holography_leakage.py``."""
    from ionscope.holography import reconstruct_offaxis
    from ionscope.holography.leakage import twin_leakage_scores
    from ionscope.simulate import simulate

    twin = {"bias_V": 4.0, "reference_frames": reference_frames, **twin,
            **({} if fringes else {"biprism_fringe_amplitude": 0.0})}
    ref = "reference_stack" if reference_frames > 1 else "reference"
    ds = simulate("holography", seed=seed, **twin)
    clean = simulate("holography", seed=seed, **{**twin, "noise": False})
    rec = reconstruct_offaxis(ds["hologram"], ds[ref])
    rec_clean = reconstruct_offaxis(clean["hologram"], clean[ref])
    noise = rec["phase"].values.astype(float) - rec_clean["phase"].values
    erode = int(round(1.0 / (rec.attrs["aperture_per_nm"] * float(ds.attrs["pixel_size_nm"]))))
    return {"erosion_px": erode,
            "model": twin_leakage_scores(ds["phase_true"].values + noise, ds, erode_px=erode, noise=noise)[0],
            "reconstruction": twin_leakage_scores(rec["phase"], ds, erode_px=erode, noise=noise)[0]}


@pytest.mark.slow
def test_leakage_target_on_the_phase_shifting_chain():
    """Issue 5 target through the seed work's method: a biased (4 V) phase-shifting stack of 16
    frames at the realistic 2000 e/px per frame (drift, uneven steps, biprism Fresnel fringes),
    reconstructed with its drifting reference matched; >= 99 % of the stray phase removed in
    vacuum, the specimen changed by less than the noise near the edge. Seeds 0-7
    (benchmarks/holography_leakage.py): 0.9978-0.9984, change 0.15-0.26x the noise within 15 nm;
    at equal total dose (16 x 125 e/px) 0.9906-0.9945."""
    from ionscope.holography import reconstruct_phase_shifting
    from ionscope.holography.leakage import twin_leakage_scores
    from ionscope.simulate import simulate

    twin = {"bias_V": 4.0, "dose": 2000.0, "frames": 16}
    ds = simulate("holography_ps", seed=0, **twin)
    clean = simulate("holography_ps", seed=0, noise=False, **twin)
    rec, rec_clean = (reconstruct_phase_shifting(d["stack"], d["reference_stack"], vacuum=d.attrs["vacuum_box"])
                      for d in (ds, clean))
    noise = rec["phase"].values.astype(float) - rec_clean["phase"].values
    s, fit = twin_leakage_scores(rec["phase"], ds, erode_px=4, noise=noise)
    assert s["stray_rms_fit_rad"] == pytest.approx(0.95, abs=0.05)  # 3.8 rad peak to valley
    assert s["removed_fraction_fit"] >= 0.99  # measured 0.9980
    assert s["removed_fraction_vacuum"] >= 0.99  # measured 0.9962
    assert s["change_over_noise"]["edge_15nm"] < 1.0  # measured 0.18
    assert s["change_over_noise"]["band_15_30nm"] < 1.0  # measured 0.53
    assert fit.attrs["degree"] == s["degree"] >= 3
    assert provenance(fit)[-1]["step"] == "ionscope.holography.fit_stray_field"
    # the model's standard error (block jackknife + the next degree's change) predicts the change
    # of the specimen phase within a factor 3 at each depth (measured 0.9, 1.4x)
    for region in ("edge_15nm", "band_15_30nm"):
        ratio = s["specimen_change_rms_rad"][region] / s["predicted_change_rms_rad"][region]
        assert 1 / 3 < ratio < 3
    assert s["predicted_change_rms_rad"]["band_15_30nm"] > s["predicted_change_rms_rad"]["edge_15nm"]


def test_leakage_on_the_offaxis_twin():
    """The off-axis chain (256 x 256 px, 4 V, seed 0). The model alone (true phase plus the
    shot noise) meets the target from the realistic 2000 e/px; the reconstruction of one
    single-biprism hologram stops at ~98 %: the centre band's Fresnel streak (next test).
    Seeds 0-7 at 2000 e/px: model 0.9930-0.9951, reconstruction 0.9799-0.9840; at the twin's
    default 1000 e/px the model gives 0.9899-0.9932."""
    out = _offaxis_leakage(seed=0, dose=2000.0)
    s, s2 = out["model"], out["reconstruction"]
    assert out["erosion_px"] == 12
    assert s["removed_fraction_fit"] >= 0.99  # measured 0.9942
    assert s["model_error_rms_fit_rad"] < 0.2 * s["phase_noise_rad"]["fit"]  # 0.005 vs 0.03 rad
    assert s["change_over_noise"]["edge_15nm"] < 0.8  # measured 0.52
    # the continuation from the 20 nm vacuum band amplifies the fit's error with depth
    assert s["specimen_change_rms_rad"]["specimen"] > s["specimen_change_rms_rad"]["band_15_30nm"]
    assert 0.975 <= s2["removed_fraction_fit"] < 0.99  # measured 0.9840


def test_leakage_target_on_the_offaxis_chain_with_a_reference_stack():
    """One single-biprism hologram at the realistic 2000 e/px with 8 vacuum references at
    shifted fringes (the centre band's Fresnel fringes removed, reference_stack_terms; the
    stack also averages the reference's noise): the reconstruction comes to the target.
    Seeds 0-3: 0.9882-0.9919 removed, change 1.4-1.8x the noise within 15 nm of the edge. (With
    the twin's carrier pointing into the specimen - before the phase followed holospy's sign
    convention, which puts the carrier towards the vacuum - seeds 0-7 gave 0.9911-0.9942 and
    <= 0.98x: the specimen's phase ramp at the lamella edge now moves its part of the sideband
    towards the centre band and the detector MTF lifts it, which biases the vacuum next to the
    edge that the fit relies on.)"""
    out = _offaxis_leakage(seed=0, dose=2000.0, reference_frames=8)
    s = out["reconstruction"]
    assert s["removed_fraction_fit"] >= 0.985  # measured 0.9882
    assert s["change_over_noise"]["edge_15nm"] < 2.0  # measured 1.81


def test_offaxis_leakage_floor_is_the_centre_band_fresnel_streak():
    """The smooth part (degree-3 harmonic projection over the eroded vacuum) of a noise-free
    off-axis reconstruction's vacuum error: 0.018 rad with the 4 V leakage field, 0.0065 rad
    without the field or without the biprism's Fresnel fringes (0.015 and 0.004 rad with the
    twin's carrier pointing into the specimen, before the holospy sign convention). The fringes
    of the centre band (|F1|^2, |F2|^2) streak along the carrier through the sideband; the part
    inside the aperture is not multiplied by the object wave, so the reference division cancels
    it only where the object phase is zero - the error Im[c (exp(-i phi) - 1)] grows with the
    leakage phase phi. (Removing the centre-band fringes from the twin's holograms alone brings
    it to the floor; removing those of the sideband factor F1 conj(F2) alone changes nothing.)"""
    from ionscope.holography import reconstruct_offaxis
    from ionscope.holography.leakage import border_mask, fit_harmonic_kernel
    from ionscope.simulate import simulate

    smooth = {}
    for label, kw in (("leakage", {}), ("no_leakage", {"stray_rad_per_V": 0.0}),
                      ("no_fringes", {"biprism_fringe_amplitude": 0.0})):
        ds = simulate("holography", seed=0, bias_V=4.0, noise=False, **kw)
        rec = reconstruct_offaxis(ds["hologram"], ds["reference"])
        err = (rec["phase"].values - ds["phase_true"].values).astype(float)
        mask = binary_erosion(ds["region"].values == 0, iterations=12) & border_mask(err.shape)
        yy, xx = pixel_grid(err.shape, (0.5, 0.5))
        proj = fit_harmonic_kernel(err, mask, yy, xx, degree=3)["model"][mask]
        smooth[label] = float(np.std(proj))
    # measured 0.0183 / 0.0065 / 0.0063 rad: a characterisation of today's floor, bounded only
    # against growing (a reconstruction that removes the streak must not fail here)
    assert smooth["leakage"] < 0.022
    assert smooth["no_leakage"] < 0.008
    assert smooth["no_fringes"] < 0.008


def test_degree_selection_resists_strong_white_noise():
    """The one-standard-error rule on paired fold differences: under white noise of 0.3 rad per
    pixel (a phase-shifting map at low dose) a mostly linear field with weak degree-2 and -3
    parts (4 % of its rms left by a plane) is still fitted to degree 3-4, removing 99 % of it;
    a rule relative to the total cross-validation error (within 2 % of the best, the previous
    default) took the plane and removed 96 %. Pure noise gives a plane."""
    zeta = ((XX - 96) + 1j * (YY - 50)) / 100.0
    field = (1.5 * zeta + 0.1 * zeta**2 + 0.1 * zeta**3).real
    for seed in range(3):
        noise = np.random.default_rng(seed).normal(0.0, 0.3, (N, N))
        res = fit_stray_field(_phase(field + noise), VACUUM, erode_px=0, border_px=0)
        assert res.attrs["degree"] in (3, 4)
        err = res["stray_phase"].values - field
        fit = res["vacuum"].values
        assert 1 - np.std(err[fit]) / np.std(field[fit]) > 0.99  # measured 0.993-0.995
        assert fit_stray_field(_phase(noise), VACUUM, erode_px=0, border_px=0).attrs["degree"] == 1


def test_stray_removal_scores():
    from ionscope.holography.leakage import stray_removal_scores

    truth = 0.05 * XX + 0.02 * YY
    wrong = 1.1 * truth + 7.0  # a 10 % error of the field; the offset is not a field
    s = stray_removal_scores(wrong, truth, VACUUM & (YY < 60), VACUUM, regions={"specimen": SPECIMEN},
                             noise=_noise(3, 0.05))
    assert s["removed_fraction_fit"] == pytest.approx(0.9, abs=1e-9)
    assert s["removed_fraction_vacuum"] == pytest.approx(0.9, abs=1e-9)
    e = 0.1 * truth
    change = e - e[VACUUM & (YY < 60)].mean()
    assert s["specimen_change_rms_rad"]["specimen"] == pytest.approx(np.sqrt(np.mean(change[SPECIMEN] ** 2)))
    assert s["phase_noise_rad"]["specimen"] == pytest.approx(0.05, rel=0.1)
    assert s["change_over_noise"]["specimen"] == pytest.approx(
        s["specimen_change_rms_rad"]["specimen"] / s["phase_noise_rad"]["specimen"])
    perfect = stray_removal_scores(truth - 3.0, truth, VACUUM, VACUUM)
    assert perfect["removed_fraction_fit"] == pytest.approx(1.0) and perfect["specimen_change_rms_rad"] == {}
    with pytest.raises(DimensionError):
        stray_removal_scores(truth[:10], truth, VACUUM, VACUUM)
    with pytest.raises(InputError, match="pixels"):
        stray_removal_scores(truth, truth, np.zeros((N, N), bool), VACUUM)


def test_detect_vacuum_on_the_twin_amplitude():
    from ionscope.holography import reconstruct_offaxis
    from ionscope.simulate import simulate

    ds = simulate("holography", seed=3, ny=128, nx=128, vacuum_height_nm=24.0)
    rec = reconstruct_offaxis(ds["hologram"], ds["reference"])
    mask = detect_vacuum(rec["amplitude"], erode_px=6)
    vac = ds["region"].values == 0
    assert mask is not None
    # what is called vacuum is vacuum - or the lamella's 10 nm edge ramp, whose amplitude the
    # uncorrected detector MTF lifts by ~14 % (the twin's carrier points to the vacuum; measured
    # 94.9 % vacuum, 100 % with the ramp, which it enters by up to 7.5 nm)
    ramp = json.loads(ds.attrs["parameters"])["edge_ramp_nm"]
    thin_edge = (ds.y.values[:, None] < ds.attrs["vacuum_edge_nm"] + ramp) & np.ones_like(vac)
    assert np.mean((vac | thin_edge)[mask]) > 0.99
    assert np.mean(vac[mask]) > 0.93
    assert mask.sum() > 0.5 * vac.sum()
    assert detect_vacuum(np.random.default_rng(0).normal(1.0, 0.05, (64, 64))) is None


def test_fit_stray_field_errors():
    with pytest.raises(InputError, match="pixels"):
        fit_stray_field(_phase(np.zeros((N, N))), np.zeros((N, N), bool))
    with pytest.raises(InputError, match="rad"):
        fit_stray_field(signal(np.zeros((N, N)), ("y", "x"), name="p", units="V"), VACUUM)
    with pytest.raises(ConfigError, match="degree"):
        fit_stray_field(_phase(np.zeros((N, N))), VACUUM, degree=-1)
    with pytest.raises(ConfigError, match="multipole_order"):
        fit_stray_field(_phase(np.zeros((N, N))), VACUUM, multipole_order=-2)
    with pytest.raises(ConfigError, match="cv"):
        fit_stray_field(_phase(np.zeros((N, N))), VACUUM, cv="random")


def test_unwrapping_jumps_in_the_vacuum_are_left_out():
    """A patch of 2 pi unwrapping errors (1 % of the vacuum) pulls a plain least-squares fit by
    0.12 rad rms; the pixels beyond 5 robust standard deviations of a preliminary fit are left
    out and the field is recovered as without the patch (0.0025 vs 0.0023 rad)."""
    zeta = ((XX - 96) + 1j * (YY - 50)) / 100.0
    field = (1.5 * zeta + 0.2 * zeta**2).real
    noisy = field + _noise(7, 0.05)
    jumped = noisy.copy()
    patch = (np.abs(YY - 30) < 6) & (np.abs(XX - 150) < 8)
    jumped[patch] += 2 * np.pi
    errs = {}
    for label, phase, kw in (("clean", noisy, {}), ("robust", jumped, {}), ("plain", jumped, {"outlier_sigma": None})):
        res = fit_stray_field(_phase(phase), VACUUM, erode_px=0, degree=2, **kw)
        e = res["stray_phase"].values - field
        fit = res["vacuum"].values & ~patch
        errs[label] = float(np.std(e[fit]))
        if label == "robust":
            assert res.attrs["outlier_pixels"] >= patch.sum() * 0.9
    assert errs["robust"] < 1.2 * errs["clean"]
    assert errs["plain"] > 3 * errs["clean"]
    with pytest.raises(ConfigError, match="outlier_sigma"):
        fit_stray_field(_phase(noisy), VACUUM, outlier_sigma=-1)


def test_twin_leakage_scores_errors():
    from ionscope.holography.leakage import twin_leakage_scores
    from ionscope.simulate import simulate

    with pytest.raises(InputError, match="holography twin"):
        twin_leakage_scores(np.zeros((N, N)), {"region": None}, erode_px=2)
    ds = simulate("holography", seed=0, ny=64, nx=64, pixel_nm=1.0, fringe_spacing_nm=4.0,
                  vacuum_height_nm=16, interface_position_nm=30, noise=False, bias_V=2.0)
    with pytest.raises(DimensionError):
        twin_leakage_scores(np.zeros((32, 32)), ds, erode_px=2)
    s, fit = twin_leakage_scores(ds["phase_true"], ds, erode_px=2, degree=3)
    assert s["degree"] == 3 and s["removed_fraction_fit"] > 0.99  # the true phase: only the field
