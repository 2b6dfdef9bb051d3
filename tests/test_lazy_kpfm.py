"""Issue 19 for KPFM and the timeline: a dask-backed series goes through ``kpfm process``, the
cell timeline and the difference maps without being computed (beyond a stated sample), and
gives the in-memory numbers."""

from __future__ import annotations

import dask
import dask.array
import numpy as np
import pytest
import xarray as xr
from daskcount import CountingScheduler
from kpfm_frames import make_frames

from ionscope import io
from ionscope.kpfm import difference_maps, process_frames
from ionscope.timeline import attach_cycler


@pytest.fixture(scope="module")
def scans():
    """Four drifting 64 x 64 frames (alternate scan directions) and their ground truth."""
    return make_frames(4, (64, 64), seed=1)


def _series(frames) -> xr.Dataset:
    """The frames as one series Dataset: channels (time, y, x), time and row_time (time, y) in s
    from the first frame's start, scan_directions."""
    from ionscope.timeline import seconds_between
    from ionscope.timeline.clock import parse_time

    start = parse_time(frames[0].attrs["start_time"], "start")
    t = np.array([seconds_between(start, parse_time(f.attrs["start_time"], "start")) for f in frames])
    rows = np.stack([t[k] + f["row_time"].values for k, f in enumerate(frames)])
    series = xr.concat([f.drop_vars("row_time") for f in frames], dim="time", combine_attrs="override")
    series = series.assign_coords(time=("time", t, {"units": "s"}), row_time=(("time", "y"), rows, {"units": "s"}))
    series.attrs = {"start_time": frames[0].attrs["start_time"], "scan_range_nm": frames[0].attrs["scan_range_nm"],
                    "acquisition_time_s": frames[0].attrs["acquisition_time_s"],
                    "scan_directions": [f.attrs["scan_direction"] for f in frames]}
    return series


def _assert_equal(lazy: xr.Dataset, eager: xr.Dataset) -> None:
    assert set(lazy.data_vars) == set(eager.data_vars)
    for name in eager.data_vars:
        np.testing.assert_allclose(lazy[name].values, eager[name].values, rtol=1e-6, atol=1e-7, err_msg=name)
    np.testing.assert_allclose(lazy["row_time"].values, eager["row_time"].values, rtol=1e-12, atol=1e-9)


@pytest.mark.parametrize("options", [{}, {"psf": "auto", "cycler": True}], ids=["plain", "psf-cycler"])
def test_process_frames_of_dask_frames_computes_only_the_first_frame_and_equals_the_in_memory_path(scans, options):
    frames, truth = scans
    kw = {**options, "cycler": truth.cycler} if options.get("cycler") else dict(options)
    eager, summary_eager = process_frames(frames, **kw)
    counter = CountingScheduler(max_computes=1)  # the stated sample: the first frame's traces and row times
    with dask.config.set(scheduler=counter):
        lazy, summary = process_frames([f.chunk() for f in frames], **kw)
    assert counter.total == 1
    assert isinstance(lazy["potential"].data, dask.array.Array)
    assert isinstance(lazy["shift_x_nm"].data, dask.array.Array)
    assert lazy["potential"].data.numblocks[0] == len(frames)  # one task per frame, not one for the series
    _assert_equal(lazy, eager)
    (noise, noise_trace) = dask.compute(lazy.attrs["noise_V"], lazy.attrs["noise_trace_V"])
    assert noise == pytest.approx(eager.attrs["noise_V"], rel=1e-12)
    assert noise_trace == pytest.approx(eager.attrs["noise_trace_V"], rel=1e-12)
    assert noise == pytest.approx(truth.noise_V, rel=0.1)  # it measured the noise
    (shifts,) = dask.compute(summary["shift_y_nm"])
    np.testing.assert_allclose(shifts, summary_eager["shift_y_nm"], atol=1e-9)
    assert lazy.attrs["resolution_nm"] == pytest.approx(eager.attrs["resolution_nm"], rel=1e-6)
    if "psf" in options:
        assert lazy.attrs["psf"] == eager.attrs["psf"]  # fitted once, on the first frame
        (voltage,) = dask.compute(summary["cell_voltage_V"])
        np.testing.assert_allclose(voltage, summary_eager["cell_voltage_V"], rtol=1e-12)


def test_a_zarr_series_is_processed_chunk_by_chunk_and_equals_its_frames(scans, tmp_path):
    frames, _ = scans
    store = io.save(_series(frames), tmp_path / "series.zarr")
    eager, _ = process_frames(frames)
    counter = CountingScheduler(max_computes=1)
    with dask.config.set(scheduler=counter):
        lazy, _ = process_frames(str(store), lazy=True)
    assert counter.total == 1 and isinstance(lazy["potential"].data, dask.array.Array)
    assert lazy.attrs["scan_directions"] == eager.attrs["scan_directions"]
    np.testing.assert_array_equal(lazy["time"].values, eager["time"].values)
    _assert_equal(lazy, eager)


