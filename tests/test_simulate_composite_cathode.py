"""Tests of the composite-cathode KPFM twin (ionscope.simulate.composite_cathode) and its
microstructure (ionscope.simulate.cathode_microstructure)."""

from __future__ import annotations

import datetime as dt
import io
import json

import numpy as np
import pytest
from scipy import ndimage
from scipy.integrate import solve_ivp

from ionscope.errors import ConfigError, InputError
from ionscope.register import register_translation
from ionscope.simulate import TWINS, cycler_table, simulate, state_names
from ionscope.simulate.cathode_microstructure import (
    COLLECTOR,
    LATP,
    LICOPO4,
    PD,
    MicrostructureParams,
    build_microstructure,
)
from ionscope.simulate.composite_cathode import (
    CompositeCathodeParams,
    frames_as_datasets,
    psf_kernel,
    twin_microstructure,
)

DEFAULT = CompositeCathodeParams()
H = DEFAULT.pixel_nm
N = DEFAULT.ny  # the default field: N x N pixels of H nm (2.56 um)
QUIET = dict(noise_V=0.0, line_offset_V=0.0, topography_noise_nm=0.0, topography_line_offset_nm=0.0)
SMALL = dict(ny=64, nx=64, pixel_nm=10.0, ocv_frames=1, charge_frames=2, rest_frames=1)


@pytest.fixture(scope="module")
def ds():
    return simulate("composite_cathode", seed=0)


@pytest.fixture(scope="module")
def quiet():
    """The same sample, cell and drift without noise or line offsets."""
    return simulate("composite_cathode", seed=0, **QUIET)


def _drift_px(ds, k):
    return ds["drift_y_nm"].values[k] / H, ds["drift_x_nm"].values[k] / H


def _interior(ds, label, erode=3, edge=8):
    """A particle's pixels eroded by ``erode`` px, away from the field's edges (drift)."""
    mask = ndimage.binary_erosion(ds["particle"].values == label, iterations=erode)
    mask[:edge] = mask[-edge:] = False
    mask[:, :edge] = mask[:, -edge:] = False
    return mask


def _measured_mean(ds, k, mask, name="potential_measured"):
    """Mean sample potential of frame k over the sample pixels ``mask`` (moved by the frame's drift,
    rounded); the default wiring records it with the Kelvin bias on the sample: ``-potential``."""
    dy, dx = (int(round(v)) for v in _drift_px(ds, k))
    sign = 1.0 if ds.attrs["bias_on"] == "tip" else -1.0
    return sign * float(ds[name].values[k][np.roll(mask, (dy, dx), axis=(0, 1))].mean())


def _lagged_cell_voltage(ds, tau, times):
    """coupling * (first-order lag of U - U(0)) at ``times``, integrated here from the cycler log."""
    t, u = ds["record"].values, ds["cycler_voltage"].values
    sol = solve_ivp(lambda s, y: (np.interp(s, t, u) - u[0] - y) / tau, (0.0, t[-1]), [0.0],
                    t_eval=np.sort(np.unique(times)), max_step=0.25, rtol=1e-8, atol=1e-10)
    return DEFAULT.particle_coupling * np.interp(times, sol.t, sol.y[0])


# --------------------------------------------------------------------------- schema


