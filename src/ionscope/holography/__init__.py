"""Electron holography: off-axis and phase-shifting reconstruction, phase unwrapping.

- :mod:`~ionscope.holography.offaxis`: Fourier (sideband) reconstruction and hologram
  statistics (fringe spacing, sampling, contrast, carrier frequency).
- :mod:`~ionscope.holography.sideband`: its Fourier-domain kernels (sideband detection and
  refinement, aperture, line filter, visibility); :mod:`~ionscope.holography.passes`: its
  single-pass whole-image loops (numba); :mod:`~ionscope.holography.detector`: the detector
  MTF and its correction in the sideband.
- :mod:`~ionscope.holography.phaseshift`: phase-shifting (fringe-scanning) reconstruction with
  drift alignment and measured phase steps.
- :mod:`~ionscope.holography.unwrap`: quality-guided and least-squares phase unwrapping.
- :mod:`~ionscope.holography.align`: sub-pixel image registration.
- :mod:`~ionscope.holography.potential`: phase to potential (interaction constant, thickness
  from the amplitude or the mean inner potential, biased-minus-0 V differences).
- :mod:`~ionscope.holography.leakage`: vacuum flatness and the harmonic (Laplace) model of
  leakage fields (the model's basis, fit and degree choice in
  :mod:`~ionscope.holography.harmonic`), scored against the twins' true stray phase.
"""

from ionscope.holography.align import align_frames, register_spectra, shift_image
from ionscope.holography.offaxis import hologram_statistics, reconstruct_offaxis
from ionscope.holography.phaseshift import reconstruct_phase_shifting
from ionscope.holography.unwrap import unwrap_phase
from ionscope.holography.potential import (
    phase_difference, phase_to_potential, potential_map, thickness_from_amplitude, thickness_from_phase,
)
from ionscope.holography.leakage import detect_vacuum, fit_stray_field, twin_leakage_scores, vacuum_flatness
from ionscope.holography.detector import lorentzian_mtf, radial_mtf

__all__ = [
    "reconstruct_offaxis",
    "hologram_statistics",
    "reconstruct_phase_shifting",
    "unwrap_phase",
    "align_frames",
    "register_spectra",
    "shift_image",
    "phase_to_potential",
    "thickness_from_amplitude",
    "thickness_from_phase",
    "phase_difference",
    "potential_map",
    "detect_vacuum",
    "vacuum_flatness",
    "fit_stray_field",
    "twin_leakage_scores",
    "lorentzian_mtf",
    "radial_mtf",
]
