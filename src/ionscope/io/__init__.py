"""Reading and writing ionscope data.

- :func:`load` reads one signal as a DataArray from every format RosettaSciIO reads (.hspy,
  .hdf5, .dm3/.dm4, .emd, .msa, .tif, ...) and from .npy, .zarr and .nc. File axes map to
  dims by their units and names (see :mod:`ionscope.io._axes`); ``dims=`` overrides that for
  files without calibration. ``lazy=True`` keeps the data as dask arrays end to end.
- :func:`open_dataset` reads every variable (e.g. data plus ground truth of a simulation).
- Scanning-probe images (Nanonis .sxm, Gwyddion .gwy, Bruker .spm, Asylum .ibw) are read by
  ionscope's own readers into one model (:mod:`ionscope.io._spm`): a variable per channel and
  direction (``Z_forward``), y/x in nm with row 0 at the top as Gwyddion shows it, a ``row_time``
  per row and the frame's start time; :func:`write_sxm` writes Nanonis files.
- TOF-SIMS: imzML + .ibd (:mod:`ionscope.io._imzml`; ``counts`` with a ``mass`` axis in u, or
  per-pixel ``peak`` lists with ``peak_mass``), written back by :func:`write_imzml`.
- Cycler logs: :func:`load_cycler` reads BioLogic .mpr/.mpt, Neware .nda/.ndax, Arbin .res/.xlsx,
  Maccor text and CSV tables into one model (:mod:`ionscope.io._cycler`): record dim ``time`` (s),
  ``voltage`` V, ``current`` mA (charge positive), ``charge`` mAh, ``cycle``, ``half_cycle``,
  ``state``; :func:`open_dataset` reaches it for those extensions too.
- :func:`save` writes a DataArray or Dataset to Zarr atomically: a temporary store beside the
  target, renamed into place when complete, so an interrupted write never leaves half a result.
- :func:`export` writes a DataArray through RosettaSciIO (.hspy for HyperSpy, .msa, .tif).

Inputs are opened read-only and never written.

Examples
--------
>>> import tempfile
>>> from pathlib import Path
>>> from ionscope import io
>>> from ionscope.simulate import simulate
>>> folder = Path(tempfile.mkdtemp())
>>> path = io.save(simulate("li_fronts", seed=0, ny=16, nx=16), folder / "frames.zarr")
>>> da = io.load(folder / "frames.zarr", lazy=True)     # any file ionscope reads: .dm4, .emd, .sxm ...
>>> da.name, da.dims, type(da.data).__module__.split(".")[0]
('li_fraction', ('time', 'y', 'x'), 'dask')
"""

from __future__ import annotations

import contextlib
import contextvars
import errno
import inspect
import os
import shutil
import uuid
import warnings
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from ionscope.data import PROVENANCE_KEY, axis_calibration, units_of
from ionscope.errors import DimensionError, FormatError, InputError, OutputError, OutputExistsError
from ionscope.io._cycler import load_cycler
from ionscope.io._imzml import write_imzml
from ionscope.io._nanonis import write_sxm
from ionscope.io._readers import check_complete, check_readable, prime_reader, read, read_signals, supported_extensions

__all__ = [
    "load", "open_dataset", "open_signals", "split_spec", "save", "export", "supported_extensions", "parse_dims",
    "check_output", "atomic_path", "write_text", "write_bytes", "prepare_out_dir", "write_result", "experiment_step",
    "data_path", "check_not_input", "remove_stale_temporaries", "read_table", "check_complete",
    "write_sxm", "write_imzml", "open_inputs", "load_cycler", "prime_reader",
]


def parse_dims(text: str | Sequence[str] | None) -> list[str] | None:
    """Parse a ``--dims`` value such as ``"time,y,x"`` into a list (None stays None)."""
    if text is None:
        return None
    if isinstance(text, str):
        return [d.strip() for d in text.split(",") if d.strip()]
    return list(text)


def split_spec(spec: str | os.PathLike) -> tuple[Path, str | None]:
    """``FILE:VARIABLE`` -> (FILE, VARIABLE); a path that exists (or has no ``:``) -> (path, None)."""
    text = os.fspath(spec)
    if not Path(text).exists() and ":" in text:
        head, tail = text.rsplit(":", 1)
        if head and Path(head).exists():
            return Path(head), tail
    return Path(text), None


