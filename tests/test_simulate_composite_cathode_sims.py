"""Tests of the composite cathode's TOF-SIMS twin (ionscope.simulate.composite_cathode_sims): its
statistics against its own parameters and analytic expectations, its ground truth recomputed
independently, and that it images the sample the KPFM frames show."""

from __future__ import annotations

import json

import numpy as np
import pytest

from ionscope.errors import ConfigError
from ionscope.register import register_translation
from ionscope.simulate import simulate
from ionscope.simulate.cathode_microstructure import COLLECTOR, LATP, LICOPO4, PD
from ionscope.simulate.composite_cathode import CompositeCathodeParams, twin_microstructure
from ionscope.simulate.composite_cathode_sims import (
    AL,
    AU,
    CO,
    ION_MASSES,
    ION_NAMES,
    LI6,
    LI7,
    LI7_LI6,
    PD106,
    TI,
    file_masses,
    li_contents,
    simulate_sims,
    supersample_factor,
)

DEFAULT = CompositeCathodeParams()
N_PULSES = DEFAULT.sims_scans * DEFAULT.sims_shots_per_pixel
P = DEFAULT.sims_pixel_nm


@pytest.fixture(scope="module")
def ds():
    return simulate_sims(DEFAULT, seed=0)


def _ion_counts(ds, ion, window_u=0.05):
    """Observed counts (state, y, x) of ``ion`` integrated over its file-calibrated mass +/- window."""
    out = np.empty(ds["counts"].shape[:3])
    for s in range(ds.sizes["state"]):
        centre = file_masses(ION_MASSES[ion], ds["sims_calibration_a"].values[s], ds["sims_calibration_b"].values[s])
        inside = np.abs(ds["peak_mass"].values[s] - centre) < window_u
        out[s] = np.where(inside, ds["counts"].values[s], 0).sum(axis=-1)
    return out


def _subgrid_raster(ds, params, seed, state=0):
    """The sample at the twin's sub-points of ``state``'s pixels (its own code path: rasterize)."""
    ms = twin_microstructure(params, seed)
    s = int(ds.attrs["supersample"])
    ny, nx = ds.sizes["y"], ds.sizes["x"]
    oy, ox = ds.attrs["field_origin_nm"]
    oy -= ds["sims_stage_shift_y_nm"].values[state]
    ox -= ds["sims_stage_shift_x_nm"].values[state]
    sub = params.sims_pixel_nm / s
    start = (oy - 0.5 * params.sims_pixel_nm + 0.5 * sub, ox - 0.5 * params.sims_pixel_nm + 0.5 * sub)
    phase, particle = ms.rasterize((ny * s, nx * s), sub, start)
    return ms, phase, particle, s


def _blocks(a, s):
    ny, nx = a.shape[0] // s, a.shape[1] // s
    return a.reshape(ny, s, nx, s).mean(axis=(1, 3))


# --------------------------------------------------------------------------- schema


