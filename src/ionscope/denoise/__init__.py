"""Sparse-coding denoising of maps and operando map series (:doc:`/guide/denoising`).

Layers, bottom up (each a set of small numpy kernels, tested directly):

* :mod:`~ionscope.denoise.omp` - Batch-OMP on a precomputed Gram matrix (:func:`batch_omp`,
  :func:`batch_omp_codes`, :func:`sparse_code`, :class:`SparseCodes`);
* :mod:`~ionscope.denoise.dictionary` - overcomplete DCT, K-SVD (exact and approximate),
  online mini-batch learning (:func:`learn_dictionary`);
* :mod:`~ionscope.denoise.patches` - 2-D and space-time patches, weighted overlap aggregation
  (:class:`PatchGrid`);
* :mod:`~ionscope.denoise.noise` - Anscombe / generalised Anscombe with exact unbiased
  inverses, robust MAD noise estimate;
* :mod:`~ionscope.denoise.stabilise` - the noise model every denoiser shares and
  :func:`~ionscope.denoise.stabilise.run_stabilised`, the one path from a labelled map to a
  stack kernel and back;
* :mod:`~ionscope.denoise.sparse` - :func:`denoise_stack` (numpy kernel) and
  :func:`sparse_denoise`, the wrapper for labelled arrays (validation, provenance);
* :mod:`~ionscope.denoise.baselines`, :mod:`~ionscope.denoise.methods` - the classical
  baselines and the one-call dispatcher :func:`denoise`;
* :mod:`~ionscope.denoise.superres` (kernels in :mod:`~ionscope.denoise.superres_kernels`) -
  coupled-dictionary super-resolution.

Naming: numpy kernels end in ``_stack`` (they take ``(n_frames, ny, nx)`` arrays) or name the
algorithm (:func:`batch_omp`, :func:`ksvd`); wrappers for labelled arrays end in ``_denoise``
(or are :func:`super_resolve`, :func:`downsample`), return ``(DataArray, info)`` with the input's
units in ``attrs`` and say in their docstrings that they compute (load the input).
"""

from ionscope.denoise.dictionary import (
    DictionaryLearningResult,
    ksvd,
    learn_dictionary,
    online_dictionary_learning,
    overcomplete_dct,
)
from ionscope.denoise.noise import (
    anscombe,
    estimate_sigma,
    finest_detail_band,
    generalized_anscombe,
    inverse_anscombe,
    inverse_generalized_anscombe,
)
from ionscope.denoise.omp import SparseCodes, batch_omp, batch_omp_codes, sparse_code
from ionscope.denoise.patches import (
    PatchGrid,
    aggregate_patches,
    extract_patches,
    patch_positions,
    remove_patch_mean,
)
from ionscope.denoise.sparse import DEFAULT_LAMBDA, NOISE_MODELS, denoise_stack, sparse_denoise

__all__ = [
    "batch_omp",
    "batch_omp_codes",
    "sparse_code",
    "SparseCodes",
    "overcomplete_dct",
    "ksvd",
    "online_dictionary_learning",
    "learn_dictionary",
    "DictionaryLearningResult",
    "PatchGrid",
    "patch_positions",
    "extract_patches",
    "aggregate_patches",
    "remove_patch_mean",
    "anscombe",
    "inverse_anscombe",
    "generalized_anscombe",
    "inverse_generalized_anscombe",
    "finest_detail_band",
    "estimate_sigma",
    "NOISE_MODELS",
    "DEFAULT_LAMBDA",
    "denoise_stack",
    "sparse_denoise",
]

# Baselines, quality metrics and the one-call dispatcher (appended).
from ionscope.denoise.baselines import (  # noqa: E402
    BASELINES,
    bm3d_available,
    bm3d_denoise,
    gaussian_denoise,
    nlmeans_denoise,
    pca_denoise,
    tv_denoise,
)
from ionscope.denoise.metrics import (  # noqa: E402
    denoise_metrics,
    frame_metrics,
    li_conservation,
    psnr,
    residual_whiteness,
    ssim,
)
from ionscope.denoise.methods import METHODS as DENOISE_METHODS  # noqa: E402
from ionscope.denoise.methods import denoise  # noqa: E402

__all__ += [
    "BASELINES",
    "bm3d_available",
    "bm3d_denoise",
    "gaussian_denoise",
    "nlmeans_denoise",
    "pca_denoise",
    "tv_denoise",
    "denoise_metrics",
    "frame_metrics",
    "li_conservation",
    "psnr",
    "residual_whiteness",
    "ssim",
    "DENOISE_METHODS",
    "denoise",
]

# Super-resolution with coupled dictionaries (appended).
from ionscope.denoise.superres import CoupledDictionaries, downsample, super_resolve  # noqa: E402

__all__ += ["CoupledDictionaries", "downsample", "super_resolve"]
