"""A series of files run one file (frame) at a time, and the frames' results put back together.

An experiment's input of several files is a series. A command that reads one file (``eels
lithium``, ``denoise``, ``holo reconstruct``, ...) runs once per file, each run a checkpoint of
its own (:mod:`ionscope.pipeline.run`); :func:`combine_frames` then stacks the frames' results
along ``time`` into the one result the step writes. The frames are put in time order by the
acquisition start their headers hold (:func:`order_series`), else by name.
"""

from __future__ import annotations

import datetime as dt
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from ionscope import io
from ionscope.data import provenance, with_provenance
from ionscope.errors import InputError, IonscopeError

__all__ = ["order_series", "combine_frames", "frame_summary", "header_start"]


#: Formats whose acquisition start :func:`ionscope.timeline.metadata_start` reads from the file's
#: header alone (no data read); other formats give theirs through their reader.
_HEADER_FORMATS = (".dm3", ".dm4", ".emd", ".hspy", ".hdf5", ".h5", ".zspy")


def header_start(path: Path) -> dt.datetime | None:
    """The acquisition start a file's metadata holds (:func:`ionscope.timeline.metadata_start`),
    or None - also for a file that cannot be read (it fails with its own message where its data
    are read)."""
    from ionscope.timeline.metadata import metadata_start

    try:
        if Path(path).suffix.lower() in _HEADER_FORMATS:
            holder = xr.Dataset(attrs={"source_file": str(path)})
        else:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                holder = io.open_dataset(path)
        return metadata_start(holder)["start"]
    except IonscopeError:
        return None


def order_series(paths: Sequence[Path], start_of: Callable[[Path], dt.datetime | None] = header_start,
                 ) -> tuple[list[Path], list[str | None], str]:
    """The files of a series in acquisition order.

    Parameters
    ----------
    paths : sequence of Path
        The files (in name order).
    start_of : callable
        A file's acquisition start (default :func:`header_start`; e.g. a cached one).

    Returns
    -------
    paths : list of Path
        By the acquisition start in each file's header when every file has one (and all of them
        are naive or all carry a zone), else in name order.
    starts : list of str or None
        Each file's start (ISO 8601), None where its header has none.
    order : str
        ``"header time"`` or ``"name"``.
    """
    starts = [start_of(Path(p)) for p in paths]
    aware = {s.tzinfo is not None for s in starts if s is not None}
    if all(s is not None for s in starts) and len(aware) == 1:
        order = sorted(range(len(paths)), key=lambda k: (starts[k], str(paths[k])))
        how = "header time"
    else:
        order, how = list(range(len(paths))), "name"
    return ([Path(paths[k]) for k in order], [None if starts[k] is None else starts[k].isoformat() for k in order],
            how)


def combine_frames(results: Sequence[Path | xr.Dataset], starts: Sequence[str | None], *, files: Sequence[Path],
                   cycler: Path | None = None, start: str | None = None) -> xr.Dataset:
    """The frames' results of a series as one result along ``time``.

    Parameters
    ----------
    results : sequence of Path or xarray.Dataset
        Each frame's ``result.zarr`` (or that result, read), in acquisition order.
    starts : sequence of str or None
        Each frame's acquisition start (ISO 8601). When all are known, ``time`` is in s from the
        first (the result's ``start_time``); else it counts the frames (units ``frame``).
    files : sequence of Path
        The frames' input files (recorded as coordinate ``source_file`` and in the provenance).
    cycler : Path, optional
        A cycler log: the cell's voltage, current, charge and state at every frame
        (:func:`ionscope.timeline.attach_cycler`), which needs the frames' starts.
    start : str, optional
        As ``attach_cycler``'s ``start``.

    Returns
    -------
    xarray.Dataset
        Every variable of the frames' results with ``time`` first; a frame result that is a
        series itself keeps its times, offset by its start.

    Raises
    ------
    InputError
        Frames on different grids (their results cannot be stacked), or a cycler log for frames
        whose headers hold no start time.
    """
    parts = [r if isinstance(r, xr.Dataset) else io.open_dataset(r).load() for r in results]
    known = all(s is not None for s in starts)
    if cycler is not None and not known:
        missing = [str(f) for f, s in zip(files, starts) if s is None]
        raise InputError(f"{missing[0]} has no acquisition time in its header; the cell's state at each frame of "
                         "the series needs every frame's start time (drop the input's cycler)")
    if known:
        from ionscope.timeline.clock import parse_time, seconds_between

        t0 = parse_time(starts[0], "the first frame's start")
        offsets = [seconds_between(t0, parse_time(s, "a frame's start"), "the frames' starts") for s in starts]
        units = "s"
    else:
        offsets, units = [float(k) for k in range(len(parts))], "frame"
    stacked = []
    for part, offset, file in zip(parts, offsets, files):
        if "time" in part.dims:
            t = part["time"].values.astype(np.float64) + (offset if units == "s" else 0.0)
            part = part.assign_coords(time=("time", t, {**part["time"].attrs, "units": units}))
        else:
            part = part.expand_dims(time=[offset])
        part = part.assign_coords(source_file=("time", [str(file)] * part.sizes["time"]))
        stacked.append(part)
    try:
        ds = xr.concat(stacked, dim="time", data_vars="all", coords="different", compat="equals", join="exact",
                       combine_attrs="drop_conflicts")
    except ValueError as exc:
        raise InputError(f"the frames' results cannot be stacked into one series ({str(exc).splitlines()[0]}): "
                         "every file of a series must hold the same grid") from None
    ds["time"].attrs.update(units=units, long_name="time" if units == "s" else "frame")
    first = parts[0].attrs
    ds.attrs = {**{k: v for k, v in ds.attrs.items() if k != "provenance"},
                **({"primary": first["primary"]} if "primary" in first else {}),
                **({"start_time": starts[0]} if known else {})}
    ds = with_provenance(ds, "ionscope.pipeline.series.combine_frames",
                         {"frames": len(parts), "files": [str(f) for f in files], "time_units": units},
                         history=provenance(parts[0]),
                         read_files=False, variables=True)
    if cycler is not None:
        from ionscope.timeline import attach_cycler

        ds = attach_cycler(ds, cycler, start=start)
    return ds


def frame_summary(summaries: Sequence[dict[str, Any]], files: Sequence[Path], starts: Sequence[str | None],
                  order: str) -> dict[str, Any]:
    """The summary of a step run frame by frame: the frames (file, start) and each frame's own
    summary (without its ``experiment`` entry, which the step's summary carries)."""
    return {"frames": len(files), "series_order": order,
            "frame_files": [str(f) for f in files], "frame_starts": list(starts),
            "frame_summaries": [{k: v for k, v in s.items() if k != "experiment"} for s in summaries]}
