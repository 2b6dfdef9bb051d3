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