def open_inputs(items: Any, what: str, *, lazy: bool = False) -> tuple[list[xr.Dataset], list[Any]]:
    """A workflow's inputs as Datasets, and what identifies each for the provenance: a path (read
    with :func:`open_dataset`; ``FILE:VARIABLE`` identifies FILE) or the object itself.

    Parameters
    ----------
    items : path, Dataset, DataArray, or a sequence of them
        The inputs (a single one is taken as a sequence of one). A DataArray becomes a one-variable
        Dataset with it as the primary.
    what : str
        What the inputs are, for the messages (e.g. ``"KPFM frame"``).
    lazy : bool
        Open paths lazily (:func:`open_dataset`).

    Raises
    ------
    InputError
        No inputs, or an item that is none of these.
    """
    if isinstance(items, (xr.Dataset, xr.DataArray, str, os.PathLike)):
        items = [items]
    items = list(items) if items is not None else []
    if not items:
        raise InputError(f"no {what}s were given")
    out, sources = [], []
    for i, item in enumerate(items):
        if isinstance(item, (str, os.PathLike)):
            ds = open_dataset(item, lazy=lazy)
            ds.attrs.setdefault("source_file", os.fspath(item))
            out.append(ds)
            sources.append(split_spec(item)[0])
        elif isinstance(item, xr.DataArray):
            name = str(item.name or "data")
            ds = item.to_dataset(name=name)
            ds.attrs = {**item.attrs, "primary": name}
            out.append(ds)
            sources.append(item)
        elif isinstance(item, xr.Dataset):
            out.append(item)
            sources.append(item)
        else:
            raise InputError(f"{what} {i}: expected a file path or an xarray Dataset / DataArray, got "
                             f"{type(item).__name__}")
    return out, sources


def _resolve(spec: str | os.PathLike, variable: str | None = None) -> tuple[Path, str | None]:
    """The file a spec names (a result folder -> its result.zarr; ``FILE:VARIABLE`` split), checked
    readable, and the variable chosen by the spec or by ``variable``."""
    path, chosen = split_spec(spec)
    if chosen is not None and variable is not None and chosen != variable:
        raise InputError(f"{spec} names the variable {chosen!r} but {variable!r} was asked for; give one of them")
    if path.is_dir() and path.suffix.lower() != ".zarr" and (path / "result.zarr").is_dir():
        path = path / "result.zarr"  # a command's --out folder: its result
    check_readable(path)
    return path, chosen if chosen is not None else variable


def open_dataset(
    path: str | os.PathLike, *, lazy: bool = False, dims: str | Sequence[str] | None = None
) -> xr.Dataset:
    """Read a file into a Dataset; ``attrs["primary"]`` names its main variable.

    A vendor file holding several signals (an image beside a spectrum image, a plot) gives one
    variable per signal, named by its title, and no primary (``attrs["signals"]`` lists them).

    Parameters
    ----------
    path : str or path-like
        Input file, .zarr store, or a command's result folder (its result.zarr is read);
        ``FILE:VARIABLE`` (or ``FILE:N``) reads one variable only.
    lazy : bool
        Keep the data as dask arrays (nothing is read until computed).
    dims : str or sequence of str, optional
        Dim names for uncalibrated files, in the order ``ionscope info`` shows the axes.

    Raises
    ------
    FileMissingError, FormatError, DimensionError
        Missing, empty, truncated or unreadable files; axes that cannot be named.
    InputError
        A multi-signal file whose signals have different axes (open them with
        :func:`open_signals`, or one with :func:`load`).
    MissingReaderError
        The format's reader needs an optional package that is not installed.
    """
    path, variable = _resolve(path)
    return _calibrated(read(path, lazy=lazy, dims=parse_dims(dims), variable=variable), path)


