"""Readers: vendor formats through RosettaSciIO, plus .npy, .zarr and .nc.

Each reader returns an :class:`xarray.Dataset` whose attrs name the ``primary`` variable.
Vendor files become a one-variable Dataset built with :func:`ionscope.data.signal`, with the
key metadata (title, signal type, beam energy) lifted into attrs and a first provenance step
that records the source file.
"""

from __future__ import annotations

import copy
import functools
import importlib
import json
import logging
import os
import re
import sys
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from ionscope.data import DIM_ORDER, signal, with_provenance
from ionscope.errors import (
    DimensionError, FormatError, InputError, IonscopeError, IonscopeWarning, MissingReaderError,
)
from ionscope.io._axes import assign_dims
from ionscope.io._imzml import IMZML_FORMATS
from ionscope.io._iontof import IONTOF_FORMATS
from ionscope.io._spm import SPM_FORMATS, read_spm

#: Our own formats (read by xarray / numpy).
NATIVE = {".zarr": "Zarr", ".nc": "netCDF", ".npy": "NumPy"}

class _WarningsHandler(logging.Handler):
    """RosettaSciIO's log records as :class:`~ionscope.errors.IonscopeWarning` s: its own handler
    prints colour-coded lines on stdout, in the middle of a command's output."""

    def emit(self, record: logging.LogRecord) -> None:
        # point the warning at RosettaSciIO's line that logged it, not into the logging module
        level, frame, here = 2, sys._getframe(1), os.path.dirname(logging.__file__)
        while frame is not None and frame.f_code.co_filename.startswith(here):
            level, frame = level + 1, frame.f_back
        warnings.warn(f"RosettaSciIO ({record.name}): {record.getMessage()}", IonscopeWarning, stacklevel=level)


@functools.cache
def _route_rsciio_logging() -> None:
    """Replace the stdout handler RosettaSciIO installs on its logger (once per process)."""
    logger = logging.getLogger("rsciio")
    for handler in list(logger.handlers):
        if isinstance(handler, logging.StreamHandler) and getattr(handler, "stream", None) is sys.stdout:
            logger.removeHandler(handler)
    logger.addHandler(_WarningsHandler(logging.WARNING))
    logger.propagate = False


#: Extension -> RosettaSciIO plugins to try, in order (some extensions are shared).
def _rsciio_plugins() -> dict[str, list[tuple[str, str]]]:
    import rsciio

    _route_rsciio_logging()
    table: dict[str, list[tuple[str, str]]] = {}
    preferred = {"hspy": 0, "emd": 0, "tiff": 0, "digitalmicrograph": 0, "msa": 0}
    for plugin in rsciio.IO_PLUGINS:
        api = plugin["api"]
        for ext in {e.lower() for e in plugin["file_extensions"]}:
            table.setdefault("." + ext, []).append((plugin["name"], api))
    for ext, plugins in table.items():
        plugins.sort(key=lambda p: preferred.get(p[1].rsplit(".", 1)[-1], 1))
    for ext in NATIVE:
        table.pop(ext, None)  # read natively
    return table


def prime_reader(suffix: str) -> None:
    """Import the reader of files ending in ``suffix`` now (a live session's first frame then
    does not wait for it)."""
    for _, api in _rsciio_plugins().get(suffix.lower(), [])[:1]:
        importlib.import_module(api)


def supported_extensions() -> list[str]:
    """Every file extension :func:`ionscope.io.load` can read."""
    from ionscope.io._cycler import CYCLER_EXTENSIONS

    return sorted(set(_rsciio_plugins()) | set(NATIVE) | set(SPM_FORMATS) | set(IMZML_FORMATS) | set(IONTOF_FORMATS)
                  | set(CYCLER_EXTENSIONS))


def read(path: Path, *, lazy: bool, dims: Sequence[str] | None, variable: str | None = None) -> xr.Dataset:
    """Read ``path`` into a Dataset (validated existence and non-emptiness beforehand).

    A vendor file holding several signals gives one variable per signal, named by its title
    (:func:`read_signals`); ``variable`` (a name or a position ``"N"``) reads only that one.
    """
    parts = read_signals(path, lazy=lazy, dims=dims, variable=variable)
    return parts[0] if len(parts) == 1 else combine_signals(path, parts)


