"""Maccor text exports (tab-separated; a preamble line, then ``Rec# Cyc# Step Test (Min) Step (Min)
Amp-hr Watt-hr Amps Volts State ES DPt Time``) into the cycler model.

Maccor writes the current unsigned and the direction in ``State`` (``C`` charge, ``D``
discharge, ``R`` rest, ``O``/``S`` other): the current gets the sign of its state, charge
positive. ``Amp-hr`` is the capacity of the step (it restarts at every step), kept as
``charge_instrument`` (mAh); the net charge is integrated from the current. ``Cyc#`` are the file's
cycle numbers. ``DPt Time`` (a clock time, without a date or AM/PM in some exports) is kept as text;
``Date of Test`` from the preamble becomes ``test_date``: the start time is not guessed from a
12-hour clock.
"""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import numpy as np

from ionscope.errors import FormatError
from ionscope.io._cycler import RawLog, _head, table_log

_HEADER = re.compile(r"^\s*Rec#?\s*\t", re.IGNORECASE)


def _header_line(lines: list[str]) -> int | None:
    for k, line in enumerate(lines[:50]):
        fields = [f.strip().lower() for f in line.split("\t")]
        if _HEADER.match(line) or ("cyc#" in fields and "state" in fields):
            return k
    return None


def is_maccor(path: Path) -> bool:
    """Whether a .txt file is a Maccor export (a ``Rec#`` / ``Cyc#`` ... ``State`` header)."""
    lines = _head(path, 50)
    return "\x00" not in "".join(lines[:5]) and _header_line(lines) is not None


def read_maccor(path: Path) -> RawLog:
    """A Maccor text export as a :class:`~ionscope.io._cycler.RawLog`."""
    import pandas as pd

    lines = _head(path, 50)
    header = _header_line(lines)
    if header is None:
        raise FormatError(f"cycler log {path}: not a Maccor export (no Rec#/Cyc#/State header)")
    attrs = {}
    m = re.search(r"Date of Test:\s*(\d{1,2})/(\d{1,2})/(\d{4})", "".join(lines[:header]))
    if m:
        attrs["test_date"] = dt.date(int(m[3]), int(m[1]), int(m[2])).isoformat()
    m = re.search(r"Procedure:\s*(.+?)(?:\t|\s{2,}|Comment|$)", "".join(lines[:header]))
    if m:
        attrs["technique"] = m[1].strip()
    frame = pd.read_csv(path, sep="\t", skiprows=header, encoding="utf-8", encoding_errors="replace",
                        low_memory=False)
    frame.columns = [str(c).strip() for c in frame.columns]
    frame = frame.loc[:, [c for c in frame.columns if not c.startswith("Unnamed")]].dropna(how="all")
    names = list(frame.columns)
    pick = {}
    for role, options in (("time", ("Test (Min)", "Test (Sec)", "Test (Hr)", "Test Time (sec)", "TestTime")),
                          ("voltage", ("Volts", "Voltage", "Voltage (V)")),
                          ("current", ("Amps", "Current", "Current (A)")),
                          ("cycle", ("Cyc#", "Cycle", "Cycle P")), ("step", ("Step",))):
        found = next((n for n in options if n in names), None)
        if found is not None:
            pick[role] = found
    units = {"Amps": "A", "Current": "A", "Volts": "V", "Voltage": "V", "TestTime": "s"}
    raw = table_log(frame, path, columns=pick or None, units=units, attrs=attrs, net_charge=False)
    state_col = next((n for n in names if n.strip().lower() in ("state", "md")), None)
    if state_col is not None:
        state = frame[state_col].astype(str).str.strip().str.upper().to_numpy()
        sign = np.where(state == "D", -1.0, 1.0)
        raw.current_mA = np.abs(raw.current_mA) * sign
        raw.hint = np.select([state == "R", state == "C", state == "D"], [0, 1, 2], -1).astype(np.int8)
    for name in ("Amp-hr", "Capacity", "Cap. (Ah)"):
        if name in raw.extras:
            values, _, rawname = raw.extras.pop(name)
            raw.extras["charge_instrument"] = (np.asarray(values, dtype=np.float64) * 1e3, "mAh", rawname)
            break
    if "Watt-hr" in raw.extras:
        values, _, rawname = raw.extras.pop("Watt-hr")
        raw.extras["energy_instrument"] = (np.asarray(values, dtype=np.float64) * 1e3, "mWh", rawname)
    return raw
