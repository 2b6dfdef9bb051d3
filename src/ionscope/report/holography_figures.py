"""Matplotlib figures of the holography analyses: hologram and its FFT, phase and potential
maps, interface profiles with their fits, Fourier versus phase-shifting reconstruction,
leakage-field removal.

Same rules as :mod:`ionscope.report.figures`: every function takes results computed elsewhere
(:mod:`ionscope.holography`, :mod:`ionscope.profiles`), draws on the Agg canvas with the
object-oriented API inside :func:`~ionscope.report.figures.style` and returns the
:class:`~matplotlib.figure.Figure`. The only computations are display ranges (percentiles) and
the FFT modulus shown in the Fourier panel.

Map conventions are those of the holography twin: ``y`` (nm) down from the vacuum at the top,
``x`` (nm) across the electrode | electrolyte interface.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import xarray as xr
from matplotlib.figure import Figure
from matplotlib.patches import Circle, Polygon

from ionscope.report.figures import _extent, _units, new_figure, robust_range, style

#: Colour maps: phase (cyclic-free sequential), potential (diverging around its median), counts.
PHASE_CMAP = "cividis"
POTENTIAL_CMAP = "RdYlBu_r"
COUNTS_CMAP = "gray"
#: Curve colours (Okabe-Ito): data, fit, truth, second method.
DATA_COLOR, FIT_COLOR, TRUTH_COLOR, ALT_COLOR = "#243b53", "#d55e00", "#009e73", "#0072b2"


def _map(ax, fig, da: xr.DataArray, cmap: str, label: str, *, vrange=None, title: str = "") -> None:
    extent = _extent(xr.Dataset({"v": da}))
    vmin, vmax = vrange if vrange is not None else robust_range(da.values)
    im = ax.imshow(np.asarray(da.values, dtype=float), extent=extent, origin="upper", cmap=cmap,
                   vmin=vmin, vmax=vmax, interpolation="nearest", aspect="equal")
    cb = fig.colorbar(im, ax=ax, shrink=0.82, pad=0.02, aspect=18)
    cb.set_label(label, fontsize=8.5)
    cb.ax.tick_params(labelsize=7.5)
    ax.set_xlabel(f"x ({_units(da['x'], 'nm')})")
    ax.set_ylabel(f"y ({_units(da['y'], 'nm')})")
    ax.tick_params(labelsize=8)
    if title:
        ax.set_title(title, fontsize=10)


def _band_polygon(start_px, end_px, width_px, pixel: tuple[float, float]) -> np.ndarray:
    """Corners (x, y) in nm of the profile band."""
    p0 = np.array([start_px[0] * pixel[0], start_px[1] * pixel[1]])
    p1 = np.array([end_px[0] * pixel[0], end_px[1] * pixel[1]])
    along = (p1 - p0) / np.hypot(*(p1 - p0))
    normal = np.array([-along[1], along[0]]) * 0.5 * width_px * min(pixel)
    corners = [p0 + normal, p1 + normal, p1 - normal, p0 - normal]
    return np.array([[c[1], c[0]] for c in corners])


def hologram_overview_figure(
    hologram: xr.DataArray,
    phase: xr.DataArray,
    potential: xr.DataArray,
    *,
    sideband_px: Sequence[float],
    aperture_px: float,
    band: tuple[Sequence[float], Sequence[float], int] | None = None,
    zoom_nm: float = 12.0,
    width: float = 11.0,
) -> Figure:
    """Hologram (with a zoom on the fringes), its FFT with the aperture, phase and potential.

    Parameters
    ----------
    hologram : DataArray (y, x)
        Counts.
    phase, potential : DataArray (y, x)
        Reconstructed phase (rad) and potential map (V).
    sideband_px : (y, x)
        Sideband position in pixels of the unshifted FFT (reconstruction statistics).
    aperture_px : float
        Aperture radius (FFT pixels).
    band : (start_px, end_px, width_px), optional
        Profile band drawn on the potential map.
    zoom_nm : float
        Side of the zoomed inset of the hologram (nm).
    """
    holo = np.asarray(hologram.values, dtype=float)
    ny, nx = holo.shape
    pixel = (float(abs(hologram["y"][1] - hologram["y"][0])), float(abs(hologram["x"][1] - hologram["x"][0])))
    spectrum = np.fft.fftshift(np.abs(np.fft.fft2(holo - holo.mean())))
    with style():
        fig = new_figure(width, width * 0.78)
        axes = fig.subplots(2, 2)
        ax = axes[0, 0]
        _map(ax, fig, hologram, COUNTS_CMAP, f"counts ({_units(hologram, 'counts')})", title="Off-axis hologram")
        n_zoom = max(8, int(round(zoom_nm / pixel[0])))
        cy, cx = ny // 2, nx // 4
        inset = ax.inset_axes([0.60, 0.58, 0.38, 0.38])
        inset.imshow(holo[cy : cy + n_zoom, cx : cx + n_zoom], cmap=COUNTS_CMAP, interpolation="nearest")
        inset.set_xticks([])
        inset.set_yticks([])
        inset.text(0.03, 0.04, f"{zoom_nm:g} nm", transform=inset.transAxes, fontsize=7.5, color="black",
                   bbox={"facecolor": "white", "edgecolor": "none", "pad": 1.0, "alpha": 0.85})
        for side in inset.spines.values():
            side.set_edgecolor("#e69f00")
        ax = axes[0, 1]
        fy = (np.arange(ny) - ny // 2)
        fx = (np.arange(nx) - nx // 2)
        lo, hi = np.percentile(np.log10(spectrum + 1e-12), [50, 99.98])
        ax.imshow(np.log10(spectrum + 1e-12), extent=[fx[0] - 0.5, fx[-1] + 0.5, fy[-1] + 0.5, fy[0] - 0.5],
                  cmap="magma", vmin=lo, vmax=hi, interpolation="nearest", aspect="equal")
        sy, sx = ((float(v) + n / 2) % n - n / 2 for v, n in zip(sideband_px, (ny, nx)))
        ax.add_patch(Circle((sx, sy), aperture_px, fill=False, color="#56b4e9", lw=1.4))
        ax.add_patch(Circle((-sx, -sy), aperture_px, fill=False, color="#56b4e9", lw=0.8, ls="--"))
        ax.annotate("sideband\n+ aperture", (sx, sy), xytext=(8, -18), textcoords="offset points",
                    color="#56b4e9", fontsize=8)
        ax.set_xlabel("k$_x$ (FFT px)")
        ax.set_ylabel("k$_y$ (FFT px)")
        ax.set_title("|FFT| (log scale, centred)", fontsize=10)
        ax.tick_params(labelsize=8)
        _map(axes[1, 0], fig, phase, PHASE_CMAP, "phase (rad)", title="Reconstructed phase (unwrapped)")
        vmin, vmax = robust_range(potential.values, 2, 98)
        _map(axes[1, 1], fig, potential, POTENTIAL_CMAP, "potential (V)", vrange=(vmin, vmax),
             title="Potential map  φ / (C$_E$ t)")
        if band is not None:
            poly = _band_polygon(band[0], band[1], band[2], pixel)
            axes[1, 1].add_patch(Polygon(poly, closed=True, fill=False, ec="black", lw=1.2, ls="--"))
            axes[1, 1].annotate("profile", poly[1], xytext=(-30, 6), textcoords="offset points", fontsize=8)
    return fig


def interface_profile_figure(
    curves: Sequence[dict[str, Any]],
    *,
    truth: xr.DataArray | None = None,
    window: tuple[float, float] | None = None,
    width: float = 9.5,
) -> Figure:
    """Interface profiles with their step fits (top) and the fitted field and charge (bottom).

    Parameters
    ----------
    curves : sequence of dict
        One per method, keys ``profile`` (band_profile Dataset: ``profile``, ``profile_sigma``),
        ``fit`` (fit_step Dataset: ``fit``, ``model_deblurred``, ``field``, optional
        ``charge_density``, scalars ``interface``, ``w90``), ``label``, optional ``color``.
    truth : DataArray (position), optional
        The true profile (same position axis).
    window : (float, float), optional
        Position range shown (nm).
    """
    from ionscope.constants import E_CHARGE

    with style():
        fig = new_figure(width, 6.6)
        ax, axf = fig.subplots(2, 1, sharex=True, height_ratios=[1.7, 1.0])
        axq = axf.twinx()
        for k, c in enumerate(curves):
            prof, fit = c["profile"], c["fit"]
            color = c.get("color", (DATA_COLOR, ALT_COLOR)[k % 2])
            s = np.asarray(prof["position"].values, dtype=float)
            y = np.asarray(prof["profile"].values, dtype=float)
            err = np.asarray(prof["profile_sigma"].values, dtype=float) if "profile_sigma" in prof else None
            ax.plot(s, y, ".", ms=3, color=color, alpha=0.75, label=f"{c['label']}: band mean")
            if err is not None:
                ax.fill_between(s, y - err, y + err, color=color, alpha=0.15, lw=0)
            ax.plot(s, fit["fit"].values, color=FIT_COLOR if k == 0 else "#cc79a7", lw=1.6,
                    label=f"{c['label']}: {fit.attrs['model']} fit (resolution included)")
            ax.plot(s, fit["model_deblurred"].values, color=FIT_COLOR if k == 0 else "#cc79a7", lw=1.0, ls=":",
                    label=f"{c['label']}: fitted model without blur")
            x0, w90 = float(fit["interface"]), float(fit["w90"])
            lo_side = fit.attrs.get("side") == "start"
            span = (x0 - w90, x0) if lo_side else (x0, x0 + w90)
            ax.axvspan(*span, color=color, alpha=0.07, lw=0)
            ax.axvline(x0, color=color, lw=0.8, ls="-.")
            axf.plot(s, np.asarray(fit["field"].values) * 1e-9, color=color, lw=1.3,
                     label=f"{c['label']}: E = -dV/dx")
            if "charge_density" in fit:
                axq.plot(s, np.asarray(fit["charge_density"].values) / E_CHARGE * 1e-27, color=color, lw=1.0,
                         ls="--", label=f"{c['label']}: ρ / e")
        if truth is not None:
            ax.plot(np.asarray(truth["position"].values, dtype=float), truth.values, color=TRUTH_COLOR,
                    lw=1.2, ls="--", label="ground truth")
        unit = _units(curves[0]["profile"]["profile"], "V") if curves else "V"
        ax.set_ylabel(f"potential ({unit})")
        ax.grid(True)
        ax.legend(fontsize=7.8, loc="best", frameon=True, framealpha=0.9, edgecolor="none")
        axf.set_ylabel("field (V/nm)")
        axq.set_ylabel("charge density (e/nm³)", fontsize=9)
        axq.spines["right"].set_visible(True)
        axf.set_xlabel("position along the profile (nm)")
        axf.grid(True)
        axf.axhline(0, color="#9aa5b1", lw=0.6)
        h1, l1 = axf.get_legend_handles_labels()
        h2, l2 = axq.get_legend_handles_labels()
        axf.legend(h1 + h2, l1 + l2, fontsize=7.5, loc="upper right", frameon=True, framealpha=0.9,
                   edgecolor="none")
        if window is not None:
            ax.set_xlim(*window)
            inside = []
            for c in curves:
                s = np.asarray(c["profile"]["position"].values, dtype=float)
                keep = (s >= window[0]) & (s <= window[1])
                inside.append(np.asarray(c["profile"]["profile"].values, dtype=float)[keep])
            vals = np.concatenate(inside) if inside else np.array([0.0, 1.0])
            vals = vals[np.isfinite(vals)]
            if vals.size:
                pad = 0.06 * (vals.max() - vals.min() or 1.0)
                ax.set_ylim(vals.min() - pad, vals.max() + pad)
    return fig


def method_comparison_figure(
    maps: Sequence[tuple[xr.DataArray, str]],
    *,
    width: float = 11.0,
) -> Figure:
    """Phase maps of two reconstructions side by side on one colour scale (rad)."""
    with style():
        fig = new_figure(width, width * 0.42)
        axes = np.atleast_1d(fig.subplots(1, len(maps)))
        lo = min(robust_range(m.values)[0] for m, _ in maps)
        hi = max(robust_range(m.values)[1] for m, _ in maps)
        for ax, (m, title) in zip(axes, maps):
            _map(ax, fig, m, PHASE_CMAP, "phase (rad)", vrange=(lo, hi), title=title)
    return fig


def leakage_figure(
    phase: xr.DataArray,
    fit: xr.Dataset,
    *,
    width: float = 11.0,
) -> Figure:
    """Leakage-field removal (:func:`ionscope.holography.fit_stray_field`): the phase with the
    fitted vacuum outlined, the harmonic model, the corrected phase and the model's standard
    error (log scale), which grows with the distance from the fitted vacuum."""
    from matplotlib.colors import LogNorm

    with style():
        fig = new_figure(width * 0.8, width * 0.72)
        axes = fig.subplots(2, 2).ravel()
        lo, hi = robust_range(phase.values)
        _map(axes[0], fig, phase, PHASE_CMAP, "phase (rad)", vrange=(lo, hi), title="biased phase, fitted vacuum")
        vac = np.asarray(fit["vacuum"].values, dtype=float)
        axes[0].contour(fit["x"].values, fit["y"].values, vac, levels=[0.5], colors="white", linewidths=0.9)
        _map(axes[1], fig, fit["stray_phase"], PHASE_CMAP, "phase (rad)", title="harmonic stray-field model")
        _map(axes[2], fig, fit["phase_corrected"], PHASE_CMAP, "phase (rad)", title="phase minus the model")
        err = np.asarray(fit["stray_phase_error"].values, dtype=float)
        vmin = max(float(np.nanpercentile(err, 1)), 1e-4)
        vmax = max(float(np.nanpercentile(err, 99.5)), 10 * vmin)
        im = axes[3].imshow(np.clip(err, vmin, None), extent=_extent(xr.Dataset({"v": fit["stray_phase_error"]})),
                            origin="upper", cmap="magma", norm=LogNorm(vmin, vmax), aspect="equal")
        axes[3].contour(fit["x"].values, fit["y"].values, vac, levels=[0.5], colors="white", linewidths=0.9)
        cb = fig.colorbar(im, ax=axes[3], shrink=0.82, pad=0.02, aspect=18)
        cb.set_label("standard error (rad)", fontsize=8.5)
        cb.ax.tick_params(labelsize=7.5)
        axes[3].set_title("the model's standard error", fontsize=10)
        axes[3].set_xlabel(f"x ({_units(fit['x'], 'nm')})")
        axes[3].set_ylabel(f"y ({_units(fit['y'], 'nm')})")
        axes[3].tick_params(labelsize=8)
    return fig


__all__ = [
    "hologram_overview_figure",
    "interface_profile_figure",
    "method_comparison_figure",
    "leakage_figure",
]
