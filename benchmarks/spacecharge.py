"""Benchmark: lattice-gas space-charge profiles, biased cells and joint fits.

Prints one JSON object. Run:

    .venv/bin/python benchmarks/spacecharge.py

(a) a 2,000-point profile (Fermi-Dirac lattice gas, METHODS section 6: c0 = 6e27 m^-3,
    |psi0| = 1.3 V, theta = 0.99, eps_r = 50; depletion and accumulation) by the first-integral
    quadrature of ``lattice_gas_potential``, against the 50 ms target and against
    ``scipy.integrate.solve_bvp`` on the same problem (Dirichlet at the interface and at
    w90 + 25 L_D, tolerance 1e-6, same 2,000 output points), with the largest difference;
(b) the Dataset wrapper ``lattice_gas_profile`` (2,000 points: psi, c, rho, E, w90, charge,
    capacitance);
(c) a biased finite cell (2,000 nodes, Newton on the bordered tridiagonal system) against
    ``solve_bvp`` with the bulk potential as an unknown parameter and the Li count as an extra
    equation (thin cell, overlapping layers), with the largest difference;
(d) a joint fit of a 400-point potential profile and a 400-point Li profile (8 free parameters).
"""

from __future__ import annotations

import json
import platform
import time

import numpy as np
from scipy.integrate import solve_bvp

from _timing import best_of

from ionscope.constants import E_CHARGE, EPSILON_0, K_B
from ionscope.spacecharge import (
    debye_length_nm,
    lattice_gas_charge_density,
    lattice_gas_concentration,
    lattice_gas_potential,
    lattice_gas_profile,
    w90_nm,
)
from ionscope.spacecharge.bias import solve_bias
from ionscope.spacecharge.fit import fit_spacecharge, interface_profile

C0, THETA, EPS_R, T = 6e27, 0.99, 50.0, 298.15
POINTS = 2000
TARGET_S = 0.050


def scipy_profile(psi0: float, x: np.ndarray, length: float):
    vt = K_B * T / E_CHARGE
    eps = EPSILON_0 * EPS_R

    def rhs(s, y):
        rho = lattice_gas_charge_density(y[0] * vt, THETA, C0, T)
        return np.vstack([y[1], -rho / eps * 1e-18 / vt])

    def bc(ya, yb):
        return np.array([ya[0] - psi0 / vt, yb[0]])

    mesh = np.linspace(0, length, 200)
    guess = psi0 / vt * np.exp(-mesh / (0.3 * length))
    sol = solve_bvp(rhs, bc, mesh, np.vstack([guess, np.gradient(guess, mesh)]), tol=1e-6,
                    max_nodes=500000)
    if not sol.success:
        raise RuntimeError(sol.message)
    return sol.sol(x)[0] * vt


def scipy_bias(bias: float, length: float, theta: float, x: np.ndarray):
    vt = K_B * T / E_CHARGE
    eps = EPSILON_0 * EPS_R

    def rhs(s, y, p):
        c = lattice_gas_concentration((y[0] - p[0]) * vt, theta, C0, T)
        return np.vstack([y[1], -E_CHARGE * (c - C0) / eps * 1e-18 / vt, (c - C0) / C0])

    def bc(ya, yb, p):
        return np.array([ya[0] - bias / vt, yb[0], ya[2], yb[2]])

    mesh = np.linspace(0, length, 200)
    y0 = np.vstack([bias / vt * (1 - mesh / length), np.full_like(mesh, -bias / vt / length),
                    np.zeros_like(mesh)])
    sol = solve_bvp(rhs, bc, mesh, y0, p=[bias / vt / 2], tol=1e-6, max_nodes=500000)
    if not sol.success:
        raise RuntimeError(sol.message)
    return sol.sol(x)[0] * vt


def main() -> None:
    results: dict = {"machine": platform.processor() or platform.machine(),
                     "python": platform.python_version(), "points": POINTS,
                     "target_ms": TARGET_S * 1e3}
    ld = debye_length_nm(THETA, EPS_R, C0, T)
    profiles = {}
    for name, psi0 in (("depletion", 1.3), ("accumulation", -1.3)):
        length = w90_nm(psi0, THETA, EPS_R, C0, T) + 25 * ld
        x = np.linspace(0, length, POINTS)
        ours_t = best_of(lambda: lattice_gas_potential(x, psi0, THETA, EPS_R, C0, T), repeat=20)
        ours = lattice_gas_potential(x, psi0, THETA, EPS_R, C0, T)
        start = time.perf_counter()
        peer = scipy_profile(psi0, x, length)
        peer_t = min(time.perf_counter() - start,
                     best_of(lambda: scipy_profile(psi0, x, length), repeat=2))
        profiles[name] = {
            "psi0_V": psi0, "length_nm": length,
            "ionscope_ms": ours_t * 1e3, "scipy_solve_bvp_ms": peer_t * 1e3,
            "speedup_vs_solve_bvp": peer_t / ours_t,
            "fraction_of_target": ours_t / TARGET_S,
            "max_abs_difference_V": float(np.max(np.abs(ours - peer))),
        }
    results["profile"] = profiles
    results["profile_dataset_ms"] = best_of(
        lambda: lattice_gas_profile(-1.3, THETA, EPS_R, C0, T, points=POINTS), repeat=10) * 1e3

    bias, length, theta = 0.4, 3.0, 0.9
    sol = solve_bias(bias, length, theta, EPS_R, C0, T, points=POINTS)
    ours_t = best_of(lambda: solve_bias(bias, length, theta, EPS_R, C0, T, points=POINTS),
                     repeat=10)
    peer_t = best_of(lambda: scipy_bias(bias, length, theta, sol.x_nm), repeat=2)
    peer = scipy_bias(bias, length, theta, sol.x_nm)
    thick_t = best_of(lambda: solve_bias(2.6, 200.0, THETA, EPS_R, C0, T, points=POINTS),
                      repeat=10)
    results["bias"] = {
        "thin_cell": {"bias_V": bias, "thickness_nm": length, "theta": theta,
                      "ionscope_ms": ours_t * 1e3, "scipy_solve_bvp_ms": peer_t * 1e3,
                      "speedup_vs_solve_bvp": peer_t / ours_t,
                      "max_abs_difference_V": float(np.max(np.abs(sol.phi_V - peer)))},
        "thick_cell_2p6V_200nm_ms": thick_t * 1e3,
    }

    x = np.arange(-10.0, 30.0, 0.1)
    rng = np.random.default_rng(0)
    kw = dict(psi0_V=-1.3, theta=0.95, eps_r=EPS_R, c0_m3=C0)
    v = interface_profile(x, x0_nm=0.3, psf_nm=0.5, offset=0.1, **kw) + rng.normal(0, 0.01, x.size)
    li = interface_profile(x, x0_nm=0.3, psf_nm=0.7, quantity="li", offset=0.05, scale=0.8,
                           **kw) + rng.normal(0, 0.01, x.size)
    fit_t = best_of(lambda: fit_spacecharge(x, v, 0.01, li=li, li_sigma=0.01, side="right"),
                    repeat=3)
    fit = fit_spacecharge(x, v, 0.01, li=li, li_sigma=0.01, side="right")
    results["joint_fit"] = {"points": [x.size, x.size], "free_parameters": len(fit.free),
                            "seconds": fit_t, "model_evaluations": fit.nfev,
                            "theta_error": abs(fit.values["theta"] - 0.95)}
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
