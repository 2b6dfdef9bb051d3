r"""Li motion from operando Li-fraction movies: flux fields, front velocities, in-plane transport.

The study's conclusion is about motion, not maps: Li moves toward the solid electrolyte and in
the plane of the film, and keeps moving at rest. This package measures it on a (denoised)
Li-fraction series (time, y, x) (:doc:`/guide/motion`; Nomura et al., Nat. Commun. 11, 2824
(2020)).

- :mod:`~ionscope.transport.continuity`: the rate :math:`\partial_t x` (straight-line fits within
  each cell state), the minimum-norm flux of the continuity equation
  :math:`\partial_t x = -\nabla\cdot\mathbf J` by a DCT/DST Poisson solver (Li crosses only the
  electrolyte face), its exact noise, and the Helmholtz split of a vector field.
- :mod:`~ionscope.transport.mobility`: the mobility-aware (Fickian) flux
  :math:`-D\nabla\phi`, :math:`\nabla\cdot(D\nabla\phi) = \partial_t x` for a mobility map
  :math:`D` (fast domain boundaries carry the in-plane transport the minimum-norm flux misses), its
  noise, and the fit of bulk and boundary mobilities to the maps given a boundary mask.
- :mod:`~ionscope.transport.flow`: TV-L1 optical flow of the Li features, velocities in nm/s.
- :mod:`~ionscope.transport.fronts`: the iso-line front per frame, its normal velocity and
  roughness.
- :mod:`~ionscope.transport.workflow`: :func:`li_motion`, the chain ``ionscope motion`` runs:
  flux, velocity, front and, per cell state, the in-plane fraction of the flux and the mean
  front velocity with standard errors. Its first steps are in :mod:`~ionscope.transport.series`
  (the series checked: frame times, pixel size, :func:`state_codes`) and
  :mod:`~ionscope.transport.structure` (a mobility map or boundary mask checked, the mobility fit
  and :func:`interfacial_layer_mask`).

Kernels take numpy arrays; :func:`li_motion` takes an :class:`xarray.DataArray` and stays lazy on
dask-backed input until its statistics are computed.

Example
-------
>>> import numpy as np
>>> from ionscope.data import signal
>>> t = np.arange(6) * 60.0
>>> x = np.ones((6, 16, 8)) - 1e-4 * t[:, None, None]  # Li leaves uniformly
>>> ds, summary = li_motion(signal(x, ("time", "y", "x"), name="li", units="1",
...                                coords={"time": t, "y": 2.0, "x": 2.0}))
>>> round(float(ds["flux_y"].values[0, 0, 0]), 4)  # toward the electrolyte at the top: -(rate * depth)
-0.0031
"""

from ionscope.transport.continuity import (
    SIDES,
    divergence,
    divergence_free_part,
    flux_noise_sd,
    poisson_flux,
    rate_of_change,
)
from ionscope.transport.flow import frame_flow, velocity_at_frames
from ionscope.transport.mobility import MobilityFlux, fickian_rate, fit_two_phase_mobility, two_phase_mobility
from ionscope.transport.fronts import default_level, front_depth, front_roughness, front_velocity
from ionscope.transport.series import state_codes
from ionscope.transport.structure import interfacial_layer_mask
from ionscope.transport.workflow import METHODS, li_motion

__all__ = [
    "SIDES",
    "METHODS",
    "rate_of_change",
    "poisson_flux",
    "flux_noise_sd",
    "divergence",
    "divergence_free_part",
    "MobilityFlux",
    "fickian_rate",
    "fit_two_phase_mobility",
    "two_phase_mobility",
    "interfacial_layer_mask",
    "frame_flow",
    "velocity_at_frames",
    "front_depth",
    "front_velocity",
    "front_roughness",
    "default_level",
    "state_codes",
    "li_motion",
]