def read_signals(path: Path, *, lazy: bool, dims: Sequence[str] | None,
                 variable: str | None = None) -> list[xr.Dataset]:
    """Every signal of ``path`` as its own one-variable Dataset, in file order; our own formats
    (.zarr, .nc, .npy) give one Dataset with all their variables. ``variable`` keeps one
    signal of a multi-signal file (by name or position); ``dims`` then names its axes only."""
    ext = path.suffix.lower()
    if ext in NATIVE:
        reader = {".zarr": _read_zarr, ".nc": _read_netcdf}.get(ext)
        if reader is _read_zarr and variable is not None:  # read that variable only, not the whole store
            ds = _read_zarr(path, lazy=lazy, variable=variable)
            _check_named_dims(ds, path, dims)
            return [ds]
        ds = reader(path, lazy=lazy) if reader else _read_npy(path, lazy=lazy, dims=dims)
        if reader:
            _check_named_dims(ds, path, dims)
        if variable is None:
            return [ds]
        names = [str(n) for n in ds.data_vars]
        name = names[_pick(path, names, variable, [ds[n] for n in names])]
        return [ds[[name]].assign_attrs(primary=name)]
    if ext in SPM_FORMATS:  # scanning-probe images: our readers (io/_spm.py), one Dataset per file
        return read_spm(path, lazy=lazy, dims=dims, variable=variable)
    if ext in IMZML_FORMATS:  # imzML + .ibd: our reader (io/_imzml.py)
        from ionscope.io._imzml import read_imzml

        return read_imzml(path, lazy=lazy, dims=dims, variable=variable)
    if ext in IONTOF_FORMATS:  # IONTOF .ita/.itm through pySPM (optional extra iontof)
        from ionscope.io._iontof import read_iontof

        return read_iontof(path, lazy=lazy, dims=dims, variable=variable)
    if ext == ".h5":  # Tofwerk / fibTOF TOF-SIMS into the ionscope model (io/_tofwerk.py)
        from ionscope.io._tofwerk import is_tofwerk, read_tofwerk

        if is_tofwerk(path):
            return read_tofwerk(path, lazy=lazy, dims=dims, variable=variable)
    if ext in (".mpr", ".mpt", ".nda", ".ndax", ".res", ".xlsx", ".txt", ".tsv", ".csv"):
        from ionscope.io._cycler import is_cycler_table, load_cycler

        # cycler logs (io/_cycler.py); a .csv only when it is one (RosettaSciIO reads other CSVs)
        if ext != ".csv" or is_cycler_table(path):
            ds = load_cycler(path)
            if variable is None:
                return [ds]
            names = [str(n) for n in ds.data_vars]
            name = names[_pick(path, names, variable, [ds[n] for n in names])]
            return [ds[[name]].assign_attrs(primary=name)]
    plugins = _rsciio_plugins().get(ext)
    if not plugins:
        raise FormatError(
            f"{path}: unknown file type {ext or '(no extension)'!r}; ionscope reads "
            f"{', '.join(supported_extensions())}"
        )
    return _read_rsciio(path, plugins, lazy=lazy, dims=dims, variable=variable)


def describe_signals(parts: Sequence[xr.Dataset]) -> str:
    """``HAADF (y 512, x 512), Plot (position 512)``: the signals of a file, for messages."""
    return ", ".join(
        f"{name} ({', '.join(f'{d} {n}' for d, n in ds[name].sizes.items())})"
        for ds in parts for name in ds.data_vars
    )


def combine_signals(path: Path, parts: Sequence[xr.Dataset]) -> xr.Dataset:
    """The signals of one file as one Dataset (no primary: a command must be told which one).

    Raises
    ------
    InputError
        When their axes disagree (an image and a spectrum image of different sampling), so they
        cannot share dims; the message lists them and how to pick one.
    """
    try:
        ds = xr.merge(parts, join="exact", compat="no_conflicts", combine_attrs="override")
    except (ValueError, xr.MergeError):
        raise InputError(
            f"{path} holds {len(parts)} signals whose axes differ: {describe_signals(parts)}; open one "
            f"as {path.name}:NAME or {path.name}:N (variable= in Python)"
        ) from None
    shared = {k: v for k, v in parts[0].attrs.items() if k in ("source_file", "source_format")}
    history = [json.loads(p.attrs["provenance"]) for p in parts]
    ds.attrs = {**shared, "signals": [str(n) for p in parts for n in p.data_vars],
                "provenance": json.dumps(history[0][:1])}
    return ds


