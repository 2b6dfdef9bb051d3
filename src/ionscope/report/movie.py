"""Movies of map series: fast frame rendering and MP4 / animated WebP / GIF writers.

Frames are composed with numpy, not one matplotlib figure per frame: every map is colour-mapped
through a 256-entry lookup table and upscaled by pixel repetition in one vectorised step, the
static parts (panel titles, colour bar, scale bar, notes) are drawn once with Pillow, and only
the small header strip with the time, voltage and cycler state is drawn per frame. A
157-frame movie renders in well under a second.

Writers pick the container from the file name: ``.mp4`` (H.264, yuv420p, through imageio's
ffmpeg plugin, whose ffmpeg binary ships in the ``imageio-ffmpeg`` wheel), ``.webp``
(animated, plays as an ``<img>`` in every current browser) and ``.gif``. Every file is written
to a temporary name beside the target and renamed into place (:func:`ionscope.io.atomic_path`).

Example
-------
>>> import numpy as np
>>> stack = np.random.default_rng(0).random((3, 8, 10), dtype=np.float32)
>>> frames = render_map_frames([("Li", stack)], [FrameLabel(f"frame {i}") for i in range(3)],
...                            pixel_size=2.0, vmin=0, vmax=1)
>>> frames.shape[0], frames.dtype.name, frames.shape[1] % 16, frames.shape[2] % 16
(3, 'uint8', 0, 0)
"""

from __future__ import annotations

import io as _io
import math
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import matplotlib
import numpy as np
from PIL import Image, ImageDraw, ImageFont

from ionscope.errors import DimensionError, InputError
from ionscope.validation import Interval, validate_params

#: Colour per cycler state in movie badges (same as the figures).
STATE_COLORS: dict[str, str] = {"charge": "#e66100", "discharge": "#5d3a9b", "rest": "#6b7280"}

_BG = (255, 255, 255)
_HEADER_BG = (16, 42, 67)
_TEXT = (31, 41, 51)
_MUTED = (82, 96, 109)
_MOVIE_SUFFIXES = (".mp4", ".webp", ".gif")


@dataclass(frozen=True)
class FrameLabel:
    """What the header strip of one frame says: ``text`` on the left, a coloured ``badge``
    (e.g. the cycler state) on the right."""

    text: str
    badge: str = ""
    badge_color: str = "#6b7280"


# --------------------------------------------------------------------------- small helpers


@lru_cache(maxsize=16)
def _font(size: int, bold: bool = False) -> ImageFont.FreeTypeFont:
    name = "DejaVuSans-Bold.ttf" if bold else "DejaVuSans.ttf"
    path = Path(matplotlib.get_data_path()) / "fonts" / "ttf" / name
    try:
        return ImageFont.truetype(str(path), size)
    except OSError:  # pragma: no cover - matplotlib always ships DejaVu
        return ImageFont.load_default(size)


def _rgb(color: str) -> tuple[int, int, int]:
    r, g, b = matplotlib.colors.to_rgb(color)
    return int(round(r * 255)), int(round(g * 255)), int(round(b * 255))


def colormap_lut(cmap: str = "viridis", n: int = 256) -> np.ndarray:
    """An ``(n, 3)`` uint8 lookup table of the matplotlib colormap ``cmap``."""
    cm = matplotlib.colormaps[cmap].resampled(n)
    return (cm(np.arange(n))[:, :3] * 255 + 0.5).astype(np.uint8)


def apply_colormap(values: np.ndarray, vmin: float, vmax: float, cmap: str = "viridis") -> np.ndarray:
    """Colour-map an array of any shape to uint8 RGB (shape ``values.shape + (3,)``).

    Values are clipped to ``[vmin, vmax]``; NaNs map to the lowest colour.
    """
    lut = colormap_lut(cmap)
    span = float(vmax) - float(vmin)
    values = np.asarray(values)
    dtype = np.float64 if values.dtype == np.float64 else np.float32  # float32 unless it would overflow
    scaled = (values.astype(dtype, copy=False) - dtype(vmin)) * dtype((lut.shape[0] - 1) / (span if span > 0 else 1.0))
    idx = np.clip(np.nan_to_num(scaled, nan=0.0), 0, lut.shape[0] - 1).astype(np.uint8)
    return lut[idx]


def _nice_length(target: float) -> float:
    """The largest 1, 2 or 5 x 10^k not above ``target`` (for scale bars)."""
    if target <= 0 or not math.isfinite(target):
        return 1.0
    k = math.floor(math.log10(target))
    for m in (5, 2, 1):
        if m * 10**k <= target:
            return float(m * 10**k)
    return float(10**k)


