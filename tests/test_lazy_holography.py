"""Issue 19 for holography: an off-axis hologram series (time, y, x) backed by dask reconstructs
lazily (one task per chunk of frames, no compute while the graph is built) to the in-memory
result, the per-pixel phase-to-potential and thickness maps of a series stay lazy too, and so
do potential_map, potential_from_reconstruction, holo potential and holo profile, frame by
frame."""

from __future__ import annotations

import json
import warnings

import dask
import numpy as np
import pytest
import xarray as xr
from daskcount import CountingScheduler

from ionscope.errors import IonscopeWarning
from ionscope.holography import (
    phase_to_potential,
    potential_map,
    reconstruct_offaxis,
    thickness_from_amplitude,
    thickness_from_phase,
)
from ionscope.holography.workflow import (
    potential_from_reconstruction,
    profile_across_interface,
    smooth_vacuum_variation,
)
from ionscope.simulate import simulate

SMALL = {"ny": 96, "nx": 96, "vacuum_height_nm": 12, "interface_position_nm": 24}


@pytest.fixture(scope="module")
def series():
    """Three exposures of the small holography twin biased to 0, 1 and 2 V (new noise each), its
    reference, a reference stack and the twin of the first frame (truth)."""
    frames = [simulate("holography", seed=2, exposure=i, bias_V=float(i), reference_frames=4, **SMALL)
              for i in range(3)]
    holo = xr.concat([f["hologram"] for f in frames], dim="time")
    holo = holo.assign_coords(time=("time", [0.0, 30.0, 60.0], {"units": "s"}))
    return holo, frames[0]


@pytest.mark.parametrize("reference", ["reference", "reference_stack"])
def test_a_dask_hologram_series_reconstructs_lazily_frame_by_frame_as_the_single_maps(series, reference):
    holo, twin = series
    ref = twin[reference]
    eager = reconstruct_offaxis(holo, ref)
    counter = CountingScheduler(max_computes=0)  # the reference is numpy-backed: nothing to compute
    with dask.config.set(scheduler=counter):
        lazy = reconstruct_offaxis(holo.chunk({"time": 2}), ref)
    assert counter.total == 0
    for name in ("phase", "amplitude", "fringe_visibility"):
        assert isinstance(lazy[name].data, dask.array.Array)
    assert lazy["phase"].data.chunks[0] == (2, 1)  # one task per chunk of frames
    assert lazy["phase"].dims == ("time", "y", "x") and lazy["phase"].attrs["units"] == "rad"
    np.testing.assert_array_equal(lazy["time"].values, holo["time"].values)
    assert lazy["time"].attrs["units"] == "s"
    for name in ("phase", "amplitude", "fringe_visibility"):
        np.testing.assert_allclose(lazy[name].values, eager[name].values, rtol=1e-6, atol=1e-6)
    # the series is the single-map reconstruction of each frame (one plan: the reference's sideband)
    for i in range(holo.sizes["time"]):
        single = reconstruct_offaxis(holo.isel(time=i), ref)
        np.testing.assert_allclose(eager["phase"].values[i], single["phase"].values, rtol=1e-6, atol=1e-6)
        assert float(eager["fringe_visibility"][i]) == pytest.approx(single.attrs["fringe_visibility"], rel=1e-9)
    assert eager.attrs["sideband_used_px"] == single.attrs["sideband_used_px"]
    assert eager.attrs["frames"] == 3 and eager.attrs["sideband_from"] == "reference"
    # and the first frame reconstructs the twin's truth (vacuum at zero): the lamella's phase
    vac = twin["region"].values == 0
    bulk = (twin["region"].values == 1) & (twin["thickness_nm"].values > 40)
    err = eager["phase"].values[0] - twin["phase_true"].values
    err -= np.median(err[vac])
    assert abs(np.median(err[bulk])) < 0.03 * np.median(twin["phase_true"].values[bulk])


def test_without_a_reference_the_series_sideband_comes_from_the_first_frame_one_compute(series):
    holo, _ = series
    eager = reconstruct_offaxis(holo, None)
    counter = CountingScheduler(max_computes=1)  # the first frame, for the sideband detection
    with dask.config.set(scheduler=counter):
        lazy = reconstruct_offaxis(holo.chunk({"time": 1}), None)
    assert counter.total == 1 and isinstance(lazy["phase"].data, dask.array.Array)
    np.testing.assert_allclose(lazy["phase"].values, eager["phase"].values, rtol=1e-6, atol=1e-6)
    assert eager.attrs["sideband_from"] == "first frame"
    first = reconstruct_offaxis(holo.isel(time=0), None)
    np.testing.assert_allclose(eager["phase"].values[0], first["phase"].values, rtol=1e-6, atol=1e-6)


