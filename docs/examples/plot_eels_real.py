"""
EELS on a real spectrum image: power-law background and an edge map
====================================================================

HyperSpy's test suite ships a real DigitalMicrograph EELS spectrum image (``EELS_SI.dm4``, an
O-K edge). It is fetched once with ``pip download`` into the test suite's cache. ionscope reads
it through RosettaSciIO with its calibrated energy axis, fits a power law ``A E^-r`` in a
pre-edge window, subtracts it, and integrates the edge in a window: the same steps as the
background and window options of ``ionscope eels lithium`` and ``ionscope eels profile``.
"""

import matplotlib.pyplot as plt

from _real_files import fetch_real_file
from ionscope import io
from ionscope.eels import subtract_powerlaw, window_map

path = fetch_real_file("hyperspy==1.7.6", "hyperspy/tests/io/dm4_3D_data/EELS_SI.dm4")
si = io.load(path)
print(si.dims, si.shape, si.energy.attrs["units"], float(si.energy[0]), "to", float(si.energy[-1]))

# %%
# The O-K edge starts near 532 eV: the background window sits just below it. The image is small
# (2 x 2 pixels); every pixel gets its own power law, its fit quality and the edge integral with
# its counting error.
background = (480.0, 525.0)
edge = (532.0, 570.0)
fit = subtract_powerlaw(si, background)
o_k = window_map(si, edge, background=background)
print("exponent r per pixel:", fit["r"].values.round(2).tolist())
print("O-K integral:", o_k["integral"].values.round(0).tolist(), "+/-", o_k["integral_error"].values.round(0).tolist())

# %%
# One pixel's spectrum with its fitted background, and every pixel's background-free edge.
pixel = si.isel(y=0, x=1)
fig, (ax0, ax1) = plt.subplots(1, 2, figsize=(10, 3.6))
near = {"energy": slice(450, 650)}
pixel.sel(near).plot(ax=ax0, label="raw")
(pixel - fit["signal"].isel(y=0, x=1)).sel(near).plot(ax=ax0, label="power law A E^-r")
for (lo, hi), colour in ((background, "0.8"), (edge, "C2")):
    ax0.axvspan(lo, hi, color=colour, alpha=0.3)
ax0.legend(fontsize=8)
ax0.set_title("pixel (0, 1)")
for iy in range(si.sizes["y"]):
    for ix in range(si.sizes["x"]):
        fit["signal"].isel(y=iy, x=ix).sel(near).plot(ax=ax1, label=f"pixel ({iy}, {ix})")
ax1.legend(fontsize=8)
ax1.set_title("O-K edge after the background")
fig.tight_layout()
