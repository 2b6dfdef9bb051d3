"""
Li motion: the flux behind the maps
===================================

The ``licoo2`` twin records how Li really moved (its true flux), so the motion measured from its
Li maps can be checked. :func:`ionscope.transport.li_motion` (``ionscope motion``) fits the rate
of change within each cell state, solves the continuity equation for the minimum-norm flux with
Li crossing only the electrolyte face (here the top of the image), follows the Li front, and
reports per cell state how much of the flux runs in-plane - a lower bound, since a circulating
flux changes no map.
"""

import matplotlib.pyplot as plt

from ionscope.simulate import simulate
from ionscope.transport import li_motion

twin = simulate("licoo2", seed=0, ny=32, nx=32)
maps = twin["li_fraction"].assign_coords(state=twin["state"])  # the cell state of every frame
motion, summary = li_motion(maps, electrolyte="top")
print(sorted(v for v in motion.data_vars if v.startswith(("flux", "velocity", "front"))))
for state, row in summary["states"].items():
    print(f"{state:9s} in-plane fraction {row['in_plane_fraction']:.2f} (a lower bound), "
          f"front velocity {row['front_velocity_nm_per_s']:+.4f} nm/s")

# %%
# The Li map and the flux in the middle of the charge, and the front's depth against time.
k = 40
fig, (ax0, ax1) = plt.subplots(1, 2, figsize=(10, 3.8))
twin["li_fraction"].isel(time=k).plot(ax=ax0, vmin=0, vmax=1, yincrease=False)
step = 3
sub = motion.isel(time=k, y=slice(None, None, step), x=slice(None, None, step))
ax0.quiver(sub.x, sub.y, sub["flux_x"], -sub["flux_y"], color="w")  # y grows downward on screen
ax0.set_title("Li fraction and flux (frame 40)")
motion["front_position_nm"].plot(ax=ax1)
ax1.set_title("front depth")
fig.tight_layout()
