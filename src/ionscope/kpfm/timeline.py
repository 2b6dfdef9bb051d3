"""Per-row times of scanned frames and the cell's state at each row: KPFM's view of the shared
cell timeline (:mod:`ionscope.timeline`).

A KPFM frame takes minutes, so every scan line has its own time (``row_time``, s from the
frame's start) and, with a cycler log, its own cell voltage, current and charge (user guide:
:doc:`/guide/timeline`). The log is read into the cycler model by :func:`ionscope.timeline.cycler_log` (files
through :func:`ionscope.io.load_cycler`) and interpolated with the shared kernel; this module
only gives it in the SI units ``kpfm process`` has always written (A, C).

Times: frames carry their absolute start (``start_time``, ISO 8601); a cycler log its times in s
from its own zero, whose absolute time is the ``start`` given by the user, else the log's
``start_time`` attribute, else - by assumption, recorded in the result - the first frame's start.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ionscope.timeline.clock import parse_time, seconds_between
from ionscope.timeline.log import cycler_log, interpolate_kernel

__all__ = [
    "parse_time",
    "seconds_between",
    "cycler_arrays",
    "interpolate_kernel",
]

def cycler_arrays(cycler: Any, *, timezone: Any = None) -> dict[str, Any]:
    """A cycler log as plain arrays in the cycler model's units (s, V, mA, mAh).

    Parameters
    ----------
    cycler : xarray.Dataset, pandas.DataFrame, mapping of arrays, or path
        Anything :func:`ionscope.timeline.cycler_log` takes: a file (CSV ``time_s, voltage_V,
        current_A, charge_C`` as ionscope's twins write it, or any cycler format
        :func:`ionscope.io.load_cycler` reads), a Dataset in the cycler model or with the twins'
        ``cycler_*`` variables, a mapping or DataFrame with ``Ewe/V``, ``I/mA``... columns.
        Without a charge, the current is integrated.
    timezone : str, optional
        For a file: the zone of its naive local start time (:func:`ionscope.io.load_cycler`).

    Returns
    -------
    dict
        ``time_s``, ``voltage_V``, ``current_mA``, ``charge_mAh`` (float64 arrays sorted by time)
        and ``start_time`` (str or None).

    Raises
    ------
    InputError
        No time or voltage, units not understood, fewer than two records.
    """
    log = cycler_log(cycler, timezone=timezone)
    t = np.asarray(log["time"].values, dtype=np.float64)
    order = np.argsort(t, kind="stable")

    def column(name: str) -> np.ndarray | None:
        return np.asarray(log[name].values, dtype=np.float64)[order] if name in log else None

    start = log.attrs.get("start_time")
    return {"time_s": t[order], "voltage_V": column("voltage"), "current_mA": column("current"),
            "charge_mAh": column("charge"), "start_time": None if start in (None, "") else str(start)}
