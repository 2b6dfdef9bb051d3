"""Capacity, coulombic efficiency, energy, mean voltage, C-rate and duration per half cycle and
per cycle (:doc:`/guide/echem`).

Conventions [standard; e.g. Bard & Faulkner, *Electrochemical Methods*, 2nd ed. (2001); the
:doc:`/guide/echem`]:

- charge = positive current (mA); the capacity of a half cycle is ``Q = integral |I| dt`` (mAh),
  specific ``Q / m`` (mAh/g of active mass), areal ``Q / A`` (mAh/cm2);
- coulombic efficiency = discharge / charge capacity of one cycle (a cycle = a charge half cycle
  followed by a discharge half cycle: a cathode started discharged);
- energy ``E = integral V |I| dt`` (mWh); mean voltage = ``E / Q`` (V);
- C-rate = mean ``|I|`` / nominal capacity (1/h: 1C empties the full capacity in 1 h).

**Integration.** The charge passed between records ``k-1`` and ``k`` is the trapezoid
``dq_k = (I[k-1] + I[k]) / 2 * (t[k] - t[k-1])`` (signed) and belongs to record ``k``'s half cycle,
so the half cycles partition the record and their capacities add up to the net charge:
``sum(Q_charge) - sum(Q_discharge) = integral I dt``. A half cycle's capacity is its direction's
sign times the sum of its intervals: equal to ``integral |I| dt`` while the current keeps its
sign, and a small rest current is neither rectified nor doubled. An instantaneous current step
is two records at the same time (the interval between them has ``dt = 0``), as cyclers log one.

**Complete half cycles.** A half cycle is complete when the log records its end (``ended_by``):
a later record at rest (``"rest"``) or in the other direction (``"reversal"``). A log that stops
while the current still flows ends its last half cycle with the log; that half cycle is complete
when it ends at the voltage limit its direction's other complete half cycles end at (within
``cutoff_tolerance_V``, ``"cut-off"``: cyclers stop a technique at its limit and stop logging with
it), else it is *open* (``"end of log"``): listed (``complete`` False) but left out of its
cycle's values.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ionscope.echem.log import CHARGE, DISCHARGE, REST, STATE_NAMES, LogArrays

__all__ = [
    "SECONDS_PER_HOUR",
    "HALF_CYCLE_COLUMNS",
    "CYCLE_COLUMNS",
    "interval_charge_kernel",
    "interval_energy_kernel",
    "half_cycle_table",
    "cycle_table",
]

SECONDS_PER_HOUR = 3600.0

#: Columns of a half-cycle row (``half_cycles.csv``).
HALF_CYCLE_COLUMNS = [
    "half_cycle", "cycle", "state", "complete", "capacity_mAh", "capacity_mAh_per_g", "capacity_mAh_per_cm2",
    "energy_mWh", "mean_voltage_V", "mean_current_mA", "c_rate_per_h", "duration_s", "start_s", "end_s",
    "start_voltage_V", "end_voltage_V", "records", "ended_by",
]
#: Columns of a cycle row (``cycles.csv``): the eight that ``ionscope echem summary`` promises (:doc:`/cli`) first, then the others.
CYCLE_COLUMNS = [
    "cycle", "charge_mAh", "discharge_mAh", "coulombic_efficiency", "charge_mAh_per_g", "discharge_mAh_per_g",
    "mean_charge_V", "mean_discharge_V",
    "charge_mAh_per_cm2", "discharge_mAh_per_cm2", "charge_energy_mWh", "discharge_energy_mWh",
    "energy_efficiency", "charge_c_rate_per_h", "discharge_c_rate_per_h", "charge_duration_s",
    "discharge_duration_s", "complete",
]


# --------------------------------------------------------------------------- kernels


def interval_charge_kernel(time_s: np.ndarray, current_mA: np.ndarray) -> np.ndarray:
    """Signed charge passed in the interval that ends at each record (trapezoid), mAh.

    Parameters
    ----------
    time_s : ndarray, shape (n,)
        Record times (s), non-decreasing.
    current_mA : ndarray, shape (n,)
        Current (mA, charge positive).

    Returns
    -------
    ndarray, shape (n,)
        ``dq[0] = 0``; ``dq[k] = (I[k-1] + I[k]) / 2 * (t[k] - t[k-1]) / 3600`` (mAh).

    Examples
    --------
    >>> import numpy as np
    >>> interval_charge_kernel(np.array([0.0, 1800.0, 3600.0]), np.array([1.0, 1.0, 1.0])).sum()
    np.float64(1.0)
    """
    t = np.asarray(time_s, dtype=np.float64)
    i = np.asarray(current_mA, dtype=np.float64)
    dq = np.zeros_like(t)
    dq[1:] = 0.5 * (i[1:] + i[:-1]) * np.diff(t) / SECONDS_PER_HOUR
    return dq


def interval_energy_kernel(time_s: np.ndarray, voltage_V: np.ndarray, current_mA: np.ndarray) -> np.ndarray:
    """Signed energy ``V I dt`` in the interval that ends at each record (trapezoid of ``V I``), mWh."""
    return interval_charge_kernel(time_s, np.asarray(voltage_V, dtype=np.float64) * np.asarray(current_mA, dtype=np.float64))


def half_cycle_table(log: LogArrays, *, mass_mg: float | None = None, area_cm2: float | None = None,
                     nominal_capacity_mAh: float | None = None,
                     cutoff_tolerance_V: float = 0.01) -> list[dict[str, Any]]:
    """One row per half cycle that passes current (columns :data:`HALF_CYCLE_COLUMNS`).

    Parameters
    ----------
    log : LogArrays
        The checked log (:func:`ionscope.echem.log.log_arrays`).
    mass_mg : float, optional
        Active mass (mg) for ``capacity_mAh_per_g``.
    area_cm2 : float, optional
        Electrode area (cm2) for ``capacity_mAh_per_cm2``.
    nominal_capacity_mAh : float, optional
        For ``c_rate_per_h`` = mean ``|I|`` / nominal capacity.
    cutoff_tolerance_V : float
        A half cycle that ends with the log is complete when its last voltage is within this
        (V) of the median end voltage of the complete half cycles of its direction.

    Returns
    -------
    list of dict
        ``state`` is "charge" or "discharge"; ``complete`` False for an open last half cycle,
        ``ended_by`` "rest", "reversal", "cut-off" or "end of log" (see the module docstring);
        ``duration_s`` is the time under current (intervals ending at a charge or discharge
        record), ``mean_current_mA = capacity / duration``; ``start_s`` is the time of the record
        before the half cycle's first (the start of its first interval), ``end_s`` of its last.
        Rest-only half cycles (no current) give no row.
    """
    t, v, i = log.time_s, log.voltage_V, log.current_mA
    dq = interval_charge_kernel(t, i)
    de = interval_energy_kernel(t, v, i)
    dt = np.concatenate([[0.0], np.diff(t)])
    active = log.state != REST
    n = t.size
    numbers, first = np.unique(log.half_cycle, return_index=True)
    rows = []
    for h in numbers[np.argsort(first)]:
        members = log.half_cycle == h
        on = members & active
        if not on.any():
            continue
        idx = np.flatnonzero(members)
        on_idx = np.flatnonzero(on)
        net = float(dq[on].sum())
        states = log.state[on]
        if net > 0:
            direction = CHARGE
        elif net < 0:
            direction = DISCHARGE
        else:
            direction = int(states[0])
        sign = 1.0 if direction == CHARGE else -1.0
        capacity = sign * float(dq[members].sum())
        energy = sign * float(de[members].sum())
        duration = float(dt[on].sum())
        mean_current = capacity / (duration / SECONDS_PER_HOUR) if duration > 0 else None
        rows.append({
            "half_cycle": int(h),
            "cycle": int(log.cycle[on_idx[0]]),
            "state": STATE_NAMES[direction],
            "complete": bool(on_idx[-1] < n - 1),
            "ended_by": ("end of log" if on_idx[-1] == n - 1 else "rest" if log.state[on_idx[-1] + 1] == REST
                         else "reversal"),
            "capacity_mAh": capacity,
            "capacity_mAh_per_g": None if mass_mg is None else capacity / (mass_mg * 1e-3),
            "capacity_mAh_per_cm2": None if area_cm2 is None else capacity / area_cm2,
            "energy_mWh": energy,
            "mean_voltage_V": energy / capacity if capacity > 0 else None,
            "mean_current_mA": mean_current,
            "c_rate_per_h": (mean_current / nominal_capacity_mAh
                             if nominal_capacity_mAh is not None and mean_current is not None else None),
            "duration_s": duration,
            "start_s": float(t[idx[0] - 1] if idx[0] > 0 else t[0]),
            "end_s": float(t[idx[-1]]),
            "start_voltage_V": float(v[on_idx[0]]),
            "end_voltage_V": float(v[on_idx[-1]]),
            "records": int(idx.size),
        })
    if rows and not rows[-1]["complete"]:
        last = rows[-1]
        ends = [r["end_voltage_V"] for r in rows[:-1] if r["complete"] and r["state"] == last["state"]]
        if ends and abs(last["end_voltage_V"] - float(np.median(ends))) <= cutoff_tolerance_V:
            last["complete"], last["ended_by"] = True, "cut-off"
    return rows


def _ratio(a: float | None, b: float | None) -> float | None:
    if a is None or b is None or b == 0:
        return None
    return a / b


def cycle_table(half_cycles: list[dict[str, Any]], *, mass_mg: float | None = None,
                area_cm2: float | None = None) -> list[dict[str, Any]]:
    """One row per cycle (columns :data:`CYCLE_COLUMNS`) from the complete half cycles.

    Parameters
    ----------
    half_cycles : list of dict
        Rows of :func:`half_cycle_table`.
    mass_mg, area_cm2 : float, optional
        Active mass (mg) and area (cm2) for the specific and areal capacities.

    Returns
    -------
    list of dict
        ``charge_mAh`` / ``discharge_mAh``: the sum over the cycle's complete charge / discharge
        half cycles (None when it has none); ``coulombic_efficiency`` = discharge / charge;
        ``mean_charge_V`` / ``mean_discharge_V`` = energy / capacity; ``energy_efficiency`` =
        discharge / charge energy; C-rates time-weighted over the half cycles; ``complete`` True
        when the cycle has both a complete charge and a complete discharge. A cycle whose only
        half cycles are open gives no row.
    """
    cycles: dict[int, dict[str, list[dict[str, Any]]]] = {}
    for row in half_cycles:
        entry = cycles.setdefault(row["cycle"], {"charge": [], "discharge": []})
        if row["complete"]:
            entry[row["state"]].append(row)
    out = []
    for c in sorted(cycles):
        entry = cycles[c]
        if not entry["charge"] and not entry["discharge"]:
            continue
        row: dict[str, Any] = {"cycle": c}
        for kind in ("charge", "discharge"):
            parts = entry[kind]
            if parts:
                q = sum(p["capacity_mAh"] for p in parts)
                e = sum(p["energy_mWh"] for p in parts)
                duration = sum(p["duration_s"] for p in parts)
                rates = [(p["c_rate_per_h"], p["duration_s"]) for p in parts]
                rate = (sum(r * d for r, d in rates) / duration
                        if duration > 0 and all(r is not None for r, _ in rates) else None)
            else:
                q = e = duration = rate = None
            row[f"{kind}_mAh"] = q
            row[f"{kind}_mAh_per_g"] = None if q is None or mass_mg is None else q / (mass_mg * 1e-3)
            row[f"{kind}_mAh_per_cm2"] = None if q is None or area_cm2 is None else q / area_cm2
            row[f"mean_{kind}_V"] = _ratio(e, q)
            row[f"{kind}_energy_mWh"] = e
            row[f"{kind}_c_rate_per_h"] = rate
            row[f"{kind}_duration_s"] = duration
        row["coulombic_efficiency"] = _ratio(row["discharge_mAh"], row["charge_mAh"])
        row["energy_efficiency"] = _ratio(row["discharge_energy_mWh"], row["charge_energy_mWh"])
        row["complete"] = bool(entry["charge"] and entry["discharge"])
        out.append({k: row[k] for k in CYCLE_COLUMNS})
    return out

