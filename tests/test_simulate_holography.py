"""The holography twins: specimen model, hologram formation, noise, parameters."""

from __future__ import annotations

import json

import numpy as np
import pytest

from ionscope.constants import electron_interaction_constant
from ionscope.data import provenance
from ionscope.errors import ConfigError
from ionscope.simulate import TWINS, simulate
from ionscope.spacecharge import lattice_gas_potential, w90_nm


def test_interaction_constant_matches_methods():
    assert electron_interaction_constant(80) == pytest.approx(1.009e-2, rel=2e-3)
    assert electron_interaction_constant(200) == pytest.approx(7.29e-3, rel=1e-3)
    assert electron_interaction_constant(300) == pytest.approx(6.53e-3, rel=1e-3)


def test_registered_and_shaped():
    assert "holography" in TWINS and "holography_ps" in TWINS
    ds = simulate("holography", seed=0, ny=64, nx=96, pixel_nm=1.0, fringe_spacing_nm=4.0,
                  vacuum_height_nm=16, interface_position_nm=40)
    assert ds.attrs["primary"] == "hologram"
    assert ds["hologram"].shape == (64, 96) and ds["hologram"].dtype == np.float32
    for name in ("reference", "phase_true", "amplitude_true", "potential_true", "thickness_nm",
                 "region", "electrostatic_true", "phase_stray"):
        assert ds[name].dims == ("y", "x")
    assert ds["x"].attrs["units"] == "nm"
    assert json.loads(ds.attrs["parameters"])["nx"] == 96
    assert provenance(ds["hologram"])[0]["step"] == "ionscope.simulate.holography"


def test_default_space_charge_layer_is_the_seed_result():
    ds = simulate("holography", seed=0, noise=False)
    assert ds.attrs["psi0_V"] == 1.3
    assert ds.attrs["w90_nm"] < 10.0
    assert ds.attrs["w90_nm"] == pytest.approx(w90_nm(1.3, 0.99, 50.0, 1e26, 298.15))
    # the electrostatic potential in the electrolyte is -psi0 + psi(d) of the lattice-gas model
    row = ds.sizes["y"] // 2 + 40
    x = ds.x.values
    xi = ds.attrs["interface_position_nm"]
    sel = x > xi + 2.0  # clear of the interface roughness (sigma 0.25 nm)
    got = ds["electrostatic_true"].values[row, sel]
    want = -1.3 + lattice_gas_potential(x[sel] - xi, 1.3, 0.99, 50.0, 1e26, 298.15)
    np.testing.assert_allclose(got, want, atol=2e-3)
    electrode = ds["electrostatic_true"].values[row, x < xi - 2]
    np.testing.assert_allclose(electrode, 0.0, atol=1e-9)


def test_phase_is_interaction_constant_times_projected_potential():
    ds = simulate("holography", seed=0, noise=False, bias_V=1.5, kv=200)
    ce = electron_interaction_constant(200)
    expected = ce * ds["thickness_nm"].values * ds["potential_true"].values + ds["phase_stray"].values
    np.testing.assert_allclose(ds["phase_true"].values, expected, atol=1e-4)
    # thickness from the amplitude, METHODS: t / lambda = -2 ln A
    region = ds["region"].values
    mfp = np.where(region == 1, 90.0, 150.0)
    inside = (region > 0) & (np.abs(ds.x.values[None, :] - ds.attrs["interface_position_nm"]) > 2)
    t = -2 * np.log(ds["amplitude_true"].values) * mfp
    np.testing.assert_allclose(t[inside], ds["thickness_nm"].values[inside], rtol=1e-4)
    # the electrode sits at the bias
    electrode = (region == 1) & (ds.x.values[None, :] < ds.attrs["interface_position_nm"] - 2)
    np.testing.assert_allclose(ds["electrostatic_true"].values[electrode], 1.5, atol=1e-9)


def _laplacian(f):
    return f[:-2, 1:-1] + f[2:, 1:-1] + f[1:-1, :-2] + f[1:-1, 2:] - 4 * f[1:-1, 1:-1]


def test_stray_field_is_harmonic_over_the_whole_map():
    """The leaking charges sit beyond the map's borders: the stray phase is a Laplace solution
    in the vacuum and continues harmonically through the specimen; strips moved into the map
    (negative gap) leave the vacuum harmonic but not the specimen below them."""
    ds = simulate("holography", seed=0, noise=False, bias_V=2.0, stray_rad_per_V=0.5)
    stray = ds["phase_stray"].values.astype(np.float64)
    vac = ds["region"].values == 0
    assert np.ptp(stray[vac]) > 0.5
    lap = _laplacian(stray)
    assert np.abs(lap).max() < 1e-4 * np.abs(stray).max()  # everywhere, specimen included
    inside = simulate("holography", seed=0, noise=False, bias_V=2.0, stray_gap_nm=-40.0)
    s_in = inside["phase_stray"].values.astype(np.float64)
    lap_in = _laplacian(s_in)
    inner = vac[1:-1, 1:-1] & vac[:-2, 1:-1] & vac[2:, 1:-1]
    assert np.abs(lap_in[inner]).max() < 1e-4 * np.abs(s_in).max()
    assert np.abs(lap_in).max() > 1e-2 * np.abs(s_in).max()  # the charged strip in the specimen
    none = simulate("holography", seed=0, noise=False, bias_V=0.0)
    assert np.abs(none["phase_stray"].values).max() == 0.0


