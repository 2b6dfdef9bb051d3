"""Write minimal Gatan DigitalMicrograph (DM3 / DM4) files for tests.

Real ``.dm3``/``.dm4`` files cannot be shipped with the test suite, so this
module writes small, valid ones from the publicly documented structure of the
format (Gatan does not publish it; see the descriptions by C. Boothroyd and
G. Jefferis of the DM3/DM4 "tag file").  Only what a reader needs to recover
an image, its calibrations and a little metadata is written.

File layout
-----------
A DM file is a header followed by one *root tag group* and eight zero bytes::

    header      version (int32 BE: 3 or 4)
                root length (DM3: int32 BE = file size - 16,
                             DM4: int64 BE = file size - 24)
                byte order of the tag data (int32 BE: 1 = little endian)
    tag group   sorted flag (1 byte), open flag (1 byte),
                number of entries (DM3: int32 BE, DM4: int64 BE), entries
    entry       kind (1 byte: 20 = tag group, 21 = data tag),
                name length (int16 BE) and name (may be empty),
                DM4 only: byte length of the rest of the entry (int64 BE),
                then a tag group, or for a data tag:
                "%%%%", number of type-info words n, n type-info words
                (all int32 BE in DM3, int64 BE in DM4), then the value
                in the byte order declared in the header (little endian).

Type info is ``[code]`` for a simple value, ``[20, code, count]`` for an
array of simple values; strings are stored as arrays of uint16 (code 4)
UTF-16 code units.  Simple type codes: 2 int16, 3 int32, 4 uint16,
5 uint32, 6 float32, 7 float64, 8 bool, 10 int8, 11 int64, 12 uint64.

The image goes in ``ImageList`` as an unnamed group holding ``ImageData``
(``Data``, ``DataType``, ``Dimensions``, ``PixelDepth`` and
``Calibrations``), ``ImageTags`` and ``Name``.  DM lists dimensions fastest
first (X, Y, Z), i.e. reversed numpy (C) order.  A DM spectrum image keeps
the energy as its *slowest* dimension (X, Y, energy), so a numpy
``(y, x, energy)`` array is stored as ``(energy, y, x)`` in C order.
"""

from __future__ import annotations

import os
import struct

import numpy as np

__all__ = ["write_dm"]

_GROUP, _DATA = 20, 21
_ARRAY = 20
_STRING_UNIT = 4  # strings are arrays of uint16 code units

# Simple tag-value type codes.
_TAG_CODE = {
    np.dtype(np.int16): 2,
    np.dtype(np.int32): 3,
    np.dtype(np.uint16): 4,
    np.dtype(np.uint32): 5,
    np.dtype(np.float32): 6,
    np.dtype(np.float64): 7,
    np.dtype(np.bool_): 8,
    np.dtype(np.int8): 10,
    np.dtype(np.int64): 11,
    np.dtype(np.uint64): 12,
}

# ``ImageData.DataType`` codes of the supported pixel types.
_IMAGE_CODE = {
    np.dtype(np.int16): 1,
    np.dtype(np.float32): 2,
    np.dtype(np.int32): 7,
    np.dtype(np.uint16): 10,
    np.dtype(np.uint32): 11,
    np.dtype(np.float64): 12,
}


def _little(array: np.ndarray) -> bytes:
    """The bytes of ``array`` in little-endian C order."""
    return np.ascontiguousarray(array, dtype=array.dtype.newbyteorder("<")).tobytes()


class _Encoder:
    """Encode nested Python values as DM tag groups.

    ``dict`` becomes a group of named entries, ``list`` a group of unnamed
    entries, ``str`` a uint16 string, ``numpy.ndarray`` (1-D) an array,
    numpy scalars keep their type, and Python ``bool``/``int``/``float``
    become bool/int32/float64.
    """

    def __init__(self, version: int):
        self.version = version
        self._word = ">q" if version == 4 else ">l"  # sizes, counts, type info

    def words(self, *values: int) -> bytes:
        return b"".join(struct.pack(self._word, v) for v in values)

    def group(self, entries: list[tuple[str, object]]) -> bytes:
        body = b"".join(self.entry(name, value) for name, value in entries)
        return b"\x00\x01" + self.words(len(entries)) + body  # unsorted, open

    def entry(self, name: str, value: object) -> bytes:
        if isinstance(value, dict):
            kind, payload = _GROUP, self.group(list(value.items()))
        elif isinstance(value, list):
            kind, payload = _GROUP, self.group([("", item) for item in value])
        else:
            kind, payload = _DATA, self.data(value)
        label = name.encode("latin-1")
        head = struct.pack(">BH", kind, len(label)) + label
        if self.version == 4:
            head += struct.pack(">q", len(payload))
        return head + payload

    def data(self, value: object) -> bytes:
        if isinstance(value, str):
            value = np.frombuffer(value.encode("utf-16-le"), dtype="<u2")
        if isinstance(value, np.ndarray):
            if value.ndim != 1:
                raise ValueError("array tags must be one-dimensional")
            info = (_ARRAY, _TAG_CODE[value.dtype.newbyteorder("=")], value.size)
        else:
            if isinstance(value, bool):
                value = np.bool_(value)
            elif isinstance(value, int):
                value = np.int32(value)
            elif isinstance(value, float):
                value = np.float64(value)
            value = np.asarray(value)
            info = (_TAG_CODE[value.dtype],)
        return b"%%%%" + self.words(len(info), *info) + _little(value)


