"""
Off-axis holography: from a hologram to the space-charge drop
=============================================================

The ``holography`` twin is a biased electrode / solid-electrolyte lamella seen through an
electron biprism: a hologram and a vacuum reference with Poisson noise, a detector MTF and a
known space-charge layer at the interface. The chain below is what ``ionscope holo reconstruct``,
``holo potential`` and ``holo profile`` run: sideband reconstruction, phase to potential with the
relativistic interaction constant, and a step fit across the interface.
"""

import matplotlib.pyplot as plt

from ionscope.holography import potential_from_reconstruction, profile_across_interface, profile_summary
from ionscope.holography import reconstruct_offaxis
from ionscope.simulate import simulate

twin = simulate("holography", seed=0, ny=160, nx=160, pixel_nm=0.5, vacuum_height_nm=20.0,
                interface_position_nm=36.0)
rec = reconstruct_offaxis(twin["hologram"], twin["reference"])
print({k: rec.attrs[k] for k in ("fringe_spacing_nm", "fringe_sampling_px", "phase_sign_convention")})

# %%
# Phase to potential: a uniform thickness taken from the twin (``--thickness``), 300 kV.
thickness = float(twin["thickness_nm"][100, 60])
pot = potential_from_reconstruction(rec, 300, thickness_nm=thickness)
fit = profile_across_interface(pot, start=(100, 12), end=(100, 148), model="erfc", side="end", step=True)
summary = profile_summary(fit)
print(f"drop {summary['drop_V']:.2f} V (true {twin.attrs['psi0_V']:.2f}), "
      f"w90 {summary['w90_nm']:.1f} nm (true {twin.attrs['w90_nm']:.1f})")

# %%
# The phase map and the band profile with its fit.
fig, (ax0, ax1) = plt.subplots(1, 2, figsize=(9, 3.6))
rec["phase"].plot(ax=ax0, cmap="twilight_shifted", yincrease=False)  # row 0 at the top
ax0.set_title("unwrapped phase (rad)")
ax1.plot(fit["position"], fit["profile"], ".", ms=3, label="band profile")
ax1.plot(fit["position"], fit["fit"], "-", label="erfc step fit")
ax1.set_xlabel("position along the line (nm)")
ax1.set_ylabel("potential (V)")
ax1.legend()
fig.tight_layout()
