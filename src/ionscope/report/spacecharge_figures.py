"""Figures of the space-charge demo section: biased cells and the profile fits.

Plain functions from result arrays to a :class:`matplotlib.figure.Figure` (no I/O); the demo
section (:mod:`ionscope.pipeline.spacecharge_demo`) saves them through its context.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import xarray as xr
from matplotlib.figure import Figure

from ionscope.report.figures import new_figure, style

#: Colour per vacancy fraction (colour-blind safe, ordered light to dark).
THETA_COLORS = ("#e66100", "#5d3a9b", "#1a85ff", "#2a9d8f")


def bias_asymmetry_figure(cells: Mapping[float, xr.Dataset], *, window_positive_nm: float = 12.0,
                          window_negative_nm: float = 45.0, width: float = 9.5) -> Figure:
    """Potential and Li occupancy near the positive and the negative electrode of biased cells.

    Parameters
    ----------
    cells : mapping theta -> Dataset
        Results of :func:`ionscope.spacecharge.bias.bias_profile` (same bias and thickness).
    window_positive_nm, window_negative_nm : float
        Distances from each electrode to show (nm).
    """
    with style():
        fig = new_figure(width, 5.6)
        axes = fig.subplots(2, 2)  # own potential scale per electrode: the drops differ a lot
        for k, (theta, ds) in enumerate(cells.items()):
            color = THETA_COLORS[k % len(THETA_COLORS)]
            x = np.asarray(ds["position"].values)
            length = float(x[-1] + x[0])  # symmetric Stern layers
            psi = np.asarray(ds["psi"].values)
            occ = np.asarray(ds["c_li"].values) * theta / float(ds.attrs["c0_m3"])
            bias = float(ds.attrs["bias_V"])
            pos_left = bias >= 0
            for col, (positive, window) in enumerate(((True, window_positive_nm),
                                                      (False, window_negative_nm))):
                at_left = positive == pos_left
                dist = x if at_left else length - x
                keep = dist <= window
                label = f"θ = {theta:g} (1 − θ = {1 - theta:.3g})"
                axes[0, col].plot(dist[keep], psi[keep], color=color, lw=1.6, label=label)
                axes[1, col].plot(dist[keep], occ[keep], color=color, lw=1.6)
                side = "left" if at_left else "right"
                w90 = float(ds["w90"].sel(side=side))
                if np.isfinite(w90) and w90 <= window:
                    axes[0, col].axvline(w90, color=color, lw=0.8, ls=":")
        axes[0, 0].set_title("positive electrode: Li⁺ depleted")
        axes[0, 1].set_title("negative electrode: Li⁺ fills the vacancies")
        axes[0, 0].set_ylabel("ψ = φ − φ_bulk (V)")
        axes[1, 0].set_ylabel("site occupancy c/c_max")
        for ax in axes[1]:
            ax.set_xlabel("distance from the electrode (nm)")
        for ax in axes.flat:
            ax.axhline(0, color="#8a8f98", lw=0.6)
            ax.set_xlim(left=0)
        for ax in axes[1]:
            ax.set_ylim(-0.03, 1.03)
        axes[0, 1].legend(loc="lower right")
    return fig


def profile_fit_figure(position: np.ndarray, potential: np.ndarray, potential_fit: np.ndarray,
                       li: np.ndarray | None, li_fit: np.ndarray | None, *,
                       truth: Sequence[np.ndarray | None] | None = None, x0_nm: float | None = None,
                       potential_sigma: np.ndarray | None = None,
                       window: tuple[float, float] | None = None,
                       labels: Mapping[str, str] | None = None, width: float = 9.5) -> Figure:
    """Measured profiles with the fit (as the instrument sees it) and the residuals.

    Parameters
    ----------
    position, potential, potential_fit : ndarray
        Positions (nm), the potential profile and the fitted model there (V; NaN where the
        fit has no point).
    li, li_fit : ndarray or None
        The Li profile and its fit (None for a potential-only fit: two panels instead of three).
    truth : (ndarray or None, ndarray or None), optional
        The true potential and Li profiles (e.g. of a twin) for reference.
    x0_nm : float, optional
        Fitted interface position, drawn as a dotted line.
    potential_sigma : ndarray, optional
        Standard errors of the potential, shaded around the points.
    window : (float, float), optional
        Range of positions to show (nm); default all.
    labels : mapping, optional
        Legend texts for ``"data"``, ``"fit"`` and ``"truth"``.
    """
    text = {"data": "potential profile", "fit": "joint fit (PSF-blurred)", "truth": "true layer (no PSF)"}
    text.update(labels or {})
    with style():
        rows = 2 if li is None else 3
        fig = new_figure(width, 2.1 * rows + 0.6)
        axes = fig.subplots(rows, 1, sharex=True,
                            gridspec_kw={"height_ratios": [3, 3, 1.4][:rows - 1] + [1.4]})
        ax = axes[0]
        if potential_sigma is not None:
            ax.fill_between(position, potential - potential_sigma, potential + potential_sigma,
                            color="#8a8f98", alpha=0.3, lw=0)
        ax.plot(position, potential, ".", ms=2.5, color="#8a8f98", label=text["data"])
        ax.plot(position, potential_fit, color="#e66100", lw=1.6, label=text["fit"])
        if truth is not None and truth[0] is not None:
            ax.plot(position, truth[0], color="#1a1a1a", lw=0.9, ls="--", label=text["truth"])
        ax.set_ylabel("potential (V)")
        ax.legend(loc="best")
        if li is not None:
            ax = axes[1]
            ax.plot(position, li, ".", ms=2.5, color="#8a8f98", label="Li profile")
            ax.plot(position, li_fit, color="#5d3a9b", lw=1.6, label="joint fit")
            if truth is not None and len(truth) > 1 and truth[1] is not None:
                ax.plot(position, truth[1], color="#1a1a1a", lw=0.9, ls="--", label="true (no PSF)")
            ax.set_ylabel("Li signal (rel.)")
            ax.legend(loc="best")
        ax = axes[-1]
        ax.plot(position, potential - potential_fit, color="#e66100", lw=0.8, label="potential")
        if li is not None:
            ax.plot(position, li - li_fit, color="#5d3a9b", lw=0.8, label="Li")
        ax.axhline(0, color="#8a8f98", lw=0.6)
        ax.set_ylabel("residual")
        ax.set_xlabel("position (nm)")
        ax.legend(loc="upper right", ncols=2)
        if x0_nm is not None:
            for a in axes:
                a.axvline(x0_nm, color="#1a85ff", lw=0.8, ls=":")
        if window is not None:
            axes[0].set_xlim(*window)
            inside = (position >= window[0]) & (position <= window[1])
            for a, values in ((axes[0], [potential, potential_fit]),
                              (axes[-1], [potential - potential_fit])):
                vals = np.concatenate([np.asarray(v)[inside] for v in values])
                vals = vals[np.isfinite(vals)]
                if vals.size:
                    pad = 0.06 * max(float(np.ptp(vals)), 1e-12)
                    a.set_ylim(float(vals.min()) - pad, float(vals.max()) + pad)
    return fig
