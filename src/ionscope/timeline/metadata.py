"""The absolute start of a series from its file's metadata.

Where each format keeps it:

- ionscope's own results and the scanning-probe readers (``.sxm`` REC_DATE/REC_TIME, Gwyddion,
  Bruker, Asylum): the ``start_time`` attribute (ISO 8601) of the Dataset or DataArray;
- DigitalMicrograph ``.dm3``/``.dm4``: the DataBar's ``Acquisition Date``/``Acquisition Time``
  (the local wall clock, no zone) as RosettaSciIO maps them to ``General.date``/``time``; when
  the DataBar also holds ``Acquisition Time (OS)`` (a Windows FILETIME: 100 ns since 1601-01-01
  UTC) the zone offset is the difference of the two, rounded to 15 min, and the start is given
  with it; the DataBar's ``Exposure Time (s)`` is the exposure;
- Velox ``.emd``: ``Acquisition.AcquisitionStartDatetime`` of the first image (else spectrum
  image) group (Unix seconds, UTC) and ``Scan.FrameTime`` as the exposure, read with h5py from
  the group's JSON metadata (no data read);
- HyperSpy ``.hspy``: ``General.date``, ``General.time`` and ``General.time_zone``;
- other RosettaSciIO formats that map ``General.date``/``time``: the same, through their reader.

The file is found from the ``source_file`` attribute the readers set. Nothing is read when a
``start_time`` attribute is there.
"""

from __future__ import annotations

import datetime as dt
import json
import os
from pathlib import Path
from typing import Any

from ionscope.errors import InputError
from ionscope.timeline.clock import parse_time, parse_timezone

__all__ = ["metadata_start", "dm_start", "velox_start", "general_start"]

#: Windows FILETIME epoch (1601-01-01 UTC) in Unix seconds.
_FILETIME_EPOCH_S = -11644473600.0


def _attr(obj: Any, key: str) -> Any:
    value = (getattr(obj, "attrs", None) or {}).get(key)
    return None if value is None or (isinstance(value, str) and not value.strip()) else value


def metadata_start(series: Any) -> dict[str, Any]:
    """The absolute start of ``series`` and its exposure, from attributes or its file.

    Parameters
    ----------
    series : xarray.Dataset or xarray.DataArray
        As :mod:`ionscope.io` reads it (``start_time`` or ``source_file`` attribute; a Dataset's
        variables are looked at too).

    Returns
    -------
    dict
        ``start`` (datetime or None), ``source`` (where it came from, or why there is none),
        ``exposure_s`` (float or None) and ``exposure_source``.

    Raises
    ------
    InputError
        A ``start_time`` attribute that is not ISO 8601.
    """
    holders = [series]
    if hasattr(series, "data_vars"):
        holders += [series[v] for v in series.data_vars]
    exposure, exposure_source = None, ""
    for key in ("exposure_time_s", "exposure_s", "frame_time_s", "acquisition_time_s"):
        value = next((_attr(h, key) for h in holders if _attr(h, key) is not None), None)
        if value is not None:
            try:
                exposure, exposure_source = float(value), f"the {key} attribute"
            except (TypeError, ValueError):
                continue
            break
    for holder in holders:
        value = _attr(holder, "start_time")
        if value is not None:
            return {"start": parse_time(value, "the series' start_time attribute"),
                    "source": "the start_time attribute", "exposure_s": exposure, "exposure_source": exposure_source}
    source = next((_attr(h, "source_file") for h in holders if _attr(h, "source_file") is not None), None)
    found: dict[str, Any] = {"start": None, "exposure_s": None}
    if source is None:
        found["source"] = "no start_time attribute and no source file"
    elif not Path(str(source)).is_file():
        found["source"] = f"the source file {source} is not there to read its metadata"
    else:
        path = Path(str(source))
        suffix = path.suffix.lower()
        try:
            if suffix in (".dm3", ".dm4"):
                found = dm_start(path)
            elif suffix == ".emd":
                found = velox_start(path)
            elif suffix in (".hspy", ".hdf5", ".h5", ".zspy"):
                found = general_start(path, "hspy")
            else:
                found = {"start": None, "exposure_s": None,
                         "source": f"{path.name}'s format keeps no acquisition time ionscope reads"}
        except InputError:
            raise
        except Exception as exc:  # noqa: BLE001 - metadata a reader cannot give: no start, said why
            found = {"start": None, "exposure_s": None,
                     "source": f"the metadata of {path.name} could not be read ({type(exc).__name__}: {exc})"}
    if exposure is None and found.get("exposure_s") is not None:
        exposure, exposure_source = found["exposure_s"], found.get("exposure_source", "the file's metadata")
    return {"start": found["start"], "source": found["source"], "exposure_s": exposure,
            "exposure_source": exposure_source}


def _dm_date_time(date: str, time: str) -> dt.datetime:
    return dt.datetime.fromisoformat(f"{date}T{time}")