def _image_data(stored: np.ndarray, axes: list[dict], intensity_units: str) -> dict:
    """The ``ImageData`` group for ``stored`` (numpy order) and its ``axes``."""
    dimension = []
    for ax in reversed(axes):  # DM order: fastest dimension first
        scale = float(ax.get("scale", 1.0))
        if scale == 0:
            raise ValueError("axis scale must be non-zero")
        offset = float(ax.get("offset", 0.0))
        origin = -offset / scale if offset else 0.0
        dimension.append(
            {"Origin": np.float32(origin), "Scale": np.float32(scale), "Units": str(ax.get("units", ""))}
        )
    return {
        "Calibrations": {
            "Brightness": {"Origin": np.float32(0.0), "Scale": np.float32(1.0), "Units": intensity_units},
            "Dimension": dimension,
            "DisplayCalibratedUnits": True,
        },
        "Data": stored.reshape(-1),
        "DataType": np.int32(_IMAGE_CODE[stored.dtype]),
        "Dimensions": [np.uint32(n) for n in reversed(stored.shape)],
        "PixelDepth": np.int32(stored.dtype.itemsize),
    }


def write_dm(
    path: str | os.PathLike,
    data: np.ndarray,
    *,
    version: int = 4,
    axes: list[dict] | None = None,
    title: str = "",
    intensity_units: str = "counts",
    beam_energy_kV: float | None = None,
    signal_type: str | None = None,
) -> None:
    """Write ``data`` as a single-image DM3 (``version=3``) or DM4 file.

    Parameters
    ----------
    data
        1-D (spectrum), 2-D (image, or spectra along the last axis) or 3-D
        array of int16, uint16, int32, uint32, float32 or float64.
    axes
        One dict per axis in numpy order with ``units``, ``scale`` and
        ``offset`` (calibrated value of the first pixel; DM stores
        ``Origin = -offset / scale``).  Calibrations are stored as float32,
        as DM does.  A ``name`` key is accepted but DM has no place for it:
        readers derive axis names themselves.
    title
        Image name (``Name`` tag).
    intensity_units
        Units of the pixel values (``Calibrations.Brightness.Units``).
    beam_energy_kV
        Stored as ``ImageTags["Microscope Info"]["Voltage"]`` in volts.
    signal_type
        DM's ``ImageTags["Meta Data"]["Signal"]``, e.g. ``"EELS"``, ``"X-ray"``
        or ``"CL"``.  When given, ``Meta Data.Format`` is ``"Spectrum"``
        (1-D) or ``"Spectrum image"``, and 3-D data are taken to be
        ``(y, x, energy)`` and stored the DM way, energy slowest.
    """
    if version not in (3, 4):
        raise ValueError(f"version must be 3 or 4, not {version!r}")
    data = np.asarray(data)
    dtype = data.dtype.newbyteorder("=")
    if dtype not in _IMAGE_CODE:
        raise TypeError(f"unsupported pixel type {data.dtype}")
    if not 1 <= data.ndim <= 3:
        raise ValueError("data must be 1-, 2- or 3-dimensional")
    axes = [dict(ax) for ax in axes] if axes is not None else [{} for _ in range(data.ndim)]
    if len(axes) != data.ndim:
        raise ValueError(f"{len(axes)} axes given for {data.ndim}-D data")

    stored = data.astype(dtype, copy=False)
    tags: dict[str, object] = {}
    if beam_energy_kV is not None:
        tags["Microscope Info"] = {"Voltage": float(beam_energy_kV) * 1e3}
    if signal_type is not None:
        fmt = "Spectrum" if data.ndim == 1 else "Spectrum image"
        tags["Meta Data"] = {"Format": fmt, "Signal": str(signal_type)}
        if data.ndim == 3:  # (y, x, energy) -> (energy, y, x): DM order X, Y, energy
            stored = np.moveaxis(stored, -1, 0)
            axes = [axes[2], axes[0], axes[1]]

    image = {
        "ImageData": _image_data(np.ascontiguousarray(stored), axes, intensity_units),
        "ImageTags": tags,
        "Name": title,
    }
    encoder = _Encoder(version)
    root = encoder.group([("ImageList", [image])])
    header_size = 12 if version == 3 else 16
    size = header_size + len(root) + 8
    if version == 3:
        if size > 2**31 - 1:
            raise ValueError("data too large for DM3; use version=4")
        header = struct.pack(">lll", 3, size - 16, 1)
    else:
        header = struct.pack(">lql", 4, size - 24, 1)
    with open(path, "wb") as f:
        f.write(header + root + bytes(8))
