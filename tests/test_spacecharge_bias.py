"""Finite electrolyte between blocking electrodes under bias: conservation, limits, peers."""

from __future__ import annotations

import json

import numpy as np
import pytest
from scipy.integrate import solve_bvp, trapezoid

from ionscope.constants import E_CHARGE, EPSILON_0, K_B
from ionscope.errors import ConfigError
from ionscope.spacecharge import (
    MobileDefect,
    debye_length_nm,
    lattice_gas_concentration,
    lattice_gas_potential,
    stern_diffuse_potential,
    surface_charge,
)
from ionscope.spacecharge.bias import bias_profile, graded_mesh, solve_bias

C0 = 6e27
T = 298.15


def _control_volumes(x):
    dx = np.diff(x)
    h = np.empty_like(x)
    h[1:-1] = 0.5 * (dx[1:] + dx[:-1])
    h[0], h[-1] = 0.5 * dx[0], 0.5 * dx[-1]
    return h


@pytest.mark.parametrize("theta", [0.5, 0.9, 0.99])
@pytest.mark.parametrize("bias", [2.6, -2.6])
def test_thick_cell_is_two_semi_infinite_layers(theta, bias):
    """Far-apart electrodes: each layer is the closed-form one at psi = phi_electrode - mu."""
    sol = solve_bias(bias, 200.0, theta, 50, C0, T)
    mu = sol.mu_V[0]
    # the bulk potential balances the two layers' closed-form charges
    balance = surface_charge(bias - mu, theta, 50, C0, T) + surface_charge(-mu, theta, 50, C0, T)
    assert abs(balance) < 1e-4 * abs(surface_charge(bias - mu, theta, 50, C0, T))
    half = sol.x_nm < 100
    left = lattice_gas_potential(sol.x_nm[half], bias - mu, theta, 50, C0, T)
    right = lattice_gas_potential(np.clip(200 - sol.x_nm[~half], 0, None), -mu, theta, 50, C0, T)
    np.testing.assert_allclose(sol.phi_V - mu, np.concatenate([left, right]), atol=1e-4)
    assert sol.sigma_left == pytest.approx(surface_charge(bias - mu, theta, 50, C0, T), rel=1e-3)


@pytest.mark.parametrize("theta, bias, thickness", [(0.9, 2.6, 100.0), (0.99, -1.0, 20.0),
                                                    (0.999, 1.0, 40.0), (0.5, 3.0, 2.0)])
def test_charge_and_lithium_are_conserved(theta, bias, thickness):
    sol = solve_bias(bias, thickness, theta, 50, C0, T)
    scale = max(abs(sol.sigma_left), abs(sol.sigma_right))
    # electrode charges are equal and opposite; the electrolyte as a whole is neutral
    assert abs(sol.sigma_left + sol.sigma_right) < 1e-6 * scale
    assert abs(sol.space_charge) < 1e-6 * scale
    assert abs(sol.sigma_left + sol.sigma_right + sol.space_charge) < 1e-6 * scale
    # blocking electrodes: the number of Li ions is that of the uniform cell
    h = _control_volumes(sol.x_nm)
    assert np.dot(h, sol.c_li) == pytest.approx(C0 * thickness, rel=1e-9)
    assert sol.residual < 1e-9


def test_small_bias_is_two_debye_capacitors_in_series():
    theta, eps_r = 0.9, 40
    ds = bias_profile(1e-3, 200.0, theta, eps_r, C0, T)
    ld = debye_length_nm(theta, eps_r, C0, T) * 1e-9
    assert float(ds["cell_capacitance"]) == pytest.approx(EPSILON_0 * eps_r / ld / 2, rel=2e-3)
    # linear response splits the bias evenly (second-order asymmetry ~ (1 - 2 theta) u)
    assert float(ds["bulk_potential"]) == pytest.approx(0.5e-3, rel=5e-3)


def test_zero_bias_is_flat():
    sol = solve_bias(0.0, 50.0, 0.9, 50, C0, T)
    assert np.max(np.abs(sol.phi_V)) < 1e-12
    np.testing.assert_allclose(sol.c_li, C0, rtol=1e-12)


@pytest.mark.parametrize("theta", [0.9, 0.99, 0.999])
def test_bias_asymmetry_few_vacancies_widen_the_negative_side(theta):
    """The seed's asymmetry: Li+ leaves easily (positive electrode), piles up only into vacancies."""
    ds = bias_profile(2.0, 300.0, theta, 50, C0, T)
    left, right = ds.sel(side="left"), ds.sel(side="right")  # left is the positive electrode
    assert float(left["interface_potential"]) > 0 > float(right["interface_potential"])
    drops = float(left["interface_potential"]) - float(right["interface_potential"])
    assert drops == pytest.approx(2.0, rel=1e-9)
    # the negative side carries most of the bias in a much wider layer
    assert float(right["w90"]) > 4 * float(left["w90"])
    assert abs(float(right["interface_potential"])) > 5 * float(left["interface_potential"])
    assert float(left["surface_charge"]) == pytest.approx(-float(right["surface_charge"]), rel=1e-9)
    # Li+ is depleted at the positive side and saturates (c -> c_max) at the negative side
    assert float(ds["c_li"][0]) < 0.95 * C0
    assert float(ds["c_li"][-1]) == pytest.approx(C0 / theta, rel=1e-6)


def test_reversed_bias_mirrors_the_cell():
    a = solve_bias(1.5, 30.0, 0.95, 50, C0, T)
    b = solve_bias(-1.5, 30.0, 0.95, 50, C0, T)
    np.testing.assert_allclose(a.x_nm, 30.0 - b.x_nm[::-1], atol=1e-9)
    np.testing.assert_allclose(a.phi_V, b.phi_V[::-1] + 1.5, atol=1e-9)
    np.testing.assert_allclose(a.c_li, b.c_li[::-1], rtol=1e-8)
    assert a.sigma_left == pytest.approx(b.sigma_right, rel=1e-9)