def test_dims_units_coordinates_and_attrs(ds):
    n_state = DEFAULT.sims_states
    assert ds["counts"].dims == ("state", "y", "x", "peak") and ds["counts"].dtype == np.int32
    assert ds["peak_mass"].dims == ("state", "y", "x", "peak") and ds["peak_mass"].attrs["units"] == "u"
    assert ds.sizes["y"] == DEFAULT.sims_ny and ds.sizes["x"] == DEFAULT.sims_nx
    assert list(ds["state"].values) == ["pristine", "charge1", "discharge1", "charge2", "discharge2"]
    assert ds.attrs["state_names"] == list(ds["state"].values)
    np.testing.assert_allclose(ds["y"].values, np.arange(DEFAULT.sims_ny) * P)
    assert ds["y"].attrs["units"] == "nm"
    assert list(ds["ion"].values) == list(ION_NAMES) == ds.attrs["ion_names"]
    np.testing.assert_allclose(ds["ion_mass"].values, [6.01457, 7.01546, 22.98922, 26.98099, 30.97321, 38.96316,
                                                       47.94740, 58.93265, 105.90294, 196.96602])
    assert ds.attrs["pulses_per_pixel"] == N_PULSES == 1920
    assert ds.attrs["primary"] == "counts" and ds.attrs["twin"] == "composite_cathode"
    assert ds.attrs["imzml_mode"] == "processed" and ds.attrs["spectrum_type"] == "centroid"
    assert ds.attrs["li7_li6"] == pytest.approx(12.18, abs=0.01)
    expected = {
        "sims_phase_true": (("y", "x"), "1"),
        "sims_phase_fraction_true": (("phase", "y", "x"), "1"),
        "sims_particle_true": (("y", "x"), "1"),
        "sims_li_rel_pristine_true": (("state", "phase"), "1"),
        "sims_particle_li_true": (("state", "particle"), "1"),
        "sims_particle_active": (("particle",), "1"),
        "sims_particle_area_nm2": (("particle",), "nm^2"),
        "sims_expected_counts": (("state", "ion", "y", "x"), "counts"),
        "sims_stage_shift_y_nm": (("state",), "nm"),
        "sims_stage_shift_x_nm": (("state",), "nm"),
        "sims_dose": (("state",), "1"),
        "sims_state_time_s": (("state",), "s"),
        "sims_calibration_a": (("state",), "u^0.5"),
        "sims_calibration_b": (("state",), "1"),
        "counts": (("state", "y", "x", "peak"), "counts"),
    }
    assert set(ds.data_vars) == set(expected)
    for name, (dims, units) in expected.items():
        assert ds[name].dims == dims, name
        assert ds[name].attrs["units"] == units, name
    assert ds["sims_phase_true"].attrs["flag_meanings"] == "LATP LiCoPO4 Pd collector"
    assert list(ds["phase"].values) == ["LATP", "LiCoPO4", "Pd", "collector"]
    assert ds.sizes["state"] == n_state
    # pristine at the KPFM protocol's start, charge1 at its end (10 frames of 60 s), then hourly
    np.testing.assert_allclose(ds["sims_state_time_s"].values, [0, 600, 4200, 7800, 11400][:n_state])
    steps = json.loads(ds.attrs["provenance"])
    assert [s["step"] for s in steps] == ["ionscope.simulate.composite_cathode_sims"]
    assert steps[0]["params"] == {**json.loads(ds.attrs["parameters"]), "seed": 0}


def test_padded_peak_model_sorted_by_mass_no_empty_peaks_about_ten_per_pixel(ds):
    mass, counts = ds["peak_mass"].values, ds["counts"].values
    valid = ~np.isnan(mass)
    np.testing.assert_array_equal(counts[~valid], 0)
    assert np.all(counts[valid] >= 1) and np.all(counts <= N_PULSES)
    # NaN padding only at the end, masses ascending before it
    assert np.all(valid[..., :-1] | ~valid[..., 1:])
    step = np.diff(mass, axis=-1)
    assert np.all((step >= 0) | ~valid[..., 1:])
    per_pixel = valid.sum(axis=-1)
    assert 8.0 < per_pixel.mean() < 12.0 and per_pixel.max() == ds.sizes["peak"]


def test_same_seed_same_data_another_seed_another_sample(ds):
    again = simulate_sims(DEFAULT, seed=0)
    for name in ds.variables:
        np.testing.assert_array_equal(again[name].values, ds[name].values, err_msg=name)
    small = CompositeCathodeParams(sims_states=2, sims_ny=12, sims_nx=12, sims_pixel_nm=200.0)
    a, b = simulate_sims(small, seed=0), simulate_sims(small, seed=1)
    assert not np.array_equal(a["sims_phase_true"].values, b["sims_phase_true"].values)


# --------------------------------------------------------------------------- the sample


def test_it_images_the_sample_the_kpfm_frames_show():
    """Same seed, same sample: the KPFM twin's phase and particle maps (20 nm pixels) averaged over
    each SIMS pixel's footprint give the SIMS truth, and a pure SIMS pixel's centre carries the same
    particle label on the KPFM map."""
    params = CompositeCathodeParams(ny=128, nx=128, pixel_nm=20.0, ocv_frames=1, charge_frames=0, rest_frames=0)
    kpfm = simulate("composite_cathode", seed=3, **{k: getattr(params, k) for k in
                                                     ("ny", "nx", "pixel_nm", "ocv_frames", "charge_frames",
                                                      "rest_frames")})
    sims = simulate_sims(params, seed=3)
    oy, ox = sims.attrs["field_origin_in_kpfm_nm"]
    assert (oy, ox) == (-80.0, -80.0)  # the SIMS pixel centres centred on the KPFM pixel centres
    # SIMS pixel J covers KPFM pixels 5J - 6 .. 5J - 2; rows/columns 2..25 lie inside the KPFM field
    phase = kpfm["phase"].values
    block = np.stack([_blocks((phase == c)[4:124, 4:124].astype(float), 5) for c in (LATP, LICOPO4, PD, COLLECTOR)])
    truth = sims["sims_phase_fraction_true"].values[:, 2:26, 2:26]
    assert np.abs(block - truth).mean() < 0.02
    assert (np.argmax(block, axis=0) == sims["sims_phase_true"].values[2:26, 2:26]).mean() > 0.95
    centres = kpfm["particle"].values[6:126:5, 6:126:5]  # KPFM pixels at the SIMS pixel centres
    pure = sims["sims_phase_fraction_true"].values[LICOPO4, 2:26, 2:26] == 1.0
    assert pure.sum() > 30
    np.testing.assert_array_equal(centres[pure], sims["sims_particle_true"].values[2:26, 2:26][pure])
    ms = twin_microstructure(params, seed=3)
    np.testing.assert_array_equal(sims["sims_particle_active"].values, ms.particle_active)
    np.testing.assert_array_equal(kpfm["particle_active"].values, ms.particle_active[kpfm["label"].values - 1])


