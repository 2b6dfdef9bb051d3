"""Tests of ionscope.transport: the Li flux of the continuity equation, optical flow, fronts, and
the motion workflow, against analytic cases and the licoo2 twin's recorded motion."""

from __future__ import annotations

import dask.array as dsa
import numpy as np
import pytest
import xarray as xr
from daskcount import CountingScheduler

from ionscope.data import signal
from ionscope.errors import ConfigError, DimensionError, InputError, NonFiniteError
from ionscope.simulate import simulate
from ionscope.transport import (
    divergence,
    divergence_free_part,
    flux_noise_sd,
    front_depth,
    front_roughness,
    front_velocity,
    li_motion,
    poisson_flux,
    rate_of_change,
    velocity_at_frames,
)
from ionscope.transport.continuity import _faces, _kinds
from ionscope.transport.truth import direction_error_deg, twin_motion_by_state

H = (2.0, 3.0)  # anisotropic pixels catch a swapped axis


def _explicit_laplacian(phi: np.ndarray, side: str | None, h=H) -> np.ndarray:
    """5-point Laplacian with ghost cells (phi = 0 on the electrolyte face, mirror elsewhere),
    written out independently of the transforms."""
    p = np.pad(phi, 1, mode="edge")  # Neumann: ghost = mirror
    if side == "top":
        p[0, 1:-1] = -phi[0]
    elif side == "bottom":
        p[-1, 1:-1] = -phi[-1]
    elif side == "left":
        p[1:-1, 0] = -phi[:, 0]
    elif side == "right":
        p[1:-1, -1] = -phi[:, -1]
    c = p[1:-1, 1:-1]
    return (p[:-2, 1:-1] - 2 * c + p[2:, 1:-1]) / h[0] ** 2 + (p[1:-1, :-2] - 2 * c + p[1:-1, 2:]) / h[1] ** 2


@pytest.mark.parametrize("side", ["top", "bottom", "left", "right"])
def test_poisson_flux_is_minus_the_gradient_of_the_potential_whose_laplacian_is_the_rate(side):
    rng = np.random.default_rng(1)
    phi = rng.standard_normal((12, 9))
    rate = _explicit_laplacian(phi, side)
    jy, jx = poisson_flux(rate, H, side)
    ky, kx = _kinds(side)
    fy, fx = _faces(phi, 0, H[0], ky), _faces(phi, 1, H[1], kx)
    np.testing.assert_allclose(jy, 0.5 * (fy[1:] + fy[:-1]), atol=1e-10)
    np.testing.assert_allclose(jx, 0.5 * (fx[:, 1:] + fx[:, :-1]), atol=1e-10)
    # continuity on the faces, and no flux through the three faces that are not the electrolyte's
    np.testing.assert_allclose(-divergence(fy, fx, H), rate, atol=1e-10)
    closed = {"top": [fy[-1], fx[:, 0], fx[:, -1]], "bottom": [fy[0], fx[:, 0], fx[:, -1]],
              "left": [fx[:, -1], fy[0], fy[-1]], "right": [fx[:, 0], fy[0], fy[-1]]}[side]
    assert all(np.all(f == 0) for f in closed)


def test_uniform_delithiation_leaves_through_the_electrolyte_face_with_the_whole_loss():
    rate = np.full((3, 10, 6), -2e-3)  # x per s, three frames
    jy, jx = poisson_flux(rate, (2.5, 2.5), "top")
    depth = 10 * 2.5
    # the flux at depth y is the loss below it: -2e-3 * (L - y), at the pixel centres
    np.testing.assert_allclose(jy[0, :, 0], -2e-3 * (depth - (np.arange(10) + 0.5) * 2.5), rtol=1e-9)
    assert np.abs(jx).max() < 1e-12


def test_divergence_free_part_keeps_a_circulation_and_drops_a_gradient():
    ny, nx = 24, 24
    y, x = np.mgrid[:ny, :nx] + 0.5
    psi = np.sin(np.pi * y / ny) ** 2 * np.sin(np.pi * x / nx) ** 2  # stream function, zero flux at the walls
    vy, vx = -np.gradient(psi, axis=1), np.gradient(psi, axis=0)
    gy, gx = divergence_free_part(vy, vx, (1.0, 1.0))
    assert np.hypot(gy - vy, gx - vx).max() < 0.05 * np.hypot(vy, vx).max()
    rate = np.cos(np.pi * y / ny)  # the flux of a rate is curl-free
    fy, fx = poisson_flux(rate - rate.mean(), (1.0, 1.0), None)
    dy, dx = divergence_free_part(fy, fx, (1.0, 1.0))
    assert np.hypot(dy, dx)[2:-2, 2:-2].max() < 0.05 * np.hypot(fy, fx).max()


