"""
Workflow: KPFM potential meets TOF-SIMS lithium
===============================================

Is the potential rise seen by KPFM in the electrolyte really Li loss? The two instruments look at
the same cross-section on different grids, rotated and shifted against each other.
:func:`ionscope.correlate.correlate_results` (``ionscope correlate``) registers the KPFM field
onto the TOF-SIMS field by mutual information (rigid, in nm; the TOF-SIMS phases coded as one
image), averages every KPFM frame onto the TOF-SIMS grid, pairs frames with states by the cell's
charge, and correlates every LiCoPO4 particle's potential change with its Li change, with a
bootstrap interval for Pearson's r.
"""

import tempfile
import warnings

import matplotlib.pyplot as plt

from ionscope.correlate import correlate_results
from ionscope.errors import IonscopeWarning
from ionscope.kpfm import process_frames
from ionscope.sims import lithium_states
from ionscope.simulate import simulate
from ionscope.simulate.composite_cathode_files import write_scan_files

params = dict(ny=256, nx=256, pixel_nm=5.0, charge_frames=2, rest_frames=1, margin_nm=1800.0, sims_ny=64,
              sims_nx=64, sims_pixel_nm=50.0, sims_rotation_deg=3.5, sims_offset_y_nm=-400.0,
              sims_offset_x_nm=500.0, sims_states=3)
twin = simulate("composite_cathode", seed=0, **params)
folder = tempfile.mkdtemp()
written = write_scan_files(twin, folder)  # the KPFM frames, the cycler log and the TOF-SIMS states
kpfm, _ = process_frames([p for p in written if p.suffix == ".sxm"], cycler=f"{folder}/cycler.csv")
with warnings.catch_warnings():
    warnings.simplefilter("ignore", IonscopeWarning)  # the twin's 7Li saturation (see the TOF-SIMS example)
    sims, *_ = lithium_states([p for p in written if p.suffix == ".imzML"], pulses=1920,
                              cycler=f"{folder}/cycler.csv")

result, rows, summary = correlate_results(kpfm, sims)
print(f"rotation {summary['rotation_deg']:.2f} deg (KPFM onto TOF-SIMS), "
      f"shift ({summary['shift_y_nm']:.0f}, {summary['shift_x_nm']:.0f}) nm")
print(f"Pearson r {summary['pearson_r']:.3f}")

# %%
# The KPFM potential change resampled onto the TOF-SIMS grid, and per particle dV against dLi.
first = [r for r in rows if r["particle"] is not None and r["pair"] == 0]
fig, (ax0, ax1) = plt.subplots(1, 2, figsize=(10, 3.8))
on_sims = result["potential_on_sims"]
(on_sims.isel(time=-1) - on_sims.isel(time=0)).plot(ax=ax0, yincrease=False, cmap="RdBu_r", robust=True)
ax0.set_title("KPFM dV on the TOF-SIMS grid (V)")
ax1.errorbar([r["dLi_rel"] for r in first], [r["dV_mV"] for r in first],
             xerr=[r["dLi_rel_err"] for r in first], yerr=[r["dV_err_mV"] for r in first], fmt="o", capsize=3)
ax1.set_xlabel("Li change (relative)")
ax1.set_ylabel("potential change (mV)")
ax1.set_title(f"LiCoPO4 particles, r = {summary['pearson_r']:.2f}")
fig.tight_layout()