def open_signals(
    path: str | os.PathLike, *, lazy: bool = False, dims: str | Sequence[str] | None = None
) -> list[xr.Dataset]:
    """Every signal of a file, each as its own Dataset, in file order (one Dataset, with all its
    variables, for .zarr, .nc and .npy). Unlike :func:`open_dataset` this works when the signals'
    axes differ (a 512 x 512 image beside a 1-D plot)."""
    path, variable = _resolve(path)
    return [_calibrated(ds, path) for ds in read_signals(path, lazy=lazy, dims=parse_dims(dims), variable=variable)]


def load(
    path: str | os.PathLike,
    *,
    lazy: bool = False,
    dims: str | Sequence[str] | None = None,
    variable: str | None = None,
) -> xr.DataArray:
    """Read one signal from a file as a DataArray.

    Parameters
    ----------
    path : str or path-like
        Input file: any RosettaSciIO format, .npy, .zarr or .nc, or a command's result folder;
        ``FILE:VARIABLE`` (or ``FILE:N``) picks a variable like ``variable=``.
    lazy : bool
        Keep the data as dask arrays.
    dims : str or sequence of str, optional
        Dim names in the order ``ionscope info`` shows the axes, overriding the mapping from the
        file's axes.
    variable : str, optional
        Which variable (a name, or a position ``"N"`` in file order) of a file holding several:
        a .zarr/.nc store's variables, or the signals of a vendor file (named by their titles).
        Defaults to the file's primary variable, or its only one.

    Returns
    -------
    xarray.DataArray
        With units on data and coordinates and the file's provenance.

    Raises
    ------
    InputError
        ``variable`` is not in the file, or the file holds several and none was chosen (the
        message lists them).
    """
    path, variable = _resolve(path, variable)
    parts = [_calibrated(ds, path) for ds in read_signals(path, lazy=lazy, dims=parse_dims(dims), variable=variable)]
    if len(parts) > 1:
        return _ambiguous(path, parts)
    ds = parts[0]
    names = [str(n) for n in ds.data_vars]
    name = ds.attrs.get("primary")
    if name not in names:
        if len(names) != 1:
            return _ambiguous(path, [ds[[n]] for n in names])
        name = names[0]
    da = ds[name]
    if PROVENANCE_KEY not in da.attrs and PROVENANCE_KEY in ds.attrs:
        da.attrs[PROVENANCE_KEY] = ds.attrs[PROVENANCE_KEY]
    return da


def _ambiguous(path: Path, parts: Sequence[xr.Dataset]):
    from ionscope.io._readers import describe_signals

    raise InputError(
        f"{path} holds {sum(len(p.data_vars) for p in parts)} signals: {describe_signals(parts)}; "
        f"choose one as {path.name}:NAME or {path.name}:N (--variable / variable=)"
    )


# --------------------------------------------------------------------------- writing


def check_output(path: str | os.PathLike, *, overwrite: bool = False, suffix: str | None = None) -> Path:
    """Validate an output path before any work is done.

    Raises
    ------
    OutputExistsError
        ``path`` exists and ``overwrite`` is False.
    InputError
        The parent folder is missing, or the name does not end in ``suffix``.
    """
    path = Path(path)
    if suffix is not None and path.suffix.lower() != suffix:
        raise InputError(f"{path}: the output must be a {suffix} path (e.g. result{suffix})")
    if path.exists() and not overwrite:
        raise OutputExistsError(
            f"{path} already exists; choose another output path or pass --overwrite "
            "(overwrite=True) to replace it"
        )
    if not path.parent.exists():
        raise InputError(f"{path.parent}: the output folder does not exist; create it first")
    return path


