"""The cell's timeline as a figure: the cycler curve (voltage and current against time) with a
marker at every frame of the series (``ionscope timeline``; every series command with
``--cycler``).

A plain function of a cycler log in the model (:func:`ionscope.timeline.cycler_log`) and a
result of :func:`ionscope.timeline.attach_cycler`; no numerics beyond unit scaling.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

import numpy as np
import xarray as xr
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from ionscope.timeline.attach import cell_state_name
from ionscope.report.figures import STATE_COLORS, _state_legend, new_figure, si_scale, state_names, style

__all__ = ["timeline_figure"]

#: Colour of the log's curve and of frames without a cell state.
LOG_COLOR = "#243b53"
UNKNOWN_COLOR = "#b8bec6"
#: Colour of the marked events (another instrument's acquisitions).
EVENT_COLOR = "#7b3294"


def timeline_figure(log: xr.Dataset, result: xr.Dataset | xr.DataArray, *, width: float = 9.0,
                    events: Sequence[tuple[str, float]] = ()) -> Figure:
    """Cell voltage (top) and current (bottom) of the cycler log against time, one marker per
    frame at its mid-exposure time coloured by the cell state, frames outside the log as grey
    ticks on the time axis, and each frame's scan (first to last row) as a bar for a scanned
    series.

    Parameters
    ----------
    log : xarray.Dataset
        The cycler log (``voltage`` V, ``current`` mA on the record dim ``time``, s on the log's
        clock).
    result : xarray.Dataset or xarray.DataArray
        With ``cycler_time``, ``cell_voltage``, ``cell_current``, ``state`` (and ``row_*``)
        coordinates from :func:`~ionscope.timeline.attach_cycler`.
    width : float
        Figure width (inches).
    events : sequence of (str, float)
        Further moments to mark (label, s on the log's clock; e.g. another instrument's
        acquisitions) as labelled dashed lines; those outside the log's span (or NaN) are only
        counted in the title.
    """
    t_log = np.asarray(log["time"].values, dtype=float)
    span = float(np.nanmax(t_log) - np.nanmin(t_log)) if t_log.size else 0.0
    scale, unit = (3600.0, "h") if span > 3 * 3600 else (60.0, "min") if span > 180 else (1.0, "s")
    t_frame = np.atleast_1d(np.asarray(result["cycler_time"].values, dtype=float)) / scale
    state_coord = result[cell_state_name(result)]
    state = np.atleast_1d(np.asarray(state_coord.values)).astype(int)
    names = state_names(state_coord)
    known = state >= 0
    colors = [STATE_COLORS.get(names.get(int(s), ""), UNKNOWN_COLOR) for s in state]
    rows = None
    if "row_time" in result.coords and result["row_time"].dims == ("time", "y") and "timeline" in result.attrs:
        offset = json.loads(result.attrs["timeline"]).get("cycler_offset_s") or 0.0
        rows = (np.asarray(result["row_time"].values, dtype=float) + float(offset)) / scale
    with style():
        fig = new_figure(width, 5.0)
        ax_v, ax_i = fig.subplots(2, 1, sharex=True, height_ratios=[1.6, 1])
        ax_v.plot(t_log / scale, log["voltage"].values, color=LOG_COLOR, lw=1.0, zorder=2)
        v = np.atleast_1d(np.asarray(result["cell_voltage"].values, dtype=float))
        ax_v.scatter(t_frame[known], v[known], c=[c for c, k in zip(colors, known) if k], s=16, zorder=3,
                     edgecolors="white", linewidths=0.4)
        ax_v.set_ylabel("Cell voltage (V)")
        if "current" in log:
            current = np.asarray(log["current"].values, dtype=float)
            factor, cunit = si_scale(current * 1e-3, "A")
            factor *= 1e-3
            ax_i.plot(t_log / scale, current * factor, color=LOG_COLOR, lw=1.0, zorder=2, drawstyle="steps-post")
            i = np.atleast_1d(np.asarray(result["cell_current"].values, dtype=float))
            ax_i.scatter(t_frame[known], i[known] * factor, c=[c for c, k in zip(colors, known) if k], s=16,
                         zorder=3, edgecolors="white", linewidths=0.4)
            ax_i.axhline(0.0, color="#52606d", lw=0.6, zorder=1)
            ax_i.set_ylabel(f"Current ({cunit})")
        else:
            ax_i.text(0.5, 0.5, "the log has no current", transform=ax_i.transAxes, ha="center", va="center",
                      color="#52606d")
            ax_i.set_yticks([])
        for ax in (ax_v, ax_i):
            ax.grid(True, axis="y")
            for t in t_frame[~known]:
                ax.axvline(t, color=UNKNOWN_COLOR, lw=0.8, ls=":", zorder=1)
        if rows is not None:  # each frame's scan, first row to last
            y0 = ax_v.get_ylim()[0]
            ax_v.hlines(np.full(rows.shape[0], y0), np.nanmin(rows, axis=1), np.nanmax(rows, axis=1), colors=colors,
                        lw=3, zorder=4)
        t_lo, t_hi = (float(np.nanmin(t_log)), float(np.nanmax(t_log))) if t_log.size else (0.0, 0.0)
        beyond = 0
        for label, t in events:
            if not (np.isfinite(t) and t_lo <= t <= t_hi):
                beyond += 1
            else:
                for ax in (ax_v, ax_i):
                    ax.axvline(t / scale, color=EVENT_COLOR, lw=0.9, ls="--", zorder=1)
                ax_v.annotate(label, (t / scale, 1.0), xycoords=("data", "axes fraction"), rotation=90, fontsize=7.5,
                              ha="right", va="top", color=EVENT_COLOR, xytext=(-2, -2), textcoords="offset points")
        ax_i.set_xlabel(f"Time on the cycler's clock ({unit})")
        handles = [Line2D([], [], color=LOG_COLOR, lw=1.0, label="cycler log")]
        handles += _state_legend(names, [int(s) for s in np.unique(state[known])])
        if (~known).any():
            handles.append(Line2D([], [], color=UNKNOWN_COLOR, lw=0.8, ls=":", label="no cell state"))
        ax_v.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.0, 1.0), title="frames")
        outside = int((~known).sum())
        ax_v.set_title(f"{state.size} frames at their mid-exposure times" + (f", {outside} without a cell state"
                                                                           if outside else "")
                       + (f"; {beyond} marked moment(s) beyond the log" if beyond else ""),
                       loc="left", color="#52606d", fontsize=9.5)
    return fig
