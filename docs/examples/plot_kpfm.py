"""
Cross-sectional KPFM: operando potential maps and active particles
==================================================================

The ``composite_cathode`` twin is a polished cross-section of a LiCoPO4 + LATP + Pd composite
cathode scanned by KPFM while the cell charges: one Nanonis ``.sxm`` file per frame (with drift
between frames, a PSF wider than the tip, scan-line noise) and the cycler's CSV log.
:func:`ionscope.kpfm.process_frames` (``ionscope kpfm process``) orders the frames by their
header times, levels the topography only, references every frame to the grounded collector
(its median = 0 V), registers the frames onto the first one and ties every frame and scan row to
the cell's state. :func:`ionscope.kpfm.find_particles` (``ionscope kpfm particles``) segments the
particles and marks those whose potential follows the cell.
"""

import tempfile

import matplotlib.pyplot as plt

from ionscope.kpfm import find_particles, process_frames
from ionscope.simulate import simulate
from ionscope.simulate.composite_cathode_files import write_scan_files

twin = simulate("composite_cathode", seed=0, ny=256, nx=256, pixel_nm=5.0, charge_frames=2, rest_frames=1,
                margin_nm=1800.0, sims_states=2, sims_ny=32, sims_nx=32, sims_pixel_nm=50.0)
folder = tempfile.mkdtemp()
written = write_scan_files(twin, folder, sims=False)
scans = [p for p in written if p.suffix == ".sxm"]
result, summary = process_frames(scans, cycler=f"{folder}/cycler.csv")
print(summary["frames"], "frames, noise", round(summary["noise_mV"], 2), "mV, reference box", summary["reference_box"])
print("cell voltage per frame (V):", result["cell_voltage"].values.round(3).tolist())

particles, rows = find_particles(result)
print(particles.attrs["particles"], "particles,", particles.attrs["active_particles"], "active")

# %%
# First frame, the change over the series (the static work-function contrast cancels), and the
# active particles.
pot = result["potential"]
fig, axes = plt.subplots(1, 3, figsize=(12, 3.5))
pot.isel(time=0).plot(ax=axes[0], yincrease=False, cmap="viridis")
axes[0].set_title("potential, frame 0 (V)")
(pot.isel(time=-1) - pot.isel(time=0)).plot(ax=axes[1], yincrease=False, cmap="RdBu_r", robust=True)
axes[1].set_title("V(last) - V(first) (V)")
particles["active"].plot(ax=axes[2], yincrease=False, add_colorbar=False)
axes[2].set_title("active particles")
fig.tight_layout()
