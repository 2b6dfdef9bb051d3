"""State of charge along the record (:doc:`/guide/echem`).

``SOC(t) = (q(t) - q(t0)) / C_ref``: the net charge ``q`` passed since a zero record ``t0`` over a
reference capacity - the nominal capacity when given, else the capacity of the first complete
charge half cycle. The zero is the fully discharged state before the first charge: the record of
lowest net charge before the first charge half cycle - the log's first record for a cathode
started discharged (:doc:`/guide/echem`), the end of the first discharge for a log that starts with one.
The reference and the zero are stated in the output. An irreversible loss shows as SOC above 0
after a full discharge, as it should: the lithium did not come back.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import xarray as xr

from ionscope.data import provenance, with_provenance
from ionscope.echem.capacity import half_cycle_table, interval_charge_kernel
from ionscope.echem.log import CHARGE, LogArrays, log_arrays
from ionscope.errors import InputError
from ionscope.validation import Interval, validate_params

__all__ = ["state_of_charge_kernel", "soc_zero_index", "reference_capacity", "soc_along", "state_of_charge"]


def state_of_charge_kernel(time_s: np.ndarray, current_mA: np.ndarray, capacity_mAh: float,
                           zero_index: int = 0) -> np.ndarray:
    """Net charge passed since record ``zero_index`` (trapezoid), as a fraction of ``capacity_mAh``.

    Examples
    --------
    >>> import numpy as np
    >>> state_of_charge_kernel(np.array([0.0, 1800.0, 3600.0]), np.array([2.0, 2.0, 2.0]), 4.0)
    array([0.  , 0.25, 0.5 ])
    """
    q = np.cumsum(interval_charge_kernel(time_s, current_mA))
    return (q - q[int(zero_index)]) / float(capacity_mAh)


def soc_zero_index(time_s: np.ndarray, current_mA: np.ndarray, state: np.ndarray) -> int:
    """The record of lowest net charge before the first charge record (the first record when the
    log starts charging)."""
    charging = np.flatnonzero(state == CHARGE)
    stop = int(charging[0]) + 1 if charging.size else state.size
    q = np.cumsum(interval_charge_kernel(time_s, current_mA))[:stop]
    return int(np.argmin(q))


def reference_capacity(half_cycles: list[dict[str, Any]], capacity_mAh: float | None = None) -> tuple[float, str]:
    """The SOC reference capacity (mAh) and a sentence that states it."""
    if capacity_mAh is not None:
        return float(capacity_mAh), f"nominal capacity {capacity_mAh:g} mAh"
    for row in half_cycles:
        if row["state"] == "charge" and row["complete"] and row["capacity_mAh"] > 0:
            return row["capacity_mAh"], (f"capacity of the first complete charge (half cycle {row['half_cycle']}, "
                                         f"{row['capacity_mAh']:.6g} mAh)")
    raise InputError("the log has no complete charge half cycle to take the state of charge's reference capacity "
                     "from; give the nominal capacity (--capacity MAH)")


def soc_along(log: LogArrays, half_cycles: list[dict[str, Any]],
              capacity_mAh: float | None = None) -> tuple[np.ndarray, float, str]:
    """SOC at every record, the reference capacity (mAh) and a sentence stating reference and zero."""
    capacity, text = reference_capacity(half_cycles, capacity_mAh)
    zero = soc_zero_index(log.time_s, log.current_mA, log.state)
    where = "the log's first record" if zero == 0 else f"record {zero} (t = {log.time_s[zero]:g} s), the end of the first discharge"
    soc = state_of_charge_kernel(log.time_s, log.current_mA, capacity, zero)
    return soc, capacity, f"{text}; SOC 0 at {where} (the discharged state before the first charge)"


@validate_params({"capacity_mAh": [Interval(float, 0, None, closed="neither", unit="mAh"), None]})
def state_of_charge(log: xr.Dataset, capacity_mAh: float | None = None) -> xr.DataArray:
    """The state of charge at every record of a cycler log.

    Parameters
    ----------
    log : xarray.Dataset
        A cycler log (:func:`ionscope.io.load_cycler`).
    capacity_mAh : float, optional
        Nominal capacity (mAh); default: the first complete charge half cycle's capacity. SOC 0
        is the discharged state before the first charge (see the module docstring).

    Returns
    -------
    xarray.DataArray
        ``soc`` (time), unit "1", with attrs ``reference_capacity_mAh`` and ``soc_reference``
        (the reference in words) and a provenance step.
    """
    arrays = log_arrays(log)
    soc, capacity, text = soc_along(arrays, half_cycle_table(arrays) if capacity_mAh is None else [], capacity_mAh)
    da = xr.DataArray(soc, dims=("time",), coords={"time": log["time"]}, name="soc",
                      attrs={"units": "1", "long_name": "state of charge", "reference_capacity_mAh": capacity,
                             "soc_reference": text})
    return with_provenance(da, "ionscope.echem.state_of_charge", {"capacity_mAh": capacity_mAh}, inputs=[],
                           history=provenance(log))
