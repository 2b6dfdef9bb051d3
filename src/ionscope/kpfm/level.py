r"""Levelling and referencing of KPFM frames: topography on its own, the potential never plane-fitted.

The potential gradient across a cross-section is the signal (an IR drop, a space-charge layer), so
the potential is never plane-fitted. What the scan adds to it are per-row (line) offsets - the
Kelvin loop and the tip drift between scan lines - and a frame offset (the tip's work function).
Both are removed from a region known to be equipotential, the grounded current collector: the
offset of every scan line is the median of its pixels in that region (:func:`reference_kernel`),
and the region's median is 0 V in every frame. A region along the left or right edge crosses
every scan line (the fast scan axis is x) and removes every line's offset; a region along the
top or bottom edge, or a box, only those of the lines it crosses (the others keep theirs, and
the result says so).

``reference="auto"`` finds the collector as the flattest band along an image edge
(:func:`find_reference_kernel`): after the line offsets of the outermost columns are removed,
columns of a flat band are uniform along y (spread = noise) and stay near the edge's level; a
band along the top or bottom is a run of rows that are flat along x.

The topography is levelled on its own (:func:`level_topography_kernel`): line offsets (the
median difference between neighbouring rows), then a robust plane.

Noise (:func:`flat_noise_kernel`: the white-noise SD in the reference region, after its row and
column means are removed; :func:`trace_noise_kernel`: from the difference of the forward and
backward traces; :func:`highpass_noise_kernel`: from second differences along the scan lines) and
resolution (:func:`step_width_kernel`: the 10-90 % width of a sharp step) are measured here.

References
----------
D. Necas, P. Klapetek, Cent. Eur. J. Phys. 10, 181 (2012) (Gwyddion: row alignment by medians,
plane levelling). W. Melitz et al., Surf. Sci. Rep. 66, 1 (2011) (KPFM artefacts).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from ionscope.errors import ConfigError, InputError

__all__ = [
    "EDGES",
    "parse_box",
    "level_topography_kernel",
    "highpass_noise_kernel",
    "find_reference_kernel",
    "reference_kernel",
    "flat_noise_kernel",
    "trace_noise_kernel",
    "edge_profile_kernel",
    "step_width_kernel",
]

#: Image edges a reference band can lie along.
EDGES = ("left", "right", "top", "bottom")


def parse_box(spec: Any, shape: Sequence[int]) -> tuple[int, int, int, int]:
    """A reference box ``(y0, y1, x0, x1)`` (half-open pixel indices) from ``"Y0:Y1,X0:X1"`` or a
    4-sequence, checked against the image ``shape``.

    Raises
    ------
    ConfigError
        Unreadable, empty, or not inside the image.
    """
    ny, nx = int(shape[0]), int(shape[1])
    if isinstance(spec, str):
        try:
            ys, xs = spec.replace(" ", "").split(",")
            (y0, y1), (x0, x1) = (tuple(int(v) for v in part.split(":")) for part in (ys, xs))
        except ValueError:
            raise ConfigError(f"reference box {spec!r}: write it as Y0:Y1,X0:X1 (pixels, end excluded), "
                              "e.g. 0:512,0:40, or use 'auto'") from None
    else:
        try:
            y0, y1, x0, x1 = (int(v) for v in spec)
        except (TypeError, ValueError):
            raise ConfigError(f"reference box {spec!r}: give (y0, y1, x0, x1) pixel indices or 'auto'") from None
    if not (0 <= y0 < y1 <= ny and 0 <= x0 < x1 <= nx):
        raise ConfigError(f"reference box {y0}:{y1},{x0}:{x1} lies outside the {ny} x {nx} px image (rows 0:{ny}, "
                          f"columns 0:{nx}); give a box inside it, or 'auto'")
    return y0, y1, x0, x1


def _row_median(a: np.ndarray) -> np.ndarray:
    """Median of each row, NaN-aware only when needed (all-NaN rows give NaN)."""
    if np.isnan(a).any():
        with np.errstate(all="ignore"):
            import warnings

            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)
                return np.nanmedian(a, axis=1)
    return np.median(a, axis=1)


def level_topography_kernel(z: np.ndarray, *, clip: float = 3.0, iterations: int = 3, stride: int = 2) -> np.ndarray:
    """Level a height map: line offsets removed, then a plane fitted robustly and removed.

    The line offsets come from the median difference between neighbouring rows (Gwyddion's
    "median of differences" row alignment): a particle that covers most of a row shifts that
    row's median, but not the median of its difference to the next row, where only the
    particle's top or bottom edge changes.

    Parameters
    ----------
    z : numpy.ndarray (y, x)
        Heights (any length unit; NaN allowed).
    clip : float
        Pixels further than ``clip`` robust SDs from the plane are left out of the next fit (so
        particles do not tilt it).
    iterations : int
        Plane fits.
    stride : int
        The plane is fitted on every ``stride``-th row and column (a plane needs few pixels).

    Returns
    -------
    numpy.ndarray
        The levelled map (float64); the pixels kept by the plane fit (the matrix) have median 0.
    """
    z = np.asarray(z, dtype=np.float64)
    ny, nx = z.shape
    if ny > 1:
        step = _row_median(z[1:] - z[:-1])
        step = np.where(np.isfinite(step), step, 0.0)
        out = z - np.concatenate([[0.0], np.cumsum(step)])[:, None]
    else:
        out = z.copy()
    yy = (np.arange(ny, dtype=np.float64) - ny / 2)[:, None]
    xx = (np.arange(nx, dtype=np.float64) - nx / 2)[None, :]
    st = max(1, int(stride))
    sub = out[::st, ::st]
    sy = np.broadcast_to(yy[::st], sub.shape)
    sx = np.broadcast_to(xx[:, ::st], sub.shape)
    keep = np.isfinite(sub)
    coef = np.zeros(3)
    for _ in range(int(iterations)):
        if keep.sum() < 3:
            break
        a = np.stack([np.ones(int(keep.sum())), sx[keep], sy[keep]], 1)
        coef = np.linalg.lstsq(a, sub[keep], rcond=None)[0]
        res = sub - (coef[0] + coef[1] * sx + coef[2] * sy)
        finite = np.isfinite(res)
        centre = np.median(res[finite]) if finite.any() else 0.0
        mad = 1.4826 * np.median(np.abs(res[finite] - centre)) if finite.any() else 0.0
        new = finite & (np.abs(res - centre) <= clip * mad) if mad > 0 else finite
        if np.array_equal(new, keep):
            break
        keep = new
    out = out - (coef[0] + coef[1] * xx + coef[2] * yy)
    level = out[::st, ::st][keep]
    return out - (float(np.median(level)) if level.size else 0.0)


def highpass_noise_kernel(image: np.ndarray) -> float:
    """White-noise SD from second differences along the scan lines (x): ``1.4826 MAD / sqrt(6)``.

    Insensitive to line offsets and to smooth potentials; edges are few and the median ignores
    them. Noise correlated along the fast axis (a slow lock-in) comes out low.
    """
    v = np.asarray(image, dtype=np.float64)
    if v.shape[1] < 3:
        return float("nan")
    d2 = v[:, :-2] - 2 * v[:, 1:-1] + v[:, 2:]
    d2 = d2[np.isfinite(d2)]
    if d2.size == 0:
        return float("nan")
    return float(1.4826 * np.median(np.abs(d2 - np.median(d2))) / np.sqrt(6.0))


#: |z| of a standard normal exceeded with probability 2 % (the 98th percentile of |z|).
_Q98 = 2.3263


def _tail_sd(dev: np.ndarray, axis: int) -> np.ndarray:
    """Gaussian-equivalent SD from the 98th percentile of absolute deviations along ``axis``: a
    line is flat only when fewer than 2 % of its pixels stand out (a particle crossing it)."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.nanquantile(dev, 0.98, axis=axis) / _Q98


