"""Multimodal registration (register.multimodal) on synthetic KPFM / TOF-SIMS pairs with known truth.

The scene: disc particles in a matrix. The "KPFM" map samples it finely (10 nm, potential, small
Gaussian noise) in its own coordinates, rotated and shifted; the "SIMS" map averages it over
100 nm pixels with inverted contrast and Poisson noise; the KPFM field lies inside the SIMS one.
"""

import numpy as np
import pytest

from ionscope.data import signal
from ionscope.errors import ConfigError, DimensionError, InputError, NonFiniteError
from ionscope.register import register_rigid, resample_onto, rigid_matrix


def _scene(y, x, seed=3, n=60):
    rng = np.random.default_rng(seed)
    cy, cx = rng.uniform(-500, 5000, n), rng.uniform(-500, 5000, n)
    r, level = rng.uniform(120, 320, n), rng.uniform(0.4, 1.0, n)
    out = np.zeros(np.broadcast(y, x).shape)
    for a, b, rr, lv in zip(cy, cx, r, level):
        out = np.maximum(out, lv * np.clip((rr - np.hypot(y - a, x - b)) / 10.0 + 0.5, 0, 1))
    return out


def _render(n, step, origin, H=None, sub=1):
    """Pixel means (sub x sub points) of the scene; image coordinates mapped by H to the scene's."""
    o = ((np.arange(sub) + 0.5) / sub - 0.5) * step
    y = origin[0] + step * np.arange(n)
    x = origin[1] + step * np.arange(n)
    Y, X = np.broadcast_arrays(y[:, None, None, None] + o[None, None, :, None],
                               x[None, :, None, None] + o[None, None, None, :])
    if H is not None:
        Y, X = H[0, 0] * Y + H[0, 1] * X + H[0, 2], H[1, 0] * Y + H[1, 1] * X + H[1, 2]
    return _scene(Y, X).mean(axis=(2, 3))


SIMS_ORIGIN = (600.0, 500.0)


def _pair(rot=3.0, shift=(1000.0, 800.0), counts=2000, seed=0, fine=(256, 10.0), coarse=(28, 100.0)):
    rng = np.random.default_rng(seed)
    nf, df = fine
    nc, dc = coarse
    H = rigid_matrix(rot, shift, [(nf - 1) * df / 2] * 2)
    kp = 0.3 * _render(nf, df, (0, 0), H) + rng.normal(0, 0.01, (nf, nf))
    si = rng.poisson(counts * (1.0 - 0.7 * _render(nc, dc, SIMS_ORIGIN, sub=8))).astype(float)
    kpfm = signal(kp, ("y", "x"), name="potential", units="V", coords={"y": df, "x": df})
    sims = signal(si, ("y", "x"), name="li", units="counts",
                  coords={"y": SIMS_ORIGIN[0] + dc * np.arange(nc), "x": SIMS_ORIGIN[1] + dc * np.arange(nc)})
    return sims, kpfm, H


@pytest.fixture(scope="module")
def pair():
    return _pair()


NO_SEARCH = {"search_rotation_deg": 0, "search_shift_nm": 0}


def test_rigid_recovers_rotation_and_shift_of_a_kpfm_map_inside_a_sims_map(pair):
    sims, kpfm, H = pair
    r = register_rigid(sims, kpfm, init_shift_nm=(900, 700), **NO_SEARCH)
    assert abs(r.rotation_deg - 3.0) < 0.1
    assert abs(r.shift_y_nm - 1000.0) < 30 and abs(r.shift_x_nm - 800.0) < 30  # 0.3 SIMS pixels
    assert r.converged and r.iterations > 0 and r.metric < -0.5
    np.testing.assert_allclose(r.matrix, H, atol=0.01 * abs(H).max())
    assert set(r.summary()) >= {"rotation_deg", "shift_y_nm", "shift_x_nm", "metric", "matrix"}


def test_swapped_roles_give_the_inverse_transform(pair):
    sims, kpfm, H = pair
    r = register_rigid(kpfm, sims, init_rotation_deg=-3.0, init_shift_nm=(-1000.0, -800.0), **NO_SEARCH)
    np.testing.assert_allclose(r.matrix @ H, np.eye(3), atol=2e-3 * 1000)
    assert abs(r.rotation_deg + 3.0) < 0.1


