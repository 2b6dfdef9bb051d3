"""
TOF-SIMS: lithium per phase and per state of charge
===================================================

The TOF-SIMS side of the ``composite_cathode`` twin: one imzML file (+ ``.ibd``) per state of
charge of the same cross-section, the stage moved between states. :func:`ionscope.sims.lithium_states`
(``ionscope sims lithium``) calibrates the mass axis on known peaks, integrates ion windows,
corrects the detector's dead time from the number of primary pulses, checks 7Li against
12.2 x 6Li (saturation), registers every state onto the first, finds the phases (LiCoPO4, LATP,
Pd) from their matrix ions and reports the Li of every phase relative to the pristine state.
In the twin, LATP loses 12 % of its Li on the first charge and does not get it back.
"""

import tempfile
import warnings

import matplotlib.pyplot as plt

from ionscope.errors import IonscopeWarning
from ionscope.sims import lithium_states
from ionscope.simulate.composite_cathode_files import write_sims_files
from ionscope.simulate.composite_cathode_sims import simulate_sims

folder = tempfile.mkdtemp()
files = [p for p in write_sims_files(simulate_sims(seed=0), folder) if p.suffix == ".imzML"]
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always", IonscopeWarning)
    result, phases, particles, summary = lithium_states(files, pulses=1920)
print("warnings:", [str(w.message)[:90] for w in caught])  # the twin's 7Li saturates: said, and corrected
print(summary["phases"])
for name in summary["li_rel_pristine"]:  # the Li-hosting phases (Pd holds none)
    rel = summary["li_rel_pristine"][name]["value"]
    print(f"{name:8s} Li relative to pristine:", [round(v, 3) for v in rel])

# %%
# The phase map, the Li map of the first and last state, and Li per phase against the state.
fig, axes = plt.subplots(1, 4, figsize=(15, 3.4))
result["phase"].plot(ax=axes[0], yincrease=False, add_colorbar=False, cmap="tab10")
axes[0].set_title("phases: " + ", ".join(summary["phases"]))
for ax, k in zip(axes[1:3], (0, -1)):
    result["li"].isel(state=k).plot(ax=ax, yincrease=False, robust=True)
    ax.set_title(f"Li, state {str(result.state.values[k])}")
for name in summary["li_rel_pristine"]:
    rel = result["phase_li_rel"].sel(phases=name)
    err = result["phase_li_rel_error"].sel(phases=name)
    axes[3].errorbar(range(rel.size), rel, yerr=err, marker="o", capsize=3, label=name)
axes[3].set_xticks(range(result.sizes["state"]), [str(s) for s in result.state.values], rotation=30)
axes[3].set_ylabel("Li / Li(pristine)")
axes[3].legend(fontsize=8)
fig.tight_layout()
