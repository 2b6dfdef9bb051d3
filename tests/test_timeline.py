"""The cell's timeline (issue 15, item 3): every frame and scan row tied to the cell's state.

Checked against the twins' truth (the licoo2 series and its cycler CSV: the cell voltage, current,
charge and state at each frame's mid-time; the composite_cathode .sxm frames and cycler.csv: the
cell voltage at every scan row), against the start times real DM and Velox files record (and
HyperSpy reads), and on careless input: a log without current, a series before / after the log,
naive vs aware times, a log whose clock jumps back."""

from __future__ import annotations

import datetime as dt
import json

import numpy as np
import pytest
import xarray as xr

from ionscope import io
from ionscope.data import provenance, signal
from ionscope.errors import ConfigError, InputError, IonscopeWarning
from ionscope.simulate import cycler_table, simulate
from ionscope.timeline import (
    attach_cycler,
    attach_cycler_states,
    cycler_log,
    frame_times,
    parse_timezone,
    timeline_summary,
)

START = "2024-05-01T10:00:00+09:00"
HYPERSPY = "hyperspy==1.7.6"
IO = "hyperspy/tests/io/"


@pytest.fixture(scope="module")
def licoo2(tmp_path_factory):
    """The licoo2 twin (157 frames, small maps) saved as Zarr, and its cycler log as CSV."""
    twin = simulate("licoo2", ny=16, nx=8, layer_thickness_nm=4, layer_roughness_nm=1)
    root = tmp_path_factory.mktemp("licoo2")
    (root / "cycler.csv").write_text(cycler_table(twin))
    io.save(twin, root / "twin.zarr")
    return twin, root


@pytest.fixture(scope="module")
def cathode(tmp_path_factory):
    """The composite_cathode twin's .sxm frames and cycler.csv, and its truth."""
    from ionscope.simulate.composite_cathode_files import write_scan_files

    twin = simulate("composite_cathode", ny=48, nx=48, pixel_nm=20, charge_frames=2, rest_frames=1)
    root = tmp_path_factory.mktemp("cathode")
    write_scan_files(twin, root, sims=False)
    return twin, root


# --------------------------------------------------------------------------- the twins' truth


def _close_but_at_steps(actual, truth):
    """Within 2 mV, except rows within one record (1 s) of a current step, which a linear
    interpolation of the log smears by up to the IR jump (< 50 mV here)."""
    err = np.abs(np.asarray(actual) - np.asarray(truth))
    assert np.mean(err < 2e-3) > 0.97 and err.max() < 0.05, err.max()


def test_every_licoo2_frame_gets_the_cell_state_of_its_mid_time(licoo2):
    twin, root = licoo2
    series = io.load(f"{root}/twin.zarr:li_fraction")
    out = attach_cycler(series, root / "cycler.csv", start=START)
    assert out.sizes["time"] == 157
    np.testing.assert_allclose(out["cell_voltage"].values, twin["voltage"].values, atol=1e-9)
    np.testing.assert_allclose(out["cell_current"].values, twin["current"].values * 1e3, rtol=1e-6, atol=1e-25)
    np.testing.assert_allclose(out["charge"].values, twin["charge"].values / 3.6, rtol=1e-6, atol=1e-25)
    np.testing.assert_array_equal(out["state"].values, twin["state"].values)
    for name, unit in (("cell_voltage", "V"), ("cell_current", "mA"), ("charge", "mAh"), ("state", "1")):
        assert out[name].dims == ("time",) and out[name].attrs["units"] == unit
    assert out["state"].attrs["flag_meanings"] == "unknown rest charge discharge"
    record = json.loads(out.attrs["timeline"])
    assert record["series_start"] == START and record["cycler_offset_s"] == 0.0
    assert "assumed to be the time coordinate" in record["notes"][0]
    assert provenance(out)[-1]["step"] == "ionscope.timeline.attach_cycler"
    summary = timeline_summary(out)
    json.dumps(summary, allow_nan=False)
    assert summary["state"][0] == "charge" and len(summary["cell_voltage_V"]) == 157


def test_the_twins_own_log_in_memory_gives_the_same(licoo2):
    twin, root = licoo2
    a = attach_cycler(twin["li_fraction"], twin, start=START)  # cycler_* on the record dim, A and C
    b = attach_cycler(twin["li_fraction"], root / "cycler.csv", start=START)
    for name in ("cell_voltage", "cell_current", "charge"):
        np.testing.assert_allclose(a[name].values, b[name].values, rtol=1e-6, atol=1e-25)


