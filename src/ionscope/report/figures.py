"""Matplotlib figures for reports.

Each function takes a Dataset (or arrays) and returns a :class:`matplotlib.figure.Figure` drawn
on the Agg canvas. Figures are built with the object-oriented API only (no ``pyplot``, so no
global figure registry and nothing left open), and style settings are applied through
:func:`matplotlib.rc_context` so they never leak into the caller's matplotlib state. The
functions do no numerics beyond trivial reductions (means over pixels, run lengths of the
cycler state); the science lives in the technique packages.

Conventions of the LiCoO2 operando twin (see :mod:`ionscope.simulate`): ``time`` in s, ``y``
(depth; row 0 touches the solid electrolyte, the last row the current collector) and ``x`` in
nm, ``state`` with CF ``flag_values`` / ``flag_meanings``.
"""

from __future__ import annotations

import io
import json
from collections.abc import Mapping, Sequence
from typing import Any

import matplotlib
import numpy as np
import xarray as xr
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

#: Default figure resolution (dots per inch) for saved PNGs.
DPI = 140

#: Colour per cycler state (colour-blind safe: orange, purple, grey).
STATE_COLORS: dict[str, str] = {
    "charge": "#e66100",
    "discharge": "#5d3a9b",
    "rest": "#8a8f98",
}
#: Colormap for Li-fraction maps (perceptually uniform).
LI_CMAP = "viridis"

STYLE: dict[str, Any] = {
    "font.size": 10,
    "axes.titlesize": 10.5,
    "axes.labelsize": 10.5,
    "xtick.labelsize": 9,
    "ytick.labelsize": 9,
    "legend.fontsize": 9,
    "legend.frameon": False,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": False,
    "grid.color": "#d9dde3",
    "grid.linewidth": 0.6,
    "image.cmap": LI_CMAP,
    "savefig.dpi": DPI,
    "figure.dpi": 100,
}

_PREFIXES = [(-18, "a"), (-15, "f"), (-12, "p"), (-9, "n"), (-6, "µ"), (-3, "m"), (0, ""), (3, "k")]


# --------------------------------------------------------------------------- helpers


def new_figure(width: float, height: float) -> Figure:
    """A Figure on the Agg canvas with constrained layout (call inside :func:`style`)."""
    fig = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def style():
    """Context manager applying the report style without touching global rcParams."""
    return matplotlib.rc_context(STYLE)