def test_registered_and_default_run_shapes_units_and_coords(ds):
    assert "composite_cathode" in TWINS
    assert dict(ds.sizes) == {"time": 10, "y": N, "x": N, "record": 601, "label": ds.sizes["label"]}
    assert ds.attrs["primary"] == "potential_measured" and ds.attrs["twin"] == "composite_cathode"
    expected = {
        "potential_measured": (("time", "y", "x"), "V"),
        "potential_measured_backward": (("time", "y", "x"), "V"),
        "topography_measured": (("time", "y", "x"), "nm"),
        "topography_measured_backward": (("time", "y", "x"), "nm"),
        "potential_true": (("time", "y", "x"), "V"),
        "potential_true_mid": (("time", "y", "x"), "V"),
        "phase": (("y", "x"), "1"),
        "particle": (("y", "x"), "1"),
        "active_true": (("y", "x"), "1"),
        "height_true": (("y", "x"), "nm"),
        "drift_y_nm": (("time",), "nm"),
        "drift_x_nm": (("time",), "nm"),
        "line_offset_V": (("time", "y"), "V"),
        "cell_voltage_row": (("time", "y"), "V"),
        "voltage": (("time",), "V"),
        "current": (("time",), "A"),
        "charge": (("time",), "C"),
        "state": (("time",), "1"),
        "cycler_time": (("record",), "s"),
        "cycler_voltage": (("record",), "V"),
        "cycler_current": (("record",), "A"),
        "cycler_charge": (("record",), "C"),
        "particle_active": (("label",), "1"),
        "particle_response_time_s": (("label",), "s"),
        "particle_v0_V": (("label",), "V"),
        "particle_area_nm2": (("label",), "nm^2"),
        "particle_centroid_y_nm": (("label",), "nm"),
        "particle_centroid_x_nm": (("label",), "nm"),
        "noise_V": ((), "V"),
        "psf_sigma_nm": ((), "nm"),
        "psf_tail_fraction": ((), "1"),
        "psf_tail_sigma_nm": ((), "nm"),
    }
    assert set(ds.data_vars) == set(expected)
    for name, (dims, units) in expected.items():
        assert ds[name].dims == dims, name
        assert ds[name].attrs["units"] == units, name
    np.testing.assert_allclose(ds["y"].values, np.arange(N) * H)
    np.testing.assert_allclose(ds["x"].values, np.arange(N) * H)
    np.testing.assert_allclose(ds["frame_start"].values, np.arange(10) * 60.0)
    np.testing.assert_allclose(ds["time"].values, np.arange(10) * 60.0 + 30.0)
    assert ds["row_time"].dims == ("time", "y") and ds["row_time"].attrs["units"] == "s"
    assert list(ds["scan_direction"].values) == ["up", "down"] * 5
    assert ds["phase"].attrs["flag_meanings"] == "LATP LiCoPO4 Pd collector"
    assert ds["phase"].attrs["flag_values"] == [0, 1, 2, 3]
    assert set(np.unique(ds["phase"].values)) == {LATP, LICOPO4, PD, COLLECTOR}
    assert float(ds["noise_V"]) == 0.010
    assert json.loads(ds.attrs["psf"])["sigma_nm"] == 7.0
    dt.datetime.fromisoformat(ds.attrs["start_time"])
    steps = json.loads(ds.attrs["provenance"])
    assert [s["step"] for s in steps] == ["ionscope.simulate.composite_cathode"]
    assert steps[0]["params"] == {**json.loads(ds.attrs["parameters"]), "seed": 0}


def test_both_active_and_isolated_particles_and_labels_match_the_map(ds):
    labels = ds["label"].values
    assert set(labels) == set(np.unique(ds["particle"].values)) - {0}
    active = ds["particle_active"].values
    assert 3 <= active.sum() <= len(labels) - 3
    np.testing.assert_array_equal(ds["active_true"].values, np.isin(ds["particle"].values, labels[active]))
    assert np.all(ds["phase"].values[ds["particle"].values > 0] == LICOPO4)
    tau = ds["particle_response_time_s"].values
    assert np.all((tau[active] >= DEFAULT.response_min_s) & (tau[active] <= DEFAULT.response_max_s))
    assert np.all(np.isnan(tau[~active]))
    np.testing.assert_allclose(ds["particle_area_nm2"].values,
                               [(ds["particle"].values == lab).sum() * H * H for lab in labels])


def test_the_collector_band_is_along_the_bottom_edge(ds):
    collector = ds["phase"].values == COLLECTOR
    rows = collector.mean(axis=1)
    assert np.all(rows[-20:] == 1.0) and np.all(rows[:200] == 0.0)
    assert 22 <= collector.sum() / N * H / 10 <= 28  # 250 nm thick


# --------------------------------------------------------------------------- determinism


def test_same_seed_is_identical_and_another_seed_is_another_sample(ds):
    again = simulate("composite_cathode", seed=0)
    for name in ds.variables:
        np.testing.assert_array_equal(again[name].values, ds[name].values, err_msg=name)
    other = simulate("composite_cathode", seed=1, **SMALL)
    first = simulate("composite_cathode", seed=0, **SMALL)
    assert not np.array_equal(other["phase"].values, first["phase"].values)


def test_noise_streams_leave_the_sample_the_cell_and_the_drift_alone(ds, quiet):
    for name in ("potential_true", "phase", "particle", "drift_y_nm", "drift_x_nm", "cycler_voltage",
                 "particle_v0_V", "particle_response_time_s"):
        np.testing.assert_array_equal(quiet[name].values, ds[name].values, err_msg=name)
    np.testing.assert_array_equal(quiet["potential_measured"].values, quiet["potential_measured_backward"].values)


