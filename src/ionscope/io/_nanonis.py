"""Nanonis scan files (.sxm): reader and writer, in pure numpy.

The format: a text header of ``:KEY:`` lines, each followed by its value lines, ending with
``:SCANIT_END:``; then the bytes ``\\x1a\\x04``; then the images as float32 (big-endian for
``SCANIT_TYPE FLOAT MSBFIRST``), channel by channel in ``DATA_INFO`` order, each channel's forward
image and then, for ``Direction both``, its backward image. Every image is stored in acquisition
order: the first line recorded first, each line in the order it was scanned.

Orientation (measured against Gwyddion's own Nanonis module, run through gwyddionpy): Gwyddion
shows the stored rows of a ``SCAN_DIR down`` frame as they are (the first line recorded at the
top) and flips an ``up`` frame vertically (its first line at the bottom); it mirrors every backward
image left-right. This reader does the same, so row 0 is the top of the image as Gwyddion shows
it; nanonispy2 and pySPM return the stored order instead. The values are the stored ones (the
``Calibration`` and ``Offset`` columns of ``DATA_INFO`` are already applied by the instrument).

Times: ``REC_DATE``/``REC_TIME`` (the frame start, local time as recorded), ``SCAN_TIME`` (forward
and backward time of one line: their sum is the line period) and ``ACQ_TIME`` (the whole frame).
"""

from __future__ import annotations

import datetime as _dt
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from ionscope.errors import FormatError, InputError
from ionscope.io._spm import ScanFrame, ScanImage, split_prefix, truncated

FORMAT = "Nanonis SXM"
_END_TAG = b":SCANIT_END:"
_DATA_TAG = b"\x1a\x04"


def parse_header(text: str) -> dict[str, str]:
    """The ``:KEY:`` entries of an .sxm header, each with its value lines joined by newlines."""
    entries: dict[str, str] = {}
    key, lines = None, []
    for line in text.splitlines():
        match = re.fullmatch(r":([^\t]+):\s*", line)
        if match:
            if key is not None:
                entries[key] = "\n".join(lines).strip("\n")
            key, lines = match.group(1), []
        elif key is not None:
            lines.append(line)
    if key is not None:
        entries[key] = "\n".join(lines).strip("\n")
    return entries


def _numbers(header: dict[str, str], key: str, count: int, path: Path) -> list[float]:
    try:
        values = [float(v) for v in header[key].split()]
    except KeyError:
        raise FormatError(f"{path}: the {FORMAT} header has no {key}; the file is not a complete scan") from None
    except ValueError:
        raise FormatError(f"{path}: the {FORMAT} header's {key} is not numeric ({header[key]!r})") from None
    if len(values) < count:
        raise FormatError(f"{path}: the {FORMAT} header's {key} has {len(values)} values, expected {count}")
    return values


def _optional(header: dict[str, str], key: str) -> float | None:
    try:
        return float(header[key].split()[0])
    except (KeyError, IndexError, ValueError):
        return None


def _table(text: str) -> list[dict[str, str]]:
    rows = [line.strip("\t ").split("\t") for line in text.splitlines() if line.strip()]
    if not rows:
        return []
    names = [n.strip() for n in rows[0]]
    return [dict(zip(names, (v.strip() for v in row))) for row in rows[1:]]


def start_time_of(date: str | None, time: str | None) -> str | None:
    """``"16.12.2015"``, ``"11:39:44"`` -> ``"2015-12-16T11:39:44"`` (None when either is missing
    or unreadable)."""
    if not date or not time:
        return None
    try:
        day = _dt.datetime.strptime(date.strip(), "%d.%m.%Y").date()
        clock = _dt.time.fromisoformat(time.strip())
    except ValueError:
        return None
    return _dt.datetime.combine(day, clock).isoformat()