def _remove(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True) if path.is_dir() else path.unlink(missing_ok=True)


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, *, overwrite: bool = False) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; when the block succeeds, rename it onto ``path``.

    An exception inside the block removes the temporary output and leaves any old ``path``
    untouched, so readers see either the old result or the complete new one.

    Examples
    --------
    >>> import tempfile
    >>> from pathlib import Path
    >>> target = Path(tempfile.mkdtemp()) / "notes.txt"
    >>> with atomic_path(target) as tmp:
    ...     _ = tmp.write_text("complete")
    >>> target.read_text(), [p.name for p in target.parent.iterdir()]
    ('complete', ['notes.txt'])
    """
    path = check_output(path, overwrite=overwrite)
    if not path.parent.is_dir():
        raise OutputError(f"{path}: {path.parent} is not a folder; write the output into an existing folder")
    remove_stale_temporaries(path)
    tag = f"{os.getpid()}-{uuid.uuid4().hex[:8]}"
    tmp = path.with_name(f".{path.stem}.tmp-{tag}{path.suffix}")
    try:
        try:
            yield tmp
        except PermissionError as exc:
            raise OutputError(f"{path}: cannot write here ({exc.strerror}); give an output where you can write") from None
        except OSError as exc:
            if exc.errno not in (errno.EROFS, errno.ENOSPC, errno.EDQUOT, errno.EACCES):
                raise
            raise OutputError(f"{path}: cannot write ({exc.strerror}); free space or choose another output") from None
        if path.exists():
            old = path.with_name(f".{path.name}.old-{tag}")
            os.replace(path, old)
            os.replace(tmp, path)
            _remove(old)
        else:
            os.replace(tmp, path)
    finally:
        if tmp.exists():
            _remove(tmp)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


def remove_stale_temporaries(path: str | os.PathLike) -> list[Path]:
    """Remove the temporaries a killed write of ``path`` left beside it (``.NAME.tmp-PID-*``,
    ``.NAME.old-PID-*``, and the pid-less names of earlier versions) whose process is gone;
    returns what was removed. A write still running (its process alive) is left alone."""
    path = Path(path)
    removed = []
    patterns = (f".{path.stem}.tmp-*{path.suffix}", f".{path.name}.old-*")
    for pattern in patterns:
        for stale in path.parent.glob(pattern):
            tag = stale.name.split(".tmp-" if ".tmp-" in stale.name else ".old-", 1)[1]
            pid = tag.split("-", 1)[0]
            if "-" in tag and pid.isdigit() and _alive(int(pid)):
                continue
            _remove(stale)
            removed.append(stale)
    return removed


def write_bytes(path: str | os.PathLike, data: bytes, *, overwrite: bool = False) -> Path:
    """Write bytes to ``path`` atomically."""
    with atomic_path(path, overwrite=overwrite) as tmp:
        tmp.write_bytes(data)
    return Path(path)


def write_text(path: str | os.PathLike, text: str, *, overwrite: bool = False) -> Path:
    """Write UTF-8 text to ``path`` atomically."""
    return write_bytes(path, text.encode("utf-8"), overwrite=overwrite)


def _as_dataset(obj: xr.DataArray | xr.Dataset) -> xr.Dataset:
    if isinstance(obj, xr.Dataset):
        ds = obj.copy(deep=False)
        ds.attrs = dict(obj.attrs)
        return ds
    name = obj.name or "data"
    ds = obj.to_dataset(name=name)
    ds.attrs = {"primary": name}
    if PROVENANCE_KEY in obj.attrs:
        ds.attrs[PROVENANCE_KEY] = obj.attrs[PROVENANCE_KEY]
    return ds


def _refuse_source(obj: xr.DataArray | xr.Dataset, path: Path) -> None:
    sources = [obj.attrs.get("source_file")]
    if isinstance(obj, xr.Dataset):
        sources += [v.attrs.get("source_file") for v in obj.data_vars.values()]
    for src in filter(None, sources):
        if Path(src).resolve() == path.resolve():
            raise InputError(f"{path} is the raw input this data came from; ionscope never overwrites raw data")


def read_table(path: str | os.PathLike, what: str) -> list[list[str]]:
    """The rows of a small CSV text file (UTF-8, a BOM allowed), without blank and ``#`` comment
    rows; a file that is not UTF-8 text is a :class:`~ionscope.errors.FormatError` naming ``what``."""
    import csv

    path = Path(path)
    try:
        with open(path, newline="", encoding="utf-8-sig") as fh:
            return [r for r in csv.reader(fh) if r and not r[0].lstrip().startswith("#")]
    except UnicodeDecodeError as exc:
        raise FormatError(f"{what} {path}: not UTF-8 text (byte {exc.start}); save it as a UTF-8 CSV") from None
    except csv.Error as exc:
        raise FormatError(f"{what} {path}: not a readable CSV ({exc})") from None


def data_path(spec: str | os.PathLike) -> Path:
    """The path that holds the data of an input spec: ``FILE:VARIABLE`` -> ``FILE``, and a
    command's result folder -> its ``result.zarr``."""
    path = split_spec(spec)[0]
    if path.is_dir() and (path / "result.zarr").exists():
        path = path / "result.zarr"
    return path


