"""``ionscope echem``: cycler logs - capacities, coulombic efficiency, mean voltages, state of
charge, dQ/dV, IR drops, and the before/after-polishing comparison. The chains are library
functions in :mod:`ionscope.echem` (:func:`~ionscope.echem.workflow.summary_result`,
:func:`~ionscope.echem.compare.compare_logs`); this module only parses options and writes the
results."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from ionscope.cli._app import OutOption, OverwriteOption, app, input_role, options_named, out, start_run, write_csv

echem_app = typer.Typer(
    help="Cycler logs: capacity, coulombic efficiency, mean voltages, dQ/dV, state of charge; before/after comparison.",
    no_args_is_help=True, rich_markup_mode=None,
)
app.add_typer(echem_app, name="echem")

TimezoneOption = Annotated[Optional[str], typer.Option("--timezone", help="Zone of the cycler's clock (IANA name such as Europe/Berlin, or +09:00): the file's local start time becomes UTC.")]
ColumnsOption = Annotated[Optional[str], typer.Option("--columns", help="Column map of a CSV/TXT log: time=NAME,voltage=NAME,current=NAME[,charge=NAME,cycle=NAME]; units from the names or NAME:UNIT (e.g. current=I:A).")]


def _check(**values) -> None:
    """Refuse bad option values before any file is read (the library functions check them too)."""
    from ionscope.validation import Interval, check_parameter

    for name, value in values.items():
        unit = "mg" if name.startswith("mass") else "cm2" if name.startswith("area") else "mAh"
        check_parameter(name, value, [Interval(float, 0, None, closed="neither", unit=unit), None])


def _read(path: Path, timezone: Optional[str], columns: Optional[str], what: str):
    from ionscope import io

    with input_role(None if what == "LOG" else what):
        return io.load_cycler(path, timezone=timezone, columns=columns)


@echem_app.command("summary")
def echem_summary(
    log: Annotated[Path, typer.Argument(metavar="LOG", help="Cycler log: BioLogic .mpr/.mpt, Neware .nda/.ndax, Arbin .res/.xlsx, Maccor text, CSV.")],
    out_dir: OutOption,
    mass: Annotated[Optional[float], typer.Option("--mass", help="Active mass (mg) for mAh/g; default: the file header's.")] = None,
    area: Annotated[Optional[float], typer.Option("--area", help="Electrode area (cm2) for mAh/cm2; default: the file header's.")] = None,
    capacity: Annotated[Optional[float], typer.Option("--capacity", help="Nominal capacity (mAh): the C-rates and the state of charge's reference (default: the first charge's capacity).")] = None,
    timezone: TimezoneOption = None,
    columns: ColumnsOption = None,
    dqdv_bin: Annotated[float, typer.Option("--dqdv-bin", help="dQ/dV voltage bin width (V).")] = 0.005,
    dqdv_smoothing: Annotated[str, typer.Option("--dqdv-smoothing", help="dQ/dV: binning (the bin average alone) or savgol (then a Savitzky-Golay filter along V).")] = "binning",
    overwrite: OverwriteOption = False,
) -> None:
    """Per-cycle and per-half-cycle capacity, coulombic efficiency, energy and mean voltages of a
    cycler log; the log with its state of charge and dQ/dV; IR drops at the current steps.

    Writes DIR/result.zarr (the log: voltage V, current mA, charge mAh, cycle, half_cycle, state,
    soc, dqdv), DIR/cycles.csv, DIR/half_cycles.csv, DIR/ir_drops.csv and DIR/summary.json
    (start_time, half_cycles, cycles, active_mass_mg, area_cm2, totals).
    """
    from ionscope import io
    from ionscope.echem.capacity import CYCLE_COLUMNS, HALF_CYCLE_COLUMNS
    from ionscope.echem.ir import IR_COLUMNS
    from ionscope.echem.workflow import summary_result

    names = dict(mass_mg="--mass", area_cm2="--area", nominal_capacity_mAh="--capacity", bin_V="--dqdv-bin",
                 dqdv_method="--dqdv-smoothing")
    with options_named(**names):
        _check(mass_mg=mass, area_cm2=area, nominal_capacity_mAh=capacity)
    elapsed = start_run(out_dir, overwrite, inputs=(log,))
    tables = ("cycles.csv", "half_cycles.csv", "ir_drops.csv")
    io.check_not_input([out_dir / name for name in tables], (log,))
    for name in tables:
        io.check_output(out_dir / name, overwrite=overwrite)
    data = _read(log, timezone, columns, "LOG")
    with options_named(**names):
        result, cycles, halves, ir_rows, summary = summary_result(
            data, mass_mg=mass, area_cm2=area, nominal_capacity_mAh=capacity, bin_V=dqdv_bin,
            dqdv_method=dqdv_smoothing,
        )
    summary = {"command": "echem summary", "inputs": [str(log)], **summary, "run_time_s": elapsed()}
    write_csv(out_dir / "cycles.csv", cycles, CYCLE_COLUMNS, overwrite=overwrite)
    write_csv(out_dir / "half_cycles.csv", halves, HALF_CYCLE_COLUMNS, overwrite=overwrite)
    write_csv(out_dir / "ir_drops.csv", ir_rows, IR_COLUMNS, overwrite=overwrite)
    io.write_result(out_dir, result, summary, overwrite=overwrite)
    first = cycles[0]

    def mah(value):
        return "-" if value is None else f"{value:.4g}"

    ce = first["coulombic_efficiency"]
    out.print(f"{summary['cycles']} cycle(s), {summary['half_cycles']} complete half cycle(s); cycle {first['cycle']}: "
              f"charge {mah(first['charge_mAh'])} mAh, discharge {mah(first['discharge_mAh'])} mAh, CE "
              f"{'-' if ce is None else f'{ce:.4f}'}; wrote {out_dir}")


@echem_app.command("compare")
def echem_compare(
    log_a: Annotated[Path, typer.Argument(metavar="LOG_A", help="Cycler log before (e.g. before polishing).")],
    log_b: Annotated[Path, typer.Argument(metavar="LOG_B", help="Cycler log after.")],
    out_dir: OutOption,
    tolerance: Annotated[float, typer.Option("--tolerance", help="Largest relative capacity difference |B - A| / A that agrees (fraction).")] = 0.02,
    ce_tolerance: Annotated[float, typer.Option("--ce-tolerance", help="Largest coulombic-efficiency difference that agrees.")] = 0.01,
    voltage_tolerance: Annotated[float, typer.Option("--voltage-tolerance", help="Largest mean-voltage difference that agrees (V).")] = 0.01,
    basis: Annotated[str, typer.Option("--basis", help="Capacities compared: auto (areal when both areas are known, else specific when both masses are, else absolute), absolute, specific or areal.")] = "auto",
    mass_a: Annotated[Optional[float], typer.Option("--mass-a", help="Active mass of log A (mg); default: its header's.")] = None,
    mass_b: Annotated[Optional[float], typer.Option("--mass-b", help="Active mass of log B (mg).")] = None,
    area_a: Annotated[Optional[float], typer.Option("--area-a", help="Electrode area of log A (cm2); default: its header's.")] = None,
    area_b: Annotated[Optional[float], typer.Option("--area-b", help="Electrode area of log B (cm2).")] = None,
    timezone: TimezoneOption = None,
    columns: ColumnsOption = None,
    overwrite: OverwriteOption = False,
) -> None:
    """Two cycler logs cycle by cycle - capacities, coulombic efficiencies and mean voltages side
    by side with their differences - and which cycles agree within the tolerances (the
    before/after-polishing check: a first-cycle loss is expected, later cycles should agree).

    Writes DIR/result.zarr, DIR/compare.csv (per cycle: both logs' capacities, coulombic
    efficiencies and mean voltages, their differences, and whether they agree) and DIR/summary.json
    with the verdict.
    """
    from ionscope import io
    from ionscope.echem.compare import COMPARE_COLUMNS, compare_logs, compare_result

    names = dict(tolerance="--tolerance", ce_tolerance="--ce-tolerance", voltage_tolerance_V="--voltage-tolerance")
    with options_named(**names):
        _check(mass_a=mass_a, mass_b=mass_b, area_a=area_a, area_b=area_b)
    elapsed = start_run(out_dir, overwrite, inputs=(log_a, log_b))
    io.check_not_input([out_dir / "compare.csv"], (log_a, log_b))
    io.check_output(out_dir / "compare.csv", overwrite=overwrite)
    a = _read(log_a, timezone, columns, "LOG_A")
    b = _read(log_b, timezone, columns, "LOG_B")
    with options_named(**names):
        rows, summary = compare_logs(
            a, b, tolerance=tolerance, ce_tolerance=ce_tolerance, voltage_tolerance_V=voltage_tolerance, basis=basis,
            mass_mg=(mass_a, mass_b), area_cm2=(area_a, area_b),
        )
    result = compare_result(rows, summary, inputs=[str(log_a), str(log_b)])
    summary = {"command": "echem compare", "inputs": [str(log_a), str(log_b)], **summary, "run_time_s": elapsed()}
    write_csv(out_dir / "compare.csv", rows, COMPARE_COLUMNS, overwrite=overwrite)
    io.write_result(out_dir, result, summary, overwrite=overwrite)
    out.print(f"{summary['verdict']}; wrote {out_dir}")