# --------------------------------------------------------------------------- native formats


def _check_named_dims(ds: xr.Dataset, path: Path, dims: Sequence[str] | None) -> None:
    """A store names its axes itself: ``--dims`` may repeat a variable's dims, never rename them
    (it used to be ignored silently)."""
    if dims is None:
        return
    named = {tuple(map(str, v.dims)) for v in ds.data_vars.values()}
    if tuple(dims) not in named:
        shown = " or ".join(",".join(d) for d in sorted(named)) or "none"
        raise DimensionError(
            f"{path} names its axes itself ({shown}); --dims {','.join(dims)} does not match - "
            "--dims is for files without axis names, leave it out"
        )


def _read_zarr(path: Path, *, lazy: bool, variable: str | None = None) -> xr.Dataset:
    """A Zarr store, checked (:mod:`ionscope.io._integrity`); with ``variable`` (name or
    position) only that data variable and its coordinates, the others not read."""
    from ionscope.io._integrity import StoreCheck

    check = StoreCheck.open(path)  # chunk files there (and their sizes): manifest, or what metadata implies
    try:
        ds = xr.open_zarr(path, chunks=None, consolidated=False)
    except Exception as exc:  # zarr raises many kinds; report one clear line
        raise FormatError(
            f"{path}: not a readable Zarr store ({type(exc).__name__}: {_first_line(exc)}); "
            "was it written completely?"
        ) from exc
    if variable is not None:
        names = [str(n) for n in ds.data_vars]
        name = names[_pick(path, names, variable, [ds[n] for n in names])]
        ds = ds[[name]].assign_attrs(primary=name)
    ds = check.finish(ds, lazy=lazy)  # eager: every digest checked, all read; lazy: each chunk when read
    # the variable-length strings save() writes come back as StringDType ("T", zarr 3 with
    # numpy 2) or as object arrays of str (zarr 2): either way fixed-width strings again
    text = {name: ds[name].copy(data=np.array(ds[name].values.tolist(), dtype=str))
            for name, var in ds.variables.items() if var.dtype.kind == "T"
            or var.dtype.kind == "O" and all(isinstance(v, str) for v in np.ravel(var.values))}
    return ds.assign_coords({k: v for k, v in text.items() if k in ds.coords}).assign(
        {k: v for k, v in text.items() if k not in ds.coords})


def _read_netcdf(path: Path, *, lazy: bool) -> xr.Dataset:
    try:
        ds = xr.open_dataset(path, chunks={} if lazy else None)
        if not lazy:
            ds = ds.load()
            ds.close()
    except Exception as exc:
        raise FormatError(
            f"{path}: not a readable netCDF file ({type(exc).__name__}: {_first_line(exc)}); "
            "the file may be truncated"
        ) from exc
    return ds


def _read_npy(path: Path, *, lazy: bool, dims: Sequence[str] | None) -> xr.Dataset:
    try:
        data = np.load(path, mmap_mode="r" if lazy else None, allow_pickle=False)
    except Exception as exc:
        raise FormatError(
            f"{path}: not a readable .npy file ({_first_line(exc)}); the file may be truncated"
        ) from exc
    if lazy:
        import dask.array

        data = dask.array.from_array(data, chunks="auto")
    axes = [{"name": "", "units": "", "scale": 1.0, "offset": 0.0, "size": s} for s in data.shape]
    return _to_dataset(path, data, axes, {}, dims=dims, fmt="NumPy")


# --------------------------------------------------------------------------- RosettaSciIO


