"""Two cycler logs side by side, cycle by cycle: the before/after-polishing check (user guide:
:doc:`/guide/echem`).

Cutting and polishing a cell for a cross-section must not change it: its capacity and voltages at
~0.5C before and after agree. The comparison is areal (mAh/cm2) when both logs have an area -
the cross-section changes the electrode, so absolute capacities need not agree - else specific
(mAh/g) when both have an active mass, else absolute (mAh). Per common cycle: charge and
discharge capacity, coulombic efficiency and mean charge and discharge voltage of each log, their
differences (B - A; capacities also relative to A) and whether they agree within the tolerances.
An irreversible first-cycle loss is expected (SEI, lithium trapped at the interfaces), so the
verdict names the cycles that agree and says whether every cycle after the first does.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import xarray as xr

from ionscope.data import jsonable, with_provenance
from ionscope.echem.log import log_arrays
from ionscope.echem.workflow import _summarize
from ionscope.errors import ConfigError, InputError, IonscopeWarning
from ionscope.validation import Interval, Options, check_parameter, validate_params

__all__ = ["BASES", "COMPARE_COLUMNS", "compare_cycles", "compare_logs", "compare_result"]

STEP = "ionscope.echem.compare"

#: Capacity bases: the summary column suffix and the unit.
BASES = {"absolute": ("mAh", "mAh"), "specific": ("mAh_per_g", "mAh/g"), "areal": ("mAh_per_cm2", "mAh/cm2")}
#: The compared quantities: name, cycle-table key (``{}`` = the basis suffix), kind.
_QUANTITIES = (("charge", "charge_{}", "capacity"), ("discharge", "discharge_{}", "capacity"),
               ("coulombic_efficiency", "coulombic_efficiency", "ce"),
               ("mean_charge_V", "mean_charge_V", "voltage"), ("mean_discharge_V", "mean_discharge_V", "voltage"))
#: Columns of ``compare.csv``.
COMPARE_COLUMNS = ["cycle", "capacity_unit"] + [
    f"{name}_{part}" for name, _, kind in _QUANTITIES
    for part in (("a", "b", "diff", "rel_diff") if kind == "capacity" else ("a", "b", "diff"))
] + ["agree", "exceeded"]


def _runs(numbers: list[int]) -> str:
    """[1, 2, 3, 5] -> "1-3, 5"."""
    out, start = [], None
    for k, n in enumerate(numbers):
        if start is None:
            start = n
        if k + 1 == len(numbers) or numbers[k + 1] != n + 1:
            out.append(str(start) if start == n else f"{start}-{n}")
            start = None
    return ", ".join(out)


def compare_cycles(rows_a: list[dict[str, Any]], rows_b: list[dict[str, Any]], *, basis: str = "absolute",
                   tolerance: float = 0.02, ce_tolerance: float = 0.01,
                   voltage_tolerance_V: float = 0.01) -> list[dict[str, Any]]:
    """Cycle rows of two logs (:func:`~ionscope.echem.workflow.summarize`) side by side.

    Parameters
    ----------
    rows_a, rows_b : list of dict
        Cycle rows of log A (before) and log B (after).
    basis : {"absolute", "specific", "areal"}
        Which capacities to compare (mAh, mAh/g, mAh/cm2).
    tolerance : float
        Largest relative capacity difference ``|B - A| / A`` that agrees.
    ce_tolerance : float
        Largest absolute coulombic-efficiency difference that agrees.
    voltage_tolerance_V : float
        Largest absolute mean-voltage difference (V) that agrees.

    Returns
    -------
    list of dict
        One row per cycle present in both (columns :data:`COMPARE_COLUMNS`); ``agree`` True when
        every quantity both logs have is within its tolerance (False when none is shared);
        ``exceeded`` names those outside it ("" when none).
    """
    suffix, unit = BASES[basis]
    by_b = {r["cycle"]: r for r in rows_b}
    out = []
    for ra in rows_a:
        rb = by_b.get(ra["cycle"])
        if rb is None:
            continue
        row: dict[str, Any] = {"cycle": ra["cycle"], "capacity_unit": unit}
        exceeded, compared = [], 0
        for name, key, kind in _QUANTITIES:
            key = key.format(suffix)
            a, b = ra.get(key), rb.get(key)
            diff = None if a is None or b is None else b - a
            row[f"{name}_a"], row[f"{name}_b"], row[f"{name}_diff"] = a, b, diff
            if kind == "capacity":
                rel = None if diff is None or not a else diff / a
                row[f"{name}_rel_diff"] = rel
                ok = None if rel is None else abs(rel) <= tolerance
                label = None if rel is None else f"{name} {100 * rel:+.2f} %"
            else:
                limit = ce_tolerance if kind == "ce" else voltage_tolerance_V
                ok = None if diff is None else abs(diff) <= limit
                label = None if diff is None else (f"{name} {diff:+.4f}" if kind == "ce" else
                                                   f"{name} {1e3 * diff:+.1f} mV")
            if ok is not None:
                compared += 1
                if not ok:
                    exceeded.append(label)
        row["agree"] = compared > 0 and not exceeded
        row["exceeded"] = "; ".join(exceeded) if compared else "nothing to compare"
        out.append(row)
    return out


def _choose_basis(basis: str, a: dict[str, Any], b: dict[str, Any]) -> str:
    have = {"specific": (a["active_mass_mg"] is not None, b["active_mass_mg"] is not None, "mass", "--mass"),
            "areal": (a["area_cm2"] is not None, b["area_cm2"] is not None, "area", "--area")}
    if basis == "auto":
        return "areal" if all(have["areal"][:2]) else "specific" if all(have["specific"][:2]) else "absolute"
    if basis != "absolute":
        in_a, in_b, what, option = have[basis]
        missing = [name for name, ok in (("A", in_a), ("B", in_b)) if not ok]
        if missing:
            raise ConfigError(f"a {basis} comparison needs the {what} of both logs; log {' and '.join(missing)} has "
                              f"none in its header: give {', '.join(f'{option}-{m.lower()}' for m in missing)}")
    return basis


def _pair(value: Any, name: str, unit: str) -> tuple[Any, Any]:
    if value is None:
        return None, None
    if not isinstance(value, (tuple, list)) or len(value) != 2:
        raise ConfigError(f"compare_logs: parameter {name!r} must be a pair (A, B), got {value!r}")
    for v in value:
        check_parameter(name, v, [Interval(float, 0, None, closed="neither", unit=unit), None], where="compare_logs")
    return value[0], value[1]


@validate_params({
    "tolerance": [Interval(float, 0, 1, closed="right")],
    "ce_tolerance": [Interval(float, 0, 1, closed="right")],
    "voltage_tolerance_V": [Interval(float, 0, 10, closed="right", unit="V")],
    "basis": [Options({"auto", *BASES})],
})
def compare_logs(a: xr.Dataset, b: xr.Dataset, *, tolerance: float = 0.02, ce_tolerance: float = 0.01,
                 voltage_tolerance_V: float = 0.01, basis: str = "auto", mass_mg: Any = None,
                 area_cm2: Any = None) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Compare two cycler logs cycle by cycle (before / after polishing) with a tolerance verdict.

    Parameters
    ----------
    a, b : xarray.Dataset
        Cycler logs (:func:`ionscope.io.load_cycler`): A before, B after.
    tolerance : float
        Relative capacity tolerance (fraction of A's capacity); default 2 %.
    ce_tolerance : float
        Absolute coulombic-efficiency tolerance; default 0.01.
    voltage_tolerance_V : float
        Absolute mean-voltage tolerance (V); default 10 mV.
    basis : {"auto", "absolute", "specific", "areal"}
        Capacity basis; "auto": areal when both logs have an area, else specific when both have a
        mass, else absolute.
    mass_mg, area_cm2 : pair of float or None, optional
        ``(A, B)`` active masses (mg) / areas (cm2) overriding the logs' headers.

    Returns
    -------
    rows : list of dict
        :func:`compare_cycles` rows, one per common cycle.
    summary : dict
        ``basis``, ``capacity_unit``, the tolerances, ``common_cycles``, ``only_in_a``,
        ``only_in_b``, ``agreeing_cycles``, ``differing_cycles``, ``later_cycles_agree`` (every
        common cycle after the first agrees), ``first_cycle_loss_a`` / ``_b`` (charge -
        discharge of cycle 1 in the basis unit), ``verdict`` (a sentence), and each log's
        summary under ``a`` and ``b``.

    Raises
    ------
    InputError
        A log is unusable (:func:`~ionscope.echem.workflow.summarize`) or the logs have no cycle
        in common.
    """
    mass_a, mass_b = _pair(mass_mg, "mass_mg", "mg")
    area_a, area_b = _pair(area_cm2, "area_cm2", "cm2")
    rows_a, _, sum_a = _summarize(log_arrays(a, "log A"), mass_a, area_a, None, "log A")
    rows_b, _, sum_b = _summarize(log_arrays(b, "log B"), mass_b, area_b, None, "log B")
    chosen = _choose_basis(basis, sum_a, sum_b)
    suffix, unit = BASES[chosen]
    rows = compare_cycles(rows_a, rows_b, basis=chosen, tolerance=tolerance, ce_tolerance=ce_tolerance,
                          voltage_tolerance_V=voltage_tolerance_V)
    cycles_a, cycles_b = [r["cycle"] for r in rows_a], [r["cycle"] for r in rows_b]
    if not rows:
        raise InputError(f"the logs have no cycle in common (log A: cycles {_runs(cycles_a)}; log B: cycles "
                         f"{_runs(cycles_b)}); compare logs of the same cycling protocol")
    agreeing = [r["cycle"] for r in rows if r["agree"]]
    differing = [r["cycle"] for r in rows if not r["agree"]]
    first = rows[0]["cycle"]
    later = [r for r in rows if r["cycle"] != first]
    later_agree = bool(later) and all(r["agree"] for r in later)
    tol_text = (f"capacity {100 * tolerance:g} %, coulombic efficiency {ce_tolerance:g}, mean voltage "
                f"{1e3 * voltage_tolerance_V:g} mV")
    parts = []
    if agreeing:
        parts.append(f"cycle{'s' if len(agreeing) > 1 else ''} {_runs(agreeing)} agree{'s' if len(agreeing) == 1 else ''}"
                     f" within tolerance ({tol_text}, {unit})")
    for r in rows:
        if not r["agree"]:
            expected = " (a first-cycle irreversible loss is expected)" if r["cycle"] == first else ""
            parts.append(f"cycle {r['cycle']} differs: {r['exceeded']}{expected}")
    if not later:
        parts.append("only one common cycle: the check needs the cycles after the first")
    elif later_agree:
        parts.append("every cycle after the first agrees: the cell is unchanged within tolerance")
    else:
        parts.append("cycles after the first differ: the cell changed beyond the tolerance")

    def loss(rows_x):
        r = next((x for x in rows_x if x["cycle"] == first), None)
        if r is None or r.get(f"charge_{suffix}") is None or r.get(f"discharge_{suffix}") is None:
            return None
        return r[f"charge_{suffix}"] - r[f"discharge_{suffix}"]

    notes = [f"log A: {n}" for n in sum_a["notes"]] + [f"log B: {n}" for n in sum_b["notes"]]
    for note in notes:
        warnings.warn(note, IonscopeWarning, stacklevel=2)
    summary = {
        "basis": chosen, "capacity_unit": unit, "tolerance": tolerance, "ce_tolerance": ce_tolerance,
        "voltage_tolerance_V": voltage_tolerance_V, "common_cycles": [r["cycle"] for r in rows],
        "only_in_a": sorted(set(cycles_a) - set(cycles_b)), "only_in_b": sorted(set(cycles_b) - set(cycles_a)),
        "agreeing_cycles": agreeing, "differing_cycles": differing, "later_cycles_agree": later_agree,
        "first_cycle_loss_a": loss(rows_a), "first_cycle_loss_b": loss(rows_b),
        "verdict": "; ".join(parts), "notes": notes, "a": sum_a, "b": sum_b,
    }
    return rows, summary


