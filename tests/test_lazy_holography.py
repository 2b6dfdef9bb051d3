"""Issue 19 for holography: an off-axis hologram series (time, y, x) backed by dask reconstructs
lazily (one task per chunk of frames, no compute while the graph is built) to the in-memory
result, and the per-pixel phase-to-potential and thickness maps of a series stay lazy too."""

from __future__ import annotations

import json

import dask
import numpy as np
import pytest
import xarray as xr
from daskcount import CountingScheduler

from ionscope.holography import (
    phase_to_potential,
    reconstruct_offaxis,
    thickness_from_amplitude,
    thickness_from_phase,
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
