"""TOF-SIMS: lithium maps per state of charge, phases and per-particle lithium (user guide: :doc:`/guide/sims`).

Numpy kernels on integrated ion counts; the workflow (``ionscope sims lithium``) chains them.

- :mod:`~ionscope.sims.ions`: the ion table (ion masses in u), ion names (``7Li``, ``59Co``,
  ``NAME=MASS``), integration windows in u or in peak widths, integration of dense spectra
  ``(..., mass)`` and of padded centroid peaks ``(..., peak)`` into ``(ion, ...)`` counts.
- :mod:`~ionscope.sims.calibration`: known peaks located in a sum spectrum or in pooled
  centroid peaks; ``sqrt(m)`` calibration refined on them, residuals in mu and ppm.
- :mod:`~ionscope.sims.deadtime`: the Poisson dead-time correction with ``n`` = scans x shots per
  pixel, pixels near saturation, the ``7Li / (12.2 x 6Li)`` check.
- :mod:`~ionscope.sims.normalise`: ratios with counting errors (Poisson, binomial), normalisation
  by the total ion count or a matrix ion, relative to the pristine state.
- :mod:`~ionscope.sims.phases`: phases from matrix-ion maps (Gaussian mixture, named from the
  characteristic ion), every pixel unmixed into phase fractions, the majority phase; user labels.
- :mod:`~ionscope.sims.quantify`: Li per phase and per LiCoPO4 particle per state (weighted
  least squares over mixed pixels), relative to pristine with errors and significance; binning.
- :mod:`~ionscope.sims.workflow`: :func:`lithium_states`, the chain of ``ionscope sims lithium``
  (files per state of charge -> calibrated, integrated, dead-time corrected, registered ion maps
  -> phases -> Li maps and Li per phase and particle).

Example
-------
>>> import numpy as np
>>> from ionscope.sims import ION_TABLE, deadtime_correct, integrate_peaks, ion_windows, parse_ions
>>> ions = parse_ions("7Li,6Li,59Co")
>>> lo, hi = ion_windows(ions, window_u=0.3)
>>> peak_mass = np.array([[[7.02, 6.01, 58.93, np.nan]]])      # (y, x, peak), NaN-padded
>>> counts = np.array([[[900, 80, 300, 0]]])
>>> li7, li6, co = integrate_peaks(counts, peak_mass, lo, hi)
>>> corrected, err = deadtime_correct(li7, pulses=1000)
>>> round(float(corrected[0, 0])), round(float(12.2 * li6[0, 0]))
(2303, 976)
"""

from ionscope.sims.calibration import Calibration, apply_calibration, locate_peaks, refine_calibration
from ionscope.sims.deadtime import (
    SATURATION_THRESHOLD, IsotopeCheck, check_pulses, deadtime_correct, isotope_check, near_saturation,
)
from ionscope.sims.ions import (
    DEFAULT_WINDOW_U, ION_TABLE, LI7_LI6, LITHIUM_IONS, element_of, integrate_peaks, integrate_windows, ion_windows,
    parse_ions,
)
from ionscope.sims.normalise import normalise, ratio_with_error, relative_to_reference
from ionscope.sims.phases import (
    PHASE_OF_ELEMENT, Phases, nnls_kernel, phase_name, phases_from_labels, segment_phases, unmix,
)
from ionscope.sims.quantify import PARTICLE_PHASE, PhaseLithium, bin_pixels, particle_labels, phase_lithium
from ionscope.sims.workflow import DEFAULT_IONS, lithium_states, read_states

__all__ = [
    "lithium_states",
    "read_states",
    "DEFAULT_IONS",
    "ION_TABLE",
    "LI7_LI6",
    "LITHIUM_IONS",
    "DEFAULT_WINDOW_U",
    "element_of",
    "parse_ions",
    "ion_windows",
    "integrate_windows",
    "integrate_peaks",
    "Calibration",
    "locate_peaks",
    "refine_calibration",
    "apply_calibration",
    "SATURATION_THRESHOLD",
    "check_pulses",
    "deadtime_correct",
    "near_saturation",
    "IsotopeCheck",
    "isotope_check",
    "ratio_with_error",
    "normalise",
    "relative_to_reference",
    "PHASE_OF_ELEMENT",
    "Phases",
    "phase_name",
    "segment_phases",
    "unmix",
    "phases_from_labels",
    "nnls_kernel",
    "PARTICLE_PHASE",
    "PhaseLithium",
    "particle_labels",
    "phase_lithium",
    "bin_pixels",
]