def _fmt_tick(v: float) -> str:
    return f"{v:.3g}"


def _text_size(draw: ImageDraw.ImageDraw, text: str, font) -> tuple[int, int]:
    left, top, right, bottom = draw.textbbox((0, 0), text, font=font)
    return right - left, bottom - top


def _fit_text(draw: ImageDraw.ImageDraw, text: str, font, max_width: int) -> str:
    """``text``, shortened with an ellipsis if it is wider than ``max_width`` pixels."""
    if _text_size(draw, text, font)[0] <= max_width:
        return text
    while text and _text_size(draw, text + "…", font)[0] > max_width:
        text = text[:-1]
    return text.rstrip() + "…"


def _round16(n: int) -> int:
    return int(math.ceil(n / 16.0) * 16)


# --------------------------------------------------------------------------- rendering


def render_map_frames(
    panels: Sequence[tuple[str, np.ndarray]],
    labels: Sequence[FrameLabel],
    *,
    pixel_size: float | tuple[float, float] = 1.0,
    unit: str = "nm",
    vmin: float,
    vmax: float,
    cmap: str = "viridis",
    colorbar_label: str = "",
    footer_note: str = "",
    panel_width: int = 256,
    progress: Callable[[int, int], None] | None = None,
) -> np.ndarray:
    """Compose movie frames: side-by-side colour-mapped map panels under a header strip.

    Parameters
    ----------
    panels : sequence of (title, array)
        Each array has shape ``(time, y, x)``; all share that shape. Row 0 is drawn at the top.
    labels : sequence of FrameLabel
        One per frame: header text and state badge.
    pixel_size : float or (dy, dx)
        Physical pixel size in ``unit`` (for the scale bar and the pixel aspect).
    vmin, vmax : float
        Colour range shared by all panels and frames.
    cmap : str
        Matplotlib colormap name.
    colorbar_label : str
        Text beside the colour bar (e.g. ``"Li fraction x"``).
    footer_note : str
        One line under the maps (e.g. which edge touches the electrolyte).
    panel_width : int
        Approximate width of each map panel in pixels (maps are upscaled by an integer factor).
    progress : callable, optional
        ``progress(done, total)`` as frames are drawn.

    Returns
    -------
    numpy.ndarray
        uint8 RGB frames, shape ``(time, height, width, 3)``; height and width are multiples
        of 16 (what H.264 encoders want).
    """
    if not panels:
        raise InputError("render_map_frames needs at least one (title, array) panel")
    stacks = [np.asarray(a) for _, a in panels]
    shape = stacks[0].shape
    if len(shape) != 3 or any(s.shape != shape for s in stacks):
        raise DimensionError(
            f"every panel must be a (time, y, x) array of the same shape, got {[s.shape for s in stacks]}"
        )
    nt, ny, nx = shape
    if len(labels) != nt:
        raise InputError(f"got {len(labels)} frame labels for {nt} frames; give one per frame")
    dy, dx = (pixel_size, pixel_size) if np.ndim(pixel_size) == 0 else pixel_size
    dy, dx = float(dy), float(dx)
    sx = max(1, int(round(panel_width / nx)))
    sy = max(1, int(round(sx * dy / dx))) if dx > 0 else sx
    pw, ph = nx * sx, ny * sy

    f_head, f_badge = _font(17, True), _font(14, True)
    f_title, f_small = _font(14, True), _font(12)
    margin, gap, head_h, title_h = 16, 14, 40, 24
    cbar_w, cbar_label_w = 14, 110
    foot_h = 34
    width = _round16(margin + len(panels) * pw + (len(panels) - 1) * gap + 16 + cbar_w + cbar_label_w)
    height = _round16(head_h + 8 + title_h + ph + foot_h)

    # ---- static background, drawn once
    bg = Image.new("RGB", (width, height), _BG)
    draw = ImageDraw.Draw(bg)
    draw.rectangle([0, 0, width, head_h], fill=_HEADER_BG)
    top = head_h + 8 + title_h
    x_slots = [margin + i * (pw + gap) for i in range(len(panels))]
    for (title, _), x0 in zip(panels, x_slots):
        draw.text((x0, head_h + 8 + 2), _fit_text(draw, title, f_title, pw), font=f_title, fill=_TEXT)
        draw.rectangle([x0 - 1, top - 1, x0 + pw, top + ph], outline=(190, 198, 207))
    # colour bar
    cb_x = x_slots[-1] + pw + 16
    grad = apply_colormap(np.linspace(vmax, vmin, ph)[:, None].repeat(cbar_w, 1), vmin, vmax, cmap)
    bg.paste(Image.fromarray(grad), (cb_x, top))
    draw.rectangle([cb_x - 1, top - 1, cb_x + cbar_w, top + ph], outline=(190, 198, 207))
    for frac in (0.0, 0.5, 1.0):
        v = vmin + frac * (vmax - vmin)
        yy = int(round(top + (1 - frac) * (ph - 1)))
        draw.line([cb_x + cbar_w, yy, cb_x + cbar_w + 4, yy], fill=_TEXT)
        _, th = _text_size(draw, "0", f_small)
        draw.text((cb_x + cbar_w + 7, min(max(yy - th // 2 - 2, top - 4), top + ph - th - 2)), _fmt_tick(v),
                  font=f_small, fill=_TEXT)
    if colorbar_label:
        colorbar_label = _fit_text(draw, colorbar_label, f_small, ph)
        lab = Image.new("RGBA", (ph, 18), (255, 255, 255, 0))
        ImageDraw.Draw(lab).text((0, 1), colorbar_label, font=f_small, fill=_TEXT)
        tw, _ = _text_size(draw, colorbar_label, f_small)
        lab = lab.crop((0, 0, min(ph, tw + 2), 18)).rotate(90, expand=True)
        bg.paste(lab, (cb_x + cbar_w + 44, top + (ph - lab.size[1]) // 2), lab)
    # scale bar under the first panel
    length = _nice_length(0.3 * nx * dx)
    bar_px = max(1, int(round(length / dx * sx)))
    by = top + ph + 12
    draw.rectangle([x_slots[0], by, x_slots[0] + bar_px, by + 4], fill=_TEXT)
    draw.text((x_slots[0] + bar_px + 8, by - 5), f"{length:g} {unit}", font=f_small, fill=_TEXT)
    if footer_note:
        tw, _ = _text_size(draw, footer_note, f_small)
        fx = max(x_slots[0] + bar_px + 80, x_slots[-1] + pw - tw)
        draw.text((fx, by - 5), footer_note, font=f_small, fill=_MUTED)
    base = np.asarray(bg)

    # ---- maps: colour-map and upscale every frame of every panel at once
    frames = np.empty((nt, height, width, 3), dtype=np.uint8)
    frames[:] = base
    for stack, x0 in zip(stacks, x_slots):
        rgb = apply_colormap(stack, vmin, vmax, cmap)
        rgb = np.repeat(np.repeat(rgb, sy, axis=1), sx, axis=2)
        frames[:, top : top + ph, x0 : x0 + pw] = rgb

    # ---- header strip per frame
    head_bg = Image.new("RGB", (width, head_h), _HEADER_BG)
    for i, lab in enumerate(labels):
        strip = head_bg.copy()
        d = ImageDraw.Draw(strip)
        _, th = _text_size(d, "Tg", f_head)
        d.text((margin, (head_h - th) // 2 - 3), lab.text, font=f_head, fill=(240, 244, 248))
        if lab.badge:
            tw, bh = _text_size(d, lab.badge.upper(), f_badge)
            bx1 = width - margin
            bx0 = bx1 - tw - 22
            d.rounded_rectangle([bx0, 8, bx1, head_h - 8], radius=11, fill=_rgb(lab.badge_color))
            d.text((bx0 + 11, (head_h - bh) // 2 - 3), lab.badge.upper(), font=f_badge, fill=(255, 255, 255))
        frames[i, :head_h] = np.asarray(strip)
        if progress is not None and (i % 8 == 7 or i == nt - 1):
            progress(i + 1, nt)
    return frames


# --------------------------------------------------------------------------- writers


def _check_frames(frames: np.ndarray) -> np.ndarray:
    frames = np.asarray(frames)
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8 or frames.shape[0] == 0:
        raise InputError(
            f"movie frames must be a non-empty (time, height, width, 3) uint8 array, got "
            f"{frames.dtype} of shape {frames.shape}"
        )
    return frames


def write_mp4(frames: np.ndarray, path: str | os.PathLike, *, fps: float = 10.0, crf: int = 23,
              overwrite: bool = False) -> Path:
    """Write frames as an H.264 MP4 (yuv420p, ``+faststart``) with imageio's ffmpeg plugin.

    ``crf`` is x264's constant rate factor (lower is better quality; 18-23 is visually good).
    Frame sizes should be multiples of 16 (:func:`render_map_frames` makes them so); others
    are padded by imageio.
    """
    import imageio.v2 as iio

    from ionscope import io

    frames = _check_frames(frames)
    with io.atomic_path(path, overwrite=overwrite) as tmp:
        writer = iio.get_writer(
            tmp, format="FFMPEG", mode="I", fps=float(fps), codec="libx264", pixelformat="yuv420p",
            quality=None, macro_block_size=16, ffmpeg_log_level="error",
            output_params=["-crf", str(int(crf)), "-preset", "veryfast", "-movflags", "+faststart"],
        )
        try:
            for frame in frames:
                writer.append_data(frame)
        finally:
            writer.close()
    return Path(path)


def encode_webp(frames: np.ndarray, *, fps: float = 10.0, quality: int = 75) -> bytes:
    """Encode frames as an animated, looping WebP (lossy ``quality`` 0-100); returns bytes."""
    frames = _check_frames(frames)
    images = [Image.fromarray(f) for f in frames]
    buf = _io.BytesIO()
    images[0].save(buf, format="WEBP", save_all=True, append_images=images[1:], loop=0,
                   duration=max(1, int(round(1000.0 / fps))), quality=int(quality), method=0)
    return buf.getvalue()


def encode_gif(frames: np.ndarray, *, fps: float = 10.0) -> bytes:
    """Encode frames as a looping GIF with one palette shared by all frames; returns bytes."""
    frames = _check_frames(frames)
    step = max(1, frames.shape[0] // 8)
    sample = Image.fromarray(np.concatenate(list(frames[::step]), axis=0))
    palette = sample.quantize(colors=255, method=Image.Quantize.MEDIANCUT)
    images = [Image.fromarray(f).quantize(palette=palette, dither=Image.Dither.NONE) for f in frames]
    buf = _io.BytesIO()
    images[0].save(buf, format="GIF", save_all=True, append_images=images[1:], loop=0,
                   duration=max(20, int(round(1000.0 / fps))), optimize=False, disposal=1)
    return buf.getvalue()


def write_movie(frames: np.ndarray, path: str | os.PathLike, *, fps: float = 10.0,
                overwrite: bool = False) -> Path:
    """Write frames to ``path``; the format follows the suffix (.mp4, .webp or .gif)."""
    from ionscope import io

    path = Path(path)
    suffix = path.suffix.lower()
    if suffix == ".mp4":
        return write_mp4(frames, path, fps=fps, overwrite=overwrite)
    if suffix == ".webp":
        return io.write_bytes(path, encode_webp(frames, fps=fps), overwrite=overwrite)
    if suffix == ".gif":
        return io.write_bytes(path, encode_gif(frames, fps=fps), overwrite=overwrite)
    raise InputError(f"{path}: movies are written as {', '.join(_MOVIE_SUFFIXES)}; change the file name")


# --------------------------------------------------------------------------- labelled data


def _time_label(t: float, unit: str, total: float, *, minutes: bool = False) -> str:
    if unit == "s" and minutes:
        return f"t = {t / 60:.1f} min"
    if unit == "s":
        if total >= 7200:
            return f"t = {t / 3600:.2f} h"
        if total >= 120:
            return f"t = {t / 60:.1f} min"
        return f"t = {t:.1f} s"
    return f"t = {t:.4g} {unit}"


def _pixel_size(obj, dim: str) -> float:
    values = np.asarray(obj[dim].values, dtype=float)
    return float(values[1] - values[0]) if values.size > 1 else 1.0


def operando_frames(
    ds,
    *,
    panels: Sequence[tuple[str, str]] = (("li_fraction", "observed"), ("li_fraction_true", "ground truth")),
    vmin: float = 0.0,
    vmax: float = 1.0,
    cmap: str = "viridis",
    colorbar_label: str = "Li fraction x",
    footer_note: str = "top edge: solid electrolyte   bottom edge: current collector",
    panel_width: int = 256,
    progress: Callable[[int, int], None] | None = None,
) -> np.ndarray:
    """Movie frames of an operando map series with time (min), cell voltage (V) and state.

    ``ds`` follows the LiCoO2 twin's schema: ``(time, y, x)`` map variables named in
    ``panels``, ``voltage`` and ``state`` (CF flags) on ``time``, ``x``/``y`` in nm.
    """
    from ionscope.report.figures import state_names

    panels = [(var, title) for var, title in panels if var in ds]
    if not panels:
        raise InputError("none of the requested map variables is in the dataset")
    t = np.asarray(ds["time"].values, dtype=float)
    unit = str(ds["time"].attrs.get("units", "s"))
    total = float(t.max() - t.min()) if t.size else 0.0
    names = state_names(ds["state"]) if "state" in ds else {}
    volt = np.asarray(ds["voltage"].values, dtype=float) if "voltage" in ds else None
    vunit = str(ds["voltage"].attrs.get("units", "V")) if volt is not None else ""
    labels = []
    for i in range(t.size):
        text = _time_label(t[i], unit, total, minutes=True)
        if volt is not None:
            text += f"     {volt[i]:.3f} {vunit}"
        text += f"     frame {i + 1}/{t.size}"
        state = names.get(int(ds["state"].values[i]), "") if "state" in ds else ""
        labels.append(FrameLabel(text, state, STATE_COLORS.get(state, "#6b7280")))
    return render_map_frames(
        [(title, np.asarray(ds[var].values)) for var, title in panels], labels,
        pixel_size=(_pixel_size(ds, "y"), _pixel_size(ds, "x")),
        unit=str(ds["x"].attrs.get("units", "nm")), vmin=vmin, vmax=vmax, cmap=cmap,
        colorbar_label=colorbar_label, footer_note=footer_note, panel_width=panel_width,
        progress=progress,
    )


@validate_params({
    "fps": [Interval(float, 0, 120, closed="right", unit="frames per second")],
    "vmin": [Interval(float, None, None), None],
    "vmax": [Interval(float, None, None), None],
    "overwrite": [bool],
})
def map_series_movie(
    da,
    out_path: str | os.PathLike,
    *,
    fps: float = 10.0,
    vmin: float | None = None,
    vmax: float | None = None,
    cmap: str = "viridis",
    overwrite: bool = False,
    progress: Callable[[int, int], None] | None = None,
) -> Path:
    """Render a ``(time, y, x)`` DataArray as a movie with the time and a scale bar on every frame.

    Parameters
    ----------
    da : xarray.DataArray
        Map series; ``time``, ``y`` and ``x`` coordinates carry their units.
    out_path : path-like
        ``.mp4``, ``.webp`` or ``.gif``.
    fps : float
        Frames per second.
    vmin, vmax : float, optional
        Colour range; default the 1st and 99th percentiles of the data.
    overwrite : bool
        Replace an existing file.
    progress : callable, optional
        ``progress(done, total)``.
    """
    from ionscope.data import axis_calibration, require_dims, require_finite, require_nonempty

    out_path = Path(out_path)
    if out_path.suffix.lower() not in _MOVIE_SUFFIXES:
        raise InputError(f"{out_path}: movies are written as {', '.join(_MOVIE_SUFFIXES)}; change the file name")
    require_dims(da, ("time", "y", "x"), what="a map-series movie")
    da = da.transpose("time", "y", "x")
    require_nonempty(da, "the map series")
    _, dy, _ = axis_calibration(da, "y")
    _, dx, xunit = axis_calibration(da, "x")
    require_finite(da, "the map series")
    values = np.asarray(da.values, dtype=np.float64)
    finite = values[np.isfinite(values)]
    if not finite.size or np.abs(finite).max() < 0.1 * np.finfo(np.float32).max:
        values = values.astype(np.float32)  # half the memory; float64 only where float32 would overflow
    lo = float(np.percentile(finite, 1)) if vmin is None and finite.size else (vmin if vmin is not None else 0.0)
    hi = float(np.percentile(finite, 99)) if vmax is None and finite.size else (vmax if vmax is not None else 1.0)
    if hi <= lo:
        hi = lo + 1.0
    t = np.asarray(da["time"].values, dtype=float)
    unit = str(da["time"].attrs.get("units", "s"))
    total = float(t.max() - t.min())
    labels = [FrameLabel(f"{_time_label(t[i], unit, total)}     frame {i + 1}/{t.size}") for i in range(t.size)]
    name = str(da.name or da.attrs.get("long_name") or "value")
    title = str(da.attrs.get("long_name") or name)
    units = str(da.attrs.get("units", ""))
    frames = render_map_frames(
        [(title, values)], labels, pixel_size=(abs(dy), abs(dx)), unit=xunit, vmin=lo, vmax=hi, cmap=cmap,
        colorbar_label=f"{name} ({units})" if units not in ("", "1") else name, progress=progress,
    )
    return write_movie(frames, out_path, fps=fps, overwrite=overwrite)


__all__ = [
    "STATE_COLORS",
    "FrameLabel",
    "colormap_lut",
    "apply_colormap",
    "render_map_frames",
    "operando_frames",
    "write_mp4",
    "encode_webp",
    "encode_gif",
    "write_movie",
    "map_series_movie",
]
