"""Physical constants (CODATA 2018, SI units) used across ionscope."""

#: Elementary charge (C).
E_CHARGE = 1.602176634e-19
#: Boltzmann constant (J/K).
K_B = 1.380649e-23
#: Vacuum permittivity (F/m).
EPSILON_0 = 8.8541878128e-12
#: Avogadro constant (1/mol).
N_A = 6.02214076e23
#: Faraday constant (C/mol).
FARADAY = E_CHARGE * N_A
#: Electron rest energy (eV).
ELECTRON_REST_ENERGY_EV = 510998.95
#: Planck constant (J s).
PLANCK = 6.62607015e-34
#: Speed of light (m/s).
C_LIGHT = 299792458.0
#: Electron mass (kg).
M_ELECTRON = 9.1093837015e-31


def electron_wavelength_nm(kv: float) -> float:
    """Relativistic electron wavelength (nm) at accelerating voltage ``kv`` (kV).

    :math:`\\lambda = h / \\sqrt{2 m_e e U (1 + e U / (2 m_e c^2))}`; 1.969e-3 nm at 300 kV,
    2.508e-3 nm at 200 kV.
    """
    energy_j = float(kv) * 1e3 * E_CHARGE
    momentum = (2.0 * M_ELECTRON * energy_j * (1.0 + energy_j / (2.0 * M_ELECTRON * C_LIGHT**2))) ** 0.5
    return PLANCK / momentum * 1e9


def electron_interaction_constant(kv: float) -> float:
    """Interaction constant :math:`C_E` of electron holography, rad / (V nm).

    :math:`C_E = (2\\pi / \\lambda)\\, (E + E_0) / (E (E + 2 E_0))` with kinetic energy
    :math:`E = e U` and rest energy :math:`E_0` (eV), so that the phase of a wave crossing a
    potential :math:`V` is :math:`\\varphi = C_E \\int V\\,dz`. Values: 1.009e-2 (80 kV),
    7.29e-3 (200 kV), 6.53e-3 (300 kV).

    References
    ----------
    Lichte & Lehmann, Rep. Prog. Phys. 71, 016102 (2008); Reimer & Kohl, *Transmission
    Electron Microscopy*, 5th ed. (Springer, 2008), section 3.1.
    """
    kv = float(kv)
    if not kv > 0:
        from ionscope.errors import InputError

        raise InputError(f"accelerating voltage must be a positive number of kV, got {kv!r}")
    energy_ev = kv * 1e3
    e0 = ELECTRON_REST_ENERGY_EV
    return 2.0 * 3.141592653589793 / electron_wavelength_nm(kv) * (energy_ev + e0) / (
        energy_ev * (energy_ev + 2.0 * e0)
    )