def _run_length(ok: np.ndarray) -> int:
    """Number of leading True values."""
    bad = np.flatnonzero(~ok)
    return int(bad[0]) if bad.size else int(ok.size)


def _edge_band(v: np.ndarray, noise: float, *, edge_lines: int, spread_factor: float,
               level_factor: float, max_lines: int) -> tuple[int, float]:
    """Width (lines) and mean spread of the flat band at the left edge of ``v`` (columns are the
    lines counted from the edge; the rows are the scan lines)."""
    ny, nx = v.shape
    m = max(1, min(edge_lines, nx))
    with np.errstate(all="ignore"):
        r = _row_median(v[:, :m])
        d = v[:, :max_lines] - r[:, None]
        c = _row_median(d.T)  # column level relative to the edge, per column
        spread = _tail_sd(np.abs(d - c[None, :]), axis=0)
    # a flat column is uniform along y (noise plus the median-of-m edge estimate) and at the
    # edge's level; the level tolerance allows the slow rise of a blurred neighbour's tail
    limit_spread = spread_factor * noise * np.sqrt(1.0 + 1.6 / m)
    ok = np.isfinite(spread) & (spread <= limit_spread) & (np.abs(c) <= level_factor * noise)
    width = _run_length(ok)
    return width, float(np.mean(spread[:width])) if width else float("inf")