def compare_result(rows: list[dict[str, Any]], summary: dict[str, Any], inputs=()) -> xr.Dataset:
    """The comparison as a Dataset: per log (``log`` = A, B) and cycle the capacities, coulombic
    efficiency and mean voltages, per cycle the differences and ``agree``; primary
    ``discharge_capacity``."""
    unit = summary["capacity_unit"]
    cycles = np.array([r["cycle"] for r in rows], dtype=np.int64)

    def side(name):
        return np.array([[np.nan if r[f"{name}_{s}"] is None else r[f"{name}_{s}"] for r in rows] for s in "ab"],
                        dtype=np.float64)

    def diff(name):
        return np.array([np.nan if r[f"{name}_diff"] is None else r[f"{name}_diff"] for r in rows], dtype=np.float64)

    variables = {}
    for name, var, units in (("charge", "charge_capacity", unit), ("discharge", "discharge_capacity", unit),
                             ("coulombic_efficiency", "coulombic_efficiency", "1"),
                             ("mean_charge_V", "mean_charge_voltage", "V"),
                             ("mean_discharge_V", "mean_discharge_voltage", "V")):
        variables[var] = (("log", "cycle"), side(name), {"units": units})
        variables[f"{var}_diff"] = ("cycle", diff(name), {"units": units, "long_name": f"{var} B - A"})
    variables["agree"] = ("cycle", np.array([bool(r["agree"]) for r in rows]),
                          {"units": "1", "long_name": "all quantities within tolerance"})
    ds = xr.Dataset(variables, coords={"log": ("log", np.array(["a", "b"])),
                                       "cycle": ("cycle", cycles, {"units": "1"})})
    ds.attrs = {"primary": "discharge_capacity", "basis": summary["basis"], "verdict": summary["verdict"]}
    params = {k: summary[k] for k in ("basis", "tolerance", "ce_tolerance", "voltage_tolerance_V")}
    return with_provenance(ds, STEP, jsonable(params), inputs=list(inputs), history=[], variables=True)