def test_every_scan_row_of_the_cathode_frames_gets_its_own_cell_voltage(cathode):
    twin, root = cathode
    for k in range(twin.sizes["time"]):
        frame = io.open_dataset(root / f"frame_{k:03d}.sxm")
        out = attach_cycler(frame, root / "cycler.csv", start="2025-06-02T10:00:00")  # the log's zero
        # each row at its own time, as the twin scanned it
        _close_but_at_steps(out["row_cell_voltage"].values, twin["cell_voltage_row"].values[k])
        assert out["row_cell_voltage"].dims == ("y",) and out["cell_voltage"].ndim == 0
        # the frame: the middle of its rows' times, the twin's frame mid-time
        assert float(out["cell_voltage"]) == pytest.approx(float(twin["voltage"].values[k]), abs=2e-3)
        assert int(out["state"]) == int(twin["state"].values[k])


def test_a_kpfm_result_gets_per_row_and_per_frame_states(cathode):
    from ionscope.kpfm import process_frames

    twin, root = cathode
    frames = [root / f"frame_{k:03d}.sxm" for k in range(twin.sizes["time"])]
    result, _ = process_frames(frames, align=False)
    out = attach_cycler(result, root / "cycler.csv")  # the twin's log records its start (# start_time:)
    _close_but_at_steps(out["row_cell_voltage"].values, twin["cell_voltage_row"].values)
    np.testing.assert_allclose(out["cell_voltage"].values, twin["voltage"].values, atol=2e-3)
    record = json.loads(out.attrs["timeline"])
    assert record["cycler_start_source"] == "the log's start_time" and record["cycler_offset_s"] == 0.0
    # a log without its start: the series' start is assumed, and said
    stripped = root / "cycler_nostart.csv"
    stripped.write_text("".join(line for line in (root / "cycler.csv").read_text().splitlines(keepends=True)
                                if not line.startswith("#")))
    with pytest.warns(IonscopeWarning, match="no start time: assumed it starts with the series"):
        out = attach_cycler(result, stripped)
    np.testing.assert_allclose(out["cell_voltage"].values, twin["voltage"].values, atol=2e-3)
    assert json.loads(out.attrs["timeline"])["cycler_start_source"].startswith("assumed")


# --------------------------------------------------------------------------- frame times


def _series(n=3, **attrs):
    return signal(np.zeros((n, 2, 2)), ("time", "y", "x"), name="m", units="1", coords={"time": 60.0, "y": 1.0,
                                                                                      "x": 1.0}, attrs=attrs)


def test_mid_exposure_times_say_what_they_assumed():
    ft = frame_times(_series(start_time="2024-05-01T10:00:00", exposure_time_s=60.0))
    assert ft.mid.tolist() == [30.0, 90.0, 150.0] and "start + exposure / 2" in ft.notes[0]
    ft = frame_times(_series(start_time="2024-05-01T10:00:00"))
    assert ft.mid.tolist() == [0.0, 60.0, 120.0] and "assumed" in ft.notes[0]
    s = _series(exposure_time_s=60.0)
    s["time"].attrs["frame_reference"] = "mid"
    assert frame_times(s).mid.tolist() == [0.0, 60.0, 120.0] and frame_times(s).start is None
    minutes = _series().assign_coords(time=("time", [0.0, 1.0, 2.0], {"units": "min"}))
    assert frame_times(minutes).mid.tolist() == [0.0, 60.0, 120.0]
    stamps = _series().assign_coords(time=np.array(["2024-05-01T10:00", "2024-05-01T10:01", "2024-05-01T10:02"],
                                                   dtype="datetime64[ns]"))
    ft = frame_times(stamps)
    assert ft.start == dt.datetime(2024, 5, 1, 10) and ft.mid.tolist() == [0.0, 60.0, 120.0]
    with pytest.raises(InputError, match="not a time unit"):
        frame_times(_series().assign_coords(time=("time", [0.0, 1.0, 2.0], {"units": "nm"})))


def test_a_hspy_file_gives_its_general_date_time_and_zone(tmp_path):
    from rsciio.hspy import file_writer

    path = tmp_path / "s.hspy"
    axes = [{"name": n, "size": s, "scale": 1.0, "offset": 0.0, "units": u, "navigate": n == "time"}
            for n, s, u in (("time", 2, "s"), ("y", 3, "nm"), ("x", 3, "nm"))]
    file_writer(str(path), {"data": np.zeros((2, 3, 3)), "axes": axes, "metadata": {
        "General": {"title": "s", "date": "2024-05-01", "time": "10:00:00", "time_zone": "Asia/Tokyo"},
        "Signal": {"signal_type": ""}}, "original_metadata": {}, "tmp_parameters": {}, "attributes": {"_lazy": False},
        "package_info": {"name": "ionscope", "version": "0"},
        "learning_results": {}, "models": {}}, show_progressbar=False)
    ft = frame_times(io.load(path, dims="time,y,x"))
    assert ft.start.isoformat() == START and "General.time_zone Asia/Tokyo" in ft.start_source