def check_not_input(outputs: Iterable[str | os.PathLike], inputs: Iterable[str | os.PathLike | None]) -> None:
    """Refuse outputs that would replace or write into an input (or the reverse): an output may
    never be an input. ``inputs`` are specs as the commands take them (``FILE``,
    ``FILE:VARIABLE``, a result folder); None entries are skipped.

    Raises
    ------
    InputError
        Naming the output, the input and what to do.
    """
    outs = [(Path(o), Path(o).resolve()) for o in outputs]
    for spec in inputs:
        if spec is None:
            continue
        src = data_path(spec).resolve()
        for shown, out in outs:
            if src == out or out in src.parents or src in out.parents:
                raise InputError(
                    f"the output {shown} would replace the input {spec}; an output is never an input - "
                    "write the result to another path (--out)"
                )


def save(obj: xr.DataArray | xr.Dataset, path: str | os.PathLike, *, overwrite: bool = False) -> Path:
    """Write a DataArray or Dataset to a Zarr store, atomically.

    Values (complex included), coordinates, units and provenance round-trip exactly through
    :func:`load` / :func:`open_dataset`. Lazy (dask) data are written chunk by chunk without
    loading them whole. The store carries a manifest of its chunk files (size and XXH3 digest,
    in its ``ionscope-manifest`` group), against which every load checks what it reads, so a
    lost, truncated or corrupt chunk is an error instead of fill values
    (:mod:`ionscope.io._integrity`).

    Parameters
    ----------
    obj : DataArray or Dataset
        What to write. A DataArray becomes the Dataset's primary variable.
    path : str or path-like
        Target, must end in ``.zarr``.
    overwrite : bool
        Replace an existing store (the old one is removed only after the new one is complete).

    Returns
    -------
    pathlib.Path
        The written path.
    """
    return _save(obj, path, overwrite=overwrite)[0]


_RIDER = "__ionscope_compute_with_{}"


def _array_riders(obj: Any) -> tuple[dict[str, xr.Variable], Any]:
    """The dask arrays among the leaves of ``obj`` (nested dicts, lists and tuples) as variables
    to store with a result, and ``rebuild(values) -> obj`` with their computed values in place;
    ``rebuild`` is None when a leaf is another kind of dask collection (a Delayed: those are
    computed beside the store instead)."""
    import dask
    import dask.array

    riders: dict[str, xr.Variable] = {}
    other = False

    def walk(item: Any) -> Any:
        nonlocal other
        if isinstance(item, dict):
            return {k: walk(v) for k, v in item.items()}
        if isinstance(item, (list, tuple)):
            return type(item)(walk(v) for v in item)
        if isinstance(item, xr.DataArray) and dask.is_dask_collection(item):
            item = item.data
        if isinstance(item, dask.array.Array):
            name = _RIDER.format(len(riders))
            riders[name] = xr.Variable(tuple(f"{name}_dim{i}" for i in range(item.ndim)), item)
            return ("__rider__", name)
        if dask.is_dask_collection(item):
            other = True
        return item

    template = walk(obj)
    if other or not riders:
        return {}, None

    def rebuild(values: dict[str, np.ndarray], item: Any = template) -> Any:
        if isinstance(item, dict):
            return {k: rebuild(values, v) for k, v in item.items()}
        if isinstance(item, tuple) and len(item) == 2 and item[0] == "__rider__":
            value = values[item[1]]
            return value[()] if value.ndim == 0 else value
        if isinstance(item, (list, tuple)):
            return type(item)(rebuild(values, v) for v in item)
        return item

    return riders, rebuild


