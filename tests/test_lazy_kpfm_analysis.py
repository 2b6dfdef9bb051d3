"""Issue 19 for the KPFM analysis steps: ``find_particles``, ``profile_frames`` and the
``register_frames`` wrapper take a dask-backed result without computing it (beyond the stated
first-frame sample), stream the series once, time chunk by time chunk, and give the in-memory
numbers; ``kpfm particles`` and ``kpfm profile`` on a Zarr result write it in that one pass."""

from __future__ import annotations

import csv
import json

import dask
import dask.array
import numpy as np
import pytest
import xarray as xr
from daskcount import CountingScheduler
from kpfm_frames import make_frames

from ionscope import io
from ionscope.compat import compute
from ionscope.kpfm import find_particles, process_frames, profile_frames
from ionscope.kpfm import analysis

PROFILE = {"start": (32, 2), "end": (32, 40), "width": 12}  # across the collector | matrix step


@pytest.fixture(scope="module")
def processed():
    """Five drifting 64 x 64 frames, deconvolved and tied to the cycler: (result, truth)."""
    frames, truth = make_frames(5, (64, 64), seed=1)
    result, _ = process_frames(frames, psf="auto", cycler=truth.cycler)
    return result, truth


def _assert_same(lazy: xr.Dataset, eager: xr.Dataset) -> None:
    assert set(lazy.data_vars) == set(eager.data_vars)
    for name in eager.data_vars:
        np.testing.assert_array_equal(lazy[name].values, eager[name].values, err_msg=name)


def test_find_particles_of_a_dask_result_samples_one_frame_and_equals_the_in_memory_path(processed):
    result, truth = processed
    eager, rows_eager = find_particles(result)
    counter = CountingScheduler(max_computes=1)  # the sample: first frames, row coordinates, noise
    with dask.config.set(scheduler=counter):
        lazy, rows = find_particles(result.chunk({"time": (1, 2, 2)}))
    assert counter.total == 1
    for name in ("particle_dV", "particle_dV_error", "is_active", "response_time_s", "active"):
        assert isinstance(lazy[name].data, dask.array.Array), name
    assert isinstance(lazy.attrs["active_particles"], dask.array.Array)
    with dask.config.set(scheduler=counter):
        counter.total = 0
        values, table, n_active = compute(lazy, rows, lazy.attrs["active_particles"])  # one pass for all
    assert counter.total == 1
    _assert_same(values, eager)
    assert json.dumps(table) == json.dumps(rows_eager)  # NaN response times included
    assert int(n_active) == eager.attrs["active_particles"] == sum(r["active"] for r in table)
    # the ground truth: the pixels of the particles that follow the cell
    active = values["active"].values
    assert (active & truth.active).sum() / (active | truth.active).sum() >= 0.8


def test_find_particles_streams_the_series_one_time_chunk_per_task(processed, monkeypatch):
    result, _ = processed
    seen = []
    block = analysis._particle_block

    def counted(values, raw_values, *args, **kwargs):
        seen.append((values.shape[0], raw_values.shape[0]))
        return block(values, raw_values, *args, **kwargs)

    monkeypatch.setattr(analysis, "_particle_block", counted)
    lazy, rows = find_particles(result.chunk({"time": 2}))
    seen.clear()
    lazy["particle_dV"].compute()
    assert sorted(seen) == [(1, 1), (2, 2), (2, 2)]  # every frame once, never the whole series at once
    seen.clear()
    compute(lazy, rows, lazy.attrs["active_particles"])
    assert sorted(seen) == [(1, 1), (2, 2), (2, 2)]  # the Dataset, the rows and the count: one pass


def test_the_active_map_of_a_particle_whose_largest_change_is_in_a_later_chunk(processed):
    """The active map keeps each active particle's pixels judged in its frame of largest |dV|: the
    chunks' choices merged in time order give the same frame as the whole series (ties: the
    first)."""
    result, _ = processed
    eager, _ = find_particles(result, trim=0.9)
    flipped = result.copy()
    # the last frame's change halved: the largest change of the active particles moves to frame 3
    dv = result["potential"] - result["potential"].isel(time=0)
    flipped["potential"] = result["potential"].where(result["time"] != result["time"][-1],
                                                     result["potential"].isel(time=0) + 0.5 * dv)
    flipped["potential_raw"] = flipped["potential"]
    expected, _ = find_particles(flipped, trim=0.9)
    assert not np.array_equal(expected["active"].values, eager["active"].values)
    for chunks in ((1, 1, 1, 1, 1), (3, 2), (5,)):
        lazy, _ = find_particles(flipped.chunk({"time": chunks}), trim=0.9)
        np.testing.assert_array_equal(lazy["active"].values, expected["active"].values)