# --------------------------------------------------------------------------- real files


@pytest.mark.parametrize(("member", "expected"), [
    # the DataBar's local time (HyperSpy's General.date/time), with the zone from its OS time (UTC)
    ("dm3_2D_data/multi_signal.dm3:HAADF", "2019-12-10T15:32:41.436375-05:00"),
    ("dm4_3D_data/EELS_SI.dm4", "2019-05-14T20:50:13"),  # no OS time: local, naive
    # Velox: Unix seconds, UTC (HyperSpy: 2017-03-06 09:57:56 UTC)
    ("emd_files/fei_emd_files.zip/fei_emd_si.emd:HAADF", "2017-03-06T09:57:56+00:00"),
])
@pytest.mark.filterwarnings("ignore:.*spectrum stream")
def test_real_files_give_the_start_their_metadata_records(real_file, member, expected):
    name, _, variable = member.partition(":")
    path = real_file(HYPERSPY, IO + name)
    ft = frame_times(io.load(f"{path}:{variable}" if variable else path))
    assert ft.start.isoformat() == expected
    if name.endswith(".emd"):
        assert ft.mid[0] == pytest.approx(0.0416 / 2)  # the Velox frame time as the exposure


def test_a_real_dm_frame_against_a_log_on_another_clock(real_file):
    """A DM frame with a zone (-05:00) and a log with a naive local start: refused until the
    zone of the naive one is given."""
    frame = io.load(f"{real_file(HYPERSPY, IO + 'dm3_2D_data/multi_signal.dm3')}:HAADF")
    log = {"time_s": [0.0, 3600.0], "voltage_V": [3.0, 4.0], "current_A": [1e-3, 1e-3],
           "start_time": "2019-12-10T15:02:41"}
    with pytest.raises(InputError, match="has no time zone.*--timezone"):
        attach_cycler(frame, log)
    out = attach_cycler(frame, log, timezone="America/New_York")
    assert float(out["cycler_time"]) == pytest.approx(1800.4364, abs=1e-3)
    assert float(out["cell_voltage"]) == pytest.approx(3.5, abs=1e-3) and int(out["state"]) == 1


# --------------------------------------------------------------------------- careless input


def _log(**extra):
    t = np.arange(0.0, 601.0, 10.0)
    return {"time_s": t, "voltage_V": 3.0 + t / 600.0, "current_A": np.full(t.size, 1e-3), **extra}


def test_a_log_without_current_gives_voltages_and_says_the_rest_is_unknown(tmp_path):
    log = _log()
    del log["current_A"]
    with pytest.warns(IonscopeWarning, match="no current or charge or state"):
        out = attach_cycler(_series(), log, start="2024-05-01T10:00:00")
    np.testing.assert_allclose(out["cell_voltage"].values, [3.0, 3.1, 3.2])
    assert np.isnan(out["cell_current"].values).all() and (out["state"].values == -1).all()
    csv = tmp_path / "v.csv"
    csv.write_text("time_s,voltage_V\n0,3\n10,3.1\n20,3.2\n")
    with pytest.raises(InputError, match="current"):
        attach_cycler(_series(), csv, start="2024-05-01T10:00:00")


def test_states_of_charge_get_the_cell_state_at_their_acquisition_time(licoo2):
    twin, root = licoo2
    log = cycler_log(root / "cycler.csv")
    t = np.asarray(twin["record"].values, dtype=float)
    result = xr.Dataset({"li": (("state", "y"), np.zeros((3, 2)))}, coords={"state": ["pristine", "charged", "later"]})
    at = [10.0, float(t[-1]) / 2, float(t[-1]) + 3600.0]  # s after the log's zero; the last beyond it
    zero = dt.datetime.fromisoformat("2024-05-01T10:00:00")
    times = [(zero + dt.timedelta(seconds=s)).isoformat() for s in at]
    with pytest.warns(IonscopeWarning, match=r"states 2 \(1 of 3\) lie outside"):
        out = attach_cycler_states(result, times, log, start="2024-05-01T10:00:00")
    for name in ("cell_voltage", "cell_current", "charge", "cell_state", "cycler_time"):
        assert out[name].dims == ("state",)
    expected_v = np.interp(at[:2], t, twin["cycler_voltage"].values)
    np.testing.assert_allclose(out["cell_voltage"].values[:2], expected_v, atol=0.05)
    np.testing.assert_allclose(out["cycler_time"].values, at)
    assert np.isnan(out["charge"].values[2]) and out["cell_state"].values[2] == -1
    assert timeline_summary(out)["state"][2] == "unknown" and out.attrs["start_time"] == times[0]
    with pytest.raises(InputError, match="state 1 has no acquisition time"):
        attach_cycler_states(result, [times[0], None, times[2]], log)
    with pytest.raises(InputError, match="2 acquisition time"):
        attach_cycler_states(result, times[:2], log)


