"""
Cycler logs: capacity, coulombic efficiency and dQ/dV of a real EC-Lab file
===========================================================================

The navani package ships a real BioLogic EC-Lab ``.mpr`` file: a galvanostatic run with five
cycles between 2.0 and 3.8 V (46,102 records, active mass in the file's settings). It is fetched
once with ``pip download`` into the test suite's cache. :func:`ionscope.io.load_cycler` reads it
into a record dim ``time`` (s) with ``voltage`` (V), ``current`` (mA, charge positive),
``charge`` (mAh, net, cumulative), ``cycle``, ``half_cycle`` and ``state``;
:func:`ionscope.echem.summarize` (``ionscope echem summary``) integrates every half cycle.
"""

import matplotlib.pyplot as plt

from _real_files import fetch_real_file
from ionscope import io
from ionscope.echem import dqdv, summarize

path = fetch_real_file("navani==0.1.22", "Example_data/jdb11-1_c3_gcpl_5cycles_2V-3p8V_C-24_data_C09.mpr")
log = io.load_cycler(path)
print(log.attrs["source_format"], log.attrs["start_time"], log.sizes["time"], "records,",
      log.attrs["active_mass_mg"], "mg active mass (from the file's settings)")
cycles, half_cycles, summary = summarize(log)


def show(value):
    return "-" if value is None else f"{value:.3f}"  # the first cycle has no charge: the run starts discharging


for row in cycles:
    print(f"cycle {row['cycle']}: charge {show(row['charge_mAh'])} mAh, discharge {show(row['discharge_mAh'])} mAh, "
          f"coulombic efficiency {show(row['coulombic_efficiency'])}")

# %%
# Voltage against time and the differential capacity dQ/dV of the log (binned in voltage; the
# smoothing is stated in the result's attributes).
curve = dqdv(log)
print(curve.attrs["method"], curve.attrs["bin_V"], "V bins:", curve.attrs["smoothing"][:80], "...")
fig, (ax0, ax1) = plt.subplots(1, 2, figsize=(10, 3.6))
ax0.plot(log["time"] / 3600, log["voltage"])
ax0.set_xlabel("time (h)")
ax0.set_ylabel("cell voltage (V)")
for k in (1, 2):  # the second cycle's charge and discharge
    one = curve.isel(dqdv_curve=k)
    one.plot(ax=ax1, label=f"cycle {int(one.dqdv_cycle)} {str(one.dqdv_state.values)}")
ax1.legend(fontsize=8)
ax1.set_title("dQ/dV")
fig.tight_layout()
