"""
Sparse-coding denoising of a noisy Li-map series
================================================

The ``li_fronts`` twin is a series of Li-fraction maps in which two-phase fronts sweep across
the field, with Poisson noise at a stated dose - the situation of fast operando EELS frames.
:func:`ionscope.denoise.sparse_denoise` (``ionscope denoise --method sparse``) learns a patch
dictionary (K-SVD) from the data itself, codes every patch with a few atoms (batch OMP) after an
Anscombe variance stabilisation, and averages the overlapping patches back. A Gaussian filter is
shown beside it as the simple baseline.
"""

import matplotlib.pyplot as plt
import numpy as np

from ionscope.denoise import sparse_denoise
from ionscope.denoise.methods import denoise
from ionscope.simulate import simulate

twin = simulate("li_fronts", seed=0)
noisy, truth = twin["li_fraction"], twin["li_fraction_true"]
sparse, info = sparse_denoise(noisy, patch=6, atoms=64, sparsity=4, iterations=5)
gauss, _ = denoise(noisy, "gaussian")


def rmse(a):
    return float(np.sqrt(((a - truth) ** 2).mean()))


print(f"noise model {info['noise']}, sigma {info['sigma']:.3f}, {info['mean_atoms']:.2f} atoms per patch")
print(f"RMS error: noisy {rmse(noisy):.3f}, gaussian {rmse(gauss):.3f}, sparse {rmse(sparse):.3f}")

# %%
k = 20  # a frame with fronts in the field
fig, axes = plt.subplots(1, 4, figsize=(13, 3.2))
for ax, (title, da) in zip(axes, [("noisy", noisy), ("gaussian", gauss), ("sparse coding", sparse),
                                  ("truth", truth)]):
    da.isel(time=k).plot(ax=ax, vmin=0, vmax=1, yincrease=False, add_colorbar=False)
    ax.set_title(title)
fig.tight_layout()