def test_stray_field_is_the_projected_potential_of_the_charged_electrode_strips():
    """phase_stray = s(r) - s(r + d): s the potential of uniformly charged strips (+ left,
    - right, beyond the map) by direct quadrature, d the object-reference offset (overlap_nm
    along the carrier direction, up into the vacuum for the default angle)."""
    kw = dict(bias_V=3.0, stray_rad_per_V=0.7, stray_gap_nm=15.0, stray_length_nm=120.0,
              stray_depth_nm=6.0, overlap_nm=150.0)
    ds = simulate("holography", seed=0, noise=False, **kw)
    h, ye = 0.5, ds.attrs["vacuum_edge_nm"]
    x_max = (ds.sizes["x"] - 1) * h
    y0 = ye + kw["stray_depth_nm"]
    g, length = kw["stray_gap_nm"], kw["stray_length_nm"]
    biased = np.linspace(-g - length, -g, 24001)
    counter = np.linspace(x_max + g, x_max + g + length, 24001)

    def s(y, x):
        def mean_log(xs):
            return np.trapezoid(np.log(np.hypot(y - y0, x - xs)), xs) / length
        return kw["stray_rad_per_V"] * kw["bias_V"] * (mean_log(counter) - mean_log(biased))

    a = np.radians(ds.attrs["fringe_angle_deg"])
    dy, dx = kw["overlap_nm"] * np.sin(a), kw["overlap_nm"] * np.cos(a)
    assert dy < 0  # the reference wave passes through the vacuum above the lamella
    for iy, ix in [(10, 5), (40, 128), (63, 250), (100, 20), (200, 200), (255, 0)]:
        y, x = iy * h, ix * h
        want = s(y, x) - s(y + dy, x + dx)
        assert ds["phase_stray"].values[iy, ix] == pytest.approx(want, abs=2e-5)
    # the biased electrode (left) raises the phase, linearly in the bias
    st = ds["phase_stray"].values
    assert st[20, :40].mean() > st[20, -40:].mean() + 0.3
    neg = simulate("holography", seed=0, noise=False, **{**kw, "bias_V": -1.5})
    np.testing.assert_allclose(neg["phase_stray"].values, -0.5 * st, atol=1e-5)


def test_hologram_formation_mean_contrast_and_fringe_period():
    ds = simulate("holography", seed=0, noise=False, mtf_cutoff=None, biprism_fringe_amplitude=0.0,
                  distortion_rad=0.0, vacuum_height_nm=1e3, fringe_angle_deg=90.0, contrast=0.25,
                  dose=400.0)
    ref = ds["reference"].values.astype(np.float64)
    assert ref.mean() == pytest.approx(400.0, rel=1e-3)
    column = ref[:, 10]
    assert (column.max() - column.min()) / (column.max() + column.min()) == pytest.approx(0.25, rel=1e-3)
    # fringes along y with the 2 nm (4 px) period: I(y + 4) = I(y)
    np.testing.assert_allclose(ref[4:, :], ref[:-4, :], rtol=1e-5)
    assert ds.attrs["effective_contrast"] == 0.25
    assert ds.attrs["sideband_true_px"] == pytest.approx([64.0, 0.0])


def test_poisson_noise_statistics():
    ds = simulate("holography", seed=1, contrast=0.0, mtf_cutoff=None, biprism_fringe_amplitude=0.0,
                  vacuum_height_nm=1e3, dose=50.0)
    holo = ds["hologram"].values
    assert holo.mean() == pytest.approx(50.0, rel=0.01)
    assert holo.var() / holo.mean() == pytest.approx(1.0, rel=0.03)
    assert np.all(holo == np.round(holo))


def test_seed_reproducibility():
    a = simulate("holography", seed=5, ny=64, nx=64, pixel_nm=1.0, fringe_spacing_nm=4.0,
                 vacuum_height_nm=16, interface_position_nm=30)
    b = simulate("holography", seed=5, ny=64, nx=64, pixel_nm=1.0, fringe_spacing_nm=4.0,
                 vacuum_height_nm=16, interface_position_nm=30)
    c = simulate("holography", seed=6, ny=64, nx=64, pixel_nm=1.0, fringe_spacing_nm=4.0,
                 vacuum_height_nm=16, interface_position_nm=30)
    np.testing.assert_array_equal(a["hologram"].values, b["hologram"].values)
    assert not np.array_equal(a["hologram"].values, c["hologram"].values)


