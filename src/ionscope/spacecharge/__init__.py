"""Space-charge-layer physics: lattice-gas Poisson-Boltzmann model, bias and joint fits.

- :mod:`~ionscope.spacecharge.model`: one mobile cation on a lattice (Bikerman / Fermi-Dirac
  occupancy) with an immobile background - closed-form first integral (interface field,
  surface charge, capacitance), the profile by quadrature, w90, Debye length, an optional
  Stern / core layer and an optional second mobile defect.
- :mod:`~ionscope.spacecharge.bias`: a finite electrolyte between two blocking electrodes under
  an applied bias (Li number and charge conserved).
- :mod:`~ionscope.spacecharge.interface`: the layer as an instrument sees it (a Gaussian PSF,
  or a Fourier-holography aperture as a low-pass on the electron wave).
- :mod:`~ionscope.spacecharge.fit`: a joint weighted fit of a potential profile and a Li
  profile (correlated noise), with standard errors, correlations and an identifiability check.
- :mod:`~ionscope.spacecharge.wrappers`: the labelled (xarray) wrappers of the layer and the fit.
- :mod:`~ionscope.spacecharge.workflow`: measured profiles read from files or results and fitted
  with the resolution and step the holography chain recorded (``ionscope spacecharge fit``).

Example
-------
>>> from ionscope.spacecharge import debye_length_nm, w90_nm
>>> round(debye_length_nm(0.99, 50, 6e27, 298.0), 2), round(w90_nm(-1.3, 0.99, 50, 6e27, 298.0), 1)
(1.09, 7.7)
"""

from ionscope.spacecharge.bias import BiasSolution, bias_profile, solve_bias
from ionscope.spacecharge.fit import IdentifiabilityError, SpaceChargeFit, fit_spacecharge
from ionscope.spacecharge.interface import interface_profile, recorded_lowpass
from ionscope.spacecharge.wrappers import fit_profiles, lattice_gas_profile
from ionscope.spacecharge.workflow import ProfileInput, fit_measured_profiles, read_profile
from ionscope.spacecharge.model import (
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
    stern_diffuse_potential,
    surface_charge,
    thermal_voltage,
    w90_nm,
)

__all__ = [
    "MobileDefect", "thermal_voltage", "lattice_gas_concentration", "lattice_gas_charge_density",
    "lattice_gas_free_energy", "lattice_gas_potential", "lattice_gas_field", "debye_length_nm",
    "depletion_width_nm", "accumulation_width_nm", "interface_field", "surface_charge",
    "differential_capacitance", "w90_nm", "stern_diffuse_potential", "lattice_gas_profile",
    "BiasSolution", "solve_bias", "bias_profile",
    "IdentifiabilityError", "SpaceChargeFit", "interface_profile", "fit_spacecharge",
    "fit_profiles", "recorded_lowpass", "ProfileInput", "read_profile", "fit_measured_profiles",
]
