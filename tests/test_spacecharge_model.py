"""Lattice-gas space-charge model: the table of docs/guide/spacecharge.rst, analytic limits, peer solvers."""

from __future__ import annotations

import json

import mpmath
import numpy as np
import pytest
from scipy.integrate import quad, solve_bvp

from ionscope.constants import E_CHARGE, EPSILON_0, K_B
from ionscope.errors import ConfigError, InputError
from ionscope.spacecharge import (
    MobileDefect,
    accumulation_width_nm,
    debye_length_nm,
    depletion_width_nm,
    differential_capacitance,
    interface_field,
    lattice_gas_charge_density,
    lattice_gas_concentration,
    lattice_gas_field,
    lattice_gas_free_energy,
    lattice_gas_potential,
    lattice_gas_profile,
    stern_diffuse_potential,
    surface_charge,
    w90_nm,
)
from ionscope.spacecharge.model import _bernoulli_excess

C0 = 6e27
T = 298.0

# docs/guide/spacecharge.rst, table: theta, eps_r, L_D (nm), w90 depletion (+1.3 V), w90 accumulation (-1.3 V)
TABLE = [
    (0.50, 20, 0.10, 0.50, 0.50),
    (0.90, 50, 0.34, 0.82, 2.3),
    (0.99, 50, 1.09, 0.93, 7.7),
]


@pytest.mark.parametrize("theta, eps_r, ld, w_dep, w_acc", TABLE)
def test_methods_table_within_3_percent(theta, eps_r, ld, w_dep, w_acc):
    assert debye_length_nm(theta, eps_r, C0, T) == pytest.approx(ld, rel=0.03)
    assert w90_nm(1.3, theta, eps_r, C0, T) == pytest.approx(w_dep, rel=0.03)
    assert w90_nm(-1.3, theta, eps_r, C0, T) == pytest.approx(w_acc, rel=0.03)


@pytest.mark.parametrize("theta, eps_r, ld, w_dep, w_acc", TABLE)
def test_profile_reaches_ten_percent_of_the_drop_at_w90(theta, eps_r, ld, w_dep, w_acc):
    for psi0, w in ((1.3, w_dep), (-1.3, w_acc)):
        x = np.linspace(0, 6 * w, 2000)
        psi = lattice_gas_potential(x, psi0, theta, eps_r, C0, T)
        assert psi[0] == pytest.approx(psi0, abs=1e-12)
        assert np.all(np.diff(psi) * np.sign(psi0) <= 0)  # monotone decay to the bulk
        crossing = np.interp(0.1, (psi / psi0)[::-1], x[::-1])
        assert crossing == pytest.approx(w90_nm(psi0, theta, eps_r, C0, T), rel=1e-4)


def test_debye_length_formula():
    theta, eps_r = 0.95, 30
    expected = np.sqrt(EPSILON_0 * eps_r * K_B * T / (E_CHARGE**2 * C0 * (1 - theta))) * 1e9
    assert debye_length_nm(theta, eps_r, C0, T) == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize("theta", [0.5, 0.9, 0.999])
@pytest.mark.parametrize("sign", [1, -1])
def test_debye_hueckel_limit_at_small_psi0(theta, sign):
    psi0 = sign * 1e-5
    ld = debye_length_nm(theta, 40, C0, T)
    x = np.linspace(0, 12 * ld, 500)
    psi = lattice_gas_potential(x, psi0, theta, 40, C0, T)
    np.testing.assert_allclose(psi, psi0 * np.exp(-x / ld), rtol=1e-3, atol=1e-12 * abs(psi0))
    cap_dh = EPSILON_0 * 40 / (ld * 1e-9)
    assert differential_capacitance(psi0, theta, 40, C0, T) == pytest.approx(cap_dh, rel=1e-3)
    assert surface_charge(psi0, theta, 40, C0, T) == pytest.approx(cap_dh * psi0, rel=1e-3)


