"""Asylum Research (Oxford Instruments) images: Igor binary waves (.ibw), through ``igor2``.

An Asylum image is one Igor wave of shape (points, lines, layers): one layer per channel and
direction, named by the wave's dimension labels (``HeightTrace``, ``UserIn0Retrace``), with the
scan parameters as ``Key: value`` lines in the wave note (``FastScanSize``/``SlowScanSize`` in m,
``ScanRate`` in lines per second, ``ScanDown``, ``ScanAngle``, ``Date``/``Time``, ``UserIn0Unit``).

The wave stores no data units: lengths (Height, ZSensor, Amplitude, Deflection) are in m, Phase
in deg, the user inputs (UserIn0-2, Lateral) in the unit the note gives (``UserIn0Unit: V``;
volts when it gives none: SurfaceTopography's reading of them as metres is wrong), Current in A,
Frequency in Hz, Potential and Bias in V.

Labels are read from the file itself (32-byte NUL-terminated fields): igor2 keeps the bytes that
follow a label's NUL, so it returns the first layer of AFMReader's sample as ``HeightTracee``.

Orientation (measured against Gwyddion's own Igor module, run through gwyddionpy): a layer's first
axis is x and its first line the bottom row, so the image shown by Gwyddion is the layer transposed
and flipped vertically; retrace layers are stored left to right already.

Times: the note's ``Date``/``Time`` are when the frame was saved, at its end (they equal the wave's
modification time), so the frame start is that minus ``ScanLines / ScanRate``; it is written as
``start_time`` and the saving time as ``end_time``.
"""

from __future__ import annotations

import datetime as _dt
import logging
import re
from pathlib import Path
from typing import Any

import numpy as np

from ionscope.errors import FormatError
from ionscope.io._spm import ScanFrame, ScanImage

FORMAT = "Asylum IBW"
_LENGTH_CHANNELS = ("Height", "ZSensor", "Amplitude", "Deflection", "Zsensor", "Topography", "Lateral Height")
_UNITS = {"Phase": "deg", "Current": "A", "Frequency": "Hz", "Potential": "V", "Bias": "V", "Voltage": "V",
          "Drive": "V", "InputI": "V", "InputQ": "V"}


def parse_note(note: bytes) -> dict[str, bytes]:
    """The ``Key: value`` lines of an Asylum wave note (values as bytes: the date is in the
    instrument computer's locale)."""
    entries: dict[str, bytes] = {}
    for line in re.split(rb"[\r\n]+", note):
        key, sep, value = line.partition(b":")
        if sep and key.strip():
            entries.setdefault(key.strip().decode("latin-1"), value.strip())
    return entries


def _float(entries: dict[str, bytes], key: str) -> float | None:
    try:
        value = float(entries[key])
    except (KeyError, ValueError):
        return None
    return value if np.isfinite(value) else None


def _date(text: bytes) -> _dt.date | None:
    """The note's date in the forms Igor writes: ``2019-08-20``, ``2019年8月20日`` (numbers in
    year-month-day order), ``8/20/2019`` (US) or with month names."""
    digits = re.findall(rb"\d+", text)
    try:
        if len(digits) >= 3 and len(digits[0]) == 4:
            return _dt.date(int(digits[0]), int(digits[1]), int(digits[2]))
        if len(digits) == 3 and len(digits[2]) == 4 and b"/" in text:
            return _dt.date(int(digits[2]), int(digits[0]), int(digits[1]))
    except ValueError:
        return None
    plain = text.decode("latin-1").strip()
    for pattern in ("%a, %b %d, %Y", "%A, %B %d, %Y", "%b %d, %Y", "%B %d, %Y", "%d %b %Y", "%d %B %Y"):
        try:
            return _dt.datetime.strptime(plain, pattern).date()
        except ValueError:
            continue
    return None


def frame_times(entries: dict[str, bytes], acquisition_s: float | None) -> tuple[str | None, str | None]:
    """(start, end) of the frame, ISO 8601: the note's ``Date``/``Time`` is when it was saved, at
    its end; the start is ``acquisition_s`` (rounded to the second of the clock) earlier."""
    day = _date(entries.get("Date", b""))
    try:
        clock = _dt.time.fromisoformat(entries.get("Time", b"").decode("latin-1").strip())
    except ValueError:
        return None, None
    if day is None:
        return None, None
    saved = _dt.datetime.combine(day, clock)
    start = saved - _dt.timedelta(seconds=round(acquisition_s)) if acquisition_s is not None else None
    return (start.isoformat() if start else None), saved.isoformat()