def test_phase_fractions_sum_to_one_and_every_phase_is_seen(ds):
    f = ds["sims_phase_fraction_true"].values
    np.testing.assert_allclose(f.sum(axis=0), 1.0)
    assert np.all((f >= 0) & (f <= 1))
    np.testing.assert_array_equal(ds["sims_phase_true"].values, np.argmax(f, axis=0))
    assert set(np.unique(ds["sims_phase_true"].values)) == {LATP, LICOPO4, PD, COLLECTOR}
    mixed = (f.max(axis=0) < 1.0).mean()
    assert 0.2 < mixed < 0.8  # mixed pixels at 100 nm are common
    assert supersample_factor(DEFAULT) == ds.attrs["supersample"] == 10


# --------------------------------------------------------------------------- lithium truth


def test_particle_li_follows_charge_and_discharge_isolated_particles_keep_it(ds):
    li = ds["sims_particle_li_true"].values
    active = ds["sims_particle_active"].values
    assert active.any() and not active.all()
    np.testing.assert_array_equal(li[:, ~active], 1.0)
    np.testing.assert_array_equal(li[0], 1.0)
    depth = 1.0 - li[1, active]
    assert np.all((depth >= DEFAULT.sims_charge_depth_min) & (depth <= DEFAULT.sims_charge_depth_max))
    r = DEFAULT.sims_li_recovery
    np.testing.assert_allclose(li[2, active], 1.0 - (1 - r) * depth)
    np.testing.assert_allclose(li[3, active], 1.0 - depth - (1 - r) * depth)
    np.testing.assert_allclose(li[4, active], 1.0 - 2 * (1 - r) * depth)
    np.testing.assert_allclose(li_contents(np.array([0.4]), np.array([True]), 5, 0.9)[:, 0],
                               [1.0, 0.6, 0.96, 0.56, 0.92])


def test_latp_loses_li_on_the_first_charge_and_keeps_it_lost(ds):
    rel = ds["sims_li_rel_pristine_true"].values
    loss = DEFAULT.sims_latp_li_loss
    np.testing.assert_allclose(rel[:, LATP], [1.0] + [1.0 - loss] * 4)
    assert np.all(np.isnan(rel[:, PD])) and np.all(np.isnan(rel[:, COLLECTOR]))
    # LiCoPO4 falls on every charge and rises on every discharge
    lico = rel[:, LICOPO4]
    assert lico[0] == 1.0 and lico[1] < lico[2] > lico[3] < lico[4] and lico[1] < 0.9


def test_licopo4_truth_is_the_area_weighted_mean_over_the_part_every_state_images(ds):
    """Recomputed on a 4x finer raster of the first state's field than the twin's sub-grid,
    restricted to the part every (shifted) state covers."""
    ms = twin_microstructure(DEFAULT, seed=0)
    oy, ox = ds.attrs["field_origin_nm"]
    step = P / 40
    start = (oy - 0.5 * P + 0.5 * step, ox - 0.5 * P + 0.5 * step)
    _, particle = ms.rasterize((DEFAULT.sims_ny * 40, DEFAULT.sims_nx * 40), step, start)
    d = np.stack([ds["sims_stage_shift_y_nm"].values, ds["sims_stage_shift_x_nm"].values])
    assert np.abs(d[:, 1:]).max() > 0.3 * P  # the states do move: the common part is smaller
    y = (np.arange(particle.shape[0]) + 0.5) * step  # sub-point centres from the field's corner
    x = (np.arange(particle.shape[1]) + 0.5) * step
    ny, nx = DEFAULT.sims_ny * P, DEFAULT.sims_nx * P
    inside = (((y >= (-d[0]).max()) & (y < (-d[0]).min() + ny))[:, None]
              & ((x >= (-d[1]).max()) & (x < (-d[1]).min() + nx))[None, :])
    area = np.bincount(particle[inside], minlength=ms.n_particles + 1)[1:] * step**2
    # the twin's sub-grid (P / 10) puts the common part's edges up to one sub-row off: a particle
    # cut by them (at most 600 nm across) may differ by one sub-row
    np.testing.assert_allclose(ds["sims_particle_area_nm2"].values, area, rtol=0.05, atol=P / 10 * 600)
    li = ds["sims_particle_li_true"].values
    np.testing.assert_allclose(ds["sims_li_rel_pristine_true"].values[:, LICOPO4], li @ area / area.sum(), atol=2e-3)


