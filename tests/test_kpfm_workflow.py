"""The KPFM chains as library functions (what ``ionscope kpfm process | particles | profile`` will
call), checked against the ground truth of small synthetic frames (tests/kpfm_frames.py): the
contract's outputs, the issue's targets (noise within 20 %, dV within 1.2 sqrt(2) sigma,
deconvolution -30 % error and -40 % step width, active-particle IoU >= 0.9 for up- and
down-scans, sub-pixel registration) and one clear error for each kind of careless input."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest
import xarray as xr

from ionscope.data import provenance
from ionscope.errors import ConfigError, InputError, IonscopeWarning
from ionscope.kpfm import difference_maps, find_particles, process_frames, profile_frames
from ionscope.kpfm.level import edge_profile_kernel, step_width_kernel
from kpfm_frames import cell_state, make_frames, step_frame

SIGMA = 0.01
N_FRAMES = 4
#: frames wide enough that the collector band (1/8 of the field) spans two PSF tail SDs, which the
#: PSF estimate from its edge needs
SIZE = 192


def _rms(a) -> float:
    return float(np.sqrt(np.nanmean(np.square(a))))


@pytest.fixture(scope="module", params=["down", "up"])
def processed(request):
    """A shuffled series of one scan direction, processed with an estimated PSF and the cycler."""
    frames, truth = make_frames(N_FRAMES, seed=11, scan=request.param, shuffle=True, shape=(SIZE, SIZE))
    result, summary = process_frames(frames, psf="auto", cycler=truth.cycler)
    return frames, truth, result, summary


def _referenced_truth(stack, box):
    y0, y1, x0, x1 = box
    return stack - np.median(stack[:, y0:y1, x0:x1], axis=(1, 2))[:, None, None]


# --------------------------------------------------------------------------- the contract


def test_process_gives_the_contract_outputs(processed):
    frames, truth, ds, summary = processed
    assert ds["potential"].dims == ("time", "y", "x") and ds["potential"].attrs["units"] == "V"
    assert ds["potential_raw"].dims == ("time", "y", "x")
    assert ds["row_time"].dims == ("time", "y") and ds["row_time"].attrs["units"] == "s"
    for name in ("shift_y_nm", "shift_x_nm", "cell_voltage", "cell_current", "charge"):
        assert ds[name].dims == ("time",), name
    assert ds["y"].attrs["units"] == "nm" and float(ds["x"][1] - ds["x"][0]) == pytest.approx(4.0)
    for key in ("frames", "scan_directions", "noise_mV", "psf_sigma_nm", "reference_box", "run_time_s"):
        assert key in summary, key
    assert summary["frames"] == N_FRAMES and len(summary["scan_directions"]) == N_FRAMES
    json.dumps(summary)  # plain JSON
    assert ds.attrs["start_time"] == "2024-05-01T10:00:00"
    steps = provenance(ds["potential"])
    assert steps[-1]["step"] == "ionscope.kpfm.process_frames" and len(steps[-1]["inputs"]) == N_FRAMES


def test_frames_are_put_in_time_order_and_every_row_has_its_time(processed):
    frames, truth, ds, _ = processed
    np.testing.assert_allclose(ds["time"].values, truth.times_s)
    rt = ds["row_time"].values - ds["time"].values[:, None]
    # within a frame the rows follow the scan direction (drift moves the grid by a few rows)
    step = np.diff(rt, axis=1)
    direction = ds.attrs["scan_directions"][0]
    assert np.all(step > 0) if direction == "down" else np.all(step < 0)
    assert rt.min() > -20 and rt.max() < frames[0].attrs["acquisition_time_s"] + 20


def test_the_reference_region_has_median_zero_in_every_frame_and_uncovered_pixels_are_nan(processed):
    _, truth, ds, summary = processed
    y0, y1, x0, x1 = summary["reference_box"]
    assert x0 == 0 and y0 == 0 and y1 == SIZE and 6 <= x1 <= truth.collector_px
    for name in ("potential", "potential_raw"):
        med = np.nanmedian(ds[name].values[:, y0:y1, x0:x1], axis=(1, 2))
        np.testing.assert_allclose(med, 0.0, atol=1e-6)
    pot = ds["potential_raw"].values
    shifts = np.c_[ds["shift_y_nm"].values, ds["shift_x_nm"].values] / 4.0
    for k in range(N_FRAMES):
        sy, sx = shifts[k]
        if sy > 1:
            assert np.isnan(pot[k, : int(np.floor(sy))]).all()
        if sx < -1:
            assert np.isnan(pot[k, :, int(np.ceil(SIZE + sx)):]).all()
    assert np.isfinite(pot[0]).all()


def test_registration_shifts_are_sub_pixel(processed):
    _, truth, ds, _ = processed
    shifts = np.c_[ds["shift_y_nm"].values, ds["shift_x_nm"].values] / truth.pixel_nm
    assert np.abs(shifts - truth.shifts_px).max() <= 0.1
    assert np.all(ds["registration_match"].values > 0.8)


# --------------------------------------------------------------------------- the targets


def test_noise_is_estimated_within_20_percent(processed):
    _, truth, ds, summary = processed
    assert summary["noise_mV"] == pytest.approx(truth.noise_V * 1e3, rel=0.2)
    assert summary["noise_trace_mV"] == pytest.approx(truth.noise_V * 1e3, rel=0.2)
    assert ds.attrs["noise_V"] == pytest.approx(summary["noise_mV"] / 1e3)


def test_registered_referenced_dv_is_within_1_2_sqrt2_sigma_of_the_truth(processed):
    _, truth, ds, summary = processed
    raw = ds["potential_raw"].values.astype(np.float64)
    dv = raw - raw[0]
    dvt = _referenced_truth(truth.blurred - truth.blurred[0], summary["reference_box"])
    for k in range(1, N_FRAMES):
        covered = np.isfinite(dv[k])
        assert covered.mean() > 0.8
        assert _rms(dv[k][covered] - dvt[k][covered]) <= 1.2 * np.sqrt(2) * SIGMA, k


def test_deconvolution_lowers_the_error_and_narrows_the_step(processed):
    _, truth, ds, summary = processed
    pot, raw = (ds[v].values.astype(np.float64) for v in ("potential", "potential_raw"))
    for k in range(N_FRAMES):
        assert _rms(pot[k] - truth.potential[k]) <= 0.7 * _rms(raw[k] - truth.potential[k]), k
    assert summary["resolution_nm"] <= 0.6 * summary["resolution_raw_nm"]
    box = summary["reference_box"]
    widths = [step_width_kernel(*edge_profile_kernel(img, box, "left", 48))["width"] for img in (raw[0], pot[0])]
    assert widths[1] <= 0.6 * widths[0]
    psf = summary["psf"]
    assert psf["core_sigma_nm"] == pytest.approx(truth.psf[0] * 4.0, rel=0.15)
    assert psf["tail_weight"] == pytest.approx(truth.psf[1], abs=0.06)


def test_the_active_particles_are_found_for_up_and_down_scans(processed):
    _, truth, ds, _ = processed
    parts, rows = find_particles(ds)
    active = parts["active"].values
    iou = (active & truth.active).sum() / (active | truth.active).sum()
    assert iou >= 0.9
    assert truth.labels.max() - 2 <= parts.attrs["particles"] == len(rows) <= truth.labels.max()
    y0, y1, x0, x1 = ds.attrs["reference_box"]
    assert not parts["labels"].values[y0:y1, x0:x1].any()
    columns = ["label", "area_nm2", "centroid_y_nm", "centroid_x_nm", "dV_last_mV", "dV_err_mV", "active",
               "response_time_s"]
    assert all(list(r) == columns for r in rows)
    for r in rows:
        if r["active"]:
            assert r["dV_last_mV"] > 30 and 0 < r["dV_err_mV"] < 10
            # the cell's own 1 - 1/e time from the start of the charge, within the sampling
            assert 200 < r["response_time_s"] < 1500
        else:
            assert np.isnan(r["response_time_s"])
    assert parts["particle_dV"].dims == ("particle", "time")


def test_profiles_across_the_collector_edge_give_a_drop_per_frame(processed):
    _, truth, ds, _ = processed
    prof, summary = profile_frames(ds, (96, 2), (96, 56), width=40)
    assert prof["profile"].dims == ("time", "position") and len(summary["frames"]) == N_FRAMES
    for frame in summary["frames"]:
        # 0 V collector -> 0.3 V matrix: a drop (start minus end) of -0.3 V
        assert frame["drop_V"] == pytest.approx(-0.3, abs=0.03)
        assert frame["drop_V_error"] > 0 and np.isfinite(frame["slope_V_per_nm_error"])
    for key in ("drop_V", "drop_V_error", "slope_V_per_nm", "slope_V_per_nm_error"):
        assert len(summary[key]) == N_FRAMES


def test_the_cell_state_of_every_row_and_frame(processed):
    _, truth, ds, _ = processed
    t0 = 3.0
    rv = ds["row_cell_voltage"].values
    t_on = float(ds.attrs["cell_change_start_s"])
    expected, _, _ = cell_state(ds["row_time"].values, t_on=t_on)
    np.testing.assert_allclose(rv, expected, atol=2e-3)
    np.testing.assert_allclose(ds["cell_voltage"].values, rv.mean(axis=1))
    assert ds["cell_voltage"].values[0] == pytest.approx(t0, abs=1e-6)
    assert np.all(np.diff(ds["charge"].values) > 0)
    assert ds["cell_current"].attrs["units"] == "mA" and ds["charge"].attrs["units"] == "mAh"  # as the timeline


# --------------------------------------------------------------------------- options


@pytest.fixture(scope="module")
def series():
    return make_frames(3, seed=12, shape=(96, 96))


def test_the_sign_convention_is_recorded_and_applied(series):
    frames, _ = series
    sample, s1 = process_frames(frames)
    tip, s2 = process_frames(frames, bias_on="tip")
    np.testing.assert_allclose(tip["potential"].values, -sample["potential"].values, atol=1e-5, equal_nan=True)
    assert s1["bias_on"] == "sample" and s1["bias_on_source"].startswith("assumed")
    assert tip.attrs["sign_convention"] == "Kelvin bias applied to the tip: potential = recorded bias"
    tagged = [f.assign_attrs(bias_on="tip") for f in frames]
    assert process_frames(tagged)[1]["bias_on"] == "tip"


def test_direction_mean_halves_the_noise_and_a_given_box_and_gaussian_psf(series):
    frames, truth = series
    ds, summary = process_frames(frames, direction="mean", reference="0:96,0:8", psf=6.0)
    assert summary["noise_mV"] == pytest.approx(SIGMA * 1e3 / np.sqrt(2), rel=0.2)
    assert summary["noise_trace_mV"] == pytest.approx(SIGMA * 1e3 / np.sqrt(2), rel=0.2)
    assert summary["reference_box"] == [0, 96, 0, 8] and summary["psf_sigma_nm"] == pytest.approx(6.0)
    assert json.loads(ds.attrs["psf"])["source"] == "given Gaussian"
    plain, s = process_frames(frames, psf="none", align=False)
    assert "potential_raw" not in plain and "psf_sigma_nm" not in s
    assert np.all(plain["shift_x_nm"].values == 0)
    dv = difference_maps(plain)
    assert dv.dims == ("time", "y", "x") and float(np.abs(dv[0]).max()) == 0.0
    assert provenance(dv)[-1]["step"] == "ionscope.kpfm.difference_maps"


def test_files_in_give_the_numbers_of_frames_in_memory(series, tmp_path):
    frames, _ = series
    paths = []
    for k, f in enumerate(frames):
        paths.append(tmp_path / f"f{k}.nc")
        f.to_netcdf(paths[-1])
    a, _ = process_frames(frames)
    b, _ = process_frames(paths)
    np.testing.assert_allclose(a["potential"].values, b["potential"].values, atol=1e-6, equal_nan=True)
    assert all(d.startswith("sha256:") for d in provenance(b)[-1]["inputs"])


def test_a_csv_cycler_log_with_its_start_time(series, tmp_path):
    frames, truth = series
    log = truth.cycler
    csv = tmp_path / "cycler.csv"
    # the log starts 100 s before the first frame: its zero is given as start
    rows = "".join(f"{t + 100},{v},{i},{q}\n" for t, v, i, q in zip(log["time"].values, log["voltage"].values,
                                                                     log["current"].values, log["charge"].values))
    csv.write_text("time_s,voltage_V,current_A,charge_C\n" + rows)
    ref, _ = process_frames(frames, cycler=log)
    ds, summary = process_frames(frames, cycler=csv, start="2024-05-01T09:58:20")
    np.testing.assert_allclose(ds["cell_voltage"].values, ref["cell_voltage"].values, atol=1e-9)
    assert summary["cycler_offset_s"] == pytest.approx(100.0) and summary["cycler_alignment"] == "start given"
    with pytest.warns(IonscopeWarning, match="outside the cycler log"):
        process_frames(frames, cycler=csv, start="2024-05-01T12:00:00")


def test_step_plus_linear_profiles_of_a_known_interface():
    maps = []
    for seed in range(2):
        image, _ = step_frame(psf=(1.5, 0.0, 0.0), noise_V=SIGMA, drop_V=0.25, slope_V_per_nm=2e-4, seed=seed)
        maps.append(image.values)
    ds = xr.Dataset({"potential": (("time", "y", "x"), np.stack(maps), {"units": "V"})},
                    coords={"time": ("time", [0.0, 60.0], {"units": "s"}), "y": image["y"], "x": image["x"]})
    prof, summary = profile_frames(ds, (48, 10), (48, 150), width=40)
    for frame in summary["frames"]:
        assert abs(frame["drop_V"] - 0.25) < 3 * frame["drop_V_error"] + 1e-3
        assert abs(frame["slope_V_per_nm"] - 2e-4) < 3 * frame["slope_V_per_nm_error"]
        assert frame["interface_nm"] == pytest.approx((80 - 10) * 4.0, abs=3.0)


# --------------------------------------------------------------------------- careless input


def _small(n=2, **kw):
    return make_frames(n, seed=13, shape=(96, 96), **kw)[0]


def test_frames_of_another_size_or_scan_range_are_refused():
    frames = _small()
    other = make_frames(1, seed=13, shape=(80, 96))[0][0]
    with pytest.raises(InputError, match="80 x 96 px.*96 x 96 px"):
        process_frames([frames[0], other])
    coarse = make_frames(1, seed=13, shape=(96, 96), pixel_nm=5.0)[0][0]
    with pytest.raises(InputError, match="another scan range"):
        process_frames([frames[0], coarse])


def test_an_all_nan_frame_is_refused():
    frames = _small(3)
    bad = frames[1].copy(deep=True)
    bad["Potential_forward"][:] = np.nan
    with pytest.raises(InputError, match=r"frame 1 \(frame001.sxm\) holds no finite Potential values"):
        process_frames([frames[0], bad, frames[2]])


def test_frames_of_another_field_of_view_are_refused():
    frames = _small(2)
    elsewhere = make_frames(1, seed=99, shape=(96, 96), start="2024-05-01T10:20:00")[0][0]
    with pytest.raises(InputError, match="not of one field of view"):
        process_frames(frames + [elsewhere])
    with pytest.raises(InputError, match="not of one field of view"):
        process_frames(frames + [elsewhere], align_on="potential")


def test_a_missing_channel_a_box_outside_and_mixed_start_times():
    frames = _small()
    with pytest.raises(InputError, match=r"has no channel 'Kelvin'.*Potential \[V\]"):
        process_frames(frames, channel="Kelvin")
    with pytest.raises(ConfigError, match="outside the 96 x 96 px image"):
        process_frames(frames, reference="0:96,90:100")
    undated = frames[1].copy()
    undated.attrs = {k: v for k, v in undated.attrs.items() if k != "start_time"}
    with pytest.raises(InputError, match="no start_time while other frames do"):
        process_frames([frames[0], undated])
    with pytest.raises(InputError, match="no KPFM frames"):
        process_frames([])
    with pytest.raises(ConfigError, match="direction"):
        process_frames(frames, direction="sideways")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert process_frames(frames)[1]["frames"] == 2  # the good ones pass silently


def test_a_result_written_and_read_back_feeds_particles_and_profiles(series, tmp_path):
    """The CLI writes result.zarr and summary.json (no NaN allowed); particles and profiles read
    the attributes the process step wrote."""
    from ionscope import io

    frames, truth = series
    single = [f[["Potential_forward", "Z_forward"]].assign_attrs(f.attrs) for f in frames]  # no backward trace
    ds, summary = process_frames(single, psf="auto", cycler=truth.cycler)
    assert "noise_trace_mV" not in summary
    io.write_result(tmp_path / "out", ds, summary)
    back = io.open_dataset(tmp_path / "out" / "result.zarr")
    a, rows_a = find_particles(ds)
    b, rows_b = find_particles(back)
    assert json.dumps(rows_a) == json.dumps(rows_b) and b.attrs["particles"] == a.attrs["particles"]
    p, s = profile_frames(back, (48, 2), (48, 40), width=10)
    json.dumps(s, allow_nan=False)
    assert json.loads((tmp_path / "out" / "summary.json").read_text())["frames"] == 3


def test_the_single_step_wrappers_carry_units_and_provenance(series):
    from ionscope.kpfm import deconvolve, level_topography, reference_potential, register_frames, segment_particles

    frames, truth = series
    z = level_topography(frames[0]["Z_forward"])
    assert z.attrs["units"] == "nm" and provenance(z)[-1]["step"] == "ionscope.kpfm.level_topography"
    pots = [reference_potential(f["Potential_forward"]) for f in frames]
    box = pots[0].attrs["reference_box"]
    assert pots[0].attrs["reference_edge"] == "left"
    assert np.median(pots[0].values[box[0]:box[1], box[2]:box[3]]) == pytest.approx(0.0, abs=1e-9)
    stack = xr.concat(pots, dim="time")
    guide = xr.concat([level_topography(f["Z_forward"]) for f in frames], dim="time")
    reg = register_frames(stack, guide=guide)
    shifts = np.c_[reg["shift_y_nm"].values, reg["shift_x_nm"].values] / truth.pixel_nm
    assert np.abs(shifts - truth.shifts_px).max() <= 0.1
    dec = deconvolve(pots[0], {"core_sigma_nm": 6.0, "tail_weight": 0.3, "tail_sigma_nm": 48.0})
    assert dec.attrs["units"] == "V" and dec.attrs["noise_V"] == pytest.approx(SIGMA, rel=0.2)
    labels = segment_particles(z, exclude=(0, 96, 0, 16))
    assert labels.dtype == np.int32 and labels.attrs["particles"] >= 3 and not labels.values[:, :16].any()
    with pytest.raises(InputError, match="V"):
        deconvolve(z, 6.0)
    with pytest.raises(ConfigError):
        register_frames(stack, upsample=0)