def test_a_dask_reference_is_computed_once(series):
    holo, twin = series
    counter = CountingScheduler(max_computes=1)
    with dask.config.set(scheduler=counter):
        lazy = reconstruct_offaxis(holo.chunk({"time": 1}), twin["reference"].chunk())
    assert counter.total == 1 and isinstance(lazy["phase"].data, dask.array.Array)


def test_phase_to_potential_and_thickness_of_a_dask_series_are_lazy_and_per_frame(series):
    holo, twin = series
    rec = reconstruct_offaxis(holo, twin["reference"])
    thickness = twin["thickness_nm"].where(twin["thickness_nm"] > 0)
    vacuum = twin["region"].values == 0
    calls = [
        (phase_to_potential, "phase", (300.0, thickness), {}),
        (phase_to_potential, "phase", (300.0, 60.0), {}),
        (thickness_from_phase, "phase", (300.0, 14.0), {"min_thickness_nm": 1.0}),
        (thickness_from_amplitude, "amplitude", (), {"vacuum": vacuum, "mean_free_path_nm": 150.0}),
        (thickness_from_amplitude, "amplitude", (), {}),
    ]
    for func, var, args, kw in calls:
        eager = func(rec[var], *args, **kw)
        with dask.config.set(scheduler=CountingScheduler(max_computes=0)):
            lazy = func(rec[var].chunk({"time": 1}), *args, **kw)
        assert isinstance(lazy.data, dask.array.Array), func.__name__
        assert lazy.dims == ("time", "y", "x")
        np.testing.assert_allclose(lazy.values, eager.values, rtol=1e-12, equal_nan=True)
        single = func(rec[var].isel(time=1), *args, **kw)  # the series is the map of each frame
        np.testing.assert_allclose(eager.values[1], single.values, rtol=1e-12, equal_nan=True)
    # the potential of the first (unbiased) frame is the twin's mean inner potential + 0 V
    pot = phase_to_potential(rec["phase"], 300.0, thickness)
    electrode = (twin["region"].values == 1) & (twin["thickness_nm"].values > 40)
    ref_vac = float(np.median(rec["phase"].values[0][vacuum]))
    v0 = (rec["phase"].values[0][electrode] - ref_vac) / (
        float(twin.attrs["interaction_constant_rad_per_V_nm"]) * twin["thickness_nm"].values[electrode])
    assert np.median(v0) == pytest.approx(twin.attrs["mip_electrode_V"], rel=0.05)
    assert np.isfinite(pot.values[:, electrode]).all()
    # per frame vacuum amplitude of the masked thickness: a lazy coordinate along time
    rel = thickness_from_amplitude(rec["amplitude"].chunk({"time": 1}), vacuum=vacuum)
    assert rel["amplitude_vacuum"].dims == ("time",)
    np.testing.assert_allclose(rel["amplitude_vacuum"].values,
                               [np.median(rec["amplitude"].values[i][vacuum].astype(np.float64)) for i in range(3)],
                               rtol=1e-12)


def test_holo_reconstruct_of_a_zarr_series_stays_lazy_and_writes_frame_by_frame(series, run_cli, tmp_path):
    from ionscope import io

    holo, twin = series
    io.save(xr.Dataset({"hologram": holo.chunk({"time": 1}), "reference": twin["reference"]}), tmp_path / "s.zarr")
    out = tmp_path / "rec"
    counter = CountingScheduler(max_computes=1)
    with dask.config.set(scheduler=counter):
        r = run_cli("holo", "reconstruct", f"{tmp_path}/s.zarr:hologram", "--reference",
                    f"{tmp_path}/s.zarr:reference", "--out", out)
    assert r.returncode == 0, r.stderr
    # one compute: the result written chunk by chunk, its summary statistics in the same pass
    assert counter.total == 1
    stored = io.open_dataset(out / "result.zarr")
    assert stored["phase"].dims == ("time", "y", "x")
    assert stored["phase"].encoding["chunks"][0] == 1  # written one frame per chunk
    eager = reconstruct_offaxis(holo, twin["reference"])
    np.testing.assert_allclose(stored["phase"].values, eager["phase"].values, rtol=1e-6, atol=1e-6)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["frames"] == 3 and summary["sideband_from"] == "reference"
    assert summary["phase_range_rad"] == pytest.approx([float(eager["phase"].min()), float(eager["phase"].max())])
    assert summary["fringe_visibility_mean"] == pytest.approx(float(eager["fringe_visibility"].mean()))


