r"""Lattice-gas (Bikerman / Fermi-Dirac) Poisson-Boltzmann model of a space-charge layer.

One mobile cation (Li\ :sup:`+`) occupies sites of density :math:`c_\max`; its bulk occupancy
is :math:`\theta = c_0 / c_\max` and an immobile background of charge :math:`-e c_0` keeps the
bulk neutral. With :math:`\psi = \phi - \phi_\mathrm{bulk}` and :math:`V_T = k_B T / e`,

.. math::

    c(\psi) = \frac{c_\max}{1 + A\,e^{\psi / V_T}}, \qquad A = \frac{1 - \theta}{\theta},
    \qquad \varepsilon_0 \varepsilon_r \psi'' = -e\,[c(\psi) - c_0].

The first integral for a field-free bulk is

.. math::

    \tfrac{1}{2} \varepsilon_0 \varepsilon_r \psi'^2 = F(\psi) = e\,c_\max V_T\,
    \Big[\ln\frac{1 + A e^{u}}{1 + A} - (1 - \theta)\,u\Big], \qquad u = \psi / V_T,

which gives the interface field, the surface charge and the differential capacitance in closed
form. The bracket is the cumulant-generating function of a Bernoulli(:math:`1-\theta`) variable
minus its mean term, so it is evaluated without cancellation (series for :math:`|u| < 10^{-2}`,
``log1p``/``expm1`` and ``logaddexp`` elsewhere). The profile follows from
:math:`x(\psi) = \int_\psi^{\psi_0} d\psi' / \sqrt{2F(\psi')/\varepsilon_0\varepsilon_r}`, done
here in the variable :math:`t = \ln|u|`, where the integrand is smooth and tends to the
Debye-Hueckel constant :math:`L_D` (so the logarithmic divergence at the bulk is exact), by
Gauss-Legendre panels; :math:`u(x)` is then a cubic Hermite interpolant with exact slopes and
an exact exponential tail - a 2,000-point profile costs about a millisecond.

Extensions, all in the same first integral:

- a second mobile defect of charge :math:`z e` on its own lattice
  (:class:`MobileDefect`); every species :math:`i` adds
  :math:`e\,c_{\max,i} V_T [\ln((1 + A_i e^{z_i u})/(1 + A_i)) - z_i (1 - \theta_i) u]` to
  :math:`F` and :math:`z_i e\,c_{i,0}` to the immobile background;
- a Stern / core layer of thickness :math:`d_s` and permittivity :math:`\varepsilon_s` free of
  mobile ions (a Robin boundary): :math:`\psi_0 = \psi_d + \sigma(\psi_d)\,d_s /
  (\varepsilon_0 \varepsilon_s)`, solved for the diffuse-layer potential :math:`\psi_d`.

Limits (tested): Debye-Hueckel at small :math:`|\psi_0|` (:math:`\psi = \psi_0 e^{-x/L_D}`,
:math:`C = \varepsilon_0\varepsilon_r / L_D`) with

.. math:: L_D = \sqrt{\varepsilon_0 \varepsilon_r k_B T / (e^2 c_0 (1 - \theta))},

the Mott-Schottky widths at large :math:`|\psi_0|`: depletion (:math:`\psi_0 > 0`)
:math:`\sqrt{2 \varepsilon_0\varepsilon_r \psi_0 / (e c_0)}`, accumulation
(:math:`\psi_0 < 0`) :math:`\sqrt{2 \varepsilon_0\varepsilon_r |\psi_0| / (e (c_\max - c_0))}`.

Sign conventions: ``x`` is the distance from the interface into the electrolyte (nm);
``surface_charge`` is the charge per area on the electrode side, :math:`\sigma =
\mathrm{sign}(\psi_0) \sqrt{2 \varepsilon_0 \varepsilon_r F(\psi_0)}` (Gouy-Chapman sign: positive
for a positive electrode), equal and opposite to the space charge :math:`\int \rho\,dx`.

References
----------
J.J. Bikerman, Phil. Mag. 33 (1942) 384 (lattice-gas Poisson-Boltzmann).
A.A. Kornyshev, J. Phys. Chem. B 111 (2007) 5545 (lattice-saturated double-layer capacitance).
M.Z. Bazant, M.S. Kilic, B.D. Storey, A. Ajdari, Adv. Colloid Interface Sci. 152 (2009) 48.
J. Maier, Prog. Solid State Chem. 23 (1995) 171 (space-charge layers in ionic solids).
N.J.J. de Klerk, M. Wagemaker, ACS Appl. Energy Mater. 1 (2018) 5609 (dense-carrier theory of
solid-electrolyte space-charge layers).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import NamedTuple

import numpy as np
from scipy.interpolate import CubicHermiteSpline
from scipy.optimize import brentq
from scipy.special import expit

from ionscope.compat import moved_names
from ionscope.constants import E_CHARGE, EPSILON_0, K_B
from ionscope.errors import ConfigError, InputError

__all__ = [
    "MobileDefect",
    "thermal_voltage",
    "lattice_gas_concentration",
    "lattice_gas_charge_density",
    "lattice_gas_free_energy",
    "lattice_gas_potential",
    "lattice_gas_field",
    "debye_length_nm",
    "depletion_width_nm",
    "accumulation_width_nm",
    "interface_field",
    "surface_charge",
    "differential_capacitance",
    "w90_nm",
    "stern_diffuse_potential",
]


# lattice_gas_profile moved to ionscope.spacecharge.wrappers (which imports this module)
__getattr__ = moved_names(__name__, {"lattice_gas_profile": "ionscope.spacecharge.wrappers"})

#: Bounds that keep a request physical and its arrays finite (the labelled wrappers declare
#: them): an interface potential beyond the widest electrochemical window, a profile longer than
#: 100 um or of more points than a fine mesh of a millimetre is a typing mistake, not a layer.
MAX_INTERFACE_POTENTIAL_V = 10.0
MAX_LENGTH_NM = 1e5
MAX_POINTS = 10**6
#: The same for the material: no material is more polarisable than a relaxor ferroelectric
#: (eps_r ~ 1e4 - 1e5), none holds more than ~1e29 atoms per m^3, and no battery works near 5000 K.
MAX_EPS_R = 1e5
MAX_C0_M3 = 1e30
MAX_TEMPERATURE_K = 5000.0


def material_constraints(c0: str = "c0_m3") -> dict[str, list]:
    """The declared constraints (:func:`ionscope.validation.validate_params`) of the material
    parameters ``theta``, ``eps_r``, the bulk concentration (named ``c0``) and ``temperature_K``."""
    from ionscope.validation import Interval

    return {
        "theta": [Interval(float, 0, 1, closed="neither")],
        "eps_r": [Interval(float, 1, MAX_EPS_R)],
        c0: [Interval(float, 0, MAX_C0_M3, closed="right", unit="m^-3")],
        "temperature_K": [Interval(float, 0, MAX_TEMPERATURE_K, closed="right", unit="K")],
    }

#: Below this |u| (in units of V_T) the excess free energy uses its Taylor series.
_SERIES_BELOW = 1e-2
#: Above this |u| the log uses logaddexp (no overflow of exp).
_LOGADDEXP_ABOVE = 30.0
#: Quadrature stops at |u| = this; below it u(x) is the exact Debye-Hueckel exponential.
_TAIL_U = 1e-7
#: Panel width in t = ln|u| for the Gauss-Legendre quadrature.
_PANEL = 0.05
_GL_ORDER = 5


# --------------------------------------------------------------------------- parameters


@dataclass(frozen=True)
class MobileDefect:
    """A mobile defect on its own lattice (the optional second species).

    Parameters
    ----------
    c0_m3 : float
        Bulk concentration (m^-3), > 0.
    theta : float
        Bulk site occupancy ``c0 / c_max``, in (0, 1).
    charge : int
        Charge number ``z`` (e.g. +1 for Li+, -1 for an electron or anion-like defect, +2 for an
        oxygen vacancy); non-zero.
    """

    c0_m3: float
    theta: float
    charge: int = 1

    def __post_init__(self) -> None:
        _check_species(self.c0_m3, self.theta, self.charge, "second_defect")


def _check_species(c0: float, theta: float, charge: float, what: str) -> None:
    if not (np.isfinite(c0) and c0 > 0):
        raise ConfigError(f"{what}: c0 = {c0!r} m^-3 must be a positive finite concentration")
    if not (np.isfinite(theta) and 0.0 < theta < 1.0):
        raise ConfigError(
            f"{what}: theta = {theta!r} must lie strictly between 0 and 1 (bulk site occupancy "
            "c0 / c_max)"
        )
    if not np.isfinite(charge) or charge == 0:
        raise ConfigError(f"{what}: charge number {charge!r} must be a non-zero number")


def _check_scalar(value: float, name: str, *, positive: bool = False) -> float:
    try:
        value = float(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{name} = {value!r} is not a number") from None
    if not np.isfinite(value):
        raise ConfigError(f"{name} = {value!r} must be finite")
    if positive and value <= 0:
        raise ConfigError(f"{name} = {value!r} must be positive")
    return value


class _System(NamedTuple):
    """A normalised lattice-gas system: lengths in units of ``ell_nm``, potentials in V_T."""

    vt: float  # thermal voltage (V)
    c_ref: float  # c_max of the first species (m^-3)
    eps: float  # eps0 * eps_r (F/m)
    ell_nm: float  # sqrt(eps V_T / (e c_ref)) in nm
    weight: tuple[float, ...]  # c_max_i / c_ref
    charge: tuple[float, ...]  # z_i
    theta: tuple[float, ...]  # theta_i
    c0: tuple[float, ...]  # c_i0 (m^-3)
    kappa: float  # sqrt(Gamma''(0)) = ell / L_D


def thermal_voltage(temperature_K: float = 298.15) -> float:
    """``k_B T / e`` in V."""
    temperature_K = _check_scalar(temperature_K, "temperature_K", positive=True)
    return K_B * temperature_K / E_CHARGE


def _system(theta, eps_r, c0_m3, temperature_K, second_defect=None) -> _System:
    theta = _check_scalar(theta, "theta")
    c0_m3 = _check_scalar(c0_m3, "c0_m3")
    _check_species(c0_m3, theta, 1, "mobile cation")
    eps_r = _check_scalar(eps_r, "eps_r", positive=True)
    vt = thermal_voltage(temperature_K)
    species = [(c0_m3, theta, 1.0)]
    if second_defect is not None:
        if not isinstance(second_defect, MobileDefect):
            raise InputError(
                "second_defect must be a MobileDefect(c0_m3, theta, charge), got "
                f"{type(second_defect).__name__}"
            )
        species.append((second_defect.c0_m3, second_defect.theta, float(second_defect.charge)))
    c_ref = c0_m3 / theta
    eps = EPSILON_0 * eps_r
    weight = tuple((c / th) / c_ref for c, th, _ in species)
    charge = tuple(z for *_, z in species)
    thetas = tuple(th for _, th, _ in species)
    kappa2 = sum(w * z * z * th * (1 - th) for w, z, th in zip(weight, charge, thetas))
    return _System(
        vt=vt,
        c_ref=c_ref,
        eps=eps,
        ell_nm=float(np.sqrt(eps * vt / (E_CHARGE * c_ref)) * 1e9),
        weight=weight,
        charge=charge,
        theta=thetas,
        c0=tuple(c for c, _, _ in species),
        kappa=float(np.sqrt(kappa2)),
    )


# --------------------------------------------------------------------------- kernels (numpy)


def _bernoulli_excess(v: np.ndarray, theta: float) -> np.ndarray:
    """``ln(theta + (1 - theta) e^v) - (1 - theta) v`` without cancellation or overflow."""
    v = np.asarray(v, dtype=np.float64)
    p = 1.0 - theta
    q = theta
    out = np.empty_like(v)
    a = np.abs(v)
    small = a < _SERIES_BELOW
    large = a > _LOGADDEXP_ABOVE
    mid = ~(small | large)
    if small.any():
        s = v[small]
        pq = p * q
        k3 = pq * (q - p)
        k4 = pq * (1 - 6 * pq)
        k5 = pq * (q - p) * (1 - 12 * pq)
        out[small] = s * s * (pq / 2 + s * (k3 / 6 + s * (k4 / 24 + s * k5 / 120)))
    if mid.any():
        s = v[mid]
        out[mid] = np.log1p(p * np.expm1(s)) - p * s
    if large.any():
        s = v[large]
        out[large] = np.logaddexp(np.log(q), np.log(p) + s) - p * s
    return out


def _occupancy(v: np.ndarray, theta: float) -> np.ndarray:
    """Site occupancy ``1 / (1 + A e^v)``, ``A = (1 - theta)/theta``."""
    return expit(-(np.asarray(v, dtype=np.float64) + np.log1p(-theta) - np.log(theta)))


def _gamma(u: np.ndarray, sy: _System) -> np.ndarray:
    """Dimensionless first integral ``F / (e c_ref V_T)`` at ``u = psi / V_T``."""
    total = np.zeros(np.shape(u))
    for w, z, th in zip(sy.weight, sy.charge, sy.theta):
        total = total + w * _bernoulli_excess(z * np.asarray(u, dtype=np.float64), th)
    return np.maximum(total, 0.0)


def _rho_over(u: np.ndarray, sy: _System) -> np.ndarray:
    """Charge density ``rho / (e c_ref)`` at ``u``."""
    total = np.zeros(np.shape(u))
    for w, z, th in zip(sy.weight, sy.charge, sy.theta):
        total = total + w * z * (_occupancy(z * np.asarray(u, dtype=np.float64), th) - th)
    return total


@lru_cache(maxsize=4)
def _gauss_legendre(n: int) -> tuple[np.ndarray, np.ndarray]:
    return np.polynomial.legendre.leggauss(n)


def _g_of_t(t: np.ndarray, sign: float, sy: _System) -> np.ndarray:
    """Integrand ``|u| / sqrt(2 Gamma(u))`` of ``dxi/dt`` at ``u = sign * exp(t)``."""
    u = sign * np.exp(t)
    gam = _gamma(u, sy)
    # Gamma comes from the cancellation-free series at small |u|, so the ratio tends smoothly
    # to 1 / kappa (the Debye-Hueckel limit) instead of losing digits
    return np.abs(u) / np.sqrt(2.0 * gam)


def _xi_between(t_lo: float, t_hi: float, sign: float, sy: _System) -> float:
    """``int_{t_lo}^{t_hi} g(t) dt`` by Gauss-Legendre panels (dimensionless distance)."""
    if t_hi <= t_lo:
        return 0.0
    n = max(1, int(np.ceil((t_hi - t_lo) / _PANEL)))
    edges = np.linspace(t_lo, t_hi, n + 1)
    nodes, weights = _gauss_legendre(_GL_ORDER)
    half = 0.5 * (edges[1:] - edges[:-1])
    mid = 0.5 * (edges[1:] + edges[:-1])
    t = mid[:, None] + half[:, None] * nodes[None, :]
    return float(np.sum(_g_of_t(t, sign, sy) * weights[None, :] * half[:, None]))


def _u_of_xi(xi: np.ndarray, u0: float, sy: _System) -> np.ndarray:
    """Dimensionless potential ``u`` at dimensionless distances ``xi >= 0`` from the interface."""
    xi = np.asarray(xi, dtype=np.float64)
    if u0 == 0.0:
        return np.zeros_like(xi)
    sign = float(np.sign(u0))
    t0 = float(np.log(abs(u0)))
    t_end = min(t0, float(np.log(_TAIL_U)))
    out = np.empty_like(xi)
    if t0 > t_end:
        n = max(2, int(np.ceil((t0 - t_end) / _PANEL)))
        edges = np.linspace(t0, t_end, n + 1)  # decreasing t, increasing xi
        nodes, weights = _gauss_legendre(_GL_ORDER)
        half = 0.5 * (edges[:-1] - edges[1:])
        mid = 0.5 * (edges[:-1] + edges[1:])
        t = mid[:, None] + half[:, None] * nodes[None, :]
        panel = np.sum(_g_of_t(t, sign, sy) * weights[None, :], axis=1) * half
        xi_nodes = np.concatenate([[0.0], np.cumsum(panel)])
        slope = -1.0 / _g_of_t(edges, sign, sy)  # dt/dxi
        xi_end = float(xi_nodes[-1])
        inside = xi <= xi_end
        if inside.any():
            spline = CubicHermiteSpline(xi_nodes, edges, slope, extrapolate=True)
            out[inside] = sign * np.exp(spline(xi[inside]))
    else:
        xi_end = 0.0
        inside = np.zeros(xi.shape, dtype=bool)
    tail = ~inside
    if tail.any():
        out[tail] = sign * np.exp(t_end - sy.kappa * (xi[tail] - xi_end))
    return out


# --------------------------------------------------------------------------- public kernels


def lattice_gas_concentration(
    psi_V, theta: float, c0_m3: float, temperature_K: float = 298.15, charge: int = 1
) -> np.ndarray:
    r"""Concentration of a lattice-gas species at potential ``psi`` (Fermi-Dirac occupancy).

    :math:`c = c_\max / (1 + A e^{z\psi/V_T})`, :math:`c_\max = c_0/\theta`,
    :math:`A = (1-\theta)/\theta`.

    Parameters
    ----------
    psi_V : array_like
        Potential relative to the bulk (V).
    theta : float
        Bulk site occupancy, in (0, 1).
    c0_m3 : float
        Bulk concentration (m^-3).
    temperature_K : float
        Temperature (K).
    charge : int
        Charge number of the species (+1 for Li+).

    Returns
    -------
    numpy.ndarray
        Concentration (m^-3), float64, same shape as ``psi_V``; ``c0`` at ``psi = 0``, between 0
        and ``c_max``.

    Examples
    --------
    >>> c = lattice_gas_concentration([0.0, -1.0, 1.0], 0.9, 6e27)
    >>> bool(abs(c[0] - 6e27) < 1e15 and c[1] <= 6e27 / 0.9 and c[2] < 1e12)
    True
    """
    psi = np.asarray(psi_V, dtype=np.float64)
    theta = _check_scalar(theta, "theta")
    c0_m3 = _check_scalar(c0_m3, "c0_m3")
    _check_species(c0_m3, theta, charge, "lattice_gas_concentration")
    vt = thermal_voltage(temperature_K)
    return (c0_m3 / theta) * _occupancy(charge * psi / vt, theta)


def lattice_gas_charge_density(
    psi_V, theta: float, c0_m3: float, temperature_K: float = 298.15,
    second_defect: MobileDefect | None = None,
) -> np.ndarray:
    """Space-charge density ``rho(psi) = e sum_i z_i (c_i(psi) - c_i0)`` (C/m^3)."""
    sy = _system(theta, 1.0, c0_m3, temperature_K, second_defect)
    u = np.asarray(psi_V, dtype=np.float64) / sy.vt
    return E_CHARGE * sy.c_ref * _rho_over(u, sy)


def lattice_gas_free_energy(
    psi_V, theta: float, c0_m3: float, temperature_K: float = 298.15,
    second_defect: MobileDefect | None = None,
) -> np.ndarray:
    r"""The first integral :math:`F(\psi) = \tfrac12 \varepsilon_0\varepsilon_r \psi'^2` (J/m^3).

    :math:`F = e V_T \sum_i c_{\max,i}[\ln((1 + A_i e^{z_i u})/(1 + A_i)) - z_i(1-\theta_i)u]`,
    non-negative, zero only at ``psi = 0``.
    """
    sy = _system(theta, 1.0, c0_m3, temperature_K, second_defect)
    u = np.asarray(psi_V, dtype=np.float64) / sy.vt
    return E_CHARGE * sy.c_ref * sy.vt * _gamma(u, sy)


def debye_length_nm(
    theta: float, eps_r: float, c0_m3: float, temperature_K: float = 298.15,
    second_defect: MobileDefect | None = None,
) -> float:
    r"""Lattice-gas Debye length (nm).

    :math:`L_D = \sqrt{\varepsilon_0\varepsilon_r k_B T / (e^2 \sum_i z_i^2 c_{i,0}(1-\theta_i))}`;
    for one cation :math:`\sqrt{\varepsilon_0\varepsilon_r k_B T / (e^2 c_0 (1 - \theta))}`.

    Examples
    --------
    >>> round(debye_length_nm(0.99, 50, 6e27, 298.0), 2)
    1.09
    """
    sy = _system(theta, eps_r, c0_m3, temperature_K, second_defect)
    return sy.ell_nm / sy.kappa


def depletion_width_nm(psi0_V: float, eps_r: float, c0_m3: float) -> float:
    r"""Mott-Schottky depletion width :math:`\sqrt{2\varepsilon_0\varepsilon_r\psi_0/(e c_0)}` (nm)."""
    psi0_V = _check_scalar(psi0_V, "psi0_V")
    eps_r = _check_scalar(eps_r, "eps_r", positive=True)
    c0_m3 = _check_scalar(c0_m3, "c0_m3", positive=True)
    return float(np.sqrt(2 * EPSILON_0 * eps_r * abs(psi0_V) / (E_CHARGE * c0_m3)) * 1e9)


def accumulation_width_nm(psi0_V: float, theta: float, eps_r: float, c0_m3: float) -> float:
    r"""Saturated-accumulation width (nm),
    :math:`\sqrt{2\varepsilon_0\varepsilon_r|\psi_0|/(e(c_\max - c_0))}`."""
    psi0_V = _check_scalar(psi0_V, "psi0_V")
    theta = _check_scalar(theta, "theta")
    _check_species(c0_m3, theta, 1, "accumulation_width_nm")
    eps_r = _check_scalar(eps_r, "eps_r", positive=True)
    excess = c0_m3 * (1 - theta) / theta
    return float(np.sqrt(2 * EPSILON_0 * eps_r * abs(psi0_V) / (E_CHARGE * excess)) * 1e9)


def interface_field(
    psi0_V: float, theta: float, eps_r: float, c0_m3: float, temperature_K: float = 298.15,
    second_defect: MobileDefect | None = None,
) -> float:
    r"""Field at the interface on the electrolyte side, :math:`E(0) = -\psi'(0)` (V/m).

    :math:`E(0) = \mathrm{sign}(\psi_0)\sqrt{2F(\psi_0)/\varepsilon_0\varepsilon_r}` (closed form).
    """
    sy = _system(theta, eps_r, c0_m3, temperature_K, second_defect)
    psi0_V = _check_scalar(psi0_V, "psi0_V")
    gam = float(_gamma(np.array([psi0_V / sy.vt]), sy)[0])
    return float(np.sign(psi0_V) * np.sqrt(2 * E_CHARGE * sy.c_ref * sy.vt * gam / sy.eps))


def surface_charge(
    psi0_V: float, theta: float, eps_r: float, c0_m3: float, temperature_K: float = 298.15,
    second_defect: MobileDefect | None = None,
) -> float:
    r"""Electrode-side surface charge balancing the space charge (C/m^2).

    :math:`\sigma = \varepsilon_0\varepsilon_r E(0) = \mathrm{sign}(\psi_0)
    \sqrt{2\varepsilon_0\varepsilon_r F(\psi_0)} = -\int_0^\infty \rho\,dx`.
    """
    sy = _system(theta, eps_r, c0_m3, temperature_K, second_defect)
    return sy.eps * interface_field(psi0_V, theta, eps_r, c0_m3, temperature_K, second_defect)


def differential_capacitance(
    psi0_V: float, theta: float, eps_r: float, c0_m3: float, temperature_K: float = 298.15,
    second_defect: MobileDefect | None = None,
) -> float:
    r"""Differential capacitance of the diffuse layer :math:`d\sigma/d\psi_0` (F/m^2).

    :math:`C = \varepsilon_0\varepsilon_r|\rho(\psi_0)| / \sqrt{2\varepsilon_0\varepsilon_r
    F(\psi_0)}`, which tends to :math:`\varepsilon_0\varepsilon_r/L_D` at :math:`\psi_0 \to 0`
    (Kornyshev 2007).
    """
    sy = _system(theta, eps_r, c0_m3, temperature_K, second_defect)
    psi0_V = _check_scalar(psi0_V, "psi0_V")
    u0 = psi0_V / sy.vt
    if abs(u0) < 1e-6:
        return sy.eps / (sy.ell_nm / sy.kappa * 1e-9)
    gam = float(_gamma(np.array([u0]), sy)[0])
    rho = float(abs(_rho_over(np.array([u0]), sy)[0])) * E_CHARGE * sy.c_ref
    return sy.eps * rho / np.sqrt(2 * sy.eps * E_CHARGE * sy.c_ref * sy.vt * gam)


def stern_diffuse_potential(
    psi0_V: float, theta: float, eps_r: float, c0_m3: float, stern_nm: float,
    stern_eps_r: float | None = None, temperature_K: float = 298.15,
    second_defect: MobileDefect | None = None,
) -> float:
    r"""Potential at the Stern-plane / diffuse-layer boundary (V).

    Solves :math:`\psi_0 = \psi_d + \sigma(\psi_d)\,d_s/(\varepsilon_0\varepsilon_s)` (a Robin
    boundary: the displacement is continuous across a charge-free layer of thickness
    :math:`d_s` and permittivity :math:`\varepsilon_s`, default ``eps_r``).
    """
    sy = _system(theta, eps_r, c0_m3, temperature_K, second_defect)
    psi0_V = _check_scalar(psi0_V, "psi0_V")
    stern_nm = _check_scalar(stern_nm, "stern_nm")
    if stern_nm < 0:
        raise ConfigError(f"stern_nm = {stern_nm} must be >= 0 (thickness of the core layer)")
    eps_s = EPSILON_0 * _check_scalar(eps_r if stern_eps_r is None else stern_eps_r,
                                      "stern_eps_r", positive=True)
    if stern_nm == 0 or psi0_V == 0:
        return psi0_V
    d = stern_nm * 1e-9
    scale = E_CHARGE * sy.c_ref * sy.vt

    def residual(psi_d: float) -> float:
        gam = float(_gamma(np.array([psi_d / sy.vt]), sy)[0])
        sigma = np.sign(psi_d) * np.sqrt(2 * sy.eps * scale * gam)
        return psi_d + sigma * d / eps_s - psi0_V

    return float(brentq(residual, 0.0, psi0_V, xtol=1e-15, rtol=1e-13, maxiter=200))


def _profile_u(x_nm: np.ndarray, psi_d: float, sy: _System, stern_nm: float) -> np.ndarray:
    xi = (np.asarray(x_nm, dtype=np.float64) - stern_nm) / sy.ell_nm
    return _u_of_xi(np.maximum(xi, 0.0), psi_d / sy.vt, sy)


def _check_x(x_nm) -> np.ndarray:
    x = np.asarray(x_nm, dtype=np.float64)
    if not np.all(np.isfinite(x)):
        raise InputError("x_nm holds NaN/inf values; give finite distances (nm)")
    if np.any(x < 0):
        raise InputError(
            f"x_nm has negative distances (min {x.min():.4g} nm); give distances >= 0 from the "
            "interface into the electrolyte"
        )
    return x


def lattice_gas_potential(
    x_nm, psi0_V: float, theta: float, eps_r: float, c0_m3: float,
    temperature_K: float = 298.15, *, second_defect: MobileDefect | None = None,
    stern_nm: float = 0.0, stern_eps_r: float | None = None,
) -> np.ndarray:
    r"""Potential of a lattice-gas space-charge layer at distances ``x`` from the interface.

    Parameters
    ----------
    x_nm : array_like
        Distances into the electrolyte (nm), >= 0, any shape and order.
    psi0_V : float
        Interface potential relative to the bulk (V); > 0 depletes Li+, < 0 accumulates it.
    theta : float
        Bulk site occupancy of the mobile cation ``c0 / c_max``, in (0, 1).
    eps_r : float
        Relative permittivity of the electrolyte.
    c0_m3 : float
        Bulk concentration of the mobile cation (m^-3).
    temperature_K : float
        Temperature (K).
    second_defect : MobileDefect, optional
        A second mobile species.
    stern_nm, stern_eps_r : float, optional
        Thickness (nm) and permittivity of a charge-free Stern / core layer at ``x < stern_nm``,
        across which the potential falls linearly; ``psi0_V`` is then the electrode potential.

    Returns
    -------
    numpy.ndarray
        ``psi`` (V), float64, same shape as ``x_nm``: ``psi(0) = psi0``, -> 0 in the bulk.

    Examples
    --------
    >>> psi = lattice_gas_potential([0.0, 0.93, 50.0], 1.3, 0.99, 50, 6e27, 298.0)
    >>> bool(abs(psi[0] - 1.3) < 1e-9 and abs(psi[1] - 0.13) < 0.005 and abs(psi[2]) < 1e-9)
    True
    """
    x = _check_x(x_nm)
    psi0_V = _check_scalar(psi0_V, "psi0_V")
    sy = _system(theta, eps_r, c0_m3, temperature_K, second_defect)
    psi_d = stern_diffuse_potential(psi0_V, theta, eps_r, c0_m3, stern_nm, stern_eps_r,
                                    temperature_K, second_defect)
    psi = sy.vt * _profile_u(x, psi_d, sy, stern_nm)
    if stern_nm > 0:
        core = x < stern_nm
        psi[core] = psi0_V + (psi_d - psi0_V) * x[core] / stern_nm
    return psi


def lattice_gas_field(
    psi_V, theta: float, eps_r: float, c0_m3: float, temperature_K: float = 298.15,
    second_defect: MobileDefect | None = None,
) -> np.ndarray:
    r"""Field :math:`E = -\psi' = \mathrm{sign}(\psi)\sqrt{2F(\psi)/\varepsilon_0\varepsilon_r}`
    (V/m) in a semi-infinite diffuse layer, from the first integral (no differentiation)."""
    sy = _system(theta, eps_r, c0_m3, temperature_K, second_defect)
    u = np.asarray(psi_V, dtype=np.float64) / sy.vt
    return np.sign(u) * np.sqrt(2 * E_CHARGE * sy.c_ref * sy.vt * _gamma(u, sy) / sy.eps)


def w90_nm(
    psi0_V: float, theta: float, eps_r: float, c0_m3: float, temperature_K: float = 298.15,
    second_defect: MobileDefect | None = None, stern_nm: float = 0.0,
    stern_eps_r: float | None = None, fraction: float = 0.9,
) -> float:
    r"""Distance from the interface holding ``fraction`` (90 %) of the potential drop (nm).

    The ``x`` where :math:`\psi = (1 - f)\,\psi_0`, by quadrature of the first integral (with a
    Stern layer, measured from the electrode and including the linear drop across the layer).
    """
    fraction = _check_scalar(fraction, "fraction")
    if not 0 < fraction < 1:
        raise ConfigError(f"fraction = {fraction} must lie between 0 and 1")
    psi0_V = _check_scalar(psi0_V, "psi0_V")
    if psi0_V == 0:
        raise ConfigError("psi0_V = 0: there is no drop, so w90 is undefined")
    sy = _system(theta, eps_r, c0_m3, temperature_K, second_defect)
    psi_d = stern_diffuse_potential(psi0_V, theta, eps_r, c0_m3, stern_nm, stern_eps_r,
                                    temperature_K, second_defect)
    target = (1 - fraction) * psi0_V
    if abs(target) >= abs(psi_d):  # reached inside the Stern layer
        return float(stern_nm * (psi0_V - target) / (psi0_V - psi_d))
    t_hi = float(np.log(abs(psi_d) / sy.vt))
    t_lo = float(np.log(abs(target) / sy.vt))
    return float(stern_nm + sy.ell_nm * _xi_between(t_lo, t_hi, float(np.sign(psi0_V)), sy))