def test_affine_recovers_the_rigid_truth(pair):
    sims, kpfm, H = pair
    r = register_rigid(sims, kpfm, init_shift_nm=(900, 700), affine=True, **NO_SEARCH)
    assert r.affine is not None and r.affine.shape == (2, 2)
    np.testing.assert_allclose(r.affine, H[:2, :2], atol=5e-3)
    assert abs(r.rotation_deg - 3.0) < 0.2


def test_started_10_degrees_and_1um_away_it_still_converges(pair):
    sims, kpfm, _ = pair
    r = register_rigid(sims, kpfm, init_rotation_deg=13.0, init_shift_nm=(1700.0, 1500.0))
    assert abs(r.rotation_deg - 3.0) < 0.1, r
    assert abs(r.shift_y_nm - 1000.0) < 30 and abs(r.shift_x_nm - 800.0) < 30
    assert r.converged


def test_without_the_search_a_far_start_is_reported_by_its_worse_metric(pair):
    sims, kpfm, _ = pair
    good = register_rigid(sims, kpfm, init_shift_nm=(900, 700), **NO_SEARCH)
    far = register_rigid(sims, kpfm, init_rotation_deg=13.0, init_shift_nm=(1700.0, 1500.0), **NO_SEARCH)
    off = abs(far.rotation_deg - 3.0) > 0.1 or abs(far.shift_y_nm - 1000) > 30 or abs(far.shift_x_nm - 800) > 30
    assert not off or far.metric > good.metric + 0.1 or not far.converged


def test_nan_pixels_are_masked_out_of_the_metric(pair):
    sims, kpfm, _ = pair
    holed = kpfm.copy(data=kpfm.values.copy())
    holed.values[100:140, 60:120] = np.nan
    s = sims.copy(data=sims.values.copy())
    s.values[:4] = np.nan
    r = register_rigid(s, holed, init_shift_nm=(900, 700), **NO_SEARCH)
    assert abs(r.rotation_deg - 3.0) < 0.15
    assert abs(r.shift_y_nm - 1000.0) < 30 and abs(r.shift_x_nm - 800.0) < 30


def test_no_overlap_is_an_error_not_a_result(pair):
    sims, kpfm, _ = pair
    with pytest.raises(InputError, match="overlaps the fixed one by 0 pixel"):
        register_rigid(sims, kpfm, init_shift_nm=(20000.0, 0.0))


def test_careless_input_is_refused_clearly(pair):
    sims, kpfm, _ = pair
    px = kpfm.copy()
    px["y"].attrs["units"] = "px"
    with pytest.raises(InputError, match="not a length"):
        register_rigid(sims, px)
    with pytest.raises(InputError, match="constant"):
        register_rigid(sims, kpfm.copy(data=np.full(kpfm.shape, 0.2)))
    bad = kpfm.copy(data=kpfm.values.copy())
    bad.values[3, 3] = np.inf
    with pytest.raises(NonFiniteError, match="infinite"):
        register_rigid(sims, bad)
    with pytest.raises(NonFiniteError, match="finite pixel"):
        register_rigid(sims, kpfm.copy(data=np.full(kpfm.shape, np.nan)))
    with pytest.raises(DimensionError):
        register_rigid(sims, kpfm.expand_dims(time=2))
    with pytest.raises(ConfigError):
        register_rigid(sims, kpfm, metric="mean-squares")
    with pytest.raises(ConfigError):
        register_rigid(sims, kpfm, init_shift_nm=(1.0,))
    with pytest.raises(ConfigError):
        register_rigid(sims, kpfm, levels=(4, 0))
    with pytest.raises(ConfigError):
        resample_onto(kpfm, sims, np.zeros((3, 3)))
    with pytest.raises(ConfigError):
        resample_onto(kpfm, sims, np.eye(3), method="cubic")


# ----------------------------------------------------------------------------- resampling


def _fine(values, step=5.0, origin=(0.0, 0.0)):
    ny, nx = values.shape[-2:]
    coords = {"y": origin[0] + step * np.arange(ny), "x": origin[1] + step * np.arange(nx)}
    dims = ("time", "y", "x") if values.ndim == 3 else ("y", "x")
    return signal(values, dims, name="potential", units="V", coords=coords)


