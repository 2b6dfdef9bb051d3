"""The equipotential reference region of a KPFM series, and what its edge tells.

The grounded collector is the 0 V of every frame: :func:`reference_box` finds it (the flattest
band along an image edge) or reads it (a box in pixels); in later frames the box moves with the
drift. The sharp inner edge of the band gives the tip's PSF (:func:`estimate_psf`, fitted by
:func:`~ionscope.kpfm.psf.fit_edge_kernel`) and the 10-90 % resolution (nm); the spread of the
box rows' medians gives the line offsets (V) that referencing leaves, the row noise of the
Wiener filter. Small functions on numpy arrays in pixels over the kernels of
:mod:`ionscope.kpfm.level` and :mod:`ionscope.kpfm.psf`.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np

from ionscope.errors import ConfigError
from ionscope.kpfm.level import edge_profile_kernel, find_reference_kernel, parse_box, step_width_kernel
from ionscope.kpfm.psf import fit_edge_kernel

__all__ = [
    "reference_box",
    "estimate_psf",
]


def _box_edge(box: Sequence[int], shape: Sequence[int]) -> str | None:
    """The image edge a box lies along and crosses from end to end (None if none)."""
    y0, y1, x0, x1 = box
    ny, nx = shape
    if y0 == 0 and y1 == ny and x0 == 0 and x1 < nx:
        return "left"
    if y0 == 0 and y1 == ny and x1 == nx and x0 > 0:
        return "right"
    if x0 == 0 and x1 == nx and y0 == 0 and y1 < ny:
        return "top"
    if x0 == 0 and x1 == nx and y1 == ny and y0 > 0:
        return "bottom"
    return None


def reference_box(image: np.ndarray, reference: Any = "auto") -> tuple[tuple[int, int, int, int], dict[str, Any]]:
    """The equipotential reference box of a potential map: found (``"auto"``: the flattest band
    along an image edge, :func:`ionscope.kpfm.level.find_reference_kernel`) or given
    (``"Y0:Y1,X0:X1"`` or ``(y0, y1, x0, x1)``, half-open pixels).

    Returns
    -------
    box : (y0, y1, x0, x1)
    info : dict
        ``how`` (a description), ``edge`` (the image edge it lies along, or None).

    Raises
    ------
    ConfigError
        A box outside the image or unreadable.
    InputError
        ``auto`` found no flat band.
    """
    shape = np.shape(image)
    if isinstance(reference, str) and reference.strip().lower() == "auto":
        box, info = find_reference_kernel(image)
        return box, {"how": f"auto: the flattest band along the {info['edge']} edge ({info['width_px']} px wide)",
                     "edge": info["edge"]}
    box = parse_box(reference, shape)
    return box, {"how": f"given box {box[0]}:{box[1]},{box[2]}:{box[3]}", "edge": _box_edge(box, shape)}


def _moved_box(box: Sequence[int], shift: Sequence[float], shape: Sequence[int]) -> tuple[int, int, int, int] | None:
    """The box of the first frame's grid in a frame registered by ``shift`` (its content lies at
    ``r - shift`` there), clipped to the image; None when nothing is left."""
    y0, y1, x0, x1 = box
    sy, sx = int(round(shift[0])), int(round(shift[1]))
    ny, nx = shape
    out = (max(0, y0 - sy), min(ny, y1 - sy), max(0, x0 - sx), min(nx, x1 - sx))
    return out if out[1] > out[0] and out[3] > out[2] else None


def _edge_length(box: Sequence[int], edge: str, shape: Sequence[int]) -> int:
    width = (box[3] - box[2]) if edge in ("left", "right") else (box[1] - box[0])
    size = shape[1] if edge in ("left", "right") else shape[0]
    return int(min(max(3 * width, 32), size - width - 1))


def estimate_psf(image: np.ndarray, box: Sequence[int], edge: str | None, pixel_nm: Sequence[float], *,
                 profile: tuple[Sequence[float], Sequence[float], int] | None = None) -> dict[str, Any]:
    """Estimate the PSF from a sharp edge of a referenced potential map.

    Parameters
    ----------
    image : numpy.ndarray (y, x)
        Referenced potential (V) of one frame.
    box : (y0, y1, x0, x1)
        The reference band (the grounded collector); the edge is its inner boundary.
    edge : {"left", "right", "top", "bottom"} or None
        The image edge the band lies along.
    pixel_nm : (float, float)
        Pixel size (dy, dx) in nm.
    profile : ((y, x), (y, x), width), optional
        A profile across another sharp step instead: start and end (px) and band width (px).

    Returns
    -------
    dict
        ``psf`` (:class:`~ionscope.kpfm.psf.PSF` in x pixels), ``psf_nm`` (its parameters in nm),
        ``errors_nm``, ``edge`` (what was fitted), ``chi2_reduced``, ``tail``.

    Raises
    ------
    ConfigError
        No edge to fit (a box not along an image edge and no ``profile``).

    Notes
    -----
    The tail's weight and width trade off against each other unless the profile sees the tail
    flatten out on both sides: the band and the clean strip beyond its edge should each be at
    least about two tail SDs wide. On the test frames (a 24 px collector, a 12 px tail) the tail
    comes out within about 25 % and deconvolution with it lowers the error by 40 %, against 43 %
    with the true PSF; with a 16 px collector an over-estimated tail can cost most of the gain.
    Static structure next to the edge (grains of the electrolyte, particles within reach of the
    tail) biases the tail more than noise does.
    """
    dy, dx = (float(v) for v in pixel_nm)
    if profile is not None:
        from ionscope.profiles import band_samples, band_statistics

        start, end, width = profile
        samples, step_nm = band_samples(np.asarray(image, dtype=np.float64), start, end, int(width), spacing=(dy, dx))
        stats = band_statistics(samples)
        distance = np.arange(samples.shape[1]) * step_nm / dx  # in x pixels
        values = stats["mean"]
        where = f"profile {tuple(start)} -> {tuple(end)}, {int(width)} lines"
    else:
        if edge is None:
            raise ConfigError("psf='auto' fits the edge of the reference band, but the reference box does not lie along "
                              "an image edge; give the reference as 'auto' or a band along an edge, a profile across "
                              "a sharp step (psf_edge), or the PSF sigma in nm")
        length = _edge_length(box, edge, np.shape(image))
        distance, values = edge_profile_kernel(image, box, edge, length)
        if edge in ("top", "bottom"):
            distance = distance * dy / dx
        where = f"inner side of the {edge} reference band ({len(values)} px profile)"
    fit = fit_edge_kernel(distance, values)
    psf = fit["psf"]
    errors = fit["errors"]
    return {"psf": psf, "psf_nm": psf.to_nm(dx),
            "errors_nm": {"core_sigma_nm": errors["core_sigma_px"] * dx, "tail_weight": errors["tail_weight"],
                          "tail_sigma_nm": errors["tail_sigma_px"] * dx},
            "edge": where, "chi2_reduced": fit["chi2_reduced"], "tail": fit["tail"]}


def _resolution(image: np.ndarray, box: Sequence[int], edge: str | None, pixel_nm: Sequence[float]) -> float:
    """10-90 % width (nm) of the reference band's edge (NaN without an edge or a step)."""
    if edge is None:
        return float("nan")
    d, prof = edge_profile_kernel(image, box, edge, _edge_length(box, edge, np.shape(image)))
    width = step_width_kernel(d, prof)["width"]
    return float(width * (pixel_nm[1] if edge in ("left", "right") else pixel_nm[0]))