# --------------------------------------------------------------------------- the counts


def test_expected_counts_are_yields_times_area_and_li_of_each_particle_share(ds):
    """Recomputed per particle from the state's own sub-point raster (a pixel straddling an
    active and an isolated particle gets each one's Li); matrix ions from the phase fractions."""
    shared = 0
    for state in (0, 1):
        ms, phase, particle, s = _subgrid_raster(ds, DEFAULT, 0, state)
        blocks = particle.reshape(DEFAULT.sims_ny, s, DEFAULT.sims_nx, s).transpose(0, 2, 1, 3).reshape(
            DEFAULT.sims_ny, DEFAULT.sims_nx, -1)
        shared += int(np.sum((blocks.max(axis=-1) > 0)
                             & (np.where(blocks > 0, blocks, np.iinfo(np.int32).max).min(axis=-1) != blocks.max(axis=-1))))
        dose = ds["sims_dose"].values[state]
        li = ds["sims_particle_li_true"].values[state]
        latp = ds["sims_li_rel_pristine_true"].values[state, LATP]
        lico_li = sum(li[i] * _blocks((particle == i + 1).astype(float), s) for i in range(ms.n_particles))
        f = {c: _blocks((phase == c).astype(float), s) for c in (LATP, LICOPO4, PD, COLLECTOR)}
        mu = ds["sims_expected_counts"].values[state].astype(np.float64)
        expect_li7 = dose * (DEFAULT.sims_yield_li7_licopo4 * lico_li + DEFAULT.sims_yield_li7_latp * latp * f[LATP])
        np.testing.assert_allclose(mu[LI7], expect_li7, rtol=1e-5, atol=1e-3)
        np.testing.assert_allclose(mu[CO], dose * DEFAULT.sims_yield_co_licopo4 * f[LICOPO4], rtol=1e-5, atol=1e-3)
        np.testing.assert_allclose(mu[TI], dose * DEFAULT.sims_yield_ti_latp * f[LATP], rtol=1e-5, atol=1e-3)
        np.testing.assert_allclose(mu[AL], dose * DEFAULT.sims_yield_al_latp * f[LATP], rtol=1e-5, atol=1e-3)
        np.testing.assert_allclose(mu[PD106], dose * DEFAULT.sims_yield_pd * f[PD], rtol=1e-5, atol=1e-3)
        np.testing.assert_allclose(mu[AU], dose * DEFAULT.sims_yield_au * f[COLLECTOR], rtol=1e-5, atol=1e-3)
    assert shared >= 1  # pixels holding two particles are among those checked


def test_li7_over_li6_of_the_expected_counts_is_the_natural_ratio(ds):
    mu = ds["sims_expected_counts"].values.astype(np.float64)
    has = mu[:, LI6] > 1.0
    np.testing.assert_allclose(mu[:, LI7][has] / mu[:, LI6][has], LI7_LI6, rtol=1e-5)
    assert LI7_LI6 == pytest.approx(12.18, abs=0.01)
    # the pristine LiCoPO4 saturates the detector: 7Li ~ 1.3 x the pulses per pixel
    pure = ds["sims_phase_fraction_true"].values[LICOPO4] == 1.0
    assert mu[0, LI7][pure].mean() == pytest.approx(1.3 * N_PULSES * ds["sims_dose"].values[0], rel=1e-5)