def _save(obj: xr.DataArray | xr.Dataset, path: str | os.PathLike, *, overwrite: bool = False,
          compute_with: Any = None) -> tuple[Path, Any]:
    """:func:`save`, computing the dask objects ``compute_with`` in the same pass as the store (tasks
    they share with it run once); returns the path and their values. Attributes of the Dataset
    that are dask objects (a lazy result's statistics over all frames, e.g. ``kpfm process``'s
    ``noise_V``) are computed in that pass too and written into the store's attributes."""
    import dask

    from ionscope.compat import compute
    from ionscope.io._codecs import storage_plan
    from ionscope.io._integrity import write_manifest

    path = Path(path)
    if path.suffix.lower() != ".zarr":
        raise InputError(f"{path}: results are written as Zarr stores; name the output *.zarr")
    check_output(path, overwrite=overwrite)
    _refuse_source(obj, path)
    ds = _as_dataset(obj)
    lazy_attrs = {k: v for k, v in ds.attrs.items() if dask.is_dask_collection(v)}
    if lazy_attrs:
        ds = ds.copy(deep=False)
        ds.attrs = {k: v for k, v in ds.attrs.items() if k not in lazy_attrs}
    for var in ds.variables.values():
        var.encoding = {}
    # Fixed-width strings (labels such as component names) have no Zarr v3 specification;
    # variable-length strings do. The reader turns them back into fixed-width strings.
    text = {name: ds[name].astype(object) for name, var in ds.variables.items() if var.dtype.kind == "U"}
    ds = ds.assign_coords({k: v for k, v in text.items() if k in ds.coords})
    ds = ds.assign({k: v for k, v in text.items() if k not in ds.coords})
    with atomic_path(path, overwrite=overwrite) as tmp, warnings.catch_warnings():
        # consolidated metadata, so that plain xarray.open_zarr opens our stores without its
        # "failed to open with consolidated metadata" warning; zarr 3 warns on writing it (it is
        # not in the v3 specification yet) - that is ours to know, not the user's
        warnings.filterwarnings("ignore", message="Consolidated metadata is currently not part")
        # every chunk written, also those holding only the fill value (zarr 3 leaves them out by
        # default): a missing chunk file is then always a loss, for ionscope and for any reader
        # codecs and chunks by measurement (io/_codecs.py): >= 1 GB/s where zarr's default gives 0.3
        deferred = compute_with is not None or bool(lazy_attrs)
        riders, rebuild = _array_riders((compute_with, lazy_attrs)) if deferred else ({}, None)
        if rebuild is not None:
            # the statistics ride along as temporary variables of the store itself: xarray's store
            # and a separate dask array are optimized apart by dask.compute, and the tasks they
            # share (e.g. every block of a lazy sparse coding) would run twice
            ds = ds.assign(riders)
        ds, encoding = storage_plan(ds)
        stored = ds.to_zarr(tmp, mode="w-", consolidated=True, write_empty_chunks=True, encoding=encoding,
                            compute=not deferred or rebuild is not None)
        computed = None
        if deferred:
            import zarr

            if rebuild is not None:
                group = zarr.open_group(str(tmp), mode="r+")
                values = {name: np.asarray(group[name][...]) for name in riders}
                for name in riders:
                    del group[name]
                zarr.consolidate_metadata(str(tmp))
                computed, attr_values = rebuild(values)
            else:
                # results in place whatever the kinds of collection (ionscope.compat.compute)
                _, computed, attr_values = compute(stored, compute_with, lazy_attrs)
            if attr_values:
                from ionscope.data import jsonable

                group = zarr.open_group(str(tmp), mode="r+")
                group.attrs.update(jsonable(attr_values))
                zarr.consolidate_metadata(str(tmp))
        write_manifest(tmp)  # before the rename: atomic with the store; load checks it
    return path, computed


