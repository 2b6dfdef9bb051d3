"""
STEM-EELS: lithium maps from the Li-K edge by MLLS
==================================================

The ``eels_licoo2`` twin is an operando LiCoO2 cathode imaged by STEM-EELS: every pixel holds a
low-loss spectrum in which the Li-K edge (onset near 55 eV) overlaps the Co-M2,3 edge, on a
power-law background. :func:`ionscope.eels.li_fraction_map` (``ionscope eels lithium``) fits
the background in a pre-edge window, then every spectrum as a weighted sum of a Li-rich
(LiCoO2) and a Li-poor (CoO2) reference plus Co3O4, in one batched solve; the Li fraction is
``a_rich / (a_rich + a_poor)``.

The twin's default dose (1e6 electrons per pixel and frame) is that of a fast operando frame, where
a single pixel's Li fraction scatters by 0.15-0.2 (the reason for :doc:`plot_denoise`); this
example uses a long exposure (1e8) to show the fit itself.
"""

import matplotlib.pyplot as plt
import numpy as np

from ionscope.eels import li_fraction_map
from ionscope.simulate import simulate

twin = simulate("eels_licoo2", seed=0, frames=[0, 100], li_params={"ny": 32, "nx": 32}, dose=1e8)
frame = twin["spectra"].isel(time=-1)  # frame 100 of the protocol: partly charged
result = li_fraction_map(frame, twin["ref_licoo2"], twin["ref_coo2"], co_extra={"co3o4": twin["ref_co3o4"]},
                         background=(40.0, 52.0), fit_window=(52.0, 90.0))
li, truth = result["li_fraction"], twin["li_fraction_true"].isel(time=-1)
print(f"mean |error| {float(np.abs(li - truth).mean()):.3f}, "
      f"median stderr {float(result['li_fraction_stderr'].median()):.3f}")

# %%
# One spectrum with its references, and the Li-fraction map next to the twin's truth.
fig, axes = plt.subplots(1, 3, figsize=(12, 3.5))
frame.isel(y=16, x=16).plot(ax=axes[0], label="pixel (16, 16)")
for name in ("ref_licoo2", "ref_coo2"):
    (twin[name] * float(frame.isel(y=16, x=16).max() / twin[name].max())).plot(ax=axes[0], label=name)
axes[0].legend(fontsize=7)
axes[0].set_title("spectrum and references")
li.plot(ax=axes[1], vmin=0, vmax=1, yincrease=False)
axes[1].set_title("Li fraction (MLLS)")
truth.plot(ax=axes[2], vmin=0, vmax=1, yincrease=False)
axes[2].set_title("twin's truth")
fig.tight_layout()