def read_sxm(path: Path) -> ScanFrame:
    """Read a Nanonis .sxm file into a :class:`~ionscope.io._spm.ScanFrame` (canonical orientation)."""
    raw = Path(path).read_bytes()
    end = raw.find(_END_TAG)
    if not raw.startswith(b":NANONIS_VERSION:") and not raw.startswith(b":SCANIT_TYPE:") or end < 0:
        raise FormatError(f"{path}: not a {FORMAT} file (no :NANONIS_VERSION: ... :SCANIT_END: header); "
                          "is it another kind of file with an .sxm name?")
    start = raw.find(_DATA_TAG, end)
    if start < 0:
        raise truncated(path, FORMAT, 1, 0)
    start += len(_DATA_TAG)
    header = parse_header(raw[:end].decode("latin-1"))
    nx, ny = (int(v) for v in _numbers(header, "SCAN_PIXELS", 2, path)[:2])
    range_x, range_y = _numbers(header, "SCAN_RANGE", 2, path)[:2]
    channels = _table(header.get("DATA_INFO", ""))
    if nx <= 0 or ny <= 0 or not channels:
        raise FormatError(f"{path}: the {FORMAT} header lists no channel or no pixels (DATA_INFO, SCAN_PIXELS)")
    kind = header.get("SCANIT_TYPE", "FLOAT MSBFIRST").split()
    dtype = np.dtype((">" if "LSBFIRST" not in kind else "<") + "f4")
    images: list[tuple[str, str, str]] = []  # (channel, direction, unit) in file order
    for row in channels:
        name, unit, stored = row.get("Name", ""), row.get("Unit", ""), row.get("Direction", "both").lower()
        if not name:
            raise FormatError(f"{path}: a DATA_INFO row of the {FORMAT} header has no channel name")
        directions = ("forward", "backward") if stored == "both" else (("backward",) if stored == "backward"
                                                                        else ("forward",))
        images += [(name, d, unit) for d in directions]
    need = len(images) * nx * ny * dtype.itemsize
    if len(raw) - start < need:
        raise truncated(path, FORMAT, need, len(raw) - start)
    data = np.frombuffer(raw, dtype=dtype, count=len(images) * nx * ny, offset=start).reshape(len(images), ny, nx)
    scan_dir = header.get("SCAN_DIR", "").strip().lower() or None
    scan_dir = scan_dir if scan_dir in ("up", "down") else None
    out = []
    for (name, direction, unit), image in zip(images, data):
        image = image.astype(np.float32)
        if scan_dir == "up":
            image = image[::-1]
        if direction == "backward":
            image = image[:, ::-1]
        out.append(ScanImage(name, direction, np.ascontiguousarray(image), unit))
    times = [float(v) for v in header.get("SCAN_TIME", "").split()[:2] if _is_number(v)]
    offset = [float(v) for v in header.get("SCAN_OFFSET", "").split()[:2] if _is_number(v)]
    extra: dict[str, Any] = {}
    if len(offset) == 2:
        extra["scan_offset_nm"] = [offset[1] * 1e9, offset[0] * 1e9]
    comment = header.get("COMMENT", "").strip()
    if comment:
        extra["comment"] = comment
    return ScanFrame(
        images=out,
        range_nm=(range_y * 1e9, range_x * 1e9),
        scan_direction=scan_dir,
        line_time_s=sum(times) if len(times) == 2 else None,
        start_time=start_time_of(header.get("REC_DATE"), header.get("REC_TIME")),
        scan_angle_deg=_optional(header, "SCAN_ANGLE"),
        acquisition_time_s=_optional(header, "ACQ_TIME"),
        bias_V=_optional(header, "BIAS"),
        extra=extra,
    )


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


# --------------------------------------------------------------------------- writer


def _file_units(unit: str) -> tuple[str, float]:
    """The SI unit Nanonis writes for ``unit`` and the factor to it (``"nm"`` -> ``("m", 1e-9)``)."""
    base, factor = split_prefix(unit)
    return base, factor