def export(da: xr.DataArray, path: str | os.PathLike, *, overwrite: bool = False) -> Path:
    """Write a DataArray through RosettaSciIO (.hspy for HyperSpy, .msa spectra, .tif images).

    Axes keep their calibration and units; the provenance goes into the file's metadata.
    The write is atomic like :func:`save`.
    """
    import importlib

    from ionscope.io._readers import _rsciio_plugins

    path = Path(path)
    check_output(path, overwrite=overwrite)
    _refuse_source(da, path)
    import rsciio

    plugins = [p for p in _rsciio_plugins().get(path.suffix.lower(), [])]
    writer, spec = None, None
    for name, api in plugins:
        module = importlib.import_module(api)
        if hasattr(module, "file_writer"):
            writer = module.file_writer
            spec = next((p for p in rsciio.IO_PLUGINS if p["name"] == name), {})
            break
    if writer is None:
        raise FormatError(f"{path}: RosettaSciIO cannot write {path.suffix!r} files; use .hspy, .msa or .tif")
    # the writer declares what it can hold: [signal dims, navigation dims] pairs, or True (anything)
    shapes = spec.get("writes")
    if isinstance(shapes, list) and da.ndim not in {sig + nav for sig, nav in shapes}:
        allowed = " or ".join(sorted({str(sig + nav) for sig, nav in shapes}))
        raise DimensionError(
            f"{path}: a {path.suffix} file holds data of {allowed} dims, the data has {da.ndim} {da.dims}; "
            "select part of it (--variable, .isel) or write .zarr / .hspy"
        )
    axes = []
    for dim in da.dims:
        offset, scale, unit = axis_calibration(da, dim) if da.sizes[dim] > 1 else (float(da[dim][0]), 1.0, units_of(da[dim]))
        axes.append(
            {"name": dim, "units": unit, "scale": scale, "offset": offset, "size": int(da.sizes[dim]),
             "navigate": dim in ("time", "shift") or (dim in ("y", "x") and "energy" in da.dims)}
        )
    from ionscope import __version__

    signal_dict: dict[str, Any] = {
        "data": np.asarray(da.values) if da.chunks is None else da.data,
        "axes": axes,
        "metadata": {
            "General": {"title": str(da.attrs.get("long_name") or da.name or "")},
            "Signal": {
                "signal_type": str(da.attrs.get("signal_type", "")),
                "quantity": f"{da.attrs.get('long_name') or da.name or 'data'} ({units_of(da)})",
            },
            "ionscope": {"provenance": str(da.attrs.get(PROVENANCE_KEY, "[]"))},
        },
        "original_metadata": {},
        "tmp_parameters": {},
        "attributes": {"_lazy": da.chunks is not None},
        "package_info": {"name": "ionscope", "version": __version__},
        "learning_results": {},
        "models": {},
    }
    if "beam_energy_kV" in da.attrs:
        signal_dict["metadata"]["Acquisition_instrument"] = {"TEM": {"beam_energy": float(da.attrs["beam_energy_kV"])}}
    kwargs = {"show_progressbar": False} if "show_progressbar" in inspect.signature(writer).parameters else {}
    with atomic_path(path, overwrite=overwrite) as tmp:
        writer(os.fspath(tmp), signal_dict, **kwargs)
    return path


def prepare_out_dir(out_dir: str | os.PathLike, *, overwrite: bool = False,
                    names: Sequence[str] = ("result.zarr", "summary.json")) -> Path:
    """Create a command's output folder, refusing one that already holds a result (one of
    ``names``) unless ``overwrite``.

    Call it before any work, so a run never ends in an error about its output.
    """
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise InputError(f"{out_dir} exists and is not a folder; give a folder for --out")
    if out_dir.is_dir():
        for name in names:
            check_output(out_dir / name, overwrite=overwrite)
    if not out_dir.parent.exists():
        raise InputError(f"{out_dir.parent}: the parent folder does not exist; create it first")
    if not out_dir.parent.is_dir():
        raise OutputError(f"{out_dir}: {out_dir.parent} is a file, not a folder; give --out in a folder")
    try:
        out_dir.mkdir(exist_ok=True)
    except OSError as exc:
        raise OutputError(f"{out_dir}: cannot create the output folder ({exc.strerror or exc}); "
                          "give --out where you can write") from None
    return out_dir


#: The experiment step a command runs for (``ionscope run``), or None: :func:`write_result` then
#: records it in the result's provenance and summary.
_EXPERIMENT_STEP: contextvars.ContextVar[dict | None] = contextvars.ContextVar("ionscope_experiment_step",
                                                                               default=None)