def _read_rsciio(path: Path, plugins: list[tuple[str, str]], *, lazy: bool, dims,
                 variable: str | None = None) -> list[xr.Dataset]:
    errors, missing = [], []
    for name, api in plugins:
        try:
            reader = importlib.import_module(api).file_reader
            signals = _read_signals(reader, path, lazy)
        except ModuleNotFoundError as exc:  # an optional package the format needs: not the file's fault
            missing.append((name, exc))
            continue
        except Exception as exc:  # each plugin fails in its own way on foreign bytes
            errors.append(f"{name}: {_first_line(exc)}")
            continue
        signals = [s for s in signals if s.get("axes")]
        if not signals:
            errors.append(f"{name}: no signal in the file")
            continue
        names = signal_names(signals)
        chosen = range(len(signals))
        if variable is not None:
            chosen = [_pick(path, names if len(signals) > 1 else ["data"], variable, [s["data"] for s in signals])]
        elif dims is not None and len(signals) > 1:
            raise DimensionError(
                f"{path} holds {len(signals)} signals ({', '.join(names)}); pick one as {path.name}:NAME "
                "before naming its axes with --dims"
            )
        return [
            _to_dataset(path, signals[i]["data"], signals[i]["axes"], _mapped_metadata(signals[i]), dims=dims,
                        fmt=name, name="data" if len(signals) == 1 else names[i])
            for i in chosen
        ]
    if missing:
        raise MissingReaderError.for_module(path, *missing[0])
    kinds = " or ".join(n for n, _ in plugins)
    raise FormatError(
        f"{path}: could not be read as {kinds} ({'; '.join(errors)}); the file may be truncated, "
        "corrupt or not of the type its extension says"
    )


def signal_names(signals: Sequence[dict]) -> list[str]:
    """Variable names for the signals of one file: each signal's title (``/`` and ``:`` replaced,
    as they separate paths and ``FILE:VARIABLE``), ``signalN`` for untitled or purely numeric
    titles, a ``_N`` suffix for repeated ones."""
    names: list[str] = []
    for i, sig in enumerate(signals):
        title = str(_get(sig.get("metadata") or {}, "General", "title") or "").strip()
        title = re.sub(r"[/:\\]+", "_", title)
        name = title if title and not title.isdigit() else f"signal{i}"
        names.append(f"{name}_{i}" if name in names else name)
    return names


def _pick(path: Path, names: list[str], variable: str, arrays: Sequence[Any]) -> int:
    """The position of ``variable`` (a name, or a position ``"N"``) among ``names``."""
    if variable in names:
        return names.index(variable)
    if variable.isdigit() and int(variable) < len(names):
        return int(variable)
    shapes = ", ".join(f"{n} {tuple(np.shape(a))}" for n, a in zip(names, arrays))
    raise InputError(
        f"{path}: no variable {variable!r}; it holds {len(names)}: {shapes} - pick one by name or position "
        f"({path.name}:{names[0]} or {path.name}:0)"
    )


def check_complete(ds: xr.Dataset, path: Path) -> None:
    """Read the last element of every lazy variable of a file opened lazily: a truncated file
    (whose header still describes the whole) fails here, with a clear error, instead of later in
    the middle of a command. One small read per variable (a dask compute: the loaders
    themselves stay lazy). A Zarr store written by ionscope has every chunk file read and checked
    against its manifest (size and digest, nothing decoded: see :mod:`ionscope.io._integrity`)."""
    from ionscope.io import data_path
    from ionscope.io._integrity import verify_store

    store = data_path(path)
    if store.suffix.lower() == ".zarr" and store.is_dir():
        verify_store(store)
    fmt = ds.attrs.get("source_format", path.suffix.lstrip(".").upper())
    for var in ds.data_vars.values():
        if var.chunks is None or var.size == 0:
            continue
        try:
            np.asarray(var.data[(-1,) * var.ndim])
        except IonscopeError:  # already a clear message (a Zarr chunk that fails its check)
            raise
        except Exception as exc:  # each reader fails in its own way on missing bytes
            raise FormatError(
                f"{path}: the {fmt} header describes more data than the file holds ({_first_line(exc)}); "
                "the file is truncated or corrupt - copy it again"
            ) from None


def _read_signals(reader, path: Path, lazy: bool) -> list[dict]:
    """The reader's signal dicts; a reader without a lazy mode (e.g. MSA) reads eagerly and its
    arrays are wrapped in dask, so a lazy load works for every format."""
    try:
        return reader(os.fspath(path), lazy=lazy)
    except NotImplementedError:  # RosettaSciIO's way of saying "no lazy mode" (e.g. MSA)
        if not lazy:
            raise
    import dask.array

    signals = reader(os.fspath(path), lazy=False)
    for sig in signals:
        sig["data"] = dask.array.from_array(np.asarray(sig["data"]), chunks=-1)
    return signals