def test_the_microstructure_function_rebuilds_the_twins_sample(ds):
    ms = twin_microstructure(DEFAULT, seed=0)
    m = DEFAULT.margin_px * H
    assert ds.attrs["field_origin_nm"] == [m, m]
    phase, particle = ms.rasterize((N, N), H, (m, m))
    np.testing.assert_array_equal(phase, ds["phase"].values)
    np.testing.assert_array_equal(particle, ds["particle"].values)
    np.testing.assert_array_equal(ms.particle_active[ds["label"].values - 1], ds["particle_active"].values)


# --------------------------------------------------------------------------- microstructure


def _raster_connectivity(ms, step):
    """Particles touching (8-neighbours) the collector's Pd + collector cluster on a fine raster."""
    n_y, n_x = int(ms.height_nm / step), int(ms.width_nm / step)
    phase, particle = ms.rasterize((n_y, n_x), step)
    conductor = (phase == PD) | (phase == COLLECTOR)
    lab, _ = ndimage.label(conductor, structure=np.ones((3, 3)))
    cluster = np.isin(lab, np.unique(lab[phase == COLLECTOR]))
    grown = ndimage.grey_dilation(particle, size=(3, 3))
    touched = np.unique(grown[cluster & (grown > 0)])
    active = np.zeros(ms.n_particles, bool)
    active[touched[touched > 0] - 1] = True
    return active


@pytest.mark.parametrize("seed", [0, 1])
def test_connectivity_agrees_with_a_raster_of_the_sample(seed):
    """Geometry decides (gap <= contact_nm); a 2.5 nm raster's 8-connected Pd/collector cluster
    agrees except for particles whose closest Pd disc lies within a raster step of the limit."""
    ms = twin_microstructure(DEFAULT, seed=seed)
    raster = _raster_connectivity(ms, 2.5)
    theta = np.linspace(0, 2 * np.pi, 2000, endpoint=False)
    r = ms.particle_radius_at(theta[None, :])
    by = ms.particle_y_nm[:, None] + r * np.sin(theta)
    bx = ms.particle_x_nm[:, None] + r * np.cos(theta)
    for i in range(ms.n_particles):
        gaps = np.hypot(by[i][:, None] - ms.pd_y_nm, bx[i][:, None] - ms.pd_x_nm).min(axis=0) - ms.pd_radius_nm
        borderline = np.any((gaps > DEFAULT.contact_nm) & (gaps <= DEFAULT.contact_nm + 2.5 * np.sqrt(2)))
        if not borderline:
            assert raster[i] == ms.particle_active[i], f"particle {i + 1}"
    assert ms.particle_active.any() and not ms.particle_active.all()


def test_microstructure_at_sims_pixels_and_phase_fractions():
    ms = build_microstructure(MicrostructureParams(), height_nm=3000.0, width_nm=4000.0,
                              rng=np.random.default_rng(5))
    phase, particle = ms.rasterize((30, 40), 100.0)
    assert phase.shape == (30, 40) and set(np.unique(phase)) <= {0, 1, 2, 3}
    fractions = ms.phase_fractions((30, 40), 100.0, supersample=5)
    np.testing.assert_allclose(fractions.sum(axis=0), 1.0)
    composite = fractions[:, :27].sum(axis=(1, 2))
    assert 0.2 < composite[LICOPO4] / composite.sum() < 0.4  # licopo4_fraction 0.3
    assert np.all(fractions[COLLECTOR, -1] == 1.0) and np.all(fractions[COLLECTOR, :27] == 0.0)
    assert ms.particle_active.any() and not ms.particle_active.all()
    assert np.all(np.isin(particle[particle > 0], ms.labels))


# --------------------------------------------------------------------------- the cell


