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


# --------------------------------------------------------------------------- mobility-aware (Fickian) flux

from ionscope.simulate.licoo2 import diffusion_operator, domain_boundaries, voronoi_domains  # noqa: E402
from ionscope.transport.mobility import MobilityFlux, fickian_rate, fit_two_phase_mobility, two_phase_mobility  # noqa: E402


def _harm(a, b):
    return 2 * a * b / (a + b)


@pytest.mark.parametrize("side", ["top", "bottom", "left", "right"])
def test_fickian_flux_recovers_a_manufactured_potential_and_mobility(side):
    """Choose D and phi (phi = 0 on the electrolyte face), write the rate div(D grad phi) out by
    hand, and get back the face flux -D grad phi."""
    rng = np.random.default_rng(4)
    d = np.exp(rng.normal(0.0, 1.0, (11, 9)))  # mobility over a factor ~50
    phi = rng.standard_normal((11, 9))
    hy, hx = H
    fy, fx = np.zeros((12, 9)), np.zeros((11, 10))
    fy[1:-1] = -_harm(d[:-1], d[1:]) * (phi[1:] - phi[:-1]) / hy
    fx[:, 1:-1] = -_harm(d[:, :-1], d[:, 1:]) * (phi[:, 1:] - phi[:, :-1]) / hx
    # the electrolyte face half a pixel from the first centre: -D (0 - phi) / (h / 2) outwards
    if side == "top":
        fy[0] = -d[0] * phi[0] / (hy / 2)
    elif side == "bottom":
        fy[-1] = d[-1] * phi[-1] / (hy / 2)
    elif side == "left":
        fx[:, 0] = -d[:, 0] * phi[:, 0] / (hx / 2)
    else:
        fx[:, -1] = d[:, -1] * phi[:, -1] / (hx / 2)
    rate = -divergence(fy, fx, H)
    solver = MobilityFlux(7.0 * d, H, side)  # the scale of D does not change J
    gy, gx = solver.face_flux(solver.potential(rate))
    np.testing.assert_allclose(gy, fy, atol=1e-9)
    np.testing.assert_allclose(gx, fx, atol=1e-9)
    jy, jx = solver.flux(rate[None])
    np.testing.assert_allclose(jy[0], 0.5 * (fy[1:] + fy[:-1]), atol=1e-9)
    np.testing.assert_allclose(jx[0], 0.5 * (fx[:, 1:] + fx[:, :-1]), atol=1e-9)


