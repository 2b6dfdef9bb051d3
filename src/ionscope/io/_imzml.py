"""imzML + .ibd (mass-spectrometry imaging; what IONTOF SurfaceLab exports for TOF-SIMS).

An imzML data set is two files with the same stem: ``X.imzML`` (mzML XML: the header and one
``<spectrum>`` element per pixel with its position and the offsets of its arrays) and ``X.ibd``
(binary: a 16-byte UUID, then the m/z and intensity arrays). :func:`read_imzml` gives

- **continuous** mode (one m/z array shared by every pixel): variable ``counts`` (y, x, mass)
  with the coordinate ``mass`` in u (float64);
- **processed** mode (an m/z array per pixel, e.g. centroided peaks): ``counts`` (y, x, peak)
  with the coordinate ``peak_mass`` (y, x, peak) in u (float64); a pixel with fewer points than
  the longest spectrum is padded with ``peak_mass`` NaN and ``counts`` 0;
- pixels the file does not list (IONTOF SurfaceLab leaves empty pixels out) hold 0 counts, and
  ``attrs["empty_pixels"]`` says how many there are;
- ``y``, ``x`` in nm from the pixel size of the scan settings (IMS:1000046 x, IMS:1000047 y,
  micrometre), else in pixels with a warning; position y = 1 is the top row (row 0), x = 1 the
  first column;
- attrs ``source_file``, ``source_format`` ("imzML"), ``imzml_mode``, ``spectrum_type``
  (centroid | profile), ``uuid``, ``empty_pixels``, ``primary`` = "counts" and the provenance
  step ``ionscope.io.load`` (sha256 of both files).

Speed: the per-spectrum XML is indexed with a few byte-level regular expressions (the header is
parsed by pyimzML's :class:`pyimzml.metadata.Metadata`), and the binary is gathered in bulk
with numpy from the whole .ibd - no per-spectrum Python loop. A file whose spectrum elements
the fast index does not recognise (unusual attribute order, extra arrays) is indexed by
pyimzML's :class:`~pyimzml.ImzMLParser.ImzMLParser` instead (same result, ~10x slower).

:func:`write_imzml` writes the same model back (both modes), atomically, with the binary in one
write.

References
----------
.. [1] T. Schramm et al., "imzML - A common data format for the flexible exchange and processing
   of mass spectrometry imaging data", J. Proteomics 75 (2012) 5106-5110; imzML 1.1.0
   specification, https://ms-imaging.org/imzml/
"""

from __future__ import annotations

import os
import re
import uuid as uuidlib
import warnings
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from ionscope.data import signal, with_provenance
from ionscope.errors import ConfigError, DimensionError, FileMissingError, FormatError, InputError, IonscopeWarning

#: Extension (lower case) -> format name.
IMZML_FORMATS = {".imzml": "imzML"}

_NS = "{http://psi.hupo.org/ms/mzml}"
#: Binary data types (cvParam accession -> little-endian numpy dtype).
_DTYPES = {
    "MS:1000521": "<f4", "MS:1000523": "<f8", "MS:1000519": "<i4", "MS:1000522": "<i8",
    "IMS:1000141": "<i4", "IMS:1000142": "<i8",
}
_DTYPE_NAMES = {"<f4": ("MS:1000521", "32-bit float"), "<f8": ("MS:1000523", "64-bit float"),
                "<i4": ("MS:1000519", "32-bit integer"), "<i8": ("MS:1000522", "64-bit integer")}
#: Compression / encoding accessions other than "no compression" (MS:1000576).
_COMPRESSIONS = {
    "MS:1000574": "zlib compression", "MS:1002312": "MS-Numpress linear prediction",
    "MS:1002313": "MS-Numpress positive integer", "MS:1002314": "MS-Numpress short logged float",
    "MS:1002746": "MS-Numpress linear + zlib", "MS:1002747": "MS-Numpress integer + zlib",
    "MS:1002748": "MS-Numpress logged float + zlib", "MS:1003089": "truncation + zlib",
    "MS:1003090": "truncation + linear prediction + zlib", "MS:1003091": "truncation + log + zlib",
}
_MZ_ARRAY, _INT_ARRAY = "MS:1000514", "MS:1000515"

#: position x/y/z (IMS:1000050-52), external offset / array length (IMS:1000102 / 103): key suffix and value
_VALUE = re.compile(rb'accession="IMS:1000(05[012]|10[23])"[^>]*?value="([^"]*)"')
_INLINE_COMPRESSION = re.compile(rb'accession="(MS:100(?:0574|231[234]|274[678]|3089|309[01]))"')
_ARRAY_REF = re.compile(rb'<binaryDataArray\b[^>]*>\s*<referenceableParamGroupRef\s+ref="([^"]*)"')


@dataclass
class _Header:
    uuid: str
    mode: str | None
    spectrum_type: str | None
    mz_dtype: np.dtype
    int_dtype: np.dtype
    mz_groups: set
    int_groups: set
    pixel_size_um: tuple[float, float] | None  # (y, x)
    max_pixels: tuple[int, int]  # (y, x) from the scan settings (0 when absent)
    start_time: str | None = None  # the <run>'s startTimeStamp (xs:dateTime), when given


@dataclass
class _Index:
    """Per spectrum (file order): 1-based positions and the arrays' offsets (bytes) / lengths."""

    x: np.ndarray
    y: np.ndarray
    z: np.ndarray | None
    mz_off: np.ndarray
    mz_len: np.ndarray
    int_off: np.ndarray
    int_len: np.ndarray