def _timestamp(value: str | _dt.datetime) -> _dt.datetime:
    if isinstance(value, _dt.datetime):
        return value
    try:
        return _dt.datetime.fromisoformat(str(value))
    except ValueError:
        raise InputError(f"start_time {value!r} is not an ISO 8601 date and time (e.g. 2024-05-01T10:30:00)") from None


def write_sxm(
    path: str | os.PathLike,
    channels: Mapping[str, tuple[Any, Any | None]],
    *,
    range_nm: tuple[float, float] | float,
    start_time: str | _dt.datetime,
    scan_direction: str,
    acq_time_s: float,
    units: Mapping[str, str] | str,
    line_time_s: float | None = None,
    scan_angle_deg: float = 0.0,
    offset_nm: tuple[float, float] = (0.0, 0.0),
    bias_V: float = 0.0,
    comment: str = "",
    overwrite: bool = False,
) -> Path:
    """Write a Nanonis .sxm scan file (atomically) that Nanonis' own readers, Gwyddion and
    :func:`ionscope.io.open_dataset` open.

    Parameters
    ----------
    path : str or path-like
        Output file; its name must end in ``.sxm`` (the readers choose by extension).
    channels : mapping of str to (array, array or None)
        Per channel name (e.g. ``"Z"``, ``"Bias"``; spaces are written as ``_``) its forward and
        backward images, each ``(ny, nx)`` **in the ionscope orientation** (row 0 at the top, x to
        the right, the backward image overlaying the forward one): the writer stores them in the
        order the instrument would have recorded them, so reading the file gives them back.
        ``None`` for the backward image writes a forward-only channel (nanonispy2 cannot read
        those; Gwyddion and ionscope can).
    range_nm : (float, float) or float
        Scan range (y, x) in nm; one number for a square frame.
    start_time : str or datetime
        Frame start, ISO 8601 (written as ``REC_DATE``/``REC_TIME``, local time; seconds kept).
    scan_direction : {"up", "down"}
        Slow-scan direction: ``down`` records the top row first, ``up`` the bottom row first.
    acq_time_s : float
        Acquisition time of the whole frame in s (``ACQ_TIME``).
    units : mapping of str to str, or str
        Unit of each channel's values as given (``"nm"``, ``"V"``, ``"pA"``, ...), or one unit for
        all. Written in SI without prefix as Nanonis does (nm -> m, pA -> A; values scaled).
    line_time_s : float, optional
        Period of one line (forward plus backward trace) in s; default ``acq_time_s / ny``. Written
        as ``SCAN_TIME`` (half forward, half backward).
    scan_angle_deg, offset_nm, bias_V, comment
        ``SCAN_ANGLE`` (deg), ``SCAN_OFFSET`` (y, x in nm), ``BIAS`` (V), ``COMMENT``.
    overwrite : bool
        Replace an existing file.

    Returns
    -------
    pathlib.Path
        The file written.

    Examples
    --------
    >>> import numpy as np, tempfile, pathlib
    >>> from ionscope import io
    >>> z = np.arange(12.0, dtype=np.float32).reshape(3, 4)
    >>> out = pathlib.Path(tempfile.mkdtemp()) / "scan.sxm"
    >>> _ = io.write_sxm(out, {"Z": (z, z)}, range_nm=(30, 40), start_time="2024-05-01T10:30:00",
    ...                  scan_direction="up", acq_time_s=6.0, units="nm")
    >>> ds = io.open_dataset(out)
    >>> bool((ds["Z_forward"].values == z).all()), ds["Z_forward"].attrs["units"], ds.attrs["scan_direction"]
    (True, 'nm', 'up')
    >>> ds["row_time"].values.tolist()   # an up-scan records its bottom row first
    [5.0, 3.0, 1.0]
    """
    from ionscope.io import atomic_path, check_output

    out = check_output(path, overwrite=overwrite, suffix=".sxm")
    if scan_direction not in ("up", "down"):
        raise InputError(f"scan_direction must be 'up' or 'down', not {scan_direction!r}")
    if not channels:
        raise InputError("write_sxm needs at least one channel")
    images, rows, labels = [], [], []
    shape = None
    for index, (name, pair) in enumerate(channels.items()):
        try:
            forward, backward = pair
        except (TypeError, ValueError):
            raise InputError(f"channel {name!r}: give a (forward, backward or None) pair of images") from None
        unit = units if isinstance(units, str) else units.get(name)
        if unit is None:
            raise InputError(f"channel {name!r} has no unit in units= (give e.g. {{{name!r}: 'V'}})")
        file_unit, factor = _file_units(unit)
        for direction, image in (("forward", forward), ("backward", backward)):
            if image is None:
                continue
            image = np.asarray(image, dtype=np.float64)
            if image.ndim != 2 or (shape is not None and image.shape != shape):
                raise InputError(f"channel {name!r} ({direction}): every image must be 2-D and of one shape "
                                 f"{shape or image.shape}, got {image.shape}")
            shape = image.shape
            if direction == "backward":
                image = image[:, ::-1]  # recorded right to left
            if scan_direction == "up":
                image = image[::-1]  # the bottom row was recorded first
            images.append((image * factor).astype(">f4"))
        label = re.sub(r"\s+", "_", name.strip())
        labels.append(f"{label} ({file_unit})")
        rows.append(f"\t{index}\t{label}\t{file_unit}\t{'both' if backward is not None else 'forward'}"
                    f"\t1.000E+0\t0.000E+0")
    ny, nx = shape
    range_y, range_x = (range_nm, range_nm) if np.ndim(range_nm) == 0 else tuple(range_nm)
    if not (float(range_y) > 0 and float(range_x) > 0):
        raise InputError(f"range_nm must be positive, got {range_nm}")
    if not float(acq_time_s) > 0:
        raise InputError(f"acq_time_s must be positive, got {acq_time_s}")
    period = float(line_time_s) if line_time_s is not None else float(acq_time_s) / ny
    when = _timestamp(start_time)
    entries = [
        ("NANONIS_VERSION", "2"),
        ("SCANIT_TYPE", "              FLOAT            MSBFIRST"),
        ("REC_DATE", f" {when:%d.%m.%Y}"),
        ("REC_TIME", f"{when:%H:%M:%S}"),
        ("REC_TEMP", "      290.0000000000"),
        ("ACQ_TIME", f"{float(acq_time_s):12.1f}"),
        ("SCAN_PIXELS", f"{nx:10d}{ny:10d}"),
        ("SCAN_FILE", out.name),
        ("SCAN_TIME", f"{period / 2:21.6E}{period / 2:21.6E}"),
        ("SCAN_RANGE", f"{float(range_x) * 1e-9:22.6E}{float(range_y) * 1e-9:22.6E}"),
        ("SCAN_OFFSET", f"{float(offset_nm[1]) * 1e-9:22.6E}{float(offset_nm[0]) * 1e-9:22.6E}"),
        ("SCAN_ANGLE", f"{float(scan_angle_deg):20.3E}"),
        ("SCAN_DIR", scan_direction),
        ("BIAS", f"{float(bias_V):20.3E}"),
        ("COMMENT", comment),
        ("Scan>channels", ";".join(labels)),
        ("Scan>pixels/line", str(nx)),
        ("Scan>lines", str(ny)),
        ("DATA_INFO", "\tChannel\tName\tUnit\tDirection\tCalibration\tOffset\n" + "\n".join(rows) + "\n"),
    ]
    text = "".join(f":{key}:\n{value}\n" for key, value in entries) + ":SCANIT_END:\n\n\n"
    payload = text.encode("latin-1", errors="replace") + _DATA_TAG + b"".join(i.tobytes() for i in images)
    with atomic_path(out, overwrite=overwrite) as tmp:
        tmp.write_bytes(payload)
    return out
