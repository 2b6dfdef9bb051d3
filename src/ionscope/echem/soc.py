"""State of charge along the record (METHODS.md section 7).

``SOC(t) = integral_0^t I dt / C_ref``: the net charge passed since the log's first record over a
reference capacity - the nominal capacity when given, else the capacity of the first complete
charge half cycle (the log starts fully discharged: a cathode started discharged). Which
reference was used is stated in the output. An irreversible loss shows as SOC above 0 after a
full discharge, as it should: the lithium did not come back.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import xarray as xr

from ionscope.data import provenance, with_provenance
from ionscope.echem.capacity import half_cycle_table, interval_charge_kernel
from ionscope.echem.log import log_arrays
from ionscope.errors import InputError
from ionscope.validation import Interval, validate_params

__all__ = ["state_of_charge_kernel", "reference_capacity", "state_of_charge"]


def state_of_charge_kernel(time_s: np.ndarray, current_mA: np.ndarray, capacity_mAh: float) -> np.ndarray:
    """Net charge passed since the first record (trapezoid), as a fraction of ``capacity_mAh``.

    Examples
    --------
    >>> import numpy as np
    >>> state_of_charge_kernel(np.array([0.0, 1800.0, 3600.0]), np.array([2.0, 2.0, 2.0]), 4.0)
    array([0.  , 0.25, 0.5 ])
    """
    return np.cumsum(interval_charge_kernel(time_s, current_mA)) / float(capacity_mAh)


def reference_capacity(half_cycles: list[dict[str, Any]], capacity_mAh: float | None = None) -> tuple[float, str]:
    """The SOC reference capacity (mAh) and a sentence that states it."""
    if capacity_mAh is not None:
        return float(capacity_mAh), f"nominal capacity {capacity_mAh:g} mAh; SOC 0 at the log's first record"
    for row in half_cycles:
        if row["state"] == "charge" and row["complete"] and row["capacity_mAh"] > 0:
            return row["capacity_mAh"], (f"capacity of the first complete charge (half cycle {row['half_cycle']}, "
                                         f"{row['capacity_mAh']:.6g} mAh); SOC 0 at the log's first record")
    raise InputError("the log has no complete charge half cycle to take the state of charge's reference capacity "
                     "from; give the nominal capacity (--capacity MAH)")


@validate_params({"capacity_mAh": [Interval(float, 0, None, closed="neither", unit="mAh"), None]})
def state_of_charge(log: xr.Dataset, capacity_mAh: float | None = None) -> xr.DataArray:
    """The state of charge at every record of a cycler log.

    Parameters
    ----------
    log : xarray.Dataset
        A cycler log (:func:`ionscope.io.load_cycler`).
    capacity_mAh : float, optional
        Nominal capacity (mAh); default: the first complete charge half cycle's capacity.

    Returns
    -------
    xarray.DataArray
        ``soc`` (time), unit "1", with attrs ``reference_capacity_mAh`` and ``soc_reference``
        (the reference in words) and a provenance step.
    """
    arrays = log_arrays(log)
    if capacity_mAh is None:
        capacity, text = reference_capacity(half_cycle_table(arrays))
    else:
        capacity, text = reference_capacity([], capacity_mAh)
    soc = state_of_charge_kernel(arrays.time_s, arrays.current_mA, capacity)
    da = xr.DataArray(soc, dims=("time",), coords={"time": log["time"]}, name="soc",
                      attrs={"units": "1", "long_name": "state of charge", "reference_capacity_mAh": capacity,
                             "soc_reference": text})
    return with_provenance(da, "ionscope.echem.state_of_charge", {"capacity_mAh": capacity_mAh}, inputs=[],
                           history=provenance(log))
