"""Scanning-probe images in one data model: Nanonis .sxm, Gwyddion .gwy, Bruker .spm, Asylum .ibw.

Each format module parses its file into a :class:`ScanFrame` (the images already in the canonical
orientation, with the header's times and geometry); :func:`scan_dataset` turns every frame into
the same :class:`xarray.Dataset`:

- one variable per channel and direction, ``{channel}_{direction}`` (``Z_forward``,
  ``Input_4_backward``; spaces and the separators ``/ : \\`` of a channel name become ``_``), with
  attrs ``units`` (lengths in nm, other units without SI prefix: ``V``, ``A``, ``Hz``, ``deg``,
  or as the file writes them), ``channel`` (the file's name) and ``direction`` (``forward`` or
  ``backward``). Trace is forward and retrace backward; a channel without a direction is forward;
  one recorded only backward is ``{channel}_backward``.
- dims ``(y, x)``, coordinates in nm from 0 with the step scan range / pixels; **row 0 is the top
  of the image as Gwyddion shows it**, x grows to the right, backward traces are mirrored back so
  they overlay the forward ones.
- coordinate ``row_time`` (on ``y``, in s): when each displayed row was recorded - the middle of
  its line period - from the frame start, in the order the rows were scanned (a down-scan starts
  at the top row, an up-scan at the bottom row); present when the file gives the line time and
  the scan direction.
- Dataset attrs ``source_file``, ``source_format``, ``start_time`` (ISO 8601 local time as
  recorded), ``scan_direction`` (``up``/``down``), ``scan_angle_deg``, ``scan_range_nm`` [y, x],
  ``acquisition_time_s``, ``line_time_s``, ``bias_V`` (each when the file gives it), ``signals``
  (the variable names, in file order) and the first provenance step ``ionscope.io.load`` with the
  file's sha256. No ``primary``: a command must be told which channel to use. Some formats add
  ``scan_offset_nm`` [y, x] (Nanonis, Bruker), ``comment`` (Nanonis) and ``end_time`` (Asylum:
  the saving time the file records, from which the start is computed).

The files are small (MB): they are read whole when opened; ``lazy=True`` wraps the arrays in dask.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from ionscope.data import signal, with_provenance
from ionscope.errors import DimensionError, FormatError

#: Extension -> format name of the scanning-probe readers (they take precedence for these).
SPM_FORMATS: dict[str, str] = {
    ".sxm": "Nanonis SXM",
    ".gwy": "Gwyddion",
    ".spm": "Bruker SPM",
    ".ibw": "Asylum IBW",
}

DIRECTIONS = ("forward", "backward")


@dataclass
class ScanImage:
    """One channel in one direction, already in the canonical orientation (row 0 at the top as
    Gwyddion shows it, x to the right, a backward trace mirrored to overlay the forward one)."""

    channel: str
    direction: str
    data: np.ndarray
    units: str


@dataclass
class ScanFrame:
    """What a format module reads from one file: its images and the header's scan parameters
    (None where the file does not say)."""

    images: list[ScanImage]
    range_nm: tuple[float, float]  # (y, x)
    scan_direction: str | None = None
    line_time_s: float | None = None
    start_time: str | None = None
    scan_angle_deg: float | None = None
    acquisition_time_s: float | None = None
    bias_V: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)


# --------------------------------------------------------------------------- units

#: SI prefixes a file may put before a unit.
_PREFIX = {"a": 1e-18, "f": 1e-15, "p": 1e-12, "n": 1e-9, "u": 1e-6, "µ": 1e-6, "μ": 1e-6, "~": 1e-6,
           "m": 1e-3, "c": 1e-2, "k": 1e3, "M": 1e6, "G": 1e9}
#: Units that take prefixes (``m`` is the metre: lengths end in nm).
_BASE = {"m", "V", "A", "Hz", "N", "Pa", "W", "s", "F", "S", "Ohm", "Ω", "C", "K", "J", "T", "eV"}


def split_prefix(unit: str) -> tuple[str, float]:
    """``"nA"`` -> ``("A", 1e-9)``, ``"V"`` -> ``("V", 1.0)``, ``"Arb"`` -> ``("Arb", 1.0)``."""
    unit = unit.strip()
    if unit in _BASE or not unit:
        return unit, 1.0
    if len(unit) > 1 and unit[0] in _PREFIX and unit[1:] in _BASE:
        return unit[1:], _PREFIX[unit[0]]
    if unit in ("Å", "Angstrom", "angstrom"):
        return "m", 1e-10
    return unit, 1.0


def value_units(unit: str) -> tuple[str, float]:
    """The unit ionscope stores for a file's data unit and the factor to it: lengths in nm, other
    units without SI prefix (``"mV"`` -> ``("V", 1e-3)``, ``"m"`` -> ``("nm", 1e9)``); units it does
    not know (``"Arb"``, ``"log(Arb)"``, ``"N/m"``) unchanged; no unit -> ``"1"``."""
    base, factor = split_prefix(unit)
    if base == "m":
        return "nm", factor * 1e9
    return (base or "1"), factor


def clean_name(name: str) -> str:
    """A channel name as a variable name: spaces and the separators of ``FILE:VARIABLE`` and
    paths become ``_``."""
    return re.sub(r"[\s/:\\]+", "_", name.strip()).strip("_") or "channel"


# --------------------------------------------------------------------------- the data model


def scan_dataset(path: Path, fmt: str, frame: ScanFrame) -> xr.Dataset:
    """The ionscope Dataset of one scan frame (see the module docstring)."""
    if not frame.images:
        raise FormatError(f"{path}: the {fmt} file holds no image channel")
    shapes = {img.data.shape for img in frame.images}
    if len(shapes) != 1 or len(next(iter(shapes))) != 2:
        listed = ", ".join(f"{img.channel} {img.data.shape}" for img in frame.images)
        raise FormatError(f"{path}: the {fmt} images differ in size or are not 2-D ({listed}); "
                          "ionscope reads frames whose channels share one pixel grid")
    ny, nx = next(iter(shapes))
    ry, rx = (float(v) for v in frame.range_nm)
    if not (np.isfinite(ry) and np.isfinite(rx) and ry > 0 and rx > 0):
        raise FormatError(f"{path}: the {fmt} header gives no valid scan range ({ry} x {rx} nm)")
    coords = {"y": np.arange(ny) * (ry / ny), "x": np.arange(nx) * (rx / nx)}
    attrs: dict[str, Any] = {"source_file": os.fspath(path), "source_format": fmt}
    variables: dict[str, xr.DataArray] = {}
    for img in frame.images:
        units, factor = value_units(img.units)
        name = f"{clean_name(img.channel)}_{img.direction}"
        if name in variables:
            name = next(f"{name}_{i}" for i in range(2, len(frame.images) + 2) if f"{name}_{i}" not in variables)
        data = np.asarray(img.data, dtype=np.float64) * factor if factor != 1.0 else np.asarray(img.data)
        variables[name] = signal(
            data.astype(np.float32, copy=False), ("y", "x"), name=name, units=units, coords=coords,
            attrs={"channel": img.channel, "direction": img.direction},
        )
    ds = xr.Dataset(variables)
    if frame.line_time_s is not None and frame.scan_direction in ("up", "down") and frame.line_time_s > 0:
        order = np.arange(ny) if frame.scan_direction == "down" else np.arange(ny)[::-1]
        ds = ds.assign_coords(row_time=("y", (order + 0.5) * float(frame.line_time_s), {"units": "s"}))
    for key in ("start_time", "scan_direction"):
        if getattr(frame, key) is not None:
            attrs[key] = getattr(frame, key)
    for key in ("scan_angle_deg", "acquisition_time_s", "line_time_s", "bias_V"):
        value = getattr(frame, key)
        if value is not None and np.isfinite(value):
            attrs[key] = float(value)
    attrs["scan_range_nm"] = [ry, rx]
    attrs.update(frame.extra)
    attrs["signals"] = list(variables)
    ds.attrs = attrs
    return with_provenance(ds, "ionscope.io.load", {"path": os.fspath(path), "format": fmt, "dims": ["y", "x"]},
                           inputs=[path], history=[], variables=True)


def read_spm(path: Path, *, lazy: bool, dims: Sequence[str] | None, variable: str | None) -> list[xr.Dataset]:
    """A scanning-probe file as one Dataset (every channel a variable); ``variable`` keeps one."""
    from ionscope.io._readers import _pick

    ext = path.suffix.lower()
    fmt = SPM_FORMATS[ext]
    if dims is not None and list(dims) != ["y", "x"]:
        raise DimensionError(f"{path}: a {fmt} image has the calibrated axes (y, x); drop --dims "
                             f"(it named {', '.join(dims)})")
    if ext == ".sxm":
        from ionscope.io._nanonis import read_sxm as reader
    elif ext == ".gwy":
        from ionscope.io._gwyddion import read_gwy as reader
    elif ext == ".spm":
        from ionscope.io._bruker import read_bruker_spm as reader
    else:
        from ionscope.io._asylum import read_ibw as reader
    ds = scan_dataset(path, fmt, reader(path))
    if variable is not None:
        names = [str(n) for n in ds.data_vars]
        name = names[_pick(path, names, variable, [ds[n] for n in names])]
        ds = ds[[name]].assign_attrs(primary=name, signals=[name])
    if lazy:
        import dask.array

        ds = ds.copy(data={n: dask.array.from_array(v.values, chunks=-1) for n, v in ds.data_vars.items()})
    return [ds]


def truncated(path: Path, fmt: str, need: int, have: int) -> FormatError:
    """The error for a file shorter than its header says."""
    return FormatError(f"{path}: the {fmt} header describes {need} bytes of data but the file holds {have}; "
                       "the file is truncated - copy it again")
