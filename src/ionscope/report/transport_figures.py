"""Figures for Li motion: flux arrows over Li maps, the front against the cycler curve, and the
in-plane fraction of the flux per cell state.

Plain functions that take arrays and return a matplotlib :class:`~matplotlib.figure.Figure` (no
numerics beyond what is drawn); the demo section :mod:`ionscope.pipeline.transport_demo` calls
them with the results of :func:`ionscope.transport.li_motion`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from matplotlib.figure import Figure

from ionscope.report.figures import (
    STATE_COLORS, _shade_phases, _state_legend, map_extent, map_panel, new_figure, style,
)

__all__ = ["flux_arrows_figure", "front_timeline_figure", "in_plane_figure"]

#: Colours of the measurement and the truth.
MEASURED, TRUTH = "#0072b2", "#000000"


def _quiver(ax, x_nm, y_nm, fy, fx, step: int, scale: float, color: str) -> None:
    yy, xx = np.meshgrid(y_nm[::step], x_nm[::step], indexing="ij")
    # y grows downwards on the map (origin="upper"): the arrow's screen y is -flux_y
    ax.quiver(xx, yy, fx[::step, ::step], -fy[::step, ::step], color=color, angles="xy", scale_units="xy",
              scale=scale, width=0.006, headwidth=3.5, headlength=4.0, pivot="mid")


def flux_arrows_figure(
    rows: Sequence[tuple[str, np.ndarray, np.ndarray, np.ndarray]],
    x_nm: np.ndarray,
    y_nm: np.ndarray,
    titles: Sequence[str],
    title_states: Sequence[str],
    *,
    step: int = 3,
    width: float = 9.0,
) -> Figure:
    """Li maps with flux arrows at key moments: one row per source (measured, truth), one column
    per moment.

    Parameters
    ----------
    rows : sequence of (label, li, flux_y, flux_x)
        ``li`` (moments, y, x) Li fraction, ``flux_y`` / ``flux_x`` (moments, y, x) nm/s.
    x_nm, y_nm : array
        Pixel coordinates (nm).
    titles, title_states : sequence of str
        Column titles and their cell states (colours the title).
    step : int
        Draw every ``step``-th arrow along each axis.
    """
    n_rows, n_cols = len(rows), len(titles)
    extent = map_extent(x_nm, y_nm)
    aspect = (extent[2] - extent[3]) / (extent[1] - extent[0])
    x_nm, y_nm = np.asarray(x_nm, dtype=float), np.asarray(y_nm, dtype=float)
    arrow_px = step * float(x_nm[1] - x_nm[0]) if x_nm.size > 1 else 1.0
    with style():
        fig = new_figure(width, n_rows * (width / n_cols) * aspect + 0.9)
        axes = np.atleast_2d(fig.subplots(n_rows, n_cols, squeeze=False))
        for j in range(n_cols):
            # one arrow scale per moment, shared by the rows: the longest arrow spans `step` pixels
            peak = max(float(np.nanmax(np.hypot(r[2][j], r[3][j]))) for r in rows) or 1.0
            for i, (label, li, fy, fx) in enumerate(rows):
                ax = axes[i, j]
                map_panel(ax, fig, li[j], extent, "viridis", 0.0, 1.0, None,
                          titles[j] if i == 0 else "")
                _quiver(ax, x_nm, y_nm, fy[j], fx[j], step, peak / arrow_px, "white")
                if i == 0:
                    ax.title.set_color(STATE_COLORS.get(title_states[j], "black"))
                if j == 0:
                    ax.set_ylabel(f"{label}\ny (nm)", fontsize=8.5)
                if i == n_rows - 1:
                    ax.set_xlabel("x (nm)", fontsize=8.5)
    return fig


def front_timeline_figure(
    t_min: np.ndarray,
    state: np.ndarray,
    names: Mapping[int, str],
    voltage: np.ndarray,
    front: Mapping[str, tuple[np.ndarray, np.ndarray | None]],
    velocity: Mapping[str, np.ndarray],
    *,
    cycler: tuple[np.ndarray, np.ndarray] | None = None,
    width: float = 9.0,
) -> Figure:
    """Cell voltage (top), front depth (middle) and front velocity (bottom) against time.

    Parameters
    ----------
    t_min : array (time,)
        Frame times (min).
    state, names
        Cell state per frame and the names of its codes (shaded phases).
    voltage : array (time,)
        Cell voltage at the frames (V).
    front : mapping of label to (depth, spread)
        Mean front depth per frame (nm) and a band half-width (nm, e.g. the roughness) or None.
    velocity : mapping of label to array (time,)
        Mean normal front velocity (nm/s).
    cycler : (time_min, voltage), optional
        The cycler log's voltage curve.
    """
    colors = (MEASURED, TRUTH, "#d55e00")
    with style():
        fig = new_figure(width, 6.6)
        ax_v, ax_f, ax_s = fig.subplots(3, 1, sharex=True)
        for ax in (ax_v, ax_f, ax_s):
            _shade_phases(ax, t_min, state, names)
            ax.grid(alpha=0.25)
        if cycler is not None:
            ax_v.plot(cycler[0], cycler[1], color="#555555", lw=1.0, label="cycler log")
        ax_v.scatter(t_min, voltage, s=9, c=[STATE_COLORS.get(names.get(int(s), ""), "#999999") for s in state],
                     zorder=3, label="frames")
        ax_v.set_ylabel("cell voltage (V)")
        for (label, (depth, spread)), color in zip(front.items(), colors):
            ax_f.plot(t_min, depth, color=color, lw=1.6 if color == TRUTH else 1.3, label=label)
            if spread is not None:
                ax_f.fill_between(t_min, depth - spread, depth + spread, color=color, alpha=0.15, lw=0)
        ax_f.set_ylabel("front depth (nm)")
        ax_f.invert_yaxis()  # deeper is further from the electrolyte: down, as on the maps
        ax_f.legend(loc="lower right", fontsize=8, frameon=False)
        for (label, v), color in zip(velocity.items(), colors):
            ax_s.plot(t_min, 1e3 * np.asarray(v), color=color, lw=1.6 if color == TRUTH else 1.2, label=label)
        ax_s.axhline(0.0, color="#888888", lw=0.8)
        ax_s.set_ylabel("front velocity (pm/s)")
        ax_s.set_xlabel("time (min)")
        handles = _state_legend(names, list(np.unique(state)))
        ax_v.legend(handles=ax_v.get_legend_handles_labels()[0] + handles, loc="upper right", fontsize=8, ncol=5,
                    frameon=False)
        fig.align_ylabels()
    return fig


def in_plane_figure(
    states: Sequence[str],
    measured: Mapping[str, tuple[Sequence[float], Sequence[float]]],
    truth: Mapping[str, Sequence[float]],
    flux: Mapping[str, tuple[Sequence[float], Sequence[float]]],
    *,
    width: float = 9.0,
) -> Figure:
    """In-plane fraction of the flux (left) and mean ``|J|`` (right) per cell state, with error bars.

    Parameters
    ----------
    states : sequence of str
        Cell states (x axis).
    measured : mapping of label to (values, errors)
        In-plane fraction per state and its standard error, per analysis.
    truth : mapping of label to values
        The twin's values (markers).
    flux : mapping of label to (values, errors)
        Mean ``|J|`` per state (nm/s) and its standard error (measured and truth; truth errors may
        be zero).
    """
    x = np.arange(len(states))
    colors = (MEASURED, "#d55e00", "#009e73")
    with style():
        fig = new_figure(width, 3.4)
        left, right = fig.subplots(1, 2)
        n = max(len(measured), 1)
        bar = 0.7 / n
        for k, ((label, (values, errors)), color) in enumerate(zip(measured.items(), colors)):
            pos = x - 0.35 + bar * (k + 0.5)
            err = np.nan_to_num(np.asarray(errors, dtype=float), nan=0.0)
            left.bar(pos, values, bar, yerr=err, color=color, alpha=0.8, capsize=3, label=label)
        for label, values in truth.items():
            left.scatter(x, values, marker="D", color=TRUTH, zorder=4, label=label)
        left.set_xticks(x, states)
        left.set_ylabel("in-plane fraction of Σ|J|")
        left.set_ylim(0, max(0.5, 1.15 * max(max(v) for v in truth.values()) if truth else 0.5))
        left.legend(fontsize=7.5, frameon=False, loc="upper left")
        for k, ((label, (values, errors)), color) in enumerate(zip(flux.items(), (MEASURED, TRUTH))):
            pos = x - 0.2 + 0.4 * k
            err = np.nan_to_num(np.asarray(errors, dtype=float), nan=0.0)
            right.bar(pos, 1e3 * np.asarray(values), 0.38, yerr=1e3 * err, color=color, alpha=0.8, capsize=3,
                      label=label)
        right.set_xticks(x, states)
        right.set_ylabel("mean |J| (pm/s × Li fraction)")
        right.legend(fontsize=7.5, frameon=False)
        for ax in (left, right):
            ax.grid(axis="y", alpha=0.25)
    return fig