# --------------------------------------------------------------------------- XML

#: The acquisition start of an mzML ``<run>`` (optional attribute ``startTimeStamp``, xs:dateTime).
_RUN_START = re.compile(rb'<run\b[^>]*?\bstartTimeStamp="([^"]+)"')


def _companion(path: Path) -> Path:
    """The .ibd beside ``path`` (same stem, extension in any case)."""
    for candidate in (path.with_suffix(".ibd"), path.with_suffix(".IBD")):
        if candidate.is_file():
            return candidate
    for candidate in path.parent.glob(path.stem + ".*"):
        if candidate.suffix.lower() == ".ibd" and candidate.is_file():
            return candidate
    raise FileMissingError(
        f"{path}: its binary file {path.with_suffix('.ibd').name} is missing; an imzML data set is two files "
        "with the same name (.imzML and .ibd) - copy the .ibd next to the .imzML"
    )


def _not_imzml(path: Path, why: str) -> FormatError:
    return FormatError(f"{path}: not an imzML file ({why}); give the .imzML of an imzML data set "
                       "(exported e.g. by SurfaceLab, or written by pyimzML / ionscope.io.write_imzml)")


def _parse_header(path: Path, buf: bytes) -> tuple[_Header, int, int]:
    """The header (everything before ``<run``), and the byte range of the spectrum list."""
    from pyimzml.metadata import Metadata

    if b"<mzML" not in buf[:4096]:
        raise _not_imzml(path, "no <mzML> root element at its start")
    run = buf.find(b"<run")
    start = buf.find(b"<spectrumList", run if run >= 0 else 0)
    if run < 0 or start < 0:
        raise _not_imzml(path, "no <run> with a <spectrumList>")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            root = ET.fromstring(buf[:run] + b"</mzML>")
            meta = Metadata(root)
    except (ET.ParseError, AttributeError, ValueError) as exc:
        raise _not_imzml(path, f"its header is not valid mzML: {exc}") from None
    end = buf.rfind(b"</spectrumList>")
    if end < start:
        if buf.rstrip().endswith(b"</mzML>"):
            raise FormatError(f"{path}: the imzML file lists no spectrum")
        raise FormatError(f"{path}: the imzML XML ends inside its spectrum list; the file is truncated - copy it again")
    content = meta.file_description.param_by_accession
    text = content.get("IMS:1000080")
    if not text:
        raise _not_imzml(path, "its header has no UUID (IMS:1000080), which every imzML file has")
    mode = "continuous" if "IMS:1000030" in content else "processed" if "IMS:1000031" in content else None
    groups = meta.referenceable_param_groups
    mz_groups = {k for k, g in groups.items() if _MZ_ARRAY in g.param_by_accession}
    int_groups = {k for k, g in groups.items() if _INT_ARRAY in g.param_by_accession}
    spectrum_type = None
    for params in [content] + [g.param_by_accession for g in groups.values()]:
        if "MS:1000127" in params:
            spectrum_type = "centroid"
        elif "MS:1000128" in params:
            spectrum_type = "profile"
        if spectrum_type:
            break

    def dtype_of(names: set, what: str) -> np.dtype:
        found = set()
        for name in names:
            params = groups[name].param_by_accession
            for acc in params:
                if acc in _COMPRESSIONS:
                    raise FormatError(
                        f"{path}: the {what} arrays are stored with {_COMPRESSIONS[acc]} ({acc}); ionscope reads "
                        "uncompressed imzML only - export the data again without compression"
                    )
                if acc in _DTYPES:
                    found.add(_DTYPES[acc])
                elif acc == "MS:1000520":
                    raise FormatError(f"{path}: the {what} arrays are 16-bit floats (MS:1000520), which ionscope does "
                                      "not read; export them as 32- or 64-bit numbers")
        if len(found) != 1:
            raise FormatError(f"{path}: the imzML header does not give one binary data type for the {what} arrays "
                              f"(found {sorted(found) or 'none'}); the file is not valid imzML")
        return np.dtype(found.pop())

    if not mz_groups or not int_groups:
        raise FormatError(f"{path}: the imzML header declares no m/z or no intensity array group "
                          "(MS:1000514 / MS:1000515 in a referenceableParamGroup); the file is not valid imzML")
    mz_dtype, int_dtype = dtype_of(mz_groups, "m/z"), dtype_of(int_groups, "intensity")
    size, counts = {}, {}
    for settings in meta.scan_settings.values():
        params = settings.param_by_accession
        for key, acc in (("x", "IMS:1000046"), ("y", "IMS:1000047")):
            if acc in params and key not in size:
                size[key] = params[acc]
        for key, acc in (("x", "IMS:1000042"), ("y", "IMS:1000043")):
            if acc in params and key not in counts:
                counts[key] = params[acc]
    pixel = None
    try:
        if "x" in size or "y" in size:
            sx = float(size.get("x", size.get("y")))
            sy = float(size.get("y", size.get("x")))
            if np.isfinite(sx) and np.isfinite(sy) and sx > 0 and sy > 0:
                pixel = (sy, sx)
        max_pixels = (int(counts.get("y", 0) or 0), int(counts.get("x", 0) or 0))
    except (TypeError, ValueError):
        raise FormatError(f"{path}: the imzML scan settings give a pixel size or count that is not a number "
                          f"({size}, {counts})") from None
    stamp = _RUN_START.search(buf, run, start)
    head = _Header(uuid=str(text), mode=mode, spectrum_type=spectrum_type, mz_dtype=mz_dtype, int_dtype=int_dtype,
                   mz_groups=mz_groups, int_groups=int_groups, pixel_size_um=pixel, max_pixels=max_pixels,
                   start_time=stamp[1].decode("ascii", "replace") if stamp else None)
    # compression declared on a spectrum's own arrays instead of in the header
    inline = _INLINE_COMPRESSION.search(buf, start, end)
    if inline:
        acc = inline[1].decode()
        raise FormatError(f"{path}: some arrays are stored with {_COMPRESSIONS[acc]} ({acc}); ionscope reads "
                          "uncompressed imzML only - export the data again without compression")
    return head, start, end


