"""Bruker (Veeco, Digital Instruments) NanoScope files (.spm), in pure numpy.

The format: a text header of ``\\*Section`` lines and ``\\Key: value`` lines up to
``\\*File list end``; one ``\\*Ciao image list`` section per image gives its ``Data offset``,
``Data length``, ``Bytes/pixel``, ``Samps/line``, ``Number of lines``, ``Scan Size``,
``Frame direction``, ``Line Direction`` (Trace or Retrace), the channel (``@2:Image Data: S
[ZSensor] "Height Sensor"``) and its scale (``@2:Z scale: V [Sens. ZsensSens] (5.72e-09 V/LSB)
24.576 V``). The data are little-endian integers.

Values: ``integer x hard scale (V/LSB) x sensitivity`` (the ``@Sens. ZsensSens: V 57.39 nm/V``
line of the scanner or scan list), so the unit is the sensitivity's numerator (nm) when its
denominator is the hard scale's unit, and the hard scale's unit (V, Arb) when there is no
sensitivity unit. Where ``Bytes/pixel`` disagrees with ``Data length`` (files written by NanoScope
9 keep 4-byte data for images whose header says 2), the data length decides, as in Gwyddion.

Orientation (measured against Gwyddion's own NanoScope module, run through gwyddionpy): the file
stores the bottom row first whatever the ``Frame direction``, and Gwyddion flips every image
vertically (pySPM returns the stored order, upside down); Retrace images are stored left to right
already, so nothing is mirrored. ``Frame direction: Up`` records the bottom row first, ``Down``
the top row.

Times: ``\\Date`` (frame start, local time as recorded) and ``\\Scan Rate`` (lines per second, trace
plus retrace). ``\\Rotate Ang.`` is kept as ``scan_angle_deg`` as written (NanoScope shows the
scan angle in degrees).
"""

from __future__ import annotations

import datetime as _dt
import re
from pathlib import Path
from typing import Any

import numpy as np

from ionscope.errors import FormatError
from ionscope.io._spm import ScanFrame, ScanImage, split_prefix, truncated

FORMAT = "Bruker SPM"
_MAGIC = (b"\\*File list", b"?*File list")
_END = b"\\*File list end"
_IMAGE_SECTIONS = ("Ciao image list", "AFM image list", "NCAFM image list")
_VALUE = re.compile(r"^(?P<type>[VCS])\s+(?:\[(?P<soft>[^\]]*)\]\s*)?(?:\((?P<hs>[-+0-9.eE]+)\s*(?P<hsu>[^()]*(?:\([^()]*\)[^()]*)*)\)\s*)?"
                    r"(?P<rest>.*)$")
_NUMBER = re.compile(r"^\s*(?P<value>[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)\s*(?P<unit>.*?)\s*$")


def parse_header(text: str) -> list[tuple[str, dict[str, str]]]:
    """The header's sections in file order, each ``(name, {key: value})``."""
    sections: list[tuple[str, dict[str, str]]] = []
    for line in text.splitlines():
        if line.startswith("\\*"):
            sections.append((line[2:].strip(), {}))
        elif line.startswith("\\") and sections:
            key, sep, value = line[1:].partition(": ")
            if not sep:
                key, _, value = line[1:].partition(":")
            sections[-1][1].setdefault(key.strip(), value.strip())
    return sections


def _number(text: str | None) -> tuple[float, str] | None:
    match = _NUMBER.match(text or "")
    return (float(match["value"]), match["unit"]) if match else None


def _scale(value: str, sensitivities: dict[str, str], bpp: int) -> tuple[float, str]:
    """Factor from stored integers to physical values, and the unit (``@2:Z scale`` and its
    sensitivity)."""
    match = _VALUE.match(value)
    if not match:
        raise ValueError(f"unreadable Z scale {value!r}")
    hard = _number(match["rest"])
    if match["hs"] is not None:
        per_lsb = float(match["hs"])
        numerator = (match["hsu"] or "V/LSB").split("/")[0]
    elif hard is not None:  # no hard scale: the hard value spans the integer range
        per_lsb, numerator = hard[0] / 2 ** (8 * bpp), hard[1]
    else:
        raise ValueError(f"unreadable Z scale {value!r}")
    base, prefix = split_prefix(numerator or "V")
    factor = per_lsb * prefix
    soft = (match["soft"] or "").strip()
    sens = _VALUE.match(sensitivities.get(f"@{soft}", "")) if soft else None
    sens_value = _number(sens["rest"]) if sens else None
    if sens_value is None:
        return factor, base
    value_, unit = sens_value
    if "/" in unit:
        top, bottom = unit.split("/", 1)
        bottom_base, bottom_prefix = split_prefix(bottom)
        if bottom_base == base:
            top_base, top_prefix = split_prefix(top)
            return factor * value_ * top_prefix / bottom_prefix, top_base
    if not unit:  # a sensitivity without a unit (1.0 V/V or a gain)
        return factor * value_, base
    return factor * value_, f"{unit}*{base}"


def start_time_of(date: str | None) -> str | None:
    """``"03:40:34 PM Thu Mar 09 2017"`` -> ``"2017-03-09T15:40:34"`` (None if unreadable)."""
    if not date:
        return None
    for pattern in ("%I:%M:%S %p %a %b %d %Y", "%H:%M:%S %a %b %d %Y", "%I:%M:%S %p %a %d %b %Y"):
        try:
            return _dt.datetime.strptime(date.strip(), pattern).isoformat()
        except ValueError:
            continue
    return None


