"""Matplotlib figures of the EELS analyses: Li maps by method, chi^2, NMF phases, SR-EELS.

Same rules as :mod:`ionscope.report.figures` (whose helpers these reuse): each function takes
results that were computed elsewhere (the numbers come from :mod:`ionscope.eels`), draws them
on the Agg canvas with the object-oriented API inside :func:`~ionscope.report.figures.style`,
and returns the :class:`~matplotlib.figure.Figure`. Nothing here fits, subtracts or decomposes;
the only computations are display ranges (percentiles) and histograms.

Map conventions are those of the operando twin: ``y`` is depth in nm with the solid
electrolyte at the top (row 0), ``x`` in nm; Li fractions are dimensionless on 0-1 (viridis).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import xarray as xr
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from ionscope.report.figures import (
    LI_CMAP,
    STATE_COLORS,
    _extent,
    _time_minutes,
    _units,
    new_figure,
    robust_range,
    state_names,
    style,
)

#: Colours of NMF components / fit curves (colour-blind safe, Okabe-Ito).
COMPONENT_COLORS = ("#0072b2", "#d55e00", "#009e73", "#cc79a7", "#e69f00", "#56b4e9")
#: Colormap of count maps and chi^2 maps (distinct from the Li colormap).
COUNTS_CMAP = "magma"
#: Colour of ground-truth curves.
TRUTH_COLOR = "#d55e00"
#: Line colour of the interfacial-layer outline drawn on maps.
OUTLINE_COLOR = "white"


def _frame_titles(ds: xr.Dataset, frames: Mapping[str, int]) -> list[tuple[str, str]]:
    """(title, colour) per column: label, time (min), voltage; coloured by cycler state."""
    names = state_names(ds["state"]) if "state" in ds else {}
    t = _time_minutes(ds) if "time" in ds.coords else None
    out = []
    for label, idx in frames.items():
        head = [label]
        if t is not None:
            line = f"{t[idx]:.0f} min"
            if "voltage" in ds:
                line += f", {float(ds['voltage'].values[idx]):.2f} {_units(ds['voltage'], 'V')}"
            head.append(line)
        state = names.get(int(ds["state"].values[idx]), "") if "state" in ds else ""
        out.append(("\n".join(head), STATE_COLORS.get(state, "black")))
    return out


def _outline(ax, outline: np.ndarray | None, extent: Sequence[float], *, color: str = OUTLINE_COLOR) -> None:
    """Contour of a (y, x) boolean mask (e.g. the interfacial layer) on an image axis."""
    if outline is None or not np.any(outline) or np.all(outline):
        return
    ny, nx = outline.shape
    x0, x1, y1, y0 = extent  # origin="upper": extent = [left, right, bottom, top]
    xs = np.linspace(x0, x1, nx + 1)
    ys = np.linspace(y0, y1, ny + 1)
    xc, yc = (xs[1:] + xs[:-1]) / 2, (ys[1:] + ys[:-1]) / 2
    ax.contour(xc, yc, np.asarray(outline, dtype=float), levels=[0.5], colors=color,
               linewidths=0.8, linestyles="--")


def _fixed_ticks(ax, extent: Sequence[float], n: int = 4) -> None:
    """Fixed "nice" ticks on a map axis (saves re-locating the ticks of every shared panel)."""
    from matplotlib.ticker import FixedLocator, MaxNLocator

    for axis, (lo, hi) in ((ax.xaxis, sorted(extent[:2])), (ax.yaxis, sorted(extent[2:]))):
        ticks = MaxNLocator(n).tick_values(lo, hi)
        axis.set_major_locator(FixedLocator(ticks[(ticks >= lo - 1e-9) & (ticks <= hi + 1e-9)]))


def _map_axes(ax) -> None:
    ax.tick_params(length=2.5, labelsize=8.5)
    for side in ("top", "right"):
        ax.spines[side].set_visible(True)


def eels_method_maps_figure(
    ds: xr.Dataset,
    frames: Mapping[str, int],
    rows: Sequence[tuple[str, str]],
    *,
    counts_rows: Sequence[str] = (),
    outline: np.ndarray | None = None,
    panel_width: float = 1.75,
) -> Figure:
    """A grid of maps: one column per frame, one row per method (raw window, S_A/S_B, MLLS...).

    Parameters
    ----------
    ds : Dataset
        ``(time, y, x)`` variables named in ``rows`` (Li fractions, dimensionless, or counts),
        with ``x``/``y`` in nm and ``time``, ``voltage``, ``state`` for the column titles.
    frames : mapping of str to int
        Column label -> index along ``time``.
    rows : sequence of (variable, row label)
        Top to bottom. Variables listed in ``counts_rows`` get their own colour bar (magma,
        1st-99th percentile range, in the variable's units); the others share the Li-fraction
        colour bar (viridis, 0-1).
    outline : (y, x) bool array, optional
        Region drawn as a dashed white contour on every panel (e.g. the interfacial layer).
    """
    frames = dict(frames)
    rows = [(v, lab) for v, lab in rows if v in ds]
    extent = _extent(ds)
    wx, wy = abs(extent[1] - extent[0]), abs(extent[2] - extent[3])
    ncol, nrow = len(frames), len(rows)
    panel_h = panel_width * wy / wx
    xunit, yunit = _units(ds["x"], "nm"), _units(ds["y"], "nm")
    titles = _frame_titles(ds, frames)
    with style():
        fig = Figure(figsize=(panel_width * ncol + 2.4, panel_h * nrow + 1.1), layout="compressed")
        from matplotlib.backends.backend_agg import FigureCanvasAgg

        FigureCanvasAgg(fig)
        axes = np.atleast_2d(fig.subplots(nrow, ncol, sharex=True, sharey=True, squeeze=False))
        li_image, li_axes = None, []
        for i, (var, row_label) in enumerate(rows):
            is_counts = var in counts_rows
            vmin, vmax = robust_range(ds[var].isel(time=list(frames.values())).values) if is_counts else (0.0, 1.0)
            image = None
            for j, idx in enumerate(frames.values()):
                ax = axes[i, j]
                image = ax.imshow(np.asarray(ds[var].isel(time=idx).values), extent=extent,
                                  origin="upper", cmap=COUNTS_CMAP if is_counts else LI_CMAP,
                                  vmin=vmin, vmax=vmax, interpolation="nearest", aspect="equal")
                _outline(ax, outline, extent)
                _map_axes(ax)
                if i == nrow - 1:
                    ax.set_xlabel(f"x ({xunit})")
            axes[i, 0].set_ylabel(f"{row_label}\ny ({yunit})", fontsize=9.5)
            if is_counts and image is not None:
                cb = fig.colorbar(image, ax=axes[i, :], shrink=0.9, pad=0.02, aspect=10)
                cb.set_label(_units(ds[var], "counts"), fontsize=9)
                cb.ax.tick_params(labelsize=8)
            elif image is not None:
                li_image = image
                li_axes.extend(axes[i, :])
        for j, (title, color) in enumerate(titles):
            axes[0, j].set_title(title, color=color, fontsize=9.5)
        _fixed_ticks(axes[0, 0], extent)  # the axes are shared: one fixed locator for all
        if li_image is not None:
            cb = fig.colorbar(li_image, ax=li_axes, shrink=0.9, pad=0.02, aspect=25)
            cb.set_label("Li fraction x in LiₓCoO₂")
    return fig


def chi2_maps_figure(
    maps: Sequence[tuple[xr.DataArray, str]],
    *,
    layer: np.ndarray | None = None,
    label: str = "reduced χ² / Poisson expectation",
    vmax: float | None = None,
    panel_width: float = 3.0,
) -> Figure:
    """Goodness-of-fit maps side by side, with a histogram split into bulk and layer pixels.

    Parameters
    ----------
    maps : sequence of ((y, x) DataArray, title)
        Per-pixel goodness of fit (e.g. reduced chi^2 divided by the expected Poisson variance,
        so that 1 is a fit down to the counting noise), with ``y``/``x`` coordinates in nm.
    layer : (y, x) bool array, optional
        Interfacial layer: outlined on the maps and histogrammed separately.
    label : str
        Quantity shown (colour bar and histogram axis).
    vmax : float, optional
        Top of the shared colour scale (default: 99.5th percentile of all maps).
    """
    n = len(maps)
    first = maps[0][0]
    extent = _extent(first)  # reads only the x and y coordinates
    units = (_units(first["x"], "nm"), _units(first["y"], "nm"))
    allv = np.concatenate([np.ravel(m.values) for m, _ in maps])
    lo, hi = robust_range(allv, 0.5, 99.5)
    vmax = vmax if vmax is not None else hi
    wx, wy = abs(extent[1] - extent[0]), abs(extent[2] - extent[3])
    with style():
        fig = new_figure(panel_width * n + 3.6, panel_width * wy / wx + 0.9)
        gs = fig.add_gridspec(1, n + 1, width_ratios=[1.0] * n + [1.15])
        image = None
        map_axes = []
        for k, (values, title) in enumerate(maps):
            ax = fig.add_subplot(gs[0, k])
            image = ax.imshow(np.asarray(values.values), extent=extent, origin="upper", cmap=COUNTS_CMAP,
                              vmin=0.0, vmax=vmax, interpolation="nearest", aspect="equal")
            _outline(ax, layer, extent, color="#56b4e9")
            _map_axes(ax)
            ax.set_title(title, fontsize=9.5)
            ax.set_xlabel(f"x ({units[0]})")
            if k == 0:
                ax.set_ylabel(f"y ({units[1]})")
            else:
                ax.tick_params(labelleft=False)
            map_axes.append(ax)
        if image is not None:
            cb = fig.colorbar(image, ax=map_axes, shrink=0.85, pad=0.02, aspect=20, extend="max")
            cb.set_label(label)
        ax = fig.add_subplot(gs[0, n])
        top = max(float(np.nanmax(allv)) if np.isfinite(allv).any() else vmax, vmax)
        bins = np.linspace(0.0, top, 80)
        for k, (values, title) in enumerate(maps):
            v = np.asarray(values.values)
            color = COMPONENT_COLORS[k % len(COMPONENT_COLORS)]
            groups = [(~layer, "bulk", "-"), (layer, "layer", ":")] if layer is not None else [(np.ones_like(v, bool), "", "-")]
            for sel, name, ls in groups:
                data = v[sel & np.isfinite(v)]
                ax.hist(data, bins=bins, histtype="step", density=True, color=color, ls=ls, lw=1.3,
                        label=f"{title.splitlines()[0]}, {name}".rstrip(", "))
        ax.axvline(1.0, color="#52606d", lw=0.8, ls="--")
        ax.set_xlabel(label)
        ax.set_ylabel("pixel density")
        ax.legend(fontsize=7.5, loc="upper right")
    return fig


def nmf_components_figure(
    result: xr.Dataset,
    *,
    labels: Mapping[int, str],
    highlight: int | None = None,
    outline: np.ndarray | None = None,
    mean_spectra: Sequence[tuple[np.ndarray, np.ndarray, str]] = (),
    panel_width: float = 2.3,
) -> Figure:
    """NMF abundance maps (top row) and component spectra (bottom).

    Parameters
    ----------
    result : Dataset
        From :func:`ionscope.eels.nmf`: ``maps`` (component, y, x) and ``spectra``
        (component, energy in eV, maximum 1).
    labels : mapping of int to str
        Name of each component (titles and legend).
    highlight : int, optional
        Component drawn with a thicker line and a framed map (e.g. the interfacial layer).
    outline : (y, x) bool array, optional
        True region drawn as a dashed contour on the maps.
    mean_spectra : sequence of (energy, spectrum, label), optional
        Reference curves for the spectrum panel (e.g. the mean normalised spectrum of the
        bulk and of the layer), drawn in grey.
    """
    maps = result["maps"]
    spectra = result["spectra"]
    k = int(maps.sizes["component"])
    extent = _extent(maps)
    wx, wy = abs(extent[1] - extent[0]), abs(extent[2] - extent[3])
    energy = np.asarray(spectra["energy"].values, dtype=float)
    map_h = panel_width * wy / wx
    with style():
        fig = new_figure(max(panel_width * k * 1.3 + 0.8, 7.5), map_h + 4.6)
        gs = fig.add_gridspec(2, k, height_ratios=[map_h + 0.5, 3.2])
        for c in range(k):
            ax = fig.add_subplot(gs[0, c])
            values = np.asarray(maps.isel(component=c).values)
            image = ax.imshow(values, extent=extent, origin="upper", cmap="cividis",
                              vmin=0.0, vmax=robust_range(values, 0.5, 99.5)[1],
                              interpolation="nearest", aspect="equal")
            _outline(ax, outline, extent, color="#ff6e54")
            _map_axes(ax)
            color = COMPONENT_COLORS[c % len(COMPONENT_COLORS)]
            ax.set_title(f"component {c}\n{labels.get(c, '')}", color=color, fontsize=9.5)
            ax.set_xlabel(f"x ({_units(maps['x'], 'nm')})")
            if c == 0:
                ax.set_ylabel(f"y ({_units(maps['y'], 'nm')})")
            if c == highlight:
                for side in ax.spines.values():
                    side.set_edgecolor(color)
                    side.set_linewidth(2.2)
            cb = fig.colorbar(image, ax=ax, shrink=0.8, pad=0.03, aspect=15)
            cb.ax.tick_params(labelsize=7.5)
            cb.formatter.set_powerlimits((-2, 3))
            if c == k - 1:
                cb.set_label("abundance (1)", fontsize=8.5)
        ax = fig.add_subplot(gs[1, :])
        for e, s, label in mean_spectra:
            ax.plot(e, s, color="#7b8794", lw=1.1, ls=":" if "layer" in label else "-", label=label)
        for c in range(k):
            color = COMPONENT_COLORS[c % len(COMPONENT_COLORS)]
            ax.plot(energy, np.asarray(spectra.isel(component=c).values), color=color,
                    lw=2.4 if c == highlight else 1.3,
                    label=f"component {c}: {labels.get(c, '')}")
        for e0, name in ((55.0, "Li-K"), (59.0, "Co-M₂,₃")):
            ax.axvline(e0, color="#52606d", lw=0.7, ls="--")
            ax.annotate(name, xy=(e0, 1.0), xycoords=("data", "axes fraction"), xytext=(2, -2),
                        textcoords="offset points", va="top", fontsize=8, color="#52606d")
        ax.set_xlabel("Energy loss (eV)")
        ax.set_ylabel("Spectrum (max = 1)")
        ax.set_xlim(energy[0], energy[-1])
        ax.grid(True)
        ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.2), ncol=2, fontsize=8.5)
    return fig


def sr_profile_figure(
    image: xr.DataArray,
    profile: xr.DataArray,
    *,
    fits: Sequence[tuple[xr.DataArray, str]] = (),
    markers: Sequence[tuple[float, float, str]] = (),
    truth: xr.DataArray | None = None,
    truth_label: str = "true Li (relative to bulk electrolyte)",
    window: tuple[float, float] | None = None,
    width: float = 9.0,
) -> Figure:
    """SR-EELS image (top) and its Li-K window profile with fitted models (bottom).

    Parameters
    ----------
    image : DataArray (position, energy)
        SR-EELS counts; drawn with position along the horizontal axis, log colour scale.
    profile : DataArray (position)
        Window integral (counts) with an optional ``std_error`` coordinate (error bars).
    fits : sequence of (DataArray over position, label)
        Model curves (e.g. ``interface_and_width(...)["fit"]``); NaN where not fitted.
    markers : sequence of (position nm, standard error nm, label)
        Vertical lines with a shaded ±1 sigma band (interface, far edge of the enriched zone).
    truth : DataArray (position), optional
        True Li profile, on a right-hand axis.
    window : (float, float), optional
        Energy window of the profile, marked on the image.
    """
    from matplotlib.colors import LogNorm

    pos = np.asarray(profile["position"].values, dtype=float)
    punit = _units(profile["position"], "nm")
    energy = np.asarray(image["energy"].values, dtype=float)
    counts = np.asarray(image.transpose("energy", "position").values, dtype=float)
    step = float(pos[1] - pos[0]) if pos.size > 1 else 1.0
    de = float(energy[1] - energy[0]) if energy.size > 1 else 1.0
    with style():
        fig = new_figure(width, 6.4)
        ax_img, ax = fig.subplots(2, 1, sharex=True, height_ratios=[1.0, 1.5])
        positive = counts[counts > 0]
        norm = LogNorm(vmin=max(float(np.percentile(positive, 1)), 1.0) if positive.size else 1.0,
                       vmax=float(np.percentile(positive, 99.9)) if positive.size else 10.0)
        im = ax_img.imshow(np.clip(counts, 1.0, None), extent=[pos[0] - step / 2, pos[-1] + step / 2,
                           energy[0] - de / 2, energy[-1] + de / 2], origin="lower", aspect="auto",
                           cmap="magma", norm=norm, interpolation="nearest")
        cax = ax_img.inset_axes([0.70, 0.86, 0.27, 0.06])
        cb = fig.colorbar(im, cax=cax, orientation="horizontal")
        cb.set_label("counts / channel", fontsize=8, color="white", labelpad=1)
        cb.ax.tick_params(labelsize=7.5, colors="white", length=2)
        cb.outline.set_edgecolor("white")
        if window is not None:
            for e in window:
                ax_img.axhline(e, color="#56b4e9", lw=0.9, ls="--")
            ax_img.annotate("Li-K window", xy=(1.0, window[1]), xycoords=("axes fraction", "data"),
                            xytext=(-4, 2), textcoords="offset points", ha="right", va="bottom",
                            color="#56b4e9", fontsize=8.5)
        ax_img.set_ylabel("Energy loss (eV)")
        err = profile["std_error"].values if "std_error" in profile.coords else None
        factor = 1e-3
        ax.errorbar(pos, profile.values * factor, yerr=None if err is None else err * factor,
                    fmt="o", ms=2.6, color="#243b53", ecolor="#9aa5b1", elinewidth=0.7, lw=0,
                    label="Li-K window integral (±1σ)", zorder=3)
        for k, (curve, label) in enumerate(fits):
            ax.plot(np.asarray(curve["position"].values, dtype=float), curve.values * factor,
                    color=(COMPONENT_COLORS[0], COMPONENT_COLORS[2])[k % 2], lw=1.8, label=label,
                    zorder=4)
        for k, (p, e, label) in enumerate(markers):
            color = ("#cc79a7", "#e69f00", "#56b4e9")[k % 3]
            for a in (ax, ax_img):
                a.axvline(p, color=color, lw=1.0, ls="-.")
            ax.axvspan(p - e, p + e, color=color, alpha=0.18, lw=0)
            ax.plot([], [], color=color, lw=1.0, ls="-.", label=label)
        ax.set_xlabel(f"Position ({punit}); Cu on the left, electrolyte on the right")
        ax.set_ylabel("Li-K integral (10³ counts)")
        ax.grid(True)
        handles, labels_ = ax.get_legend_handles_labels()
        if truth is not None:
            ax2 = ax.twinx()
            ax2.plot(np.asarray(truth["position"].values, dtype=float), truth.values, color=TRUTH_COLOR,
                     lw=1.1, ls="--")
            ax2.set_ylabel(truth_label, color=TRUTH_COLOR, fontsize=9)
            ax2.tick_params(axis="y", colors=TRUTH_COLOR)
            ax2.spines["right"].set_visible(True)
            lo, hi = ax.get_ylim()
            top = float(np.nanmax(truth.values)) if truth.size else 1.0
            scale = top * 1.05 / hi if hi > 0 else 1.0  # zero of both axes at the same height
            ax2.set_ylim(lo * scale, hi * scale)
            handles.append(Line2D([], [], color=TRUTH_COLOR, lw=1.1, ls="--", label="ground truth"))
            labels_.append("ground truth (right axis)")
        ax.legend(handles, labels_, loc="lower right", fontsize=8.5, framealpha=0.9, frameon=True,
                  edgecolor="none")
    return fig


__all__ = [
    "COMPONENT_COLORS",
    "COUNTS_CMAP",
    "eels_method_maps_figure",
    "chi2_maps_figure",
    "nmf_components_figure",
    "sr_profile_figure",
]
