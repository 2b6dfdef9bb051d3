"""The electrochemistry chains as library functions: :func:`summarize` (the numbers of a cycler
log: half cycles, cycles, totals) and :func:`summary_result` (what ``ionscope echem summary``
writes: the log with its state of charge and dQ/dV, and the tables).

The CLI (``ionscope echem summary``, :doc:`/cli`) and the demo call these and add nothing but
argument parsing and printing.
"""

from __future__ import annotations

import math
import warnings
from typing import Any

import numpy as np
import xarray as xr

from ionscope.data import jsonable, provenance, with_provenance
from ionscope.echem.capacity import cycle_table, half_cycle_table, interval_charge_kernel
from ionscope.echem.dqdv import dqdv
from ionscope.echem.ir import ir_drops
from ionscope.echem.log import STATE_NAMES, LogArrays, log_arrays
from ionscope.echem.soc import soc_along
from ionscope.errors import InputError, IonscopeWarning
from ionscope.validation import Interval, Options, validate_params

__all__ = ["electrode_value", "summarize", "summary_result"]

STEP = "ionscope.echem.summary"

_POSITIVE = {"mass_mg": Interval(float, 0, None, closed="neither", unit="mg"),
             "area_cm2": Interval(float, 0, None, closed="neither", unit="cm2"),
             "nominal_capacity_mAh": Interval(float, 0, None, closed="neither", unit="mAh")}


def electrode_value(option: float | None, attrs: dict[str, Any], key: str, what: str,
                    notes: list[str]) -> tuple[float | None, str | None]:
    """The active mass or area to use and where it came from: the option (``"option"``), else the
    log's header attribute ``key`` (``"header"``) when it is a positive number, else None. A header
    value that is zero, negative or not a number (EC-Lab writes 0 when none was entered) is
    ignored with a note appended to ``notes``."""
    if option is not None:
        return float(option), "option"
    raw = attrs.get(key)
    if raw is None:
        return None, None
    try:
        value = float(raw)
    except (TypeError, ValueError):
        value = math.nan
    if math.isfinite(value) and value > 0:
        return value, "header"
    notes.append(f"the log's header gives {what} {raw!r}, not a positive number: ignored")
    return None, None


def _open_notes(half_rows: list[dict[str, Any]]) -> list[str]:
    return [f"half cycle {r['half_cycle']} ({r['state']}, cycle {r['cycle']}) runs to the end of the log (no rest "
            "or reversal recorded after it, and it does not end at the voltage limit of the other "
            f"{r['state']}s): listed as open, left out of its cycle's values"
            for r in half_rows if not r["complete"]]


def _summarize(arrays: LogArrays, mass_mg, area_cm2, nominal_capacity_mAh, what):
    notes: list[str] = []
    mass, mass_source = electrode_value(mass_mg, arrays.attrs, "active_mass_mg", "the active mass (mg)", notes)
    area, area_source = electrode_value(area_cm2, arrays.attrs, "area_cm2", "the electrode area (cm2)", notes)
    half_rows = half_cycle_table(arrays, mass_mg=mass, area_cm2=area, nominal_capacity_mAh=nominal_capacity_mAh)
    complete = [r for r in half_rows if r["complete"]]
    if not complete:
        states = sorted({STATE_NAMES[int(s)] for s in np.unique(arrays.state)})
        if half_rows:
            why = (f"its only current-carrying half cycle ({half_rows[0]['state']}) runs to the end of the log; "
                   "a capacity needs a half cycle whose end is recorded (a rest or a reversal after it)")
        else:
            why = "no record carries current (all rest); check the current column and its unit"
        raise InputError(f"{what} has no complete half cycle ({arrays.time_s.size} records over "
                         f"{arrays.time_s[-1] - arrays.time_s[0]:g} s, states: {', '.join(states)}): {why}")
    notes += _open_notes(half_rows)
    cycle_rows = cycle_table(half_rows, mass_mg=mass, area_cm2=area)
    charge = [r for r in half_rows if r["state"] == "charge"]
    discharge = [r for r in half_rows if r["state"] == "discharge"]
    first = cycle_rows[0] if cycle_rows and cycle_rows[0]["complete"] else None
    later = [r["coulombic_efficiency"] for r in cycle_rows[1:] if r["coulombic_efficiency"] is not None]
    summary = {
        "start_time": arrays.attrs.get("start_time"),
        "source_file": arrays.attrs.get("source_file"),
        "source_format": arrays.attrs.get("source_format"),
        "records": int(arrays.time_s.size),
        "duration_s": float(arrays.time_s[-1] - arrays.time_s[0]),
        "half_cycles": len(complete),
        "open_half_cycles": [r["half_cycle"] for r in half_rows if not r["complete"]],
        "ended_at_cutoff": [r["half_cycle"] for r in half_rows if r["ended_by"] == "cut-off"],
        "cycles": len(cycle_rows),
        "complete_cycles": sum(1 for r in cycle_rows if r["complete"]),
        "active_mass_mg": mass,
        "active_mass_source": mass_source,
        "area_cm2": area,
        "area_source": area_source,
        "nominal_capacity_mAh": nominal_capacity_mAh,
        "total_charge_mAh": float(sum(r["capacity_mAh"] for r in charge)),
        "total_discharge_mAh": float(sum(r["capacity_mAh"] for r in discharge)),
        "net_charge_mAh": float(interval_charge_kernel(arrays.time_s, arrays.current_mA).sum()),
        "total_charge_energy_mWh": float(sum(r["energy_mWh"] for r in charge)),
        "total_discharge_energy_mWh": float(sum(r["energy_mWh"] for r in discharge)),
        "first_cycle_loss_mAh": None if first is None else first["charge_mAh"] - first["discharge_mAh"],
        "first_cycle_coulombic_efficiency": None if first is None else first["coulombic_efficiency"],
        "mean_coulombic_efficiency_after_first": float(np.mean(later)) if later else None,
        "conventions": ("charge = positive current; Q = integral |I| dt per half cycle (trapezoid, intervals belong to "
                        "the half cycle of the record that ends them); CE = discharge / charge of one cycle; mean "
                        "voltage = energy / capacity; C-rate = mean |I| / nominal capacity (1/h)"),
        "derived_columns": list(arrays.derived),
        "notes": notes,
    }
    return cycle_rows, half_rows, summary


