"""IONTOF SurfaceLab ``.ita`` / ``.itm`` through pySPM (optional extra ``ionscope[iontof]``).

The IONTOF formats are proprietary; pySPM (O. Scholder, https://github.com/scholi/pySPM) reads
them by **reverse engineering** their block structure. It is known to fail with
``MissingBlockError`` on files of SurfaceLab 7 and may misread versions it was not made for:
prefer an imzML export from SurfaceLab (:mod:`ionscope.io._imzml`) where you can.

:func:`read_iontof` gives one Dataset:

- ``counts`` (ion, y, x): the ion images SurfaceLab stored (the sum over scans,
  ``ImageStackScansAdded``, not shift-corrected), one per mass interval of the file's peak list,
  in its order, flipped up-down from storage as pySPM displays them (row 0 at the top);
- coordinates ``ion`` (the interval's assignment, else its description, else ``"{mass:.2f}u"``)
  and ``ion_mass`` (ion, the interval's centre mass in u); ``y``, ``x`` in nm from the field of
  view;
- attrs ``source_file``, ``source_format`` ("IONTOF"), ``scans`` and ``shots_per_pixel`` when the
  file gives them (the dead-time correction needs scans x shots per pixel), ``polarity``,
  ``primary`` = "counts" and the provenance step ``ionscope.io.load``.

A ``.itm`` holds raw, unprocessed data without stored ion images: open it in SurfaceLab, and
export an ``.ita`` or imzML.

No IONTOF file ships on the package index, so only the missing-extra path is tested; the read
follows pySPM 0.6.3's ``ITA`` API (``get_masses``, ``get_added_image``, ``size``).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import xarray as xr

from ionscope.data import signal, with_provenance
from ionscope.errors import DimensionError, FormatError, MissingReaderError

#: Extension (lower case) -> format name.
IONTOF_FORMATS = {".ita": "IONTOF ITA", ".itm": "IONTOF ITM"}


def read_iontof(path: Path, *, lazy: bool = False, dims: Sequence[str] | None = None,
                variable: str | None = None) -> list[xr.Dataset]:
    """Read the ion images of an IONTOF ``.ita`` file (module docstring).

    Parameters
    ----------
    path : pathlib.Path
        The .ita (or .itm) file.
    lazy : bool
        Wrap the images in dask (they are read whole: pySPM has no partial read).
    dims : sequence of str, optional
        Must be ``ion, y, x`` if given.
    variable : str, optional
        ``"counts"`` (or ``"0"``).

    Raises
    ------
    MissingReaderError
        pySPM is not installed (``pip install 'ionscope[iontof]'``).
    FormatError
        pySPM cannot read the file (e.g. ``MissingBlockError`` on SurfaceLab 7 files), or it holds
        no ion images (.itm raw data).
    """
    from ionscope.io._readers import _first_line, _pick

    path = Path(path)
    fmt = IONTOF_FORMATS.get(path.suffix.lower(), "IONTOF")
    try:
        import pySPM
    except ModuleNotFoundError as exc:
        raise MissingReaderError.for_module(path, "IONTOF (pySPM)", exc) from None
    if dims is not None and list(dims) != ["ion", "y", "x"]:
        raise DimensionError(f"{path}: an {fmt} file gives ion images (ion, y, x); drop --dims "
                             f"(it named {', '.join(dims)})")
    if variable is not None:
        _pick(path, ["counts"], variable, [np.empty(0)])
    try:
        ita = pySPM.ITA(os.fspath(path))
    except Exception as exc:  # pySPM raises MissingBlockError, AssertionError, struct.error, ...
        raise FormatError(
            f"{path}: pySPM cannot read this {fmt} file ({type(exc).__name__}: {_first_line(exc)}); pySPM reads "
            "IONTOF files by reverse engineering and fails on some SurfaceLab versions (e.g. 7) - export the "
            "data from SurfaceLab as imzML and read that"
        ) from None
    try:
        try:
            masses = ita.get_masses()
            n = int(getattr(ita, "Nimg", 0) or 0)
            images = [np.flipud(np.asarray(ita.get_added_image(i), dtype=np.float64)) for i in range(min(n, len(masses)))]
        except Exception as exc:
            raise FormatError(
                f"{path}: pySPM finds no stored ion images in this {fmt} file ({type(exc).__name__}: "
                f"{_first_line(exc)}); an .itm holds raw data - process it in SurfaceLab and export .ita or imzML"
            ) from None
        if not images:
            raise FormatError(f"{path}: the {fmt} file holds no ion images; process it in SurfaceLab and export "
                              ".ita or imzML")
        size = getattr(ita, "size", {}) or {}
        pixels, real = size.get("pixels", {}), size.get("real", {})
        attrs = {"source_file": os.fspath(path), "source_format": "IONTOF"}
        if getattr(ita, "Nscan", None):
            attrs["scans"] = int(ita.Nscan)
        if getattr(ita, "spp", None):
            attrs["shots_per_pixel"] = int(ita.spp)
        if getattr(ita, "polarity", None):
            attrs["polarity"] = str(ita.polarity)
    finally:
        f = getattr(ita, "f", None)
        if f is not None:
            f.close()
    labels = []
    for m in masses[: len(images)]:
        name = m.get("assign") or m.get("desc") or f"{float(m.get('cmass', np.nan)):.2f}u"
        labels.append(name if name not in labels else f"{name}_{len(labels)}")
    data = np.stack(images).astype(np.float32)
    ny, nx = data.shape[1:]
    coords = {"ion": np.array(labels, dtype=str)}
    units = {"ion": "1"}
    try:
        unit_nm = {"m": 1e9, "um": 1e3, "nm": 1.0}[str(real.get("unit", "m"))]
        coords["x"] = float(real["x"]) * unit_nm / int(pixels.get("x", nx))
        coords["y"] = float(real.get("y", real["x"])) * unit_nm / int(pixels.get("y", ny))
    except (KeyError, TypeError, ValueError, ZeroDivisionError):
        units.update(y="px", x="px")
    if lazy:
        import dask.array

        data = dask.array.from_array(data, chunks=-1)
    counts = signal(data, ("ion", "y", "x"), name="counts", units="counts", coords=coords, coord_units=units,
                    long_name="ion counts")
    counts = counts.assign_coords(ion_mass=("ion", np.array([float(m.get("cmass", np.nan))
                                                             for m in masses[: len(images)]]), {"units": "u"}))
    ds = counts.to_dataset()
    ds.attrs = {**attrs, "primary": "counts", "signals": ["counts"]}
    return [with_provenance(ds, "ionscope.io.load", {"path": os.fspath(path), "format": fmt},
                            inputs=[path], history=[], variables=True)]