_QUANTITY = re.compile(r"^\s*(?P<name>.*?)\s*\((?P<units>[^()]*)\)\s*$")


def _to_dataset(path: Path, data: Any, axes: list[dict], metadata: dict, *, dims, fmt: str,
                name: str = "data") -> xr.Dataset:
    axes = [dict(a) for a in axes]
    named = assign_dims(axes, dims)
    quantity = str(_get(metadata, "Signal", "quantity") or "")
    match = _QUANTITY.match(quantity)
    units = match["units"] if match else ("counts" if np.issubdtype(np.dtype(data.dtype), np.integer) else "a.u.")
    long_name = (match["name"] if match else quantity) or None
    attrs: dict[str, Any] = {"source_file": os.fspath(path), "source_format": fmt}
    title = _get(metadata, "General", "title")
    if title:
        attrs["title"] = str(title)
    signal_type = _get(metadata, "Signal", "signal_type")
    if signal_type:
        attrs["signal_type"] = str(signal_type)
    for instrument in ("TEM", "SEM"):
        kv = _get(metadata, "Acquisition_instrument", instrument, "beam_energy")
        if kv is not None:
            attrs["beam_energy_kV"] = float(kv)
    coords = {a["dim"]: a["offset"] + a["scale"] * np.arange(a["size"], dtype=np.float64) for a in named}
    coord_units = {a["dim"]: a["units"] for a in named}
    da = signal(
        data, [a["dim"] for a in named], name=name, units=units, coords=coords,
        coord_units=coord_units, long_name=long_name, attrs=attrs,
    )
    for a in named:
        if a["original_units"] and a["original_units"] != a["units"]:
            da[a["dim"]].attrs["original_units"] = a["original_units"]
        if a["units"] == "px" and (a["file_scale"] != 1.0 or a["file_offset"] != 0.0):
            da[a["dim"]].attrs.update(file_scale=a["file_scale"], file_offset=a["file_offset"])
    order = [d for d in DIM_ORDER if d in da.dims]
    da = da.transpose(*order)
    history = json.loads(_get(metadata, "ionscope", "provenance") or "[]")  # files ionscope exported
    da = with_provenance(
        da, "ionscope.io.load", {"path": os.fspath(path), "format": fmt, "dims": list(da.dims)},
        inputs=[path], history=history,
    )
    ds = da.to_dataset()
    ds.attrs = {"primary": name, "provenance": da.attrs["provenance"], **attrs}
    return ds


def _mapped_metadata(sig: dict) -> dict:
    """The signal's metadata completed by the reader's ``mapping`` from original metadata.

    Some readers (e.g. DigitalMicrograph) leave values such as the beam energy in the
    original metadata and declare how HyperSpy should map them; apply that mapping here.
    """
    metadata = copy.deepcopy(sig.get("metadata") or {})
    original = sig.get("original_metadata") or {}
    for source, target in (sig.get("mapping") or {}).items():
        value = _get(original, *source.split("."))
        if value is None or not target:
            continue
        key, func = (target if isinstance(target, tuple) else (target, None))
        try:
            value = func(value) if func else value
        except Exception:  # a mapping that does not apply to this file: skip it
            continue
        node = metadata
        *parents, leaf = key.split(".")
        for part in parents:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                break
        else:
            node.setdefault(leaf, value)
    return metadata


def _get(tree: dict, *keys: str) -> Any:
    for key in keys:
        if not isinstance(tree, dict) or key not in tree:
            return None
        tree = tree[key]
    return tree


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return (text[0] if text else type(exc).__name__)[:200]


def check_readable(path: Path) -> None:
    """Raise a clear error for a missing or empty input path."""
    from ionscope.errors import FileMissingError

    if not path.exists():
        raise FileMissingError(f"{path}: no such file or directory; check the path and spelling")
    if path.is_dir():
        if path.suffix.lower() != ".zarr":
            raise InputError(f"{path} is a directory; give a data file, a .zarr store or a result folder "
                             "(one holding result.zarr)")
        if not any(path.iterdir()):
            raise FormatError(f"{path}: the Zarr store is empty; was it written completely?")
    elif path.stat().st_size == 0:
        raise FormatError(f"{path}: the file is empty (0 bytes); was it copied or written completely?")
