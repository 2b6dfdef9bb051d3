"""
Off-axis holography on a real hologram: holospy's Fe needle
===========================================================

holospy ships a measured hologram of an iron needle and its vacuum reference (300 kV, HSPY
content in ``.hdf5`` files). ionscope reads them through RosettaSciIO, measures the fringes the
way HoloWorks reports them and reconstructs the phase with HyperSpy/holospy's default sign.
HoloWorks gives a fringe spacing of 3.486 nm, a sampling of 3.790 px and a contrast of 0.074 for
this reference.
"""

from pathlib import Path

import holospy
import matplotlib.pyplot as plt

from ionscope import io
from ionscope.holography import hologram_statistics, reconstruct_offaxis

folder = Path(holospy.__file__).parent / "data"
hologram = io.load(folder / "01_holo_Vbp_130V_0V_bin2_crop.hdf5")
reference = io.load(folder / "00_ref_Vbp_130V_0V_bin2_crop.hdf5")
print(hologram.dims, hologram.shape, hologram.attrs["beam_energy_kV"], "kV")

stats = hologram_statistics(reference)
print({k: round(stats[k], 4) for k in ("fringe_spacing_nm", "fringe_sampling_px", "fringe_contrast")})

# %%
# Reconstruct against the reference (the reference removes the carrier and the camera's
# distortions) and show the unwrapped phase and the amplitude.
rec = reconstruct_offaxis(hologram, reference)
fig, axes = plt.subplots(1, 3, figsize=(11, 3.4))
hologram.plot(ax=axes[0], cmap="gray", yincrease=False, add_colorbar=False)
axes[0].set_title("hologram")
rec["phase"].plot(ax=axes[1], cmap="RdBu_r", yincrease=False)
axes[1].set_title("phase (rad)")
rec["amplitude"].plot(ax=axes[2], cmap="gray", yincrease=False)
axes[2].set_title("amplitude")
fig.tight_layout()
