"""Arbin files into the cycler model: ``.res`` (a Microsoft Access database, read with mdbtools'
``mdb-export`` where the machine has it) and ``.xlsx`` exports; LAND (LANHE) ``.xlsx`` exports
(sheets ``Record``, ``Mode``, ``Cycle``) are recognised by their sheets and read too.

Arbin writes ``Test_Time(s)``, ``Date_Time``, ``Step_Index``, ``Cycle_Index``, ``Voltage(V)``,
``Current(A)`` (charge positive) and ``Charge_Capacity(Ah)`` / ``Discharge_Capacity(Ah)``, which
run within a cycle and restart at the next: their difference, summed over cycles, is the net
``charge``. LAND writes ``TestTime/h``, ``Current/mA`` (signed), ``Capacity/mAh`` (restarting
every step) and ``State`` (``R``, ``C_CC``, ``C_CV``, ``D_CC``...). ``.xlsx`` files are read with ``python-calamine``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from ionscope.errors import FormatError, MissingReaderError
from ionscope.io._cycler import RawLog, net_from_step_capacity, table_log


def _arbin_charge(raw: RawLog, frame: Any) -> None:
    """Net charge from Arbin's per-cycle charge/discharge capacities (Ah), when both are there."""
    names = list(frame.columns)
    cc = next((n for n in names if n.lower().startswith("charge_capacity")), None)
    dc = next((n for n in names if n.lower().startswith("discharge_capacity")), None)
    if cc is None or dc is None or raw.cycle is None:
        return
    scale = 1e3 if "(ah)" in cc.lower() else 1.0
    net = (np.asarray(frame[cc], dtype=np.float64) - np.asarray(frame[dc], dtype=np.float64)) * scale
    raw.charge_mAh = net_from_step_capacity(net, raw.cycle)


def read_res(path: Path) -> RawLog:
    """An Arbin ``.res`` file through ``mdb-export`` (mdbtools).

    Raises
    ------
    MissingReaderError
        mdbtools' ``mdb-export`` is not on the PATH.
    FormatError
        Not an Access database with Arbin's ``Channel_Normal_Table``.
    """
    import io

    import pandas as pd

    exe = shutil.which("mdb-export")
    if exe is None:
        raise MissingReaderError(f"{path}: Arbin .res files are Microsoft Access databases, read with mdbtools' "
                                 "mdb-export, which is not installed here; install mdbtools (apt install mdbtools, "
                                 "brew install mdbtools) or export the run from Arbin's software as .xlsx/CSV - the "
                                 "file itself may be fine")

    def export(table: str) -> Any:
        run = subprocess.run([exe, os.fspath(path), table], capture_output=True, text=True, timeout=600)
        if run.returncode != 0:
            raise FormatError(f"cycler log {path}: mdb-export cannot read the table {table} "
                              f"({run.stderr.strip().splitlines()[-1] if run.stderr.strip() else 'no message'}); "
                              "is it an Arbin .res file, complete?")
        return pd.read_csv(io.StringIO(run.stdout))

    frame = export("Channel_Normal_Table")
    attrs: dict[str, Any] = {}
    try:
        glob = export("Global_Table")
        if "Start_DateTime" in glob.columns and len(glob):
            start = float(glob["Start_DateTime"].iloc[0])  # days since 1899-12-30 (OLE date), local time
            attrs["start_time"] = (pd.Timestamp("1899-12-30") + pd.to_timedelta(start, unit="D")).to_pydatetime()
    except FormatError:
        pass
    frame = frame.drop(columns=[c for c in ("Date_Time",) if c in frame.columns])
    raw = table_log(frame, path, columns={"time": "Test_Time", "voltage": "Voltage", "current": "Current:A",
                                          "cycle": "Cycle_Index", "step": "Step_Index"},
                    units={"Test_Time": "s", "Voltage": "V"}, attrs=attrs)
    for col in ("Charge_Capacity", "Discharge_Capacity"):
        if col in frame.columns:
            frame = frame.rename(columns={col: col + "(Ah)"})
    _arbin_charge(raw, frame)
    return raw


def _sheets(path: Path) -> dict[str, list[list[Any]]]:
    try:
        from python_calamine import CalamineWorkbook
    except ModuleNotFoundError as exc:
        raise MissingReaderError.for_module(path, ".xlsx", exc) from None
    try:
        wb = CalamineWorkbook.from_path(os.fspath(path))
        return {name: wb.get_sheet_by_name(name).to_python() for name in wb.sheet_names}
    except Exception as exc:  # calamine raises its own errors for zip/XML damage
        raise FormatError(f"cycler log {path}: not a readable .xlsx workbook ({type(exc).__name__}: "
                          f"{str(exc).splitlines()[0] if str(exc) else ''}); is it truncated?") from None


def _frame(rows: list[list[Any]]) -> Any:
    import pandas as pd

    header = [str(h).strip() for h in rows[0]]
    frame = pd.DataFrame(rows[1:], columns=header)
    frame = frame.loc[:, [h for h in header if h]]
    return frame.replace("", np.nan).dropna(how="all")


def read_xlsx(path: Path, *, columns: Mapping[str, str] | str | None = None) -> tuple[RawLog, str]:
    """An Arbin (or LAND) ``.xlsx`` export; returns the log and its format name."""
    import pandas as pd

    sheets = _sheets(path)
    if "Record" in sheets and sheets["Record"] and "State" in [str(h) for h in sheets["Record"][0]]:
        frame = _frame(sheets["Record"])
        raw = table_log(frame, path, columns=columns)
        state = frame["State"].astype(str).str.strip().str.upper().str[:1].to_numpy()  # R, C_CC, C_CV, D_CC...
        raw.hint = np.select([state == "R", state == "C", state == "D"], [0, 1, 2], -1).astype(np.int8)
        cap = next((n for n in frame.columns if n.lower().startswith("capacity")), None)
        step = next((n for n in frame.columns if n.lower() in ("step", "stepindex", "step_index")), None)
        if cap is not None:  # LAND's per-step capacity (unsigned), signed by the state: the net charge
            q = pd.to_numeric(frame[cap], errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
            sign = np.select([state == "C", state == "D"], [1.0, -1.0], 0.0)
            blocks = np.cumsum(np.r_[True, state[1:] != state[:-1]]) if step is None else frame[step].to_numpy()
            raw.charge_mAh = net_from_step_capacity(np.abs(q) * sign, blocks)
        return raw, "LAND XLSX"
    data = [name for name, rows in sheets.items() if name.lower().startswith("channel") and rows]
    if not data:  # any sheet with a cycler header
        data = [name for name, rows in sheets.items() if rows and any(
            "voltage" in str(h).lower() for h in rows[0])]
    if not data:
        raise FormatError(f"cycler log {path}: no sheet of the workbook holds a cycler log (sheets: "
                          f"{', '.join(sheets)}); expected Arbin's Channel_* sheets or LAND's Record sheet")
    frame = pd.concat([_frame(sheets[name]) for name in data], ignore_index=True)
    raw = table_log(frame, path, columns=columns)
    _arbin_charge(raw, frame)
    return raw, "Arbin XLSX"