def _row_band(v: np.ndarray, noise: float, *, spread_factor: float, max_lines: int) -> tuple[int, float]:
    """Width (rows from the top) and mean spread of a run of rows flat along x."""
    rows = v[:max_lines]
    with np.errstate(all="ignore"):
        spread = _tail_sd(np.abs(rows - _row_median(rows)[:, None]), axis=1)
    ok = np.isfinite(spread) & (spread <= spread_factor * noise)
    width = _run_length(ok)
    return width, float(np.mean(spread[:width])) if width else float("inf")


def find_reference_kernel(image: np.ndarray, *, noise: float | None = None, min_width_px: int = 3,
                          margin_px: int = 2, max_fraction: float = 0.45, spread_factor: float = 1.6,
                          level_factor: float = 5.0, edges: Sequence[str] = EDGES
                          ) -> tuple[tuple[int, int, int, int], dict[str, Any]]:
    """The flattest band along an image edge: the grounded current collector.

    Each edge is scanned inwards line by line. Along the left and right edges (bands that cross
    every scan line) the line offsets are first removed with the outermost three columns; a
    column belongs to the band while its spread along y stays within ``spread_factor`` times
    the noise and its level within ``level_factor`` times the noise of the edge's. Along the top
    and bottom edges a row belongs to the band while its spread along x stays within
    ``spread_factor`` times the noise. The band of the most pixels wins (left/right first on a
    tie: they remove every line's offset), and ``margin_px`` lines at its inner side are dropped
    (the blurred boundary).

    Parameters
    ----------
    image : numpy.ndarray (y, x)
        The potential as recorded (line offsets included).
    noise : float, optional
        White-noise SD (V); default :func:`highpass_noise_kernel`.
    min_width_px : int
        Narrowest band accepted (after the margin).
    margin_px : int
        Lines dropped at the band's inner side.
    max_fraction : float
        Widest band considered, as a fraction of the image.
    edges : sequence of str
        The edges searched (e.g. only the one the first frame's band lies along).

    Returns
    -------
    box : (y0, y1, x0, x1)
        Half-open pixel box of the band.
    info : dict
        ``edge``, ``width_px``, ``spread_V`` (mean spread of its lines), ``noise_V`` and the
        candidates of every edge.

    Raises
    ------
    InputError
        No edge has a flat band of ``min_width_px``: give the reference box.
    """
    v = np.asarray(image, dtype=np.float64)
    ny, nx = v.shape
    sigma = highpass_noise_kernel(v) if noise is None else float(noise)
    if not np.isfinite(sigma) or sigma <= 0:
        sigma = float(np.nanstd(v)) or 1.0
    views = {"left": v, "right": v[:, ::-1], "top": v, "bottom": v[::-1]}
    unknown = [e for e in edges if e not in EDGES]
    if unknown or not edges:
        raise ConfigError(f"edges must be some of {', '.join(EDGES)}, got {list(edges)!r}")
    found = {}
    for edge in edges:
        if edge in ("left", "right"):
            width, spread = _edge_band(views[edge], sigma, edge_lines=3, spread_factor=spread_factor,
                                       level_factor=level_factor, max_lines=max(1, int(max_fraction * nx)))
            length = ny
        else:
            width, spread = _row_band(views[edge], sigma, spread_factor=spread_factor,
                                      max_lines=max(1, int(max_fraction * ny)))
            length = nx
        width = max(0, width - int(margin_px))
        found[edge] = {"width_px": width, "spread_V": spread, "pixels": width * length}
    usable = [e for e in edges if found[e]["width_px"] >= min_width_px]
    if not usable:
        raise InputError(
            "no flat band along an image edge (the grounded current collector) was found for "
            f"--reference auto (noise {sigma * 1e3:.3g} mV; widest flat bands: "
            + ", ".join(f"{e} {found[e]['width_px']} px" for e in edges)
            + "); give the reference box Y0:Y1,X0:X1 of a region known to be equipotential")
    edge = max(usable, key=lambda e: (found[e]["pixels"], e in ("left", "right")))
    w = found[edge]["width_px"]
    box = {"left": (0, ny, 0, w), "right": (0, ny, nx - w, nx), "top": (0, w, 0, nx), "bottom": (ny - w, ny, 0, nx)}[edge]
    return box, {"edge": edge, "width_px": w, "spread_V": found[edge]["spread_V"], "noise_V": sigma,
                 "candidates": found}