def _fast_index(buf: bytes, start: int, end: int, head: _Header) -> _Index | None:
    """Index the spectrum list with byte-level regular expressions; None when the spectra do not
    have the layout it assumes (then pyimzML's parser indexes the file)."""
    n = buf.count(b"</spectrum>", start, end)
    if n == 0:
        return None
    found = _VALUE.findall(buf, start, end)
    if not found:
        return None
    table = np.array(found)
    keys, values = table[:, 0], table[:, 1]
    try:
        parts = {f"IMS:1000{k}": values[keys == k.encode()].astype(np.int64)
                 for k in ("050", "051", "052", "102", "103")}
    except ValueError:
        return None
    refs = _ARRAY_REF.findall(buf, start, end)
    if (len(parts["IMS:1000050"]) != n or len(parts["IMS:1000051"]) != n or len(parts["IMS:1000052"]) not in (0, n)
            or len(parts["IMS:1000102"]) != 2 * n or len(parts["IMS:1000103"]) != 2 * n or len(refs) != 2 * n):
        return None
    refs = np.array(refs)
    is_mz = np.isin(refs, np.array([g.encode() for g in head.mz_groups]))
    is_int = np.isin(refs, np.array([g.encode() for g in head.int_groups]))
    pair_mz, pair_int = is_mz.reshape(n, 2), is_int.reshape(n, 2)
    if not (np.all(pair_mz.sum(1) == 1) and np.all(pair_int.sum(1) == 1) and np.all(pair_mz != pair_int)):
        return None
    first_mz = pair_mz[:, 0]
    off, length = parts["IMS:1000102"].reshape(n, 2), parts["IMS:1000103"].reshape(n, 2)
    mz_col = np.where(first_mz, 0, 1)
    rows = np.arange(n)
    return _Index(
        x=parts["IMS:1000050"], y=parts["IMS:1000051"], z=parts["IMS:1000052"] if len(parts["IMS:1000052"]) else None,
        mz_off=off[rows, mz_col], mz_len=length[rows, mz_col],
        int_off=off[rows, 1 - mz_col], int_len=length[rows, 1 - mz_col],
    )


def _pyimzml_index(path: Path) -> _Index:
    """The spectrum index from pyimzML's parser (robust to any layout; the slow path)."""
    from pyimzml.ImzMLParser import ImzMLParser

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            parser = ImzMLParser(os.fspath(path), ibd_file=None)
    except Exception as exc:  # pyimzML fails in many ways on foreign XML
        raise FormatError(f"{path}: pyimzML cannot index its spectra ({type(exc).__name__}: {exc}); the imzML XML is "
                          "not valid or truncated") from None
    coords = np.asarray(parser.coordinates, dtype=np.int64).reshape(-1, 3)
    return _Index(x=coords[:, 0], y=coords[:, 1], z=coords[:, 2],
                  mz_off=np.asarray(parser.mzOffsets, np.int64), mz_len=np.asarray(parser.mzLengths, np.int64),
                  int_off=np.asarray(parser.intensityOffsets, np.int64),
                  int_len=np.asarray(parser.intensityLengths, np.int64))


# --------------------------------------------------------------------------- binary


