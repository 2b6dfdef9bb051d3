"""The electrochemistry kernels and wrappers on synthetic cycler logs with analytic answers:
constant-current half cycles of known capacity, energy and mean voltage; a tanh V(Q) with a
known dQ/dV peak; a cell with a known ohmic resistance; before/after logs with a known
first-cycle loss."""

from __future__ import annotations

import doctest
import importlib
import math
import warnings

import numpy as np
import pytest
import xarray as xr

from ionscope.echem import (
    CHARGE, CYCLE_COLUMNS, DISCHARGE, REST, classify_states, compare_logs, current_steps_kernel, dqdv,
    dqdv_binned_kernel, half_cycle_table, ir_drops, log_arrays, number_cycles,
    number_half_cycles, state_of_charge, summarize, summary_result,
)
from ionscope.errors import ConfigError, InputError, IonscopeError, IonscopeWarning, NonFiniteError


def make_log(segments, dt=60.0, attrs=None, noise_V=0.0, seed=0, with_columns=False):
    """A cycler log from segments ``(current_mA, duration_s, v_start, v_end)`` (voltage linear in
    time). Every segment starts at the time the previous one ends (two records at the same time:
    an instantaneous current step), so trapezoid integrals are exact."""
    t, i, v = [], [], []
    t0 = 0.0
    for current, duration, v0, v1 in segments:
        n = max(int(round(duration / dt)), 1)
        tt = t0 + np.linspace(0.0, duration, n + 1)
        t.append(tt)
        i.append(np.full(tt.size, float(current)))
        v.append(np.linspace(v0, v1, tt.size))
        t0 += duration
    t, i, v = np.concatenate(t), np.concatenate(i), np.concatenate(v)
    if noise_V:
        v = v + np.random.default_rng(seed).normal(0.0, noise_V, v.size)
    ds = xr.Dataset({"voltage": ("time", v, {"units": "V"}), "current": ("time", i, {"units": "mA"})},
                    coords={"time": ("time", t, {"units": "s"})}, attrs=dict(attrs or {}))
    if with_columns:
        state = classify_states(i)
        half = number_half_cycles(state)
        ds["state"] = ("time", state, {"flag_values": [0, 1, 2], "flag_meanings": "rest charge discharge"})
        ds["half_cycle"] = ("time", half.astype(np.int32))
        ds["cycle"] = ("time", number_cycles(state, half).astype(np.int32))
    return ds


#: rest, charge 1 mA 1 h (3.6 -> 4.2 V), rest, discharge 0.9 mA 1 h (4.1 -> 3.5 V), rest,
#: charge 0.95 mA 1 h (3.7 -> 4.1 V), rest, discharge 0.95 mA 1 h (4.0 -> 3.6 V), rest
TWO_CYCLES = [(0.0, 600, 3.0, 3.0), (1.0, 3600, 3.6, 4.2), (0.0, 600, 4.1, 4.1), (-0.9, 3600, 4.1, 3.5),
              (0.0, 600, 3.5, 3.5), (0.95, 3600, 3.7, 4.1), (0.0, 600, 4.0, 4.0), (-0.95, 3600, 4.0, 3.6),
              (0.0, 600, 3.6, 3.6)]


