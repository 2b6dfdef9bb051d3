"""Tests of the operando LiCoO2 twin (ionscope.simulate.licoo2) and the simulate framework."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest

from ionscope.constants import FARADAY
from ionscope.errors import ConfigError, InputError
from ionscope.simulate import TWINS, cycler_table, simulate, state_names
from ionscope.simulate.licoo2 import (
    FRONT_LEVEL,
    LiCoO2Params,
    diffusion_operator,
    domain_boundaries,
    face_flux,
    licoo2_ocv,
    SupplyPath,
    voronoi_domains,
)

DEFAULT = LiCoO2Params()
#: Coulombs per pixel at x = 1, computed here from the stated constants, not read back.
COULOMB_PER_PIXEL = FARADAY * 5.17e4 * (2.5e-9) ** 2 * 100e-9
SMALL = dict(ny=32, nx=32, charge_frames=4, rest1_frames=2, discharge_frames=4, rest2_frames=2)

# frame indices of the default protocol: 60 charge, 20 rest, 57 discharge, 20 rest
CHARGE_END, REST1 = 59, slice(60, 80)
DISCHARGE_START, REST2 = 80, slice(137, 157)


@pytest.fixture(scope="module")
def ds():
    return simulate("licoo2", seed=0)


@pytest.fixture(scope="module")
def x_true(ds):
    return ds["li_fraction_true"].values.astype(np.float64)


@pytest.fixture(scope="module")
def x_obs(ds):
    return ds["li_fraction"].values.astype(np.float64)


@pytest.fixture(scope="module")
def bulk(ds):
    return ds["region"].values == 0


def _row_means(frame: np.ndarray, mask: np.ndarray, rows: slice) -> float:
    return float(frame[rows][mask[rows]].mean())


def _boundary_contrast(frame: np.ndarray, boundary: np.ndarray, bulk: np.ndarray) -> float:
    """RMS over depth rows of (mean on boundary pixels - mean on interior pixels), bulk only."""
    diffs = []
    for j in range(frame.shape[0]):
        on, off = boundary[j] & bulk[j], ~boundary[j] & bulk[j]
        if on.sum() >= 3 and off.sum() >= 3:
            diffs.append(frame[j][on].mean() - frame[j][off].mean())
    return float(np.sqrt(np.mean(np.square(diffs))))


# --------------------------------------------------------------------------- schema


def test_default_run_shape_dtypes_coords_and_units(ds):
    assert dict(ds.sizes) == {"time": 157, "y": 64, "x": 64, "record": 943}
    np.testing.assert_allclose(ds["time"].values, (np.arange(157) + 0.5) * 60.0)
    np.testing.assert_allclose(ds["y"].values, np.arange(64) * 2.5)
    np.testing.assert_allclose(ds["x"].values, np.arange(64) * 2.5)
    np.testing.assert_allclose(ds["record"].values, np.arange(943) * 10.0)
    assert ds["time"].attrs["units"] == "s" and ds["record"].attrs["units"] == "s"
    assert ds["y"].attrs["units"] == "nm" and ds["x"].attrs["units"] == "nm"
    expected = {
        "li_fraction": (("time", "y", "x"), np.float32, "1"),
        "li_fraction_true": (("time", "y", "x"), np.float32, "1"),
        "flux_y_true": (("time", "y", "x"), np.float32, "nm/s"),
        "flux_x_true": (("time", "y", "x"), np.float32, "nm/s"),
        "front_position_true": (("time", "x"), np.float64, "nm"),
        "domain": (("y", "x"), np.int32, "1"),
        "boundary": (("y", "x"), np.uint8, "1"),
        "region": (("y", "x"), np.int8, "1"),
        "voltage": (("time",), np.float64, "V"),
        "current": (("time",), np.float64, "A"),
        "charge": (("time",), np.float64, "C"),
        "state": (("time",), np.int8, "1"),
        "cycler_voltage": (("record",), np.float64, "V"),
        "cycler_current": (("record",), np.float64, "A"),
        "cycler_charge": (("record",), np.float64, "C"),
    }
    assert set(ds.data_vars) == set(expected)
    for name, (dims, dtype, units) in expected.items():
        assert ds[name].dims == dims, name
        assert ds[name].dtype == dtype, name
        assert ds[name].attrs["units"] == units, name
    assert ds["state"].attrs["flag_values"] == [0, 1, 2]
    assert ds["state"].attrs["flag_meanings"] == "rest charge discharge"
    # 12 Voronoi domains, boundaries a minority of pixels
    assert set(np.unique(ds["domain"].values)) <= set(range(12))
    assert len(np.unique(ds["domain"].values)) >= 10
    assert 0.05 < ds["boundary"].values.mean() < 0.3


def test_attrs_parameters_and_provenance(ds):
    assert ds.attrs["primary"] == "li_fraction"
    assert ds.attrs["twin"] == "licoo2"
    assert ds.attrs["seed"] == 0
    assert "div(D grad theta)" in ds.attrs["model"]
    params = json.loads(ds.attrs["parameters"])
    assert params["ny"] == 64 and params["dose"] == 200.0 and params["pixel_nm"] == 2.5
    assert set(params) == {f for f in LiCoO2Params.__dataclass_fields__}
    steps = json.loads(ds.attrs["provenance"])
    assert [s["step"] for s in steps] == ["ionscope.simulate.licoo2"]
    assert steps[0]["params"] == {**params, "seed": 0}
    assert json.loads(ds["li_fraction"].attrs["provenance"])[0]["params"]["seed"] == 0


def test_state_sequence_and_state_names(ds):
    states = ds["state"].values
    expected = np.repeat([1, 0, 2, 0], [60, 20, 57, 20])
    np.testing.assert_array_equal(states, expected)
    names = state_names(ds)
    assert names[:60] == ["charge"] * 60 and names[60:80] == ["rest"] * 20
    assert names[80:137] == ["discharge"] * 57 and names[137:] == ["rest"] * 20


# --------------------------------------------------------------------------- determinism


def test_same_seed_identical_different_seed_different(ds):
    again = simulate("licoo2", seed=0)
    for name in ds.data_vars:
        np.testing.assert_array_equal(again[name].values, ds[name].values, err_msg=name)
    other = simulate("licoo2", seed=1)
    assert not np.array_equal(other["domain"].values, ds["domain"].values)
    assert not np.array_equal(other["li_fraction"].values, ds["li_fraction"].values)


def test_noise_stream_independent_of_structure():
    noisy = simulate("licoo2", seed=3, dose=50.0, **SMALL)
    clean = simulate("licoo2", seed=3, dose=None, **SMALL)
    np.testing.assert_array_equal(
        noisy["li_fraction_true"].values, clean["li_fraction_true"].values
    )
    np.testing.assert_array_equal(clean["li_fraction"].values, clean["li_fraction_true"].values)
    assert not np.array_equal(noisy["li_fraction"].values, noisy["li_fraction_true"].values)


# --------------------------------------------------------------------------- conservation


def test_charge_equals_li_removed_at_every_frame(ds, x_true):
    region = ds["region"].values
    x0 = np.where(region == 1, DEFAULT.layer_site_fraction, 1.0) * DEFAULT.initial_occupancy
    from_maps = COULOMB_PER_PIXEL * (x0.sum() - x_true.sum(axis=(1, 2)))
    capacity = COULOMB_PER_PIXEL * x0.sum()
    # float32 storage of the maps limits the match to ~1e-7 of the film's capacity
    np.testing.assert_allclose(ds["charge"].values, from_maps, rtol=0, atol=1e-6 * capacity)
    at_frames = ds["cycler_charge"].sel(record=ds["time"].values).values
    np.testing.assert_allclose(ds["charge"].values, at_frames, rtol=0, atol=0)
    assert ds["charge"].values[CHARGE_END] > 0.25 * capacity  # ~30 % of the Li was removed


def test_cycler_charge_is_integral_of_current(ds):
    t = ds["record"].values
    current = ds["cycler_current"].values
    q = np.concatenate([[0.0], np.cumsum(current[1:] * np.diff(t))])
    scale = np.abs(ds["cycler_charge"].values).max()
    np.testing.assert_allclose(ds["cycler_charge"].values, q, rtol=0, atol=1e-12 * scale)
    np.testing.assert_allclose(
        ds["current"].values, ds["cycler_current"].sel(record=ds["time"].values).values
    )
    np.testing.assert_allclose(
        ds["voltage"].values, ds["cycler_voltage"].sel(record=ds["time"].values).values
    )


def test_current_sign_follows_state(ds):
    state, current = ds["state"].values, ds["current"].values
    assert np.all(current[state == 1] > 0)
    assert np.all(current[state == 2] < 0)
    assert np.all(current[state == 0] == 0)
    # galvanostatic at 0.3 C of the film's capacity during the whole charge
    capacity = COULOMB_PER_PIXEL * (
        np.where(ds["region"].values == 1, DEFAULT.layer_site_fraction, 1.0).sum()
    )
    np.testing.assert_allclose(current[state == 1], 0.3 * capacity / 3600.0, rtol=1e-12)
    # voltage: rises on charge, carries the IR drop, relaxes at rest
    v = ds["voltage"].values
    assert 3.85 < v[0] < 4.0 and v[CHARGE_END] > v[0] + 0.3
    assert np.all(np.diff(v[REST1]) <= 1e-12) and v[REST1][0] < v[CHARGE_END] - 0.05
    log_v, log_i = ds["cycler_voltage"].values, ds["cycler_current"].values
    assert log_i[0] == 0 and abs(log_v[0] - licoo2_ocv(1.0)) < 1e-12


# --------------------------------------------------------------------------- physics


def test_li_leaves_from_the_electrolyte_side_on_charge(ds, x_obs, bulk):
    frame = x_obs[CHARGE_END]
    near_electrolyte = _row_means(frame, bulk, slice(10, 16))
    near_collector = _row_means(frame, bulk, slice(58, 64))
    assert near_collector - near_electrolyte > 0.15
    # before charging the film was uniform
    assert abs(_row_means(x_obs[0], bulk, slice(58, 64)) - _row_means(x_obs[0], bulk,
                                                                        slice(10, 16))) < 0.03


def test_li_returns_first_at_the_collector_side_on_discharge(x_obs, bulk):
    before = x_obs[DISCHARGE_START - 1]
    early = x_obs[DISCHARGE_START + 8]
    gain_collector = _row_means(early - before, bulk, slice(56, 64))
    gain_electrolyte = _row_means(early - before, bulk, slice(10, 18))
    assert gain_collector > 0.06
    assert gain_collector > 3 * max(gain_electrolyte, 0.0) + 0.01


def test_li_moves_in_plane_along_domain_boundaries(ds, x_true, x_obs, bulk):
    boundary = ds["boundary"].values.astype(bool)
    mid = 30
    truth = _boundary_contrast(x_true[mid], boundary, bulk)
    # a boundary-sized mask in the wrong place sees much less contrast
    control = np.mean(
        [_boundary_contrast(x_true[mid], np.roll(boundary, s, (0, 1)), bulk)
         for s in [(0, 16), (0, 32), (16, 0), (8, 8)]]
    )
    assert truth > 0.008 and truth > 1.5 * control
    # in the observed maps (11 mid-charge frames averaged) it stands out of the noise floor
    window = slice(mid - 5, mid + 6)
    observed = _boundary_contrast(x_obs[window].mean(axis=0), boundary, bulk)
    noise = _boundary_contrast((x_obs - x_true)[window].mean(axis=0), boundary, bulk)
    assert observed > 1.6 * noise


def test_field_keeps_relaxing_at_rest(x_true, bulk):
    for rest, change in ((REST1, 0.15), (REST2, 0.025)):
        frames = x_true[rest]
        assert np.abs(frames[-1] - frames[0]).max() > change
        assert np.abs(frames[5] - frames[4]).max() > 1e-3
        variance = frames[:, bulk].var(axis=1)
        assert variance[-1] < 0.5 * variance[0]
        assert np.all(np.diff(variance) < 0)
        # no current at rest: the Li content does not change
        totals = frames.sum(axis=(1, 2))
        np.testing.assert_allclose(totals, totals[0], rtol=1e-6)


def test_interfacial_li_poor_layer_at_frame_zero(ds, x_obs):
    region = ds["region"].values
    frame0 = x_obs[0]
    assert frame0[region == 1].mean() < 0.5
    assert frame0[region == 0].mean() > 0.95
    thickness_mask = region.sum(axis=0).mean() * 2.5
    thickness_map = (frame0 < 0.7).sum(axis=0).mean() * 2.5
    assert 15.0 <= thickness_mask <= 25.0
    assert 15.0 <= thickness_map <= 25.0
    assert np.all(region[:6] == 1) and np.all(region[12:] == 0)  # at the electrolyte side
    # it stays Li-poor throughout
    x_true = ds["li_fraction_true"].values
    assert np.all(x_true[:, region == 1].mean(axis=1) < x_true[:, region == 0].mean(axis=1) - 0.2)


def test_noise_follows_poisson_statistics(x_obs, x_true):
    resid = x_obs - x_true
    assert abs(resid.mean()) < 1e-3
    bins = np.array([0.3, 0.45, 0.6, 0.75, 0.9, 1.01])
    idx = np.digitize(x_true, bins)
    for k in range(1, len(bins)):
        sel = idx == k
        if sel.sum() < 5000:
            continue
        ratio = resid[sel].var() / (x_true[sel].mean() / 200.0)
        assert 0.95 < ratio < 1.05, (bins[k - 1], ratio)
    # observed values are counts / dose
    counts = x_obs * 200.0
    np.testing.assert_allclose(counts, np.round(counts), atol=1e-3)


def test_lower_dose_means_more_noise():
    lo = simulate("licoo2", seed=2, dose=20.0, **SMALL)
    hi = simulate("licoo2", seed=2, dose=2000.0, **SMALL)
    s_lo = float((lo["li_fraction"] - lo["li_fraction_true"]).std())
    s_hi = float((hi["li_fraction"] - hi["li_fraction_true"]).std())
    assert 7.0 < s_lo / s_hi < 13.0  # sqrt(100) = 10


# --------------------------------------------------------------------------- kernels


def test_diffusion_operator_conserves_and_is_symmetric():
    rng = np.random.default_rng(0)
    d = rng.uniform(0.5, 50.0, size=(7, 9))
    a = diffusion_operator(d, 2.5)
    assert abs(a - a.T).max() == 0
    np.testing.assert_allclose(np.asarray(a.sum(axis=0)).ravel(), 0.0, atol=1e-12)
    theta = rng.uniform(size=63)
    assert abs((a @ theta).sum()) < 1e-12
    # uniform D: the face between two pixels carries D / h^2
    a1 = diffusion_operator(np.full((3, 3), 10.0), 2.0)
    assert a1[0, 1] == pytest.approx(2.5) and a1[4, 4] == pytest.approx(-10.0)
    # harmonic mean across a contrast
    a2 = diffusion_operator(np.array([[1.0, 40.0]]), 1.0)
    assert a2[0, 1] == pytest.approx(2 * 40.0 / 41.0)


def test_domains_and_boundaries_kernels():
    labels = voronoi_domains((40, 50), 7, np.random.default_rng(4))
    assert labels.shape == (40, 50) and labels.dtype == np.int32
    assert labels.min() >= 0 and labels.max() <= 6
    mask = domain_boundaries(labels)
    edge = (labels[:, 1:] != labels[:, :-1])
    assert np.all(mask[:, 1:][edge]) and np.all(mask[:, :-1][edge])
    assert not mask[labels == np.roll(labels, 1, 0)].all()
    two = np.zeros((4, 4), int)
    two[:, 2:] = 1
    np.testing.assert_array_equal(domain_boundaries(two)[0], [False, True, True, False])


def test_ocv_curve_values():
    np.testing.assert_allclose(licoo2_ocv([1.0, 0.75, 0.5]), [3.9, 3.975, 4.2])
    assert np.all(np.diff(licoo2_ocv(np.linspace(0, 1, 11))) < 0)


# --------------------------------------------------------------------------- framework


def test_progress_is_called_per_frame():
    calls = []
    out = simulate("licoo2", seed=0, progress=lambda d, t: calls.append((d, t)), **SMALL)
    n = out.sizes["time"]
    assert n == 12 and calls == [(k, n) for k in range(1, n + 1)]


def test_cycler_table_csv():
    small = simulate("licoo2", seed=0, **SMALL)
    text = cycler_table(small)
    lines = text.splitlines()
    assert lines[0] == "time_s,voltage_V,current_A,charge_C"
    assert len(lines) == 1 + small.sizes["record"]
    table = np.loadtxt(io.StringIO(text), delimiter=",", skiprows=1)
    np.testing.assert_allclose(table[:, 0], small["record"].values)
    np.testing.assert_allclose(table[:, 1], small["cycler_voltage"].values, rtol=1e-9)
    np.testing.assert_allclose(table[:, 2], small["cycler_current"].values, rtol=1e-9)
    np.testing.assert_allclose(table[:, 3], small["cycler_charge"].values, rtol=1e-9, atol=1e-30)


def test_unknown_twin_raises_input_error_listing_names():
    assert "licoo2" in TWINS
    with pytest.raises(InputError, match="licoo2"):
        simulate("licoo3")


@pytest.mark.parametrize(
    "params, match",
    [
        ({"ny": 0}, "'ny'.*integer in \\[8, 2048\\]"),
        ({"nx": 32.5}, "'nx'"),
        ({"dose": -1.0}, "'dose'.*or None"),
        ({"c_rate_per_h": "fast"}, "'c_rate_per_h'"),
        ({"d_boundary_nm2_s": float("nan")}, "'d_boundary_nm2_s'"),
        ({"layer_site_fraction": 1.5}, "'layer_site_fraction'"),
        ({"steps_per_frame": 5}, "even"),
        ({"charge_frames": 0, "rest1_frames": 0, "discharge_frames": 0, "rest2_frames": 0},
         "at least one frame"),
        ({"layer_thickness_nm": 90.0}, "half the film depth"),
        ({"doze": 100}, "unknown parameter.*'doze'.*dose"),
        ({"n_domains": True}, "'n_domains'"),
    ],
)
def test_bad_parameters_raise_config_error(params, match):
    with pytest.raises(ConfigError, match=match):
        simulate("licoo2", **params)


def test_bad_seed_raises_config_error():
    with pytest.raises(ConfigError, match="seed"):
        simulate("licoo2", seed=-1)
    with pytest.raises(ConfigError, match="seed"):
        simulate("licoo2", seed=1.5)


# --------------------------------------------------------------------------- the true motion


def test_face_flux_divergence_is_the_diffusion_operator():
    rng = np.random.default_rng(4)
    d = rng.uniform(0.5, 40.0, (7, 5))
    theta = rng.random((7, 5))
    fy, fx = face_flux(theta, d, 2.5)
    div = (np.diff(fy, axis=0) + np.diff(fx, axis=1)) / 2.5
    np.testing.assert_allclose(-div.ravel(), diffusion_operator(d, 2.5) @ theta.ravel(), rtol=1e-10, atol=1e-12)
    assert np.all(fy[[0, -1]] == 0) and np.all(fx[:, [0, -1]] == 0)  # no flux through the outer faces


def test_the_supply_path_carries_the_source_from_the_electrolyte_face_along_the_fast_paths():
    d = np.ones((6, 5))
    d[:, 3] = 40.0  # a fast column (a domain boundary)
    rate = np.zeros((6, 5))
    rate[4, 1], rate[0, 2] = 0.02, -0.01  # inserted deep in column 1, removed at the top of column 2
    fy, fx = SupplyPath(d, 2.5).flux(rate)
    np.testing.assert_allclose(-(np.diff(fy, axis=0) + np.diff(fx, axis=1)) / 2.5, rate, atol=1e-12)
    assert np.all(fy[-1] == 0) and np.all(fx[:, [0, -1]] == 0)  # only the electrolyte face lets Li through
    np.testing.assert_allclose(fy[0].sum(), rate.sum() * 2.5, rtol=1e-10)  # in through the face = the net source
    # the inserted Li comes in mostly down the fast column and then sideways, not straight down column 1
    assert fy[0, 3] > fy[0, 1] > 0 and np.abs(fx[4]).sum() > 0


def test_true_flux_points_to_the_electrolyte_on_charge_away_on_discharge_and_does_not_stop_at_rest(ds):
    fy, fx = ds["flux_y_true"].values.astype(np.float64), ds["flux_x_true"].values.astype(np.float64)
    bulk_rows = slice(10, 60)
    assert fy[:60, bulk_rows].mean() < 0  # Li leaves towards the electrolyte (y = 0) on charge
    assert fy[DISCHARGE_START:137, bulk_rows].mean() > 0  # and is carried back in on discharge
    mag = np.hypot(fy, fx).mean(axis=(1, 2))
    assert mag[REST1].mean() > 0.2 * mag[:60].mean()  # relaxation at open circuit
    assert mag[REST2].min() > 0
    # in-plane transport (along the domain boundaries) is a sizeable part of it
    inplane = np.abs(fx).sum() / (np.abs(fx).sum() + np.abs(fy).sum())
    assert 0.1 < inplane < 0.5


def test_true_front_advances_on_charge_keeps_moving_at_rest_and_returns_on_discharge(ds, x_true):
    front = np.nanmean(ds["front_position_true"].values, axis=1)
    assert ds["front_position_true"].attrs["level"] == FRONT_LEVEL
    assert front[CHARGE_END] > front[0] + 40  # nm deeper after the charge
    assert front[REST1][-1] > front[REST1][0] + 0.5  # relaxation moves it at open circuit
    assert front[DISCHARGE_START + 50] < front[DISCHARGE_START] - 20
    # the recorded depth is where the true map crosses the level (linear interpolation)
    k, col = 30, 17
    j = int(np.floor(ds["front_position_true"].values[k, col] / 2.5))
    assert x_true[k, j, col] < FRONT_LEVEL <= x_true[k, j + 1, col]
