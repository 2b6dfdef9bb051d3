"""Matplotlib figures of the cross-sectional KPFM analyses: potential and difference maps, the
active particles outlined, per-particle ``dV(t)`` against the cell voltage, the electrolyte's
potential rise and the profile across the collector | electrolyte interface.

Same rules as :mod:`ionscope.report.figures`: every function takes results computed elsewhere
(:mod:`ionscope.kpfm`, the demo section :mod:`ionscope.pipeline.kpfm_demo`), draws on the Agg
canvas with the object-oriented API inside :func:`~ionscope.report.figures.style` and returns the
:class:`~matplotlib.figure.Figure`. The only computations are display ranges (percentiles).

Map conventions are those of the KPFM frames: row 0 at the top as displayed, ``x`` to the right,
both in nm; the current collector lies along the bottom edge of the composite-cathode twin.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from ionscope.report.figures import map_extent, map_panel, new_figure, robust_range, style

#: Colour maps: the potential (sequential), a change of potential (diverging around 0), heights.
POTENTIAL_CMAP = "cividis"
CHANGE_CMAP = "RdBu_r"
HEIGHT_CMAP = "gray"
#: Curve colours (Okabe-Ito): measured (deconvolved), before deconvolution, truth, active, isolated.
DATA_COLOR, RAW_COLOR, TRUTH_COLOR = "#243b53", "#8a8f98", "#009e73"
ACTIVE_COLOR, ISOLATED_COLOR, CELL_COLOR = "#d55e00", "#0072b2", "#cc79a7"


def potential_maps_figure(x_nm: np.ndarray, y_nm: np.ndarray, maps: Sequence[np.ndarray],
                          changes: Sequence[np.ndarray], titles: Sequence[str], *,
                          truth_change: np.ndarray | None = None, truth_title: str = "",
                          width: float = 11.5) -> Figure:
    """Potential maps at key states (top row) and the changes ``V(t) - V(t0)`` of the later ones
    (bottom row), with a true change map at the end of the bottom row.

    Parameters
    ----------
    x_nm, y_nm : ndarray
        Pixel coordinates (nm).
    maps : sequence of ndarray (y, x)
        The potential (V) at each key state; the first is the reference ``t0``.
    changes : sequence of ndarray (y, x)
        Change from the first frame (V) of the states after the first (one fewer than ``maps``).
    titles : sequence of str
        Titles of the states (one per map).
    truth_change : ndarray (y, x), optional
        A true change map (V), the last panel of the bottom row.
    """
    extent = map_extent(x_nm, y_nm)
    cols = len(maps)
    vmin, vmax = robust_range(np.concatenate([np.ravel(m) for m in maps]), 0.5, 99.5)
    allc = [np.ravel(c) for c in changes] + ([np.ravel(truth_change)] if truth_change is not None else [])
    lim = max(abs(v) for v in robust_range(np.concatenate(allc), 0.5, 99.5)) if allc else 1e-3
    lim = lim if lim > 0 else 1e-3
    with style():
        fig = new_figure(width, width / cols * 2 + 0.4)
        axes = fig.subplots(2, cols, squeeze=False)
        for j in range(cols):
            map_panel(axes[0, j], fig, np.asarray(maps[j]) * 1e3, extent, POTENTIAL_CMAP, vmin * 1e3, vmax * 1e3,
                   "V (mV)" if j == cols - 1 else None, titles[j])
        bottom = [(c, f"V − V(t₀), {t}") for c, t in zip(changes, titles[1:])]
        if truth_change is not None:
            bottom.append((truth_change, truth_title))
        for j in range(cols):
            ax = axes[1, j]
            if j >= len(bottom):
                ax.set_axis_off()
                continue
            image, title = bottom[j]
            map_panel(ax, fig, np.asarray(image) * 1e3, extent, CHANGE_CMAP, -lim * 1e3, lim * 1e3,
                   "ΔV (mV)" if j == len(bottom) - 1 else None, title)
            ax.set_xlabel("x (nm)", fontsize=8.5)
        for ax in axes[:, 0]:
            ax.set_ylabel("y (nm)", fontsize=8.5)
    return fig


def active_particles_figure(x_nm: np.ndarray, y_nm: np.ndarray, background: np.ndarray, labels: np.ndarray,
                            is_active: Sequence[bool], *, active_pixels: np.ndarray | None = None,
                            true_active: np.ndarray | None = None, background_label: str = "height (nm)",
                            width: float = 6.8) -> Figure:
    """A map with the segmented particles outlined: active ones in orange, isolated ones in blue,
    the pixels counted as active shaded, and the twin's truly active particles dashed.

    Parameters
    ----------
    background : ndarray (y, x)
        The map drawn in grey (e.g. the levelled topography).
    labels : ndarray (y, x) of int
        Particle labels 1..p (0 = matrix).
    is_active : sequence of bool
        Per label 1..p.
    active_pixels : ndarray of bool (y, x), optional
        The active mask (shaded).
    true_active : ndarray of bool (y, x), optional
        The truth's active pixels (dashed outline).
    """
    extent = map_extent(x_nm, y_nm)
    x = np.asarray(x_nm, dtype=float)
    y = np.asarray(y_nm, dtype=float)
    flags = np.concatenate([[False], np.asarray(is_active, dtype=bool)])
    lab = np.asarray(labels)
    act = flags[lab] & (lab > 0)
    iso = ~flags[lab] & (lab > 0)
    vmin, vmax = robust_range(background, 1, 99)
    with style():
        fig = new_figure(width, width * 0.82)
        ax = fig.subplots()
        map_panel(ax, fig, background, extent, HEIGHT_CMAP, vmin, vmax, background_label)
        if active_pixels is not None and np.any(active_pixels):
            shade = np.ma.masked_where(~np.asarray(active_pixels, bool), np.ones(lab.shape))
            ax.imshow(shade, extent=extent, origin="upper", cmap="Oranges", vmin=0, vmax=2.5, alpha=0.45,
                      interpolation="nearest", aspect="equal")
        for mask, color in ((act, ACTIVE_COLOR), (iso, ISOLATED_COLOR)):
            if mask.any():
                ax.contour(x, y, mask.astype(float), levels=[0.5], colors=[color], linewidths=1.3)
        if true_active is not None and np.any(true_active):
            ax.contour(x, y, np.asarray(true_active, float), levels=[0.5], colors=["#111111"], linewidths=0.8,
                       linestyles="--")
        ax.set_ylim(extent[2], extent[3])
        ax.set_xlabel("x (nm)")
        ax.set_ylabel("y (nm)")
        handles = [Line2D([], [], color=ACTIVE_COLOR, lw=1.3, label="active (found)"),
                   Line2D([], [], color=ISOLATED_COLOR, lw=1.3, label="isolated (found)")]
        if true_active is not None:
            handles.append(Line2D([], [], color="#111111", lw=0.8, ls="--", label="active (twin's truth)"))
        ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(0.0, -0.1), ncols=3, fontsize=8.5)
    return fig


def particle_dv_figure(time_min: np.ndarray, dv: np.ndarray, is_active: Sequence[bool],
                       true_active: Sequence[bool | None], cell_time_min: np.ndarray, cell_voltage: np.ndarray, *,
                       dv_error: np.ndarray | None = None, threshold_V: float | None = None,
                       width: float = 9.0) -> Figure:
    """Per-particle mean ``dV(t)`` with the cell voltage.

    Lines: found active (orange) or isolated (blue); markers: the twin's truth (filled = truly
    active, open = truly isolated, x = no twin particle under it); the cell voltage on the right
    axis.

    Parameters
    ----------
    time_min : ndarray (n,)
        Frame times (min).
    dv : ndarray (p, n)
        Per-particle mean change (V).
    is_active, true_active : sequences (p,)
        Found and true flags (None: no twin particle matches).
    cell_time_min, cell_voltage : ndarray
        The cycler log (min, V).
    dv_error : ndarray (p, n), optional
        Standard errors (V), drawn as error bars.
    threshold_V : float, optional
        The activity threshold (k x noise, V), drawn as a band.
    """
    t = np.asarray(time_min, dtype=float)
    with style():
        fig = new_figure(width, 4.2)
        ax = fig.subplots()
        if threshold_V is not None:
            ax.axhspan(-threshold_V * 1e3, threshold_V * 1e3, color="#d9dde3", alpha=0.5, lw=0, zorder=0)
        for i in range(np.shape(dv)[0]):
            color = ACTIVE_COLOR if is_active[i] else ISOLATED_COLOR
            y = np.asarray(dv[i], dtype=float) * 1e3
            ax.plot(t, y, color=color, lw=1.0, alpha=0.85, zorder=2)
            if dv_error is not None:
                ax.errorbar(t, y, yerr=np.asarray(dv_error[i]) * 1e3, fmt="none", ecolor=color, elinewidth=0.6,
                            alpha=0.6, zorder=2)
            truth = true_active[i]
            if truth is None:
                ax.plot(t, y, "x", color=color, ms=4, zorder=3)
            else:
                ax.plot(t, y, "o", ms=4.5, zorder=3, markeredgecolor=color, markeredgewidth=0.9,
                        markerfacecolor=color if truth else "white")
        ax.axhline(0.0, color="#52606d", lw=0.6)
        ax.set_xlabel("time (min)")
        ax.set_ylabel("particle mean dV (mV)")
        right = ax.twinx()
        right.plot(cell_time_min, cell_voltage, color=CELL_COLOR, lw=1.2, zorder=1)
        right.set_ylabel("cell voltage (V)", color=CELL_COLOR)
        right.tick_params(axis="y", colors=CELL_COLOR)
        right.spines["right"].set_visible(True)
        handles = [Line2D([], [], color=ACTIVE_COLOR, lw=1.0, label="found active"),
                   Line2D([], [], color=ISOLATED_COLOR, lw=1.0, label="found isolated"),
                   Line2D([], [], marker="o", ls="", color="#52606d", label="twin: active"),
                   Line2D([], [], marker="o", ls="", color="#52606d", markerfacecolor="white", label="twin: isolated"),
                   Line2D([], [], color=CELL_COLOR, lw=1.2, label="cell voltage")]
        if threshold_V is not None:
            handles.append(Line2D([], [], color="#d9dde3", lw=6, label="±threshold"))
        ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(0.0, -0.16), ncols=6, fontsize=8.5)
    return fig


def electrolyte_figure(position_nm: np.ndarray, profiles: Mapping[str, tuple[np.ndarray, np.ndarray]],
                       time_min: np.ndarray, series: Mapping[str, tuple[np.ndarray, str, str]], *,
                       interface_nm: float | None = None, width: float = 11.0) -> Figure:
    """Left: band profiles across the collector | electrolyte interface at key states, with their
    step-plus-linear fits. Right: mean potential changes of electrolyte regions against time.

    Parameters
    ----------
    position_nm : ndarray
        Distance along the profile (nm), from inside the collector.
    profiles : mapping title -> (profile, fit)
        Band means and fitted curves (V) at the key states.
    time_min : ndarray
        Frame times (min).
    series : mapping label -> (values in V, colour, line style)
        Region means against time.
    interface_nm : float, optional
        The fitted interface position, a dotted line.
    """
    with style():
        fig = new_figure(width, 4.0)
        left, right = fig.subplots(1, 2, width_ratios=[1.0, 1.15])
        colors = ["#243b53", "#0072b2", "#d55e00", "#009e73", "#cc79a7", "#e69f00"]
        for k, (title, (prof, fit)) in enumerate(profiles.items()):
            c = colors[k % len(colors)]
            left.plot(position_nm, np.asarray(prof) * 1e3, ".", ms=3, color=c, label=title)
            left.plot(position_nm, np.asarray(fit) * 1e3, "-", lw=1.1, color=c)
        if interface_nm is not None and np.isfinite(interface_nm):
            left.axvline(interface_nm, color="#52606d", lw=0.8, ls=":")
        left.set_xlabel("distance from inside the collector (nm)")
        left.set_ylabel("band mean V (mV)")
        left.legend(loc="best", fontsize=8.5)
        left.set_title("profile across collector | electrolyte (dots) and step + linear fit", fontsize=9.5)
        for label, (values, color, ls) in series.items():
            right.plot(time_min, np.asarray(values) * 1e3, ls, color=color, lw=1.3, marker="o", ms=3.5, label=label)
        right.axhline(0.0, color="#52606d", lw=0.6)
        right.set_xlabel("time (min)")
        right.set_ylabel("mean dV of the region (mV)")
        right.legend(loc="upper left", fontsize=8.5)
        right.set_title("electrolyte potential change", fontsize=9.5)
    return fig


__all__ = [
    "potential_maps_figure",
    "active_particles_figure",
    "particle_dv_figure",
    "electrolyte_figure",
]
