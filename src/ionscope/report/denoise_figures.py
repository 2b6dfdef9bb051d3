"""Figures for sparse-coding denoising: quality and mean Li over time, dictionary atoms.

Plain functions that take arrays and return a matplotlib :class:`~matplotlib.figure.Figure`
(no numerics beyond what is drawn); the demo section
:mod:`ionscope.pipeline.denoise_demo` calls them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import xarray as xr
from matplotlib.figure import Figure

from ionscope.report.figures import _shade_phases, _state_legend, _time_minutes, new_figure, state_names, style

#: Line colours per method (Okabe-Ito, colour-blind safe); the truth is drawn in black.
METHOD_COLORS = ("#999999", "#0072b2", "#d55e00", "#009e73", "#cc79a7")


def quality_timeline_figure(
    ds: xr.Dataset,
    psnr: Mapping[str, np.ndarray],
    mean_li: Mapping[str, np.ndarray],
    truth_mean: np.ndarray,
    *,
    width: float = 9.0,
) -> Figure:
    """PSNR against the ground truth (top) and the mean Li fraction (bottom) frame by frame.

    Parameters
    ----------
    ds : xarray.Dataset
        Gives ``time`` (for the axis, in min) and, when present, ``state`` (shaded phases).
    psnr, mean_li : mapping of label to array (time,)
        Per method: PSNR (dB, data range 1) and mean Li fraction of each frame.
    truth_mean : array (time,)
        Mean Li fraction of the ground truth.
    """
    t = _time_minutes(ds)
    names = state_names(ds["state"]) if "state" in ds else {}
    state = np.asarray(ds["state"].values) if "state" in ds else None
    with style():
        fig = new_figure(width, 5.4)
        top, bottom = fig.subplots(2, 1, sharex=True)
        for ax in (top, bottom):
            if state is not None:
                _shade_phases(ax, t, state, names)
            ax.grid(alpha=0.25)
        for (label, values), color in zip(psnr.items(), METHOD_COLORS):
            top.plot(t, values, color=color, lw=1.4, label=label)
        top.set_ylabel("PSNR vs truth (dB)")
        top.legend(loc="lower right", fontsize=8, ncol=len(psnr), frameon=False)
        bottom.plot(t, truth_mean, color="black", lw=2.2, label="ground truth")
        for (label, values), color in zip(mean_li.items(), METHOD_COLORS):
            bottom.plot(t, values, color=color, lw=1.2, ls="--" if label.startswith("raw") else "-",
                        label=label)
        bottom.set_ylabel("mean Li fraction x")
        bottom.set_xlabel("time (min)")
        handles, labels = bottom.get_legend_handles_labels()
        if state is not None:
            extra = _state_legend(names, list(np.unique(state)))
            handles, labels = handles + extra, labels + [h.get_label() for h in extra]
        bottom.legend(handles, labels, loc="upper right", fontsize=8, ncol=3, frameon=False)
        fig.align_ylabels()
    return fig


def dictionary_atoms_figure(
    dictionary: np.ndarray,
    patch_shape: Sequence[int],
    *,
    n_atoms: int = 32,
    columns: int = 4,
    width: float = 9.0,
) -> Figure:
    """The first ``n_atoms`` learned atoms, each as its ``t`` frames side by side.

    Parameters
    ----------
    dictionary : array (atoms, t * p * p)
        Learned dictionary, one atom per row (zero-mean patches).
    patch_shape : (t, p, p)
        Shape of one atom.
    """
    t, py, px = (int(v) for v in patch_shape)
    atoms = np.asarray(dictionary, dtype=float)[:n_atoms].reshape(-1, t, py, px)
    n = atoms.shape[0]
    rows = int(np.ceil(n / columns))
    gap = 1
    tile_w = t * px + (t - 1) * gap
    canvas = np.full((rows * (py + 2 * gap), columns * (tile_w + 3 * gap)), np.nan)
    for i, atom in enumerate(atoms):
        r, c = divmod(i, columns)
        scale = np.max(np.abs(atom)) or 1.0
        y0 = r * (py + 2 * gap)
        for k in range(t):
            x0 = c * (tile_w + 3 * gap) + k * (px + gap)
            canvas[y0:y0 + py, x0:x0 + px] = atom[k] / scale
    with style():
        fig = new_figure(width, width * canvas.shape[0] / canvas.shape[1] + 0.3)
        ax = fig.subplots()
        ax.imshow(canvas, cmap="RdBu_r", vmin=-1, vmax=1, interpolation="nearest")
        ax.set_axis_off()
        ax.set_title(f"{n} of {np.asarray(dictionary).shape[0]} atoms, {t} × {py} × {px} "
                     "(frames left to right)", fontsize=9)
    return fig


__all__ = ["METHOD_COLORS", "quality_timeline_figure", "dictionary_atoms_figure"]
