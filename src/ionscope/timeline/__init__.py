"""The cell's timeline: every frame of an operando series tied to the cell's state.

A shared package (techniques such as :mod:`ionscope.kpfm` and :mod:`ionscope.eels` import it; it
imports only the core modules: :mod:`ionscope.io`, :mod:`ionscope.data`, :mod:`ionscope.units`,
:mod:`ionscope.errors`). User guide: :doc:`/guide/timeline`.

- :mod:`~ionscope.timeline.clock`: ISO 8601 times, time zones, naive vs aware times.
- :mod:`~ionscope.timeline.metadata`: the absolute start of a series from its file (DM DataBar,
  Velox EMD, HyperSpy ``General.date/time``, the ``start_time`` attribute of ionscope's results
  and of the scanning-probe readers).
- :mod:`~ionscope.timeline.log`: a cycler log in the array model (:func:`cycler_log`) and the
  kernels that read it at given times (linear interpolation, the state at a time, clock jumps).
- :mod:`~ionscope.timeline.attach`: :func:`frame_times` (start, mid-exposure time per frame,
  time per scan row) and :func:`attach_cycler` (``cell_voltage``, ``cell_current``, ``charge``,
  ``state`` per frame and per row).

Example
-------
>>> import numpy as np
>>> from ionscope.simulate import simulate
>>> twin = simulate("licoo2", ny=16, nx=8, layer_thickness_nm=4, layer_roughness_nm=1,
...                 charge_frames=2, rest1_frames=0, discharge_frames=2, rest2_frames=0)
>>> log = {"time_s": twin["record"].values, "voltage_V": twin["cycler_voltage"].values,
...        "current_A": twin["cycler_current"].values}
>>> series = attach_cycler(twin["li_fraction"], log, start="2024-05-01T10:00:00+09:00")
>>> series["state"].values.tolist()  # charge, charge, discharge, discharge
[1, 1, 2, 2]
"""

from ionscope.timeline.attach import (
    TIMELINE_COORDS,
    FrameTimes,
    attach_cycler,
    attach_cycler_states,
    cell_state_name,
    frame_times,
    timeline_summary,
)
from ionscope.timeline.clock import parse_time, parse_timezone, seconds_between
from ionscope.timeline.log import STATE_FLAGS, cycler_log, interpolate_kernel, state_at_kernel
from ionscope.timeline.metadata import metadata_start

__all__ = [
    "attach_cycler_states",
    "cell_state_name",
    "FrameTimes",
    "frame_times",
    "attach_cycler",
    "timeline_summary",
    "TIMELINE_COORDS",
    "cycler_log",
    "interpolate_kernel",
    "state_at_kernel",
    "STATE_FLAGS",
    "metadata_start",
    "parse_time",
    "parse_timezone",
    "seconds_between",
]
