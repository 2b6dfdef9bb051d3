"""
Super-resolution of Li maps with coupled dictionaries
=====================================================

Slow, high-dose maps of the same kind of sample teach a pair of dictionaries - one for
low-resolution features (first and second derivatives of the up-sampled map), one for the
high-resolution patches - that share one sparse code (Yang et al. 2010). A fast, coarse map is
then coded in the low-resolution dictionary, rebuilt from the high-resolution one, and made
consistent with the measurement by back-projection. :func:`ionscope.denoise.superres.super_resolve`
is ``ionscope superres``. Here the training maps come from one twin, the test maps from another
seed, and the coarse input is the test maps block-averaged by 2.
"""

import matplotlib.pyplot as plt
import numpy as np
from scipy import ndimage

from ionscope.denoise.superres import downsample, super_resolve
from ionscope.simulate import simulate

train = simulate("li_fronts", seed=1)["li_fraction_true"].isel(time=slice(0, 50, 5))
test = simulate("li_fronts", seed=2)["li_fraction_true"].isel(time=slice(20, 23))
coarse = downsample(test, 2)
sr, info = super_resolve(coarse, train, 2, atoms=128, iterations=10, train_iterations=5)
cubic = ndimage.zoom(coarse.values, (1, 2, 2), order=3)


def rmse(a):
    return float(np.sqrt(np.mean((np.asarray(a) - test.values) ** 2)))


print(dict(coarse.sizes), "->", dict(sr.sizes))
print(f"RMS error: bicubic {rmse(cubic):.4f}, coupled dictionaries {rmse(sr):.4f}")

# %%
fig, axes = plt.subplots(1, 4, figsize=(13, 3.2))
panels = [("coarse input", coarse[0].values), ("bicubic x2", cubic[0]), ("super-resolved", sr[0].values),
          ("truth", test[0].values)]
for ax, (title, image) in zip(axes, panels):
    ax.imshow(image, vmin=0, vmax=1, cmap="viridis")  # imshow: row 0 at the top
    ax.set_title(title)
    ax.set_axis_off()
fig.tight_layout()
