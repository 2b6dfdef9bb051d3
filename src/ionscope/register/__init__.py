"""Registration shared by the technique packages: one routine, one sign convention.

- :mod:`~ionscope.register.translation`: sub-pixel translation of 1-D signals and 2-D images by
  cross-correlation (matrix-multiply DFT refinement, optional Gauss-Newton polish) and the
  shift of an image. A **shift** is always the translation to apply to the moving signal to
  register it onto the fixed one (``registered(r) = moving(r - shift)``, as scikit-image and
  ``scipy.ndimage.shift``); a measured drift or displacement is its negative.
- :mod:`~ionscope.register.multimodal`: one modality onto another's grid (KPFM onto TOF-SIMS) by
  Mattes mutual information, rigid or affine, in nm (:func:`register_rigid`), and the moving image
  block-averaged onto the fixed grid (:func:`resample_onto`). Its transform's shift is the same
  shift, after a rotation (counter-clockwise as displayed) about the moving field's centre.
- :mod:`~ionscope.register.stack`: a stack of images (KPFM frames, TOF-SIMS states) registered
  onto one of them on edge maps, and the noise-preserving Fourier shift that resamples each
  onto its grid (NaN where it does not cover).

Example
-------
>>> import numpy as np
>>> from ionscope.register import register_translation, shift_image
>>> y, x = np.mgrid[:64, :64]
>>> image = np.exp(-((y - 30.0) ** 2 + (x - 30.0) ** 2) / 50.0)
>>> moved = shift_image(image, (1.5, -2.0))      # the content moves by +1.5, -2 px
>>> [round(v, 2) for v in register_translation(image, moved)]
[-1.5, 2.0]
"""

from ionscope.register import multimodal, stack, translation
from ionscope.register.multimodal import (  # noqa: F401  (the public names, listed in multimodal.__all__)
    RigidRegistration, register_rigid, resample_onto, rigid_matrix,
)
from ionscope.register.stack import (  # noqa: F401  (the public names, listed in stack.__all__)
    covered_kernel, edge_map_kernel, frame_shifts_kernel, shift_frame_kernel, tukey_window,
)
from ionscope.register.translation import (  # noqa: F401  (the public names, listed in translation.__all__)
    dft_correlation, polish_translation, register_translation, shift_image, translation_1d, translation_from_spectra,
)

__all__ = list(translation.__all__) + list(stack.__all__) + list(multimodal.__all__)