@pytest.mark.parametrize("psi0, tol", [(5.0, 0.03), (20.0, 0.01), (50.0, 0.004)])
def test_mott_schottky_widths_at_large_psi0(psi0, tol):
    # a parabola psi0 (1 - x/W)^2 holds 90 % of the drop within (1 - sqrt(0.1)) W
    frac = 1 - np.sqrt(0.1)
    theta, eps_r = 0.9, 50
    w_dep = depletion_width_nm(psi0, eps_r, C0)
    w_acc = accumulation_width_nm(-psi0, theta, eps_r, C0)
    assert w90_nm(psi0, theta, eps_r, C0, T) / (frac * w_dep) == pytest.approx(1, abs=tol)
    assert w90_nm(-psi0, theta, eps_r, C0, T) / (frac * w_acc) == pytest.approx(1, abs=tol)
    # the seed's asymmetry: accumulation / depletion width -> sqrt(theta / (1 - theta))
    assert w_acc / w_dep == pytest.approx(np.sqrt(theta / (1 - theta)), rel=1e-12)
    # surface charge of a fully depleted layer: sqrt(2 eps e c0 psi0) to leading order
    sigma_ms = np.sqrt(2 * EPSILON_0 * eps_r * E_CHARGE * C0 * psi0)
    assert surface_charge(psi0, theta, eps_r, C0, T) / sigma_ms == pytest.approx(1, abs=tol)


@pytest.mark.parametrize("theta, psi0", [(0.9, 1.3), (0.99, -1.3), (0.5, 0.3), (0.999, -0.5)])
def test_charge_neutrality_to_1e6(theta, psi0):
    """The profile by quadrature holds exactly the closed-form surface charge."""
    eps_r = 50
    sigma = surface_charge(psi0, theta, eps_r, C0, T)
    w = w90_nm(psi0, theta, eps_r, C0, T)
    ld = debye_length_nm(theta, eps_r, C0, T)

    def rho(x_nm):
        psi = lattice_gas_potential(np.array([x_nm]), psi0, theta, eps_r, C0, T)
        return lattice_gas_charge_density(psi, theta, C0, T)[0] * 1e-9  # per nm

    end = w + 40 * ld
    space, _ = quad(rho, 0, end, points=[0.2 * w, w, 2 * w], limit=400, epsabs=0, epsrel=1e-11)
    assert abs(space + sigma) < 1e-6 * abs(sigma)


@pytest.mark.parametrize("theta, psi0", [(0.9, -1.3), (0.99, 1.3), (0.5, 0.5)])
def test_profile_matches_scipy_solve_bvp(theta, psi0):
    """Peer check: the Poisson equation solved as a boundary-value problem by SciPy."""
    eps_r = 50
    eps = EPSILON_0 * eps_r
    length = w90_nm(psi0, theta, eps_r, C0, T) + 25 * debye_length_nm(theta, eps_r, C0, T)
    vt = K_B * T / E_CHARGE

    def rhs(x, y):  # y = (psi / V_T, dpsi/dx in V_T per nm)
        rho = lattice_gas_charge_density(y[0] * vt, theta, C0, T)
        return np.vstack([y[1], -rho / eps * 1e-18 / vt])

    def bc(ya, yb):
        return np.array([ya[0] - psi0 / vt, yb[0]])

    x = np.linspace(0, length, 400)
    guess = lattice_gas_potential(x, psi0, theta, eps_r, C0, T) / vt
    sol = solve_bvp(rhs, bc, x, np.vstack([guess, np.gradient(guess, x)]), tol=1e-8,
                    max_nodes=200000)
    assert sol.success
    xs = np.linspace(0, length, 1000)
    ours = lattice_gas_potential(xs, psi0, theta, eps_r, C0, T)
    np.testing.assert_allclose(ours, sol.sol(xs)[0] * vt, atol=2e-5 * abs(psi0))
    # first-integral field equals the BVP's field at the interface
    field = -sol.sol(0.0)[1] * vt * 1e9
    assert interface_field(psi0, theta, eps_r, C0, T) == pytest.approx(field, rel=1e-3)