def _gather(buf: np.ndarray, offsets: np.ndarray, lengths: np.ndarray, dtype: np.dtype) -> np.ndarray:
    """The arrays at byte ``offsets`` with ``lengths`` elements of ``dtype``, concatenated: one
    fancy-indexing gather per alignment class of the offsets (no loop over spectra)."""
    size = dtype.itemsize
    total = int(lengths.sum())
    out = np.empty(total, dtype)
    if total == 0:
        return out
    starts = np.cumsum(lengths) - lengths
    within = np.arange(total, dtype=np.int64) - np.repeat(starts, lengths)
    rem = offsets % size
    for r in np.unique(rem):
        view = buf[r: r + (buf.size - r) // size * size].view(dtype)
        if np.all(rem == r):
            out[:] = view[np.repeat((offsets - r) // size, lengths) + within]
        else:
            sel = rem == r
            at = np.repeat(sel, lengths)
            out[at] = view[np.repeat((offsets[sel] - r) // size, lengths[sel]) + within[at]]
    return out


@dataclass
class _Plan:
    """Everything needed to assemble (part of) the arrays, sorted by pixel."""

    ibd: Path
    head: _Header
    ny: int
    nx: int
    pixel: np.ndarray  # flat pixel index per spectrum, ascending
    mz_off: np.ndarray
    mz_len: np.ndarray
    int_off: np.ndarray
    int_len: np.ndarray
    continuous: bool
    n_points: int  # mass points (continuous) or peaks per pixel (processed)


def _assemble(plan: _Plan, buf: np.ndarray, r0: int, r1: int) -> tuple[np.ndarray, np.ndarray | None]:
    """Counts (and, processed, peak masses) of rows ``r0:r1``."""
    lo, hi = np.searchsorted(plan.pixel, [r0 * plan.nx, r1 * plan.nx])
    pixel = plan.pixel[lo:hi] - r0 * plan.nx
    n_pix, dtype = (r1 - r0) * plan.nx, plan.head.int_dtype
    counts = np.zeros((n_pix, plan.n_points), dtype=dtype)
    ints = _gather(buf, plan.int_off[lo:hi], plan.int_len[lo:hi], dtype)
    if plan.continuous:
        counts[pixel] = ints.reshape(hi - lo, plan.n_points)
        return counts.reshape(r1 - r0, plan.nx, plan.n_points), None
    lengths = plan.int_len[lo:hi]
    rows = np.repeat(pixel, lengths)
    cols = np.arange(ints.size, dtype=np.int64) - np.repeat(np.cumsum(lengths) - lengths, lengths)
    counts[rows, cols] = ints
    mass = np.full((n_pix, plan.n_points), np.nan)
    mass[rows, cols] = _gather(buf, plan.mz_off[lo:hi], plan.mz_len[lo:hi], plan.head.mz_dtype)
    shape = (r1 - r0, plan.nx, plan.n_points)
    return counts.reshape(shape), mass.reshape(shape)


def _lazy_rows(plan: _Plan, r0: int, r1: int, which: int) -> np.ndarray:
    buf = np.memmap(plan.ibd, dtype=np.uint8, mode="r")
    return _assemble(plan, buf, r0, r1)[which]


# --------------------------------------------------------------------------- reader


def read_imzml(path: Path, *, lazy: bool = False, dims: Sequence[str] | None = None,
               variable: str | None = None) -> list[xr.Dataset]:
    """Read an imzML data set (``X.imzML`` and ``X.ibd``) into the ionscope model (module docstring).

    Parameters
    ----------
    path : pathlib.Path
        The .imzML file; the .ibd with the same stem must be beside it.
    lazy : bool
        Keep ``counts`` (and ``peak_mass``) as dask arrays, assembled in blocks of rows when computed.
    dims : sequence of str, optional
        Must be the file's own dims (y, x, mass or y, x, peak) if given.
    variable : str, optional
        ``"counts"`` (or ``"0"``), the only variable.

    Returns
    -------
    list of xarray.Dataset
        One Dataset.

    Raises
    ------
    FileMissingError
        The .ibd is missing.
    FormatError
        Not imzML, a UUID that differs between the .imzML and the .ibd, a truncated .ibd,
        compressed or unsupported binary encodings, duplicate or 3-D pixel positions.
    """
    from ionscope.io._readers import _pick

    path = Path(path)
    ibd = _companion(path)
    try:
        buf = path.read_bytes()
    except OSError as exc:
        raise FormatError(f"{path}: cannot be read ({exc.strerror or exc})") from None
    head, start, end = _parse_header(path, buf)
    index = _fast_index(buf, start, end, head) or _pyimzml_index(path)
    del buf
    plan = _check_and_plan(path, ibd, head, index)
    mass_dim = "mass" if plan.continuous else "peak"
    if dims is not None and list(dims) != ["y", "x", mass_dim]:
        raise DimensionError(f"{path}: an imzML file has the calibrated axes (y, x, {mass_dim}); drop --dims "
                             f"(it named {', '.join(dims)})")
    if variable is not None:
        _pick(path, ["counts"], variable, [np.empty((plan.ny, plan.nx, plan.n_points), dtype=np.uint8)])
    shape = (plan.ny, plan.nx, plan.n_points)
    mass_values = None
    if lazy:
        import dask
        import dask.array as da

        rows = max(1, min(plan.ny, (64 << 20) // max(1, plan.nx * plan.n_points * 8)))
        blocks = [(r, min(plan.ny, r + rows)) for r in range(0, plan.ny, rows)]

        def stacked(which: int, dtype) -> Any:
            parts = [da.from_delayed(dask.delayed(_lazy_rows)(plan, r0, r1, which),
                                     shape=(r1 - r0,) + shape[1:], dtype=dtype) for r0, r1 in blocks]
            return da.concatenate(parts, axis=0)

        counts = stacked(0, head.int_dtype)
        if not plan.continuous:
            mass_values = stacked(1, np.float64)
    else:
        counts, mass_values = _assemble(plan, np.fromfile(ibd, dtype=np.uint8), 0, plan.ny)
    coords: dict[str, Any] = {}
    coord_units: dict[str, str] = {}
    if head.pixel_size_um is not None:
        coords = {"y": head.pixel_size_um[0] * 1e3, "x": head.pixel_size_um[1] * 1e3}
    else:
        warnings.warn(f"{path}: the imzML header gives no pixel size (IMS:1000046 / IMS:1000047); y and x are "
                      "pixel indices - pass the pixel size to the analysis or fix the export", IonscopeWarning,
                      stacklevel=4)
        coord_units = {"y": "px", "x": "px"}
    if plan.continuous:
        mz = _gather(np.fromfile(ibd, dtype=np.uint8, count=int(plan.mz_off[0] + plan.n_points * head.mz_dtype.itemsize)),
                     plan.mz_off[:1], plan.mz_len[:1], head.mz_dtype)
        coords["mass"] = mz.astype(np.float64)
    attrs = {
        "source_file": os.fspath(path), "source_format": "imzML",
        "imzml_mode": "continuous" if plan.continuous else "processed",
        "spectrum_type": head.spectrum_type or "unknown", "uuid": head.uuid,
        "empty_pixels": int(plan.ny * plan.nx - plan.pixel.size),
    }
    if head.start_time:
        attrs["start_time"] = head.start_time
    da_counts = signal(counts, ("y", "x", mass_dim), name="counts", units="counts", coords=coords,
                       coord_units=coord_units, long_name="ion counts", attrs=dict(attrs))
    if mass_values is not None:
        da_counts = da_counts.assign_coords(
            peak_mass=(("y", "x", "peak"), mass_values, {"units": "u", "long_name": "peak m/z"}))
    ds = da_counts.to_dataset()
    ds.attrs = {**attrs, "primary": "counts", "signals": ["counts"]}
    if head.pixel_size_um is not None:
        ds.attrs["pixel_size_nm"] = [head.pixel_size_um[0] * 1e3, head.pixel_size_um[1] * 1e3]
    ds = with_provenance(ds, "ionscope.io.load", {"path": os.fspath(path), "format": "imzML",
                                                  "dims": ["y", "x", mass_dim]},
                         inputs=[path, ibd], history=[], variables=True)
    return [ds]


def _check_and_plan(path: Path, ibd: Path, head: _Header, index: _Index) -> _Plan:
    """Validate the index against the .ibd (UUID, sizes) and sort the spectra by pixel."""
    n = index.x.size
    if n == 0:
        raise FormatError(f"{path}: the imzML file lists no spectrum")
    size = ibd.stat().st_size
    with open(ibd, "rb") as fh:
        first = fh.read(16)
    try:
        expected = uuidlib.UUID(head.uuid.strip().strip("{}"))
    except ValueError:
        raise FormatError(f"{path}: its UUID {head.uuid!r} (IMS:1000080) is not a UUID; the file is not valid imzML") from None
    if len(first) < 16 or first != expected.bytes:
        found = str(uuidlib.UUID(bytes=first)) if len(first) == 16 else f"{len(first)} bytes"
        raise FormatError(
            f"{path}: the .ibd {ibd.name} does not belong to it - its UUID is {found}, the .imzML names {expected}; "
            "the two files come from different exports: copy the matching .ibd (same export) beside the .imzML"
        )
    if index.z is not None and np.any(index.z != index.z[0]):
        raise FormatError(f"{path}: a 3-D imzML (positions z {int(index.z.min())}..{int(index.z.max())}); ionscope "
                          "reads 2-D maps - export one plane")
    if index.x.min() < 1 or index.y.min() < 1:
        raise FormatError(f"{path}: pixel positions start at 1 in imzML; this file has x >= {int(index.x.min())}, "
                          f"y >= {int(index.y.min())}")
    ends = np.maximum(index.mz_off + index.mz_len * head.mz_dtype.itemsize,
                      index.int_off + index.int_len * head.int_dtype.itemsize)
    bad = np.count_nonzero((ends > size) | (index.mz_off < 16) | (index.int_off < 16) | (index.mz_len < 0)
                           | (index.int_len < 0))
    if bad:
        raise FormatError(
            f"{path}: the .ibd {ibd.name} holds {size} bytes but {bad} of {n} spectra lie (partly) beyond its end "
            f"(up to byte {int(ends.max())}); the .ibd is truncated - copy it again"
        )
    if np.any(index.mz_len != index.int_len):
        k = int(np.count_nonzero(index.mz_len != index.int_len))
        raise FormatError(f"{path}: {k} spectra have m/z and intensity arrays of different lengths; the file is "
                          "not valid imzML")
    ny = max(int(index.y.max()), head.max_pixels[0])
    nx = max(int(index.x.max()), head.max_pixels[1])
    pixel = (index.y - 1) * nx + (index.x - 1)
    order = np.argsort(pixel, kind="stable")
    pixel = pixel[order]
    if pixel.size > 1 and np.any(pixel[1:] == pixel[:-1]):
        dup = int(np.count_nonzero(pixel[1:] == pixel[:-1]))
        raise FormatError(f"{path}: {dup} pixel positions are listed twice; ionscope reads one spectrum per pixel")
    mz_off, mz_len = index.mz_off[order], index.mz_len[order]
    int_off, int_len = index.int_off[order], index.int_len[order]
    continuous = head.mode == "continuous" if head.mode is not None else bool(np.all(mz_off == mz_off[0]))
    if continuous and not (np.all(mz_off == mz_off[0]) and np.all(mz_len == mz_len[0])):
        warnings.warn(f"{path}: the file says continuous mode but its spectra have different m/z arrays; read as "
                      "processed (a mass list per pixel)", IonscopeWarning, stacklevel=4)
        continuous = False
    n_points = int(mz_len[0]) if continuous else int(int_len.max())
    return _Plan(ibd=ibd, head=head, ny=ny, nx=nx, pixel=pixel, mz_off=mz_off, mz_len=mz_len, int_off=int_off,
                 int_len=int_len, continuous=continuous, n_points=n_points)


# --------------------------------------------------------------------------- writer

_SPECTRUM = (
    '      <spectrum defaultArrayLength="0" id="spectrum={i}" index="{i}">\n'
    '        <referenceableParamGroupRef ref="spectrum1"/>\n'
    '        <scanList count="1">\n'
    '          <cvParam cvRef="MS" accession="MS:1000795" name="no combination" value=""/>\n'
    '          <scan>\n'
    '            <cvParam cvRef="IMS" accession="IMS:1000050" name="position x" value="{x}"/>\n'
    '            <cvParam cvRef="IMS" accession="IMS:1000051" name="position y" value="{y}"/>\n'
    '          </scan>\n'
    '        </scanList>\n'
    '        <binaryDataArrayList count="2">\n'
    '          <binaryDataArray encodedLength="0">\n'
    '            <referenceableParamGroupRef ref="mzArray"/>\n'
    '            <cvParam cvRef="IMS" accession="IMS:1000103" name="external array length" value="{ml}"/>\n'
    '            <cvParam cvRef="IMS" accession="IMS:1000104" name="external encoded length" value="{me}"/>\n'
    '            <cvParam cvRef="IMS" accession="IMS:1000102" name="external offset" value="{mo}"/>\n'
    '            <binary/>\n'
    '          </binaryDataArray>\n'
    '          <binaryDataArray encodedLength="0">\n'
    '            <referenceableParamGroupRef ref="intensityArray"/>\n'
    '            <cvParam cvRef="IMS" accession="IMS:1000103" name="external array length" value="{il}"/>\n'
    '            <cvParam cvRef="IMS" accession="IMS:1000104" name="external encoded length" value="{ie}"/>\n'
    '            <cvParam cvRef="IMS" accession="IMS:1000102" name="external offset" value="{io}"/>\n'
    '            <binary/>\n'
    '          </binaryDataArray>\n'
    '        </binaryDataArrayList>\n'
    '      </spectrum>\n'
)


def _xml_attr(text: str) -> str:
    from xml.sax.saxutils import escape

    return escape(str(text), {'"': "&quot;"})


def _header_xml(*, uuid: str, sha1: str, mode: str, spectrum_type: str, int_dtype: str, ny: int, nx: int,
                pixel_size_um: tuple[float, float] | None, run_id: str, n: int, start_time: str | None = None) -> str:
    from ionscope import __version__

    mode_acc = "IMS:1000030" if mode == "continuous" else "IMS:1000031"
    st_acc = "MS:1000127" if spectrum_type == "centroid" else "MS:1000128"
    int_acc, int_name = _DTYPE_NAMES[int_dtype]
    size = ""
    if pixel_size_um is not None:
        size = (f'      <cvParam cvRef="IMS" accession="IMS:1000046" name="pixel size (x)" value="{pixel_size_um[1]!r}" '
                'unitCvRef="UO" unitAccession="UO:0000017" unitName="micrometer"/>\n'
                f'      <cvParam cvRef="IMS" accession="IMS:1000047" name="pixel size y" value="{pixel_size_um[0]!r}" '
                'unitCvRef="UO" unitAccession="UO:0000017" unitName="micrometer"/>\n')
    stamp = f' startTimeStamp="{_xml_attr(start_time)}"' if start_time else ""
    return f"""<?xml version="1.0" encoding="ISO-8859-1"?>
<mzML xmlns="http://psi.hupo.org/ms/mzml" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" version="1.1">
  <cvList count="3">
    <cv id="MS" fullName="Proteomics Standards Initiative Mass Spectrometry Ontology" version="3.65.0" uri="http://psidev.cvs.sourceforge.net/*checkout*/psidev/psi/psi-ms/mzML/controlledVocabulary/psi-ms.obo"/>
    <cv id="UO" fullName="Unit Ontology" version="12:10:2011" uri="http://obo.cvs.sourceforge.net/*checkout*/obo/obo/ontology/phenotype/unit.obo"/>
    <cv id="IMS" fullName="Imaging MS Ontology" version="0.9.1" uri="http://www.maldi-msi.org/download/imzml/imagingMS.obo"/>
  </cvList>
  <fileDescription>
    <fileContent>
      <cvParam cvRef="MS" accession="MS:1000579" name="MS1 spectrum" value=""/>
      <cvParam cvRef="MS" accession="{st_acc}" name="{spectrum_type} spectrum" value=""/>
      <cvParam cvRef="IMS" accession="{mode_acc}" name="{mode}" value=""/>
      <cvParam cvRef="IMS" accession="IMS:1000080" name="universally unique identifier" value="{{{uuid}}}"/>
      <cvParam cvRef="IMS" accession="IMS:1000091" name="ibd SHA-1" value="{sha1}"/>
    </fileContent>
  </fileDescription>
  <referenceableParamGroupList count="4">
    <referenceableParamGroup id="mzArray">
      <cvParam cvRef="MS" accession="MS:1000576" name="no compression" value=""/>
      <cvParam cvRef="MS" accession="MS:1000514" name="m/z array" value="" unitCvRef="MS" unitAccession="MS:1000040" unitName="m/z"/>
      <cvParam cvRef="MS" accession="MS:1000523" name="64-bit float" value=""/>
      <cvParam cvRef="IMS" accession="IMS:1000101" name="external data" value="true"/>
    </referenceableParamGroup>
    <referenceableParamGroup id="intensityArray">
      <cvParam cvRef="MS" accession="MS:1000576" name="no compression" value=""/>
      <cvParam cvRef="MS" accession="MS:1000515" name="intensity array" value="" unitCvRef="MS" unitAccession="MS:1000131" unitName="number of detector counts"/>
      <cvParam cvRef="MS" accession="{int_acc}" name="{int_name}" value=""/>
      <cvParam cvRef="IMS" accession="IMS:1000101" name="external data" value="true"/>
    </referenceableParamGroup>
    <referenceableParamGroup id="scan1">
      <cvParam cvRef="MS" accession="MS:1000093" name="increasing m/z scan" value=""/>
    </referenceableParamGroup>
    <referenceableParamGroup id="spectrum1">
      <cvParam cvRef="MS" accession="MS:1000579" name="MS1 spectrum" value=""/>
      <cvParam cvRef="MS" accession="MS:1000511" name="ms level" value="1"/>
      <cvParam cvRef="MS" accession="{st_acc}" name="{spectrum_type} spectrum" value=""/>
      <cvParam cvRef="MS" accession="MS:1000130" name="positive scan" value=""/>
    </referenceableParamGroup>
  </referenceableParamGroupList>
  <softwareList count="1">
    <software id="ionscope" version="{__version__}">
      <cvParam cvRef="MS" accession="MS:1000799" name="custom unreleased software tool" value="ionscope"/>
    </software>
  </softwareList>
  <scanSettingsList count="1">
    <scanSettings id="scanSettings1">
      <cvParam cvRef="IMS" accession="IMS:1000401" name="top down" value=""/>
      <cvParam cvRef="IMS" accession="IMS:1000411" name="one way" value=""/>
      <cvParam cvRef="IMS" accession="IMS:1000480" name="horizontal line scan" value=""/>
      <cvParam cvRef="IMS" accession="IMS:1000491" name="linescan left right" value=""/>
      <cvParam cvRef="IMS" accession="IMS:1000042" name="max count of pixels x" value="{nx}"/>
      <cvParam cvRef="IMS" accession="IMS:1000043" name="max count of pixels y" value="{ny}"/>
{size}    </scanSettings>
  </scanSettingsList>
  <instrumentConfigurationList count="1">
    <instrumentConfiguration id="IC1"/>
  </instrumentConfigurationList>
  <dataProcessingList count="1">
    <dataProcessing id="ionscope_export">
      <processingMethod order="0" softwareRef="ionscope">
        <cvParam cvRef="MS" accession="MS:1000530" name="file format conversion" value="Output to imzML"/>
      </processingMethod>
    </dataProcessing>
  </dataProcessingList>
  <run defaultInstrumentConfigurationRef="IC1" id="{run_id}"{stamp}>
    <spectrumList count="{n}" defaultDataProcessingRef="ionscope_export">
"""


def write_imzml(path: str | os.PathLike, mass: Any, counts: Any, *, pixel_size_um: float | Sequence[float] | None = None,
                mode: str = "processed", spectrum_type: str = "centroid", skip_empty: bool = False,
                start_time: str | None = None, overwrite: bool = False) -> tuple[Path, Path]:
    """Write an imzML data set (``X.imzML`` + ``X.ibd``), each file atomically.

    Parameters
    ----------
    path : str or path-like
        The .imzML path (``.imzML`` in any case); the .ibd is written beside it with the same stem.
    mass : array_like
        Masses in u (m/z of singly charged ions). Continuous mode: (n_mass,), increasing.
        Processed mode: (ny, nx, n_peak), each pixel's masses first and NaN after them (the
        reader's ``peak_mass`` model).
    counts : array_like
        Counts, (ny, nx, n_mass) or (ny, nx, n_peak), finite and >= 0. Integer counts are
        stored as 32-bit integers, anything else as 32-bit floats.
    pixel_size_um : float or (y, x) pair, optional
        Pixel size in micrometre (IMS:1000046 / IMS:1000047); None writes no pixel size.
    mode : {"processed", "continuous"}
        One m/z array per pixel, or one for all.
    spectrum_type : {"centroid", "profile"}
        What the spectra are.
    skip_empty : bool
        Leave out pixels without counts (as IONTOF SurfaceLab does); the reader gives them 0.
    start_time : str, optional
        The acquisition's start, ISO 8601 (the ``<run>``'s ``startTimeStamp``; the reader gives it
        as ``attrs["start_time"]``, which ``--cycler`` uses).
    overwrite : bool
        Replace existing files.

    Returns
    -------
    (pathlib.Path, pathlib.Path)
        The .imzML and .ibd paths.

    Raises
    ------
    ConfigError
        Unknown ``mode`` / ``spectrum_type``, a pixel size that is not positive.
    DimensionError
        Shapes that do not match the mode.
    InputError
        Non-finite or negative counts, masses not finite where counts are, a path not ending
        in .imzML; OutputExistsError when a file exists and ``overwrite`` is False.

    Examples
    --------
    >>> import tempfile
    >>> from pathlib import Path
    >>> import numpy as np
    >>> from ionscope.io import write_imzml, load
    >>> tmp = Path(tempfile.mkdtemp())
    >>> mz = np.array([[[7.016, np.nan]], [[6.015, 7.016]]])
    >>> xml, ibd = write_imzml(tmp / "a.imzML", mz, np.array([[[3, 0]], [[1, 4]]]), pixel_size_um=0.1)
    >>> dict(load(xml).sizes)
    {'y': 2, 'x': 1, 'peak': 2}
    """
    import hashlib

    from ionscope.io import atomic_path, check_output

    if mode not in ("processed", "continuous"):
        raise ConfigError(f"mode={mode!r}: choose 'processed' (a mass list per pixel) or 'continuous' (one mass axis)")
    if spectrum_type not in ("centroid", "profile"):
        raise ConfigError(f"spectrum_type={spectrum_type!r}: choose 'centroid' or 'profile'")
    path = Path(path)
    if path.suffix.lower() != ".imzml":
        raise InputError(f"{path}: an imzML data set is written to a .imzML path (the .ibd goes beside it)")
    ibd = path.with_suffix(".ibd")
    check_output(path, overwrite=overwrite)
    check_output(ibd, overwrite=overwrite)
    pixel = None
    if pixel_size_um is not None:
        values = np.atleast_1d(np.asarray(pixel_size_um, dtype=np.float64))
        if values.size not in (1, 2) or not np.all(np.isfinite(values)) or np.any(values <= 0):
            raise ConfigError(f"pixel_size_um={pixel_size_um!r}: give a positive size in micrometre, or (y, x)")
        pixel = (float(values[0]), float(values[-1]))
    counts = np.asarray(counts)
    mass = np.asarray(mass, dtype=np.float64)
    if counts.ndim != 3 or counts.size == 0:
        raise DimensionError(f"counts has shape {counts.shape}; give (ny, nx, n_mass) or (ny, nx, n_peak)")
    if not (np.issubdtype(counts.dtype, np.integer) or np.issubdtype(counts.dtype, np.floating)):
        raise InputError(f"counts has dtype {counts.dtype}; give numbers")
    if np.issubdtype(counts.dtype, np.floating) and not np.all(np.isfinite(counts)):
        raise InputError(f"counts holds {int(np.count_nonzero(~np.isfinite(counts)))} NaN or infinite values; "
                         "give finite counts (0 where nothing was detected)")
    if np.any(counts < 0):
        raise InputError(f"counts holds {int(np.count_nonzero(counts < 0))} negative values; counts are >= 0")
    integer = np.issubdtype(counts.dtype, np.integer)
    if integer and counts.max() > np.iinfo(np.int32).max:
        integer = False
    int_dtype = "<i4" if integer else "<f4"
    ny, nx, npts = counts.shape
    flat = counts.reshape(ny * nx, npts).astype(int_dtype)
    if mode == "continuous":
        if mass.shape != (npts,):
            raise DimensionError(f"continuous mode: mass has shape {mass.shape}, counts {counts.shape}; give "
                                 f"mass ({npts},) - one axis for all pixels")
        if not np.all(np.isfinite(mass)):
            raise InputError("mass holds NaN or infinite values; give a finite mass axis in u")
        lengths = np.full(ny * nx, npts, dtype=np.int64)
        valid = None
    else:
        if mass.shape != counts.shape:
            raise DimensionError(f"processed mode: mass has shape {mass.shape}, counts {counts.shape}; give both "
                                 "(ny, nx, n_peak), masses NaN-padded")
        valid = np.isfinite(mass.reshape(ny * nx, npts))
        stray = np.count_nonzero((flat != 0) & ~valid)
        if stray:
            raise InputError(f"{stray} counts sit at NaN masses; a peak with counts needs its mass (NaN only pads)")
        lengths = valid.sum(axis=1).astype(np.int64)
    keep = np.arange(ny * nx)
    if skip_empty:
        keep = keep[np.any(flat != 0, axis=1)]
    if keep.size == 0:
        raise InputError("every pixel is empty and skip_empty=True: nothing to write")
    lengths = lengths[keep]
    mz_size, int_size = 8, 4
    # layout: UUID | (continuous: one mass axis) | every pixel's masses | every pixel's counts
    if mode == "continuous":
        mz_bytes = mass.astype("<f8").tobytes()
        mz_off = np.full(keep.size, 16, dtype=np.int64)
        int_data = flat[keep]
        int_start = 16 + len(mz_bytes)
    else:
        mz_values = mass.reshape(ny * nx, npts)[keep][valid[keep]].astype("<f8")
        int_data = flat[keep][valid[keep]]
        mz_bytes = mz_values.tobytes()
        mz_off = 16 + (np.cumsum(lengths) - lengths) * mz_size
        int_start = 16 + len(mz_bytes)
    int_off = int_start + (np.cumsum(lengths) - lengths) * int_size
    ident = uuidlib.uuid4()
    payload = [ident.bytes, mz_bytes, np.ascontiguousarray(int_data).tobytes()]
    sha1 = hashlib.sha1()
    for part in payload:
        sha1.update(part)
    ys, xs = np.divmod(keep, nx)
    header = _header_xml(uuid=str(ident).upper(), sha1=sha1.hexdigest().upper(), mode=mode,
                         spectrum_type=spectrum_type, int_dtype=int_dtype, ny=ny, nx=nx, pixel_size_um=pixel,
                         run_id=re.sub(r"[^\w.-]", "_", path.stem) or "run", n=keep.size, start_time=start_time)
    me = (lengths * mz_size).tolist()
    ie = (lengths * int_size).tolist()
    body = "".join(
        _SPECTRUM.format(i=i + 1, x=x + 1, y=y + 1, ml=ln, me=a, mo=mo, il=ln, ie=b, io=io)
        for i, (x, y, ln, a, mo, b, io) in enumerate(zip(xs.tolist(), ys.tolist(), lengths.tolist(), me,
                                                        mz_off.tolist(), ie, int_off.tolist()))
    )
    text = header + body + "    </spectrumList>\n  </run>\n</mzML>\n"
    # the .ibd first: a reader that finds the .imzML finds its binary complete
    with atomic_path(ibd, overwrite=overwrite) as tmp:
        with open(tmp, "wb") as fh:
            for part in payload:
                fh.write(part)
    with atomic_path(path, overwrite=overwrite) as tmp:
        tmp.write_bytes(text.encode("latin-1"))
    return path, ibd