# --------------------------------------------------------------------------- potential of a series


def _frame(obj, i):
    return obj.isel(time=i) if isinstance(obj, xr.DataArray) and "time" in obj.dims else obj


@pytest.fixture(scope="module")
def reconstruction(series):
    holo, twin = series
    return reconstruct_offaxis(holo, twin["reference"]), twin


def test_potential_map_of_a_dask_series_is_lazy_and_the_map_of_each_frame(reconstruction):
    rec, twin = reconstruction
    vacuum = twin["region"].values == 0
    zero = rec["phase"].isel(time=0, drop=True)
    routes = [  # (keywords, computes while building: a dask map given once is computed once)
        ({"thickness_nm": 60.0, "vacuum": vacuum}, 0),
        ({"mip_v": 14.0, "vacuum": vacuum, "amplitude": rec["amplitude"]}, 0),
        ({"mip_v": 14.0, "vacuum": vacuum, "phase_zero": zero}, 0),
        ({"thickness_nm": 60.0, "vacuum": vacuum, "phase_zero": zero.chunk(), "align": True,
          "amplitude": rec["amplitude"], "amplitude_zero": rec["amplitude"].isel(time=0, drop=True).chunk()}, 1),
    ]
    for kw, computes in routes:
        counter = CountingScheduler(max_computes=computes)
        with dask.config.set(scheduler=counter):
            lazy = potential_map(rec["phase"].chunk({"time": 2}), 300.0,
                                 **{k: v.chunk({"time": 2}) if _frame(v, 0) is not v else v for k, v in kw.items()})
        assert counter.total == computes
        assert all(isinstance(v.data, dask.array.Array) for v in lazy.data_vars.values())
        assert lazy["potential"].dims == ("time", "y", "x") and lazy["potential"].data.chunks[0] == (2, 1)
        got = lazy.compute()
        eager = potential_map(rec["phase"], 300.0, **kw)  # numpy in, numpy out: the same values
        assert isinstance(eager["potential"].data, np.ndarray)
        for i in range(3):
            single = potential_map(rec["phase"].isel(time=i), 300.0, **{k: _frame(v, i) for k, v in kw.items()})
            assert set(single.data_vars) == set(got.data_vars)
            for name in single.data_vars:
                np.testing.assert_allclose(got[name].values[i], single[name].values, rtol=1e-12, equal_nan=True)
                np.testing.assert_allclose(eager[name].values[i], single[name].values, rtol=1e-12, equal_nan=True)
            assert got.attrs["route"] == single.attrs["route"]
            if "mean_free_path_nm" in got.coords:
                assert float(got["mean_free_path_nm"][i]) == pytest.approx(single.attrs["mean_free_path_nm"], rel=1e-12)
            if "phase_difference" in single:
                assert float(got["vacuum_offset_rad"][i]) == pytest.approx(
                    single["phase_difference"].attrs["vacuum_offset_rad"], rel=1e-12, abs=1e-15)
            if kw.get("align"):
                np.testing.assert_allclose([float(got["alignment_shift_y_px"][i]), float(got["alignment_shift_x_px"][i])],
                                           single.attrs["alignment_shift_px"], rtol=1e-9, atol=1e-12)
    # the biased frames' potential over the 0 V frame: the twin's bias (0, 1, 2 V) far from the vacuum
    diff = potential_map(rec["phase"].chunk({"time": 1}), 300.0, thickness_nm=60.0, vacuum=vacuum, phase_zero=zero)
    assert diff["vacuum_offset_rad"].values[0] == 0.0
    assert np.all(np.diff(diff["vacuum_offset_rad"].values) > 0.1)  # the bias lifts the vacuum too
    assert np.all(np.diff(np.nanmedian(diff["potential"].values[:, ~vacuum], axis=-1)) > 0.5)