def test_concentration_occupancy_limits():
    psi = np.array([-5.0, -0.05, 0.0, 0.05, 5.0])
    c = lattice_gas_concentration(psi, 0.9, C0, T)
    assert c[2] == pytest.approx(C0, rel=1e-14)
    assert c[0] == pytest.approx(C0 / 0.9, rel=1e-12)  # saturation: every site filled
    assert c[-1] < 1e-60 * C0  # full depletion
    assert np.all(np.diff(c) < 0)
    assert np.all(c <= C0 / 0.9)
    # theta = 1/2: particle-hole symmetry c(psi) + c(-psi) = c_max
    half = lattice_gas_concentration(psi, 0.5, C0, T)
    np.testing.assert_allclose(half + half[::-1], 2 * C0, rtol=1e-14)
    # dilute limit: Boltzmann
    dilute = lattice_gas_concentration(psi[1:4] * 0.05, 1e-9, C0, T)
    np.testing.assert_allclose(dilute, C0 * np.exp(-psi[1:4] * 0.05 * E_CHARGE / (K_B * T)),
                               rtol=1e-6)


@pytest.mark.parametrize("theta", [0.5, 0.9, 0.999999])
def test_excess_free_energy_against_mpmath(theta):
    """The cancellation-free bracket ln(theta + (1 - theta) e^v) - (1 - theta) v."""
    mpmath.mp.dps = 50
    v = np.array([-300, -40.0, -1.0, -1e-2 - 1e-9, -1e-2 + 1e-9, -1e-5, 1e-7, 3e-3, 0.5, 29.9,
                  30.1, 400.0])
    ours = _bernoulli_excess(v, theta)
    th = mpmath.mpf(theta)
    exact = [float(mpmath.log(th + (1 - th) * mpmath.exp(mpmath.mpf(x))) - (1 - th) * mpmath.mpf(x))
             for x in v]
    np.testing.assert_allclose(ours, exact, rtol=1e-9)


def test_first_integral_is_consistent_with_the_field():
    theta, eps_r, psi0 = 0.95, 30, -0.8
    x = np.linspace(0, 10, 4001)
    psi = lattice_gas_potential(x, psi0, theta, eps_r, C0, T)
    field = lattice_gas_field(psi, theta, eps_r, C0, T)
    np.testing.assert_allclose(field[1:-1], -np.gradient(psi, x * 1e-9)[1:-1], rtol=2e-3,
                               atol=1e-4 * abs(field[0]))
    energy = lattice_gas_free_energy(psi, theta, C0, T)
    np.testing.assert_allclose(energy, 0.5 * EPSILON_0 * eps_r * field**2, rtol=1e-12)


def test_stern_layer_is_a_series_capacitor():
    theta, eps_r, psi0, d, eps_s = 0.9, 50, 1.0, 0.3, 10
    psi_d = stern_diffuse_potential(psi0, theta, eps_r, C0, d, eps_s, T)
    sigma = surface_charge(psi_d, theta, eps_r, C0, T)
    assert 0 < psi_d < psi0
    assert psi0 - psi_d == pytest.approx(sigma * d * 1e-9 / (EPSILON_0 * eps_s), rel=1e-9)
    x = np.array([0.0, 0.15, 0.3, 0.3 + 1.0])
    psi = lattice_gas_potential(x, psi0, theta, eps_r, C0, T, stern_nm=d, stern_eps_r=eps_s)
    assert psi[1] == pytest.approx(0.5 * (psi0 + psi_d), rel=1e-12)  # linear in the core
    assert psi[2] == pytest.approx(psi_d, rel=1e-9)
    assert psi[3] == pytest.approx(lattice_gas_potential([1.0], psi_d, theta, eps_r, C0, T)[0],
                                   rel=1e-9)
    ds = lattice_gas_profile(psi0, theta, eps_r, C0, T, stern_nm=d, stern_eps_r=eps_s)
    c_diff = differential_capacitance(psi_d, theta, eps_r, C0, T)
    c_stern = EPSILON_0 * eps_s / (d * 1e-9)
    assert float(ds["capacitance"]) == pytest.approx(1 / (1 / c_diff + 1 / c_stern), rel=1e-9)
    # a vanishing Stern layer gives back the plain layer
    assert stern_diffuse_potential(psi0, theta, eps_r, C0, 0.0) == psi0