def test_cycler_record_first_charge_and_cycler_table(ds):
    t, i, q, v = (ds[n].values for n in ("record", "cycler_current", "cycler_charge", "cycler_voltage"))
    np.testing.assert_array_equal(ds["cycler_time"].values, t)
    current = DEFAULT.c_rate_per_h * DEFAULT.capacity_mAh * 3.6 / 3600.0
    charging = (t >= 60) & (t < 480)
    np.testing.assert_allclose(i[charging], current)
    np.testing.assert_array_equal(i[~charging], 0.0)
    np.testing.assert_allclose(q, current * np.clip(t - 60, 0, 420), atol=1e-12)
    assert v[0] == pytest.approx(3.0) and 4.5 < v[t == 470][0] < 5.0
    assert np.all(np.diff(v[charging]) >= -1e-9)  # rises on the charge
    table = cycler_table(ds)
    assert table.startswith("time_s,voltage_V,current_A,charge_C\n") and table.count("\n") == 602
    assert state_names(ds) == ["rest"] + ["charge"] * 7 + ["rest"] * 2


# --------------------------------------------------------------------------- the true potential


def test_collector_stays_at_zero(ds):
    collector = ds["phase"].values == COLLECTOR
    assert np.all(ds["potential_true"].values[:, collector] == 0.0)
    assert np.all(ds["potential_true_mid"].values[:, collector] == 0.0)


def test_connected_particles_follow_the_cell_voltage_with_their_response(ds):
    truth = ds["potential_true_mid"].values.astype(np.float64)
    mid = ds["time"].values
    for label, active, tau, v0 in zip(ds["label"].values, ds["particle_active"].values,
                                      ds["particle_response_time_s"].values, ds["particle_v0_V"].values):
        mask = ds["particle"].values == label
        if not active:  # isolated: exactly their start
            np.testing.assert_array_equal(truth[:, mask], truth[:1, mask].repeat(10, axis=0))
            np.testing.assert_allclose(truth[0, mask], v0, atol=1e-6)
            continue
        dv = truth[:, mask].mean(axis=1) - v0
        np.testing.assert_allclose(dv, _lagged_cell_voltage(ds, tau, mid), atol=1e-3)
        # the charge moves them by >= 100 mV; a rest frame after 3 tau sits within 3 mV of the voltage
        assert dv[7] > 0.1
        cell = DEFAULT.particle_coupling * (ds["voltage"].values - ds["cycler_voltage"].values[0])
        assert abs(dv[9] - cell[9]) < 0.003 + 0.2 * np.exp(-90.0 / tau)


def test_per_row_truth_is_the_potential_when_the_tip_passed(ds):
    """Rows of a frame are recorded at their own times: within an active particle in the first
    charge frame the truth follows the row times (down-scan: later rows higher)."""
    k = 1  # a down-scan, the cell voltage rising fast
    assert ds["scan_direction"].values[k] == "down"
    labels = ds["label"].values[ds["particle_active"].values]
    areas = ds["particle_area_nm2"].sel(label=labels).values
    label = int(labels[np.argmax(areas)])
    tau = float(ds["particle_response_time_s"].sel(label=label))
    v0 = float(ds["particle_v0_V"].sel(label=label))
    mask = ds["particle"].values == label
    rows = np.flatnonzero(mask.any(axis=1))
    dy = ds["drift_y_nm"].values[k] / H
    visit = np.clip(rows + dy, 0, N - 1)
    t_visit = ds["frame_start"].values[k] + np.interp(visit, np.arange(N), ds["row_time"].values[k])
    expect = v0 + _lagged_cell_voltage(ds, tau, t_visit)
    got = np.array([ds["potential_true"].values[k][j][mask[j]].mean() for j in rows])
    np.testing.assert_allclose(got, expect, atol=1e-3)
    assert got[-1] - got[0] > 0.005 and np.all(np.diff(got) > 0)


def test_latp_near_active_particles_rises_on_the_first_charge_and_keeps_it(ds):
    truth = ds["potential_true_mid"].values.astype(np.float64)
    latp = ds["phase"].values == LATP
    distance = ndimage.distance_transform_edt(~ds["active_true"].values) * H
    near = latp & (distance <= 20.0)
    mid_far = latp & (distance >= 150.0) & (distance < 250.0)
    rise = truth[:, near].mean(axis=1) - truth[0, near].mean()
    assert rise[0] == 0.0 and 0.03 < rise[7] < DEFAULT.latp_rise_V
    assert np.all(np.diff(rise) >= -1e-6)  # monotone: kept through the rest
    assert rise[9] == pytest.approx(rise[8], abs=1e-6)  # both frames at rest
    far_rise = truth[7, mid_far].mean() - truth[0, mid_far].mean()
    assert 0.1 * rise[7] < far_rise < 0.5 * rise[7]  # decays with the distance to active particles
    # isolated particles' own pixels do not move
    isolated = np.isin(ds["particle"].values, ds["label"].values[~ds["particle_active"].values])
    np.testing.assert_array_equal(truth[-1, isolated], truth[0, isolated])