def _coarse(n=6, step=50.0, origin=(0.0, 0.0)):
    return signal(np.zeros((n, n)), ("y", "x"), name="li", units="counts",
                  coords={"y": origin[0] + step * np.arange(n), "x": origin[1] + step * np.arange(n)})


def test_block_average_is_exact_on_a_constant_and_a_linear_ramp_under_rotation():
    y, x = np.mgrid[:200, :200] * 5.0
    H = rigid_matrix(4.0, (30.0, -20.0), (497.5, 497.5))
    grid = _coarse(8, 50.0, (250.0, 250.0))
    const = resample_onto(_fine(np.full(y.shape, 0.7)), grid, H)
    ok = np.isfinite(const.values)
    assert ok.sum() > 30
    np.testing.assert_allclose(const.values[ok], 0.7, rtol=1e-12)
    ramp = resample_onto(_fine(0.002 * y - 0.001 * x + 0.1), grid, H)
    # truth: the ramp at each fixed pixel centre mapped back into the moving coordinates
    Hi = np.linalg.inv(H)
    yf, xf = np.meshgrid(grid["y"].values, grid["x"].values, indexing="ij")
    ym, xm = Hi[0, 0] * yf + Hi[0, 1] * xf + Hi[0, 2], Hi[1, 0] * yf + Hi[1, 1] * xf + Hi[1, 2]
    np.testing.assert_allclose(ramp.values[ok], (0.002 * ym - 0.001 * xm + 0.1)[ok], atol=1e-9)


def test_pixels_not_fully_covered_are_nan():
    fine = _fine(np.ones((40, 40)))  # field -2.5 .. 197.5 nm
    out = resample_onto(fine, _coarse(6, 50.0, (0.0, 0.0)), np.eye(3))
    # footprints [c-25, c+25]: c = 0 sticks out; c = 200 sticks out; 50..150 inside
    expected = np.full((6, 6), np.nan)
    expected[1:4, 1:4] = 1.0
    np.testing.assert_array_equal(out.values, expected)
    assert out.dims == ("y", "x") and out.attrs["units"] == "V"


def test_a_nan_pixel_of_the_moving_image_makes_its_footprint_nan():
    v = np.ones((40, 40))
    v[20, 20] = np.nan  # at (100, 100) nm
    out = resample_onto(_fine(v), _coarse(6, 50.0), np.eye(3)).values
    assert np.isnan(out[2, 2]) and np.isfinite(out[1, 1])


def test_a_stack_is_resampled_frame_by_frame_with_one_transform():
    y, x = np.mgrid[:200, :200] * 5.0
    frames = np.stack([0.001 * y, 0.002 * x, np.full(y.shape, 3.0)])
    stack = _fine(frames).assign_coords(time=("time", [0.0, 10.0, 20.0], {"units": "s"}))
    H = rigid_matrix(2.5, (10.0, 5.0), (497.5, 497.5))
    grid = _coarse(10, 100.0, (-50.0, -50.0))
    out = resample_onto(stack, grid, H)
    assert out.dims == ("time", "y", "x") and out.sizes["time"] == 3
    np.testing.assert_array_equal(out["time"].values, [0.0, 10.0, 20.0])
    for k in range(3):
        one = resample_onto(_fine(frames[k]), grid, H)
        np.testing.assert_array_equal(out.values[k], one.values)
    assert np.isnan(out.values[:, 0, 0]).all() and np.isfinite(out.values[:, 5, 5]).all()


def test_resampled_kpfm_matches_the_sims_scene(pair):
    sims, kpfm, _ = pair
    r = register_rigid(sims, kpfm, init_shift_nm=(900, 700), **NO_SEARCH)
    on_sims = resample_onto(kpfm, sims, r)
    ok = np.isfinite(on_sims.values)
    assert 0.5 < ok.mean() < 1
    truth = _render(28, 100.0, SIMS_ORIGIN, sub=8)
    assert np.corrcoef(on_sims.values[ok], truth[ok])[0, 1] > 0.98
    assert np.corrcoef(on_sims.values[ok], sims.values[ok])[0, 1] < -0.9  # inverted contrast
