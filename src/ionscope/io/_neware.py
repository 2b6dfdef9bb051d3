"""Neware ``.nda`` / ``.ndax`` files into the cycler model, read with ``NewareNDA``.

Measured against ``fastnda`` 1.3.1 on the navani sdist's ``test.nda`` / ``test.ndax``: both read
both files with the same values in ~10-20 ms; NewareNDA needs only pandas (which ionscope has) and
xmltodict, fastnda brings polars (~100 MB) and typer. NewareNDA gives the step time (``Time``,
restarting at every step), a naive local ``Timestamp`` (1 s resolution), the step type
(``Status``: ``CC_Chg``, ``CCCV_DChg``, ``Rest``...), the cycle (its "charge first" numbering: a
new cycle where a charge follows a discharge, as ionscope counts) and Neware's own per-step
capacities, whose running sum over steps (charge minus discharge) is the net ``charge``. The time
since the first record is the sum of the step times (a step's last record
and the next step's first share their instant), which keeps the sub-second resolution.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np

from ionscope.errors import FormatError, MissingReaderError
from ionscope.io._cycler import RawLog, net_from_step_capacity


def _total_time(step_time: np.ndarray, step: np.ndarray) -> np.ndarray:
    """Time since the first record, s, from per-step times: each step starts where the previous ended."""
    t = np.asarray(step_time, dtype=np.float64)
    new = np.r_[True, step[1:] != step[:-1]]
    starts = np.flatnonzero(new)
    ends = np.r_[starts[1:] - 1, t.size - 1]
    offsets = np.r_[0.0, np.cumsum(t[ends[:-1]] - t[starts[:-1]])]
    block = np.cumsum(new) - 1
    return offsets[block] + t - t[starts][block]


def read_neware(path: Path) -> RawLog:
    """A Neware file as a :class:`~ionscope.io._cycler.RawLog`.

    Raises
    ------
    MissingReaderError
        NewareNDA is not installed.
    FormatError
        Not a Neware file, or truncated.
    """
    try:
        import NewareNDA
    except ModuleNotFoundError as exc:
        raise MissingReaderError.for_module(path, "Neware .nda/.ndax", exc) from None
    try:
        with warnings.catch_warnings():  # NewareNDA's pandas calls that pandas 3 deprecates
            warnings.simplefilter("ignore", DeprecationWarning)
            warnings.simplefilter("ignore", FutureWarning)
            df = NewareNDA.read(str(path))
    except Exception as exc:  # NewareNDA raises ValueError, KeyError, zipfile.BadZipFile, struct.error, ...
        raise FormatError(f"cycler log {path}: not a readable Neware file ({type(exc).__name__}: "
                          f"{str(exc).splitlines()[0] if str(exc) else ''}); is it truncated?") from None
    if len(df) == 0:
        raise FormatError(f"cycler log {path}: the Neware file holds no records; is it truncated?")
    names = [str(c) for c in df.columns]
    missing = [c for c in ("Time", "Voltage", "Current(mA)") if c not in names]
    if missing:
        raise FormatError(f"cycler log {path}: NewareNDA gave no {', '.join(missing)} column; it gave {', '.join(names)}")
    step_id = df["Step"].to_numpy() if "Step" in names else np.zeros(len(df), int)
    raw = RawLog(time_s=_total_time(df["Time"].to_numpy(), step_id),
                 voltage_V=df["Voltage"].to_numpy(dtype=np.float64),
                 current_mA=df["Current(mA)"].to_numpy(dtype=np.float64))
    if "Cycle" in names:
        raw.cycle = df["Cycle"].to_numpy(dtype=np.float64)
    if "Step_Index" in names:
        raw.step = df["Step_Index"].to_numpy()
    if "Status" in names:
        status = df["Status"].astype(str).to_numpy()
        lower = np.char.lower(status.astype(str))
        raw.hint = np.select([lower == "rest", np.char.find(lower, "dchg") >= 0, np.char.find(lower, "chg") >= 0],
                             [0, 2, 1], -1).astype(np.int8)
        raw.extras["step_type"] = (status, "", "Status")
    if "Timestamp" in names and len(df):
        first = df["Timestamp"].iloc[0]
        raw.attrs["start_time"] = first.to_pydatetime() if hasattr(first, "to_pydatetime") else first
        raw.extras["timestamp"] = (df["Timestamp"].astype(str).to_numpy(), "local time", "Timestamp")
    if "Charge_Capacity(mAh)" in names and "Discharge_Capacity(mAh)" in names:
        # Neware's own capacities (integrated at its internal rate, restarting every step): the net charge
        step_q = (df["Charge_Capacity(mAh)"].to_numpy(dtype=np.float64)
                  - df["Discharge_Capacity(mAh)"].to_numpy(dtype=np.float64))
        raw.charge_mAh = net_from_step_capacity(step_q, step_id)
    raw.extras["step_time"] = (df["Time"].to_numpy(dtype=np.float64), "s", "Time")
    for name, unit in (("Charge_Capacity(mAh)", "mAh"), ("Discharge_Capacity(mAh)", "mAh"),
                       ("Charge_Energy(mWh)", "mWh"), ("Discharge_Energy(mWh)", "mWh"), ("Index", "")):
        if name in names:
            raw.extras[name] = (df[name].to_numpy(dtype=np.float64), unit, name)
    used = {"Time", "Voltage", "Current(mA)", "Cycle", "Step_Index", "Status", "Timestamp", "Step",
            "Charge_Capacity(mAh)", "Discharge_Capacity(mAh)", "Charge_Energy(mWh)", "Discharge_Energy(mWh)", "Index"}
    for name in names:
        if name not in used:
            col = df[name]
            values = col.to_numpy(dtype=np.float64) if col.dtype.kind in "biuf" else col.astype(str).to_numpy()
            raw.extras[name] = (values, "", name)
    return raw
