"""The Li map series in: its quantity, frame times, pixel size and cell states, checked.

The first steps of :func:`~ionscope.transport.li_motion`: the series' units read as a Li fraction
(units ``1``, its first frame's values checked to be a fraction's) or a concentration, the frame
times in s from the ``time`` coordinate (datetimes or a time unit), the pixel size in nm of the
``y`` and ``x`` axes, and the cell state of every frame (:func:`~ionscope.transport.state_codes`:
a given state, the series' ``state`` coordinate, or one state ``all``) with its runs of
consecutive frames, within which the rates are fitted. Each check raises an
:class:`~ionscope.errors.InputError` (or :class:`~ionscope.errors.DimensionError`) that says what
to give instead.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import xarray as xr

from ionscope.data import axis_calibration
from ionscope.errors import DimensionError, InputError
from ionscope.timeline import STATE_FLAGS
from ionscope.units import CONCENTRATION_UNITS, length_to_nm, normalise_unit, time_to_s

__all__ = ["state_codes"]

#: Default state names of the per-frame state codes: the cycler flags of ionscope.timeline.
_STATE_NAMES = dict(zip(STATE_FLAGS["flag_values"], STATE_FLAGS["flag_meanings"].split()))


def _check_quantity(da: xr.DataArray) -> str:
    """``"fraction"`` or ``"concentration"`` by the units, else an InputError."""
    unit = str(da.attrs.get("units", "1")).strip()
    if unit in ("", "1", "fraction"):
        return "fraction"
    if normalise_unit(unit) in CONCENTRATION_UNITS:
        return "concentration"
    name = da.name or "the input"
    raise InputError(
        f"{name} is in {unit!r}, not a Li fraction (units '1') or a concentration ("
        f"{', '.join(sorted(CONCENTRATION_UNITS))}); give a Li map series such as the 'li_fraction' of "
        "'eels lithium' or the 'denoised' of 'denoise' (FILE:VARIABLE or --variable)")


def _check_fraction_values(first: np.ndarray, name: str) -> None:
    """A noisy fraction scatters around 0-1 (Poisson counts / dose at a low dose reach 2 or more);
    labels, counts or intensities with units '1' sit far outside."""
    med, hi = np.percentile(first, [50, 99])
    if not -0.25 <= med <= 1.5 or hi > 4.0:
        raise InputError(
            f"{name} has units '1' but a median of {med:.3g} and a 99th percentile of {hi:.3g} in the first frame, "
            "not a Li fraction (0-1); give the Li-fraction variable (--variable) or set its units to a concentration")


def _frame_times(da: xr.DataArray) -> np.ndarray:
    if "time" not in da.dims:
        raise DimensionError(
            f"the input has dims ({', '.join(map(str, da.dims))}), no 'time': Li motion needs a series of maps "
            "(time, y, x) with frame times in s; give a series (use --dims time,y,x for an uncalibrated file)")
    if "time" not in da.coords:
        raise InputError("the series has no time coordinate: the frames' times (s) are needed for rates; "
                         "attach them (e.g. 'ionscope timeline SERIES --cycler LOG') or save the series with a "
                         "'time' coordinate in s")
    coord = da["time"]
    if np.issubdtype(coord.dtype, np.datetime64):
        t = (coord.values - coord.values[0]) / np.timedelta64(1, "s")
    else:
        unit = coord.attrs.get("units")
        factor = time_to_s(unit) if unit is not None else None
        if factor is None:
            raise InputError(f"the time coordinate is in {unit!r}, not a time unit; set its units to s (or min, h)")
        t = np.asarray(coord.values, dtype=np.float64) * factor
    if t.size < 2:
        raise InputError(f"the series has {t.size} frame; Li motion needs at least two frames (a rate of change)")
    if not np.all(np.isfinite(t)) or np.any(np.diff(t) <= 0):
        raise InputError("the frame times must be finite and increasing; sort the series by time")
    return t


def _pixel_nm(da: xr.DataArray, dim: str) -> float:
    if dim not in da.coords:
        raise InputError(f"the series has no {dim!r} coordinate; calibrate the pixel size in nm")
    _, step, unit = axis_calibration(da, dim)
    factor = length_to_nm(unit)
    if factor is None:
        raise InputError(f"the {dim!r} axis is in {unit!r}, not a length; calibrate the pixel size in nm")
    return abs(step) * factor


def state_codes(series: xr.DataArray, state: Any = None) -> tuple[np.ndarray, dict[int, str]]:
    """The cell state of every frame and the names of the codes.

    ``state`` (an array or DataArray over time with CF ``flag_values`` / ``flag_meanings``), else
    the series' ``state`` (or ``cell_state``) coordinate, else one state ``all`` (code 0).
    """
    n = series.sizes["time"]
    if state is None:
        for name in ("state", "cell_state"):
            if name in series.coords and series[name].dims == ("time",):
                state = series[name]
                break
    if state is None:
        return np.zeros(n, dtype=int), {0: "all"}
    attrs = getattr(state, "attrs", {}) or {}
    codes = np.asarray(getattr(state, "values", state))
    if codes.shape != (n,):
        raise InputError(f"the state has shape {codes.shape}, the series {n} frames; give one state per frame")
    if not np.issubdtype(codes.dtype, np.number) or not np.all(np.isfinite(codes)):
        raise InputError("the state must be integer codes per frame (0 rest, 1 charge, 2 discharge)")
    names = dict(_STATE_NAMES)
    if "flag_values" in attrs and "flag_meanings" in attrs:
        meanings = attrs["flag_meanings"]
        meanings = meanings.split() if isinstance(meanings, str) else list(meanings)
        names = {int(v): str(m) for v, m in zip(np.atleast_1d(attrs["flag_values"]), meanings)}
    codes = codes.astype(int)
    return codes, {int(c): names.get(int(c), str(int(c))) for c in np.unique(codes)}


def _runs(codes: np.ndarray) -> np.ndarray:
    return np.concatenate([[0], np.cumsum(np.diff(codes) != 0)])