def read_bruker_spm(path: Path) -> ScanFrame:
    """Read a Bruker NanoScope .spm file into a :class:`~ionscope.io._spm.ScanFrame`."""
    raw = Path(path).read_bytes()
    if not raw.startswith(_MAGIC):
        raise FormatError(f"{path}: not a {FORMAT} file (no \\*File list header); is it another kind of file "
                          "with an .spm name?")
    end = raw.find(_END)
    if end < 0:
        raise FormatError(f"{path}: the {FORMAT} header has no \\*File list end; the file is truncated or corrupt")
    sections = parse_header(raw[:end].decode("latin-1"))
    general: dict[str, str] = {}
    for name, entries in sections:
        if name not in _IMAGE_SECTIONS:
            for key, value in entries.items():
                general.setdefault(key, value)
    images, frame_dirs, ranges = [], [], []
    for name, entries in sections:
        if name not in _IMAGE_SECTIONS:
            continue
        try:
            images.append(_image(path, raw, entries, general))
            ranges.append(_scan_size(entries.get("Scan Size") or general.get("Scan Size", "")))
        except FormatError:
            raise
        except (KeyError, ValueError) as exc:
            raise FormatError(f"{path}: a {FORMAT} image header is incomplete or unreadable ({exc}); "
                              "the file is truncated or corrupt") from None
        frame_dirs.append(entries.get("Frame direction", general.get("Capture direction", "")).strip().lower())
    if not images:
        raise FormatError(f"{path}: the {FORMAT} file holds no image (no \\*Ciao image list)")
    ny, nx = images[0].data.shape
    size_x, size_y = ranges[0]
    if size_y is None:  # one number: square pixels
        size_y = size_x * ny / nx
    scan_dir = frame_dirs[0] if frame_dirs[0] in ("up", "down") and len(set(frame_dirs)) == 1 else None
    rate = _number(general.get("Scan Rate") or general.get("Scan rate"))
    line_time = 1.0 / rate[0] if rate and rate[0] > 0 else None
    angle = _number(general.get("Rotate Ang."))
    extra: dict[str, Any] = {}
    offsets = [_number(general.get(k)) for k in ("Y Offset", "X Offset")]
    if all(offsets):
        extra["scan_offset_nm"] = [_length_nm(*offsets[0]), _length_nm(*offsets[1])]
    return ScanFrame(
        images=images,
        range_nm=(size_y, size_x),
        scan_direction=scan_dir,
        line_time_s=line_time,
        start_time=start_time_of(general.get("Date")),
        scan_angle_deg=angle[0] if angle else None,
        acquisition_time_s=ny * line_time if line_time else None,
        extra=extra,
    )


def _length_nm(value: float, unit: str) -> float:
    base, factor = split_prefix(unit or "nm")
    if base != "m":
        raise ValueError(f"a length in {unit!r}")
    return value * factor * 1e9


def _scan_size(text: str) -> tuple[float, float | None]:
    """``"505.859 505.859 nm"`` -> (x, y) in nm; ``"505.859 nm"`` -> (x, None)."""
    parts = text.split()
    numbers = []
    for part in parts:
        try:
            numbers.append(float(part))
        except ValueError:
            break
    unit = " ".join(parts[len(numbers):]) or "nm"
    if not numbers:
        raise ValueError(f"unreadable Scan Size {text!r}")
    x = _length_nm(numbers[0], unit)
    return x, (_length_nm(numbers[1], unit) if len(numbers) > 1 else None)


def _image(path: Path, raw: bytes, entries: dict[str, str], general: dict[str, str]) -> ScanImage:
    nx, ny = int(float(entries["Samps/line"])), int(float(entries["Number of lines"]))
    offset, length = int(float(entries["Data offset"])), int(float(entries["Data length"]))
    bpp = int(float(entries.get("Bytes/pixel", "2")))
    if nx <= 0 or ny <= 0:
        raise ValueError(f"{nx} x {ny} pixels")
    if length == 4 * nx * ny or length == 2 * nx * ny:
        bpp = length // (nx * ny)
    if bpp not in (2, 4):
        raise ValueError(f"{bpp} bytes per pixel")
    if offset + nx * ny * bpp > len(raw):
        raise truncated(path, FORMAT, offset + nx * ny * bpp, len(raw))
    stored = np.frombuffer(raw, dtype=f"<i{bpp}", count=nx * ny, offset=offset).reshape(ny, nx)
    scale = entries.get("@2:Z scale") or entries.get("Z scale")
    if scale is None:
        raise KeyError("@2:Z scale")
    factor, unit = _scale(scale, general, bpp)
    label = entries.get("@2:Image Data") or entries.get("Image data") or "Image"
    quoted = re.search(r'"([^"]*)"', label)
    soft = _VALUE.match(label)
    channel = (quoted[1] if quoted and quoted[1].strip() else (soft["soft"] if soft and soft["soft"] else label)).strip()
    direction = "backward" if entries.get("Line Direction", "").strip().lower() == "retrace" else "forward"
    data = (stored[::-1] * factor).astype(np.float32)  # bottom row stored first: row 0 at the top
    return ScanImage(channel, direction, data, unit)