def test_flux_noise_matches_monte_carlo():
    rng = np.random.default_rng(3)
    noise = rng.normal(0.0, 0.01, (400, 10, 8))
    jy, jx = poisson_flux(noise, H, "left")
    sd_y, sd_x = flux_noise_sd(0.01, (10, 8), H, "left")
    # the centre flux averages two faces, so its noise is at most the face noise (and not far below)
    assert 0.6 * sd_y < jy.std() <= 1.02 * sd_y
    assert 0.6 * sd_x < jx.std() <= 1.02 * sd_x


def test_rate_of_change_is_exact_on_lines_and_never_mixes_states():
    t = np.arange(12) * 30.0
    runs = np.repeat([0, 1], 6)
    x = np.where(runs == 0, 1.0 - 1e-3 * t, 1.0 - 1e-3 * 150.0 + 5e-4 * (t - 150.0))  # a kink at the state change
    r = rate_of_change(x[:, None], t, runs, 5)[:, 0]
    np.testing.assert_allclose(r, np.where(runs == 0, -1e-3, 5e-4), rtol=1e-9)
    lone = rate_of_change(np.array([0.0, 1.0, 3.0]), np.array([0.0, 1.0, 2.0]), np.array([0, 1, 2]), 3)
    np.testing.assert_allclose(lone, [1.0, 1.5, 2.0])  # a lone frame borrows its neighbours


def _moving_front(v_nm_s=0.04, tilt=0.0, n=9, ny=40, nx=24, h=2.0, dt=60.0, wobble=0.0):
    t = np.arange(n) * dt
    y = np.arange(ny) * h
    xs = np.arange(nx) * h
    pos = 20.0 + v_nm_s * t[:, None] + tilt * xs[None, :] + wobble * np.sin(2 * np.pi * xs / (nx * h))[None, :]
    x = 0.55 + 0.4 * np.tanh((y[None, :, None] - pos[:, None, :]) / 5.0)
    return signal(x, ("time", "y", "x"), name="li", units="1", coords={"time": t, "y": h, "x": h})


def test_front_of_a_translating_tilted_front_moves_at_the_normal_velocity():
    da = _moving_front(tilt=0.5)
    x = da.values
    d = front_depth(x, 0.55, "top", 2.0)
    v = front_velocity(d, da["time"].values, np.zeros(9, int), 5, 2.0)
    # depth increases at 0.04 nm/s; the front's normal makes atan(0.5) with the depth axis
    np.testing.assert_allclose(np.nanmean(v[:, 2:-2]), 0.04 / np.sqrt(1 + 0.25), rtol=0.02)
    # the summary's front velocity is the advance of the mean depth, not the normal velocity
    _, summary = li_motion(da, level=0.55)
    assert summary["states"]["all"]["front_velocity_nm_per_s"] == pytest.approx(0.04, rel=0.02)
    # the same cell with its electrolyte at the bottom, left or right has the same front
    np.testing.assert_allclose(front_depth(x[:, ::-1], 0.55, "bottom", 2.0), d)
    np.testing.assert_allclose(front_depth(np.swapaxes(x, 1, 2), 0.55, "left", 2.0), d)
    np.testing.assert_allclose(front_depth(np.swapaxes(x, 1, 2)[:, :, ::-1], 0.55, "right", 2.0), d)


def test_front_roughness_of_a_sine_front_is_its_rms():
    da = _moving_front(wobble=3.0, nx=32)
    d = front_depth(da.values, 0.55, "top", 2.0)
    np.testing.assert_allclose(front_roughness(d), 3.0 / np.sqrt(2), rtol=0.05)


def test_flow_velocity_of_a_translating_texture():
    rng = np.random.default_rng(0)
    from scipy import ndimage

    base = ndimage.gaussian_filter(rng.standard_normal((48, 48)), 2.5)
    frames = np.stack([ndimage.shift(base, (0.8 * k, -0.4 * k), mode="wrap") for k in range(3)])
    v = velocity_at_frames(frames, np.array([0.0, 20.0, 40.0]), (2.0, 2.0))
    inner = (slice(None), slice(8, -8), slice(8, -8))
    np.testing.assert_allclose(np.median(v[0][inner]), 0.8 * 2.0 / 20.0, rtol=0.05)
    np.testing.assert_allclose(np.median(v[1][inner]), -0.4 * 2.0 / 20.0, rtol=0.05)


# --------------------------------------------------------------------------- the workflow on the twin


TWIN = dict(ny=32, nx=32, pixel_nm=5.0, frame_time_s=120.0, charge_frames=30, rest1_frames=10,
            discharge_frames=28, rest2_frames=10)


@pytest.fixture(scope="module")
def twin():
    return simulate("licoo2", seed=0, dose=None, **TWIN)


@pytest.fixture(scope="module")
def motion(twin):
    series = twin["li_fraction_true"].assign_coords(state=twin["state"])
    return li_motion(series, level=twin["front_position_true"].attrs["level"])