def test_potential_from_reconstruction_of_a_dask_series_is_lazy_per_frame_with_per_frame_numbers(reconstruction):
    rec, twin = reconstruction
    vacuum = twin["region"].values == 0
    cases = [
        ({"thickness_nm": 60.0}, 0),  # the vacuum detected on each frame's amplitude
        ({"thickness_nm": 60.0, "vacuum": vacuum, "leakage": True, "leakage_degree": 1}, 0),
        ({"mip_v": 14.0}, 0),
        ({"mip_v": 14.0, "zero": rec.isel(time=0, drop=True).chunk()}, 1),  # the 0 V map, computed once
    ]
    for kw, computes in cases:
        counter = CountingScheduler(max_computes=computes)
        with dask.config.set(scheduler=counter):
            lazy = potential_from_reconstruction(rec.chunk({"time": 2}), 300.0, **kw)
        assert counter.total == computes
        assert all(isinstance(v.data, dask.array.Array) for v in lazy.data_vars.values())
        assert isinstance(lazy["potential_median_V"].data, dask.array.Array)
        assert lazy["potential_median_V"].dims == ("time",)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", IonscopeWarning)  # the twin's vacuum is not flat: warned per frame
            got = lazy.compute()
            singles = [potential_from_reconstruction(rec.isel(time=i), 300.0, **kw) for i in range(3)]
        for i, single in enumerate(singles):
            assert set(single.data_vars) == set(got.data_vars)
            for name in single.data_vars:
                np.testing.assert_allclose(got[name].values[i], single[name].values, rtol=1e-12, equal_nan=True)
            assert float(got["potential_median_V"][i]) == pytest.approx(single.attrs["potential_median_V"], rel=1e-12)
            np.testing.assert_allclose(got["potential_percentiles_V"].values[i],
                                       list(json.loads(single.attrs["potential_percentiles_V"]).values()), rtol=1e-12)
            assert int(got["vacuum_pixels"][i]) == single.attrs["vacuum_pixels"]
            flat = json.loads(single.attrs.get("vacuum_flatness_after_leakage", single.attrs["vacuum_flatness"]))
            assert float(got["vacuum_smooth_variation_rad"][i]) == pytest.approx(smooth_vacuum_variation(flat), rel=1e-12)
            if kw.get("leakage"):
                report = json.loads(single.attrs["leakage"])
                assert int(got["leakage_degree"][i]) == report["degree"] == 1
                assert float(got["leakage_residual_rms_rad"][i]) == pytest.approx(report["residual_rms_rad"], rel=1e-12)
            if "mean_free_path_nm" in got.coords:
                assert float(got["mean_free_path_nm"][i]) == pytest.approx(single.attrs["mean_free_path_nm"], rel=1e-12)
        assert got.attrs["route"] == singles[0].attrs["route"]
        assert got.attrs["resolution_cutoff_per_nm"] == singles[0].attrs["resolution_cutoff_per_nm"]
    # the bias-induced potential of the 0 V reference route follows the twin's bias: 0, 1, 2 V
    np.testing.assert_allclose(got["potential_median_V"].values, [0.0, 1.0, 2.0], atol=0.1)


def test_holo_potential_of_a_zarr_series_stays_lazy_one_compute_while_writing(reconstruction, run_cli, tmp_path):
    from ionscope import io

    rec, _ = reconstruction
    io.save(rec.chunk({"time": 1}), tmp_path / "rec.zarr")
    counter = CountingScheduler(max_computes=1)
    with dask.config.set(scheduler=counter):
        r = run_cli("holo", "potential", tmp_path / "rec.zarr", "--kv", "300", "--thickness", "60",
                    "--out", tmp_path / "pot")
    assert r.returncode == 0, r.stderr
    assert counter.total == 1  # the result written chunk by chunk, the per-frame numbers in that pass
    stored = io.open_dataset(tmp_path / "pot" / "result.zarr")
    assert stored["potential"].dims == ("time", "y", "x") and stored["potential"].encoding["chunks"][0] == 1
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", IonscopeWarning)
        singles = [potential_from_reconstruction(rec.isel(time=i), 300.0, thickness_nm=60.0) for i in range(3)]
    for i, single in enumerate(singles):
        np.testing.assert_allclose(stored["potential"].values[i], single["potential"].values, rtol=1e-12, equal_nan=True)
    summary = json.loads((tmp_path / "pot" / "summary.json").read_text())
    assert summary["frames"] == 3 and summary["route"] == "phase / uniform thickness"
    assert summary["potential_median_V"] == pytest.approx([s.attrs["potential_median_V"] for s in singles], rel=1e-12)
    assert summary["vacuum_pixels"] == [s.attrs["vacuum_pixels"] for s in singles]
    assert summary["potential_percentiles_V"][2] == pytest.approx(json.loads(singles[2].attrs["potential_percentiles_V"]))


