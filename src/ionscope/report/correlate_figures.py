"""Matplotlib figure of the KPFM / TOF-SIMS correlation: every particle's potential change against
its relative Li change, with the Pearson coefficient and its interval.

Same rules as :mod:`ionscope.report.figures`: results computed elsewhere
(:mod:`ionscope.correlate`), the Agg canvas inside :func:`~ionscope.report.figures.style`, the
:class:`~matplotlib.figure.Figure` returned.
"""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure

from ionscope.report.figures import new_figure, style

POINT_COLOR = "#0072b2"


def correlation_figure(dv_mV: np.ndarray, dli_rel: np.ndarray, *, r: float | None = None,
                       ci: tuple[float | None, float | None] | None = None, labels: np.ndarray | None = None,
                       title: str = "", width: float = 6.0) -> Figure:
    """Per-particle potential change (mV, x) against relative Li change (y), with a least-squares
    line and the Pearson coefficient (and its interval) in the corner; particle labels beside the
    points when given."""
    x = np.asarray(dv_mV, dtype=float)
    y = np.asarray(dli_rel, dtype=float)
    ok = np.isfinite(x) & np.isfinite(y)
    with style():
        fig = new_figure(width, width * 0.78)
        ax = fig.subplots()
        ax.axhline(0.0, color="#bbbbbb", lw=0.8)
        ax.axvline(0.0, color="#bbbbbb", lw=0.8)
        ax.plot(x[ok], 100 * y[ok], "o", color=POINT_COLOR, ms=6)
        if labels is not None:
            for xi, yi, lab in zip(x[ok], y[ok], np.asarray(labels)[ok]):
                ax.annotate(str(lab), (xi, 100 * yi), fontsize=7, xytext=(3, 3), textcoords="offset points")
        if ok.sum() >= 2 and np.ptp(x[ok]) > 0:
            slope, icpt = np.polyfit(x[ok], 100 * y[ok], 1)
            xs = np.linspace(x[ok].min(), x[ok].max(), 2)
            ax.plot(xs, slope * xs + icpt, color="#d55e00", lw=1.2)
        if r is not None:
            text = f"r = {r:.2f}"
            if ci is not None and ci[0] is not None and ci[1] is not None:
                text += f"  (95 % CI {ci[0]:.2f} .. {ci[1]:.2f})"
            ax.text(0.02, 0.04, text + f", n = {int(ok.sum())}", transform=ax.transAxes, fontsize=9)
        ax.set_xlabel("potential change dV (mV)")
        ax.set_ylabel("Li change (%)")
        if title:
            ax.set_title(title, fontsize=9.5)
    return fig


__all__ = ["correlation_figure"]