def test_second_defect_dilute_pair_is_gouy_chapman():
    """Dilute cation + anion-like defect at equal density: sigma = sqrt(8 eps kT c0) sinh(u/2)."""
    c0, theta, eps_r = 1e25, 1e-10, 20
    pair = MobileDefect(c0, theta, charge=-1)
    for psi0 in (-0.2, 0.05, 0.3):
        ours = surface_charge(psi0, theta, eps_r, c0, T, second_defect=pair)
        gc = np.sqrt(8 * EPSILON_0 * eps_r * K_B * T * c0) * np.sinh(psi0 * E_CHARGE / (2 * K_B * T))
        assert ours == pytest.approx(gc, rel=1e-5)
    ld_pair = debye_length_nm(theta, eps_r, c0, T, second_defect=pair)
    assert ld_pair == pytest.approx(debye_length_nm(theta, eps_r, c0, T) / np.sqrt(2), rel=1e-6)


def test_second_defect_profile_is_neutral_and_screens():
    theta, eps_r, psi0 = 0.9, 50, 0.6
    defect = MobileDefect(1e26, 0.2, charge=-1)
    ds = lattice_gas_profile(psi0, theta, eps_r, C0, T, second_defect=defect, points=4000)
    single = lattice_gas_profile(psi0, theta, eps_r, C0, T)
    assert float(ds["w90"]) < float(single["w90"])  # the extra carrier screens more
    assert float(ds["c_defect"][0]) > 1e26  # the negative defect piles up at the positive side
    sigma = float(ds["surface_charge"])
    space = np.trapezoid(ds["rho"].values, ds["position"].values * 1e-9)
    assert space == pytest.approx(-sigma, rel=2e-3)


def test_profile_dataset_has_units_and_provenance():
    ds = lattice_gas_profile(-1.3, 0.99, 50, C0, T, length_nm=40, points=2000)
    assert ds["psi"].dims == ("position",) and ds.sizes["position"] == 2000
    units = {name: ds[name].attrs["units"] for name in ds.data_vars}
    assert units == {"psi": "V", "c_li": "m^-3", "rho": "C/m^3", "field": "V/m", "w90": "nm",
                     "debye_length": "nm", "surface_charge": "C/m^2", "capacitance": "F/m^2",
                     "interface_field": "V/m", "psi_diffuse": "V"}
    assert ds["position"].attrs["units"] == "nm"
    assert float(ds["w90"]) == pytest.approx(7.7, rel=0.03)
    assert float(ds["surface_charge"]) < 0  # negative electrode
    step = json.loads(ds.attrs["provenance"])[-1]
    assert step["step"] == "ionscope.spacecharge.lattice_gas_profile"
    assert step["params"]["psi0_V"] == -1.3
    # rho = e (c - c0) everywhere
    np.testing.assert_allclose(ds["rho"].values, E_CHARGE * (ds["c_li"].values - C0), rtol=1e-9,
                               atol=1e-12 * E_CHARGE * C0)


@pytest.mark.parametrize("kwargs, error, match", [
    (dict(theta=1.0), ConfigError, "strictly between 0 and 1"),
    (dict(theta=0.0), ConfigError, "strictly between 0 and 1"),
    (dict(eps_r=-3), ConfigError, "positive"),
    (dict(c0_m3=0.0), ConfigError, "positive finite concentration"),
    (dict(x_nm=[-1.0, 2.0]), InputError, "negative distances"),
    (dict(x_nm=[np.nan]), InputError, "NaN"),
    (dict(psi0_V=float("inf")), ConfigError, "finite"),
])
def test_bad_parameters_are_config_errors_and_bad_positions_input_errors(kwargs, error, match):
    args = dict(x_nm=[0.0, 1.0], psi0_V=1.0, theta=0.9, eps_r=50, c0_m3=C0) | kwargs
    with pytest.raises(error, match=match):
        lattice_gas_potential(**args)


def test_profile_too_short_is_a_config_error():
    with pytest.raises(ConfigError, match="shorter than w90"):
        lattice_gas_profile(-1.3, 0.99, 50, C0, T, length_nm=2.0)
    with pytest.raises(ConfigError, match="flat profile"):
        lattice_gas_profile(0.0, 0.99, 50, C0, T)
