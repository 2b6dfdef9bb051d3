"""The ``composite_cathode`` twin's files, as the instruments and the cycler leave them: the KPFM
frames as Nanonis ``.sxm``, the TOF-SIMS states as imzML, the cycler log as CSV, and the ground
truth as Zarr (:func:`write_scan_files`; ``ionscope simulate composite_cathode --out DIR``).
"""

from __future__ import annotations

import datetime as _dt
import json
import os
from pathlib import Path

import xarray as xr

from ionscope.simulate.composite_cathode import TWIN, frames_as_datasets
from ionscope.simulate.composite_cathode_params import CompositeCathodeParams
from ionscope.simulate.composite_cathode_sims import simulate_sims
from ionscope.simulate.registry import cycler_table


def write_scan_files(ds: xr.Dataset, out_dir: str | os.PathLike, *, sims: xr.Dataset | bool | None = None,
                     overwrite: bool = False) -> list[Path]:
    """Write a ``composite_cathode`` twin as the instruments would leave it: one Nanonis ``.sxm``
    file per KPFM frame (``frame_000.sxm``, ... with channels ``Z`` in nm and ``KPFM`` in V,
    forward and backward, header times and scan directions), the cycler log ``cycler.csv``
    (``time_s,voltage_V,current_A,charge_C``; time 0 = the first frame's start, given on a
    ``# start_time:`` line as local wall-clock time, as the .sxm headers give theirs) and the ground truth ``truth.zarr`` (the whole Dataset); and the TOF-SIMS
    of the same sample: one processed centroid imzML per state of charge
    (``sims_0_pristine.imzML`` + ``.ibd``, ... with the pixel size in the scan settings; empty
    pixels left out as IONTOF SurfaceLab does) and its ground truth ``sims_truth.zarr``.

    Parameters
    ----------
    ds : xarray.Dataset
        The KPFM twin (:func:`~ionscope.simulate.composite_cathode.simulate_composite_cathode`).
    out_dir : path-like
        An existing folder.
    sims : xarray.Dataset or bool, optional
        The TOF-SIMS twin (:func:`~ionscope.simulate.composite_cathode_sims.simulate_sims`);
        True simulates it from ``ds``'s parameters and seed; None (default) does so when the
        SIMS field fits the sample (a small KPFM field leaves no room for it), False writes none.
    overwrite : bool
        Replace existing files (else they are refused before anything is written).

    Every file is written atomically. Returns the paths written: the KPFM scans, the imzML
    files, then ``cycler.csv``, ``truth.zarr`` (and ``sims_truth.zarr``).
    """
    from ionscope import io

    out_dir = Path(out_dir)
    if sims is None or sims is True:
        params = CompositeCathodeParams(**json.loads(ds.attrs["parameters"]))
        if sims is True or params.sims_field_problem() is None:
            sims = simulate_sims(params, seed=int(ds.attrs["seed"]))
    sims = sims if isinstance(sims, xr.Dataset) else None
    frames = frames_as_datasets(ds)
    scans = [out_dir / f"frame_{k:03d}.sxm" for k in range(len(frames))]
    others = [out_dir / "cycler.csv", out_dir / "truth.zarr"]
    for path in scans + others + (sims_paths(sims, out_dir) if sims is not None else []):  # refuse first
        io.check_output(path, overwrite=overwrite)
    for path, frame in zip(scans, frames):
        width, height = frame.attrs["scan_range_nm"]
        io.write_sxm(
            path,
            {"Z": (frame["Z_forward"].values, frame["Z_backward"].values),
             "KPFM": (frame["KPFM_forward"].values, frame["KPFM_backward"].values)},
            range_nm=(height, width), start_time=frame.attrs["start_time"],
            scan_direction=frame.attrs["scan_direction"], acq_time_s=frame.attrs["acquisition_time_s"],
            line_time_s=frame.attrs["line_time_s"], units={"Z": "nm", "KPFM": "V"},
            comment=f"ionscope twin {TWIN} seed {frame.attrs['seed']} frame {frame.attrs['frame_index']}",
            overwrite=overwrite,
        )
    written = write_sims_files(sims, out_dir, overwrite=overwrite) if sims is not None else []
    io.write_text(others[0], cycler_table(ds, start_time=_wall_clock(ds.attrs["start_time"])), overwrite=overwrite)
    io.save(ds, others[1], overwrite=overwrite)
    imzml = [p for p in written if p.suffix == ".imzML"]
    return scans + imzml + others + [p for p in written if p.suffix == ".zarr"]


def _wall_clock(iso: str) -> str:
    """The local wall-clock time of an ISO 8601 time, without its zone: what the instruments
    record (a Nanonis header, a cycler's start, an imzML run's stamp), so that the files agree."""
    return _dt.datetime.fromisoformat(str(iso)).replace(tzinfo=None).isoformat()


def sims_paths(sims: xr.Dataset, out_dir: str | os.PathLike) -> list[Path]:
    """The files :func:`write_sims_files` writes: per state ``sims_K_NAME.imzML`` and its ``.ibd``,
    then ``sims_truth.zarr``."""
    out_dir = Path(out_dir)
    pairs = [out_dir / f"sims_{k}_{name}.imzML" for k, name in enumerate(str(v) for v in sims["state"].values)]
    return [q for p in pairs for q in (p, p.with_suffix(".ibd"))] + [out_dir / "sims_truth.zarr"]


def write_sims_files(sims: xr.Dataset, out_dir: str | os.PathLike, *, overwrite: bool = False) -> list[Path]:
    """Write the TOF-SIMS twin (:func:`~ionscope.simulate.composite_cathode_sims.simulate_sims`)
    as IONTOF SurfaceLab exports it: one processed centroid imzML (+ .ibd) per state of charge,
    pixel size in the scan settings, empty pixels left out, each run's ``startTimeStamp`` the
    state's acquisition time (``attrs["start_time"]`` + ``sims_state_time_s``), and its ground
    truth ``sims_truth.zarr``. Existing files are refused before anything is written unless
    ``overwrite``; returns the paths (:func:`sims_paths`)."""
    from ionscope import io

    paths = sims_paths(sims, out_dir)
    for path in paths:
        io.check_output(path, overwrite=overwrite)
    zero = _dt.datetime.fromisoformat(_wall_clock(sims.attrs["start_time"]))
    for k, path in enumerate(paths[:-1:2]):
        stamp = (zero + _dt.timedelta(seconds=float(sims["sims_state_time_s"].values[k]))).isoformat()
        io.write_imzml(path, sims["peak_mass"].values[k], sims["counts"].values[k],
                       pixel_size_um=float(sims.attrs["pixel_size_nm"]) / 1e3, mode="processed",
                       spectrum_type="centroid", skip_empty=True, start_time=stamp, overwrite=overwrite)
    io.save(sims, paths[-1], overwrite=overwrite)
    return paths


__all__ = ["write_scan_files", "write_sims_files", "sims_paths"]
