"""
Timeline: every frame tied to the cell's state
==============================================

An operando series is only half the data: each frame has to be tied to what the cell was doing
while it was recorded. :func:`ionscope.timeline.attach_cycler` (``ionscope timeline``, and
``--cycler`` of the series commands) places every frame at its mid-exposure time on the cycler
log's clock and adds ``cell_voltage``, ``cell_current``, ``charge`` and ``state``
(rest / charge / discharge) per frame. Here the ``licoo2`` twin's Li maps are tied to its own
cycler log written as CSV, with the absolute start time of the series.
"""

import tempfile
from pathlib import Path

from ionscope import io
from ionscope.report.timeline_figures import timeline_figure
from ionscope.simulate import cycler_table, simulate
from ionscope.timeline import attach_cycler, timeline_summary

START = "2026-01-15T09:30:00+09:00"
twin = simulate("licoo2", seed=0, ny=24, nx=24)
log_path = Path(tempfile.mkdtemp()) / "cycler.csv"
log_path.write_text(cycler_table(twin, start_time=START))  # time_s, voltage_V, current_A, charge_C

series = attach_cycler(twin["li_fraction"], log_path, start=START)
summary = timeline_summary(series)
print(series.sizes["time"], "frames;", {k: series[k].attrs["units"] for k in ("cell_voltage", "cell_current", "charge")})
print("states of the first and last frame:", summary["state"][0], summary["state"][-1])

# %%
# The cycler curve with one marker per frame, coloured by the cell's state.
fig = timeline_figure(io.load_cycler(log_path), series)
