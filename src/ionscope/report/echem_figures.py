"""Matplotlib figures of the cell's electrochemical record: voltage against capacity per cycle,
capacity and coulombic efficiency per cycle, and the differential capacity dQ/dV.

Same rules as :mod:`ionscope.report.figures`: every function takes results computed elsewhere
(:mod:`ionscope.echem`, the demo section :mod:`ionscope.pipeline.echem_demo`), draws on the Agg
canvas with the object-oriented API inside :func:`~ionscope.report.figures.style` and returns the
:class:`~matplotlib.figure.Figure`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from ionscope.report.figures import new_figure, style

#: One colour per log (Okabe-Ito) and a line style per half cycle.
LOG_COLORS = ("#0072b2", "#d55e00", "#009e73", "#cc79a7", "#e69f00")
TRUTH_COLOR = "#444444"


def voltage_capacity_figure(curves: Mapping[str, Sequence[tuple[int, str, np.ndarray, np.ndarray]]], *,
                            width: float = 7.5) -> Figure:
    """Cell voltage against the capacity of each half cycle, every cycle and log.

    Parameters
    ----------
    curves : mapping log label -> sequence of (cycle, kind, capacity_mAh, voltage_V)
        ``kind`` is "charge" or "discharge"; the capacity counts from 0 at the half cycle's start.
        Later cycles are drawn lighter.
    """
    with style():
        fig = new_figure(width, width * 0.62)
        ax = fig.subplots()
        handles = []
        for j, (label, rows) in enumerate(curves.items()):
            color = LOG_COLORS[j % len(LOG_COLORS)]
            n = max((c for c, *_ in rows), default=1)
            for cycle, kind, q, v in rows:
                alpha = 1.0 - 0.55 * (cycle - 1) / max(n - 1, 1)
                ax.plot(q, v, color=color, alpha=alpha, lw=1.3, ls="-" if kind == "charge" else "--")
            handles.append(Line2D([], [], color=color, lw=1.5, label=label))
        handles += [Line2D([], [], color="#777777", ls="-", label="charge"),
                    Line2D([], [], color="#777777", ls="--", label="discharge")]
        ax.set_xlabel("capacity (mAh)")
        ax.set_ylabel("cell voltage (V)")
        ax.legend(handles=handles, fontsize=8.5, loc="best")
    return fig


def cycles_figure(cycles: Mapping[str, Mapping[str, Sequence[float]]], *,
                  truth: Mapping[str, Mapping[str, Sequence[float]]] | None = None, width: float = 9.0) -> Figure:
    """Charge and discharge capacity (left) and coulombic efficiency (right) per cycle, per log.

    Parameters
    ----------
    cycles : mapping log label -> {"cycle", "charge_mAh", "discharge_mAh", "coulombic_efficiency"}
    truth : optional, the same keys: drawn as open diamonds.
    """
    with style():
        fig = new_figure(width, width * 0.42)
        ax_q, ax_ce = fig.subplots(1, 2)
        for j, (label, c) in enumerate(cycles.items()):
            color = LOG_COLORS[j % len(LOG_COLORS)]
            x = np.asarray(c["cycle"], dtype=float) + (j - (len(cycles) - 1) / 2) * 0.08
            ax_q.plot(x, c["charge_mAh"], "o-", color=color, ms=5, label=f"{label}: charge")
            ax_q.plot(x, c["discharge_mAh"], "s--", color=color, ms=5, mfc="white", label=f"{label}: discharge")
            ax_ce.plot(x, np.asarray(c["coulombic_efficiency"], dtype=float) * 100, "o-", color=color, ms=5, label=label)
            if truth is not None and label in truth:
                t = truth[label]
                for key in ("charge_mAh", "discharge_mAh"):
                    ax_q.plot(x, t[key], ls="none", marker="D", ms=8, mfc="none", mec=TRUTH_COLOR)
                ax_ce.plot(x, np.asarray(t["coulombic_efficiency"], dtype=float) * 100, ls="none", marker="D", ms=8,
                           mfc="none", mec=TRUTH_COLOR)
        ax_q.set_xlabel("cycle")
        ax_q.set_ylabel("capacity (mAh)")
        ax_ce.set_xlabel("cycle")
        ax_ce.set_ylabel("coulombic efficiency (%)")
        handles, labels = ax_q.get_legend_handles_labels()
        if truth is not None:
            handles.append(Line2D([], [], ls="none", marker="D", mfc="none", mec=TRUTH_COLOR, label="twin's truth"))
        ax_q.legend(handles=handles, fontsize=7.5, loc="best")
        ax_ce.legend(fontsize=8, loc="best")
        for ax in (ax_q, ax_ce):
            ax.xaxis.get_major_locator().set_params(integer=True)
    return fig


def dqdv_figure(curves: Mapping[str, tuple[np.ndarray, np.ndarray]], *, peaks_V: Sequence[float] = (),
                smoothing: str = "", width: float = 7.5) -> Figure:
    """Differential capacity dQ/dV against the cell voltage.

    Parameters
    ----------
    curves : mapping label -> (voltage_V, dqdv_mAh_per_V)
        Charge curves positive, discharge curves negative (the usual convention).
    peaks_V : sequence of float
        Known peak voltages (vertical dotted lines), e.g. the twin's plateaus.
    smoothing : str
        How the curves were smoothed (shown in the title).
    """
    with style():
        fig = new_figure(width, width * 0.6)
        ax = fig.subplots()
        for j, (label, (v, d)) in enumerate(curves.items()):
            ax.plot(v, d, color=LOG_COLORS[j % len(LOG_COLORS)], lw=1.3, label=label)
        for p in peaks_V:
            ax.axvline(p, color=TRUTH_COLOR, ls=":", lw=0.9)
        ax.axhline(0.0, color="#bbbbbb", lw=0.8)
        ax.set_xlabel("cell voltage (V)")
        ax.set_ylabel("dQ/dV (mAh/V)")
        if smoothing:
            ax.set_title(smoothing, fontsize=9)
        ax.legend(fontsize=8.5, loc="best")
    return fig


__all__ = ["voltage_capacity_figure", "cycles_figure", "dqdv_figure", "LOG_COLORS"]