#: Reference bands whose edge profile crosses the scan lines (the fast axis is x).
_ACROSS_LINES = ("top", "bottom")


def _line_offset_sd(image: np.ndarray, box: Sequence[int], noise: float) -> float:
    """RMS over all rows (V) of the line offsets that referencing leaves in a frame, for the
    Wiener filter's noise model: rows crossing the box keep the error of their median there
    (``noise sqrt(pi / 2 / columns)``); the other rows keep their whole offset, whose SD is
    estimated from the spread of the box rows' medians (less that error)."""
    y0, y1, x0, x1 = (int(b) for b in box)
    ny = np.shape(image)[0]
    residual2 = noise**2 * math.pi / 2 / max(x1 - x0, 1)
    inside = y1 - y0
    if inside >= ny:
        return math.sqrt(residual2)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        medians = np.nanmedian(np.asarray(image, dtype=np.float64)[y0:y1, x0:x1], axis=1)
    medians = medians[np.isfinite(medians)]
    if medians.size < 3:
        return math.sqrt(residual2)
    # robust SD of the offsets (a row crossing a blurred neighbour must not inflate it)
    spread = 1.4826 * float(np.median(np.abs(medians - np.median(medians))))
    offset2 = max(spread**2 - residual2, 0.0)
    return math.sqrt((inside * residual2 + (ny - inside) * offset2) / ny)
