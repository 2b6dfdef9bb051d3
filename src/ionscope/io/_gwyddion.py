"""Gwyddion native files (.gwy), through ``gwyfile``.

A .gwy file is a serialised GwyContainer: image channel N is the GwyDataField ``/N/data`` (values
in ``si_unit_z``, size ``xreal`` x ``yreal`` in ``si_unit_xy``) with its title ``/N/data/title``
and the metadata Gwyddion kept from the original file in ``/N/meta``. Gwyddion's data fields are
already in the orientation Gwyddion shows (row 0 at the top, backward traces mirrored when it
imported them), so nothing is flipped.

Channel and direction come from the title as Gwyddion's importers write it: ``Z (Forward)`` /
``Z (Backward)`` (Nanonis), ``HeightTrace`` / ``HeightRetrace`` (Asylum); any other title is one
forward channel. (Gwyddion's NanoScope importer copies one ``Line Direction`` into every channel's
metadata, Retrace also for a Trace image, so that key is not used.)

Scan parameters are read from the metadata Gwyddion kept, where it kept them: Nanonis (``Date``,
``Time``, ``Direction``, ``Acquistion time`` [sic], ``Bias``; the line time is then the acquisition
time over the lines, as Gwyddion drops ``SCAN_TIME``), NanoScope (``Date``, ``Frame direction``,
``Scan Rate``, ``Rotate Ang.``) and Asylum (``ScanDown``, ``ScanRate``, ``ScanAngle``).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np

from ionscope.errors import FormatError
from ionscope.io._spm import ScanFrame, ScanImage, split_prefix, truncated

FORMAT = "Gwyddion"
_CHANNEL_KEY = re.compile(r"^/(\d+)/data$")
_TITLE = (
    re.compile(r"^(?P<channel>.*?)\s*[(\[](?P<dir>Forward|Backward|Trace|Retrace)[)\]]$", re.IGNORECASE),
    re.compile(r"^(?P<channel>.+?)\s*(?P<dir>Retrace|Trace)$"),
)


def channel_and_direction(title: str) -> tuple[str, str]:
    """``"Z (Backward)"`` -> ``("Z", "backward")``, ``"HeightTrace"`` -> ``("Height", "forward")``,
    ``"ZSensor"`` -> ``("ZSensor", "forward")``."""
    for pattern in _TITLE:
        match = pattern.match(title.strip())
        if match and match["channel"].strip():
            backward = match["dir"].lower() in ("backward", "retrace")
            return match["channel"].strip(), "backward" if backward else "forward"
    return title.strip() or "channel", "forward"


def _unit(field: Any, key: str) -> str:
    unit = field.get(key)
    return str(unit.get("unitstr", "") or "") if unit is not None else ""


def read_gwy(path: Path) -> ScanFrame:
    """Read a Gwyddion .gwy file's image channels into a :class:`~ionscope.io._spm.ScanFrame`."""
    import gwyfile

    _check_complete(path)
    try:
        container = gwyfile.load(str(path))
        numbers = sorted(int(m[1]) for key in container if (m := _CHANNEL_KEY.match(str(key))))
        fields = [(n, container[f"/{n}/data"]) for n in numbers]
        arrays = [np.asarray(field.data) for _, field in fields]  # gwyfile reshapes lazily: read here
    except Exception as exc:  # gwyfile fails in many ways on foreign or cut bytes
        text = str(exc).strip().splitlines()
        raise FormatError(f"{path}: not a readable {FORMAT} file ({type(exc).__name__}: {text[0][:120] if text else ''}); "
                          "the file may be truncated, corrupt or not a .gwy file") from None
    if not fields:
        raise FormatError(f"{path}: the {FORMAT} file holds no image channel (no /N/data)")
    images = []
    for (n, field), data in zip(fields, arrays):
        title = str(container.get(f"/{n}/data/title", f"Channel {n}"))
        channel, direction = channel_and_direction(title)
        images.append(ScanImage(channel, direction, data.astype(np.float32), _unit(field, "si_unit_z")))
    first = fields[0][1]
    xy_base, xy_factor = split_prefix(_unit(first, "si_unit_xy") or "m")
    if xy_base != "m":
        raise FormatError(f"{path}: the {FORMAT} image's lateral unit is {_unit(first, 'si_unit_xy')!r}, not a length")
    scale = xy_factor * 1e9
    xreal, yreal = float(first.get("xreal", 1.0)) * scale, float(first.get("yreal", 1.0)) * scale
    meta = container.get(f"/{fields[0][0]}/meta")
    meta = {str(k): str(v) for k, v in meta.items()} if meta is not None else {}
    return ScanFrame(images=images, range_nm=(yreal, xreal), **_scan_parameters(meta, arrays[0].shape[0]))