def reference_kernel(image: np.ndarray, box: Sequence[int], *, line_offsets: bool = True
                     ) -> tuple[np.ndarray, np.ndarray]:
    """Remove the line offsets and the frame offset of a potential map with an equipotential box.

    Every row that crosses the box gets its median there subtracted (``line_offsets``), every
    other row the median of those (the frame offset); then the box's median is subtracted from
    the whole map, so that it is exactly 0.

    Parameters
    ----------
    image : numpy.ndarray (y, x)
        Potential (V), NaN allowed.
    box : (y0, y1, x0, x1)
        Half-open pixel box of the equipotential region (:func:`parse_box`).
    line_offsets : bool
        Remove the rows' offsets (else only the frame offset).

    Returns
    -------
    referenced : numpy.ndarray
        The map with the box's median 0.
    offsets : numpy.ndarray (y,)
        What was subtracted from each row (V); the rows outside the box got the frame offset only.
    """
    v = np.asarray(image, dtype=np.float64)
    y0, y1, x0, x1 = (int(b) for b in box)
    offsets = np.zeros(v.shape[0])
    if line_offsets:
        rows = _row_median(v[y0:y1, x0:x1])
        finite_rows = rows[np.isfinite(rows)]
        # rows that do not cross the box keep their own line offsets but lose the frame offset:
        # the median of the box rows' offsets (not 0 - that would leave the tip's contact
        # potential in every row outside a band along the top or bottom edge)
        frame = float(np.median(finite_rows)) if finite_rows.size else 0.0
        offsets[:] = frame
        offsets[y0:y1] = np.where(np.isfinite(rows), rows, frame)
    out = v - offsets[:, None]
    part = out[y0:y1, x0:x1]
    finite = part[np.isfinite(part)]
    if finite.size == 0:
        raise InputError(f"the reference box {y0}:{y1},{x0}:{x1} holds no finite pixels; give another region")
    level = float(np.median(finite))
    return out - level, offsets + level


def flat_noise_kernel(image: np.ndarray, box: Sequence[int]) -> float:
    """White-noise SD (units of the map) in a flat box: the residual of a two-way fit (a mean per
    row and per column), ``sqrt(sum r^2 / ((rows - 1)(columns - 1)))``.

    The row means take out line offsets, the column means a static profile across the band (the
    blurred tail of a neighbouring region), so only the white noise is left.
    """
    v = np.asarray(image, dtype=np.float64)
    y0, y1, x0, x1 = (int(b) for b in box)
    part = v[y0:y1, x0:x1]
    part = part[np.all(np.isfinite(part), axis=1)]
    h, w = part.shape
    if h < 2 or w < 2:
        return float("nan")
    r = part - part.mean(axis=1, keepdims=True) - part.mean(axis=0, keepdims=True) + part.mean()
    return float(np.sqrt(np.sum(r * r) / ((h - 1) * (w - 1))))


