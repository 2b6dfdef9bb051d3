"""The structure beside the series: the mobility map or domain-boundary mask of the Fickian flux.

The maps :func:`~ionscope.transport.li_motion` takes with the series (a mobility map ``mobility``
or a boundary mask ``boundaries``, (y, x) on the series' grid) checked for shape and values; the
Li-poor interfacial layer of the first map (:func:`~ionscope.transport.interfacial_layer_mask`),
which the mobility fit leaves out; and the two-phase mobility map fitted to the maps from a
boundary mask, pooled over the cell states Fick's law describes, with its report (the kernels are
:mod:`ionscope.transport.mobility`'s).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import xarray as xr

from ionscope.errors import DimensionError, InputError
from ionscope.transport.continuity import SIDES, rate_of_change
from ionscope.transport.mobility import fit_two_phase_mobility, two_phase_mobility

__all__ = ["interfacial_layer_mask"]


def _structure_map(value: Any, what: str, shape: tuple[int, int]) -> np.ndarray:
    """A (y, x) map given beside the series (a DataArray with dims y, x, or an array) as float64,
    checked for the series' map shape and finite values."""
    if isinstance(value, xr.DataArray):
        extra = [d for d in value.dims if d not in ("y", "x")]
        if extra or set(value.dims) != {"y", "x"}:
            raise DimensionError(f"the {what} has dims ({', '.join(map(str, value.dims))}); give a (y, x) map of the "
                                 "series' field of view")
        value = value.transpose("y", "x").values
    a = np.asarray(value)
    if a.shape != tuple(shape):
        raise InputError(f"the {what} is {' x '.join(map(str, a.shape)) or 'a scalar'} px, the series' maps are "
                         f"{shape[0]} x {shape[1]} px; give a map on the series' y/x grid")
    if a.dtype == bool:
        return a.astype(np.float64)
    if not np.issubdtype(a.dtype, np.number):
        raise InputError(f"the {what} must be numbers, got {a.dtype}")
    a = a.astype(np.float64)
    if not np.all(np.isfinite(a)):
        raise InputError(f"the {what} has {int(np.sum(~np.isfinite(a)))} NaN or infinite pixels; give a finite map")
    return a


def interfacial_layer_mask(first: np.ndarray, level: float, side: str) -> np.ndarray:
    """The Li-poor interfacial layer of the first map: the pixels below ``level`` connected
    (4-neighbours) to the electrolyte face ``side`` (bool, (ny, nx)); empty if none touch it.

    Its Li fraction is a site fraction times the occupancy (a phase of another site density, as
    the LiCoO2 + Co3O4 layer of Nomura et al. 2020), so Fick's law on the maps fails at its edge.
    """
    from scipy import ndimage

    labels, _ = ndimage.label(np.asarray(first) < level)
    axis, first_face = SIDES[side]
    edge = np.take(labels, 0 if first_face else -1, axis=axis)
    touching = np.unique(edge[edge > 0])
    return np.isin(labels, touching) & (labels > 0)


def _mobility_from_boundaries(x: np.ndarray, t: np.ndarray, codes: np.ndarray, names: dict[int, str],
                              runs: np.ndarray, mask: np.ndarray, level: float, side: str,
                              pixel: tuple[float, float], window: int) -> tuple[np.ndarray, dict[str, Any]]:
    """The two-phase mobility map fitted to the maps (see :func:`~ionscope.transport.li_motion`) and its report."""
    from scipy import ndimage

    layer = interfacial_layer_mask(x[0], level, side)
    axis, first_face = SIDES[side]
    skip = layer.copy()
    index = [slice(None), slice(None)]
    index[axis] = 0 if first_face else -1
    skip[tuple(index)] = True  # the electrolyte row: Li leaves or enters there by a source
    use = ~ndimage.binary_dilation(skip, iterations=1)
    if use.sum() < 16 or not (mask & use).any() or not (~mask & use).any():
        raise InputError(
            f"the boundary mask has {int((mask & use).sum())} boundary and {int((~mask & use).sum())} bulk pixels "
            "outside the electrolyte row and the Li-poor interfacial layer; the fit of the two mobilities needs both")
    rate = rate_of_change(x, t, runs, window)
    fits = fit_two_phase_mobility(x, rate, mask, pixel, use=use, groups=codes)
    pooled = fits["pooled"]
    if not (np.isfinite(pooled["d_bulk_nm2_s"]) and pooled["d_bulk_nm2_s"] > 0):
        raise InputError("Fick's law with the boundary mask does not describe the series (the fitted bulk mobility "
                         f"is {pooled['d_bulk_nm2_s']:.3g}); check the mask's registration to the series, or give "
                         "--mobility")
    mobility = two_phase_mobility(mask & ~layer, pooled["d_bulk_nm2_s"], pooled["d_boundary_nm2_s"])
    report = {
        "source": "fitted from the boundary mask",
        "model": ("D = d_boundary on the mask's boundary pixels, d_bulk elsewhere and in the Li-poor interfacial "
                  "layer (where the fit cannot measure it: x = site fraction * occupancy there); fitted by least "
                  "squares of dx/dt = div(D grad x) in its Dirichlet (weak) form over the pixels outside the layer "
                  "and the electrolyte row, per cell state; the states where the law describes the maps (r2 >= "
                  "0.5, positive mobilities) give the pooled fit, and the Fickian flux with it is the flux of every "
                  "state (Li inserted inside the field is supplied along the same paths of least resistance)"),
        "d_bulk_nm2_s": pooled["d_bulk_nm2_s"], "d_bulk_nm2_s_error": pooled["d_bulk_nm2_s_error"],
        "d_boundary_nm2_s": pooled["d_boundary_nm2_s"], "d_boundary_nm2_s_error": pooled["d_boundary_nm2_s_error"],
        "ratio": pooled["ratio"], "ratio_error": pooled["ratio_error"],
        "pooled_states": [names[int(g)] for g in pooled["groups"]],
        "fit_by_state": {names[int(k)]: v for k, v in fits.items() if k != "pooled"},
        "boundary_px": int(mask.sum()), "interfacial_layer_px": int(layer.sum()), "fit_px": int(use.sum()),
        "units": "nm^2/s",
    }
    return mobility, report

