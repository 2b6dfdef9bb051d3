"""Matplotlib figure of the KPFM / TOF-SIMS correlation: every particle's potential change against
its relative Li change, with the Pearson coefficient and its interval.

Same rules as :mod:`ionscope.report.figures`: results computed elsewhere
(:mod:`ionscope.correlate`), the Agg canvas inside :func:`~ionscope.report.figures.style`, the
:class:`~matplotlib.figure.Figure` returned.
"""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure

from ionscope.report.figures import map_extent, map_panel, new_figure, robust_range, style

POINT_COLOR = "#0072b2"
OUTLINE_COLOR = "#d55e00"
TRUTH_COLOR = "#ffffff"


def field_outline(matrix: np.ndarray, y_nm: np.ndarray, x_nm: np.ndarray) -> np.ndarray:
    """The outline (5 x 2 array of ``(y, x)`` nm, closed) of a field with pixel centres ``y_nm``,
    ``x_nm`` (its outer pixel edges) carried onto another grid by the 3 x 3 moving -> fixed
    ``matrix`` on ``(y, x, 1)`` (:attr:`ionscope.register.RigidRegistration.matrix`).

    Examples
    --------
    >>> field_outline(np.eye(3), np.array([0.0, 10.0]), np.array([0.0, 10.0, 20.0]))[:, 1].tolist()
    [-5.0, 25.0, 25.0, -5.0, -5.0]
    """
    y, x = np.asarray(y_nm, dtype=float), np.asarray(x_nm, dtype=float)
    hy = 0.5 * (y[1] - y[0]) if y.size > 1 else 0.5
    hx = 0.5 * (x[1] - x[0]) if x.size > 1 else 0.5
    ys, xs = (y[0] - hy, y[-1] + hy), (x[0] - hx, x[-1] + hx)
    corners = np.array([[ys[0], xs[0], 1], [ys[0], xs[1], 1], [ys[1], xs[1], 1], [ys[1], xs[0], 1],
                        [ys[0], xs[0], 1]], dtype=float)
    return (np.asarray(matrix, dtype=float) @ corners.T).T[:, :2]


def registration_figure(x_nm: np.ndarray, y_nm: np.ndarray, fixed: np.ndarray, outline: np.ndarray,
                        change_mV: np.ndarray, *, truth_outline: np.ndarray | None = None,
                        fixed_label: str = "phase code", change_title: str = "",
                        width: float = 9.5) -> Figure:
    """Left: the fixed (TOF-SIMS) map with the registered moving (KPFM) field's outline (solid)
    and, when given, the true outline (dashed); right: the moving map's change on the fixed grid
    (mV, blank where the moving field does not cover a pixel) with the same outline."""
    extent = map_extent(x_nm, y_nm)
    change = np.asarray(change_mV, dtype=float)
    lim = max(abs(v) for v in robust_range(change))
    with style():
        fig = new_figure(width, width * 0.47)
        ax_f, ax_c = fig.subplots(1, 2)
        lo, hi = robust_range(fixed)
        map_panel(ax_f, fig, fixed, extent, "viridis", lo, hi, fixed_label, "TOF-SIMS, first state, KPFM field on it")
        map_panel(ax_c, fig, change, extent, "RdBu_r", -lim, lim, "potential change (mV)", change_title)
        for ax in (ax_f, ax_c):
            ax.plot(outline[:, 1], outline[:, 0], color=OUTLINE_COLOR, lw=1.3)
            if truth_outline is not None:
                ax.plot(truth_outline[:, 1], truth_outline[:, 0], color=TRUTH_COLOR, lw=0.9, ls=(0, (3, 3)))
            ax.set_xlim(extent[0], extent[1])
            ax.set_ylim(extent[2], extent[3])
            ax.set_xlabel("x (nm)", fontsize=8.5)
        ax_f.set_ylabel("y (nm)", fontsize=8.5)
    return fig


def correlation_figure(dv_mV: np.ndarray, dli_rel: np.ndarray, *, r: float | None = None,
                       ci: tuple[float | None, float | None] | None = None, labels: np.ndarray | None = None,
                       title: str = "", width: float = 6.0, dv_err_mV: np.ndarray | None = None,
                       dli_err: np.ndarray | None = None, truth: tuple[np.ndarray, np.ndarray] | None = None,
                       ) -> Figure:
    """Per-particle potential change (mV, x) against relative Li change (y), with a least-squares
    line and the Pearson coefficient (and its interval) in the corner; particle labels beside the
    points when given; 1-sigma error bars when ``dv_err_mV`` / ``dli_err`` are given; the true
    values (``truth = (dv_mV, dli_rel)``) as open diamonds."""
    x = np.asarray(dv_mV, dtype=float)
    y = np.asarray(dli_rel, dtype=float)
    ok = np.isfinite(x) & np.isfinite(y)
    with style():
        fig = new_figure(width, width * 0.78)
        ax = fig.subplots()
        ax.axhline(0.0, color="#bbbbbb", lw=0.8)
        ax.axvline(0.0, color="#bbbbbb", lw=0.8)
        if dv_err_mV is not None or dli_err is not None:
            xe = None if dv_err_mV is None else np.nan_to_num(np.asarray(dv_err_mV, dtype=float)[ok])
            ye = None if dli_err is None else 100 * np.nan_to_num(np.asarray(dli_err, dtype=float)[ok])
            ax.errorbar(x[ok], 100 * y[ok], xerr=xe, yerr=ye, fmt="none", ecolor=POINT_COLOR, elinewidth=0.8,
                        alpha=0.6)
        ax.plot(x[ok], 100 * y[ok], "o", color=POINT_COLOR, ms=6, label="measured")
        if truth is not None:
            tx, ty = (np.asarray(v, dtype=float)[ok] for v in truth)
            ax.plot(tx, 100 * ty, "D", mfc="none", mec="#333333", ms=5, label="twin's truth")
            ax.legend(fontsize=8, loc="upper right")
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


__all__ = ["correlation_figure", "field_outline", "registration_figure"]
