"""The ionscope array model: labelled, unit-carrying, provenance-tracking arrays.

Every signal in ionscope is an :class:`xarray.DataArray` whose dims come from a fixed
vocabulary (:data:`DIMS`), whose coordinates and data carry their physical unit in
``attrs["units"]``, and whose ``attrs["provenance"]`` is a JSON list of the processing steps
that made it. Each step is ``{"step", "version", "params", "inputs"}``; ``inputs`` holds a
``sha256:<hex>`` digest of every input file or array (``dask:<token>`` for lazy arrays, whose
bytes are not read just to be hashed).

The helpers here are the only place that knows these conventions; wrappers in the technique
packages call :func:`signal` to build outputs, the ``require_*`` checks to validate inputs and
:func:`with_provenance` to record what they did.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr
import xxhash

from ionscope.errors import (
    DimensionError,
    EmptyDataError,
    InputError,
    NonFiniteError,
    NonUniformAxisError,
)

#: The dim vocabulary and each dim's default unit.
DIMS: dict[str, str] = {
    "time": "s",
    "shift": "rad",
    "y": "nm",
    "x": "nm",
    "position": "nm",
    "energy": "eV",
    "mass": "u",
}
#: Auxiliary dims for things that are not physical axes: factor components, log records, particles,
#: TOF-SIMS ions (an ion-image stack), states of charge, phases, the peaks of a processed (centroid)
#: spectrum and the milling steps of a depth series.
AUX_DIMS: dict[str, str] = {
    "component": "1", "record": "1", "particle": "1", "ion": "1", "state": "1", "phase": "1", "phases": "1",
    "peak": "1", "depth": "1",
}

#: Canonical dim order, used to order dims read from files.
DIM_ORDER: tuple[str, ...] = ("time", "state", "depth", "shift", "ion", "y", "x", "position", "energy", "mass", "peak")

PROVENANCE_KEY = "provenance"


def _version() -> str:
    from ionscope import __version__

    return __version__


# --------------------------------------------------------------------------- construction


def uniform_coord(size: int, scale: float = 1.0, offset: float = 0.0) -> np.ndarray:
    """Evenly spaced coordinate values ``offset + scale * arange(size)`` (float64)."""
    return offset + scale * np.arange(int(size), dtype=np.float64)


def signal(
    data: Any,
    dims: Sequence[str],
    *,
    name: str,
    units: str,
    coords: Mapping[str, Any] | None = None,
    coord_units: Mapping[str, str] | None = None,
    long_name: str | None = None,
    attrs: Mapping[str, Any] | None = None,
) -> xr.DataArray:
    """Build a DataArray that follows the ionscope array model.

    Parameters
    ----------
    data : array_like or dask.array.Array
        The values; kept as they are (a dask array stays lazy).
    dims : sequence of str
        Dim names from :data:`DIMS` (or :data:`AUX_DIMS`).
    name : str
        Variable name, e.g. ``"li_fraction"``.
    units : str
        Unit of the data values (``"1"`` for dimensionless).
    coords : mapping, optional
        Per dim either a 1-D array of coordinate values or a float pixel size (the coordinate
        then starts at 0). Dims without an entry get pixel indices in unit ``"px"``.
    coord_units : mapping, optional
        Unit per dim; defaults to the vocabulary's unit for calibrated dims.
    long_name : str, optional
        Human-readable description stored in ``attrs["long_name"]``.
    attrs : mapping, optional
        Further metadata (e.g. ``beam_energy_kV``).

    Returns
    -------
    xarray.DataArray
        With an empty provenance list.
    """
    dims = tuple(dims)
    vocab = DIMS | AUX_DIMS
    unknown = [d for d in dims if d not in vocab]
    if unknown:
        raise DimensionError(
            f"unknown dim(s) {unknown}; use names from the vocabulary {sorted(vocab)}"
        )
    if len(set(dims)) != len(dims):
        raise DimensionError(f"repeated dim in {dims}; every dim name may appear once")
    ndim = np.ndim(data) if not hasattr(data, "ndim") else data.ndim
    if ndim != len(dims):
        raise DimensionError(f"data has {ndim} dimensions but {len(dims)} dims were named: {dims}")
    coords = dict(coords or {})
    coord_units = dict(coord_units or {})
    shape = dict(zip(dims, data.shape if hasattr(data, "shape") else np.shape(data)))
    built: dict[str, xr.Variable] = {}
    for dim in dims:
        value = coords.get(dim)
        if value is None:
            # an index: pixels along a physical dim, a count ("1") along an auxiliary one
            values, unit = np.arange(shape[dim], dtype=np.float64), coord_units.get(dim, "px" if dim in DIMS else "1")
        elif np.ndim(value) == 0:
            values, unit = uniform_coord(shape[dim], float(value)), coord_units.get(dim, vocab[dim])
        else:
            values = np.asarray(value)
            if values.shape != (shape[dim],):
                raise DimensionError(
                    f"coordinate {dim!r} has shape {values.shape}, expected ({shape[dim]},)"
                )
            unit = coord_units.get(dim, vocab[dim])
        built[dim] = xr.Variable(dim, values, attrs={"units": unit})
    meta = dict(attrs or {})
    meta["units"] = units
    if long_name:
        meta["long_name"] = long_name
    meta.setdefault(PROVENANCE_KEY, "[]")
    return xr.DataArray(data, dims=dims, coords=built, name=name, attrs=meta)


# --------------------------------------------------------------------------- units and axes


def units_of(obj: xr.DataArray | xr.Variable) -> str:
    """The unit string of an array or coordinate (``"1"`` when none is recorded)."""
    return str(obj.attrs.get("units", "1"))


def axis_calibration(da: xr.DataArray, dim: str, *, rtol: float = 1e-4) -> tuple[float, float, str]:
    """Offset, step and unit of an evenly spaced coordinate.

    Raises
    ------
    NonUniformAxisError
        If the coordinate's steps differ by more than ``rtol`` of the mean step.
    """
    if dim not in da.dims:
        raise DimensionError(f"array has no dim {dim!r} (dims: {list(da.dims)})")
    coord = da.coords.variables.get(dim)  # a Variable: cheaper than building da[dim]
    if coord is None:
        coord = da[dim].variable
    values = np.asarray(coord.values, dtype=np.float64)
    unit = units_of(coord)
    if values.size < 2:
        return (float(values[0]) if values.size else 0.0), 1.0, unit
    steps = np.diff(values)
    step = float(steps.mean())
    if step == 0 or float(np.max(np.abs(steps - step))) > rtol * abs(step):
        raise NonUniformAxisError(
            f"the {dim!r} axis is not evenly spaced (steps from {steps.min():.6g} to "
            f"{steps.max():.6g} {unit}); resample it onto a uniform grid first"
        )
    return float(values[0]), step, unit


# --------------------------------------------------------------------------- validation


def require_dims(da: xr.DataArray, *allowed: Sequence[str], what: str = "this operation") -> None:
    """Raise :class:`DimensionError` unless ``da.dims`` equals one of ``allowed`` (as sets)."""
    have = set(da.dims)
    if any(have == set(option) for option in allowed):
        return
    options = " or ".join("(" + ", ".join(o) + ")" for o in allowed)
    raise DimensionError(
        f"{what} needs an array with dims {options}, got ({', '.join(map(str, da.dims))}) "
        f"of shape {tuple(da.shape)}; use --dims to name the axes of an uncalibrated file"
    )


def map_series(da: Any, what: str = "input") -> xr.DataArray:
    """``da`` checked as a map series ``(time, y, x)`` or one map ``(y, x)`` with finite values,
    and transposed to that order (errors name ``what``)."""
    if not isinstance(da, xr.DataArray):
        raise InputError(
            f"{what} must be an xarray.DataArray with dims (time, y, x) or (y, x), got "
            f"{type(da).__name__}"
        )
    require_dims(da, ("time", "y", "x"), ("y", "x"), what=what)
    if np.issubdtype(da.dtype, np.complexfloating):
        raise InputError(
            f"{what} is complex ({da.dtype}); the map-series methods work on real values and would "
            "drop the imaginary part - give its real and imaginary parts (or amplitude and phase) "
            "as two real series"
        )
    da = require_finite(da, what)
    return da.transpose(*(("time", "y", "x") if "time" in da.dims else ("y", "x")))


def require_nonempty(da: xr.DataArray, what: str = "input") -> None:
    """Raise :class:`EmptyDataError` if the array has no elements."""
    if da.size == 0:
        raise EmptyDataError(
            f"{what} is empty (shape {tuple(da.shape)}); check the file and the selected region"
        )


def _count_nonfinite(block: np.ndarray) -> np.ndarray:
    return np.array([np.count_nonzero(~np.isfinite(block))]) if block.size else np.zeros(1, int)


def require_finite(da: xr.DataArray, what: str = "input") -> xr.DataArray:
    """Check that every value is finite.

    For numpy-backed arrays the check runs now and raises :class:`NonFiniteError`. For
    dask-backed arrays it is inserted into the graph, so the data stay lazy and the error is
    raised when the blocks are computed. Returns the (possibly wrapped) array.
    """
    require_nonempty(da, what)
    if not np.issubdtype(da.dtype, np.inexact):
        return da
    if is_lazy(da):
        def check(block: np.ndarray) -> np.ndarray:
            bad = int(_count_nonfinite(block)[0])
            if bad:
                raise NonFiniteError(
                    f"{what} holds {bad} NaN/inf value(s) in a block of shape {block.shape}; "
                    "mask or interpolate them before processing"
                )
            return block

        return da.copy(data=da.data.map_blocks(check, dtype=da.dtype))
    bad = int(_count_nonfinite(np.asarray(da.values)).sum())
    if bad:
        first = np.argwhere(~np.isfinite(np.asarray(da.values)))[0]
        where = ", ".join(f"{d}={i}" for d, i in zip(da.dims, first))
        raise NonFiniteError(
            f"{what} holds {bad} NaN/inf value(s) (first at {where}); mask or interpolate them "
            "before processing"
        )
    return da


def is_lazy(obj: xr.DataArray | xr.Dataset) -> bool:
    """True if the array (or any variable of a Dataset) is backed by dask."""
    if isinstance(obj, xr.Dataset):
        return any(is_lazy(v) for v in obj.data_vars.values())
    return obj.chunks is not None


# --------------------------------------------------------------------------- provenance


def provenance(obj: xr.DataArray | xr.Dataset) -> list[dict[str, Any]]:
    """The list of processing steps recorded on an array or Dataset."""
    raw = obj.attrs.get(PROVENANCE_KEY, "[]")
    if isinstance(raw, list):
        return list(raw)
    try:
        steps = json.loads(raw)
    except (TypeError, ValueError):
        steps = None
    if not isinstance(steps, list) or not all(isinstance(s, dict) for s in steps):
        from ionscope.errors import FormatError

        name = getattr(obj, "name", None) or obj.attrs.get("source_file") or "the data"
        raise FormatError(
            f"the provenance recorded on {name} is not a JSON list of steps ({str(raw)[:60]!r}); the file was "
            "edited or written by another tool - remove or repair its 'provenance' attribute"
        )
    return steps


def input_digest(item: Any, *, read_files: bool = True) -> str:
    """A digest that identifies an input: ``sha256:<hex>`` for files (``sha256sum`` can check
    it), ``xxh3-128:<hex>`` for in-memory arrays without provenance (XXH3, 128 bit, over dtype,
    shape and values: ~50x faster than sha256, so recording an input never costs more than
    reading it; it identifies data, it is not a security seal), ``lineage-sha256:<hex>`` for
    arrays that carry provenance (the digest of that history, which starts from the raw files'
    sha256, with shape and dtype), ``dask:<token>`` for lazy arrays without one (deterministic,
    computed without reading the data).

    Files are hashed with :func:`file_sha256` (large ones once, then from its cache), also when
    they are opened lazily. With ``read_files=False`` a file is identified by
    ``file:<bytes>:<mtime_ns>`` instead (for callers that must not read it).
    """
    if isinstance(item, (str, os.PathLike)):
        path = Path(item)
        if not read_files:
            stat = path.stat()
            return f"file:{stat.st_size}:{stat.st_mtime_ns}"
        return file_sha256(path)
    if isinstance(item, xr.DataArray) and provenance(item):
        # A processed array is identified by its lineage: the steps that made it, which start
        # from sha256 digests of the raw files, plus its shape and dtype. Hashing the values of
        # every intermediate array again would cost more than the processing itself.
        h = hashlib.sha256()
        h.update(f"{item.dtype.str}{tuple(item.shape)}{tuple(item.dims)}".encode())
        h.update(str(item.attrs[PROVENANCE_KEY]).encode())
        return "lineage-sha256:" + h.hexdigest()
    if isinstance(item, (xr.DataArray, xr.Variable)):
        if item.chunks is not None:
            import dask.base

            return "dask:" + dask.base.tokenize(item.data)
        item = item.values
    arr = np.ascontiguousarray(np.asarray(item))
    h = xxhash.xxh3_128()
    h.update(f"{arr.dtype.str}{arr.shape}".encode())
    h.update(memoryview(arr).cast("B"))
    return "xxh3-128:" + h.hexdigest()


#: Files at least this large keep their sha256 in the digest cache (hashing runs at ~1.7 GB/s here).
DIGEST_CACHE_MIN_BYTES = 64 << 20


def _digest_cache() -> Path:
    """Where sha256 digests of large inputs are kept: ``$IONSCOPE_CACHE`` or ``~/.cache/ionscope``."""
    root = os.environ.get("IONSCOPE_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "ionscope")
    return Path(root) / "sha256"


def file_sha256(path: str | os.PathLike) -> str:
    """``sha256:<hex>`` of a file (or of a folder such as a Zarr store: its files' relative paths
    and bytes, in sorted order), as ``sha256sum`` computes it for a file.

    A file larger than :data:`DIGEST_CACHE_MIN_BYTES` is hashed once: its digest is kept in a small
    cache keyed by the file's absolute path, size, inode and modification time, so opening a
    10 GB series lazily a second time does not read it again just to identify it. Any change to
    the file changes the key. The cache is a convenience: when it cannot be written, the digest is
    simply computed again next time.
    """
    path = Path(path)
    key = None
    if path.is_file() and path.stat().st_size >= DIGEST_CACHE_MIN_BYTES:
        st = path.stat()
        ident = f"{path.resolve()}\0{st.st_size}\0{st.st_ino}\0{st.st_mtime_ns}"
        key = _digest_cache() / hashlib.sha256(ident.encode()).hexdigest()
        try:
            cached = key.read_text().strip()
            if cached.startswith("sha256:"):
                return cached
        except OSError:
            pass
    h = hashlib.sha256()
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    for f in files:
        if path.is_dir():
            h.update(str(f.relative_to(path)).encode())
        with open(f, "rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                h.update(chunk)
    digest = "sha256:" + h.hexdigest()
    if key is not None:
        try:  # atomic: a reader sees the whole digest or none
            key.parent.mkdir(parents=True, exist_ok=True)
            tmp = key.with_name(f".{key.name}.{os.getpid()}")
            tmp.write_text(digest)
            os.replace(tmp, key)
        except OSError:
            pass
    return digest


def jsonable(value: Any) -> Any:
    """``value`` as plain JSON types (numpy scalars and arrays, paths, tuples converted;
    anything else by its ``repr``)."""
    if value is None or isinstance(value, (bool, int, float, str)):  # the common case first
        return value
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    return repr(value)


def plain_json(value: Any) -> Any:
    """:func:`jsonable`, with NaN and infinities as None (JSON has neither): what a command's
    ``summary.json`` holds.

    >>> plain_json({"a": float("nan"), "b": [1.5, float("inf")]})
    {'a': None, 'b': [1.5, None]}
    """
    value = jsonable(value)
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: plain_json(v) for k, v in value.items()}
    if isinstance(value, list):
        return [plain_json(v) for v in value]
    return value


def with_provenance(
    obj: xr.DataArray | xr.Dataset,
    step: str,
    params: Mapping[str, Any] | None = None,
    inputs: Iterable[Any] = (),
    history: Iterable[dict[str, Any]] | None = None,
    read_files: bool = True,
    variables: Iterable[str] | bool = (),
):
    """Return a shallow copy of ``obj`` with one provenance step appended.

    Parameters
    ----------
    obj : DataArray or Dataset
        The result of the step.
    step : str
        Name of the step, e.g. ``"ionscope.eels.mlls_fit"``.
    params : mapping, optional
        The parameters that determine the result (JSON-serialisable after conversion).
    inputs : iterable
        Input files or arrays; each is recorded by :func:`input_digest`.
    history : iterable of dict, optional
        Steps that precede this one (usually ``provenance(input_array)``); defaults to the
        steps already on ``obj``.
    read_files : bool
        Hash input files (default) or identify them by size and modification time.
    variables : iterable of str or bool
        For a Dataset: data variables that get the same provenance (``True``: all), so each
        one saved or passed on alone still says how it was made.
    """
    steps = list(history) if history is not None else provenance(obj)
    steps.append(
        {
            "step": step,
            "version": _version(),
            "params": jsonable(dict(params or {})),
            "inputs": [input_digest(i, read_files=read_files) for i in inputs],
        }
    )
    text = json.dumps(steps)
    out = obj.copy(deep=False)
    out.attrs = dict(obj.attrs)
    out.attrs[PROVENANCE_KEY] = text
    if isinstance(out, xr.Dataset) and variables is not False:
        names = list(out.data_vars) if variables is True else list(variables)
        for name in names:  # the shallow copy has its own Variable objects: obj is untouched
            var = out.variables[name]
            var.attrs = {**var.attrs, PROVENANCE_KEY: text}
    return out


__all__ = [
    "DIMS",
    "AUX_DIMS",
    "plain_json",
    "DIM_ORDER",
    "uniform_coord",
    "signal",
    "units_of",
    "axis_calibration",
    "require_dims",
    "require_nonempty",
    "map_series",
    "require_finite",
    "is_lazy",
    "provenance",
    "input_digest",
    "file_sha256",
    "jsonable",
    "with_provenance",
]