def test_fickian_flux_of_two_mobility_columns_is_the_closed_form_and_not_the_minimum_norm_one():
    """Columns of D = 1 (left half) and 10 (right half), Li gained at the rate D(x) everywhere:
    phi = y^2/2 - L y solves div(D grad phi) = D with phi = 0 at the top and no flux at the bottom,
    so J_y = D (L - y) and J_x = 0 - each column fed straight from the electrolyte. The
    minimum-norm flux instead moves Li sideways into the fast-filling half."""
    ny, nx, h = 16, 12, (2.0, 2.0)
    d = np.where(np.arange(nx) < nx // 2, 1.0, 10.0)[None, :] * np.ones((ny, 1))
    jy, jx = MobilityFlux(d, h, "top").flux(d)
    depth = ny * h[0]
    y = (np.arange(ny) + 0.5) * h[0]
    np.testing.assert_allclose(jy, d * (depth - y)[:, None], rtol=1e-9)
    assert np.abs(jx).max() < 1e-9 * np.abs(jy).max()
    my, mx = poisson_flux(d, h, "top")
    assert np.abs(mx).max() > 0.1 * np.abs(my).max()


def test_uniform_mobility_gives_the_minimum_norm_flux_and_its_noise():
    rate = np.random.default_rng(2).standard_normal((3, 20, 14))
    solver = MobilityFlux(np.full((20, 14), 0.3), H, "right")
    jy, jx = solver.flux(rate)
    py, px = poisson_flux(rate, H, "right")
    np.testing.assert_allclose(jy, py, atol=1e-10)
    np.testing.assert_allclose(jx, px, atol=1e-10)
    # along the interface: the same; across it flux_noise_sd's eigenvalue sum counts the electrolyte
    # face's flux 2 phi / h as phi^T L phi does (2 phi^2 / h^2, not 4): a few per cent low there
    sd, ref = solver.noise_sd(0.01), flux_noise_sd(0.01, (20, 14), H, "right")
    assert sd[0] == pytest.approx(ref[0], rel=1e-9) and ref[1] < sd[1] < 1.05 * ref[1]
    big = MobilityFlux(np.ones((48, 40)), H, "left")  # Hutch++ above 16 * probes pixels
    sd, ref = big.noise_sd(0.01), flux_noise_sd(0.01, (48, 40), H, "left")
    assert sd[0] == pytest.approx(ref[0], rel=0.02) and ref[1] < sd[1] < 1.05 * ref[1]


def test_fickian_flux_noise_is_the_spread_of_the_flux_of_white_rate_noise():
    """Hutch++ estimate against Monte Carlo: the flux of 400 frames of white rate noise."""
    rng = np.random.default_rng(3)
    mask = domain_boundaries(voronoi_domains((24, 20), 5, rng))
    solver = MobilityFlux(two_phase_mobility(mask, 1.0, 30.0), (2.5, 2.5), "top")
    fy, fx = solver.face_flux(solver.potential(rng.normal(0.0, 0.5, (400, 24, 20))))
    mc = np.sqrt(np.mean(np.sum(fy**2, axis=(1, 2)) / 480)), np.sqrt(np.mean(np.sum(fx**2, axis=(1, 2)) / 480))
    np.testing.assert_allclose(solver.noise_sd(0.5), mc, rtol=0.06)


def _fickian_series(mask, d_bulk, d_boundary, h, n_frames, dt, seed):
    """Backward-Euler Fick (no-flux faces) from a smooth random start: frames every step."""
    import scipy.sparse as sp
    import scipy.sparse.linalg as spla
    from scipy import ndimage

    rng = np.random.default_rng(seed)
    x = 0.5 + 0.3 * ndimage.gaussian_filter(rng.standard_normal(mask.shape), 2.0) / 0.1
    a = diffusion_operator(two_phase_mobility(mask, d_bulk, d_boundary), h)
    lu = spla.splu((sp.identity(x.size) - dt * a).tocsc())
    frames = [x.ravel()]
    for _ in range(n_frames - 1):
        frames.append(lu.solve(frames[-1]))
    return np.stack(frames).reshape((n_frames,) + mask.shape)


def test_fit_recovers_bulk_and_boundary_mobility_of_a_fickian_series_with_noise():
    mask = domain_boundaries(voronoi_domains((32, 32), 6, np.random.default_rng(5)))
    h, dt = 2.0, 0.1  # frames close enough to follow the boundaries' fast start (h^2 / D = 0.13 s)
    x = _fickian_series(mask, 2.0, 30.0, h, 24, dt, 6)
    x = x + np.random.default_rng(7).normal(0.0, 1e-3, x.shape)
    t = np.arange(24) * dt
    codes = np.repeat([1, 0], 12)
    rate = rate_of_change(x, t, codes, 3)
    fits = fit_two_phase_mobility(x, rate, mask, (h, h), groups=codes, blocks=4)
    for key in ("0", "1", "pooled"):
        fit = fits[key]
        assert fit["d_bulk_nm2_s"] == pytest.approx(2.0, rel=0.05), key
        assert fit["d_boundary_nm2_s"] == pytest.approx(30.0, rel=0.08), key
        assert 0 < fit["d_boundary_nm2_s_error"] < 0.3 * fit["d_boundary_nm2_s"]
    assert fits["pooled"]["groups"] == ["0", "1"] and fits["pooled"]["r2"] > 0.9
    # the strong form (rate against div(D grad x) pixel by pixel) agrees on clean maps
    pred = fickian_rate(x, two_phase_mobility(mask, 2.0, 30.0), (h, h))
    assert np.corrcoef(pred[2:-2].ravel(), rate[2:-2].ravel())[0, 1] > 0.9


@pytest.fixture(scope="module")
def small_twin():
    return simulate("licoo2", seed=1, ny=32, nx=32, n_domains=5, charge_frames=20, rest1_frames=12,
                    discharge_frames=12, rest2_frames=0, dose=None, layer_thickness_nm=10)


def test_twin_boundary_mask_gives_the_in_plane_fraction_the_minimum_norm_flux_misses(small_twin):
    ds = small_twin
    truth = twin_motion_by_state(ds)
    series = ds["li_fraction"].assign_coords(state=ds["state"])
    _, lower = li_motion(series, level=0.7)
    res, fitted = li_motion(series, level=0.7, boundaries=ds["boundary"])
    mob = fitted["mobility"]
    assert mob["source"] == "fitted from the boundary mask" and set(mob["pooled_states"]) == {"charge", "rest"}
    assert 25 < mob["ratio"] < 80 and mob["ratio_error"] > 0  # the twin: 40
    assert res["mobility"].dims == ("y", "x") and res["mobility"].attrs["units"] == "nm^2/s"
    for state in ("charge", "rest", "discharge"):
        assert fitted["states"][state]["in_plane_fraction"] == pytest.approx(truth[state]["in_plane_fraction"], abs=0.05)
    for state in ("charge", "rest"):
        assert lower["states"][state]["in_plane_fraction"] < truth[state]["in_plane_fraction"] - 0.2
    # discharge: the twin inserts Li inside the film (electron-limited, at the collector), a source Fick's
    # law on the maps does not have: the fit leaves the state out (no positive mobility), and the mobility
    # pooled over charge and rest routes its flux too (the twin supplies inserted Li along its own D)
    assert mob["fit_by_state"]["discharge"]["d_bulk_nm2_s"] is None
    assert mob["fickian_states"] == ["rest", "charge", "discharge"]
    # the twin's own D map gives its flux in every state
    d = np.where(ds["region"].values == 1, 1.0, np.where(ds["boundary"].values == 1, 40.0, 1.0))
    _, given = li_motion(series, level=0.7, mobility=d)
    assert given["mobility"]["fickian_states"] == ["rest", "charge", "discharge"]
    for state in ("charge", "rest", "discharge"):
        assert given["states"][state]["in_plane_fraction"] == pytest.approx(truth[state]["in_plane_fraction"], abs=0.03)


def test_mobility_options_refuse_careless_maps(small_twin):
    series = small_twin["li_fraction"].isel(time=slice(0, 8))
    with pytest.raises(InputError, match="32 x 16 px"):
        li_motion(series, mobility=np.ones((32, 16)))
    with pytest.raises(InputError, match="<= 0"):
        li_motion(series, mobility=np.zeros((32, 32)))
    with pytest.raises(InputError, match="NaN"):
        li_motion(series, boundaries=np.full((32, 32), np.nan))
    with pytest.raises(InputError, match="0 / 1"):
        li_motion(series, boundaries=small_twin["domain"])
    with pytest.raises(InputError, match="boundary and"):
        li_motion(series, boundaries=np.zeros((32, 32)))
    with pytest.raises(ConfigError, match="not both"):
        li_motion(series, mobility=np.ones((32, 32)), boundaries=small_twin["boundary"])


def test_lazy_series_with_a_boundary_mask_gives_the_numpy_result(small_twin):
    series = small_twin["li_fraction"].assign_coords(state=small_twin["state"])
    eager, s1 = li_motion(series, level=0.7, boundaries=small_twin["boundary"])
    lazy, s2 = li_motion(series.chunk({"time": 9}), level=0.7, boundaries=small_twin["boundary"])
    np.testing.assert_allclose(lazy["flux_x"].values, eager["flux_x"].values, rtol=1e-5, atol=1e-12)
    assert s2["mobility"]["ratio"] == pytest.approx(s1["mobility"]["ratio"])