@pytest.fixture(scope="module")
def potential_series(reconstruction):
    rec, _ = reconstruction
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", IonscopeWarning)
        return potential_from_reconstruction(rec, 300.0, thickness_nm=60.0)


@pytest.mark.parametrize("line", [{"start": (60, 10), "end": (60, 85)}, {"half_length_px": 30}])
def test_profile_of_a_dask_series_is_lazy_but_the_first_frame_along_one_line(potential_series, line):
    counter = CountingScheduler(max_computes=1)  # the first frame: it fixes the line (detected there)
    with dask.config.set(scheduler=counter):
        lazy = profile_across_interface(potential_series.chunk({"time": 2}), width=10, blur=0.5, **line)
    assert counter.total == 1
    assert isinstance(lazy["profile"].data, dask.array.Array) and lazy["profile"].dims == ("time", "position")
    assert isinstance(lazy["drop"].data, dask.array.Array) and lazy["drop"].dims == ("time",)
    assert lazy.attrs["endpoints"] == ("given" if "start" in line else "detected on the first frame")
    got = lazy.compute()
    p0, p1 = tuple(lazy.attrs["start_px"]), tuple(lazy.attrs["end_px"])
    for i in range(3):  # each frame: the map's profile and fit along that line
        single = profile_across_interface(potential_series.isel(time=i), start=p0, end=p1, width=10, blur=0.5)
        assert set(single.data_vars) == set(got.data_vars)
        for name in single.data_vars:
            np.testing.assert_allclose(got[name].values[i], single[name].values, rtol=1e-12, equal_nan=True)
        assert float(got["chi2_reduced"][i]) == pytest.approx(single.attrs["chi2_reduced"], rel=1e-12)
        assert [float(got["interface_y_px"][i]), float(got["interface_x_px"][i])] == pytest.approx(single.attrs["interface_px"])
        assert int(got["plateau_samples_end"][i]) == single.attrs["plateau_samples_end"]
    # the twin's interface lies at 24 nm (48 px at 0.5 nm) and its drop grows with the bias (0, 1, 2 V)
    assert np.all(np.abs(got["interface_x_px"].values - 48.5) < 1.5)
    assert np.all(np.diff(got["drop"].values) > 0.5)


def test_holo_profile_of_a_zarr_series_loads_the_first_frame_then_writes_lazily(potential_series, run_cli, tmp_path):
    from ionscope import io

    two = potential_series.isel(time=[1, 2])  # the biased frames (1 V, 2 V)
    io.save(two.chunk({"time": 1}), tmp_path / "pot.zarr")
    counter = CountingScheduler(max_computes=2)  # the first frame, then the write with the summary's numbers
    with dask.config.set(scheduler=counter):
        r = run_cli("holo", "profile", tmp_path / "pot.zarr", "--from", "60,10", "--to", "60,85", "--width", "10",
                    "--blur", "0.5", "--out", tmp_path / "prof")
    assert r.returncode == 0, r.stderr
    assert counter.total == 2
    stored = io.open_dataset(tmp_path / "prof" / "result.zarr")
    assert stored["profile"].dims == ("time", "position")
    summary = json.loads((tmp_path / "prof" / "summary.json").read_text())
    singles = [profile_across_interface(two.isel(time=i), start=(60, 10), end=(60, 85), width=10, blur=0.5)
               for i in range(2)]
    assert summary["frames"] == 2 and summary["endpoints"] == "given" and summary["units"] == "V"
    assert summary["drop_V"] == pytest.approx([float(s["drop"]) for s in singles], rel=1e-12)
    assert summary["w90_nm"] == pytest.approx([float(s["w90"]) for s in singles], rel=1e-12)
    assert summary["chi2_reduced"] == pytest.approx([s.attrs["chi2_reduced"] for s in singles], rel=1e-12)
    np.testing.assert_allclose(stored["profile"].values[1], singles[1]["profile"].values, rtol=1e-12)
