r"""A finite solid electrolyte between two blocking electrodes under an applied bias.

The electrolyte occupies :math:`0 \le x \le L`; the electrode at :math:`x = 0` is held at
:math:`\phi = V` (the bias), the one at :math:`x = L` at 0. Blocking electrodes pass no ions, so
in equilibrium every mobile species keeps a uniform electrochemical potential and its number is
conserved: with :math:`\mu` the (unknown) potential at which the local concentration equals the
bulk value,

.. math::

    c_i(x) = \frac{c_{\max,i}}{1 + A_i\,e^{z_i(\phi(x) - \mu_i)/V_T}}, \qquad
    \int_0^L [c_i(x) - c_{i,0}]\,dx = 0, \qquad
    \varepsilon_0\varepsilon_r \phi'' = -e \sum_i z_i [c_i - c_{i,0}].

The layers at the two electrodes differ (depletion of Li+ at the positive electrode,
saturated accumulation at the negative one, :mod:`ionscope.spacecharge.model`), so the bulk
potential :math:`\mu` is not :math:`V/2`: it settles where the two layers' charges balance.

Discretisation: cell-centred finite volumes on a mesh graded towards both electrodes (first
step a quarter of the smallest layer length), Dirichlet electrodes or, with a Stern / core layer
of thickness :math:`d_s` and permittivity :math:`\varepsilon_s`, Robin boundaries
:math:`\varepsilon\phi'(0) = \varepsilon_s(\phi(0) - V)/d_s`. Unknowns are the node potentials
and one :math:`\mu_i` per species; the conservation constraints border the tridiagonal
Jacobian, which Newton's method solves by block elimination (two banded solves per iteration,
a backtracking line search on the residual). The finite-volume form conserves charge exactly:
the two electrode charges are equal and opposite to rounding.

References
----------
J.J. Bikerman, Phil. Mag. 33 (1942) 384. M.Z. Bazant, K. Thornton, A. Ajdari, Phys. Rev. E 70
(2004) 021506 (blocking electrodes, charge conservation). J. Maier, Prog. Solid State Chem. 23
(1995) 171.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import xarray as xr
from scipy.linalg import solve_banded
from scipy.optimize import brentq

from ionscope.constants import E_CHARGE, EPSILON_0
from ionscope.data import signal, with_provenance
from ionscope.errors import ConfigError, ConvergenceError
from ionscope.validation import Interval, validate_params
from ionscope.spacecharge.model import (
    MAX_INTERFACE_POTENTIAL_V,
    MAX_LENGTH_NM,
    MAX_EPS_R,
    MAX_POINTS,
    MobileDefect,
    _check_scalar,
    _gamma,
    _occupancy,
    _system,
    _System,
    material_constraints,
    differential_capacitance,
    lattice_gas_potential,
    stern_diffuse_potential,
    surface_charge,
)

__all__ = ["BiasSolution", "graded_mesh", "solve_bias", "bias_profile"]


class BiasSolution(NamedTuple):
    """The equilibrium of a biased cell (all arrays along the mesh ``x_nm``)."""

    x_nm: np.ndarray  #: node positions (nm), 0 .. L, graded towards both electrodes
    phi_V: np.ndarray  #: electrostatic potential (V); electrodes at ``bias`` and 0
    mu_V: np.ndarray  #: per species, the potential at which c_i = c_i0 (V); [0] is Li+
    c_li: np.ndarray  #: Li+ concentration (m^-3)
    c_defect: np.ndarray | None  #: second defect concentration (m^-3) or None
    rho: np.ndarray  #: space-charge density (C/m^3)
    field: np.ndarray  #: -dphi/dx at the nodes (V/m)
    sigma_left: float  #: electrode charge at x = 0 (C/m^2)
    sigma_right: float  #: electrode charge at x = L (C/m^2)
    space_charge: float  #: integral of rho over the electrolyte (C/m^2)
    iterations: int  #: Newton iterations used
    residual: float  #: final max-norm of the scaled residual


def graded_mesh(length: float, points: int, h_min: float, growth: float = 1.02) -> np.ndarray:
    """Nodes on ``[0, length]``, symmetric, with steps ``min(h_min * growth^k, H)`` from both
    ends (``H`` chosen so the steps add up); uniform if that is already finer than ``h_min``."""
    points = int(points)
    if points < 5:
        raise ConfigError(f"points = {points} must be >= 5 for a bias solve")
    n_steps = points - 1
    if length / n_steps <= h_min:
        return np.linspace(0.0, length, points)
    half = n_steps // 2
    k = np.arange(half)
    geo = h_min * growth ** k

    def total(cap: float) -> float:
        steps = np.minimum(geo, cap)
        extra = cap if n_steps % 2 else 0.0
        return 2 * steps.sum() + extra - length

    if total(geo[-1]) < 0:  # even the uncapped geometric mesh is too short: grow faster
        ratio = brentq(lambda r: 2 * h_min * (r ** half - 1) / (r - 1)
                       + (h_min * r ** half if n_steps % 2 else 0.0) - length,
                       1.0 + 1e-12, 10.0)
        geo = h_min * ratio ** k
        cap = geo[-1] * ratio
    else:
        cap = brentq(total, h_min, geo[-1], xtol=1e-14 * length)
    steps = np.minimum(geo, cap)
    middle = [cap] if n_steps % 2 else []
    h = np.concatenate([steps, middle, steps[::-1]])
    x = np.concatenate([[0.0], np.cumsum(h)])
    x *= length / x[-1]
    return x


def _rho_and_slopes(u: np.ndarray, nu: np.ndarray, sy: _System):
    """Scaled charge r = rho/(e c_ref), dr/du, and per species the occupancy terms."""
    r = np.zeros_like(u)
    dr = np.zeros_like(u)
    per = []
    for s, (w, z, th) in enumerate(zip(sy.weight, sy.charge, sy.theta)):
        occ = _occupancy(z * (u - nu[s]), th)
        slope = occ * (1.0 - occ)
        r += w * z * (occ - th)
        dr -= w * z * z * slope
        per.append((w, z, th, occ, slope))
    return r, dr, per


def _initial_guess(x_abs_nm, bias_V, sy: _System, theta, eps_r, c0, temperature_K, stern_nm,
                   stern_eps_r, second_defect, thickness_nm):
    """Thick-cell guess: the bulk potential where the two semi-infinite layers' charges balance,
    and the sum of the two layers' potentials on top of it (scaled by V_T)."""
    kw = dict(second_defect=second_defect, stern_nm=stern_nm, stern_eps_r=stern_eps_r)

    def sigma(psi_e: float) -> float:
        if psi_e == 0:
            return 0.0
        psi_d = stern_diffuse_potential(psi_e, theta, eps_r, c0, stern_nm, stern_eps_r,
                                        temperature_K, second_defect)
        return surface_charge(psi_d, theta, eps_r, c0, temperature_K, second_defect)

    lo, hi = min(bias_V, 0.0), max(bias_V, 0.0)
    if hi - lo < 1e-12:
        mu = 0.0
    else:
        mu = brentq(lambda m: sigma(bias_V - m) + sigma(-m), lo, hi, xtol=1e-14, rtol=1e-12)
    left = lattice_gas_potential(x_abs_nm, bias_V - mu, theta, eps_r, c0, temperature_K, **kw)
    right = lattice_gas_potential(np.maximum(thickness_nm - x_abs_nm, 0.0), -mu, theta, eps_r,
                                  c0, temperature_K, **kw)
    return (mu + left + right) / sy.vt, mu / sy.vt


