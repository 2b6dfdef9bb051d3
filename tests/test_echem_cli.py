"""``ionscope echem summary`` and ``echem compare`` as docs/cli.rst and docs/guide/echem.rst state them, on CSV logs of
known capacities; careless input ends in one ``error:`` line, exit 2, nothing written."""

from __future__ import annotations

import csv
import json

import pytest
import xarray as xr
from test_echem_kernels import TWO_CYCLES, make_log, scaled_cycles

from ionscope import io


def write_csv_log(ds, path, *, current=True, cycle_offset=None):
    """A cycler CSV (``time_s,voltage_V,current_A[,cycle]``) of a synthetic log."""
    header = ["time_s", "voltage_V"] + (["current_A"] if current else []) + (["cycle"] if cycle_offset is not None else [])
    lines = [",".join(header)]
    cycles = None
    if cycle_offset is not None:
        from ionscope.echem import classify_states, number_cycles, number_half_cycles

        state = classify_states(ds["current"].values)
        cycles = number_cycles(state, number_half_cycles(state)) + cycle_offset
    for k, (t, v, i) in enumerate(zip(ds["time"].values, ds["voltage"].values, ds["current"].values)):
        row = [f"{t:.3f}", f"{v:.6f}"] + ([f"{i * 1e-3:.9g}"] if current else [])
        row += [str(cycles[k])] if cycles is not None else []
        lines.append(",".join(row))
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture(scope="module")
def logs(tmp_path_factory):
    root = tmp_path_factory.mktemp("echem-logs")
    return {
        "two": write_csv_log(make_log(TWO_CYCLES), root / "two.csv"),
        "before": write_csv_log(scaled_cycles(2.0, 1.0), root / "before.csv"),
        "after": write_csv_log(scaled_cycles(2.2, 1.0, noise=0.003, seed=2), root / "after.csv"),
        "no_current": write_csv_log(make_log(TWO_CYCLES), root / "no_current.csv", current=False),
        "open": write_csv_log(make_log(TWO_CYCLES[:2]), root / "open.csv"),
        "shifted": write_csv_log(scaled_cycles(2.0, 1.0, cycles=2), root / "shifted.csv", cycle_offset=10),
        "root": root,
    }


def read_rows(path):
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def test_echem_summary_writes_the_contract_outputs(run_cli, logs, tmp_path):
    res = run_cli("echem", "summary", logs["two"], "--mass", "2", "--area", "0.5", "--capacity", "2",
                  "--out", tmp_path / "out")
    assert res.returncode == 0, res.stderr
    assert not res.stderr and "cycle 1: charge 1 mAh, discharge 0.9 mAh, CE 0.9000" in res.stdout
    ds = io.open_dataset(tmp_path / "out" / "result.zarr")
    for name, unit in (("voltage", "V"), ("current", "mA"), ("charge", "mAh"), ("soc", "1")):
        assert ds[name].dims == ("time",) and ds[name].attrs["units"] == unit
    assert {"cycle", "half_cycle", "state"} <= set(ds.data_vars) and ds["time"].attrs["units"] == "s"
    assert ds["state"].attrs["flag_meanings"] == "rest charge discharge"
    assert ds["dqdv"].dims == ("dqdv_curve", "dqdv_voltage") and "bins of 5 mV" in ds["dqdv"].attrs["smoothing"]
    rows = read_rows(tmp_path / "out" / "cycles.csv")
    assert list(rows[0])[:8] == ["cycle", "charge_mAh", "discharge_mAh", "coulombic_efficiency", "charge_mAh_per_g",
                                 "discharge_mAh_per_g", "mean_charge_V", "mean_discharge_V"]
    assert float(rows[0]["charge_mAh"]) == pytest.approx(1.0) and float(rows[0]["discharge_mAh_per_g"]) == pytest.approx(450)
    assert float(rows[0]["coulombic_efficiency"]) == pytest.approx(0.9) and float(rows[1]["mean_discharge_V"]) == pytest.approx(3.8)
    assert float(rows[0]["charge_c_rate_per_h"]) == pytest.approx(0.5)
    assert len(read_rows(tmp_path / "out" / "half_cycles.csv")) == 4
    assert len(read_rows(tmp_path / "out" / "ir_drops.csv")) == 8
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["half_cycles"] == 4 and summary["cycles"] == 2 and summary["start_time"] is None
    assert summary["active_mass_mg"] == 2.0 and summary["area_cm2"] == 0.5 and summary["area_source"] == "option"
    assert summary["total_charge_mAh"] == pytest.approx(1.95) and summary["net_charge_mAh"] == pytest.approx(0.1)
    assert "nominal capacity 2 mAh" in summary["soc_reference"]