# --------------------------------------------------------------------------- the KPFM model


def test_measured_particles_active_follow_and_isolated_stay_within_noise(ds):
    voltage = ds["voltage"].values - ds["cycler_voltage"].values[0]
    n_iso = 0
    for label, active in zip(ds["label"].values, ds["particle_active"].values):
        mask = _interior(ds, label)
        if mask.sum() < 100:
            continue
        dv = np.array([_measured_mean(ds, k, mask) - _measured_mean(ds, 0, mask) for k in range(10)])
        if active:
            assert dv[7] > 10 * DEFAULT.noise_V
            assert np.corrcoef(dv, voltage)[0, 1] > 0.95
        else:
            n_iso += 1
            assert np.all(np.abs(dv) < DEFAULT.noise_V)
    assert n_iso >= 3


def test_row_times_run_in_the_scan_direction(ds):
    rt = ds["row_time"].values
    line = DEFAULT.frame_time_s / N
    for k, direction in enumerate(ds["scan_direction"].values):
        steps = np.diff(rt[k])
        if direction == "up":  # bottom row first
            np.testing.assert_allclose(steps, -line)
            assert rt[k][-1] == pytest.approx(0.5 * line)
        else:
            np.testing.assert_allclose(steps, line)
            assert rt[k][0] == pytest.approx(0.5 * line)
        assert 0 < rt[k].min() and rt[k].max() < DEFAULT.frame_time_s
    np.testing.assert_allclose(ds["cell_voltage_row"].values[3][::-1][:2],
                               np.interp(ds["frame_start"].values[3] + rt[3][::-1][:2],
                                         ds["record"].values, ds["cycler_voltage"].values), atol=1e-3)


def test_noise_sd_of_a_flat_region_equals_the_parameter(ds, quiet):
    measured = ds["potential_measured"].values.astype(np.float64)
    residual = measured - quiet["potential_measured"].values - ds["line_offset_V"].values[:, :, None]
    assert residual.std() == pytest.approx(DEFAULT.noise_V, rel=0.01)
    # the flat bottom of the grounded collector, line offsets removed by each row's mean
    flat = measured[:, -10:, 20:-20]
    flat = flat - flat.mean(axis=2, keepdims=True)
    assert flat.std() * np.sqrt(216 / 215) == pytest.approx(DEFAULT.noise_V, rel=0.05)
    difference = measured - ds["potential_measured_backward"].values
    assert difference.std() / np.sqrt(2) == pytest.approx(DEFAULT.noise_V, rel=0.01)
    # the collector reads the tip offset, the PSF tail of the composite above it below 1 mV
    assert np.abs(quiet["potential_measured"].values[:, -10:] - DEFAULT.tip_offset_V).max() < 2e-3


def test_drift_as_given_and_registration_recovers_it(quiet):
    yy, xx = np.mgrid[:N, :N]
    design = np.stack([np.ones(yy.size), yy.ravel(), xx.ravel()], axis=1)

    def level(z):
        coef, *_ = np.linalg.lstsq(design, z.ravel().astype(np.float64), rcond=None)
        return z - (design @ coef).reshape(z.shape)

    topo = quiet["topography_measured"].values
    assert quiet["drift_y_nm"].values[0] == 0.0 and quiet["drift_x_nm"].values[0] == 0.0
    assert np.abs(quiet["drift_y_nm"].values).max() > 2 * H  # a few pixels over the series
    for k in range(1, 10):
        shift = register_translation(level(topo[0]), level(topo[k]), polish=True)
        dy, dx = _drift_px(quiet, k)
        assert shift == pytest.approx((-dy, -dx), abs=0.5 / H)  # content moved by +drift; 0.5 nm
    linear = simulate("composite_cathode", seed=0, drift_jitter_nm=0.0, drift_y_nm=4.0, drift_x_nm=-2.5, **SMALL)
    np.testing.assert_allclose(linear["drift_y_nm"].values, 4.0 * np.arange(4))
    np.testing.assert_allclose(linear["drift_x_nm"].values, -2.5 * np.arange(4))