def test_exposures_of_one_specimen():
    """Another exposure re-draws the noise (and the phase-shifting drift and steps) of the same
    specimen, camera and biprism: a bias series."""
    small = dict(ny=64, nx=64, pixel_nm=1.0, fringe_spacing_nm=4.0, vacuum_height_nm=16,
                 interface_position_nm=30)
    a, a0 = simulate("holography", seed=5, **small), simulate("holography", seed=5, exposure=0, **small)
    b = simulate("holography", seed=5, exposure=1, **small)
    np.testing.assert_array_equal(a["hologram"].values, a0["hologram"].values)  # 0 is the default
    assert not np.array_equal(a["hologram"].values, b["hologram"].values)
    assert not np.array_equal(a["reference"].values, b["reference"].values)
    clean = [simulate("holography", seed=5, exposure=e, noise=False, **small) for e in (0, 1)]
    np.testing.assert_array_equal(clean[0]["hologram"].values, clean[1]["hologram"].values)
    np.testing.assert_array_equal(a["phase_true"].values, b["phase_true"].values)
    ps = [simulate("holography_ps", seed=5, exposure=e, noise=False, frames=4, **small) for e in (0, 1)]
    assert not np.allclose(ps[0]["steps_true"].values, ps[1]["steps_true"].values)
    assert not np.allclose(ps[0]["drift_x_true"].values, ps[1]["drift_x_true"].values)
    # frame 0 is undrifted with step 0 in both: same specimen, camera and biprism
    np.testing.assert_array_equal(ps[0]["stack"].values[0], ps[1]["stack"].values[0])
    with pytest.raises(ConfigError):
        simulate("holography", exposure=-1)


def test_region_codes_and_interface_line():
    ds = simulate("holography", seed=0, noise=False, interface_angle_deg=10.0)
    region = ds["region"]
    assert region.attrs["flag_meanings"] == "vacuum electrode electrolyte"
    assert set(np.unique(region.values)) == {0, 1, 2}
    (y0, x0), (y1, x1) = ds.attrs["interface_line_nm"]
    assert y0 == ds.attrs["vacuum_edge_nm"] and x0 == ds.attrs["interface_position_nm"]
    assert np.degrees(np.arctan2(x1 - x0, y1 - y0)) == pytest.approx(10.0)
    # the region boundary follows the line
    row = ds.sizes["y"] - 1
    xs = ds.x.values[region.values[row] == 2]
    assert xs.min() == pytest.approx(x1, abs=0.6)


def test_phase_shifting_twin():
    ds = simulate("holography_ps", seed=2, ny=96, nx=96, frames=5, vacuum_height_nm=16,
                  interface_position_nm=24)
    assert ds.attrs["primary"] == "stack"
    assert ds["stack"].dims == ("shift", "y", "x") and ds.sizes["shift"] == 5
    np.testing.assert_allclose(ds["shift"].values, 2 * np.pi * np.arange(5) / 5)
    assert ds["steps_true"].values[0] == 0 and ds["drift_y_true"].values[0] == 0
    assert np.abs(ds["steps_true"].values - ds["shift"].values)[1:].max() > 0.05  # uneven
    y0, y1, x0, x1 = ds.attrs["vacuum_box"]
    max_drift = np.abs(ds["drift_y_true"].values).max()
    assert y1 * 0.5 + max_drift < ds.attrs["vacuum_edge_nm"]
    assert ds["reference_stack"].shape == ds["stack"].shape
    # frames differ by the fringe shift even in vacuum
    assert not np.allclose(ds["stack"].values[0, y0:y1], ds["stack"].values[1, y0:y1])


@pytest.mark.parametrize(
    "kwargs",
    [{"kv": 50.0}, {"fringe_spacing_nm": 1.0}, {"fringe_spacing_nm": 20.0}, {"contrast": 1.5},
     {"noise": "yes"}, {"colour": "red"}, {"ny": 10}, {"stray_length_nm": 0.0},
     {"stray_depth_nm": 0.0}],
)
def test_bad_parameters(kwargs):
    with pytest.raises(ConfigError):
        simulate("holography", **kwargs)


def test_bad_ps_parameters():
    with pytest.raises(ConfigError):
        simulate("holography_ps", frames=2)
    with pytest.raises(ConfigError):
        simulate("holography_ps", vacuum_height_nm=2.0)


def test_reference_stack_of_the_offaxis_twin():
    small = dict(ny=64, nx=64, pixel_nm=1.0, fringe_spacing_nm=4.0, vacuum_height_nm=16,
                 interface_position_nm=30, noise=False)
    one = simulate("holography", seed=2, **small)
    ds = simulate("holography", seed=2, reference_frames=5, **small)
    assert "reference_stack" not in one
    assert ds["reference_stack"].dims == ("shift", "y", "x") and ds.sizes["shift"] == 5
    np.testing.assert_array_equal(ds["reference_stack"].values[0], ds["reference"].values)
    np.testing.assert_array_equal(ds["reference"].values, one["reference"].values)  # unchanged
    steps = ds["reference_steps_true"].values
    assert steps[0] == 0 and np.abs(steps - 2 * np.pi * np.arange(5) / 5)[1:].max() > 0.05
    # a vacuum frame at step d is frame 0 with the fringes shifted by d
    y0 = 2
    row0, row1 = ds["reference_stack"].values[0, y0], ds["reference_stack"].values[1, y0]
    assert not np.allclose(row0, row1)
    with pytest.raises(ConfigError):
        simulate("holography", reference_frames=0)