def figure_to_png(fig: Figure, *, dpi: int = DPI) -> bytes:
    """Render ``fig`` to PNG bytes (white background)."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, facecolor="white")
    return buf.getvalue()


def robust_range(values: Any, lo: float = 1.0, hi: float = 99.0) -> tuple[float, float]:
    """Display range from percentiles ``lo``, ``hi`` of the finite values (a colour scale, not a
    result); a constant map gets a unit-wide range around its value."""
    v = np.asarray(values, dtype=float)
    v = v[np.isfinite(v)]
    if not v.size:
        return 0.0, 1.0
    a, b = np.percentile(v, [lo, hi])
    return (float(a), float(b)) if b > a else (float(a) - 0.5, float(a) + 0.5)


def si_scale(values: Any, unit: str) -> tuple[float, str]:
    """A factor and prefixed unit so that ``values * factor`` reads as 1 ... 999.

    >>> si_scale([2e-9, -5e-9], "A")
    (1000000000.0, 'nA')
    """
    arr = np.abs(np.asarray(values, dtype=float))
    arr = arr[np.isfinite(arr)]
    peak = float(arr.max()) if arr.size else 0.0
    if peak == 0.0:
        return 1.0, unit
    exponent, prefix = _PREFIXES[0]
    for exp, pre in _PREFIXES:
        if peak >= 10.0**exp * 0.9995:
            exponent, prefix = exp, pre
    return 10.0 ** (-exponent), prefix + unit


def state_names(state: xr.DataArray | Any) -> dict[int, str]:
    """Map the cycler's state codes to names from the CF ``flag_values``/``flag_meanings``
    attributes (default ``{0: "rest", 1: "charge", 2: "discharge"}``)."""
    attrs = getattr(state, "attrs", {}) or {}
    values = attrs.get("flag_values", [0, 1, 2])
    meanings = attrs.get("flag_meanings", "rest charge discharge")
    if isinstance(meanings, str):
        meanings = meanings.split()
    return {int(v): str(m) for v, m in zip(np.atleast_1d(values), meanings)}


def phase_runs(state: Sequence[int] | np.ndarray) -> list[tuple[int, int, int]]:
    """Runs of equal state: ``[(code, first_index, stop_index), ...]`` (stop exclusive)."""
    s = np.asarray(state)
    if s.size == 0:
        return []
    edges = np.flatnonzero(np.diff(s)) + 1
    starts = np.concatenate([[0], edges])
    stops = np.concatenate([edges, [s.size]])
    return [(int(s[a]), int(a), int(b)) for a, b in zip(starts, stops)]


def key_frames(ds: xr.Dataset, *, max_frames: int = 6) -> dict[str, int]:
    """Frame indices at telling moments of the cycling protocol, in time order.

    ``start``; the end of each charge / rest / discharge run (``end of charge``...); the middle
    of each discharge run (``mid-discharge``); ``end``. Duplicates are dropped and at most
    ``max_frames`` are kept (``start`` and ``end`` always).
    """
    n = int(ds.sizes["time"])
    names = state_names(ds["state"]) if "state" in ds else {}
    picks: list[tuple[str, int]] = [("start", 0)]
    if "state" in ds:
        count: dict[str, int] = {}
        for code, a, b in phase_runs(ds["state"].values):
            name = names.get(code, str(code))
            count[name] = count.get(name, 0) + 1
            tag = name if count[name] == 1 else f"{name} {count[name]}"
            if name == "discharge":
                picks.append((f"mid-{tag}", a + (b - a) // 2))
            picks.append((f"end of {tag}", b - 1))
    picks.append(("end", n - 1))
    out: dict[str, int] = {}
    used: set[int] = set()
    for label, idx in picks:
        if idx in used:
            # the final frame is better called "end" than "end of rest 2"
            if label == "end":
                out = {k: v for k, v in out.items() if v != idx}
                out[label] = idx
            continue
        used.add(idx)
        out[label] = idx
    if len(out) > max_frames:
        items = list(out.items())
        middle = items[1:-1][: max_frames - 2]
        out = dict([items[0], *middle, items[-1]])
    return dict(sorted(out.items(), key=lambda kv: kv[1]))


def _units(obj: Any, default: str = "1") -> str:
    return str(getattr(obj, "attrs", {}).get("units", default))


def map_extent(x_nm: Any, y_nm: Any) -> list[float]:
    """``imshow`` extent (nm) of a map with pixel centres ``x_nm``, ``y_nm`` drawn with
    ``origin="upper"`` (row 0 at the top).

    >>> map_extent([0.0, 10.0, 20.0], [0.0, 10.0])
    [-5.0, 25.0, 15.0, -5.0]
    """
    x, y = np.asarray(x_nm, dtype=float), np.asarray(y_nm, dtype=float)
    dx = float(x[1] - x[0]) if x.size > 1 else 1.0
    dy = float(y[1] - y[0]) if y.size > 1 else 1.0
    return [float(x[0]) - dx / 2, float(x[-1]) + dx / 2, float(y[-1]) + dy / 2, float(y[0]) - dy / 2]


def map_panel(ax, fig: Figure, image: Any, extent: Sequence[float], cmap: Any, vmin: float, vmax: float,
              label: str | None, title: str = ""):
    """Draw one map on ``ax`` (row 0 at the top, square pixels) with a colour bar labelled
    ``label`` (none when ``label`` is None); returns the image artist."""
    im = ax.imshow(np.asarray(image, dtype=float), extent=extent, origin="upper", cmap=cmap, vmin=vmin,
                   vmax=vmax, interpolation="nearest", aspect="equal")
    if label is not None:
        cb = fig.colorbar(im, ax=ax, shrink=0.8, pad=0.02, aspect=18)
        cb.set_label(label, fontsize=8.5)
        cb.ax.tick_params(labelsize=7.5)
    ax.set_title(title, fontsize=9.5)
    ax.tick_params(labelsize=7.5)
    return im


def _extent(ds: xr.Dataset) -> list[float]:
    # origin="upper": row 0 (the electrolyte interface) at the top of the image
    return map_extent(ds["x"].values, ds["y"].values)


def _time_minutes(ds: xr.Dataset, coord: str = "time") -> np.ndarray:
    t = np.asarray(ds[coord].values, dtype=float)
    unit = _units(ds[coord], "s")
    return {"min": t, "h": t * 60.0, "ms": t / 60000.0}.get(unit, t / 60.0)


def _shade_phases(ax, t_min: np.ndarray, state: np.ndarray, names: Mapping[int, str]) -> None:
    """Light background spans per run of states (frame boundaries at mid-points)."""
    if t_min.size == 0:
        return
    mids = (t_min[1:] + t_min[:-1]) / 2 if t_min.size > 1 else np.array([])
    first = t_min[0] - (t_min[1] - t_min[0]) / 2 if t_min.size > 1 else t_min[0] - 0.5
    last = t_min[-1] + (t_min[-1] - t_min[-2]) / 2 if t_min.size > 1 else t_min[0] + 0.5
    bounds = np.concatenate([[first], mids, [last]])
    for code, a, b in phase_runs(state):
        color = STATE_COLORS.get(names.get(code, ""), "#cccccc")
        ax.axvspan(bounds[a], bounds[b], color=color, alpha=0.09, lw=0, zorder=0)


def _state_legend(names: Mapping[int, str], present: Sequence[int]) -> list:
    """Legend markers for the states present, in protocol order (charge, rest, discharge)."""
    rank = {"charge": 0, "rest": 1, "discharge": 2}
    codes = sorted((c for c in set(present) if c in names), key=lambda c: (rank.get(names[c], 9), c))
    return [
        Line2D([], [], marker="o", ls="", color=STATE_COLORS.get(names[c], "#999999"), label=names[c], ms=6)
        for c in codes
    ]


# --------------------------------------------------------------------------- figures


def electrochemistry_figure(ds: xr.Dataset, *, width: float = 9.0) -> Figure:
    """Cell voltage and current against time, with a marker at every frame time.

    The cycler log (``cycler_voltage``, ``cycler_current`` on the ``record`` dim) is drawn as a
    line when present; the frames (``voltage``, ``current`` on ``time``) as markers coloured by
    the cycler state, on light bands that mark the charge / rest / discharge phases.
    """
    names = state_names(ds["state"])
    state = np.asarray(ds["state"].values)
    t = _time_minutes(ds)
    colors = [STATE_COLORS.get(names.get(int(s), ""), "#999999") for s in state]
    has_log = "cycler_voltage" in ds and "record" in ds.dims
    t_log = _time_minutes(ds, "record") if has_log else None
    with style():
        fig = new_figure(width, 5.2)
        ax_v, ax_i = fig.subplots(2, 1, sharex=True, height_ratios=[1.6, 1])
        for ax, var, log_var, label in (
            (ax_v, "voltage", "cycler_voltage", "Cell voltage"),
            (ax_i, "current", "cycler_current", "Current"),
        ):
            unit = _units(ds[var], "V" if var == "voltage" else "A")
            if var == "current":
                vals = [ds[var].values] + ([ds[log_var].values] if has_log else [])
                factor, unit = si_scale(np.concatenate([np.ravel(v) for v in vals]), unit)
            else:
                factor = 1.0
            _shade_phases(ax, t, state, names)
            if has_log and log_var in ds:
                ax.plot(t_log, ds[log_var].values * factor, color="#243b53", lw=1.0, zorder=2,
                        drawstyle="steps-post" if var == "current" else "default")
            ax.scatter(t, ds[var].values * factor, c=colors, s=14, zorder=3, edgecolors="white", linewidths=0.4)
            ax.set_ylabel(f"{label} ({unit})")
            ax.grid(True, axis="y")
        if "current" in ds:
            ax_i.axhline(0.0, color="#52606d", lw=0.6, zorder=1)
        ax_i.set_xlabel("Time (min)")
        handles = _state_legend(names, [int(s) for s in np.unique(state)])
        if has_log:
            handles.insert(0, Line2D([], [], color="#243b53", lw=1.0, label="cycler log"))
        ax_v.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.0, 1.0), title="frames")
        ax_v.set_title(f"{state.size} frames, one marker per frame (mid-exposure time)", loc="left",
                       color="#52606d", fontsize=9.5)
    return fig


def li_maps_figure(
    ds: xr.Dataset,
    frames: Mapping[str, int] | None = None,
    *,
    rows: Sequence[tuple[str, str]] = (("li_fraction", "observed"), ("li_fraction_true", "ground truth")),
    vmin: float | None = 0.0,
    vmax: float | None = 1.0,
    cmap: str = LI_CMAP,
    panel_width: float = 1.55,
) -> Figure:
    """Li-fraction maps at chosen frames: one column per frame, one row per variable.

    Parameters
    ----------
    ds : Dataset
        With ``(time, y, x)`` variables named in ``rows`` and ``voltage``/``state`` on ``time``.
    frames : mapping of str to int, optional
        Column label -> frame index; default :func:`key_frames`.
    rows : sequence of (variable, label)
        Variables to show, top to bottom (missing variables are skipped).
    vmin, vmax : float, optional
        Colour range shared by all panels (Li fraction, dimensionless; default 0 to 1).
    """
    frames = dict(frames or key_frames(ds))
    rows = [(v, lab) for v, lab in rows if v in ds]
    names = state_names(ds["state"]) if "state" in ds else {}
    extent = _extent(ds)
    wx, wy = abs(extent[1] - extent[0]), abs(extent[2] - extent[3])
    ncol, nrow = len(frames), len(rows)
    panel_h = panel_width * wy / wx
    t = _time_minutes(ds)
    xunit, yunit = _units(ds["x"], "nm"), _units(ds["y"], "nm")
    unit = _units(ds[rows[0][0]], "1") if rows else "1"
    with style():
        fig = Figure(figsize=(panel_width * ncol + 2.0, panel_h * nrow + 1.05), layout="compressed")
        FigureCanvasAgg(fig)
        axes = np.atleast_2d(fig.subplots(nrow, ncol, sharex=True, sharey=True, squeeze=False))
        image = None
        for j, (label, idx) in enumerate(frames.items()):
            head = [label, f"{t[idx]:.0f} min"]
            if "voltage" in ds:
                head[-1] += f", {float(ds['voltage'].values[idx]):.2f} {_units(ds['voltage'], 'V')}"
            st = names.get(int(ds["state"].values[idx]), "") if "state" in ds else ""
            axes[0, j].set_title("\n".join(head), color=STATE_COLORS.get(st, "black"), fontsize=9.5)
            for i, (var, _row_label) in enumerate(rows):
                ax = axes[i, j]
                image = ax.imshow(
                    np.asarray(ds[var].isel(time=idx).values),
                    extent=extent, origin="upper", cmap=cmap, vmin=vmin, vmax=vmax,
                    interpolation="nearest", aspect="equal",
                )
                ax.tick_params(length=2.5, labelsize=8.5)
                for side in ("top", "right"):
                    ax.spines[side].set_visible(True)
                if i == nrow - 1:
                    ax.set_xlabel(f"x ({xunit})")
        for i, (_var, row_label) in enumerate(rows):
            axes[i, 0].set_ylabel(f"{row_label}\ndepth y ({yunit})")
            # name the two interfaces next to the last column
            ax = axes[i, -1]
            for yfrac, va, text in ((1.0, "top", "◀ electrolyte"), (0.0, "bottom", "◀ current\n    collector")):
                ax.annotate(text, xy=(1.0, yfrac), xytext=(3, 0), xycoords="axes fraction",
                            textcoords="offset points", va=va, ha="left", fontsize=8, color="#243b53",
                            annotation_clip=False)
        if image is not None:
            cb = fig.colorbar(image, ax=axes, shrink=0.85, pad=0.04, aspect=22)
            cb.set_label("Li fraction x in LiₓCoO₂" + (f" ({unit})" if unit not in ("1", "") else ""))
    return fig


def charge_per_unit_fraction(ds: xr.Dataset) -> float | None:
    """Charge (C) that changes the mean Li fraction of the whole map by 1, if the Dataset says.

    From the twin's ``attrs["derived"]["coulomb_per_pixel_at_x1"]`` (C per pixel at x = 1)
    times the number of map pixels, or ``attrs["charge_per_unit_fraction_C"]``.
    """
    if "charge_per_unit_fraction_C" in ds.attrs:
        return float(ds.attrs["charge_per_unit_fraction_C"])
    raw = ds.attrs.get("derived")
    if not raw:
        return None
    try:
        derived = json.loads(raw) if isinstance(raw, str) else dict(raw)
    except (ValueError, TypeError):
        return None
    per_pixel = derived.get("coulomb_per_pixel_at_x1")
    if per_pixel is None or "y" not in ds.sizes or "x" not in ds.sizes:
        return None
    return float(per_pixel) * int(ds.sizes["y"]) * int(ds.sizes["x"])


def li_vs_charge_figure(
    ds: xr.Dataset,
    *,
    charge_per_unit_fraction_C: float | None = None,
    x0: float | None = None,
    width: float = 7.2,
) -> Figure:
    """Mean Li fraction of the field of view against the charge passed by the cycler.

    Observed (markers, coloured by state) and ground truth (line) means, and the straight line
    that mass balance predicts from the cycler's charge: ``x(Q) = x0 - (Q - Q0) / Qx``, where
    ``Qx`` = ``charge_per_unit_fraction_C`` (C) is the charge that changes the mean Li fraction
    of the imaged volume by 1 (default :func:`charge_per_unit_fraction`), ``Q0`` the first
    frame's charge and ``x0`` the first frame's ground-truth mean. The top axis shows the same
    charge in (prefixed) Ah.
    """
    names = state_names(ds["state"])
    state = np.asarray(ds["state"].values)
    q = np.asarray(ds["charge"].values, dtype=float)
    qunit = _units(ds["charge"], "C")
    factor, qlabel = si_scale(q, qunit)
    obs = ds["li_fraction"].mean(("y", "x")).values
    true = ds["li_fraction_true"].mean(("y", "x")).values if "li_fraction_true" in ds else None
    capacity = charge_per_unit_fraction_C if charge_per_unit_fraction_C is not None else charge_per_unit_fraction(ds)
    colors = [STATE_COLORS.get(names.get(int(s), ""), "#999999") for s in state]
    with style():
        fig = new_figure(width, 4.6)
        ax = fig.subplots()
        handles = []
        if capacity is not None and q.size:
            start = x0 if x0 is not None else float((true if true is not None else obs)[0])
            qq = np.linspace(min(q.min(), 0.0), q.max(), 50)
            ax.plot(qq * factor, start - (qq - q[0]) / capacity, color="#d64545", lw=1.4, ls="--", zorder=2)
            handles.append(Line2D([], [], color="#d64545", lw=1.4, ls="--",
                                  label="mass balance (cycler charge)"))
        if true is not None:
            ax.plot(q * factor, true, color="#102a43", lw=1.6, zorder=3)
            handles.append(Line2D([], [], color="#102a43", lw=1.6, label="ground truth (mean)"))
        ax.scatter(q * factor, obs, c=colors, s=16, zorder=4, edgecolors="white", linewidths=0.4)
        for h in _state_legend(names, [int(s) for s in np.unique(state)]):
            h.set_label(f"observed, {h.get_label()}")
            handles.append(h)
        ax.set_xlabel(f"Charge passed ({qlabel})")
        ax.set_ylabel("Mean Li fraction x in field of view")
        ax.grid(True)
        ax.legend(handles=handles, loc="best")
        if qunit == "C":
            ah_factor, ah_label = si_scale(q / 3600.0, "Ah")
            to_ah = ah_factor / 3600.0 / factor
            sec = ax.secondary_xaxis("top", functions=(lambda v: v * to_ah, lambda v: v / to_ah))
            sec.set_xlabel(f"Charge passed ({ah_label})")
    return fig


__all__ = [
    "DPI",
    "STATE_COLORS",
    "LI_CMAP",
    "STYLE",
    "new_figure",
    "style",
    "figure_to_png",
    "robust_range",
    "si_scale",
    "state_names",
    "phase_runs",
    "key_frames",
    "charge_per_unit_fraction",
    "electrochemistry_figure",
    "li_maps_figure",
    "li_vs_charge_figure",
]