def test_frame_zero_is_the_truth_blurred_by_the_psf():
    """With pixels fine enough for the core (no supersampling) and no drift, the first frame is
    the static truth convolved with the stated PSF."""
    params = dict(ny=96, nx=96, pixel_nm=2.0, margin_nm=100.0, collector_nm=40.0,
                  particle_radius_min_nm=20.0, particle_radius_max_nm=50.0, pd_radius_min_nm=4.0,
                  pd_radius_max_nm=8.0, particle_gap_nm=4.0, psf_sigma_nm=7.0, psf_tail_sigma_nm=12.0,
                  psf_tail_fraction=0.3, ocv_frames=1, charge_frames=0, rest_frames=0, **QUIET)
    small = simulate("composite_cathode", seed=2, **params)
    assert small.attrs["supersample"] == 1
    kernel = psf_kernel(2.0, 30, 7.0, 0.3, 12.0)
    blurred = ndimage.convolve(small["potential_true"].values[0].astype(np.float64), kernel, mode="reflect")
    measured = -(small["potential_measured"].values[0] - DEFAULT.tip_offset_V)  # bias on the sample: -potential
    inner = (slice(30, 66), slice(30, 66))
    assert np.ptp(blurred[inner]) > 0.05
    np.testing.assert_allclose(measured[inner], blurred[inner], atol=2e-5)


def test_topography_shows_the_phases_plus_a_tilt(quiet):
    z = quiet["topography_measured"].values[0].astype(np.float64)
    phase = quiet["phase"].values
    yy, xx = np.mgrid[:N, :N] * H * 1e-3
    z = z - (DEFAULT.tilt_y_nm_per_um * yy + DEFAULT.tilt_x_nm_per_um * xx)
    eroded = {c: ndimage.binary_erosion(phase == c, iterations=2) for c in (LATP, LICOPO4, COLLECTOR)}
    latp = np.median(z[eroded[LATP]])
    assert np.median(z[eroded[LICOPO4]]) - latp == pytest.approx(DEFAULT.height_licopo4_nm, abs=0.05)
    assert np.median(z[eroded[COLLECTOR]]) - latp == pytest.approx(DEFAULT.height_collector_nm, abs=0.05)


def test_bias_on_the_tip_flips_the_recorded_sign():
    sample = simulate("composite_cathode", seed=3, **SMALL, **QUIET)
    tip = simulate("composite_cathode", seed=3, bias_on_tip=True, **SMALL, **QUIET)
    offset = DEFAULT.tip_offset_V
    np.testing.assert_allclose(tip["potential_measured"].values - offset,
                               -(sample["potential_measured"].values - offset), atol=1e-6)
    assert tip["potential_measured"].attrs["bias_on"] == "tip"
    assert tip.attrs["bias_on"] == "tip" and sample.attrs["bias_on"] == "sample"


# --------------------------------------------------------------------------- frames and files


def test_frames_as_datasets_in_the_spm_reader_model(ds):
    frames = frames_as_datasets(ds)
    assert len(frames) == 10
    start = dt.datetime.fromisoformat(ds.attrs["start_time"])
    for k, frame in enumerate(frames):
        assert set(frame.data_vars) == {"Z_forward", "Z_backward", "KPFM_forward", "KPFM_backward"}
        for name, units in (("Z_forward", "nm"), ("Z_backward", "nm"), ("KPFM_forward", "V"), ("KPFM_backward", "V")):
            assert frame[name].dims == ("y", "x") and frame[name].attrs["units"] == units
        assert frame["y"].attrs["units"] == "nm" and frame["y"].values[0] == 0.0
        np.testing.assert_array_equal(frame["row_time"].values, ds["row_time"].values[k])
        np.testing.assert_array_equal(frame["KPFM_forward"].values, ds["potential_measured"].values[k])
        np.testing.assert_array_equal(frame["KPFM_backward"].values, ds["potential_measured_backward"].values[k])
        np.testing.assert_array_equal(frame["Z_backward"].values, ds["topography_measured_backward"].values[k])
        assert dt.datetime.fromisoformat(frame.attrs["start_time"]) == start + dt.timedelta(seconds=60 * k)
        assert frame.attrs["scan_direction"] == ("up" if k % 2 == 0 else "down")
        assert frame.attrs["scan_range_nm"] == [2560.0, 2560.0]
        assert frame.attrs["acquisition_time_s"] == 60.0
    with pytest.raises(InputError, match="composite_cathode"):
        frames_as_datasets(simulate("licoo2", seed=0, ny=32, nx=32, charge_frames=1, rest1_frames=0,
                                    discharge_frames=0, rest2_frames=0))