def dm_start(path: str | os.PathLike) -> dict[str, Any]:
    """Start (and exposure) of a DigitalMicrograph file from its DataBar tags.

    Returns the dict of :func:`metadata_start`; ``start`` has a zone when the DataBar holds the
    ``Acquisition Time (OS)`` (UTC) beside the local date and time.
    """
    from rsciio.digitalmicrograph import file_reader

    sig = file_reader(str(path), lazy=True)[0]
    general = _mapped(sig).get("General", {})
    tags = (((sig.get("original_metadata") or {}).get("ImageList") or {}).get("TagGroup0") or {}).get("ImageTags") or {}
    bar = tags.get("DataBar") or {}
    exposure = bar.get("Exposure Time (s)")
    out: dict[str, Any] = {"start": None, "exposure_s": float(exposure) if exposure is not None else None,
                           "exposure_source": "the DataBar's Exposure Time (s)"}
    if not general.get("date") or not general.get("time"):
        out["source"] = f"{Path(path).name} has no acquisition date and time in its DataBar tags"
        return out
    local = _dm_date_time(general["date"], general["time"])
    os_time = bar.get("Acquisition Time (OS)")
    if os_time:
        utc = dt.datetime.fromtimestamp(float(os_time) * 1e-7 + _FILETIME_EPOCH_S, dt.UTC)
        offset = dt.timedelta(minutes=15 * round((local - utc.replace(tzinfo=None)).total_seconds() / 900.0))
        if abs(offset) <= dt.timedelta(hours=14):
            out["start"] = utc.astimezone(dt.timezone(offset))
            out["source"] = ("the DM DataBar: Acquisition Time (OS) (UTC), local date and time "
                             f"{local.isoformat()} (zone offset {out['start'].strftime('%z')})")
            return out
    out["start"] = local
    out["source"] = "the DM DataBar: Acquisition Date and Time (local, no time zone)"
    return out


def velox_start(path: str | os.PathLike) -> dict[str, Any]:
    """Start (UTC) and frame time of a Velox EMD file from its first image's JSON metadata."""
    import h5py
    import numpy as np

    with h5py.File(path, "r") as f:
        data = f.get("Data")
        if data is None:
            return {"start": None, "exposure_s": None,
                    "source": f"{Path(path).name} is not a Velox EMD file (no Data group); no start time read"}
        for kind in ("Image", "SpectrumImage", "SpectrumStream"):
            groups = data.get(kind)
            if groups is None:
                continue
            for name in groups:
                meta = groups[name].get("Metadata")
                if meta is None:
                    continue
                raw = np.asarray(meta[:, 0])
                info = json.loads(bytes(raw[raw > 0]).decode("utf-8"))
                stamp = ((info.get("Acquisition") or {}).get("AcquisitionStartDatetime") or {}).get("DateTime")
                if stamp in (None, "", "0"):
                    continue
                frame = (info.get("Scan") or {}).get("FrameTime")
                return {"start": dt.datetime.fromtimestamp(float(stamp), dt.UTC),
                        "source": f"the Velox metadata: {kind} Acquisition.AcquisitionStartDatetime (UTC)",
                        "exposure_s": float(frame) if frame not in (None, "") else None,
                        "exposure_source": "the Velox metadata's Scan.FrameTime"}
    return {"start": None, "exposure_s": None,
            "source": f"{Path(path).name} has no AcquisitionStartDatetime in its Velox metadata"}


def general_start(path: str | os.PathLike, reader: str) -> dict[str, Any]:
    """Start from HyperSpy-style ``General.date``, ``General.time`` and ``General.time_zone``
    through the RosettaSciIO reader ``reader`` (e.g. ``"hspy"``)."""
    general = _hspy_general(path) if reader == "hspy" else None
    if general is None:
        import importlib

        module = importlib.import_module(f"rsciio.{reader}")
        sig = module.file_reader(str(path), lazy=True)[0]
        general = _mapped(sig).get("General", {})
    if not general.get("date"):
        return {"start": None, "exposure_s": None,
                "source": f"{Path(path).name} has no General.date in its metadata"}
    start = parse_time(f"{general['date']}T{general.get('time') or '00:00:00'}", f"{Path(path).name}'s General.date/time")
    zone = general.get("time_zone")
    source = "the metadata's General.date and General.time"
    if zone and start.tzinfo is None:
        try:
            start = start.replace(tzinfo=parse_timezone(zone))
            source += f" in General.time_zone {zone}"
        except Exception:  # noqa: BLE001 - a zone abbreviation (CET...) the database does not know
            source += f" (General.time_zone {zone!r} is not an IANA name or offset: the time is taken as naive)"
    return {"start": start, "source": source, "exposure_s": None}


def _mapped(sig: dict) -> dict:
    """The General.* entries of a RosettaSciIO signal, completed by its reader's mapping."""
    metadata = {k: dict(v) if isinstance(v, dict) else v for k, v in (sig.get("metadata") or {}).items()}
    general = metadata.setdefault("General", {})
    original = sig.get("original_metadata") or {}
    for source, target in (sig.get("mapping") or {}).items():
        key, func = target if isinstance(target, tuple) else (target, None)
        if not str(key).startswith("General.") or general.get(key.split(".", 1)[1]):
            continue
        node: Any = original
        for part in source.split("."):
            node = node.get(part) if isinstance(node, dict) else None
        if node is None:
            continue
        try:
            general[key.split(".", 1)[1]] = func(node) if func else node
        except Exception:  # noqa: BLE001 - a mapping that does not apply to this file
            continue
    return metadata


def _hspy_general(path: str | os.PathLike) -> dict[str, Any] | None:
    """The ``General`` metadata of a HyperSpy file's first signal straight from its HDF5
    attributes (a millisecond, where the reader takes tens), or None when the file is not laid
    out as HyperSpy writes it (the reader then decides)."""
    import h5py

    try:
        with h5py.File(path, "r") as fh:
            experiments = fh["Experiments"]
            general = experiments[next(iter(experiments))]["metadata"]["General"]
            return {k: (v.decode() if isinstance(v, bytes) else v) for k, v in general.attrs.items()}
    except (OSError, KeyError, StopIteration, TypeError):
        return None
