"""ionscope.holography.leakage: vacuum flatness and the harmonic stray-field model."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.ndimage import binary_erosion, distance_transform_edt, gaussian_filter

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


def leakage_scores_on_the_twin(seed=0, **twin):
    """Leakage removal on the biased ``holography`` twin (default 256 x 256 px, 4 V), measured
    against its true stray phase on two paths with the same fit mask (vacuum eroded by the
    resolution, the inverse aperture radius): ``model`` - the twin's true phase plus the
    reconstruction's shot noise (noisy minus noise-free reconstruction), isolating the model;
    ``reconstruction`` - the reconstructed phase (the demo's path). Returns both
    :func:`~ionscope.holography.leakage.stray_removal_scores` dicts (plus the fitted degree,
    the reconstruction's own vacuum error rms and the erosion). Seed sweep::

        .venv/bin/python -c "import sys; sys.path.insert(0, 'tests'); \\
            from test_holography_leakage import leakage_scores_on_the_twin as f; \\
            [print(k, f(k)) for k in range(8)]"
    """
    from ionscope.holography import reconstruct_offaxis
    from ionscope.holography.leakage import stray_removal_scores
    from ionscope.simulate import simulate

    twin = {"bias_V": 4.0, **twin}
    ds = simulate("holography", seed=seed, **twin)
    clean = simulate("holography", seed=seed, **{**twin, "noise": False})
    rec = reconstruct_offaxis(ds["hologram"], ds["reference"])
    rec_clean = reconstruct_offaxis(clean["hologram"], clean["reference"])
    noise = rec["phase"].values.astype(float) - rec_clean["phase"].values
    h = float(ds.attrs["pixel_size_nm"])
    resolution_px = int(round(1.0 / (rec.attrs["aperture_per_nm"] * h)))  # 12 px = 6 nm
    vac = ds["region"].values == 0
    specimen = ~vac
    depth = distance_transform_edt(specimen) * h  # nm below the vacuum
    regions = {"edge_15nm": specimen & (depth <= 15), "band_15_30nm": specimen & (depth > 15) & (depth <= 30),
               "specimen": specimen}
    stray = ds["phase_stray"].values.astype(float)
    mask = binary_erosion(vac, iterations=resolution_px)
    out = {"erosion_px": resolution_px}
    for path, phase in (("model", ds["phase_true"].values + noise), ("reconstruction", rec["phase"].values)):
        res = fit_stray_field(signal(np.asarray(phase, float), ("y", "x"), name="phase", units="rad",
                                     coords={"y": ds.y.values, "x": ds.x.values}), mask, erode_px=0)
        fit = res["vacuum"].values
        out[path] = {"degree": int(res.attrs["degree"]),
                     **stray_removal_scores(res["stray_phase"].values, stray, fit, vac, regions=regions, noise=noise)}
    own = rec_clean["phase"].values - ds["phase_true"].values
    out["reconstruction_own_error_rms_rad"] = float(np.std(own[fit]))
    return out


def test_leakage_target_on_the_biased_twin():
    """Issue 5 target on the demo's twin (256 x 256 px, 4 V, seed 0): >= 99 % of the stray
    phase removed in vacuum without changing the specimen phase by more than the noise.

    Seeds 0-7 (``leakage_scores_on_the_twin``): the model alone removes 0.990-0.993 over the
    fit mask (7 of 8 seeds >= 0.99; the shot-noise limit) and 0.985-0.988 over the whole
    vacuum, changing the specimen phase by 0.3-0.65x its noise within 15 nm of the edge and
    0.8-1.8x 15-30 nm deep; the full reconstruction removes 0.974-0.984 (its own smooth vacuum
    error is ~1.7 % of the stray phase, see the next test) and changes the specimen by
    0.95-1.6x the noise within 15 nm."""
    out = leakage_scores_on_the_twin(seed=0)
    s, s2 = out["model"], out["reconstruction"]
    assert out["erosion_px"] == 12
    # the model alone: the twin's true phase plus the reconstruction's shot noise
    assert s["degree"] == 3
    assert s["stray_rms_fit_rad"] == pytest.approx(0.90, abs=0.01)  # 3.8 rad peak to valley
    assert s["removed_fraction_fit"] >= 0.99  # measured 0.9920
    assert s["removed_fraction_vacuum"] >= 0.98  # measured 0.9856 (extrapolated to borders, edge)
    assert s["model_error_rms_fit_rad"] < 0.2 * s["phase_noise_rad"]["fit"]  # 0.0072 vs 0.042 rad
    # the specimen phase changes by less than its noise next to the edge ...
    assert s["change_over_noise"]["edge_15nm"] < 0.8  # measured 0.53 (0.032 vs 0.061 rad)
    # ... and by about the noise 15-30 nm deep: the continuation from the 20 nm vacuum band
    # amplifies the fit's noise with depth
    assert s["change_over_noise"]["band_15_30nm"] < 1.5  # measured 1.25 (0.066 vs 0.053 rad)
    assert s["specimen_change_rms_rad"]["specimen"] > s["specimen_change_rms_rad"]["band_15_30nm"]
    # the full reconstruction (the demo's path), same mask
    assert 0.975 <= s2["removed_fraction_fit"] < 0.99  # measured 0.9840
    assert s2["model_error_rms_fit_rad"] < 0.5 * out["reconstruction_own_error_rms_rad"]  # 0.0144 vs 0.035 rad
    assert s2["change_over_noise"]["edge_15nm"] < 1.2  # measured 0.95 (0.059 vs 0.061 rad)


def test_reconstruction_floor_in_vacuum_is_the_biprism_fringes_not_the_edge_ringing():
    """The smooth part (degree-3 harmonic projection over the eroded vacuum) of a noise-free
    reconstruction's vacuum error: 0.015 rad with the 4 V leakage field, 0.004 rad without it
    or without the biprism's Fresnel fringes - the aperture's ringing at the specimen edge is
    not what limits the leakage fit once the mask is eroded by the resolution."""
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
    assert smooth["leakage"] == pytest.approx(0.015, abs=0.004)
    assert smooth["no_leakage"] < 0.35 * smooth["leakage"]  # 0.0044
    assert smooth["no_fringes"] < 0.35 * smooth["leakage"]  # 0.0043


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
    assert np.mean(vac[mask]) > 0.99  # what is called vacuum is vacuum
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
