"""Demo section: the cell's electrochemical record - capacity before and after cutting and polishing.

Registered with :func:`~ionscope.pipeline.demo.demo_section` and imported by
:func:`~ionscope.pipeline.demo.run_demo` through :data:`~ionscope.pipeline.demo.SECTION_MODULES`.
It runs the check of :doc:`/guide/echem` as a user would (issue 15): the ``cell_cycling`` twin's two
cycler logs (the composite-cathode cell at 0.5C before it was cut and polished for KPFM, and after)
are written as CSV files in ``cycler_logs/`` of the demo folder, read with
:func:`ionscope.io.load_cycler`, analysed with :func:`ionscope.echem.summarize`,
:func:`ionscope.echem.dqdv` and compared with :func:`ionscope.echem.compare_logs`; every number is
set against the twin's truth.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np

from ionscope.pipeline.demo import DemoContext, demo_section
from ionscope.report.html import Section, TableItem

_TWIN = "cell_cycling"
#: Twin parameters of the full and the quick run (the quick one: 2 cycles logged every 30 s).
PARAMETERS: dict[str, dict[str, Any]] = {"full": {}, "quick": {"cycles": 2, "record_interval_s": 30.0}}
LOG_FOLDER = "cycler_logs"
LABELS = {"before": "before polishing", "after": "after polishing"}


def _half_cycle_curves(log, cycle_rows) -> list[tuple[int, str, np.ndarray, np.ndarray]]:
    """(cycle, kind, capacity from the half cycle's start (mAh), voltage) of every half cycle."""
    charge = np.asarray(log["charge"].values, dtype=np.float64)
    volts = np.asarray(log["voltage"].values, dtype=np.float64)
    half = np.asarray(log["half_cycle"].values)
    state = np.asarray(log["state"].values)
    cycle = np.asarray(log["cycle"].values)
    out = []
    for h in np.unique(half):
        moving = (half == h) & (state != 0)
        if not moving.any():
            continue
        k = np.flatnonzero(moving)
        start = charge[max(k[0] - 1, 0)]
        kind = "charge" if state[k[0]] == 1 else "discharge"
        out.append((int(cycle[k[0]]), kind, np.abs(charge[k] - start), volts[k]))
    return out


@demo_section(order=68, title="The cell's record: capacity before and after polishing")
def echem_section(ctx: DemoContext) -> Section | None:
    """Voltage against capacity per cycle, capacity and efficiency per cycle, dQ/dV and the
    before/after comparison of the twin's two cycler logs."""
    if not ctx.makes(_TWIN):
        return None
    from ionscope import io
    from ionscope.echem import compare_logs, dqdv, summarize
    from ionscope.report.echem_figures import cycles_figure, dqdv_figure, voltage_capacity_figure
    from ionscope.simulate.cell_cycling import write_cycling_files

    ds = ctx.dataset(_TWIN, save=False, **PARAMETERS["quick" if ctx.quick else "full"])
    folder = ctx.path(LOG_FOLDER)
    folder.mkdir(exist_ok=True)
    written = write_cycling_files(ds, folder, overwrite=True)
    ctx.files.extend(f"{LOG_FOLDER}/{p.name}" for p in written)
    logs = {name: io.load_cycler(folder / f"{name}.csv") for name in LABELS}
    results = {name: summarize(log) for name, log in logs.items()}
    rows, verdict = compare_logs(logs["before"], logs["after"])

    # --- against the twin's truth
    errors = {}
    for k, name in enumerate(LABELS):
        cyc = results[name][0]
        for key, truth_name in (("charge_mAh", "charge_capacity_true"), ("discharge_mAh", "discharge_capacity_true"),
                                ("coulombic_efficiency", "coulombic_efficiency_true")):
            got = np.array([r[key] for r in cyc], dtype=np.float64)
            want = ds[truth_name].values[k][: got.size]
            errors[f"{name} {key}"] = float(np.max(np.abs(got / want - 1)))
    curves = {}
    smoothing = ""
    charge_curve = (np.zeros(1), np.zeros(1))
    for name, log in logs.items():
        q = dqdv(log)
        smoothing = q.attrs.get("smoothing", "")
        second = int(min(2, int(np.max(q["dqdv_cycle"].values))))
        for j in range(q.sizes["dqdv_curve"]):
            if int(q["dqdv_cycle"].values[j]) != second:
                continue
            kind = str(q["dqdv_state"].values[j])
            v = q["dqdv_voltage"].values
            d = np.asarray(q.values[j], dtype=np.float64)
            curves[f"{LABELS[name]}, cycle {second} {kind}"] = (v, d)
            if name == "after" and kind == "charge":
                charge_curve = (v, d)
    params = json.loads(ds.attrs["parameters"])
    ir_shift = float(np.nanmax(np.abs(ds["cycler_current"].values))) * 1e-3 * float(params["r_internal_ohm"])
    expected = [p + ir_shift for p in ds.attrs["dqdv_peaks_V"]]
    v, d = charge_curve  # the largest dQ/dV within 50 mV of each expected charge peak
    peaks_found = [float(v[np.nanargmax(np.where(np.abs(v - e) <= 0.05, d, -np.inf))]) for e in expected]
    store: dict[str, Any] = {
        "files": f"{LOG_FOLDER}/ (before.csv, after.csv, truth.zarr)",
        "cycles": {name: results[name][0] for name in LABELS},
        "summary": {name: {k: results[name][2].get(k) for k in ("start_time", "half_cycles", "cycles",
                                                                 "active_mass_mg", "area_cm2")} for name in LABELS},
        "relative_error_vs_truth": errors, "compare": {"rows": rows, "verdict": verdict["verdict"],
                                                       "later_cycles_agree": verdict.get("later_cycles_agree")},
        "dqdv_smoothing": smoothing, "dqdv_charge_peaks_V": peaks_found,
        "dqdv_charge_peaks_expected_V": expected, "ocv_plateaus_V": list(ds.attrs["dqdv_peaks_V"]),
        "ir_shift_V": ir_shift,
    }
    ctx.summary["echem"] = store

    # --- figures
    items = [ctx.figure(
        voltage_capacity_figure({LABELS[n]: _half_cycle_curves(logs[n], results[n][0]) for n in LABELS}),
        "echem_voltage_capacity",
        "Cell voltage against the capacity of each half cycle (solid: charge, dashed: discharge; later cycles "
        "lighter) of the composite-cathode cell cycled at 0.5C before it was cut and polished for the KPFM "
        "cross-section, and after, read from the two cycler logs in cycler_logs/. The fresh cell's first charge "
        "runs longer: an irreversible loss; the curves after polishing lie on the later ones before it.")]
    table_cycles = {LABELS[n]: {k: [r[k] for r in results[n][0]] for k in
                                ("cycle", "charge_mAh", "discharge_mAh", "coulombic_efficiency")} for n in LABELS}
    truth = {LABELS[n]: {"charge_mAh": ds["charge_capacity_true"].values[k][: len(results[n][0])],
                         "discharge_mAh": ds["discharge_capacity_true"].values[k][: len(results[n][0])],
                         "coulombic_efficiency": ds["coulombic_efficiency_true"].values[k][: len(results[n][0])]}
             for k, n in enumerate(LABELS)}
    items.append(ctx.figure(
        cycles_figure(table_cycles, truth=truth), "echem_cycles",
        "Charge and discharge capacity (mAh, the trapezoidal integral of the current over each half cycle) and "
        "coulombic efficiency (discharge / charge of the same cycle) per cycle, before and after polishing; "
        "diamonds: the twin's truth. Only the fresh cell's first cycle differs."))
    items.append(ctx.figure(
        dqdv_figure(curves, peaks_V=expected + [p - ir_shift for p in ds.attrs["dqdv_peaks_V"]],
                    smoothing="dQ/dV: " + smoothing.split(";")[0]),
        "echem_dqdv",
        f"Differential capacity of the second cycle before and after polishing (positive on charge, negative on "
        f"discharge; {smoothing}). Dotted: the twin's two open-circuit plateaus shifted by I R = "
        f"{1e3 * ir_shift:.0f} mV (up on charge, down on discharge), where the peaks belong."))
    header = ["cycle", "capacity unit", "charge A → B", "discharge A → B", "CE A → B", "mean V (ch / dis) A → B",
              "agree"]
    table_rows = []
    for r in rows:
        table_rows.append([
            r["cycle"], r["capacity_unit"], f"{r['charge_a']:.4g} → {r['charge_b']:.4g} ({100 * r['charge_rel_diff']:+.2f} %)",
            f"{r['discharge_a']:.4g} → {r['discharge_b']:.4g} ({100 * r['discharge_rel_diff']:+.2f} %)",
            f"{r['coulombic_efficiency_a']:.4f} → {r['coulombic_efficiency_b']:.4f}",
            f"{r['mean_charge_V_a']:.3f} / {r['mean_discharge_V_a']:.3f} → {r['mean_charge_V_b']:.3f} / "
            f"{r['mean_discharge_V_b']:.3f}",
            "yes" if r["agree"] else f"no: {r['exceeded']}"])
    items.append(TableItem(table_rows, header, caption="echem compare before.csv after.csv (A = before, B = after "
                           "polishing): " + verdict["verdict"]))
    worst = max(errors.values())
    items.append(f"Against the twin's truth, every capacity and coulombic efficiency of both logs agrees within "
                 f"{100 * worst:.3g} % (target 0.1 %, the instrument's own export on real files: "
                 "benchmarks/RESULTS.md). dQ/dV charge peaks after polishing at "
                 + ", ".join(f"{v:.3f}" for v in peaks_found) + " V against "
                 + ", ".join(f"{v:.3f}" for v in expected) + " V (the plateaus + I R).")
    return Section(
        "The cell's record: capacity before and after polishing",
        items,
        intro=("The cross-section study must show that cutting and polishing the cell for KPFM left it unchanged: "
               "its capacity and voltage at ~0.5C before and after the preparation agree (user guide, echem page). The "
               "cell_cycling twin writes both cycler logs as the cycler leaves them; ionscope reads them "
               "(`ionscope echem summary LOG`), measures capacities, efficiencies, energies, mean voltages and dQ/dV "
               "per cycle, and compares the two (`ionscope echem compare BEFORE AFTER`)."),
    )


__all__ = ["echem_section", "PARAMETERS"]