def test_direction_error_of_rotated_fields():
    ty, tx = np.ones((2, 4, 4)), np.zeros((2, 4, 4))
    np.testing.assert_allclose(direction_error_deg(ty, tx, tx, ty), 90.0)
    np.testing.assert_allclose(direction_error_deg(ty, tx, -ty, tx), 180.0)


def test_front_velocity_per_state_matches_the_twin(twin, motion):
    _, summary = motion
    truth = twin_motion_by_state(twin)
    for name in ("charge", "rest", "discharge"):
        got = summary["states"][name]["front_velocity_nm_per_s"]
        assert got == pytest.approx(truth[name]["front_velocity_nm_per_s"], rel=0.1), name
    assert truth["rest"]["front_velocity_nm_per_s"] > 0  # the front keeps advancing at rest (relaxation)


def test_flux_direction_and_motion_at_rest_match_the_twin(twin, motion):
    ds, summary = motion
    angle = direction_error_deg(twin["flux_y_true"].values, twin["flux_x_true"].values, ds["flux_y"].values,
                                ds["flux_x"].values)
    assert np.median(angle) < 20
    truth = twin_motion_by_state(twin)
    rest = summary["states"]["rest"]["mean_flux_nm_per_s"]
    assert rest == pytest.approx(truth["rest"]["mean_flux_nm_per_s"], rel=0.35)  # not zero: the film relaxes
    assert rest > 0.1 * summary["states"]["charge"]["mean_flux_nm_per_s"]


def test_minimum_norm_in_plane_fraction_is_a_lower_bound_of_the_twins(twin, motion):
    _, summary = motion
    truth = twin_motion_by_state(twin)
    for name in ("charge", "rest", "discharge"):
        assert 0 <= summary["states"][name]["in_plane_fraction"] < truth[name]["in_plane_fraction"], name


def test_outputs_units_and_dims(motion, twin):
    ds, summary = motion
    for name in ("flux_y", "flux_x", "velocity_y", "velocity_x"):
        assert ds[name].dims == ("time", "y", "x") and ds[name].attrs["units"] == "nm/s"
    assert ds["front_position_nm"].dims == ("time", "along") and ds["front_position_nm"].attrs["units"] == "nm"
    np.testing.assert_allclose(ds["front_position_nm"].values, twin["front_position_true"].values, atol=1e-3)
    assert list(ds["flux_magnitude_by_state"]["cell_state"].values) == ["rest", "charge", "discharge"]
    assert set(summary["states"]) == {"rest", "charge", "discharge"}
    assert summary["noise"]["map_sd"] < 1e-3  # noiseless series


def test_lazy_series_stays_lazy_and_gives_the_numpy_result():
    da = _moving_front()
    lazy = da.copy(data=dsa.from_array(da.values, chunks=(3, -1, -1)))
    import dask

    counter = CountingScheduler(max_computes=2)  # the first frame (level, value check), then the statistics
    with dask.config.set(scheduler=counter):
        ds, summary = li_motion(lazy, level=0.55)
    assert ds["flux_y"].chunks is not None  # the fields are still lazy
    ref, ref_summary = li_motion(da, level=0.55)
    np.testing.assert_allclose(ds["flux_y"].values, ref["flux_y"].values, rtol=1e-6, atol=1e-12)
    for key, value in ref_summary["states"]["all"].items():
        got = summary["states"]["all"][key]
        assert got == value if value is None else got == pytest.approx(value, rel=1e-6), key


def _series(values, dims=("time", "y", "x"), **kw):
    coords = {"time": 60.0, "y": 2.0, "x": 2.0}
    return signal(values, dims, name="li", units=kw.pop("units", "1"), coords={d: coords[d] for d in dims})


@pytest.mark.parametrize("make, error, match", [
    (lambda: _series(np.ones((8, 8)), ("y", "x")), DimensionError, "no 'time'"),
    (lambda: _series(np.ones((1, 8, 8))), InputError, "at least two frames"),
    (lambda: _series(np.ones((3, 8, 8)), units="V"), InputError, "not a Li fraction"),
    (lambda: _series(np.full((3, 8, 8), 7.0)), InputError, "not a Li fraction"),
    (lambda: _series(np.ones((3, 2, 8))), DimensionError, "--electrolyte top"),
    (lambda: _series(np.where(np.arange(3 * 64).reshape(3, 8, 8) == 5, np.nan, 0.5)), NonFiniteError, "NaN"),
    (lambda: xr.DataArray(np.ones((3, 8, 8)), dims=("time", "y", "x")), InputError, "no time coordinate"),
])
def test_careless_series_are_refused(make, error, match):
    with pytest.raises(error, match=match):
        li_motion(make())


@pytest.mark.parametrize("kw", [{"method": "bogus"}, {"electrolyte": "front"}, {"window": 4}, {"window": 1},
                                {"level": float("nan")}])
def test_bad_options_are_config_errors(kw):
    with pytest.raises(ConfigError):
        li_motion(_series(np.ones((3, 8, 8))), **kw)
