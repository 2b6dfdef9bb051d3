"""STEM-EELS lithium mapping of LiCoO2 cathodes (Li-K ~55 eV overlapping Co-M2,3 ~59 eV).

- :mod:`~ionscope.eels.energy`: energy calibration and windows.
- :mod:`~ionscope.eels.alignment`: sub-channel energy-drift alignment.
- :mod:`~ionscope.eels.wrapping`: the input checks and labelling shared by the wrappers.
- :mod:`~ionscope.eels.background`: power-law background (fit and two-window), masks.
- :mod:`~ionscope.eels.windows`: edge-window integrals and the S_A/S_B ratio method.
- :mod:`~ionscope.eels.mlls`: batched multiple linear least squares against references
  (the xarray wrapper; its numpy kernels are in :mod:`~ionscope.eels.mlls_kernels`).
- :mod:`~ionscope.eels.decomposition`: NMF (HALS) and PCA phase mapping (the xarray wrappers;
  their numpy kernels are in :mod:`~ionscope.eels.nmf_kernels` and :mod:`~ionscope.eels.pca_kernels`).
- :mod:`~ionscope.eels.srprofile`: SR-EELS profiles across an interface.
- :mod:`~ionscope.eels.lithium`: the whole Li-fraction map in one call.
"""

from ionscope.eels.background import subtract_powerlaw
from ionscope.eels.decomposition import nmf, pca
from ionscope.eels.alignment import align_energy
from ionscope.eels.lithium import li_fraction_map, li_fraction_summary
from ionscope.eels.mlls import mlls_fit
from ionscope.eels.phases import prepare_for_nmf
from ionscope.eels.srprofile import interface_and_width, sr_profile
from ionscope.eels.windows import sasb_calibration, sasb_li_fraction, sasb_ratio, window_map

__all__ = [
    "align_energy", "subtract_powerlaw", "window_map", "sasb_ratio", "sasb_calibration",
    "sasb_li_fraction", "mlls_fit", "nmf", "pca", "prepare_for_nmf", "sr_profile",
    "interface_and_width", "li_fraction_map", "li_fraction_summary",
]