def test_a_chunked_series_maps_over_its_own_time_chunks(scans):
    frames, _ = scans
    series = _series(frames).chunk({"time": 2})
    with dask.config.set(scheduler=CountingScheduler(max_computes=1)):
        lazy, _ = process_frames(series, psf=2.0)
    assert lazy["potential"].data.chunks[0] == (2, 2)
    eager, _ = process_frames(frames, psf=2.0)
    _assert_equal(lazy, eager)


def test_kpfm_process_on_a_zarr_series_writes_the_result_in_one_pass(scans, tmp_path, run_cli):
    frames, truth = scans
    store = io.save(_series(frames), tmp_path / "series.zarr")
    eager, summary_eager = process_frames(frames, psf="auto")
    counter = CountingScheduler(max_computes=2)  # the first frame; the result written with its summary
    with dask.config.set(scheduler=counter):
        result = run_cli("kpfm", "process", store, "--psf", "auto", "--out", tmp_path / "out")
    assert result.returncode == 0, result.stderr
    assert counter.total == 2
    stored = io.open_dataset(tmp_path / "out")
    _assert_equal(stored, eager)
    assert stored.attrs["noise_V"] == pytest.approx(eager.attrs["noise_V"], rel=1e-12)
    import json

    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["noise_mV"] == pytest.approx(summary_eager["noise_mV"], rel=1e-12)
    np.testing.assert_allclose(summary["shift_x_nm"], summary_eager["shift_x_nm"], atol=1e-9)


def test_a_later_frame_of_another_field_fails_when_it_is_computed(scans):
    from ionscope.errors import InputError

    frames, _ = scans
    other, _ = make_frames(2, (64, 64), seed=11)
    lazy, _ = process_frames([f.chunk() for f in [frames[0], frames[1], other[1]]], min_match=0.9)
    with pytest.raises(InputError, match="not of one field of view"):
        lazy["potential"].compute()


def test_difference_maps_of_a_lazy_result_stay_lazy(scans):
    frames, _ = scans
    eager, _ = process_frames(frames)
    lazy = eager.chunk({"time": 2})
    with dask.config.set(scheduler=CountingScheduler(max_computes=0)):
        dv = difference_maps(lazy)
    assert isinstance(dv.data, dask.array.Array)
    np.testing.assert_array_equal(dv.values, difference_maps(eager).values)


def test_attaching_the_cycler_log_does_not_touch_a_dask_series(scans):
    frames, truth = scans
    eager, _ = process_frames(frames)
    log = {"time": truth.cycler["time"].values, "voltage": truth.cycler["voltage"].values,
           "current_A": truth.cycler["current"].values}
    lazy = eager.copy()
    lazy["potential"] = eager["potential"].chunk({"time": 1})
    counter = CountingScheduler(max_computes=0)
    with dask.config.set(scheduler=counter):
        timed = attach_cycler(lazy, log, start=eager.attrs["start_time"])
    assert counter.total == 0 and isinstance(timed["potential"].data, dask.array.Array)
    expected = attach_cycler(eager, log, start=eager.attrs["start_time"])
    for name in ("cell_voltage", "row_cell_voltage", "state", "cycler_time"):
        np.testing.assert_array_equal(timed[name].values, expected[name].values)
    np.testing.assert_array_equal(timed["potential"].values, eager["potential"].values)


def test_ionscope_timeline_copies_a_lazy_series_in_one_pass(scans, tmp_path, run_cli):
    frames, truth = scans
    eager, _ = process_frames(frames)
    io.write_result(tmp_path / "kpfm", eager, {"frames": len(frames)})
    log = tmp_path / "log.csv"
    t, v, i = (truth.cycler[k].values for k in ("time", "voltage", "current"))
    log.write_text("time_s,voltage_V,current_A\n" + "".join(f"{a},{b},{c}\n" for a, b, c in zip(t, v, i)))
    counter = CountingScheduler(max_computes=2)  # the row_time coordinate; the result written
    with dask.config.set(scheduler=counter):
        result = run_cli("timeline", tmp_path / "kpfm", "--cycler", log, "--start", eager.attrs["start_time"],
                         "--out", tmp_path / "timed")
    assert result.returncode == 0, result.stderr
    assert counter.total == 2
    stored = io.open_dataset(tmp_path / "timed")
    np.testing.assert_array_equal(stored["potential"].values, eager["potential"].values)
    assert np.isfinite(stored["row_cell_voltage"].values).all()
