"""Tofwerk / fibTOF FIB-SIMS ``.h5`` (TofDAQ) through RosettaSciIO's ``tofwerk`` plugin.

RosettaSciIO (``rsciio.tofwerk.file_reader``) returns plain signal dicts; this module puts them
into the ionscope model, as one Dataset:

- ``counts`` (depth, y, x, ion): the peak-integrated counts of every peak of the file's peak
  table (Tofwerk's nominal peaks, then the user's additional peaks, each in RosettaSciIO's
  order), with the coordinates ``ion`` (the peak labels, str) and ``ion_mass`` (ion) in u.
  A raw file (no ``PeakData/PeakData``) has its peaks integrated from the event list by
  RosettaSciIO when it is opened - eagerly, also with ``lazy=True`` (a file opened in Tofwerk's
  software reads lazily);
- ``sum_spectrum`` (mass): the file's cumulative spectrum, ``mass`` in u;
- ``y``, ``x`` in nm (from ``FIBParams.ViewField``), ``depth`` the milling steps (index, unit 1);
- attrs ``source_file``, ``source_format`` ("Tofwerk"), ``primary`` = "counts", ``signals``,
  ``tofwerk_file_type`` (raw | pre-processed) and the provenance step ``ionscope.io.load``.

The FIB secondary-electron images live on another (finer) pixel grid: ``FILE.h5:fib_images``
reads them as their own Dataset (``fib_images``, (depth, y, x)). ``FILE.h5:counts`` and
``FILE.h5:sum_spectrum`` read one variable. The raw event list (ragged TDC timestamps) is not
read; use ``rsciio.tofwerk`` directly for it.

RosettaSciIO's own default (``signal="sum_spectrum"``) gives only the sum spectrum.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from ionscope.data import signal, with_provenance
from ionscope.errors import DimensionError, FormatError, MissingReaderError
from ionscope.units import length_to_nm

#: Variables a Tofwerk file gives (``FILE:NAME``).
TOFWERK_VARIABLES = ("counts", "sum_spectrum", "fib_images")


#: What marks an HDF5 file that TofDAQ wrote: root groups and the root attribute (as RosettaSciIO
#: 0.15's tofwerk plugin checks).
_TOFDAQ_GROUPS = ("FullSpectra", "TimingData", "AcquisitionLog")
_TOFDAQ_ATTR = "TofDAQ Version"


def is_tofwerk(path: Path) -> bool:
    """Whether ``path`` is an HDF5 file written by TofDAQ (cheap: the root's groups and attrs)."""
    import h5py

    try:
        with h5py.File(path, "r") as f:
            return all(g in f for g in _TOFDAQ_GROUPS) and _TOFDAQ_ATTR in f.attrs
    except Exception:  # not HDF5, or truncated: the generic RosettaSciIO path reports it
        return False


def _spatial(axes: list[dict], data_shape: tuple[int, ...]) -> dict[str, Any]:
    """Coordinates of the depth / y / x axes of an RosettaSciIO axes list (nm, index)."""
    coords: dict[str, Any] = {}
    units: dict[str, str] = {}
    for axis, size in zip(axes, data_shape):
        name = axis["name"]
        if name in ("y", "x"):
            unit = str(axis.get("units") or "")
            factor = length_to_nm(unit) if unit else None
            if factor is None or "scale" not in axis:
                coords[name], units[name] = np.arange(size, dtype=np.float64), "px"
            else:
                coords[name] = (float(axis.get("offset", 0.0)) + float(axis["scale"]) * np.arange(size)) * factor
                units[name] = "nm"
        elif name == "depth":
            coords["depth"], units["depth"] = np.arange(size, dtype=np.float64), "1"
    return {"coords": coords, "coord_units": units}


def read_tofwerk(path: Path, *, lazy: bool, dims: Sequence[str] | None, variable: str | None) -> list[xr.Dataset]:
    """A Tofwerk .h5 as the ionscope Dataset described in the module docstring."""
    import dask.array

    from ionscope.io._readers import _pick

    try:
        from rsciio.tofwerk import available_signals, file_reader
    except ImportError:  # RosettaSciIO before 0.15 has no Tofwerk reader
        import rsciio

        raise MissingReaderError(
            f"{path} is a Tofwerk TofDAQ file; reading it needs RosettaSciIO >= 0.15 (installed: "
            f"{getattr(rsciio, '__version__', 'unknown')}) - pip install -U 'rosettasciio>=0.15'"
        ) from None

    if variable is not None:
        variable = TOFWERK_VARIABLES[_pick(path, list(TOFWERK_VARIABLES), variable,
                                           [np.empty(0)] * len(TOFWERK_VARIABLES))]
    try:
        available = available_signals(path)
    except Exception as exc:
        raise FormatError(f"{path}: not a readable Tofwerk TofDAQ file ({exc}); the file may be truncated") from None
    peaks = [s for s in ("nominal_peak_data", "additional_peak_data") if s in available]
    if variable == "fib_images":
        if "fib_images" not in available:
            raise FormatError(f"{path}: the Tofwerk file holds no FIB images (it has {', '.join(available)})")
        wanted = ["fib_images"]
    elif variable == "sum_spectrum":
        wanted = ["sum_spectrum"]
    else:
        wanted = (["sum_spectrum"] if variable is None else []) + peaks
        if variable == "counts" and not peaks:
            raise FormatError(f"{path}: the Tofwerk file has no peak table, so no counts per ion; read "
                              f"{path.name}:sum_spectrum")
    raw = not _has_peak_data(path)
    try:
        signals = file_reader(os.fspath(path), lazy=lazy and not raw, signal=wanted, show_progressbar=False)
    except Exception as exc:  # RosettaSciIO fails in its own ways on broken files
        raise FormatError(f"{path}: RosettaSciIO cannot read this Tofwerk file ({type(exc).__name__}: {exc}); "
                          "the file may be truncated or corrupt") from None
    by_kind = dict(zip(wanted, signals))
    variables: dict[str, xr.DataArray] = {}
    attrs: dict[str, Any] = {"source_file": os.fspath(path), "source_format": "Tofwerk",
                             "tofwerk_file_type": "raw" if raw else "pre-processed"}

    def data_of(sig: dict) -> Any:
        data = sig["data"]
        if lazy and not isinstance(data, dask.array.Array):
            data = dask.array.from_array(np.asarray(data), chunks=-1)
        return data

    if "fib_images" in by_kind:
        sig = by_kind["fib_images"]
        variables["fib_images"] = signal(data_of(sig), ("depth", "y", "x"), name="fib_images", units="a.u.",
                                         long_name="FIB secondary-electron image",
                                         **_spatial(sig["axes"], sig["data"].shape))
    if "sum_spectrum" in by_kind:
        sig = by_kind["sum_spectrum"]
        variables["sum_spectrum"] = signal(data_of(sig), ("mass",), name="sum_spectrum", units="counts",
                                           coords={"mass": np.asarray(sig["axes"][0]["axis"], np.float64)},
                                           long_name="sum spectrum")
    parts = [by_kind[k] for k in peaks if k in by_kind]
    if parts:
        labels = [p["label"] for sig in parts for p in sig["metadata"]["Signal"]["peak_table"]]
        masses = np.concatenate([np.asarray(sig["axes"][3]["axis"], np.float64) for sig in parts])
        # RosettaSciIO sorts additional peaks by mass: order the labels as its columns
        ordered = []
        for sig in parts:
            table = sig["metadata"]["Signal"]["peak_table"]
            order = np.argsort([p["mass"] for p in table], kind="stable")
            ordered += [table[i]["label"] for i in order]
        labels = ordered
        data = [data_of(sig) for sig in parts]
        stacked = data[0] if len(data) == 1 else (
            dask.array.concatenate(data, axis=3) if lazy else np.concatenate(data, axis=3))
        spatial = _spatial(parts[0]["axes"], parts[0]["data"].shape)
        spatial["coords"]["ion"] = np.array(labels, dtype=str)
        spatial["coord_units"]["ion"] = "1"
        counts = signal(stacked, ("depth", "y", "x", "ion"), name="counts", units="counts",
                        long_name="ion counts", **spatial)
        variables["counts"] = counts.assign_coords(ion_mass=("ion", masses, {"units": "u"}))
    natural = {name: list(var.dims) for name, var in variables.items()}
    if dims is not None and list(dims) not in natural.values():
        raise DimensionError(f"{path}: a Tofwerk file names its axes itself ({'; '.join(f'{k}: {tuple(v)}' for k, v in natural.items())}); "
                             f"drop --dims (it named {', '.join(dims)})")
    ds = xr.Dataset(variables)
    ds.attrs = {**attrs, "signals": list(variables)}
    primary = "counts" if "counts" in variables else next(iter(variables))
    ds.attrs["primary"] = primary
    return [with_provenance(ds, "ionscope.io.load", {"path": os.fspath(path), "format": "Tofwerk",
                                                     "signals": list(variables)},
                            inputs=[path], history=[], variables=True)]


def _has_peak_data(path: Path) -> bool:
    import h5py

    with h5py.File(path, "r") as f:
        return "PeakData/PeakData" in f