def test_observed_6li_counts_follow_the_expected_counts(ds):
    mu = ds["sims_expected_counts"].values[:, LI6].astype(np.float64)
    k = _ion_counts(ds, LI6)
    mean = N_PULSES * -np.expm1(-mu / N_PULSES)  # ~mu: 6Li stays far from saturation
    var = N_PULSES * (-np.expm1(-mu / N_PULSES)) * np.exp(-mu / N_PULSES)
    assert abs(k.sum() - mean.sum()) < 4 * np.sqrt(var.sum())
    assert mean.sum() == pytest.approx(mu.sum(), rel=0.05)
    # pixel by pixel: standardised residuals of unit variance
    z = (k - mean)[mu > 20] / np.sqrt(var[mu > 20])
    assert abs(z.mean()) < 0.1 and z.std() == pytest.approx(1.0, abs=0.1)


def test_poisson_dead_time_correction_recovers_saturated_7li(ds):
    mu = ds["sims_expected_counts"].values[:, LI7].astype(np.float64)
    k = _ion_counts(ds, LI7)
    saturated = mu > 0.5 * N_PULSES
    assert saturated.sum() > 300
    assert k[saturated].sum() < 0.8 * mu[saturated].sum()  # the detector loses counts
    corrected = -N_PULSES * np.log1p(-k[saturated] / N_PULSES)
    assert corrected.sum() == pytest.approx(mu[saturated].sum(), rel=0.02)
    # ... and then agrees with 12.18 x the 6Li (itself ~5 % short of mu at ~70 counts: corrected too)
    li6 = -N_PULSES * np.log1p(-_ion_counts(ds, LI6)[saturated] / N_PULSES)
    assert corrected.sum() / (LI7_LI6 * li6.sum()) == pytest.approx(1.0, rel=0.03)


def test_file_masses_carry_the_states_calibration_error_and_a_centroid_jitter(ds):
    a, b = ds["sims_calibration_a"].values, ds["sims_calibration_b"].values
    assert a[0] != 0.0 and np.all(np.abs(a) < 5 * DEFAULT.sims_calibration_offset_sd)
    for s in range(ds.sizes["state"]):
        for ion in (LI7, PD106):
            centre = file_masses(ION_MASSES[ion], a[s], b[s])
            fwhm = ION_MASSES[ion] / DEFAULT.sims_resolution
            near = (np.abs(ds["peak_mass"].values[s] - centre) < fwhm) & (ds["counts"].values[s] >= 5)
            assert near.sum() > 30
            k = ds["counts"].values[s][near]
            z = (ds["peak_mass"].values[s][near] - centre) / (fwhm / 2.355 / np.sqrt(k))
            assert abs(z.mean()) < 0.25 and z.std() == pytest.approx(1.0, abs=0.15)
        # recalibration sqrt(m_true) = a + b sqrt(m_file) restores the true masses
        np.testing.assert_allclose(a[s] + b[s] * np.sqrt(file_masses(ION_MASSES, a[s], b[s])), np.sqrt(ION_MASSES))
    offsets = np.abs(file_masses(ION_MASSES, a[1], b[1]) - ION_MASSES)
    assert 0.005 < offsets[LI7] < offsets[PD106]  # 7Li off by some 10 mu, 106Pd by more


def test_total_count_registration_recovers_the_stage_shift(ds):
    total = ds["counts"].values.sum(axis=-1).astype(np.float64)
    dy, dx = ds["sims_stage_shift_y_nm"].values, ds["sims_stage_shift_x_nm"].values
    assert dy[0] == dx[0] == 0.0
    bound = json.loads(ds.attrs["derived"])["shift_bound_nm"]
    assert np.all(np.abs(np.r_[dy, dx]) <= bound) and np.abs(np.r_[dy, dx]).max() > 0.5 * P
    for s in range(1, ds.sizes["state"]):
        shift = register_translation(total[0], total[s], polish=True)
        assert shift == pytest.approx((-dy[s] / P, -dx[s] / P), abs=0.2)


# --------------------------------------------------------------------------- parameters


def test_a_sims_field_that_does_not_fit_the_sample_is_refused_and_kpfm_alone_still_runs():
    small = CompositeCathodeParams(ny=64, nx=64, pixel_nm=10.0)  # a KPFM-only field: fine
    assert small.sims_field_problem() is not None
    with pytest.raises(ConfigError, match="sims_ny.*margin_nm"):
        simulate_sims(small, seed=0)
    with pytest.raises(ConfigError, match="leaving 177.5 nm"):
        simulate_sims(CompositeCathodeParams(sims_stage_shift_nm=100.0), seed=0)
    assert CompositeCathodeParams(sims_ny=30, sims_nx=30, sims_stage_shift_nm=0.0).sims_field_problem() is None
    assert DEFAULT.sims_shift_bound_nm == pytest.approx(177.5)