def test_thin_cell_matches_scipy_solve_bvp_with_conservation():
    """Peer check on overlapping layers: SciPy's BVP solver with the bulk potential as an
    unknown parameter and the Li count as an extra equation."""
    theta, eps_r, bias, length = 0.9, 50, 0.4, 3.0
    vt = K_B * T / E_CHARGE
    eps = EPSILON_0 * eps_r

    def rhs(x, y, p):
        psi = (y[0] - p[0]) * vt
        c = lattice_gas_concentration(psi, theta, C0, T)
        return np.vstack([y[1], -E_CHARGE * (c - C0) / eps * 1e-18 / vt, (c - C0) / C0])

    def bc(ya, yb, p):
        return np.array([ya[0] - bias / vt, yb[0], ya[2], yb[2]])

    x = np.linspace(0, length, 200)
    y0 = np.vstack([bias / vt * (1 - x / length), np.full_like(x, -bias / vt / length),
                    np.zeros_like(x)])
    peer = solve_bvp(rhs, bc, x, y0, p=[bias / vt / 2], tol=1e-9, max_nodes=100000)
    assert peer.success
    sol = solve_bias(bias, length, theta, eps_r, C0, T, points=2000)
    np.testing.assert_allclose(sol.phi_V, peer.sol(sol.x_nm)[0] * vt, atol=2e-5)
    assert sol.mu_V[0] == pytest.approx(peer.p[0] * vt, abs=2e-5)


@pytest.mark.parametrize("bias", [1.5, -1.5])
def test_stern_layers_are_robin_boundaries(bias):
    theta, eps_r, d, eps_s = 0.95, 50, 0.4, 8
    sol = solve_bias(bias, 150.0, theta, eps_r, C0, T, stern_nm=d, stern_eps_r=eps_s)
    assert sol.x_nm[0] == pytest.approx(d) and sol.x_nm[-1] == pytest.approx(150.0 - d)
    # Stern drop = sigma d / eps_s at both electrodes
    drop_left = bias - sol.phi_V[0]
    drop_right = 0.0 - sol.phi_V[-1]
    assert drop_left == pytest.approx(sol.sigma_left * d * 1e-9 / (EPSILON_0 * eps_s), rel=1e-3)
    assert drop_right == pytest.approx(sol.sigma_right * d * 1e-9 / (EPSILON_0 * eps_s), rel=1e-3)
    # thick cell: each side is the semi-infinite Stern + diffuse layer at phi_electrode - mu
    mu = sol.mu_V[0]
    psi_d = stern_diffuse_potential(bias - mu, theta, eps_r, C0, d, eps_s, T)
    assert sol.phi_V[0] - mu == pytest.approx(psi_d, abs=2e-4)
    h = _control_volumes(sol.x_nm)
    assert abs(np.dot(h, sol.rho) * 1e-9) < 1e-6 * abs(sol.sigma_left)


def test_second_defect_is_conserved_separately():
    defect = MobileDefect(5e26, 0.3, charge=-1)
    sol = solve_bias(1.0, 20.0, 0.9, 50, C0, T, second_defect=defect)
    h = _control_volumes(sol.x_nm)
    assert np.dot(h, sol.c_li) == pytest.approx(C0 * 20.0, rel=1e-9)
    assert np.dot(h, sol.c_defect) == pytest.approx(5e26 * 20.0, rel=1e-9)
    assert sol.c_defect[0] > 5e26 > sol.c_defect[-1]  # the negative defect goes to the + side
    assert abs(sol.sigma_left + sol.sigma_right) < 1e-6 * abs(sol.sigma_left)
    assert sol.mu_V.shape == (2,)


def test_bias_dataset_units_and_provenance():
    ds = bias_profile(2.6, 100.0, 0.99, 50, C0, T, points=1500)
    assert ds.sizes["position"] == 1500 and list(ds["side"].values) == ["left", "right"]
    for name, unit in {"phi": "V", "psi": "V", "c_li": "m^-3", "rho": "C/m^3", "field": "V/m",
                       "w90": "nm", "surface_charge": "C/m^2", "capacitance": "F/m^2",
                       "cell_capacitance": "F/m^2", "bulk_potential": "V"}.items():
        assert ds[name].attrs["units"] == unit
    assert json.loads(ds.attrs["provenance"])[-1]["step"] == "ionscope.spacecharge.bias_profile"
    # field integrates back to the applied bias
    assert trapezoid(ds["field"].values, ds["position"].values * 1e-9) == pytest.approx(2.6, rel=1e-3)


def test_graded_mesh_resolves_both_electrodes():
    x = graded_mesh(100.0, 2000, 0.01)
    assert x[0] == 0 and x[-1] == pytest.approx(100.0) and x.size == 2000
    steps = np.diff(x)
    assert steps[0] == pytest.approx(0.01, rel=0.05) and steps[-1] == pytest.approx(0.01, rel=0.05)
    assert np.all(steps > 0) and steps.max() < 0.2
    np.testing.assert_allclose(steps, steps[::-1], rtol=1e-9)


@pytest.mark.parametrize("kwargs, match", [
    (dict(stern_nm=30.0), "leaves no electrolyte"),
    (dict(points=3), ">= 5"),
    (dict(thickness_nm=-1.0), "positive"),
])
def test_bad_bias_parameters_are_config_errors(kwargs, match):
    args = dict(bias_V=1.0, thickness_nm=50.0, theta=0.9, eps_r=50, c0_m3=C0) | kwargs
    with pytest.raises(ConfigError, match=match):
        solve_bias(**args)