@contextlib.contextmanager
def experiment_step(record: dict):
    """Within the block, every :func:`write_result` records ``record`` (the experiment file and its
    sha256, the step, its inputs' sha256) as a provenance step of the result and as the summary's
    ``experiment`` entry; ``record["calibration"]`` (``{file: {"pixel_size_nm": ..,
    "beam_energy_kV": ..}}``, the experiment file's per-input calibration) is applied to those
    files whenever they are read (:func:`_calibrated`)."""
    token = _EXPERIMENT_STEP.set(dict(record))
    try:
        yield
    finally:
        _EXPERIMENT_STEP.reset(token)


def _calibrated(ds: xr.Dataset, path: Path) -> xr.Dataset:
    """``ds`` with the calibration the running experiment step gives for ``path`` (see
    :func:`experiment_step`): ``pixel_size_nm`` makes ``y``/``x`` coordinates in nm from 0 (the
    file's own spacing, if any, is kept as the coordinate's ``file_spacing``), ``beam_energy_kV``
    sets the attribute of the Dataset and its variables; the provenance says so."""
    run = _EXPERIMENT_STEP.get()
    given = ((run or {}).get("calibration") or {}).get(os.fspath(Path(path).absolute()))
    if not given:
        return ds
    from ionscope.data import with_provenance

    coords = {}
    size = given.get("pixel_size_nm")
    for dim in ("y", "x"):
        if size is not None and dim in ds.dims:
            old = ds[dim]
            attrs = {**old.attrs, "units": "nm"}
            if old.size > 1:
                attrs["file_spacing"] = f"{float(old[1] - old[0]):g} {old.attrs.get('units', '')}".strip()
            coords[dim] = (dim, size * np.arange(ds.sizes[dim], dtype=np.float64), attrs)
    ds = ds.assign_coords(coords)
    kv = given.get("beam_energy_kV")
    if kv is not None:
        ds = ds.assign_attrs(beam_energy_kV=float(kv))
        for name in ds.data_vars:
            ds[name].attrs["beam_energy_kV"] = float(kv)
    return with_provenance(ds, "ionscope.io.calibration", {"path": os.fspath(path), **given}, read_files=False,
                           variables=True)


def write_result(
    out_dir: str | os.PathLike, result: xr.Dataset, summary: dict | Callable[..., dict], *, overwrite: bool = False,
    compute_with: Any = None,
) -> tuple[Path, Path]:
    """Write a command's outputs: ``DIR/result.zarr`` (the Dataset) and ``DIR/summary.json``.

    Both are written atomically; the summary is written last, so its presence means the run
    completed. ``summary`` may be a function returning the dict, called once the result is
    written (a lazy result is computed while it is written: its run time is known only then);
    with ``compute_with`` (dask objects, e.g. statistics of the lazy result) those are computed
    in the same pass as the result and ``summary(values)`` is called with their values; entries
    of a ``summary`` dict that are dask objects are computed in that pass too. Within :func:`experiment_step` (a step of ``ionscope run``) the result's
    provenance and the summary also name the experiment file and its inputs' checksums.
    Returns both paths.
    """
    import json

    import dask

    from ionscope.data import jsonable, plain_json, with_provenance

    out_dir = prepare_out_dir(out_dir, overwrite=overwrite)
    if isinstance(result, xr.DataArray):
        result = _as_dataset(result)
    if result.attrs.get("primary") not in result.data_vars and len(result.data_vars) == 1:
        result = result.assign_attrs(primary=next(iter(result.data_vars)))
    run = _EXPERIMENT_STEP.get()
    if run is not None:
        result = with_provenance(result, "ionscope.pipeline.run", run, variables=True)
    lazy_summary = {} if callable(summary) else {k: v for k, v in summary.items() if dask.is_dask_collection(v)}
    wanted = compute_with if not lazy_summary else (compute_with, lazy_summary)
    zarr_path, computed = _save(result, out_dir / "result.zarr", overwrite=overwrite,
                                compute_with=wanted if compute_with is not None or lazy_summary else None)
    if lazy_summary:
        computed, values = computed
        summary = plain_json({**summary, **values})
    if callable(summary):
        summary = summary() if compute_with is None else summary(computed)
    if run is not None:
        summary = {**summary, "experiment": run}
    text = json.dumps(jsonable(summary), indent=2, allow_nan=False) + "\n"
    json_path = write_text(out_dir / "summary.json", text, overwrite=overwrite)
    return zarr_path, json_path