def solve_bias(
    bias_V: float, thickness_nm: float, theta: float, eps_r: float, c0_m3: float,
    temperature_K: float = 298.15, *, points: int = 2000,
    second_defect: MobileDefect | None = None, stern_nm: float = 0.0,
    stern_eps_r: float | None = None, tol: float = 1e-10, max_iter: int = 60,
    initial: BiasSolution | None = None,
) -> BiasSolution:
    r"""Equilibrium of a lattice-gas electrolyte between two blocking electrodes under bias.

    Parameters
    ----------
    bias_V : float
        Potential of the electrode at ``x = 0`` relative to the one at ``x = L`` (V); either sign.
    thickness_nm : float
        Electrode-to-electrode distance ``L`` (nm), including any Stern layers.
    theta, eps_r, c0_m3, temperature_K, second_defect
        As in :func:`ionscope.spacecharge.lattice_gas_potential`.
    points : int
        Mesh nodes (graded towards both electrodes).
    stern_nm, stern_eps_r : float, optional
        Thickness (nm) and permittivity of a charge-free Stern / core layer in front of each
        electrode (Robin boundaries); the mesh covers the electrolyte between them.
    tol : float
        Newton stops when the max-norm of the scaled residual and of the update fall below it.
    max_iter : int
        Newton iteration limit.
    initial : BiasSolution, optional
        A previous solution on the same mesh to start from (continuation in the bias).

    Returns
    -------
    BiasSolution

    Raises
    ------
    ConvergenceError
        If Newton's method does not converge within ``max_iter``.
    """
    bias_V = _check_scalar(bias_V, "bias_V")
    thickness_nm = _check_scalar(thickness_nm, "thickness_nm", positive=True)
    stern_nm = _check_scalar(stern_nm, "stern_nm")
    if stern_nm < 0:
        raise ConfigError(f"stern_nm = {stern_nm} must be >= 0")
    sy = _system(theta, eps_r, c0_m3, temperature_K, second_defect)
    eps_s_r = eps_r if stern_eps_r is None else _check_scalar(stern_eps_r, "stern_eps_r",
                                                             positive=True)
    n_sp = len(sy.weight)
    u_left, u_right = bias_V / sy.vt, 0.0
    # mesh: resolve the steepest layer (field at the full bias) and the Debye tail
    u_max = max(abs(bias_V) / sy.vt, 1.0)
    slope = np.sqrt(2 * float(_gamma(np.array([u_max, -u_max]), sy).max()))
    h_min = min(0.1 / max(slope, 1e-300), 0.05 / sy.kappa)
    if 2 * stern_nm >= thickness_nm:
        raise ConfigError(
            f"thickness_nm = {thickness_nm} nm leaves no electrolyte between two Stern layers of "
            f"{stern_nm} nm; give a thicker cell or a thinner Stern layer"
        )
    length = (thickness_nm - 2 * stern_nm) / sy.ell_nm
    if initial is not None:
        x_hat = (np.asarray(initial.x_nm) - stern_nm) / sy.ell_nm
        if x_hat.size != points or abs(x_hat[-1] - length) > 1e-9 * length:
            raise ConfigError("initial solution is on a different mesh; solve without it")
    else:
        x_hat = graded_mesh(length, points, h_min)
    dx = np.diff(x_hat)
    h = np.empty_like(x_hat)
    h[1:-1] = 0.5 * (dx[1:] + dx[:-1])
    h[0], h[-1] = 0.5 * dx[0], 0.5 * dx[-1]
    robin = stern_nm > 0
    gamma_b = (eps_s_r / eps_r) / (stern_nm / sy.ell_nm) if robin else 0.0
    if initial is not None:
        u = np.asarray(initial.phi_V) / sy.vt
        nu = np.asarray(initial.mu_V) / sy.vt
    else:
        u, nu0 = _initial_guess(stern_nm + x_hat * sy.ell_nm, bias_V, sy, theta, eps_r, c0_m3,
                                temperature_K, stern_nm, stern_eps_r, second_defect,
                                thickness_nm)
        nu = np.full(n_sp, nu0)
    inv = 1.0 / dx
    total_h = h.sum()

    def residual(u, nu):
        r, dr, per = _rho_and_slopes(u, nu, sy)
        flux = (u[1:] - u[:-1]) * inv
        f = np.empty(u.size + n_sp)
        f[1:u.size - 1] = flux[1:] - flux[:-1] + h[1:-1] * r[1:-1]
        if robin:
            f[0] = flux[0] - gamma_b * (u[0] - u_left) + h[0] * r[0]
            f[u.size - 1] = gamma_b * (u_right - u[-1]) - flux[-1] + h[-1] * r[-1]
        else:
            f[0] = u[0] - u_left
            f[u.size - 1] = u[-1] - u_right
        for s, (w, z, th, occ, _) in enumerate(per):
            f[u.size + s] = np.dot(h, occ - th) / total_h
        return f, r, dr, per

    n = u.size
    f, r, dr, per = residual(u, nu)
    norm = np.max(np.abs(f))
    it = 0
    for it in range(1, max_iter + 1):
        # tridiagonal block (banded form: upper, diagonal, lower)
        ab = np.zeros((3, n))
        ab[0, 1:] = inv
        ab[2, :-1] = inv
        diag = np.empty(n)
        diag[1:-1] = -inv[1:] - inv[:-1] + h[1:-1] * dr[1:-1]
        if robin:
            diag[0] = -inv[0] - gamma_b + h[0] * dr[0]
            diag[-1] = -gamma_b - inv[-1] + h[-1] * dr[-1]
        else:
            diag[0] = diag[-1] = 1.0
            ab[0, 1] = 0.0
            ab[2, -2] = 0.0
        ab[1] = diag
        # border: B[:, s] = d f_nodes / d nu_s ; C[s, :] = d g_s / d u ; D[s, s] = d g_s / d nu_s
        B = np.zeros((n, n_sp))
        C = np.zeros((n_sp, n))
        D = np.zeros((n_sp, n_sp))
        for s, (w, z, th, occ, sl) in enumerate(per):
            col = h * w * z * z * sl
            if not robin:
                col = col.copy()
                col[0] = col[-1] = 0.0
            B[:, s] = col
            C[s] = -h * z * sl / total_h
            D[s, s] = np.dot(h, z * sl) / total_h
        rhs = np.column_stack([-f[:n], B])
        sol = solve_banded((1, 1), ab, rhs)
        y, X = sol[:, 0], sol[:, 1:]
        schur = D - C @ X
        try:
            dnu = np.linalg.solve(schur, -f[n:] - C @ y)
        except np.linalg.LinAlgError:
            raise ConvergenceError(
                "the charge-conservation constraint became singular (a species is fully "
                "depleted or saturated everywhere); reduce the bias or increase the thickness"
            ) from None
        du = y - X @ dnu
        step = 1.0
        while True:
            u_new, nu_new = u + step * du, nu + step * dnu
            f_new, r_new, dr_new, per_new = residual(u_new, nu_new)
            new_norm = np.max(np.abs(f_new))
            if new_norm < norm or step < 1e-4:
                break
            step *= 0.5
        u, nu, f, r, dr, per, norm = u_new, nu_new, f_new, r_new, dr_new, per_new, new_norm
        if norm < tol and step * max(np.max(np.abs(du)), np.max(np.abs(dnu))) < 1e3 * tol:
            break
    else:
        raise ConvergenceError(
            f"the bias solve did not converge in {max_iter} Newton iterations (residual "
            f"{norm:.3g}); use more points, a smaller bias step (continuation) or a thicker cell"
        )
    scale_q = E_CHARGE * sy.c_ref
    eps = EPSILON_0 * eps_r
    flux = (u[1:] - u[:-1]) * inv
    du0 = flux[0] + h[0] * r[0]
    duL = flux[-1] - h[-1] * r[-1]
    field_scale = sy.vt / (sy.ell_nm * 1e-9)
    sigma_left = -eps * field_scale * du0
    sigma_right = eps * field_scale * duL
    grad = np.gradient(u, x_hat)
    grad[0], grad[-1] = du0, duL
    rho = scale_q * r
    c_li = sy.c_ref * sy.weight[0] * per[0][3]
    c_def = sy.c_ref * sy.weight[1] * per[1][3] if n_sp > 1 else None
    return BiasSolution(
        x_nm=x_hat * sy.ell_nm + stern_nm,
        phi_V=u * sy.vt,
        mu_V=nu * sy.vt,
        c_li=c_li,
        c_defect=c_def,
        rho=rho,
        field=-field_scale * grad,
        sigma_left=float(sigma_left),
        sigma_right=float(sigma_right),
        space_charge=float(np.dot(h, rho) * sy.ell_nm * 1e-9),
        iterations=it,
        residual=float(norm),
    )


