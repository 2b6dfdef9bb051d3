"""
SR-EELS: the Li profile across a Cu / solid-electrolyte interface
=================================================================

A spatially resolved EELS (SR-EELS) image has energy loss on one axis and position across the
interface on the other. The ``eels_sr`` twin holds a Li-enriched layer on the electrolyte side of
a Cu electrode. :func:`ionscope.eels.sr_profile` integrates the background-subtracted Li-K window
along position, and :func:`ionscope.eels.interface_and_width` fits the interface position and
the enrichment width (``ionscope eels profile``).
"""

import json

import matplotlib.pyplot as plt

from ionscope.eels import interface_and_width, sr_profile
from ionscope.simulate import simulate

twin = simulate("eels_sr", seed=0)
windows = json.loads(twin.attrs["windows"])
li = sr_profile(twin["spectra"], windows["li_k"], windows["background"])
fit = interface_and_width(li)
print(f"interface {float(fit['interface']):.1f} +/- {float(fit['interface_error']):.1f} nm, "
      f"layer {float(fit['width']):.1f} +/- {float(fit['width_error']):.1f} nm")
print("twin:", twin.attrs["interface_position_nm"], "nm interface,", twin.attrs["enrichment_width_nm"], "nm layer")

# %%
fig, (ax0, ax1) = plt.subplots(1, 2, figsize=(10, 3.6))
twin["spectra"].plot(ax=ax0, x="energy", y="position", yincrease=False, robust=True)
ax0.set_title("SR-EELS image")
li.plot(ax=ax1, marker=".", ls="", label="Li-K window integral")
fit["fit"].plot(ax=ax1, label="layer model")
ax1.axvline(twin.attrs["interface_position_nm"], color="k", ls=":", label="true interface")
ax1.legend(fontsize=8)
ax1.set_title("Li profile")
fig.tight_layout()
