"""
Workflow: from a hologram to the space-charge parameters
========================================================

The chain ``holo reconstruct`` -> ``holo potential`` -> ``holo profile`` -> ``spacecharge fit``
as library calls. The band profile across the interface, with its correlated-noise errors, is
written as a result folder exactly as ``ionscope holo profile --out`` writes it, read back with
:func:`ionscope.spacecharge.read_profile`, and fitted to the lattice-gas model convolved with the
reconstruction's resolution (:func:`ionscope.spacecharge.fit_measured_profiles`). A potential
profile alone fixes the drop and the width; the permittivity and the carrier density are
degenerate through the Debye length, and in a depleted layer only the Debye tail carries the
occupancy theta: eps_r, c0 and theta stay fixed at the twin's values here (a Li profile, ``--li``,
would let them be fitted).
"""

import json

import tempfile

import matplotlib.pyplot as plt

from ionscope import io
from ionscope.holography import potential_from_reconstruction, profile_across_interface, profile_summary
from ionscope.holography import reconstruct_offaxis
from ionscope.simulate import simulate
from ionscope.spacecharge import fit_measured_profiles, read_profile

twin = simulate("holography", seed=0, ny=160, nx=160, pixel_nm=0.5, vacuum_height_nm=20.0,
                interface_position_nm=36.0)
rec = reconstruct_offaxis(twin["hologram"], twin["reference"])
pot = potential_from_reconstruction(rec, 300, thickness_nm=float(twin["thickness_nm"][100, 60]))
profile = profile_across_interface(pot, start=(100, 12), end=(100, 148), model="erfc", side="end", step=True)

folder = tempfile.mkdtemp() + "/profile"
io.write_result(folder, profile, profile_summary(profile))
# The sharp step at the interface is the difference of the two materials' mean inner potentials
# (known from the materials, here the twin's); left free, it trades off against psi0.
STEP = twin.attrs["mip_electrode_V"] - twin.attrs["mip_electrolyte_V"]
truth = json.loads(twin.attrs["parameters"])
fit = fit_measured_profiles(read_profile(folder), eps_r=truth["eps_r"], c0=truth["c0_m3"],
                            fixed={"theta": truth["theta"]}, step=STEP)
print(f"psi0 {float(fit['psi0_V']):.2f} +/- {float(fit['psi0_V_stderr']):.2f} V (true {truth['psi0_V']}), "
      f"w90 {float(fit['w90_nm']):.1f} nm (true {twin.attrs['w90_nm']:.1f})")
print("step:", fit.attrs["step_choice"])
print("resolution:", fit.attrs["resolution_choice"])

# %%
fig, ax = plt.subplots(figsize=(6, 3.6))
fit["potential"].plot(ax=ax, marker=".", ls="", label="measured profile")
fit["potential_fit"].plot(ax=ax, label="lattice-gas fit")
ax.legend()
fig.tight_layout()