def _labels(raw: bytes, header: dict, layer_dim: int = 2) -> list[str]:
    """The dimension labels of one dimension, cut at each field's NUL (index 0 labels the
    dimension itself)."""
    sizes = [int(s) for s in header.get("dimLabelsSize", [0, 0, 0, 0])]
    start = (64 + int(header["wfmSize"]) + int(header.get("formulaSize", 0)) + int(header.get("noteSize", 0))
             + int(header.get("dataEUnitsSize", 0)) + sum(int(s) for s in header.get("dimEUnitsSize", [0] * 4))
             + sum(sizes[:layer_dim]))
    block = raw[start:start + sizes[layer_dim]]
    return [block[i:i + 32].split(b"\0", 1)[0].decode("latin-1").strip() for i in range(0, len(block), 32)]


def _channel_units(channel: str, entries: dict[str, bytes]) -> str:
    name = channel[3:] if channel.startswith("Nap") and len(channel) > 3 else channel
    for key in (f"{name}Unit", f"{channel}Unit"):
        if key in entries and entries[key].strip():
            unit = entries[key].decode("latin-1").strip()
            return "deg" if unit in ("°", "\xb0") else unit
    if re.match(r"UserIn\d|Lateral$", name):
        return "V"
    if name.startswith(_LENGTH_CHANNELS):
        return "m"
    for prefix, unit in _UNITS.items():
        if name.startswith(prefix):
            return unit
    return "a.u."


def read_ibw(path: Path) -> ScanFrame:
    """Read an Asylum Research .ibw image into a :class:`~ionscope.io._spm.ScanFrame`."""
    from igor2 import binarywave

    raw = Path(path).read_bytes()
    quiet = logging.getLogger("igor2")
    level = quiet.level
    quiet.setLevel(logging.CRITICAL + 1)  # igor2 logs a cut file's whole data block as text before it fails
    try:
        wave = binarywave.load(str(path))["wave"]
        data = np.asarray(wave["wData"])
        header = wave["bin_header"]
    except Exception as exc:  # igor2 fails in many ways on foreign or cut bytes
        text = str(exc).strip().splitlines()
        raise FormatError(f"{path}: not a readable {FORMAT} file ({type(exc).__name__}: {text[0][:120] if text else ''}); "
                          "the file may be truncated, corrupt or not an Igor binary wave") from None
    finally:
        quiet.setLevel(level)
    if data.ndim == 2:
        data = data[:, :, None]
    if data.ndim != 3 or min(data.shape) == 0 or data.dtype.kind not in "fiu":
        raise FormatError(f"{path}: the Igor wave holds {data.ndim}-D {data.dtype} data of shape {data.shape}, "
                          f"not an {FORMAT} image (points, lines, channels)")
    entries = parse_note(bytes(wave.get("note") or b""))
    try:
        labels = _labels(raw, header)[1:]
    except (KeyError, ValueError, TypeError):
        labels = []
    images = []
    for i in range(data.shape[2]):
        label = labels[i] if i < len(labels) and labels[i] else f"layer{i}"
        match = re.fullmatch(r"(?P<channel>.+?)(?P<dir>Retrace|Trace)", label)
        channel, direction = (match["channel"], "backward" if match["dir"] == "Retrace" else "forward") if match \
            else (label, "forward")
        image = np.asarray(data[:, :, i], dtype=np.float32).T[::-1]  # (x, y from the bottom) -> row 0 at the top
        images.append(ScanImage(channel, direction, np.ascontiguousarray(image), _channel_units(channel, entries)))
    npoints, nlines = data.shape[0], data.shape[1]
    scale = [float(v) for v in wave["wave_header"]["sfA"][:2]]
    fast = _float(entries, "FastScanSize") or _float(entries, "ScanSize") or scale[0] * npoints
    slow = _float(entries, "SlowScanSize") or _float(entries, "ScanSize") or scale[1] * nlines
    rate = _float(entries, "ScanRate")
    line_time = 1.0 / rate if rate and rate > 0 else None
    down = _float(entries, "ScanDown")
    acquisition = nlines * line_time if line_time else None
    start, end = frame_times(entries, acquisition)
    extra: dict[str, Any] = {"end_time": end} if end else {}
    return ScanFrame(
        images=images,
        range_nm=(slow * 1e9, fast * 1e9),
        scan_direction=None if down is None else ("down" if down else "up"),
        line_time_s=line_time,
        start_time=start,
        scan_angle_deg=_float(entries, "ScanAngle"),
        acquisition_time_s=acquisition,
        bias_V=_float(entries, "BiasVoltage"),
        extra=extra,
    )
