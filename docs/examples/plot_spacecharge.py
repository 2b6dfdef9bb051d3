"""
Space-charge layer: depletion versus accumulation
=================================================

x
"""
import matplotlib.pyplot as plt

from ionscope.spacecharge import lattice_gas_profile

fig, ax = plt.subplots()
ax.plot([0, 1], [0, 1])