def test_frames_before_or_after_the_log_are_named_or_refused():
    series = _series(5, start_time="2024-05-01T10:00:00")  # frames at 0 .. 240 s
    with pytest.warns(IonscopeWarning, match=r"frames 0, 1 \(2 of 5\) lie outside"):
        out = attach_cycler(series, _log(), start="2024-05-01T10:02:00")  # the log starts 120 s later
    assert np.isnan(out["cell_voltage"].values[:2]).all() and np.isfinite(out["cell_voltage"].values[2:]).all()
    assert (out["state"].values[:2] == -1).all()
    assert json.loads(out.attrs["timeline"])["frames_outside_log"] == [0, 1]
    with pytest.raises(InputError, match="none of the 5 frames lies within the cycler log"):
        attach_cycler(series, _log(), start="2024-05-01T12:00:00")
    with pytest.raises(InputError, match="the series has no start time.*--start"):
        attach_cycler(_series(), _log())


def test_naive_and_aware_times_need_a_zone():
    series = _series(start_time="2024-05-01T10:00:00")  # the microscope's local clock
    with pytest.raises(InputError, match="no time zone.*--timezone"):
        attach_cycler(series, _log(start_time="2024-05-01T01:00:00+00:00"))
    out = attach_cycler(series, _log(start_time="2024-05-01T01:00:00+00:00"), timezone="+09:00")
    np.testing.assert_allclose(out["cycler_time"].values, [0.0, 60.0, 120.0])
    assert out.attrs["start_time"] == START
    with pytest.raises(ConfigError, match="neither an IANA name"):
        parse_timezone("Mars/Olympus")
    with pytest.raises(InputError, match="not an ISO 8601 time"):
        attach_cycler(series, _log(), start="yesterday")


def test_a_clock_that_jumps_back_is_reported_and_not_guessed():
    t = np.concatenate([np.arange(0.0, 301.0, 10.0), np.arange(200.0, 601.0, 10.0)])  # back 100 s at 300 s
    log = {"time_s": t, "voltage_V": np.where(np.arange(t.size) < 31, 3.0, 4.0), "current_A": np.full(t.size, 1e-3)}
    series = _series(6, start_time="2024-05-01T10:00:00")  # 0, 60, ... 300 s
    with pytest.warns(IonscopeWarning, match=r"clock goes back at record 31 \(300 s -> 200 s\).*frames 4, 5"):
        out = attach_cycler(series, log, start="2024-05-01T10:00:00")
    v = out["cell_voltage"].values
    np.testing.assert_allclose(v[:4], 3.0)
    assert np.isnan(v[4:]).all()  # 240 s and 300 s are in both runs
    record = json.loads(out.attrs["timeline"])
    assert record["clock_jumps"] == [{"record": 31, "from_s": 300.0, "to_s": 200.0}]


def test_a_model_log_keeps_its_zero_and_a_bad_log_is_refused(tmp_path):
    csv = tmp_path / "c.csv"
    csv.write_text("time_s,voltage_V,current_A\n100,3.0,0.001\n110,3.1,0.001\n120,3.2,0.001\n")
    log = cycler_log(csv)
    assert log["time"].values.tolist() == [100.0, 110.0, 120.0] and log["current"].attrs["units"] == "mA"
    with pytest.raises(InputError, match="no voltage"):
        cycler_log({"time": [0.0, 1.0], "current": [1.0, 1.0]})
    with pytest.raises(InputError, match="NaN"):
        cycler_log({"time": [0.0, np.nan, 2.0], "voltage": [3.0, 3.0, 3.0]})
    with pytest.raises(InputError, match="must be a file"):
        attach_cycler(_series(), 42, start=START)
    assert isinstance(log, xr.Dataset)


@pytest.mark.parametrize("module", ["ionscope.timeline", "ionscope.timeline.attach", "ionscope.timeline.clock",
                                    "ionscope.timeline.log"])
def test_the_docstring_examples_run(module):
    import doctest
    import importlib

    result = doctest.testmod(importlib.import_module(module), optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.failed == 0