def _check_complete(path: Path) -> None:
    """A .gwy file is ``GWYP`` and one serialised GwyContainer: its name, NUL, a 32-bit size and
    that many bytes. gwyfile reads a cut file's first channels without a word; this refuses it."""
    with open(path, "rb") as f:
        head = f.read(64)
        size = f.seek(0, 2)
    name_end = head.find(b"\0", 4)
    if not head.startswith(b"GWYP") or name_end < 0 or len(head) < name_end + 5:
        raise FormatError(f"{path}: not a {FORMAT} file (no GWYP header); is it another kind of file with a .gwy name?")
    need = name_end + 5 + int.from_bytes(head[name_end + 1:name_end + 5], "little")
    if size < need:
        raise truncated(path, FORMAT, need, size)


def _first_number(text: str | None) -> float | None:
    match = re.match(r"\s*([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)", text or "")
    if not match:
        return None
    value = float(match[1])
    return value if np.isfinite(value) else None


def _scan_parameters(meta: dict[str, str], lines: int) -> dict[str, Any]:
    """Times, direction, angle and bias from the metadata Gwyddion kept of the original file."""
    from ionscope.io import _asylum, _bruker, _nanonis

    out: dict[str, Any] = {}
    if "Frame direction" in meta or "Scan Rate" in meta:  # NanoScope
        direction = meta.get("Frame direction", "").strip().lower()
        rate = _first_number(meta.get("Scan Rate"))
        out["line_time_s"] = 1.0 / rate if rate else None
        out["start_time"] = _bruker.start_time_of(meta.get("Date"))
        out["scan_angle_deg"] = _first_number(meta.get("Rotate Ang."))
    elif "ScanDown" in meta or "ScanRate" in meta:  # Asylum
        down = _first_number(meta.get("ScanDown"))
        direction = "" if down is None else ("down" if down else "up")
        rate = _first_number(meta.get("ScanRate"))
        out["line_time_s"] = 1.0 / rate if rate else None
        out["scan_angle_deg"] = _first_number(meta.get("ScanAngle"))
        out["bias_V"] = _first_number(meta.get("BiasVoltage"))
        entries = {k: v.encode("latin-1", errors="replace") for k, v in meta.items()}
        start, end = _asylum.frame_times(entries, lines * out["line_time_s"] if out["line_time_s"] else None)
        out["start_time"] = start
        if end:
            out["extra"] = {"end_time": end}
    else:  # Nanonis
        direction = meta.get("Direction", "").strip().lower()
        acquisition = _first_number(meta.get("Acquistion time") or meta.get("Acquisition time"))
        out["acquisition_time_s"] = acquisition
        out["line_time_s"] = acquisition / lines if acquisition and lines else None
        out["start_time"] = _nanonis.start_time_of(meta.get("Date"), meta.get("Time"))
        out["bias_V"] = _first_number(meta.get("Bias"))
    if out.get("line_time_s") and "acquisition_time_s" not in out:
        out["acquisition_time_s"] = lines * out["line_time_s"]
    out["scan_direction"] = direction if direction in ("up", "down") else None
    return out

