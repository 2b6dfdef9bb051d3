"""Electrochemistry: capacities, efficiencies, state of charge, dQ/dV and IR drops of cycler logs,
and the before/after-polishing comparison (:doc:`/guide/echem`).

Numpy kernels on the record's columns; thin wrappers take the cycler-log Dataset that
:func:`ionscope.io.load_cycler` returns (record dim ``time`` in s, ``voltage`` V, ``current`` mA
with charge positive, ``charge`` mAh, ``cycle``, ``half_cycle``, ``state``).

- :mod:`~ionscope.echem.log`: a log checked into plain arrays (:func:`log_arrays`); states, half
  cycles and cycles from the sign of the current when a log lacks them.
- :mod:`~ionscope.echem.capacity`: per half cycle and per cycle capacity (mAh, mAh/g, mAh/cm2),
  coulombic efficiency, energy, mean voltage, C-rate, duration.
- :mod:`~ionscope.echem.soc`: the state of charge along the record, its reference stated.
- :mod:`~ionscope.echem.dqdv`: dQ/dV per half cycle on a voltage grid, the smoothing stated.
- :mod:`~ionscope.echem.ir`: IR drop and resistance at every current step, the points stated.
- :mod:`~ionscope.echem.workflow`: :func:`summarize` and :func:`summary_result`, the chain of
  ``ionscope echem summary``.
- :mod:`~ionscope.echem.compare`: :func:`compare_logs`, the chain of ``ionscope echem compare``.

Example
-------
>>> import numpy as np, xarray as xr
>>> from ionscope.echem import summarize
>>> t = np.array([0.0, 3600.0, 3600.0, 7200.0, 7200.0, 7300.0])      # s
>>> i = np.array([0.5, 0.5, -0.45, -0.45, 0.0, 0.0])                 # mA: charge, discharge, rest
>>> v = np.array([3.0, 4.1, 4.0, 3.0, 3.2, 3.2])                     # V
>>> log = xr.Dataset({"voltage": ("time", v, {"units": "V"}), "current": ("time", i, {"units": "mA"})},
...                  coords={"time": ("time", t, {"units": "s"})})
>>> cycles, half_cycles, info = summarize(log, area_cm2=0.5)
>>> round(cycles[0]["charge_mAh"], 6), round(cycles[0]["coulombic_efficiency"], 6), info["half_cycles"]
(0.5, 0.9, 2)
"""

from ionscope.echem.capacity import (
    CYCLE_COLUMNS, HALF_CYCLE_COLUMNS, SECONDS_PER_HOUR, cycle_table, half_cycle_table, interval_charge_kernel,
    interval_energy_kernel,
)
from ionscope.echem.compare import BASES, COMPARE_COLUMNS, compare_cycles, compare_logs, compare_result
from ionscope.echem.dqdv import dqdv, dqdv_binned_kernel, savgol_bins_kernel, voltage_edges
from ionscope.echem.ir import IR_COLUMNS, current_steps_kernel, ir_drops
from ionscope.echem.log import (
    CHARGE, DISCHARGE, REST, STATE_NAMES, LogArrays, classify_states, log_arrays, number_cycles, number_half_cycles,
)
from ionscope.echem.soc import reference_capacity, soc_along, soc_zero_index, state_of_charge, state_of_charge_kernel
from ionscope.echem.workflow import electrode_value, summarize, summary_result

__all__ = [
    "summarize",
    "summary_result",
    "compare_logs",
    "compare_cycles",
    "compare_result",
    "state_of_charge",
    "dqdv",
    "ir_drops",
    "log_arrays",
    "LogArrays",
    "REST",
    "CHARGE",
    "DISCHARGE",
    "STATE_NAMES",
    "classify_states",
    "number_half_cycles",
    "number_cycles",
    "SECONDS_PER_HOUR",
    "HALF_CYCLE_COLUMNS",
    "CYCLE_COLUMNS",
    "COMPARE_COLUMNS",
    "IR_COLUMNS",
    "BASES",
    "interval_charge_kernel",
    "interval_energy_kernel",
    "half_cycle_table",
    "cycle_table",
    "state_of_charge_kernel",
    "reference_capacity",
    "soc_zero_index",
    "soc_along",
    "dqdv_binned_kernel",
    "savgol_bins_kernel",
    "voltage_edges",
    "current_steps_kernel",
    "electrode_value",
]