def test_a_rotated_raster_samples_the_sample_where_the_rotation_puts_each_point():
    ms = twin_microstructure(DEFAULT, seed=0)
    angle, step, origin = 17.0, 41.0, (1900.0, 700.0)
    phase, particle = ms.rasterize((30, 40), step, origin, rotation_deg=angle)
    c, s = np.cos(np.radians(angle)), np.sin(np.radians(angle))
    rng = np.random.default_rng(0)
    for j, i in zip(rng.integers(0, 30, 200), rng.integers(0, 40, 200)):
        y = origin[0] + step * (c * j - s * i)  # R(angle) on (y, x): counter-clockwise as displayed
        x = origin[1] + step * (s * j + c * i)
        ph, pa = ms.rasterize((1, 1), 1.0, (y, x))
        assert (phase[j, i], particle[j, i]) == (ph[0, 0], pa[0, 0])
    assert len(np.unique(phase)) == 4  # every phase seen: the test looks at a real mix
    assert np.array_equal(ms.rasterize((30, 40), step, origin, rotation_deg=0.0)[0],
                          ms.rasterize((30, 40), step, origin)[0])


def test_a_rotated_and_shifted_field_shows_the_kpfm_field_where_kpfm_to_sims_says():
    # the study's geometry: the TOF-SIMS raster turned by 3.5 degrees, its centre 1 um off the KPFM's
    p = CompositeCathodeParams(ny=256, nx=256, pixel_nm=10.0, margin_nm=2300.0, sims_ny=48, sims_nx=48,
                               sims_rotation_deg=3.5, sims_offset_y_nm=-600.0, sims_offset_x_nm=800.0,
                               sims_states=2, sims_stage_shift_nm=0.0)
    sims = simulate_sims(p, seed=0)
    truth = json.loads(sims.attrs["kpfm_to_sims"])
    assert truth["rotation_deg"] == -3.5 and sims.attrs["field_rotation_deg"] == 3.5
    # KPFM truth phase on its own grid (first pixel centre at 0 nm = the sample's margin)
    m = p.margin_px * p.pixel_nm
    kpfm_phase, _ = twin_microstructure(p, seed=0).rasterize((p.ny, p.nx), p.pixel_nm, (m, m))
    # every TOF-SIMS pixel centre r_f back onto the KPFM grid: r_m = R(-phi) (r_f - c_m - s) + c_m
    cm = 0.5 * (p.ny - 1) * p.pixel_nm
    phi = np.radians(truth["rotation_deg"])
    yf, xf = np.meshgrid(sims["y"].values, sims["x"].values, indexing="ij")
    dy, dx = yf - cm - truth["shift_y_nm"], xf - cm - truth["shift_x_nm"]
    ym = np.cos(phi) * dy + np.sin(phi) * dx + cm
    xm = -np.sin(phi) * dy + np.cos(phi) * dx + cm
    j, i = np.rint(ym / p.pixel_nm).astype(int), np.rint(xm / p.pixel_nm).astype(int)
    inside = (j >= 0) & (j < p.ny) & (i >= 0) & (i < p.nx)
    pure = sims["sims_phase_fraction_true"].max("phase").values > 0.99
    sel = inside & pure
    assert 300 < sel.sum() < inside.sum() < 700  # the 2.56 um KPFM field: ~655 TOF-SIMS pixels
    assert np.array_equal(kpfm_phase[j[sel], i[sel]], sims["sims_phase_true"].values[sel])


@pytest.mark.parametrize("bad, match", [
    (dict(sims_charge_depth_min=0.6, sims_charge_depth_max=0.5), "sims_charge_depth_min"),
    (dict(sims_states=21, sims_charge_depth_max=0.6, sims_li_recovery=0.8), "more Li than it has"),
    (dict(sims_yield_li7_licopo4=50000.0), "every one of the n = .* 1920 pulses"),
    (dict(sims_latp_li_loss=1.0), "sims_latp_li_loss"),
    (dict(sims_pixel_nm=0.5), "sims_pixel_nm"),
    (dict(sims_states=0), "sims_states"),
])
def test_bad_sims_parameters_are_refused(bad, match):
    with pytest.raises(ConfigError, match=match):
        CompositeCathodeParams(**bad)


def test_the_docstring_examples_run():
    import doctest

    from ionscope.simulate import composite_cathode_sims

    result = doctest.testmod(composite_cathode_sims, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0 and result.failed == 0
