"""The ``composite_cathode`` twin's KPFM frames in the SPM reader data model.

:func:`frames_as_datasets` cuts a ``composite_cathode`` Dataset into one Dataset per frame, with
the channels, coordinates and attrs of the SPM readers (what
:mod:`ionscope.simulate.composite_cathode_files` writes as ``.sxm`` files). Re-exported by
:mod:`ionscope.simulate.composite_cathode`.
"""

from __future__ import annotations

import datetime as _dt
import json

import numpy as np
import xarray as xr

from ionscope.data import signal
from ionscope.errors import InputError
from ionscope.simulate.composite_cathode_params import TWIN

#: SPM channels of :func:`frames_as_datasets`: name, source variable, unit, description.
_SPM_CHANNELS = (
    ("Z_forward", "topography_measured", "nm", "topography, forward"),
    ("Z_backward", "topography_measured_backward", "nm", "topography, backward"),
    ("KPFM_forward", "potential_measured", "V", "KPFM potential, forward"),
    ("KPFM_backward", "potential_measured_backward", "V", "KPFM potential, backward"),
)


def frames_as_datasets(ds: xr.Dataset) -> list[xr.Dataset]:
    """Every frame of a ``composite_cathode`` Dataset in the SPM reader data model.

    Each frame is a Dataset with ``Z_forward``, ``Z_backward`` (nm) and ``KPFM_forward``,
    ``KPFM_backward`` (V), dims (y, x) in display orientation (row 0 at the top, backward traces
    mirrored back), coordinates ``y``/``x`` in nm from 0 and ``row_time`` (y) in s from the
    frame's start; attrs ``start_time`` (ISO 8601, the frame's absolute start),
    ``scan_direction`` (``up``: bottom row recorded first, or ``down``), ``scan_range_nm``
    ``[x, y]`` (width, height; the order of Nanonis ``SCAN_RANGE``), ``scan_pixels`` ``[x, y]``,
    ``acquisition_time_s``, ``line_time_s`` (forward + backward), ``scan_angle_deg``,
    ``bias_on``, ``frame_index``, ``frame_start_s`` (since the series' start).

    Parameters
    ----------
    ds : xarray.Dataset
        The output of ``simulate("composite_cathode", ...)`` (or it reloaded from Zarr).

    Returns
    -------
    list of xarray.Dataset
        One per frame, in time order.

    Raises
    ------
    InputError
        If ``ds`` is not a ``composite_cathode`` Dataset.
    """
    needed = ("potential_measured", "potential_measured_backward", "topography_measured",
              "topography_measured_backward")
    missing = [v for v in needed if v not in ds]
    if missing or "row_time" not in ds.coords or ds.attrs.get("twin") != TWIN:
        raise InputError(
            f"frames_as_datasets needs a '{TWIN}' twin Dataset (missing {missing or ['row_time or twin attrs']})"
        )
    params = json.loads(ds.attrs["parameters"])
    start = _dt.datetime.fromisoformat(str(ds.attrs["start_time"]))
    ny, nx = ds.sizes["y"], ds.sizes["x"]
    h = float(params["pixel_nm"])
    frames = []
    for k in range(ds.sizes["time"]):
        t0 = float(ds["frame_start"].values[k])
        rt = np.asarray(ds["row_time"].values[k], dtype=np.float64)
        frame = xr.Dataset({
            name: signal(np.asarray(ds[source].values[k]), ("y", "x"), name=name, units=units,
                         coords={"y": h, "x": h}, long_name=long_name)
            for name, source, units, long_name in _SPM_CHANNELS
        }).assign_coords(row_time=("y", rt, {"units": "s", "long_name": "row recording time from the frame's start"}))
        frame.attrs = {
            "start_time": (start + _dt.timedelta(seconds=t0)).isoformat(),
            "scan_direction": str(ds["scan_direction"].values[k]),
            "scan_range_nm": [nx * h, ny * h],
            "scan_pixels": [int(nx), int(ny)],
            "acquisition_time_s": float(params["frame_time_s"]),
            "line_time_s": float(params["frame_time_s"]) / ny,
            "scan_angle_deg": 0.0,
            "bias_on": "tip" if params["bias_on_tip"] else "sample",
            "frame_index": int(k),
            "frame_start_s": t0,
            "twin": TWIN,
            "seed": int(ds.attrs["seed"]),
        }
        frames.append(frame)
    return frames


__all__ = ["frames_as_datasets"]