def test_zarr_round_trip_keeps_the_frames(tmp_path):
    from ionscope import io as ionio

    small = simulate("composite_cathode", seed=4, first_scan_up=False, **SMALL)
    assert list(small["scan_direction"].values) == ["down", "up", "down", "up"]
    ionio.save(small, tmp_path / "twin.zarr")
    back = ionio.open_dataset(tmp_path / "twin.zarr")
    for name in small.variables:
        np.testing.assert_array_equal(back[name].values, small[name].values, err_msg=name)
    frames = frames_as_datasets(back)
    assert [f.attrs["scan_direction"] for f in frames] == ["down", "up", "down", "up"]
    assert np.array_equal(frames[2]["KPFM_forward"].values, small["potential_measured"].values[2])
    assert io.StringIO(cycler_table(back)).readline().startswith("time_s")


# --------------------------------------------------------------------------- careless input


@pytest.mark.parametrize(
    ("params", "match"),
    [
        ({"noise_V": -0.01}, "noise_V"),
        ({"ny": 8}, "ny"),
        ({"licopo4_fraction": 0.9}, "licopo4_fraction"),
        ({"psf_tail_fraction": 1.5}, "psf_tail_fraction"),
        ({"first_scan_up": "yes"}, "first_scan_up"),
        ({"particle_radius_min_nm": 400.0}, "particle_radius_min_nm"),
        ({"response_min_s": 100.0, "response_max_s": 10.0}, "response_min_s"),
        ({"frame_interval_s": 30.0}, "frame_interval_s"),
        ({"ocv_frames": 0, "charge_frames": 0, "rest_frames": 0}, "at least one frame"),
        ({"drift_y_nm": 100.0}, "margin_nm"),
        ({"collector_nm": 2000.0}, "collector"),
        ({"no_such_thing": 1}, "unknown parameter"),
    ],
)
def test_bad_parameters_raise_config_error(params, match):
    with pytest.raises(ConfigError, match=match):
        simulate("composite_cathode", seed=0, **params)


def test_the_cli_writes_real_sxm_scans_a_cycler_log_and_the_truth(run_cli, tmp_path):
    """`ionscope simulate composite_cathode --out DIR`: the whole chain can start from files."""
    from ionscope import io
    from ionscope.simulate.composite_cathode import frames_as_datasets

    args = ["--param", "ny=64", "--param", "nx=64", "--param", "pixel_nm=10", "--param", "charge_frames=2",
            "--param", "rest_frames=0"]
    result = run_cli("simulate", "composite_cathode", "--seed", "3", "--out", tmp_path / "cell", *args)
    assert result.returncode == 0, result.stderr
    scans = sorted((tmp_path / "cell").glob("frame_*.sxm"))
    truth = io.open_dataset(tmp_path / "cell" / "truth.zarr")
    assert len(scans) == truth.sizes["time"] == 3
    for scan, frame in zip(scans, frames_as_datasets(truth)):
        read = io.open_dataset(scan)
        assert read.attrs["source_format"] == "Nanonis SXM"
        assert read.attrs["scan_direction"] == frame.attrs["scan_direction"]
        assert read.attrs["start_time"] == frame.attrs["start_time"][:19]
        for name in ("KPFM_forward", "KPFM_backward", "Z_forward", "Z_backward"):
            np.testing.assert_allclose(read[name].values, frame[name].values, rtol=1e-6, atol=1e-9)
        assert read["KPFM_forward"].attrs["units"] == "V" and read["Z_forward"].attrs["units"] == "nm"
        np.testing.assert_allclose(read["row_time"].values, frame["row_time"].values, atol=1e-6)
    log = (tmp_path / "cell" / "cycler.csv").read_text().splitlines()
    assert log[0] == "# start_time: " + truth.attrs["start_time"][:19]  # the local wall clock, as the .sxm's
    assert log[1] == "time_s,voltage_V,current_A,charge_C" and len(log) == truth.sizes["record"] + 2
    again = run_cli("simulate", "composite_cathode", "--out", tmp_path / "cell", *args)
    assert again.returncode == 2 and "already exists" in again.stderr
