"""Electron holography: off-axis and phase-shifting reconstruction, phase unwrapping.

- :mod:`~ionscope.holography.offaxis`: Fourier (sideband) reconstruction;
  :mod:`~ionscope.holography.statistics`: hologram statistics (fringe spacing, sampling,
  contrast, carrier frequency); :mod:`~ionscope.holography.inputs`: the checks and calibration
  every wrapper reads its holograms and stacks through.
- :mod:`~ionscope.holography.sideband`: its Fourier-domain kernels (sideband detection and
  refinement, aperture, line filter, visibility); :mod:`~ionscope.holography.passes`: its
  single-pass whole-image loops (numba); :mod:`~ionscope.holography.detector`: the detector
  MTF and its correction in the sideband.
- :mod:`~ionscope.holography.phaseshift`: phase-shifting (fringe-scanning) reconstruction with
  drift alignment; :mod:`~ionscope.holography.phase_steps`: measuring its unknown phase steps.
- :mod:`~ionscope.holography.unwrap`: quality-guided and least-squares phase unwrapping.
- :mod:`~ionscope.holography.align`: sub-pixel image registration.
- :mod:`~ionscope.holography.potential`: phase to potential (interaction constant, thickness
  from the amplitude or the mean inner potential, biased-minus-0 V differences);
  :mod:`~ionscope.holography.maps`: the checks of its maps and series and the frame-by-frame
  machinery it and the workflows share.
- :mod:`~ionscope.holography.leakage`: vacuum flatness and the harmonic (Laplace) model of
  leakage fields (the model's basis, fit and degree choice in
  :mod:`~ionscope.holography.harmonic`), scored against the twins' true stray phase.
- :mod:`~ionscope.holography.workflow`: the chains users run (reconstruction -> vacuum ->
  leakage -> potential; map -> interface profile -> step fit), called by the CLI and the demo;
  :mod:`~ionscope.holography.vacuum`: the potential chain's vacuum region and flatness check;
  :mod:`~ionscope.holography.interface_profile`: the profile chain.
"""

from ionscope.holography.align import align_frames, register_spectra, shift_image
from ionscope.holography.offaxis import reconstruct_offaxis
from ionscope.holography.statistics import hologram_statistics
from ionscope.holography.phaseshift import reconstruct_phase_shifting
from ionscope.holography.unwrap import unwrap_phase
from ionscope.holography.potential import (
    phase_difference, phase_to_potential, potential_map, thickness_from_amplitude, thickness_from_phase,
)
from ionscope.holography.leakage import detect_vacuum, fit_stray_field, twin_leakage_scores, vacuum_flatness
from ionscope.holography.detector import lorentzian_mtf, radial_mtf
from ionscope.holography.workflow import potential_from_reconstruction, profile_across_interface, profile_summary

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
    "potential_from_reconstruction",
    "profile_across_interface",
    "profile_summary",
]
