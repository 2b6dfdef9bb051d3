"""ionscope.holography.leakage: vacuum flatness and the harmonic stray-field model."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.ndimage import binary_erosion, gaussian_filter

from ionscope.data import provenance, signal
from ionscope.errors import ConfigError, InputError
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


def test_stray_field_on_the_biased_twin_is_removed_to_the_reconstruction_noise():
    from ionscope.holography import reconstruct_offaxis
    from ionscope.simulate import simulate

    ds = simulate("holography", seed=0, bias_V=4.0, ny=192, nx=192)
    rec = reconstruct_offaxis(ds["hologram"], ds["reference"])
    vac = ds["region"].values == 0
    res = fit_stray_field(rec["phase"], binary_erosion(vac, iterations=12), erode_px=0)
    fit = res["vacuum"].values
    stray = ds["phase_stray"].values.astype(float)
    err = res["stray_phase"].values - stray
    err -= err[fit].mean()
    noise = rec["phase"].values - ds["phase_true"].values
    noise -= noise[fit].mean()
    removed = 1 - np.std(err[fit]) / np.std(stray[fit])
    # the leakage phase is removed down to the level of the reconstruction's own error in vacuum
    assert removed > 0.96
    assert np.std(err[fit]) < 0.5 * np.std(noise[fit])


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
