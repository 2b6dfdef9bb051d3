"""IR drop at current steps: the cell's ohmic resistance ``R = dV / dI`` (:doc:`/guide/echem`).

When the current steps (rest -> charge, charge -> rest, charge -> discharge ...) the voltage jumps
by ``R dI`` before any diffusion relaxes it [current-interruption method; e.g. Bard & Faulkner,
*Electrochemical Methods*, 2nd ed. (2001), section 15.6]. Each step is the pair of consecutive
records whose currents differ by at least ``min_step_mA``; ``R = (V_after - V_before) /
(I_after - I_before)``. The two records used are stated (indices, times, ``dt_s`` between them):
the longer ``dt_s``, the more relaxation (charge transfer, diffusion) the jump includes, so ``R``
is an upper bound of the ohmic part.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import xarray as xr

from ionscope.echem.log import log_arrays
from ionscope.validation import Interval, validate_params

__all__ = ["IR_COLUMNS", "current_steps_kernel", "ir_drops"]

#: Columns of an IR-drop row (``ir_drops.csv``).
IR_COLUMNS = ["step", "time_s", "dt_s", "record_before", "record_after", "current_before_mA", "current_after_mA",
              "voltage_before_V", "voltage_after_V", "resistance_ohm", "cycle", "half_cycle"]


def current_steps_kernel(current_mA: np.ndarray, min_step_mA: float) -> np.ndarray:
    """Indices ``k`` (>= 1) where ``|I[k] - I[k-1]| >= min_step_mA``: the step is between records
    ``k-1`` and ``k``.

    Examples
    --------
    >>> import numpy as np
    >>> current_steps_kernel(np.array([0.0, 0.0, 1.0, 1.0, -1.0]), 0.5)
    array([2, 4])
    """
    current = np.asarray(current_mA, dtype=np.float64)
    return np.flatnonzero(np.abs(np.diff(current)) >= min_step_mA) + 1


@validate_params({"min_step_mA": [Interval(float, 0, None, closed="neither", unit="mA"), None]})
def ir_drops(log: xr.Dataset, *, min_step_mA: float | None = None) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """IR drop and resistance at every current step of a cycler log.

    Parameters
    ----------
    log : xarray.Dataset
        A cycler log (:func:`ionscope.io.load_cycler`).
    min_step_mA : float, optional
        Smallest current change that counts as a step (mA); default a fifth of the largest
        ``|I|``.

    Returns
    -------
    rows : list of dict
        One per step (columns :data:`IR_COLUMNS`): ``resistance_ohm = (V_after - V_before) /
        (I_after - I_before)`` (V/mA x 1000), the records used and the time between them.
    info : dict
        ``min_step_mA`` used, ``steps``, ``median_resistance_ohm`` (None without steps) and
        ``method`` (the points used, in words).
    """
    arrays = log_arrays(log)
    i, v, t = arrays.current_mA, arrays.voltage_V, arrays.time_s
    if min_step_mA is None:
        min_step_mA = max(0.2 * float(np.max(np.abs(i))), 1e-12)
    rows = []
    for n, k in enumerate(current_steps_kernel(i, min_step_mA), start=1):
        d_i = i[k] - i[k - 1]
        rows.append({
            "step": n, "time_s": float(t[k]), "dt_s": float(t[k] - t[k - 1]), "record_before": int(k - 1),
            "record_after": int(k), "current_before_mA": float(i[k - 1]), "current_after_mA": float(i[k]),
            "voltage_before_V": float(v[k - 1]), "voltage_after_V": float(v[k]),
            "resistance_ohm": float((v[k] - v[k - 1]) / d_i * 1e3), "cycle": int(arrays.cycle[k]),
            "half_cycle": int(arrays.half_cycle[k]),
        })
    info = {
        "min_step_mA": float(min_step_mA),
        "steps": len(rows),
        "median_resistance_ohm": float(np.median([r["resistance_ohm"] for r in rows])) if rows else None,
        "method": ("R = (V_after - V_before) / (I_after - I_before) from the last record before and the first record "
                   f"after each current step of at least {min_step_mA:.6g} mA; dt_s is the time between them "
                   "(relaxation within it adds to R)"),
    }
    return rows, info
