"""The cell_cycling twin: two cycler logs (before / after polishing) and their truth."""

from __future__ import annotations

import numpy as np
import pytest

from ionscope.errors import ConfigError
from ionscope.simulate.cell_cycling import (
    CellCyclingParams, open_circuit_voltage, simulate_cell_cycling, state_of_charge,
)


@pytest.fixture(scope="module")
def twin():
    return simulate_cell_cycling(CellCyclingParams(), seed=0)


def _half_cycles(t, i):
    """Charge passed (mAh) per half cycle by the trapezoidal rule over the records."""
    q = np.concatenate([[0.0], np.cumsum(0.5 * (i[1:] + i[:-1]) * np.diff(t))]) / 3600.0
    moving = i != 0
    edges = np.flatnonzero(np.diff(moving.astype(int)) != 0) + 1
    bounds = np.r_[0, edges, i.size]
    out = []
    for a, b in zip(bounds[:-1], bounds[1:]):
        if moving[a]:
            out.append(abs(q[min(b, i.size - 1)] - q[max(a - 1, 0)]))
    return np.array(out)


def test_the_truth_is_what_the_log_holds(twin):
    for k, log in enumerate(twin["log"].values):
        t = twin["cycler_time"].values[k]
        keep = np.isfinite(t)
        passed = _half_cycles(t[keep], twin["cycler_current"].values[k][keep])
        np.testing.assert_allclose(passed[0::2], twin["charge_capacity_true"].values[k], rtol=1e-12)
        np.testing.assert_allclose(passed[1::2], twin["discharge_capacity_true"].values[k], rtol=1e-12)
    ce = twin["coulombic_efficiency_true"].values
    # the fresh cell's first charge loses 15 %; every other cycle is 99.5 % efficient (to a record)
    assert ce[0, 0] == pytest.approx(1 / 1.15, abs=2e-3)
    np.testing.assert_allclose(ce[0, 1:], 0.995, atol=2e-3)
    np.testing.assert_allclose(ce[1], 0.995, atol=2e-3)
    np.testing.assert_allclose(twin["discharge_capacity_true"].values, 0.1, rtol=2e-3)


def test_the_open_circuit_voltage_has_two_plateaus_at_the_stated_voltages():
    p = CellCyclingParams()
    v = np.linspace(4.6, 5.0, 4001)
    dqdv = np.gradient(state_of_charge(v, p), v)
    peaks = v[1:-1][(dqdv[1:-1] > dqdv[:-2]) & (dqdv[1:-1] > dqdv[2:])]
    np.testing.assert_allclose(peaks, [4.75, 4.85], atol=2e-4)
    np.testing.assert_allclose(open_circuit_voltage(state_of_charge(v, p), p), v, atol=1e-4)


def test_the_charge_curve_is_the_ocv_plus_ir(twin):
    i = twin["cycler_current"].values[1]
    v = twin["cycler_voltage"].values[1]
    first_charge = np.flatnonzero(i > 0)[:723]  # 0.1005 mAh at 0.05 mA: 723 records of 10 s
    first_discharge = np.flatnonzero(i < 0)[:720]
    # a quarter into the charge: the lower plateau (4.75 V) + I R; a quarter into the discharge the
    # upper one (4.85 V) - I R (2 kohm x 0.05 mA)
    assert v[first_charge[180]] == pytest.approx(4.75 + 0.1, abs=0.01)
    assert v[first_discharge[180]] == pytest.approx(4.85 - 0.1, abs=0.01)


def test_the_files_and_bad_parameters(tmp_path, run_cli):
    res = run_cli("simulate", "cell_cycling", "--param", "cycles=1", "--param", "record_interval_s=60",
                  "--out", tmp_path / "cell")
    assert res.returncode == 0, res.stderr
    text = (tmp_path / "cell" / "before.csv").read_text().splitlines()
    assert text[0].startswith("# start_time: 2025-05-30T09:00:00+09:00") and text[3] == "time_s,voltage_V,current_mA"
    assert (tmp_path / "cell" / "after.csv").exists() and (tmp_path / "cell" / "truth.zarr").is_dir()
    with pytest.raises(ConfigError):
        CellCyclingParams(coulombic_efficiency=1.5)
    with pytest.raises(ConfigError, match="million records"):
        CellCyclingParams(cycles=1000, record_interval_s=0.01)


def test_the_logs_read_back_with_their_start_mass_and_area(tmp_path):
    from ionscope import io
    from ionscope.simulate.cell_cycling import write_cycling_files

    ds = simulate_cell_cycling(CellCyclingParams(cycles=2), seed=1)
    write_cycling_files(ds, tmp_path)
    for k, name in enumerate(("before", "after")):
        log = io.load_cycler(tmp_path / f"{name}.csv")
        assert log.attrs["start_time"] == ds.attrs[f"start_time_{name}"]
        assert log.attrs["active_mass_mg"] == 1.0 and log.attrs["area_cm2"] == 0.5
        assert int(log["half_cycle"].max()) == 4 and int(log["cycle"].max()) == 2
        np.testing.assert_allclose(log["current"].values, ds["cycler_current"].values[k][np.isfinite(ds["cycler_time"].values[k])])