@validate_params({k: [v, None] for k, v in _POSITIVE.items()})
def summarize(log: xr.Dataset, *, mass_mg: float | None = None, area_cm2: float | None = None,
              nominal_capacity_mAh: float | None = None) -> tuple[list[dict], list[dict], dict[str, Any]]:
    """Per-cycle and per-half-cycle capacities, efficiencies, energies and voltages of a cycler log.

    Parameters
    ----------
    log : xarray.Dataset
        A cycler log (:func:`ionscope.io.load_cycler`).
    mass_mg : float, optional
        Active mass (mg); default: the log's ``active_mass_mg`` header value when positive.
    area_cm2 : float, optional
        Electrode area (cm2); default: the log's ``area_cm2`` header value when positive.
    nominal_capacity_mAh : float, optional
        Nominal capacity (mAh) for the C-rates.

    Returns
    -------
    cycle_rows : list of dict
        :data:`~ionscope.echem.capacity.CYCLE_COLUMNS` per cycle (the eight of ``cycles.csv``
        first: ``cycle, charge_mAh, discharge_mAh, coulombic_efficiency, charge_mAh_per_g,
        discharge_mAh_per_g, mean_charge_V, mean_discharge_V``).
    half_cycle_rows : list of dict
        :data:`~ionscope.echem.capacity.HALF_CYCLE_COLUMNS` per half cycle.
    summary : dict
        ``start_time`` (ISO 8601 or None), ``records``, ``duration_s``, ``half_cycles``
        (complete ones), ``open_half_cycles``, ``ended_at_cutoff`` (a last half cycle that ends
        with the log at its direction's voltage limit, counted as complete), ``cycles``, ``complete_cycles``,
        ``active_mass_mg`` / ``area_cm2`` with their ``*_source`` ("option", "header" or None),
        totals (``total_charge_mAh``, ``total_discharge_mAh``, ``net_charge_mAh``, energies),
        ``first_cycle_loss_mAh``, ``first_cycle_coulombic_efficiency``,
        ``mean_coulombic_efficiency_after_first``, ``conventions``, ``derived_columns`` (of
        ``state``, ``half_cycle``, ``cycle``: those the log lacked, derived from the sign of the
        current) and ``notes`` (each also issued as an :class:`~ionscope.errors.IonscopeWarning`).

    Raises
    ------
    InputError
        No current column, no complete half cycle, NaN in the record (see
        :func:`~ionscope.echem.log.log_arrays`).

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> t = np.array([0.0, 3600.0, 3600.0, 7200.0, 7200.0, 7300.0])   # 1 h charge, 1 h discharge, rest
    >>> i = np.array([1.0, 1.0, -0.9, -0.9, 0.0, 0.0])                 # mA
    >>> v = np.array([3.0, 4.0, 3.9, 3.1, 3.3, 3.3])
    >>> log = xr.Dataset({"voltage": ("time", v, {"units": "V"}), "current": ("time", i, {"units": "mA"})},
    ...                  coords={"time": ("time", t, {"units": "s"})})
    >>> cycles, halves, info = summarize(log, mass_mg=2.0)
    >>> round(cycles[0]["charge_mAh"], 6), round(cycles[0]["coulombic_efficiency"], 6), cycles[0]["charge_mAh_per_g"]
    (1.0, 0.9, 500.0)
    """
    arrays = log_arrays(log)
    cycle_rows, half_rows, summary = _summarize(arrays, mass_mg, area_cm2, nominal_capacity_mAh, "the log")
    for note in summary["notes"]:
        warnings.warn(note, IonscopeWarning, stacklevel=2)
    return cycle_rows, half_rows, summary