def test_profile_frames_of_a_dask_result_computes_nothing_and_equals_the_in_memory_path(processed):
    result, truth = processed
    eager, summary_eager = profile_frames(result, **PROFILE)
    counter = CountingScheduler(max_computes=0)
    with dask.config.set(scheduler=counter):
        lazy, summary = profile_frames(result.chunk({"time": 2}), **PROFILE)
    assert isinstance(lazy["profile"].data, dask.array.Array) and isinstance(lazy["drop"].data, dask.array.Array)
    assert lazy["profile"].data.numblocks[0] == 3  # one task per time chunk
    np.testing.assert_array_equal(lazy["position"].values, eager["position"].values)
    values, frames, drops = compute(lazy, summary["frames"], summary["drop_V"])
    _assert_same(values, eager)
    assert json.dumps(frames) == json.dumps(summary_eager["frames"])
    assert drops == summary_eager["drop_V"]
    # 0 V collector -> about 0.3 V matrix: the drop (start minus end) of every frame
    assert np.all(np.abs(np.asarray(drops) + 0.3) < 0.05)


def test_a_profile_band_that_leaves_the_image_fails_before_anything_is_computed(processed):
    from ionscope.errors import InputError

    result, _ = processed
    with dask.config.set(scheduler=CountingScheduler(max_computes=0)), pytest.raises(InputError, match="leaves"):
        profile_frames(result.chunk({"time": 2}), (32, 2), (32, 200), width=12)


def test_register_frames_of_a_dask_series_computes_the_first_guide_frame_only(processed):
    from ionscope.kpfm import level_topography, reference_potential, register_frames

    _, truth = processed
    frames, _ = make_frames(5, (64, 64), seed=1)
    pots = xr.concat([reference_potential(f["Potential_forward"]) for f in frames], dim="time")
    guide = xr.concat([level_topography(f["Z_forward"]) for f in frames], dim="time")
    eager = register_frames(pots, guide=guide)
    counter = CountingScheduler(max_computes=1)  # the guide's first frame: the reference
    with dask.config.set(scheduler=counter):
        lazy = register_frames(pots.astype(np.float64).chunk({"time": 2}), guide=guide.chunk({"time": 3}))
    assert counter.total == 1
    assert isinstance(lazy["registered"].data, dask.array.Array) and lazy["registered"].data.chunks[0] == (2, 2, 1)
    _assert_same(lazy, eager)
    shifts = np.c_[lazy["shift_y_nm"].values, lazy["shift_x_nm"].values] / truth.pixel_nm
    assert np.abs(shifts - truth.shifts_px).max() <= 0.1


@pytest.fixture
def stored(processed, tmp_path):
    """The result written as ``kpfm process`` writes it, one frame per chunk."""
    result, _ = processed
    io.write_result(tmp_path / "kpfm", result.chunk({"time": 1}), {"frames": result.sizes["time"]})
    return tmp_path / "kpfm"


def test_kpfm_particles_on_a_zarr_result_reads_a_sample_then_writes_in_one_pass(processed, stored, tmp_path,
                                                                                  run_cli):
    result, _ = processed
    eager, rows = find_particles(io.open_dataset(stored))
    counter = CountingScheduler(max_computes=2)  # the first frame; the outputs written with the rows
    with dask.config.set(scheduler=counter):
        res = run_cli("kpfm", "particles", stored, "--out", tmp_path / "part")
    assert res.returncode == 0, res.stderr
    assert counter.total == 2
    _assert_same(io.open_dataset(tmp_path / "part")[list(eager.data_vars)], eager)
    with open(tmp_path / "part" / "particles.csv", newline="") as fh:
        table = list(csv.DictReader(fh))
    assert [int(r["label"]) for r in table] == [r["label"] for r in rows]
    assert [float(r["dV_last_mV"] or "nan") for r in table] == pytest.approx([r["dV_last_mV"] for r in rows],
                                                                            nan_ok=True, rel=1e-12)
    summary = json.loads((tmp_path / "part" / "summary.json").read_text())
    assert summary["active_particles"] == eager.attrs["active_particles"] == sum(r["active"] for r in rows) >= 1


def test_kpfm_profile_on_a_zarr_result_writes_in_one_pass(stored, tmp_path, run_cli):
    eager, summary_eager = profile_frames(io.open_dataset(stored), **PROFILE)
    counter = CountingScheduler(max_computes=1)
    with dask.config.set(scheduler=counter):
        res = run_cli("kpfm", "profile", stored, "--from", "32,2", "--to", "32,40", "--width", "12",
                      "--out", tmp_path / "prof")
    assert res.returncode == 0, res.stderr
    assert counter.total == 1
    _assert_same(io.open_dataset(tmp_path / "prof")[list(eager.data_vars)], eager)
    summary = json.loads((tmp_path / "prof" / "summary.json").read_text())
    assert summary["frames"] == summary_eager["frames"] and summary["drop_V"] == summary_eager["drop_V"]