def test_echem_summary_of_an_open_last_half_cycle_warns_in_one_line(run_cli, logs, tmp_path):
    log = write_csv_log(make_log(TWO_CYCLES[:-1]), tmp_path / "cut.csv")
    res = run_cli("echem", "summary", log, "--out", tmp_path / "out")
    assert res.returncode == 0, res.stderr
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("warning: half cycle 4 (discharge, cycle 2) runs to the end")
    rows = read_rows(tmp_path / "out" / "cycles.csv")
    assert rows[1]["discharge_mAh"] == "" and rows[1]["complete"] == "False"


def test_echem_compare_names_the_agreeing_cycles(run_cli, logs, tmp_path):
    res = run_cli("echem", "compare", logs["before"], logs["after"], "--out", tmp_path / "out")
    assert res.returncode == 0, res.stderr
    assert "cycles 2-4 agree within tolerance" in res.stdout and "cycle 1 differs" in res.stdout
    rows = read_rows(tmp_path / "out" / "compare.csv")
    assert [r["agree"] for r in rows] == ["False", "True", "True", "True"]
    assert float(rows[0]["charge_rel_diff"]) == pytest.approx(0.1)
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["agreeing_cycles"] == [2, 3, 4] and summary["later_cycles_agree"] is True
    ds = xr.open_zarr(tmp_path / "out" / "result.zarr")
    assert ds["discharge_capacity"].dims == ("log", "cycle") and ds.attrs["primary"] == "discharge_capacity"
    # a stricter tolerance: the noisy later cycles no longer all agree
    res = run_cli("echem", "compare", logs["before"], logs["after"], "--tolerance", "0.001", "--out", tmp_path / "strict")
    assert res.returncode == 0 and "cycles after the first differ" in res.stdout
    # areal: half the electrode, half the capacity
    half = write_csv_log(scaled_cycles(1.0, 0.5), tmp_path / "half.csv")
    res = run_cli("echem", "compare", logs["before"], half, "--area-a", "1", "--area-b", "0.5", "--out", tmp_path / "areal")
    assert res.returncode == 0 and "mAh/cm2" in res.stdout and "every cycle after the first agrees" in res.stdout


def _refused(run_cli, tmp_path, *args, match):
    before = sorted(p.name for p in tmp_path.iterdir())
    res = run_cli(*args)
    lines = res.stderr.strip().splitlines()
    assert res.returncode == 2, res.stderr
    assert len(lines) == 1 and lines[0].startswith("error: ") and "internal error" not in lines[0], res.stderr
    assert match in lines[0], lines[0]
    assert sorted(p.name for p in tmp_path.iterdir()) == before  # nothing written, no output folder


@pytest.mark.parametrize("log, match", [
    ("no_current", "no current column"),
    ("open", "no complete half cycle"),
])
def test_echem_summary_refuses_a_log_it_cannot_use(run_cli, logs, tmp_path, log, match):
    _refused(run_cli, tmp_path, "echem", "summary", logs[log], "--out", tmp_path / "out", match=match)


@pytest.mark.parametrize("option", ["--mass", "--area", "--capacity"])
@pytest.mark.parametrize("value", ["0", "-1", "nan", "inf"])
def test_echem_summary_refuses_a_mass_area_or_capacity_that_is_not_positive(run_cli, logs, tmp_path, option, value):
    _refused(run_cli, tmp_path, "echem", "summary", logs["two"], option, value, "--out", tmp_path / "out",
             match=f"{option} must be a number in (0, inf)")


def test_echem_compare_refuses_logs_without_a_common_cycle_and_careless_options(run_cli, logs, tmp_path):
    _refused(run_cli, tmp_path, "echem", "compare", logs["before"], logs["shifted"], "--out", tmp_path / "out",
             match="no cycle in common")
    for extra, match in ((("--tolerance", "0"), "--tolerance must be"), (("--mass-b", "nan"), "--mass-b must be"),
                         (("--basis", "areal"), "areal comparison needs the area of both logs"),
                         (("--basis", "bogus"), "--basis must be")):
        _refused(run_cli, tmp_path, "echem", "compare", logs["before"], logs["after"], *extra, "--out",
                 tmp_path / "out", match=match)
    _refused(run_cli, tmp_path, "echem", "compare", logs["before"], logs["no_current"], "--out", tmp_path / "out",
             match="LOG_B: ")