@validate_params({**{k: [v, None] for k, v in _POSITIVE.items()},
                  "bin_V": [Interval(float, 0, 1, closed="right", unit="V")],
                  "dqdv_method": [Options({"binning", "savgol"})]})
def summary_result(log: xr.Dataset, *, mass_mg: float | None = None, area_cm2: float | None = None,
                   nominal_capacity_mAh: float | None = None, bin_V: float = 0.005,
                   dqdv_method: str = "binning") -> tuple[xr.Dataset, list[dict], list[dict], list[dict], dict]:
    """The chain of ``ionscope echem summary``: :func:`summarize`, the state of charge, dQ/dV and
    the IR drops of a cycler log.

    Parameters
    ----------
    log : xarray.Dataset
        A cycler log (:func:`ionscope.io.load_cycler`).
    mass_mg, area_cm2, nominal_capacity_mAh : float, optional
        As in :func:`summarize`; the nominal capacity is also the SOC reference.
    bin_V : float
        dQ/dV voltage bin width (V).
    dqdv_method : {"binning", "savgol"}
        dQ/dV smoothing (:func:`~ionscope.echem.dqdv.dqdv`).

    Returns
    -------
    result : xarray.Dataset
        The log (record dim ``time`` in s; ``voltage`` V, ``current`` mA, ``charge`` mAh net
        cumulative, ``cycle``, ``half_cycle``, ``state`` 0 rest / 1 charge / 2 discharge, and
        the log's other columns) with ``soc`` (time) and ``dqdv`` (dqdv_curve, dqdv_voltage);
        attrs ``primary`` = "voltage", the log's attrs and a provenance step.
    cycle_rows, half_cycle_rows : list of dict
        As :func:`summarize`.
    ir_rows : list of dict
        :func:`~ionscope.echem.ir.ir_drops` rows.
    summary : dict
        :func:`summarize`'s summary with ``soc_reference``, ``dqdv_smoothing``, ``ir``.
    """
    arrays = log_arrays(log)
    cycle_rows, half_rows, summary = _summarize(arrays, mass_mg, area_cm2, nominal_capacity_mAh, "the log")
    soc, capacity, soc_text = soc_along(arrays, half_rows, nominal_capacity_mAh)
    curves = dqdv(log, bin_V=bin_V, method=dqdv_method)
    ir_rows, ir_info = ir_drops(log)
    result = log.copy()
    if "charge" not in result.variables:
        result["charge"] = ("time", np.cumsum(interval_charge_kernel(arrays.time_s, arrays.current_mA)),
                            {"units": "mAh", "long_name": "net charge passed since the first record (trapezoid)"})
    for name in arrays.derived:
        values = {"state": arrays.state, "half_cycle": arrays.half_cycle, "cycle": arrays.cycle}[name]
        attrs = {"units": "1", "long_name": f"{name.replace('_', ' ')} (derived from the sign of the current)"}
        if name == "state":
            attrs.update(flag_values=[0, 1, 2], flag_meanings="rest charge discharge")
            values = values.astype(np.int8)
        else:
            values = values.astype(np.int32)
        result[name] = ("time", values, attrs)
    result["soc"] = ("time", soc, {"units": "1", "long_name": "state of charge", "reference_capacity_mAh": capacity,
                                   "soc_reference": soc_text})
    result["dqdv"] = curves
    params = {"mass_mg": mass_mg, "area_cm2": area_cm2, "nominal_capacity_mAh": nominal_capacity_mAh,
              "bin_V": bin_V, "dqdv_method": dqdv_method}
    result.attrs = {**{k: v for k, v in log.attrs.items() if k != "provenance"}, "primary": "voltage"}
    result = with_provenance(result, STEP, jsonable(params), inputs=[], history=provenance(log), variables=True)
    summary = {**summary, "soc_reference": soc_text, "reference_capacity_mAh": capacity,
               "dqdv_smoothing": curves.attrs["smoothing"], "ir": ir_info}
    for note in summary["notes"]:
        warnings.warn(note, IonscopeWarning, stacklevel=2)
    return result, cycle_rows, half_rows, ir_rows, summary
