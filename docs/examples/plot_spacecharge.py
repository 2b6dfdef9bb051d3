"""
Space-charge layers: depletion against accumulation
===================================================

In the lattice-gas (Bikerman / Fermi-Dirac) model, Li+ sits on sites of density ``c_max`` with
bulk occupancy ``theta``; only a vacancy can take an extra ion. A positive interface potential
empties sites (depletion, limited by ``c0``), a negative one fills the few empty ones
(accumulation, limited by ``c_max - c0``), so with theta close to 1 the accumulation layer is much
wider than the depletion layer at the same ``|psi0|``. :func:`ionscope.spacecharge.lattice_gas_profile`
is ``ionscope spacecharge profile``; the numbers below reproduce the unit-test table of the
user guide (c0 = 6e27 m^-3, 1.3 V, 298 K).
"""

import matplotlib.pyplot as plt

from ionscope.spacecharge import lattice_gas_profile

fig, (ax0, ax1) = plt.subplots(1, 2, figsize=(10, 3.6))
for theta, eps_r in ((0.5, 20), (0.9, 50), (0.99, 50)):
    dep = lattice_gas_profile(1.3, theta, eps_r, 6e27, 298.0, length_nm=20)
    acc = lattice_gas_profile(-1.3, theta, eps_r, 6e27, 298.0, length_nm=20)
    print(f"theta {theta}, eps_r {eps_r}: L_D {float(dep['debye_length']):.2f} nm, "
          f"w90 depletion {float(dep['w90']):.2f} nm, accumulation {float(acc['w90']):.2f} nm")
    ax0.plot(dep["position"], dep["psi"], label=f"+1.3 V, theta {theta}")
    ax0.plot(acc["position"], acc["psi"], "--", label=f"-1.3 V, theta {theta}")
    ax1.semilogy(acc["position"], acc["c_li"], "--", label=f"accumulation, theta {theta}")
ax0.set_xlim(0, 10)
ax0.set_xlabel("distance from the interface (nm)")
ax0.set_ylabel("psi (V)")
ax0.legend(fontsize=7)
ax1.set_xlim(0, 10)
ax1.set_xlabel("distance from the interface (nm)")
ax1.set_ylabel("c_Li (m$^{-3}$)")
ax1.legend(fontsize=7)
fig.tight_layout()
