"""Matplotlib figures of the in-situ TOF-SIMS analyses: Li maps per state of charge on one colour
scale, the phase map, normalised Li per phase against the state (the study's headline figure) and
the 7Li / 6Li saturation check.

Same rules as :mod:`ionscope.report.figures`: every function takes results computed elsewhere
(:mod:`ionscope.sims`, the demo section :mod:`ionscope.pipeline.sims_demo`), draws on the Agg
canvas with the object-oriented API inside :func:`~ionscope.report.figures.style` and returns the
:class:`~matplotlib.figure.Figure`. The only computations are display ranges (percentiles).

Maps: row 0 at the top as displayed, ``x`` to the right, both in nm (the first state's grid).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from matplotlib.colors import BoundaryNorm, ListedColormap
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from ionscope.report.figures import map_extent, map_panel, new_figure, robust_range, style

#: Colour map of the Li maps (sequential) and of the 7Li / (12.2 x 6Li) ratio (diverging around 1).
LI_CMAP = "magma"
RATIO_CMAP = "RdBu_r"
#: Phase colours (Okabe-Ito); phases not listed take the remaining colours in order.
PHASE_COLORS = {"LiCoPO4": "#0072b2", "LATP": "#e69f00", "Pd": "#999999", "Au": "#f0e442"}
_MORE_COLORS = ("#009e73", "#cc79a7", "#d55e00", "#56b4e9", "#000000")
TRUTH_COLOR = "#009e73"


def phase_colors(names: Sequence[str]) -> list[str]:
    """A colour per phase name: :data:`PHASE_COLORS` for the known ones, then Okabe-Ito colours.

    >>> phase_colors(["LATP", "LiCoPO4", "Cu"])
    ['#e69f00', '#0072b2', '#009e73']
    """
    spare = iter(c for c in _MORE_COLORS if c not in PHASE_COLORS.values())
    return [PHASE_COLORS.get(str(n)) or next(spare, "#444444") for n in names]


def li_state_maps_figure(x_nm: np.ndarray, y_nm: np.ndarray, li: np.ndarray, states: Sequence[str], *,
                         label: str = "7Li⁺ / matrix ions", width: float = 11.5) -> Figure:
    """The Li map of every state of charge on one colour scale (one row of panels; NaN = not
    covered after the stage move).

    Parameters
    ----------
    x_nm, y_nm : ndarray
        Pixel coordinates (nm) of the first state's grid.
    li : ndarray (state, y, x)
        Normalised Li per pixel.
    states : sequence of str
        State names (panel titles).
    label : str
        Colour-bar label.
    """
    li = np.asarray(li, dtype=float)
    n = li.shape[0]
    extent = map_extent(x_nm, y_nm)
    vmin, vmax = robust_range(li, 1, 99)
    with style():
        fig = new_figure(width, width / max(n, 1) * 1.05 + 0.5)
        axes = fig.subplots(1, n, squeeze=False)[0]
        for k in range(n):
            im = map_panel(axes[k], fig, li[k], extent, LI_CMAP, vmin, vmax, None, str(states[k]))
            axes[k].set_xlabel("x (nm)", fontsize=8)
            if k == 0:
                axes[k].set_ylabel("y (nm)", fontsize=8)
            else:
                axes[k].set_yticklabels([])
        cb = fig.colorbar(im, ax=list(axes), shrink=0.8, pad=0.01, aspect=18)
        cb.set_label(label, fontsize=8.5)
        cb.ax.tick_params(labelsize=7.5)
    return fig


def phase_map_figure(x_nm: np.ndarray, y_nm: np.ndarray, phase: np.ndarray, names: Sequence[str], *,
                     truth: np.ndarray | None = None, truth_names: Sequence[str] | None = None,
                     title: str = "phases (majority per pixel)", width: float = 8.5) -> Figure:
    """The phase map (integer codes ``0`` to ``len(names) - 1``; negative = unassigned), with the
    twin's true phase map beside it when given.

    Parameters
    ----------
    phase : ndarray of int (y, x)
        Phase codes into ``names``.
    names : sequence of str
        Phase names.
    truth, truth_names : optional
        The true phase map and its names (coloured by name, so the same phase has the same colour).
    """
    extent = map_extent(x_nm, y_nm)
    panels = [(np.asarray(phase), list(names), title)]
    if truth is not None:
        panels.append((np.asarray(truth), list(truth_names or names), "twin's truth"))
    order = list(dict.fromkeys([str(n) for _, ns, _ in panels for n in ns]))
    colors = phase_colors(order)
    cmap = ListedColormap(["#ffffff", *colors])
    norm = BoundaryNorm(np.arange(-1.5, len(order) + 0.5), cmap.N)
    with style():
        fig = new_figure(width, width / len(panels) * 0.95 + 0.6)
        axes = fig.subplots(1, len(panels), squeeze=False)[0]
        for ax, (codes, ns, ttl) in zip(axes, panels):
            index = np.array([order.index(str(n)) for n in ns] + [-1])
            mapped = np.where((codes >= 0) & (codes < len(ns)), index[np.clip(codes, 0, len(ns))], -1)
            ax.imshow(mapped, extent=extent, origin="upper", cmap=cmap, norm=norm, interpolation="nearest",
                      aspect="equal")
            ax.set_title(ttl, fontsize=9.5)
            ax.set_xlabel("x (nm)", fontsize=8)
            ax.tick_params(labelsize=7.5)
        axes[0].set_ylabel("y (nm)", fontsize=8)
        handles = [Patch(color=c, label=n) for n, c in zip(order, colors)]
        fig.legend(handles=handles, loc="outside lower center", ncols=len(handles), fontsize=8.5)
    return fig


def phase_lithium_figure(states: Sequence[str], phases: Mapping[str, tuple[np.ndarray, np.ndarray]], *,
                         truth: Mapping[str, np.ndarray] | None = None,
                         ylabel: str = "Li relative to pristine", width: float = 7.0) -> Figure:
    """Normalised Li per phase against the state of charge, with counting-error bars (the study's
    headline figure), and the twin's truth as open markers when given.

    Parameters
    ----------
    states : sequence of str
        State names, in order (x axis).
    phases : mapping name -> (value, error)
        Per phase, arrays (state,) of Li relative to pristine and its standard error.
    truth : mapping name -> ndarray (state,), optional
        The true values (drawn as open diamonds).
    """
    x = np.arange(len(states))
    names = list(phases)
    colors = phase_colors(names)
    with style():
        fig = new_figure(width, width * 0.62)
        ax = fig.subplots()
        ax.axhline(1.0, color="#bbbbbb", lw=0.8, zorder=0)
        for j, (name, color) in enumerate(zip(names, colors)):
            value, err = (np.asarray(a, dtype=float) for a in phases[name])
            offset = (j - (len(names) - 1) / 2) * 0.06
            ax.errorbar(x + offset, value, yerr=err, color=color, marker="o", ms=5, lw=1.5, capsize=3,
                        label=name)
            if truth is not None and name in truth:
                ax.plot(x + offset, np.asarray(truth[name], dtype=float), ls="none", marker="D", ms=7,
                        mfc="none", mec=TRUTH_COLOR, mew=1.2)
        ax.set_xticks(x, [str(s) for s in states])
        ax.set_ylabel(ylabel)
        ax.set_xlabel("state of charge")
        handles, labels = ax.get_legend_handles_labels()
        if truth is not None:
            handles.append(Line2D([], [], ls="none", marker="D", mfc="none", mec=TRUTH_COLOR, label="twin's truth"))
        ax.legend(handles=handles, fontsize=8.5, loc="best")
    return fig


def isotope_check_figure(x_nm: np.ndarray, y_nm: np.ndarray, observed: np.ndarray, corrected: np.ndarray, *,
                         ratio: float = 12.2, width: float = 9.0) -> Figure:
    """The saturation check ``7Li / (ratio x 6Li)`` per pixel before and after the dead-time
    correction (1 = the natural isotope ratio; below 1 = 7Li saturated).

    Parameters
    ----------
    observed, corrected : ndarray (y, x)
        The ratio map from the observed and from the dead-time corrected 7Li counts.
    """
    extent = map_extent(x_nm, y_nm)
    with style():
        fig = new_figure(width, width * 0.45 + 0.4)
        axes = fig.subplots(1, 2)
        for ax, image, title in zip(axes, (observed, corrected), ("observed 7Li", "dead-time corrected 7Li")):
            map_panel(ax, fig, image, extent, RATIO_CMAP, 0.0, 2.0, f"7Li / ({ratio:g} × 6Li)", title)
            ax.set_xlabel("x (nm)", fontsize=8)
        axes[0].set_ylabel("y (nm)", fontsize=8)
    return fig


__all__ = [
    "phase_colors",
    "li_state_maps_figure",
    "phase_map_figure",
    "phase_lithium_figure",
    "isotope_check_figure",
]