def _w90_from(x: np.ndarray, psi: np.ndarray, fraction: float = 0.9) -> float:
    """Distance from ``x[0]`` to where ``psi`` first reaches ``(1 - fraction) psi[0]``."""
    target = (1 - fraction) * psi[0]
    rel = (psi - target) * np.sign(psi[0])
    below = np.nonzero(rel <= 0)[0]
    if below.size == 0:
        return float("nan")
    i = int(below[0])
    if i == 0:
        return 0.0
    frac = rel[i - 1] / (rel[i - 1] - rel[i])
    return float(abs(x[i - 1] + frac * (x[i] - x[i - 1]) - x[0]))


@validate_params({
    "bias_V": [Interval(float, -2 * MAX_INTERFACE_POTENTIAL_V, 2 * MAX_INTERFACE_POTENTIAL_V, unit="V")],
    "thickness_nm": [Interval(float, 0, MAX_LENGTH_NM, closed="right", unit="nm")],
    "points": [Interval(int, 16, MAX_POINTS)],
    "stern_nm": [Interval(float, 0, MAX_LENGTH_NM, unit="nm")],
    "stern_eps_r": [Interval(float, 1, MAX_EPS_R), None],
    **material_constraints(),
})
def bias_profile(
    bias_V: float, thickness_nm: float, theta: float, eps_r: float, c0_m3: float,
    temperature_K: float = 298.15, *, points: int = 2000,
    second_defect: MobileDefect | None = None, stern_nm: float = 0.0,
    stern_eps_r: float | None = None, capacitance_step_V: float = 1e-3,
) -> xr.Dataset:
    r"""Both space-charge layers of a biased cell as a Dataset with units.

    Parameters are those of :func:`solve_bias`; ``capacitance_step_V`` is the bias step of the
    finite-difference cell capacitance :math:`d\sigma_\mathrm{left}/dV`.

    Returns
    -------
    xarray.Dataset
        Along ``position`` (nm from the left electrode; graded mesh): ``phi`` (V), ``psi``
        (V, relative to the bulk potential ``mu``), ``c_li`` (m^-3), ``rho`` (C/m^3), ``field``
        (V/m) [, ``c_defect``]; along ``side`` (``left``, ``right``): ``electrode_potential``,
        ``interface_potential`` (psi at the diffuse-layer boundary, V), ``w90`` (nm),
        ``surface_charge`` (C/m^2), ``capacitance`` (F/m^2, semi-infinite layer at that
        potential); scalars ``bulk_potential`` (V), ``space_charge`` (C/m^2),
        ``cell_capacitance`` (F/m^2), ``debye_length`` (nm), ``newton_iterations``.

    Computes: solves the cell in memory and returns a numpy-backed Dataset.
    """
    kw = dict(points=points, second_defect=second_defect, stern_nm=stern_nm,
              stern_eps_r=stern_eps_r)
    sol = solve_bias(bias_V, thickness_nm, theta, eps_r, c0_m3, temperature_K, **kw)
    cap_step = _check_scalar(capacitance_step_V, "capacitance_step_V", positive=True)
    plus = solve_bias(bias_V + cap_step, thickness_nm, theta, eps_r, c0_m3, temperature_K,
                      initial=sol, **kw)
    cell_cap = (plus.sigma_left - sol.sigma_left) / cap_step
    mu = float(sol.mu_V[0])
    psi = sol.phi_V - mu
    x = sol.x_nm
    sy = _system(theta, eps_r, c0_m3, temperature_K, second_defect)
    sides = {}
    for side, idx, xs in (("left", slice(None), x - x[0]), ("right", slice(None, None, -1),
                                                              x[-1] - x)):
        p = psi[idx]
        xs_ = xs[idx]
        w90 = _w90_from(xs_, p)
        if stern_nm > 0:
            w90 = w90 + stern_nm if np.isfinite(w90) else w90
        cap = differential_capacitance(p[0], theta, eps_r, c0_m3, temperature_K, second_defect)
        if stern_nm > 0:
            eps_s = EPSILON_0 * (eps_r if stern_eps_r is None else stern_eps_r)
            cap = 1 / (1 / cap + stern_nm * 1e-9 / eps_s)
        sides[side] = dict(
            electrode_potential=bias_V if side == "left" else 0.0,
            interface_potential=float(p[0]),
            w90=w90,
            surface_charge=sol.sigma_left if side == "left" else sol.sigma_right,
            capacitance=cap,
        )
    pos = {"position": x}
    data = {
        "phi": signal(sol.phi_V, ("position",), name="phi", units="V", coords=pos,
                      long_name="electrostatic potential"),
        "psi": signal(psi, ("position",), name="psi", units="V", coords=pos,
                      long_name="potential relative to the bulk (mu)"),
        "c_li": signal(sol.c_li, ("position",), name="c_li", units="m^-3", coords=pos,
                       long_name="mobile cation (Li+) concentration"),
        "rho": signal(sol.rho, ("position",), name="rho", units="C/m^3", coords=pos,
                      long_name="space-charge density"),
        "field": signal(sol.field, ("position",), name="field", units="V/m", coords=pos,
                        long_name="electric field -dphi/dx"),
    }
    if sol.c_defect is not None:
        data["c_defect"] = signal(sol.c_defect, ("position",), name="c_defect", units="m^-3",
                                  coords=pos, long_name="second mobile defect concentration")
    ds = xr.Dataset(data)
    ds["position"].attrs.update(units="nm", long_name="distance from the left electrode")
    units = dict(electrode_potential="V", interface_potential="V", w90="nm",
                 surface_charge="C/m^2", capacitance="F/m^2")
    for key, unit in units.items():
        ds[key] = xr.DataArray([sides["left"][key], sides["right"][key]], dims=("side",),
                               coords={"side": ["left", "right"]}, attrs={"units": unit})
    scalars = {
        "bulk_potential": (mu, "V"), "space_charge": (sol.space_charge, "C/m^2"),
        "cell_capacitance": (cell_cap, "F/m^2"), "debye_length": (sy.ell_nm / sy.kappa, "nm"),
        "newton_iterations": (sol.iterations, "1"),
    }
    for key, (value, unit) in scalars.items():
        ds[key] = xr.DataArray(value, attrs={"units": unit})
    params = dict(bias_V=float(bias_V), thickness_nm=float(thickness_nm), theta=float(theta),
                  eps_r=float(eps_r), c0_m3=float(c0_m3), temperature_K=float(temperature_K),
                  points=int(points), stern_nm=float(stern_nm))
    if stern_eps_r is not None:
        params["stern_eps_r"] = float(stern_eps_r)
    if second_defect is not None:
        params["second_defect"] = dict(c0_m3=second_defect.c0_m3, theta=second_defect.theta,
                                       charge=second_defect.charge)
    ds.attrs.update({k: v for k, v in params.items() if k != "second_defect"})
    ds.attrs["primary"] = "psi"
    return with_provenance(ds, "ionscope.spacecharge.bias_profile", params)