def trace_noise_kernel(forward: np.ndarray, backward: np.ndarray) -> float:
    """White-noise SD of one trace from the forward - backward difference: row medians removed
    (the traces' line offsets differ), ``1.4826 MAD / sqrt(2)``."""
    d = np.asarray(forward, dtype=np.float64) - np.asarray(backward, dtype=np.float64)
    if d.shape[1] < 2:
        return float("nan")
    d = d - _row_median(d)[:, None]
    d = d[:, ::2]  # half the pixels are plenty for a robust SD
    d = d[np.isfinite(d)]
    if d.size == 0:
        return float("nan")
    return float(1.4826 * np.median(np.abs(d - np.median(d))) / np.sqrt(2.0))


def edge_profile_kernel(image: np.ndarray, box: Sequence[int], edge: str, length_px: int
                        ) -> tuple[np.ndarray, np.ndarray]:
    """Mean profile across the inner side of a band along ``edge``: from the image edge through
    the band and ``length_px`` lines beyond it, averaged along the band.

    Returns
    -------
    distance : numpy.ndarray
        Lines from the image edge (px).
    profile : numpy.ndarray
        NaN-aware mean over the band's extent along the edge.
    """
    v = np.asarray(image, dtype=np.float64)
    y0, y1, x0, x1 = (int(b) for b in box)
    ny, nx = v.shape
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        if edge == "left":
            prof = np.nanmean(v[y0:y1, : min(nx, x1 + length_px)], axis=0)
        elif edge == "right":
            prof = np.nanmean(v[y0:y1, max(0, x0 - length_px):][:, ::-1], axis=0)
        elif edge == "top":
            prof = np.nanmean(v[: min(ny, y1 + length_px), x0:x1], axis=1)
        elif edge == "bottom":
            prof = np.nanmean(v[max(0, y0 - length_px):, x0:x1][::-1], axis=1)
        else:
            raise ConfigError(f"edge must be one of {', '.join(EDGES)}, got {edge!r}")
    return np.arange(prof.size, dtype=np.float64), prof


def step_width_kernel(position: np.ndarray, profile: np.ndarray, *, plateau_fraction: float = 0.1
                      ) -> dict[str, float]:
    """10-90 % width of a step in a profile.

    The two levels are the medians of the outer ``plateau_fraction`` of the points at either end;
    from the steepest point the profile is followed outwards to where it crosses 10 % and 90 %
    of the rise (linear interpolation between samples).

    Returns
    -------
    dict
        ``width`` (units of ``position``), ``x10``, ``x90``, ``low``, ``high``; NaN values when
        the profile has no step (levels equal) or does not cross both levels.
    """
    x = np.asarray(position, dtype=np.float64)
    p = np.asarray(profile, dtype=np.float64)
    ok = np.isfinite(p)
    x, p = x[ok], p[ok]
    nan = {"width": float("nan"), "x10": float("nan"), "x90": float("nan"), "low": float("nan"), "high": float("nan")}
    if p.size < 5:
        return nan
    k = max(1, int(round(plateau_fraction * p.size)))
    a, b = float(np.median(p[:k])), float(np.median(p[-k:]))
    if a == b:
        return nan
    f = (p - a) / (b - a)  # rises 0 -> 1 from start to end
    grad = np.gradient(f, x)
    m = int(np.argmax(grad))

    def crossing(level: float, step: int) -> float:
        i = m
        while 0 <= i + step < f.size:
            j = i + step
            if (f[j] - level) * (f[i] - level) <= 0 and f[j] != f[i]:
                return float(x[i] + (level - f[i]) * (x[j] - x[i]) / (f[j] - f[i]))
            i = j
        return float("nan")

    x10 = crossing(0.1, -1) if f[m] >= 0.1 else crossing(0.1, 1)
    x90 = crossing(0.9, 1) if f[m] <= 0.9 else crossing(0.9, -1)
    return {"width": abs(x90 - x10), "x10": x10, "x90": x90, "low": a, "high": b}
