"""The electrochemistry analysis on a real cycler file: the 5-cycle GCPL EC-Lab ``.mpr`` that
the navani 0.1.22 sdist ships (Example_data/), against EC-Lab's own per-half-cycle charge
("Q charge/discharge/mA.h", which the instrument resets at every half cycle)."""

from __future__ import annotations

import numpy as np
import pytest

from ionscope import io
from ionscope.echem import dqdv, ir_drops, summarize

NAVANI = "navani==0.1.22"
GCPL = "Example_data/jdb11-1_c3_gcpl_5cycles_2V-3p8V_C-24_data_C09.mpr"


@pytest.fixture(scope="module")
def gcpl():
    from conftest import fetch_real_file

    pytest.importorskip("galvani")
    return io.load_cycler(fetch_real_file(NAVANI, GCPL))


def test_half_cycle_capacities_equal_ec_lab_own_to_0_1_percent(gcpl):
    cycles, halves, info = summarize(gcpl)
    # EC-Lab's capacity of each half cycle: |Q charge/discharge| at its last record
    h = gcpl["half_cycle"].values
    ends = np.r_[np.flatnonzero(np.diff(h)), h.size - 1]
    instrument = np.abs(gcpl["q_charge_discharge"].values[ends])
    np.testing.assert_allclose([r["capacity_mAh"] for r in halves], instrument, rtol=1e-3)
    # a first discharge (the cell started charged), 5 full cycles, a last charge and discharge that
    # ends with the log at the 2 V limit of the other discharges: counted, not open
    assert [r["state"] for r in halves] == ["discharge"] + ["charge", "discharge"] * 6
    assert halves[-1]["ended_by"] == "cut-off" and halves[-1]["end_voltage_V"] == pytest.approx(2.0, abs=1e-3)
    assert info["half_cycles"] == 13 and info["open_half_cycles"] == [] and info["cycles"] == 7
    assert cycles[0]["charge_mAh"] is None and cycles[0]["coulombic_efficiency"] is None
    ce = [r["coulombic_efficiency"] for r in cycles[1:]]
    np.testing.assert_allclose(ce, instrument[2::2] / instrument[1::2], rtol=2e-3)
    assert all(0.85 < c < 0.95 for c in ce)
    assert info["start_time"] == "2020-10-26T12:49:58"
    # mean voltages inside the 2.0 - 3.8 V window, discharge below charge (hysteresis)
    assert all(2.0 < r["mean_discharge_V"] < r["mean_charge_V"] < 3.8 for r in cycles[1:-1])


def test_dqdv_and_ir_drops_of_a_real_gcpl(gcpl):
    curves = dqdv(gcpl, bin_V=0.01)
    assert curves.sizes["dqdv_curve"] == 13
    charge = curves.where(curves["dqdv_state"] == "charge", drop=True)
    # positive on charge (but for the interval that crosses from the previous discharge: -5e-7 mAh/V)
    assert np.nanmin(charge.values) > -1e-5 * np.nanmax(charge.values)
    # the integral of dQ/dV over V is each half cycle's capacity (but for its rest records' leak)
    cycles, halves, _ = summarize(gcpl)
    np.testing.assert_allclose(np.nansum(np.abs(curves.values), axis=1) * 0.01, [r["capacity_mAh"] for r in halves],
                               rtol=1e-6)
    rows, info = ir_drops(gcpl)
    assert info["steps"] >= 12 and 0 < info["median_resistance_ohm"] < 1000