def quiet_summarize(log, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a clean log warns nothing
        return summarize(log, **kw)


# --------------------------------------------------------------------------- capacity


def test_constant_current_half_cycles_give_their_known_capacity_energy_voltage_and_c_rate():
    cycles, halves, info = quiet_summarize(make_log(TWO_CYCLES), mass_mg=2.0, area_cm2=0.5,
                                           nominal_capacity_mAh=2.0)
    assert [r["cycle"] for r in cycles] == [1, 2]
    assert list(cycles[0])[:8] == CYCLE_COLUMNS[:8] == [
        "cycle", "charge_mAh", "discharge_mAh", "coulombic_efficiency", "charge_mAh_per_g", "discharge_mAh_per_g",
        "mean_charge_V", "mean_discharge_V"]
    c1, c2 = cycles
    assert c1["charge_mAh"] == pytest.approx(1.0, rel=1e-12)
    assert c1["discharge_mAh"] == pytest.approx(0.9, rel=1e-12)
    assert c1["coulombic_efficiency"] == pytest.approx(0.9, rel=1e-12)
    assert c1["charge_mAh_per_g"] == pytest.approx(500.0)  # 1 mAh / 2 mg
    assert c1["discharge_mAh_per_cm2"] == pytest.approx(1.8)  # 0.9 mAh / 0.5 cm2
    assert c1["mean_charge_V"] == pytest.approx(3.9, rel=1e-12)  # linear 3.6 -> 4.2 at constant current
    assert c1["mean_discharge_V"] == pytest.approx(3.8, rel=1e-12)
    assert c1["charge_energy_mWh"] == pytest.approx(3.9)
    assert c1["energy_efficiency"] == pytest.approx(0.9 * 3.8 / 3.9)
    assert c1["charge_c_rate_per_h"] == pytest.approx(0.5) and c1["discharge_c_rate_per_h"] == pytest.approx(0.45)
    assert c1["charge_duration_s"] == pytest.approx(3600.0)
    assert c2["coulombic_efficiency"] == pytest.approx(1.0) and c2["mean_discharge_V"] == pytest.approx(3.8)
    assert [(h["half_cycle"], h["cycle"], h["state"], h["complete"]) for h in halves] == [
        (1, 1, "charge", True), (2, 1, "discharge", True), (3, 2, "charge", True), (4, 2, "discharge", True)]
    assert halves[1]["start_voltage_V"] == pytest.approx(4.1) and halves[1]["end_voltage_V"] == pytest.approx(3.5)
    assert info["half_cycles"] == 4 and info["cycles"] == 2 and info["complete_cycles"] == 2
    assert info["total_charge_mAh"] == pytest.approx(1.95) and info["total_discharge_mAh"] == pytest.approx(1.85)
    assert info["net_charge_mAh"] == pytest.approx(0.1)
    assert info["first_cycle_loss_mAh"] == pytest.approx(0.1)
    assert info["active_mass_mg"] == 2.0 and info["active_mass_source"] == "option"


def test_the_half_cycles_partition_the_record_so_capacities_add_up_to_the_net_charge():
    # sampled without records at the steps, with noise: every interval belongs to exactly one half cycle
    rng = np.random.default_rng(3)
    t = np.cumsum(rng.uniform(5, 15, 3000))
    i = np.where(np.sin(t / 2000.0) > 0, 0.8, -0.7) + rng.normal(0, 0.01, t.size)
    i[(np.abs(np.sin(t / 2000.0)) < 0.05)] = 0.0
    log = xr.Dataset({"voltage": ("time", 3.8 + 0.1 * np.sin(t / 700.0)), "current": ("time", i)},
                     coords={"time": t})
    halves = half_cycle_table(log_arrays(log))
    net = sum(h["capacity_mAh"] * (1 if h["state"] == "charge" else -1) for h in halves)
    assert net == pytest.approx(np.trapezoid(i, t) / 3600.0, rel=1e-12)
    assert all(h["capacity_mAh"] > 0 for h in halves)


def test_an_open_last_half_cycle_is_listed_but_left_out_of_its_cycle():
    log = make_log(TWO_CYCLES[:-1])  # the log stops while the last discharge still runs
    with pytest.warns(IonscopeWarning, match="half cycle 4 .*runs to the end of the log"):
        cycles, halves, info = summarize(log)
    assert halves[-1]["complete"] is False and halves[-1]["capacity_mAh"] == pytest.approx(0.95)
    assert cycles[1]["charge_mAh"] == pytest.approx(0.95)
    assert cycles[1]["discharge_mAh"] is None and cycles[1]["coulombic_efficiency"] is None
    assert cycles[1]["complete"] is False and info["open_half_cycles"] == [4] and info["half_cycles"] == 3


def test_a_last_half_cycle_that_ends_with_the_log_at_the_cut_off_of_the_others_is_complete():
    # the cycler stops logging when the last discharge reaches its 3.5 V limit, as the first did
    log = make_log(TWO_CYCLES[:-2] + [(-0.95, 3600, 4.0, 3.505)])
    cycles, halves, info = quiet_summarize(log)
    assert [h["ended_by"] for h in halves] == ["rest", "rest", "rest", "cut-off"]
    assert halves[-1]["complete"] is True and info["ended_at_cutoff"] == [4] and info["open_half_cycles"] == []
    assert cycles[1]["coulombic_efficiency"] == pytest.approx(1.0)
    # a reversal without rest ends a half cycle too
    _, halves, _ = quiet_summarize(make_log([(1.0, 3600, 3.6, 4.2), (-1.0, 3600, 4.2, 3.6), (0.0, 60, 3.6, 3.6)]))
    assert [h["ended_by"] for h in halves] == ["reversal", "rest"]


def test_states_half_cycles_and_cycles_follow_the_reader_conventions():
    current = np.array([0.0, 1.0, 1.0, 0.0, -1.0, -1.0, 0.0, 1.0, 0.0, -1.0])
    state = classify_states(current)
    assert state.tolist() == [REST, CHARGE, CHARGE, REST, DISCHARGE, DISCHARGE, REST, CHARGE, REST, DISCHARGE]
    half = number_half_cycles(state)
    assert half.tolist() == [1, 1, 1, 1, 2, 2, 2, 3, 3, 4]  # rest belongs to the preceding half cycle
    assert number_cycles(state, half).tolist() == [1, 1, 1, 1, 1, 1, 1, 2, 2, 2]
    # a log that starts with a discharge has it in cycle 1
    assert number_cycles(np.array([2, 1, 2]), np.array([1, 2, 3])).tolist() == [1, 2, 2]


def test_the_log_own_cycle_numbers_and_states_are_used_when_present():
    log = make_log(TWO_CYCLES, with_columns=True)
    log["cycle"] = log["cycle"] + 4  # the file's own numbering wins
    cycles, _, info = quiet_summarize(log)
    assert [r["cycle"] for r in cycles] == [5, 6] and info["derived_columns"] == []


def test_the_units_of_a_hand_built_log_are_converted():
    log = make_log(TWO_CYCLES)
    log["current"] = log["current"] * 1e-3
    log["current"].attrs["units"] = "A"
    log = log.assign_coords(time=("time", log["time"].values / 60.0, {"units": "min"}))
    cycles, _, _ = quiet_summarize(log)
    assert cycles[0]["charge_mAh"] == pytest.approx(1.0)


# --------------------------------------------------------------------------- careless input


def test_a_log_without_current_is_refused_with_a_hint():
    with pytest.raises(InputError, match="no current column.*--columns current="):
        summarize(make_log(TWO_CYCLES).drop_vars("current"))


@pytest.mark.parametrize("segments, why", [
    ([(0.0, 600, 3.0, 3.0), (1.0, 3600, 3.6, 4.2)], "runs to the end of the log"),
    ([(0.0, 600, 3.0, 3.0)], "all rest"),
])
def test_a_log_with_no_complete_half_cycle_is_refused(segments, why):
    with pytest.raises(InputError, match=f"no complete half cycle.*{why}"):
        summarize(make_log(segments))


@pytest.mark.parametrize("option", ["mass_mg", "area_cm2", "nominal_capacity_mAh"])
@pytest.mark.parametrize("value", [0.0, -1.0, math.nan, math.inf])
def test_mass_area_and_capacity_must_be_positive_numbers(option, value):
    with pytest.raises(ConfigError, match=option):
        summarize(make_log(TWO_CYCLES), **{option: value})


def test_header_mass_and_area_are_used_options_override_and_a_zero_header_is_ignored():
    log = make_log(TWO_CYCLES, attrs={"active_mass_mg": 4.0, "area_cm2": 0.0})
    with pytest.warns(IonscopeWarning, match="electrode area .* 0.0.*ignored"):
        cycles, _, info = summarize(log)
    assert cycles[0]["charge_mAh_per_g"] == pytest.approx(250.0) and info["active_mass_source"] == "header"
    assert cycles[0]["charge_mAh_per_cm2"] is None and info["area_cm2"] is None
    cycles, _, info = quiet_summarize(log, mass_mg=1.0, area_cm2=2.0)  # the options win: no note
    assert cycles[0]["charge_mAh_per_g"] == pytest.approx(1000.0) and info["active_mass_source"] == "option"
    assert cycles[0]["charge_mAh_per_cm2"] == pytest.approx(0.5)


def test_nan_and_backwards_time_are_refused_naming_the_record():
    log = make_log(TWO_CYCLES)
    bad = log.copy(deep=True)
    bad["current"].values[7] = np.nan
    with pytest.raises(NonFiniteError, match="current is not a number at record 7"):
        summarize(bad)
    t = log["time"].values.copy()
    t[20] = t[19] - 1.0
    with pytest.raises(InputError, match="time runs backwards at record 20"):
        summarize(log.assign_coords(time=("time", t, {"units": "s"})))
    with pytest.raises(InputError, match="xarray.Dataset"):
        summarize(np.zeros(3))


# --------------------------------------------------------------------------- state of charge


def test_state_of_charge_from_a_nominal_or_the_first_charge_capacity_is_stated():
    log = make_log(TWO_CYCLES)
    soc = state_of_charge(log, capacity_mAh=2.0)
    end_of_charge = int(np.flatnonzero(log["time"].values == 4200.0)[0])
    assert soc.values[0] == 0.0 and soc.values[end_of_charge] == pytest.approx(0.5)
    assert "nominal capacity 2 mAh" in soc.attrs["soc_reference"]
    soc = state_of_charge(log)
    assert soc.values[end_of_charge] == pytest.approx(1.0)
    assert soc.values[-1] == pytest.approx(0.1 / 1.0)  # the first cycle's irreversible loss stays
    assert "first complete charge (half cycle 1" in soc.attrs["soc_reference"]
    assert soc.attrs["reference_capacity_mAh"] == pytest.approx(1.0) and soc.dims == ("time",)
    assert "SOC 0 at the log's first record" in soc.attrs["soc_reference"]
    with pytest.raises(ConfigError):
        state_of_charge(log, capacity_mAh=-1.0)
    # a log that starts with a discharge (a cell started charged): SOC 0 at the end of that discharge
    log = make_log([(-0.3, 3600, 3.9, 3.5), (0.0, 600, 3.5, 3.5)] + TWO_CYCLES[1:])
    soc = state_of_charge(log)
    assert soc.values[0] == pytest.approx(0.3) and soc.values.min() == pytest.approx(0.0)
    assert "SOC 0 at record 60 (t = 3600 s), the end of the first discharge" in soc.attrs["soc_reference"]


# --------------------------------------------------------------------------- dQ/dV


def tanh_log(q_total=1.0, v0=3.9, w=0.02, current=0.5, points=4000, noise_V=0.0, seed=0):
    """Charge then discharge of a cell with Q(V) = Q/2 (1 + tanh((V - V0) / w)) (no hysteresis):
    dQ/dV = Q / (2 w) sech^2((V - V0) / w), peak Q / (2 w) at V0."""
    x = np.linspace(0.005, 0.995, points)
    v = v0 + w * np.arctanh(2 * x - 1)
    duration = q_total * 0.99 / current * 3600.0
    t = (x - x[0]) / (x[-1] - x[0]) * duration
    rng = np.random.default_rng(seed)
    noise = rng.normal(0, noise_V, 2 * points) if noise_V else np.zeros(2 * points)
    time = np.concatenate([t, duration + t, [2 * duration + 60.0]])
    volt = np.concatenate([v + noise[:points], v[::-1] + noise[points:], [v[0]]])
    cur = np.concatenate([np.full(points, current), np.full(points, -current), [0.0]])
    return xr.Dataset({"voltage": ("time", volt), "current": ("time", cur)}, coords={"time": time})


def test_dqdv_binning_recovers_the_analytic_peak_and_bin_averages():
    q_total, v0, w, width = 1.0, 3.9, 0.02, 0.002
    curves = dqdv(tanh_log(q_total, v0, w), bin_V=width)
    assert curves.dims == ("dqdv_curve", "dqdv_voltage") and curves.attrs["units"] == "mAh/V"
    assert curves["dqdv_state"].values.tolist() == ["charge", "discharge"]
    assert "bins of 2 mV" in curves.attrs["smoothing"]
    charge = curves.isel(dqdv_curve=0)
    v = curves["dqdv_voltage"].values
    # bin average of the true dQ/dV: the exact charge between the bin edges over the width
    exact = q_total / 2 * (np.tanh((v + width / 2 - v0) / w) - np.tanh((v - width / 2 - v0) / w)) / width
    inner = np.abs(v - v0) < 0.045  # bins the curve covers whole
    # within one sampling interval's charge (0.25 uAh) per bin edge
    np.testing.assert_allclose(charge.values[inner], exact[inner], rtol=0.02, atol=2 * 0.99 / 4000 / width)
    peak = float(v[np.nanargmax(charge.values)])
    assert abs(peak - v0) <= width
    assert float(np.nanmax(charge.values)) == pytest.approx(q_total / (2 * w), rel=0.02)
    # the integral of dQ/dV over V is the capacity; the discharge is negative
    assert np.nansum(charge.values) * width == pytest.approx(0.99 * q_total, rel=1e-3)
    discharge = curves.isel(dqdv_curve=1).values
    assert np.nanmin(discharge) == pytest.approx(-q_total / (2 * w), rel=0.02)


def test_dqdv_savgol_smooths_the_binned_curve_of_a_noisy_voltage_and_states_its_window():
    noisy = tanh_log(noise_V=0.002, seed=1)
    raw = dqdv(noisy, bin_V=0.002).isel(dqdv_curve=0).values
    smooth = dqdv(noisy, bin_V=0.002, method="savgol", window=7, polyorder=2)
    values = smooth.isel(dqdv_curve=0).values
    v = smooth["dqdv_voltage"].values
    assert "Savitzky-Golay filter (window 7 bins = 14 mV" in smooth.attrs["smoothing"]
    assert abs(float(v[np.nanargmax(values)]) - 3.9) <= 0.002
    assert float(np.nanmax(values)) == pytest.approx(25.0, rel=0.05)
    truth = 0.5 * (np.tanh((v + 0.001 - 3.9) / 0.02) - np.tanh((v - 0.001 - 3.9) / 0.02)) / 0.002
    inner = np.abs(v - 3.9) < 0.05
    err_raw = np.sqrt(np.nanmean((raw[inner] - truth[inner]) ** 2))
    err_smooth = np.sqrt(np.nanmean((values[inner] - truth[inner]) ** 2))
    assert err_smooth < 0.5 * err_raw


def test_dqdv_binned_kernel_is_charge_per_bin_width():
    edges = np.array([0.0, 0.01, 0.02])
    out = dqdv_binned_kernel(np.array([0.005, 0.006, 0.015]), np.array([1.0, 2.0, 4.0]), edges)
    np.testing.assert_allclose(out, [300.0, 400.0])


def test_dqdv_refuses_careless_parameters():
    log = tanh_log(points=200)
    for kw in ({"bin_V": 0.0}, {"bin_V": math.nan}, {"method": "bogus"}, {"method": "savgol", "window": 6},
               {"method": "savgol", "window": 5, "polyorder": 5}, {"bin_V": 1e-9}):
        with pytest.raises(ConfigError):
            dqdv(log, **kw)


# --------------------------------------------------------------------------- IR drop


def test_ir_drops_recover_a_known_resistance_and_state_the_points_used():
    r_ohm = 50.0
    # a continuous open-circuit voltage, and V = OCV + R I: every jump at a step is R dI
    log = make_log([(0.0, 600, 3.6, 3.6), (1.0, 3600, 3.6, 4.2), (0.0, 600, 4.2, 4.2), (-1.0, 3600, 4.2, 3.6),
                    (0.0, 600, 3.6, 3.6)], dt=60.0)
    log["voltage"] = log["voltage"] + r_ohm * log["current"] * 1e-3
    rows, info = ir_drops(log)
    assert info["steps"] == 4 and [r["current_after_mA"] for r in rows] == [1.0, 0.0, -1.0, 0.0]
    for r in rows:
        assert r["resistance_ohm"] == pytest.approx(r_ohm, rel=1e-9)
        assert r["voltage_after_V"] - r["voltage_before_V"] == pytest.approx(
            r_ohm * 1e-3 * (r["current_after_mA"] - r["current_before_mA"]))
        assert r["record_after"] == r["record_before"] + 1 and r["dt_s"] == 0.0
    assert [r["time_s"] for r in rows] == [600.0, 4200.0, 4800.0, 8400.0]
    assert info["median_resistance_ohm"] == pytest.approx(r_ohm)
    assert "last record before and the first record after" in info["method"]
    assert current_steps_kernel(np.array([0.0, 0.05, 1.0]), 0.5).tolist() == [2]
    assert ir_drops(log, min_step_mA=5.0)[1]["steps"] == 0


# --------------------------------------------------------------------------- compare


def scaled_cycles(first_charge, factor, cycles=4, noise=0.0, seed=0):
    """A log of ``cycles`` cycles at 0.5 mA: the first charge ``first_charge`` h, every later half
    cycle ``factor`` h (plus a little noise), discharge 1.8 h in cycle 1."""
    rng = np.random.default_rng(seed)
    segments = [(0.0, 600, 3.0, 3.0)]
    for c in range(cycles):
        hc = first_charge if c == 0 else factor * (1 + noise * rng.standard_normal())
        hd = 1.8 * factor if c == 0 else factor * (1 + noise * rng.standard_normal())
        segments += [(0.5, hc * 3600, 3.6, 4.2), (0.0, 600, 4.1, 4.1), (-0.5, hd * 3600, 4.1, 3.5),
                     (0.0, 600, 3.5, 3.5)]
    return make_log(segments, dt=120.0)


def test_compare_finds_the_first_cycle_loss_and_later_cycles_agreeing():
    before = scaled_cycles(2.0, 1.0)
    after = scaled_cycles(2.2, 1.0, noise=0.003, seed=2)  # a larger first-cycle loss after polishing
    rows, summary = compare_logs(before, after)
    assert summary["basis"] == "absolute" and summary["common_cycles"] == [1, 2, 3, 4]
    assert summary["differing_cycles"] == [1] and summary["agreeing_cycles"] == [2, 3, 4]
    assert summary["later_cycles_agree"] is True
    assert rows[0]["charge_a"] == pytest.approx(1.0) and rows[0]["charge_b"] == pytest.approx(1.1)
    assert rows[0]["charge_rel_diff"] == pytest.approx(0.1) and "charge +10.00 %" in rows[0]["exceeded"]
    assert summary["first_cycle_loss_a"] == pytest.approx(0.1) and summary["first_cycle_loss_b"] == pytest.approx(0.2)
    assert "cycles 2-4 agree within tolerance" in summary["verdict"]
    assert "cycle 1 differs" in summary["verdict"] and "first-cycle irreversible loss is expected" in summary["verdict"]
    assert "every cycle after the first agrees" in summary["verdict"]


def test_compare_is_areal_when_both_areas_are_known_and_flags_a_changed_cell():
    before = scaled_cycles(2.0, 1.0)
    after = scaled_cycles(1.0, 0.5)  # half the electrode after the cut: half the capacity, equal per cm2
    rows, summary = compare_logs(before, after, area_cm2=(1.0, 0.5))
    assert summary["basis"] == "areal" and summary["capacity_unit"] == "mAh/cm2"
    assert summary["later_cycles_agree"] is True and rows[1]["discharge_a"] == pytest.approx(0.5)
    rows, summary = compare_logs(before, after, basis="absolute")
    assert summary["later_cycles_agree"] is False and summary["agreeing_cycles"] == []
    assert "cell changed beyond the tolerance" in summary["verdict"]
    with pytest.raises(ConfigError, match="areal comparison needs the area of both logs; log B"):
        compare_logs(before, after, basis="areal", area_cm2=(1.0, None))


def test_compare_of_logs_with_no_common_cycle_is_refused():
    a = scaled_cycles(2.0, 1.0, cycles=2)
    b = a.copy()
    b["cycle"] = ("time", number_cycles(classify_states(b["current"].values),
                                        number_half_cycles(classify_states(b["current"].values))) + 10)
    with pytest.raises(InputError, match="no cycle in common .*log A: cycles 1-2; log B: cycles 11-12"):
        compare_logs(a, b)
    for kw in ({"tolerance": 0.0}, {"tolerance": math.nan}, {"ce_tolerance": -1.0}, {"voltage_tolerance_V": math.inf},
               {"basis": "bogus"}, {"mass_mg": (1.0, -1.0)}, {"area_cm2": 3.0}):
        with pytest.raises(ConfigError):
            compare_logs(a, a, **kw)


# --------------------------------------------------------------------------- the summary result


def test_summary_result_holds_the_log_soc_and_dqdv_and_states_its_methods():
    log = make_log(TWO_CYCLES, attrs={"start_time": "2024-05-01T10:00:00"})
    result, cycles, halves, ir_rows, summary = summary_result(log, nominal_capacity_mAh=2.0)
    for name, unit in (("voltage", "V"), ("current", "mA"), ("charge", "mAh"), ("soc", "1")):
        assert result[name].dims == ("time",) and result[name].attrs["units"] == unit
    for name in ("cycle", "half_cycle", "state"):
        assert result[name].dims == ("time",)
    assert result["state"].attrs["flag_meanings"] == "rest charge discharge"
    assert result["charge"].values[-1] == pytest.approx(0.1)
    assert result["dqdv"].dims == ("dqdv_curve", "dqdv_voltage") and result.attrs["primary"] == "voltage"
    assert summary["start_time"] == "2024-05-01T10:00:00" and "nominal capacity 2 mAh" in summary["soc_reference"]
    assert "bins of 5 mV" in summary["dqdv_smoothing"] and summary["ir"]["steps"] == len(ir_rows) == 8
    assert '"ionscope.echem.summary"' in result.attrs["provenance"]


def test_every_refusal_is_an_ionscope_error():
    for call in (lambda: summarize(xr.Dataset()), lambda: ir_drops(make_log(TWO_CYCLES), min_step_mA=0.0),
                 lambda: summarize(make_log([(0, 60, 3, 3)])), lambda: dqdv(make_log([(1.0, 60, 3, 3)]))):
        with pytest.raises(IonscopeError):
            call()


@pytest.mark.parametrize("module", ["ionscope.echem", "ionscope.echem.capacity", "ionscope.echem.soc",
                                    "ionscope.echem.dqdv", "ionscope.echem.ir", "ionscope.echem.workflow"])
def test_the_docstring_examples_run(module):
    result = doctest.testmod(importlib.import_module(module), optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0 and result.failed == 0
